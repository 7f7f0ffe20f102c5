"""Class-grading benchmark: N submissions of one lesson, graded with 1 and with W workers, and by nbgrader.

    .venv/bin/python benchmarks/class_bench.py [--size 30] [--workers 2] [--lesson 01_ml_basics] [--repeats 3]
                                               [--blank-every 5] [--skip-nbgrader]

Writes benchmarks/class_results.json: wall seconds of every run, the speed-ups, and the peak memory of the
grading process itself (the kernels run in their own processes). Runs minutes apart on the same machine differ
by up to 10 %, so the W-worker class run and nbgrader are each repeated, interleaved so that a slow spell hits
both, and the speed-ups are computed from the medians. Every 5th learner hands in the blank lesson, which the
grader does not run (nbgrader does); ``--blank-every 0`` measures a class where everyone answered.
Budgets (issue #5): 2 workers >= 1.8x faster than 1 on 2 cores, >= 3x faster than sequential
`nbgrader autograde`, grading process <= 500 MB.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from submissions import solved, write
from wrong_answers import GROUPS, wrong_source

from autograder.classroom import ClassRun, find_submissions
from autograder.environment import machine, versions
from autograder.lessons import LessonNotebook
from autograder.release import copy_course, nbgrader_env


def make_class(root: Path, ln: LessonNotebook, size: int, blank_every: int = 5) -> Path:
    """A realistic mix: right answers, each wrong group, cycled, and every ``blank_every``-th one blank (0: none)."""
    variants = [solved(ln)] + [solved(ln, {a: wrong_source(ln.lesson, a, ln.framework) for a in g})
                               for g in GROUPS[ln.lesson]]
    submitted = root / "submitted"
    for i in range(size):
        target = submitted / f"learner{i:03d}" / ln.assignment / f"{ln.stem}.ipynb"
        if blank_every and i % blank_every == blank_every - 1:
            target.parent.mkdir(parents=True)
            shutil.copy(ln.release, target)
        else:
            write(variants[i % len(variants)], target)
    return submitted


def timed_class_run(submitted: Path, lesson: str, workers: int, out: Path) -> float:
    start = time.perf_counter()
    ClassRun(out, device="cpu").run(find_submissions(submitted, lesson), workers=workers, force=True)
    return time.perf_counter() - start


NBGRADER = [sys.executable, "-m", "nbgrader"]


def nbgrader_course(root: Path, submitted: Path, ln: LessonNotebook) -> Path:
    course = copy_course(root / "nbgrader", [ln])
    assignment = ln.assignment
    shutil.copytree(submitted, course / "submitted")
    subprocess.run([*NBGRADER, "generate_assignment", assignment, "--force"], cwd=course, env=nbgrader_env(),
                   check=True, capture_output=True)
    return course


def timed_nbgrader(course: Path, assignment: str) -> float:
    start = time.perf_counter()
    subprocess.run([*NBGRADER, "autograde", assignment, "--force"], cwd=course, env=nbgrader_env(), check=True,
                   capture_output=True)
    return time.perf_counter() - start


def timings(one: float, many: list[float], nbg: list[float], workers: int) -> dict:
    """Every run's seconds, and the speed-ups from the medians (nbgrader's None when it was skipped)."""
    many_s = statistics.median(many)
    nbg_s = statistics.median(nbg) if nbg else None
    return {"seconds_1_worker": round(one, 1),
            f"seconds_{workers}_workers": round(many_s, 1),
            f"seconds_{workers}_workers_every_run": [round(t, 1) for t in many],
            "speedup_workers": round(one / many_s, 2),
            "seconds_nbgrader_autograde": nbg_s and round(nbg_s, 1),
            "seconds_nbgrader_autograde_every_run": [round(t, 1) for t in nbg],
            "speedup_vs_nbgrader": nbg_s and round(nbg_s / many_s, 2),
            "speedup_vs_nbgrader_every_run": [round(b / a, 2) for a, b in zip(many, nbg)]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=30)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--lesson", default="01_ml_basics")
    p.add_argument("--framework", default="pytorch")
    p.add_argument("--repeats", type=int, default=3, help="runs of the W-worker class and of nbgrader")
    p.add_argument("--blank-every", type=int, default=5, help="every Nth learner hands in the blank lesson; 0: none")
    p.add_argument("--skip-nbgrader", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).with_name("class_results.json")))
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ln = LessonNotebook(args.lesson, args.framework)
    with tempfile.TemporaryDirectory(prefix="tlclass-") as tmp:
        root = Path(tmp)
        submitted = make_class(root, ln, args.size, args.blank_every)
        one = timed_class_run(submitted, ln.assignment, 1, root / "grades1")
        course = None if args.skip_nbgrader else nbgrader_course(root, submitted, ln)
        many, nbg = [], []
        for i in range(args.repeats):
            many.append(timed_class_run(submitted, ln.assignment, args.workers, root / f"gradesN{i}"))
            if course:
                nbg.append(timed_nbgrader(course, ln.assignment))
        first_rows = {(out / "grades.csv").read_text().split("\n")[0] for out in root.glob("grades*")}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "machine": machine(), "lesson": ln.stem, "class_size": args.size,
              "blank_submissions": args.blank_every and args.size // args.blank_every, "repeats": args.repeats,
              **timings(one, many, nbg, args.workers),
              "same_csv_columns": len(first_rows) == 1,
              "grading_process_peak_mb": round(peak_mb, 1), "versions": versions()}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
