"""Boxes -> normalised 224 x 224 crops, in batches on the device.

A detection box [x1, y1, x2, y2] becomes a square of side max(w, h) * BBOX_SCALE around its
centre (TCMR's convention). Each output pixel is one bilinear sample of the frame at its
centre (`roi_align` with one sample per bin), as TCMR and VIBE crop (`cv2.warpAffine`,
INTER_LINEAR), both for the features their training sets were made of (which strcli trains
on too) and in their demos: the networks see at inference the image statistics they were
trained on, and a crop costs the same whatever the box's size (averaging every source pixel
under an output pixel took 40 ms a 900-pixel box on a CPU core, 25 samples a pixel).
Pixels outside the image come out black (zero before normalisation): boxes that leave the
frame are padded, not clipped or shifted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from strcli.config import BBOX_SCALE, CROP_SIZE, IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class SquareBoxes:
    """Square crop boxes in image pixels."""

    centre: Tensor  # (N, 2) cx, cy
    side: Tensor  # (N,)

    @property
    def corners(self) -> Tensor:
        """(N, 4) x1, y1, x2, y2."""
        half = self.side[:, None] / 2
        return torch.cat((self.centre - half, self.centre + half), dim=1)


def square_boxes(xyxy: Tensor, scale: float = BBOX_SCALE) -> SquareBoxes:
    """(N, 4) detection boxes -> squares of side max(w, h) * scale around the same centres."""
    wh = xyxy[:, 2:] - xyxy[:, :2]
    return SquareBoxes(centre=(xyxy[:, :2] + xyxy[:, 2:]) / 2, side=wh.max(dim=1).values * scale)


def crop_images(images: Tensor, frame_index: Tensor, boxes: SquareBoxes, size: int = CROP_SIZE,
                normalise: bool = True) -> Tensor:
    """Crop and resize.

    images: (F, H, W, 3) uint8 RGB frames (any device); frame_index: (N,) which frame each box
    belongs to; boxes: N squares. Returns (N, 3, size, size) float32, ImageNet-normalised
    unless `normalise` is False (then in [0, 1]).
    """
    x = images.permute(0, 3, 1, 2).contiguous().float()  # (F, 3, H, W), 0-255
    rois = torch.cat((frame_index[:, None].to(x), boxes.corners.to(x)), dim=1)  # (N, 5)
    from torchvision.ops import roi_align  # here: importing torchvision.ops costs seconds (torch._dynamo)

    crops = roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=1,
                      aligned=True).div_(255)  # (N, 3, size, size): one bilinear sample at each pixel's centre
    if not normalise:
        return crops
    mean = crops.new_tensor(IMAGENET_MEAN)[None, :, None, None]
    std = crops.new_tensor(IMAGENET_STD)[None, :, None, None]
    return (crops - mean) / std


def crop_frame(image: Tensor, boxes: SquareBoxes, size: int = CROP_SIZE,
               device: torch.device | None = None) -> Tensor:
    """All crops of one frame: image (H, W, 3) uint8, boxes on the host (or both on the
    device) -> (N, 3, size, size) normalised, on `device` (default: the image's).

    Only the part of the frame the boxes cover (plus a 2 px margin for the bilinear taps) is
    converted to float, and with a host image and a GPU `device` only that part is copied
    there, through pinned memory and without waiting: a few people in a 1080p or 4K frame
    cost little, and nothing makes the host wait for the GPU (host boxes: reading their
    extent needs no device sync). The result equals `crop_images` on the whole frame."""
    corners = boxes.corners.cpu()
    height, width = image.shape[:2]
    x1 = min(max(0, int(torch.floor(corners[:, 0].min())) - 2), width - 1)
    y1 = min(max(0, int(torch.floor(corners[:, 1].min())) - 2), height - 1)
    x2 = max(min(width, int(torch.ceil(corners[:, 2].max())) + 2), x1 + 1)
    y2 = max(min(height, int(torch.ceil(corners[:, 3].max())) + 2), y1 + 1)
    device = torch.device(device) if device is not None else image.device
    region = image[y1:y2, x1:x2]  # (h, w, 3)
    if region.device != device:
        staged = torch.empty(region.shape, dtype=region.dtype, pin_memory=device.type == "cuda")
        region = staged.copy_(region).to(device, non_blocking=True)
    moved = SquareBoxes((boxes.centre - boxes.centre.new_tensor([x1, y1])).to(device), boxes.side.to(device))
    return crop_images(region[None], torch.zeros(len(boxes.side), device=device), moved, size)
