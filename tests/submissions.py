"""Build learner submissions for tests: the blank lesson with chosen answers filled in.

``solved(ln)`` fills every answer cell with the solution's code (as a learner who
got everything right would); ``overrides`` replace chosen answer cells with a
realistic wrong answer.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from autograder.assemble import nbgrader_meta
from autograder.lessons import LessonNotebook

MARKERS = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")


def strip_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not MARKERS.match(line))


def answer_sources(ln: LessonNotebook) -> dict[str, str]:
    nb = nbformat.read(ln.solution, as_version=4)
    return {nbgrader_meta(c)["grade_id"]: strip_markers(c.source) for c in nb.cells if nbgrader_meta(c).get("solution")}


def solved(ln: LessonNotebook, overrides: dict[str, str] | None = None) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nbformat.read(ln.release, as_version=4))
    answers = {**answer_sources(ln), **(overrides or {})}
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in answers and nbgrader_meta(cell).get("solution"):
            cell.source = answers[gid]
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
