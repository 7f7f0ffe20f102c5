"""A learner who runs a Keras lesson's set-up cell sees no stderr box (TensorFlow's C++ start-up logs).

Each lesson's cells up to its set-up cell run in a fresh kernel, in the environment a learner's JupyterLab gives
its kernels: the grader's settings (``kernel_env``: ``TF_CPP_MIN_LOG_LEVEL`` and others) are not there, and Keras
uses its default backend, TensorFlow. ``tlkit.keras``, imported first, quiets TensorFlow as it loads; a kernel that
imports TensorFlow on its own shows the red box, which keeps this test able to see one.
"""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.lessons import all_lesson_notebooks

KERAS = [ln for ln in all_lesson_notebooks() if ln.framework == "keras"]
pytestmark = pytest.mark.slow


def learner_env() -> dict[str, str]:
    """The environment without the grader's TensorFlow settings, and without pytest's mark: ipykernel forwards
    what is written to file descriptor 2 only where PYTEST_CURRENT_TEST is not set."""
    drop = ("TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "KERAS_BACKEND",
            "PYTEST_CURRENT_TEST")
    return {k: v for k, v in os.environ.items() if k not in drop}


def run(cells: list, folder) -> list[dict]:
    """Run `cells` in a fresh kernel started in `folder`; return their stderr outputs."""
    nb = nbformat.v4.new_notebook(cells=cells)
    client = NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(folder)}})
    client.execute(env=learner_env())
    return [out for cell in nb.cells for out in cell.get("outputs", [])
            if out.get("output_type") == "stream" and out.get("name") == "stderr"]


def setup_cells(nb) -> list:
    """The notebook's cells through its set-up cell: the first code cell that imports keras or tlkit."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(word in cell.source for word in ("import keras", "from tlkit")):
            return nb.cells[:i + 1]
    raise AssertionError("no set-up cell")


@pytest.mark.parametrize("ln", KERAS, ids=[ln.stem for ln in KERAS])
def test_the_set_up_cell_writes_nothing_to_stderr(ln):
    nb = nbformat.read(ln.release, as_version=4)
    stderr = run(setup_cells(nb), ln.release.parent)
    assert not stderr, "".join(out["text"] for out in stderr)[:2000]


def test_tensorflow_loaded_without_tlkit_does_show_its_logs(tmp_path):
    """The control: what the learner saw before, and what the test above would catch."""
    stderr = run([nbformat.v4.new_code_cell("import keras")], tmp_path)
    assert "absl::InitializeLog" in "".join(out["text"] for out in stderr)
