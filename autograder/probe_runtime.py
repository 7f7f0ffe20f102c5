"""Runs inside the learner's kernel: call a probe, hand back plain data.

The probe's result travels as a display output with a private MIME type, as JSON
with a size cap. No expected value or threshold is ever imported here.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings

from .exercises import Lesson
from .protocol import MIME

MAX_BYTES = 512_000


class ProbeError(Exception):
    """Something the learner's code must provide is missing or unusable (message is for the learner)."""


def jsonable(value):
    """numpy/torch scalars and arrays, tuples and dicts -> plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)[:200]


def observe(lesson: str, framework: str, test_id: str, ns: dict) -> dict:
    """Run one probe against the learner's namespace; never raises."""
    try:
        probe = Lesson(lesson).probe(test_id)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = {"ok": True, "observation": jsonable(probe(ns, framework))}
    except ProbeError as err:
        payload = {"ok": False, "error": {"type": "Missing", "message": str(err)[:1000]}}
    except Exception as err:  # noqa: BLE001  (the learner's code raised while the probe called it)
        payload = {"ok": False, "error": {"type": type(err).__name__, "message": str(err)[:1000]}}
    if len(json.dumps(payload)) > MAX_BYTES:
        payload = {"ok": False, "error": {"type": "TooLarge", "message": "the observed value was too large"}}
    return payload


def emit(lesson: str, framework: str, test_id: str, ns: dict) -> None:
    from IPython.display import display

    display({MIME: observe(lesson, framework, test_id, ns)}, raw=True)


def require(ns: dict, name: str):
    """Fetch ``name`` from the learner's namespace or explain what is missing."""
    if name not in ns:
        raise ProbeError(f"`{name}` is not defined: run the cell that defines it (and the cells before it).")
    return ns[name]
