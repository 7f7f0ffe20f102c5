"""Where the course keeps its files."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The folder of built data sets; ``TLKIT_DATA`` overrides it (the grader's sandbox uses that)."""
    return Path(os.environ.get("TLKIT_DATA", REPO_ROOT / "data"))


MANIFEST = REPO_ROOT / "data" / "manifest.json"
REBUILD_HINT = "make data   (or: .venv/bin/python -m tlkit.build_data)"
