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
from autograder.runner import KernelClock
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


def test_slow_cells_get_a_note_that_does_not_blame_the_learner():
    start = {"event": wire.START, "kernel_pid": 7}
    report = Report(notebook="x.ipynb", status="graded")
    judge(report, load_exercises("00_setup"), [start, {"event": wire.CELL, "index": 3, "status": "error",
                                                       "ename": wire.CELL_TIMEOUT}, {"event": wire.DONE}],
          {}, limit=60, cell_limit=120)
    note = report.notes[0]
    assert "of 120 s" in note and "very busy" in note and "grade it again" in note


def test_the_kernel_clock_counts_work_not_waiting(monkeypatch):
    """Two threads at work get a quarter of a CPU each on a busy machine: a quarter of the wall time counts. On an
    idle machine the same two threads count all of it, as does a kernel that sleeps."""
    readings = iter([(0.0, 0), (0.5, 2), (2.5, 2), (2.5, 0)])  # (CPU seconds so far, runnable threads)
    monkeypatch.setattr(KernelClock, "_read", lambda self: next(readings))
    clock = KernelClock(kernel_pid=7, whole_namespace=True)
    clock.cpus = 2
    for expected in (0.25, 1.25, 2.25):
        clock._wall -= 1.0  # one second of wall time since the last look
        assert abs(clock.tick() - expected) < 0.01


def test_a_run_that_never_started_the_kernel_is_a_grader_fault():
    start = {"event": wire.START, "kernel_pid": 7}
    assert "did not start" in fault(WorkerRun([], False, "", "ModuleNotFoundError", 1), 100)
    assert "did not start" in fault(WorkerRun([{"event": wire.RUNNER_ERROR, "message": "no kernel"}], False, ""), 100)
    assert "stopped reporting" in fault(WorkerRun([start], True, ""), 100)
    assert fault(WorkerRun([start, {"event": wire.DONE}], False, ""), 100) is None
    assert fault(WorkerRun([start, {"event": wire.DEAD_KERNEL}], False, ""), 100) is None  # the learner's kernel
    assert killed_from_outside(WorkerRun([start, {"event": wire.DEAD_KERNEL, "signal": 9}], False, ""))
    assert not killed_from_outside(WorkerRun([start, {"event": wire.DEAD_KERNEL, "signal": None}], False, ""))


L04_ANSWERS = {4: "multitask_model", 9: "weighted_loss", 13: "uncertainty", 17: "pcgrad"}  # cell index -> answer


def l04_events(*failures) -> list[dict]:
    """A lesson-04 run (answers as in L04_ANSWERS, checks in cells 5, 11, 15 and 19) whose every check failed,
    with ``failures`` (cell events) among its cells."""
    failed = {"ok": False, "error": {"type": "Missing", "message": "`x` is not defined."}}
    events = [{"event": wire.START, "kernel_pid": 7}]
    for index in range(20):
        failure = next((f for f in failures if f["index"] == index), None)
        events.append(failure or {"event": wire.CELL, "index": index, "status": "ok"})
        test = {5: "multitask_model", 11: "weighted_loss", 15: "uncertainty", 19: "pcgrad"}.get(index)
        if test:
            events.append({"event": wire.OBSERVATION, "test_id": f"test_{test}", "payload": failed})
    return events + [{"event": wire.DONE}]


def test_an_error_in_a_given_cell_is_reported_on_the_exercise_whose_code_raised_it():
    graph = {"event": wire.CELL, "index": 18, "status": "error", "ename": "OperatorNotAllowedInGraphError",
             "evalue": "\x1b[0;31mUsing a symbolic `tf.Tensor` as a Python `bool`\x1b[0m", "through": [18, 7, 17]}
    part_a = {"event": wire.CELL, "index": 14, "status": "error", "ename": "TypeError", "evalue": "got 'left'",
              "through": [14, 4]}
    report = Report(notebook="x.ipynb", status="graded")
    judge(report, load_exercises("04_multi_task"), l04_events(graph, part_a), L04_ANSWERS, limit=60)
    messages = {e.id: e.messages for e in report.exercises}
    assert messages["pcgrad"][0] == ("When cell 19 called your code, it raised OperatorNotAllowedInGraphError: "
                                     "Using a symbolic `tf.Tensor` as a Python `bool`")
    assert messages["multitask_model"][0] == "When cell 15 called your code, it raised TypeError: got 'left'"
    assert not any("raised" in m for m in messages["uncertainty"] + messages["weighted_loss"])
    assert not any("\x1b" in m for ms in messages.values() for m in ms)


def test_an_error_in_a_given_cell_outside_the_learners_code_is_reported_between_answer_and_check():
    fit = {"event": wire.CELL, "index": 10, "status": "error", "ename": "ValueError", "evalue": "no loss for 'left'",
           "through": [10, 7]}
    report = Report(notebook="x.ipynb", status="graded")
    judge(report, load_exercises("04_multi_task"), l04_events(fit), L04_ANSWERS, limit=60)
    messages = {e.id: e.messages for e in report.exercises}
    assert messages["weighted_loss"][0] == ("Cell 11, between your answer and this check, raised ValueError: "
                                            "no loss for 'left'")
    assert sum("raised ValueError" in m for ms in messages.values() for m in ms) == 1


def test_a_traceback_names_the_notebook_cells_it_passes_through():
    from autograder.runner import cell_event

    frames = ["\x1b[0;31m----------\x1b[0m", "Cell \x1b[0;32mIn[9]\x1b[0m, line 4\n      2 trainer = PCGradModel(net)",
              "Cell \x1b[0;32mIn[4]\x1b[0m, line 9, in fit_tasks(model)", "File keras/src/backend/trainer.py:57",
              "Cell \x1b[0;32mIn[8]\x1b[0m, line 3, in pcgrad_project(g, other)"]
    reply = {"content": {"status": "error", "ename": "TypeError", "evalue": "\x1b[1mbad\x1b[0m", "traceback": frames}}
    event = cell_event(None, 18, reply, {4: 7, 8: 17, 9: 18})  # execution count -> cell index
    assert (event["ename"], event["evalue"], event["through"]) == ("TypeError", "bad", [18, 7, 17])
    assert "through" not in cell_event(None, 3, {"content": {"status": "error", "ename": "E", "traceback": []}})


def test_a_given_cells_error_after_an_answer_that_raised_is_left_to_the_answers_own():
    answer = {"event": wire.CELL, "index": 9, "status": "error", "ename": "ValueError", "evalue": "bad weights"}
    fit = {"event": wire.CELL, "index": 10, "status": "error", "ename": "NameError",
           "evalue": "name 'compile_weighted' is not defined", "through": [10]}
    report = Report(notebook="x.ipynb", status="graded")
    judge(report, load_exercises("04_multi_task"), l04_events(answer, fit), L04_ANSWERS, limit=60)
    messages = next(e.messages for e in report.exercises if e.id == "weighted_loss")
    assert "Your answer cell raised ValueError: bad weights" in messages
    assert not any("NameError" in m for m in messages)


def test_feedback_pages_show_no_colour_codes():
    from autograder.feedback import html_report, text_report
    from autograder.grade import ExerciseResult

    report = Report(notebook="x.ipynb", status="graded", notes=["\x1b[1mslow\x1b[0m"],
                    exercises=[ExerciseResult("a", "test_a", "A", 0.0, 1.0, False, ["\x1b[0;31mbad <x>\x1b[0m"])])
    page, console = html_report(report, "learner"), text_report(report)
    assert "\x1b" not in page + console and "bad &lt;x&gt;" in page and "bad <x>" in console
