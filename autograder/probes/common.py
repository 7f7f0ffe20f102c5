"""Probe helpers shared by the lessons (they run in the learner's kernel)."""

from __future__ import annotations

import contextlib
import importlib

import numpy as np

from ..probe_runtime import ProbeError, require


def helpers(framework: str):
    """The course helper module of the notebook's framework (tlkit.pytorch or tlkit.keras)."""
    return importlib.import_module(f"tlkit.{framework}")


def callable_(ns: dict, name: str):
    fn = require(ns, name)
    if not callable(fn):
        raise ProbeError(f"`{name}` should be a function, but it is a {type(fn).__name__}.")
    return fn


def model_summary(ns: dict, name: str, framework: str) -> dict:
    model = require(ns, name)
    tl = helpers(framework)
    return {"type": type(model).__name__, "params": tl.count_params(model),
            "trainable_params": tl.count_params(model, trainable_only=True)}


def holdout_predictions(model, framework: str, dataset: str) -> list[int]:
    """Predicted classes on the grader's held-out images (their labels never enter the kernel)."""
    from tlkit.data import load_inputs

    scores = np.asarray(helpers(framework).predict(model, load_inputs(dataset, "holdout")))
    return scores.argmax(axis=1).tolist()


@contextlib.contextmanager
def eval_mode(model):
    """A PyTorch model in eval mode for the block, then every submodule back in ITS OWN mode.

    (``model.train(was_training)`` would not do: it sets all submodules alike, e.g. batch norm the learner had
    frozen in eval mode back to training mode, and a probe must never change the learner's model.)"""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
