"""How lesson 05 chose DANN's learning rate without a target label -> benchmarks/dann_learning_rate.json.

    .venv/bin/python benchmarks/dann_learning_rate.py [--rates 0.0025 0.005 0.01] [--seeds 10 11 12] [--device cpu]

Runs both lesson-05 solution notebooks with their ``STEPS, BATCH, LR = ...`` line set to each rate and their
``SEED = 0`` line to each seed (seeds other than the reported 0-2, as a course author tuning on their own runs
would), and records per rate the label-free criterion the lesson states: the DANN domain loss over the last eighth
of training on MNIST-M, where the rate whose loss ends nearest chance (log 2) left the features the most
domain-confused. The target test accuracies are recorded beside it only to show what the criterion picked.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from outcomes import run_seeds, summarise

from autograder.environment import machine, resolve_device, versions
from autograder.lessons import all_lesson_notebooks

LESSON = "05_domain_adaptation"
RATE_LINE = re.compile(r"^(STEPS, BATCH, LR = \d+, \d+, )[0-9.e-]+$", re.MULTILINE)
DOMAIN_LOSS = "DANN domain loss, last eighth (MNIST-M)"
# Runs before the report cell that `seeded` appends, so the criterion travels with the lesson's own outcomes.
CRITERION_CELL = f'outcomes["{DOMAIN_LOSS}"] = dann_histories["MNIST-M"]["domain_loss"][-1]'


def with_rate(nb: nbformat.NotebookNode, rate: float) -> nbformat.NotebookNode:
    """The seeded notebook with its learning rate set to ``rate`` and the DANN domain loss added to ``outcomes``."""
    hits = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source, n = RATE_LINE.subn(lambda m: f"{m.group(1)}{rate!r}", cell.source)
            hits += n
    if hits != 1:
        raise ValueError(f"expected exactly one line `STEPS, BATCH, LR = ...`, found {hits}")
    nb.cells.insert(len(nb.cells) - 1, nbformat.v4.new_code_cell(CRITERION_CELL))
    return nb


def nearest_chance(by_rate: dict[str, dict]) -> str:
    """The rate whose mean end-of-training domain loss is nearest log 2 (a domain head at chance)."""
    return min(by_rate, key=lambda rate: abs(by_rate[rate][DOMAIN_LOSS]["mean"] - math.log(2)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", type=float, nargs="+", default=[0.0025, 0.005, 0.01])
    p.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(Path(__file__).with_name("dann_learning_rate.json")))
    args = p.parse_args()
    device = resolve_device(args.device)
    frameworks = {}
    for ln in [ln for ln in all_lesson_notebooks() if ln.lesson == LESSON]:
        by_rate = {}
        for rate in args.rates:
            print(f"  {ln.framework} LR {rate}:", flush=True)
            runs, _ = run_seeds(ln.solution, ln.framework, args.seeds, device, edit=lambda nb, r=rate: with_rate(nb, r))
            by_rate[repr(rate)] = summarise(runs)
        frameworks[ln.framework] = {"by_rate": by_rate, "nearest_chance": nearest_chance(by_rate)}
        print(f"{ln.framework}: domain loss nearest log 2 at LR {frameworks[ln.framework]['nearest_chance']}",
              flush=True)
    result = {"measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "device": device,
              "machine": machine(), "seeds": args.seeds, "criterion": DOMAIN_LOSS, "chance": round(math.log(2), 4),
              "frameworks": frameworks, "versions": versions()}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
