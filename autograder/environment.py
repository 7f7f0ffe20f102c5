"""What the grading run used: library versions and the device, without importing any framework."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = ("numpy", "torch", "keras", "tensorflow-cpu", "tensorflow", "scikit-learn", "nbgrader", "nbclient")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """The host a timing or an outcome was measured on: 2-core hosts differ 2-3x in speed on these notebooks."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                   if line.startswith("model name"))
    return {"cpus": os.cpu_count(), "cpu": cpu, "platform": platform.platform()}


def gpu_present() -> bool:
    return bool(shutil.which("nvidia-smi")) and os.path.exists("/dev/nvidiactl")


def resolve_device(requested: str) -> str:
    """'auto' -> 'cuda' when an NVIDIA GPU is visible, else 'cpu'; 'cuda' without one is an error."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, not {requested!r}")
    if requested == "auto":
        return "cuda" if gpu_present() else "cpu"
    if requested == "cuda" and not gpu_present():
        raise RuntimeError("--device cuda was asked for, but no NVIDIA GPU is visible on this machine")
    return requested


def kernel_env(device: str, framework: str) -> dict[str, str]:
    """Environment for the worker and its kernel: one thread per op on CPU, quiet logs, fixed hashing."""
    env = dict(os.environ)
    env.update(TLKIT_DEVICE=device, MPLBACKEND="Agg", PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONUNBUFFERED="1",
               # Same grade on CPU and GPU: no TF32 maths, deterministic kernels, whatever the notebook sets.
               NVIDIA_TF32_OVERRIDE="0", TF_DETERMINISTIC_OPS="1", CUBLAS_WORKSPACE_CONFIG=":4096:8")
    env.setdefault("OMP_NUM_THREADS", "1")
    if framework == "keras" and device == "cuda":
        env.setdefault("KERAS_BACKEND", "torch")  # the GPU machines carry torch, not TensorFlow
    return env


def free_gpu_memory_mib() -> list[int]:
    """Free memory of each visible NVIDIA GPU, in MiB (empty without one)."""
    if not gpu_present():
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        return [int(line) for line in out.split() if line.strip().isdigit()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
