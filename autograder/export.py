"""Export a class's scores for a learning-management system: one row per learner, one column per lesson.

    python -m autograder export GRADES_DIR --format canvas|csv [--out FILE]

GRADES_DIR is the ``--out`` folder of ``python -m autograder class``. Every report in
``GRADES_DIR/reports/<learner>/<notebook>.json`` is read, not ``grades.csv``: several class runs (of different
lessons, say) can write into one folder, and ``grades.csv`` holds only the last run.

- ``graded``, ``timeout``, ``kernel_died``, ``invalid_notebook`` and ``unknown_lesson`` are the learner's outcomes
  and count with their score. A report that names no lesson is skipped, with a warning.
- ``grader_error`` (or any other status) is the grader's fault, not a score: it is never exported as 0. The cell
  stays empty, and so does the learner's total, and a warning names the learner and lesson to regrade.
- A learner normally does one framework per lesson. With reports in both, the higher score is exported (a tie:
  PyTorch's); the ``csv`` format says which framework, and a note on stderr says so too.
- A lesson's points possible is the ``max_score`` of its reports (its rubric's total if only grader errors name it).

``--format csv``: ``learner``, then ``<lesson>`` and ``<lesson> framework`` per lesson, then ``total`` and ``max``.
A lesson not submitted is an empty cell that adds 0 to the total; ``max`` counts every lesson in the folder.

``--format canvas``: Canvas' gradebook import CSV: the header ``Student,ID,SIS User ID,SIS Login ID,Section``
and one column per lesson, named by the lesson id (a column whose name is no assignment of the course becomes a
new assignment on import), a ``Points Possible`` row, then one row per learner. nbgrader's student id is assumed
to be the learner's Canvas SIS Login ID: it fills ``SIS Login ID`` (and ``Student``); ``ID``, ``SIS User ID``
and ``Section`` are left empty, so Canvas matches learners by login.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .lessons import parse_stem

LEARNER_OUTCOMES = frozenset({"graded", "timeout", "kernel_died", "invalid_notebook", "unknown_lesson"})
PREFERRED_FRAMEWORK = "pytorch"  # between two frameworks of equal score
CANVAS_HEAD = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


@dataclass(frozen=True)
class Result:
    score: float
    framework: str


@dataclass
class Roster:
    points: dict[str, float] = field(default_factory=dict)  # lesson -> points possible, by lesson id
    results: dict[str, dict[str, Result]] = field(default_factory=dict)  # learner -> lesson -> exported score
    pending: dict[str, list[str]] = field(default_factory=dict)  # learner -> lessons (notebooks) awaiting a regrade
    warnings: list[str] = field(default_factory=list)
    reports: int = 0  # report files found

    @property
    def learners(self) -> list[str]:
        return sorted(self.results)

    def total(self, learner: str) -> float | None:
        """The learner's points over every lesson; None while a grader error leaves one of them unknown."""
        if self.pending.get(learner):
            return None
        return sum(r.score for r in self.results[learner].values())


def read_reports(grades_dir: Path, warnings: list[str]) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted((grades_dir / "reports").glob("*/*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            float(record["score"]), float(record.get("max_score") or 0)
        except (OSError, ValueError, TypeError, KeyError) as err:
            warnings.append(f"{path}: not a readable report ({type(err).__name__}: {err}); skipped")
            continue
        found.append((path, record))
    return found


def choose(records: list[dict]) -> Result:
    """The higher score of a learner's reports for one lesson; on a tie, PyTorch's."""
    best = max(records, key=lambda r: (float(r["score"]), r.get("framework") == PREFERRED_FRAMEWORK))
    return Result(float(best["score"]), best.get("framework") or "")


def rubric_points(lesson: str) -> float:
    from .rubric import load_exercises

    return sum(e.points for e in load_exercises(lesson))


def points_possible(lesson: str, maxima: set[float], warnings: list[str]) -> float:
    positive = {m for m in maxima if m > 0}
    if len(positive) > 1:
        warnings.append(f"{lesson}: reports disagree on its points ({', '.join(f'{m:g}' for m in sorted(positive))}); "
                        f"using {max(positive):g}. Were some graded by another version of the grader?")
    if positive:
        return max(positive)
    try:
        return rubric_points(lesson)
    except (ImportError, AttributeError):
        warnings.append(f"{lesson}: no report gives its points and the course has no rubric for it; using 0")
        return 0.0


def collect(grades_dir: str | Path) -> Roster:
    """Every learner's exported score per lesson, from all the reports under ``grades_dir/reports``."""
    grades_dir = Path(grades_dir)
    roster = Roster()
    outcomes: dict[tuple[str, str], list[dict]] = defaultdict(list)
    errors: dict[tuple[str, str], list[str]] = defaultdict(list)  # "<framework> <status>" of each grader fault
    maxima: dict[str, set[float]] = defaultdict(set)
    reports = read_reports(grades_dir, roster.warnings)
    roster.reports = len(reports)
    for path, r in reports:
        learner, status, lesson = r.get("learner") or path.parent.name, r.get("status"), r.get("lesson")
        roster.results.setdefault(learner, {})
        if status in LEARNER_OUTCOMES:
            if not lesson:
                roster.warnings.append(f"{learner}: {Path(r.get('notebook') or path).name} ({status}) names no lesson "
                                       "of the course; skipped")
                continue
            outcomes[learner, lesson].append(r)
        else:
            ln = parse_stem(Path(r.get("notebook") or path).stem)
            lesson = lesson or (ln.lesson if ln else None)
            if not lesson:  # a lesson not known: the learner's total is not known either
                roster.pending.setdefault(learner, []).append(Path(r.get("notebook") or path).name)
                roster.warnings.append(f"{learner}: {status} on {Path(r.get('notebook') or path).name}, whose lesson "
                                       "is unknown; not exported and the total left empty: regrade it")
                continue
            errors[learner, lesson].append(f"{r.get('framework') or (ln.framework if ln else '?')} {status}")
        maxima[lesson].add(float(r.get("max_score") or 0))
    roster.points = {lesson: points_possible(lesson, maxima[lesson], roster.warnings) for lesson in sorted(maxima)}
    for (learner, lesson), records in outcomes.items():
        roster.results[learner][lesson] = chosen = choose(records)
        if len({r.get("framework") for r in records}) > 1:
            tried = ", ".join(f"{r.get('framework')} {float(r['score']):g}" for r in records)
            roster.warnings.append(f"{learner}: {lesson} was done in both frameworks ({tried}); "
                                   f"exported {chosen.framework}'s {chosen.score:g}")
    for (learner, lesson), failed in sorted(errors.items()):
        done = roster.results[learner].get(lesson)
        if done is None:
            roster.pending.setdefault(learner, []).append(lesson)
        what = f"exported its {done.framework} score {done.score:g}" if done else "its cell and total are left empty"
        roster.warnings.append(f"{learner}: {lesson} ({', '.join(failed)}) is a fault of the grader, not a learner "
                               f"score; {what}. Regrade: python -m autograder class SUBMITTED --lesson {lesson} "
                               f"--only {learner} --force --out {grades_dir}")
    roster.results = dict(sorted(roster.results.items()))
    return roster


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _write(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def roster_csv(roster: Roster) -> str:
    """learner, <lesson>, <lesson> framework (per lesson), total, max."""
    head = ["learner", *(c for lesson in roster.points for c in (lesson, f"{lesson} framework")), "total", "max"]
    rows = [head]
    for learner in roster.learners:
        done = roster.results[learner]
        cells = [c for lesson in roster.points
                 for c in ((_num(done[lesson].score), done[lesson].framework) if lesson in done else ("", ""))]
        rows.append([learner, *cells, _num(roster.total(learner)), _num(sum(roster.points.values()))])
    return _write(rows)


def canvas_csv(roster: Roster) -> str:
    """Canvas' gradebook import: the learner id is taken as the SIS Login ID (see the module's docstring)."""
    rows = [[*CANVAS_HEAD, *roster.points], ["Points Possible", "", "", "", "", *map(_num, roster.points.values())]]
    for learner in roster.learners:
        done = roster.results[learner]
        rows.append([learner, "", "", learner, "",
                     *(_num(done[lesson].score) if lesson in done else "" for lesson in roster.points)])
    return _write(rows)


FORMATS = {"csv": roster_csv, "canvas": canvas_csv}


def main(args) -> int:
    roster = collect(args.grades_dir)
    for line in roster.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if not roster.reports:
        print(f"no reports under {Path(args.grades_dir) / 'reports'}: is it the --out folder of "
              "`python -m autograder class`?", file=sys.stderr)
        return 1
    if not roster.points:
        print(f"none of the {roster.reports} reports under {args.grades_dir} names a lesson: nothing to export",
              file=sys.stderr)
        return 1
    text = FORMATS[args.format](roster)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8", newline="")
        print(f"{len(roster.learners)} learners x {len(roster.points)} lessons ({args.format}) written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0
