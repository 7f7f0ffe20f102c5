"""The course's exercises, each declared once.

An exercise called ``<name>`` is the set of things that carry its name:

- in each twin of the lesson's source notebook (``solutions/<lesson>/<lesson>_<framework>.ipynb``): a heading
  ``## Part X — <title>``, the answer cell (nbgrader ``grade_id`` ``<name>``) and the check cell (``grade_id``
  ``test_<name>``, its points in nbgrader's metadata: the one place they are written);
- in the lesson's one hand-written module, ``autograder/rubrics/l<lesson>.py``: ``probe_<name>(ns, framework)`` in
  its probe section, which observes the learner's answer inside their kernel, and ``judge_<name>(observation)``
  below the judges' marker, which turns that observation into failure messages outside the kernel (the rubrics
  never enter the sandbox); optionally, below the test cases' marker, its wrong and valid test answers.

Everything else is derived: ``make lessons`` writes the points into the headings and each check cell's hidden call
to the grader (``autograder.source_sync``) and copies each module's probe section to ``autograder/probes/`` for the
kernel (``autograder.probe_copy``); the grader finds probes and judges by name.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .lessons import FRAMEWORKS, SOLUTIONS, LessonNotebook

TEST_PREFIX = "test_"
# "## Part A — Training, validation and test sets (2 points)": the title, without the points make lessons writes
PART_HEADING = re.compile(r"^## Part (?P<part>[A-Z]) — (?P<title>.+?)(?: \([\d.]+ points?\))?\s*$")


@dataclass(frozen=True)
class Exercise:
    lesson: str
    answer_id: str  # the answer cell's grade_id: the exercise's name
    title: str
    points: float
    part: str = ""

    @property
    def test_id(self) -> str:
        return f"{TEST_PREFIX}{self.answer_id}"

    def judge(self, observation: dict) -> list[str]:
        return getattr(Lesson(self.lesson).rubric, f"judge_{self.answer_id}")(observation)


@dataclass(frozen=True)
class Lesson:
    id: str  # e.g. "01_ml_basics"

    @property
    def notebooks(self) -> list[LessonNotebook]:
        return [LessonNotebook(self.id, fw) for fw in FRAMEWORKS]

    @property
    def rubric(self):
        return importlib.import_module(f"autograder.rubrics.l{self.id}")

    @property
    def exercises(self) -> list[Exercise]:
        return list(declared_exercises(self.notebooks[0].solution))

    def probe(self, test_id: str) -> Callable:
        """The probe of a check cell, from the generated probe copy (runs in the learner's kernel)."""
        module = importlib.import_module(f"autograder.probes.l{self.id}")
        return getattr(module, f"probe_{test_id.removeprefix(TEST_PREFIX)}")


def lessons() -> list[Lesson]:
    return [Lesson(p.name) for p in sorted(SOLUTIONS.iterdir())
            if LessonNotebook(p.name, FRAMEWORKS[0]).solution.exists()]


def exercises_in(cells: list[dict]) -> list[tuple[str, str, str, float]]:
    """``(part, title, answer_id, points)`` for each graded check cell of a notebook's cells (nbformat dicts),
    titled by the last Part heading above it."""
    found, part, title = [], "", ""
    for cell in cells:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        meta = cell.get("metadata", {}).get("nbgrader", {})
        heading = PART_HEADING.match(source.split("\n", 1)[0]) if cell["cell_type"] == "markdown" else None
        if heading:
            part, title = heading["part"], heading["title"]
        if cell["cell_type"] == "code" and meta.get("grade") and meta.get("grade_id", "").startswith(TEST_PREFIX):
            found.append((part, title, meta["grade_id"].removeprefix(TEST_PREFIX), meta.get("points", 0)))
    return found


@functools.cache
def _declared(path: Path, _mtime: float) -> tuple[Exercise, ...]:
    lesson = path.parent.name
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return tuple(Exercise(lesson, name, title, points, part) for part, title, name, points in exercises_in(cells))


def declared_exercises(path: Path) -> tuple[Exercise, ...]:
    """The exercises a source notebook declares (re-read when the file changes)."""
    return _declared(path, path.stat().st_mtime)
