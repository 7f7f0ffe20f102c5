"""nbgrader settings: solutions/ is the source, lessons/ the release (what learners open)."""

from pathlib import Path

c = get_config()  # noqa: F821  (provided by nbgrader)

ROOT = Path(__file__).resolve().parent
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "transfer-learning-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
(ROOT / ".nbgrader").mkdir(exist_ok=True)
c.CourseDirectory.db_url = f"sqlite:///{ROOT / '.nbgrader' / 'gradebook.db'}"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Deleted test cells are put back, so a learner cannot dodge a check by deleting it.
c.OverwriteCells.add_missing_cells = True
# Training cells take a while on a laptop CPU; a learner's infinite loop still stops.
c.ExecutePreprocessor.timeout = 300
c.Execute.timeout = 300
