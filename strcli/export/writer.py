"""Motion for other tools: `strcli export` (glTF 2.0 binary with skinned SMPL bodies, BVH per
track) from what `strcli reconstruct` wrote. One module per format (`gltf`, `bvh`); the
shared conventions (axes, rest skeleton) in `motion`; what the formats approximate in
`accuracy`."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from strcli.body.files import TEST_BODY_NOTE, is_test_body, recorded_smpl_file
from strcli.body.smpl import Body
from strcli.body.camera import Intrinsics
from strcli.utils.errors import OutputError, StrcliError, writing
from strcli.export.blender import BLENDER_FORMATS, BlenderRequest, bpy_python, run_blender, scene_rate
from strcli.export.bvh import INFO_NAME, LEGACY_NAME, bvh_name, write_bvh
from strcli.export.existing import RECORD_NAME, ExportFile, plan_frames, record_text, said
from strcli.export.gltf import LEGACY_GLB_NAME, build_gltf, glb_name, write_glb
from strcli.export.motion import CameraPath, RestBody, TrackMotion, rest_body
from strcli.utils.locks import WholeSet, sweep_stale, video_lock
from strcli.road.options import EXPORT_FORMATS, parse_export_formats as parse_formats  # noqa: F401 (re-exported)
from strcli.road.inputs import export_targets
from strcli.road.caveats import overlay_caveats
from strcli.road.output_check import check_output
from strcli.road.outputs import MANIFEST, folder_bytes, output_folders, read_manifest, reading_output  # noqa: F401 (output_folders: export's API)
from strcli.config import BVH_DIR, CAMERA_FILE, TRACK_COLOURS

if TYPE_CHECKING:
    from strcli.road.reconstruct import VideoResult

@dataclass(frozen=True)
class ExportResult:
    folder: Path
    tracks: int
    glb: Path | None = None
    bvh: list[Path] = field(default_factory=list)
    fbx: Path | None = None
    blend: Path | None = None
    seconds: float = 0.0
    body_note: str = ""  # the generated test body's caveat, written into the files; else empty
    frame: str = "camera"  # the frame the files are in: "world" or "camera" (strcli.export.motion)
    warning: str = ""  # why `--frame world` fell back to the camera frame; else empty
    removed: tuple[ExportFile, ...] = ()  # the other frame's exports the export removed (`strcli.export.existing`)
    unknown: tuple[ExportFile, ...] = ()  # exports left in the folder whose frame nothing records
    caveat: str = ""  # what the files say about bodies that are not real results (`strcli.road.caveats`), else ""

    @property
    def removed_note(self) -> str:
        """The line (without the folder's name) that says which of the other frame's exports the
        export removed; "" when none."""
        if not self.removed:
            return ""
        return (f"removed {said(self.folder, self.removed)} ({self.removed[0].frame} frame) "
                "so that the folder holds one frame's exports")

    @property
    def unknown_warning(self) -> str:
        """The line (without the folder's name) that says which exports of no recorded frame the
        export kept; "" when none."""
        if not self.unknown:
            return ""
        return (f"kept {said(self.folder, self.unknown)}: nothing records its frame (an older "
                f"strcli's export); if it is not in the {self.frame} frame, export it again or remove it")


def load_tracks(folder: Path, body: Body, frame: str = "camera", manifest: dict | None = None
                ) -> tuple[dict, list[tuple[TrackMotion, RestBody]]]:
    """The manifest of an output folder and each track, in `frame` (`TrackMotion.load`), with
    its mean-betas rest body. `manifest`: the folder's, already checked (else checked here)."""
    if manifest is None:
        manifest = check_output(folder).manifest  # shapes, finite values, focal, frame counts: DamagedOutput (exit 2)
    with reading_output(folder):
        tracks = [TrackMotion.load(folder / t["npz"], frame) for t in manifest["tracks"]]
        return manifest, [(t, rest_body(body, t.mean_betas)) for t in tracks]


def world_available(folder: Path, manifest: dict) -> tuple[CameraPath | None, str]:
    """The camera's path for `--frame world` and "", or None and why the folder has no world
    (a folder of a strcli older than the world stage: no world keys in its tracks, or no
    camera.npz; a video without a person: camera.npz is not in a world)."""
    # `check_output` (run first) holds the world keys present in every track exactly when the
    # manifest records a world, so the manifest says it without opening the tracks again.
    if "world" not in manifest and manifest["tracks"]:
        return None, f"{manifest['tracks'][0]['npz']} has no world keys (made by a strcli older than the world stage)"
    with reading_output(folder):
        fps = float(manifest["video"]["fps"] or 0.0)
        path = CameraPath.load(folder / CAMERA_FILE, fps)
    if path is None:
        why = "is missing" if not (folder / CAMERA_FILE).is_file() else "is not in a world (no person in the video)"
        return None, f"{CAMERA_FILE} {why}"
    return path, ""


def export_video(folder: Path, body: Body, formats: tuple[str, ...], body_note: str = "", frame: str = "world",
                 floor: bool = False) -> ExportResult:
    """Write `folder`/<stem>.glb, `folder`/bvh/<stem>_<id>.bvh, `folder`/<stem>.fbx and/or
    `folder`/<stem>.blend (`formats`) for one reconstructed video (the stem: the folder's name,
    the video's); FBX and .blend through Blender (`strcli.export.blender`: MissingAssetError,
    exit 3, without it). `body_note`: a caveat about `body` (`TEST_BODY_NOTE` for the
    generated test body; see `body_note_for`) written into the glb's extras and bvh/info.json.
    `frame`: "world" (the video's world, the camera moving along camera.npz's path; `floor`:
    a floor quad at y = 0 in the .glb) or "camera" (the camera frame turned 180 degrees about
    x, as strcli wrote before the world stage). A folder without a world (`world_available`)
    is written in the camera frame, without the floor, and the result's `warning` says why.
    Holds the video's lock (`strcli.utils.locks.video_lock`: BusyError, exit 9, while another
    process writes the folder); a full disk, a read-only folder or a permission error is an
    OutputError (exit 6). The files are one set, written all or none (`WholeSet`): a failure
    leaves no partial file and no new file, and the folder's earlier export as it was."""
    export_targets(folder, formats)  # a folder of the user's as animation.glb, a file as bvh/: exit 2 first
    where = folder.absolute()
    with writing(folder / glb_name(folder.name)), video_lock(where.parent, where.name, "export"):
        sweep_stale(folder / "bvh")
        return _export_video(folder, body, formats, body_note, frame, floor)


def body_note_for(smpl_file: Path | str | None) -> str:
    """The caveat the exports of a body model file carry: `TEST_BODY_NOTE` for strcli's
    generated test body, else ""."""
    return TEST_BODY_NOTE if smpl_file is not None and is_test_body(smpl_file) else ""


def _export_video(folder: Path, body: Body, formats: tuple[str, ...], body_note: str, frame: str,
                  floor: bool) -> ExportResult:
    started = time.perf_counter()
    manifest = check_output(folder).manifest  # shapes, finite values, focal, frame counts: DamagedOutput (exit 2)
    path, warning = None, ""
    if frame == "world":
        path, why = world_available(folder, manifest)
        if path is None:
            frame, floor = "camera", False
            warning = f"{folder.name}: {why}: written in the camera frame (--frame camera), without a floor."
    manifest, tracks = load_tracks(folder, body, frame, manifest)
    with reading_output(folder):
        step = int(manifest["options"]["stride"])
        cam = manifest["intrinsics"]
        intrinsics = Intrinsics(float(cam["focal"]), int(cam["width"]), int(cam["height"]))
    # what says the bodies are not real results (untrained networks, the test body), into the files
    caveat = overlay_caveats(manifest, body_note, (manifest.get("models") or [{}])[0].get("name"))
    glb, bvh = None, []
    blender = [f for f in formats if f in BLENDER_FORMATS]
    python = bpy_python(tuple(blender)) if blender else None
    outputs: dict[str, Path] = {}
    plan = plan_frames(folder, frame, _written(folder, formats, [t.track_id for t, _ in tracks]),
                       {folder / f"{folder.name}.{f}" for f in blender})
    # Every file of the export under a temporary name, renamed together at the end of the block,
    # and the other frame's exports removed with them: a failure (a full disk, Blender) leaves
    # the earlier exports' files as they were.
    with WholeSet() as files:
        for gone in plan.removed:
            files.replaces(gone.path)
        if "glb" in formats or blender:
            colours = np.array([TRACK_COLOURS[t.track_id % len(TRACK_COLOURS)] for t, _ in tracks], np.float32) \
                if tracks else np.zeros((0, 3))
            gltf = build_gltf(tracks, step, colours, folder.name, intrinsics, body_note, path, floor, caveat)
            scene = folder / glb_name(folder.name)
            if "glb" in formats:
                written = write_glb(gltf, scene, files)  # the set's temporary, renamed to `scene` with the rest
                glb = scene
            else:
                written = write_glb(gltf, folder / f".{scene.name}.partial-{os.getpid()}.glb")
            try:
                if python is not None:
                    outputs = _write_blender(python, folder, written, manifest, tracks, intrinsics, blender, path,
                                             files)
            finally:
                if "glb" not in formats:
                    written.unlink(missing_ok=True)
        if "bvh" in formats:
            bvh = [folder / info.file for info in write_bvh(folder, tracks, step, body_note, files, caveat)]
        if plan.record:  # the frame of the FBX and .blend the folder holds afterwards
            files.add(folder / RECORD_NAME).write_text(record_text(plan.record))
        else:
            files.replaces(folder / RECORD_NAME)
    if any(gone.path.name == INFO_NAME for gone in plan.removed):
        with contextlib.suppress(OSError):
            (folder / BVH_DIR).rmdir()  # left empty: the other frame's bvh/ went whole
    return ExportResult(folder, len(tracks), glb, bvh, outputs.get("fbx"), outputs.get("blend"),
                        time.perf_counter() - started, body_note, frame, warning, plan.removed, plan.unknown,
                        caveat)


def _written(folder: Path, formats: tuple[str, ...], track_ids: list[int]) -> set[Path]:
    """The files an export of `formats` writes into `folder`, and the older names of them it
    replaces (animation.glb, bvh/<id>.bvh)."""
    stem = folder.name
    written = {folder / f"{stem}.{f}" for f in formats if f != "bvh"}
    if "glb" in formats:
        written.add(folder / LEGACY_GLB_NAME)
    if "bvh" in formats:
        written |= {folder / BVH_DIR / INFO_NAME}
        written |= {folder / BVH_DIR / n for i in track_ids for n in (bvh_name(stem, i), LEGACY_NAME.format(track_id=i))}
    return written


def _write_blender(python: Path, folder: Path, glb: Path, manifest: dict, tracks: list[tuple[TrackMotion, RestBody]],
                   intrinsics: Intrinsics, formats: list[str], camera_path: CameraPath | None,
                   files: WholeSet) -> dict[str, Path]:
    """`<stem>.fbx` / `<stem>.blend` from the written .glb through Blender, each made under a
    hidden temporary name of `files`, renamed with the rest of the export's set."""
    with reading_output(folder):
        video = manifest["video"]
        rate = float(video["fps"] or (tracks[0][0].fps if tracks else 30.0))
        path = video["path"]
        frames_in_file = int(video["frames_in_file"] or 0)
    end = max([float(t.times[-1]) for t, _ in tracks]
              + ([float(camera_path.times[-1])] if camera_path is not None else []),
              default=0.0)
    fps, fps_base = scene_rate(rate)
    final = {f: folder / f"{folder.name}.{f}" for f in formats}
    partial = {f: files.add(p, keep_suffix=True) for f, p in final.items()}  # renamed with the export's set
    request = BlenderRequest(glb=str(glb), fps=fps, fps_base=fps_base, frame_end=round(end * rate),
                             width=intrinsics.width, height=intrinsics.height,
                             video=str(path) if path and Path(path).is_file() else None,
                             video_frames=frames_in_file,
                             fbx=str(partial["fbx"]) if "fbx" in partial else None,
                             blend=str(partial["blend"]) if "blend" in partial else None)
    run_blender(python, request, folder)
    for f, tmp in partial.items():
        if not tmp.is_file():
            raise OutputError(f"Blender wrote no {f.upper()} file.", "Export again; report it if it repeats.")
    return final


def export_after(text: str | None) -> Callable[[VideoResult, Body], tuple[VideoResult, StrcliError | None]] | None:
    """`reconstruct --export glb,bvh`: None without the option, else a function that exports a
    finished (or skipped) video and returns its result with the files written (`exported`),
    the folder's size counted again (`bytes`) and the other frame's exports it removed in its
    `warnings` (`ExportResult.removed_note`), and the error instead of raising it, so
    the batch goes on. The formats are checked now, before any work."""
    if not text:
        return None
    formats = parse_formats(text)
    if set(BLENDER_FORMATS) & set(formats):
        bpy_python(formats)

    def run(result: VideoResult, body: Body) -> tuple[VideoResult, StrcliError | None]:
        if result.status == "failed" or result.output is None:
            return result, None
        recorded = recorded_smpl_file(read_manifest(result.output) or {})
        try:
            written = export_video(result.output, body, formats, body_note_for(recorded))
        except StrcliError as err:
            return replace(result, bytes=folder_bytes(result.output)), err
        files = ((written.glb,) if written.glb else ()) + ((result.output / "bvh",) if "bvh" in formats else ()) \
            + tuple(p for p in (written.fbx, written.blend) if p)
        notes = tuple(line for line in (written.removed_note, written.unknown_warning) if line)
        return replace(result, exported=files, bytes=folder_bytes(result.output), warnings=result.warnings + notes), None

    return run
