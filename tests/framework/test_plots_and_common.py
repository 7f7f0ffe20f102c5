"""tlkit.plots and tlkit.common: numpy and matplotlib only, no deep-learning framework."""

from __future__ import annotations

import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from tlkit import common, plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_no_framework_is_imported():
    for name in ("torch", "tensorflow", "keras"):
        assert name not in sys.modules, name


# ----------------------------------------------------------------- plot_history
HISTORY = {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7], "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.4]}


def test_plot_history_draws_train_and_validation_side_by_side():
    fig = plots.plot_history(HISTORY, title="run 1")
    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train", "validation"]
    np.testing.assert_array_equal(loss_ax.get_lines()[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(loss_ax.get_lines()[1].get_ydata(), HISTORY["val_loss"])
    assert acc_ax.get_ylabel() == "accuracy" and len(acc_ax.get_lines()) == 2
    assert fig._suptitle.get_text() == "run 1"


def test_plot_history_without_validation_and_missing_metric():
    fig = plots.plot_history({"loss": [3.0, 2.0]}, metrics=("loss",))
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 1
    with pytest.raises(KeyError, match="accuracy"):
        plots.plot_history({"loss": [3.0]})


# ----------------------------------------------------------------- show_images
@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((5, 6, 7), np.uint8),
        ((5, 6, 7, 1), np.uint8),
        ((5, 1, 6, 7), np.float32),
        ((5, 6, 7, 3), np.uint8),
        ((5, 3, 6, 7), np.float32),
    ],
)
def test_show_images_accepts_every_layout(shape, dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=shape).astype(dtype)
    if dtype == np.float32:
        x /= 255.0
    fig = plots.show_images(x, n=16)
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert len(shown) == 5  # n is capped at len(x)
    image = shown[0].get_images()[0].get_array()
    colour = 3 in shape[1:]
    assert image.shape == ((6, 7, 3) if colour else (6, 7))
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_show_images_scales_like_the_data():
    digits = np.full((1, 8, 8), 16, dtype=np.uint8)  # UCI digits: 0..16
    assert plots.show_images(digits).axes[0].get_images()[0].get_array().max() == 1.0
    normalised = np.linspace(-2, 2, 64, dtype=np.float32).reshape(1, 8, 8)
    shown = plots.show_images(normalised).axes[0].get_images()[0].get_array()
    assert shown.min() == 0.0 and shown.max() == 1.0


def test_show_images_titles_labels_and_predictions():
    x = np.zeros((4, 5, 5), dtype=np.uint8)
    fig = plots.show_images(x, y=[0, 1, 2, 1], classes=["cat", "dog", "owl"], title="pets")
    assert [ax.get_title() for ax in fig.axes[:4]] == ["cat", "dog", "owl", "dog"]
    assert fig._suptitle.get_text() == "pets"

    fig = plots.show_images(x, y=[0, 1, 2, 1], pred=[0, 2, 2, 0])
    titles = [ax.title for ax in fig.axes[:4]]
    assert [t.get_text() for t in titles] == ["0/0", "2/1", "2/2", "0/1"]
    assert [matplotlib.colors.to_hex(t.get_color()) for t in titles] == ["#008000", "#ff0000", "#008000", "#ff0000"]

    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])  # scores: argmax is taken
    fig = plots.show_images(x, y=[0, 1, 1, 1], pred=scores)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["0/0", "1/1", "0/1", "1/1"]


# ----------------------------------------------------------------- confusion matrix
def test_confusion_matrix_counts_and_normalises():
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 2, 2]
    expected = np.array([[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    np.testing.assert_array_equal(plots.confusion_matrix(y_true, y_pred), expected)
    np.testing.assert_array_equal(plots.confusion_matrix(y_true, np.eye(3)[y_pred]), expected)  # scores
    four = plots.confusion_matrix(y_true, y_pred, num_classes=4, normalize=True)
    np.testing.assert_allclose(four.sum(axis=1), [1, 1, 1, 0])
    np.testing.assert_allclose(four[1], [0, 2 / 3, 1 / 3, 0])
    with pytest.raises(ValueError, match="labels"):
        plots.confusion_matrix([0, 1], [0])


def test_plot_confusion_matrix_annotates_every_cell():
    fig = plots.plot_confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], classes=["a", "b", "c"])
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1", "1", "0", "0", "1", "0", "0", "0", "1"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    fig = plots.plot_confusion_matrix([0, 0, 1], [0, 1, 1], normalize=True, title="cm")
    assert fig.axes[0].texts[0].get_text() == "0.50" and fig.axes[0].get_title() == "cm"


# ----------------------------------------------------------------- common: inputs
def test_infer_scale():
    assert common.infer_scale(np.array([0, 255], dtype=np.uint8)) == 255
    assert common.infer_scale(np.array([0, 17], dtype=np.uint8)) == 255
    assert common.infer_scale(np.array([0, 16], dtype=np.uint8)) == 16
    assert common.infer_scale(np.array([0.0, 0.5], dtype=np.float32)) == 1
    assert common.infer_scale(np.array([0.0, 200.0])) == 255


def test_scale_images_layouts():
    grey = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    last = common.scale_images(grey)
    first = common.scale_images(grey, channels_last=False)
    assert last.shape == (2, 3, 4, 1) and first.shape == (2, 1, 3, 4) and last.dtype == np.float32
    np.testing.assert_allclose(last[..., 0], grey / 255)
    colour = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 3)).astype(np.uint8)
    np.testing.assert_array_equal(
        common.scale_images(colour, channels_last=False), common.scale_images(colour).transpose(0, 3, 1, 2)
    )
    assert common.scale_images(np.full((3, 64), 16, dtype=np.uint8)).max() == 1.0  # flat features: scaled only
    assert common.scale_images(grey, scale=1).max() == grey.max()
    with pytest.raises(ValueError, match="shape"):
        common.scale_images(np.zeros(5))


def test_labels_batches_and_epoch_order():
    assert common.as_labels(np.array([1, 2], dtype=np.uint8)).dtype == np.int64
    with pytest.raises(ValueError):
        common.as_labels(np.array([0.5, 1.0]))
    multi_hot = common.as_labels(np.array([[1, 0, 1], [0, 0, 1]], dtype=np.float64))
    assert multi_hot.dtype == np.float32 and multi_hot.shape == (2, 3)
    with pytest.raises(ValueError, match="multi-hot targets: a float array"):
        common.as_labels(np.array([[1, 0, 1], [0, 0, 1]]))  # integers: class ids of two tasks, or multi-hot?
    with pytest.raises(ValueError):
        common.as_labels(np.array([[2.0, 0.0]]))
    assert common.accuracy(np.array([[2.0, -1.0], [0.5, 0.1]]), np.array([0, 1])) == 0.5
    assert common.accuracy(np.array([[2.0, -1.0], [0.5, 0.1]]), np.array([[1.0, 0.0], [1.0, 0.0]])) == 0.75
    assert common.num_batches(100, 32) == 4 and common.num_batches(96, 32) == 3
    with pytest.raises(ValueError):
        common.num_batches(10, 0)
    np.testing.assert_array_equal(common.epoch_order(5, False, 0, 3), np.arange(5))
    a, b = common.epoch_order(50, True, 0, 0), common.epoch_order(50, True, 0, 1)
    assert sorted(a) == list(range(50)) and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, common.epoch_order(50, True, 0, 0))


# ----------------------------------------------------------------- common: splitting
def test_stratified_split_keeps_proportions_and_is_disjoint():
    y = np.repeat([0, 1, 2], [500, 300, 200])
    np.random.default_rng(1).shuffle(y)
    train, val = common.stratified_split(y, val_fraction=0.2, seed=7)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))
    np.testing.assert_array_equal(np.bincount(y[val]), [100, 60, 40])
    np.testing.assert_array_equal(np.bincount(y[train]), [400, 240, 160])
    again = common.stratified_split(y, val_fraction=0.2, seed=7)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(common.stratified_split(y, val_fraction=0.2, seed=8)[1], val)


def test_stratified_split_edges():
    y = np.array([0, 0, 0, 1, 1, 1])
    train, val = common.stratified_split(y, val_fraction=0.0)
    assert len(val) == 0 and len(train) == 6
    with pytest.raises(ValueError):
        common.stratified_split(y, val_fraction=1.0)


# ----------------------------------------------------------------- common: devices, history, progress
def test_device_requests(monkeypatch):
    monkeypatch.delenv("TLKIT_DEVICE", raising=False)
    assert common.requested_device("GPU") == ("cuda", "requested")
    assert common.choose_device("auto", None) == (False, "no GPU found")
    assert common.choose_device("auto", "H100") == (True, "H100")
    assert common.choose_device("cpu", "H100") == (False, "requested")
    with pytest.raises(RuntimeError, match="GPU was demanded"):
        common.choose_device("cuda", None)
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        common.requested_device("tpu")
    monkeypatch.setenv("TLKIT_DEVICE", "cpu")
    assert common.choose_device("cuda", "H100") == (False, "TLKIT_DEVICE=cpu")


def test_history_names_and_progress_postfix():
    raw = {"loss": np.array([1.0, 0.5], dtype=np.float32), "sparse_categorical_accuracy": [0.5, 0.75]}
    raw["val_acc"] = [0.25, 0.5]
    history = common.normalize_history(raw)
    assert history == {"loss": [1.0, 0.5], "accuracy": [0.5, 0.75], "val_accuracy": [0.25, 0.5]}
    assert all(type(v) is float for values in history.values() for v in values)
    assert common.metric_name("val_categorical_accuracy") == "val_accuracy"
    postfix = common.progress_postfix({"val_loss": 0.123456, "loss": 0.5, "accuracy": np.float32(0.25)})
    assert list(postfix) == ["loss", "accuracy", "val_loss"]
    assert postfix == {"loss": "0.5", "accuracy": "0.25", "val_loss": "0.1235"}


def test_initial_weights_follow_their_scheme_and_depend_on_seed_shape_and_rank():
    shapes = [(16, 8, 3, 3), (10, 64), (10, 64)]
    torch_like, glorot = common.initial_weights(0, shapes), common.initial_weights(0, shapes, "glorot")
    for (w, b), (gw, gb) in zip(torch_like, glorot):
        fan_in, fan_out = int(np.prod(w.shape[1:])), w.shape[0] * int(np.prod(w.shape[2:]))
        assert 0.9 * fan_in**-0.5 < np.abs(w).max() <= fan_in**-0.5 and np.abs(b).max() <= fan_in**-0.5
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert 0.9 * bound < np.abs(gw).max() <= bound and not gb.any()
    assert not np.array_equal(torch_like[1][0], torch_like[2][0])  # same shape, next rank: another draw
    assert np.array_equal(common.initial_weights(0, shapes[1:2])[0][0], torch_like[1][0])  # the rest does not matter
    assert not np.array_equal(common.initial_weights(1, shapes)[0][0], torch_like[0][0])
    with pytest.raises(ValueError, match="scheme"):
        common.initial_weights(0, shapes, "he")
