"""Hostile submissions: each gets an exact status and score, and nothing outside its sandbox changes.

Every case is a learner's lesson-00 notebook whose `first_model` answer (or a cell of its own) does something
it should not. Judging happens outside the learner's process, so tampering inside it cannot buy points;
the sandbox (bubblewrap when available) hides the course files and the network.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from pathlib import Path

import nbformat
import pytest
from submissions import answer_sources, solved

from autograder.course_files import holdout_inputs_dir
from autograder.exercises import Lesson
from autograder.grade import MAX_NOTEBOOK_BYTES
from autograder.lessons import REPO_ROOT, LessonNotebook
from autograder.sandbox import bwrap_works, dedicated_uid_works, pids_cgroup_available

pytestmark = pytest.mark.slow
L00 = LessonNotebook("00_setup", "pytorch")
RIGHT = answer_sources(L00)["first_model"]
WRONG = RIGHT.replace("ds.x[:5]", "ds.x[:4]")  # a plausible wrong answer: scores for 4 images
MIME = "application/vnd.tlcourse.observation+json"
sandboxed = pytest.mark.skipif(not bwrap_works(), reason="needs bubblewrap (make venv installs it as root)")
with_pids_cgroup = pytest.mark.skipif(not pids_cgroup_available(), reason="needs a writable pids cgroup (root)")


def tree_digest(*roots: Path) -> str:
    h = hashlib.sha256()
    for root in roots:
        for p in sorted(root.rglob("*")):
            # data/cache is the grading process's own cache (another test worker may be writing it right now)
            if p.is_file() and "__pycache__" not in p.parts and "cache" not in p.relative_to(root).parts:
                h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def outside():
    """What no submission may change: the course sources, data, grader code."""
    holdout_inputs_dir()  # the grader's label-free cache is made on first use: make it before the first digest
    roots = [REPO_ROOT / "solutions", REPO_ROOT / "lessons", REPO_ROOT / "autograder", REPO_ROOT / "data"]
    return lambda: tree_digest(*roots)


CASES = {
    # name: (source of the first_model cell, expected status, expected first_model points)
    "patch-numpy-equality": ("import numpy as np\nnp.array_equal = lambda *a, **k: True\n"
                             "np.allclose = lambda *a, **k: True\n" + WRONG, "graded", 0),
    "patch-builtins": ("import builtins\nbuiltins.tuple = lambda x: (5, 10)\nbuiltins.sum = lambda *a: 650\n" + WRONG,
                       "graded", 0),
    "patch-probe-runtime": (WRONG + "\nimport autograder.probe_runtime as pr\n"
                            "pr.observe = lambda *a: {'ok': True, 'observation': {}}\n", "graded", 0),
    "forged-observation": (WRONG + f"\nfrom IPython.display import display\n"
                           f"display({{'{MIME}': {{'ok': True, "
                           "'observation': {'params': 650, 'scores_shape': [5, 10]}}}, raw=True)\n", "graded", 0),
    "input-transformer-drops-checks": (RIGHT + "\nget_ipython().input_transformers_cleanup.append(lambda lines: [])\n",
                                       "graded", 0),
    "sys-exit": ("import sys\nsys.exit(0)", "graded", 0),
    "input-call": ("name = input('your name? ')\n" + RIGHT, "graded", 0),
    "os-exit": ("import os\nos._exit(0)", "kernel_died", 0),
    "segfault": ("import ctypes\nctypes.string_at(0)", "kernel_died", 0),
    "kill-own-kernel": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "kernel_died", 0),
    "kill-parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(30)",
                    "kernel_died", 0),
    "memory-bomb-at-once": ("x = bytearray(64 * 2**30)\n" + RIGHT, "graded", 0),
    "huge-output": ("print('x' * 50_000_000)\n" + RIGHT, "graded", 1),
    "stderr-noise": ("import sys, os\nprint('warn', file=sys.stderr)\nos.write(2, b'raw stderr\\n')\n" + RIGHT,
                     "graded", 1),
    "patch-torch-comparisons": ("import torch\ntorch.equal = lambda *a: True\ntorch.allclose = lambda *a, **k: True\n"
                                "torch.Tensor.__eq__ = lambda *a: True\n" + WRONG, "graded", 0),
    "patch-json": ("import json\n_dumps = json.dumps\njson.dumps = lambda o, *a, **k: _dumps({'ok': True}, *a, **k)\n"
                   + WRONG, "kernel_died", 0),
    "fill-the-disk": ("with open('big.bin', 'wb') as f:\n    for _ in range(4096):\n        f.write(bytes(2**20))\n"
                      + RIGHT, "graded", 0),
}
SANDBOX_CASES = {
    "read-rubric": (f"import os\nassert os.listdir({str(REPO_ROOT / 'autograder' / 'rubrics')!r}) == []\n"
                    f"assert not os.path.exists({str(REPO_ROOT / 'solutions')!r})\n" + RIGHT, "graded", 1),
    "read-answer-key": ("import numpy as np\n"
                        f"y = np.load({str(REPO_ROOT / 'data' / 'holdout' / 'digits.npz')!r})['y']\n" + RIGHT,
                        "graded", 0),
    "write-outside": (f"open({str(REPO_ROOT / 'solutions' / 'pwned.txt')!r}, 'w').write('x')\n" + RIGHT, "graded", 0),
}
CGROUP_CASES = {
    "fork-bomb": ("import os\nfor _ in range(100000):\n    try:\n        if os.fork() == 0:\n"
                  "            import time\n            time.sleep(600)\n            os._exit(0)\n"
                  "    except OSError:\n        break\n" + WRONG, "graded", 0),
}


# patched builtins hang a later cell until the cell timeout: a short one keeps the suite quick, and the other cases
# keep 60 s, room for a loaded CI machine
CELL_TIMEOUT = {"patch-builtins": 20}


def by_id(report):
    return {e.id: e.points for e in report.exercises}


HOSTILE = ([pytest.param(name, "", id=name) for name in CASES]
           + [pytest.param(name, "bubblewrap sandbox", id=name, marks=sandboxed) for name in SANDBOX_CASES]
           + [pytest.param(name, "pids", id=name, marks=[sandboxed, with_pids_cgroup]) for name in CGROUP_CASES])


@pytest.mark.parametrize("name,isolation", HOSTILE)
def test_hostile_cell(graded, outside, name, isolation):
    source, status, points = {**CASES, **SANDBOX_CASES, **CGROUP_CASES}[name]
    before = outside()
    report = graded(f"adv-{name}", solved(L00, {"first_model": source}), cell_timeout=CELL_TIMEOUT.get(name, 60),
                    notebook_timeout=240)
    assert (report.status, by_id(report)) == (status, {"load_data": 1, "first_model": points}), report.notes
    assert isolation in report.isolation
    assert outside() == before


@pytest.mark.skipif(not dedicated_uid_works(), reason="needs root, bubblewrap and setpriv")
def test_root_grader_runs_the_submission_as_an_unprivileged_uid(graded):
    """Were the learner's code root outside the sandbox, a kernel exploit or a leaked mount would be the host's."""
    host_uid = ("import os\nuid = os.getuid()\n"  # this uid as the host sees it, through the user namespace map
                "host = [o + uid - i for i, o, n in (map(int, line.split()) for line in open('/proc/self/uid_map'))\n"
                "        if i <= uid < i + n]\n"
                "assert host and host[0] != 0 and os.geteuid() == uid\n")
    source = host_uid + "assert 'CapEff:\\t0000000000000000' in open('/proc/self/status').read()\n" + RIGHT
    report = graded("adv-uid", solved(L00, {"first_model": source}))
    assert by_id(report) == {"load_data": 1, "first_model": 1}, report.notes
    assert "as unprivileged uid" in report.isolation and "processes" in report.isolation


@sandboxed
def test_no_network(graded):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    source = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\n" + RIGHT
    report = graded("adv-network", solved(L00, {"first_model": source}))
    stop.set()
    server.close()
    assert by_id(report) == {"load_data": 1, "first_model": 0} and not accepted


@sandboxed
def test_daemon_cannot_outlive_the_grading(graded, tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched")
    canary.chmod(0o666)
    daemon = (f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
              f"        time.sleep(20)\n        open({str(canary)!r}, 'w').write('pwned')\n        os._exit(0)\n"
              f"    os._exit(0)\n" + RIGHT)
    report = graded("adv-daemon", solved(L00, {"first_model": daemon}))
    assert by_id(report) == {"load_data": 1, "first_model": 1}
    import time

    time.sleep(25)
    assert canary.read_text() == "untouched"


def test_huge_notebook_is_refused(graded, tmp_path):
    nb = solved(L00)
    nb.cells[0].source += "\n" + "x" * (MAX_NOTEBOOK_BYTES + 10)
    path = tmp_path / f"{L00.stem}.ipynb"
    path.write_text(json.dumps(nb))
    report = graded("adv-huge-file", path)
    assert report.status == "invalid_notebook" and report.score == 0 and "MiB" in report.notes[0]


def test_renamed_cell_ids_and_missing_metadata_still_graded(graded):
    nb = solved(L00)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"renamed-{i}"
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "first_model")
    answer.metadata.pop("nbgrader")  # JupyterLab copy/paste can lose it
    report = graded("adv-metadata", nb)
    assert by_id(report) == {"load_data": 1, "first_model": 1}


def test_duplicated_answer_cell_runs_as_the_learners_notebook_does(graded):
    """Both copies run, in order, as Run All runs them: the second (wrong) copy is what the check sees."""
    nb = solved(L00)
    idx = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "first_model")
    dup = json.loads(json.dumps(nb.cells[idx]))
    dup["source"] = WRONG
    nb.cells.insert(idx + 1, type(nb.cells[idx])(dup))
    report = graded("adv-duplicate", nb)
    assert by_id(report) == {"load_data": 1, "first_model": 0}


def test_answer_split_in_two_cells_is_graded_as_one(graded):
    """JupyterLab's split-cell keeps the grade_id in both halves: the answer is their concatenation."""
    nb = solved(L00)
    idx = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "first_model")
    lines = nb.cells[idx].source.splitlines()
    cut = next(i for i in range(len(lines) // 2, len(lines)) if lines[i] and not lines[i][0].isspace())
    second = json.loads(json.dumps(nb.cells[idx]))
    nb.cells[idx].source, second["source"] = "\n".join(lines[:cut]), "\n".join(lines[cut:])
    nb.cells.insert(idx + 1, type(nb.cells[idx])(second))
    assert nb.cells[idx].source and nb.cells[idx + 1].source
    report = graded("adv-split", nb)
    assert by_id(report) == {"load_data": 1, "first_model": 1}, [e.messages for e in report.exercises]


def test_notebook_stripped_of_its_metadata_is_matched_to_the_lesson(graded):
    from autograder.assemble import METADATA_LOST, METADATA_UNRECOVERABLE

    nb = solved(L00)
    nb.metadata.pop("tlcourse")
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)  # what a notebook cleaner does
    report = graded("adv-stripped", nb, lesson=L00)
    assert by_id(report) == {"load_data": 1, "first_model": 1} and METADATA_LOST in report.notes

    unrelated = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('my own notes')")])
    report = graded("adv-stripped-unrelated", unrelated, lesson=L00)
    assert report.score == 0 and METADATA_UNRECOVERABLE in report.notes


def test_reordered_cells_keep_their_checks(graded):
    nb = solved(L00)
    cells = nb.cells
    i = next(i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "first_model_md")
    j = next(i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "test_first_model")
    nb.cells = cells[:1] + cells[i:j + 1] + cells[1:i] + cells[j + 1:]  # Part B moved before the set-up
    report = graded("adv-reordered", nb)
    assert report.status == "graded" and by_id(report) == {"load_data": 1, "first_model": 0}
    assert "not defined" in " ".join(next(e for e in report.exercises if e.id == "first_model").messages)


def test_notebook_of_another_lesson_is_graded_as_that_lesson(graded, tmp_path):
    other = LessonNotebook("01_ml_basics", "pytorch")
    path = tmp_path / f"{L00.stem}.ipynb"  # handed in under lesson 00's name
    path.write_text(json.dumps(nbformat_read(other.release)))
    report = graded("adv-other-lesson", path)
    lesson_points = sum(e.points for e in Lesson("01_ml_basics").exercises)
    assert (report.lesson, report.status, report.score) == ("01_ml_basics", "graded", 0)
    assert report.max_score == lesson_points


def nbformat_read(path):
    import nbformat

    return nbformat.read(path, as_version=4)
