"""Generate the learner notebooks (``lessons/``) from the sources (``solutions/``) with nbgrader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tlkit.paths import REPO_ROOT

from .lessons import LESSONS, all_lesson_notebooks


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

    nbgrader writes to a scratch release folder; only a complete release replaces the one in ``into``, so a
    failing step never leaves a lesson deleted or half written."""
    into = Path(into) if into is not None else LESSONS
    with tempfile.TemporaryDirectory(prefix="tlrelease-") as tmp:
        scratch = Path(tmp) / "release"
        for assignment in assignments or assignment_ids():
            cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--log-level=WARN",
                   f"--CourseDirectory.db_url=sqlite:///{tmp}/gradebook.db",
                   f"--CourseDirectory.release_directory={scratch}"]
            result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=nbgrader_env(), check=False)
            if result.returncode != 0 or not (scratch / assignment).is_dir():
                raise RuntimeError(f"nbgrader generate_assignment {assignment} failed ({into / assignment} is left "
                                   f"as it was):\n{result.stdout}{result.stderr}")
            replace_dir(scratch / assignment, into / assignment)


def replace_dir(new: Path, target: Path) -> None:
    """Put the folder ``new`` where ``target`` is; if that fails, ``target`` is left as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    try:
        shutil.move(str(new), str(target))
    except OSError:
        if old.exists() and not target.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
