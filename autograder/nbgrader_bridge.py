"""The hidden half of each nbgrader test cell: observe and judge in the kernel.

``nbgrader autograde`` runs test cells in the learner's kernel, so there both
halves run together and a failed check raises ``AssertionError`` with the same
learner-facing messages the course's own grader gives. (The course grader never
runs this: it judges outside the kernel.)
"""

from __future__ import annotations

from .probe_runtime import observe
from .rubric import judge_payload, load_exercises


def check(lesson: str, framework: str, test_id: str, ns: dict) -> None:
    exercise = next(e for e in load_exercises(lesson) if e.test_id == test_id)
    messages = judge_payload(exercise, observe(lesson, framework, test_id, ns))
    if messages:
        raise AssertionError("\n".join(messages))
