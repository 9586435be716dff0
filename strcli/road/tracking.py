"""People -> tracks: ultralytics YOLO (class person) or the user's detections, through
ultralytics' ByteTrack, then cleaned into `Track`s.

Both detection sources go through the same tracker, `DetectionTracker`: ultralytics'
`BYTETracker` built from its own `bytetrack.yaml`, one per video, fed the boxes of
`YoloPersonDetector` (YOLO, class person, a batch of frames at a time) or of a MOT
Challenge detection file (`read_mot_detections`, `track_detections`). `link_lone_boxes`
links what ByteTrack leaves over when nothing else competes (a fast person,
docs/video-input.md); `finalize_tracks` then drops short tracks, fills short gaps by interpolating the box, smooths the boxes, keeps the
N longest tracks and renumbers them 0..K-1 in order of first appearance.

Size (over 500 lines): the detector, detection files and their ByteTrack pass stay
together so both sources give boxes through the same tracker, the same linking of left-over
boxes and the same finalisation.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from strcli.utils.errors import CorruptAssetError, UsageError

os.environ.setdefault("YOLO_OFFLINE", "1")  # never download at run time
os.environ.setdefault("YOLO_AUTOINSTALL", "False")  # never pip-install at run time
# Ultralytics' restricted loading: `torch.load(weights_only=True)` against its allow-list of
# model classes, and model yamls built without `eval`. Forced, not a default: no file may run code.
os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
DETECTOR_SUFFIXES = (".pt", ".yaml", ".yml")  # formats that load without running code
# Modules a pickled ultralytics checkpoint may name (torch and ultralytics classes, numpy
# arrays, paths); anything else (os.system, builtins.eval, ...) is refused before loading.
_DETECTOR_GLOBAL_MODULES = ("torch", "ultralytics", "numpy", "collections", "pathlib", "_codecs")
_DETECTOR_BUILTINS = {"builtins.getattr", "builtins.set", "builtins.frozenset", "builtins.slice"}

PERSON_CLASS = 0  # COCO
# Frames per detector call on a GPU, which one frame at a time leaves mostly idle; 1 on a
# CPU, where a batch buys nothing and only holds frames back.
DETECTOR_BATCH_GPU = 16


def import_ultralytics() -> None:
    """Import ultralytics without its process-wide side effect.

    On import it sets OMP_NUM_THREADS=1 when unset (to calm its own training), which every
    process started afterwards inherits: DataLoader workers, a batch's or a benchmark's fresh
    process would then run PyTorch on one thread. The caller's setting is put back.
    """
    before = os.environ.get("OMP_NUM_THREADS")
    try:
        import ultralytics  # noqa: F401
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


@dataclass(frozen=True)
class TrackingConfig:
    min_length: int = 8  # frames; shorter tracks are dropped
    max_gap: int = 8  # frames; longer gaps split nothing but are not filled
    smooth_window: int = 5  # frames of the centred moving average on boxes (1 = off)
    max_people: int | None = None  # keep the N longest tracks
    lost_seconds: float = 1.0  # how long ByteTrack keeps a lost track alive

    def __post_init__(self) -> None:
        if self.min_length < 1:
            raise UsageError(f"--min-track-length {self.min_length}: must be at least 1 frame.")
        if self.max_gap < 0:
            raise UsageError(f"--max-gap {self.max_gap}: must be 0 (no filling) or more.")
        if self.smooth_window < 1:
            raise UsageError(f"--smooth {self.smooth_window}: must be at least 1 (1 = off).")


@dataclass(frozen=True)
class Detections:
    """One frame's person boxes, shaped as ultralytics' trackers expect (numpy, maskable)."""

    xyxy: np.ndarray  # (N, 4)
    conf: np.ndarray  # (N,)

    @property
    def cls(self) -> np.ndarray:
        return np.full(len(self.conf), PERSON_CLASS, np.float32)

    @property
    def xywh(self) -> np.ndarray:
        """(N, 4) centre x, centre y, width, height."""
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate((self.xyxy[:, :2] + wh / 2, wh), axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: np.ndarray) -> Detections:
        return Detections(self.xyxy[mask], self.conf[mask])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


@dataclass(frozen=True)
class TrackedBox:
    frame: int
    track_id: int  # the tracker's id (not yet renumbered)
    xyxy: np.ndarray  # (4,)
    score: float


@dataclass(frozen=True)
class Track:
    """One person through the video; rows are frames in increasing order."""

    track_id: int  # 0..K-1, in order of first appearance
    frames: np.ndarray  # (N,) int64 frame indices
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2, smoothed
    scores: np.ndarray  # (N,) float32 detection score; 0 where the box was interpolated
    interpolated: np.ndarray  # (N,) bool

    def __len__(self) -> int:
        return len(self.frames)

    def segments(self) -> list[slice]:
        """Runs of consecutive frames (a gap longer than max_gap splits the track's runs)."""
        breaks = np.flatnonzero(np.diff(self.frames) > 1) + 1
        edges = [0, *breaks.tolist(), len(self.frames)]
        return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


MOT_FORMAT = ("Each line must be frame,-1,x,y,w,h,score[,...] (MOT format): a whole frame number from 1, "
              "a box of positive width and height (numbers within a million pixels), a finite score.")
# Coordinates further than this from the image (pixels) are no box of any video: refused as
# malformed rather than computed with (1e308 + 1e308 overflows).
MAX_COORDINATE = 1e6


def _mot_line_problem(fields: list[str]) -> tuple[str | None, tuple[float, ...]]:
    """What is wrong with one MOT line's fields (None if nothing), and its numbers
    (frame, x, y, w, h, score)."""
    if len(fields) < 7:
        return f"{len(fields)} column(s), MOT detections have at least 7 (frame,-1,x,y,w,h,score)", ()
    values = []
    for name, text in zip(("frame", "id", "x", "y", "width", "height", "score"), fields):
        try:
            values.append(float(text))
        except ValueError:
            return f"the {name} {text.strip()!r} is not a number", ()
    frame, _, x, y, w, h, score = values
    for name, value in (("frame", frame), ("x", x), ("y", y), ("width", w), ("height", h), ("score", score)):
        if not math.isfinite(value):
            return f"the {name} is {value}", ()
    if not frame.is_integer():
        return f"the frame number {frame:g} is not a whole number", ()
    if frame < 1:
        return f"the frame number {frame:g} is below 1 (MOT frame numbers start at 1)", ()
    if frame > 2**31 - 1:  # also keeps the int64 cast below from overflowing (a numpy warning on stderr)
        return f"the frame number {frame:g} is beyond any video's", ()
    for name, value in (("x", x), ("y", y), ("width", w), ("height", h)):
        if abs(value) > MAX_COORDINATE:
            return f"the {name} {value:g} is beyond a million pixels", ()
    if w <= 0 or h <= 0:
        return f"the box is {w:g}x{h:g} pixels (width and height must be positive)", ()
    return None, (frame, x, y, w, h, score)


def read_mot_detections(path: str | Path, min_score: float = 0.0) -> dict[int, Detections]:
    """MOT Challenge detections `frame,-1,x,y,w,h,score,...` (frame from 1) -> 0-based frames.

    Blank lines, `#` comments and a UTF-8 byte order mark are skipped. A malformed line (too
    few fields, not a number, NaN or infinite, a fractional frame number, a box of no or
    negative size, coordinates beyond `MAX_COORDINATE`) is refused with its line number:
    UsageError (exit 2)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read detections {path} ({err}).", MOT_FORMAT) from err
    rows: list[tuple[float, ...]] = []
    bad: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        problem, row = _mot_line_problem(line.split(","))
        if problem is None:
            rows.append(row)
        else:
            bad.append((number, problem))
    if bad:
        more = f" (and {len(bad) - 1} more malformed line(s))" if len(bad) > 1 else ""
        raise UsageError(f"--detections {path.name}, line {bad[0][0]}: {bad[0][1]}{more}.", MOT_FORMAT)
    if not rows:
        return {}  # no detections at all: a valid file
    table = np.array(rows, np.float64)  # (N, 6) frame, x, y, w, h, score
    table = table[table[:, 5] >= min_score]
    frames = table[:, 0].astype(np.int64) - 1
    xyxy = np.concatenate((table[:, 1:3], table[:, 1:3] + table[:, 3:5]), axis=1).astype(np.float32)
    order = np.argsort(frames, kind="stable")  # each frame's boxes in the file's order
    unique, first = np.unique(frames[order], return_index=True)
    scores = table[:, 5].astype(np.float32)
    return {int(frame): Detections(xyxy[rows], scores[rows])
            for frame, rows in zip(unique, np.split(order, first[1:]))}


@dataclass(frozen=True)
class DetectionFit:
    """How a detections file fits its video: boxes and lines that cannot be of it. Each box
    is counted once, so `misfits` never exceeds `boxes`: a box wholly outside the frame is
    `outside` wherever it is; of the others, one after the last frame is `past_end`, one
    on a frame of the video with less than half its area inside is `mostly_outside`."""

    boxes: int  # boxes in the file (after --min-score)
    outside: int  # boxes wholly outside the frame (dropped)
    past_end: int  # boxes on frames after the video's last (dropped)
    last_frame: int | None  # the video's last frame (0-based), None where unknown
    mostly_outside: int = 0  # boxes on the video's frames with less than half their area in the frame (kept)

    @classmethod
    def of(cls, boxes: int, kept: dict[int, Detections], outside: int, mostly_outside: dict[int, int],
           last_frame: int | None) -> DetectionFit:
        """The fit of a file of `boxes` boxes, from `drop_outside`'s results (`kept`, the
        `outside` count, the per-frame counts of boxes mostly outside) and the video's
        `last_frame` (0-based; None where unknown: nothing is past the end)."""
        if last_frame is None:
            return cls(boxes, outside, 0, None, sum(mostly_outside.values()))
        return cls(boxes, outside, count_past_end(kept, last_frame), last_frame,
                   sum(n for frame, n in mostly_outside.items() if frame <= last_frame))

    @property
    def misfits(self) -> int:
        """Boxes that cannot be of this video (those mostly outside the frame included:
        detectors clip their boxes to the image, a person at its edge is a few of them)."""
        return self.outside + self.past_end + self.mostly_outside

    def warning(self, width: int, height: int) -> str | None:
        """A warning counting what was dropped (None when nothing was)."""
        if not self.outside and not self.past_end:
            return None
        parts = []
        if self.outside:
            parts.append(f"{self.outside} box(es) wholly outside the {width}x{height} frame")
        if self.past_end:
            parts.append(f"{self.past_end} box(es) on frames after the video's last "
                         f"(frame {(self.last_frame or 0) + 1} in MOT numbering)")
        return (f"--detections: dropped {' and '.join(parts)}, of {self.boxes}: is this the right file?")


def drop_outside(detections: dict[int, Detections], width: int,
                 height: int) -> tuple[dict[int, Detections], int, dict[int, int]]:
    """Remove the boxes that do not overlap the (width, height) frame at all (pixels,
    upright; empty boxes too); returns the rest, how many were removed, and per frame how
    many of the rest have less than half their area inside the frame."""
    kept: dict[int, Detections] = {}
    dropped = 0
    mostly_outside: dict[int, int] = {}
    for frame, found in detections.items():
        x1, y1, x2, y2 = found.xyxy.T.astype(np.float64)
        visible = (np.clip(x2, 0, width) - np.clip(x1, 0, width)) * (np.clip(y2, 0, height) - np.clip(y1, 0, height))
        area = (x2 - x1) * (y2 - y1)
        inside = (visible > 0) & (area > 0)
        dropped += int((~inside).sum())
        if (mostly := int((inside & (visible < 0.5 * area)).sum())):
            mostly_outside[frame] = mostly
        if inside.any():
            kept[frame] = found[inside]
    return kept, dropped, mostly_outside


def count_past_end(detections: dict[int, Detections], last_frame: int) -> int:
    """Boxes on frames after `last_frame` (0-based)."""
    return sum(len(found) for frame, found in detections.items() if frame > last_frame)


def check_fit(fit: DetectionFit, path: Path, width: int, height: int) -> None:
    """Refuse (UsageError, exit 2) a detections file most of whose boxes do not fit the video."""
    if fit.boxes and fit.misfits * 2 > fit.boxes:
        raise UsageError(f"--detections {path.name} does not fit this video: {fit.misfits} of its "
                         f"{fit.boxes} boxes are (mostly) outside the {width}x{height} frame or after its "
                         f"last frame ({(fit.last_frame or 0) + 1} in MOT numbering).",
                         "Is it the detections file of another video? Pass the one made for this video.")


def check_detections_fit(path: Path | None, width: int, height: int, frames_expected: int | None,
                         min_score: float = 0.0) -> None:
    """Read a MOT detections file and refuse it (UsageError, exit 2) when a line is malformed
    or, where the video's frame count is known (`frames_expected`), when most of its boxes do
    not fit the (width, height) video: the check pass 1 makes, done before any model is
    loaded. None: nothing to check."""
    if path is None:
        return
    given = read_mot_detections(path, min_score)
    in_file = sum(len(found) for found in given.values())
    kept, outside, mostly_outside = drop_outside(given, width, height)
    if frames_expected:
        check_fit(DetectionFit.of(in_file, kept, outside, mostly_outside, frames_expected - 1), path, width, height)


def _bytetrack_config(fps: float, lost_seconds: float):
    import_ultralytics()
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    cfg = dict(YAML.load(check_yaml("bytetrack.yaml")))
    cfg["track_buffer"] = max(1, int(round(lost_seconds * (fps or 30))))
    return IterableSimpleNamespace(**cfg)


def make_bytetrack(fps: float, lost_seconds: float = 1.0):
    """A fresh ultralytics BYTETracker configured from its own bytetrack.yaml."""
    import_ultralytics()
    from ultralytics.trackers.byte_tracker import BYTETracker

    return BYTETracker(_bytetrack_config(fps, lost_seconds))


class DetectionTracker:
    """Detections (YOLO's or the user's) through ultralytics' ByteTrack, one frame at a time; one
    instance per video.

    ByteTrack starts a track unconfirmed and reports it from its second matched detection
    on (after the video's first frame), so the box that started it would be lost: a person
    first detected at frame 19 would be tracked from frame 20. The tracker keeps that birth
    box and hands it out, before the confirming box, when the track is confirmed; a track
    never confirmed gives nothing. (A lost track that is found again is re-activated at
    once and reported on that frame: it loses no box.)
    """

    def __init__(self, fps: float, lost_seconds: float = 1.0) -> None:
        self.tracker = make_bytetrack(fps, lost_seconds)
        self.births: dict[int, TrackedBox] = {}  # unconfirmed track id -> the box that started it

    def __call__(self, frame: int, found: Detections) -> list[TrackedBox]:
        # Rows are [x1, y1, x2, y2, id, score, cls, detection index]: keep the user's own
        # box rather than the tracker's Kalman estimate (smoothing is ours to do).
        out = []
        for row in self.tracker.update(found):
            track_id = int(row[4])
            birth = self.births.pop(track_id, None)
            if birth is not None:
                out.append(birth)
            out.append(TrackedBox(frame, track_id,
                                  np.asarray(found.xyxy[int(row[7])] if len(found) else row[:4], np.float32),
                                  float(row[5])))
        tracked = self.tracker.tracked_stracks
        for track in tracked:
            if not track.is_activated and track.start_frame == self.tracker.frame_id and len(found):
                self.births[track.track_id] = TrackedBox(frame, track.track_id,
                                                         np.asarray(found.xyxy[int(track.idx)], np.float32),
                                                         float(track.score))
        unconfirmed = {t.track_id for t in tracked if not t.is_activated}
        self.births = {k: v for k, v in self.births.items() if k in unconfirmed}
        return out


def track_detections(detections: dict[int, Detections], frames: Iterable[int], fps: float,
                     lost_seconds: float = 1.0) -> Iterator[TrackedBox]:
    """Run ByteTrack over `frames` (every decoded frame index, in order, detections or not)."""
    tracker = DetectionTracker(fps, lost_seconds)
    for frame in frames:
        yield from tracker(frame, detections.get(frame, Detections.empty()))


class YoloPersonDetector:
    """Ultralytics YOLO, class person, on batches of decoded frames -> one `Detections` per
    frame. Its boxes go through `DetectionTracker`, like a detections file's: ultralytics'
    own `track()` feeds the same boxes to the same `BYTETracker.update`, but one frame per
    call, which leaves a GPU mostly idle; a batch of frames per call keeps it busy. `half`
    runs it in fp16 (on a GPU); `cpu_bf16` under bf16 autocast on a CPU (with native bf16:
    about 3.5x faster at 640 px on this project's machine; docs/performance.md)."""

    def __init__(self, weights: str | Path, device: str = "cpu", imgsz: int = 640, conf: float = 0.25,
                 half: bool = False, hint: str = "", cpu_bf16: bool = False) -> None:
        """`hint`: how to get a good file (the default detector: fetch it again; a user's own
        file: what strcli takes). Raises CorruptAssetError for a file that cannot be loaded
        without running code, or not at all."""
        self.model = load_yolo(Path(weights), hint)
        self.device, self.imgsz, self.conf = device, imgsz, conf
        self._precision = _fp16_argument() if half else {}
        self.cpu_bf16 = cpu_bf16 and not half

    def __call__(self, images_rgb: list[np.ndarray]) -> list[Detections]:
        """(H, W, 3) uint8 RGB frames of one video (one size) -> their person boxes."""
        import torch

        if not images_rgb:
            return []
        # On its first CPU call ultralytics sets PyTorch's threads for the whole process to
        # min(8, cores - 1) (1 on two cores), which would slow every later stage: put ours back.
        threads = torch.get_num_threads()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16)
        try:
            with autocast:  # ultralytics runs the network in it; its boxes come back in fp32
                results = self.model.predict([image[..., ::-1] for image in images_rgb], classes=[PERSON_CLASS],
                                             conf=self.conf, imgsz=self.imgsz, device=self.device, verbose=False,
                                             **self._precision)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        out = []
        for result in results:
            boxes = result.boxes
            if boxes is None or len(boxes) == 0:
                out.append(Detections.empty())
                continue
            out.append(Detections(boxes.xyxy.float().cpu().numpy(), boxes.conf.float().cpu().numpy()))
        return out


USER_DETECTOR_HINT = ("Pass an Ultralytics YOLO detection checkpoint (.pt, as ultralytics saves it) "
                      "or a model yaml, or leave out --detector for the default yolo11m.pt.")


def check_detector_file(path: Path, hint: str = USER_DETECTOR_HINT) -> None:
    """Refuse, without unpickling anything, a detector file that is not a .pt or model yaml
    or whose pickle names a global outside torch, ultralytics and numpy (a file that would
    call `os.system`, `eval`, ... when loaded). Raises CorruptAssetError."""
    if path.suffix.lower() not in DETECTOR_SUFFIXES:
        raise CorruptAssetError(f"the detector {path} is a {path.suffix or 'suffix-less'} file; strcli loads "
                                f"only {', '.join(DETECTOR_SUFFIXES)} detectors (formats that load without "
                                "running code).", hint)
    if path.suffix.lower() == ".pt":
        check_detector_checkpoint(path, hint)


def check_detector_checkpoint(path: Path, hint: str = USER_DETECTOR_HINT) -> None:
    """The pickle scan of `check_detector_file`, whatever the file's suffix (`weights import`
    stores any detector it is given as the manifest's .pt). Raises CorruptAssetError."""
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as err:  # not a zip checkpoint, truncated, ...: all mean unreadable
        raise CorruptAssetError(f"the detector {path} is not a readable PyTorch checkpoint ({err}).", hint) from err
    unsafe = sorted(n for n in names if n.split(".")[0] not in _DETECTOR_GLOBAL_MODULES
                    and n not in _DETECTOR_BUILTINS)
    if unsafe:
        raise CorruptAssetError(f"the detector {path} refers to {', '.join(unsafe[:3])}, which an "
                                "Ultralytics checkpoint never does; it was not loaded (it could run code).", hint)


def load_yolo(path: Path, hint: str = USER_DETECTOR_HINT) -> Any:
    """An ultralytics YOLO from a .pt (unpickled with `weights_only=True` against ultralytics'
    allow-list of model classes) or a model yaml (built without `eval`). Raises
    CorruptAssetError for a file that cannot be loaded that way."""
    check_detector_file(path, hint)
    import_ultralytics()
    from ultralytics import YOLO
    from ultralytics.nn import tasks

    safe = getattr(tasks, "_SafeLoad", None)
    if safe is None or not getattr(safe, "SUPPORTED", False) or not hasattr(tasks, "SAFE_LOAD"):
        raise CorruptAssetError("the installed ultralytics or PyTorch cannot load a detector without "
                                "running code from the file.", "Install ultralytics>=8.4.190 and torch>=2.6.")
    tasks.SAFE_LOAD = True  # read by torch_safe_load and model building, whatever the import order
    try:
        return YOLO(str(path), task="detect")
    except Exception as err:  # ultralytics raises many kinds for a bad file
        raise CorruptAssetError(f"cannot load the detector {path} ({_first_line(err)}).", hint) from err


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _fp16_argument() -> dict[str, Any]:
    """fp16 inference, said the way the installed ultralytics says it (`half=True` until
    8.4, `quantize=16` after, which warns about `half`)."""
    from ultralytics.utils import DEFAULT_CFG_DICT

    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}


# ByteTrack (ultralytics' bytetrack.yaml) links a person's box to the next frame's by
# overlap: measured on a 60x150 px box moving sideways at 10 and 30 fps, it follows up to
# 0.6 of the box's width a frame and nothing from 0.7 on (tests/test_tracking.py). Boxes
# it leaves over are linked here when nothing else competes, up to this many box widths
# (centre to centre) between consecutive detected frames.
LONE_REACH_WIDTHS = 1.5
LONE_SIZE_RATIO = 1.5  # the two boxes' heights within this ratio of each other: one person


@dataclass(frozen=True)
class LoneLinks:
    """What `link_lone_boxes` did: the boxes to finalise and what to tell the user."""

    boxes: list[TrackedBox]  # the tracker's boxes of long enough tracks, and the linked lone boxes
    linked_tracks: int  # chains of lone boxes at least min_length long
    fastest: float  # box widths a frame of the fastest link made (0: none)
    median_step: float | None  # box widths from each left-over box to the nearest one of the next detected frame
    longest: int  # frames spanned by the longest track or chain, had it no gap


def _step_widths(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) and (m, 4) xyxy -> (n, m) centre distances in mean box widths."""
    ca, cb = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    wa, wb = a[:, 2] - a[:, 0], b[:, 2] - b[:, 0]
    distance = np.linalg.norm(ca[:, None] - cb[None], axis=-1)
    return distance / np.maximum((wa[:, None] + wb[None]) / 2, 1e-6)


def _similar_size(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4), (m, 4) xyxy -> (n, m) whether the heights are within LONE_SIZE_RATIO."""
    ha, hb = np.maximum(a[:, 3] - a[:, 1], 1e-6), np.maximum(b[:, 3] - b[:, 1], 1e-6)
    ratio = ha[:, None] / hb[None]
    return (ratio <= LONE_SIZE_RATIO) & (ratio >= 1 / LONE_SIZE_RATIO)


def link_lone_boxes(detected: dict[int, Detections], tracked: list[TrackedBox], config: TrackingConfig,
                    every: int = 1) -> LoneLinks:
    """Link the boxes the tracker left over: a fast person (moving about a box width a frame,
    or a low frame rate) has boxes that never overlap, so ByteTrack starts a track at each
    and confirms none.

    `detected`: every detected frame's boxes (positions `every` apart), `tracked`: what the
    tracker made of them. The tracker's tracks of at least `config.min_length` frames stay;
    every other box is left over. A left-over box is linked to one of the next detected
    frame when each is the other's only left-over candidate there (nothing else competes):
    centres at most LONE_REACH_WIDTHS mean box widths apart and heights within
    LONE_SIZE_RATIO. The chains become new tracks (ids after the tracker's)."""
    by_id: dict[int, list[TrackedBox]] = defaultdict(list)
    for box in tracked:
        by_id[box.track_id].append(box)
    kept = {tid for tid, rows in by_id.items()
            if (max(b.frame for b in rows) - min(b.frame for b in rows)) // every + 1 >= config.min_length}
    out = [b for b in tracked if b.track_id in kept]
    taken: dict[int, list[np.ndarray]] = defaultdict(list)
    for box in out:
        taken[box.frame].append(box.xyxy)
    lone: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for frame, found in detected.items():
        if not len(found):
            continue
        mask = np.ones(len(found), bool)
        for xyxy in taken.get(frame, []):
            mask &= ~np.all(np.isclose(found.xyxy, xyxy[None]), axis=1)
        if mask.any():
            lone[frame] = (found.xyxy[mask].astype(np.float64), found.conf[mask])
    next_id = max(by_id, default=-1) + 1
    chain_of: dict[tuple[int, int], int] = {}  # (frame, row) -> chain
    chains: list[list[tuple[int, int]]] = []
    step_to: dict[tuple[int, int], float] = {}  # a linked box -> box widths a frame from the one before
    nearest: list[float] = []
    for frame in sorted(lone):
        boxes = lone[frame][0]
        for row in range(len(boxes)):
            if (frame, row) not in chain_of:
                chain_of[(frame, row)] = len(chains)
                chains.append([(frame, row)])
        if frame + every not in lone:
            continue
        following = lone[frame + every][0]
        widths = _step_widths(boxes, following)
        nearest += widths.min(axis=1).tolist()
        near = (widths <= LONE_REACH_WIDTHS) & _similar_size(boxes, following)
        for row in range(len(boxes)):
            candidates = np.flatnonzero(near[row])
            if len(candidates) == 1 and near[:, candidates[0]].sum() == 1:
                after = (frame + every, int(candidates[0]))
                chain = chain_of[(frame, row)]
                chain_of[after] = chain
                chains[chain].append(after)
                step_to[after] = float(widths[row, candidates[0]]) / every
    linked, fastest = 0, 0.0
    for chain in chains:
        if len(chain) < 2 or (len(chain) - 1) * every + 1 < config.min_length:
            continue
        for frame, row in chain:
            xyxy, conf = lone[frame]
            out.append(TrackedBox(frame, next_id + linked, xyxy[row].astype(np.float32), float(conf[row])))
        linked += 1
        fastest = max(fastest, *(step_to[box] for box in chain[1:]))
    lengths = [(len(c) - 1) * every + 1 for c in chains] + [(len(rows) - 1) * every + 1 for rows in by_id.values()]
    return LoneLinks(out, linked, fastest, float(np.median(nearest)) if nearest else None, max(lengths, default=0))


def no_track_reason(detections: int, links: LoneLinks, config: TrackingConfig) -> str:
    """Why `detections` boxes made no track, in words for the user."""
    said = f"people were detected ({detections} boxes) but no track was made: "
    if links.median_step is not None and links.median_step > LONE_REACH_WIDTHS:
        return (said + f"their boxes moved about {links.median_step:.1f} box widths between detected frames "
                "(fast motion or a low frame rate), too far to link (the tracker follows about 0.6 of a width "
                f"a frame, a lone box is linked up to {LONE_REACH_WIDTHS:g}).")
    if links.longest < config.min_length:
        return (f"people were detected ({detections} boxes) but no track lasted {config.min_length} frames "
                f"(--min-track-length): the longest ran {links.longest}. Lower --min-track-length, or "
                "process more frames (--start, --end, --stride).")
    return (said + "the boxes of several people crossed too fast to tell who is who.")


def finalize_tracks(boxes: Iterable[TrackedBox], config: TrackingConfig = TrackingConfig()) -> list[Track]:
    """Tracker output -> clean `Track`s (see the module docstring)."""
    by_id: dict[int, list[TrackedBox]] = defaultdict(list)
    for box in boxes:
        by_id[box.track_id].append(box)
    tracks = []
    for rows in by_id.values():
        rows.sort(key=lambda b: b.frame)
        frames = np.array([b.frame for b in rows], np.int64)
        xyxy = np.stack([b.xyxy for b in rows]).astype(np.float32)
        scores = np.array([b.score for b in rows], np.float32)
        frames, xyxy, scores, filled = _fill_gaps(frames, xyxy, scores, config.max_gap)
        if len(frames) < config.min_length:
            continue
        tracks.append((frames, _smooth(frames, xyxy, config.smooth_window), scores, filled))
    if config.max_people is not None:
        tracks = sorted(tracks, key=lambda t: -len(t[0]))[: config.max_people]
    tracks.sort(key=lambda t: t[0][0])
    return [Track(k, f, b, s, i) for k, (f, b, s, i) in enumerate(tracks)]


def _fill_gaps(frames: np.ndarray, xyxy: np.ndarray, scores: np.ndarray, max_gap: int):
    """Linearly interpolate boxes over gaps of at most `max_gap` missing frames."""
    new_frames, new_boxes = [], []
    for k in np.flatnonzero((np.diff(frames) > 1) & (np.diff(frames) <= max_gap + 1)):
        missing = np.arange(frames[k] + 1, frames[k + 1])
        w = ((missing - frames[k]) / (frames[k + 1] - frames[k]))[:, None]
        new_frames.append(missing)
        new_boxes.append((1 - w) * xyxy[k] + w * xyxy[k + 1])
    if not new_frames:
        return frames, xyxy, scores, np.zeros(len(frames), bool)
    all_frames = np.concatenate([frames, *new_frames])
    all_boxes = np.concatenate([xyxy, *new_boxes]).astype(np.float32)
    all_scores = np.concatenate([scores, np.zeros(len(all_frames) - len(frames), np.float32)])
    filled = np.concatenate([np.zeros(len(frames), bool), np.ones(len(all_frames) - len(frames), bool)])
    order = np.argsort(all_frames, kind="stable")
    return all_frames[order], all_boxes[order], all_scores[order], filled[order]


def _smooth(frames: np.ndarray, xyxy: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of the boxes within each run of consecutive frames. Near a
    run's ends the window shrinks symmetrically, so a box moving at constant speed is left
    exactly where it was (no lag at the ends)."""
    if window <= 1:
        return xyxy
    out = xyxy.copy()
    breaks = [0, *(np.flatnonzero(np.diff(frames) > 1) + 1).tolist(), len(frames)]
    for a, b in zip(breaks[:-1], breaks[1:]):
        run = xyxy[a:b].astype(np.float64)
        n = len(run)
        i = np.arange(n)
        half = np.minimum(np.minimum(i, n - 1 - i), window // 2)  # (n,)
        cumsum = np.concatenate([np.zeros((1, 4)), np.cumsum(run, axis=0)])
        out[a:b] = (cumsum[i + half + 1] - cumsum[i - half]) / (2 * half + 1)[:, None]
    return out
