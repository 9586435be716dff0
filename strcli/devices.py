"""`--device auto|cpu|cuda[:N]` -> a torch device that exists."""

from __future__ import annotations

import torch

from strcli.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UsageError(f"bad --device {name!r}: use auto, cpu, cuda or cuda:N.") from err
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UsageError(f"bad --device {name!r}: use auto, cpu, cuda or cuda:N.")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA GPU is visible to PyTorch.",
                         "Use --device cpu, or check the driver and CUDA_VISIBLE_DEVICES.")
    index = device.index or 0
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible.")
    return torch.device("cuda", index)
