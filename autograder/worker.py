"""Supervise one worker process: start it in its sandbox, read its events, end it and everything it started.

The worker (:mod:`autograder.runner`) runs the notebook; this side only starts it, collects the JSON lines it
writes (:mod:`autograder.protocol`), keeps the tail of its stderr for the instructor, and kills its process group
when it ends, when the wall-clock cap passes, or when a class run is interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import protocol as wire
from .limits import Limits, limit_args
from .runner import STARTUP_TIMEOUT
from .sandbox import CgroupV1, bwrap_command, bwrap_works, describe, prepare_home, sandbox_env, sandbox_uid

# The worker times the notebook by the kernel's own clock, which a busy machine stretches; the wall-clock cap
# only catches a worker that stopped reporting. Past it, the run is a grader fault, not the learner's time.
WALL_ALLOWANCE = 3
STDERR_TAIL = 16_384  # bytes of the worker's stderr kept for the instructor
RUNNER_MODULE = "autograder.runner"


@dataclass
class WorkerRun:
    events: list[dict]
    wall_capped: bool  # the worker was stopped by the wall-clock cap
    isolation: str
    stderr: str = ""  # the tail of the worker's stderr (instructor only)
    exit_code: int | None = None

    def first(self, name: str) -> dict | None:
        return next((e for e in self.events if e.get("event") == name), None)

    @property
    def ending(self) -> dict | None:
        return next((e for e in reversed(self.events) if e.get("event") in wire.ENDINGS), None)


def wall_cap(notebook_timeout: int) -> int:
    return notebook_timeout * WALL_ALLOWANCE + STARTUP_TIMEOUT


def _kill_group(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


_ACTIVE: dict[int, subprocess.Popen] = {}  # running workers, so an interrupt can end them all
_ACTIVE_LOCK = threading.Lock()


def run_worker(nb, workdir: Path, env: dict, device: str, cell_timeout: int, notebook_timeout: int,
               limits: Limits | None = None) -> WorkerRun:
    """Execute ``nb`` in a sandboxed worker and return what it reported."""
    limits = limits or Limits(cpu_seconds=notebook_timeout * 2 + 60)
    nb_path = workdir / "submission.ipynb"
    nbformat.write(nb, nb_path)
    prepare_home(workdir)
    for path in [workdir, *workdir.rglob("*")]:
        os.chmod(path, 0o777)  # the sandbox's unprivileged uid writes here
    isolated = bwrap_works()
    with sandbox_uid() if isolated else contextlib.nullcontext() as uid:
        cmd = [sys.executable, "-m", RUNNER_MODULE, str(nb_path), "--cell-timeout", str(cell_timeout),
               "--notebook-timeout", str(notebook_timeout), *limit_args(limits, device, own_user=uid is not None)]
        if isolated:
            cmd = bwrap_command([*cmd, "--sandboxed"], workdir, device, uid)
        return _supervise(cmd, workdir, sandbox_env(env, workdir, isolated), limits, wall_cap(notebook_timeout),
                          isolated, uid)


def _supervise(cmd: list[str], workdir: Path, env: dict, limits: Limits, cap: int, isolated: bool,
               uid: int | None) -> WorkerRun:
    read_fd, write_fd = os.pipe()
    cgroup = CgroupV1(limits)
    isolation = describe(isolated, cgroup.active, uid)
    try:
        proc = subprocess.Popen([*cmd, "--events-fd", str(write_fd)], cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True, pass_fds=(write_fd,))
    except OSError as err:  # e.g. the interpreter or bwrap is gone: the grader's fault
        os.close(read_fd)
        cgroup.close()
        return WorkerRun([], False, isolation, f"the worker could not be started: {err}")
    finally:
        os.close(write_fd)
    cgroup.add(proc.pid)
    with _ACTIVE_LOCK:
        _ACTIVE[proc.pid] = proc
    lines: list[str] = []
    stderr = bytearray()
    readers = [threading.Thread(target=_read_lines, args=(read_fd, lines), daemon=True),
               threading.Thread(target=_read_tail, args=(proc.stderr, stderr), daemon=True)]
    for reader in readers:
        reader.start()
    capped = False
    try:
        proc.wait(timeout=cap)
    except subprocess.TimeoutExpired:
        capped = True
    finally:
        _end(proc)
        for reader in readers:
            reader.join(timeout=30)
        events = parse_events(lines)
        if not isolated:  # the kernel started its own session: end it (in a sandbox its PID namespace is gone)
            _kill_group(next((e for e in events if e.get("event") == wire.START), {}).get("kernel_pid"))
        cgroup.close()
    return WorkerRun(events, capped, isolation, stderr.decode("utf-8", "replace"), proc.returncode)


def _read_lines(fd: int, sink: list[str], cap: int = 64 * 2**20) -> None:
    total = 0
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            total += len(line)
            if total > cap:
                break
            sink.append(line)


def _read_tail(stream, sink: bytearray) -> None:
    with stream:
        for chunk in iter(lambda: stream.read(4096), b""):
            sink.extend(chunk)
            del sink[:-STDERR_TAIL]


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
