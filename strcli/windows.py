"""A track's per-frame features -> STR on fixed-length windows -> one prediction per frame.

STR sees T = 16 frames at a time. A track of n frames is cut into windows of T starting
every `stride` frames (default T/2: each frame is seen by two windows), the last window
ending on the last frame; a track shorter than T is padded by repeating its edge frames.
All windows of all tracks run through the network in batches. A frame's predictions from
the windows that contain it are averaged with tent weights that favour the window's
centre, where the network has context on both sides; the averaged 6D rotations are
orthonormalised again. See docs/model.md ("Inference on long videos").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from strcli.config import WINDOW
from strcli.model import STR, SMPLPrediction
from strcli.rotations import rot6d_to_rotmat


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one sequence of `length` frames start (in padded coordinates)."""

    length: int  # n, the sequence's frames
    window: int  # T
    starts: np.ndarray  # (W,) window starts
    pad_before: int  # edge frames repeated before frame 0 (short sequences)

    def frame_index(self) -> np.ndarray:
        """(W, T) the sequence frame each window position shows."""
        idx = self.starts[:, None] + np.arange(self.window)[None, :] - self.pad_before
        return np.clip(idx, 0, self.length - 1)

    def is_real(self) -> np.ndarray:
        """(W, T) False where a position shows a repeated edge frame."""
        idx = self.starts[:, None] + np.arange(self.window)[None, :] - self.pad_before
        return (idx >= 0) & (idx < self.length)


def plan_windows(length: int, window: int = WINDOW, stride: int | None = None) -> WindowPlan:
    if length < 1:
        raise ValueError("a sequence needs at least one frame")
    stride = stride or window // 2
    if length <= window:
        pad = (window - length) // 2  # centre the real frames in the window
        return WindowPlan(length, window, np.array([0]), pad)
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return WindowPlan(length, window, np.array(starts), 0)


def tent_weights(window: int) -> np.ndarray:
    """(T,) highest at the window's centre, small but non-zero at its ends."""
    t = np.arange(window)
    return 1.0 - np.abs(t - (window - 1) / 2) / (window / 2) + 1e-3


@torch.inference_mode()
def predict_sequences(model: STR, features: Sequence[Tensor], window: int = WINDOW,
                      stride: int | None = None, batch_size: int = 64) -> list[SMPLPrediction]:
    """Per-frame SMPL for each sequence of features (n_i, C), all windows batched together."""
    plans = [plan_windows(len(f), window, stride) for f in features]
    device = next(model.parameters()).device
    clips = torch.cat([f.to(device)[torch.from_numpy(p.frame_index()).to(device)]
                       for f, p in zip(features, plans)])  # (sum W, T, C)
    outputs = [model(clips[i : i + batch_size]) for i in range(0, len(clips), batch_size)]
    pose6d = torch.cat([o.pose6d for o in outputs])  # (sum W, T, 144)
    betas = torch.cat([o.betas for o in outputs])
    cam = torch.cat([o.cam for o in outputs])
    results, first = [], 0
    weights = torch.as_tensor(tent_weights(window), dtype=torch.float32, device=device)
    for plan in plans:
        count = len(plan.starts)
        results.append(_merge(plan, weights, pose6d[first : first + count], betas[first : first + count],
                              cam[first : first + count]))
        first += count
    return results


def _merge(plan: WindowPlan, weights: Tensor, pose6d: Tensor, betas: Tensor, cam: Tensor) -> SMPLPrediction:
    device = pose6d.device
    index = torch.from_numpy(plan.frame_index()[plan.is_real()]).to(device)  # (K,) frames
    mask = torch.from_numpy(plan.is_real()).to(device)
    w = weights.expand(len(plan.starts), -1)[mask][:, None]  # (K, 1)
    n = plan.length

    def average(values: Tensor) -> Tensor:  # (W, T, D) -> (n, D)
        flat = values[mask] * w
        total = torch.zeros(n, values.shape[-1], device=device).index_add_(0, index, flat)
        norm = torch.zeros(n, 1, device=device).index_add_(0, index, w)
        return total / norm

    mean6d = average(pose6d)
    rotmat = rot6d_to_rotmat(mean6d.reshape(n, 24, 6))
    return SMPLPrediction(pose6d=mean6d, rotmat=rotmat, betas=average(betas), cam=average(cam))
