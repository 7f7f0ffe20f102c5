"""Shared fixtures. Framework tests (tests/framework) run in subprocesses, one framework each."""

from __future__ import annotations

import os

import pytest

from autograder.grade import grade_notebook
from autograder.lessons import all_lesson_notebooks

collect_ignore = ["framework"]  # see test_helper_api.py

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

LESSON_NOTEBOOKS = all_lesson_notebooks()
IDS = [ln.stem for ln in LESSON_NOTEBOOKS]


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """grade(key, notebook_or_path, **options) -> Report, memoised for the session by key."""
    cache: dict = {}
    root = tmp_path_factory.mktemp("submissions")

    def grade(key: str, nb, **options):
        if key not in cache:
            path = nb
            if not isinstance(nb, (str, os.PathLike)):
                from submissions import write

                path = write(nb, root / key / f"{key}.ipynb")
            options.setdefault("device", "cpu")
            cache[key] = grade_notebook(path, **options)
        return cache[key]

    return grade
