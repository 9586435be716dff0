"""Checkpoint files in exactly the layout TCMR and VIBE released (no real weights exist here).

The released `.pth.tar` files are `torch.save`d (PyTorch 1.4, the legacy non-zip format)
dicts: `epoch` (int), `gen_state_dict` (the model, including `regressor.smpl.*`, the SMPL
buffers smplx 0.1.13 registers, plus VIBE's `J_regressor_extra`), `performance` (a numpy
float64: 3DPW PA-MPJPE), `gen_optimizer` (Adam), `disc_motion_state_dict` (the motion
discriminator: 2-layer GRU 69 -> 1024, 3-layer self-attention, fc) and
`disc_motion_optimizer`. The learnt weights here are random (our modules' initialisation):
nothing here is, or pretends to be, a trained model.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from strcli.model.regressor import MeanParams
from strcli.model.published import build_published

SMPL_BATCH = 64  # the SMPL layer's batch_size in both projects' Regressor


def smpl_copy() -> OrderedDict[str, Tensor]:
    """`regressor.smpl.*` as smplx 0.1.13's SMPL(create_transl=False) + VIBE's extension
    register them: names, shapes and dtypes of the real ones (values are placeholders)."""
    f32, i64 = torch.float32, torch.int64
    entries = [
        ("betas", (SMPL_BATCH, 10), f32), ("global_orient", (SMPL_BATCH, 3), f32),
        ("body_pose", (SMPL_BATCH, 69), f32), ("faces_tensor", (13776, 3), i64), ("v_template", (6890, 3), f32),
        ("shapedirs", (6890, 3, 10), f32), ("J_regressor", (24, 6890), f32), ("posedirs", (207, 20670), f32),
        ("parents", (24,), i64), ("lbs_weights", (6890, 24), f32), ("J_regressor_extra", (9, 6890), f32),
        ("vertex_joint_selector.extra_joints_idxs", (21,), i64),
    ]
    return OrderedDict((f"regressor.smpl.{name}", torch.zeros(shape, dtype=dtype)) for name, shape, dtype in entries)


class _MotionDiscriminator(nn.Module):
    """Only to give the discriminator entry its released names and shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(69, 1024, num_layers=2)
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [nn.Linear(1024, 1024), nn.Tanh(), nn.Dropout(0.2)]
        layers += [nn.Linear(1024, 1), nn.Tanh(), nn.Dropout(0.2)]
        self.attention = nn.Module()
        self.attention.attention = nn.Sequential(*layers)
        self.fc = nn.Linear(1024, 1)


def gen_state_dict(kind: str, mean: MeanParams | None = None, seed: int = 0) -> OrderedDict[str, Tensor]:
    """The model entry of a released file: our randomly initialised TCMR/VIBE with the SMPL
    copy inserted where the released modules hold it (after the regressor's heads)."""
    torch.manual_seed(seed)
    own = build_published(kind, mean).state_dict()
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in own.items():
        out[key] = value.clone()
        if key == "regressor.deccam.bias":
            out.update(smpl_copy())
    return out


def _adam_state(params: int, lr: float) -> dict:
    return {"state": {}, "param_groups": [{"lr": lr, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                                           "amsgrad": False, "params": list(range(params))}]}


def write_released(path: Path, kind: str, mean: MeanParams | None = None, seed: int = 0,
                   state: OrderedDict[str, Tensor] | None = None) -> Path:
    """A file laid out as TCMR's/VIBE's `*.pth.tar` (legacy torch format)."""
    gen = gen_state_dict(kind, mean, seed) if state is None else state
    disc = _MotionDiscriminator().state_dict()
    payload = {
        "epoch": 29,
        "gen_state_dict": gen,
        "performance": np.float64(52.7 if kind == "tcmr" else 56.5),
        "gen_optimizer": _adam_state(len(gen), 5e-5),
        "disc_motion_state_dict": disc,
        "disc_motion_optimizer": _adam_state(len(disc), 1e-4),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path, _use_new_zipfile_serialization=False)
    # Written under numpy 1.x, the released files name numpy's scalar constructor by its old module.
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    return path
