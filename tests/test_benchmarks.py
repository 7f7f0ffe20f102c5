"""The outcome benchmark's mechanics: seeds reach the notebook and its ``outcomes`` come back."""

from __future__ import annotations

import json
import re
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
        return {"outcomes": {"small CNN from scratch": {"mean": scratch},
                             "frozen features + linear head": {"mean": frozen},
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



# Outcomes exempt from the framework budget, each with the reason the instructor guide gives.

GAP_EXEMPT = {
    ("03_fine_tuning", "frozen backbone + head, 50 per class"):
        "a 3-epoch warm-up of the head, not a converged model: its accuracy depends on the head's initialisation "
        "and batch order, which differ between the frameworks; the converged frozen baseline (logistic regression) "
        "is held to the budget",
}


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


# What the lessons say, held to every recorded measurement (benchmarks/outcomes*.json, both frameworks). Learner
# notebooks state findings as directions and ranges that survive a re-measurement, and measurement bookkeeping lives
# in docs/instructor.md: a re-measurement that moves a figure out of what a lesson says fails here, and one that
# moves it within needs no edit anywhere.

TASKS = ("left", "right")
MANY_SEEDS = 20
# Claims a lesson makes only of an average over many seeds: lesson 04 says the clean task's gain next to a noisy task
# is smaller than one run's scatter, so three seeds may not show it (its stated 0–2 points hold on every record).
ONLY_OVER_MANY_SEEDS = {("lesson: next to a task with half its labels random, uncertainty weighting beats equal "
                         "weights on the clean task")}


def measurements(lesson: str, min_seeds: int = 1) -> list[tuple[str, dict]]:
    """("file, framework", that framework's record) for every recorded measurement of the lesson."""
    found = []
    for path in RECORDS:
        record = json.loads(path.read_text())["lessons"].get(lesson, {})
        found += [(f"{path.name}, {fw}", side) for fw, side in record.get("frameworks", {}).items()
                  if len(side["seeds"]) >= min_seeds]
    return found


def points(side: dict) -> dict[str, float]:
    """Outcome -> mean test accuracy over the recorded seeds, in %."""
    return {k: 100 * s["mean"] for k, s in side["outcomes"].items()}


def gain_by_seed(side: dict, method: str, baseline: str) -> list[float]:
    o = side["outcomes"]
    return [100 * (a - b) for a, b in zip(o[method]["per_seed"], o[baseline]["per_seed"])]


def prose(ln, grade_id: str) -> str:
    """A markdown cell of the solution with its line breaks undone."""
    return " ".join(cells_of(ln)[grade_id].split())


def twins_of(*lessons: str):
    """Parametrize a test over the solution notebooks of these lessons, both frameworks."""
    return pytest.mark.parametrize("ln", [ln for ln in all_lesson_notebooks() if ln.lesson in lessons],
                                   ids=lambda ln: ln.stem)


@pytest.mark.parametrize("lesson,claim,holds", [(lesson, text, test) for lesson, claims in outcomes.CLAIMS.items()
                                                for text, test in claims],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_each_claim_of_a_lesson_holds_on_every_recorded_measurement(lesson, claim, holds):
    min_seeds = MANY_SEEDS if claim in ONLY_OVER_MANY_SEEDS else 1
    checked = measurements(lesson, min_seeds)
    assert checked, f"{lesson} has no recorded measurement over {min_seeds} or more seeds"
    for where, side in checked:
        assert holds({k: s["mean"] for k, s in side["outcomes"].items()}), f"{claim}: not on {where}"


def test_claims_made_only_over_many_seeds_are_claims_of_the_benchmark():
    assert ONLY_OVER_MANY_SEEDS <= {text for claims in outcomes.CLAIMS.values() for text, _ in claims}


def best_of_others(m: dict[str, float], target: str, methods=("source-only", "DANN", "CORAL")) -> float:
    return max(m[f"{target}/{method}"] for method in methods)


PROSE_CLAIMS = {  # lesson -> [(what its learner notebook says beyond outcomes.CLAIMS, test on one side's means in %)]
    "04_multi_task": [
        ("each task trained alone does as well as or better than every way of training both together",
         lambda m: all(m[f"single-task/{t}"] >= m[f"{j}/{t}"]
                       for t in TASKS for j in ("equal", "uncertainty", "pcgrad"))),
        ("next to a noisy task, learned weights give the noisy task up: below equal weights on it",
         lambda m: m["noisy right/uncertainty/right"] < m["noisy right/equal/right"]),
        ("equal weights on the noisy task are already below training it alone",
         lambda m: m["noisy right/equal/right"] < m["noisy right/single-task/right"]),
    ],
    "02_feature_extraction": [
        ("the CNN from scratch stays at chance on the shifted digits (about 1 in 10, below 15 %)",
         lambda m: m["digits: small CNN from scratch"] < 15),
    ],
    "06_multi_label": [
        ("at 0.5 the sigmoid head trails the one-vs-rest logistic regressions",
         lambda m: m["sigmoid head, 0.5"] < m["one-vs-rest logistic regression, 0.5"]),
        ("tuned thresholds bring the head to about the logistic regressions' level (within 3 points)",
         lambda m: abs(m["sigmoid head, tuned thresholds"] - m["one-vs-rest logistic regression, 0.5"]) <= 3),
    ],
    "05_domain_adaptation": [
        ("CORAL beats source-only on both targets",
         lambda m: all(m[f"{t}/CORAL"] > m[f"{t}/source-only"] for t in ("MNIST-M", "UCI digits"))),
        ("DANN beats CORAL on the large synthetic shift, CORAL beats DANN on the small real one",
         lambda m: m["MNIST-M/DANN"] > m["MNIST-M/CORAL"] and m["UCI digits/CORAL"] > m["UCI digits/DANN"]),
        ("the train-on-target reference shows a gap left on both targets",
         lambda m: all(m[f"{t}/train-on-target"] > best_of_others(m, t) for t in ("MNIST-M", "UCI digits"))),
    ],
}


@pytest.mark.parametrize("lesson,claim,holds", [(lesson, text, test) for lesson, claims in PROSE_CLAIMS.items()
                                                for text, test in claims],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_what_a_lesson_says_holds_on_every_recorded_measurement(lesson, claim, holds):
    checked = measurements(lesson)
    assert checked
    for where, side in checked:
        assert holds(points(side)), f"{lesson}: {claim}: not on {where}"


def test_lesson_05_coral_gains_on_every_seed_while_dann_loses_on_some_of_uci_digits():
    """The learner notebook: CORAL "gains on every seed measured", DANN "loses on some runs" (seen over many seeds)."""
    for where, side in measurements("05_domain_adaptation"):
        assert min(gain_by_seed(side, "UCI digits/CORAL", "UCI digits/source-only")) > 0, where
    many = measurements("05_domain_adaptation", MANY_SEEDS)
    assert many and all(min(gain_by_seed(side, "UCI digits/DANN", "UCI digits/source-only")) < 0 for _, side in many)


def test_lesson_06_tuned_thresholds_beat_one_half_on_every_seed():
    """Issue 24's bar: the gain of the tuned thresholds on macro F1 holds seed by seed, not only on average."""
    checked = measurements("06_multi_label", min_seeds=3)
    assert checked
    for where, side in checked:
        gains = gain_by_seed(side, "sigmoid head, tuned thresholds", "sigmoid head, 0.5")
        assert min(gains) > 1, f"{where}: tuned minus 0.5, macro F1 points per seed: {gains}"


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_the_frameworks_agree_within_the_budget_on_every_recorded_outcome(path):
    for lesson, record in json.loads(path.read_text())["lessons"].items():
        a, b = (points(side) for side in record["frameworks"].values())
        worst = max(abs(a[k] - b[k]) for k in a if (lesson, k) not in GAP_EXEMPT)
        assert worst <= 100 * outcomes.FRAMEWORK_GAP + 1e-9, f"{lesson}: frameworks {worst:.2f} points apart"


RANGE = re.compile(r"(\d+(?:\.\d+)?)–(\d+(?:\.\d+)?)")
WITHIN = re.compile(r"within (\d+(?:\.\d+)?) points?")


def stated_range(words: str) -> tuple[float, float]:
    """The figures some words of a lesson state: "15–20" is [15, 20], "within 2 points" is [-2, 2]."""
    if m := RANGE.search(words):
        return float(m[1]), float(m[2])
    if m := WITHIN.search(words):
        return -float(m[1]), float(m[1])
    raise ValueError(f"no range in {words!r}")


STATED = {  # (lesson, markdown cell) -> [(words of the cell, what they state of one side's means in %)]
    ("04_multi_task", "discussion"): [
        ("lands within 2 points of them on average",
         lambda m: [m[f"uncertainty/{t}"] - m[f"equal/{t}"] for t in TASKS]),
        ("within 1 point of equal weights on average", lambda m: [m[f"pcgrad/{t}"] - m[f"equal/{t}"] for t in TASKS]),
    ],
    ("04_multi_task", "noisy_note"): [
        ("about 2–5 points below equal weights",
         lambda m: [m["noisy right/equal/right"] - m["noisy right/uncertainty/right"]]),
        ("0–2 points over equal weights on average",
         lambda m: [m["noisy right/uncertainty/left"] - m["noisy right/equal/left"]]),
        ("within 2 points of training it alone",
         lambda m: [m["noisy right/uncertainty/left"] - m["noisy right/single-task/left"]]),
    ],
    ("05_domain_adaptation", "summary"): [
        ("DANN gains about 15–20 points over source-only", lambda m: [m["MNIST-M/DANN"] - m["MNIST-M/source-only"]]),
        ("CORAL about 3–5", lambda m: [m["MNIST-M/CORAL"] - m["MNIST-M/source-only"]]),
        ("CORAL gains about 5–7 points", lambda m: [m["UCI digits/CORAL"] - m["UCI digits/source-only"]]),
        ("DANN gains 1–3 on average", lambda m: [m["UCI digits/DANN"] - m["UCI digits/source-only"]]),
    ],
}


@pytest.mark.parametrize("lesson,grade_id,words,figures", [(lesson, gid, words, figures)
                                                           for (lesson, gid), said in STATED.items()
                                                           for words, figures in said],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_each_figure_a_lesson_states_holds_on_every_recorded_measurement(lesson, grade_id, words, figures):
    for ln in (ln for ln in all_lesson_notebooks() if ln.lesson == lesson):
        assert words in prose(ln, grade_id), f"{ln.stem}, cell {grade_id}: no longer says {words!r}"
    low, high = stated_range(words)
    for where, side in measurements(lesson):
        for value in figures(points(side)):
            assert low - 1e-9 <= value <= high + 1e-9, f"{lesson} says {words!r}; {where} has {value:.2f}"


TABLES = {  # (lesson, markdown cell with one results table) -> (row, column header) -> the outcome it shows
    ("04_multi_task", "discussion"): lambda row, column: f"{row}/{column.split()[0]}",
    ("04_multi_task", "noisy_note"): lambda row, column: f"noisy right/{row}/{column.split()[0]}",
    ("05_domain_adaptation", "summary"): lambda row, column: f"{column.removesuffix('-style')}/{row}",
}


def table_ranges(text: str) -> list[tuple[str, str, float, float]]:
    """(row, column header, low, high) for each entry of the one markdown table in a cell, each a range "low–high"."""
    rows = [[entry.strip() for entry in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]
    assert sum(set("".join(r)) <= set("-: ") for r in rows) == 1, "one results table per comparison"
    header, body = rows[0], rows[2:]
    found = []
    for row in body:
        for column, entry in zip(header[1:], row[1:]):
            m = RANGE.fullmatch(entry)
            assert m, f"row {row[0]}, column {column}: {entry!r} is not a range like 78–81"
            found.append((row[0], column, float(m[1]), float(m[2])))
    return found


@pytest.mark.parametrize("lesson,grade_id", sorted(TABLES))
def test_each_results_table_holds_every_recorded_mean_in_its_ranges(lesson, grade_id):
    """A table entry is the range the averages fall in; it holds for both frameworks and every record."""
    twins = [ln for ln in all_lesson_notebooks() if ln.lesson == lesson]
    tables = {ln.stem: table_ranges(cells_of(ln)[grade_id]) for ln in twins}
    assert len(set(map(tuple, tables.values()))) == 1, "both twins show one table"
    for row, column, low, high in next(iter(tables.values())):
        outcome = TABLES[lesson, grade_id](row, column)
        for where, side in measurements(lesson):
            value = points(side)[outcome]
            assert low <= value <= high, f"{lesson} table says {outcome}: {low:g}–{high:g}; {where} has {value:.2f}"


@both_twins_of(dann_learning_rate.LESSON)
def test_lesson_05_learning_rate_is_one_the_label_free_score_cannot_rule_out(ln):
    """How the rate was chosen is the instructor guide's; the claim: the rate the lesson keeps scores within the
    seed-to-seed scatter of the rate the label-free score puts nearest chance, and the rate alone moves DANN's
    MNIST-M gain by more than 10 points (as the learner notebook says)."""
    record = recorded("dann_learning_rate.json")
    lesson_rate = dann_learning_rate.RATE_LINE.search(cells_of(ln)["train"]).group(0).rsplit(", ", 1)[1]
    words = "its learning rate alone moves its MNIST-M gain by more than 10 points"
    assert words in prose(ln, "summary")
    for fw, side in record["frameworks"].items():
        by_rate = side["by_rate"]
        assert lesson_rate in by_rate, f"{lesson_rate} was not measured"
        score = {rate: by_rate[rate][record["criterion"]] for rate in (side["nearest_chance"], lesson_rate)}
        gap = abs(score[side["nearest_chance"]]["mean"] - score[lesson_rate]["mean"])
        assert gap <= min(s["std"] for s in score.values()), f"{fw}: the score tells {lesson_rate} apart"
        gain = [100 * (o["MNIST-M/DANN"]["mean"] - o["MNIST-M/source-only"]["mean"]) for o in by_rate.values()]
        assert max(gain) - min(gain) > 10, f"{fw}: the learning rate moves DANN's gain by {max(gain) - min(gain):.1f}"


BOOKKEEPING = ("standard error", "seeds 0", "seeds 10", "20 seeds", "three seeds", "3 seeds", "re-measured", "±",
               "benchmarks/", "outcomes.json", "agree within")
BOUND = ("the upper bound", "train-on-target bound", "the bound")  # lesson 05's code comments still say "bound"


@twins_of("04_multi_task", "05_domain_adaptation")
def test_learner_notebooks_leave_measurement_bookkeeping_to_the_instructor_guide(ln):
    """Seeds, standard errors, re-measurements and framework agreement are docs/instructor.md's, not the learner's;
    and lesson 05's prose calls its train-on-target run a reference, not a bound."""
    for cell in nbformat.read(ln.release, 4).cells:
        text = " ".join(cell.source.lower().split())
        said = [w for w in BOOKKEEPING + (BOUND if cell.cell_type == "markdown" else ()) if w in text]
        assert not said, f"{ln.stem}, cell {cell.metadata.get('nbgrader', {}).get('grade_id')}: {said}"


GUIDE = Path(__file__).resolve().parents[1] / "docs" / "instructor.md"


def test_the_instructor_guide_quotes_the_measurements_on_record():
    """The guide quotes exact figures; each measurement it quotes is named by its time, so a new one shows it stale."""
    text = GUIDE.read_text()
    stamps = [(path.name, lesson, record["measured"]) for path in RECORDS
              for lesson, record in json.loads(path.read_text())["lessons"].items()]
    dann = recorded("dann_learning_rate.json")
    stamps.append(("dann_learning_rate.json", dann_learning_rate.LESSON, dann["measured"]))
    stale = [s for s in stamps if s[2] not in text]
    assert not stale, f"docs/instructor.md does not quote these measurements (re-read their figures): {stale}"


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


L03_FINE_TUNED, L03_HEAD = "fine-tuned (last 5 blocks), 50 per class", "frozen backbone + head, 50 per class"
L03_FROZEN_5, L03_FROZEN_50 = (f"frozen features + logistic regression, {k} per class" for k in (5, 50))
L03_SCRATCH_5 = "same network from scratch, 5 per class"


def test_lesson_03_fine_tuning_and_pretraining_pay_on_every_seed():
    """The learner notebook: on every seed measured, fine-tuning beats the better frozen model at 50 labels per class,
    and at 5 the frozen features beat the same network trained from scratch, which stays close to chance."""
    checked = measurements("03_fine_tuning", min_seeds=3)
    assert {where.split(", ")[-1] for where, _ in checked} == {"pytorch", "keras"}
    for where, side in checked:
        o = {k: s["per_seed"] for k, s in side["outcomes"].items()}
        frozen = [max(a, b) for a, b in zip(o[L03_HEAD], o[L03_FROZEN_50])]
        assert all(t > f for t, f in zip(o[L03_FINE_TUNED], frozen)), where
        assert all(f > s for f, s in zip(o[L03_FROZEN_5], o[L03_SCRATCH_5])), where
        assert max(o[L03_SCRATCH_5]) < 0.25, where


def test_lesson_03_scratch_catches_up_with_frozen_features_not_with_fine_tuning():
    """The learner notebook: "with more labels the scratch network catches up with the frozen features, but not with
    the fine-tuned one", from the 50-labels-per-class runs of benchmarks/l03_target_search.json (PyTorch)."""
    runs = json.loads((Path(outcomes.__file__).parent / "l03_target_search.json").read_text())["runs"]
    at_50 = runs["report"]["targets"]["mnistm5k"]["summary"]["50"]
    tuned = runs["report_short_stage1"]["targets"]["mnistm5k"]["summary"]["50"]["fine-tuned"]["mean"]
    assert at_50["scratch"]["mean"] >= at_50["frozen + logistic regression"]["mean"] - 3
    assert at_50["scratch"]["mean"] < tuned - 5


def test_lesson_03_fine_tuning_bar_sits_between_frozen_and_fine_tuned():
    """The grader's floor for the fine-tuned model (held-out digits) is above what the frozen models reach and below
    what the solution's fine-tuning reaches, on every recorded measurement."""
    from autograder.rubrics import l03_fine_tuning as rubric

    checked = measurements("03_fine_tuning")
    assert checked
    for where, side in checked:
        m = {k: s["mean"] for k, s in side["outcomes"].items()}
        assert max(m[L03_HEAD], m[L03_FROZEN_50]) + 0.05 <= rubric.FINE_TUNE_FLOOR, where
        assert rubric.FINE_TUNE_FLOOR <= m[L03_FINE_TUNED] - 0.05, where
