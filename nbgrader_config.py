"""nbgrader settings: solutions/ is the source, lessons/ the release (what learners open)."""

import atexit
import os
import shutil
import sys
from pathlib import Path

from nbgrader.apps.generateassignmentapp import GenerateAssignmentApp
from nbgrader.converters import GenerateFeedback
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821  (provided by nbgrader)

ROOT = Path(__file__).resolve().parent
RELEASE = "lessons"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "transfer-learning-course"
# One assignment per lesson and framework (e.g. 01_ml_basics_pytorch): a learner does one framework, and the
# gradebook's maximum is that notebook's points. The course keeps a lesson's twins in one folder
# (solutions/01_ml_basics/01_ml_basics_pytorch.ipynb); nbgrader wants <folder>/<assignment>/<notebook>, so it reads
# views made of links, rebuilt whenever nbgrader starts: .nbgrader/solutions/<stem>/<stem>.ipynb -> the notebook.


def _assignment_view(folder: str) -> str:
    view = ROOT / ".nbgrader" / folder
    wanted = {view / nb.stem / nb.name: os.path.relpath(nb, view / nb.stem)
              for nb in (ROOT / folder).glob("*/*.ipynb") if nb.stem.startswith(f"{nb.parent.name}_")}
    for link in set(view.glob("*/*.ipynb")) - set(wanted):
        link.unlink(missing_ok=True)
    for link, target in wanted.items():
        if not (link.is_symlink() and os.readlink(link) == target):  # replaced atomically: nbgrader runs in parallel
            link.parent.mkdir(parents=True, exist_ok=True)
            fresh = link.with_name(f".{link.name}.{os.getpid()}")
            fresh.unlink(missing_ok=True)
            fresh.symlink_to(target)
            fresh.replace(link)
    return str(view)


c.CourseDirectory.source_directory = _assignment_view("solutions")
c.CourseDirectory.release_directory = _assignment_view(RELEASE)
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

# Feedback pages show no test code: nbgrader's defaults (GetGrades first, the CSS header last) with the hidden
# test blocks cleared and every error output cut to `ename: evalue` (autograder/nbgrader_feedback.py says why).
# By name, so a Python without the course's package fails at generate_feedback, not by dropping this whole file.
_feedback = GenerateFeedback.class_traits()["preprocessors"].default()
_after = _feedback.index(GetGrades) + 1
c.GenerateFeedback.preprocessors = [*_feedback[:_after], ClearHiddenTests,
                                    "autograder.nbgrader_feedback.ScrubTestErrors", *_feedback[_after:]]

# `nbgrader generate_assignment X --force` never deletes lesson X. Left alone, nbgrader deletes the release folder
# first (--force, or a newer source) and again on any failure (a gradebook it cannot open, a bad cell), so a failed
# run leaves no lesson. Here it writes to a scratch folder of its own, and only once the whole assignment is written
# does the hook below swap it in for lessons/<lesson>/X.ipynb (a rename on the same disk). A release directory
# named on the command line (as `make lessons` does, autograder/release.py) gets nbgrader's own behaviour: the
# caller handles it.
_SCRATCH = ROOT / ".nbgrader" / f"release-{os.getpid()}"


def _publish_release(**_hook_args) -> None:
    """post_convert_hook: each notebook written to the scratch folder replaces its copy in lessons/<lesson>/."""
    from autograder.release import publish

    try:
        publish(_SCRATCH, ROOT / RELEASE)
    except Exception as err:  # nbgrader logs a failing hook at INFO and carries on: fail the command instead
        print(f"[nbgrader_config] could not move the release into {ROOT / RELEASE}: {err!r}", file=sys.stderr)
        raise SystemExit(1) from err


def _release_directory_on_command_line() -> bool:
    app = getattr(GenerateAssignmentApp, "_instance", None)  # this process's nbgrader command, if generate_assignment
    return isinstance(app, GenerateAssignmentApp) and "release_directory" in app.cli_config.get("CourseDirectory", {})


if not _release_directory_on_command_line():
    # Scoped to generate_assignment: release_assignment, zip_collect and the formgrader still read lessons/.
    c.GenerateAssignmentApp.CourseDirectory.release_directory = str(_SCRATCH)
    c.GenerateAssignmentApp.GenerateAssignment.post_convert_hook = _publish_release
    atexit.register(shutil.rmtree, _SCRATCH, True)
