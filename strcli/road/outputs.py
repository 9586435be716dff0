"""Per-video outputs: track .npz files, meshes, AMASS files and the manifest, written safely.

Everything of one video is written into a hidden temporary folder beside the final one
(`out/.<stem>.partial-<pid>-<token>/`) and renamed to `out/<stem>/` only once the manifest,
the last file, is in it: a folder under its final name is always complete, an interrupted
run leaves only a hidden partial folder (removed on the next run of that video,
`strcli.utils.locks.sweep_stale`), and concurrent runs on different videos into one output folder
never touch each other's files; runs on one video take turns (`strcli.utils.locks.video_lock`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from strcli.config import MANIFEST  # noqa: F401 (re-exported)
from strcli.utils.errors import OutputError, StrcliError, UsageError, output_error  # noqa: F401 (output_error: shared by the writers)
from strcli.road.inputs import foreign_folder_problem, given_path, output_folders  # noqa: F401 (output_folders re-exported: found torch-free)
from strcli.utils.locks import sweep_stale
from strcli.road.options import MESH_FORMATS  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from strcli.road.posing import PosedFrames
    from strcli.road.world import TrackInWorld

from strcli.road.amass import CAMERA_TO_ZUP, resample_motion, to_amass  # noqa: F401 (re-exported: their old place)


@dataclass(frozen=True)
class TrackSummary:
    track_id: int
    frames: int
    first_frame: int
    last_frame: int
    interpolated_frames: int
    npz: str  # paths relative to the video's output folder
    amass: str
    meshes: str | None
    amass_fps: float = 0.0  # the AMASS file's frame rate (mocap_framerate)
    amass_resampled: bool = False  # True: resampled to amass_fps from a variable frame rate
    contact_frames: int = 0  # frames with a foot on the floor (docs/world.md)
    foot_slide_cm: float | None = None  # cm per contact frame, as written
    foot_slide_before_cm: float | None = None  # with --foot-lock: before the lock
    grounding: str | None = None  # how its height was set: contacts, ray or network (docs/world.md)
    depth_factor: float | None = None  # "ray": the network's depth times this


@dataclass(frozen=True)
class ModelOutput:
    """One temporal model's results in a video folder (`reconstruct --model str,tcmr`):
    the first model's files are at the folder's top, each other's under models/<name>/."""

    name: str  # str, tcmr or vibe
    folder: str  # relative to the video's folder: "." or "models/<name>"
    tracks: list[TrackSummary]  # paths relative to `folder`
    meshes: int


@dataclass(frozen=True)
class InputFile:
    """The video as given and the file it is: `path` is the path given (absolute, a
    symbolic link kept: the output folder is named after it), `target` the file it leads
    to (links followed); size and time are the target's."""

    path: str
    size_bytes: int
    mtime: float
    target: str = ""

    @classmethod
    def of(cls, path: Path) -> InputFile:
        stat = path.stat()
        return cls(str(given_path(path)), stat.st_size, stat.st_mtime, str(path.resolve()))


@dataclass(frozen=True)
class WeightsUsed:
    name: str  # detector, backbone, str, smpl
    path: str | None  # None: randomly initialised
    sha256: str  # "" when not known or randomly initialised
    note: str = ""


@dataclass(frozen=True)
class Counts:
    frames_in_file: int | None  # what the container says
    frames_expected: int | None  # the frame count, else duration x rate; None: the file does not say
    truncated: bool | None  # fewer frames decoded than the file says; None: its length is unknown
    frames_decoded: int
    frames_processed: int  # within --start/--end, every --stride-th
    damaged_packets: int
    detections: int
    tracks: int
    person_frames: int
    meshes: int
    timestamps_mended: int = 0  # frames whose timestamp did not increase (`strcli.road.video.FrameClock`)
    frames_resized: int = 0  # frames of another size than the first, scaled to it


@dataclass(frozen=True)
class VideoManifest:
    """`manifest.json`: everything needed to know what produced a video's outputs."""

    strcli: str
    created: str
    fingerprint: str  # sha256 of the inputs, options and weights: equal = same outputs
    input: InputFile
    video: dict[str, Any]  # VideoInfo as written by the video stage
    options: dict[str, Any]
    versions: dict[str, str]
    weights: list[WeightsUsed]
    intrinsics: dict[str, Any]
    counts: Counts
    timings: dict[str, float]  # stage -> seconds
    tracks: list[TrackSummary]
    warnings: list[str] = field(default_factory=list)
    models: list[ModelOutput] = field(default_factory=list)  # every model's results, the first's = `tracks`
    world: dict[str, Any] = field(default_factory=dict)  # the camera model, the floor, the camera file (docs/world.md)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a finished video folder, or None (missing, unreadable)."""
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


# What reading a damaged output folder raises: a file missing, a manifest of the wrong
# types, a track file that is not an npz or lacks a key.
DAMAGED_OUTPUT = (KeyError, TypeError, ValueError, IndexError, AttributeError, zipfile.BadZipFile, EOFError,
                  FileNotFoundError, NotADirectoryError, IsADirectoryError)


@contextlib.contextmanager
def reading_output(folder: Path) -> Iterator[None]:
    """Around the reading of a reconstruct output folder (render, export, view): a damaged
    folder is a UsageError (exit 2), one line that names it, not a traceback."""
    try:
        yield
    except StrcliError:
        raise
    except DAMAGED_OUTPUT as err:
        detail = (str(err).strip().splitlines() or [""])[0][:160]
        raise UsageError(f"{folder} is a damaged strcli output ({type(err).__name__}: {detail}).",
                         "Reconstruct its video again with `strcli reconstruct VIDEO -o OUT --overwrite`.") from err


class VideoFolder:
    """The output folder of one video, built under a temporary name (module docstring)."""

    def __init__(self, out_root: Path, stem: str) -> None:
        self.final = out_root / stem
        self.tmp = out_root / f".{stem}.partial-{os.getpid()}-{secrets.token_hex(3)}"
        self.committed = False

    def __enter__(self) -> VideoFolder:
        sweep_stale(self.final.parent, f".{self.final.name}.")  # partial and replaced folders of dead runs
        try:
            self.tmp.mkdir(parents=True)
        except OSError as err:
            raise output_error(err, self.tmp) from err
        return self

    def write_manifest(self, manifest: VideoManifest) -> None:
        path = self.tmp / MANIFEST
        try:
            path.write_text(manifest.to_json())
        except OSError as err:
            raise output_error(err, self.final / MANIFEST) from err

    def commit(self) -> Path:
        """Replace any previous folder of this video by the finished one."""
        old = None
        if (foreign := foreign_folder_problem(self.final)) is not None:
            raise foreign  # the user's own file or folder under the video's name: never replaced
        try:
            if self.final.exists():
                old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}-{secrets.token_hex(3)}")
                os.replace(self.final, old)
            os.replace(self.tmp, self.final)
        except OSError as err:
            raise output_error(err, self.final) from err
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass(frozen=True)
class TrackFrames:
    """What the tracking stage knows about a track's frames; N rows."""

    track_id: int
    frames: np.ndarray  # (N,) int64 frame indices in the file
    times: np.ndarray  # (N,) float64 seconds
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    scores: np.ndarray  # (N,) float32, 0 where interpolated
    interpolated: np.ndarray  # (N,) bool


class TrackWriter:
    """Collects one track's per-frame results, writes its meshes as they come and its
    `.npz` files at the end."""

    _KEYS = ("global_orient", "body_pose", "betas", "cam_crop", "transl", "joints3d", "joints2d")

    def __init__(self, folder: Path, track: TrackFrames, faces: np.ndarray, mesh_formats: tuple[str, ...],
                 intrinsics: np.ndarray, fps: float, image_size: tuple[int, int],
                 amass_rate: float | None = None) -> None:
        self.folder, self.track, self.faces = folder, track, faces
        self.amass_rate = amass_rate  # a variable frame rate: AMASS resampled to this many fps
        self.mesh_formats = mesh_formats
        self.intrinsics, self.fps, self.image_size = intrinsics, fps, image_size
        self.rows: list[np.ndarray] = []
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in self._KEYS}
        self.meshes = 0
        self._faces_text: bytes | None = None
        self.mesh_dir = folder / "meshes" / str(track.track_id)
        if mesh_formats:
            self._mkdir(self.mesh_dir)

    @staticmethod
    def _mkdir(path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise output_error(err, path) from err

    def add(self, rows: np.ndarray, posed: PosedFrames) -> None:
        """rows: (K,) which of the track's frames `posed` holds."""
        self.rows.append(rows)
        for key in self._KEYS:
            self.parts[key].append(getattr(posed, key))
        for k, row in enumerate(rows):
            frame = int(self.track.frames[row])
            for fmt in self.mesh_formats:
                path = self.mesh_dir / f"{frame:06d}.{fmt}"
                try:
                    if fmt == "obj":
                        write_obj(path, posed.vertices[k], self._obj_faces())
                    else:
                        import trimesh  # only for --mesh-format ply/glb

                        trimesh.Trimesh(posed.vertices[k], self.faces, process=False).export(path, file_type=fmt)
                except OSError as err:
                    raise output_error(err, path) from err
                self.meshes += 1

    def _obj_faces(self) -> bytes:
        """The OBJ face lines, the same for every frame: formatted once."""
        if self._faces_text is None:
            self._faces_text = obj_face_lines(self.faces)
        return self._faces_text

    def values(self) -> dict[str, np.ndarray]:
        """The per-frame results so far in the track's frame order: key -> (N, ...) float32.
        Raises RuntimeError when a frame is missing."""
        n = len(self.track.frames)
        rows = np.concatenate(self.rows)
        if sorted(rows.tolist()) != list(range(n)):
            raise RuntimeError(f"track {self.track.track_id}: got results for {len(rows)} of {n} frames")
        order = np.argsort(rows)
        return {k: np.concatenate(v)[order].astype(np.float32) for k, v in self.parts.items()}

    def close(self, rest_pelvis: np.ndarray, world: TrackInWorld | None = None,
              slide: tuple[float, float | None] | None = None) -> TrackSummary:
        """Write tracks/<id>.npz and amass/<id>.npz. rest_pelvis: (3,) SMPL's root joint in
        the rest pose for the track's mean shape (needed to move the body for AMASS).
        world: the track in the video's world (`strcli.road.world`): its keys go beside the
        camera-frame ones and the AMASS file is in AMASS's z-up world; without it, the AMASS
        file is the camera frame turned z-up. slide: (as written, before --foot-lock or None),
        cm per contact frame."""
        n = len(self.track.frames)
        values = self.values()
        t = self.track
        tid = t.track_id
        npz = Path("tracks") / f"{tid}.npz"
        self._save(npz, track_id=np.int64(tid), frames=t.frames, times=t.times, boxes=t.boxes,
                   box_scores=t.scores, box_interpolated=t.interpolated,
                   global_orient=values["global_orient"], body_pose=values["body_pose"],
                   betas=values["betas"], transl=values["transl"], cam_crop=values["cam_crop"],
                   joints3d=values["joints3d"], joints2d=values["joints2d"],
                   intrinsics=self.intrinsics.astype(np.float32), fps=np.float64(self.fps),
                   image_size=np.array(self.image_size, np.int64), **world_keys(world))
        amass = Path("amass") / f"{tid}.npz"
        if world is not None:
            from strcli.road.world import Y_UP_TO_Z_UP

            pose = world.body_pose if world.body_pose is not None else values["body_pose"]  # --foot-lock's legs
            exported = to_amass(world.global_orient, pose, values["betas"], world.transl, rest_pelvis,
                                self.fps, t.frames, t.times if self.amass_rate else None, self.amass_rate,
                                to_zup=Y_UP_TO_Z_UP)
            exported["frame"] = np.array("world")
        else:
            exported = to_amass(values["global_orient"], values["body_pose"], values["betas"], values["transl"],
                                rest_pelvis, self.fps, t.frames, t.times if self.amass_rate else None,
                                self.amass_rate)
            exported["frame"] = np.array("camera")
        self._save(amass, **exported)
        return TrackSummary(track_id=tid, frames=n, first_frame=int(t.frames[0]),
                            last_frame=int(t.frames[-1]), interpolated_frames=int(t.interpolated.sum()),
                            npz=str(npz), amass=str(amass),
                            meshes=str(self.mesh_dir.relative_to(self.folder)) if self.mesh_formats else None,
                            amass_fps=float(exported["mocap_framerate"]),
                            amass_resampled=bool(exported["resampled"]),
                            contact_frames=int(world.contacts.any(axis=1).sum()) if world is not None else 0,
                            foot_slide_cm=round(slide[0], 3) if slide else None,
                            foot_slide_before_cm=round(slide[1], 3) if slide and slide[1] is not None else None,
                            grounding=world.grounding.method if world is not None else None,
                            depth_factor=round(world.grounding.factor, 4) if world is not None else None)

    def _save(self, relative: Path, **arrays: Any) -> None:
        path = self.folder / relative
        self._mkdir(path.parent)
        try:
            np.savez(path, **arrays)
        except OSError as err:
            raise output_error(err, path) from err


def world_keys(world: TrackInWorld | None) -> dict[str, np.ndarray]:
    """The per-track npz's world keys (docs/world.md): world_global_orient (N, 3) axis-angle,
    world_transl (N, 3) metres, world_joints3d (N, 24, 3) metres, foot_contacts (N, 4) bool
    (SMPL joints 7, 8, 10, 11: left/right ankle, left/right foot), world_grounding () text (how
    its height was set: contacts, ray or network) and world_depth_factor () (the network's depth times
    this along the camera's rays; 1 but for "ray"), and with --foot-lock's leg IK
    world_body_pose (N, 69) axis-angle, the pose of the world body. None: no keys."""
    if world is None:
        return {}
    keys = {"world_global_orient": world.global_orient.astype(np.float32),
            "world_transl": world.transl.astype(np.float32),
            "world_joints3d": world.joints3d.astype(np.float32),
            "foot_contacts": world.contacts.astype(bool),
            "world_grounding": np.array(world.grounding.method),
            "world_depth_factor": np.float64(world.grounding.factor)}
    if world.body_pose is not None:
        keys["world_body_pose"] = world.body_pose.astype(np.float32)
    return keys


def obj_face_lines(faces: np.ndarray) -> bytes:
    """(F, 3) 0-based vertex indices -> b"f a b c\n" lines (1-based)."""
    return "".join(f"f {a} {b} {c}\n" for a, b, c in (np.asarray(faces) + 1).tolist()).encode("ascii")


def write_obj(path: Path, vertices: np.ndarray, faces_text: bytes) -> None:
    """A Wavefront OBJ of one mesh: (V, 3) vertices (metres, 6 decimals = micrometres) and
    the face lines (formatted once per track). The vertex lines are built digit by digit in
    numpy (`vertex_lines`): a mesh a person a frame is written in under a millisecond,
    about 25 times faster than trimesh's exporter."""
    with open(path, "wb") as f:
        f.write(b"# strcli\n")
        f.write(vertex_lines(vertices))
        f.write(faces_text)


_THREE_DIGITS = np.array([list(f"{k:03d}".encode()) for k in range(1000)], np.uint8)  # "000".."999"
_UP_TO_THREE = np.array([list(f"{k:3d}".encode()) for k in range(1000)], np.uint8)  # "  0".."999"


def vertex_lines(vertices: np.ndarray) -> bytes:
    """(V, 3) -> b"v x y z\n" lines, each coordinate in fixed point with 6 decimals, right-
    aligned in a field as wide as the mesh's largest (the padding is OBJ whitespace). Built
    from tables of three-digit groups; the numbers are those of "%.6f" up to the rounding of
    the last digit. Coordinates of 1000 m or more, or not finite, are written with "%.6f"."""
    values = np.asarray(vertices, np.float64).reshape(-1)
    micro = np.rint(values * 1e6)
    if len(values) == 0 or not np.isfinite(micro).all() or np.abs(micro).max() >= 1e9:
        flat = values.tolist()
        return (("v %.6f %.6f %.6f\n" * (len(flat) // 3)) % tuple(flat)).encode("ascii")
    whole, frac = np.divmod(np.abs(micro).astype(np.int64), 10**6)  # whole < 1000
    high, low = np.divmod(frac, 1000)
    width = 1 + int(whole.max() >= 10) + int(whole.max() >= 100)  # integer digits of the largest
    field = 1 + width + 1 + 6  # sign slot, integer digits, '.', decimals
    chars = np.empty((len(whole), field), np.uint8)
    chars[:, 0] = ord(" ")
    chars[:, 1 : 1 + width] = _UP_TO_THREE[whole, 3 - width :]
    chars[:, 1 + width] = ord(".")
    chars[:, 2 + width : 5 + width] = _THREE_DIGITS[high]
    chars[:, 5 + width :] = _THREE_DIGITS[low]
    negative = np.flatnonzero(micro < 0)
    shown = 1 + (whole[negative] >= 10) + (whole[negative] >= 100)  # integer digits of each
    chars[negative, width - shown] = ord("-")  # just before the first digit
    line = np.full((len(whole) // 3, 1 + 3 * (1 + field) + 1), ord(" "), np.uint8)  # "v" (" " field) x3 "\n"
    line[:, 0] = ord("v")
    line[:, -1] = ord("\n")
    line[:, 1:-1].reshape(-1, 3, 1 + field)[:, :, 1:] = chars.reshape(-1, 3, field)
    return line.tobytes()


# ----------------------------------------------------------------------------- disk use

# Bytes per person-frame of tracks/<id>.npz and amass/<id>.npz together (about 1.2 kB of
# float32 parameters, joints and boxes, rounded up for the zip headers of short tracks).
PARAMETER_BYTES_PER_FRAME = 1500


def mesh_bytes(faces: np.ndarray, vertex_count: int, fmt: str) -> int:
    """Bytes of one mesh file in `fmt` (obj: measured on a body of coordinates under 100 m,
    each vertex line at most 35 bytes; ply: trimesh's binary export, measured exactly)."""
    if fmt == "obj":
        return len(b"# strcli\n") + vertex_count * 35 + len(obj_face_lines(faces))
    import trimesh

    data = trimesh.Trimesh(np.zeros((vertex_count, 3)), faces, process=False).export(file_type=fmt)
    return len(data if isinstance(data, bytes) else data.encode())


def estimate_output_bytes(person_frames: int, faces: np.ndarray, vertex_count: int,
                          mesh_formats: tuple[str, ...], models: int = 1) -> int:
    """What `reconstruct` will write for `person_frames` bodies (per model): meshes and
    parameter files, in bytes."""
    per_frame = PARAMETER_BYTES_PER_FRAME + sum(mesh_bytes(faces, vertex_count, f) for f in mesh_formats)
    return person_frames * per_frame * models


def human_bytes(count: float) -> str:
    """1536 -> '1.5 kB' (powers of 1000, as disk tools print them)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return ""  # unreachable


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds `folder` (or its nearest existing parent)."""
    probe = folder.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """An OutputError (exit 6) before writing anything when the disk of `folder` has less
    free space than `needed` bytes (with a 5% margin)."""
    free = free_bytes(folder)
    if needed * 1.05 > free:
        raise OutputError(f"not enough disk space for {what}: about {human_bytes(needed)} needed, "
                          f"{human_bytes(free)} free in {folder}.",
                          "Free some space, choose another output folder with -o, or write fewer meshes "
                          "(--mesh-format none keeps the parameters, a few kB per person-frame).")


def folder_bytes(folder: Path) -> int:
    """Total size of the files under `folder` (0 if it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
