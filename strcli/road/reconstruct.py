"""The reconstruction road for one video: video -> tracks -> crops -> features -> STR -> SMPL
-> outputs.

Two passes over the video keep memory flat whatever its length:
1. decode and track (ultralytics YOLO + ByteTrack, or the user's detections through the
   same ByteTrack); tracks are then finalised (gaps, smoothing, min length, max people),
   which needs the whole video, and that is all pass 1 keeps: boxes, no pixels;
2. decode again; each frame's boxes are cropped on the device as the frame arrives, crops
   are batched through ResNet-50, features stream into STR's 16-frame windows
   (`StreamingWindows`), and each frame whose windows have all run goes through SMPL and
   is written (meshes at once, parameters at the end of the track).
At most a batch of crops, a window of features per live track and the per-frame
parameters (a few hundred numbers per person-frame) are held in memory.

Size (over 500 lines): the order of the road's two passes and each video's bookkeeping
(fingerprint, skip, partial folder); the stages themselves are their own modules
(`video`, `tracking`, `crops`, `features`, `windows`, `posing`, `outputs`) and model
loading is `strcli.road.models`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import time
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from strcli import __version__
from strcli.body.camera import Intrinsics
from strcli.config import CAMERA_FILE, OVERLAY, WINDOW
from strcli.road.crops import crop_frame, square_boxes
from strcli.utils.devices import resolve_precision
from strcli.utils.errors import ResourceError, StrcliError, UsageError, writing
from strcli.road.inputs import another_video_problem, foreign_folder_problem, given_path
from strcli.utils.locks import sweep_video, video_lock
from strcli.road.output_check import DamagedOutput, check_output
from strcli.road.options import ModelSources, ReconstructOptions  # noqa: F401 (checked without torch; re-exported)
from strcli.utils.overlap import ReadAhead, WriteBehind
from strcli.road.outputs import (
    Counts,
    InputFile,
    ModelOutput,
    TrackFrames,
    TrackWriter,
    VideoFolder,
    VideoManifest,
    WeightsUsed,
    check_free_space,
    estimate_output_bytes,
    folder_bytes,
    read_manifest,
)
from strcli.road.posing import pose_frames
from strcli.road.tracking import (
    DETECTOR_BATCH_GPU,
    DetectionFit,
    DetectionTracker,
    Detections,
    Track,
    TrackedBox,
    USER_DETECTOR_HINT,
    YoloPersonDetector,
    check_fit,
    drop_outside,
    finalize_tracks,
    link_lone_boxes,
    no_track_reason,
    read_mot_detections,
)
from strcli.road.video import (Position, VideoInfo, VideoReader, empty_range_error, is_truncated, length_warning, parse_position, probe,
                               reading_warnings)
from strcli.weights.registry import (sha256_file)
from strcli.road.windows import StreamingWindows
from strcli.road.models import Models, load_models  # noqa: F401 (load_models re-exported: its old place)

if TYPE_CHECKING:
    from strcli.body.smpl import BodyOutput
    from strcli.road.camera_motion import CameraMotion, CameraMotionEstimator
    from strcli.road.world import TrackInCamera

# ----------------------------------------------------------------------------- progress


class Progress(Protocol):
    def start(self, stage: str, total: int | None) -> None: ...
    def advance(self, count: int = 1) -> None: ...
    def finish(self) -> None: ...
    def fail(self) -> None: ...  # the stage stopped because of an error: it is not `done`


class NoProgress:
    def start(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass

    def fail(self) -> None:
        pass


class StageTimer:
    """Seconds spent per stage; on CUDA the device is synchronised so GPU time is counted
    where it is spent."""

    def __init__(self, device: torch.device) -> None:
        self.seconds: dict[str, float] = {}
        self.cuda = device.type == "cuda"

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.cuda:
                torch.cuda.synchronize()
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class VideoResult:
    video: Path
    status: str  # done, skipped, failed
    output: Path | None = None
    tracks: int = 0
    frames: int = 0
    seconds: float = 0.0
    message: str = ""
    exit_code: int = 0
    warnings: tuple[str, ...] = ()
    rendered: Path | None = None  # overlay.mp4 (with --render, or a skipped video's existing one)
    bytes: int = 0  # size of the output folder
    exported: tuple[Path, ...] = ()  # files written by --export (<stem>.glb, the bvh/ folder)


@dataclass(frozen=True)
class TrackingPass:
    """Pass 1's result. Track frames are positions 0..P-1 in the processed frame sequence
    (so --stride does not look like gaps to the tracker); `frame_of` maps them to the file."""

    tracks: list[Track]
    frame_of: np.ndarray  # (P,) int64 frame index in the file of each position
    times: np.ndarray  # (P,) float64 seconds
    decoded: int
    damaged: int
    detections: int
    finished: bool = True  # the decoder reached the end of the file
    last_time: float | None = None  # seconds of the last frame decoded
    warnings: tuple[str, ...] = ()  # e.g. detections that do not fit the video
    detect_every: int = 1  # the detector ran on every N-th processed frame (1 with a detections file)
    mended: int = 0  # frames whose timestamp did not increase (`FrameClock`)
    resized: int = 0  # frames scaled to the first frame's size


def fingerprint(video: Path, detections: Path | None, options: ReconstructOptions,
                weights: list[WeightsUsed], device: torch.device | None = None,
                precision: str | None = None) -> str:
    """sha256 of everything that changes the numbers: strcli's version, the video (path,
    size, mtime), the detections file (its content's sha256), every result option (range,
    stride, tracking, detector settings, focal, window stride, mesh formats), every file
    of `weights` by content (detector, backbone, STR/TCMR/VIBE checkpoints, SMPL file, the
    mean parameters or the built-in fallback; a random initialisation by its seed) and the
    device kind (the detector runs in fp16 on a GPU) and the precision `--precision auto`
    resolved to (bf16 or fp32)."""
    key = {"strcli": __version__, "input": asdict(InputFile.of(video)),
           "detections": sha256_file(detections) if detections else None,
           "options": options.result_options(),
           "weights": [(w.name, w.sha256, w.note) for w in weights],
           "device": device.type if device is not None else None}
    if precision is not None:
        key["precision"] = precision
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _versions(device: torch.device) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("torch", "torchvision", "ultralytics", "smplx", "av", "numpy", "trimesh"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


# ----------------------------------------------------------------------------- the road


def reconstruct_video(video: Path, out_root: Path, options: ReconstructOptions, models: Models,
                      detections: Path | None = None, overwrite: bool = False,
                      progress: Progress | None = None) -> VideoResult:
    """Run the road on one video into `out_root/<stem>/`; skip it if a finished folder with
    the same fingerprint is there (unless `overwrite`). A full disk, a read-only folder or a
    permission error, from any stage or thread, raises OutputError (exit 6). Holds the
    video's lock (`strcli.utils.locks.video_lock`): BusyError (exit 9) when another process
    writes that folder (a video already done is skipped without it)."""
    progress = progress or NoProgress()
    started = time.perf_counter()
    key = fingerprint(video, detections, options, models.weights, models.device, models.precision) \
        if video.is_file() else ""
    with writing(out_root / video.stem):
        if (foreign := foreign_folder_problem(out_root / video.stem)) is not None:
            raise foreign  # the user's own file or folder under the video's name (also checked at commit)
        sweep_video(out_root, video.stem)  # dead runs' partial folders go on every run, a skipped one too
        skipped = None if overwrite else _already_done(video, out_root, key)
        if skipped is not None:
            return skipped
        with video_lock(out_root, video.stem, "reconstruct"):
            return _reconstruct_video(video, out_root, options, models, detections, overwrite, key, progress,
                                      started)


def _already_done(video: Path, out_root: Path, key: str) -> VideoResult | None:
    """The skipped result when `OUT/<stem>/` holds this video's run with the same
    fingerprint; None when it is to be (re)done. A folder that holds another video of the
    same stem (another path that still exists) is refused: UsageError (exit 2), redoing would
    replace it. When the recorded video is gone (moved or renamed), the folder is redone."""
    other = another_video_problem(video, out_root)  # checked before torch by the CLI too (inputs.run_problem)
    if other is not None:
        raise other
    previous = read_manifest(out_root / video.stem)
    if isinstance(previous, dict) and previous.get("fingerprint") == key:
        folder = out_root / video.stem
        try:
            check_output(folder)  # the same check as render, export and view
        except DamagedOutput:
            return None  # this video's own folder, damaged since: redone, not skipped
        overlay = folder / OVERLAY
        return VideoResult(video, "skipped", folder, len(previous.get("tracks", [])),
                           previous.get("counts", {}).get("frames_processed", 0),
                           message="already done (same input, options and weights)",
                           warnings=tuple(previous.get("warnings", [])),
                           rendered=overlay if overlay.is_file() else None, bytes=folder_bytes(folder))
    return None


def _reconstruct_video(video: Path, out_root: Path, options: ReconstructOptions, models: Models,
                       detections: Path | None, overwrite: bool, key: str, progress: Progress,
                       started: float) -> VideoResult:
    """Under the video's lock: the same check again (a process that held the lock may just
    have finished the same work), then the run (the networks are built here, when first needed)."""
    if not overwrite and (done := _already_done(video, out_root, key)) is not None:
        return done
    models.ready()
    try:
        return _reconstruct(video, out_root, options, models, detections, key, progress, started)
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        raise ResourceError(f"out of GPU memory on {video.name} ({str(err).splitlines()[0]}).",
                            f"Rerun with a smaller --batch-size (now {options.batch_size}) "
                            "or on another GPU.") from err


def _reconstruct(video: Path, out_root: Path, options: ReconstructOptions, models: Models,
                 detections: Path | None, key: str, progress: Progress, started: float) -> VideoResult:
    info = probe(video)
    start_at, end_at = parse_position(options.start), parse_position(options.end)
    timer = StageTimer(models.device)
    warnings = list(models.warnings)
    if info.rotation_warning:
        warnings.append(info.rotation_warning)

    tracked = track_video(info, start_at, end_at, options, models.detector, detections, models.device, timer,
                          progress, models.detector_hint, models.precision)
    warnings += tracked.warnings
    if not tracked.tracks:  # with boxes, the line before says why none made a track
        warnings.append("no track was kept: the result is empty." if tracked.detections else
                        "no person found: the result is empty.")
    truncated = is_truncated(info, tracked.decoded, tracked.last_time) if tracked.finished else None
    if tracked.finished and (warning := length_warning(info, tracked.decoded, tracked.last_time)):
        warnings.append(warning)
    if tracked.damaged:
        warnings.append(f"{tracked.damaged} damaged packet(s) could not be decoded; their frames are missing.")
    if len(tracked.frame_of) == 0:
        raise empty_range_error(options.start, options.end, tracked.decoded, tracked.last_time)
    # The range as frame indices (seconds were resolved by timestamp in pass 1).
    start, end = int(tracked.frame_of[0]), int(tracked.frame_of[-1]) + 1
    amass_rate = constant_rate(tracked.times, tracked.frame_of)
    if amass_rate is not None:
        warnings.append(f"variable frame rate ({_rate_range(tracked.times, tracked.frame_of)}): track times "
                        f"are the frames' timestamps; the AMASS files are resampled to a constant "
                        f"{amass_rate:g} fps (their key 'resampled').")

    intrinsics = Intrinsics.default_for(info.width, info.height, options.focal)
    person_frames = sum(len(t) for t in tracked.tracks)
    faces = np.asarray(models.body.faces)
    check_free_space(out_root, estimate_output_bytes(person_frames, faces, int(faces.max()) + 1,
                                                     options.mesh_formats, len(models.temporal)),
                     f"{video.name} ({person_frames} person-frames, meshes as "
                     f"{','.join(options.mesh_formats) or 'none'})")
    with VideoFolder(out_root, video.stem) as folder:
        outputs, person_frames, world = _reconstruct_tracks(
            info, start, end, options, models, tracked, intrinsics, folder.tmp, timer, progress, amass_rate)
        warnings += world.pop("warnings", [])
        summaries, meshes = outputs[0].tracks, outputs[0].meshes
        manifest = VideoManifest(
            strcli=__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), fingerprint=key,
            input=InputFile.of(video),
            video={**asdict(info), "path": str(given_path(info.path)), "target": str(info.path.resolve()),
                   "variable_frame_rate": amass_rate is not None},
            options={**asdict(options), "detections": str(detections.resolve()) if detections else None,
                     "detections_sha256": sha256_file(detections) if detections else None,
                     "start_frame": start, "end_frame": end,
                     "start_time": float(tracked.times[0]), "end_time": float(tracked.times[-1]),
                     # the interval used, and whether it was chosen automatically (0 = auto)
                     "detect_every": tracked.detect_every, "detect_every_auto": options.detect_every == 0,
                     # what --precision resolved to: the detector's and the ResNet-50's
                     "precision_used": models.precision},
            versions=_versions(models.device), weights=models.weights,
            intrinsics={"focal": intrinsics.focal, "width": intrinsics.width, "height": intrinsics.height,
                        "matrix": intrinsics.matrix.tolist(),
                        "source": "--focal" if options.focal else "image diagonal"},
            counts=Counts(frames_in_file=info.frames_in_file, frames_expected=info.frames_expected,
                          truncated=truncated, frames_decoded=tracked.decoded,
                          frames_processed=len(tracked.frame_of), damaged_packets=tracked.damaged,
                          detections=tracked.detections, tracks=len(summaries),
                          person_frames=person_frames, meshes=meshes, timestamps_mended=tracked.mended,
                          frames_resized=tracked.resized),
            timings={**{k: round(v, 3) for k, v in timer.seconds.items()},
                     "total": round(time.perf_counter() - started, 3)},
            tracks=summaries, warnings=warnings, models=outputs, world=world)
        with timer("write"):
            folder.write_manifest(manifest)
            final = folder.commit()
    return VideoResult(video, "done", final, len(summaries), len(tracked.frame_of),
                       time.perf_counter() - started, warnings=tuple(warnings), bytes=folder_bytes(final))


def track_video(info: VideoInfo, start: int | Position | None, end: int | Position | None,
                options: ReconstructOptions,
                detector: Path | None = None, detections: Path | None = None,
                device: torch.device = torch.device("cpu"), timer: StageTimer | None = None,
                progress: Progress | None = None, detector_hint: str = USER_DETECTOR_HINT,
                precision: str | None = None) -> TrackingPass:
    """Pass 1: decode, detect (YOLO `detector`, or the MOT file `detections`), track; keep
    boxes only. `start`/`end`: frame indices or `Position`s (seconds select by timestamp).

    A detections file's boxes wholly outside the frame and lines after the video's last
    frame are dropped with a warning that counts them; a file most of whose boxes do not
    fit is refused (UsageError, exit 2: the detections of another video)."""
    timer = timer or StageTimer(device)
    progress = progress or NoProgress()
    fps = info.fps / options.stride
    lost = options.tracking.lost_seconds
    given: dict[int, Detections] | None = None
    every = 1  # a detections file has every frame's boxes already
    outside = 0
    mostly_outside: dict[int, int] = {}
    if detections is not None:
        given = read_mot_detections(detections, options.min_score)
        in_file = sum(len(found) for found in given.values())
        given, outside, mostly_outside = drop_outside(given, info.width, info.height)
        if info.frames_expected:  # refuse a file of another video before decoding it
            check_fit(DetectionFit.of(in_file, given, outside, mostly_outside, info.frames_expected - 1),
                      detections, info.width, info.height)
        tracker = DetectionTracker(fps, lost)
    else:
        if detector is None:
            raise UsageError("no detector loaded and no --detections file given.")
        every = options.detection_interval(fps)
        precision = precision or resolve_precision(options.precision, device)
        yolo = YoloPersonDetector(detector, _ultralytics_device(device), options.detector_imgsz,
                                  options.detector_conf, half=device.type == "cuda", hint=detector_hint,
                                  cpu_bf16=device.type == "cpu" and precision == "bf16")
        tracker = DetectionTracker(fps / every, lost)  # told the detections' rate
    batch = options.detector_batch or (DETECTOR_BATCH_GPU if device.type == "cuda" else 1)
    pending: list[tuple[int, np.ndarray]] = []  # (position, image) waiting for the detector
    reader = VideoReader(info.path, start, end, options.stride, images=given is None)
    frame_of: list[int] = []
    times: list[float] = []
    boxes: list[TrackedBox] = []
    detected: dict[int, Detections] = {}  # position -> the boxes the tracker was given
    count = 0

    def detect() -> int:
        """YOLO on the pending frames, then the tracker on each, in order."""
        found = yolo([image for _, image in pending])
        for (position, _), people in zip(pending, found):
            detected[position] = people
            boxes.extend(tracker(position, people))
        pending.clear()
        return sum(len(people) for people in found)

    progress.start("tracking", _expected_frames(info, start, end, options.stride))
    frames = iter(ReadAhead(reader, depth=4))  # decoding runs ahead in its own thread
    while True:
        with timer("decode"):
            frame = next(frames, None)
        if frame is None:
            break
        position = len(frame_of)
        frame_of.append(frame.index)
        times.append(frame.time)
        with timer("detect+track"):
            if given is not None:
                found = given.get(frame.index, Detections.empty())
                detected[position] = found
                count += len(found)
                boxes += tracker(position, found)
            elif position % every == 0:  # the frames between are filled from the tracks' boxes
                pending.append((position, frame.image))
                if len(pending) >= batch:
                    count += detect()
        progress.advance()
    frames.close()
    with timer("detect+track"):
        count += detect() if pending else 0
    progress.finish()
    warnings: list[str] = reading_warnings(info, reader)
    if given is not None and detections is not None:
        # The video's last frame: what the file announces (lines between a truncated file's
        # end and its announced length are the truncation's, warned about as such), else
        # the last decoded, when decoding reached the end.
        last = max((info.frames_expected or 0) - 1, reader.decoded - 1 if reader.finished else -1)
        fit = DetectionFit.of(in_file, given, outside, mostly_outside, last if last >= 0 else None)
        check_fit(fit, detections, info.width, info.height)
        if (warning := fit.warning(info.width, info.height)) is not None:
            warnings.append(warning)
    with timer("detect+track"):
        links = link_lone_boxes(detected, boxes, options.tracking, every)  # a fast person's boxes
        tracks = finalize_tracks(links.boxes, options.tracking)
    if links.linked_tracks:
        warnings.append(f"{links.linked_tracks} track(s) were linked from boxes moving up to {links.fastest:.1f} "
                        "box widths a frame, faster than the tracker follows (no other box near): check them "
                        "(docs/video-input.md).")
    if count and not tracks:
        warnings.append(no_track_reason(count, links, options.tracking))
    return TrackingPass(tracks, np.array(frame_of, np.int64), np.array(times, np.float64),
                        reader.decoded, reader.damaged, count, reader.finished, reader.last_time, tuple(warnings), every,
                        reader.mended, reader.resized)


COMMON_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0, 90.0, 100.0, 120.0, 240.0)


def constant_rate(times: np.ndarray, frame_of: np.ndarray) -> float | None:
    """None for a constant frame rate; for a variable one, the rate the AMASS files are
    resampled to: that of the usual interval between consecutive frames (the mean of those
    within 10% of the median: the video's usual rate, so its fastest stretches keep most of
    their detail), snapped to the closest common rate when within 0.5% of it (timestamps in
    milliseconds make 30 fps steps of 33 and 34 ms; 30 stays 30, though 29.97 is within
    0.5% too). Timestamps (seconds) per file frame varying by more than
    10% make a rate variable."""
    steps = np.diff(frame_of)
    if len(steps) < 2:
        return None
    per_frame = np.diff(times) / steps  # seconds per file frame
    median = float(np.median(per_frame))
    if median <= 0 or float(per_frame.max() - per_frame.min()) <= 0.1 * median:
        return None
    usual = per_frame[np.abs(per_frame - median) <= 0.1 * median].mean()  # timestamps are rounded
    rate = 1 / float(usual)
    standard = min(COMMON_RATES, key=lambda common: abs(rate - common))  # 30.0, not 29.97, for 30.0
    if abs(rate - standard) <= 0.005 * standard:  # 33 and 34 ms steps are 30 fps
        return standard
    return round(rate, 3)


def _rate_range(times: np.ndarray, frame_of: np.ndarray) -> str:
    per_frame = np.diff(times) / np.diff(frame_of)
    return f"{1 / per_frame.max():.3g} to {1 / per_frame.min():.3g} fps"


def _ultralytics_device(device: torch.device) -> str:
    return "cpu" if device.type == "cpu" else str(device.index or 0)


def _expected_frames(info: VideoInfo, start: int | Position | None, end: int | Position | None,
                     stride: int) -> int | None:
    """About how many frames pass 1 will see (for the progress bar)."""

    def frame(at: int | Position | None) -> int | None:
        if isinstance(at, Position):
            return at.frame if at.frame is not None else int(round((at.seconds or 0) * (info.fps or 0)))
        return at

    first = frame(start) or 0
    last = frame(end) if end is not None else info.frames_expected
    return None if last is None else max(0, -(-(last - first) // stride))


CAMERA_THREAD = False  # the camera-motion stage in a thread of its own: no gain measured on 2 cores (docs/performance.md)
CAMERA_QUEUE = 8  # frames waiting for it at most (a 720p frame: 2.8 MB)


class _CameraFeed:
    """Pass 2's frames to the camera-motion stage, in order: in a thread of its own fed
    through a bounded queue (OpenCV releases Python's lock; the stage's calls and results
    are those of the main thread's, bit for bit), or inline when `threaded` is False.
    An error in the thread is raised at the next `add` or at `finish`; a feed dropped
    unfinished (an error elsewhere) stops its thread."""

    def __init__(self, stage: CameraMotionEstimator, threaded: bool) -> None:
        self.stage = stage
        self.behind: WriteBehind | None = None
        if threaded:
            self.behind = WriteBehind(lambda item: stage.add(*item), CAMERA_QUEUE)
            weakref.finalize(self, self.behind.abort)

    def add(self, position: int, image: np.ndarray, boxes: np.ndarray, track_ids: np.ndarray) -> None:
        if self.behind is None:
            self.stage.add(position, image, boxes, track_ids)
        else:
            self.behind.put((position, image, boxes, track_ids))

    def finish(self, depths: dict[int, dict[int, float]]) -> CameraMotion:
        if self.behind is not None:
            self.behind.close()
        return self.stage.finish(depths)


@dataclass(frozen=True)
class _Sequence:
    """One run of consecutive frames of a track: STR's unit (it never bridges a gap)."""

    track: int  # index into the tracks
    first_row: int  # the run's first row in the track


def _reconstruct_tracks(info: VideoInfo, start: int, end: int | None, options: ReconstructOptions,
                        models: Models, tracked: TrackingPass, intrinsics: Intrinsics, folder: Path,
                        timer: StageTimer, progress: Progress, amass_rate: float | None = None
                        ) -> tuple[list[ModelOutput], int, dict]:
    """Pass 2: crops -> features -> each temporal model -> SMPL -> files, streamed, with the
    camera-motion stage fed the same frames. The features are computed once and fed to every
    model; then each model's bodies are put in the video's world (`place_in_world`).
    Returns the models' outputs, the person-frames and the manifest's `world` section (its
    "warnings" to be moved to the manifest's warnings)."""
    from strcli.road.camera_motion import CameraMotion, CameraMotionEstimator
    from strcli.road.grounding import FOOT_JOINTS
    from strcli.road.world import place_in_world, write_camera_file

    tracks = tracked.tracks
    names = list(models.temporal)
    folders = {name: "." if k == 0 else f"models/{name}" for k, name in enumerate(names)}
    camera_stage = CameraMotionEstimator(intrinsics, info.fps / options.stride, options.camera)
    if not tracks:
        camera = CameraMotion.identity(len(tracked.frame_of), options.camera)
        write_camera_file(folder, camera, None, tracked.frame_of, tracked.times, intrinsics)
        forced = [] if options.camera in ("auto", "static") else [(
            f"--camera {options.camera} was asked, but no person was tracked: without people there is no world, "
            "and camera.npz holds the identity (the camera motion is not estimated).")]
        return ([ModelOutput(name, folders[name], [], 0) for name in names], 0,
                {"camera_model": camera.model, "camera_requested": options.camera, "camera_file": CAMERA_FILE,
                 "warnings": forced})
    device = models.device
    faces = models.body.faces
    writers = {name: [TrackWriter(folder / folders[name],
                                  TrackFrames(t.track_id, tracked.frame_of[t.frames], tracked.times[t.frames],
                                              t.boxes, t.scores, t.interpolated),
                                  faces, options.mesh_formats, intrinsics.matrix, info.fps,
                                  (info.width, info.height), amass_rate) for t in tracks] for name in names}
    sequences: list[_Sequence] = []
    lengths: list[int] = []
    sequence_of_row: list[np.ndarray] = []  # per track: (N,) sequence of each row
    for k, track in enumerate(tracks):
        of_row = np.empty(len(track), np.int64)
        for run in track.segments():
            of_row[run] = len(sequences)
            sequences.append(_Sequence(k, run.start))
            lengths.append(run.stop - run.start)
        sequence_of_row.append(of_row)
    streams = {name: StreamingWindows(model, lengths, WINDOW, options.window_stride, options.batch_size)
               for name, model in models.temporal.items()}
    next_row = [0] * len(tracks)
    by_start = sorted(range(len(tracks)), key=lambda k: int(tracks[k].frames[0]))
    opened = 0
    live: list[int] = []
    pending_crops: list[torch.Tensor] = []
    pending_rows: list[tuple[int, int]] = []  # (track, row) of each pending crop

    def finish(name: str, finals: list) -> None:
        for final in finals:
            seq = sequences[final.sequence]
            rows = seq.first_row + final.first + np.arange(len(final.prediction.betas))
            track = tracks[seq.track]
            with timer("smpl"):
                posed = pose_frames(final.prediction, track.boxes[rows], models.body, intrinsics)
            with timer("write"):
                writers[name][seq.track].add(rows, posed)

    def run_features() -> None:
        if not pending_rows:
            return
        with timer("features"):
            features = models.extractor(torch.cat(pending_crops))  # (n, 2048)
        progress.advance(len(pending_rows))  # bodies cropped and through the backbone
        for name, stream in streams.items():
            finals = []
            with timer("temporal"):
                for i, (k, row) in enumerate(pending_rows):
                    finals += stream.add(int(sequence_of_row[k][row]), features[i : i + 1])
            finish(name, finals)
        pending_crops.clear()
        pending_rows.clear()

    camera_feed = _CameraFeed(camera_stage, CAMERA_THREAD and options.camera != "static")
    reader = VideoReader(info.path, start, end, options.stride)
    total = sum(len(t) for t in tracks)
    progress.start("bodies", total)  # cropped, through the ResNet-50 and STR, posed, written
    frames = iter(ReadAhead(reader, depth=4))  # decoding runs ahead in its own thread
    for position in range(len(tracked.frame_of)):
        with timer("decode"):
            frame = next(frames, None)
        if frame is None:
            raise StrcliError(f"{info.path.name}: the second decoding pass ended after {position} "
                              f"frames, the first saw {len(tracked.frame_of)}: was the file changed?")
        while opened < len(by_start) and tracks[by_start[opened]].frames[0] <= position:
            live.append(by_start[opened])
            opened += 1
        active = []
        for k in live:
            if next_row[k] < len(tracks[k]) and tracks[k].frames[next_row[k]] == position:
                active.append((k, next_row[k]))
                next_row[k] += 1
        live = [k for k in live if next_row[k] < len(tracks[k])]
        with timer("camera"):  # the background of this frame, every person's box masked (or queued for it)
            camera_feed.add(position, frame.image,
                             np.array([tracks[k].boxes[r] for k, r in active]).reshape(-1, 4),
                             np.array([tracks[k].track_id for k, _ in active], np.int64))
        if not active:
            continue
        with timer("crop"):  # only the people's region goes to the device, pinned, without a sync
            xyxy = torch.from_numpy(np.stack([tracks[k].boxes[r] for k, r in active]))
            crops = crop_frame(torch.from_numpy(frame.image), square_boxes(xyxy), device=device)  # (n, 3, 224, 224)
        pending_crops.append(crops)
        pending_rows.extend(active)
        if len(pending_rows) >= models.extractor.batch_size:  # a backbone batch (8 on a CPU)
            run_features()
    frames.close()  # stops the decoding thread (the file may hold frames past the range)
    run_features()
    for name, stream in streams.items():
        with timer("temporal"):
            finals = stream.flush()
        finish(name, finals)
    progress.finish()

    with timer("camera"):
        first = writers[names[0]]
        feet = list(FOOT_JOINTS)  # a moving camera's scale: the depth of each person's feet, camera z
        depths = {tracks[k].track_id: dict(zip(tracks[k].frames.tolist(), np.concatenate(w.parts["joints3d"])[
            np.argsort(np.concatenate(w.rows))][:, feet, 2].mean(1).tolist())) for k, w in enumerate(first)}
        camera = camera_feed.finish(depths)
    outputs = []
    section: dict = {"camera_model": camera.model, "camera_requested": options.camera, "camera_file": CAMERA_FILE,
                     "foot_lock": options.foot_lock, "warnings": list(camera.warnings), "floor": {}}
    if options.camera in ("rotating", "moving") and camera.model == "static":
        section["warnings"].append(f"--camera {options.camera} was asked, but {len(camera)} processed frame(s) "
                                   "give no second keyframe to solve against: the camera is static.")
    if camera.model == "moving":
        section["camera_scale"] = camera.scale_source
    for name in names:
        rests = []
        for writer in writers[name]:
            betas = torch.from_numpy(np.concatenate(writer.parts["betas"]).mean(0, keepdims=True)).to(device)
            with torch.inference_mode():
                rests.append(models.body.axis_angle(torch.zeros(1, 3, device=device),
                                                    torch.zeros(1, 69, device=device), betas))
        with timer("world"):
            world, slides = place_in_world([_in_camera(w, rest, tracked.frame_of) for w, rest in zip(writers[name], rests)],
                                           camera, options.foot_lock)
        section["floor"][name] = {"source": world.frame.floor.source, "contacts": world.frame.floor.contacts_used,
                                  "normal_in_first_camera": np.round(world.frame.floor.normal, 6).tolist()}
        section["warnings"] += [f"{name}: {w}" if len(names) > 1 else w for w in world.warnings]
        if name == names[0]:
            with timer("write"):
                write_camera_file(folder, camera, world, tracked.frame_of, tracked.times, intrinsics)
        with timer("write"):
            summaries = [writer.close(rest.joints[0, 0].float().cpu().numpy(), placed, slide)
                         for writer, rest, placed, slide in zip(writers[name], rests, world.tracks, slides)]
        outputs.append(ModelOutput(name, folders[name], summaries, sum(w.meshes for w in writers[name])))
    return outputs, total, section


def _in_camera(writer: TrackWriter, rest: BodyOutput, frame_of: np.ndarray) -> TrackInCamera:
    """A written track as the world stage takes it; `rest`: its body in the rest pose (mean shape)."""
    from strcli.road.grounding import FOOT_JOINTS, feet_in_view
    from strcli.road.world import TrackInCamera

    values = writer.values()
    positions = np.searchsorted(frame_of, writer.track.frames)  # file frames -> processed positions
    joints, vertices = rest.joints[0].float().cpu().numpy(), rest.vertices[0].float().cpu().numpy()
    soles = joints[list(FOOT_JOINTS), 1] - vertices[:, 1].min()  # SMPL's rest pose stands along +y
    in_view = feet_in_view(values["joints2d"][:, list(FOOT_JOINTS)], writer.track.boxes, *writer.image_size)
    return TrackInCamera(writer.track.track_id, positions.astype(np.int64), writer.track.times,
                         values["global_orient"], values["joints3d"], joints[0], soles, values["body_pose"], in_view)
