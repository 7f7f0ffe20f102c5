"""Worker: execute one prepared notebook in a fresh kernel and stream what happened.

    python -m autograder.runner NOTEBOOK --events-fd FD --cell-timeout S

It runs no judging: it writes one JSON line per event (kernel started, each cell's
status, each probe's observation) to a pipe the grading process reads, flushed at
once, so everything observed before a timeout or a dead kernel is kept. The kernel
cannot reach that pipe: it is not inherited, and this process is made non-dumpable
so /proc/<pid>/fd is closed to it. Outputs of learner cells are dropped as soon as
each cell finishes, and a cell keeps at most ``limits.Limits.output_bytes`` of them, to keep this
process small whatever a cell prints.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from . import protocol as wire
from .limits import Limits, apply_rlimits

TICK = 1  # seconds between two looks at a running cell's clock
GRACE = 10  # clock seconds a cell gets after its interrupt, before the grader stops waiting for it
STARTUP_TIMEOUT = 300  # a loaded machine can take minutes to start a kernel; that is never the learner's time


class EventLog:
    def __init__(self, fd: int):
        self._f = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, **event) -> None:
        self._f.write(json.dumps(event) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _short(text: str, limit: int = 500) -> str:
    text = wire.plain(text)
    return text if len(text) <= limit else text[:limit] + "…"


_CELL_FRAME = re.compile(r"\bCell In\[(\d+)\]")  # how IPython names a notebook cell in a traceback


def cell_event(cell, index: int, reply: dict, cells_by_count: dict[int, int] | None = None) -> dict:
    """A finished cell; for an error, also ``through``: the indices of the cells whose code the traceback passes
    through, outermost first (so a locked cell's error can be traced to the learner's function it called)."""
    content = (reply or {}).get("content", {})
    event = {"event": wire.CELL, "index": index, "status": content.get("status", "unknown")}
    if event["status"] == "error":
        event["ename"] = _short(content.get("ename", ""), 100)
        event["evalue"] = _short(content.get("evalue", ""))
        through = []
        for line in content.get("traceback") or []:
            for count in _CELL_FRAME.findall(wire.plain(line)):
                cell_index = (cells_by_count or {}).get(int(count))
                if cell_index is not None and (not through or through[-1] != cell_index):
                    through.append(cell_index)
        if through:
            event["through"] = through
    return event


def observations(cell) -> list[dict]:
    found = []
    for out in cell.get("outputs", []):
        data = out.get("data", {}) if out.get("output_type") in ("display_data", "execute_result") else {}
        if wire.MIME in data:
            found.append(data[wire.MIME])
    return found


def _output_size(msg: dict) -> int:
    content = msg.get("content", {})
    data = content.get("data") or {}
    return len(content.get("text", "")) + sum(len(str(v)) for v in data.values())


_HZ = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None for a process that is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


class KernelClock:
    """How long the kernel has taken, counted so that a busy machine cannot cost a learner points.

    While some thread of the kernel can run, its CPU time counts, divided by how many of its threads can run at
    once (as many as are runnable, at most the CPUs it may use) and at most wall time; while all of them sleep,
    wall time counts. So an endless loop (CPU) and an endless sleep (wall) still reach their limits, but time spent
    waiting for a CPU that other programs hold does not count, also for a kernel that computes on several threads
    (TensorFlow does: counting its CPU time up to wall time alone would count nearly all of a busy machine's wall
    time). Processes of the kernel: in the sandbox every process of its PID namespace but this worker; without it
    the kernel's process group."""

    def __init__(self, kernel_pid: int, whole_namespace: bool):
        self.kernel_pid, self.whole_namespace = kernel_pid, whole_namespace
        self.used = 0.0
        try:
            self.cpus = max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            self.cpus = max(1, os.cpu_count() or 1)
        self._wall, self._cpu = time.monotonic(), self._read()[0]

    def _pids(self) -> list[str]:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (os.getpid(), 1)]
        if self.whole_namespace:
            return pids
        return [p for p in pids if (st := _stat(p)) and st[2] == str(self.kernel_pid)]

    def _read(self) -> tuple[float, int]:
        """The kernel's CPU seconds so far, and how many of its threads are runnable now."""
        cpu, runnable = 0.0, 0
        for pid in self._pids():
            st = _stat(pid)
            if st is None:
                continue
            cpu += sum(int(x) for x in st[11:15]) / _HZ  # utime, stime, and those of reaped children
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            runnable += sum(1 for tid in tasks if (t := _stat(f"{pid}/task/{tid}")) and t[0] == "R")
        return cpu, runnable

    def tick(self) -> float:
        """Bring the clock up to now; return its total."""
        wall = time.monotonic()
        cpu, runnable = self._read()
        dt, dc = wall - self._wall, max(0.0, cpu - self._cpu)
        self.used += min(dt, dc / min(runnable, self.cpus)) if runnable else dt
        self._wall, self._cpu = wall, cpu
        return self.used


class NotebookTimeout(Exception):
    """The notebook used up its time."""


class GradingClient(NotebookClient):
    """An nbclient that times cells by the :class:`KernelClock` and keeps at most ``output_cap`` bytes of output
    per cell (probe observations always)."""

    def __init__(self, nb, output_cap: int, log: EventLog, cell_limit: float, notebook_limit: float, **kwargs):
        super().__init__(nb, timeout=TICK, interrupt_on_timeout=True, **kwargs)
        self._cap, self._log, self._used = output_cap, log, {}
        self.cell_limit, self.notebook_limit = cell_limit, notebook_limit
        self.clock: KernelClock | None = None
        self.timed_out: set[int] = set()
        self._cell_start, self._current, self._interrupted_at = 0.0, -1, None
        self._stuck = False  # the kernel ignored an interrupt: later cells get only GRACE before they are given up

    def begin(self, whole_namespace: bool) -> int | None:
        """Start the kernel and its clock; return the kernel's pid."""
        self.km = self.create_kernel_manager()
        self.start_new_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.start_new_kernel_client()
        pid = getattr(getattr(getattr(self.km, "provisioner", None), "process", None), "pid", None)
        if pid:
            self.clock = KernelClock(pid, whole_namespace)
        return pid

    def run_cell(self, cell, index: int) -> None:
        if self.clock and self.clock.tick() > self.notebook_limit:
            raise NotebookTimeout
        self._cell_start = self.clock.used if self.clock else 0.0
        self._current, self._interrupted_at = index, None
        self.execute_cell(cell, index)
        self._stuck = self._stuck and index in self.timed_out

    async def _async_handle_timeout(self, timeout, cell=None):
        """Called each TICK while a cell runs: interrupt it past its limit, give up on it GRACE later."""
        if self.clock is None:
            return await super()._async_handle_timeout(timeout, cell)
        total = self.clock.tick()
        if total > self.notebook_limit:
            raise NotebookTimeout
        used = total - self._cell_start
        if used <= (GRACE if self._stuck else self.cell_limit):
            return None  # keep waiting
        if self._interrupted_at is None:
            self._interrupted_at = used
            self.timed_out.add(self._current)
            await super()._async_handle_timeout(timeout, cell)  # interrupts; error_on_timeout is not set here
            return None  # wait for the interrupted cell's own reply
        if used > self._interrupted_at + GRACE:  # the cell ignores interrupts: stop waiting for it
            self._stuck = True
            return {"content": {"status": "error", "ename": wire.CELL_TIMEOUT, "evalue": self._timeout_text,
                                "traceback": []}}
        return None

    @property
    def _timeout_text(self) -> str:
        return f"the cell ran longer than {self.cell_limit:g} s"

    def output(self, outs, msg, display_id, cell_index):
        if wire.MIME not in (msg.get("content", {}).get("data") or {}):
            before = self._used.get(cell_index, 0)
            self._used[cell_index] = before + _output_size(msg)
            if self._used[cell_index] > self._cap:
                if before <= self._cap:
                    self._log.write(event=wire.OUTPUT_CAPPED, index=cell_index, cap_bytes=self._cap)
                return None
        return super().output(outs, msg, display_id, cell_index)


def _not_dumpable() -> None:
    try:
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def _kernel_signal(client: NotebookClient) -> int | None:
    """The signal that ended the kernel (e.g. 9 for SIGKILL), if a signal did."""
    process = getattr(getattr(client.km, "provisioner", None), "process", None)
    code = process.poll() if process is not None else None
    return -code if code is not None and code < 0 else None


def run(nb_path: str, events_fd: int, cell_timeout: int, limits: dict | None = None,
        notebook_timeout: float = float("inf"), sandboxed: bool = False) -> int:
    _not_dumpable()
    limits = dict(limits or {})
    device, own_user = limits.pop("device", None), limits.pop("own_user", False)
    caps = Limits(**limits)
    if device is not None:
        apply_rlimits(caps, device, own_user)
    log = EventLog(events_fd)
    nb = nbformat.read(nb_path, as_version=4)

    cells_by_count: dict[int, int] = {}  # the kernel's execution count -> the cell's index

    def on_executed(cell, cell_index, execute_reply):
        count = (execute_reply or {}).get("content", {}).get("execution_count")
        if isinstance(count, int):
            cells_by_count[count] = cell_index
        event = cell_event(cell, cell_index, execute_reply, cells_by_count)
        if cell_index in client.timed_out and event["status"] == "error":
            event.update(ename=wire.CELL_TIMEOUT, evalue=client._timeout_text)
        log.write(**event)
        probe = cell.get("metadata", {}).get(wire.PROBE_KEY)
        if probe:
            obs = observations(cell)
            why = event.get("ename") or "no output"
            payload = obs[-1] if obs else {"ok": False, "error": {"type": "CheckDidNotRun", "message": why}}
            log.write(event=wire.OBSERVATION, test_id=probe, payload=payload)
        cell.outputs = []

    client = GradingClient(nb, caps.output_bytes, log, cell_timeout, notebook_timeout,
                           startup_timeout=STARTUP_TIMEOUT, kernel_name="python3", allow_errors=True,
                           on_cell_executed=on_executed, record_timing=False)
    try:
        log.write(event=wire.START, kernel_pid=client.begin(whole_namespace=sandboxed))
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                client.run_cell(cell, index)
        log.write(event=wire.DONE)
    except NotebookTimeout:
        log.write(event=wire.NOTEBOOK_TIMEOUT, seconds=notebook_timeout)
    except DeadKernelError as err:
        log.write(event=wire.DEAD_KERNEL, message=_short(err), signal=_kernel_signal(client))
    except Exception as err:  # noqa: BLE001  (kernel did not start or nbclient failed: report, never a traceback)
        log.write(event=wire.RUNNER_ERROR, message=_short(f"{type(err).__name__}: {err}"))
    finally:
        log.close()
    # No polite kernel shutdown: the grading process kills the kernel's whole process group at once.
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run one prepared notebook and stream events (internal).")
    p.add_argument("notebook")
    p.add_argument("--events-fd", type=int, required=True)
    p.add_argument("--cell-timeout", type=int, default=120)
    p.add_argument("--notebook-timeout", type=float, default=float("inf"), help="clock seconds for the whole notebook")
    p.add_argument("--sandboxed", action="store_true", help="this worker has a PID namespace of its own")
    p.add_argument("--limits", type=json.loads, help="JSON: limits.Limits fields and the device")
    a = p.parse_args(argv)
    return run(a.notebook, a.events_fd, a.cell_timeout, a.limits, a.notebook_timeout, a.sandboxed)


if __name__ == "__main__":
    sys.exit(main())
