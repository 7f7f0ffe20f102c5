"""The grader's logic on tiny inputs, without a kernel: assembling, judging events, telling grader faults apart."""

from __future__ import annotations

import copy

import nbformat
from submissions import solved

from autograder import protocol as wire
from autograder.assemble import METADATA_LOST, METADATA_UNRECOVERABLE, assemble, nbgrader_meta, reattach_metadata
from autograder.grade import Report, fault, judge, killed_from_outside
from autograder.lessons import LessonNotebook
from autograder.rubric import judge_payload, load_exercises
from autograder.worker import WorkerRun

L00 = LessonNotebook("00_setup", "pytorch")
SOURCE = nbformat.read(L00.solution, as_version=4)
RELEASE = nbformat.read(L00.release, as_version=4)


def answer_cells(nb, gid):
    return [c for c in nb.cells if nbgrader_meta(c).get("grade_id") == gid]


def test_every_copy_of_an_answer_runs_but_a_locked_cell_only_once():
    nb = solved(L00)
    answer, locked = answer_cells(nb, "first_model")[0], next(c for c in nb.cells if nbgrader_meta(c).get("locked"))
    at = nb.cells.index(answer) + 1  # before the last check: cells after it are never run
    nb.cells[at:at] = [copy.deepcopy(answer), copy.deepcopy(locked)]
    runnable, answers = assemble(nb, SOURCE, L00)
    assert len(answer_cells(runnable, "first_model")) == 2
    assert len(answer_cells(runnable, nbgrader_meta(locked)["grade_id"])) == 1
    assert sorted(answers.values()).count("first_model") == 2


def test_stripped_notebook_gets_its_answers_back_from_the_release():
    nb = solved(L00)
    expected = {gid: answer_cells(nb, gid)[0].source for gid in ("load_data", "first_model")}
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    restored, note = reattach_metadata(nb, RELEASE)
    assert note == METADATA_LOST
    runnable, answers = assemble(restored, SOURCE, L00)
    assert {gid: runnable.cells[i].source for i, gid in answers.items()} == expected
    assert reattach_metadata(solved(L00), RELEASE) == (solved(L00), None)  # metadata present: untouched
    unrelated = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    assert reattach_metadata(unrelated, RELEASE)[1] == METADATA_UNRECOVERABLE


def test_error_text_reaches_the_learner_without_colour_codes():
    ex = load_exercises("00_setup")[0]
    payload = {"ok": False, "error": {"type": "ValueError", "message": "\x1b[1;31mshapes differ\x1b[0m"}}
    assert judge_payload(ex, payload) == ["Your code raised ValueError: shapes differ"]


def judged(events) -> Report:
    report = Report(notebook="x.ipynb", status="graded")
    judge(report, load_exercises("00_setup"), events, {}, limit=60)
    return report


def test_endings_give_their_status():
    start = {"event": wire.START, "kernel_pid": 7}
    assert judged([start, {"event": wire.DONE}]).status == "graded"
    assert judged([start, {"event": wire.NOTEBOOK_TIMEOUT, "seconds": 60}]).status == "timeout"
    assert judged([start, {"event": wire.DEAD_KERNEL, "message": "died"}]).status == "kernel_died"
    assert judged([start]).status == "kernel_died"  # the worker vanished mid-run
    slow = judged([start, {"event": wire.CELL, "index": 3, "status": "error", "ename": wire.CELL_TIMEOUT},
                   {"event": wire.DONE}])
    assert "per-cell time limit" in slow.notes[0] and "cell 4" in slow.notes[0]


def test_a_run_that_never_started_the_kernel_is_a_grader_fault():
    start = {"event": wire.START, "kernel_pid": 7}
    assert "did not start" in fault(WorkerRun([], False, "", "ModuleNotFoundError", 1), 100)
    assert "did not start" in fault(WorkerRun([{"event": wire.RUNNER_ERROR, "message": "no kernel"}], False, ""), 100)
    assert "stopped reporting" in fault(WorkerRun([start], True, ""), 100)
    assert fault(WorkerRun([start, {"event": wire.DONE}], False, ""), 100) is None
    assert fault(WorkerRun([start, {"event": wire.DEAD_KERNEL}], False, ""), 100) is None  # the learner's kernel
    assert killed_from_outside(WorkerRun([start, {"event": wire.DEAD_KERNEL, "signal": 9}], False, ""))
    assert not killed_from_outside(WorkerRun([start, {"event": wire.DEAD_KERNEL, "signal": None}], False, ""))
