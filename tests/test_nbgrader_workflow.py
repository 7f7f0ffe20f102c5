"""The README's plain-nbgrader workflow, run as an instructor types it, and feedback that quotes no test code.

The instructor's lines (README, "For instructors") run as shell commands, word for word, in a copy of the course
as a fresh clone has it (nbgrader_config.py, solutions/ and lessons/ of lesson 00, no gradebook), with a PATH that
does not hold the virtualenv's bin/ (no activated virtualenv): ``.venv`` there is a link to this checkout's.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.lessons import LessonNotebook
from autograder.nbgrader_feedback import HIDDEN_FRAME, ScrubTestErrors
from autograder.rubric import load_exercises

pytestmark = pytest.mark.xdist_group("nbgrader_workflow")

REPO = Path(__file__).resolve().parents[1]
LN = LessonNotebook("00_setup", "pytorch")
ASSIGNMENT = LN.assignment
# The README's lines, exactly.
GENERATE = f".venv/bin/nbgrader generate_assignment {ASSIGNMENT} --force"
AUTOGRADE = f".venv/bin/nbgrader autograde {ASSIGNMENT}"
FEEDBACK = f".venv/bin/nbgrader generate_feedback {ASSIGNMENT}"
EXPORT = ".venv/bin/nbgrader export"

# What no feedback page may show: hidden test code, or a traceback that could quote it.
FORBIDDEN = ["BEGIN HIDDEN TESTS", "nbgrader_bridge", "check(", "Traceback", "autograder/"]
# Lesson 00's wrong answer (tests/wrong_answers.py) trips the visible half of the check cell first:
VISIBLE_ASSERT = "AssertionError: image_shape should be (height, width) of ONE image"
# ... so a fourth learner makes a mistake only the hidden half (the rubric) catches.
MISCOUNTED = '''ds = load_dataset("digits")
n_images = ds.x.size  # every pixel, not every image
image_shape = ds.x.shape[1:]
n_classes = len(ds.classes)
'''


def shell_env() -> dict[str, str]:
    """This environment less the virtualenv: its bin/ is not on PATH, as when none is activated."""
    venv_bin = (REPO / ".venv" / "bin").resolve()
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv_bin]
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = os.pathsep.join(path)
    return env


def sh(line: str, course: Path) -> subprocess.CompletedProcess:
    return subprocess.run(line, shell=True, cwd=course, env=shell_env(), capture_output=True, text=True, check=False)


def ok(line: str, course: Path) -> subprocess.CompletedProcess:
    result = sh(line, course)
    assert result.returncode == 0, f"$ {line}\n{result.stdout}{result.stderr}"
    return result


def clean_course(root: Path) -> Path:
    """Lesson 00 of the course as a fresh clone has it: config, source and released lesson, no gradebook."""
    from autograder.release import copy_course

    course = copy_course(root, [LN], released=True)
    (course / ".venv").symlink_to(REPO / ".venv")
    return course


def released(course: Path) -> Path:
    return course / LN.release.relative_to(REPO)


@dataclass(frozen=True)
class CopiedLesson:
    """The lesson as the course copy has it, for ``submissions.solved`` (which reads ``.release`` and ``.solution``):
    submissions match the copy even while someone edits the checkout's solutions/ or lessons/."""

    solution: Path
    release: Path


def page_text(page: str) -> str:
    """What a browser shows of a feedback page: the body's text, tags dropped, entities decoded."""
    body = re.sub(r"(?s)<(style|script)\b.*?</\1>", "", page[page.find("<body"):])
    return html.unescape(re.sub(r"<[^>]+>", "", body))


# --- the workflow: generate, autograde, feedback, export ------------------------------------------------------

@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    from submissions import solved, write
    from wrong_answers import wrong_source

    course = clean_course(tmp_path_factory.mktemp("nbgrader-workflow"))
    generated = ok(GENERATE, course)

    ln = CopiedLesson(course / LN.solution.relative_to(REPO), released(course))
    submitted = course / "submitted"
    write(solved(ln), submitted / "solved" / ASSIGNMENT / f"{LN.stem}.ipynb")
    write(solved(ln, {"load_data": wrong_source("00_setup", "load_data", "pytorch")}),
          submitted / "wrong" / ASSIGNMENT / f"{LN.stem}.ipynb")
    write(solved(ln, {"load_data": MISCOUNTED}), submitted / "miscounted" / ASSIGNMENT / f"{LN.stem}.ipynb")
    (submitted / "blank" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(released(course), submitted / "blank" / ASSIGNMENT)

    for line in (AUTOGRADE, FEEDBACK, EXPORT):
        ok(line, course)
    return course, generated


@pytest.mark.slow
def test_generate_assignment_creates_the_gradebook_and_keeps_the_lesson(workflow):
    course, generated = workflow
    with sqlite3.connect(course / ".nbgrader" / "gradebook.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall(), "alembic did not stamp the gradebook"
        assert db.execute("SELECT name FROM assignment").fetchall() == [(ASSIGNMENT,)]
    lesson = nbformat.read(released(course), as_version=4)
    assert lesson.cells and not any("BEGIN SOLUTION" in c.source or "HIDDEN TESTS" in c.source for c in lesson.cells)
    assert "Removing existing assignment" not in generated.stderr  # lessons/ is replaced, never removed first
    assert not list((course / ".nbgrader").glob("release-*")), "the scratch release folder was left behind"


@pytest.mark.slow
def test_export_gives_one_framework_full_marks(workflow):
    course, _ = workflow
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in csv.DictReader(f)}
    full = float(sum(e.points for e in load_exercises(LN.lesson)))
    assert full == 2
    assert rows == {"solved": (2, full), "wrong": (1, full), "miscounted": (1, full), "blank": (0, full)}


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["solved", "wrong", "miscounted", "blank"])
def test_feedback_quotes_no_test_code(workflow, learner):
    course, _ = workflow
    page = (course / "feedback" / learner / ASSIGNMENT / f"{LN.stem}.html").read_text()
    markup = re.sub(r"(?s)<style\b.*?</style>", "", page)  # the CSS names Pygments' "Generic.Traceback" style
    text = page_text(page)
    for needle in FORBIDDEN:
        assert needle not in text, f"{learner}'s feedback shows {needle!r}"
        assert needle not in markup, f"{learner}'s feedback holds {needle!r} in its markup"
    # what stays: each check's points and the visible half of its cell
    assert "Grade cell: test_load_data" in text and "Grade cell: test_first_model" in text
    assert 'assert n_classes == 10, "the digits have 10 classes, 0 to 9"' in text


@pytest.mark.slow
def test_feedback_gives_the_failed_checks_message(workflow):
    from autograder.rubrics.l00_setup import judge_load_data
    from tlkit.data import load_dataset

    course, _ = workflow
    text = {who: page_text((course / "feedback" / who / ASSIGNMENT / f"{LN.stem}.html").read_text())
            for who in ("wrong", "miscounted", "blank")}
    assert VISIBLE_ASSERT in text["wrong"]
    assert "Score: 0.0 / 1.0" in text["wrong"] and "Score: 1.0 / 1.0" in text["wrong"]
    ds = load_dataset("digits")
    messages = judge_load_data({"n_images": ds.x.size, "image_shape": list(ds.x.shape[1:]),
                                "n_classes": len(ds.classes)})
    assert messages and "`n_images`" in messages[0]
    assert "AssertionError: " + "\n".join(messages) in text["miscounted"]  # the hidden check's own message
    assert "NotImplementedError" in text["blank"] and "NameError: name 'n_images' is not defined" in text["blank"]


# --- a failing generate_assignment never deletes a released lesson ---------------------------------------------

@pytest.mark.slow
def test_a_failing_generate_assignment_keeps_the_released_lesson(tmp_path):
    course = clean_course(tmp_path)
    before = released(course).read_bytes()

    # the gradebook cannot be opened
    result = sh(f"{GENERATE} --CourseDirectory.db_url=sqlite:////nonexistent/dir/gradebook.db", course)
    assert result.returncode != 0, result.stdout + result.stderr
    assert released(course).read_bytes() == before

    # the notebook fails to convert, after nbgrader has started writing the release
    source = course / LN.solution.relative_to(REPO)
    source.write_text(source.read_text().replace("### END HIDDEN TESTS", "### END OF NOTHING", 1))
    result = sh(GENERATE, course)
    assert result.returncode != 0 and "No end hidden tests statement found" in result.stderr
    assert released(course).read_bytes() == before
    assert not list((course / ".nbgrader").glob("release-*"))

    # nbgrader on its own (the release directory named on the command line, which nbgrader_config.py leaves alone,
    # as `make lessons` needs): --force removes the release folder first, and a failure leaves none
    plain = course / "plain-release" / ASSIGNMENT
    plain.mkdir(parents=True)
    shutil.copy(released(course), plain)
    result = sh(f"{GENERATE} --CourseDirectory.db_url=sqlite:////nonexistent/dir/gradebook.db "
                f"--CourseDirectory.release_directory={plain.parent}", course)
    assert result.returncode != 0 and "Removing existing assignment" in result.stderr
    assert not plain.exists() and released(course).read_bytes() == before


# --- the feedback preprocessor, without nbgrader --------------------------------------------------------------

ESC = "\x1b"
GRADER_TRACEBACK = [
    f"{ESC}[31m---------------------------------------------------------------------------{ESC}[39m",
    f"{ESC}[31mAssertionError{ESC}[39m                            Traceback (most recent call last)",
    (f"{ESC}[36mCell{ESC}[39m In[4], line 7\n      6 from autograder.nbgrader_bridge import check\n"
     f'----> 7 check("00_setup", "pytorch", "test_load_data", globals())'),
    (f"File {ESC}[32m/course/autograder/nbgrader_bridge.py:19{ESC}[39m, in check(lesson, framework, test_id, ns)\n"
     "     18 if messages:\n---> 19     raise AssertionError(\"\\n\".join(messages))"),
    f"{ESC}[31mAssertionError{ESC}[39m: `n_images` is not the number of images",
]
# A learner's answer that calls into the grader: their frames, then two of the grader's, then the error.
ANSWER_TRACEBACK = [
    "---------------------------------------------------------------------------",
    "ValueError                                Traceback (most recent call last)",
    "Cell In[3], line 2\n      1 from autograder.rubric import load_exercises\n----> 2 load_exercises(42)",
    "File /course/autograder/rubric.py:30, in load_exercises(lesson)\n---> 30 module = import_module(name)",
    "File C:\\course\\autograder\\lessons.py:12, in f()\n---> 12 raise ValueError(secret)",
    "File /venv/lib/python3.11/site-packages/numpy/core.py:3, in g()\n----> 3 raise ValueError",
    "ValueError: bad lesson",
]


def graded_cell(grade_id: str, *, solution: bool, grade: bool, outputs: list):
    cell = new_code_cell("x = 1", outputs=outputs)
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": not solution,
                                 "points": 1 if grade else 0, "schema_version": 3}
    return cell


def error(traceback: list[str], ename: str = "AssertionError", evalue: str = "`n_images` is not the number of images"):
    return new_output("error", ename=ename, evalue=evalue, traceback=list(traceback))


def scrubbed(nb, **config):
    from traitlets.config import Config

    out, _ = ScrubTestErrors(config=Config({"ScrubTestErrors": config})).preprocess(nb, {})
    return out


def test_scrub_cuts_every_error_to_its_one_line():
    nb = new_notebook(cells=[
        graded_cell("test_load_data", solution=False, grade=True, outputs=[
            new_output("stream", name="stdout", text="1497 images of shape (8, 8)\n"),
            new_output("stream", name="stderr", text='/course/autograder/x.py:3: UserWarning: w\n  check("00")\n'),
            error(GRADER_TRACEBACK, evalue=f"`n_images` is {ESC}[1mnot{ESC}[0m the number of images")]),
        graded_cell("load_data", solution=True, grade=False, outputs=[
            error(["-----", "NotImplementedError   Traceback (most recent call last)", "Cell In[3], line 3",
                   "NotImplementedError: "], ename="NotImplementedError", evalue="")]),
    ])
    test, answer = scrubbed(nb).cells
    assert [o.output_type for o in test.outputs] == ["stream", "error"]  # stderr gone, stdout kept
    assert test.outputs[1].traceback == ["AssertionError: `n_images` is not the number of images"]
    assert answer.outputs[0].traceback == ["NotImplementedError"]


def test_scrub_can_keep_answer_tracebacks_without_grader_frames():
    nb = new_notebook(cells=[
        graded_cell("test_load_data", solution=False, grade=True, outputs=[error(GRADER_TRACEBACK)]),
        graded_cell("load_data", solution=True, grade=False, outputs=[error(ANSWER_TRACEBACK)]),
    ])
    test, answer = scrubbed(nb, keep_answer_tracebacks=True).cells
    assert test.outputs[0].traceback == ["AssertionError: `n_images` is not the number of images"]
    assert answer.outputs[0].traceback == [*ANSWER_TRACEBACK[:3], HIDDEN_FRAME, *ANSWER_TRACEBACK[5:]]


def test_config_adds_the_scrubbers_to_nbgraders_feedback_defaults(tmp_path, monkeypatch):
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # the config puts .venv/bin first: undone after the test
    for ln in (LN, LessonNotebook("00_setup", "keras")):
        for notebook in (ln.solution, ln.release):
            (tmp_path / notebook.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(notebook, tmp_path / notebook.relative_to(REPO))
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert config.GenerateFeedback.preprocessors == [GetGrades, ClearHiddenTests,
                                                     "autograder.nbgrader_feedback.ScrubTestErrors",
                                                     CSSHTMLHeaderPreprocessor]
    # nbgrader sees each notebook as its own assignment, through links into the lesson folders
    for folder, notebook in (("solutions", LN.solution), ("lessons", LN.release)):
        view = Path(getattr(config.CourseDirectory, f"{'source' if folder == 'solutions' else 'release'}_directory"))
        assert view == tmp_path.resolve() / ".nbgrader" / folder
        assert (view / ASSIGNMENT / notebook.name).resolve() == (tmp_path / notebook.relative_to(REPO)).resolve()
    # generate_assignment alone writes to a scratch folder, which its hook swaps in for lessons/<lesson>/
    scratch = Path(config.GenerateAssignmentApp.CourseDirectory.release_directory)
    assert scratch.parent == tmp_path.resolve() / ".nbgrader" and scratch.name == f"release-{os.getpid()}"
    assert callable(config.GenerateAssignmentApp.GenerateAssignment.post_convert_hook)


def test_the_readme_shows_exactly_the_lines_this_file_runs():
    readme = (REPO / "README.md").read_text()
    for line in (GENERATE, AUTOGRADE, FEEDBACK, EXPORT):
        assert f"\n     {line}\n" in readme, f"README.md no longer shows `{line}`: keep it and this test in step"
