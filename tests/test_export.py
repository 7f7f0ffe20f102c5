"""`python -m autograder export`: a class's reports as a roster CSV or a Canvas gradebook import (no kernel runs)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from autograder.classroom import GRADER_VERSION, ClassRun, Submission, write_atomic
from autograder.cli import main
from autograder.grade import Report
from autograder.rubric import load_exercises

A, B = "01_ml_basics", "02_feature_extraction"
POINTS = {A: 10.0, B: 9.0}


def report(out: Path, learner: str, stem: str, status: str, score: float = 0.0, lesson: str | None = None,
           framework: str | None = None, max_score: float | None = None) -> None:
    """A report where and as ClassRun.grade_one writes it."""
    sub = Submission(learner, Path("submitted") / learner / stem / f"{stem}.ipynb")
    rep = Report(notebook=str(sub.path), status=status, lesson=lesson, framework=framework, score=score,
                 max_score=POINTS.get(lesson, 0.0) if max_score is None else max_score)
    record = {"learner": learner, "input_sha256": "0" * 64, "grader_version": GRADER_VERSION, **rep.to_dict()}
    write_atomic(ClassRun(out).report_path(sub), json.dumps(record, indent=1) + "\n")


def graded(out, learner, lesson, framework, score, status="graded"):
    report(out, learner, f"{lesson}_{framework}", status, score, lesson, framework)


@pytest.fixture
def klass(tmp_path):
    out = tmp_path / "grades"
    graded(out, "alice", A, "pytorch", 8)  # one framework per lesson, a different one each
    graded(out, "alice", B, "keras", 6.5, status="timeout")
    graded(out, "bob", A, "pytorch", 4)  # both frameworks of A: keras scores higher
    graded(out, "bob", A, "keras", 7)
    graded(out, "bob", B, "pytorch", 5)  # both frameworks of B, a tie: PyTorch's
    graded(out, "bob", B, "keras", 5)
    report(out, "carol", f"{A}_keras", "grader_error", 0, A, "keras")  # and no B at all
    report(out, "dave", "homework", "unknown_lesson")  # no lesson: skipped
    graded(out, "dave", B, "keras", 3)
    report(out, "dave", f"{B}_pytorch", "grader_error", 0, B, "pytorch")  # his keras score still counts
    (out / "grades.csv").write_text("learner,lesson\ndave,02_feature_extraction\n")  # the last run's only
    return out


def export(out: Path, fmt: str, tmp_path: Path, capsys) -> tuple[list[list[str]], str]:
    target = tmp_path / f"export.{fmt}.csv"
    assert main(["export", str(out), "--format", fmt, "--out", str(target)]) == 0
    return list(csv.reader(io.StringIO(target.read_text(encoding="utf-8")))), capsys.readouterr().err


def test_roster_csv(klass, tmp_path, capsys):
    rows, err = export(klass, "csv", tmp_path, capsys)
    assert rows[0] == ["learner", A, f"{A} framework", B, f"{B} framework", "total", "max"]
    assert rows[1:] == [
        ["alice", "8", "pytorch", "6.5", "keras", "14.5", "19"],
        ["bob", "7", "keras", "5", "pytorch", "12", "19"],
        ["carol", "", "", "", "", "", "19"],  # a grader error is no 0: its cell and the total wait for a regrade
        ["dave", "", "", "3", "keras", "3", "19"],
    ]
    warnings = err.splitlines()
    assert any("carol" in w and A in w and "grader_error" in w and "left empty" in w for w in warnings), err
    assert any("dave" in w and B in w and "grader_error" in w and "exported its keras score 3" in w
               for w in warnings), err
    assert any("dave" in w and "homework.ipynb" in w and "skipped" in w for w in warnings), err
    assert any("bob" in w and A in w and "exported keras's 7" in w for w in warnings), err
    assert not any("alice" in w for w in warnings), err


def test_canvas_csv(klass, tmp_path, capsys):
    rows, err = export(klass, "canvas", tmp_path, capsys)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A, B]
    assert rows[1] == ["Points Possible", "", "", "", "", "10", "9"]
    assert rows[2:] == [
        ["alice", "", "", "alice", "", "8", "6.5"],
        ["bob", "", "", "bob", "", "7", "5"],
        ["carol", "", "", "carol", "", "", ""],
        ["dave", "", "", "dave", "", "", "3"],
    ]
    assert "carol" in err and "grader_error" in err


def test_stdout_is_the_default(klass, capsys):
    assert main(["export", str(klass), "--format", "canvas"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[1][0] == "Points Possible" and [r[3] for r in rows[2:]] == ["alice", "bob", "carol", "dave"]


def test_grader_error_without_lesson_keeps_its_column(tmp_path, capsys):
    """A grader that failed before it read the notebook (no lesson, no max_score): the file name gives the lesson,
    the rubric its points, and the learner's cell stays empty."""
    out = tmp_path / "grades"
    report(out, "erin", "00_setup_pytorch", "grader_error")
    graded(out, "frank", A, "pytorch", 10)
    rows, err = export(out, "csv", tmp_path, capsys)
    setup_points = sum(e.points for e in load_exercises("00_setup"))
    assert setup_points > 0
    assert rows[0][1:3] == ["00_setup", "00_setup framework"]
    assert rows[1] == ["erin", "", "", "", "", "", f"{setup_points + 10:g}"]
    assert rows[2] == ["frank", "", "", "10", "pytorch", "10", f"{setup_points + 10:g}"]
    assert any("erin" in w and "00_setup" in w and "grader_error" in w for w in err.splitlines()), err


@pytest.mark.parametrize("make_reports_dir", [False, True])
def test_empty_folder_exits_1(tmp_path, capsys, make_reports_dir):
    if make_reports_dir:
        (tmp_path / "reports").mkdir()
    target = tmp_path / "out.csv"
    assert main(["export", str(tmp_path), "--format", "csv", "--out", str(target)]) == 1
    captured = capsys.readouterr()
    assert "no reports under" in captured.err and str(tmp_path) in captured.err
    assert not target.exists() and captured.out == ""


def test_grader_error_of_no_known_lesson_blanks_only_the_total(tmp_path, capsys):
    out = tmp_path / "grades"
    graded(out, "gina", A, "keras", 9)
    report(out, "gina", "my_notebook", "grader_error")  # neither a lesson in the report nor in the file name
    rows, err = export(out, "csv", tmp_path, capsys)
    assert rows == [["learner", A, f"{A} framework", "total", "max"], ["gina", "9", "keras", "", "10"]]
    assert any("gina" in w and "my_notebook.ipynb" in w and "grader_error" in w for w in err.splitlines()), err
