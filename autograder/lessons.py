"""Which lessons exist, and which lesson and framework a notebook belongs to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tlkit.paths import REPO_ROOT

SOLUTIONS = REPO_ROOT / "solutions"
LESSONS = REPO_ROOT / "lessons"
FRAMEWORKS = ("pytorch", "keras")
_NAME = re.compile(r"^(?P<lesson>\d\d_[a-z0-9_]+?)_(?P<framework>pytorch|keras)$")


@dataclass(frozen=True)
class LessonNotebook:
    lesson: str  # e.g. "01_ml_basics"
    framework: str  # "pytorch" or "keras"

    @property
    def stem(self) -> str:
        return f"{self.lesson}_{self.framework}"

    @property
    def assignment(self) -> str:
        """nbgrader's assignment id: one per lesson and framework, so one framework is a whole submission.
        Both twins share the lesson's folder; nbgrader sees each through its own view (nbgrader_config.py)."""
        return self.stem

    @property
    def solution(self) -> Path:
        return SOLUTIONS / self.lesson / f"{self.stem}.ipynb"

    @property
    def release(self) -> Path:
        return LESSONS / self.lesson / f"{self.stem}.ipynb"


def all_lesson_notebooks() -> list[LessonNotebook]:
    found = []
    for path in sorted(SOLUTIONS.glob("*/*.ipynb")):
        m = _NAME.match(path.stem)
        if m and path.parent.name == m["lesson"]:
            found.append(LessonNotebook(m["lesson"], m["framework"]))
    return found


def parse_stem(stem: str) -> LessonNotebook | None:
    m = _NAME.match(stem)
    return LessonNotebook(m["lesson"], m["framework"]) if m else None


def in_lesson(folder: str, wanted: str) -> bool:
    """Whether a submission folder (an assignment such as ``01_ml_basics_pytorch``, or a lesson) is ``wanted``,
    a lesson (``01_ml_basics``: either framework) or one assignment."""
    ln = parse_stem(folder)
    return folder == wanted or (ln is not None and ln.lesson == wanted)


def identify(nb_metadata: dict, filename: str) -> LessonNotebook | None:
    """The notebook's lesson: from its ``tlcourse`` metadata, else from its file name."""
    meta = nb_metadata.get("tlcourse") if isinstance(nb_metadata, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("lesson"), str) and meta.get("framework") in FRAMEWORKS:
        return LessonNotebook(meta["lesson"], meta["framework"])
    return parse_stem(Path(filename).stem)
