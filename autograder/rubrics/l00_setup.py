"""Lesson 00: set-up check.

Probes: what the learner loaded and built.
"""

from ..probes.common import model_summary, require


def probe_load_data(ns, framework):
    return {name: require(ns, name) for name in ("n_images", "image_shape", "n_classes")}


def probe_first_model(ns, framework):
    scores = require(ns, "scores")
    return {**model_summary(ns, "model", framework), "scores_shape": list(getattr(scores, "shape", ()))}


# ===== judges: below this line, never in the learner's kernel (make lessons copies only what is above) =====

from tlkit.data import load_dataset


def judge_load_data(obs):
    ds = load_dataset("digits")
    msgs = []
    if obs["n_images"] != len(ds):
        msgs.append("`n_images` is not the number of images in the data set (count the rows of `ds.x`).")
    if list(obs["image_shape"] or []) != list(ds.x.shape[1:]):
        msgs.append("`image_shape` should be the shape of ONE image (height, width), not of the whole array.")
    if obs["n_classes"] != len(ds.classes):
        msgs.append("`n_classes` is not the number of distinct classes.")
    return msgs


def judge_first_model(obs):
    msgs = []
    if obs["params"] != 64 * 10 + 10:
        msgs.append(f"`model` has {obs['params']} parameters; one linear layer from 64 pixels to 10 classes "
                    "has 64 x 10 weights + 10 biases.")
    if obs["scores_shape"] != [5, 10]:
        msgs.append(f"`scores` has shape {tuple(obs['scores_shape'])}; it should hold 10 class scores for each "
                    "of the first 5 images.")
    return msgs
