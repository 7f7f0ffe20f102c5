"""Lesson 07's classic text-transfer mistakes: each loses exactly its exercise's points, with a message naming it.

Each submission holds several mistakes, at most one per exercise (the lesson grades its exercises independently).
"""

from __future__ import annotations

import pytest
from submissions import solved
from wrong_answers_07 import L07, MISTAKES_07

from autograder.lessons import FRAMEWORKS, LessonNotebook
from autograder.rubric import load_exercises

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(L07)]


def source_for(source, framework: str) -> str:
    return source[framework] if isinstance(source, dict) else source


@pytest.mark.parametrize("name", list(MISTAKES_07))
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_mistake_loses_its_points_and_is_named(graded, framework, name):
    ln = LessonNotebook(L07, framework)
    mistakes = MISTAKES_07[name]
    report = graded(f"mistakes-{ln.stem}-{name}",
                    solved(ln, {aid: source_for(src, framework) for aid, (src, _) in mistakes.items()}))
    assert report.status == "graded", report.notes
    full = {e.answer_id: e.points for e in load_exercises(L07)}
    assert {e.id: e.points for e in report.exercises} == {aid: 0.0 if aid in mistakes else pts
                                                          for aid, pts in full.items()}, \
        [(e.id, e.messages) for e in report.exercises]
    for exercise in report.exercises:
        if exercise.id in mistakes:
            phrase = mistakes[exercise.id][1]
            assert any(phrase in m for m in exercise.messages), (exercise.id, exercise.messages)
