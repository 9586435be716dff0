"""What the exported files approximate, measured per vertex against strcli's own posing.

A glTF skinned mesh (and any BVH-driven rig) is plain linear blend skinning of one rest
shape. strcli's SMPL posing (smplx) adds, per frame, SMPL's pose-dependent corrective
shapes (posedirs, 207 blend shapes) and uses that frame's betas; the .glb also keeps only
each vertex's 4 largest skinning weights. `approximation_error` poses the track both ways
and returns the vertex distances in millimetres, one cause at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from strcli.body.smpl import Body, SMPLArrays
from strcli.export.gltf import truncated_weights
from strcli.export.motion import TrackMotion


@dataclass(frozen=True)
class ErrorMM:
    """Vertex distances in millimetres over all frames and vertices."""

    mean: float
    p99: float
    max: float

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> ErrorMM:
        d = np.linalg.norm(a - b, axis=-1) * 1000.0
        return cls(float(d.mean()), float(np.percentile(d, 99)), float(d.max()))


@dataclass(frozen=True)
class Approximation:
    """Per-vertex error of the exported body against strcli's posing, by cause."""

    correctives: ErrorMM  # no pose correctives (glTF/BVH cannot carry them)
    four_weights: ErrorMM  # 4 largest weights renormalised, on top of no correctives
    mean_shape: ErrorMM  # the track's mean betas instead of each frame's
    total: ErrorMM  # the .glb's body against strcli's posing
    vertices_over_four: int  # vertices with more than 4 non-zero SMPL weights


def _pose(body: Body, track: TrackMotion, betas: np.ndarray, rows: np.ndarray) -> np.ndarray:
    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x[rows], dtype=torch.float32)

    with torch.inference_mode():
        out = body.axis_angle(t(track.global_orient), t(track.body_pose), t(betas), t(track.transl))
    return out.vertices.double().numpy()


def approximation_error(arrays: SMPLArrays, track: TrackMotion, max_frames: int = 64) -> Approximation:
    """Pose up to `max_frames` frames of `track` (evenly spread) with the full SMPL model of
    `arrays` and with what the .glb holds; millimetres."""
    rows = np.unique(np.linspace(0, len(track) - 1, min(max_frames, len(track))).round().astype(int))
    flat = replace(arrays, posedirs=np.zeros_like(arrays.posedirs))
    four = replace(flat, weights=truncated_weights(np.asarray(arrays.weights, np.float64)))
    mean = np.repeat(track.mean_betas[None], len(track), axis=0)
    full = _pose(Body(arrays), track, track.betas, rows)
    mean_full = _pose(Body(arrays), track, mean, rows)
    mean_flat = _pose(Body(flat), track, mean, rows)
    exported = _pose(Body(four), track, mean, rows)
    return Approximation(correctives=ErrorMM.of(mean_full, mean_flat), four_weights=ErrorMM.of(mean_flat, exported),
                         mean_shape=ErrorMM.of(full, mean_full), total=ErrorMM.of(full, exported),
                         vertices_over_four=int((np.asarray(arrays.weights) > 0).sum(axis=1).__gt__(4).sum()))
