"""One check of a reconstruct output folder, shared by every command that reads one
(`render`, `export`, `view`, and `reconstruct` before it skips a video as done).

A folder `strcli reconstruct` wrote holds `manifest.json` and, per track (and per model of
`--model str,tcmr` under `models/<name>/`), `tracks/<id>.npz` with the arrays of README
"Outputs". A folder changed or damaged since (a NaN pose, a focal of 0, a short
`body_pose`, a manifest whose frame counts disagree with its files) would be drawn wrong
without a word or end in a traceback far away; `check_output` reads the whole folder once
and refuses it with one line (UsageError, exit 2, the "damaged strcli output" line of
`strcli.road.outputs.reading_output`). numpy only: no torch.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from strcli.config import MANIFEST, SMPL_BETAS, SMPL_BODY_JOINTS, SMPL_JOINTS
from strcli.utils.errors import UsageError

REDO_HINT = "Reconstruct its video again with `strcli reconstruct VIDEO -o OUT --overwrite`."

# Bounds no real result comes near; a value past them is damage, not a pose (it would
# also overflow the float32 of the renderers). Axis-angle from a rotation matrix is <= pi.
MAX_ROTATION = 4 * math.pi  # radians, |axis-angle|
MAX_BETA = 100.0  # SMPL shape coefficients, in standard deviations (real ones: a few)
MAX_TRANSLATION = 1e5  # metres
MAX_PIXELS = 1e8  # 2D joints and boxes, pixels

# Each array of tracks/<id>.npz: its shape (N = the track's frames) and whether it must be there.
_ARRAYS: dict[str, tuple[tuple[int | str, ...], bool]] = {
    "frames": (("N",), True), "times": (("N",), True),
    "global_orient": (("N", 3), True), "body_pose": (("N", SMPL_BODY_JOINTS * 3), True),
    "betas": (("N", SMPL_BETAS), True), "transl": (("N", 3), True), "joints2d": (("N", SMPL_JOINTS, 2), True),
    "intrinsics": ((3, 3), True), "fps": ((), True), "image_size": ((2,), True), "track_id": ((), True),
    "joints3d": (("N", SMPL_JOINTS, 3), False), "cam_crop": (("N", 3), False), "boxes": (("N", 4), False),
    "box_scores": (("N",), False), "box_interpolated": (("N",), False),
    "world_body_pose": (("N", SMPL_BODY_JOINTS * 3), False),  # --foot-lock's corrected legs (docs/world.md)
}
_ROTATIONS = ("global_orient", "body_pose", "world_body_pose")  # axis-angle: bounded per joint
_BOUNDS = {"global_orient": MAX_ROTATION, "body_pose": MAX_ROTATION, "world_body_pose": MAX_ROTATION,
           "betas": MAX_BETA, "transl": MAX_TRANSLATION,
           "joints3d": MAX_TRANSLATION, "joints2d": MAX_PIXELS, "boxes": MAX_PIXELS}


class DamagedOutput(UsageError):
    """A reconstruct output folder whose files are damaged (exit 2)."""


@dataclass(frozen=True)
class CheckedOutput:
    """A folder that passed `check_output`: its manifest, and every track file it names
    (the first model's, then each other model's under models/<name>/), checked."""

    folder: Path
    manifest: dict[str, Any]
    track_files: tuple[Path, ...]


def damaged(folder: Path, what: str) -> DamagedOutput:
    return DamagedOutput(f"{folder} is a damaged strcli output ({what}).", REDO_HINT)


def check_output(folder: Path) -> CheckedOutput:
    """Read `folder`'s manifest and every track file it names, and check them: types and
    shapes (N frames per track), finite values within sane bounds, a positive focal length
    and image size, frame indices increasing, the frame counts of the manifest equal to its
    files'. Raises DamagedOutput (a UsageError, exit 2) naming the first problem."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError as err:
        raise UsageError(f"{folder} has no {MANIFEST}: is it an output of `strcli reconstruct`?",
                         "Pass one video's folder, OUT/<video-stem>.") from err
    except (OSError, ValueError) as err:
        raise damaged(folder, f"{MANIFEST} is not readable JSON: {str(err)[:120]}") from err
    if not isinstance(manifest, dict):
        raise damaged(folder, f"{MANIFEST} holds a {type(manifest).__name__}, not an object")
    size = _check_manifest(folder, manifest)
    files: list[Path] = []
    sets = [(".", manifest["tracks"])] + [(m["folder"], m["tracks"]) for m in manifest.get("models") or []]
    for place, tracks in sets:
        for entry in tracks:
            path = _inside(folder, place, entry["npz"])
            _check_track(folder, path, entry, size)
            files.append(path)
    return CheckedOutput(folder, manifest, tuple(files))


def _check_manifest(folder: Path, manifest: dict[str, Any]) -> tuple[int, int]:
    """The manifest's own fields that the readers use; returns the image (width, height)."""
    def need(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        value = mapping.get(key) if isinstance(mapping, Mapping) else None
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in _tuple(kind):
            raise damaged(folder, f"{MANIFEST}: {where}{key} is {_shown(value)}, not {_kind_name(kind)}")
        return value

    for key in ("input", "video", "options", "intrinsics", "counts"):
        need(manifest, key, dict, "")
    need(manifest["input"], "path", str, "input.")
    cam = manifest["intrinsics"]
    focal = need(cam, "focal", (int, float), "intrinsics.")
    if not math.isfinite(focal) or focal <= 0:
        raise damaged(folder, f"{MANIFEST}: the focal length is {focal}, not a positive number of pixels")
    width, height = need(cam, "width", int, "intrinsics."), need(cam, "height", int, "intrinsics.")
    if width <= 0 or height <= 0:
        raise damaged(folder, f"{MANIFEST}: the image size is {width}x{height}")
    stride = manifest["options"].get("stride", 1)
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise damaged(folder, f"{MANIFEST}: options.stride is {_shown(stride)}, not a whole number >= 1")
    processed = need(manifest["counts"], "frames_processed", int, "counts.")
    if processed < 0:
        raise damaged(folder, f"{MANIFEST}: counts.frames_processed is {processed}")
    fps = manifest["video"].get("fps")
    if fps is not None and (not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0):
        raise damaged(folder, f"{MANIFEST}: video.fps is {_shown(fps)}, not a positive number")
    _check_track_list(folder, manifest.get("tracks"), "tracks")
    models = manifest.get("models") or []
    if not isinstance(models, list):
        raise damaged(folder, f"{MANIFEST}: models is {_shown(models)}, not a list")
    for k, model in enumerate(models):
        need(model, "name", str, f"models[{k}].")
        need(model, "folder", str, f"models[{k}].")
        _check_track_list(folder, model.get("tracks"), f"models[{k}].tracks")
    return width, height


def _check_track_list(folder: Path, tracks: Any, where: str) -> None:
    if not isinstance(tracks, list):
        raise damaged(folder, f"{MANIFEST}: {where} is {_shown(tracks)}, not a list")
    for k, entry in enumerate(tracks):
        if not isinstance(entry, dict):
            raise damaged(folder, f"{MANIFEST}: {where}[{k}] is {_shown(entry)}, not an object")
        for key, kind in (("npz", str), ("track_id", int), ("frames", int)):
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                raise damaged(folder, f"{MANIFEST}: {where}[{k}].{key} is {_shown(entry.get(key))}")


def _inside(folder: Path, place: str, relative: str) -> Path:
    """`folder/place/relative`, refused when it leaves the folder (a manifest is no licence
    to read elsewhere)."""
    path = folder / place / relative
    if Path(place).is_absolute() or Path(relative).is_absolute() or ".." in Path(place, relative).parts:
        raise damaged(folder, f"{MANIFEST} names a track file outside the folder: {Path(place, relative)}")
    return path


def _check_track(folder: Path, path: Path, entry: dict[str, Any], size: tuple[int, int]) -> None:
    """One tracks/<id>.npz against the shapes of `_ARRAYS`, its bounds and its manifest entry."""
    name = path.relative_to(folder)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files if key in _ARRAYS}
    except FileNotFoundError as err:
        raise damaged(folder, f"{name} is missing") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise damaged(folder, f"{name} is not a readable .npz: {str(err)[:120]}") from err
    missing = [key for key, (_, required) in _ARRAYS.items() if required and key not in arrays]
    if missing:
        raise damaged(folder, f"{name} lacks {', '.join(missing)}")
    frames = arrays["frames"]
    n = frames.shape[0] if frames.ndim == 1 else -1
    for key, value in arrays.items():
        shape = tuple(n if d == "N" else d for d in _ARRAYS[key][0])
        if value.shape != shape:
            raise damaged(folder, f"{name}: {key} has shape {value.shape}, expected {shape}")
        if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
            raise damaged(folder, f"{name}: {key} holds {value.dtype} values, not numbers")
        if np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
            bad = int(np.count_nonzero(~np.isfinite(value)))
            raise damaged(folder, f"{name}: {key} holds {bad} NaN or infinite value(s)")
    if n == 0:
        raise damaged(folder, f"{name} holds no frames")
    if n != entry["frames"]:
        raise damaged(folder, f"{name} holds {n} frames, {MANIFEST} says {entry['frames']}")
    if int(arrays["track_id"]) != entry["track_id"]:
        raise damaged(folder, f"{name} is track {int(arrays['track_id'])}, {MANIFEST} says {entry['track_id']}")
    if not np.issubdtype(frames.dtype, np.integer) or frames.min() < 0 or (np.diff(frames) <= 0).any():
        raise damaged(folder, f"{name}: its frame indices are not increasing whole numbers >= 0")
    for key, bound in _BOUNDS.items():
        if key in arrays:
            value = arrays[key]
            largest = float(np.abs(value).max()) if key not in _ROTATIONS else \
                float(np.linalg.norm(value.reshape(n, -1, 3), axis=-1).max())
            if largest > bound:
                raise damaged(folder, f"{name}: {key} reaches {largest:.3g}, past any real value ({bound:.3g})")
    k = arrays["intrinsics"]
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise damaged(folder, f"{name}: the focal length is {float(k[0, 0]):g}, not a positive number of pixels")
    if float(arrays["fps"]) <= 0:
        raise damaged(folder, f"{name}: fps is {float(arrays['fps']):g}")
    if tuple(int(v) for v in arrays["image_size"]) != size:
        raise damaged(folder, f"{name}: image size {tuple(int(v) for v in arrays['image_size'])}, "
                              f"{MANIFEST} says {size}")


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", str: "a string", int: "a whole number", float: "a number", list: "a list"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _tuple(kind)))


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
