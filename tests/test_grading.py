"""The autograder on every lesson: solutions earn full marks, blanks 0, each wrong answer loses its points."""

from __future__ import annotations

import nbformat
import pytest
from conftest import IDS, LESSON_NOTEBOOKS
from submissions import solved
from wrong_answers import GROUPS, wrong_source

from autograder.assemble import assemble, nbgrader_meta, role
from autograder.protocol import PROBE_KEY
from autograder.rubric import NOT_ANSWERED, load_exercises

pytestmark = pytest.mark.slow


def by_lesson(cases, ids):
    """Keep each lesson's gradings on one xdist worker, so the session cache serves every test of that lesson."""
    return [pytest.param(*(c if isinstance(c, tuple) else (c,)), id=i,
                         marks=pytest.mark.xdist_group((c[0] if isinstance(c, tuple) else c).lesson))
            for c, i in zip(cases, ids)]


def points(report) -> dict[str, float]:
    return {e.id: e.points for e in report.exercises}


@pytest.mark.parametrize("ln", by_lesson(LESSON_NOTEBOOKS, IDS))
def test_solution_earns_full_marks(graded, ln):
    report = graded(f"solution-{ln.stem}", solved(ln))  # the released lesson with every answer filled in
    failures = {e.id: e.messages for e in report.exercises if not e.passed}
    assert report.status == "graded", report.notes
    assert not failures, failures
    assert report.score == report.max_score == sum(e.points for e in load_exercises(ln.lesson)) > 0


@pytest.mark.parametrize("ln", by_lesson(LESSON_NOTEBOOKS, IDS))
def test_blank_lesson_earns_zero_without_crashing(graded, ln):
    report = graded(f"blank-{ln.stem}", ln.release, run_unanswered=True)  # executed, hidden checks and all
    assert report.status == "graded", report.notes
    assert report.score == 0 and len(report.exercises) == len(load_exercises(ln.lesson))
    for ex in report.exercises:
        assert ex.messages, f"{ex.id}: a failed exercise must say why"
        assert any("Not answered" in m or "not defined" in m for m in ex.messages), ex.messages
    # The grader does not run an untouched lesson: the points it gives without running are the executed ones.
    shortcut = graded(f"blank-{ln.stem}", ln.release)
    assert shortcut.isolation.startswith("not run") and shortcut.status == "graded"
    assert points(shortcut) == points(report)
    assert all(e.messages == [NOT_ANSWERED] for e in shortcut.exercises)


def test_a_touched_lesson_is_run_even_with_every_answer_blank(graded):
    """Only the untouched lesson is spared a run: an added cell, or one answer changed, means the code differs."""
    ln = next(ln for ln in LESSON_NOTEBOOKS if ln.lesson == "00_setup")
    added = nbformat.read(ln.release, as_version=4)
    added.cells.insert(1, nbformat.v4.new_code_cell("print('my own cell')"))  # cells after the last check are cut
    one_answer = nbformat.read(ln.release, as_version=4)
    next(c for c in one_answer.cells if nbgrader_meta(c).get("solution")).source += "\n# tried"
    for key, nb in {"added-cell": added, "one-answer-touched": one_answer}.items():
        report = graded(f"{key}-{ln.stem}", nb)
        assert report.isolation and not report.isolation.startswith("not run"), key
        assert report.status == "graded" and report.score == 0, (key, report.notes)


@pytest.mark.parametrize("ln", LESSON_NOTEBOOKS, ids=IDS)
def test_graded_notebook_runs_every_check_and_stops_after_the_last(ln):
    """Nothing after the last check can change a grade, so the grader does not run a lesson's closing cells."""
    source = nbformat.read(ln.solution, as_version=4)
    runnable, _ = assemble(solved(ln), source, ln)
    probes = [c.metadata[PROBE_KEY] for c in runnable.cells if c.metadata.get(PROBE_KEY)]
    assert sorted(probes) == sorted(nbgrader_meta(c)["grade_id"] for c in source.cells if role(c) == "test")
    assert runnable.cells[-1].metadata.get(PROBE_KEY) == probes[-1]


WRONG_CASES = [(ln, group) for ln in LESSON_NOTEBOOKS for group in GROUPS.get(ln.lesson, [])]


def test_every_exercise_of_every_lesson_has_a_wrong_answer_under_test():
    for lesson in sorted({ln.lesson for ln in LESSON_NOTEBOOKS}):
        grouped = [aid for group in GROUPS.get(lesson, []) for aid in group]
        assert sorted(grouped) == sorted(e.answer_id for e in load_exercises(lesson)), lesson


@pytest.mark.parametrize("ln,group", by_lesson(WRONG_CASES, [f"{ln.stem}-{'+'.join(g)}" for ln, g in WRONG_CASES]))
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


# --- nbgrader autograde gives the same scores -------------------------------------------------------------------

def nbgrader(args: list[str], cwd):
    import subprocess
    import sys

    from autograder.release import nbgrader_env

    result = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=ERROR"], cwd=cwd,
                            capture_output=True, text=True, env=nbgrader_env(), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# nbgrader executes each submission in full; for the slower lessons one submission holding right and wrong answers
# shows agreement on both sides (full marks and blanks are covered by the course grader's own tests above).
FULL_NBGRADER_AGREEMENT = {"00_setup", "01_ml_basics"}
LESSONS = sorted({ln.lesson for ln in LESSON_NOTEBOOKS})


def nbgrader_notebooks(lesson: str) -> list:
    """Both frameworks of the quick lessons; one of each slower lesson, PyTorch and Keras in turn."""
    notebooks = [ln for ln in LESSON_NOTEBOOKS if ln.lesson == lesson]
    if lesson in FULL_NBGRADER_AGREEMENT:
        return notebooks
    framework = ("pytorch", "keras")[LESSONS.index(lesson) % 2]
    return [ln for ln in notebooks if ln.framework == framework]


@pytest.mark.parametrize("lesson", [pytest.param(lesson, marks=pytest.mark.xdist_group(lesson)) for lesson in LESSONS])
def test_nbgrader_autograde_agrees_with_the_course_grader(graded, tmp_path, lesson):
    import shutil

    from nbgrader.api import Gradebook
    from submissions import write

    from autograder.release import copy_course

    course = copy_course(tmp_path, nbgrader_notebooks(lesson))
    ours = {}
    for ln in nbgrader_notebooks(lesson):
        nbgrader(["generate_assignment", ln.assignment, "--force"], course)
        subs = {}
        if lesson in FULL_NBGRADER_AGREEMENT:
            subs = {f"solution-{ln.stem}": (solved(ln), graded(f"solution-{ln.stem}", solved(ln))),
                    f"blank-{ln.stem}": (None, graded(f"blank-{ln.stem}", ln.release))}
        for group in GROUPS.get(lesson, [])[:1]:  # right and wrong answers in one run: both sides in nbgrader too
            key = f"wrong-{ln.stem}-{'+'.join(group)}"
            nb = solved(ln, {aid: wrong_source(lesson, aid, ln.framework) for aid in group})
            subs[key] = (nb, graded(key, nb))
        for key, (nb, report) in subs.items():
            student = key.replace("+", "-").replace("_", "-")
            target = course / "submitted" / student / ln.assignment / f"{ln.stem}.ipynb"
            if nb is None:
                target.parent.mkdir(parents=True)
                shutil.copy(ln.release, target)
            else:
                write(nb, target)
            ours[(student, ln)] = {e.test_id: e.points for e in report.exercises}
        nbgrader(["autograde", ln.assignment, "--force"], course)

    with Gradebook(f"sqlite:///{course / '.nbgrader' / 'gradebook.db'}") as gb:
        for (student, ln), expected in ours.items():
            nb = gb.find_submission_notebook(ln.stem, ln.assignment, student)
            theirs = {g.name: g.score for g in nb.grades if g.name in expected}
            assert theirs == expected, f"{student}/{ln.stem}: nbgrader {theirs} vs course grader {expected}"
            # one framework is the whole assignment: a full notebook is full marks, not half
            assert gb.find_submission(ln.assignment, student).max_score == sum(e.points for e in load_exercises(lesson))


TORCH_BACKEND_CELL_TIMEOUT = 600  # seconds per cell
KERAS_ON_TORCH = [ln for ln in LESSON_NOTEBOOKS if ln.framework == "keras" and ln.lesson != "00_setup"]


@pytest.mark.parametrize("ln", by_lesson(KERAS_ON_TORCH, [ln.lesson for ln in KERAS_ON_TORCH]))
def test_keras_lesson_grades_the_same_on_the_torch_backend(graded, monkeypatch, ln):
    """GPU machines carry torch but not TensorFlow: Keras lessons must earn the same there."""
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    # Keras on torch runs eagerly, several times slower than on TensorFlow on a CPU (on a GPU it is fast): this test
    # is about the grade, so a busy CI machine gets more time per cell than the default.
    on_torch = graded(f"solution-{ln.stem}-torch-backend", solved(ln), cell_timeout=TORCH_BACKEND_CELL_TIMEOUT)
    monkeypatch.delenv("KERAS_BACKEND")
    on_tf = graded(f"solution-{ln.stem}", solved(ln))
    assert on_torch.status == "graded", on_torch.notes
    why = {e.id: e.messages for e in on_torch.exercises if e.messages}
    assert points(on_torch) == points(on_tf) and on_torch.score == on_torch.max_score, why
