"""The course's main job: run every solution notebook, grade the solutions and the blank lessons."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .environment import kernel_env, resolve_device, versions
from .feedback import table
from .grade import grade_notebook
from .lessons import all_lesson_notebooks


def execute_bare(path: Path, device: str, framework: str, timeout: int = 600) -> float:
    """Run a notebook top to bottom as a learner would ("restart and run all"); return seconds.

    Timed from the kernel's start to the end of the last cell; an error in any cell raises.
    """
    return run_notebook(nbformat.read(path, as_version=4), path.parent, device, framework, timeout)


def run_notebook(nb: nbformat.NotebookNode, folder: Path, device: str, framework: str, timeout: int = 600) -> float:
    """Execute ``nb`` in place (its cells keep their outputs) with ``folder`` as working directory; return seconds."""
    saved = dict(os.environ)
    os.environ.update(kernel_env(device, framework))  # the kernel inherits this process's environment
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    try:
        start = time.perf_counter()
        with client.setup_kernel(stderr=subprocess.DEVNULL):  # ipykernel's start-up warnings are noise here
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)
            return time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_course(device: str = "auto", lessons: list[str] | None = None) -> list[dict]:
    device = resolve_device(device)
    rows = []
    for ln in all_lesson_notebooks():
        if lessons and ln.lesson not in lessons:
            continue
        row = {"lesson": ln.lesson, "framework": ln.framework}
        row["run_s"] = round(execute_bare(ln.solution, device, ln.framework), 1)
        sol = grade_notebook(ln.solution, device=device)
        blank = grade_notebook(ln.release, device=device, run_unanswered=True)  # executed
        row.update(solution=f"{sol.score:g}/{sol.max_score:g}", grade_s=round(sol.seconds, 1),
                   blank=f"{blank.score:g}/{blank.max_score:g}", blank_s=round(blank.seconds, 1),
                   status=sol.status if sol.status != "graded" else blank.status,
                   full_marks=sol.score == sol.max_score > 0, blank_zero=blank.score == 0)
        rows.append(row)
        print(f"  {ln.stem}: solution {row['solution']} in {row['grade_s']} s, blank {row['blank']}", flush=True)
    return rows


COLUMNS = [("lesson", "lesson"), ("framework", "framework"), ("solution", "solution score"), ("run_s", "run s"),
           ("grade_s", "grade s"), ("blank", "blank score"), ("blank_s", "blank s")]


def main(device: str, lessons: list[str] | None, json_path: str | None) -> int:
    rows = run_course(device, lessons)
    print()
    print(table(rows, COLUMNS))
    ok = all(r["full_marks"] and r["blank_zero"] for r in rows) and bool(rows)
    print("\nAll solutions earn full marks and all blank lessons 0." if ok else "\nSOME LESSONS ARE NOT AS EXPECTED.")
    if json_path:
        Path(json_path).write_text(json.dumps({"rows": rows, "versions": versions()}, indent=1) + "\n")
    return 0 if ok else 1
