"""The code is ruff-clean, line length included (pyproject.toml declares it; `make lint` runs the same check)."""

import subprocess
import sys
from pathlib import Path


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
