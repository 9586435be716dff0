"""`--device auto|cpu|cuda[:N]` -> a torch device that exists."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from strcli.utils.errors import UsageError

if TYPE_CHECKING:
    import torch

_DEVICE_NAME = re.compile(r"auto|cpu|cuda(?::\d+)?")


def check_device_name(name: str) -> str:
    """`--device` spelled as auto, cpu, cuda or cuda:N (case and spaces ignored) -> its
    normalised form; UsageError otherwise. Says nothing about whether that GPU exists."""
    normal = (name or "auto").strip().lower()
    if not _DEVICE_NAME.fullmatch(normal):
        raise UsageError(f"bad --device {name!r}: use auto, cpu, cuda or cuda:N.")
    return normal


def resolve_device(name: str = "auto") -> "torch.device":
    """`name` -> a torch device that exists: UsageError (exit 2) for a name that is not
    auto, cpu, cuda or cuda:N (`check_device_name`, checked without torch
    before anything loads) or for a GPU that is not there."""
    import torch

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


PRECISIONS = ("auto", "fp32", "bf16", "onnx")  # `reconstruct --precision`


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as PyTorch's own
    oneDNN dispatch detects it (`torch.cpu._is_avx512_bf16_supported`,
    `_is_amx_tile_supported`); False where PyTorch cannot tell. Without native support
    bf16 is emulated, and slower than fp32."""
    import torch

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:
            continue
    return False


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime and onnx can be imported (the optional extra `strcli[onnx]`)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def resolve_precision(requested: str, device: "torch.device") -> str:
    """`--precision` -> how the detector and the ResNet-50 run on `device` (their weights
    stay fp32; the temporal models and SMPL always run in fp32): "bf16" (autocast), "fp32",
    or "onnx" (the ResNet-50 exported to ONNX, run by ONNX Runtime in fp32, on a CPU; the
    detector in PyTorch fp32).

    auto: bf16 on a GPU (as before) and on a CPU with native bf16 (`cpu_native_bf16`), fp32
    on any other CPU: ONNX Runtime ran the ResNet-50 1.37x faster than PyTorch fp32 on one
    machine (AMD EPYC, issue 25) and 0.83x on another (Intel Xeon, docs/performance.md), so
    it is asked for, not guessed. A name given is taken as asked; UsageError (exit 2) for an
    unknown name, for onnx on a GPU or without ONNX Runtime."""
    name = (requested or "auto").strip().lower()
    if name not in PRECISIONS:
        raise UsageError(f"bad --precision {requested!r}: use {', '.join(PRECISIONS)}.")
    if name == "onnx" and device.type != "cpu":
        raise UsageError("--precision onnx runs the ResNet-50 on the CPU; with a GPU use auto, fp32 or bf16.")
    if name == "onnx" and not onnxruntime_available():
        raise UsageError("--precision onnx needs ONNX Runtime, which is not installed.",
                         'Install it with `pip install "strcli[onnx]"` (or onnxruntime and onnx), or use auto.')
    if name != "auto":
        return name
    return "bf16" if device.type == "cuda" or cpu_native_bf16() else "fp32"
