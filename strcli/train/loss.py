"""The training loss of section 2.5, with the weights, joint sets and masks of TCMR's recipe.

L = w2d * L2(2D keypoints) + w3d * L2(3D keypoints) + wpose * L2(pose) + wshape * L2(shape),
over every frame of every clip (the paper sums over t = 1..T):

- 2D: the 49 SPIN joints (smplx's joints and SPIN's J_regressor_extra, registered on the
  body; `strcli.train.joints`) projected into the crop (perspective, focal 5000 px on 224 px,
  the regressor's camera), squared error in crop-normalised [-1, 1] units times the
  label's confidence, averaged over all coordinates (unlabelled joints count as 0);
- 3D: the 14 LSP joints (SPIN's 25:39), each pose minus its pelvis (mean of the hips),
  squared error in metres, averaged, only frames with 3D labels;
- pose: squared error between the 24 rotation matrices, only frames with SMPL labels;
- shape: squared error of the 10 betas, same frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from strcli.body.smpl import Body
from strcli.body.camera import crop_camera_translation
from strcli.config import CROP_FOCAL, CROP_SIZE
from strcli.model.regressor import SMPLPrediction
from strcli.body.rotations import axis_angle_to_rotmat
from strcli.train.data import Clip
from strcli.train.joints import SPIN_TO_LSP14, extra_regressor, spin49


@dataclass(frozen=True)
class LossWeights:
    kp2d: float = 300.0
    kp3d: float = 300.0
    pose: float = 60.0
    shape: float = 0.06


@dataclass(frozen=True)
class LossTerms:
    total: Tensor
    kp2d: Tensor
    kp3d: Tensor
    pose: Tensor
    shape: Tensor

    def as_floats(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach()) for name in ("total", "kp2d", "kp3d", "pose", "shape")}


def project_to_crop(joints: Tensor, cam: Tensor) -> Tensor:
    """(N, J, 3) body-frame joints, (N, 3) crop camera [s, tx, ty] -> (N, J, 2) in [-1, 1]."""
    points = joints + crop_camera_translation(cam)[:, None, :]
    return CROP_FOCAL * points[..., :2] / points[..., 2:].clamp_min(1e-6) / (CROP_SIZE / 2)


def pelvis_centred(joints: Tensor) -> Tensor:
    """(N, 14, 3) LSP joints minus the mean of the two hips."""
    return joints - joints[:, 2:4].mean(dim=1, keepdim=True)


class STRLoss(torch.nn.Module):
    def __init__(self, body: Body, weights: LossWeights = LossWeights()) -> None:
        super().__init__()
        self.body = body
        self.weights = weights

    def forward(self, pred: SMPLPrediction, target: Clip) -> LossTerms:
        rotmat = pred.rotmat.flatten(0, 1).float()  # (B T, 24, 3, 3)
        betas = pred.betas.flatten(0, 1).float()  # (B T, 10)
        cam = pred.cam.flatten(0, 1).float()
        out = self.body.rotmat(rotmat[:, :1], rotmat[:, 1:], betas)
        joints = spin49(out, extra_regressor(self.body))  # (B T, 49, 3)
        kp2d = target.kp2d.flatten(0, 1)
        conf = kp2d[..., 2:]
        loss_2d = (conf * (project_to_crop(joints, cam) - kp2d[..., :2]).pow(2)).mean()
        w3d = target.w_3d.flatten().bool()
        wsmpl = target.w_smpl.flatten().bool()
        zero = rotmat.new_zeros(())
        loss_3d = zero
        if w3d.any():
            lsp = list(SPIN_TO_LSP14)
            loss_3d = (pelvis_centred(joints[w3d][:, lsp])
                       - pelvis_centred(target.kp3d.flatten(0, 1)[w3d][:, lsp])).pow(2).mean()
        loss_pose = loss_shape = zero
        if wsmpl.any():
            true_rotmat = axis_angle_to_rotmat(target.pose.flatten(0, 1)[wsmpl].reshape(-1, 24, 3))
            loss_pose = (rotmat[wsmpl] - true_rotmat).pow(2).mean()
            loss_shape = (betas[wsmpl] - target.shape.flatten(0, 1)[wsmpl]).pow(2).mean()
        w = self.weights
        terms = (w.kp2d * loss_2d, w.kp3d * loss_3d, w.pose * loss_pose, w.shape * loss_shape)
        return LossTerms(sum(terms), *terms)  # type: ignore[arg-type]
