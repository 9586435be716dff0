"""Motion for other tools: `strcli export` (glTF 2.0 binary with skinned SMPL bodies, BVH per
track) from what `strcli reconstruct` wrote. One module per format (`gltf`, `bvh`); the
shared conventions (axes, rest skeleton) in `motion`; what the formats approximate in
`accuracy`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from strcli.body.smpl import Body
from strcli.body.camera import Intrinsics
from strcli.utils.errors import StrcliError, writing
from strcli.export.bvh import write_bvh
from strcli.export.gltf import GLB_NAME, build_gltf, write_glb
from strcli.export.motion import RestBody, TrackMotion, rest_body
from strcli.utils.locks import sweep_stale, video_lock
from strcli.road.options import EXPORT_FORMATS, parse_export_formats as parse_formats  # noqa: F401 (re-exported)
from strcli.road.inputs import export_targets
from strcli.road.output_check import check_output
from strcli.road.outputs import MANIFEST, folder_bytes, output_folders, read_manifest, reading_output  # noqa: F401 (output_folders: export's API)
from strcli.config import TRACK_COLOURS

if TYPE_CHECKING:
    from strcli.road.reconstruct import VideoResult

@dataclass(frozen=True)
class ExportResult:
    folder: Path
    tracks: int
    glb: Path | None = None
    bvh: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def load_tracks(folder: Path, body: Body) -> tuple[dict, list[tuple[TrackMotion, RestBody]]]:
    """The manifest of an output folder and each track with its mean-betas rest body."""
    manifest = check_output(folder).manifest  # shapes, finite values, focal, frame counts: DamagedOutput (exit 2)
    with reading_output(folder):
        tracks = [TrackMotion.load(folder / t["npz"]) for t in manifest["tracks"]]
        return manifest, [(t, rest_body(body, t.mean_betas)) for t in tracks]


def export_video(folder: Path, body: Body, formats: tuple[str, ...]) -> ExportResult:
    """Write `folder`/animation.glb and/or `folder`/bvh/<id>.bvh for one reconstructed video.
    Holds the video's lock (`strcli.utils.locks.video_lock`: BusyError, exit 9, while another
    process writes the folder); a full disk, a read-only folder or a permission error is an
    OutputError (exit 6) and leaves no partial file."""
    export_targets(folder, formats)  # a folder of the user's as animation.glb, a file as bvh/: exit 2 first
    where = folder.absolute()
    with writing(folder / GLB_NAME), video_lock(where.parent, where.name, "export"):
        sweep_stale(folder / "bvh")
        return _export_video(folder, body, formats)


def _export_video(folder: Path, body: Body, formats: tuple[str, ...]) -> ExportResult:
    started = time.perf_counter()
    manifest, tracks = load_tracks(folder, body)
    with reading_output(folder):
        step = int(manifest["options"].get("stride", 1))
        cam = manifest["intrinsics"]
        intrinsics = Intrinsics(float(cam["focal"]), int(cam["width"]), int(cam["height"]))
    glb, bvh = None, []
    if "glb" in formats:
        colours = np.array([TRACK_COLOURS[t.track_id % len(TRACK_COLOURS)] for t, _ in tracks], np.float32) if tracks \
            else np.zeros((0, 3))
        gltf = build_gltf(tracks, step, colours, folder.name, intrinsics)
        glb = write_glb(gltf, folder / GLB_NAME)
    if "bvh" in formats:
        bvh = [folder / info.file for info in write_bvh(folder, tracks, step)]
    return ExportResult(folder, len(tracks), glb, bvh, time.perf_counter() - started)


def export_after(text: str | None) -> Callable[[VideoResult, Body], tuple[VideoResult, StrcliError | None]] | None:
    """`reconstruct --export glb,bvh`: None without the option, else a function that exports a
    finished (or skipped) video and returns its result with the files written (`exported`)
    and the folder's size counted again (`bytes`), and the error instead of raising it, so
    the batch goes on. The formats are checked now, before any work."""
    if not text:
        return None
    formats = parse_formats(text)

    def run(result: VideoResult, body: Body) -> tuple[VideoResult, StrcliError | None]:
        if result.status == "failed" or result.output is None:
            return result, None
        try:
            written = export_video(result.output, body, formats)
        except StrcliError as err:
            return replace(result, bytes=folder_bytes(result.output)), err
        files = ((written.glb,) if written.glb else ()) + ((result.output / "bvh",) if "bvh" in formats else ())
        return replace(result, exported=files, bytes=folder_bytes(result.output)), None

    return run
