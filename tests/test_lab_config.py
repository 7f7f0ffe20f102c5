"""`make lab` gives learners nbgrader's learner tools only; `make lab-instructor` gives every tool.

The learner launch adds ``jupyter/learner`` to ``JUPYTER_CONFIG_PATH``: its ``labconfig/page_config.json`` disables
nbgrader's instructor lab plugins and its ``jupyter_server_config.json`` their server extensions, for that launch
only (the venv's own config is untouched). The tests start each target's real command line (from ``make -n``) on a
loopback port over an empty folder, read the page config JupyterLab embeds in ``/lab``, and stop the server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEARNER = REPO / "jupyter" / "learner"
NBGRADER_LAB = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader"
INSTRUCTOR_PLUGINS = {f"@jupyter/nbgrader:{name}" for name in ("formgrader", "create-assignment", "course-list")}
# The Validate button, the Assignments list (fetch and submit) and the Nbgrader menu, which then lists only what is
# left (JupyterLab hides menu items whose command no plugin registered).
LEARNER_PLUGINS = {f"@jupyter/nbgrader:{name}" for name in ("validate-assignment", "assignment-list", "menu")}
INSTRUCTOR_SERVER = {"nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"}
CONFIG_DATA = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.DOTALL)


def installed_plugins() -> set[str]:
    """The plugin ids in the installed nbgrader labextension's built code."""
    assert json.loads((NBGRADER_LAB / "package.json").read_text())["name"] == "@jupyter/nbgrader"
    code = "".join(p.read_text(errors="replace") for p in (NBGRADER_LAB / "static").glob("*.js"))
    return set(re.findall(r'"(@jupyter/nbgrader:[a-z-]+)"', code))


def test_the_learner_config_disables_installed_instructor_plugins_only():
    plugins = installed_plugins()
    assert INSTRUCTOR_PLUGINS | LEARNER_PLUGINS <= plugins, f"nbgrader's plugins are now {sorted(plugins)}"
    disabled = json.loads((LEARNER / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    assert {name for name, off in disabled.items() if off} == INSTRUCTOR_PLUGINS
    server = json.loads((LEARNER / "jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
    assert {name for name, on in server.items() if not on} == INSTRUCTOR_SERVER
    assert all(importlib.util.find_spec(name) for name in INSTRUCTOR_SERVER)


def launch_command(target: str) -> str:
    """The shell command `make <target>` ends with (its prerequisites' commands dropped)."""
    out = subprocess.run(["make", "-n", "-s", "--no-print-directory", target], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    commands = out.replace("\\\n", " ").splitlines()
    (lab,) = [c.strip() for c in commands if "jupyter lab" in c]
    return lab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(target: str, tmp_path: Path):
    """Run `make <target>`'s command on a free loopback port, without a token, over an empty folder."""
    root, home = tmp_path / "root", tmp_path / "jupyter"
    root.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "JUPYTERLAB_"))}
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"))
    command = launch_command(target)
    assert command.endswith(" --notebook-dir=."), command  # the course folder: here an empty one instead
    command = (f"{command.removesuffix('.')}{root} --no-browser --ip=127.0.0.1 --port={port} "
               "--IdentityProvider.token='' --ServerApp.allow_root=True --ServerApp.port_retries=0")
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(["bash", "-c", command], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer in 120 s"
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/lab", timeout=5) as response:
                if response.status == 200:
                    break
            time.sleep(0.5)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()


def page_config(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/lab", timeout=30) as response:
        return json.loads(CONFIG_DATA.search(response.read().decode()).group(1))


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_make_lab_disables_the_instructor_tools(tmp_path):
    assert str(LEARNER) in launch_command("lab")
    with lab_server("lab", tmp_path) as base:
        disabled = set(page_config(base)["disabledExtensions"])
        assert INSTRUCTOR_PLUGINS <= disabled, disabled
        assert not LEARNER_PLUGINS & disabled, disabled
        assert status(f"{base}/formgrader") == 404


def test_make_lab_instructor_keeps_every_tool(tmp_path):
    assert "JUPYTER_CONFIG_PATH" not in launch_command("lab-instructor")
    with lab_server("lab-instructor", tmp_path) as base:
        disabled = set(page_config(base)["disabledExtensions"])
        assert not (INSTRUCTOR_PLUGINS | LEARNER_PLUGINS) & disabled, disabled
        assert status(f"{base}/formgrader") == 200


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
