"""torch's own settings, for every torch process of the course: a PyTorch notebook, or Keras on its torch backend.

Kept apart from both twins so that neither imports the other.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_torch(seed: int = 0, deterministic: bool = True) -> None:
    """Seed python's ``random``, numpy and torch; with ``deterministic``, deterministic algorithms (a warning, not
    an error, where none exists), no cuDNN autotuning and no TF32 maths."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every GPU
    # torch.use_deterministic_algorithms() would also import the inductor compiler (slow, in every notebook)
    # only to set its flag; the course never compiles models, so set the eager flag alone.
    torch._C._set_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
