"""Bad input gets a clear report and loses only what could not run; the grader itself never crashes."""

from __future__ import annotations

import json

import nbformat
import pytest
from submissions import solved

from autograder.assemble import nbgrader_meta
from autograder.lessons import LessonNotebook

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("robustness")]
L00 = LessonNotebook("00_setup", "pytorch")


def with_cell(gid: str, source: str, ln=L00):
    return solved(ln, {gid: source})


def by_id(report):
    return {e.id: e for e in report.exercises}


@pytest.mark.parametrize("content,needle", [
    (b"{ this is not json", "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"", "not valid JSON"),
    (b'["a", "list"]', "not a Jupyter notebook"),
    (b'{"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "malformed"),
])
def test_unreadable_files_score_zero_with_a_reason(graded, tmp_path, content, needle):
    path = tmp_path / "00_setup_pytorch.ipynb"
    path.write_bytes(content)
    report = graded(f"bad-{hash(content)}", path)
    assert report.status == "invalid_notebook" and report.score == 0
    assert any(needle in n for n in report.notes), report.notes
    assert report.max_score == 2 and [e.points for e in report.exercises] == [0, 0]  # the lesson is known by name


def test_notebook_of_no_lesson(graded, tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"tlcourse": {"lesson": "99_quantum", "framework": "pytorch"}})
    path = tmp_path / "mine.ipynb"
    nbformat.write(nb, path)
    report = graded("unknown-lesson", path)
    assert report.status == "unknown_lesson" and report.score == 0
    assert "belongs to no lesson" in report.notes[0]


def test_nbformat_v3_is_converted_and_graded(graded, tmp_path):
    v3 = nbformat.convert(solved(L00), 3)
    path = tmp_path / "00_setup_pytorch.ipynb"
    path.write_text(json.dumps(v3))
    report = graded("v3", path)
    assert report.status == "graded" and report.score == 2, [(e.id, e.messages) for e in report.exercises]


def test_infinite_loop_costs_only_its_exercise(graded):
    report = graded("loop", with_cell("first_model", "while True:\n    pass"), cell_timeout=10)
    assert report.status == "graded" and "per-cell time limit" in report.notes[0]
    assert by_id(report)["load_data"].points == 1 and by_id(report)["first_model"].points == 0


def test_loop_that_ignores_interrupts_loses_only_what_comes_after(graded):
    stubborn = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    report = graded("stubborn", with_cell("first_model", stubborn), cell_timeout=10, notebook_timeout=300)
    assert by_id(report)["load_data"].points == 1 and by_id(report)["first_model"].points == 0
    assert "could not run" in by_id(report)["first_model"].messages[0]
    assert report.seconds < 200


def test_whole_notebook_timeout_stops_the_run(graded):
    report = graded("notebook-timeout", with_cell("first_model", "import time\ntime.sleep(3600)"),
                    cell_timeout=600, notebook_timeout=25)
    assert report.status == "timeout" and "did not finish within 25 s" in report.notes[-1]
    assert by_id(report)["load_data"].points == 1 and by_id(report)["first_model"].points == 0
    assert report.seconds < 70


def test_killed_kernel_keeps_what_ran_before(graded):
    report = graded("exit", with_cell("first_model", "import os\nos._exit(3)"))
    assert report.status == "kernel_died" and "kernel died" in report.notes[0]
    assert by_id(report)["load_data"].points == 1 and by_id(report)["first_model"].points == 0


def test_cells_after_the_last_check_are_not_run(graded):
    """They cannot change a grade: a closing cell that would kill the kernel costs nothing and is not reported."""
    nb = solved(L00)
    nb.cells.append(nbformat.v4.new_code_cell("import os\nos._exit(3)"))
    report = graded("after_last_check", nb)
    assert report.status == "graded" and report.score == 2, (report.status, report.notes)


def test_stderr_and_warnings_do_not_cost_points(graded):
    noisy = ("import sys, warnings\nprint('debug', file=sys.stderr)\nwarnings.warn('careful')\n"
             + solved_source("first_model"))
    report = graded("noisy", with_cell("first_model", noisy))
    assert report.score == 2, [(e.id, e.messages) for e in report.exercises]


def test_flood_of_output_is_capped_and_costs_nothing(graded):
    flood = "for _ in range(3000):\n    print('x' * 2000)\n" + solved_source("first_model")  # 6 MB, in chunks
    report = graded("flood", with_cell("first_model", flood))
    assert report.score == 2, [(e.id, e.messages) for e in report.exercises]
    assert any("printed more than 2 MB" in note for note in report.notes), report.notes


def test_deleted_and_edited_test_cells_are_still_checked(graded):
    nb = with_cell("load_data", 'ds = load_dataset("digits")\nn_images, image_shape, n_classes = 1, (8, 8), 10')
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != "test_load_data"]  # deleted
    for c in nb.cells:
        if nbgrader_meta(c).get("grade_id") == "test_first_model":
            c.source = "pass  # a learner's 'fix' of the check"
    report = graded("tampered-tests", nb)
    assert by_id(report)["load_data"].points == 0  # the deleted check ran anyway and caught n_images
    assert by_id(report)["first_model"].points == 1


def test_feedback_never_shows_hidden_test_code(graded):
    report = graded("wrong-shape", with_cell("load_data", 'ds = load_dataset("digits")\n'
                                              'n_images, image_shape, n_classes = len(ds.x), ds.x.shape, 10'))
    text = json.dumps(report.to_dict())
    assert "image_shape" in text and "check(" not in text and "probe" not in text.lower()


def solved_source(gid: str) -> str:
    from submissions import answer_sources

    return answer_sources(L00)[gid]


def test_grading_renders_no_figures(graded):
    """Outputs are thrown away, so the grading kernel never draws a figure into a PNG (saves ~1 s a plot);
    a plot cell still runs."""
    check = ("%matplotlib inline\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([0, 1])\n"
             "formats, _ = get_ipython().display_formatter.format(fig)\n"
             "assert 'image/png' not in formats, f'the grading kernel would render a figure: {sorted(formats)}'\n")
    report = graded("no_figures", with_cell("first_model", check + solved_source("first_model")))
    assert report.score == 2, [(e.id, e.messages) for e in report.exercises]
