"""Turn a learner's notebook into the notebook the grader runs.

Answer cells are taken from the learner by ``grade_id``; locked cells (set-up,
prompts) are restored from the lesson's source; every test cell, in the
learner's copy or not, is replaced by a probe cell that only observes. Cells the
learner added are kept where they are. Outputs are dropped. The notebook ends at its
last check: nothing after it can change a grade, and a lesson's closing cells (extra
baselines, comparison plots) are often its slowest.
"""

from __future__ import annotations

import copy
import difflib

import nbformat
from nbformat import NotebookNode

from .lessons import LessonNotebook
from .protocol import PROBE_KEY


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def role(cell) -> str | None:
    """'test', 'answer', 'locked' or None for an nbgrader cell of the source notebook."""
    meta = nbgrader_meta(cell)
    if not meta.get("grade_id"):
        return None
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("solution"):
        return "answer"
    if meta.get("locked"):
        return "locked"
    return None


def probe_cell(ln: LessonNotebook, test_id: str) -> NotebookNode:
    src = (f'__import__("autograder.probe_runtime", fromlist=["emit"]).emit('
           f'"{ln.lesson}", "{ln.framework}", "{test_id}", globals())')
    cell = nbformat.v4.new_code_cell(src)
    cell.metadata[PROBE_KEY] = test_id
    return cell


def assemble(learner: NotebookNode, source: NotebookNode, ln: LessonNotebook) -> tuple[NotebookNode, dict]:
    """Return the runnable notebook and a map {cell index: answer grade_id} for feedback."""
    src_cells = {nbgrader_meta(c)["grade_id"]: c for c in source.cells if role(c)}
    out: list[NotebookNode] = []
    placed: set[str] = set()

    def add(gid: str, cell: NotebookNode) -> None:
        placed.add(gid)
        out.append(cell)

    def add_from_source(gid: str) -> None:
        kind = role(src_cells[gid])
        if kind == "test":
            add(gid, probe_cell(ln, gid))
        elif kind == "locked":
            add(gid, copy.deepcopy(src_cells[gid]))

    for cell in learner.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        answer = gid in src_cells and role(src_cells[gid]) == "answer"
        if gid in placed and not answer:
            continue  # a duplicated locked or test cell: the first copy counts
        if gid in src_cells:
            if answer:  # every copy, in order (a cell split in JupyterLab keeps its grade_id in both halves)
                add(gid, _clean(cell))
            else:
                add_from_source(gid)
        else:
            out.append(_clean(cell))

    # Restore locked and test cells the learner deleted, after the source cell before them.
    order = [g for g in src_cells]
    for i, gid in enumerate(order):
        if gid in placed or role(src_cells[gid]) == "answer":
            continue
        before = [g for g in order[:i] if g in placed]
        marks = [(nbgrader_meta(c).get("grade_id"), c.metadata.get(PROBE_KEY)) for c in out]
        pos = 0 if not before else 1 + max(j for j, mark in enumerate(marks) if before[-1] in mark)
        add_from_source(gid)
        out.insert(pos, out.pop())

    probes = [i for i, c in enumerate(out) if c.metadata.get(PROBE_KEY)]
    if probes:
        del out[probes[-1] + 1:]
    nb = nbformat.v4.new_notebook(metadata=copy.deepcopy(source.metadata))
    nb.cells = out
    ids = {i: nbgrader_meta(c).get("grade_id") for i, c in enumerate(out)}
    answers = {i: gid for i, gid in ids.items() if gid in src_cells and role(src_cells[gid]) == "answer"}
    return nb, answers


METADATA_LOST = ("Your notebook had lost its nbgrader metadata (some editors and notebook cleaners remove it), so "
                 "the grader matched your cells to the lesson's by their place and text. Check that every answer "
                 "below is yours; next time, work in a fresh copy of the lesson.")
METADATA_UNRECOVERABLE = ("Your notebook has no nbgrader metadata (some editors and notebook cleaners remove it) and "
                          "its cells could not be matched to the lesson's, so no answer was found. Copy your answers "
                          "into a fresh copy of the lesson and hand that in.")


def reattach_metadata(learner: NotebookNode, release: NotebookNode) -> tuple[NotebookNode, str | None]:
    """A notebook stripped of its nbgrader metadata gets it back from the released lesson.

    Cells whose text is the release's (prompts, locked cells, visible checks) anchor the alignment; the learner's
    code cells between two anchors where the release has one answer cell become that answer (a split answer in
    several cells included). Returns the notebook and a note for the learner, or ``(learner, None)`` when the
    notebook still has its metadata."""
    if any(nbgrader_meta(c).get("grade_id") for c in learner.cells):
        return learner, None
    nb = copy.deepcopy(learner)
    key = [(c.cell_type, c.source.strip()) for c in nb.cells]
    ref = [(c.cell_type, c.source.strip()) for c in release.cells]
    found = False
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, key, ref, autojunk=False).get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                nb.cells[i].metadata["nbgrader"] = copy.deepcopy(release.cells[j].metadata.get("nbgrader", {}))
        elif tag == "replace":
            answers = [release.cells[j] for j in range(j1, j2) if role(release.cells[j]) == "answer"]
            if len(answers) == 1 and answers[0].cell_type == "code":
                for i in range(i1, i2):
                    if nb.cells[i].cell_type == "code":
                        nb.cells[i].metadata["nbgrader"] = copy.deepcopy(answers[0].metadata["nbgrader"])
                        found = True
    return nb, METADATA_LOST if found else METADATA_UNRECOVERABLE


def _clean(cell: NotebookNode) -> NotebookNode:
    cell = copy.deepcopy(cell)
    if cell.get("cell_type") == "code":
        cell.outputs = []
        cell.execution_count = None
    cell.metadata.pop(PROBE_KEY, None)  # a learner cannot pose as a probe
    return cell
