"""Grade one learner notebook: prepare, run in a worker process, judge outside it."""

from __future__ import annotations

import functools
import json
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import protocol as wire
from .assemble import assemble, reattach_metadata
from .environment import kernel_env, resolve_device, versions
from .lessons import LessonNotebook, identify, parse_stem
from .rubric import NOT_ANSWERED, judge_payload, load_exercises
from .worker import WorkerRun, run_worker, wall_cap

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


@dataclass
class ExerciseResult:
    id: str  # the answer cell's grade_id
    test_id: str  # the nbgrader test cell it stands for
    title: str
    points: float
    max_points: float
    passed: bool
    messages: list[str] = field(default_factory=list)


@dataclass
class Report:
    notebook: str
    status: str  # graded | timeout | kernel_died | invalid_notebook | unknown_lesson | grader_error
    lesson: str | None = None
    framework: str | None = None
    score: float = 0.0
    max_score: float = 0.0
    exercises: list[ExerciseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    grader_log: str = ""  # why the grader failed (status grader_error): for the instructor, never in feedback
    attempts: int = 1
    seconds: float = 0.0
    device: str | None = None
    isolation: str | None = None
    versions: dict = field(default_factory=versions)

    def to_dict(self) -> dict:
        return asdict(self)


class Rejected(Exception):
    """The submission cannot be run at all; the message is for the learner."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise Rejected("invalid_notebook", f"The file could not be read ({err.strerror}).") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise Rejected("invalid_notebook", f"The file is {len(raw) // 2**20} MiB; notebooks over "
                                           f"{MAX_NOTEBOOK_BYTES // 2**20} MiB are not graded. "
                                           "Clear outputs and resubmit.")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise Rejected("invalid_notebook", "The file is not UTF-8 text, so it is not a Jupyter notebook.") from None
    except json.JSONDecodeError as err:
        raise Rejected("invalid_notebook", f"The file is not valid JSON (line {err.lineno}: {err.msg}); "
                                           "it may be truncated or edited by hand.") from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise Rejected("invalid_notebook", "The file is JSON but not a Jupyter notebook (no cells).")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001  (nbformat raises many types for malformed notebooks)
        raise Rejected("invalid_notebook", f"The notebook is malformed: {str(err).splitlines()[0][:300]}") from None
    return nb


@functools.cache
def _release_code(ln: LessonNotebook) -> tuple[str, ...] | None:
    """The code the grader would run for the lesson as released, untouched (None without a release)."""
    if not ln.release.exists():
        return None
    runnable, _ = assemble(nbformat.read(ln.release, as_version=4), nbformat.read(ln.solution, as_version=4), ln)
    return _code(runnable)


def _code(nb) -> tuple[str, ...]:
    return tuple(c.source for c in nb.cells if c.cell_type == "code")


def grade_notebook(path: str | Path, device: str = "auto", cell_timeout: int = 120, notebook_timeout: int = 900,
                   lesson: LessonNotebook | None = None, run_unanswered: bool = False) -> Report:
    """Grade one notebook. One whose runnable code is the released lesson's, untouched (nothing answered, no cell
    added), is not run: every exercise is "not answered" at 0, as a full run gives (``run_unanswered`` forces one)."""
    path = Path(path)
    start = time.perf_counter()
    report = Report(notebook=str(path), status="graded")
    try:
        report.device = resolve_device(device)
        nb = read_notebook(path)
        ln = lesson or identify(nb.metadata, path.name)
        if ln is None or not ln.solution.exists():
            raise Rejected("unknown_lesson", f"This notebook belongs to no lesson of the course "
                                             f"({'unrecognised name ' + path.name if ln is None else ln.stem}).")
        report.lesson, report.framework = ln.lesson, ln.framework
        exercises = load_exercises(ln.lesson)
        report.max_score = sum(e.points for e in exercises)
        if ln.release.exists():
            nb, note = reattach_metadata(nb, nbformat.read(ln.release, as_version=4))
            report.notes += [note] if note else []
        runnable, answers = assemble(nb, nbformat.read(ln.solution, as_version=4), ln)
        env = kernel_env(report.device, ln.framework)
        if ln.framework == "keras":
            report.versions["keras_backend"] = env.get("KERAS_BACKEND", "tensorflow")
        if not run_unanswered and _code(runnable) == _release_code(ln):
            unanswered(report, exercises)
            report.seconds = round(time.perf_counter() - start, 2)
            return report
        run = run_with_retries(report, runnable, env, cell_timeout, notebook_timeout)
        report.isolation = run.isolation
        judge(report, exercises, run.events, answers, notebook_timeout, cell_timeout)
    except Rejected as err:
        report.status = err.status
        report.notes.append(str(err))
        zero_all(report, lesson or parse_stem(path.stem))
    except (GraderFault, RuntimeError) as err:  # e.g. --device cuda without a GPU: the instructor's problem
        grader_error(report, str(err), getattr(err, "log", ""))
    report.seconds = round(time.perf_counter() - start, 2)
    return report


ATTEMPTS = 3  # runs of a notebook, in all, before a grader fault is reported
RETRY_PAUSE = 5  # seconds between two attempts: a busy machine may have calmed down


class GraderFault(Exception):
    """The grader, not the learner, failed; the message and ``log`` (the worker's stderr) are for the instructor."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def fault(run: WorkerRun, cap: int) -> str | None:
    """Why a worker run says nothing about the learner's code, or None when it does."""
    if run.first(wire.START) is None:
        end = run.ending or {}
        return "the worker or its kernel did not start" + (f": {end['message']}" if end.get("message") else "") + \
            (f" (worker exit code {run.exit_code})" if run.exit_code else "")
    if run.wall_capped and run.ending is None:
        return (f"the worker stopped reporting and was ended after {cap} s of wall time (the machine was too busy, "
                "or the worker hung)")
    return None


def killed_from_outside(run: WorkerRun) -> bool:
    """The kernel died of SIGKILL: perhaps the machine's out-of-memory killer, so it is run once more before the
    learner is told their kernel died."""
    end = run.ending or {}
    return end.get("event") == wire.DEAD_KERNEL and end.get("signal") == signal.SIGKILL


def run_with_retries(report: Report, runnable, env: dict, cell_timeout: int, notebook_timeout: int) -> WorkerRun:
    """Run the notebook; run it again after a grader fault (up to ATTEMPTS runs) or a kernel killed from outside
    (once). Raises GraderFault when every attempt failed on the grader's side."""
    for attempt in range(1, ATTEMPTS + 1):
        report.attempts = attempt
        with tempfile.TemporaryDirectory(prefix="tlgrade-") as tmp:
            run = run_worker(runnable, Path(tmp), env, report.device, cell_timeout, notebook_timeout)
        why = fault(run, wall_cap(notebook_timeout))
        if why is None and not (killed_from_outside(run) and attempt == 1):
            return run
        if attempt < ATTEMPTS:
            time.sleep(RETRY_PAUSE)
    if why is None:
        return run
    raise GraderFault(f"{why}; tried {ATTEMPTS} times", run.stderr)


GRADER_ERROR_NOTE = ("This notebook could not be graded because of a problem on the grader's side, not in your "
                     "code. Your instructor can see why; it will be graded again.")


def grader_error(report: Report, why: str, log: str = "") -> None:
    """Not a learner's score: no points, no exercises, a note for the learner and the reason for the instructor."""
    report.status = "grader_error"
    report.score, report.exercises = 0.0, []
    report.notes = [GRADER_ERROR_NOTE]
    report.grader_log = f"{why}\n{log}".strip()


def zero_all(report: Report, ln: LessonNotebook | None) -> None:
    """A submission that could not run still lists its lesson's exercises, each at 0."""
    if report.exercises or ln is None or not ln.solution.exists():
        return
    report.lesson, report.framework = ln.lesson, ln.framework
    exercises = load_exercises(ln.lesson)
    report.max_score = sum(e.points for e in exercises)
    report.exercises = zeros(exercises, "Not graded: see the notes.")


def unanswered(report: Report, exercises) -> None:
    report.isolation = "not run: nothing to run but the released lesson"
    report.notes.append("Nothing was answered: every answer cell is as released, so the notebook was not run. "
                        "Each exercise scores 0.")
    report.exercises = zeros(exercises, NOT_ANSWERED)


def zeros(exercises, message: str) -> list[ExerciseResult]:
    """Every exercise at 0 points, with one message."""
    return [ExerciseResult(e.answer_id, e.test_id, e.title, 0.0, e.points, False, [message]) for e in exercises]


# What a time limit's note says: not that the learner's code is wrong (a right answer can be slow on a loaded
# machine: the kernel's clock discounts waiting for a CPU, but a kernel with several threads is not always fully
# discounted), what to look for, and what to do when the cell is quick on the learner's own machine.
SLOW_ADVICE = ("Either the code never ends (a loop whose condition never turns false), or it does more work than the "
               "lesson asks (more epochs, steps or images), or the grading machine was very busy. If the notebook "
               "runs in about the lesson's time on your machine, ask your instructor to grade it again; otherwise "
               "look for a loop that never stops, or cut the work.")


def judge(report: Report, exercises, events: list[dict], answers: dict[int, str], limit: int,
          cell_limit: int | None = None) -> None:
    payloads = {e["test_id"]: e["payload"] for e in events if e.get("event") == wire.OBSERVATION}
    failed = [e for e in events if e.get("event") == wire.CELL and e.get("status") == "error"]
    errors = {answers[e["index"]]: f'{e.get("ename")}: {e.get("evalue")}'.rstrip(": ")
              for e in failed if e.get("index") in answers}
    end = next((e for e in reversed(events) if e.get("event") in wire.ENDINGS), None)
    slow = [e["index"] for e in events if e.get("event") == wire.CELL and e.get("ename") == wire.CELL_TIMEOUT]
    if slow:
        within = f" of {cell_limit} s" if cell_limit else ""
        report.notes.append(f"{len(slow)} cell(s) ran past the per-cell time limit{within} and were interrupted "
                            f"(first: cell {slow[0] + 1}). {SLOW_ADVICE}")
    capped = [e for e in events if e.get("event") == wire.OUTPUT_CAPPED]
    if capped:
        report.notes.append(f"{len(capped)} cell(s) printed more than {capped[0]['cap_bytes'] // 2**20} MB; the rest "
                            f"of their output was dropped, the cells still ran (first: cell {capped[0]['index'] + 1}).")
    if end is not None and end["event"] == wire.NOTEBOOK_TIMEOUT:
        report.status = "timeout"
        report.notes.append(f"The notebook did not finish within {limit} s and was stopped; "
                            f"checks that had not run yet score 0. {SLOW_ADVICE}")
    elif end is None or end["event"] == wire.DEAD_KERNEL:
        report.status = "kernel_died"
        report.notes.append("The Python kernel died while running your notebook (a crash, os._exit, or running out "
                            "of memory); checks that had not run yet score 0.")
    elif end["event"] == wire.RUNNER_ERROR:  # after the kernel started (before it, run_with_retries raised)
        report.status = "kernel_died"
        report.notes.append(f"The kernel stopped answering the grader properly ({end.get('message')}); "
                            "checks that had not run yet score 0. Did a cell replace a library function?")
    caused = errors_in_given_cells(exercises, events, answers, raised=set(errors))
    for ex in exercises:
        error = errors.get(ex.answer_id, "")
        if error.startswith("NotImplementedError"):
            messages = [NOT_ANSWERED]
        elif ex.test_id in payloads:
            messages = judge_payload(ex, payloads[ex.test_id])
            if messages and error:
                messages.append(f"Your answer cell raised {error}")
            if messages:  # the error first: it often explains the rest (a model that never trained)
                messages = caused.get(ex.answer_id, []) + messages
        else:
            messages = ["This check never ran (see the notes above)."]
        messages = [wire.plain(m) for m in messages]  # Keras and IPython colour their error text
        passed = not messages
        report.exercises.append(ExerciseResult(ex.answer_id, ex.test_id, ex.title, ex.points if passed else 0.0,
                                               ex.points, passed, messages))
    report.score = sum(r.points for r in report.exercises)


def errors_in_given_cells(exercises, events: list[dict], answers: dict[int, str],
                          raised: set[str] = frozenset()) -> dict[str, list[str]]:
    """Errors of cells that are not answers (the lesson's given cells, or cells the learner added), as messages for
    the exercise they concern: the learner's answer whose code the traceback passes through (the innermost), or
    else the exercise whose answer cell comes before the failed cell and whose check after it, unless that answer
    cell raised itself (``raised``: then the later error is most likely its consequence, and the answer's own error
    is what the learner needs). A locked training cell that fails inside the learner's function is then reported on
    that function's exercise."""
    probe_at, last = {}, None  # test_id -> index of its probe cell (its observation follows its cell event)
    for e in events:
        if e.get("event") == wire.CELL:
            last = e.get("index")
        elif e.get("event") == wire.OBSERVATION and last is not None:
            probe_at[e.get("test_id")] = last
    probes = set(probe_at.values())
    found: dict[str, list[str]] = {}
    for e in events:
        index = e.get("index")
        if (e.get("event") != wire.CELL or e.get("status") != "error" or index in answers or index in probes
                or e.get("ename") == wire.CELL_TIMEOUT):
            continue
        error = wire.plain(f'{e.get("ename")}: {e.get("evalue")}'.rstrip(": "))
        inside = [answers[i] for i in e.get("through", []) if i in answers and i != index]
        if inside:
            found.setdefault(inside[-1], []).append(f"When cell {index + 1} called your code, it raised {error}")
            continue
        for ex in exercises:
            own = [i for i, aid in answers.items() if aid == ex.answer_id]
            if own and max(own) < index < probe_at.get(ex.test_id, -1) and ex.answer_id not in raised:
                found.setdefault(ex.answer_id, []).append(
                    f"Cell {index + 1}, between your answer and this check, raised {error}")
    return found
