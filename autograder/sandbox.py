"""Isolation for one submission: bubblewrap where it works, resource limits always.

With bubblewrap (``bwrap``, Debian package ``bubblewrap``, installed by ``make venv`` when run as root) the
worker and the learner's kernel run in new user, PID, network, IPC and UTS namespaces, as an unprivileged
uid; when the grader runs as root, the worker instead drops (``setpriv``) to a dedicated uid of its own, one
per running submission, with no capabilities, so nothing in the sandbox is root outside it either; on a
read-only view of the system and the Python environment, with a private /tmp, a writable work
directory that holds only the submission, and the course data mounted read-only — the grader's held-out
labels, the rubrics, ``solutions/``, other learners' files and the grade files are simply not there. When
the worker ends, the PID namespace ends with it, daemons included. Without bubblewrap, only the limits
below apply, and the report says so.

Limits (both cases): address space (CPU runs only: it breaks CUDA), CPU seconds, file size, output per cell,
the process count of the dedicated uid (RLIMIT_NPROC) where there is one, and, where the cgroup v1
``pids``/``memory`` controllers are writable (root on Linux), process count and memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from pathlib import Path

from .course_files import SANDBOX_DATA, sandbox_mounts
from .limits import Limits

CGROUP_V1 = Path("/sys/fs/cgroup")
SANDBOX_UIDS = range(61000, 62000)  # dedicated uids for submissions (no account needed); one per running worker
_next_uid = itertools.cycle(SANDBOX_UIDS)
UID_LOCKS = Path(tempfile.gettempdir()) / "tlcourse-sandbox-uids"  # the grader's /tmp: sandboxes get their own


@functools.cache
def bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    probe = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def drop_to(uid: int) -> list[str]:
    """Command prefix: become ``uid`` (real, effective, saved), no groups, no capabilities, no new privileges."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]


@functools.cache
def dedicated_uid_works() -> bool:
    """As root, a sandboxed worker can run as a uid of its own (bubblewrap and setpriv are there)."""
    if os.geteuid() != 0 or not bwrap_works() or not shutil.which("setpriv"):
        return False
    probe = ["bwrap", "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/", *drop_to(SANDBOX_UIDS[-1]), "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def sandbox_uid():
    """A dedicated unprivileged uid for one submission's sandbox, or None (run as this user).

    The uid is held with a lock file until the block ends, so two grading processes on one machine (two
    instructors, or parallel test workers) never share a uid, and with it the uid's RLIMIT_NPROC count."""
    if not dedicated_uid_works():
        yield None
        return
    UID_LOCKS.mkdir(exist_ok=True)
    for _ in SANDBOX_UIDS:
        uid = next(_next_uid)
        fd = os.open(UID_LOCKS / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)  # releases the lock
        return
    raise RuntimeError(f"all {len(SANDBOX_UIDS)} sandbox uids are in use by running submissions")


def grader_packages() -> list[Path]:
    """The folders of the packages the worker imports, wherever this process imported them from (a checkout, an
    editable install pointing elsewhere, site-packages): the sandbox mounts these and no other copy."""
    import autograder
    import tlkit

    return [Path(module.__file__).resolve().parent for module in (tlkit, autograder)]


def _binds_for_python() -> list[str]:
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sysconfig.get_paths()["purelib"])}
    args = []
    for root in sorted(roots):
        args += ["--ro-bind", str(root), str(root)]
    return args


def bwrap_command(cmd: list[str], workdir: Path, device: str, uid: int | None = None) -> list[str]:
    """``cmd`` wrapped in bubblewrap: see the module docstring for what the sandbox holds.

    With ``uid`` (grader running as root) the sandbox is set up without a user namespace and ``cmd`` runs as that
    uid; otherwise a user namespace maps this user to uid 65534 inside."""
    if uid is None:
        args = ["bwrap", "--die-with-parent", "--unshare-all", "--uid", "65534", "--gid", "65534"]
    else:
        args = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try"]
    args += ["--hostname", "grader", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp"]
    args += ["--dev-bind", "/dev", "/dev"] if device == "cuda" else ["--dev", "/dev"]
    for system in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
        args += ["--ro-bind-try", system, system]
    args += _binds_for_python()
    tlkit_dir, autograder_dir = grader_packages()
    for package in (tlkit_dir, autograder_dir):
        args += ["--ro-bind", str(package), str(package)]
    args += ["--tmpfs", str(autograder_dir / "rubrics")]  # expectations never enter the sandbox
    for host, inside, required in sandbox_mounts():
        args += ["--ro-bind" if required else "--ro-bind-try", str(host), inside]
    args += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    if uid is None:
        return args + ["--", *cmd]
    return _traversable_parents(args) + ["--", *drop_to(uid), *cmd]


def _traversable_parents(args: list[str]) -> list[str]:
    """Create the mount points' parent folders, mode 0755, so a non-root uid can walk to them.

    They go right after the private /tmp, so that a course cloned under /tmp gets them too."""
    binds = ("--bind", "--ro-bind", "--ro-bind-try", "--dev-bind", "--tmpfs")
    targets = {args[i + (1 if args[i] == "--tmpfs" else 2)] for i in range(len(args)) if args[i] in binds}
    parents = sorted({str(p) for t in targets for p in Path(t).parents} - targets - {"/"},
                     key=lambda p: (p.count("/"), p))
    dirs = [arg for p in parents for arg in ("--perms", "0755", "--dir", p)]
    start = args.index("/tmp", args.index("--tmpfs")) + 1
    return args[:start] + dirs + args[start:]


# The grader throws every output away, so the kernel renders no figures: plots are still built, never drawn
# or encoded as PNG (time saved in every notebook with plots). A learner can still draw or save a figure explicitly.
KERNEL_CONFIG = "c.InlineBackend.figure_formats = set()\n"


def prepare_home(workdir: Path) -> None:
    """Set up the fresh home of a submission: the kernel's settings and, where this machine has built one,
    matplotlib's font list (time saved in every notebook)."""
    profile = workdir / ".ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    found = sorted((Path.home() / ".cache" / "matplotlib").glob("fontlist-*.json"))
    if found:
        (workdir / ".matplotlib").mkdir(exist_ok=True)
        shutil.copy(found[-1], workdir / ".matplotlib" / found[-1].name)


def sandbox_env(env: dict[str, str], workdir: Path, isolated: bool) -> dict[str, str]:
    env = {k: v for k, v in env.items() if not k.startswith(("JUPYTER_", "SSH_", "GIT_"))}
    env.update(HOME=str(workdir), MPLCONFIGDIR=str(workdir / ".matplotlib"), IPYTHONDIR=str(workdir / ".ipython"),
               JUPYTER_RUNTIME_DIR=str(workdir / "runtime"), JUPYTER_DATA_DIR=str(workdir / ".jupyter"))
    # The worker and the kernel import the grader's own copy of the packages, before any installed one.
    roots = list(dict.fromkeys(str(p.parent) for p in grader_packages()))
    env["PYTHONPATH"] = os.pathsep.join([*roots, *filter(None, [env.get("PYTHONPATH")])])
    if isolated:
        env["TLKIT_DATA"] = SANDBOX_DATA
    return env


def pids_cgroup_available() -> bool:
    return os.access(CGROUP_V1 / "pids", os.W_OK)


class CgroupV1:
    """Per-submission pids and memory cgroups (v1, as root). A no-op where they are not writable."""

    def __init__(self, limits: Limits):
        self.paths: list[Path] = []
        name = f"tlgrade-{uuid.uuid4().hex[:12]}"
        for controller, files in (("pids", {"pids.max": limits.processes}),
                                  ("memory", {"memory.limit_in_bytes": limits.memory_bytes,
                                              "memory.memsw.limit_in_bytes": limits.memory_bytes})):
            path = CGROUP_V1 / controller / name
            try:
                path.mkdir()
            except OSError:
                continue
            self.paths.append(path)
            for fname, value in files.items():
                try:
                    (path / fname).write_text(str(value))
                except OSError:
                    pass  # memsw is absent without swap accounting

    @property
    def active(self) -> list[str]:
        return [p.parent.name for p in self.paths]

    def add(self, pid: int) -> None:
        for path in self.paths:
            try:
                (path / "cgroup.procs").write_text(str(pid))
            except OSError:
                pass

    def close(self) -> None:
        for path in self.paths:
            try:
                for pid in (path / "cgroup.procs").read_text().split():
                    os.kill(int(pid), 9)
            except OSError:
                pass
            try:
                path.rmdir()
            except OSError:
                pass


def describe(isolated: bool, cgroups: list[str], uid: int | None = None) -> str:
    parts = ["bubblewrap sandbox (no network, own PID namespace, read-only system, course files hidden)"
             if isolated else "NOT sandboxed: bubblewrap is not available, only resource limits apply"]
    if uid is not None:
        parts.append(f"as unprivileged uid {uid} outside the sandbox")
    parts.append("rlimits (address space on CPU, CPU time, file size" + (", processes" if uid is not None else "")
                 + "); output capped per cell")
    if cgroups:
        parts.append(f"cgroups ({', '.join(cgroups)})")
    return "; ".join(parts)

