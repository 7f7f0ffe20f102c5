"""Lesson 03 redesign: a target where fine-tuning pays -> benchmarks/l03_target_search.json.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/l03_target_search.py --run report \
        [--targets mnistm5k] [--seeds 0 1 2] [--budgets 5 20 50] [--n-top 5] [--lr-backbone 1e-3] [--lr-head 1e-3] \
        [--head-epochs 25] [--patience 15] [--workers 3] [--no-scratch]

The recorded runs: ``--run report --workers 3`` (the lesson's 25-epoch stage 1, with scratch), and the chosen
settings ``--head-epochs 3 --no-scratch --workers 3`` as ``selection_short_stage1`` (seeds 100-102, budget 50) and
``report_short_stage1`` (seeds 0-2); see docs/lesson03_redesign.md.

For each target data set, seed and label budget (labelled images per class) it measures the test accuracy of
  * frozen: the pretrained EfficientNet-Lite0 frozen, with logistic regression on its pooled features, and with a
    linear head trained by Adam (the lesson's stage 1);
  * fine-tuned: stage 1's model with the conv weights of the last ``n_top`` blocks and of the 1x1 head conv
    unfrozen (batch norm frozen, eval mode), Adam with two rates (backbone, head), cosine schedule, early stopping
    on the validation loss (the lesson's stage 2);
  * scratch: the same EfficientNet-Lite0 architecture from random initialisation, every layer trained (batch norm
    in train mode), Adam, cosine schedule, early stopping on the validation loss;
and the wall time of each. Images are fed at 64 px (grey ones repeated to 3 channels by ``tl.preprocess_inputs``);
the frozen part of the network (every block below the fine-tuned ones) runs once per image and is cached, as in
the lesson. Validation and test rows are the same for every budget of a seed; the smaller budgets' training rows
are a prefix of the larger ones'. Each ``--run`` name is stored under ``runs`` in the JSON, keeping other runs:
``selection`` (seeds 100-102, used to choose the target and settings) and ``report`` (seeds 0-2).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.environment import machine, versions
from tlkit import pretrained
from tlkit import pytorch as tl
from tlkit.data import load_dataset

OUT = Path(__file__).with_name("l03_target_search.json")
SIZE = 64  # pixels fed to the network, as in the lesson
VAL_PER_CLASS, TEST_PER_CLASS = 20, 100
BATCH = 32
HEAD = {"lr": 1e-2, "epochs": 25}  # stage 1, as in the lesson (epochs: an option)
FINE_TUNE = {"epochs": 15}  # stage 2; the rates, patience and n_top are options
SCRATCH = {"lr": 1e-3, "epochs": 15, "patience": 4}


def splits(y: np.ndarray, seed: int, budgets: list[int]) -> dict[str, np.ndarray]:
    """Row indices per split: ``train_<k>`` for each budget (nested prefixes), ``val`` and ``test``."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    k_max = max(budgets)
    rows = {f"train_{k}": np.concatenate([p[:k] for p in per_class]) for k in budgets}
    rows["val"] = np.concatenate([p[k_max:k_max + VAL_PER_CLASS] for p in per_class])
    rows["test"] = np.concatenate([p[k_max + VAL_PER_CLASS:k_max + VAL_PER_CLASS + TEST_PER_CLASS]
                                   for p in per_class])
    return rows


def cache_trunk(backbone: torch.nn.Module, images: np.ndarray, n_top: int) -> torch.Tensor:
    """Activations at the input of the last ``n_top`` blocks: the frozen part, run once per image."""
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 250):
            x = tl.preprocess_inputs(images[i:i + 250], size=SIZE)
            x = backbone._swish(backbone._bn0(backbone._conv_stem(x)))
            for block in backbone._blocks[:-n_top]:
                x = block(x)
            out.append(x)
    return torch.cat(out)


def pooled_features(backbone: torch.nn.Module, a: torch.Tensor, n_top: int) -> torch.Tensor:
    """The rest of ``backbone`` from cached activations: last n_top blocks, 1x1 conv, average pooling."""
    for block in backbone._blocks[-n_top:]:
        a = block(a)
    return backbone._avg_pooling(backbone._swish(backbone._bn1(backbone._conv_head(a)))).flatten(1)


def run_epoch(forward, x, y, optimizer=None, seed=0, batch_size=BATCH) -> tuple[float, float]:
    """Mean loss and accuracy of ``forward`` on (x, y); one shuffled training pass when an optimizer is given."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)) if optimizer else torch.arange(len(y))
    total, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        rows = order[i:i + batch_size]
        with torch.set_grad_enabled(optimizer is not None):
            logits = forward(x[rows])
            loss = torch.nn.functional.cross_entropy(logits, y[rows])
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total += loss.item() * len(rows)
        correct += (logits.argmax(1) == y[rows]).sum().item()
    return total / len(y), correct / len(y)


def train_early_stopping(model, forward, train, val, optimizer, epochs, patience, set_mode=None) -> int:
    """Cosine schedule over ``epochs``; keeps the weights of the best validation accuracy, the starting weights
    included (never worse on validation than it began), stops after ``patience`` epochs without a gain.

    Accuracy, not loss: stage 1's head fits its few labels to a training loss near 0 and is overconfident on
    validation (loss ~3 at 50 % accuracy), so a model that has unlearned the task can have a lower validation loss.
    Returns the epochs run."""
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    best, best_state, waited = run_epoch(forward, *val)[1], copy.deepcopy(model.state_dict()), 0
    for epoch in range(epochs):
        if set_mode:
            set_mode(True)
        run_epoch(forward, *train, optimizer, seed=epoch)
        if set_mode:
            set_mode(False)
        scheduler.step()
        val_accuracy = run_epoch(forward, *val)[1]
        if val_accuracy > best:
            best, best_state, waited = val_accuracy, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    return epoch + 1


def unfreeze_last_blocks(backbone: torch.nn.Module, n_blocks: int) -> torch.nn.Module:
    """The lesson's Part B: only the conv weights of the last n_blocks blocks and of _conv_head train."""
    backbone.requires_grad_(False)
    for module in [*backbone._blocks[-n_blocks:], backbone._conv_head]:
        for name, p in module.named_parameters():
            p.requires_grad_(not name.startswith("_bn"))
    return backbone.eval()


def random_efficientnet(n_classes: int) -> torch.nn.Module:
    """EfficientNet-Lite0, random weights (the library's own initialisation), pooled features -> linear head."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(pretrained.backbone("efficientnet_lite0").arch)
    net._dropout, net._fc = torch.nn.Identity(), torch.nn.Linear(1280, n_classes)  # as load_backbone's top
    return net


def recalibrate_batch_norm(net: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Batch norm's running statistics as the exact average over ``x``, then eval mode ("precise BN").

    The library's batch norm keeps running averages with momentum 0.01 (TensorFlow's 0.99): after the few dozen
    steps that a few labels allow they are still mostly their initial values, and a network trained from scratch
    predicts one class in eval mode. Recomputing them on the training images fixes that."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for i in range(0, len(x), 100):
            net(x[i:i + 100])
    for m in norms:
        m.momentum = 0.01
    return net.eval()


def accuracy(forward, x, y) -> float:
    return run_epoch(forward, x, y)[1]


def one_budget(cache, labels, rows, budget, seed, n_classes, n_top, lr_backbone, lr_head, patience, head_epochs,
               images) -> dict:
    """Every method at one label budget of one seed: test accuracies and wall times."""
    backbone = tl.load_backbone("efficientnet_lite0", input_size=SIZE)
    train_rows = rows[f"train_{budget}"]
    data = {split: (cache[r], labels[r]) for split, r in (("train", train_rows), ("val", rows["val"]),
                                                           ("test", rows["test"]))}
    result, times = {}, {}

    start = time.perf_counter()  # frozen: logistic regression on the pooled features
    with torch.no_grad():
        pooled = {split: (pooled_features(backbone, a, n_top), t) for split, (a, t) in data.items()}
    clf = LogisticRegression(max_iter=2000).fit(pooled["train"][0].numpy(), pooled["train"][1].numpy())
    result["frozen + logistic regression"] = clf.score(pooled["test"][0].numpy(), pooled["test"][1].numpy())
    times["frozen + logistic regression"] = time.perf_counter() - start

    start = time.perf_counter()  # frozen: the lesson's stage 1, a linear head trained with Adam
    tl.seed_everything(seed)
    head = torch.nn.Linear(1280, n_classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=HEAD["lr"])
    for epoch in range(head_epochs):
        run_epoch(head, *pooled["train"], optimizer, seed=epoch)
    result["frozen + head"] = accuracy(head, *pooled["test"])
    times["frozen + head"] = time.perf_counter() - start

    start = time.perf_counter()  # fine-tuned: the lesson's stage 2 from stage 1's model
    model = torch.nn.ModuleDict({"backbone": unfreeze_last_blocks(backbone, n_top), "head": head.requires_grad_(True)})
    optimizer = torch.optim.Adam([
        {"params": [p for p in backbone.parameters() if p.requires_grad], "lr": lr_backbone},
        {"params": list(head.parameters()), "lr": lr_head}])
    forward = lambda a: model["head"](pooled_features(model["backbone"], a, n_top))
    result["fine-tuned epochs"] = train_early_stopping(model, forward, data["train"], data["val"], optimizer,
                                                       FINE_TUNE["epochs"], patience)
    result["fine-tuned"] = accuracy(forward, *data["test"])
    times["fine-tuned"] = time.perf_counter() - start

    if images is not None:  # scratch: the same architecture from random weights, every layer trained
        start = time.perf_counter()
        x = {split: tl.preprocess_inputs(images[r], size=SIZE) for split, r in
             (("train", train_rows), ("val", rows["val"]), ("test", rows["test"]))}
        tl.seed_everything(seed)
        net = random_efficientnet(n_classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=SCRATCH["lr"])

        def set_mode(training: bool) -> None:
            net.train()
            if not training:  # batch norm's running statistics recomputed on the training images, then eval
                recalibrate_batch_norm(net, x["train"])

        result["scratch epochs"] = train_early_stopping(
            net, net, (x["train"], labels[train_rows]), (x["val"], labels[rows["val"]]), optimizer,
            SCRATCH["epochs"], SCRATCH["patience"], set_mode=set_mode)
        result["scratch"] = accuracy(net, x["test"], labels[rows["test"]])
        times["scratch"] = time.perf_counter() - start
    result["seconds"] = {name: round(t, 2) for name, t in times.items()}
    return result


_SHARED: dict = {}  # what run_seed needs, set by main before any worker forks


def run_seed(seed: int) -> dict[str, dict]:
    """Every budget of one seed."""
    torch.set_num_threads(1)
    sh, args, out = _SHARED, _SHARED["args"], {}
    for k in args.budgets:
        r = one_budget(sh["cache"], sh["labels"], sh["rows_of"][seed], k, seed, sh["n_classes"], args.n_top,
                       args.lr_backbone, args.lr_head, args.patience, args.head_epochs, sh["images"])
        out[str(k)] = r
        print(sh["name"], f"seed {seed}", f"{k}/class", {m: round(100 * r[m], 1) for m in sh["methods"] if m in r},
              r["seconds"], flush=True)
    return out


def summarise(per_seed: dict[str, dict[str, dict]], methods: list[str]) -> dict:
    """Mean and sample sd (%) per budget and method, and the fine-tuned - frozen and frozen - scratch gaps."""
    out = {}
    budgets = next(iter(per_seed.values())).keys()
    for budget in budgets:
        cells = [per_seed[s][budget] for s in per_seed]
        row = {}
        for m in methods + ["fine-tuned - best frozen", "best frozen - scratch"]:
            values = []
            for c in cells:
                best_frozen = max(c["frozen + logistic regression"], c["frozen + head"])
                v = {"fine-tuned - best frozen": c["fine-tuned"] - best_frozen,
                     "best frozen - scratch": best_frozen - c["scratch"] if "scratch" in c else None}.get(m, c.get(m))
                if v is not None:
                    values.append(100 * v)
            if values:
                row[m] = {"mean": round(float(np.mean(values)), 2),
                          "sd": round(float(np.std(values, ddof=1)), 2) if len(values) > 1 else None,
                          "min": round(min(values), 2), "max": round(max(values), 2)}
        out[budget] = row
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="report", help="name of this run in the JSON (selection, report, ...)")
    parser.add_argument("--targets", nargs="+", default=["mnistm5k"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budgets", nargs="+", type=int, default=[5, 20, 50])
    parser.add_argument("--n-top", type=int, default=5, help="blocks fine-tuned (and not cached)")
    parser.add_argument("--lr-backbone", type=float, default=1e-3)
    parser.add_argument("--lr-head", type=float, default=1e-3)
    parser.add_argument("--head-epochs", type=int, default=HEAD["epochs"], help="stage 1 (the frozen + head model)")
    parser.add_argument("--patience", type=int, default=15, help="stage 2: epochs without a validation gain")
    parser.add_argument("--workers", type=int, default=1, help="seeds run in parallel (one process each)")
    parser.add_argument("--no-scratch", action="store_true", help="skip the from-scratch baseline")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    methods = ["frozen + logistic regression", "frozen + head", "fine-tuned"] + ([] if args.no_scratch else ["scratch"])
    run_start = time.perf_counter()
    targets = {}
    for name in args.targets:
        ds = load_dataset(name)
        rows_of = {seed: splits(ds.y, seed, args.budgets) for seed in args.seeds}
        needed = np.unique(np.concatenate([r for rows in rows_of.values() for r in rows.values()]))
        start = time.perf_counter()  # the frozen part, once per image that any seed uses
        part = cache_trunk(tl.load_backbone("efficientnet_lite0", input_size=SIZE), ds.x[needed], args.n_top)
        cache = torch.zeros((len(ds), *part.shape[1:]))
        cache[torch.from_numpy(needed)] = part
        cache_s = time.perf_counter() - start
        labels = torch.from_numpy(ds.y).long()
        _SHARED.update(name=name, cache=cache, labels=labels, rows_of=rows_of, n_classes=len(ds.classes),
                       images=None if args.no_scratch else ds.x, args=args, methods=methods)
        if args.workers > 1:  # one process per seed; fork shares the cache
            with multiprocessing.get_context("fork").Pool(args.workers) as pool:
                per_seed = dict(zip(map(str, args.seeds), pool.map(run_seed, args.seeds)))
        else:
            per_seed = {str(seed): run_seed(seed) for seed in args.seeds}
        targets[name] = {"classes": len(ds.classes), "images": len(ds), "cache_seconds": round(cache_s, 2),
                         "per_seed": per_seed, "summary": summarise(per_seed, methods)}
    record = {
        "measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "settings": {"size": SIZE, "val_per_class": VAL_PER_CLASS, "test_per_class": TEST_PER_CLASS, "batch": BATCH,
                     "head": {**HEAD, "epochs": args.head_epochs},
                     "fine_tune": {**FINE_TUNE, "lr_backbone": args.lr_backbone, "lr_head": args.lr_head,
                                                   "patience": args.patience, "n_top": args.n_top},
                     "scratch": SCRATCH, "seeds": args.seeds, "budgets": args.budgets, "threads": 1,
                     "workers": args.workers},
        "machine": machine(), "versions": versions(),
        "wall_seconds": round(time.perf_counter() - run_start, 1),
        "targets": targets,
    }
    existing = json.loads(args.out.read_text()) if args.out.exists() else {}
    existing.setdefault("runs", {})[args.run] = record
    args.out.write_text(json.dumps(existing, indent=1) + "\n")
    print(json.dumps({t: v["summary"] for t, v in targets.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
