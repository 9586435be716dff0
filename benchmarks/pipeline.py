"""Every stage alone, then the whole `reconstruct --render`, on the same clips.

    python benchmarks/pipeline.py [--device cpu|cuda] [--sizes 720,1080] [--people 1,4]
                                  [--lengths 10,120] [--stage-frames 60] [--fast] [--compile]
                                  [--host-ceiling] [--camera-share REPEATS] [--json FILE]

Clips are made from ../shared/assets/videos/running.mp4 (one runner, 30 fps): resized to
720p or 1080p, played back and forth to the length asked (seconds), and for 4 people
tiled 2x2 at half size, with the detection file transformed to match. For each clip it
prints the frames per second of each stage run alone on its first `--stage-frames` frames
(decode, detect+track with YOLO, crop, ResNet-50, STR + regressor, SMPL + camera, OBJ
export, render), then runs the whole `strcli reconstruct --render` in a fresh process and
prints its frames per second (and that of the reconstruction alone, without render), its
share of the slowest stage's stand-alone throughput, and the process's peak host memory
(and peak GPU memory). `--host-ceiling` instead runs the whole reconstruction with the
device's work made free (zero crops and features, mean SMPL parameters): the frames per
second the host side alone could feed a GPU, and where its time goes. `--camera-share N`
instead times the camera-motion stage inside the whole reconstruction (`--camera auto`
against `static`, N runs each, the fastest kept) and its share of the run, with and
without YOLO's cost.

Honest limits: no trained weights exist here. Networks are randomly initialised (speed
does not depend on the values); the detector is built from its yaml (same computation
as the trained one, but it finds nobody), so the whole run uses the clip's detection file
and YOLO's cost is its own line; without --smpl-dir a generated SMPL-format body of the
real size stands in. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO.parent / "shared" / "assets"
SOURCE, SOURCE_DETS = ASSETS / "videos" / "running.mp4", ASSETS / "detections" / "running.det.txt"
SIZES = {720: (1280, 720), 1080: (1920, 1080)}


@dataclass(frozen=True)
class Clip:
    path: Path
    detections: Path
    size: int  # 720 or 1080
    people: int
    seconds: int
    frames: int


def make_clip(folder: Path, size: int, people: int, seconds: int) -> Clip:
    """The source played back and forth to `seconds`, resized (and tiled 2x2 for 4 people)."""
    import av
    import cv2

    from strcli.road.tracking import read_mot_detections
    from strcli.road.video import VideoReader, VideoWriter

    width, height = SIZES[size]
    source = [f.image for f in VideoReader(SOURCE)]
    sh, sw = source[0].shape[:2]
    boxes = read_mot_detections(SOURCE_DETS)
    tile = 2 if people == 4 else 1
    sx, sy = width / tile / sw, height / tile / sh
    resized = [cv2.resize(f, (width // tile, height // tile), interpolation=cv2.INTER_AREA) for f in source]
    frames = seconds * 30
    period = 2 * (len(source) - 1)  # forth and back: the motion stays continuous
    order = [k % period if k % period < len(source) else period - k % period for k in range(frames)]
    name = f"running_{size}p_{people}p_{seconds}s"
    path, dets = folder / f"{name}.mp4", folder / f"{name}.det.txt"
    writer = VideoWriter(path, width, height, 30.0, crf=23, preset="ultrafast")
    lines = []
    for index, k in enumerate(order):
        image = np.tile(resized[k], (tile, tile, 1)) if tile > 1 else resized[k]
        writer.write(np.ascontiguousarray(image))
        found = boxes.get(k)
        for box, score in zip(*((found.xyxy, found.conf) if found is not None else ([], []))):
            for ty in range(tile):
                for tx in range(tile):
                    x1, y1 = box[0] * sx + tx * width / tile, box[1] * sy + ty * height / tile
                    w, h = (box[2] - box[0]) * sx, (box[3] - box[1]) * sy
                    lines.append(f"{index + 1},-1,{x1:.1f},{y1:.1f},{w:.1f},{h:.1f},{score:.3f},-1,-1,-1")
    writer.close(0.0, frames / 30.0)
    dets.write_text("\n".join(lines) + "\n")
    with av.open(str(path)) as check:
        assert check.streams.video[0].frames in (0, frames)
    return Clip(path, dets, size, people, seconds, frames)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def time_stages(clip: Clip, frames: int, device: torch.device, detector: str, imgsz: int,
                smpl_dir: Path, window_stride: int, compile_backbone: bool = False,
                precision: str = "fp32") -> dict[str, float]:
    """Frames per second of each stage run alone on the clip's first `frames` frames."""
    from strcli.body.smpl import Body, find_smpl_file
    from strcli.body.camera import Intrinsics
    from strcli.road.crops import crop_frame, square_boxes
    from strcli.road.features import Backbone, FeatureExtractor
    from strcli.model import MeanParams, STRConfig, build_model
    from strcli.road.outputs import TrackFrames, TrackWriter
    from strcli.road.posing import pose_frames
    from strcli.render.overlay import RenderOptions, render_video
    from strcli.road.tracking import DETECTOR_BATCH_GPU, DetectionTracker, YoloPersonDetector, read_mot_detections
    from strcli.road.video import VideoReader
    from strcli.road.windows import predict_sequences

    fps: dict[str, float] = {}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    images = [f.image for f in VideoReader(clip.path, 0, frames)]
    fps["decode"] = rate(len(images), time.perf_counter() - started)

    on_gpu = device.type == "cuda"
    yolo = YoloPersonDetector(detector, str(device.index or 0) if on_gpu else "cpu", imgsz, half=on_gpu,
                              cpu_bf16=not on_gpu and precision == "bf16")
    tracker = DetectionTracker(30.0)
    batch = DETECTOR_BATCH_GPU if on_gpu else 1
    yolo(images[:batch])  # warm-up
    count = min(len(images), 30 if device.type == "cpu" else len(images))
    started = time.perf_counter()
    for first in range(0, count, batch):
        for k, found in enumerate(yolo(images[first : min(count, first + batch)]), first):
            tracker(k, found)
    sync()
    fps["detect+track"] = rate(count, time.perf_counter() - started)

    given = read_mot_detections(clip.detections)
    boxes = [torch.from_numpy(given[k].xyxy).float() for k in range(len(images)) if k in given]
    people = max(1, round(np.mean([len(b) for b in boxes])))
    crops = []
    started = time.perf_counter()
    for image, xyxy in zip(images, boxes):
        crops.append(crop_frame(torch.from_numpy(image), square_boxes(xyxy), device=device))
    sync()
    fps["crop"] = rate(len(crops), time.perf_counter() - started)

    extractor = FeatureExtractor(Backbone(), device, batch_size=64, compile=compile_backbone, precision=precision)
    batch = torch.cat(crops)
    extractor(batch)  # warm-up with the same batch shapes (and compilation)
    sync()
    started = time.perf_counter()
    features = extractor(batch)
    sync()
    fps["backbone"] = rate(len(batch), time.perf_counter() - started) / people

    model = build_model(STRConfig(), MeanParams.neutral()).to(device).eval()
    sequences = [features[p::people] for p in range(people)]
    predict_sequences(model, [s[:16] for s in sequences])  # warm-up
    sync()
    started = time.perf_counter()
    predictions = predict_sequences(model, sequences, stride=window_stride)
    sync()
    fps["str+regressor"] = rate(len(sequences[0]), time.perf_counter() - started)

    body = Body.from_file(find_smpl_file("neutral", smpl_dir)).to(device).eval()
    intrinsics = Intrinsics.default_for(*SIZES[clip.size])
    track_boxes = np.stack([b[0].numpy() for b in boxes])
    started = time.perf_counter()
    posed = [pose_frames(p, track_boxes[: len(p.betas)], body, intrinsics) for p in predictions]
    sync()
    fps["smpl+camera"] = rate(len(predictions[0].betas), time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        n = len(posed[0].betas)
        frames_ = TrackFrames(0, np.arange(n), np.arange(n) / 30.0, track_boxes[:n], np.ones(n, np.float32),
                              np.zeros(n, bool))
        writer = TrackWriter(Path(tmp), frames_, body.faces, ("obj",), intrinsics.matrix, 30.0, SIZES[clip.size])
        started = time.perf_counter()
        for p in posed:
            writer.add(np.arange(n), p)
        fps["mesh export"] = rate(n, time.perf_counter() - started)

    fps["render"] = _render_rate(clip, frames, device, smpl_dir, render_video, RenderOptions)
    return fps


def _render_rate(clip: Clip, frames: int, device: torch.device, smpl_dir: Path, render_video, options) -> float:
    """Render alone: reconstruct (untimed) the first frames, then time `render_video`."""
    from strcli.body.smpl import Body, find_smpl_file
    from strcli.road.reconstruct import ModelSources, ReconstructOptions, load_models, reconstruct_video

    with tempfile.TemporaryDirectory() as tmp:
        models = load_models(ModelSources(smpl_dir=smpl_dir, untrained=True, download=False), str(device),
                             need_detector=False)
        result = reconstruct_video(clip.path, Path(tmp), ReconstructOptions(end=str(frames), mesh_formats=(),
                                                                            device=str(device)),
                                   models, clip.detections)
        body = Body.from_file(find_smpl_file("neutral", smpl_dir)).to(device)
        rendered = render_video(result.output, body, options(), device)
        return rate(rendered.frames, rendered.seconds)


def _whole_run(clip: Clip, device: str, smpl_dir: str, fast: bool, compile_backbone: bool,
               queue: multiprocessing.Queue, null_networks: bool = False, precision: str = "auto",
               camera: str = "auto", render: bool = True, camera_thread: bool | None = None) -> None:
    """In a fresh process: load the networks (timed apart: a batch of videos pays it once),
    then reconstruct the whole clip and render its overlay, as `reconstruct --render` does.
    With `null_networks` the device's work is made free and nothing is rendered: what is
    left is the host's own work per frame, the most it could feed a GPU. `camera`: the
    reconstruction's --camera; `render` False: the reconstruction alone."""
    from strcli.body.smpl import Body, find_smpl_file
    from strcli.road.reconstruct import ModelSources, ReconstructOptions, load_models, reconstruct_video
    from strcli.render.overlay import RenderOptions, render_video
    import strcli.road.reconstruct

    if camera_thread is not None:  # else reconstruct's own choice
        strcli.road.reconstruct.CAMERA_THREAD = camera_thread
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        models = load_models(ModelSources(smpl_dir=Path(smpl_dir), untrained=True, download=False), device,
                             need_detector=False, compile_backbone=compile_backbone, precision=precision)
        if null_networks:
            _make_device_work_free(models)
        loaded = time.perf_counter()
        on_gpu = models.device.type == "cuda"
        options = ReconstructOptions(device=device, detect_every=1 if on_gpu and not fast else 0,
                                     detect_hz=7.5 if fast else 10.0, detector_imgsz=320 if fast else 640,
                                     window_stride=16 if fast else 8, precision=precision, camera=camera)
        result = reconstruct_video(clip.path, Path(tmp), options, models, clip.detections)
        reconstructed = time.perf_counter()
        if not null_networks and render:
            body = Body.from_file(find_smpl_file("neutral", Path(smpl_dir))).to(models.device)
            render_video(result.output, body, RenderOptions(), models.device)
        done = time.perf_counter()
        timings = json.loads((result.output / "manifest.json").read_text())["timings"]
        gpu = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None
        queue.put({"status": result.status, "load_seconds": loaded - started, "seconds": done - loaded,
                   "reconstruct_seconds": reconstructed - loaded, "timings": timings,
                   "peak_rss_mib": _peak_rss_mib(), "peak_gpu_mib": gpu})


def _make_device_work_free(models) -> None:
    """Swap the device's work for near-free stand-ins of the same shapes: zero crops, zero
    features, the mean SMPL parameters for every frame (a regressor of 0 iterations). Left
    as they are: decoding, tracking, the per-frame loop, SMPL posing, writing files."""
    import strcli.road.crops
    from strcli.config import CROP_SIZE, FEATURE_DIM
    from strcli.model import Regressor

    def zero_crops(images, frame_index, boxes, size=CROP_SIZE, normalise=True):
        return images.new_zeros((len(frame_index), 3, size, size), dtype=torch.float32)

    strcli.road.crops.crop_images = zero_crops
    models.extractor.run = lambda batch: batch.new_zeros((len(batch), FEATURE_DIM))
    models.temporal = {name: Regressor(FEATURE_DIM, iterations=0).to(models.device).eval()
                       for name in models.temporal}


def _peak_rss_mib() -> float:
    """This process's own peak resident memory. Not `ru_maxrss`: in a spawned process that
    also counts the parent's resident memory at the fork that preceded the exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def whole_run(clip: Clip, device: str, smpl_dir: Path, fast: bool, compile_backbone: bool,
              null_networks: bool = False, precision: str = "auto", camera: str = "auto", render: bool = True,
              camera_thread: bool | None = None) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_whole_run, args=(clip, device, str(smpl_dir), fast, compile_backbone, queue,
                                                       null_networks, precision, camera, render, camera_thread))
    process.start()
    out = queue.get()
    process.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="720,1080")
    parser.add_argument("--people", default="1,4")
    parser.add_argument("--lengths", default="10", help="clip lengths in seconds, e.g. 10,120")
    parser.add_argument("--stage-frames", type=int, default=60, help="frames each stage is timed on alone")
    parser.add_argument("--detector", default="yolo11m.yaml", help="YOLO weights or yaml (timed alone)")
    parser.add_argument("--fast", action="store_true", help="time the --fast settings")
    parser.add_argument("--compile", action="store_true", help="torch.compile the ResNet-50 (reconstruct --compile)")
    parser.add_argument("--smpl-dir", type=Path)
    parser.add_argument("--host-ceiling", action="store_true",
                        help="only the whole reconstruct (no render) with the device's work made free: "
                             "the most frames per second this host could feed a GPU")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16: the detector's and the ResNet-50's "
                        "(reconstruct --precision)")
    parser.add_argument("--camera-share", type=int, metavar="REPEATS", default=0,
                        help="only the camera stage's share: the whole reconstruct (no render) with --camera static "
                             "and auto, REPEATS times each, interleaved, and YOLO11m alone; the fastest run of each")
    args = parser.parse_args()

    from strcli.utils.devices import resolve_device

    device = resolve_device(args.device)
    from strcli.utils.devices import resolve_precision

    precision = resolve_precision(args.precision, device)
    detect_every = 4 if args.fast else 1 if device.type == "cuda" else 3  # at 30 fps (auto: 7.5 or 10 per second)
    imgsz, window_stride = (320, 16) if args.fast else (640, 8)
    rows = []
    with tempfile.TemporaryDirectory(prefix="strcli-bench-") as tmp:
        folder = Path(tmp)
        smpl_dir = args.smpl_dir or _generated_smpl(folder)
        for size in map(int, args.sizes.split(",")):
            for people in map(int, args.people.split(",")):
                for seconds in map(int, args.lengths.split(",")):
                    clip = make_clip(folder, size, people, seconds)
                    if args.camera_share:
                        rows.append(camera_share(clip, device, smpl_dir, args.detector, imgsz, detect_every,
                                                 precision, args.camera_share))
                        if args.json:
                            args.json.write_text(json.dumps(rows, indent=2))
                        continue
                    if args.host_ceiling:
                        row = {"clip": clip.path.name, "device": _device_name(device), "frames": clip.frames,
                               **whole_run(clip, str(device), smpl_dir, args.fast, False, null_networks=True)}
                        row["host_ceiling_fps"] = rate(clip.frames, row["reconstruct_seconds"])
                        rows.append(row)
                        _print_ceiling(row)
                        if args.json:
                            args.json.write_text(json.dumps(rows, indent=2))
                        continue
                    stages = time_stages(clip, min(args.stage_frames, clip.frames), device, args.detector, imgsz,
                                         smpl_dir, window_stride, args.compile, precision)
                    stages["detect+track"] *= detect_every  # run on one frame in `detect_every`
                    whole = whole_run(clip, str(device), smpl_dir, args.fast, args.compile, precision=args.precision)
                    run_stages = {k: v for k, v in stages.items() if k != "detect+track"}  # given boxes
                    slowest = min(run_stages, key=run_stages.get)
                    whole_fps = rate(clip.frames, whole["seconds"])
                    whole["reconstruct_fps"] = rate(clip.frames, whole["reconstruct_seconds"])
                    row = {"clip": clip.path.name, "device": _device_name(device), "fast": args.fast,
                           "compile": args.compile, "precision": precision,
                           "frames": clip.frames, "stages_fps": stages, "whole_fps": whole_fps,
                           "slowest_stage": slowest, "share_of_slowest": whole_fps / run_stages[slowest], **whole}
                    rows.append(row)
                    _print(row, detect_every, imgsz)
                    if args.json:
                        args.json.write_text(json.dumps(rows, indent=2))
    # peak memory against length, per size and people
    by_key: dict[tuple, dict[int, float]] = {}
    for row in rows:
        if "peak_rss_mib" not in row:  # --camera-share rows
            continue
        size, people, seconds = row["clip"].removesuffix(".mp4").split("_")[1:]
        by_key.setdefault((size, people), {})[int(seconds[:-1])] = row["peak_rss_mib"]
    for key, peaks in by_key.items():
        if len(peaks) > 1:
            short, long = peaks[min(peaks)], peaks[max(peaks)]
            print(f"peak host memory {key[0]} {key[1]}: {min(peaks)} s {short:.0f} MiB, {max(peaks)} s "
                  f"{long:.0f} MiB ({100 * (long / short - 1):+.1f}%)")


def detector_seconds(clip: Clip, device: torch.device, detector: str, imgsz: int, precision: str,
                     frames: int = 30) -> float:
    """Seconds per frame of YOLO (built from `detector`) and the tracker alone, one frame a call
    on a CPU, on the clip's first `frames` frames (after a warm-up)."""
    from strcli.road.tracking import DetectionTracker, YoloPersonDetector
    from strcli.road.video import VideoReader

    images = [f.image for f in VideoReader(clip.path, 0, frames)]
    on_gpu = device.type == "cuda"
    yolo = YoloPersonDetector(detector, str(device.index or 0) if on_gpu else "cpu", imgsz, half=on_gpu,
                              cpu_bf16=not on_gpu and precision == "bf16")
    tracker = DetectionTracker(30.0)
    yolo(images[:1])  # warm-up
    started = time.perf_counter()
    for k, image in enumerate(images):
        tracker(k, yolo([image])[0])
    if on_gpu:
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / len(images)


def camera_share(clip: Clip, device: torch.device, smpl_dir: Path, detector: str, imgsz: int, detect_every: int,
                 precision: str, repeats: int) -> dict:
    """The camera-motion stage's cost in the whole reconstruction (no render): runs with
    --camera static, auto with the stage inline and auto in its own thread, interleaved,
    `repeats` times each; the fastest of each (the machine may be shared: the slower runs
    measure the neighbours). Inline, its share is the manifest's `camera` timing over the
    run's wall time; either way, the run's extra time over `static`. With YOLO: the same
    over the run plus YOLO's own cost (every `detect_every`-th frame)."""
    variants = {"static": ("static", True), "inline": ("auto", False), "thread": ("auto", True)}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, found in runs.items():
            camera, threaded = variants[name]
            found.append(whole_run(clip, str(device), smpl_dir, False, False, precision=precision, camera=camera,
                                   render=False, camera_thread=threaded))
    ms = {name: 1000 * min(r["reconstruct_seconds"] for r in found) / clip.frames for name, found in runs.items()}
    inline = min(runs["inline"], key=lambda r: r["reconstruct_seconds"])
    camera_ms = 1000 * inline["timings"].get("camera", 0.0) / clip.frames
    yolo = 1000 * detector_seconds(clip, device, detector, imgsz, precision) / detect_every
    row = {"clip": clip.path.name, "device": _device_name(device), "precision": precision, "frames": clip.frames,
           "repeats": repeats, "ms_per_frame": ms, "camera_ms_per_frame": camera_ms, "yolo_ms_per_frame": yolo,
           "share": camera_ms / ms["inline"], "share_with_yolo": camera_ms / (ms["inline"] + yolo),
           "every_run_s": {name: [round(r["reconstruct_seconds"], 2) for r in found] for name, found in runs.items()},
           "camera_s": {name: [round(r["timings"].get("camera", 0.0), 2) for r in found] for name, found in runs.items()}}
    print(f"\n{row['clip']} ({clip.frames} frames) on {row['device']}, --precision {precision}, fastest of {repeats}:"
          f"\n  whole reconstruct ms/frame: static {ms['static']:.1f}, auto inline {ms['inline']:.1f}, "
          f"auto in its own thread {ms['thread']:.1f}"
          f"\n  camera stage (inline, manifest) {camera_ms:.1f} ms/frame = {100 * row['share']:.1f}% of the run; "
          f"with YOLO's own {yolo:.1f} ms/frame (every {detect_every} frames) {100 * row['share_with_yolo']:.1f}%"
          f"\n  over static: inline +{ms['inline'] - ms['static']:.1f}, thread +{ms['thread'] - ms['static']:.1f} ms/frame"
          f"\n  every run (s): {row['every_run_s']}; camera timings (s): {row['camera_s']}")
    return row


def _print(row: dict, detect_every: int, imgsz: int) -> None:
    print(f"\n{row['clip']} ({row['frames']} frames) on {row['device']}"
          + (" --fast" if row["fast"] else "") + (" --compile" if row["compile"] else "") + f" --precision {row['precision']}" + f"; detector every {detect_every} frame(s) at {imgsz} px")
    for stage, value in row["stages_fps"].items():
        print(f"  {stage:<14}{value:>9.1f} frames/s" + ("  (alone, yaml-built YOLO)" if stage == "detect+track" else ""))
    print(f"  {'whole':<14}{row['whole_fps']:>9.1f} frames/s = {100 * row['share_of_slowest']:.0f}% of the "
          f"slowest stage ({row['slowest_stage']}); {row['status']}, after {row['load_seconds']:.1f} s "
          "loading the networks")
    print(f"  {'reconstruct':<14}{row['reconstruct_fps']:>9.1f} frames/s  (the whole run without render)")
    gpu = f", peak GPU {row['peak_gpu_mib']:.0f} MiB" if row["peak_gpu_mib"] is not None else ""
    print(f"  peak host memory {row['peak_rss_mib']:.0f} MiB{gpu}")


def _print_ceiling(row: dict) -> None:
    seconds = {k: v for k, v in row["timings"].items() if k != "total"}
    print(f"\n{row['clip']} ({row['frames']} frames) on {row['device']}, the device's work made free: "
          f"{row['host_ceiling_fps']:.0f} frames/s\n  where the host's time goes (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os

    return f"CPU ({os.cpu_count()} cores)"


def _generated_smpl(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from strcli.body.generated import make_smpl_arrays, write_chumpy_pickle

    write_chumpy_pickle(make_smpl_arrays(0), folder / "SMPL_NEUTRAL.pkl")
    return folder


if __name__ == "__main__":
    main()
