"""Frames per second per stage and peak memory of `strcli reconstruct` on one video.

    python benchmarks/reconstruct.py VIDEO [--detections FILE] [--device cpu|cuda] [--batch-size 64]
                                     [--end N] [--mesh-format obj] [--smpl-dir DIR] [--repeat 1]

Runs the real road (decode, tracking, crops, ResNet-50, STR, SMPL, writers) into a
temporary folder and prints a table: seconds, frames per second and person-frames per
second for each stage, and peak host (RSS) and GPU memory. Network weights are random
(speed does not depend on their values); without --smpl-dir a generated SMPL-format body
of the real size (6890 vertices) stands in. The first repeat includes warm-up (cuDNN
autotuning, lazy CUDA init); pass --repeat 2 to see the steady state.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--detections", type=Path)
    parser.add_argument("--detector", type=Path, help="YOLO weights (default: the manifest's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--end", default=None)
    parser.add_argument("--mesh-format", default="obj")
    parser.add_argument("--smpl-dir", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from strcli.road.reconstruct import ModelSources, ReconstructOptions, load_models, reconstruct_video

    with tempfile.TemporaryDirectory(prefix="strcli-bench-") as tmp:
        smpl_dir = args.smpl_dir or _generated_smpl(Path(tmp))
        formats = () if args.mesh_format == "none" else tuple(args.mesh_format.split(","))
        options = ReconstructOptions(end=args.end, mesh_formats=formats, device=args.device,
                                     batch_size=args.batch_size)
        models = load_models(ModelSources(detector=args.detector, smpl_dir=smpl_dir, untrained=True,
                                          download=args.detector is None and args.detections is None),
                             args.device, args.batch_size, need_detector=args.detections is None)
        for run in range(args.repeat):
            if models.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(models.device)
            started = time.perf_counter()
            result = reconstruct_video(args.video, Path(tmp) / "out", options, models, args.detections,
                                       overwrite=True)
            wall = time.perf_counter() - started
            manifest = json.loads((result.output / "manifest.json").read_text())
            _print_table(manifest, wall, models.device, run + 1)


def _generated_smpl(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from strcli.body.generated import make_smpl_arrays, write_chumpy_pickle

    write_chumpy_pickle(make_smpl_arrays(0), folder / "SMPL_NEUTRAL.pkl")
    return folder


def _print_table(manifest: dict, wall: float, device: torch.device, run: int) -> None:
    counts, timings = manifest["counts"], manifest["timings"]
    frames, people = counts["frames_processed"], counts["person_frames"]
    video = manifest["video"]
    print(f"\n{Path(video['path']).name}: {video['width']}x{video['height']}, {frames} frames, "
          f"{counts['tracks']} tracks, {people} person-frames; device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f"; run {run}")
    print(f"{'stage':<14}{'seconds':>10}{'frames/s':>12}{'person-frames/s':>18}")
    for stage, seconds in timings.items():
        if stage == "total":
            continue
        fps = frames / seconds if seconds else float("inf")
        pps = people / seconds if seconds else float("inf")
        print(f"{stage:<14}{seconds:>10.2f}{fps:>12.1f}{pps:>18.1f}")
    print(f"{'total':<14}{wall:>10.2f}{frames / wall:>12.1f}{people / wall:>18.1f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = f"peak host memory (RSS): {rss:.0f} MiB"
    if device.type == "cuda":
        line += f"; peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
    print(line)


if __name__ == "__main__":
    main()
