"""Class grading on Dask workers against the built-in pool, and a scale simulation (issue #25).

    .venv/bin/python benchmarks/cluster_bench.py [--size 30] [--repeats 2] [--workers 2]
                                                 [--scale 30 300] [--skip-compare] [--skip-scale] [--out FILE]

1. Comparison: a class of ``--size`` lesson-01 notebooks (class_bench.py's mix: right answers, each wrong group,
   every 5th learner blank), graded by ``python -m autograder class`` with the built-in pool of W workers and
   with ``--cluster local:W``, interleaved ``--repeats`` times; each run is the whole command, LocalCluster
   start included. The instructor's process (which holds a LocalCluster's scheduler) is sampled for its peak
   resident memory; the Dask workers and the kernels are processes of their own and are not counted.
   Budgets: Dask within 15 % of the pool's time, instructor + scheduler under 500 MB. Each run records the
   machine's mean 1-minute load average while it ran: on a machine shared with other work, compare runs that
   saw the same load.
2. Scale: lesson-00 classes of each ``--scale`` size (same mix) through ``--cluster local:W`` into a PostgreSQL
   gradebook (pgserver); seconds per submission at each size, and whether every submission has its report,
   its grades.csv row and its gradebook row with no grader fault. Budget: seconds per submission within 20 %
   from the smallest to the largest class, read from ``grades.csv`` (each submission's own grading time in its
   worker); the whole command's seconds over the class size are recorded beside it, and they also carry the
   command's fixed start-up (LocalCluster, workers importing the grader), which a small class amortises less.

Writes benchmarks/cluster_results.json (every run's figures and the budgets' verdicts).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]

from class_bench import make_class

from autograder.environment import machine, versions
from autograder.lessons import LessonNotebook
from autograder.release import copy_course, nbgrader_env


def graded_class(submitted: Path, lesson: str, out: Path, *extra: str) -> dict:
    """One ``autograder class`` command: wall seconds and the peak resident memory of its own process."""
    cmd = [sys.executable, "-m", "autograder", "class", str(submitted), "--lesson", lesson, "--out", str(out),
           "--device", "cpu", "--force", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, load, done = [0], [], threading.Event()

    def sample():
        watched = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                peak[0] = max(peak[0], watched.memory_info().rss)
            except psutil.Error:
                return
            load.append(os.getloadavg()[0])
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-3000:]}")
    # the machine's 1-minute load average during the run: other work on a shared machine slows a run down
    return {"seconds": round(seconds, 1), "peak_mb": round(peak[0] / 2**20, 1),
            "load_average": round(statistics.mean(load), 2) if load else None}


def seconds_per_row(out: Path) -> list[float]:
    with (out / "grades.csv").open() as f:
        return [float(row["seconds"]) for row in csv.DictReader(f)]


def grades_without_seconds(out: Path) -> list[list[str]]:
    with (out / "grades.csv").open() as f:
        rows = list(csv.reader(f))
    i = rows[0].index("seconds")
    return [r[:i] + r[i + 1:] for r in rows]


def compare(root: Path, size: int, repeats: int, workers: int) -> dict:
    ln = LessonNotebook("01_ml_basics", "pytorch")
    submitted = make_class(root / "compare", ln, size)
    pool, dask_runs = [], []
    for i in range(repeats):  # alternate which goes first, so that a slow spell hits both
        order = [("pool", ()), ("dask", ("--cluster", f"local:{workers}"))]
        for name, extra in order if i % 2 == 0 else order[::-1]:
            out = root / f"compare-{name}-{i}"
            run = graded_class(submitted, ln.assignment, out, "--workers", str(workers), *extra)
            (pool if name == "pool" else dask_runs).append(run)
            print(name, i, run, flush=True)
    same = len({json.dumps(grades_without_seconds(p)) for p in root.glob("compare-*-*")}) == 1
    pool_s = statistics.median(r["seconds"] for r in pool)
    dask_s = statistics.median(r["seconds"] for r in dask_runs)
    peak = max(r["peak_mb"] for r in dask_runs)
    return {"lesson": ln.stem, "class_size": size, "workers": workers, "repeats": repeats,
            "blank_submissions": size // 5,
            "seconds_pool_every_run": [r["seconds"] for r in pool],
            "seconds_dask_every_run": [r["seconds"] for r in dask_runs],
            "load_average_pool_every_run": [r["load_average"] for r in pool],
            "load_average_dask_every_run": [r["load_average"] for r in dask_runs],
            "seconds_pool": pool_s, "seconds_dask": dask_s,
            "dask_over_pool": round(dask_s / pool_s, 3), "within_15_percent": dask_s <= 1.15 * pool_s,
            "instructor_peak_mb_pool_every_run": [r["peak_mb"] for r in pool],
            "instructor_and_scheduler_peak_mb_dask_every_run": [r["peak_mb"] for r in dask_runs],
            "instructor_and_scheduler_peak_mb": peak, "under_500_mb": peak < 500,
            "same_grades": same}


def gradebook_rows(url: str, assignment: str) -> int:
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        return len(gb.find_assignment(assignment).submissions)


def scale(root: Path, sizes: list[int], workers: int) -> dict:
    import pgserver

    ln = LessonNotebook("00_setup", "pytorch")
    server = pgserver.get_server(root / "pg", cleanup_mode="stop")
    runs = []
    try:
        for n in sizes:
            server.psql(f"CREATE DATABASE scale_{n};")
            url = server.get_uri(f"scale_{n}")
            course = copy_course(root / f"course-{n}", [ln])
            subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ln.assignment, "--force",
                            f"--db={url}"], cwd=course, env=nbgrader_env(), check=True, capture_output=True)
            submitted = make_class(root / f"scale-{n}", ln, n)
            out = root / f"scale-{n}-grades"
            run = graded_class(submitted, ln.assignment, out, "--cluster", f"local:{workers}", "--gradebook", url)
            reports = [json.loads(p.read_text()) for p in (out / "reports").rglob("*.json")]
            rows = grades_without_seconds(out)[1:]
            run.update({"submissions": n, "wall_seconds_per_submission": round(run["seconds"] / n, 3),
                        "grading_seconds_median": round(statistics.median(seconds_per_row(out)), 3),
                        "reports": len(reports), "grades_csv_rows": len(rows),
                        "grader_errors": sum(r["status"] == "grader_error" for r in reports),
                        "gradebook_rows": gradebook_rows(url, ln.assignment)})
            run["nothing_lost"] = (run["reports"] == run["grades_csv_rows"] == run["gradebook_rows"] == n
                                   and run["grader_errors"] == 0)
            runs.append(run)
            print("scale", run, flush=True)
    finally:
        server.cleanup()
    per = [r["grading_seconds_median"] for r in runs]
    wall = [r["wall_seconds_per_submission"] for r in runs]
    return {"lesson": ln.stem, "workers": workers, "blank_every": 5, "gradebook": "postgresql (pgserver)",
            "runs": runs, "largest_over_smallest_grading_seconds": round(per[-1] / per[0], 3),
            "largest_over_smallest_wall_seconds_per_submission": round(wall[-1] / wall[0], 3),
            "flat_within_20_percent": abs(per[-1] / per[0] - 1) <= 0.2,
            "nothing_lost": all(r["nothing_lost"] for r in runs)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scale", type=int, nargs="+", default=[30, 300])
    p.add_argument("--skip-compare", action="store_true")
    p.add_argument("--skip-scale", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).with_name("cluster_results.json")))
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result = {"measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "machine": machine(),
              "command": " ".join(["benchmarks/cluster_bench.py", *sys.argv[1:]])}
    with tempfile.TemporaryDirectory(prefix="tlcluster-") as tmp:
        if not args.skip_compare:
            result["compare"] = compare(Path(tmp), args.size, args.repeats, args.workers)
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")  # kept should the scale run stop
        if not args.skip_scale:
            result["scale"] = scale(Path(tmp), sorted(args.scale), args.workers)
    result["versions"] = versions()
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
