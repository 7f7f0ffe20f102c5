"""What the worker and the grading process say to each other: one JSON line per event on a private pipe.

Imported by both sides (``runner`` writes, ``worker``/``grade`` read), so an event name lives in one place.
"""

from __future__ import annotations

import re

# Events, in the order a run can produce them.
START = "start"  # the kernel is up: {kernel_pid}
CELL = "cell"  # a code cell finished: {index, status, ename?, evalue?}
OBSERVATION = "observation"  # a probe cell's payload: {test_id, payload}
OUTPUT_CAPPED = "output_capped"  # a cell printed past the cap: {index, cap_bytes}
NOTEBOOK_TIMEOUT = "notebook_timeout"  # the notebook used up its time: {seconds}
DONE = "done"  # every cell ran
DEAD_KERNEL = "dead_kernel"  # the kernel died: {message, signal?}
RUNNER_ERROR = "runner_error"  # the worker failed: {message}
ENDINGS = (DONE, DEAD_KERNEL, RUNNER_ERROR, NOTEBOOK_TIMEOUT)

CELL_TIMEOUT = "CellTimeout"  # the ``ename`` of a cell stopped at its time limit

PROBE_KEY = "tlcourse_probe"  # cell metadata key marking the cells the grader inserted
MIME = "application/vnd.tlcourse.observation+json"  # a probe's display output

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def plain(text: str) -> str:
    """Text without terminal colour codes (Keras and IPython colour their error messages)."""
    return _ANSI.sub("", str(text))
