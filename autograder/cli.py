"""Command line: ``python -m autograder {grade,class,export,release,course} ...``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .lessons import FRAMEWORKS, LessonNotebook


def _grade(args) -> int:
    from .feedback import text_report
    from .grade import grade_notebook

    lesson = LessonNotebook(args.lesson, args.framework) if args.lesson else None
    reports = []
    for path in args.notebooks:  # one bad submission never stops the others: grade_notebook does not raise
        r = grade_notebook(path, device=args.device, cell_timeout=args.cell_timeout,
                           notebook_timeout=args.timeout, lesson=lesson)
        print(text_report(r), flush=True)
        reports.append(r.to_dict())
    if args.json:
        out = reports[0] if len(reports) == 1 else reports
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def _class(args) -> int:
    from .classroom import main

    return main(args)


def _export(args) -> int:
    from .export import main

    return main(args)


def _release(args) -> int:
    from .release import generate

    generate(Path(args.into) if args.into else None, args.assignments or None)
    print(f"generated {', '.join(args.assignments) or 'all lessons'} into {args.into or 'lessons/'}")
    return 0


def _course(args) -> int:
    from .course import main

    return main(args.device, args.lessons or None, args.json)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description="Grade the course's notebooks.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade learner notebooks (each one on its own)")
    g.add_argument("notebooks", nargs="+")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--json", help="write the report(s) to this JSON file")
    g.add_argument("--cell-timeout", type=int, default=120, help="seconds per cell (default 120)")
    g.add_argument("--timeout", type=int, default=900, help="seconds per notebook (default 900)")
    g.add_argument("--lesson", help="grade as this lesson (default: from the notebook's metadata or file name)")
    g.add_argument("--framework", choices=FRAMEWORKS, default="pytorch")
    g.set_defaults(run=_grade)

    k = sub.add_parser("class", help="grade a whole class: parallel, CSV + JSON + HTML feedback, idempotent")
    k.add_argument("submitted", help="nbgrader submitted/ tree, or a folder of notebooks")
    k.add_argument("--lesson", help="only this lesson (nbgrader layout)")
    k.add_argument("--out", default="grades", help="output folder (default: grades/)")
    k.add_argument("--workers", type=int, help="parallel notebooks (default: cores, within memory)")
    k.add_argument("--only", nargs="+", help="regrade only these learners")
    k.add_argument("--force", action="store_true", help="regrade even unchanged submissions")
    k.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    k.add_argument("--cluster", metavar="local[:N] | tcp://HOST:8786",
                   help="grade on Dask workers: a LocalCluster of N worker processes (default N: --workers, else "
                        "cores) or a running Dask scheduler (default: the built-in local pool)")
    k.add_argument("--gradebook", help="also write the scores to this nbgrader gradebook "
                                       "(sqlite:///gradebook.db, postgresql://user:password@host/db)")
    k.add_argument("--cell-timeout", type=int, default=120)
    k.add_argument("--timeout", type=int, default=900)
    k.set_defaults(run=_class)

    e = sub.add_parser("export", help="one row per learner, one column per lesson: a Canvas gradebook import or a CSV",
                       description="Read every report of a `class` output folder (all its runs, not only grades.csv) "
                                   "and write one row per learner, one column per lesson. A grader_error is never "
                                   "exported as a score: its cell stays empty and a warning names it for a regrade. "
                                   "Canvas: nbgrader's student id is assumed to be the learner's Canvas SIS Login ID; "
                                   "ID, SIS User ID and Section are left empty.")
    e.add_argument("grades_dir", metavar="GRADES_DIR", help="the --out folder of `class` (reads reports/*/*.json)")
    e.add_argument("--format", required=True, choices=["canvas", "csv"],
                   help="canvas: Canvas' gradebook import CSV (student id as SIS Login ID, a Points Possible row); "
                        "csv: score and framework per lesson, total and max")
    e.add_argument("--out", help="write to this file (default: standard output)")
    e.set_defaults(run=_export)

    r = sub.add_parser("release", help="regenerate lessons/ from solutions/ (nbgrader generate_assignment)")
    r.add_argument("assignments", nargs="*", help="e.g. 01_ml_basics_pytorch (default: all)")
    r.add_argument("--into", help="release directory (default: lessons/)")
    r.set_defaults(run=_release)

    c = sub.add_parser("course", help="run every solution, grade solutions and blank lessons, print a table")
    c.add_argument("lessons", nargs="*")
    c.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    c.add_argument("--json", help="also write the table to this JSON file")
    c.set_defaults(run=_course)

    args = p.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
