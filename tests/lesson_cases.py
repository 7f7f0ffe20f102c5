"""Test cases a lesson declares in its own module, below the test cases' marker (``autograder.probe_copy``).

There, beside the exercises' probes and judges, ``TEST_CASES[answer_id]`` holds one exercise's cases, each key
optional:

- ``"wrong"``: a realistic wrong answer, one source for both frameworks or a dict per framework, which must lose
  exactly the exercise's points; ``"group"``: a label, the wrong answers of one label graded together in one
  submission (without one, the wrong answer is graded alone);
- ``"valid"``: ``{framework: (style, source)}``, a right answer in another style than the solution, which must keep
  them; ``"extra"``: ``{(framework, variant): (style, source)}``, further ones.

``wrong_answers.py`` and ``valid_answers.py`` merge them into their own tables, next to the cases they hold.
"""

from __future__ import annotations

from autograder.exercises import lessons


def declared() -> dict[str, dict[str, dict]]:
    """``{lesson: {answer_id: cases}}`` for the lessons whose module declares ``TEST_CASES``."""
    return {lesson.id: lesson.rubric.TEST_CASES for lesson in lessons() if hasattr(lesson.rubric, "TEST_CASES")}


def wrong_answers() -> tuple[dict[tuple[str, str], object], dict[str, list[list[str]]]]:
    """``WRONG`` and ``GROUPS`` entries, in the form of ``wrong_answers.py``'s."""
    wrong, groups = {}, {}
    for lesson, exercises in declared().items():
        labels: dict[str, list[str]] = {}
        for answer_id, cases in exercises.items():
            if "wrong" in cases:
                wrong[lesson, answer_id] = cases["wrong"]
                labels.setdefault(cases.get("group", answer_id), []).append(answer_id)
        if labels:
            groups[lesson] = list(labels.values())
    return wrong, groups


def valid_answers() -> tuple[dict[tuple[str, str, str], tuple[str, str]], dict[tuple[str, ...], tuple[str, str]]]:
    """``{(lesson, framework, answer_id): (style, source)}`` and ``{(lesson, framework, answer_id, variant): ...}``."""
    valid, extra = {}, {}
    for lesson, exercises in declared().items():
        for answer_id, cases in exercises.items():
            valid |= {(lesson, framework, answer_id): case for framework, case in cases.get("valid", {}).items()}
            extra |= {(lesson, framework, answer_id, variant): case
                      for (framework, variant), case in cases.get("extra", {}).items()}
    return valid, extra
