"""What the camera-motion stage costs per video frame at 720p (docs/performance.md).

Frames of running.mp4 (a camera following a runner: every step is solved, none is
skipped as static) scaled to 1280x720 are fed to `CameraMotionEstimator` as pass 2 feeds it
(every frame given, every 3rd a keyframe at 30 fps), with the runner's box masked, best of 3 runs; the time
per video frame is the stage's cost, to compare with the whole road's time per frame.

    PYTHONPATH=. python benchmarks/camera_motion.py [--frames 120] [--size 640]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from strcli.body.camera import Intrinsics
from strcli.road.camera_motion import KEYFRAME_SIZE, CameraMotionEstimator
from strcli.road.tracking import read_mot_detections
from strcli.road.video import VideoReader

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", type=int, nargs="+", default=[KEYFRAME_SIZE])
    parser.add_argument("--camera", default="auto", help="the camera model asked for (rotating: no translation solved)")
    args = parser.parse_args()
    assets = ASSETS if ASSETS.is_dir() else Path("/work/shared/assets")
    video = assets / "videos" / "running.mp4"
    detections = read_mot_detections(assets / "detections" / "running.det.txt", 0.0)
    frames, boxes = [], []
    for frame in VideoReader(video, 0, args.frames, 1):
        scale = 720 / frame.image.shape[0]
        frames.append(cv2.resize(frame.image, (1280, 720), interpolation=cv2.INTER_AREA))
        found = detections.get(frame.index)
        boxes.append(found.xyxy * [1280 / frame.image.shape[1], scale, 1280 / frame.image.shape[1], scale]
                     if found is not None else np.zeros((0, 4)))
    def run(size: int, count: int) -> tuple[float, float, str]:
        estimator = CameraMotionEstimator(Intrinsics.default_for(1280, 720), 30.0, args.camera, size=size)
        start, cpu = time.perf_counter(), time.process_time()
        for position, (image, box) in enumerate(zip(frames[:count], boxes[:count])):
            estimator.add(position, image, box)
        motion = estimator.finish()
        return time.perf_counter() - start, time.process_time() - cpu, motion.model

    run(args.size[0], 10)  # warm-up: OpenCV's and scipy's first calls
    for size in args.size:
        # The best of 3: the machine is shared, the slower runs measure the neighbours.
        seconds, cpu, model = min(run(size, len(frames)) for _ in range(3))
        print(f"720p, keyframes every 3 frames at {size} px: {1000 * seconds / len(frames):.1f} ms "
              f"per video frame, {1000 * cpu / len(frames):.1f} ms of CPU (every thread) ({len(frames)} frames, "
              f"model {model}, best of 3)")


if __name__ == "__main__":
    main()
