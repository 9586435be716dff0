"""Joint sets of training and evaluation, made from our SMPL body.

The pre-processed data (TCMR/VIBE layout) stores training keypoints in SPIN's 49-joint
order: 25 OpenPose joints, then 24 "ground-truth" joints (the 14 LSP joints first). The
evaluation sets are the 14 LSP joints (3DPW, Human3.6M) and 17 MPI-INF-3DHP test joints.

SPIN makes the 49 from smplx's 45 joints (24 SMPL joints + 21 picked vertices) and 9
joints of its `J_regressor_extra`. That regressor is not among the files strcli uses, so
the 9 come from the Human3.6M regressor instead (hips, neck, head top, pelvis, thorax,
spine, jaw, head), which is also what the evaluation joints are made from; see
docs/training.md.
"""

from __future__ import annotations

import torch
from torch import Tensor

from strcli.body import H36M_TO_J14, BodyOutput

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
# fingertips), ("h36m", i) = the Human3.6M regressor's joint i of 17.
_SOURCES = (
    # OpenPose 25 (SPIN's map onto smplx joints)
    ("smplx", 24), ("smplx", 12), ("smplx", 17), ("smplx", 19), ("smplx", 21), ("smplx", 16), ("smplx", 18),
    ("smplx", 20), ("smplx", 0), ("smplx", 2), ("smplx", 5), ("smplx", 8), ("smplx", 1), ("smplx", 4),
    ("smplx", 7), ("smplx", 25), ("smplx", 26), ("smplx", 27), ("smplx", 28), ("smplx", 29), ("smplx", 30),
    ("smplx", 31), ("smplx", 32), ("smplx", 33), ("smplx", 34),
    # the 24 "ground-truth" joints; SPIN's J_regressor_extra ones replaced by H36M's
    ("smplx", 8), ("smplx", 5), ("h36m", 4), ("h36m", 1), ("smplx", 4), ("smplx", 7), ("smplx", 21),
    ("smplx", 19), ("smplx", 17), ("smplx", 16), ("smplx", 18), ("smplx", 20), ("h36m", 8), ("h36m", 10),
    ("h36m", 0), ("h36m", 8), ("h36m", 7), ("h36m", 9), ("h36m", 9), ("smplx", 24), ("smplx", 26),
    ("smplx", 25), ("smplx", 28), ("smplx", 27),
)
assert len(SPIN_49) == len(_SOURCES) == 49


def spin49(out: BodyOutput) -> Tensor:
    """(N, 49, 3) SPIN's training joints of posed bodies (needs the H36M regressor)."""
    if out.joints_smplx is None or out.joints_h36m is None:
        raise ValueError("the 49 training joints need smplx's joints and the H36M regressor")
    both = torch.cat([out.joints_smplx, out.joints_h36m], dim=1)  # (N, 45 + 17, 3)
    index = [i if kind == "smplx" else out.joints_smplx.shape[1] + i for kind, i in _SOURCES]
    return both[:, index]


def lsp14(out: BodyOutput) -> Tensor:
    """(N, 14, 3) the evaluation joints: the H36M regressor reordered (protocol)."""
    if out.joints_h36m is None:
        raise ValueError("the evaluation joints need the H36M regressor")
    return out.joints_h36m[:, list(H36M_TO_J14)]
