"""The paper's metrics (section 3.2), in millimetres, as the TCMR/VIBE protocol computes them.

All functions take metres and return per-frame errors in millimetres (average them for
the table). Joints are (N, J, 3) sequences of N frames; `pelvis` names the joints whose
mean is each pose's root (the two hips of the 14 LSP joints, or MPI-INF-3DHP's pelvis).
Every function refuses NaN or infinite input (`NonFiniteError`, exit 4): an error measured
from them means nothing, and Procrustes' SVD would fail on them (`LinAlgError`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from strcli.utils.errors import NonFiniteError

M_TO_MM = 1000.0
LSP_PELVIS = (2, 3)  # right and left hip in the 14 LSP joints
MPII3D_PELVIS = (14,)  # 'hip' in the 17 MPI-INF-3DHP test joints


def check_finite(pred: Tensor, target: Tensor, what: str = "joints") -> None:
    """NonFiniteError naming the frames (the first axis) where `pred` or `target` holds NaN
    or infinite values."""
    for name, values in ((f"predicted {what}", pred), (f"true {what}", target)):
        bad = ~torch.isfinite(values.reshape(len(values), -1)).all(dim=1)  # (N,) frames
        if bad.any():
            frames = bad.nonzero().flatten().tolist()
            shown = ", ".join(map(str, frames[:5])) + (", ..." if len(frames) > 5 else "")
            raise NonFiniteError(f"the {name} hold NaN or infinite values at {len(frames)} of {len(values)} "
                                 f"frame(s) ({shown}); no error can be measured from them.",
                                 "Predicted: the network diverged or its weights overflow, score another "
                                 "checkpoint. True: the test data file is damaged, copy it again.")


def align_pelvis(joints: Tensor, pelvis: tuple[int, ...] = LSP_PELVIS) -> Tensor:
    """(N, J, 3) -> the same joints relative to each pose's pelvis."""
    return joints - joints[:, list(pelvis)].mean(dim=1, keepdim=True)


def mpjpe(pred: Tensor, target: Tensor, pelvis: tuple[int, ...] = LSP_PELVIS) -> Tensor:
    """(N,) mean per-joint position error after pelvis alignment, mm."""
    check_finite(pred, target)
    return (align_pelvis(pred, pelvis) - align_pelvis(target, pelvis)).norm(dim=-1).mean(dim=-1) * M_TO_MM


def procrustes(pred: Tensor, target: Tensor) -> Tensor:
    """(N, J, 3) pred moved onto target by the best similarity transform per frame (scale,
    rotation without reflection, translation): orthogonal Procrustes solved by SVD."""
    check_finite(pred, target)
    mu_p, mu_t = pred.mean(dim=1, keepdim=True), target.mean(dim=1, keepdim=True)
    p, t = pred - mu_p, target - mu_t  # (N, J, 3)
    k = p.transpose(1, 2) @ t  # (N, 3, 3)
    u, s, vh = torch.linalg.svd(k)
    # det fix: flip the last singular direction where U V^T would be a reflection
    d = torch.sign(torch.linalg.det(u @ vh))  # (N,)
    z = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=1))
    rotation = u @ z @ vh  # (N, 3, 3): p @ rotation ~ t
    scale = (s * torch.diagonal(z, dim1=1, dim2=2)).sum(dim=1) / p.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)
    return scale[:, None, None] * p @ rotation + mu_t


def pa_mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """(N,) MPJPE after Procrustes alignment of each frame, mm."""
    return (procrustes(pred.double(), target.double()) - target.double()).norm(dim=-1).mean(dim=-1).float() * M_TO_MM


def mpvpe(pred_vertices: Tensor, target_vertices: Tensor) -> Tensor:
    """(N,) mean per-vertex position error, no alignment (3DPW), mm."""
    check_finite(pred_vertices, target_vertices, "vertices")
    return (pred_vertices - target_vertices).norm(dim=-1).mean(dim=-1) * M_TO_MM


def accel_error(pred: Tensor, target: Tensor, pelvis: tuple[int, ...] = LSP_PELVIS,
                counted: np.ndarray | None = None) -> Tensor:
    """Acceleration error, mm per frame^2: at each frame t = 1..N-2 the mean over joints of
    the distance between the second differences X[t-1] - 2 X[t] + X[t+1] of predicted and
    true pelvis-aligned joints. Returns (N-2,) for t = 1..N-2; with `counted` (N,) bool, only
    the frames t in 1..N-2 that count, whatever their neighbours (TCMR's evaluate.py: the
    error is computed on every frame of the sequence, then indexed by the frames that count,
    less the first and the last; MPI-INF-3DHP's `valid_i` decides which count)."""
    check_finite(pred, target)
    p, t = align_pelvis(pred, pelvis), align_pelvis(target, pelvis)
    accel_p = p[:-2] - 2 * p[1:-1] + p[2:]
    accel_t = t[:-2] - 2 * t[1:-1] + t[2:]
    error = (accel_p - accel_t).norm(dim=-1).mean(dim=-1) * M_TO_MM  # (N-2,)
    if counted is not None:
        error = error[torch.as_tensor(np.asarray(counted, bool)[1:-1])]
    return error
