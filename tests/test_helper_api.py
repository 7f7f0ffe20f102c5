"""The twin helper modules tlkit.pytorch and tlkit.keras.

TensorFlow and torch in one process can crash, so this file imports neither:
each file under tests/framework runs in its own pytest subprocess (one framework,
one Keras backend each), and the twins are compared by reading their source.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TLKIT = REPO / "tlkit"
FRAMEWORK_TESTS = Path(__file__).resolve().parent / "framework"
TWINS = {"pytorch": TLKIT / "pytorch.py", "keras": TLKIT / "keras.py"}

RUNS = [
    pytest.param("test_plots_and_common.py", None, id="plots-common"),
    pytest.param("test_pytorch_helpers.py", None, id="pytorch"),
    pytest.param("test_keras_helpers.py", "tensorflow", id="keras-tensorflow"),
    pytest.param("test_keras_helpers.py", "torch", id="keras-torch"),
]


@pytest.mark.parametrize(("test_file", "keras_backend"), RUNS)
def test_framework_file_passes_in_its_own_process(test_file: str, keras_backend: str | None):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop("TLKIT_DEVICE", None)
    if keras_backend:
        env["KERAS_BACKEND"] = keras_backend
    # --noconftest: the framework files need none of tests/conftest.py (which loads the autograder).
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", "-n", "0"]
    result = subprocess.run(
        [*command, str(FRAMEWORK_TESTS / test_file)],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{test_file} failed:\n{result.stdout[-8000:]}\n{result.stderr[-4000:]}"


def run_framework_file(test_file: str, keras_backend: str | None = None, **env_vars: str) -> str:
    """Run one file of tests/framework in its own pytest process (as above), assert that it passes, return its
    output (run with -s: what its tests print)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", **env_vars)
    env.pop("TLKIT_DEVICE", None)
    if keras_backend:
        env["KERAS_BACKEND"] = keras_backend
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest", "-n", "0", "-s"]
    result = subprocess.run([*command, str(FRAMEWORK_TESTS / test_file)], check=False, cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, f"{test_file} failed:\n{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def test_pretrained_backbone_gives_the_same_outputs_in_both_frameworks(tmp_path):
    """EfficientNet-Lite0: the PyTorch model writes its outputs on a fixed input, Keras (both backends) must
    match them within 1e-4 (and each classifies the cat and coffee photos), one framework per process."""
    outputs = tmp_path / "pytorch_outputs.npz"
    run_framework_file("test_pretrained_pytorch.py", None, TLKIT_LOGITS_OUT=str(outputs))
    assert outputs.exists()
    for backend in ("tensorflow", "torch"):
        run_framework_file("test_pretrained_keras.py", backend, TLKIT_LOGITS_IN=str(outputs))


def test_shared_init_and_torch_sgd_make_the_twins_one_run(tmp_path):
    """shared_init: a Keras network (both backends) starts with the outputs of its PyTorch twin for the same seed,
    and TorchSGD keeps them equal through annealed momentum steps, where Keras' own SGD drifts apart."""
    written = tmp_path / "pytorch_twin.npz"
    run_framework_file("test_twin_start_pytorch.py", None, TLKIT_TWIN_OUT=str(written))
    assert written.exists()
    for backend in ("tensorflow", "torch"):
        run_framework_file("test_twin_start_keras.py", backend, TLKIT_TWIN_IN=str(written))


# ----------------------------------------------------------------- the twins, read as source
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def declared_all(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("no __all__")


def functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def signature(func: ast.FunctionDef) -> list[tuple[str, str | None]]:
    """Parameter names, in order, each with its default's source text (None when it has no default)."""
    args = func.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + [ast.unparse(d) for d in args.defaults]
    params = list(zip([a.arg for a in positional], defaults))
    params += [(a.arg, None if d is None else ast.unparse(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return params


def imported_modules(tree: ast.Module, top_level_only: bool) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


TREES = {name: parse(path) for name, path in TWINS.items()}


def test_twins_export_the_same_names():
    torch_all, keras_all = declared_all(TREES["pytorch"]), declared_all(TREES["keras"])
    assert sorted(torch_all) == sorted(keras_all)
    expected = {
        "FRAMEWORK", "get_device", "seed_everything", "to_inputs", "make_batches", "load_batches", "fit",
        "evaluate", "predict", "count_params", "plot_history", "show_images", "plot_confusion_matrix",
        "load_backbone", "preprocess_inputs", "task_gradients", "loss_gradients", "shared_init", "to_numpy",
        "model_device", "recalibrate_batch_norm", "load_tokenizer", "load_text_encoder",
    }  # fmt: skip
    assert set(torch_all) == expected


def test_twins_define_every_exported_name():
    for name, tree in TREES.items():
        defined = set(functions(tree))
        for node in tree.body:
            if isinstance(node, ast.Assign):
                defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.ImportFrom):
                defined |= {alias.asname or alias.name for alias in node.names}
        missing = set(declared_all(tree)) - defined
        assert not missing, f"tlkit/{name}.py exports undefined names {missing}"


def test_twins_have_the_same_signatures():
    torch_funcs, keras_funcs = functions(TREES["pytorch"]), functions(TREES["keras"])
    public = {name for name in declared_all(TREES["pytorch"]) if name in torch_funcs or name in keras_funcs}
    assert public, "no public functions found"
    for name in sorted(public):
        assert name in torch_funcs and name in keras_funcs, f"{name} is not defined in both twins"
        assert signature(torch_funcs[name]) == signature(keras_funcs[name]), name


def test_framework_constants():
    for name, tree in TREES.items():
        values = [
            ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FRAMEWORK" for t in node.targets)
        ]
        assert values == [name]


def test_plots_are_reexported_from_tlkit_plots():
    for tree in TREES.values():
        from_plots = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "plots" and n.level == 1]
        names = {alias.name for node in from_plots for alias in node.names}
        assert {"plot_history", "show_images", "plot_confusion_matrix"} <= names


def test_neither_twin_imports_the_other():
    for name, tree in TREES.items():
        other = {"pytorch": "keras", "keras": "pytorch"}[name]
        relative = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
                    for alias in node.names} | {node.module for node in ast.walk(tree)
                                                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}
        assert other not in relative, f"tlkit/{name}.py imports tlkit/{other}.py"


def test_each_module_imports_only_its_framework():
    frameworks = {"torch", "tensorflow", "keras", "jax"}
    assert imported_modules(TREES["pytorch"], top_level_only=False) & frameworks == {"torch"}
    # tlkit.keras may touch its backend lazily, inside backend-only branches, but never at import time.
    assert imported_modules(TREES["keras"], top_level_only=True) & frameworks == {"keras"}
    for neutral in ("common.py", "plots.py"):
        assert not imported_modules(parse(TLKIT / neutral), top_level_only=False) & frameworks, neutral
