"""Grading a whole class: one CSV row per notebook, feedback per learner, idempotent reruns."""

from __future__ import annotations

import csv
import io
import os
import shutil

import nbformat
import pytest
from submissions import answer_sources, solved, write
from wrong_answers import wrong_source

from autograder.classroom import ClassRun, find_submissions
from autograder.lessons import LessonNotebook, all_lesson_notebooks

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("classroom")]
LN = LessonNotebook("00_setup", "pytorch")


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    sub = root / "submitted"

    def put(learner, nb=None, raw=None):
        path = sub / learner / LN.assignment / f"{LN.stem}.ipynb"
        if raw is not None:
            path.parent.mkdir(parents=True)
            path.write_bytes(raw)
        else:
            write(nb, path)

    put("alice", solved(LN))
    put("bob", nbformat.read(LN.release, as_version=4))
    put("carol", solved(LN, {"load_data": wrong_source("00_setup", "load_data", "pytorch")}))
    put("dave", raw=b'{"cells": [')
    put("erin", solved(LN, {"first_model": "import os\nos._exit(1)"}))
    run = ClassRun(root / "grades", device="cpu")
    records = run.run(find_submissions(sub, LN.lesson), workers=2)
    return run, sub, records


def rows(run):
    return {r["learner"]: r for r in csv.DictReader(io.StringIO((run.out / "grades.csv").read_text()))}


def test_mixed_class_gets_the_expected_grades(klass):
    run, _, _ = klass
    table = rows(run)
    assert {k: (v["status"], v["total"], v["load_data"], v["first_model"]) for k, v in table.items()} == {
        "alice": ("graded", "2", "1", "1"),
        "bob": ("graded", "0", "0", "0"),
        "carol": ("graded", "1", "0", "1"),
        "dave": ("invalid_notebook", "0", "0", "0"),
        "erin": ("kernel_died", "1", "1", "0"),
    }
    assert all(v["max"] == "2" and v["torch"] and v["python"] and v["device"] == "cpu" for v in table.values())


def test_feedback_pages_explain_without_leaking(klass):
    run, _, _ = klass
    secrets = [line.strip() for src in answer_sources(LN).values() for line in src.splitlines() if len(line) > 15]
    for learner in ("alice", "bob", "carol", "dave", "erin"):
        page = (run.out / "feedback" / learner / f"{LN.stem}.html").read_text()
        assert "nbgrader_bridge" not in page and "check(" not in page and "BEGIN" not in page
        assert not [s for s in secrets if s in page], learner
    assert "shape of ONE image" in (run.out / "feedback" / "carol" / f"{LN.stem}.html").read_text()
    assert "not valid JSON" in (run.out / "feedback" / "dave" / f"{LN.stem}.html").read_text()


def test_rerun_changes_nothing_and_regrades_only_what_changed(klass):
    run, sub, _ = klass
    reports = sorted((run.out / "reports").rglob("*.json"))
    before = {p: (p.stat().st_mtime_ns, p.read_text()) for p in reports}
    csv_before = (run.out / "grades.csv").read_text()
    run.run(find_submissions(sub, LN.lesson), workers=2)
    assert {p: (p.stat().st_mtime_ns, p.read_text()) for p in reports} == before
    assert (run.out / "grades.csv").read_text() == csv_before

    write(solved(LN), sub / "bob" / LN.assignment / f"{LN.stem}.ipynb")  # bob resubmits, now right
    run.run(find_submissions(sub, LN.lesson), workers=2)
    after = {p: p.stat().st_mtime_ns for p in reports}
    changed = {p.parent.name for p in reports if after[p] != before[p][0]}
    assert changed == {"bob"}
    assert rows(run)["bob"]["total"] == "2" and rows(run)["alice"] == rows(run)["alice"]


def test_flat_folder_of_notebooks(tmp_path):
    for name in ("ann", "ben"):
        shutil.copy(LN.release, tmp_path / f"{name}.ipynb")
    subs = find_submissions(tmp_path)
    assert [s.learner for s in subs] == ["ann", "ben"]
    assert not os.path.exists(tmp_path / "grades")


def test_a_grader_bug_on_one_notebook_is_a_grader_fault_and_the_others_are_graded(tmp_path, monkeypatch):
    from autograder import classroom

    real = classroom.grade_notebook

    def buggy(path, **kwargs):
        if "ben" in str(path):
            raise KeyError("a grader bug")
        return real(path, **kwargs)

    monkeypatch.setattr(classroom, "grade_notebook", buggy)
    sub = tmp_path / "submitted"
    for name in ("ann", "ben"):
        write(solved(LN), sub / name / LN.assignment / f"{LN.stem}.ipynb")
    run = ClassRun(tmp_path / "grades", device="cpu")
    records = {r["learner"]: r for r in run.run(find_submissions(sub), workers=2)}
    assert (records["ann"]["status"], records["ann"]["score"]) == ("graded", 2)
    assert (records["ben"]["status"], records["ben"]["score"]) == ("grader_error", 0)
    assert "KeyError('a grader bug')" in records["ben"]["grader_log"]
    assert "a grader bug" not in (tmp_path / "grades" / "feedback" / "ben" / f"{LN.stem}.html").read_text()
    monkeypatch.setattr(classroom, "grade_notebook", real)
    assert {r["learner"]: r["status"] for r in run.run(find_submissions(sub), workers=2)} == {
        "ann": "graded", "ben": "graded"}  # the fault is regraded on the next run, the finished one kept


def test_a_report_that_cannot_be_written_stops_the_run_with_its_error(tmp_path):
    sub = tmp_path / "submitted"
    write(solved(LN), sub / "ann" / LN.assignment / f"{LN.stem}.ipynb")
    (tmp_path / "grades").mkdir()
    (tmp_path / "grades" / "reports").write_text("a file where the reports folder belongs")
    with pytest.raises(OSError):
        ClassRun(tmp_path / "grades", device="cpu").run(find_submissions(sub), workers=1)


def test_scores_land_in_the_nbgrader_gradebook(klass, tmp_path):
    import subprocess
    import sys

    from nbgrader.api import Gradebook

    from autograder.classroom import export_to_gradebook
    from autograder.release import copy_course, nbgrader_env

    _, _, records = klass
    course = copy_course(tmp_path, [LN])
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", LN.assignment, "--force"], cwd=course,
                   env=nbgrader_env(), check=True, capture_output=True)
    url = f"sqlite:///{course / '.nbgrader' / 'gradebook.db'}"
    assert export_to_gradebook(records, url) == 5
    with Gradebook(url) as gb:
        scores = {s: gb.find_submission(LN.assignment, s).score for s in ("alice", "bob", "carol", "dave", "erin")}
    assert scores == {"alice": 2, "bob": 0, "carol": 1, "dave": 0, "erin": 1}
    # a grader fault is no score: it never writes over what the gradebook holds, nor creates a submission
    alice = next(r for r in records if r["learner"] == "alice")
    zeros = [{**e, "points": 0.0} for e in alice["exercises"]]
    faults = [{**alice, "status": "grader_error", "exercises": zeros},
              {**alice, "learner": "frank", "status": "grader_error"}]
    assert export_to_gradebook(faults, url) == 0
    with Gradebook(url) as gb:
        assert gb.find_submission(LN.assignment, "alice").score == gb.find_submission(LN.assignment, "alice").max_score
        assert "frank" not in {s.id for s in gb.students}


# --- a mixed class of every lesson ---------------------------------------------------------------------------------

def _one_notebook_per_lesson() -> list[LessonNotebook]:
    """Every lesson once, PyTorch and Keras alternating, so one class holds both frameworks."""
    lessons = sorted({ln.lesson for ln in all_lesson_notebooks()})
    return [LessonNotebook(lesson, ("pytorch", "keras")[i % 2]) for i, lesson in enumerate(lessons)]


@pytest.fixture(scope="module")
def every_lesson_class(tmp_path_factory, grade_once):
    """Right, wrong, blank and hostile submissions of every lesson in one class run.

    The right and wrong notebooks are byte for byte those of the lesson tests (test_grading.py): ``grade_once`` runs
    each of them once in the session, for whichever test asks first.
    """
    from wrong_answers import GROUPS

    from autograder.rubric import load_exercises

    root = tmp_path_factory.mktemp("every-lesson")
    expected = {}
    for ln in _one_notebook_per_lesson():
        full = {e.answer_id: e.points for e in load_exercises(ln.lesson)}  # the CSV's columns
        group = GROUPS[ln.lesson][0]
        first_answer = next(iter(answer_sources(ln)))
        subs = {
            "right": (solved(ln), "graded", full),
            "wrong": (solved(ln, {aid: wrong_source(ln.lesson, aid, ln.framework) for aid in group}), "graded",
                      {a: 0.0 if a in group else p for a, p in full.items()}),
            "blank": (nbformat.read(ln.release, as_version=4), "graded", dict.fromkeys(full, 0.0)),
            "hostile": (solved(ln, {first_answer: "import os\nos._exit(1)"}), "kernel_died", dict.fromkeys(full, 0.0)),
        }
        for kind, (nb, status, points) in subs.items():
            learner = f"{kind}-{ln.lesson[:2]}"
            write(nb, root / "submitted" / learner / ln.assignment / f"{ln.stem}.ipynb")
            expected[learner] = (ln.lesson, ln.framework, status, points)
    run = ClassRun(root / "grades", device="cpu")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("autograder.classroom.grade_notebook", grade_once)
        run.run(find_submissions(root / "submitted"), workers=2)
    return run, expected


def test_mixed_class_of_every_lesson_gets_the_expected_grades(every_lesson_class):
    run, expected = every_lesson_class
    table = rows(run)
    assert sorted(table) == sorted(expected)
    for learner, (lesson, framework, status, points) in expected.items():
        row = table[learner]
        got = {t: float(row[t]) for t in points}
        assert (row["lesson"], row["framework"], row["status"], got) == (lesson, framework, status, points), learner
        assert float(row["total"]) == sum(points.values()) and row["device"] == "cpu"
