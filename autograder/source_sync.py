"""Write into a source notebook what its exercises determine, so an author states each fact once.

From each check cell's points (nbgrader metadata): the points in its Part heading and the intro's total; from its
``grade_id``: the hidden call to the grader at the end of the cell; and a fixed id for a new cell.
``make lessons`` runs this on solutions/ before generating lessons/; a test checks the committed sources are in
step.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .exercises import PART_HEADING, exercises_in
from .lessons import LessonNotebook

HIDDEN_START = "### BEGIN HIDDEN TESTS"
INTRO_POINTS = re.compile(r"Graded exercises: \*\*[\d.]+ points?\*\* in \d+ parts?(?: \([^)]*\))?")


def points_text(points: float) -> str:
    return f"{points:g} point{'' if points == 1 else 's'}"


def hidden_check(ln: LessonNotebook, test_id: str) -> str:
    return (f"{HIDDEN_START}\nfrom autograder.nbgrader_bridge import check\n"
            f'check("{ln.lesson}", "{ln.framework}", "{test_id}", globals())\n### END HIDDEN TESTS')


def synced(nb: dict, ln: LessonNotebook) -> dict:
    """The notebook (nbformat JSON) with headings, intro and hidden calls written from its declarations."""
    declared = exercises_in(nb["cells"])
    points = {part: pts for part, _, _, pts in declared}
    taken = {cell.get("id") for cell in nb["cells"]}
    for index, cell in enumerate(nb["cells"]):
        if "id" not in cell:  # nbgrader would invent a random one in every release
            cell["id"] = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", f"cell-{index}").replace("_", "-")
            cell["id"] = cell["id"] if cell["id"] not in taken else f"{cell['id']}-{index}"
            taken.add(cell["id"])
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "markdown":
            first, newline, rest = source.partition("\n")
            heading = PART_HEADING.match(first)
            if heading and heading["part"] in points:
                first = f"## Part {heading['part']} — {heading['title']} ({points_text(points[heading['part']])})"
            source = f"{first}{newline}{rest}"
            parts = ", ".join(f"{part}: {pts:g}" for part, pts in points.items())
            source = INTRO_POINTS.sub(f"Graded exercises: **{points_text(sum(points.values()))}** in "
                                      f"{len(points)} parts ({parts})", source)
        elif meta.get("grade") and meta.get("grade_id", "").startswith("test_"):
            visible = source.split(HIDDEN_START, 1)[0].rstrip()
            hidden = hidden_check(ln, meta["grade_id"])
            source = f"{visible}\n\n{hidden}" if visible else hidden
        cell["source"] = source
    return nb


def sync_source(ln: LessonNotebook) -> bool:
    """Bring ``ln``'s source notebook in step; whether it changed."""
    text = Path(ln.solution).read_text(encoding="utf-8")
    new = json.dumps(synced(json.loads(text), ln), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if new != text:
        Path(ln.solution).write_text(new, encoding="utf-8")
    return new != text
