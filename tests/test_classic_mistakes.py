"""Classic mistakes lose exactly their exercise's points, with a message that names the mistake."""

from __future__ import annotations

import zlib

import pytest
from classic_mistakes import (
    BACKBONE_CALLED_IN_TRAINING_MODE,
    CORAL_IN_NUMPY,
    CORAL_WITH_EINSUM,
    CORAL_WITH_TORCH_COV,
    CUSTOM_MODULE_HEAD,
    DANN_ROWS_BY_POSITION,
    FEATURES_WITHOUT_EVAL,
    HEAD_FROZEN_IN_STAGE_2,
    HEADS_STACKED_IN_A_SEQUENTIAL,
    NUDGE_RATES,
    ONLY_THE_HEAD_RETRAINED,
    OUTPUTS_AS_A_LIST,
    OUTPUTS_CONCATENATED,
    OWN_PARAMETER_GROUPS,
    PCGRAD_WITH_A_PYTHON_IF,
    SEQUENTIAL_CLASSIFIER,
    SOFTMAX_HEAD,
    SOFTMAX_HEAD_WITH_A_LOSS_FOR_PROBABILITIES,
    TEN_TIMES_THE_RATES,
)
from submissions import solved

from autograder.lessons import LessonNotebook
from autograder.rubric import load_exercises

pytestmark = pytest.mark.slow

L02, L03, L05 = "02_feature_extraction", "03_fine_tuning", "05_domain_adaptation"
L04 = "04_multi_task"

# name, lesson, answer cell, source per framework, a phrase of the message that must name the mistake
CASES = [
    ("softmax-head", L02, "head", SOFTMAX_HEAD, "ends in a softmax"),
    ("head-frozen-in-stage-2", L03, "fine_tune", HEAD_FROZEN_IN_STAGE_2, "head did not change during stage 2"),
    ("ten-times-the-rates", L03, "fine_tune", TEN_TIMES_THE_RATES, "higher than the instructed"),
    ("only-the-head-retrained", L03, "fine_tune", {"pytorch": ONLY_THE_HEAD_RETRAINED},
     "did not fine-tune the backbone"),
    ("nudge-rates-far-from-imagenet", L03, "fine_tune", NUDGE_RATES, "a nudge such as 1e-4"),
    ("backbone-in-training-mode", L03, "head_first", {"keras": BACKBONE_CALLED_IN_TRAINING_MODE}, "training=True"),
    ("coral-in-numpy", L05, "coral", CORAL_IN_NUMPY, "No gradient flows through your CORAL loss"),
    ("heads-stacked-in-a-sequential", L04, "multitask_model", {"keras": HEADS_STACKED_IN_A_SEQUENTIAL},
     "returned a `keras.Sequential`"),
    ("outputs-as-a-list", L04, "multitask_model", {"keras": OUTPUTS_AS_A_LIST}, "a dict of outputs named"),
    ("outputs-concatenated", L04, "multitask_model", {"pytorch": OUTPUTS_CONCATENATED},
     "should return a tuple (left_logits, right_logits)"),
    ("pcgrad-with-a-python-if", L04, "pcgrad", {"keras": PCGRAD_WITH_A_PYTHON_IF}, "OperatorNotAllowedInGraphError"),
    ("features-without-eval", L02, "features", FEATURES_WITHOUT_EVAL, "ran the backbone in training mode"),
    ("dann-rows-by-position", L05, "dann", DANN_ROWS_BY_POSITION, "not by position"),
]
MISTAKES = [(lesson, fw, aid, src, phrase) for _, lesson, aid, sources, phrase in CASES for fw, src in sources.items()]
IDS = [f"{lesson}_{fw}-{name}" for name, lesson, _, sources, _ in CASES for fw in sources]


@pytest.mark.parametrize("lesson,framework,answer_id,source,phrase",
                         [pytest.param(*m, id=i, marks=pytest.mark.xdist_group(m[0])) for m, i in zip(MISTAKES, IDS)])
def test_classic_mistake_loses_exactly_its_points(graded, lesson, framework, answer_id, source, phrase):
    ln = LessonNotebook(lesson, framework)
    key = f"classic-{ln.stem}-{answer_id}-{zlib.crc32(source.encode()):08x}"
    report = graded(key, solved(ln, {answer_id: source}))
    assert report.status == "graded", report.notes
    full = {e.answer_id: e.points for e in load_exercises(lesson)}
    expected = {aid: (0.0 if aid == answer_id else pts) for aid, pts in full.items()}
    assert {e.id: e.points for e in report.exercises} == expected, [(e.id, e.messages) for e in report.exercises]
    messages = next(e.messages for e in report.exercises if e.id == answer_id)
    assert any(phrase in m for m in messages), messages


# The checks judge behaviour, not code shape: right answers written another way keep full marks.
ANOTHER_STYLE = [  # name, lesson, framework, answer cell, source
    ("custom-module-head", L02, "pytorch", "head", CUSTOM_MODULE_HEAD),
    ("softmax-head-with-a-loss-for-probabilities", L02, "keras", "head", SOFTMAX_HEAD_WITH_A_LOSS_FOR_PROBABILITIES),
    ("own-parameter-groups", L03, "pytorch", "fine_tune", OWN_PARAMETER_GROUPS),
    ("sequential-classifier", L03, "keras", "head_first", SEQUENTIAL_CLASSIFIER),
    ("coral-with-torch-cov", L05, "pytorch", "coral", CORAL_WITH_TORCH_COV),
    ("coral-with-einsum", L05, "keras", "coral", CORAL_WITH_EINSUM),
]


@pytest.mark.parametrize("lesson,framework,answer_id,source",
                         [pytest.param(*case[1:], id=f"{case[1]}_{case[2]}-{case[0]}",
                                       marks=pytest.mark.xdist_group(case[1])) for case in ANOTHER_STYLE])
def test_right_answer_in_another_style_keeps_full_marks(graded, lesson, framework, answer_id, source):
    ln = LessonNotebook(lesson, framework)
    report = graded(f"another-style-{ln.stem}-{answer_id}-{zlib.crc32(source.encode()):08x}",
                    solved(ln, {answer_id: source}))
    assert report.status == "graded", report.notes
    assert report.score == report.max_score, [(e.id, e.messages) for e in report.exercises if e.messages]
