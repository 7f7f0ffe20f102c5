"""Speed benchmark: bare execution vs grading of every solution notebook -> benchmarks/results.json.

    .venv/bin/python benchmarks/run.py [--repeat N] [--device cpu|cuda|auto] [--grade-only] [--out FILE] [LESSON ...]

Budgets: each solution notebook runs within its lesson's budget on 2 CPU cores (BUDGET_RUN_S: 30 s for 00-01,
60 s for 02, 90 s for 03-07), and grading one takes <= 1.5x its bare execution. Figures are measured, never
asserted here: read the JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.course import execute_bare
from autograder.environment import machine, resolve_device, versions
from autograder.grade import grade_notebook
from autograder.lessons import all_lesson_notebooks

BUDGET_RUN_S = {"00_setup": 30, "01_ml_basics": 30, "02_feature_extraction": 60, "03_fine_tuning": 90,
                "04_multi_task": 90, "05_domain_adaptation": 90, "06_multi_label": 90,
                "07_text_transfer": 90}
BUDGET_GRADE_RATIO = 1.5


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is kept")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    p.add_argument("--grade-only", action="store_true",
                   help="re-measure grading only; keep each notebook's bare run time from the file")
    p.add_argument("lessons", nargs="*", help="only these lessons (default: all)")
    args = p.parse_args()
    device = resolve_device(args.device)
    out = Path(args.out)
    kept = json.loads(out.read_text()).get("notebooks", []) if out.exists() else []  # rows of other lessons stay
    earlier = {r["notebook"]: r for r in kept}
    rows = []
    for ln in all_lesson_notebooks():
        if args.lessons and ln.lesson not in args.lessons:
            continue
        if args.grade_only:
            if ln.stem not in earlier:
                p.error(f"--grade-only: {out} has no bare run time for {ln.stem}; measure it without --grade-only")
            run_s, run_measured = earlier[ln.stem]["run_s"], earlier[ln.stem].get("run_measured",
                                                                                 earlier[ln.stem].get("measured"))
        else:
            run_s, run_measured = statistics.median(execute_bare(ln.solution, device, ln.framework)
                                                    for _ in range(args.repeat)), None
        grades = [grade_notebook(ln.solution, device=device) for _ in range(args.repeat)]
        row = {"notebook": ln.stem, "run_s": round(run_s, 2),
               "grade_s": round(statistics.median(g.seconds for g in grades), 2),
               "score": f"{grades[0].score:g}/{grades[0].max_score:g}",
               "same_score_every_run": len({g.score for g in grades}) == 1}
        row["grade_over_run"] = round(row["grade_s"] / row["run_s"], 2)
        budget = BUDGET_RUN_S.get(ln.lesson)
        row["run_budget_s"] = budget
        within_run = budget is None or row["run_s"] <= budget
        row["within_budget"] = within_run and row["grade_over_run"] <= BUDGET_GRADE_RATIO
        if run_measured:
            row["run_measured"] = run_measured  # when the kept bare run time was measured
        rows.append(row)
        print(json.dumps(row), flush=True)
    measured, host = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), machine()
    for row in rows:
        row["measured"], row["cpu"] = measured, host["cpu"]  # kept rows may come from another host
    rows = sorted([r for r in kept if r["notebook"] not in {row["notebook"] for row in rows}] + rows,
                  key=lambda r: r["notebook"])
    result = {"measured": measured,
              "machine": {**host, "device": device, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
              "versions": versions(), "grade_ratio_budget": BUDGET_GRADE_RATIO, "notebooks": rows}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
