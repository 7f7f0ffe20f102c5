"""The sandbox command: what a dedicated uid needs to reach the course, wherever the course lives."""

from __future__ import annotations

from autograder.sandbox import _traversable_parents, drop_to


def test_mount_point_parents_are_made_after_the_private_tmp():
    """A course cloned under /tmp: its parent folders must exist inside the private /tmp, not under it."""
    args = ["bwrap", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp",
            "--ro-bind", "/tmp/course/.venv", "/tmp/course/.venv", "--ro-bind", "/srv/data/x.npz", "/course-data/x.npz"]
    out = _traversable_parents(args)
    tmpfs_at = out.index("/tmp", out.index("--tmpfs"))
    made = [out[i + 1] for i, a in enumerate(out) if a == "--dir"]
    assert made == ["/course-data", "/tmp/course"]  # not /tmp itself (it stays 1777), not the bind targets
    assert all(out.index(d) > tmpfs_at for d in made) and all(out[out.index(d) - 2] == "0755" for d in made)
    assert out[-4:] == args[-4:]


def test_dropping_to_a_uid_clears_groups_and_capabilities():
    prefix = drop_to(61003)
    assert prefix[0] == "setpriv" and "--reuid=61003" in prefix and "--regid=61003" in prefix
    assert {"--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"} <= set(prefix)


def test_two_grading_processes_never_share_a_sandbox_uid(monkeypatch, tmp_path):
    """RLIMIT_NPROC counts per uid: a shared uid would let one submission's fork bomb starve another's threads."""
    import itertools

    from autograder import sandbox

    monkeypatch.setattr(sandbox, "dedicated_uid_works", lambda: True)
    monkeypatch.setattr(sandbox, "UID_LOCKS", tmp_path)

    def fresh_process():  # each grading process starts handing out uids at the same place
        monkeypatch.setattr(sandbox, "_next_uid", itertools.cycle(sandbox.SANDBOX_UIDS))

    fresh_process()
    with sandbox.sandbox_uid() as first:
        fresh_process()
        with sandbox.sandbox_uid() as second:
            assert first in sandbox.SANDBOX_UIDS and second in sandbox.SANDBOX_UIDS and first != second
    fresh_process()
    with sandbox.sandbox_uid() as again:
        assert again == first  # released when its submission ends


def test_the_worker_starts_without_heavy_imports():
    """The worker starts once per submission: whatever it imports before the kernel starts costs every notebook."""
    import subprocess
    import sys

    code = "import sys, autograder.runner; print(sorted({'numpy', 'tlkit'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
