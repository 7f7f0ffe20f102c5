"""Generate the learner notebooks (``lessons/``) from the sources (``solutions/``) with nbgrader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tlkit.paths import REPO_ROOT

from .lessons import LESSONS, LessonNotebook, all_lesson_notebooks, parse_stem
from .probe_copy import write_probe_copies
from .source_sync import sync_source


def nbgrader_env() -> dict[str, str]:
    """nbgrader runs `alembic` by name: put this interpreter's bin/ first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def assignment_ids() -> list[str]:
    """nbgrader's assignments: one per lesson and framework."""
    return sorted(ln.assignment for ln in all_lesson_notebooks())


def generate(into: Path | None = None, assignments: list[str] | None = None) -> None:
    """Run ``nbgrader generate_assignment`` for each assignment, writing to ``into`` (default: lessons/).

    nbgrader writes to a scratch release folder; only a complete notebook replaces the one in ``into``, so a
    failing step never leaves a lesson deleted or half written. Releasing into lessons/ first writes into each
    source what its exercises determine (``source_sync``) and each lesson's probe copy (``probe_copy``)."""
    into = Path(into) if into is not None else LESSONS
    if into == LESSONS:  # the course's own release: first bring the sources in step with their declarations
        for ln in all_lesson_notebooks():
            sync_source(ln)
        write_probe_copies(sorted({ln.lesson for ln in all_lesson_notebooks()}))
    with tempfile.TemporaryDirectory(prefix="tlrelease-") as tmp:
        scratch = Path(tmp) / "release"
        for assignment in assignments or assignment_ids():
            cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--log-level=WARN",
                   f"--CourseDirectory.db_url=sqlite:///{tmp}/gradebook.db",
                   f"--CourseDirectory.release_directory={scratch}"]
            result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=nbgrader_env(), check=False)
            if result.returncode != 0 or not (scratch / assignment).is_dir():
                raise RuntimeError(f"nbgrader generate_assignment {assignment} failed (lessons are left as they "
                                   f"were):\n{result.stdout}{result.stderr}")
        publish(scratch, into)


def publish(release: Path, into: Path) -> None:
    """Move each notebook nbgrader wrote (``release/<assignment>/<assignment>.ipynb``) to its lesson's folder,
    ``into/<lesson>/<assignment>.ipynb``: each one replaces the old copy in a single rename."""
    for notebook in sorted(release.glob("*/*.ipynb")):
        ln = parse_stem(notebook.stem)
        if ln is None or notebook.parent.name != ln.assignment:
            raise RuntimeError(f"nbgrader wrote {notebook}, which is no lesson notebook")
        target = into / ln.lesson / notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        fresh = target.with_name(f".{target.name}.new")
        shutil.copyfile(notebook, fresh)
        fresh.replace(target)


def copy_course(root: Path, notebooks: list[LessonNotebook], *, released: bool = False) -> Path:
    """A course folder under ``root`` holding only these lessons' sources (and, if ``released``, their learner
    notebooks), with the course's nbgrader_config.py: for trial runs of nbgrader away from the checkout."""
    course = root / "course"
    course.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course)
    for ln in notebooks:
        for source, folder in [(ln.solution, "solutions"), *([(ln.release, "lessons")] if released else [])]:
            (course / folder / ln.lesson).mkdir(parents=True, exist_ok=True)
            shutil.copy(source, course / folder / ln.lesson)
    return course
