"""lessons/ is generated from solutions/ and leaks nothing; the twins match exercise for exercise."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import nbformat
import pytest
from conftest import LESSON_NOTEBOOKS

from autograder.assemble import nbgrader_meta, role
from autograder.exercises import Lesson
from autograder.lessons import FRAMEWORKS, LESSONS, SOLUTIONS, LessonNotebook
from autograder.probe_copy import (
    JUDGES,
    TEST_CASES,
    ProbeSectionError,
    copy_path,
    probe_copy,
    probe_section,
    source_path,
)
from autograder.release import generate
from autograder.rubric import load_exercises
from autograder.source_sync import synced

BLOCK = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.DOTALL)


def graded_cells(path):
    nb = nbformat.read(path, as_version=4)
    return [(nbgrader_meta(c)["grade_id"], role(c), nbgrader_meta(c).get("points")) for c in nb.cells if role(c)]


def test_committed_lessons_are_exactly_what_generation_gives(tmp_path):
    generate(into=tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ipynb"))
    committed = sorted(p.relative_to(LESSONS) for p in LESSONS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    assert fresh == committed, "run `make lessons` and commit lessons/"
    for rel in fresh:
        assert json.loads((tmp_path / rel).read_text()) == json.loads((LESSONS / rel).read_text()), \
            f"lessons/{rel} is stale: run `make lessons` and commit it"


def test_no_solution_or_hidden_test_reaches_lessons():
    secret_lines, public_lines = set(), set()
    for path in SOLUTIONS.rglob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for _, body in BLOCK.findall(cell.source):
                secret_lines |= {line.strip() for line in body.splitlines()
                                 if len(line.strip()) >= 12 and not line.strip().startswith("#")}
            public_lines |= {line.strip() for line in BLOCK.sub("", cell.source).splitlines()}
    secret_lines -= public_lines  # e.g. `tl.seed_everything(0)` also stands in a set-up cell: not a secret
    assert secret_lines, "the solutions should contain solution code"
    for path in LESSONS.rglob("*.ipynb"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path
        lines = {line.strip() for c in nbformat.read(path, as_version=4).cells for line in c.source.splitlines()}
        leaked = sorted(secret_lines & lines)
        assert not leaked, f"{path}: solution or hidden-test code leaked: {leaked[:3]}"


def test_lessons_have_no_outputs_and_keep_nbgrader_metadata():
    for path in LESSONS.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path
        assert any(role(c) == "test" for c in nb.cells), f"{path}: nbgrader metadata lost"
        meta = nb.metadata["tlcourse"]
        assert (meta["lesson"], f'{meta["lesson"]}_{meta["framework"]}') == (path.parent.name, path.stem)


LESSON_IDS = sorted({ln.lesson for ln in LESSON_NOTEBOOKS})


@pytest.mark.parametrize("lesson", LESSON_IDS)
def test_both_frameworks_have_the_same_exercises_ids_and_points(lesson):
    cells = {fw: graded_cells(LessonNotebook(lesson, fw).solution) for fw in FRAMEWORKS}
    assert cells["pytorch"] == cells["keras"]
    rubric = {(e.test_id, e.points) for e in load_exercises(lesson)}
    assert rubric == {(gid, pts) for gid, kind, pts in cells["pytorch"] if kind == "test"}
    answers = {gid for gid, kind, _ in cells["pytorch"] if kind == "answer"}
    assert {e.answer_id for e in load_exercises(lesson)} <= answers


def test_every_lesson_exists_in_both_frameworks():
    stems = {(ln.lesson, ln.framework) for ln in LESSON_NOTEBOOKS}
    assert stems == {(lesson, fw) for lesson in LESSON_IDS for fw in FRAMEWORKS}
    # one folder per lesson holding both twins, in solutions/ and lessons/ alike; no notebook elsewhere
    for folder in (SOLUTIONS, LESSONS):
        found = {p.relative_to(folder) for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
        assert found == {Path(ln.lesson, f"{ln.stem}.ipynb") for ln in LESSON_NOTEBOOKS}


@pytest.mark.parametrize("ln", LESSON_NOTEBOOKS, ids=[ln.stem for ln in LESSON_NOTEBOOKS])
def test_sources_are_in_step_with_their_declarations(ln):
    text = ln.solution.read_text(encoding="utf-8")
    assert synced(json.loads(text), ln) == json.loads(text), f"run `make lessons`: {ln.solution} is out of step"
    headings = "\n".join(c.source for c in nbformat.read(ln.solution, as_version=4).cells if c.cell_type == "markdown")
    assert f"**{sum(e.points for e in load_exercises(ln.lesson)):g} points**" in headings


def test_sync_writes_points_and_hidden_calls_from_the_metadata():
    def cell(kind, source, **nbgrader):
        return {"cell_type": kind, "source": source, "metadata": {"nbgrader": nbgrader} if nbgrader else {}}

    ln = LessonNotebook("01_ml_basics", "pytorch")
    nb = {"cells": [
        cell("markdown", "# Lesson\n\nGraded exercises: **1 point** in 1 part."),
        cell("markdown", "## Part A — Metrics (2 points)\n\nWrite it."),
        cell("code", "def f(): ...", grade_id="metrics", solution=True),
        cell("code", '"""Check Part A."""\nassert f() is None', grade_id="test_metrics", grade=True, points=5),
        cell("markdown", "## Part B — Clustering\n\nWrite it."),
        cell("code", "def g(): ...", grade_id="cluster", solution=True),
        cell("code", "", grade_id="test_cluster", grade=True, points=1),
    ]}
    text = "\n".join(c["source"] for c in synced(nb, ln)["cells"])
    assert "**6 points** in 2 parts (A: 5, B: 1)." in text
    assert "## Part A — Metrics (5 points)\n\nWrite it." in text and "## Part B — Clustering (1 point)" in text
    assert text.count("from autograder.nbgrader_bridge import check") == 2
    assert 'assert f() is None\n\n### BEGIN HIDDEN TESTS' in text
    assert 'check("01_ml_basics", "pytorch", "test_cluster", globals())\n### END HIDDEN TESTS' in text
    assert synced(synced(nb, ln), ln) == synced(nb, ln)
    assert [c["id"] for c in synced(nb, ln)["cells"]] == ["cell-0", "cell-1", "metrics", "test-metrics", "cell-4",
                                                           "cluster", "test-cluster"]


def defined(module, kind: str) -> set[str]:
    return {n.removeprefix(f"{kind}_") for n in vars(module) if n.startswith(f"{kind}_")}


@pytest.mark.parametrize("lesson", LESSON_IDS)
def test_every_exercise_has_its_probe_and_judge_in_one_module_and_nothing_else_does(lesson):
    names = {e.answer_id for e in Lesson(lesson).exercises}
    source = importlib.import_module(f"autograder.rubrics.l{lesson}")  # the one module an author edits
    for kind in ("probe", "judge"):
        assert defined(source, kind) == names, f"{source.__name__}: {kind}_<name> for exactly {sorted(names)}"
    kernel_copy = importlib.import_module(f"autograder.probes.l{lesson}")
    assert (defined(kernel_copy, "probe"), defined(kernel_copy, "judge")) == (names, set())


@pytest.mark.parametrize("lesson", LESSON_IDS)
def test_the_kernels_probe_copy_is_in_step_and_holds_nothing_below_the_marker(lesson):
    text = copy_path(lesson).read_text(encoding="utf-8")
    assert text == probe_copy(lesson), f"run `make lessons`: {copy_path(lesson)} is out of step with its source"
    source = source_path(lesson).read_text(encoding="utf-8")
    below = ast.parse(source.split(JUDGES, 1)[1]).body
    judged = {n.name for n in below if isinstance(n, ast.FunctionDef)}
    judged |= {t.id for n in below if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    in_copy = {n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name)}
    in_copy |= {n.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef)}
    assert JUDGES not in text and "judge_" not in text and not judged & in_copy, sorted(judged & in_copy)


def test_every_probe_copy_has_its_lesson():
    copies = {p.stem for p in copy_path(LESSON_IDS[0]).parent.glob("l[0-9][0-9]_*.py")}
    assert copies == {f"l{lesson}" for lesson in LESSON_IDS}, "a probe copy without its lesson: delete it"


GOOD = f'''"""A lesson."""

import numpy as np

from ..probes.common import require

INPUTS = np.arange(3)


def probe_x(ns, framework):
    return {{"y": require(ns, "f")(INPUTS)}}


{JUDGES}

EXPECTED = 3


def judge_x(obs):
    return [] if obs["y"] == EXPECTED else ["wrong"]
'''


@pytest.mark.parametrize("source,reason", [
    (GOOD.replace(JUDGES, "# judges"), "exactly once"),
    (GOOD + JUDGES + "\n", "exactly once"),
    (GOOD.replace(JUDGES, f'NOTE = """\n{JUDGES}\n"""'), "inside the statement"),
    (GOOD.replace("def probe_x", "def judge_y(obs):\n    return []\n\n\ndef probe_x"), "judges belong below"),
    (GOOD.replace("(INPUTS)}", "(EXPECTED)}"), "defined only below the marker: ['EXPECTED']"),
    (GOOD.replace("from ..probes.common", "from .common"), "from ..probes.common import"),
    (GOOD.replace(JUDGES, f"{TEST_CASES}\n{JUDGES}"), "after the judges'"),
])
def test_a_probe_section_that_could_leak_or_break_is_refused(source, reason):
    assert probe_section(GOOD) == GOOD.split(JUDGES)[0].rstrip("\n") + "\n"
    with pytest.raises(ProbeSectionError, match=re.escape(reason)):
        probe_section(source)


def test_the_readme_lesson_table_states_each_lessons_points():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for lesson in LESSON_IDS:
        total = sum(e.points for e in Lesson(lesson).exercises)
        row = next((line for line in readme.splitlines() if line.startswith(f"| {lesson[:2]} ")), None)
        assert row is not None and row.rstrip(" |").endswith(f"| {total:g}"), f"README's table: {lesson} has {total:g}"


def test_test_cases_declared_in_a_lesson_module_join_the_suites_tables(monkeypatch):
    import lesson_cases

    assert lesson_cases.declared()["01_ml_basics"]["majority"]["extra"], "lesson 01 uses its module's test cases"
    cases = {"a": {"wrong": "w", "group": 1, "valid": {"keras": ("s", "v")}}, "b": {"wrong": {"keras": "w"}},
             "c": {"wrong": "w", "group": 1, "extra": {("pytorch", "x"): ("s", "e")}}}
    monkeypatch.setattr(lesson_cases, "declared", lambda: {"99_demo": cases})
    assert lesson_cases.wrong_answers() == ({("99_demo", "a"): "w", ("99_demo", "b"): {"keras": "w"},
                                             ("99_demo", "c"): "w"}, {"99_demo": [["a", "c"], ["b"]]})
    assert lesson_cases.valid_answers() == ({("99_demo", "keras", "a"): ("s", "v")},
                                            {("99_demo", "pytorch", "c", "x"): ("s", "e")})
