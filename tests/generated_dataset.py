"""A miniature data set in exactly the TCMR/VIBE layout, made from the generated body.

Each video is a person moving smoothly through random poses (random mixtures of a few
fixed "motion primitives", rotations of every joint, around a standing pose) with a
random shape. Its "ResNet features" encode the pose
and shape through one fixed random linear map plus noise, so a network can learn to read
them back, as it learns to read real images through the real ResNet-50. 3D joints come
from the body (SPIN's 49 for training files, the scored joints for test files), 2D joints
from a pinhole camera, boxes from the 2D joints. Files are written with joblib (InstaVariety
with h5py), under the names of `strcli.train.data.FILES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import joblib
import numpy as np
import torch

from strcli.body.smpl import Body
from strcli.config import CROP_SIZE
from strcli.train.data import FILES, INSTA_25
from strcli.train.joints import SPIN_49, SPIN_TO_LSP14, SPIN_TO_MPII3D17, extra_regressor, lsp14, spin49

FOCAL, IMAGE = 1000.0, 1000
FEATURE_DIM = 2048


def make_extra_regressor(vertices: int = 6890, seed: int = 99) -> np.ndarray:
    """A stand-in for SPIN's J_regressor_extra (9, V): each row a convex combination of a few
    random vertices (the real file is not obtainable here)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((9, vertices), np.float32)
    for row in out:
        picked = rng.choice(vertices, 6, replace=False)
        weights = rng.uniform(0.2, 1.0, 6)
        row[picked] = weights / weights.sum()
    return out


def _encoder(seed: int = 1234) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1 / np.sqrt(82), (82, FEATURE_DIM)).astype(np.float32)


def _directions(seed: int = 4321, count: int = 6) -> np.ndarray:
    """The data set's motion primitives: `count` fixed directions in pose space."""
    return np.random.default_rng(seed).normal(0, 0.35, (count, 72))


def _video(body: Body, rng: np.random.Generator, frames: int) -> dict[str, np.ndarray]:
    t = np.arange(frames)[:, None] / 25.0
    directions = _directions()
    k = len(directions)
    amplitude, rate, phase = rng.uniform(0.3, 1.0, (1, k)), rng.uniform(0.2, 1.0, (1, k)), rng.uniform(0, 6.3, (1, k))
    pose = (amplitude * np.sin(2 * np.pi * rate * t + phase)) @ directions  # (N, 72)
    pose[:, :3] = [np.pi, 0, 0] + 0.2 * np.sin(2 * np.pi * 0.3 * t + phase[:, :3])  # upright, y down
    shape = np.repeat(rng.normal(0, 0.8, (1, 10)), frames, 0)
    with torch.inference_mode():
        p = torch.as_tensor(pose, dtype=torch.float32)
        out = body.axis_angle(p[:, :3], p[:, 3:], torch.as_tensor(shape, dtype=torch.float32))
    transl = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.2, 0.2), rng.uniform(4, 6)], np.float32)
    return {"pose": pose.astype(np.float32), "shape": shape.astype(np.float32),
            "j49": spin49(out, extra_regressor(body)).numpy() + transl, "j14": lsp14(out).numpy() + transl}


def _project(joints: np.ndarray) -> np.ndarray:
    xy = FOCAL * joints[..., :2] / joints[..., 2:] + IMAGE / 2
    return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1).astype(np.float32)


def _bbox(kp: np.ndarray) -> np.ndarray:
    lo, hi = kp[..., :2].min(1), kp[..., :2].max(1)
    side = (hi - lo).max(1, keepdims=True) * 1.1
    return np.concatenate([(lo + hi) / 2, side, side], 1).astype(np.float32)


def write_set(body: Body, path: Path, name: str, split: str, videos: int, frames: int | Sequence[int], seed: int,
              noise: float = 0.05) -> Path:
    """`frames`: every video's length, or one length per video."""
    rng = np.random.default_rng(seed)
    lengths = [frames] * videos if isinstance(frames, int) else list(frames)
    encoder = _encoder()
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("vid_name", "frame_id", "features", "pose", "shape",
                                                         "joints3D", "joints2D", "bbox", "img_name", "valid")}
    for v, length in enumerate(lengths):
        video = _video(body, rng, length)
        code = np.concatenate([video["pose"], video["shape"]], 1) @ encoder
        features = code + rng.normal(0, noise, code.shape).astype(np.float32)
        if split == "train":
            joints3d, kp = video["j49"], _project(video["j49"])
        elif name == "mpii3d":
            joints3d, kp = video["j49"][:, list(SPIN_TO_MPII3D17)], _project(video["j49"])
        else:
            joints3d, kp = video["j14"], _project(video["j14"])
        box = _bbox(kp)
        if name in ("3dpw", "pennaction"):  # stored in the 14-joint 'common' (LSP) order
            kp = _project(video["j49"][:, list(SPIN_TO_LSP14)])
            if name == "pennaction":  # PennAction has no neck label
                kp[:, 12] = 0
        if name == "insta":  # its 25 joints, in pixels of the 224 px crop of the enlarged box
            kp = _project(video["j49"])[:, [SPIN_49.index(n) for n in INSTA_25]]
            size = box[:, None, 2:3] * 1.2
            kp[..., :2] = (kp[..., :2] - box[:, None, :2]) / size * CROP_SIZE + CROP_SIZE / 2
        rows["vid_name"].append(np.array([f"{name}_{split}_{v:03d}_0"] * length))
        rows["frame_id"].append(np.arange(length))
        rows["features"].append(features.astype(np.float32))
        rows["pose"].append(video["pose"])
        rows["shape"].append(video["shape"])
        rows["joints3D"].append(joints3d.astype(np.float32))
        rows["joints2D"].append(kp)
        rows["bbox"].append(box)
        rows["img_name"].append(np.array([f"{name}/{v:03d}/{f:06d}.jpg" for f in range(length)]))
        rows["valid"].append(np.ones(length, np.float32))
    data = {k: np.concatenate(v) for k, v in rows.items()}
    if name == "mpii3d" and split != "train":
        data["valid_i"] = data.pop("valid")[:, None]
    if name in ("insta", "posetrack", "pennaction"):
        for key in ("pose", "shape", "joints3D"):
            data.pop(key)
    if name == "insta":  # InstaVariety's file has only these
        data = {k: data[k] for k in ("vid_name", "frame_id", "features", "joints2D")}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".h5":
        with h5py.File(path, "w") as f:
            for key, value in data.items():
                f.create_dataset(key, data=value.astype("S") if value.dtype.kind == "U" else value)
    else:
        joblib.dump(data, path)
    return path


def write_miniature(body: Body, folder: Path, videos: int = 6, frames: int = 40, seed: int = 0) -> Path:
    """Every file of both recipes (train sets, 3DPW val and the three test sets)."""
    for k, (key, file) in enumerate(sorted(FILES.items())):
        name, split = key
        count = videos if split == "train" else max(2, videos // 2)
        write_set(body, folder / file, name, split, count, frames, seed * 1000 + k)
    return folder

