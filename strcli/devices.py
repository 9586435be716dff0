"""`--device auto|cpu|cuda[:N]` -> a torch device that exists."""

from __future__ import annotations

import torch

from strcli.errors import UsageError
from strcli.options import check_device_name


def resolve_device(name: str = "auto") -> torch.device:
    """`name` -> a torch device that exists: UsageError (exit 2) for a name that is not
    auto, cpu, cuda or cuda:N (`strcli.options.check_device_name`, checked without torch
    before anything loads) or for a GPU that is not there."""
    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA GPU is visible to PyTorch.",
                         "Use --device cpu, or check the driver and CUDA_VISIBLE_DEVICES.")
    index = device.index or 0
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible.",
                         f"Use cuda:0 to cuda:{torch.cuda.device_count() - 1}, or check CUDA_VISIBLE_DEVICES.")
    return torch.device("cuda", index)
