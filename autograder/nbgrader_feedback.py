"""nbgrader feedback without test code: a preprocessor for ``nbgrader generate_feedback``.

``nbgrader autograde`` runs each test cell with its hidden half (``### BEGIN HIDDEN TESTS``) put back, so the
autograded notebook's failed checks carry IPython tracebacks that quote the hidden lines and the frames of
``autograder/nbgrader_bridge.py``. nbgrader's ``ClearHiddenTests`` (added to ``GenerateFeedback`` in
``nbgrader_config.py``) removes the hidden lines from the cell, not from its outputs: this module does that.

``ScrubTestErrors`` rewrites each error output as one line, ``ename: evalue`` (ANSI colour codes removed): for a
failed check that is the learner-facing message the check raised (``AssertionError: `model` has 650 ...``).
In test cells it also drops stderr, where a warning raised inside a check prints the source line that raised it.
What a check prints on stdout (the visible half's ``print``) and its points stay.

Answer cells and the lesson's own cells get the same one line by default, as the course grader's reports do
(``grade.py``): the page says which cell raised what; the learner sees the full traceback of their own code when
they run their notebook, and no rule about which frames are theirs is needed. An instructor who wants the
learner's tracebacks on the page sets ``c.ScrubTestErrors.keep_answer_tracebacks = True``: those cells then keep
their tracebacks, less every frame in the course's grader (a path through ``autograder/``), which becomes one
line saying it was hidden. Test cells are scrubbed either way.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from nbgrader import utils
from traitlets import Bool

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
GRADER_FRAME = re.compile(r"[/\\]autograder[/\\]")
HIDDEN_FRAME = "(a frame in the course's grader, hidden)"


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def one_line(output) -> str:
    """``ename: evalue`` of an error output, as plain text (``ename`` alone when there is no value)."""
    ename, evalue = strip_ansi(str(output.get("ename", ""))), strip_ansi(str(output.get("evalue", "")))
    return f"{ename}: {evalue}" if evalue else ename


def without_grader_frames(traceback: list[str]) -> list[str]:
    """The traceback (one entry per frame, as IPython sends it) with each run of grader frames as one line."""
    kept: list[str] = []
    for entry in traceback:
        if GRADER_FRAME.search(strip_ansi(entry)):
            if not kept or kept[-1] != HIDDEN_FRAME:
                kept.append(HIDDEN_FRAME)
        else:
            kept.append(entry)
    return kept


def is_test_cell(cell) -> bool:
    """nbgrader's "Autograder tests" cell: graded, and not an answer."""
    return utils.is_grade(cell) and not utils.is_solution(cell)


class ScrubTestErrors(Preprocessor):
    """Errors as ``ename: evalue`` only, and no stderr in test cells: the feedback page quotes no test code."""

    # nbconvert's Preprocessor (not nbgrader's, whose display_data_priority is not configurable and draws a warning
    # from the HTML exporter's config): on unless configured off.
    enabled = Bool(True, help="Whether to scrub the feedback's error outputs").tag(config=True)

    keep_answer_tracebacks = Bool(
        False,
        help="Keep the tracebacks of cells other than test cells, less the frames in autograder/ "
             "(default: every error is its one line, ename: evalue).",
    ).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        test = is_test_cell(cell)
        outputs = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.get("name") == "stderr" and test:
                continue
            if output.output_type == "error":
                if test or not self.keep_answer_tracebacks:
                    output.traceback = [one_line(output)]
                else:
                    output.traceback = without_grader_frames(list(output.get("traceback", [])))
            outputs.append(output)
        cell.outputs = outputs
        return cell, resources
