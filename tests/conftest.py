"""Shared fixtures. Framework tests (tests/framework) run in subprocesses, one framework each."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
from pathlib import Path

import pytest
from filelock import FileLock

from autograder.grade import ExerciseResult, Report, grade_notebook
from autograder.lessons import all_lesson_notebooks

collect_ignore = ["framework"]  # see test_helper_api.py

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

LESSON_NOTEBOOKS = all_lesson_notebooks()
IDS = [ln.stem for ln in LESSON_NOTEBOOKS]
GRADE_DEFAULTS = {name: p.default for name, p in inspect.signature(grade_notebook).parameters.items()
                  if p.default is not inspect.Parameter.empty}


@pytest.fixture(scope="session")
def grade_once(tmp_path_factory):
    """grade_notebook(path, **options), run once per (file name, bytes, options, Keras backend) in a test session.

    The reports are shared by every xdist worker through files, so a notebook that two tests submit (the lesson
    tests and the class of every lesson, say) is executed once: whoever comes first grades it, the other waits.
    """
    base = tmp_path_factory.getbasetemp()
    under_xdist = "PYTEST_XDIST_WORKER" in os.environ  # then the parent folder is this session's, shared by workers
    folder = (base.parent if under_xdist else base) / "grade-once"
    folder.mkdir(exist_ok=True)

    def grade(path, **options) -> Report:
        path = Path(path)
        options = {**GRADE_DEFAULTS, "device": "cpu", **options}
        if not path.is_file():
            return grade_notebook(path, **options)
        key = json.dumps([path.name, sorted(options.items()), os.environ.get("KERAS_BACKEND")], default=str)
        digest = hashlib.sha256(key.encode() + path.read_bytes()).hexdigest()[:32]
        stored = folder / f"{digest}.json"
        with FileLock(f"{stored}.lock"):
            if stored.exists():
                fields = json.loads(stored.read_text())
                fields["exercises"] = [ExerciseResult(**e) for e in fields["exercises"]]
                return dataclasses.replace(Report(**fields), notebook=str(path))
            report = grade_notebook(path, **options)
            stored.write_text(json.dumps(report.to_dict()))
        return report

    return grade


@pytest.fixture(scope="session")
def graded(tmp_path_factory, grade_once):
    """grade(key, notebook_or_path, **options) -> Report; a notebook node is written to <key>/<its lesson>.ipynb."""
    root = tmp_path_factory.mktemp("submissions")

    def grade(key: str, nb, **options):
        path = nb
        if not isinstance(nb, (str, os.PathLike)):
            from submissions import write

            meta = nb.metadata.get("tlcourse", {})
            stem = f"{meta['lesson']}_{meta['framework']}" if {"lesson", "framework"} <= set(meta) else key
            path = write(nb, root / key / f"{stem}.ipynb")
        return grade_once(path, **options)

    return grade
