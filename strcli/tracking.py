"""People -> tracks: ultralytics YOLO (class person) or the user's detections, through
ultralytics' ByteTrack, then cleaned into `Track`s.

Both detection sources go through the same tracker: `YoloPersonTracker` runs
`YOLO.track(..., tracker="bytetrack.yaml", persist=True, classes=[0])` with a fresh tracker
for every video; `track_detections` feeds boxes read from a MOT Challenge detection file
to ultralytics' `BYTETracker` built from the same `bytetrack.yaml`. `finalize_tracks` then
drops short tracks, fills short gaps by interpolating the box, smooths the boxes, keeps the
N longest tracks and renumbers them 0..K-1 in order of first appearance.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strcli.errors import CorruptAssetError, UsageError

os.environ.setdefault("YOLO_OFFLINE", "1")  # never download at run time
os.environ.setdefault("YOLO_AUTOINSTALL", "False")  # never pip-install at run time

PERSON_CLASS = 0  # COCO


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


def read_mot_detections(path: str | Path, min_score: float = 0.0) -> dict[int, Detections]:
    """MOT Challenge detections `frame,-1,x,y,w,h,score,...` (frame from 1) -> 0-based frames."""
    path = Path(path)
    try:
        if not path.read_text().strip():
            return {}  # no detections at all: a valid file
        table = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read detections {path} ({err}).",
                         "Expected MOT format: frame,-1,x,y,w,h,score,-1,-1,-1 per line.") from err
    if table.size == 0:
        return {}
    if table.shape[1] < 7:
        raise UsageError(f"{path}: {table.shape[1]} columns, MOT detections have at least 7 "
                         "(frame,-1,x,y,w,h,score).")
    table = table[table[:, 6] >= min_score]
    frames = table[:, 0].astype(np.int64) - 1
    if (frames < 0).any():
        raise UsageError(f"{path}: frame numbers start at 1 in the MOT format.")
    xyxy = np.concatenate((table[:, 2:4], table[:, 2:4] + table[:, 4:6]), axis=1).astype(np.float32)
    out: dict[int, Detections] = {}
    for frame in np.unique(frames):
        rows = frames == frame
        out[int(frame)] = Detections(xyxy[rows], table[rows, 6].astype(np.float32))
    return out


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
    """The user's detections through ultralytics' ByteTrack, one frame at a time; one
    instance per video (the counterpart of `YoloPersonTracker`)."""

    def __init__(self, fps: float, lost_seconds: float = 1.0) -> None:
        self.tracker = make_bytetrack(fps, lost_seconds)

    def __call__(self, frame: int, found: Detections) -> list[TrackedBox]:
        # Rows are [x1, y1, x2, y2, id, score, cls, detection index]: keep the user's own
        # box rather than the tracker's Kalman estimate (smoothing is ours to do).
        return [TrackedBox(frame, int(row[4]),
                           np.asarray(found.xyxy[int(row[7])] if len(found) else row[:4], np.float32),
                           float(row[5]))
                for row in self.tracker.update(found)]


def track_detections(detections: dict[int, Detections], frames: Iterable[int], fps: float,
                     lost_seconds: float = 1.0) -> Iterator[TrackedBox]:
    """Run ByteTrack over `frames` (every decoded frame index, in order, detections or not)."""
    tracker = DetectionTracker(fps, lost_seconds)
    for frame in frames:
        yield from tracker(frame, detections.get(frame, Detections.empty()))


class YoloPersonTracker:
    """Ultralytics YOLO + ByteTrack on decoded frames, one instance per video."""

    def __init__(self, weights: str | Path, fps: float, device: str = "cpu", imgsz: int = 640,
                 conf: float = 0.25, lost_seconds: float = 1.0) -> None:
        import_ultralytics()
        from ultralytics import YOLO

        try:
            self.model = YOLO(str(weights), task="detect")
        except Exception as err:  # ultralytics raises many kinds for a bad file
            raise CorruptAssetError(f"cannot load the detector {weights} ({err}).",
                                    "Fetch it again with `strcli weights fetch detector`.") from err
        self.device, self.imgsz, self.conf = device, imgsz, conf
        self._tmp = tempfile.TemporaryDirectory(prefix="strcli-tracker-")  # removed with the tracker
        self.tracker_cfg = _write_tracker_yaml(Path(self._tmp.name), fps, lost_seconds)

    def __call__(self, frame: int, image_rgb: np.ndarray) -> list[TrackedBox]:
        import torch

        # On its first CPU call ultralytics sets PyTorch's threads for the whole process to
        # min(8, cores - 1) (1 on two cores), which would slow every later stage: put ours back.
        threads = torch.get_num_threads()
        try:
            results = self.model.track(image_rgb[..., ::-1], persist=True, tracker=str(self.tracker_cfg),
                                       classes=[PERSON_CLASS], conf=self.conf, imgsz=self.imgsz,
                                       device=self.device, verbose=False)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        boxes = results[0].boxes
        if boxes is None or boxes.id is None:
            return []
        xyxy = boxes.xyxy.cpu().numpy()
        ids = boxes.id.cpu().numpy().astype(int)
        scores = boxes.conf.cpu().numpy()
        return [TrackedBox(frame, int(i), xyxy[k].astype(np.float32), float(scores[k]))
                for k, i in enumerate(ids)]


def _write_tracker_yaml(folder: Path, fps: float, lost_seconds: float) -> Path:
    """bytetrack.yaml with the lost-track buffer scaled to this video's frame rate."""
    import_ultralytics()
    from ultralytics.utils import YAML

    cfg = dict(_bytetrack_config(fps, lost_seconds))
    path = folder / "bytetrack.yaml"
    YAML.save(path, cfg)
    return path


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
