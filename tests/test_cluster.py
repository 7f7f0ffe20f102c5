"""Grading a class on Dask workers: same grades as the local pool, nothing lost when a worker dies."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from submissions import solved, write

from autograder.classroom import ClassRun, find_submissions
from autograder.cluster import SATURATION, WORKER_DEATHS
from autograder.lessons import LessonNotebook

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]
LN = LessonNotebook("00_setup", "pytorch")
ROOT = Path(__file__).resolve().parents[1]


def put(sub: Path, learner: str, nb=None, raw: bytes | None = None) -> None:
    path = sub / learner / LN.assignment / f"{LN.stem}.ipynb"
    if raw is not None:
        path.parent.mkdir(parents=True)
        path.write_bytes(raw)
    else:
        write(nb, path)


def comparable(out: Path) -> dict[str, object]:
    """Every output file of a class run, without what varies from run to run: the seconds each notebook took and
    which of the sandbox's uids it ran as."""
    files: dict[str, object] = {}
    for path in sorted(out.rglob("*")):
        if path.is_dir():
            continue
        rel = str(path.relative_to(out))
        if path.suffix == ".json":
            report = {k: v for k, v in json.loads(path.read_text()).items() if k != "seconds"}
            files[rel] = {**report, "isolation": re.sub(r"uid \d+", "uid N", str(report.get("isolation")))}
        elif path.name == "grades.csv":
            rows = [line.split(",") for line in path.read_text().splitlines()]
            seconds = rows[0].index("seconds")
            files[rel] = [row[:seconds] + row[seconds + 1:] for row in rows]
        else:
            files[rel] = path.read_text()
    return files


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """A mixed class and its grades from the built-in local pool: what every Dask run must reproduce."""
    root = tmp_path_factory.mktemp("cluster-class")
    sub = root / "submitted"
    put(sub, "alice", solved(LN))
    put(sub, "bob", nbformat.read(LN.release, as_version=4))
    put(sub, "dave", raw=b'{"cells": [')
    put(sub, "erin", solved(LN, {"first_model": "import os\nos._exit(1)"}))
    put(sub, "fay", solved(LN))
    reference = ClassRun(root / "pool", device="cpu")
    reference.run(find_submissions(sub, LN.lesson), workers=2)
    return root, sub, comparable(root / "pool")


@pytest.fixture(scope="module")
def dask_cluster():
    """A LocalCluster of 2 worker processes, one thread each, set up as the README asks of a scheduler."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.worker-saturation": SATURATION,
                          "distributed.scheduler.allowed-failures": WORKER_DEATHS}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_local_cluster_grades_like_the_local_pool(klass):
    root, sub, reference = klass
    ClassRun(root / "local2", device="cpu").run(find_submissions(sub, LN.lesson), workers=2, cluster="local:2")
    assert comparable(root / "local2") == reference
    reports = (json.loads(p.read_text()) for p in (root / "local2").rglob("*.json"))
    statuses = {r["learner"]: r["status"] for r in reports}
    assert statuses == {"alice": "graded", "bob": "graded", "dave": "invalid_notebook", "erin": "kernel_died",
                        "fay": "graded"}


def _grading(client) -> dict[str, list[str]]:
    """Worker address -> the grading tasks it holds."""
    return {w: [k for k in keys if str(k).startswith("grade-")] for w, keys in client.processing().items()}


def _kill_worker(client, address: str) -> int:
    pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)
    return pid


def _in_thread(fn) -> threading.Thread:
    errors: list[BaseException] = []

    def target():
        try:
            fn()
        except BaseException as err:  # noqa: BLE001  (re-raised by the test)
            errors.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.errors = errors
    thread.start()
    return thread


def test_killing_a_worker_mid_class_loses_nothing(klass, dask_cluster):
    root, sub, reference = klass
    cluster, client = dask_cluster
    client.wait_for_workers(2, timeout=120)
    run = ClassRun(root / "killed", device="cpu")
    thread = _in_thread(lambda: run.run(find_submissions(sub, LN.lesson), workers=2, cluster=cluster.scheduler_address))
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        busy = [w for w, keys in _grading(client).items() if keys]
        if busy:
            time.sleep(2)  # let its notebook run for a while
            victim = _kill_worker(client, busy[0])
        time.sleep(0.2)
    assert victim is not None, "no grading task was ever seen on a worker"
    thread.join(timeout=600)
    assert not thread.is_alive() and not thread.errors
    assert comparable(root / "killed") == reference
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)
    client.wait_for_workers(2, timeout=120)  # the nanny started a new worker in its place


def test_a_submission_that_kills_its_worker_every_time_ends_kernel_died(tmp_path, dask_cluster):
    """mallory's grading takes its worker down whenever it runs (as an out-of-memory kill would): after a bounded
    number of runs it is kernel_died, at 0, and alice, graded meanwhile on the same two workers, is not blamed."""
    cluster, client = dask_cluster
    client.wait_for_workers(2, timeout=120)
    sub = tmp_path / "submitted"
    put(sub, "alice", solved(LN))
    put(sub, "mallory", solved(LN))
    put(sub, "zoe", solved(LN))
    run = ClassRun(tmp_path / "grades", device="cpu")
    thread = _in_thread(lambda: run.run(find_submissions(sub, LN.lesson), workers=2, cluster=cluster.scheduler_address))
    kills = 0
    while thread.is_alive():
        for worker, keys in _grading(client).items():
            if any("mallory" in k for k in keys):
                try:
                    _kill_worker(client, worker)
                    kills += 1
                except (KeyError, OSError, TimeoutError):
                    pass  # the worker went away by itself
                while worker in client.scheduler_info()["workers"]:
                    time.sleep(0.1)
        time.sleep(0.1)
    assert not thread.errors
    assert kills == WORKER_DEATHS + 1
    reports = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "grades" / "reports").rglob("*.json")}
    assert {k: (r["status"], r["score"]) for k, r in reports.items()} == {
        "alice": ("graded", 2), "mallory": ("kernel_died", 0), "zoe": ("graded", 2)}
    assert reports["mallory"]["attempts"] == WORKER_DEATHS + 1 and len(reports["mallory"]["exercises"]) == 2
    page = (tmp_path / "grades" / "feedback" / "mallory" / f"{LN.stem}.html").read_text()
    assert f"worker process down {WORKER_DEATHS + 1} times" in page


def test_a_worker_with_another_checkout_grades_nothing_and_says_why(tmp_path, dask_cluster, monkeypatch):
    """A worker whose lessons differ from the instructor's (a stale checkout) would grade by other rules: each of
    its results is a grader fault naming the part that differs, not a score, and a rerun grades it again."""
    from autograder import cluster as cluster_module

    cluster, client = dask_cluster
    client.wait_for_workers(2, timeout=120)
    sub = tmp_path / "submitted"
    put(sub, "alice", solved(LN))
    instructor = dict(cluster_module.checkout_fingerprint())
    monkeypatch.setattr(cluster_module, "checkout_fingerprint", lambda: {**instructor, "lessons": "0" * 64})
    ClassRun(tmp_path / "grades", device="cpu").run(find_submissions(sub), workers=2, cluster=cluster.scheduler_address)
    report = json.loads(next((tmp_path / "grades" / "reports").rglob("*.json")).read_text())
    assert (report["status"], report["score"]) == ("grader_error", 0)
    assert "lessons differ from the instructor's checkout" in report["grader_log"]
    assert "grader code" not in report["grader_log"].splitlines()[0]
    monkeypatch.setattr(cluster_module, "checkout_fingerprint", lambda: instructor)
    ClassRun(tmp_path / "grades", device="cpu").run(find_submissions(sub), workers=2, cluster=cluster.scheduler_address)
    report = json.loads(next((tmp_path / "grades" / "reports").rglob("*.json")).read_text())
    assert (report["status"], report["score"]) == ("graded", 2)


def _start(cmd: list[str], log: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, **env}, start_new_session=True)


def test_command_line_against_a_running_scheduler(klass, tmp_path):
    """`dask scheduler` and `dask worker` as the README starts them, and `autograder class --cluster tcp://...`."""
    _, sub, reference = klass
    dask_cli = str(Path(sys.executable).with_name("dask"))
    scheduler_file = tmp_path / "scheduler.json"
    env = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": str(SATURATION)}
    procs = [_start([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(scheduler_file)], tmp_path / "scheduler.log", **env)]
    try:
        deadline = time.monotonic() + 120
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        procs.append(_start([dask_cli, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                            tmp_path / "worker.log"))
        out = tmp_path / "grades"
        done = subprocess.run([sys.executable, "-m", "autograder", "class", str(sub), "--lesson", LN.lesson, "--out",
                               str(out), "--device", "cpu", "--cluster", address], cwd=ROOT, capture_output=True,
                              text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "warning" not in done.stderr
        assert comparable(out) == reference
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_ctrl_c_cancels_and_keeps_finished_reports(tmp_path):
    sub = tmp_path / "submitted"
    learners = 16  # rounds enough on 2 workers that a loaded machine cannot finish them all before the signal
    for i in range(learners):
        put(sub, f"learner{i}", solved(LN))
    out = tmp_path / "grades"
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "class", str(sub), "--lesson", LN.lesson, "--out",
                             str(out), "--device", "cpu", "--cluster", "local:2"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while not list(out.glob("reports/*/*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode != 0, output
    reports = list(out.glob("reports/*/*.json"))
    assert 1 <= len(reports) < learners
    assert all(json.loads(p.read_text())["status"] == "graded" for p in reports)
    assert not (out / "grades.csv").exists()
    assert not list(out.rglob("*.tmp"))


def test_a_notebook_too_large_to_grade_never_travels(tmp_path):
    """An oversized file is rejected where it lies, as the local pool rejects it; the others still go to the workers."""
    from autograder.grade import MAX_NOTEBOOK_BYTES

    sub = tmp_path / "submitted"
    put(sub, "bob", nbformat.read(LN.release, as_version=4))
    put(sub, "huge", raw=b" " * (MAX_NOTEBOOK_BYTES + 1))
    records = ClassRun(tmp_path / "grades", device="cpu").run(find_submissions(sub, LN.lesson), workers=1,
                                                              cluster="local:1")
    assert {r["learner"]: r["status"] for r in records} == {"bob": "graded", "huge": "invalid_notebook"}
    assert "not graded" in " ".join(next(r for r in records if r["learner"] == "huge")["notes"])
