"""What the camera-motion stage costs per video frame at 720p (docs/performance.md).

Frames of running.mp4 (a camera following a runner: every step is solved, none is
skipped as static) scaled to 1280x720 are fed to `CameraMotionEstimator` as pass 2 feeds it
(every frame given, every 3rd a keyframe at 30 fps), with the runner's box masked, best of 3 runs; the time
per video frame is the stage's cost, to compare with the whole road's time per frame.

    PYTHONPATH=. python benchmarks/camera_motion.py [--frames 120] [--size 640] [--pan] [--overlap] [--profile]

`--pan` feeds a synthetic pan instead (tests/test_camera_motion.py's: 30 degrees of yaw warped
from a frame of running.mp4, a masked 'person', scaled up to 1280x720): what `--camera auto`
costs on a turning camera, whose windows are measured but whose steps are not solved with a
travel.

`--profile` prints where the stage's time goes (cProfile of one run, the largest calls).

`--overlap` also asks whether the stage's own thread pays (reconstruct's `_CameraFeed`): the
same frames go through a stand-in of pass 2 for one person (one crop a frame, the ResNet-50
on every 8, in the precision `--precision auto` picks), with the stage inline, in its own
thread, and left out; the wall time per frame of each, the best of 3, interleaved.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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
    parser.add_argument("--overlap", action="store_true", help="also time the stage inline and in its own thread "
                        "beside the ResNet-50, as pass 2 runs it")
    parser.add_argument("--profile", action="store_true", help="where the stage's time goes (cProfile, one run)")
    parser.add_argument("--pan", action="store_true", help="a synthetic 30 degree pan instead of running.mp4")
    args = parser.parse_args()
    assets = ASSETS if ASSETS.is_dir() else Path("/work/shared/assets")
    frames, boxes = pan_frames(args.frames) if args.pan else running_frames(assets, args.frames)

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
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        run(args.size[0], len(frames))
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(8)
    if args.overlap:
        overlap(frames, boxes)


def running_frames(assets: Path, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first `count` frames of running.mp4 at 1280x720 (H, W, 3) uint8, and the runner's
    boxes (n, 4) in them."""
    detections = read_mot_detections(assets / "detections" / "running.det.txt", 0.0)
    frames, boxes = [], []
    for frame in VideoReader(assets / "videos" / "running.mp4", 0, count, 1):
        scale = 720 / frame.image.shape[0]
        frames.append(cv2.resize(frame.image, (1280, 720), interpolation=cv2.INTER_AREA))
        found = detections.get(frame.index)
        boxes.append(found.xyxy * [1280 / frame.image.shape[1], scale, 1280 / frame.image.shape[1], scale]
                     if found is not None else np.zeros((0, 4)))
    return frames, boxes


def pan_frames(count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A synthetic pan of `count` frames (30 degrees of yaw, the tests' 640x360 video) scaled
    to 1280x720 (H, W, 3) uint8, and its 'person' box (1, 4) in each."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_camera_motion import _pan, _source_frame, _write_pan

    box = np.array([260.0, 90.0, 340.0, 300.0])
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "pan.mp4"
        _write_pan(video, _source_frame(), _pan(count, 30.0, 0.0, 0.0), box)
        frames = [cv2.resize(f.image, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in VideoReader(video, 0, None, 1)]
    return frames, [box[None] * 2] * len(frames)


def overlap(frames: list[np.ndarray], boxes: list[np.ndarray]) -> None:
    """Pass 2 for one person, reduced to the ResNet-50 on every 8th frame's batch of 8 crops
    and the camera stage: wall time per frame with the stage inline, threaded, and absent."""
    import torch

    from strcli.road.features import Backbone, FeatureExtractor
    from strcli.road.reconstruct import _CameraFeed
    from strcli.utils.devices import resolve_precision

    precision = resolve_precision("auto", torch.device("cpu"))
    extractor = FeatureExtractor(Backbone().eval(), "cpu", batch_size=8, precision=precision)
    crops = torch.rand(8, 3, 224, 224)
    extractor(crops)  # warm-up

    def run(camera: str) -> float:
        feed = None if camera == "none" else _CameraFeed(
            CameraMotionEstimator(Intrinsics.default_for(1280, 720), 30.0, "auto"), threaded=camera == "thread")
        start = time.perf_counter()
        for position, (image, box) in enumerate(zip(frames, boxes)):
            if feed is not None:
                feed.add(position, image, box, np.arange(len(box)))
            if position % 8 == 7:
                extractor(crops)
        if feed is not None:
            feed.finish({})
        return (time.perf_counter() - start) / len(frames)

    names = ("none", "inline", "thread")
    best = dict.fromkeys(names, float("inf"))
    for _ in range(3):
        for name in names:
            best[name] = min(best[name], run(name))
    print(f"pass 2 stand-in (ResNet-50 {precision}, batches of 8), ms per video frame, best of 3: "
          + ", ".join(f"camera {name} {1000 * value:.1f}" for name, value in best.items())
          + f"; the stage costs {1000 * (best['inline'] - best['none']):.1f} inline, "
          f"{1000 * (best['thread'] - best['none']):.1f} in its own thread")


if __name__ == "__main__":
    main()
