"""What `--detect-every N` costs in box accuracy, measured on the real videos.

    python benchmarks/fast_tradeoff.py [--every 2,3,4]

For each video of ../shared/assets with its detection file, tracks are made twice with
strcli's tracking (ByteTrack, gap filling, smoothing): from every frame's detections, and
from every N-th frame's only (what `--detect-every N` gives the tracker). Each reference
track is matched to the subsampled track that overlaps it most; the script prints the
mean and 5th-percentile IoU of their boxes over the reference's frames, and the share of
reference person-frames that still get a body. The detector's own loss at 320 px (part of
`--fast`) cannot be measured here: no trained detector weights can be had.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent.parent / "shared" / "assets"
VIDEOS = {"running.mp4": "running.det.txt", "pedestrians.avi": "pedestrians.det.txt"}


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (N, 4) xyxy -> (N,)."""
    lo, hi = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def tracks_from(detections: Path, frames: int, fps: float, every: int) -> list:
    """Tracking as `reconstruct --detect-every N` does it with YOLO: the tracker sees every
    N-th frame only, at fps / N, and the gap filling restores the frames between."""
    from strcli.road.tracking import DetectionTracker, Detections, TrackingConfig, finalize_tracks, read_mot_detections

    config = TrackingConfig()
    given = read_mot_detections(detections)
    tracker = DetectionTracker(fps / every, config.lost_seconds)
    boxes = []
    for position in range(0, frames, every):
        boxes += tracker(position, given.get(position, Detections.empty()))
    return finalize_tracks(boxes, config)


def compare(video: Path, detections: Path, every: int) -> tuple[float, float, float]:
    from strcli.road.video import probe

    info = probe(video)
    frames = info.frames_in_file or 0
    full = tracks_from(detections, frames, info.fps, 1)
    sparse = tracks_from(detections, frames, info.fps, every)
    ious, covered, total = [], 0, 0
    for ref in full:
        total += len(ref)
        best: np.ndarray | None = None
        for cand in sparse:
            common, a, b = np.intersect1d(ref.frames, cand.frames, return_indices=True)
            if len(common) == 0:
                continue
            values = iou(ref.boxes[a], cand.boxes[b])
            if best is None or values.sum() > best.sum():
                best = values
        if best is not None:
            ious.append(best)
            covered += len(best)
    values = np.concatenate(ious) if ious else np.zeros(1)
    return float(values.mean()), float(np.percentile(values, 5)), covered / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", default="2,3,4")
    args = parser.parse_args()
    print(f"{'video':<18}{'every':>6}{'mean IoU':>10}{'5% IoU':>9}{'frames kept':>13}")
    for video, dets in VIDEOS.items():
        for every in map(int, args.every.split(",")):
            mean, low, kept = compare(ASSETS / "videos" / video, ASSETS / "detections" / dets, every)
            print(f"{video:<18}{every:>6}{mean:>10.3f}{low:>9.3f}{100 * kept:>12.1f}%")


if __name__ == "__main__":
    main()
