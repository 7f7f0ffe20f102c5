"""Lesson 00 probes: what the learner loaded and built."""

from .common import model_summary, require


def probe_load_data(ns, framework):
    return {name: require(ns, name) for name in ("n_images", "image_shape", "n_classes")}


def probe_first_model(ns, framework):
    scores = require(ns, "scores")
    return {**model_summary(ns, "model", framework), "scores_shape": list(getattr(scores, "shape", ()))}


PROBES = {"test_load_data": probe_load_data, "test_first_model": probe_first_model}
