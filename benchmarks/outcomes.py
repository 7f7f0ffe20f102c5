"""Outcome benchmark: what each lesson's technique buys on held-out test data -> benchmarks/outcomes.json.

    .venv/bin/python benchmarks/outcomes.py [--seeds 0 1 2] [--device cpu|cuda|auto] [--out FILE] [lessons ...]

A solution notebook that reports outcomes sets ``SEED = 0`` on a line of its own and leaves a dict ``outcomes``
(method -> test accuracy) in its namespace. This script runs it once per seed with that line rewritten, reads the
dict, and records per framework the mean and sample standard deviation over seeds, the gap between the frameworks,
and whether each claim the lesson's issue makes (``CLAIMS``) holds on the means. Figures are measured, never asserted
here; the tables a lesson quotes from them are checked against them (``quoted``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.course import run_notebook
from autograder.environment import machine, resolve_device, versions
from autograder.lessons import all_lesson_notebooks

SEED_LINE = re.compile(r"^SEED = 0$", re.MULTILINE)
MARKER = "@@outcomes@@"
REPORT_CELL = f'import json as _json\nprint("{MARKER}" + _json.dumps({{k: float(v) for k, v in outcomes.items()}}))'
FRAMEWORK_GAP = 0.03  # both frameworks within 3 points of each other on every outcome (mean over seeds)

CLAIMS = {  # lesson -> [(claim of its issue, or of the lesson: "lesson: ...", test on the per-framework means)]
    "02_feature_extraction": [
        ("frozen features beat from scratch by >= 10 points at 5 labels per class (textures)",
         lambda m: m["frozen features + linear head"] - m["small CNN from scratch"] >= 0.10),
        ("frozen features beat from scratch on the shifted digits (MNIST-M style, 10 labels per class)",
         lambda m: m["digits: frozen features + logistic regression"] > m["digits: small CNN from scratch"]),
    ],
    "03_fine_tuning": [
        ("fine-tuned beats the best frozen model by >= 5 points (50 labels per class)",
         lambda m: m["fine-tuned (last 5 blocks), 50 per class"] - max(
             m["frozen backbone + head, 50 per class"],
             m["frozen features + logistic regression, 50 per class"]) >= 0.05),
        ("frozen features beat the same network from scratch at the smallest budget (5 labels per class)",
         lambda m: m["frozen features + logistic regression, 5 per class"]
         > m["same network from scratch, 5 per class"]),
    ],
    "04_multi_task": [
        (f"uncertainty weighting >= the worse of equal weights and single-task ({task} digit)",
         lambda m, task=task: m[f"uncertainty/{task}"] >= min(m[f"equal/{task}"], m[f"single-task/{task}"]))
        for task in ("left", "right")
    ] + [
        (("lesson: next to a task with half its labels random, uncertainty weighting beats equal weights on the "
         "clean task"),
         lambda m: m["noisy right/uncertainty/left"] > m["noisy right/equal/left"]),
    ],
    "05_domain_adaptation": [
        ("DANN beats source-only by >= 15 points on MNIST -> MNIST-M-style",
         lambda m: m["MNIST-M/DANN"] - m["MNIST-M/source-only"] >= 0.15),
        ("DANN beats source-only on MNIST -> UCI digits", lambda m: m["UCI digits/DANN"] > m["UCI digits/source-only"]),
    ],
    "06_multi_label": [
        ("tuned thresholds beat one 0.5 threshold on macro F1",
         lambda m: m["sigmoid head, tuned thresholds"] > m["sigmoid head, 0.5"]),
    ],
    "07_text_transfer": [
        ("frozen embeddings + linear head beat TF-IDF at the smallest label budget by >= 10 points",
         lambda m: m["frozen embeddings + linear head, 8 per class"]
         - m["TF-IDF + logistic regression, 8 per class"] >= 0.10),
        ("fine-tuned >= frozen at the largest label budget",
         lambda m: m["fine-tuned top layer, 32 per class"] >= m["frozen embeddings + linear head, 32 per class"]),
    ],
}


def seeded(path: Path, seed: int) -> nbformat.NotebookNode:
    """The notebook with its ``SEED = 0`` line set to ``seed`` and a last cell that prints ``outcomes``."""
    nb = nbformat.read(path, as_version=4)
    hits = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source, n = SEED_LINE.subn(f"SEED = {seed}", cell.source)
            hits += n
    if hits != 1:
        raise ValueError(f"{path.name}: expected exactly one line `SEED = 0`, found {hits}")
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    return nb


def read_outcomes(nb: nbformat.NotebookNode) -> dict[str, float]:
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []) if o.get("name") == "stdout")
    line = next(line for line in text.splitlines() if line.startswith(MARKER))
    return json.loads(line[len(MARKER):])


def run_seeds(path: Path, framework: str, seeds: list[int], device: str,
              edit=lambda nb: nb) -> tuple[list[dict], list[float]]:
    """Run the notebook once per seed (after ``edit``, e.g. another constant) and read each run's ``outcomes``."""
    runs, seconds = [], []
    for seed in seeds:
        nb = edit(seeded(path, seed))
        seconds.append(round(run_notebook(nb, path.parent, device, framework), 1))
        runs.append(read_outcomes(nb))
        print(f"  {path.stem} seed {seed}: {seconds[-1]} s {runs[-1]}", flush=True)
    return runs, seconds


def spread(values: list[float]) -> float:
    """The sample standard deviation over seeds (n - 1: three seeds are a sample), 0 for one seed."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: list[dict]) -> dict[str, dict]:
    return {key: {"mean": round(statistics.fmean(r[key] for r in runs), 4),
                  "std": round(spread([r[key] for r in runs]), 4),
                  "per_seed": [round(r[key], 4) for r in runs]} for key in runs[0]}


def standard_error(values: list[float]) -> float:
    """How far the mean of these per-seed values could move with other seeds: spread / sqrt(n)."""
    return spread(values) / len(values) ** 0.5


def quoted(stats: dict) -> str:
    """How a lesson quotes an outcome: mean ± standard deviation over seeds, in %."""
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"


def paired_standard_errors(a: dict, b: dict) -> dict[str, float]:
    """Per outcome, the standard error of the mean gap between two frameworks run on the same seeds.

    Where the twins of seed k do not start from the same weights, the per-seed gaps scatter; their spread over
    sqrt(n) says how far the mean gap could move with other seeds. Empty unless both ran the same >= 2 seeds.
    """
    if a.get("seeds") != b.get("seeds") or len(a.get("seeds", [])) < 2:
        return {}
    def gaps(k):
        return [x - y for x, y in zip(a["outcomes"][k]["per_seed"], b["outcomes"][k]["per_seed"])]

    return {k: round(standard_error(gaps(k)), 4) for k in a["outcomes"] if k in b["outcomes"]}


def lesson_summary(lesson: str, frameworks: dict[str, dict]) -> dict:
    means = {fw: {k: v["mean"] for k, v in s["outcomes"].items()} for fw, s in frameworks.items()}
    claims = [{"claim": text, **{fw: bool(test(m)) for fw, m in means.items()}}
              for text, test in CLAIMS.get(lesson, [])]
    gaps, errors = {}, {}
    if len(means) == 2:
        a, b = means.values()
        gaps = {k: round(abs(a[k] - b[k]), 4) for k in a if k in b}
        errors = paired_standard_errors(*frameworks.values())
    return {"frameworks": frameworks, "claims": claims, "framework_gap": gaps,
            "framework_gap_standard_error": errors, "largest_framework_gap": max(gaps.values(), default=None),
            "frameworks_within_budget": all(g <= FRAMEWORK_GAP for g in gaps.values()) if gaps else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(Path(__file__).with_name("outcomes.json")))
    p.add_argument("lessons", nargs="*", help="only these lessons (default: every lesson with CLAIMS)")
    args = p.parse_args()
    device = resolve_device(args.device)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    lessons = result.setdefault("lessons", {})
    chosen = args.lessons or sorted(CLAIMS)
    for lesson in chosen:
        frameworks = {}
        for ln in [ln for ln in all_lesson_notebooks() if ln.lesson == lesson]:
            runs, seconds = run_seeds(ln.solution, ln.framework, args.seeds, device)
            frameworks[ln.framework] = {"seeds": args.seeds, "seconds": seconds, "outcomes": summarise(runs)}
        lessons[lesson] = {"measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                           "device": device, "machine": machine(), **lesson_summary(lesson, frameworks)}
        print(json.dumps({lesson: {k: lessons[lesson][k] for k in ("claims", "largest_framework_gap")}}), flush=True)
    result.update({"framework_gap_budget": FRAMEWORK_GAP, "versions": versions()})
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
