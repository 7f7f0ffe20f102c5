"""The outcome benchmark's mechanics: seeds reach the notebook and its ``outcomes`` come back."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.lessons import all_lesson_notebooks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import dann_learning_rate
import outcomes


def both_twins_of(lesson: str):
    """Parametrize a test over the lesson's solution notebooks, one per framework."""
    return pytest.mark.parametrize("ln", [ln for ln in all_lesson_notebooks() if ln.lesson == lesson],
                                   ids=lambda ln: ln.framework)


def tiny_notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)
    return path


def test_each_seed_reaches_the_notebook_and_its_outcomes_are_read(tmp_path):
    path = tiny_notebook(tmp_path / "t.ipynb", "SEED = 0\noutcomes = {'seed / 10': SEED / 10, 'fixed': 0.5}")
    runs, _ = outcomes.run_seeds(path, "pytorch", [1, 3], "cpu")
    assert runs == [{"seed / 10": 0.1, "fixed": 0.5}, {"seed / 10": 0.3, "fixed": 0.5}]
    summary = outcomes.summarise(runs)
    assert summary["seed / 10"]["mean"] == pytest.approx(0.2) and summary["fixed"]["std"] == 0


def test_a_notebook_without_its_seed_line_is_refused(tmp_path):
    path = tiny_notebook(tmp_path / "t.ipynb", "tl.seed_everything(0)\noutcomes = {}")
    with pytest.raises(ValueError, match="SEED = 0"):
        outcomes.seeded(path, 1)


def test_claims_and_framework_gap_are_judged_on_the_means():
    def side(scratch, frozen):
        return {"outcomes": {"small CNN from scratch": {"mean": scratch}, "frozen features + linear head": {"mean": frozen},
                             "digits: small CNN from scratch": {"mean": 0.1},
                             "digits: frozen features + logistic regression": {"mean": 0.3}}}

    summary = outcomes.lesson_summary("02_feature_extraction", {"pytorch": side(0.6, 0.95), "keras": side(0.6, 0.65)})
    assert [c["pytorch"] for c in summary["claims"]] == [True, True]
    assert [c["keras"] for c in summary["claims"]] == [False, True]
    assert summary["largest_framework_gap"] == pytest.approx(0.3) and summary["frameworks_within_budget"] is False


def test_the_framework_gap_carries_the_standard_error_of_its_paired_seeds():
    def side(per_seed, seeds=(0, 1, 2)):
        return {"seeds": list(seeds), "outcomes": {"DANN": {"mean": sum(per_seed) / 3, "per_seed": per_seed}}}

    summary = outcomes.lesson_summary("x", {"keras": side([0.66, 0.64, 0.68]), "pytorch": side([0.60, 0.62, 0.58])})
    # per-seed gaps 0.06, 0.02, 0.10: sample sd 0.04, over sqrt(3)
    assert summary["framework_gap"]["DANN"] == pytest.approx(0.06)
    assert summary["framework_gap_standard_error"]["DANN"] == pytest.approx(0.04 / 3 ** 0.5, abs=1e-4)
    other_seeds = outcomes.lesson_summary("x", {"keras": side([0.66, 0.64, 0.68]),
                                                "pytorch": side([0.60, 0.62, 0.58], seeds=(3, 4, 5))})
    assert other_seeds["framework_gap_standard_error"] == {}  # unpaired runs: no paired error


@pytest.mark.parametrize("lesson", sorted(outcomes.CLAIMS))
def test_every_benchmarked_notebook_has_one_seed_line(lesson):
    notebooks = [ln for ln in all_lesson_notebooks() if ln.lesson == lesson]
    assert len(notebooks) == 2
    for ln in notebooks:
        nb = outcomes.seeded(ln.solution, 7)
        code = "".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "SEED = 7" in code and "outcomes = {" in code


def test_the_learning_rate_sweep_sets_the_rate_and_reads_the_domain_loss(tmp_path):
    path = tiny_notebook(tmp_path / "t.ipynb", "SEED = 0\nSTEPS, BATCH, LR = 350, 64, 0.005\n"
                         "dann_histories = {'MNIST-M': {'domain_loss': [0.2, SEED + LR]}}\noutcomes = {}")
    runs, _ = outcomes.run_seeds(path, "pytorch", [3], "cpu", edit=lambda nb: dann_learning_rate.with_rate(nb, 0.0025))
    assert runs == [{dann_learning_rate.DOMAIN_LOSS: pytest.approx(3.0025)}]
    with pytest.raises(ValueError, match="STEPS, BATCH, LR"):
        dann_learning_rate.with_rate(outcomes.seeded(tiny_notebook(tmp_path / "u.ipynb", "SEED = 0\nLR = 1"), 1), 0.1)


def test_the_sweep_picks_the_rate_whose_domain_loss_ends_nearest_chance():
    def loss(mean):
        return {dann_learning_rate.DOMAIN_LOSS: {"mean": mean}}

    assert dann_learning_rate.nearest_chance({"0.0025": loss(0.55), "0.005": loss(0.75), "0.01": loss(0.58)}) == "0.005"
    assert dann_learning_rate.nearest_chance({"0.0025": loss(0.55), "0.005": loss(0.9), "0.01": loss(0.6)}) == "0.01"


@both_twins_of(dann_learning_rate.LESSON)
def test_lesson_05_has_the_line_the_sweep_rewrites(ln):
    nb = dann_learning_rate.with_rate(outcomes.seeded(ln.solution, 7), 0.02)
    lesson_code = "".join(c.source for c in nb.cells[:-2] if c.cell_type == "code")  # without the two added cells
    assert "STEPS, BATCH, LR = 350, 64, 0.02\n" in lesson_code
    assert "dann_histories[name] = train(\"DANN\", name)" in lesson_code and '"MNIST-M": {' in lesson_code


def test_the_spread_over_seeds_is_the_sample_standard_deviation():
    summary = outcomes.summarise([{"a": 0.70}, {"a": 0.72}, {"a": 0.74}])
    assert summary["a"]["std"] == pytest.approx(0.02)  # n - 1; the population formula would give 0.0163
    assert outcomes.summarise([{"a": 0.7}])["a"]["std"] == 0
    assert outcomes.quoted({"mean": 0.7957, "std": 0.0076}) == "79.6 ± 0.8"


RECORDS = sorted(Path(outcomes.__file__).parent.glob("outcomes*.json"))


def recorded(name: str) -> dict:
    """A benchmark file, e.g. "outcomes.json"."""
    return json.loads(Path(outcomes.__file__).with_name(name).read_text())


def cells_of(ln) -> dict[str, str]:
    """The solution's cell sources by grade id."""
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nbformat.read(ln.solution, 4).cells}


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_every_recorded_spread_is_the_sample_standard_deviation_of_its_seeds(path):
    """Each outcome file holds one kind of spread, whichever run or session wrote each lesson."""
    for lesson, record in json.loads(path.read_text())["lessons"].items():
        for fw, side in record["frameworks"].items():
            for name, stats in side["outcomes"].items():
                assert stats["std"] == pytest.approx(outcomes.spread(stats["per_seed"]), abs=1e-4), (lesson, fw, name)


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_every_recorded_verdict_follows_from_its_per_seed_figures(path):
    """Claims, framework gaps and their errors are what ``lesson_summary`` makes of the recorded runs."""
    for lesson, record in json.loads(path.read_text())["lessons"].items():
        expected = outcomes.lesson_summary(lesson, record["frameworks"])
        for key in ("claims", "framework_gap", "framework_gap_standard_error", "frameworks_within_budget"):
            assert record[key] == expected[key], (lesson, key)


@both_twins_of("04_multi_task")
def test_lesson_04_tables_quote_the_measured_outcomes(ln):
    """Both twins' tables show benchmarks/outcomes.json's figures, so a re-measurement cannot leave them stale."""
    measured = {fw: m["outcomes"] for fw, m in recorded("outcomes.json")["lessons"]["04_multi_task"]["frameworks"].items()}
    cells = cells_of(ln)
    for fw, name in (("pytorch", "PyTorch"), ("keras", "Keras")):
        table = cells["discussion"].split(f"**{name}**", 1)[1].split("**", 1)[0]
        for method in ("single-task", "equal", "uncertainty", "pcgrad"):
            row = f"| {method} | " + " | ".join(outcomes.quoted(measured[fw][f"{method}/{task}"])
                                                for task in ("left", "right")) + " |"
            assert row in table, f"{name} table, {method}: expected {row}"
    for method in ("single-task", "equal", "uncertainty"):
        row = f"| {method} | " + " | ".join(outcomes.quoted(measured[fw][f"noisy right/{method}/{task}"])
                                            for fw in ("pytorch", "keras") for task in ("left", "right")) + " |"
        assert row in cells["noisy_note"], f"noisy-task table, {method}: expected {row}"


@both_twins_of("04_multi_task")
def test_lesson_04_quotes_its_3_seed_comparisons(ln):
    """The sentences around the tables: uncertainty vs equal weights, and the noisy-task figures, per framework."""
    measured = per_seed("outcomes.json", "04_multi_task")
    mean = statistics.fmean
    left = [mean(gains(r, "uncertainty/left", "equal/left")) for r in measured.values()]
    right = [mean(gains(r, "uncertainty/right", "equal/right")) for r in measured.values()]
    assert min(left + right) > 0, "the lesson says above equal weights on both digits"
    expected = (f"It scores {span(left, '.1f')} points above them on the left digit and {span(right, '.1f')} above on "
                f"the right on these three seeds")
    assert expected in prose(ln, "discussion"), f"expected: {expected}"
    noisy = [gains(r, "noisy right/uncertainty/right", "noisy right/equal/right") for r in measured.values()]
    assert all(mean(g) < 0 for g in noisy)
    clean = {fw: gains(r, "noisy right/uncertainty/left", "noisy right/equal/left") for fw, r in measured.items()}
    (pt_won, k_won) = (sum(g > 0 for g in clean[fw]) for fw in ("pytorch", "keras"))
    assert pt_won == k_won == 2 and all(abs(mean(g)) < 0.5 for g in clean.values()), (
        "the lesson says one losing seed cancels two that gain: the mean gain is lost in the noise")
    losses = span([-min(g) for g in clean.values()])
    (pt_unc, pt_eq), (k_unc, k_eq) = [[mean(measured[fw][f"noisy right/{m}/left"]) for m in ("uncertainty", "equal")]
                                      for fw in ("pytorch", "keras")]
    for phrase in [(f"{span([-mean(g) for g in noisy])} points below equal weights on average (up to "
                   f"{-min(min(g) for g in noisy):.1f} on one seed)"),
                   (f"one seed that loses {losses} points cancels two that gain ({pt_unc:.1f} against {pt_eq:.1f} "
                    f"in PyTorch, {k_unc:.1f} against {k_eq:.1f} in Keras; two seeds of three gain in each)")]:
        assert phrase in prose(ln, "noisy_note"), f"expected: {phrase}"


def per_seed(name: str, lesson: str) -> dict[str, dict[str, list[float]]]:
    """framework -> outcome -> per-seed accuracies in %, from a benchmark file."""
    return {fw: {k: [100 * v for v in s["per_seed"]] for k, s in side["outcomes"].items()}
            for fw, side in recorded(name)["lessons"][lesson]["frameworks"].items()}


def twenty_seeds(lesson: str) -> dict[str, dict[str, list[float]]]:
    return per_seed("outcomes_20_seeds.json", lesson)


def span(values: list[float], fmt: str = ".0f") -> str:
    """Two frameworks' figures as the prose quotes them: "low–high", or one figure when both round alike."""
    low, high = (f"{v:{fmt}}" for v in sorted(values))
    return low if low == high else f"{low}–{high}"


def at_most(fraction: float) -> str:
    """A recorded gap (a fraction) as the prose bounds it: percentage points rounded up to one decimal."""
    return f"{math.ceil(round(1000 * fraction, 6)) / 10:.1f}"


def gains(runs: dict[str, list[float]], method: str, baseline: str) -> list[float]:
    return [a - b for a, b in zip(runs[method], runs[baseline])]


def prose(ln, grade_id: str) -> str:
    """A markdown cell of the solution with its line breaks undone."""
    return " ".join(cells_of(ln)[grade_id].split())


@both_twins_of("05_domain_adaptation")
def test_lesson_05_quotes_the_scatter_of_20_seeds(ln):
    runs = twenty_seeds("05_domain_adaptation").values()
    dann = [r["MNIST-M/DANN"] for r in runs]
    coral = [gains(r, "UCI digits/CORAL", "UCI digits/source-only") for r in runs]
    assert all(g > 0 for c in coral for g in c), "the lesson says CORAL gains on every seed"
    dann_uci = [gains(r, "UCI digits/DANN", "UCI digits/source-only") for r in runs]
    largest_gap = recorded("outcomes_20_seeds.json")["lessons"]["05_domain_adaptation"]["largest_framework_gap"]
    text = prose(ln, "summary")
    for phrase in [f"from {min(min(d) for d in dann):.0f} % to {span([max(d) for d in dann])} %",
                   f"standard deviation {span([outcomes.spread(d) for d in dann], '.1f')} points",
                   f"source-only's is {span([outcomes.spread(r['MNIST-M/source-only']) for r in runs], '.1f')}",
                   (f"DANN gains {span([statistics.fmean(g) for g in dann_uci])} points on UCI digits "
                    f"({span([sum(x > 0 for x in g) for g in dann_uci], 'd')} seeds of 20 gain)"),
                   f"CORAL gains {span([statistics.fmean(c) for c in coral])} points on every one of the 20 seeds",
                   f"by more than {at_most(largest_gap)} points"]:
        assert phrase in text, f"expected: {phrase}"


@both_twins_of("05_domain_adaptation")
def test_lesson_05_quotes_its_3_seed_means(ln):
    record = recorded("outcomes.json")["lessons"]["05_domain_adaptation"]
    sides = record["frameworks"].values()
    means = [{k: 100 * s["mean"] for k, s in side["outcomes"].items()} for side in sides]

    def gain(target, method):
        return span([m[f"{target}/{method}"] - m[f"{target}/source-only"] for m in means])

    def mean(key):
        return span([m[key] for m in means])

    by_seed = [100 * (a - b) for side in sides for a, b in zip(side["outcomes"]["UCI digits/DANN"]["per_seed"],
                                                              side["outcomes"]["UCI digits/source-only"]["per_seed"])]
    expected = (f"DANN gains {gain('MNIST-M', 'DANN')} points over source-only ({mean('MNIST-M/source-only')} % → "
                f"{mean('MNIST-M/DANN')} %), CORAL about {gain('MNIST-M', 'CORAL')}; on UCI digits, a small *real* "
                f"shift, DANN gains {gain('UCI digits', 'DANN')} points ({min(by_seed):.0f} to {max(by_seed):.0f} by "
                f"seed) while CORAL gains {gain('UCI digits', 'CORAL')} ({mean('UCI digits/source-only')} % → "
                f"{mean('UCI digits/CORAL')} %). PyTorch and Keras agree within "
                f"{at_most(record['largest_framework_gap'])} points on every figure")
    assert expected in prose(ln, "summary"), f"expected: {expected}"


@both_twins_of("05_domain_adaptation")
def test_lesson_05_says_what_its_learning_rate_measurement_shows(ln):
    """The rate the lesson keeps, the rate the label-free score picks, and the gains per rate, as recorded."""
    record = recorded("dann_learning_rate.json")
    lesson_rate = dann_learning_rate.RATE_LINE.search(cells_of(ln)["train"]).group(0).rsplit(", ", 1)[1]
    nearest = {side["nearest_chance"] for side in record["frameworks"].values()}
    assert len(nearest) == 1 and lesson_rate not in nearest, "the lesson says the score now picks another rate"
    (picked,) = nearest
    for side in record["frameworks"].values():
        score = {rate: side["by_rate"][rate][record["criterion"]] for rate in (picked, lesson_rate)}
        gap = abs(score[picked]["mean"] - score[lesson_rate]["mean"])
        assert gap < min(s["std"] for s in score.values()), "the lesson says the difference is inside the scatter"
    text = prose(ln, "train_md")
    expected = (f"it puts {picked} nearest chance ({score[picked]['mean']:.2f} against "
                f"{score[lesson_rate]['mean']:.2f} for {lesson_rate})")
    assert expected in text, f"expected: {expected}"
    sides = record["frameworks"].values()
    gain = {rate: span([100 * (side["by_rate"][rate]["MNIST-M/DANN"]["mean"]
                               - side["by_rate"][rate]["MNIST-M/source-only"]["mean"]) for side in sides])
            for rate in ("0.0025", lesson_rate)}
    seeds = record["seeds"]
    expected = (f"between {gain['0.0025']} points (`LR` = 0.0025) and {gain[lesson_rate]} ({lesson_rate}) on seeds "
                f"{seeds[0]}–{seeds[-1]}")
    assert expected in prose(ln, "summary"), f"expected: {expected}"


@both_twins_of("04_multi_task")
def test_lesson_04_quotes_its_20_seed_comparisons(ln):
    runs = twenty_seeds("04_multi_task")
    ties = [gains(r, f"uncertainty/{task}", f"equal/{task}") for r in runs.values() for task in ("left", "right")]
    tie = [statistics.fmean(g) for g in ties]
    errors = [outcomes.standard_error(g) for g in ties]
    assert min(tie) > 0, "the lesson says above equal weights on both tasks, in both frameworks"
    expected = (f"only {min(tie):.2f}–{max(tie):.2f} points above them over 20 seeds (`benchmarks/outcomes_20_seeds.json`), "
                f"with a standard error of {span([min(errors), max(errors)], '.1f')} points and single "
                f"seeds from {-min(min(g) for g in ties):.1f} points below to {max(max(g) for g in ties):.1f} above")
    assert expected in prose(ln, "discussion"), f"expected: {expected}"
    note = prose(ln, "noisy_note")
    said = {}
    for fw in ("pytorch", "keras"):
        gain = gains(runs[fw], "noisy right/uncertainty/left", "noisy right/equal/left")
        said[fw] = (f"{statistics.fmean(gain):.1f} ± {outcomes.standard_error(gain):.1f}", sum(g > 0 for g in gain))
    (pt, pt_wins), (k, k_wins) = said["pytorch"], said["keras"]
    expected = f"{pt} points in PyTorch ({pt_wins} seeds of 20 gain), {k} in Keras ({k_wins} of 20)"
    assert expected in note, f"expected: {expected}"
    learned = [statistics.fmean(r["noisy right/uncertainty/left"]) for r in runs.values()]
    alone = [statistics.fmean(r["noisy right/single-task/left"]) for r in runs.values()]
    assert min(learned) >= max(alone) - 0.5, "the lesson says level with training it alone"
    expected = (f"the clean task scores {span(learned, '.1f')} % in both frameworks, level with training it alone "
                f"({' / '.join(f'{a:.1f}' for a in sorted(alone))} %)")
    assert expected in note, f"expected: {expected}"


def test_class_speedups_come_from_the_medians_of_interleaved_runs():
    import class_bench

    t = class_bench.timings(300.0, [160.0, 190.0, 150.0], [450.0, 520.0, 420.0], workers=2)
    assert t["seconds_2_workers"] == 160.0 and t["seconds_nbgrader_autograde"] == 450.0
    assert t["speedup_workers"] == 1.88 and t["speedup_vs_nbgrader"] == 2.81
    assert t["speedup_vs_nbgrader_every_run"] == [2.81, 2.74, 2.8]  # run i of nbgrader against run i of the class
    skipped = class_bench.timings(300.0, [150.0], [], workers=2)
    assert skipped["seconds_nbgrader_autograde"] is None and skipped["speedup_vs_nbgrader"] is None


@pytest.mark.parametrize("blank_every,blanks", [(5, 2), (0, 0)])
def test_benchmark_class_holds_the_asked_number_of_blank_lessons(tmp_path, blank_every, blanks):
    import class_bench

    ln = next(ln for ln in all_lesson_notebooks() if ln.stem == "01_ml_basics_pytorch")
    submitted = class_bench.make_class(tmp_path, ln, 10, blank_every)
    files = sorted(submitted.glob(f"*/{ln.assignment}/{ln.stem}.ipynb"))
    assert len(files) == 10
    assert sum(f.read_bytes() == ln.release.read_bytes() for f in files) == blanks


def test_machine_names_the_cpu_from_cpuinfo_or_else_from_platform(tmp_path):
    from autograder.environment import machine

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t\t: fpu\n")
    host = machine(cpuinfo)
    assert host["cpu"] == "Example CPU @ 2.0GHz" and host["cpus"] >= 1 and host["platform"]
    assert machine(tmp_path / "absent")["cpu"] not in ("", "Example CPU @ 2.0GHz")  # macOS, Windows: platform's name
