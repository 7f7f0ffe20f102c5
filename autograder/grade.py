"""Grade one learner notebook: prepare, run in a worker process, judge outside it."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from .assemble import assemble
from .environment import kernel_env, resolve_device, versions
from .lessons import LessonNotebook, identify, parse_stem
from .limits import Limits, limit_args
from .rubric import NOT_ANSWERED, judge_payload, load_exercises
from .sandbox import (
    CgroupV1,
    bwrap_command,
    bwrap_works,
    describe,
    prepare_home,
    sandbox_env,
    sandbox_uid,
)

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
                                           f"{MAX_NOTEBOOK_BYTES // 2**20} MiB are not graded. Clear outputs and resubmit.")
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


def _kill_group(pid: int | None) -> None:
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


_ACTIVE: dict[int, subprocess.Popen] = {}  # running workers, so an interrupt can end them all
_ACTIVE_LOCK = threading.Lock()


def run_worker(nb, workdir: Path, env: dict, device: str, cell_timeout: int, notebook_timeout: int,
               limits: Limits | None = None) -> tuple[list[dict], bool, str]:
    """Execute ``nb`` in a sandboxed worker; return its events, whether the notebook timed out, the isolation."""
    limits = limits or Limits(cpu_seconds=notebook_timeout * 2 + 60)
    nb_path = workdir / "submission.ipynb"
    nbformat.write(nb, nb_path)
    prepare_home(workdir)
    for path in [workdir, *workdir.rglob("*")]:
        os.chmod(path, 0o777)  # the sandbox's unprivileged uid writes here
    isolated = bwrap_works()
    with sandbox_uid() if isolated else contextlib.nullcontext() as uid:
        return _run_worker(nb_path, workdir, env, device, cell_timeout, notebook_timeout, limits, isolated, uid)


def _run_worker(nb_path: Path, workdir: Path, env: dict, device: str, cell_timeout: int, notebook_timeout: int,
                limits: Limits, isolated: bool, uid: int | None) -> tuple[list[dict], bool, str]:
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "autograder.runner", str(nb_path), "--events-fd", str(write_fd),
           "--cell-timeout", str(cell_timeout), *limit_args(limits, device, own_user=uid is not None)]
    if isolated:
        cmd = bwrap_command(cmd, workdir, device, uid)
    cgroup = CgroupV1(limits)
    try:
        proc = subprocess.Popen(cmd, cwd=workdir, env=sandbox_env(env, workdir, isolated), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
    cgroup.add(proc.pid)
    with _ACTIVE_LOCK:
        _ACTIVE[proc.pid] = proc
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(read_fd, lines), daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=notebook_timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _end(proc)
        reader.join(timeout=10)
        if not isolated:  # the kernel started its own session: end it (in a sandbox its PID namespace is gone)
            start = next((e for e in parse_events(lines) if e.get("event") == "start"), {})
            _kill_group(start.get("kernel_pid"))
        cgroup.close()
    return parse_events(lines), timed_out, describe(isolated, cgroup.active, uid)


def _read_lines(fd: int, sink: list[str], cap: int = 64 * 2**20) -> None:
    total = 0
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            total += len(line)
            if total > cap:
                break
            sink.append(line)


def _end(proc: subprocess.Popen) -> None:
    _kill_group(proc.pid)  # in the sandbox, the PID namespace dies with it; without, the kernel is in this group
    proc.wait()
    with _ACTIVE_LOCK:
        _ACTIVE.pop(proc.pid, None)


def stop_all_workers() -> None:
    """End every running worker and its kernel (on Ctrl-C in a class run)."""
    with _ACTIVE_LOCK:
        running = list(_ACTIVE.values())
    for proc in running:
        _end(proc)


def parse_events(lines: list[str]) -> list[dict]:
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a kill
    return events


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
        runnable, answers = assemble(nb, nbformat.read(ln.solution, as_version=4), ln)
        env = kernel_env(report.device, ln.framework)
        if ln.framework == "keras":
            report.versions["keras_backend"] = env.get("KERAS_BACKEND", "tensorflow")
        if not run_unanswered and _code(runnable) == _release_code(ln):
            unanswered(report, exercises)
            report.seconds = round(time.perf_counter() - start, 2)
            return report
        with tempfile.TemporaryDirectory(prefix="tlgrade-") as tmp:
            events, timed_out, report.isolation = run_worker(runnable, Path(tmp), env, report.device, cell_timeout,
                                                             notebook_timeout)
        judge(report, exercises, events, answers, timed_out, notebook_timeout)
    except Rejected as err:
        report.status = err.status
        report.notes.append(str(err))
        zero_all(report, lesson or parse_stem(path.stem))
    except RuntimeError as err:  # e.g. --device cuda without a GPU: the instructor's problem, not the learner's
        report.status = "grader_error"
        report.notes.append(str(err))
    report.seconds = round(time.perf_counter() - start, 2)
    return report


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


def judge(report: Report, exercises, events: list[dict], answers: dict[int, str], timed_out: bool, limit: int) -> None:
    payloads = {e["test_id"]: e["payload"] for e in events if e.get("event") == "observation"}
    errors = {answers[e["index"]]: f'{e.get("ename")}: {e.get("evalue")}'.rstrip(": ")
              for e in events if e.get("event") == "cell" and e.get("status") == "error" and e.get("index") in answers}
    end = next((e for e in reversed(events) if e.get("event") in ("done", "dead_kernel", "runner_error")), None)
    slow = [e["index"] for e in events if e.get("event") == "cell" and e.get("ename") == "CellTimeout"]
    if slow:
        report.notes.append(f"{len(slow)} cell(s) ran past the per-cell time limit and were interrupted "
                            f"(first: cell {slow[0] + 1}). Look for a loop that never ends.")
    capped = [e for e in events if e.get("event") == "output_capped"]
    if capped:
        report.notes.append(f"{len(capped)} cell(s) printed more than {capped[0]['cap_bytes'] // 2**20} MB; the rest "
                            f"of their output was dropped, the cells still ran (first: cell {capped[0]['index'] + 1}).")
    if timed_out:
        report.status = "timeout"
        report.notes.append(f"The notebook did not finish within {limit} s and was stopped; "
                            "checks that had not run yet score 0. Look for a loop that never ends.")
    elif end is None or end["event"] == "dead_kernel":
        report.status = "kernel_died"
        report.notes.append("The Python kernel died while running your notebook (a crash, os._exit, or running out "
                            "of memory); checks that had not run yet score 0.")
    elif end["event"] == "runner_error" and any(e.get("event") == "start" for e in events):
        report.status = "kernel_died"
        report.notes.append(f"The kernel stopped answering the grader properly ({end.get('message')}); "
                            "checks that had not run yet score 0. Did a cell replace a library function?")
    elif end["event"] == "runner_error":
        report.status = "grader_error"
        report.notes.append(f"The notebook could not be run: {end.get('message')}")
    for ex in exercises:
        error = errors.get(ex.answer_id, "")
        if error.startswith("NotImplementedError"):
            messages = [NOT_ANSWERED]
        elif ex.test_id in payloads:
            messages = judge_payload(ex, payloads[ex.test_id])
            if messages and error:
                messages.append(f"Your answer cell raised {error}")
        else:
            messages = ["This check never ran (see the notes above)."]
        passed = not messages
        report.exercises.append(ExerciseResult(ex.answer_id, ex.test_id, ex.title, ex.points if passed else 0.0, ex.points,
                                               passed, messages))
    report.score = sum(r.points for r in report.exercises)
