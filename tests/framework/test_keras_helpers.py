"""tlkit.keras on small synthetic problems (CPU), for KERAS_BACKEND=tensorflow and =torch.

Run alone, once per backend: tests/test_helper_api.py starts it in subprocesses.
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest
from keras import layers

import tlkit.plots
from tlkit import keras as tl
from tlkit.data import dataset_path

NUM_CLASSES = 3
BACKEND = keras.backend.backend()


def synthetic_images(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8 grey uint8 noise; class k has a bright vertical band at columns 2k, 2k+1 (easily separable)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % NUM_CLASSES
    x = rng.integers(0, 60, size=(n, 8, 8), dtype=np.uint8)
    for k in range(NUM_CLASSES):
        x[y == k, :, 2 * k : 2 * k + 2] += 180
    return x, y


def small_mlp(dropout: float = 0.0) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dropout(dropout),
            layers.Dense(NUM_CLASSES),
        ]
    )


def gpu_present() -> bool:
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    import torch

    return torch.cuda.is_available()


@pytest.fixture(autouse=True)
def _no_device_env(monkeypatch):
    monkeypatch.delenv("TLKIT_DEVICE", raising=False)


def test_one_framework_per_process():
    assert tl.FRAMEWORK == "keras"
    assert BACKEND in ("tensorflow", "torch")
    if BACKEND == "tensorflow":
        assert "torch" not in sys.modules


def test_plots_are_reexported():
    assert tl.plot_history is tlkit.plots.plot_history
    assert tl.show_images is tlkit.plots.show_images
    assert tl.plot_confusion_matrix is tlkit.plots.plot_confusion_matrix


# ----------------------------------------------------------------- devices
def test_get_device_cpu_prints_one_line_and_works_with_keras_device(capsys):
    device = tl.get_device("cpu")
    assert device == "cpu"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("Using device: cpu")
    with keras.device(device):
        value = keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.ones((2, 2))))
    assert value == 4.0


def test_get_device_auto_without_gpu_is_cpu(capsys):
    if gpu_present():
        pytest.skip("this machine has a GPU")
    assert tl.get_device() == "cpu"
    assert "no GPU found" in capsys.readouterr().out


def test_get_device_cuda_without_gpu_raises_clearly():
    if gpu_present():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="GPU was demanded"):
        tl.get_device("cuda")


def test_environment_overrides_argument(monkeypatch, capsys):
    monkeypatch.setenv("TLKIT_DEVICE", "cpu")
    assert tl.get_device("cuda") == "cpu"
    assert "TLKIT_DEVICE=cpu" in capsys.readouterr().out
    if not gpu_present():
        monkeypatch.setenv("TLKIT_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="TLKIT_DEVICE"):
            tl.get_device("cpu")
    monkeypatch.setenv("TLKIT_DEVICE", "tpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        tl.get_device()


# ----------------------------------------------------------------- inputs and batches
def test_to_inputs_grey_gets_channel_last():
    x, _ = synthetic_images(10)
    a = tl.to_inputs(x)
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    assert a.shape == (10, 8, 8, 1)
    np.testing.assert_allclose(a[..., 0], x / 255.0, rtol=1e-6)


def test_to_inputs_scales_uci_digits_by_16_and_accepts_a_scale():
    x = np.array([[[0, 8], [16, 4]]], dtype=np.uint8)
    np.testing.assert_allclose(tl.to_inputs(x)[0, ..., 0], [[0, 0.5], [1, 0.25]])
    np.testing.assert_allclose(tl.to_inputs(x, scale=32)[0, ..., 0], [[0, 0.25], [0.5, 0.125]])


def test_to_inputs_colour_keeps_channels_last():
    x = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    x[..., 1] = 255  # green
    a = tl.to_inputs(x)
    assert a.shape == (2, 4, 5, 3)
    assert a[..., 1].min() == 1.0 and a[..., 0].max() == 0.0 and a[..., 2].max() == 0.0


def test_make_batches_shapes_dtypes_and_order():
    x, y = synthetic_images(100)
    batches = tl.make_batches(x, y, batch_size=32)
    assert isinstance(batches, keras.utils.PyDataset)
    assert len(batches) == 4
    inputs, labels = batches[0]
    assert inputs.shape == (32, 8, 8, 1) and inputs.dtype == np.float32
    assert labels.dtype == np.int64
    assert batches[3][0].shape == (4, 8, 8, 1)
    with pytest.raises(IndexError):
        batches[4]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)  # no shuffling: stored order
    (only_inputs,) = tl.make_batches(x, batch_size=16)[0]
    assert only_inputs.shape == (16, 8, 8, 1)


def test_make_batches_shuffles_repeatably():
    x, _ = synthetic_images(100)

    def epoch_labels(seed):
        batches = tl.make_batches(x, np.arange(100), batch_size=10, shuffle=True, seed=seed)
        first = np.concatenate([b[1] for b in batches])
        batches.on_epoch_end()  # what Keras calls after every epoch
        return first, np.concatenate([b[1] for b in batches])

    first, second = epoch_labels(0)
    assert sorted(first) == list(range(100))
    assert not np.array_equal(first, np.arange(100))
    assert not np.array_equal(first, second)  # a new order every epoch
    np.testing.assert_array_equal(np.stack(epoch_labels(0)), np.stack([first, second]))
    assert not np.array_equal(epoch_labels(1)[0], first)


# ----------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained():
    """A model fitted once on the synthetic problem, with its history and validation batches."""
    tl.seed_everything(0)
    x, y = synthetic_images(240)
    model = small_mlp()
    train = tl.make_batches(x[:180], y[:180], batch_size=32, shuffle=True)
    val = tl.make_batches(x[180:], y[180:], batch_size=64)
    history = tl.fit(model, train, val, epochs=4, lr=1e-2, device="cpu", verbose=False)
    return model, history, val


def test_fit_learns_a_separable_problem(trained):
    _, history, _ = trained
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 and all(isinstance(f, float) for f in v) for v in history.values())
    assert history["val_accuracy"][-1] >= 0.95
    assert history["loss"][-1] < history["loss"][0]


def test_evaluate_matches_fit_and_a_manual_count(trained):
    model, history, val = trained
    scores = tl.evaluate(model, val)
    assert set(scores) == {"loss", "accuracy"} and all(isinstance(v, float) for v in scores.values())
    assert scores["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert scores["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-4)
    x, y = synthetic_images(240)
    logits = tl.predict(model, x[180:])
    assert scores["accuracy"] == pytest.approx((logits.argmax(1) == y[180:]).mean())


def test_fit_is_quiet_unless_verbose(capsys):
    x, y = synthetic_images(60)
    tl.fit(small_mlp(), tl.make_batches(x, y, 32), epochs=1, verbose=False)
    assert "epochs" not in capsys.readouterr().err
    history = tl.fit(small_mlp(), tl.make_batches(x, y, 32), epochs=2, verbose=True)
    assert set(history) == {"loss", "accuracy"} and len(history["loss"]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "loss=" in err


def test_fit_recompiles_so_freezing_takes_effect():
    x, y = synthetic_images(90)
    model = small_mlp()
    tl.fit(model, tl.make_batches(x, y, 32), epochs=1, verbose=False)
    hidden, head = model.layers[1], model.layers[3]
    hidden.trainable = False  # after a first fit, as in fine-tuning
    before = keras.ops.convert_to_numpy(hidden.kernel).copy()
    head_before = keras.ops.convert_to_numpy(head.kernel).copy()
    tl.fit(model, tl.make_batches(x, y, 32), epochs=1, verbose=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(hidden.kernel), before)
    assert not np.array_equal(keras.ops.convert_to_numpy(head.kernel), head_before)


def test_fit_accepts_optimizer_and_loss():
    x, y = synthetic_images(90)
    history = tl.fit(
        small_mlp(),
        tl.make_batches(x, y, 30),
        epochs=3,
        optimizer=keras.optimizers.SGD(learning_rate=0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        verbose=False,
    )
    assert history["accuracy"][-1] >= 0.9


def test_seed_everything_makes_runs_identical():
    x, y = synthetic_images(120)

    def run(seed):
        tl.seed_everything(seed)
        model = small_mlp(dropout=0.2)
        tl.fit(model, tl.make_batches(x, y, 16, shuffle=True, seed=seed), epochs=2, device="cpu", verbose=False)
        return [keras.ops.convert_to_numpy(w) for w in model.weights], tl.predict(model, x)

    weights_a, pred_a = run(0)
    weights_b, pred_b = run(0)
    weights_c, _ = run(1)
    assert all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b))
    np.testing.assert_array_equal(pred_a, pred_b)
    assert not np.array_equal(weights_a[0], weights_c[0])
    if BACKEND == "torch":
        assert "tensorflow" not in sys.modules  # seeding must not load TensorFlow into a torch process


def test_seed_everything_resets_keras_global_random_state():
    tl.seed_everything(5)
    a = keras.ops.convert_to_numpy(keras.random.uniform((4,)))  # no seed: Keras' global seed generator
    tl.seed_everything(5)
    b = keras.ops.convert_to_numpy(keras.random.uniform((4,)))
    np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(BACKEND != "torch", reason="torch backend only")
def test_get_device_sets_keras_default_device_on_torch_backend(monkeypatch):
    from keras.src.backend.torch import core

    monkeypatch.setattr(core, "DEFAULT_DEVICE", "cuda")  # pretend Keras had picked a GPU at import
    tl.get_device("cpu")
    assert core.get_device() == "cpu"  # new weights and inputs go to the CPU


def test_predict_returns_numpy_outputs_in_inference_mode():
    x, _ = synthetic_images(300)
    model = small_mlp(dropout=0.5)
    out = tl.predict(model, x, batch_size=128)
    assert isinstance(out, np.ndarray) and out.shape == (300, NUM_CLASSES) and out.dtype == np.float32
    expected = keras.ops.convert_to_numpy(model(tl.to_inputs(x), training=False))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)  # dropout off
    np.testing.assert_array_equal(tl.predict(model, x, batch_size=128), out)  # repeatable


def test_count_params():
    dense = keras.Sequential([keras.Input((64,)), layers.Dense(10)])
    assert tl.count_params(dense) == 650
    model = small_mlp()  # 64*16+16 + 16*3+3 = 1091
    assert tl.count_params(model) == 1091
    model.layers[1].trainable = False
    assert tl.count_params(model, trainable_only=True) == 51
    assert tl.count_params(model) == 1091


# ----------------------------------------------------------------- course data
@pytest.mark.skipif(not dataset_path("digits").exists(), reason="data/digits.npz is not built (make data)")
def test_load_batches_digits_is_stratified():
    train, val, classes = tl.load_batches("digits", batch_size=100, val_fraction=0.25, seed=3)
    assert classes == tuple(str(d) for d in range(10))
    y_train = np.concatenate([b[1] for b in train])
    y_val = np.concatenate([b[1] for b in val])
    inputs, _ = val[0]
    assert inputs.shape[1:] == (8, 8, 1) and float(inputs.max()) <= 1.0
    total = len(y_train) + len(y_val)
    assert abs(len(y_val) / total - 0.25) < 0.01
    share_train = np.bincount(y_train, minlength=10) / len(y_train)
    share_val = np.bincount(y_val, minlength=10) / len(y_val)
    np.testing.assert_allclose(share_train, share_val, atol=0.01)


def test_no_second_framework_was_loaded():
    """Runs last: nothing above (fit, seeding, devices) pulled in the other framework."""
    if BACKEND == "tensorflow":
        assert "torch" not in sys.modules
    else:
        assert "tensorflow" not in sys.modules


def test_task_gradients_gives_each_task_its_own_loss_and_gradients():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    h = layers.Dense(3)(inputs)
    model = keras.Model(inputs, {"left": layers.Dense(2, name="left")(h), "right": layers.Dense(5, name="right")(h)})
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    labels = {"left": np.array([0, 1, 0, 1, 0, 1]), "right": np.array([4, 0, 2, 1, 3, 4])}
    losses, grads = tl.task_gradients(model, x, labels)
    assert len(losses) == len(grads) == 2 and all(len(g) == len(model.trainable_variables) for g in grads)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    out = model(x)
    for task, name in enumerate(labels):
        expected = float(keras.ops.convert_to_numpy(ce(labels[name], out[name])))
        assert abs(float(keras.ops.convert_to_numpy(losses[task])) - expected) < 1e-5
    right_head = {id(v) for v in model.get_layer("right").trainable_variables}
    left_grads = [keras.ops.convert_to_numpy(g) for g in grads[0]]
    assert all(not g.any() for v, g in zip(model.trainable_variables, left_grads) if id(v) in right_head)
    assert any(g.any() for v, g in zip(model.trainable_variables, left_grads) if id(v) not in right_head)


def test_loss_gradients_returns_the_loss_and_one_gradient_per_variable():
    w, unused = keras.Variable([1.0, -2.0]), keras.Variable([1.0, 1.0, 1.0])
    loss, grads = tl.loss_gradients(lambda: keras.ops.sum(w**2) + 3 * w[0], [w, unused])
    assert float(keras.ops.convert_to_numpy(loss)) == 8.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(grads[0]), [5.0, -4.0])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(grads[1]), np.zeros(3))


def test_compiled_gives_the_same_values_and_gradients_as_the_eager_function():
    layer = layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")
    x = np.array([[1.0, 2.0], [3.0, -1.0]], dtype="float32")
    layer(x)  # weights created

    def forward(layer, inputs, scale=1.0):
        return keras.ops.sum(layer(inputs) ** 2) * scale

    fast = tl.compiled(forward)
    eager_loss, eager_grads = tl.loss_gradients(lambda: forward(layer, x, 2.0), layer.trainable_variables)
    loss, grads = tl.loss_gradients(lambda: fast(layer, x, 2.0), layer.trainable_variables)
    assert float(tl.to_numpy(loss)) == float(tl.to_numpy(eager_loss)) == 2 * (9 + 9 + 4 + 4)
    for g, want in zip(grads, eager_grads):
        np.testing.assert_allclose(tl.to_numpy(g), tl.to_numpy(want), rtol=1e-6)
    np.testing.assert_allclose(tl.to_numpy(fast(layer, x[:1])), 18.0)  # another shape: traced again, still right
    assert (fast is forward) == (BACKEND != "tensorflow")


def test_to_numpy_and_model_device():
    x = keras.ops.ones((2, 3)) * 2
    assert isinstance(tl.to_numpy(x), np.ndarray) and tl.to_numpy(x).tolist() == [[2.0] * 3] * 2
    assert tl.to_numpy(keras.Variable(np.arange(3.0))).tolist() == [0.0, 1.0, 2.0]
    model = small_mlp()
    model(np.zeros((1, 8, 8, 1), dtype="float32"))
    assert tl.model_device(model) == "cpu"


def test_fit_and_evaluate_take_multi_hot_targets():
    rng = np.random.default_rng(0)
    targets = (rng.random((120, NUM_CLASSES)) < 0.4).astype(np.float32)  # any number of bands per image
    x = rng.integers(0, 60, size=(120, 8, 8), dtype=np.uint8)
    for k in range(NUM_CLASSES):
        x[targets[:, k] == 1, :, 2 * k : 2 * k + 2] += 180
    tl.seed_everything(0)
    model = small_mlp()
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    history = tl.fit(model, tl.make_batches(x, targets, 30, shuffle=True), epochs=40, lr=1e-2, loss=loss,
                     verbose=False)
    assert history["accuracy"][-1] >= 0.95
    scores = tl.evaluate(model, tl.make_batches(x, targets, 30), loss=loss)
    manual = np.mean((tl.predict(model, x) > 0) == (targets > 0.5))
    assert scores["accuracy"] == pytest.approx(manual)
    values = x.astype(np.float32) / 100  # like features: floats that predict() must not rescale (it would by 16)
    np.testing.assert_allclose(tl.predict(model, values, scale=1), tl.predict(model, x, scale=100), rtol=1e-5,
                               atol=1e-5)


def test_recalibrate_batch_norm_sets_the_statistics_of_the_images():
    tl.seed_everything(0)
    conv = layers.Conv2D(4, 3)
    bn = layers.BatchNormalization()
    model = keras.Sequential([keras.Input((8, 8, 1)), conv, bn, layers.Flatten(), layers.Dense(NUM_CLASSES)])
    x, _ = synthetic_images(200)
    assert tl.recalibrate_batch_norm(model, x, batch_size=50) is model
    conv_out = tl.to_numpy(conv(tl.to_inputs(x)))
    np.testing.assert_allclose(tl.to_numpy(bn.moving_mean), conv_out.mean(axis=(0, 1, 2)), atol=1e-5)
    np.testing.assert_allclose(tl.to_numpy(bn.moving_variance), conv_out.var(axis=(0, 1, 2)), rtol=1e-2)
    assert bn.momentum == 0.99


def test_random_backbone_has_the_architecture_without_the_weights():
    trained = tl.load_backbone("efficientnet_lite0", input_size=32)
    scratch = tl.load_backbone("efficientnet_lite0", input_size=32, pretrained=False, trainable=True)
    assert [w.shape for w in trained.weights] == [w.shape for w in scratch.weights]
    head = next(w for w in scratch.weights if "top_conv" in w.path)
    assert not np.array_equal(tl.to_numpy(head), tl.to_numpy(next(w for w in trained.weights if w.path == head.path)))
    assert scratch.trainable_weights
