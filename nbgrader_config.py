"""nbgrader settings: solutions/ is the source, lessons/ the release (what learners open)."""

import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821  (provided by nbgrader)

ROOT = Path(__file__).resolve().parent
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "transfer-learning-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
# One assignment per lesson and framework (e.g. 01_ml_basics_pytorch): a learner does one framework, and the
# gradebook's maximum is that notebook's points.
(ROOT / ".nbgrader").mkdir(exist_ok=True)
c.CourseDirectory.db_url = f"sqlite:///{ROOT / '.nbgrader' / 'gradebook.db'}"

# nbgrader runs `alembic` by name when it creates the gradebook: find it next to this Python, so
# `.venv/bin/nbgrader ...` works without an activated virtualenv.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Deleted test cells are put back, so a learner cannot dodge a check by deleting it.
c.OverwriteCells.add_missing_cells = True
# Training cells take a while on a laptop CPU; a learner's infinite loop still stops.
c.ExecutePreprocessor.timeout = 300
c.Execute.timeout = 300
