"""Grade a class on a Dask cluster: ``autograder class ... --cluster local[:N] | tcp://HOST:8786``.

Each submission travels to a Dask worker as bytes with its SHA-256; the worker grades it with
:func:`autograder.grade.grade_notebook`, in the same sandbox as a local run (bubblewrap where it works, limits
always), and sends the report back as plain data. Only the instructor's process writes reports, feedback,
grades.csv and the gradebook (:class:`autograder.classroom.ClassRun`), atomically, as each result arrives.

A worker that dies (killed, out of memory, its host gone) costs nothing: the scheduler runs its task again on
another worker. A submission whose run takes its worker down every time ends, once the scheduler gives up on it
(``allowed-failures`` worker deaths, then one more), as ``kernel_died`` for that learner, and the others are
graded. Every task is queued on the scheduler and a worker thread gets one at a time (worker saturation 1.0), so
a worker that dies was running one submission only and no bystander is blamed.

A worker host needs the course checkout and its ``.venv`` (the grader and the lessons' libraries); start its
workers from the checkout with one thread each, e.g. ``.venv/bin/dask worker tcp://HOST:8786 --nworkers 4
--nthreads 1``, and the scheduler with ``DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0`` (README). Each task
carries the instructor's :func:`checkout_fingerprint`; a worker whose checkout or libraries differ grades nothing
and says which part differs, a grader fault that the instructor sees, never a learner's score.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
import traceback
from pathlib import Path

from tqdm.auto import tqdm

from .classroom import fault_report, not_graded
from .environment import versions
from .grade import MAX_NOTEBOOK_BYTES, ExerciseResult, Report, grade_notebook
from .lessons import REPO_ROOT

WORKER_DEATHS = 2  # a submission's runs that may take their worker down before it is kernel_died (local clusters)
SATURATION = 1.0  # tasks a worker thread holds at once: one, so that a dying worker takes no bystander with it
DIED_NOTE = ("Grading your notebook took the grading machine's worker process down {runs} times (a crash, or far "
             "too much memory or too many processes); checks that had not run yet score 0.")


@functools.cache
def _drop_nanny_environ() -> None:
    """Take out of this worker's environment what a Dask nanny put there for the worker itself
    (``distributed.nanny.pre-spawn-environ``), so that the learner's kernel gets the environment a local run gives
    it. ``MALLOC_TRIM_THRESHOLD_`` above all: set at all, it turns off glibc's adaptive mmap threshold, and the
    kernel's numpy and torch then map and unmap every large array, a slower notebook than on the local pool."""
    import dask

    for name, value in (dask.config.get("distributed.nanny.pre-spawn-environ", None) or {}).items():
        if os.environ.get(name) == str(value):
            del os.environ[name]


# What decides a grade, beside the submission: part of the checkout -> its files (patterns under the checkout)
GRADE_INPUTS = {"grader code": ("autograder/**/*.py", "tlkit/**/*.py"), "lessons": ("solutions/**/*.ipynb",),
                "data manifest": ("data/manifest.json",)}


@functools.cache
def checkout_fingerprint() -> dict[str, str]:
    """SHA-256 of each part of this checkout that decides a grade, and of the library versions."""
    parts = {}
    for part, patterns in GRADE_INPUTS.items():
        h = hashlib.sha256()
        for path in sorted({p for pattern in patterns for p in REPO_ROOT.glob(pattern)}):
            h.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
        parts[part] = h.hexdigest()
    parts["library versions"] = hashlib.sha256(repr(sorted(versions().items())).encode()).hexdigest()
    return parts


class CheckoutMismatch(RuntimeError):
    """The worker's course checkout or libraries are not the instructor's: its grades could differ."""


def check_checkout(expected: dict[str, str]) -> None:
    here = checkout_fingerprint()
    differ = [part for part in expected if here.get(part) != expected[part]]
    if differ:
        raise CheckoutMismatch(f"this worker's {' and '.join(differ)} differ from the instructor's checkout "
                               f"({REPO_ROOT}): update the worker's checkout (git pull, make data) and restart it")


def grade_bytes(name: str, data: bytes, digest: str, device: str, cell_timeout: int, notebook_timeout: int,
                fingerprint: dict[str, str]) -> dict:
    """Runs on a Dask worker: grade one submission handed over as bytes; the report as plain data."""
    _drop_nanny_environ()
    check_checkout(fingerprint)
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"{name} arrived damaged: its SHA-256 is not the one it was sent with")
    with tempfile.TemporaryDirectory(prefix="tlsubmission-") as tmp:
        path = Path(tmp) / name  # the file name identifies the lesson when the metadata does not
        path.write_bytes(data)
        return grade_notebook(path, device=device, cell_timeout=cell_timeout,
                              notebook_timeout=notebook_timeout).to_dict()


def report_from_dict(data: dict) -> Report:
    return Report(**{**data, "exercises": [ExerciseResult(**e) for e in data["exercises"]]})


def died_report(path: Path, device: str, runs: int) -> Report:
    report = not_graded(path, device)
    report.status, report.attempts = "kernel_died", runs
    report.notes.append(DIED_NOTE.format(runs=runs))
    return report


def connect(cluster: str, workers: int):
    """A Dask client for ``local``, ``local:N`` (a LocalCluster of N worker processes, one thread each) or a
    scheduler address (``tcp://HOST:8786``). Returns (client, local cluster or None)."""
    import dask
    from distributed import Client, LocalCluster

    if cluster == "local" or cluster.startswith("local:"):
        n = int(cluster.partition(":")[2] or workers)
        with dask.config.set({"distributed.scheduler.worker-saturation": SATURATION,
                              "distributed.scheduler.allowed-failures": WORKER_DEATHS}):
            local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(local), local
    client = Client(cluster)
    saturation = client.run_on_scheduler(_scheduler_saturation)
    if saturation is None or saturation > SATURATION:
        print(f"warning: the scheduler at {cluster} has worker-saturation {saturation}: a worker may hold queued "
              "submissions, and when it dies they count as runs that killed it; start the scheduler with "
              f"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION={SATURATION}", file=sys.stderr)
    return client, None


def _scheduler_saturation(dask_scheduler=None) -> float | None:
    return getattr(dask_scheduler, "WORKER_SATURATION", None)


def run_on_dask(run, subs: list, cluster: str, workers: int) -> None:
    """Grade ``subs`` on ``cluster`` and write each record with ``run.record`` as its result arrives.

    Ctrl-C cancels what is left and keeps every report written so far."""
    from dask._task_spec import Task
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    client, local = connect(cluster, workers)
    fingerprint = checkout_fingerprint()
    try:
        graph, pending, here = {}, {}, []
        for sub in subs:
            try:
                if sub.path.stat().st_size > MAX_NOTEBOOK_BYTES:
                    raise OSError("too large to be graded")
                data = sub.path.read_bytes()
            except OSError:
                here.append(sub)  # rejected without being run (too large, unreadable): not worth a trip
                continue
            digest = hashlib.sha256(data).hexdigest()
            key = f"grade-{sub.key}-{digest[:16]}"
            # a data producer: queued on the scheduler, handed to a worker thread only when it is free
            graph[key] = Task(key, grade_bytes, sub.path.name, data, digest, run.device, run.cell_timeout,
                              run.notebook_timeout, fingerprint, _data_producer=True)
            pending[key] = (sub, digest)
        for sub in here:
            run.grade_one(sub)
        futures = client.get(graph, list(graph), sync=False) if graph else []
        try:
            for future in tqdm(as_completed(futures), total=len(futures), desc="grading", unit="notebook"):
                sub, digest = pending[future.key]
                try:
                    report = report_from_dict(future.result())
                    report.notebook = str(sub.path)
                except KilledWorker as err:
                    report = died_report(sub.path, run.device, err.allowed_failures + 1)
                except Exception as err:  # noqa: BLE001  (the worker's fault, never the learner's score)
                    log = "".join(traceback.format_exception(err))
                    report = fault_report(sub.path, run.device, f"the Dask worker failed: {err!r}", log)
                run.record(sub, report, digest)
        except KeyboardInterrupt:
            client.cancel(futures, force=True)
            raise
    finally:
        client.close()
        if local is not None:
            local.close()
