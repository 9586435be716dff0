"""Milliseconds per frame of `strcli render`, stage by stage, and the cost of each person.

    python benchmarks/render.py [--video V] [--height 1080] [--frames 120] [--people 1,2,4]
                                [--smpl-dir DIR] [--device cpu|cuda] [--side-view] [--preset P]
                                [--candidates] [--no-stages] [--png DIR] [--threads N]

Makes a clip of --frames frames at --height (16:9) from --video (default: the shared
running.mp4, else a generated moving pattern), writes a reconstruct output folder for it
with P walking people side by side (each about 60% of the frame height for one person),
and times the
whole `render_video` for each P (ms per frame; the per-person cost is the slope over P),
prints the peak host memory so far (compare --frames 120 with 1200: it should not grow),
then times each stage alone (decoding, SMPL, drawing = rasterize + shade + blend, H.264
encoding) and, with --candidates, the other renderers docs/rendering.md compares. Without --smpl-dir a generated
SMPL-format body with SMPL's vertex and face counts and roughly a person's silhouette
stands in (drawing cost follows covered pixels and faces, both alike).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_VIDEO = REPO.parent / "shared" / "assets" / "videos" / "running.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SHARED_VIDEO if SHARED_VIDEO.is_file() else None)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--people", default="1,2,4")
    parser.add_argument("--smpl-dir", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--side-view", action="store_true")
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the render")
    parser.add_argument("--png", type=Path, help="also save frame 0 of each render here, to look at")
    parser.add_argument("--candidates", action="store_true",
                        help="also time the other renderers docs/rendering.md compares")
    parser.add_argument("--no-stages", action="store_true", help="time only the whole renders")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from strcli.body.smpl import Body, find_smpl_file
    from strcli.utils.devices import resolve_device
    from strcli.render.overlay import RenderOptions, render_video

    device = resolve_device(args.device)
    people_counts = [int(p) for p in args.people.split(",")]
    width = int(round(args.height * 16 / 9)) // 2 * 2
    with tempfile.TemporaryDirectory(prefix="strcli-bench-render-") as tmp_name:
        tmp = Path(tmp_name)
        smpl_dir = args.smpl_dir or _generated_smpl(tmp)
        body = Body.from_file(find_smpl_file("neutral", smpl_dir)).to(device)
        clip = _make_clip(args.video, tmp / "clip.mp4", width, args.height, args.frames)
        print(f"clip: {width}x{args.height}, {args.frames} frames, from "
              f"{args.video.name if args.video else 'a generated pattern'}; body: "
              f"{'SMPL from ' + str(smpl_dir) if args.smpl_dir else 'generated, SMPL-sized'}; "
              f"device {device}; torch threads {torch.get_num_threads()}")
        print(f"\n{'whole render_video':<34}{'ms/frame':>10}{'frames/s':>10}{'kB/frame':>10}")
        wholes = []
        for count in people_counts:
            folder = _write_outputs(tmp / f"out{count}", clip, body, count, args.frames, device)
            options = RenderOptions(side_view=args.side_view, frames=(0,) if args.png else (), preset=args.preset)
            started = time.perf_counter()
            result = render_video(folder, body, options, device)
            ms = (time.perf_counter() - started) * 1000 / result.frames
            wholes.append(ms)
            size = result.video.stat().st_size / 1000 / result.frames
            if args.png:
                args.png.mkdir(parents=True, exist_ok=True)
                (folder / "frames" / "000000.png").replace(args.png / f"render_{count}_people.png")
            label = f"{count} person" + ("s" if count > 1 else "")
            print(f"{label:<34}{ms:>10.1f}{1000 / ms:>10.1f}{size:>10.1f}")
        if len(people_counts) > 1:
            slope = np.polyfit(people_counts, wholes, 1)[0]
            print(f"each further person: {slope:.1f} ms/frame")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak host memory (RSS) up to here: {rss:.0f} MiB")
        if args.no_stages:
            return
        stages = _stage_times(clip, body, device, max(people_counts), min(args.frames, 120))
        print(f"\n{'stage (alone)':<34}{'ms/frame':>10}")
        for name, ms in stages.items():
            print(f"{name:<34}{ms:>10.1f}")
        if args.candidates:
            for name, ms in _candidates(body, device, width, args.height).items():
                print(f"{name:<34}{ms:>10.1f}")


def _generated_smpl(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from strcli.body.generated import HUMAN_RADII, make_smpl_arrays, write_chumpy_pickle

    write_chumpy_pickle(make_smpl_arrays(0, radii=HUMAN_RADII), folder / "SMPL_NEUTRAL.pkl")
    return folder


def _make_clip(source: Path | None, path: Path, width: int, height: int, frames: int) -> Path:
    import cv2

    from strcli.road.video import VideoReader, VideoWriter

    writer = VideoWriter(path, width, height, 30.0, crf=18, preset="ultrafast")
    written = 0
    while written < frames:  # loop the source if it is shorter
        if source is None:
            images = (_pattern(k, width, height) for k in range(frames))
        else:
            images = (f.image for f in VideoReader(source))
        for image in images:
            if written == frames:
                break
            writer.write(cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR))
            written += 1
    return writer.close()


def _pattern(k: int, width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x + 4 * k) % 256, (y + 2 * k) % 256, (x + y) % 256], -1).astype(np.uint8)


def _walk(count: int, frames: int, focal: float, height: int) -> list[dict[str, np.ndarray]]:
    """`count` people walking on the spot side by side, about 0.6 (one person) of the frame tall."""
    t = np.arange(frames) / 30.0
    swing = 0.5 * np.sin(2 * np.pi * t)  # (N,) radians, one stride per second
    depth = 1.75 * focal / (0.6 * height)
    people = []
    for k in range(count):
        body_pose = np.zeros((frames, 23, 3))
        body_pose[:, 0, 0], body_pose[:, 1, 0] = swing, -swing  # hips
        body_pose[:, 3, 0] = body_pose[:, 4, 0] = 0.4 * (1 + np.sin(2 * np.pi * t))  # knees
        body_pose[:, 15, 2], body_pose[:, 16, 2] = -1.2, 1.2  # shoulders: arms down
        body_pose[:, 15, 0], body_pose[:, 16, 0] = -swing, swing
        global_orient = np.zeros((frames, 3))
        global_orient[:, 0] = np.pi  # SMPL's y up -> the camera's y down
        x = (k - (count - 1) / 2) * 0.7
        transl = np.tile([x, 0.0, depth + 0.8 * k], (frames, 1))
        people.append({"global_orient": global_orient, "body_pose": body_pose.reshape(frames, 69),
                       "betas": np.zeros((frames, 10)), "transl": transl})
    return people


def _write_outputs(folder: Path, clip: Path, body, count: int, frames: int, device: torch.device) -> Path:
    """A reconstruct output folder (manifest + track files) for `count` walkers."""
    from strcli.body.camera import Intrinsics
    from strcli.road.outputs import MANIFEST, Counts, InputFile, TrackSummary, VideoManifest
    from strcli.road.video import probe

    info = probe(clip)
    intrinsics = Intrinsics.default_for(info.width, info.height)
    (folder / "tracks").mkdir(parents=True)
    summaries = []
    for k, motion in enumerate(_walk(count, frames, intrinsics.focal, info.height)):
        joints = np.concatenate([_joints(body, {n: m[c:c + 100] for n, m in motion.items()}, device)
                                 for c in range(0, frames, 100)])  # (N, 24, 3), in chunks: flat memory
        joints2d = intrinsics.focal * joints[..., :2] / joints[..., 2:] + [info.width / 2, info.height / 2]
        np.savez(folder / "tracks" / f"{k}.npz", track_id=k, frames=np.arange(frames), joints2d=joints2d,
                 **motion)
        summaries.append(TrackSummary(k, frames, 0, frames - 1, 0, f"tracks/{k}.npz", "", None))
    manifest = VideoManifest(
        strcli="benchmark", created="", fingerprint="", input=InputFile.of(clip), video={},
        options={"stride": 1, "start_frame": 0, "end_frame": None},
        versions={}, weights=[], intrinsics={"focal": intrinsics.focal},
        counts=Counts(frames, frames, frames, 0, 0, count, count * frames, 0), timings={}, tracks=summaries)
    (folder / MANIFEST).write_text(manifest.to_json())
    return folder


def _joints(body, motion: dict[str, np.ndarray], device: torch.device) -> np.ndarray:
    with torch.inference_mode():
        out = body.axis_angle(*(torch.as_tensor(motion[n], dtype=torch.float32, device=device)
                     for n in ("global_orient", "body_pose", "betas", "transl")))
    return out.joints[:, :24].cpu().numpy()


def _stage_times(clip: Path, body, device: torch.device, people: int, frames: int) -> dict[str, float]:
    """Each stage alone, ms per frame."""
    from strcli.body.camera import Intrinsics
    from strcli.render.overlay import Person, draw_people
    from strcli.road.video import VideoReader, VideoWriter, probe

    info = probe(clip)
    intrinsics = Intrinsics.default_for(info.width, info.height)
    times: dict[str, float] = {}
    started = time.perf_counter()
    images = [f.image for _, f in zip(range(frames), VideoReader(clip))]
    times["decode (RGB)"] = (time.perf_counter() - started) * 1000 / frames
    motion = _walk(1, frames, intrinsics.focal, info.height)[0]
    params = [torch.as_tensor(motion[n], dtype=torch.float32, device=device)
              for n in ("global_orient", "body_pose", "betas", "transl")]
    with torch.inference_mode():
        started = time.perf_counter()
        for k in range(frames):
            body.axis_angle(*(p[k:k + 1] for p in params))
        times["SMPL, 1 person, one frame a call"] = (time.perf_counter() - started) * 1000 / frames
        started = time.perf_counter()
        vertices = body.axis_angle(*params).vertices
        times["SMPL, 1 person, all frames a call"] = (time.perf_counter() - started) * 1000 / frames
    faces = torch.as_tensor(body.faces, device=device)
    image = torch.from_numpy(images[0]).to(device)
    for count in sorted({1, people}):
        started = time.perf_counter()
        for k in range(frames):
            crowd = [Person(j, vertices[k] + vertices.new_tensor([(j - (count - 1) / 2) * 0.7, 0, 0.8 * j]),
                            np.zeros((24, 2))) for j in range(count)]
            draw_people(image, crowd, faces, intrinsics, 0.8)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times[f"draw, {count} person{'s' if count > 1 else ''}"] = (time.perf_counter() - started) * 1000 / frames
    writer = VideoWriter(clip.with_name("encoded.mp4"), info.width, info.height, info.fps)
    started = time.perf_counter()
    for image in images:
        writer.write(image)
    writer.close()
    times["encode (H.264 veryfast)"] = (time.perf_counter() - started) * 1000 / frames
    return times


def _candidates(body, device: torch.device, width: int, height: int, frames: int = 30) -> dict[str, float]:
    """Drawing one person, ms per frame, by each candidate renderer that installs from pip."""
    import cv2

    from strcli.body.camera import Intrinsics
    from strcli.render.rasterize import project_vertices, rasterize

    intrinsics = Intrinsics.default_for(width, height)
    motion = _walk(1, frames, intrinsics.focal, height)[0]
    with torch.inference_mode():
        vertices = body.axis_angle(*(torch.as_tensor(motion[n], dtype=torch.float32, device=device)
                          for n in ("global_orient", "body_pose", "betas", "transl"))).vertices
    faces = torch.as_tensor(body.faces, device=device)
    image = np.zeros((height, width, 3), np.uint8)
    times = {}
    started = time.perf_counter()
    for k in range(frames):
        rasterize(vertices[k], faces, intrinsics)
    times["candidate: torch scanline z-buffer"] = (time.perf_counter() - started) * 1000 / frames
    started = time.perf_counter()
    for k in range(frames):  # painter's algorithm: far to near, one cv2 call per front face
        xy, z = project_vertices(vertices[k], intrinsics)
        tri = xy[faces].cpu().numpy()
        e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        order = np.argsort(-z[faces].mean(dim=1).cpu().numpy())
        points = np.round(tri * 16).astype(np.int32)
        for f in order[area[order] < 0]:
            cv2.fillConvexPoly(image, points[f], (200, 200, 230), cv2.LINE_8, shift=4)
    times["candidate: cv2 painter's (no z-buffer)"] = (time.perf_counter() - started) * 1000 / frames
    return times


if __name__ == "__main__":
    main()
