"""The autograder on every lesson: solutions earn full marks, blanks 0, each wrong answer loses its points."""

from __future__ import annotations

import pytest
from conftest import IDS, LESSON_NOTEBOOKS
from submissions import solved
from wrong_answers import GROUPS, wrong_source

from autograder.rubric import load_exercises

pytestmark = pytest.mark.slow


def points(report) -> dict[str, float]:
    return {e.id: e.points for e in report.exercises}


@pytest.mark.parametrize("ln", LESSON_NOTEBOOKS, ids=IDS)
def test_solution_earns_full_marks(graded, ln):
    report = graded(f"solution-{ln.stem}", ln.solution)
    failures = {e.id: e.messages for e in report.exercises if not e.passed}
    assert report.status == "graded", report.notes
    assert not failures, failures
    assert report.score == report.max_score == sum(e.points for e in load_exercises(ln.lesson)) > 0


@pytest.mark.parametrize("ln", LESSON_NOTEBOOKS, ids=IDS)
def test_blank_lesson_earns_zero_without_crashing(graded, ln):
    report = graded(f"blank-{ln.stem}", ln.release)
    assert report.status == "graded", report.notes
    assert report.score == 0 and len(report.exercises) == len(load_exercises(ln.lesson))
    for ex in report.exercises:
        assert ex.messages, f"{ex.id}: a failed exercise must say why"
        assert any("Not answered" in m or "not defined" in m for m in ex.messages), ex.messages


WRONG_CASES = [(ln, group) for ln in LESSON_NOTEBOOKS for group in GROUPS[ln.lesson]]


@pytest.mark.parametrize("ln,group", WRONG_CASES, ids=[f"{ln.stem}-{'+'.join(g)}" for ln, g in WRONG_CASES])
def test_wrong_answer_loses_exactly_its_points(graded, ln, group):
    overrides = {aid: wrong_source(ln.lesson, aid, ln.framework) for aid in group}
    report = graded(f"wrong-{ln.stem}-{'+'.join(group)}", solved(ln, overrides))
    assert report.status == "graded", report.notes
    full = {e.answer_id: e.points for e in load_exercises(ln.lesson)}
    expected = {aid: (0.0 if aid in group else pts) for aid, pts in full.items()}
    assert points(report) == expected, [(e.id, e.messages) for e in report.exercises]
    for ex in report.exercises:
        if ex.id in group:
            assert ex.messages and not any("Not answered" in m for m in ex.messages), ex.messages
