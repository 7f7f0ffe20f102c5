"""The judging helpers the rubrics share.

A lesson's module (``autograder.rubrics.l<lesson>``) holds, below its probes (``autograder.probe_copy``), one
``judge_<name>`` per exercise (see ``autograder.exercises``), which turns the probe's observation into failure
messages for the learner (an empty list means: passed). Messages say what was wrong, never how the check is written.
"""

from __future__ import annotations

from .exercises import Exercise, Lesson
from .protocol import plain

NOT_ANSWERED = "Not answered yet: replace `raise NotImplementedError()` with your code."


def load_exercises(lesson: str) -> list[Exercise]:
    return Lesson(lesson).exercises


def judge_payload(exercise: Exercise, payload: dict) -> list[str]:
    """Failure messages for one probe payload (``{"ok": bool, "observation"|"error": ...}``)."""
    if not payload.get("ok"):
        err = payload.get("error", {})
        kind, message = err.get("type", "Error"), plain(err.get("message", ""))
        if kind == "Missing":
            return [message]
        if kind == "NotImplementedError":
            return [NOT_ANSWERED]
        if kind == "CheckDidNotRun":
            return [(f"This check could not run ({message}): the kernel was still busy or broken after an earlier "
                    "cell; see the notes.")]
        if kind == "TooLarge":
            return ["The value your code produced was far larger than expected."]
        return [f"Your code raised {kind}: {message}".rstrip(": ")]
    try:
        return exercise.judge(payload.get("observation") or {})
    except (KeyError, TypeError, ValueError, IndexError) as err:
        # The observation had an unexpected form (e.g. a wrong return type the probe passed through).
        return [f"Your answer had an unexpected form ({type(err).__name__}); check what your code returns."]


def close(a, b, tol: float = 1e-6) -> bool:
    try:
        return abs(float(a) - float(b)) <= tol
    except (TypeError, ValueError):
        return False
