"""`reconstruct --precision` on this CPU: speed of each variant side by side, and what bf16 costs.

    python benchmarks/precision.py [--frames 48] [--repeats 3]

In one run, on the same inputs:
- speed: the ResNet-50 (crops per second, batches of 8, channels-last) and YOLO11m built
  from its yaml (seconds per 720p frame at 640 and 320 px), fp32 and bf16 autocast, and the
  ResNet-50 exported to ONNX and run by ONNX Runtime (`--precision onnx`);
- accuracy: on the first `--frames` frames of each shared clip (running.mp4, pedestrians.avi,
  with their detection files), the crops through the ResNet-50 in fp32 and in bf16, then
  the same STR and TCMR (fp32) and SMPL: the feature error (relative, and the 99th
  percentile per crop) and the body error (mean and max vertex and joint distance, mm,
  camera frame, root-relative) of bf16 against fp32.

Honest limits: no trained weights exist here. The ResNet-50, STR and TCMR are randomly
initialised (seeded) and the body is the generated SMPL-format test body, so the body error
is that of these networks, an indication of the order of magnitude for trained ones, not
their number; the untrained detector finds nobody, so only its speed is measured. Speed does
not depend on the weights. Not a test: nothing here asserts a number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO.parent / "shared" / "assets"
CLIPS = (("running.mp4", "running.det.txt"), ("pedestrians.avi", "pedestrians.det.txt"))


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up (oneDNN picks its kernels on the first call)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(repeats: int) -> None:
    from ultralytics import YOLO

    from strcli.road.features import Backbone, FeatureExtractor
    from strcli.road.tracking import PERSON_CLASS

    torch.manual_seed(0)
    backbone = Backbone().eval()
    crops = torch.randn(32, 3, 224, 224)
    yolo = YOLO("yolo11m.yaml", task="detect")
    frame = (np.random.default_rng(0).random((720, 1280, 3)) * 255).astype(np.uint8)
    print("| variant | ResNet-50 crops/s | YOLO11m s/frame at 640 px | at 320 px |")
    print("|---|---|---|---|")
    from strcli.utils.devices import onnxruntime_available

    for precision in ("fp32", "bf16", "onnx"):
        if precision == "onnx" and not onnxruntime_available():
            print("| onnx | (ONNX Runtime not installed) | | |")
            continue
        with tempfile.TemporaryDirectory() as weights:  # a fresh export, not a user's cache
            os.environ["STRCLI_WEIGHTS_DIR"] = weights
            extractor = FeatureExtractor(backbone, "cpu", 8, precision=precision)
        crops_per_s = len(crops) / _median_time(lambda: extractor(crops), repeats)
        if precision == "onnx":  # the detector stays in PyTorch fp32: the fp32 row
            print(f"| onnx (ResNet-50 in ONNX Runtime) | {crops_per_s:.1f} | as fp32 | as fp32 |", flush=True)
            continue
        seconds = {}
        for imgsz in (640, 320):
            def detect() -> None:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    yolo.predict([frame], imgsz=imgsz, device="cpu", classes=[PERSON_CLASS], verbose=False)
            seconds[imgsz] = _median_time(detect, repeats)
        print(f"| {precision} | {crops_per_s:.1f} | {seconds[640]:.3f} | {seconds[320]:.3f} |", flush=True)


def accuracy(frames: int) -> None:
    from strcli.body.camera import Intrinsics
    from strcli.body.generated import write_test_body
    from strcli.body.smpl import Body
    from strcli.model import MeanParams, STRConfig, build_model
    from strcli.model.tcmr import TCMR
    from strcli.road.crops import crop_frame, square_boxes
    from strcli.road.features import Backbone, FeatureExtractor
    from strcli.road.posing import pose_frames
    from strcli.road.tracking import read_mot_detections
    from strcli.road.video import VideoReader, probe
    from strcli.road.windows import predict_sequences

    torch.manual_seed(0)
    backbone = Backbone().eval()
    mean = MeanParams.from_npz(ASSETS / "smpl_helpers" / "smpl_mean_params.npz")
    models = {"STR": build_model(STRConfig(), mean).eval(), "TCMR": TCMR(mean_params=mean).eval()}
    with tempfile.TemporaryDirectory() as tmp:
        body = Body.from_file(write_test_body(Path(tmp) / "SMPL_NEUTRAL.pkl")).eval()
    print("| clip | features: relative error | per crop, 99th pct | model | vertices mean / max mm "
          "| joints mean / max mm |")
    print("|---|---|---|---|---|---|")
    for video, dets in CLIPS:
        info = probe(ASSETS / "videos" / video)
        given = read_mot_detections(ASSETS / "detections" / dets)
        # the first detection of each frame that has one: one sequence of crops
        crops, boxes = [], []
        for frame in VideoReader(info.path, 0, frames):
            found = given.get(frame.index)
            if found is None or not len(found.xyxy):
                continue
            xyxy = torch.from_numpy(found.xyxy[:1]).float()
            crops.append(crop_frame(torch.from_numpy(frame.image), square_boxes(xyxy)))
            boxes.append(found.xyxy[0])
        batch = torch.cat(crops)
        features = {p: FeatureExtractor(backbone, "cpu", 8, precision=p)(batch) for p in ("fp32", "bf16")}
        diff = features["bf16"] - features["fp32"]
        relative = (diff.norm() / features["fp32"].norm()).item()
        per_crop = np.percentile((diff.norm(dim=1) / features["fp32"].norm(dim=1)).numpy(), 99)
        intrinsics = Intrinsics.default_for(info.width, info.height)
        for name, model in models.items():
            posed = {}
            with torch.inference_mode():
                for precision, f in features.items():
                    prediction = predict_sequences(model, [f])[0]
                    posed[precision] = pose_frames(prediction, np.stack(boxes), body, intrinsics)

            def rooted(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
                return points - joints[:, :1]

            a, b = posed["fp32"], posed["bf16"]
            vertices = np.linalg.norm(rooted(b.vertices, b.joints3d) - rooted(a.vertices, a.joints3d), axis=-1) * 1000
            joints = np.linalg.norm(rooted(b.joints3d, b.joints3d) - rooted(a.joints3d, a.joints3d), axis=-1) * 1000
            print(f"| {video} ({len(batch)} crops) | {relative:.4f} | {per_crop:.4f} | {name} | "
                  f"{vertices.mean():.2f} / {vertices.max():.2f} | {joints.mean():.2f} / {joints.max():.2f} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48, help="frames of each clip for the accuracy part")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from strcli.utils.devices import cpu_native_bf16

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_native_bf16()}\n")
    speed(args.repeats)
    print()
    accuracy(args.frames)


if __name__ == "__main__":
    main()
