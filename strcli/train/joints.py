"""Joint sets of training and evaluation, made from our SMPL body.

The pre-processed data (TCMR/VIBE layout) stores training keypoints in SPIN's 49-joint
order: 25 OpenPose joints, then 24 "ground-truth" joints (the 14 LSP joints first). The
evaluation sets are the 14 LSP joints (3DPW, Human3.6M) and 17 MPI-INF-3DHP test joints.

SPIN makes the 49 from smplx's 45 joints (24 SMPL joints + 21 picked vertices) and the 9
joints of its `J_regressor_extra.npy` (9 x 6890, in SPIN's data.tar.gz: the manifest's
`j_regressor_extra`): right hip, left hip, neck (LSP), head top (LSP), pelvis (MPII),
thorax (MPII), spine (H36M), jaw (H36M), head (H36M), in that order (SPIN's and TCMR's
`JOINT_MAP`, lib/models/smpl.py, indices 45-53). So do we, for the training loss and for
MPI-INF-3DHP's 17 test joints (7 of which, head top, neck, both hips, pelvis, spine and
head, are among the 9). Without that file (`--offline`, never fetched) the 9 fall back to
the Human3.6M regressor's nearest joints (`FALLBACK_H36M`), with a warning: close, not
equal; see docs/training.md.

The extra regressor travels with the Body it belongs to: `attach_extra_regressor` registers
it on the Body as the buffer `j_regressor_extra` (so `.to(device)` moves it), and
`extra_regressor(body)` reads it back (None when absent).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from strcli.body.smpl import H36M_TO_J14, BodyOutput
from strcli.utils.errors import CorruptAssetError

# SPIN's 49 names in order (a fact of the data layout).
SPIN_49 = (
    "OP Nose", "OP Neck", "OP RShoulder", "OP RElbow", "OP RWrist", "OP LShoulder", "OP LElbow",
    "OP LWrist", "OP MidHip", "OP RHip", "OP RKnee", "OP RAnkle", "OP LHip", "OP LKnee", "OP LAnkle",
    "OP REye", "OP LEye", "OP REar", "OP LEar", "OP LBigToe", "OP LSmallToe", "OP LHeel", "OP RBigToe",
    "OP RSmallToe", "OP RHeel",
    "rankle", "rknee", "rhip", "lhip", "lknee", "lankle", "rwrist", "relbow", "rshoulder", "lshoulder",
    "lelbow", "lwrist", "neck", "headtop", "hip", "thorax", "Spine (H36M)", "Jaw (H36M)", "Head (H36M)",
    "nose", "leye", "reye", "lear", "rear",
)
LSP_14 = SPIN_49[25:39]  # what 3DPW and Human3.6M are scored on; the 3D loss uses these
MPII3D_17 = ("headtop", "neck", "rshoulder", "relbow", "rwrist", "lshoulder", "lelbow", "lwrist",
             "rhip", "rknee", "rankle", "lhip", "lknee", "lankle", "hip", "Spine (H36M)", "Head (H36M)")
SPIN_TO_LSP14 = tuple(range(25, 39))
SPIN_TO_MPII3D17 = tuple(SPIN_49.index(name) for name in MPII3D_17)

# Where each of the 49 comes from: ("smplx", i) = smplx's joint i of 45 (SMPL joints 0-23,
# then nose, reye, leye, rear, lear, LBigToe, LSmallToe, LHeel, RBigToe, RSmallToe, RHeel,
# fingertips), ("extra", i) = row i of SPIN's J_regressor_extra (SPIN/TCMR `JOINT_MAP`).
_SOURCES = (
    # OpenPose 25 (SPIN's map onto smplx joints)
    ("smplx", 24), ("smplx", 12), ("smplx", 17), ("smplx", 19), ("smplx", 21), ("smplx", 16), ("smplx", 18),
    ("smplx", 20), ("smplx", 0), ("smplx", 2), ("smplx", 5), ("smplx", 8), ("smplx", 1), ("smplx", 4),
    ("smplx", 7), ("smplx", 25), ("smplx", 26), ("smplx", 27), ("smplx", 28), ("smplx", 29), ("smplx", 30),
    ("smplx", 31), ("smplx", 32), ("smplx", 33), ("smplx", 34),
    # the 24 "ground-truth" joints
    ("smplx", 8), ("smplx", 5), ("extra", 0), ("extra", 1), ("smplx", 4), ("smplx", 7), ("smplx", 21),
    ("smplx", 19), ("smplx", 17), ("smplx", 16), ("smplx", 18), ("smplx", 20), ("extra", 2), ("extra", 3),
    ("extra", 4), ("extra", 5), ("extra", 6), ("extra", 7), ("extra", 8), ("smplx", 24), ("smplx", 26),
    ("smplx", 25), ("smplx", 28), ("smplx", 27),
)
assert len(SPIN_49) == len(_SOURCES) == 49
EXTRA_JOINTS = 9
# Fallback without J_regressor_extra (strcli <= 0.1's choice): the Human3.6M regressor's
# joint (of 17: 0 pelvis, 4 right hip, 1 left hip, 7 spine, 8 thorax, 9 neck/nose, 10 head
# top) nearest in meaning to each of the 9: right hip, left hip, LSP neck -> thorax, head
# top, MPII pelvis, MPII thorax, spine, jaw and head -> neck/nose.
FALLBACK_H36M = (4, 1, 8, 10, 0, 8, 7, 9, 9)


def attach_extra_regressor(body: nn.Module, regressor: np.ndarray) -> None:
    """Register SPIN's J_regressor_extra (9, V) on `body` as buffer `j_regressor_extra`.
    Raises CorruptAssetError when its shape is not (9, V)."""
    array = np.asarray(regressor, np.float32)
    vertices = int(body.smpl.v_template.shape[0]) if hasattr(body, "smpl") else array.shape[-1]
    if array.shape != (EXTRA_JOINTS, vertices):
        raise CorruptAssetError(f"J_regressor_extra has shape {array.shape}, expected ({EXTRA_JOINTS}, {vertices}).",
                                "Extract data/J_regressor_extra.npy from SPIN's data.tar.gz again.")
    if not np.isfinite(array).all():
        raise CorruptAssetError("J_regressor_extra holds NaN or infinite values.",
                                "Extract data/J_regressor_extra.npy from SPIN's data.tar.gz again.")
    param = next(iter(body.buffers()), None)
    tensor = torch.from_numpy(array)
    body.register_buffer("j_regressor_extra", tensor.to(param.device) if param is not None else tensor)


def extra_regressor(body: nn.Module) -> Tensor | None:
    """(9, V) SPIN's J_regressor_extra registered on `body`, or None."""
    value = getattr(body, "j_regressor_extra", None)
    return value if isinstance(value, Tensor) else None


def extra_joints(out: BodyOutput, regressor: Tensor | None) -> Tensor:
    """(N, 9, 3) SPIN's 9 extra joints of posed bodies: `regressor` (9, V) applied to the
    vertices, or, when it is None, the fallback `FALLBACK_H36M` joints of the H36M regressor."""
    if regressor is not None:
        return torch.einsum("jv,nvc->njc", regressor.to(out.vertices), out.vertices)
    if out.joints_h36m is None:
        raise ValueError("the 9 extra joints need J_regressor_extra or, as a fallback, the H36M regressor")
    return out.joints_h36m[:, list(FALLBACK_H36M)]


def spin49(out: BodyOutput, regressor: Tensor | None) -> Tensor:
    """(N, 49, 3) SPIN's training joints of posed bodies, metres: smplx's joints and SPIN's
    J_regressor_extra `regressor` (9, V) (None: the documented H36M fallback)."""
    if out.joints_smplx is None:
        raise ValueError("the 49 training joints need smplx's 45 joints")
    both = torch.cat([out.joints_smplx, extra_joints(out, regressor).to(out.joints_smplx)], dim=1)  # (N, 54, 3)
    index = [i if kind == "smplx" else out.joints_smplx.shape[1] + i for kind, i in _SOURCES]
    return both[:, index]


def lsp14(out: BodyOutput) -> Tensor:
    """(N, 14, 3) the evaluation joints: the H36M regressor reordered (protocol)."""
    if out.joints_h36m is None:
        raise ValueError("the evaluation joints need the H36M regressor")
    return out.joints_h36m[:, list(H36M_TO_J14)]
