"""Resource limits of one submission's worker and kernel.

Kept apart from :mod:`autograder.sandbox` so that the worker, which starts once per submission, imports
nothing heavy (no numpy) before it starts the kernel.
"""

from __future__ import annotations

import json
import resource
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    # Address space (RLIMIT_AS on CPU), not resident memory: a Keras-on-torch kernel reserves far more than it
    # touches, and a tighter cap made oneDNN intermittently fail to allocate ("could not create a primitive"),
    # costing a right answer its points. The cgroup, where there is one, caps the same number.
    memory_bytes: int = 8 * 2**30
    cpu_seconds: int = 3600
    file_bytes: int = 256 * 2**20
    processes: int = 512
    output_bytes: int = 2 * 2**20  # per cell; the worker drops what a cell prints beyond this and says so


def apply_rlimits(limits: Limits, device: str, own_user: bool = False) -> None:
    """Limit this process and what it starts (the worker calls it before it starts the kernel).

    RLIMIT_NPROC counts every process of the real uid, so it is set only when the worker has a uid of its own."""
    if device != "cuda":  # CUDA maps huge address ranges; the memory cgroup covers GPU runs
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if own_user:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


def limit_args(limits: Limits, device: str, own_user: bool = False) -> list[str]:
    return ["--limits", json.dumps({**asdict(limits), "device": device, "own_user": own_user})]
