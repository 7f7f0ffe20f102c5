"""A grader fault is never a learner's score, and a busy machine never costs a right answer its points."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from submissions import solved, write

from autograder import grade, worker
from autograder.feedback import html_report
from autograder.grade import GRADER_ERROR_NOTE, grade_notebook
from autograder.lessons import REPO_ROOT, LessonNotebook

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grader_faults")]
L00 = LessonNotebook("00_setup", "pytorch")


@pytest.fixture
def solution(tmp_path):
    return write(solved(L00), tmp_path / "alice" / L00.assignment / f"{L00.stem}.ipynb")


@pytest.fixture
def no_pause(monkeypatch):
    monkeypatch.setattr(grade, "RETRY_PAUSE", 0)


def assert_grader_error(report, needle: str):
    assert report.status == "grader_error" and report.exercises == [] and report.notes == [GRADER_ERROR_NOTE]
    assert report.attempts == grade.ATTEMPTS, "a grader fault is retried before it is reported"
    assert needle in report.grader_log, report.grader_log
    page = html_report(report, "alice")
    assert "Not graded yet" in page and "Score:" not in page and needle not in page  # the log is not the learner's


def test_worker_that_cannot_import_the_grader_is_a_grader_error(monkeypatch, no_pause, solution):
    monkeypatch.setattr(worker, "RUNNER_MODULE", "autograder.no_such_runner")
    assert_grader_error(grade_notebook(solution, device="cpu"), "No module named autograder.no_such_runner")


def test_broken_worker_environment_is_a_grader_error(monkeypatch, no_pause, solution):
    from autograder.environment import kernel_env

    monkeypatch.setattr(grade, "kernel_env", lambda *a: {**kernel_env(*a), "PYTHONHOME": "/nonexistent"})
    assert_grader_error(grade_notebook(solution, device="cpu"), "Fatal Python error")


def test_grader_imported_from_another_checkout_runs_that_checkout(tmp_path, solution):
    """The sandbox mounts the packages the grading process imported, and the worker imports those, even where
    the virtualenv's editable install points at another checkout (here: the repository)."""
    other = tmp_path / "other-checkout"
    for folder in ("autograder", "tlkit", "solutions", "lessons"):
        shutil.copytree(REPO_ROOT / folder, other / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (other / "data").mkdir()
    shutil.copy(REPO_ROOT / "data" / "manifest.json", other / "data")
    code = textwrap.dedent(f"""
        import autograder, json
        from autograder.grade import grade_notebook
        r = grade_notebook({str(solution)!r}, device="cpu")
        print(json.dumps([autograder.__file__, r.status, r.score, r.grader_log]))
    """)
    # Started from the other checkout, no PYTHONPATH: Python imports the grader from the current folder.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TLKIT_DATA": str(REPO_ROOT / "data")}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=other, capture_output=True, text=True,
                         check=True, timeout=600)
    origin, status, score, log = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert origin.startswith(str(other))
    assert (status, score) == ("graded", 2), log


def test_class_run_reports_a_grader_fault_and_retries_it_next_time(monkeypatch, no_pause, solution, capsys):
    from autograder.cli import main

    submitted, out = solution.parents[2], solution.parents[3] / "grades"
    monkeypatch.setattr(worker, "RUNNER_MODULE", "autograder.no_such_runner")
    assert main(["class", str(submitted), "--out", str(out), "--device", "cpu", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "1 notebook(s) could not be graded because of a grader fault" in err
    assert "No module named autograder.no_such_runner" in err  # the worker's stderr, for the instructor
    row = next(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))
    assert (row["status"], row["total"], row.get("load_data", "")) == ("grader_error", "", "")
    feedback = (out / "feedback" / "alice" / f"{L00.stem}.html").read_text()
    assert "Not graded yet" in feedback and "no_such_runner" not in feedback

    monkeypatch.setattr(worker, "RUNNER_MODULE", "autograder.runner")  # the cause is fixed: a plain rerun grades
    assert main(["class", str(submitted), "--out", str(out), "--device", "cpu", "--workers", "1"]) == 0
    row = next(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))
    assert (row["status"], row["total"]) == ("graded", "2")


def test_right_answer_keeps_its_grade_on_a_busy_machine(solution):
    """CPU hogs, each in a session of its own (as other grading jobs are), on every core: the cells take several
    times their idle wall time, more than the per-cell limit here, but not more of the kernel's own time."""
    idle = grade_notebook(solution, device="cpu", cell_timeout=5)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(3 * (os.cpu_count() or 1))]
    try:
        busy = grade_notebook(solution, device="cpu", cell_timeout=5)
    finally:
        for hog in hogs:
            hog.kill()
    assert (idle.status, idle.score) == ("graded", 2), idle.notes
    assert (busy.status, busy.score, busy.notes) == (idle.status, idle.score, idle.notes)
    assert busy.seconds > idle.seconds + 5, "the hogs did not slow the run: the test proves nothing"
