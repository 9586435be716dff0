"""The exports a video's output folder already holds, the frame each is in, and which of
them an export in the other frame removes, so that a folder never holds exports of two
frames (`--frame world|camera`) at once.

Where each file's frame is read (docs/export.md, "One frame per folder"):
- `<stem>.glb` (and `animation.glb`, older strcli's name): `extras.strcli.frame` of its JSON
  chunk. A strcli .glb without `frame` is in the camera frame: strcli wrote `frame` from the
  day it could write another frame.
- `bvh/<stem>_<id>.bvh` (and `bvh/<id>.bvh`): its entry's `frame` in `bvh/info.json`; an
  entry without `frame` is in the camera frame, as above.
- `<stem>.fbx` and `<stem>.blend`: `export.json` (`RECORD_NAME`), which strcli writes with
  them in the same all-or-none set, since neither file can be read without Blender.

A file whose frame is not recorded (an FBX or .blend of a strcli that wrote no
`export.json`, which could be in either frame; a .glb that is not strcli's or cannot be
read; a BVH that `bvh/info.json` does not list) is left where it is, and the export says so.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from strcli.config import BVH_DIR
from strcli.config import EXPORT_RECORD as RECORD_NAME  # {"frames": {"<stem>.fbx": "world", ...}, "note": ...}
from strcli.export.bvh import INFO_NAME, bvh_paths

FRAMES = ("world", "camera")
_BEFORE_FRAMES = "camera"  # the frame of strcli's exports written before they recorded one
_RECORD_NOTE = ("The frame (strcli export --frame) each of these files is in; <stem>.glb and bvh/info.json "
                "record their own.")
_GLB_MAGIC, _JSON_CHUNK = b"glTF", b"JSON"


@dataclass(frozen=True)
class ExportFile:
    """One export file in a video's output folder."""

    path: Path
    frame: str | None  # "world" or "camera"; None where nothing records it


@dataclass(frozen=True)
class FramePlan:
    """What an export in `frame` does to the exports already in the folder besides the files
    it writes: `removed` (in the other frame, removed with the export's set), `unknown` (no
    recorded frame: kept), and `record` (what `export.json` holds afterwards: file name ->
    frame; empty: no record)."""

    frame: str
    removed: tuple[ExportFile, ...]
    unknown: tuple[ExportFile, ...]
    record: dict[str, str]


def glb_frame(path: Path) -> str | None:
    """The frame a .glb records (`extras.strcli.frame`), "camera" for a strcli .glb that
    records none (made before strcli had another frame), None for a file that is not a
    strcli .glb or cannot be read. Reads the header and the JSON chunk only."""
    try:
        with path.open("rb") as f:
            magic, _version, _length, chunk, kind = struct.unpack("<4sIII4s", f.read(20))
            if magic != _GLB_MAGIC or kind != _JSON_CHUNK:
                return None
            about = json.loads(f.read(chunk)).get("extras", {}).get("strcli")
    except (OSError, ValueError, struct.error, AttributeError):
        return None
    if not isinstance(about, dict):
        return None
    frame = about.get("frame", _BEFORE_FRAMES)
    return frame if frame in FRAMES else None


def bvh_frames(folder: Path) -> dict[Path, str]:
    """Each BVH file `bvh/info.json` lists -> its frame ("camera" for an entry without one);
    {} when there is no readable info.json."""
    try:
        entries = json.loads((folder / BVH_DIR / INFO_NAME).read_text())
    except (OSError, ValueError):
        return {}
    frames = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            frame = entry.get("frame", _BEFORE_FRAMES)
            if frame in FRAMES:
                frames[folder / entry["file"]] = frame
    return frames


def read_record(folder: Path) -> dict[str, str]:
    """`export.json`'s file name -> frame, of the files it names that are still there; {}
    without a readable record."""
    try:
        frames = json.loads((folder / RECORD_NAME).read_text()).get("frames", {})
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(frames, dict):
        return {}
    return {name: frame for name, frame in frames.items()
            if isinstance(name, str) and frame in FRAMES and (folder / name).is_file()}


def record_text(record: dict[str, str]) -> str:
    """`export.json`'s text for `record` (file name -> frame)."""
    return json.dumps({"frames": dict(sorted(record.items())), "note": _RECORD_NOTE}, indent=2) + "\n"


def export_files(folder: Path) -> list[ExportFile]:
    """Every export file in `folder` (a video's output folder; the module docstring lists
    them) with its frame, or None where nothing records it."""
    from strcli.export.gltf import LEGACY_GLB_NAME, glb_name

    stem = folder.name
    found = [ExportFile(p, glb_frame(p)) for p in (folder / glb_name(stem), folder / LEGACY_GLB_NAME) if p.is_file()]
    directory = folder / BVH_DIR
    if directory.is_dir():
        frames = bvh_frames(folder)
        found += [ExportFile(path, frames.get(path)) for _, path in bvh_paths(folder)]
        if (directory / INFO_NAME).is_file() and frames:
            found.append(ExportFile(directory / INFO_NAME, _one(set(frames.values()))))
    record = read_record(folder)
    for kind in ("fbx", "blend"):
        path = folder / f"{stem}.{kind}"
        if path.is_file():
            found.append(ExportFile(path, record.get(path.name)))
    return found


def plan_frames(folder: Path, frame: str, written: set[Path], blender_written: set[Path]) -> FramePlan:
    """What an export in `frame` that writes the files `written` (final paths, the older names
    it replaces included; `blender_written`: its FBX and .blend among them) does to the other
    export files in `folder` (`FramePlan`)."""
    others = [f for f in export_files(folder) if f.path not in written]
    removed = tuple(f for f in others if f.frame is not None and f.frame != frame)
    unknown = tuple(f for f in others if f.frame is None and f.path.name != INFO_NAME)
    gone = {f.path for f in removed}
    record = {name: kept for name, kept in read_record(folder).items() if folder / name not in gone | written}
    record.update({p.name: frame for p in blender_written})
    return FramePlan(frame, removed, unknown, record)


def said(folder: Path, files: tuple[ExportFile, ...]) -> str:
    """The files as the user reads them: names relative to `folder`, every BVH as `bvh/` when
    the bvh folder goes whole (its info.json with it)."""
    names = [f.path.relative_to(folder).as_posix() for f in files]
    if f"{BVH_DIR}/{INFO_NAME}" in names:
        names = [n for n in names if not n.startswith(f"{BVH_DIR}/")] + [f"{BVH_DIR}/"]
    return ", ".join(names)


def _one(frames: set[str]) -> str | None:
    return next(iter(frames)) if len(frames) == 1 else None
