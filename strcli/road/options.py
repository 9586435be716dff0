"""The options of `strcli reconstruct`, checked where no torch is imported.

`strcli reconstruct` builds `ReconstructOptions` and `ModelSources` from its flags before
it imports torch or loads anything, so a bad value (`--stride 0`, `--start 10 --end 5`,
`--model foo`, `--device gpu7`, `--mesh-format stl`) is refused in about a second, with one
line and exit code 2 (`UsageError`). This module imports only the standard library, numpy
and PyAV (through `strcli.road.video` and `strcli.road.tracking`); `strcli.road.reconstruct` re-exports
both classes, so `from strcli.road.reconstruct import ReconstructOptions` keeps working.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from strcli.config import CAMERA_MODELS, TEMPORAL_MODELS, WINDOW, X264_PRESETS
from strcli.utils.devices import PRECISIONS
from strcli.utils.devices import check_device_name  # noqa: F401 (re-exported: the flag checks live here)
from strcli.utils.errors import UsageError
from strcli.road.tracking import TrackingConfig

SEED_MAX = 2**32 - 1  # `--seed`: numpy's range, the one every strcli command takes
MESH_FORMATS = ("obj", "ply")  # `--mesh-format`: the mesh files a video's folder may hold
EXPORT_FORMATS = ("glb", "bvh", "fbx", "blend")  # `--export` / `strcli export --format`; fbx, blend: through bpy
EXPORT_FRAMES = ("world", "camera")  # `strcli export --frame` (strcli.export.motion; docs/export.md)
# `--device`: what `strcli.utils.devices.resolve_device` accepts (whether it exists is its business).




def check_serve_address(host: str, port: int) -> None:
    """`strcli view --host/--port`: a port in 0-65535 (0: any free one) that can be bound on
    `host` now, else UsageError (exit 2). viser binds in a thread of its own, where a bad
    port kills the thread and leaves the command waiting for ever, and a port in use is
    silently replaced by the next free one: both are refused here, before anything loads."""
    import errno
    import socket

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: a port is 1-65535 (0: any free port).")
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise UsageError(f"--host {host}: not an address to serve on ({err}).",
                         "Use 127.0.0.1 (this machine) or 0.0.0.0 (every network).") from err
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            try:
                probe.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise UsageError(f"port {port} on {host} is in use by another program.",
                                     "Choose another --port (--port 0: any free one).") from err
                raise UsageError(f"cannot serve on {host}:{port} ({err.strerror or err}).",
                                 "Choose another --port or --host.") from err


def parse_mesh_formats(text: str) -> tuple[str, ...]:
    """`--mesh-format` 'obj', 'ply', 'obj,ply' or 'none' -> the formats to write (() for
    none); an unknown name is checked by `ReconstructOptions`."""
    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    return () if formats == ("none",) else formats


def parse_export_formats(text: str) -> tuple[str, ...]:
    """'glb,bvh' -> ('glb', 'bvh'); an unknown name (or none at all) is a UsageError. fbx and
    blend need Blender's Python (`strcli.export.blender.bpy_python`), checked by the caller."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise UsageError(f"unknown export format {(unknown or [text])[0]!r}: use {', '.join(EXPORT_FORMATS)} "
                         "or several (glb,bvh).")
    return formats


def parse_export_frame(frame: str, floor: bool) -> str:
    """`strcli export --frame world|camera` (any case) -> its name; an unknown frame, or
    `--floor` with the camera frame (whose y = 0 is no floor), is a UsageError."""
    name = frame.strip().lower()
    if name not in EXPORT_FRAMES:
        raise UsageError(f"--frame {frame!r}: use {' or '.join(EXPORT_FRAMES)}.")
    if floor and name == "camera":
        raise UsageError("--floor needs --frame world: the camera frame has no floor.")
    return name


def parse_models(text: str) -> tuple[str, ...]:
    """`--model` 'str' or 'str,tcmr' -> ('str', 'tcmr'); checked by `ModelSources`."""
    return tuple(m.strip().lower() for m in text.split(",") if m.strip())


@dataclass(frozen=True)
class ReconstructOptions:
    """What changes the results (all of it goes into the fingerprint) ...

    Every value is checked when the object is made: UsageError (exit 2) naming the flag.
    """

    start: str | None = None  # frame (120) or seconds (4.5s)
    end: str | None = None  # exclusive; same forms
    stride: int = 1
    tracking: TrackingConfig = TrackingConfig()
    detector_conf: float = 0.25  # YOLO confidence threshold
    detector_imgsz: int = 640  # YOLO's input size (longest side, pixels)
    detect_every: int = 1  # run the detector on every N-th processed frame; ByteTrack and the
    # gap filling carry the boxes over the frames between (at most tracking.max_gap + 1);
    # 0 = auto: the largest N that still detects `detect_hz` times per second of video
    detect_hz: float = 10.0  # auto's target (10 on a CPU, 7.5 with --fast): docs/performance.md
    min_score: float = 0.0  # detections below this score in a --detections file are ignored
    focal: float | None = None  # pixels; default: the image diagonal
    mesh_formats: tuple[str, ...] = ()  # meshes on request: the npz rebuilds them (docs/outputs.md)
    window_stride: int = WINDOW // 2
    # the detector's and the ResNet-50's: auto, fp32, bf16, onnx (`strcli.utils.devices.resolve_precision`)
    precision: str = "auto"
    camera: str = "auto"  # the camera's motion model: auto, static, rotating, moving (docs/world.md)
    foot_lock: bool = False  # move each body's root so feet in contact do not slide
    # ... and what does not.
    device: str = "auto"
    batch_size: int = 64
    detector_batch: int = 0  # frames per detector call; 0 = auto: 16 on a GPU, 1 on a CPU

    def __post_init__(self) -> None:
        from strcli.road.video import parse_position  # imports PyAV: here, so export and view do not pay for it

        start, end = parse_position(self.start, "--start"), parse_position(self.end, "--end")
        for unit in ("frame", "seconds"):  # mixed units wait for the video's timestamps
            first, stop = getattr(start, unit, None), getattr(end, unit, None)
            if start is None and stop is not None:
                first = 0  # no --start: the first frame
            if first is not None and stop is not None and stop <= first:
                given = f"--start {self.start} --end {self.end}" if start is not None else f"--end {self.end}"
                raise UsageError(f"{given}: no frame in between (--end is exclusive, so it must be after "
                                 f"--start{'' if start is not None else ', 0 when not given'}).",
                                 (f"Pass an --end of {first + 1} or more" if unit == "frame" else
                                  f"Pass an --end after {first:g}s") + ", or leave --end out to run to the end "
                                 "of the video.")
        if self.stride < 1:
            raise UsageError(f"--stride {self.stride}: must be at least 1.")
        if self.precision not in PRECISIONS:
            raise UsageError(f"bad --precision {self.precision!r}: use {', '.join(PRECISIONS)}.")
        if not 1 <= self.window_stride <= WINDOW:
            raise UsageError(f"--window-stride {self.window_stride}: must be 1..{WINDOW}.")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size {self.batch_size}: must be at least 1.")
        if self.detector_batch < 0:
            raise UsageError(f"--detector-batch {self.detector_batch}: must be 0 (auto) or more.")
        if self.detect_hz <= 0:
            raise UsageError(f"detect_hz {self.detect_hz}: must be positive.")
        if not 0 <= self.detect_every <= max(1, self.tracking.max_gap + 1):
            raise UsageError(f"--detect-every {self.detect_every}: must be 1..{self.tracking.max_gap + 1} "
                             "(--max-gap + 1), or the frames between detections could not be filled.")
        if not 32 <= self.detector_imgsz <= 4096 or self.detector_imgsz % 32:
            raise UsageError(f"--detector-imgsz {self.detector_imgsz}: a multiple of 32 from 32 to 4096.")
        if not 0.0 <= self.detector_conf <= 1.0:  # also refuses NaN
            raise UsageError(f"--detector-conf {self.detector_conf}: a score from 0 to 1.")
        if not 0.0 <= self.min_score <= 1.0:
            raise UsageError(f"--min-score {self.min_score}: a score from 0 to 1.")
        if self.focal is not None and not (math.isfinite(self.focal) and self.focal > 0):
            raise UsageError(f"--focal {self.focal}: must be a positive number of pixels.")
        bad = [f for f in self.mesh_formats if f not in MESH_FORMATS]
        if bad:
            raise UsageError(f"--mesh-format {','.join(bad)}: use obj, ply, obj,ply or none.")
        if self.camera not in CAMERA_MODELS:
            raise UsageError(f"--camera {self.camera}: use {', '.join(CAMERA_MODELS)}.")
        check_device_name(self.device)

    def detection_interval(self, fps: float) -> int:
        """Frames from one detection to the next for a video at `fps` (after --stride)."""
        if self.detect_every:
            return self.detect_every
        return max(1, min(self.tracking.max_gap + 1, int(fps / self.detect_hz)))

    def result_options(self) -> dict[str, Any]:
        """The options that change the numbers, by field name (the fingerprint's part)."""
        options = asdict(self)
        del options["device"], options["batch_size"], options["detector_batch"]
        return options


@dataclass(frozen=True)
class ModelSources:
    """Where the networks' weights come from. An unknown or repeated `models` name is a
    UsageError (exit 2) when the object is made; the files are checked when loaded."""

    models: tuple[str, ...] = ("str",)  # temporal models to run, the first's files at the folder's top
    checkpoints: tuple[Path, ...] = ()  # files for them, each recognised by its structure;
    # default per model: the str_checkpoint, tcmr_demo, vibe_wo_3dpw assets
    backbone: Path | None = None  # SPIN checkpoint; default: the spin_checkpoint asset
    detector: Path | None = None  # ultralytics weights; default: the detector asset
    smpl_dir: Path | None = None
    untrained: bool = False  # allow randomly initialised STR (and backbone): tests, demos
    seed: int = 0
    download: bool = True  # fetch missing public weights on first use

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in TEMPORAL_MODELS]
        if unknown or not self.models or len(set(self.models)) != len(self.models):
            raise UsageError(f"--model {','.join(self.models)}: name each of {', '.join(TEMPORAL_MODELS)} "
                             "at most once, comma-separated.")
        if not 0 <= self.seed <= SEED_MAX:  # torch.manual_seed overflows past 2**64 (a traceback)
            raise UsageError(f"--seed {self.seed}: must be in 0..{SEED_MAX}.")


def parse_frames(text: str | None) -> tuple[int, ...]:
    """`render --frames` '0,10,20' or 'start:stop[:step]' -> frame indices."""
    if not text:
        return ()
    try:
        if ":" in text:
            chosen = range(*[int(p) for p in text.split(":")])
        else:
            chosen = [int(p) for p in text.split(",")]
    except (ValueError, TypeError) as err:
        raise UsageError(f"bad --frames {text!r}: use 0,10,20 or start:stop[:step].") from err
    if len(chosen) > MAX_PNG_FRAMES:  # len() of a range is O(1): checked before anything walks it
        raise UsageError(f"--frames {text!r} asks for {len(chosen)} PNGs, more than {MAX_PNG_FRAMES}.",
                         "Write a video instead (the default), or pass a step: start:stop:step.")
    if len(chosen) == 0 or min(chosen) < 0:
        raise UsageError(f"bad --frames {text!r}: " + ("no frame in that range" if len(chosen) == 0
                                                        else "frame numbers start at 0") + ".",
                         "Use 0,10,20 or start:stop[:step] with 0 <= start < stop.")
    return tuple(chosen)


MAX_PNG_FRAMES = 100_000  # `render --frames`: more PNGs than any video needs is a typo (0:10000000000)


def parse_tracks(text: str | None) -> tuple[int, ...] | None:
    """`render --tracks` '0,2' -> track ids; None (all) when not given."""
    if not text:
        return None
    try:
        return tuple(int(p) for p in text.split(","))
    except ValueError as err:
        raise UsageError(f"bad --tracks {text!r}: use track ids like 0,2.") from err


def check_render_values(*, alpha: float, crf: int, fps: float | None, preset: str, video: bool,
                        frames: tuple[int, ...], compare: bool, side_view: bool) -> None:
    """`strcli render`'s values, checked before torch is imported (the same rules as
    `strcli.render.overlay.RenderOptions`, which checks them again when it is made)."""
    if not 0 < alpha <= 1:
        raise UsageError(f"--alpha {alpha}: must be in (0, 1].")
    if not 0 <= crf <= 51:
        raise UsageError(f"--crf {crf}: x264 takes 0 (lossless) to 51.")
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= 1000):
        raise UsageError(f"--fps {fps}: must be a positive number of frames per second, at most 1000.")
    if preset not in X264_PRESETS:
        raise UsageError(f"--preset {preset}: x264 has {', '.join(X264_PRESETS)}.")
    if not video and not frames:
        raise UsageError("--no-video writes nothing without --frames.", "Add --frames 0,100,200 or 0:300:10.")
    if compare and side_view:
        raise UsageError("--compare and --side-view do not go together (one panel per model).")
