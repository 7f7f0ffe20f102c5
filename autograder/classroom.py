"""Grade a whole class: every submission, in parallel, into a grades CSV, one JSON and one feedback page each.

    python -m autograder class SUBMITTED [--lesson 01_ml_basics] [--out grades] [--workers N] [--only alice ...]
                                         [--cluster local[:N] | tcp://HOST:8786] [--gradebook DB_URL]

SUBMITTED is nbgrader's ``submitted/`` tree (``<learner>/<lesson>/<notebook>.ipynb``) or a flat folder of
notebooks (the learner is the file name). A report is kept per (learner, notebook) together with the SHA-256
of the file it graded: a rerun regrades only what changed (or everything with ``--force``), and every file
is written atomically, so an interrupted run loses nothing already graded. Notebooks are graded by a local pool of
threads, each starting a sandboxed worker process, or on a Dask cluster (:mod:`autograder.cluster`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .environment import free_gpu_memory_mib
from .feedback import html_report
from .grade import Report, grade_notebook, grader_error, zero_all
from .lessons import LessonNotebook, in_lesson, parse_stem
from .worker import stop_all_workers

GRADER_VERSION = "2"  # bump when grading changes, so stored reports are regraded
GRADER_ERROR = "grader_error"  # the grader failed, not the learner: never a score, never cached
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Submission:
    learner: str
    path: Path

    @property
    def key(self) -> str:
        return f"{_SAFE.sub('_', self.learner)}/{_SAFE.sub('_', self.path.stem)}"


def find_submissions(root: Path, lesson: str | None = None) -> list[Submission]:
    """nbgrader layout ``root/<learner>/<assignment>/*.ipynb``, else a flat ``root/*.ipynb``.

    ``lesson`` is a lesson (``01_ml_basics``: both frameworks' assignments) or one assignment."""
    found = []
    for path in sorted(root.glob("*/*/*.ipynb")):
        if lesson is None or in_lesson(path.parent.name, lesson):
            found.append(Submission(path.parent.parent.name, path))
    if not found:
        found = [Submission(p.stem, p) for p in sorted(root.glob("*.ipynb"))]
    return [s for s in found if ".ipynb_checkpoints" not in s.path.parts]


GPU_MIB_PER_NOTEBOOK = 4096  # a lesson's kernel on CUDA: framework context + models + batches, with room


def default_workers(device: str = "cpu") -> int:
    """One worker per core, within memory (a kernel may take ~3 GB) and, on GPU, within free GPU memory."""
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gb = 8
    workers = max(1, min(os.cpu_count() or 1, int(mem_gb // 3)))
    if device in ("cuda", "auto") and (free := free_gpu_memory_mib()):
        workers = max(1, min(workers, sum(free) // GPU_MIB_PER_NOTEBOOK))
    return workers


def sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def not_graded(path: Path, device: str) -> Report:
    """A report for a submission whose result never came back: its lesson's exercises at 0."""
    report = Report(notebook=str(path), status="graded", device=None if device == "auto" else device)
    zero_all(report, parse_stem(path.stem))
    return report


def fault_report(path: Path, device: str, why: str, log: str = "") -> Report:
    report = not_graded(path, device)
    grader_error(report, why, log)
    return report


class ClassRun:
    def __init__(self, out: Path, device: str = "auto", cell_timeout: int = 120, notebook_timeout: int = 900):
        self.out, self.device = out, device
        self.cell_timeout, self.notebook_timeout = cell_timeout, notebook_timeout

    def report_path(self, sub: Submission) -> Path:
        return self.out / "reports" / f"{sub.key}.json"

    def is_current(self, sub: Submission) -> bool:
        try:
            stored = json.loads(self.report_path(sub).read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return (stored.get("input_sha256") == sha256(sub.path) and stored.get("grader_version") == GRADER_VERSION
                and stored.get("status") != GRADER_ERROR)

    def grade_one(self, sub: Submission) -> dict:
        try:
            report = grade_notebook(sub.path, device=self.device, cell_timeout=self.cell_timeout,
                                    notebook_timeout=self.notebook_timeout)
        except Exception as err:  # noqa: BLE001  (a grader bug: the instructor's to fix, never the learner's score)
            report = fault_report(sub.path, self.device, f"the grader failed: {err!r}",
                                  "".join(traceback.format_exception(err)))
        return self.record(sub, report, sha256(sub.path))

    def record(self, sub: Submission, report: Report, input_sha256: str) -> dict:
        """Write the learner's feedback page, then the report (last: it marks the work done)."""
        record = {"learner": sub.learner, "input_sha256": input_sha256, "grader_version": GRADER_VERSION,
                  **report.to_dict()}
        write_atomic(self.out / "feedback" / f"{sub.key}.html", html_report(report, sub.learner))
        write_atomic(self.report_path(sub), json.dumps(record, indent=1) + "\n")
        return record

    def run(self, subs: list[Submission], workers: int, force: bool = False, cluster: str | None = None) -> list[dict]:
        """Grade what is not current, in a local pool of ``workers`` threads or on a Dask ``cluster``
        (:mod:`autograder.cluster`), then write grades.csv."""
        todo = [s for s in subs if force or not self.is_current(s)]
        if cluster:
            from .cluster import run_on_dask

            run_on_dask(self, todo, cluster, workers)
        else:
            self._run_local(todo, workers)
        records = [json.loads(self.report_path(s).read_text()) for s in subs]
        write_atomic(self.out / "grades.csv", grades_csv(records))
        return records

    def _run_local(self, todo: list[Submission], workers: int) -> None:
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [pool.submit(self.grade_one, s) for s in todo]
            for future in tqdm(as_completed(futures), total=len(futures), desc="grading", unit="notebook"):
                future.result()  # a report that cannot be written (disk full, no permission) stops the run here
        except BaseException:  # Ctrl-C, or that write error: stop the other notebooks too
            pool.shutdown(wait=False, cancel_futures=True)
            stop_all_workers()
            raise
        pool.shutdown()


def export_to_gradebook(records: list[dict], db_url: str) -> int:
    """Put the scores into nbgrader's gradebook (as auto scores), so the formgrader shows them.

    Each notebook is its own assignment, ``<lesson>_<framework>``, which must be in the gradebook already
    (``make lessons`` or ``nbgrader generate_assignment``); learners and submissions are created as needed.
    Returns the number of notebooks written. Several class runs may write to one gradebook at once (PostgreSQL,
    or SQLite on one machine): a write that collides with another run's is rolled back and made again.
    """
    from nbgrader.api import Gradebook, InvalidEntry
    from sqlalchemy.exc import DBAPIError

    written = 0
    with Gradebook(db_url) as gb:
        for r in records:
            if not r.get("lesson") or not r.get("exercises") or r.get("status") == GRADER_ERROR:
                continue
            for attempt in range(GRADEBOOK_ATTEMPTS):
                try:
                    _write_scores(gb, r)
                    break
                except (InvalidEntry, DBAPIError):  # another class run created the same learner first, or a lock
                    gb.db.rollback()
                    if attempt == GRADEBOOK_ATTEMPTS - 1:
                        raise
                    time.sleep(0.1 * (attempt + 1))
            written += 1
    return written


GRADEBOOK_ATTEMPTS = 8  # writes of one notebook's scores that may collide with another run's before giving up


def _write_scores(gb, r: dict) -> None:
    """One notebook's scores, in one transaction (nbgrader commits the learner and the submission it creates)."""
    from nbgrader.api import MissingEntry

    ln = LessonNotebook(r["lesson"], r["framework"])
    gb.update_or_create_student(r["learner"])
    try:
        gb.find_submission(ln.assignment, r["learner"])
    except MissingEntry:
        gb.add_submission(ln.assignment, r["learner"])
    for ex in r["exercises"]:
        try:
            grade = gb.find_grade(ex["test_id"], ln.stem, ln.assignment, r["learner"])
        except MissingEntry:
            continue  # a notebook under another name than the lesson's: not in the gradebook
        grade.auto_score = ex["points"]
    gb.db.commit()


VERSION_COLUMNS = ("python", "numpy", "torch", "keras", "keras_backend", "tensorflow-cpu", "scikit-learn", "nbgrader")


def grades_csv(records: list[dict]) -> str:
    exercise_ids = list(dict.fromkeys(e["id"] for r in records for e in r["exercises"]))
    head = ["learner", "lesson", "framework", "notebook", *exercise_ids, "total", "max", "status", "seconds", "device",
            *VERSION_COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for r in sorted(records, key=lambda r: (r["learner"], r["notebook"])):
        pts = {e["id"]: e["points"] for e in r["exercises"]}
        total = "" if r["status"] == GRADER_ERROR else f"{r['score']:g}"  # not graded: no score at all
        writer.writerow([r["learner"], r["lesson"] or "", r["framework"] or "", Path(r["notebook"]).name,
                         *(f"{pts[e]:g}" if e in pts else "" for e in exercise_ids), total,
                         f"{r['max_score']:g}", r["status"], r["seconds"], r["device"] or "",
                         *(r["versions"].get(v, "") for v in VERSION_COLUMNS)])
    return buf.getvalue()


def main(args) -> int:
    subs = find_submissions(Path(args.submitted), args.lesson)
    if args.only:
        subs = [s for s in subs if s.learner in set(args.only)]
    if not subs:
        print(f"no notebooks found under {args.submitted}")
        return 1
    run = ClassRun(Path(args.out), args.device, args.cell_timeout, args.timeout)
    records = run.run(subs, args.workers or default_workers(args.device), force=args.force,
                      cluster=getattr(args, "cluster", None))
    by_status: dict[str, int] = {}
    for r in records:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    print(f"{len(records)} notebooks: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    print(f"grades: {run.out / 'grades.csv'}; feedback: {run.out / 'feedback'}")
    if args.gradebook:
        print(f"{export_to_gradebook(records, args.gradebook)} notebooks written to the gradebook {args.gradebook}")
    faults = [r for r in records if r["status"] == GRADER_ERROR]
    for r in faults:
        log = r.get("grader_log", "").strip().splitlines()
        print(f"\n{GRADER_ERROR}: {r['learner']} {Path(r['notebook']).name}\n  " + "\n  ".join(log[-15:]),
              file=sys.stderr)
    if faults:
        print(f"\n{len(faults)} notebook(s) could not be graded because of a grader fault (not scored, not in the "
              "gradebook); fix the cause shown above and run the same command again to grade them.", file=sys.stderr)
        return 2
    return 0
