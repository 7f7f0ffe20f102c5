"""tlkit.pytorch on small synthetic problems (CPU). Run alone: tests/test_helper_api.py starts it in a subprocess."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

import tlkit.plots
from tlkit import pytorch as tl
from tlkit.data import dataset_path

NUM_CLASSES = 3


def synthetic_images(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8 grey uint8 noise; class k has a bright vertical band at columns 2k, 2k+1 (easily separable)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % NUM_CLASSES
    x = rng.integers(0, 60, size=(n, 8, 8), dtype=np.uint8)
    for k in range(NUM_CLASSES):
        x[y == k, :, 2 * k : 2 * k + 2] += 180
    return x, y


def small_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, NUM_CLASSES))


@pytest.fixture(autouse=True)
def _no_device_env(monkeypatch):
    monkeypatch.delenv("TLKIT_DEVICE", raising=False)


def test_one_framework_per_process():
    assert tl.FRAMEWORK == "pytorch"
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules


def test_plots_are_reexported():
    assert tl.plot_history is tlkit.plots.plot_history
    assert tl.show_images is tlkit.plots.show_images
    assert tl.plot_confusion_matrix is tlkit.plots.plot_confusion_matrix


# ----------------------------------------------------------------- devices
def test_get_device_cpu_prints_one_line(capsys):
    device = tl.get_device("cpu")
    assert device == torch.device("cpu")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("Using device: cpu")


def test_get_device_auto_without_gpu_is_cpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert tl.get_device() == torch.device("cpu")
    assert "no GPU found" in capsys.readouterr().out


def test_get_device_cuda_without_gpu_raises_clearly():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="GPU was demanded"):
        tl.get_device("cuda")


def test_environment_overrides_argument(monkeypatch, capsys):
    monkeypatch.setenv("TLKIT_DEVICE", "cpu")
    assert tl.get_device("cuda") == torch.device("cpu")
    assert "TLKIT_DEVICE=cpu" in capsys.readouterr().out
    if not torch.cuda.is_available():
        monkeypatch.setenv("TLKIT_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="TLKIT_DEVICE"):
            tl.get_device("cpu")
    monkeypatch.setenv("TLKIT_DEVICE", "tpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        tl.get_device()


# ----------------------------------------------------------------- inputs and batches
def test_to_inputs_grey_gets_channel_first():
    x, _ = synthetic_images(10)
    t = tl.to_inputs(x)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert tuple(t.shape) == (10, 1, 8, 8)
    np.testing.assert_allclose(t[:, 0].numpy(), x / 255.0, rtol=1e-6)


def test_to_inputs_scales_uci_digits_by_16_and_accepts_a_scale():
    x = np.array([[[0, 8], [16, 4]]], dtype=np.uint8)
    np.testing.assert_allclose(tl.to_inputs(x)[0, 0].numpy(), [[0, 0.5], [1, 0.25]])
    np.testing.assert_allclose(tl.to_inputs(x, scale=32)[0, 0].numpy(), [[0, 0.25], [0.5, 0.125]])


def test_to_inputs_colour_moves_channels_first():
    x = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    x[..., 1] = 255  # green
    t = tl.to_inputs(x)
    assert tuple(t.shape) == (2, 3, 4, 5)
    assert t[:, 1].min() == 1.0 and t[:, 0].max() == 0.0 and t[:, 2].max() == 0.0


def test_make_batches_shapes_dtypes_and_order():
    x, y = synthetic_images(100)
    batches = tl.make_batches(x, y, batch_size=32)
    assert len(batches) == 4
    inputs, labels = next(iter(batches))
    assert tuple(inputs.shape) == (32, 1, 8, 8) and inputs.dtype == torch.float32
    assert labels.dtype == torch.int64
    all_labels = torch.cat([b[1] for b in batches]).numpy()
    np.testing.assert_array_equal(all_labels, y)  # no shuffling: stored order
    (only_inputs,) = next(iter(tl.make_batches(x, batch_size=16)))
    assert tuple(only_inputs.shape) == (16, 1, 8, 8)


def test_make_batches_shuffles_repeatably():
    x, _ = synthetic_images(100)

    def epoch_labels(seed):
        batches = tl.make_batches(x, np.arange(100), batch_size=10, shuffle=True, seed=seed)
        return [torch.cat([b[1] for b in batches]).numpy() for _ in range(2)]

    first, second = epoch_labels(0)
    assert sorted(first) == list(range(100))
    assert not np.array_equal(first, np.arange(100))
    assert not np.array_equal(first, second)  # a new order every epoch
    np.testing.assert_array_equal(np.stack(epoch_labels(0)), np.stack([first, second]))
    assert not np.array_equal(epoch_labels(1)[0], first)


# ----------------------------------------------------------------- training
def test_fit_learns_a_separable_problem(capsys):
    tl.seed_everything(0)
    x, y = synthetic_images(240)
    model = small_mlp()
    train = tl.make_batches(x[:180], y[:180], batch_size=32, shuffle=True)
    val = tl.make_batches(x[180:], y[180:], batch_size=64)
    history = tl.fit(model, train, val, epochs=4, lr=1e-2, device="cpu", verbose=False)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 and all(isinstance(f, float) for f in v) for v in history.values())
    assert history["val_accuracy"][-1] >= 0.95
    assert history["loss"][-1] < history["loss"][0]
    assert capsys.readouterr().err == ""  # verbose=False: no progress bar

    scores = tl.evaluate(model, val)
    assert set(scores) == {"loss", "accuracy"}
    assert scores["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert scores["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-5)


def test_fit_without_validation_and_with_progress_bar(capsys):
    x, y = synthetic_images(60)
    history = tl.fit(small_mlp(), tl.make_batches(x, y, 32), epochs=2, verbose=True)
    assert set(history) == {"loss", "accuracy"} and len(history["loss"]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "loss=" in err


def test_fit_trains_only_unfrozen_parameters():
    x, y = synthetic_images(90)
    model = small_mlp()
    frozen = model[1]
    for p in frozen.parameters():
        p.requires_grad = False
    before = frozen.weight.detach().clone()
    head_before = model[3].weight.detach().clone()
    tl.fit(model, tl.make_batches(x, y, 32), epochs=1, device="cpu", verbose=False)
    assert torch.equal(frozen.weight, before)
    assert not torch.equal(model[3].weight, head_before)


def test_fit_accepts_optimizer_and_loss():
    x, y = synthetic_images(90)
    model = small_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    history = tl.fit(
        model, tl.make_batches(x, y, 30), epochs=3, optimizer=optimizer, loss=nn.CrossEntropyLoss(), verbose=False
    )
    assert history["accuracy"][-1] >= 0.9


def test_seed_everything_makes_runs_identical():
    x, y = synthetic_images(120)

    def run(seed):
        tl.seed_everything(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, NUM_CLASSES))
        tl.fit(model, tl.make_batches(x, y, 16, shuffle=True, seed=seed), epochs=2, device="cpu", verbose=False)
        return [p.detach().clone() for p in model.parameters()], tl.predict(model, x)

    weights_a, pred_a = run(0)
    weights_b, pred_b = run(0)
    weights_c, _ = run(1)
    assert all(torch.equal(a, b) for a, b in zip(weights_a, weights_b))
    np.testing.assert_array_equal(pred_a, pred_b)
    assert not torch.equal(weights_a[0], weights_c[0])
    assert torch.are_deterministic_algorithms_enabled()
    tl.seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_predict_returns_numpy_outputs_in_eval_mode():
    x, _ = synthetic_images(300)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.5), nn.Linear(16, NUM_CLASSES))
    model.train()
    out = tl.predict(model, x, batch_size=128)
    assert isinstance(out, np.ndarray) and out.shape == (300, NUM_CLASSES) and out.dtype == np.float32
    model.eval()
    with torch.no_grad():
        expected = model(tl.to_inputs(x)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)  # dropout off: eval mode
    np.testing.assert_array_equal(tl.predict(model, x), tl.predict(model, x))


def test_evaluate_leaves_the_mode_and_matches_a_manual_count():
    x, y = synthetic_images(50)
    model = small_mlp()
    model.train()
    scores = tl.evaluate(model, tl.make_batches(x, y, 16))
    assert model.training
    logits = torch.from_numpy(tl.predict(model, x))
    assert scores["accuracy"] == pytest.approx((logits.argmax(1).numpy() == y).mean())
    assert scores["loss"] == pytest.approx(nn.functional.cross_entropy(logits, torch.from_numpy(y)).item(), rel=1e-5)


def test_count_params():
    layer = nn.Linear(64, 10)
    assert tl.count_params(layer) == 650
    model = small_mlp()  # 64*16+16 + 16*3+3 = 1091
    assert tl.count_params(model) == 1091
    for p in model[1].parameters():
        p.requires_grad = False
    assert tl.count_params(model, trainable_only=True) == 51
    assert tl.count_params(model) == 1091


# ----------------------------------------------------------------- course data
@pytest.mark.skipif(not dataset_path("digits").exists(), reason="data/digits.npz is not built (make data)")
def test_load_batches_digits_is_stratified():
    train, val, classes = tl.load_batches("digits", batch_size=100, val_fraction=0.25, seed=3)
    assert classes == tuple(str(d) for d in range(10))
    y_train = torch.cat([b[1] for b in train]).numpy()
    y_val = torch.cat([b[1] for b in val]).numpy()
    inputs, _ = next(iter(val))
    assert tuple(inputs.shape[1:]) == (1, 8, 8) and float(inputs.max()) <= 1.0
    total = len(y_train) + len(y_val)
    assert abs(len(y_val) / total - 0.25) < 0.01
    share_train = np.bincount(y_train, minlength=10) / len(y_train)
    share_val = np.bincount(y_val, minlength=10) / len(y_val)
    np.testing.assert_allclose(share_train, share_val, atol=0.01)


def test_probe_eval_mode_restores_every_submodule_mode():
    """A grader probe predicts in eval mode and must leave a learner's frozen batch norm frozen."""
    from autograder.probes.common import eval_mode

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 2))
    model[1].eval()  # the learner froze batch norm inside a model in training mode
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, True]
class _TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk, self.left, self.right = torch.nn.Linear(4, 3), torch.nn.Linear(3, 2), torch.nn.Linear(3, 5)

    def forward(self, x):
        h = self.trunk(x)
        return self.left(h), self.right(h)


def test_task_gradients_gives_each_task_its_own_loss_and_gradients():
    torch.manual_seed(0)
    model = _TwoHeads()
    x, labels = torch.randn(6, 4), torch.tensor([[0, 4], [1, 0], [0, 2], [1, 1], [0, 3], [1, 4]])
    losses, grads = tl.task_gradients(model, x, labels)
    params = list(model.parameters())
    assert len(losses) == len(grads) == 2 and all(len(g) == len(params) for g in grads)
    for task, head in ((0, model.left), (1, model.right)):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x)[task], labels[:, task])
        loss.backward()
        assert torch.isclose(losses[task], loss.detach())
        for p, g in zip(params, grads[task]):
            assert torch.allclose(p.grad if p.grad is not None else torch.zeros_like(p), g)
    other_head = {id(p) for p in model.right.parameters()}
    assert all(not g.any() for p, g in zip(params, grads[0]) if id(p) in other_head)  # zeros, not None


def test_loss_gradients_returns_the_loss_and_one_gradient_per_variable():
    w, unused = torch.tensor([1.0, -2.0], requires_grad=True), torch.ones(3, requires_grad=True)
    loss, grads = tl.loss_gradients(lambda: (w**2).sum() + 3 * w[0], [w, unused])
    assert float(loss) == 8.0 and not loss.requires_grad
    assert torch.allclose(grads[0], torch.tensor([5.0, -4.0])) and torch.equal(grads[1], torch.zeros(3))
    assert w.grad is None  # nothing accumulated


def test_compiled_leaves_the_function_as_it_is():
    def forward(x):
        return x * 2

    assert tl.compiled(forward) is forward


def test_to_numpy_and_model_device():
    x = torch.ones(2, 3, requires_grad=True) * 2
    assert isinstance(tl.to_numpy(x), np.ndarray) and tl.to_numpy(x).tolist() == [[2.0] * 3] * 2
    assert tl.to_numpy([1, 2]).tolist() == [1, 2]
    assert tl.model_device(small_mlp()) == torch.device("cpu") and tl.model_device(nn.ReLU()).type == "cpu"


def test_fit_and_evaluate_take_multi_hot_targets():
    rng = np.random.default_rng(0)
    targets = (rng.random((120, NUM_CLASSES)) < 0.4).astype(np.float32)  # any number of bands per image
    x = rng.integers(0, 60, size=(120, 8, 8), dtype=np.uint8)
    for k in range(NUM_CLASSES):
        x[targets[:, k] == 1, :, 2 * k : 2 * k + 2] += 180
    batches = tl.make_batches(x, targets, 30, shuffle=True)
    tl.seed_everything(0)
    model = small_mlp()
    history = tl.fit(model, batches, epochs=40, lr=1e-2, loss=nn.BCEWithLogitsLoss(), verbose=False)
    assert history["accuracy"][-1] >= 0.95
    scores = tl.evaluate(model, tl.make_batches(x, targets, 30), loss=nn.BCEWithLogitsLoss())
    manual = np.mean((tl.predict(model, x) > 0) == (targets > 0.5))
    assert scores["accuracy"] == pytest.approx(manual)
    values = x.astype(np.float32) / 100  # like features: floats that predict() must not rescale (it would by 16)
    np.testing.assert_allclose(tl.predict(model, values, scale=1), tl.predict(model, x, scale=100), rtol=1e-5,
                               atol=1e-5)


def test_recalibrate_batch_norm_sets_the_statistics_of_the_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(NUM_CLASSES))
    x, _ = synthetic_images(200)
    model(torch.zeros(1, 1, 8, 8))  # (materialise the lazy layer)
    assert tl.recalibrate_batch_norm(model, x, batch_size=50) is model and not model.training
    with torch.no_grad():
        conv_out = model[0](tl.to_inputs(x))
    bn = model[1]
    np.testing.assert_allclose(bn.running_mean.numpy(), conv_out.mean(dim=(0, 2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), conv_out.var(dim=(0, 2, 3)).numpy(), rtol=1e-2)
    assert bn.momentum == 0.1


def test_random_backbone_has_the_architecture_without_the_weights():
    trained = tl.load_backbone("efficientnet_lite0", input_size=32)
    tl.seed_everything(0)
    scratch = tl.load_backbone("efficientnet_lite0", input_size=32, pretrained=False, trainable=True)
    shapes = {k: v.shape for k, v in trained.state_dict().items()}
    assert shapes == {k: v.shape for k, v in scratch.state_dict().items()}
    assert not torch.equal(trained._conv_head.weight, scratch._conv_head.weight)
    assert all(p.requires_grad for p in scratch.parameters())
