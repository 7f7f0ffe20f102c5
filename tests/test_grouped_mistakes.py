"""Classic mistakes graded in groups (lessons 06 and 07): each loses exactly its exercise's points, with a message
naming it.

Each submission holds several mistakes, at most one per exercise (these lessons grade their exercises
independently).
"""

from __future__ import annotations

import pytest
from submissions import solved
from wrong_answers_06 import L06, MISTAKES_06
from wrong_answers_07 import L07, MISTAKES_07

from autograder.lessons import FRAMEWORKS, LessonNotebook
from autograder.rubric import load_exercises

pytestmark = pytest.mark.slow

GROUPED = {L06: MISTAKES_06, L07: MISTAKES_07}


def source_for(source, framework: str) -> str:
    return source[framework] if isinstance(source, dict) else source


@pytest.mark.parametrize("lesson,name", [pytest.param(lesson, name, marks=pytest.mark.xdist_group(lesson),
                                                      id=f"{lesson}-{name}")
                                         for lesson, mistakes in GROUPED.items() for name in mistakes])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_mistake_loses_its_points_and_is_named(graded, framework, lesson, name):
    ln = LessonNotebook(lesson, framework)
    mistakes = GROUPED[lesson][name]
    report = graded(f"mistakes-{ln.stem}-{name}",
                    solved(ln, {aid: source_for(src, framework) for aid, (src, _) in mistakes.items()}))
    assert report.status == "graded", report.notes
    full = {e.answer_id: e.points for e in load_exercises(lesson)}
    assert {e.id: e.points for e in report.exercises} == {aid: 0.0 if aid in mistakes else pts
                                                          for aid, pts in full.items()}, \
        [(e.id, e.messages) for e in report.exercises]
    for exercise in report.exercises:
        if exercise.id in mistakes:
            phrase = mistakes[exercise.id][1]
            assert any(phrase in m for m in exercise.messages), (exercise.id, exercise.messages)
