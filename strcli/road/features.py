"""Crops -> per-frame features: the ResNet-50 backbone, batched, on the GPU when there is one.

The backbone is torchvision's ResNet-50 without its classifier: (N, 3, 224, 224) ->
(N, 2048), global-average-pooled. Its weights come from SPIN's checkpoint (the paper's
initialisation): a dict whose "model" entry holds HMR's state dict, whose backbone keys
(conv1, bn1, layer1..4) are torchvision's names and whose regressor keys (fc1, fc2,
decpose, decshape, deccam, init_*) are those of `strcli.model.Regressor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

from strcli.model.checkpoints import check_state_dict, load_state_dict_checked, read_checkpoint_file
from strcli.config import FEATURE_DIM
from strcli.utils.errors import CorruptAssetError
from strcli.model.regressor import Regressor

_BACKBONE_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
_REGRESSOR_PREFIXES = ("fc1.", "fc2.", "decpose.", "decshape.", "deccam.", "init_pose", "init_shape",
                       "init_cam")


class Backbone(nn.Module):
    """ResNet-50 trunk: (N, 3, 224, 224) ImageNet-normalised crops -> (N, 2048)."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = torchvision.models.resnet50(weights=None)
        self.resnet.fc = nn.Identity()

    def forward(self, crops: Tensor) -> Tensor:
        return self.resnet(crops)  # (N, 2048)


def spin_state_dict(path: str | Path, raw: Mapping[str, Any] | None = None) -> dict[str, Tensor]:
    """HMR's state dict from a SPIN checkpoint (loaded without running code; `raw`: its
    contents, if already read). CorruptAssetError when it is none, or holds entries that are
    not tensors, or NaN/inf weights."""
    raw = read_checkpoint_file(path) if raw is None else raw
    state = raw.get("model", raw)
    if not isinstance(state, Mapping) or "layer4.2.conv3.weight" not in state:
        raise CorruptAssetError(
            f"{path} is not a SPIN checkpoint (no ResNet-50 'model' state dict; top-level keys: "
            f"{', '.join(sorted(map(str, raw))[:6])}).",
            "Get SPIN's model_checkpoint.pt with `strcli weights fetch spin_checkpoint`.")
    return {k.removeprefix("module."): v for k, v in check_state_dict(state, path).items()}


def load_spin_backbone(backbone: Backbone, path: str | Path, raw: Mapping[str, Any] | None = None) -> None:
    state = spin_state_dict(path, raw)
    trunk = {k: v for k, v in state.items() if k.startswith(_BACKBONE_PREFIXES)}
    expected = {k for k in backbone.resnet.state_dict() if k.startswith(_BACKBONE_PREFIXES)}
    if set(trunk) != expected:
        missing = sorted(expected - set(trunk))[:5]
        raise CorruptAssetError(f"{path}: the ResNet-50 weights are incomplete (missing {missing}).")
    load_state_dict_checked(backbone.resnet, {**backbone.resnet.state_dict(), **trunk}, str(path))


def load_spin_regressor(regressor: Regressor, path: str | Path, raw: Mapping[str, Any] | None = None) -> None:
    """SPIN's regressor into ours (the paper initialises STR's regressor from SPIN)."""
    state = spin_state_dict(path, raw)
    head = {k: v for k, v in state.items() if k.startswith(_REGRESSOR_PREFIXES)}
    load_state_dict_checked(regressor, head, str(path))


# Crops per ResNet-50 call on a CPU: small batches keep the activations in cache (on the
# 2-core machine of docs/performance.md, 8 crops a call run 1.5x faster than 64).
CPU_BACKBONE_BATCH = 8


class FeatureExtractor:
    """Batched backbone inference, channels-last on every device (25% faster on a CPU too),
    in batches of `batch_size` on CUDA and of at most `CPU_BACKBONE_BATCH` on a CPU.
    `precision` "bf16" runs it under bf16 autocast (the weights stay fp32; features are
    returned in fp32): on CUDA, and on a CPU with native bf16 (AVX512-BF16, AMX: about 2x
    the crops per second of fp32, docs/performance.md); "fp32" runs it in fp32; "onnx"
    (a CPU) exports it to ONNX once, cached with its checksum, and runs ONNX Runtime.
    `strcli.utils.devices.resolve_precision` picks it for `--precision auto`. With
    `compile`, the backbone goes through `torch.compile` once (about 25 s on 2 CPU cores)
    and every batch is padded to the full batch size, so it compiles for one shape only."""

    def __init__(self, backbone: Backbone, device: torch.device | str = "cpu", batch_size: int = 64,
                 compile: bool = False, precision: str | None = None) -> None:
        self.device = torch.device(device)
        # None: what the road used before `--precision` (bf16 on CUDA, fp32 on a CPU)
        self.precision = precision or ("bf16" if self.device.type == "cuda" else "fp32")
        if self.precision not in ("fp32", "bf16", "onnx") or (self.precision == "onnx" and self.device.type != "cpu"):
            raise ValueError(f"precision {precision!r}: fp32, bf16, or onnx on a CPU")
        self.note: str | None = None  # a refused ONNX cache file, for the run's warnings
        self.batch_size = batch_size if self.device.type == "cuda" else min(batch_size, CPU_BACKBONE_BATCH)
        self.backbone = backbone.to(self.device).eval().to(memory_format=torch.channels_last)
        self.compiled = compile and self.precision != "onnx"
        self.run: Any = torch.compile(self.backbone) if self.compiled else self.backbone
        if self.precision == "onnx":  # exported once, cached with its checksum (strcli.road.onnx_backbone)
            from strcli.road.onnx_backbone import OnnxBackbone, cached_export

            path, self.note = cached_export(self.backbone.to(memory_format=torch.contiguous_format))
            self.run = OnnxBackbone(path)

    @torch.inference_mode()
    def __call__(self, crops: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, 2048) float32 on the extractor's device."""
        out = crops.new_empty((crops.shape[0], FEATURE_DIM), dtype=torch.float32, device=self.device)
        autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16"
                    else nullcontext())
        for start in range(0, crops.shape[0], self.batch_size):
            batch = crops[start : start + self.batch_size].to(self.device, non_blocking=True)
            count = len(batch)
            if self.compiled and count < self.batch_size:  # one shape: no recompilation
                batch = torch.cat([batch, batch.new_zeros((self.batch_size - count, *batch.shape[1:]))])
            if self.precision != "onnx":
                batch = batch.contiguous(memory_format=torch.channels_last)
            with autocast:
                out[start : start + count] = self.run(batch)[:count].float()
        return out
