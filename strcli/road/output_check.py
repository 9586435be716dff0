"""One check of a reconstruct output folder, shared by every command that reads one
(`render`, `export`, `view`, and `reconstruct` before it skips a video as done).

A folder `strcli reconstruct` wrote holds `manifest.json` and, per track (and per model of
`--model str,tcmr` under `models/<name>/`), `tracks/<id>.npz` with the arrays of README
"Outputs". A folder changed or damaged since (a NaN pose, a focal of 0, a short
`body_pose`, a manifest whose frame counts disagree with its files) would be drawn wrong
without a word or end in a traceback far away; `check_output` reads the whole folder once
and refuses it with one line (UsageError, exit 2, the "damaged strcli output" line of
`strcli.road.outputs.reading_output`). numpy only: no torch.

Size (over 500 lines): one check of every file of a folder (manifest, tracks, camera.npz)
and its few number helpers, kept in one place so that every reader relies on the same one.
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

from strcli.config import (
    CAMERA_FILE,
    CAMERA_MODELS,
    MANIFEST,
    SMPL_BETAS,
    SMPL_BODY_JOINTS,
    SMPL_JOINTS,
)
from strcli.road.grounding import DEPTH_FACTOR_RANGE, FOOT_JOINTS, GROUNDINGS
from strcli.utils.errors import UsageError

REDO_HINT = "Reconstruct its video again with `strcli reconstruct VIDEO -o OUT --overwrite`."

# Bounds no real result comes near; a value past them is damage, not a pose (it would
# also overflow the float32 of the renderers). Axis-angle from a rotation matrix is <= pi.
MAX_ROTATION = 4 * math.pi  # radians, |axis-angle|
MAX_BETA = 100.0  # SMPL shape coefficients, in standard deviations (real ones: a few)
MAX_TRANSLATION = 1e5  # metres
MAX_PIXELS = 1e8  # 2D joints and boxes, pixels
MAX_WHOLE = 2**53  # the manifest's whole numbers (frames, sizes, ids): exact as a float

# Each array of tracks/<id>.npz: its shape (N = the track's frames) and whether it must be there.
_ARRAYS: dict[str, tuple[tuple[int | str, ...], bool]] = {
    "frames": (("N",), True), "times": (("N",), True),
    "global_orient": (("N", 3), True), "body_pose": (("N", SMPL_BODY_JOINTS * 3), True),
    "betas": (("N", SMPL_BETAS), True), "transl": (("N", 3), True), "joints2d": (("N", SMPL_JOINTS, 2), True),
    "intrinsics": ((3, 3), True), "fps": ((), True), "image_size": ((2,), True), "track_id": ((), True),
    "joints3d": (("N", SMPL_JOINTS, 3), False), "cam_crop": (("N", 3), False), "boxes": (("N", 4), False),
    "box_scores": (("N",), False), "box_interpolated": (("N",), False),
    "world_body_pose": (("N", SMPL_BODY_JOINTS * 3), False),  # --foot-lock's corrected legs (docs/world.md)
    # The world keys (docs/world.md "What is written"): all four or none (`_check_world`).
    "world_global_orient": (("N", 3), False), "world_transl": (("N", 3), False),
    "world_joints3d": (("N", SMPL_JOINTS, 3), False), "foot_contacts": (("N", len(FOOT_JOINTS)), False),
    # How the track's height was set (docs/world.md): absent from folders written before it.
    "world_grounding": ((), False), "world_depth_factor": ((), False),
}
_TRACK_TEXT = ("world_grounding",)  # text, not numbers
_TRACK_INTEGERS = ("frames", "image_size", "track_id")  # whole numbers; the rest are floats but:
_TRACK_BOOLS = {"foot_contacts": (bool,), "box_interpolated": (bool, np.integer)}  # true/false (or 0/1)
WORLD_KEYS = ("world_global_orient", "world_transl", "world_joints3d", "foot_contacts")
_ROTATIONS = ("global_orient", "body_pose", "world_body_pose", "world_global_orient")  # axis-angle: bounded per joint
_BOUNDS = {"global_orient": MAX_ROTATION, "body_pose": MAX_ROTATION, "world_body_pose": MAX_ROTATION,
           "world_global_orient": MAX_ROTATION, "betas": MAX_BETA, "transl": MAX_TRANSLATION,
           "world_transl": MAX_TRANSLATION, "world_joints3d": MAX_TRANSLATION,
           "joints3d": MAX_TRANSLATION, "joints2d": MAX_PIXELS, "boxes": MAX_PIXELS}
ROTATION_TOLERANCE = 1e-3  # |det - 1| and |R^T R - I|: float64 rotations are exact to ~1e-12
# camera.npz (docs/world.md "What is written"), P = processed frames: shape, required.
_CAMERA: dict[str, tuple[tuple[int | str, ...], bool]] = {
    "rotation": (("P", 3, 3), True), "position": (("P", 3), True), "frames": (("P",), True),
    "times": (("P",), True), "intrinsics": ((3, 3), True), "image_size": ((2,), True),
    "model": ((), True), "frame": ((), True), "requested": ((), False),
    "relative_rotation": (("P", 3, 3), False), "relative_position": (("P", 3), False),
    "scale_source": ((), False), "camera_height": ((), False), "world_axes": ((3, 3), False),
    "world_origin": ((3,), False), "floor_source": ((), False),
}
_CAMERA_TEXT = ("model", "frame", "requested", "scale_source", "floor_source")
_CAMERA_NAN = ("camera_height",)  # NaN: no camera height (not a moving camera); never infinite
_CAMERA_INTEGERS = ("frames", "image_size")
_CAMERA_MODEL_KEYS = ("model", "requested")  # one of CAMERA_MODELS

# The manifest fields a reader may find absent (a folder of an older strcli) and the value
# it then means: `check_output` returns the manifest with them filled in, so the readers
# (render, export, view) index it and hold no default of their own.
MANIFEST_DEFAULTS: dict[str, dict[str, Any]] = {
    "options": {"stride": 1},
    "video": {"fps": None, "width": None, "height": None, "frames_in_file": None, "duration": None,
              "rotation": 0, "mirrored": False, "path": None},
    "counts": {"timestamps_mended": 0},
}
DEPTH_FACTOR_DIGITS = 4  # the manifest's `depth_factor`: the track file's, rounded (strcli.road.outputs)


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


def check_manifest(folder: Path) -> tuple[dict[str, Any], tuple[int, int]]:
    """`folder`'s manifest.json, checked (every field a reader uses: `check_output`'s first
    part, without the track files), with the defaults of `MANIFEST_DEFAULTS`; and the video's
    (width, height). Raises UsageError (exit 2) when there is no manifest, DamagedOutput
    (exit 2) naming the first problem."""
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
    return _with_defaults(manifest), size


def readable_outputs(folders: list[Path]) -> tuple[list[Path], list[UsageError]]:
    """The `folders` whose manifest passes `check_manifest`, and the error of each other one.
    `render`, `export` and `view` run it before they look for the SMPL file, which they find
    through the manifests: a damaged manifest is reported as such, never as a missing SMPL
    file."""
    good, errors = [], []
    for folder in folders:
        try:
            check_manifest(folder)
        except UsageError as err:
            errors.append(err)
        else:
            good.append(folder)
    return good, errors


def check_output(folder: Path) -> CheckedOutput:
    """Read `folder`'s manifest and every track file it names, and check them: types and
    shapes (N frames per track), finite values within sane bounds, a positive focal length
    and image size, frame indices increasing, the frame counts of the manifest equal to its
    files'. Raises DamagedOutput (a UsageError, exit 2) naming the first problem."""
    manifest, size = check_manifest(folder)
    files: list[Path] = []
    frames: list[np.ndarray] = []
    sets = [(".", manifest["tracks"])] + [(m["folder"], m["tracks"]) for m in manifest.get("models") or []]
    for place, tracks in sets:
        for entry in tracks:
            path = _inside(folder, place, entry["npz"])
            arrays = _check_track(folder, path, entry, size)
            _check_world_keys(folder, path, arrays, "world" in manifest)
            _check_recorded_grounding(folder, path, arrays, entry)
            files.append(path)
            frames.append(arrays["frames"])
    if "world" in manifest:
        _check_camera(folder, manifest, np.concatenate(frames) if frames else np.zeros(0, np.int64))
    return CheckedOutput(folder, manifest, tuple(files))


def _check_world_keys(folder: Path, path: Path, arrays: dict[str, np.ndarray], world: bool) -> None:
    """A track's world keys (shapes, finite values and bounds: `_check_track`): all of
    `WORLD_KEYS` when the manifest records a world (its `world` section), none when it does
    not (a folder of a strcli older than the world stage); floats, and bool contacts."""
    name = path.relative_to(folder)
    present = [key for key in WORLD_KEYS if key in arrays]
    if world and len(present) < len(WORLD_KEYS):
        lacking = ", ".join(key for key in WORLD_KEYS if key not in arrays)
        raise damaged(folder, f"{name} lacks {lacking}, though {MANIFEST} records a world")
    if not world and (present or any(key in arrays for key in ("world_body_pose",) + _GROUNDING_KEYS)):
        raise damaged(folder, f"{name} holds world keys, though {MANIFEST} records no world (no `world` section)")
    _check_grounding(folder, name, arrays)


_GROUNDING_KEYS = ("world_grounding", "world_depth_factor")


def _check_grounding(folder: Path, name: Path, arrays: dict[str, np.ndarray]) -> None:
    """world_grounding and world_depth_factor (docs/world.md), both or neither (a folder written before
    them has neither): a method of GROUNDINGS, and a factor that is 1 unless the method is
    "ray", within DEPTH_FACTOR_RANGE (their types: `_check_track`)."""
    present = [key for key in _GROUNDING_KEYS if key in arrays]
    if len(present) == 1:
        lacking = next(key for key in _GROUNDING_KEYS if key not in arrays)
        raise damaged(folder, f"{name} holds {present[0]} without {lacking}")
    if not present:
        return
    method, factor = str(arrays["world_grounding"]), float(arrays["world_depth_factor"])
    if method not in GROUNDINGS:
        raise damaged(folder, f"{name}: world_grounding is {_shown(method)}, not one of {', '.join(GROUNDINGS)}")
    low, high = DEPTH_FACTOR_RANGE
    if not low <= factor <= high or method != "ray" and factor != 1.0:
        raise damaged(folder, f"{name}: world_depth_factor is {factor:g} for world_grounding {_shown(method)} "
                              f"(1 unless \"ray\", then within {low:g}-{high:g})")


def _check_recorded_grounding(folder: Path, path: Path, arrays: dict[str, np.ndarray], entry: dict[str, Any]) -> None:
    """The manifest entry's `grounding` and `depth_factor` (docs/world.md; their types:
    `_check_track_list`) against the track file's world_grounding and its world_depth_factor
    rounded to DEPTH_FACTOR_DIGITS. Absent or null in the manifest, or absent from the file
    (folders written before them, a track without a world), there is nothing to compare."""
    if "world_grounding" not in arrays:  # `_check_grounding`: then world_depth_factor is absent too
        return
    name = path.relative_to(folder)
    recorded, written = entry.get("grounding"), str(arrays["world_grounding"])
    if recorded is not None and recorded != written:
        raise damaged(folder, f"{MANIFEST}: the grounding of {name} is {_shown(recorded)}, "
                              f"but the file's world_grounding is {_shown(written)}")
    factor = entry.get("depth_factor")
    written_factor = float(arrays["world_depth_factor"])
    if factor is not None and abs(factor - round(written_factor, DEPTH_FACTOR_DIGITS)) > 10.0 ** -DEPTH_FACTOR_DIGITS:
        raise damaged(folder, f"{MANIFEST}: the depth_factor of {name} is {factor:g}, "
                              f"but the file's world_depth_factor is {written_factor:g}")


def _with_defaults(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` with the absent fields of MANIFEST_DEFAULTS filled in (a copy)."""
    filled = dict(manifest)
    for section, defaults in MANIFEST_DEFAULTS.items():
        filled[section] = {**defaults, **manifest[section]}
    return filled


def _check_camera(folder: Path, manifest: dict[str, Any], track_frames: np.ndarray) -> None:
    """camera.npz of a folder whose manifest records a world: a readable file of the keys of
    docs/world.md, P rows (the manifest's processed frames), sorted frames that hold every
    track frame, the manifest's image size and intrinsics, finite values within bounds, and
    proper rotations (determinant +1 and orthonormal, within `ROTATION_TOLERANCE`)."""
    section = manifest["world"]
    if not isinstance(section, dict):
        raise damaged(folder, f"{MANIFEST}: world is {_shown(section)}, not an object")
    if section.get("camera_file", CAMERA_FILE) != CAMERA_FILE:
        raise damaged(folder, f"{MANIFEST}: world.camera_file is {_shown(section.get('camera_file'))}, "
                              f"not \"{CAMERA_FILE}\"")
    path = folder / CAMERA_FILE
    if not path.is_file():
        what = "is missing" if not path.exists() and not path.is_symlink() else "is not a file"
        raise damaged(folder, f"{CAMERA_FILE} {what}, though {MANIFEST} records a world")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files if key in _CAMERA}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise damaged(folder, f"{CAMERA_FILE} is not a readable .npz: {str(err)[:120] or 'it is empty'}") from err
    p = _check_layout(folder, CAMERA_FILE, arrays, _CAMERA, "rotation", "P", _CAMERA_TEXT)
    for key, value in arrays.items():
        if key in _CAMERA_TEXT:
            if key in _CAMERA_MODEL_KEYS and str(value) not in CAMERA_MODELS:
                raise damaged(folder, f"{CAMERA_FILE}: {key} is {_shown(str(value))}, "
                                      f"not one of {', '.join(CAMERA_MODELS)}")
            continue
        _check_numbers(folder, CAMERA_FILE, key, value, (np.integer,) if key in _CAMERA_INTEGERS else (np.floating,),
                       nan=key in _CAMERA_NAN)
    processed = manifest["counts"]["frames_processed"]
    if p != processed:
        raise damaged(folder, f"{CAMERA_FILE} holds {p} frames, {MANIFEST} says {processed} were processed")
    frames = arrays["frames"]
    if p and (frames.min() < 0 or (np.diff(frames) <= 0).any()):
        raise damaged(folder, f"{CAMERA_FILE}: its frame indices are not increasing whole numbers >= 0")
    _check_times(folder, CAMERA_FILE, arrays["times"])
    absent = np.setdiff1d(track_frames, frames)
    if absent.size:
        raise damaged(folder, f"{CAMERA_FILE} has no row for frame {int(absent[0])} of the tracks "
                              f"({absent.size} frame(s) absent): another video's camera?")
    cam = manifest["intrinsics"]
    size = (cam["width"], cam["height"])
    if tuple(int(v) for v in arrays["image_size"]) != size:
        raise damaged(folder, f"{CAMERA_FILE}: image size {tuple(int(v) for v in arrays['image_size'])}, "
                              f"{MANIFEST} says {size}")
    matrix = cam.get("matrix")  # checked by `_check_manifest`: None or 3x3 numbers
    expected = np.asarray(matrix, np.float64) if matrix is not None else \
        np.array([[cam["focal"], 0, size[0] / 2], [0, cam["focal"], size[1] / 2], [0, 0, 1]], np.float64)
    if not np.allclose(arrays["intrinsics"], expected, rtol=1e-5, atol=1e-3):
        raise damaged(folder, f"{CAMERA_FILE}: its intrinsics (focal {float(arrays['intrinsics'][0, 0]):.6g}) "
                              f"differ from {MANIFEST}'s (focal {float(expected[0, 0]):.6g})")
    for key in ("position", "relative_position", "world_origin"):
        if key in arrays and p and float(np.abs(arrays[key]).max(initial=0)) > MAX_TRANSLATION:
            largest = float(np.abs(arrays[key]).max())
            raise damaged(folder, f"{CAMERA_FILE}: {key} reaches {largest:.3g}, past any real value "
                                  f"({MAX_TRANSLATION:.3g})")
    for key in ("rotation", "relative_rotation", "world_axes"):
        if key in arrays:
            _check_rotations(folder, key, arrays[key].reshape(-1, 3, 3))
    if manifest["tracks"] and str(arrays["frame"]) != "world":
        raise damaged(folder, f"{CAMERA_FILE}: its frame is {_shown(str(arrays['frame']))}, not \"world\", "
                              "though the tracks are in a world")


def _check_rotations(folder: Path, key: str, mats: np.ndarray) -> None:
    """(K, 3, 3) matrices that must be rotations: determinant +1 and R^T R = I within
    `ROTATION_TOLERANCE` (a reflection or a scaled matrix is not a camera's turn)."""
    if not len(mats):
        return
    det = np.linalg.det(mats)
    gram = np.abs(np.swapaxes(mats, 1, 2) @ mats - np.eye(3)).max(axis=(1, 2))
    bad = np.flatnonzero((np.abs(det - 1) > ROTATION_TOLERANCE) | (gram > ROTATION_TOLERANCE))
    if bad.size:
        k = int(bad[0])
        what = f"determinant {det[k]:.2f}" if abs(det[k] - 1) > ROTATION_TOLERANCE else \
            f"not orthonormal: R^T R differs from I by {gram[k]:.2g}"
        index = f" {k}" if mats.shape[0] > 1 else ""
        more = f"; {bad.size} of {len(mats)} are not" if bad.size > 1 else ""
        raise damaged(folder, f"{CAMERA_FILE}: {key}{index} is not a rotation ({what}{more})")


def _check_manifest(folder: Path, manifest: dict[str, Any]) -> tuple[int, int]:
    """Every field of the manifest a reader uses (render, export, view: `input`, `options`,
    `intrinsics`, `counts`, `video`, the track lists); those of MANIFEST_DEFAULTS may be
    absent. Returns the image (width, height)."""
    def need(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        value = mapping.get(key) if isinstance(mapping, Mapping) else None
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in _tuple(kind):
            raise damaged(folder, f"{MANIFEST}: {where}{key} is {_shown(value)}, not {_kind_name(kind)}")
        return value

    for key in ("input", "video", "options", "intrinsics", "counts"):
        need(manifest, key, dict, "")
    need(manifest["input"], "path", str, "input.")
    cam = manifest["intrinsics"]
    _json_number(folder, cam.get("focal"), "the focal length", "a positive number of pixels")
    width = _json_int(folder, cam.get("width"), "intrinsics.width", 1)
    height = _json_int(folder, cam.get("height"), "intrinsics.height", 1)
    if cam.get("matrix") is not None:
        matrix = cam["matrix"]
        if not isinstance(matrix, list) or len(matrix) != 3 or \
                any(not isinstance(row, list) or len(row) != 3 for row in matrix):
            raise damaged(folder, f"{MANIFEST}: intrinsics.matrix is {_shown(matrix)}, not 3x3 numbers")
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                _json_number(folder, value, f"intrinsics.matrix[{i}][{j}]", "a number", positive=False)
    options = {**MANIFEST_DEFAULTS["options"], **manifest["options"]}
    _json_int(folder, options["stride"], "options.stride", 1)
    start = _json_int(folder, options.get("start_frame"), "options.start_frame")
    if "end_frame" not in options:  # null: to the video's end
        raise damaged(folder, f"{MANIFEST}: options lacks end_frame")
    if options["end_frame"] is not None:
        _json_int(folder, options["end_frame"], "options.end_frame", start + 1)
    counts = {**MANIFEST_DEFAULTS["counts"], **manifest["counts"]}
    _json_int(folder, counts.get("frames_processed"), "counts.frames_processed")
    _json_int(folder, counts["timestamps_mended"], "counts.timestamps_mended")
    video = {**MANIFEST_DEFAULTS["video"], **manifest["video"]}
    for key, check in (("fps", lambda v, w: _json_number(folder, v, w)),
                       ("width", lambda v, w: _json_int(folder, v, w, 1)),
                       ("height", lambda v, w: _json_int(folder, v, w, 1)),
                       ("frames_in_file", lambda v, w: _json_int(folder, v, w)),
                       ("duration", lambda v, w: _json_number(folder, v, w, "a number >= 0", False, 0.0)),
                       ("rotation", lambda v, w: _json_number(folder, v, w, "a number", False))):
        if video[key] is not None:
            check(video[key], f"video.{key}")
    if not isinstance(video["mirrored"], bool):
        raise damaged(folder, f"{MANIFEST}: video.mirrored is {_shown(video['mirrored'])}, not true or false")
    if video["path"] is not None and not isinstance(video["path"], str):
        raise damaged(folder, f"{MANIFEST}: video.path is {_shown(video['path'])}, not a string")
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
    """A list of track entries (`TrackSummary`): npz, track_id and frames of the right types,
    each id and each file once (a track listed twice would be drawn and exported twice), and
    `grounding` / `depth_factor` null or of their types (their values: `_check_recorded_grounding`)."""
    if not isinstance(tracks, list):
        raise damaged(folder, f"{MANIFEST}: {where} is {_shown(tracks)}, not a list")
    seen: dict[str, set[Any]] = {"npz": set(), "track_id": set()}
    for k, entry in enumerate(tracks):
        if not isinstance(entry, dict):
            raise damaged(folder, f"{MANIFEST}: {where}[{k}] is {_shown(entry)}, not an object")
        if not isinstance(entry.get("npz"), str):
            raise damaged(folder, f"{MANIFEST}: {where}[{k}].npz is {_shown(entry.get('npz'))}, not a string")
        _json_int(folder, entry.get("track_id"), f"{where}[{k}].track_id")
        _json_int(folder, entry.get("frames"), f"{where}[{k}].frames")
        for key, value in (("npz", str(Path(entry["npz"]))), ("track_id", entry["track_id"])):
            if value in seen[key]:
                raise damaged(folder, f"{MANIFEST}: {where} lists {key} {_shown(value)} twice")
            seen[key].add(value)
        grounding = entry.get("grounding")
        if grounding is not None and grounding not in GROUNDINGS:
            raise damaged(folder, f"{MANIFEST}: {where}[{k}].grounding is {_shown(grounding)}, "
                                  f"not one of {', '.join(GROUNDINGS)}")
        if entry.get("depth_factor") is not None:
            _json_number(folder, entry["depth_factor"], f"{where}[{k}].depth_factor", "a positive number")


def _inside(folder: Path, place: str, relative: str) -> Path:
    """`folder/place/relative`, refused when it leaves the folder (a manifest is no licence
    to read elsewhere)."""
    path = folder / place / relative
    if Path(place).is_absolute() or Path(relative).is_absolute() or ".." in Path(place, relative).parts:
        raise damaged(folder, f"{MANIFEST} names a track file outside the folder: {Path(place, relative)}")
    return path


def _check_track(folder: Path, path: Path, entry: dict[str, Any], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """One tracks/<id>.npz against the shapes of `_ARRAYS`, its bounds and its manifest entry;
    returns its arrays (those of `_ARRAYS`)."""
    name = path.relative_to(folder)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files if key in _ARRAYS}
    except FileNotFoundError as err:
        raise damaged(folder, f"{name} is missing") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise damaged(folder, f"{name} is not a readable .npz: {str(err)[:120]}") from err
    n = _check_layout(folder, str(name), arrays, _ARRAYS, "frames", "N", _TRACK_TEXT)
    frames = arrays["frames"]
    for key, value in arrays.items():
        if key in _TRACK_TEXT:
            continue
        kinds = (np.integer,) if key in _TRACK_INTEGERS else _TRACK_BOOLS.get(key, (np.floating,))
        _check_numbers(folder, str(name), key, value, kinds)
    if n == 0:
        raise damaged(folder, f"{name} holds no frames")
    if n != entry["frames"]:
        raise damaged(folder, f"{name} holds {n} frames, {MANIFEST} says {entry['frames']}")
    if int(arrays["track_id"]) != entry["track_id"]:
        raise damaged(folder, f"{name} is track {int(arrays['track_id'])}, {MANIFEST} says {entry['track_id']}")
    if frames.min() < 0 or (np.diff(frames) <= 0).any():
        raise damaged(folder, f"{name}: its frame indices are not increasing whole numbers >= 0")
    # (a track's times may go back: an older strcli wrote a restarted clock's times as they came, and
    # the readers mend them, `strcli.road.timing.increasing_times`)
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
        raise damaged(folder, f"{name}: fps is {float(arrays['fps']):g}, not a positive number")
    if tuple(int(v) for v in arrays["image_size"]) != size:
        raise damaged(folder, f"{name}: image size {tuple(int(v) for v in arrays['image_size'])}, "
                              f"{MANIFEST} says {size}")
    return arrays


def _check_numbers(folder: Path, name: str, key: str, value: np.ndarray, kinds: tuple[type, ...],
                   nan: bool = False) -> None:
    """An array of `name` that must hold real numbers of `kinds` (np.floating: floating-point,
    never complex, whole or true/false; np.integer: whole numbers; bool: true/false), finite
    (`nan`: NaN allowed, meaning "not measured", but never infinite)."""
    if not any(value.dtype == k if k is bool else np.issubdtype(value.dtype, k) for k in kinds):
        words = {np.floating: "floating-point numbers", np.integer: "whole numbers", bool: "true/false"}
        raise damaged(folder, f"{name}: {key} holds {value.dtype} values, not {words[kinds[0]]}")
    if np.issubdtype(value.dtype, np.floating):
        bad = int(np.count_nonzero(np.isinf(value) if nan else ~np.isfinite(value)))
        if bad:
            raise damaged(folder, f"{name}: {key} holds {bad} {'infinite' if nan else 'NaN or infinite'} value(s)")


def _check_layout(folder: Path, name: str, arrays: dict[str, np.ndarray], spec: dict[str, tuple[tuple, bool]],
                  lead: str, axis: str, text: Any) -> int:
    """An .npz's arrays against `spec` (key -> (shape, required)): every required key there,
    each of its shape, `axis` standing for the length of `lead`'s first dimension, and the
    `text` keys text. Returns that length. Raises the damaged-output UsageError (exit 2)."""
    missing = [key for key, (_, required) in spec.items() if required and key not in arrays]
    if missing:
        raise damaged(folder, f"{name} lacks {', '.join(missing)}")
    length = arrays[lead].shape[0] if arrays[lead].ndim else -1
    for key, value in arrays.items():
        shape = tuple(length if d == axis else d for d in spec[key][0])
        if value.shape != shape:
            raise damaged(folder, f"{name}: {key} has shape {value.shape}, expected {shape}")
        if key in text and value.dtype.kind != "U":
            raise damaged(folder, f"{name}: {key} holds {value.dtype} values, not text")
    return length


def _check_times(folder: Path, name: str, times: np.ndarray) -> None:
    """camera.npz's times in seconds, which never go back (a repeated one is mended by the readers;
    every strcli that writes the file writes increasing times)."""
    if (np.diff(times) < 0).any():
        k = int(np.flatnonzero(np.diff(times) < 0)[0])
        raise damaged(folder, f"{name}: its times decrease (row {k + 1}: {float(times[k + 1]):.6g} s "
                              f"after {float(times[k]):.6g} s)")


def _json_number(folder: Path, value: Any, where: str, what: str = "a positive number", positive: bool = True,
                 low: float | None = None) -> float:
    """A number of the manifest: a JSON integer or fraction, not true/false, finite as a float
    (an integer of 400 digits is not), and > 0 when `positive`, >= `low` when given."""
    number = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    if not math.isfinite(number) or positive and number <= 0 or low is not None and number < low:
        raise damaged(folder, f"{MANIFEST}: {where} is {_shown(value)}, not {what}")
    return number


def _json_int(folder: Path, value: Any, where: str, low: int = 0) -> int:
    """A whole number of the manifest: a JSON integer (not true/false, not 2.0) >= `low` and
    at most MAX_WHOLE (a float holds it exactly; no frame count or size comes near)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise damaged(folder, f"{MANIFEST}: {where} is {_shown(value)}, not a whole number >= {low}")
    if value > MAX_WHOLE:
        raise damaged(folder, f"{MANIFEST}: {where} is {_shown(value)}, past any real value ({MAX_WHOLE:.3g})")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", str: "a string", int: "a whole number", float: "a number", list: "a list"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _tuple(kind)))


def _shown(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # nan, inf: as Python and the focal's line write it
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
