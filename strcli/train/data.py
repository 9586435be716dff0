"""The pre-processed data sets of the TCMR/VIBE family, read safely and cut into clips.

Files (in `--data-dir`, names as TCMR's pre-processing writes them) are joblib pickles
of a dict of arrays, one row per frame: `vid_name`, `frame_id`, `features` (N, 2048),
`pose` (N, 72), `shape` (N, 10), `joints3D`, `joints2D` (N, J, 3: x, y, confidence),
`bbox` (N, 4: cx, cy, w, h), `img_name`, `valid`; InstaVariety is an HDF5 file with
`vid_name`, `frame_id`, `features` and `joints2D` only. A joblib file is unpickled with
only numpy's array classes admitted (`load_db`): loading never runs code. Arrays are
memory-mapped where the file allows, and HDF5 columns are read a slice at a time
(`H5Column`), so a 20 GB Human3.6M file or InstaVariety's 17 GB of features cost what is
read.

The 2D keypoints come in the layout each data set's pre-processing left them in
(`KEYPOINTS_2D`): SPIN's 49 (MPI-INF-3DHP, Human3.6M, PoseTrack), the 14 'common' LSP
joints (3DPW; PennAction, whose neck is empty), or InstaVariety's own 25, which are
pixels of the 224 px crop rather than of the frame (its videos were cropped before
pre-processing; it has no boxes).

A clip is T consecutive frames of one `vid_name`, placed as TCMR's training windows are
(`train_clip_starts`: TCMR's `split_into_chunks(..., is_train=True)`).
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from strcli.config import BBOX_SCALE, CROP_SIZE, FEATURE_DIM
from strcli.utils.errors import CorruptAssetError, DataFileError, UsageError
from strcli.train.joints import LSP_14, MPII3D_17, SPIN_49, SPIN_TO_LSP14, SPIN_TO_MPII3D17

SEQLEN = 16
CROP_SCALE = BBOX_SCALE  # TCMR crops the box enlarged by 1.2; 2D keypoints are normalised to that crop

# (dataset, split) -> file name in --data-dir (TCMR's pre-processing output names).
FILES = {
    ("3dpw", "train"): "3dpw_train_db.pt",
    ("3dpw", "val"): "3dpw_val_db.pt",
    ("3dpw", "test"): "3dpw_test_db.pt",
    ("mpii3d", "train"): "mpii3d_train_scale12_db.pt",
    ("mpii3d", "val"): "mpii3d_val_scale12_db.pt",  # the MPI-INF-3DHP test set, as TCMR names it
    ("h36m", "train"): "h36m_train_25fps_db.pt",
    ("h36m", "test"): "h36m_test_25fps_nosmpl_db.pt",
    ("insta", "train"): "insta_train_db.h5",
    ("posetrack", "train"): "posetrack_train_db.pt",
    ("pennaction", "train"): "pennaction_train_db.pt",
}
# The occlusion-augmented training files of TCMR's w/ 3DPW recipe (`Dataset3D.load_db` in
# TCMR's lib/dataset/_dataset_3d.py, config repr_table4_3dpw_model); its w/o 3DPW recipe
# (repr_table6_mpii3d_model) reads the plain files, and InstaVariety is plain in both.
OCC_FILES = {
    "3dpw": "3dpw_train_occ_db.pt",
    "mpii3d": "mpii3d_train_scale12_occ_db.pt",
    "h36m": "h36m_train_25fps_occ_db.pt",
}
THREE_D = ("3dpw", "mpii3d", "h36m")
TWO_D = ("insta", "posetrack", "pennaction")
# Which sets carry SMPL parameters (pose and shape) in their training files.
HAS_SMPL = {"3dpw": True, "mpii3d": False, "h36m": True, "insta": False, "posetrack": False, "pennaction": False}
# InstaVariety's 25 keypoint names, in its files' order (VIBE/TCMR's `get_insta_joint_names`).
INSTA_25 = ("OP RHeel", "OP RKnee", "OP RHip", "OP LHip", "OP LKnee", "OP LHeel", "OP RWrist", "OP RElbow",
            "OP RShoulder", "OP LShoulder", "OP LElbow", "OP LWrist", "OP Neck", "headtop", "OP Nose", "OP LEye",
            "OP REye", "OP LEar", "OP REar", "OP LBigToe", "OP RBigToe", "OP LSmallToe", "OP RSmallToe",
            "OP LAnkle", "OP RAnkle")
# The layout of `joints2D` in each data set's files.
KEYPOINTS_2D = {"3dpw": LSP_14, "mpii3d": SPIN_49, "h36m": SPIN_49, "insta": INSTA_25, "posetrack": SPIN_49,
                "pennaction": LSP_14}
# Sets whose 2D keypoints are pixels of the 224 px crop, not of the frame.
CROP_KEYPOINTS = {"insta"}

_ALLOWED = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}


class _RunsCode(pickle.UnpicklingError):
    """A data file's pickle names a global other than numpy's arrays: it would run code."""


def _safe_unpickler_class() -> type:
    from joblib import numpy_pickle

    class SafeUnpickler(numpy_pickle.NumpyUnpickler):  # type: ignore[misc, name-defined]
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
                return super().find_class(module, name)
            raise _RunsCode(f"refusing {module}.{name}: data files hold only arrays")

    return SafeUnpickler


class H5Column:
    """One column of an HDF5 data file, read a slice at a time. The file is opened on first
    use in each process (DataLoader workers each get their own handle)."""

    def __init__(self, path: Path, key: str) -> None:
        import h5py

        self.path, self.key = path, key
        with h5py.File(path, "r") as f:
            self.shape: tuple[int, ...] = tuple(f[key].shape)
        self._file: Any = None
        self._pid = -1

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        if self._file is None or self._pid != os.getpid():
            import h5py

            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return _decoded(np.asarray(self._file[self.key][index]))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": -1}


Column = np.ndarray | H5Column


def load_db(path: str | Path, mmap: bool = True) -> dict[str, Column]:
    """A TCMR/VIBE data file as a dict of arrays, without executing anything it contains.
    In `.h5` files, columns of one value per row (names, frame ids) are read now and the
    others (features, keypoints) lazily, a slice at a time."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist.", "See docs/reproducing.md for the files.")
    if path.stat().st_size == 0:
        raise DataFileError(f"{path} is empty (0 bytes), not a data file.", "Download or copy it again.")
    if path.suffix == ".h5":
        import h5py

        try:
            with h5py.File(path, "r") as f:
                keys = {key: int(np.prod(f[key].shape[1:])) for key in f.keys()}
                small = {key: _decoded(f[key][()]) for key, width in keys.items() if width <= 1}
        except OSError as err:
            raise DataFileError(f"{path} is not a readable HDF5 data file ({err}).") from err
        return {key: small[key] if key in small else H5Column(path, key) for key in keys}
    from joblib import numpy_pickle

    opener = getattr(numpy_pickle, "_validate_fileobject_and_memmap", None) or numpy_pickle._read_fileobject
    try:
        with warnings.catch_warnings(), open(path, "rb") as raw:
            warnings.filterwarnings("ignore", message=".*not compatible with compressed")  # compressed: read whole
            with opener(raw, str(path), "r" if mmap else None) as opened:
                fobj, mode = opened if isinstance(opened, tuple) else (opened, "r" if mmap else None)
                data = _safe_unpickler_class()(str(path), fobj, ensure_native_byte_order=False,
                                               mmap_mode=mode).load()
    except _RunsCode as err:  # a file that would run code: refused as every loader refuses one (exit 4)
        raise CorruptAssetError(f"{path} is not a data file strcli loads ({err}).",
                                "Use TCMR's pre-processed files as released; this one names code to run.") from err
    except EOFError as err:
        raise DataFileError(f"{path} ends too early: it is truncated, not a whole data file.",
                                "Download or copy it again.") from err
    except (pickle.UnpicklingError, ValueError, OSError) as err:
        raise DataFileError(f"{path} is not a readable data file "
                            f"({str(err).strip() or type(err).__name__}).",
                            "Is it one of TCMR's pre-processed files (joblib)?") from err
    except Exception as err:  # garbage makes the unpickler fail in any way (KeyError: 95, struct.error, ...)
        raise DataFileError(f"{path} is not a readable data file (garbage where a pickle should be: "
                            f"{type(err).__name__}: {str(err).strip()[:80]}).",
                            "Is it one of TCMR's pre-processed files (joblib)? Download or copy it again.") from err
    if not isinstance(data, dict):
        raise DataFileError(f"{path} holds a {type(data).__name__}, not a dict of arrays.")
    columns = {}
    for key, value in data.items():
        try:
            array = _decoded(np.asarray(value))
        except (ValueError, TypeError) as err:
            raise DataFileError(f"{path}: column {key!r} is not an array ({err}).") from err
        if not isinstance(key, str) or array.dtype == object:
            raise DataFileError(f"{path}: column {key!r} holds {type(value).__name__} objects, not an array.")
        columns[key] = array
    return columns


def check_columns(db: dict[str, Column], path: Path, shapes: dict[str, tuple[int | None, ...]]) -> None:
    """DataFileError (exit 2) naming the first column of `shapes` (name -> the shape after the
    row axis, None for any size) that is missing, of another shape or row count than
    `vid_name`, or not numeric (names aside)."""
    missing = [k for k in shapes if k not in db]
    if missing:
        raise DataFileError(f"{path} lacks {', '.join(missing)}: not a TCMR/VIBE data file.")
    rows = len(db["vid_name"]) if "vid_name" in db else None
    for key, rest in shapes.items():
        column = db[key]
        shape = tuple(column.shape)
        if rows is not None and shape[:1] != (rows,):
            raise DataFileError(f"{path}: {key} has {shape[0] if shape else 0} rows, vid_name {rows}.")
        if len(shape) != 1 + len(rest) or any(want is not None and got != want for got, want in zip(shape[1:], rest)):
            wanted = ", ".join("N" if w is None else str(w) for w in (None, *rest))
            raise DataFileError(f"{path}: {key} has shape {shape}, expected ({wanted}).")
        dtype = getattr(column, "dtype", None)
        if key != "vid_name" and dtype is not None and not np.issubdtype(dtype, np.number) and dtype != bool:
            raise DataFileError(f"{path}: {key} holds {dtype} values, not numbers.")


def _decoded(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "S":  # h5py gives bytes for strings
        return array.astype(str)
    return array


def video_runs(vid_name: np.ndarray) -> list[tuple[int, int]]:
    """[(start, stop)] of consecutive rows sharing a vid_name, in file order."""
    names = np.asarray(vid_name)
    if len(names) == 0:
        return []
    change = np.flatnonzero(names[1:] != names[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(names)]])
    return list(zip(starts.tolist(), stops.tolist()))


def clip_starts(vid_name: np.ndarray, seqlen: int = SEQLEN, stride: int = 1) -> np.ndarray:
    """Start rows of every clip of `seqlen` rows within one video, every `stride` rows."""
    starts = [np.arange(a, b - seqlen + 1, stride) for a, b in video_runs(vid_name) if b - a >= seqlen]
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)


VIBE_BLOCK = 16  # TCMR's `match_vibe` cut works on blocks of 16 frames whatever the window


def train_clip_starts(vid_name: np.ndarray, seqlen: int = SEQLEN, stride: int = 1) -> np.ndarray:
    """Start rows of TCMR's training windows (`split_into_chunks(vid_names, seqlen, stride,
    is_train=True)` in TCMR's lib/data_utils/_img_utils.py). In each video of n >= seqlen
    consecutive rows: windows of `seqlen` every `stride` rows; when stride < seqlen, those
    ending after the last full 16-frame block are dropped (when a window ends exactly
    there), then seqlen/2 copies of the first window are put before them and
    seqlen/2 - 1 (rounded up: int(seqlen/2 + 0.5) - 1) copies of the last after them.
    With stride 1 a video gives 16 * (n // 16) windows. Videos shorter than seqlen give none."""
    out = []
    for a, b in video_runs(vid_name):
        n = b - a
        if n < seqlen:
            continue
        starts = np.arange(a, b - seqlen + 1, stride)
        if stride != seqlen:
            block_end = a + VIBE_BLOCK * (n // VIBE_BLOCK) - 1  # last row of the last full 16-frame block
            ends = starts + seqlen - 1
            if n >= VIBE_BLOCK and (ends == block_end).any():
                starts = starts[ends <= block_end]
            before, after = seqlen // 2, int(seqlen / 2 + 0.5) - 1
            starts = np.concatenate([np.full(before, starts[0]), starts, np.full(after, starts[-1])])
        out.append(starts)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def stride_for(overlap: float, seqlen: int = SEQLEN) -> int:
    """TCMR's window stride for an overlap fraction."""
    return max(1, int(seqlen * (1 - overlap) + 0.5))


def normalise_crop_keypoints(kp: np.ndarray, crop: int = CROP_SIZE) -> np.ndarray:
    """(..., J, 3) pixels of the square crop + confidence -> [-1, 1], confidence kept."""
    out = np.array(kp, np.float32, copy=True)
    out[..., :2] = 2 * out[..., :2] / crop - 1
    return out


def keypoint_names(name: str, joints: int, path: Path) -> Sequence[str]:
    """The names of the `joints` 2D keypoints of data set `name`, checked against its layout."""
    names = KEYPOINTS_2D.get(name, SPIN_49)
    if joints != len(names):
        raise DataFileError(f"{path}: joints2D has {joints} joints; {name} files have {len(names)}.",
                                "Is the file from TCMR's/VIBE's pre-processing of this data set?")
    return names


def normalise_keypoints(kp: np.ndarray, bbox: np.ndarray) -> np.ndarray:
    """(..., J, 3) pixels + confidence, (..., 4) [cx, cy, w, h] -> coordinates in the
    [-1, 1] frame of the 224 px crop of the box enlarged by 1.2, confidence kept."""
    out = np.array(kp, np.float32, copy=True)
    centre, size = bbox[..., None, :2], bbox[..., None, 2:4] * CROP_SCALE
    out[..., :2] = 2 * (out[..., :2] - centre) / size
    return out


def to_spin49(kp: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(..., J, C) joints named `names` -> (..., 49, C) in SPIN's order, zeros elsewhere."""
    out = np.zeros(kp.shape[:-2] + (49, kp.shape[-1]), np.float32)
    for j, name in enumerate(names):
        out[..., SPIN_49.index(name), :] = kp[..., j, :]
    return out


@dataclass(frozen=True)
class Clip:
    """T frames of one person (or a batch of them: a leading B on every field)."""

    features: Tensor  # (T, 2048)
    kp2d: Tensor  # (T, 49, 3) crop-normalised x, y and confidence (0 = not labelled)
    kp3d: Tensor  # (T, 49, 3) metres, camera frame (zeros where w_3d is 0)
    pose: Tensor  # (T, 72) axis-angle (zeros where w_smpl is 0)
    shape: Tensor  # (T, 10)
    w_3d: Tensor  # (T,) 1 where 3D joints are labelled
    w_smpl: Tensor  # (T,) 1 where SMPL pose and shape are labelled

    @staticmethod
    def collate(clips: Sequence[Clip]) -> Clip:
        return Clip(*(torch.stack([getattr(c, f) for c in clips]) for f in Clip.__dataclass_fields__))

    def to(self, device: torch.device) -> Clip:
        return Clip(*(getattr(self, f).to(device, non_blocking=True) for f in Clip.__dataclass_fields__))

    @staticmethod
    def cat(clips: Sequence[Clip]) -> Clip:
        return Clip(*(torch.cat([getattr(c, f) for c in clips]) for f in Clip.__dataclass_fields__))


class ClipDataset(Dataset[Clip]):
    """Training clips of one data set (3D or 2D) in the layout above."""

    def __init__(self, name: str, path: Path, seqlen: int = SEQLEN, stride: int = 1, smpl: bool | None = None) -> None:
        """`smpl`: whether the file's SMPL pose and shape are used as labels (default: the
        data set's `HAS_SMPL`); the trainer passes False for Human3.6M unless --h36m-smpl."""
        self.name, self.path, self.seqlen = name, path, seqlen
        self.db = load_db(path)
        self.crop_keypoints = name in CROP_KEYPOINTS
        shapes: dict[str, tuple[int | None, ...]] = {"vid_name": (), "features": (FEATURE_DIM,),
                                                     "joints2D": (None, None)}
        if not self.crop_keypoints:
            shapes["bbox"] = (None,)
        check_columns(self.db, path, shapes)
        self.has_3d = name in THREE_D and "joints3D" in self.db
        self.has_smpl = (HAS_SMPL.get(name, False) if smpl is None else smpl) and "pose" in self.db
        self.starts = train_clip_starts(np.asarray(self.db["vid_name"]), seqlen, stride)
        self.kp2d_names = keypoint_names(name, self.db["joints2D"].shape[1], path)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> Clip:
        rows = slice(int(self.starts[index]), int(self.starts[index]) + self.seqlen)
        t = self.seqlen
        raw = np.asarray(self.db["joints2D"][rows], np.float32)
        kp2d = (normalise_crop_keypoints(raw) if self.crop_keypoints
                else normalise_keypoints(raw, np.asarray(self.db["bbox"][rows], np.float32)))
        if self.kp2d_names != SPIN_49:
            kp2d = to_spin49(kp2d, self.kp2d_names)
        kp3d = np.zeros((t, 49, 3), np.float32)
        if self.has_3d:
            joints = np.asarray(self.db["joints3D"][rows], np.float32)
            kp3d = joints.copy() if joints.shape[1] == 49 else to_spin49(joints, _names_for(joints.shape[1]))
        pose = np.array(self.db["pose"][rows], np.float32) if self.has_smpl else np.zeros((t, 72), np.float32)
        shape = np.array(self.db["shape"][rows], np.float32) if self.has_smpl else np.zeros((t, 10), np.float32)
        return Clip(features=torch.from_numpy(np.array(self.db["features"][rows], np.float32)),
                    kp2d=torch.from_numpy(kp2d), kp3d=torch.from_numpy(kp3d), pose=torch.from_numpy(pose),
                    shape=torch.from_numpy(shape), w_3d=torch.full((t,), float(self.has_3d)),
                    w_smpl=torch.full((t,), float(self.has_smpl)))


def _names_for(joints: int) -> Sequence[str]:
    if joints == 14:
        return LSP_14
    if joints == 17:
        return MPII3D_17
    raise DataFileError(f"joints3D with {joints} joints: expected 49 (SPIN), 17 or 14.")


@dataclass(frozen=True)
class EvalVideo:
    """One test video: every frame, for the protocol's stride-1 windows."""

    name: str
    features: Tensor  # (N, 2048)
    joints3d: np.ndarray  # (N, J, 3) metres: 14 LSP joints, or 17 MPI-INF-3DHP joints
    pose: np.ndarray | None  # (N, 72) for the MPVPE of 3DPW, else None
    shape: np.ndarray | None  # (N, 10)
    valid: np.ndarray  # (N,) bool: frames that count


def eval_videos(name: str, path: Path) -> list[EvalVideo]:
    """The test videos of a data set, as TCMR's evaluate.py reads them: the rows of each
    distinct `vid_name` (wherever they lie in the file), less the rows whose `valid` is 0;
    MPI-INF-3DHP's `valid_i` marks the frames that count. Sequences too short for a window
    are returned too: `score_dataset` skips and counts them."""
    db = load_db(path)
    check_columns(db, path, {"vid_name": (), "features": (FEATURE_DIM,), "joints3D": (None, 3)})
    videos = []
    names = np.asarray(db["vid_name"])
    keep = np.asarray(db["valid"]).astype(bool).reshape(-1) if "valid" in db else np.ones(len(names), bool)
    _, first, inverse = np.unique(names, return_index=True, return_inverse=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")  # rows grouped by name, file order within
    groups = np.split(order, np.cumsum(np.bincount(inverse.reshape(-1)))[:-1])
    for group in np.argsort(first, kind="stable"):  # names in file order of first appearance
        rows = groups[group][keep[groups[group]]]
        if len(rows) == 0:
            continue
        joints = np.asarray(db["joints3D"][rows], np.float32)
        if joints.shape[1] == 49:  # stored in SPIN's order: cut to the set this data set is scored on
            joints = joints[:, list(SPIN_TO_MPII3D17 if name == "mpii3d" else SPIN_TO_LSP14)]
        counts = np.ones(len(rows), bool)
        if name == "mpii3d" and "valid_i" in db:
            counts = np.asarray(db["valid_i"][rows]).reshape(len(rows), -1)[:, 0].astype(bool)
        smpl = name == "3dpw" and "pose" in db
        video = str(names[first[group]])
        features = np.asarray(db["features"][rows], np.float32)
        pose = np.asarray(db["pose"][rows], np.float32) if smpl else None
        shape = np.asarray(db["shape"][rows], np.float32) if smpl else None
        for column, values in (("features", features), ("joints3D", joints), ("pose", pose), ("shape", shape)):
            if values is not None and not np.isfinite(values).all():  # else a NaN score, or the network blamed
                raise DataFileError(f"{path}: {column} of sequence {video} holds NaN or infinite values.",
                                    "The file is damaged: download or copy it again.")
        videos.append(EvalVideo(video, torch.from_numpy(features), joints, pose, shape, counts))
    return videos
