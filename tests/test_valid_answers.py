"""Correct answers in unexpected styles earn full marks: the grader checks what the instructions ask, not one way.

Every answer cell of lessons 01-06, in both frameworks, is replaced by its alternative from ``valid_answers.VALID``
(written from the learner notebooks alone), and the whole notebook is graded as a learner's submission. Each
further variant of ``valid_answers.EXTRA`` is graded in its own notebook, the other answers taken from ``VALID``.
"""

from __future__ import annotations

import nbformat
import pytest
import valid_answers_06  # noqa: F401  (registers lesson 06's answers)
from valid_answers import EXTRA, EXTRA_STYLES, STYLES, VALID

from autograder.grade import grade_notebook
from autograder.lessons import FRAMEWORKS, LessonNotebook

pytestmark = pytest.mark.slow

LESSONS = ("01_ml_basics", "02_feature_extraction", "03_fine_tuning", "04_multi_task", "05_domain_adaptation",
           "06_multi_label", "07_text_transfer")
CASES = [LessonNotebook(lesson, framework) for lesson in LESSONS for framework in FRAMEWORKS]

# Valid answers that the grader marks down, by case: (lesson, framework) for the VALID notebook, (lesson, framework,
# answer_id, variant) for an EXTRA one. Each is an xfail(strict=True): fix the grader (or the lesson), then drop it.
GRADER_BUGS: dict[tuple[str, ...], str] = {}


def answer_cells(nb) -> dict[str, nbformat.NotebookNode]:
    """The learner's answer cells by grade_id: nbgrader solution cells that are not graded tests."""
    found = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade") and meta.get("grade_id"):
            found[meta["grade_id"]] = cell
    return found


def with_valid_answers(ln: LessonNotebook, replaced: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The released lesson with every answer cell replaced by its valid alternative (or by ``replaced[id]``)."""
    nb = nbformat.read(ln.release, as_version=4)
    for answer_id, cell in answer_cells(nb).items():
        cell.source = (replaced or {}).get(answer_id, VALID[(ln.lesson, ln.framework, answer_id)])
    return nb


def param(case: tuple[str, ...]):
    """One grading: (lesson, framework) with VALID's answers, or an EXTRA key with that one answer changed."""
    marks = [pytest.mark.xdist_group(case[0])]
    if case in GRADER_BUGS:
        marks.append(pytest.mark.xfail(strict=True, reason=f"grader bug: {GRADER_BUGS[case]}"))
    return pytest.param(case, id="-".join((f"{case[0]}_{case[1]}", *case[2:])), marks=marks)


def assert_full_marks(path, styles: dict[str, str]):
    report = grade_notebook(path, device="cpu")
    assert report.status == "graded", (report.status, report.notes, report.grader_log[-2000:])
    failures = {e.id: {"style": styles.get(e.id), "points": f"{e.points}/{e.max_points}", "messages": e.messages}
                for e in report.exercises if e.points != e.max_points}
    assert report.exercises and not failures, failures
    assert report.score == report.max_score > 0


@pytest.mark.parametrize("case", [param((ln.lesson, ln.framework)) for ln in CASES]
                         + [param(key) for key in EXTRA])
def test_valid_alternatives_earn_full_marks(tmp_path, case):
    ln = LessonNotebook(case[0], case[1])
    styles = {key[2]: style for key, style in STYLES.items() if key[:2] == case[:2]}
    replaced = {}
    if len(case) == 4:  # one further variant; the other answers from VALID
        replaced[case[2]] = EXTRA[case]
        styles[case[2]] = EXTRA_STYLES[case]
    path = tmp_path / f"{ln.stem}.ipynb"
    nbformat.write(with_valid_answers(ln, replaced), path)
    assert_full_marks(path, styles)


def test_every_answer_cell_of_every_lesson_has_a_valid_alternative():
    expected = set()
    for ln in CASES:
        ids = answer_cells(nbformat.read(ln.release, as_version=4))
        assert ids, f"{ln.stem}: no answer cells found"
        expected |= {(ln.lesson, ln.framework, answer_id) for answer_id in ids}
    assert not expected - set(VALID), f"answer cells without an alternative: {sorted(expected - set(VALID))}"
    assert not set(VALID) - expected, f"alternatives for no answer cell: {sorted(set(VALID) - expected)}"
    assert set(STYLES) == set(VALID)
    assert {key[:3] for key in EXTRA} <= expected and set(EXTRA_STYLES) == set(EXTRA)
    assert set(GRADER_BUGS) <= {(ln.lesson, ln.framework) for ln in CASES} | set(EXTRA)
    assert all(source.strip() and "NotImplementedError" not in source for source in [*VALID.values(), *EXTRA.values()])
