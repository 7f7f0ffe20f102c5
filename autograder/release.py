"""Generate the learner notebooks (``lessons/``) from the sources (``solutions/``) with nbgrader."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tlkit.paths import REPO_ROOT

from .lessons import all_lesson_notebooks


def nbgrader_env() -> dict[str, str]:
    """nbgrader runs `alembic` by name: put this interpreter's bin/ first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def lesson_ids() -> list[str]:
    return sorted({ln.lesson for ln in all_lesson_notebooks()})


def generate(into: Path | None = None, lessons: list[str] | None = None) -> None:
    """Run ``nbgrader generate_assignment`` for each lesson, writing to ``into`` (default: lessons/)."""
    with tempfile.TemporaryDirectory(prefix="tlrelease-") as tmp:
        for lesson in lessons or lesson_ids():
            cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", lesson, "--force", "--log-level=WARN",
                   f"--CourseDirectory.db_url=sqlite:///{tmp}/gradebook.db"]
            if into is not None:
                cmd.append(f"--CourseDirectory.release_directory={into}")
            result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=nbgrader_env(), check=False)
            if result.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {lesson} failed:\n{result.stdout}{result.stderr}")
