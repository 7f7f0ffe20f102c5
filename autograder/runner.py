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
import subprocess
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from .limits import Limits, apply_rlimits
from .probe_runtime import MIME

PROBE_KEY = "tlcourse_probe"  # cell metadata key marking the cells the grader inserted


class EventLog:
    def __init__(self, fd: int):
        self._f = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, **event) -> None:
        self._f.write(json.dumps(event) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _short(text: str, limit: int = 500) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "…"


def cell_event(cell, index: int, reply: dict) -> dict:
    content = (reply or {}).get("content", {})
    event = {"event": "cell", "index": index, "status": content.get("status", "unknown")}
    if event["status"] == "error":
        event["ename"] = _short(content.get("ename", ""), 100)
        event["evalue"] = _short(content.get("evalue", ""))
    return event


def observations(cell) -> list[dict]:
    found = []
    for out in cell.get("outputs", []):
        data = out.get("data", {}) if out.get("output_type") in ("display_data", "execute_result") else {}
        if MIME in data:
            found.append(data[MIME])
    return found


def _output_size(msg: dict) -> int:
    content = msg.get("content", {})
    data = content.get("data") or {}
    return len(content.get("text", "")) + sum(len(str(v)) for v in data.values())


class CappedClient(NotebookClient):
    """An nbclient that keeps at most ``output_cap`` bytes of output per cell (probe observations always)."""

    def __init__(self, nb, output_cap: int, log: EventLog, **kwargs):
        super().__init__(nb, **kwargs)
        self._cap, self._log, self._used = output_cap, log, {}

    def output(self, outs, msg, display_id, cell_index):
        if MIME not in (msg.get("content", {}).get("data") or {}):
            before = self._used.get(cell_index, 0)
            self._used[cell_index] = before + _output_size(msg)
            if self._used[cell_index] > self._cap:
                if before <= self._cap:
                    self._log.write(event="output_capped", index=cell_index, cap_bytes=self._cap)
                return None
        return super().output(outs, msg, display_id, cell_index)


def _not_dumpable() -> None:
    try:
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def run(nb_path: str, events_fd: int, cell_timeout: int, limits: dict | None = None, startup_timeout: int = 120) -> int:
    _not_dumpable()
    limits = dict(limits or {})
    device, own_user = limits.pop("device", None), limits.pop("own_user", False)
    caps = Limits(**limits)
    if device is not None:
        apply_rlimits(caps, device, own_user)
    log = EventLog(events_fd)
    nb = nbformat.read(nb_path, as_version=4)

    def on_executed(cell, cell_index, execute_reply):
        log.write(**cell_event(cell, cell_index, execute_reply))
        probe = cell.get("metadata", {}).get(PROBE_KEY)
        if probe:
            obs = observations(cell)
            event = cell_event(cell, cell_index, execute_reply)
            why = event.get("ename") or "no output"
            payload = obs[-1] if obs else {"ok": False, "error": {"type": "CheckDidNotRun", "message": why}}
            log.write(event="observation", test_id=probe, payload=payload)
        cell.outputs = []

    client = CappedClient(
        nb,
        caps.output_bytes,
        log,
        timeout=cell_timeout,
        startup_timeout=startup_timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeout", "evalue": f"the cell ran longer than {cell_timeout} s",
                          "traceback": []},
        on_cell_executed=on_executed,
        record_timing=False,
    )
    try:
        client.km = client.create_kernel_manager()
        client.start_new_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client.start_new_kernel_client()
        provisioner = getattr(client.km, "provisioner", None)
        log.write(event="start", kernel_pid=getattr(getattr(provisioner, "process", None), "pid", None))
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        log.write(event="done")
    except DeadKernelError as err:
        log.write(event="dead_kernel", message=_short(err))
    except Exception as err:  # noqa: BLE001  (kernel did not start or nbclient failed: report, never a traceback)
        log.write(event="runner_error", message=_short(f"{type(err).__name__}: {err}"))
    finally:
        log.close()
    # No polite kernel shutdown: the grading process kills the kernel's whole process group at once.
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run one prepared notebook and stream events (internal).")
    p.add_argument("notebook")
    p.add_argument("--events-fd", type=int, required=True)
    p.add_argument("--cell-timeout", type=int, default=120)
    p.add_argument("--limits", type=json.loads, help="JSON: sandbox.Limits fields and the device")
    a = p.parse_args(argv)
    return run(a.notebook, a.events_fd, a.cell_timeout, a.limits)


if __name__ == "__main__":
    sys.exit(main())
