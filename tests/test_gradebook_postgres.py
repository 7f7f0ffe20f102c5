"""nbgrader's gradebook on a real PostgreSQL server: class runs write scores, `nbgrader export` shows them.

The server comes from the ``pgserver`` wheel (PostgreSQL's own binaries, pinned in requirements.txt), started
in a temporary folder, so a clean clone needs nothing else."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from submissions import solved, write
from wrong_answers import wrong_source

from autograder.lessons import LessonNotebook
from autograder.release import copy_course, nbgrader_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres")]
ROOT = Path(__file__).resolve().parents[1]
L00, L01 = LessonNotebook("00_setup", "pytorch"), LessonNotebook("01_ml_basics", "pytorch")


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


def database(server, name: str) -> str:
    """A fresh database on the server; its SQLAlchemy URL (plain ``postgresql://``: nbgrader's db_url)."""
    server.psql(f"CREATE DATABASE {name};")
    return server.get_uri(name)


def course_with_gradebook(root: Path, url: str, notebooks: list[LessonNotebook]) -> Path:
    course = copy_course(root, notebooks)
    for ln in notebooks:
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ln.assignment, "--force",
                        f"--db={url}"], cwd=course, env=nbgrader_env(), check=True, capture_output=True)
    return course


def nbgrader_export(course: Path, url: str) -> dict[tuple[str, str], float]:
    target = course / "export.csv"
    subprocess.run([sys.executable, "-m", "nbgrader", "export", f"--db={url}", f"--to={target}"], cwd=course,
                   env=nbgrader_env(), check=True, capture_output=True)
    with target.open() as f:
        return {(row["assignment"], row["student_id"]): float(row["score"]) for row in csv.DictReader(f)}


def grade_class(submitted: Path, lesson: str, out: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder", "class", str(submitted), "--lesson", lesson,
                             "--out", str(out), "--device", "cpu", "--workers", "2", "--gradebook", url],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_class_scores_in_a_postgresql_gradebook_and_nbgrader_export(postgres, tmp_path):
    url = database(postgres, "one_class")
    assert url.startswith("postgresql://")
    course = course_with_gradebook(tmp_path / "course", url, [L00])
    sub = tmp_path / "submitted"
    write(solved(L00), sub / "alice" / L00.assignment / f"{L00.stem}.ipynb")
    write(nbformat.read(L00.release, as_version=4), sub / "bob" / L00.assignment / f"{L00.stem}.ipynb")
    carol = solved(L00, {"load_data": wrong_source("00_setup", "load_data", "pytorch")})
    write(carol, sub / "carol" / L00.assignment / f"{L00.stem}.ipynb")
    proc = grade_class(sub, L00.lesson, tmp_path / "grades", url)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    assert "3 notebooks written to the gradebook" in output
    assert nbgrader_export(course, url) == {(L00.assignment, "alice"): 2.0, (L00.assignment, "bob"): 0.0,
                                            (L00.assignment, "carol"): 1.0}


def test_two_class_runs_writing_at_once_lose_no_row(postgres, tmp_path):
    """Two lessons' class runs, the same learners, one gradebook, at the same time: every row is there."""
    url = database(postgres, "two_runs")
    course = course_with_gradebook(tmp_path / "course", url, [L00, L01])
    learners = [f"learner{i:02d}" for i in range(25)]
    for ln in (L00, L01):
        for learner in learners:  # untouched lessons: graded (every exercise 0) without running a kernel
            target = tmp_path / ln.lesson / learner / ln.assignment / f"{ln.stem}.ipynb"
            target.parent.mkdir(parents=True)
            target.write_bytes(ln.release.read_bytes())
    runs = [grade_class(tmp_path / ln.lesson, ln.lesson, tmp_path / "grades", url) for ln in (L00, L01)]
    for proc in runs:
        output = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, output
        assert f"{len(learners)} notebooks written to the gradebook" in output
    exported = nbgrader_export(course, url)
    assert exported == {(ln.assignment, learner): 0.0 for ln in (L00, L01) for learner in learners}


def test_writes_that_collide_are_made_again(postgres, tmp_path):
    """Two writers start at the same instant on the same new learners, so they race to create each one: the loser
    of a race rolls back and writes again, and no score is lost."""
    import threading

    from autograder.classroom import export_to_gradebook
    from autograder.grade import grade_notebook

    url = database(postgres, "races")
    course = course_with_gradebook(tmp_path / "course", url, [L00, L01])
    learners = [f"learner{i:02d}" for i in range(40)]
    records = {ln: [{"learner": learner, **grade_notebook(ln.release, device="cpu").to_dict()} for learner in learners]
               for ln in (L00, L01)}
    start, written, errors = threading.Barrier(2), {}, []

    def writer(ln):
        start.wait()
        try:
            written[ln] = export_to_gradebook(records[ln], url)
        except Exception as err:  # noqa: BLE001  (reported by the assertion below)
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(ln,)) for ln in (L00, L01)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and written == {L00: len(learners), L01: len(learners)}
    assert nbgrader_export(course, url) == {
        (ln.assignment, learner): 0.0 for ln in (L00, L01) for learner in learners}
