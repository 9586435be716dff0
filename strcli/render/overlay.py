"""Outputs -> videos: every tracked body drawn over the input frames, headless.

`render_video` reads what `strcli reconstruct` wrote for one video (its manifest and
track files), decodes the source again (streamed, upright), poses SMPL for the people of
each frame, rasterizes them together in one z-buffer (`strcli.render.rasterize`, so nearer
bodies and limbs hide farther ones), shades them light and matte in one stable colour per
track id, blends them over the frame and encodes H.264 (`VideoWriter`, temporary name,
renamed when complete). `--side-view` adds a panel of the same bodies turned 90 degrees
about the camera's vertical axis through their centre (seen from the people's right),
framed on the bulk of them (`bulk_bodies`), over the world's floor when the output has a
world (`FloorPath`, `draw_floor`).

Size (over 500 lines): one frame's drawing (projection, depth order, shading, panels, the
side view's framing and floor) and the loop over a video's frames. The side view could be a
module of its own, but it makes `Person`s, which the overlay defines and draws.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch import Tensor

from strcli.body.smpl import Body
from strcli.config import CAMERA_FILE, FRAMES_DIR, TRACK_COLOURS, OVERLAY
from strcli.body.camera import Intrinsics
from strcli.utils.errors import StrcliError, UsageError, VideoError, write_failure, writing
from strcli.utils.locks import WholeFile, video_lock
from strcli.road.inputs import check_same_video, source_file
from strcli.road.inputs import check_render_frames, render_targets
from strcli.road.output_check import check_output
from strcli.road.outputs import MANIFEST, folder_bytes, output_error, reading_output
from strcli.utils.overlap import ReadAhead, WriteBehind
from strcli.road.options import check_render_values
from strcli.render.caption import draw_caption, overlay_caveats
from strcli.render.rasterize import rasterize, vertex_normals
from strcli.road.video import VideoReader, VideoWriter
from strcli.road.world import CameraPath

if TYPE_CHECKING:
    from strcli.road.reconstruct import Progress, VideoResult

PALETTE = np.array(TRACK_COLOURS, np.float32)  # (8, 3) RGB 0-1; track k: PALETTE[k % 8]
from strcli.config import COMPARE  # noqa: E402, F401 (re-exported)
SIDE_BACKGROUND = 235  # grey level of the side-view panel
SIDE_FLOOR = 205  # grey level of the floor (world y = 0) in the side-view panel
SIDE_FLOOR_LINE = 70  # grey level of the floor line under each body, at its own depth
FLOOR_SLACK = 1.0  # metres of floor drawn before and behind the framed bodies, seen from the side
_KEY_LIGHT = (-0.35, -0.55, -0.76)  # from the upper left, in front (camera frame, y down)
# SMPL's kinematic tree, for drawing 2D joints as a skeleton.
_BONES = ((0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 6), (4, 7), (5, 8), (6, 9), (7, 10), (8, 11),
          (9, 12), (9, 13), (9, 14), (12, 15), (13, 16), (14, 17), (16, 18), (17, 19), (18, 20),
          (19, 21), (20, 22), (21, 23))


@dataclass(frozen=True)
class RenderOptions:
    overlay: bool = True  # draw over the video; False: on a plain background
    side_view: bool = False
    tracks: tuple[int, ...] | None = None  # None: all
    alpha: float = 0.8  # opacity of the bodies
    joints: bool = False  # draw the 2D joints and bones
    video: bool = True  # write overlay.mp4
    frames: tuple[int, ...] = ()  # also write these frames as PNG (file frame indices)
    crf: int = 20  # x264 quality: lower is better and larger
    fps: float | None = None  # default: the source's (divided by the reconstruct stride)
    preset: str = "veryfast"
    compare: bool = False  # one labelled panel per model of the folder, side by side
    # A caveat about the body model drawn (`TEST_BODY_NOTE` when it is the generated test
    # body), burned into the frames with the manifest's own (`strcli.render.caption`).
    body_note: str = ""

    def __post_init__(self) -> None:
        check_render_values(alpha=self.alpha, crf=self.crf, fps=self.fps, preset=self.preset, video=self.video,
                            frames=self.frames, compare=self.compare, side_view=self.side_view)


@dataclass(frozen=True)
class TrackMotion:
    """One track's parameters, as `reconstruct` wrote them; N frames."""

    track_id: int
    frames: np.ndarray  # (N,) frame indices in the file
    global_orient: np.ndarray  # (N, 3)
    body_pose: np.ndarray  # (N, 69)
    betas: np.ndarray  # (N, 10)
    transl: np.ndarray  # (N, 3)
    joints2d: np.ndarray  # (N, 24, 2)
    boxes: np.ndarray | None = None  # (N, 4) x1 y1 x2 y2 pixels

    @classmethod
    def load(cls, path: Path) -> TrackMotion:
        with np.load(path, allow_pickle=False) as data:
            return cls(int(data["track_id"]), data["frames"], data["global_orient"], data["body_pose"],
                       data["betas"], data["transl"], data["joints2d"],
                       data["boxes"] if "boxes" in data.files else None)

    def row(self, frame: int) -> int | None:
        k = int(np.searchsorted(self.frames, frame))
        return k if k < len(self.frames) and self.frames[k] == frame else None


@dataclass(frozen=True)
class Person:
    """A posed body to draw in one frame."""

    track_id: int
    vertices: Tensor  # (V, 3) camera frame
    joints2d: np.ndarray  # (24, 2) pixels
    height: float = 0.0  # the person's box height in pixels (0: unknown): sizes the joint markers


def shade_fragments(normals: Tensor, colours: Tensor) -> Tensor:
    """(M, 3) unit normals and base colours -> (M, 3) lit colours in [0, 1]: a matte
    (Lambertian) body under a headlight and a key light, lifted towards white a little."""
    view = normals.new_tensor([0.0, 0.0, -1.0])
    key = torch.nn.functional.normalize(normals.new_tensor(_KEY_LIGHT), dim=0)
    head = (normals @ view).abs()  # two-sided: a mesh seen from inside still reads
    side = (normals @ key).clamp_min(0)
    light = (0.35 + 0.45 * head + 0.35 * side).clamp(max=1.15)[:, None]
    return (colours * light * 0.9 + 0.1).clamp(0, 1)


def draw_people(image: Tensor, people: list[Person], faces: Tensor, intrinsics: Intrinsics,
                alpha: float) -> Tensor:
    """Blend the shaded bodies over `image` ((H, W, 3) uint8 on the render device), in
    place (a tensor made by `torch.from_numpy` shares its array: pass a copy to keep the
    array); returns it."""
    if not people:
        return image
    device = image.device
    vertex_count = people[0].vertices.shape[0]
    vertices = torch.cat([p.vertices.to(device, torch.float32) for p in people])  # (P V, 3)
    all_faces = torch.cat([faces + k * vertex_count for k in range(len(people))])  # (P F, 3)
    fragments = rasterize(vertices, all_faces, intrinsics)
    if len(fragments.pixel) == 0:
        return image
    normals = vertex_normals(vertices, all_faces)  # (P V, 3)
    corners = all_faces.index_select(0, fragments.face).reshape(-1)  # (3 M,)
    normal = torch.bmm(fragments.bary.unsqueeze(1), normals.index_select(0, corners).view(-1, 3, 3))
    normal = torch.nn.functional.normalize(normal.squeeze(1), dim=1)  # (M, 3)
    palette = torch.as_tensor(PALETTE, device=device)
    colour_of = palette.index_select(0, torch.tensor([p.track_id % len(PALETTE) for p in people], device=device))
    colours = shade_fragments(normal, colour_of.index_select(0, fragments.face // faces.shape[0]))
    flat = image.reshape(-1, 3)
    under = flat.index_select(0, fragments.pixel).float() / 255
    blended = ((1 - alpha) * under + alpha * colours) * 255
    flat.index_copy_(0, fragments.pixel, blended.round().clamp(0, 255).to(torch.uint8))
    return image


# A quarter turn about the vertical (y) axis of the camera frame: the side seen from the right.
_QUARTER_TURN = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0))
SIDE_MARGIN = 0.08  # share of the side panel's width and height kept free on each side


@dataclass(frozen=True)
class SideFraming:
    """The side panel's camera, one for the whole video: every body is turned 90 degrees
    about the vertical axis through `centre` (camera frame, metres), moved by `offset`
    (which centres the bodies and sets their distance) and seen by `intrinsics`, whose focal
    length fits all the tracks' bodies in the panel with a margin of SIDE_MARGIN."""

    centre: tuple[float, float, float]
    offset: tuple[float, float, float]
    intrinsics: Intrinsics
    # The side camera's depths (metres) of the nearest and farthest framed body: the floor
    # drawn spans them (and FLOOR_SLACK more). (0, 0): no bodies framed.
    depths: tuple[float, float] = (0.0, 0.0)

    def apply(self, vertices: Tensor) -> Tensor:
        """(V, 3) camera-frame vertices -> (V, 3) in the side camera's frame."""
        turn = vertices.new_tensor(_QUARTER_TURN)
        return (vertices - vertices.new_tensor(self.centre)) @ turn.T + vertices.new_tensor(self.offset)


# The side view frames the bulk of the bodies: those whose centre lies within the
# SIDE_BULK quantiles of all sampled centres (per axis: the middle half), widened on each
# side by SIDE_SLACK times that range plus one body height, so a track at the edge of the
# bulk stays whole; bodies beyond (people far behind or before the crowd) may leave the
# panel. On pedestrians.avi (bodies 10 to 59 m away, median 23 m; benchmarks/side_view.py)
# framing every body makes the median one 22 px tall in a 576-line panel, the 10-90%
# quantiles (slack 0.5) 35 px, the middle half 64 px with 84% of the bodies still whole.
SIDE_BULK = (0.25, 0.75)
SIDE_SLACK = 0.25
_BODY_HEIGHT = 1.7  # metres: the widening beyond the bulk's range


@torch.inference_mode()
def frame_side_view(tracks: list[TrackMotion], body: Body, device: torch.device, width: int, height: int,
                    samples: int = 32, floors: FloorPath | None = None) -> SideFraming:
    """A first pass over the tracks: SMPL posed on up to `samples` frames of each track
    (evenly spread), and the side camera chosen by `side_framing` for a `width` x `height`
    panel. With the world's `floors`, each body's shadow on the floor (its points moved along
    the world's up onto y = 0) is framed with it, so the floor under the bodies is in the
    panel however far above or below it the bodies are."""
    bodies = []
    for track in tracks:
        rows = np.unique(np.linspace(0, len(track.frames) - 1, min(samples, len(track.frames))).astype(int))
        if len(rows) == 0:
            continue

        def stack(name: str, t: TrackMotion = track, r: np.ndarray = rows) -> Tensor:
            return torch.from_numpy(np.asarray(getattr(t, name)[r])).to(device, torch.float32)

        out = body.axis_angle(stack("global_orient"), stack("body_pose"), stack("betas"), stack("transl"))
        points = out.vertices[:, ::7].float()  # (S, V / 7, 3): every 7th vertex is enough for extents
        if floors is not None:
            under = [floors.at(int(track.frames[r])) for r in rows]
            up = points.new_tensor([f.up for f in under])[:, None]  # (S, 1, 3)
            above = (points * up).sum(-1, keepdim=True) + points.new_tensor([f.height for f in under])[:, None, None]
            points = torch.cat([points, points - above * up], dim=1)  # (S, 2 V / 7, 3): and their shadows
        bodies.append(points)
    if not bodies:
        return SideFraming((0.0, 0.0, 3.0), (0.0, 0.0, 3.0), Intrinsics(float(max(width, height)), width, height))
    return side_framing(torch.cat(bodies), width, height)


def side_framing(bodies: Tensor, width: int, height: int) -> SideFraming:
    """The side camera for `bodies` ((S, P, 3) points of S posed bodies, camera frame,
    metres): the bulk of them (`bulk_bodies`) turned 90 degrees about the vertical axis
    through their centre, seen from far enough that the nearest is not distorted, with the
    focal length that fits them in the `width` x `height` panel with a margin of SIDE_MARGIN,
    as large as they can be. Bodies outside the bulk may fall outside the panel."""
    kept = bodies[bulk_bodies(bodies)]
    cloud = kept.reshape(-1, 3)
    centre = cloud.mean(dim=0)
    turned = (cloud - centre) @ cloud.new_tensor(_QUARTER_TURN).T
    lo, hi = turned.min(dim=0).values, turned.max(dim=0).values
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 0.5))
    distance = float(-lo[2]) + 3.0 * span  # far enough that the nearest body is not distorted
    offset = torch.stack([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, cloud.new_tensor(distance)])
    seen = turned + offset
    u = (seen[:, 0] / seen[:, 2]).abs().max().clamp_min(1e-6)
    v = (seen[:, 1] / seen[:, 2]).abs().max().clamp_min(1e-6)
    focal = min((0.5 - SIDE_MARGIN) * width / float(u), (0.5 - SIDE_MARGIN) * height / float(v))
    return SideFraming(tuple(centre.tolist()), tuple(offset.tolist()), Intrinsics(focal, width, height),
                       (float(seen[:, 2].min()), float(seen[:, 2].max())))


def bulk_bodies(bodies: Tensor) -> Tensor:
    """(S,) bool: the bodies of `bodies` ((S, P, 3), camera frame, metres) whose centre lies,
    on each axis, within the SIDE_BULK quantiles of all the centres widened by SIDE_SLACK
    times their range and one body height. A tight crowd keeps everyone; a person far
    behind it (pedestrians.avi's farthest, 56 m away) is left out of the framing. Never
    empty."""
    centres = bodies.mean(dim=1)  # (S, 3)
    q = torch.quantile(centres, centres.new_tensor(SIDE_BULK), dim=0)  # (2, 3)
    slack = SIDE_SLACK * (q[1] - q[0]) + _BODY_HEIGHT
    keep = ((centres >= q[0] - slack) & (centres <= q[1] + slack)).all(dim=1)
    return keep if bool(keep.any()) else torch.ones_like(keep)


@dataclass(frozen=True)
class Floor:
    """The world's floor (y = 0, docs/world.md) in one frame's camera frame (x right, y down,
    z forward, metres): the points X with `up` . X + `height` = 0. `up` (3,) is the world's
    +y in camera axes (row 1 of camera.npz's camera -> world rotation), `height` the camera's
    height above the floor (camera.npz's position y)."""

    up: tuple[float, float, float]
    height: float


class FloorPath:
    """camera.npz's floor for every frame of a render (`at`), read once."""

    def __init__(self, path: CameraPath) -> None:
        self.path = path

    @classmethod
    def load(cls, folder: Path) -> FloorPath | None:
        """The folder's camera.npz in the world frame, or None: no camera.npz (an older strcli)
        or a camera in no world (a video without a person)."""
        path = CameraPath.load(folder / CAMERA_FILE)
        return cls(path) if path is not None else None

    def at(self, frame: int) -> Floor:
        """The floor in the camera frame of file frame `frame` (its row, or the last before)."""
        row = self.path.row(frame)
        return Floor(tuple(self.path.rotations[row][1].tolist()), float(self.path.positions[row][1]))


def floor_band(floor: Floor, framing: SideFraming) -> np.ndarray | None:
    """(4, 2) float pixel corners (u right, v down; pixel centres at +0.5) of the floor under
    and around the framed bodies as the side camera sees it: the pixels whose ray meets the
    floor between the nearest and the farthest framed body's depth, FLOOR_SLACK widened. The
    floor at one depth is an image line (`floor_line`), and those lines are parallel, so the
    band is the strip between the two ends' lines: nearly edge-on, tilted as the video camera
    is. None when no body is framed. A quadrilateral that OpenCV fills and clips: a
    per-pixel test took 21 ms a 1080-line frame."""
    near, far = framing.depths
    if far <= 0:
        return None
    intr = framing.intrinsics
    lines = [floor_line(floor, framing, depth) for depth in (max(near - FLOOR_SLACK, 1e-3), far + FLOOR_SLACK)]
    if lines[0] is None or lines[1] is None:
        return None
    big = 1e5  # pixels: far beyond any panel, within OpenCV's fixed-point range

    def across(line: tuple[float, float, float], u: float) -> float:
        a, b, c = line
        return float(np.clip(-(a * u + c) / b, -big, big))

    width = float(intr.width)
    return np.array([(0.0, across(lines[0], 0.0)), (width, across(lines[0], width)),
                     (width, across(lines[1], width)), (0.0, across(lines[1], 0.0))])


def _floor_in_side_camera(floor: Floor, framing: SideFraming) -> tuple[np.ndarray, float]:
    """The floor as m . X' + k = 0 in the side camera's frame X' (m (3,), k metres)."""
    turn = np.array(_QUARTER_TURN)
    up = np.array(floor.up)
    # X = turn.T (X' - offset) + centre, so up . X + height = 0 reads m . X' + k = 0
    m = turn @ up
    return m, float(floor.height + up @ np.array(framing.centre) - m @ np.array(framing.offset))


def floor_line(floor: Floor, framing: SideFraming, depth: float) -> tuple[float, float, float] | None:
    """The floor at side-camera depth `depth` (metres) as the side panel's image line
    a u + b v + c = 0 (pixels; u right, v down, pixel centres at +0.5), or None where the line
    is steeper than 45 degrees (a camera rolled that far: a side view then shows no floor)."""
    m, k = _floor_in_side_camera(floor, framing)
    intr = framing.intrinsics
    # X' = depth ((u - W/2) / f, (v - H/2) / f, 1) on the floor
    a, b = m[0] * depth / intr.focal, m[1] * depth / intr.focal
    if abs(b) < abs(a):  # steeper than 45 degrees: a camera rolled that far (not drawn)
        return None
    return float(a), float(b), float(m[2] * depth + k - a * intr.width / 2 - b * intr.height / 2)


def draw_floor(panel: np.ndarray, floor: Floor, framing: SideFraming, people: list[Person]) -> None:
    """The floor in the side panel ((H, W, 3) uint8, in place), before the bodies: the band
    of `floor_band` in SIDE_FLOOR grey and, under each of `people` (`framing`'s side
    camera frame), the floor at that body's own depth (its vertices' mean) as a dark line as
    wide as the body and half as much again: feet on the floor stand on their line, a
    floating or sinking body is off it by its error."""
    band = floor_band(floor, framing)
    if band is not None:
        corners = np.round((band - 0.5) * 16).astype(np.int32)  # 4 fractional bits (`shift`)
        cv2.fillPoly(panel, [corners], (SIDE_FLOOR,) * 3, cv2.LINE_8, 4)
    intr = framing.intrinsics
    for person in people:
        vertices = person.vertices.float().cpu().numpy()
        depth = float(vertices[:, 2].mean())
        line = floor_line(floor, framing, depth) if depth > 0 else None
        if line is None:
            continue
        u = intr.focal * vertices[:, 0] / np.maximum(vertices[:, 2], 1e-6) + intr.width / 2
        left, right = float(u.min()), float(u.max())
        left, right = left - 0.25 * (right - left) - 3, right + 0.25 * (right - left) + 3
        a, b, c = line
        ends = [(x, -(a * x + c) / b) for x in (left, right)]
        if not all(np.isfinite(e).all() and abs(e[1]) < 1e5 for e in ends):
            continue
        shift = 4  # cv2 draws at sub-pixel precision with 4 fractional bits
        (x0, y0), (x1, y1) = [(round((x - 0.5) * 16), round((y - 0.5) * 16)) for x, y in ends]
        thickness = max(1, round(intr.height / 300))
        cv2.line(panel, (x0, y0), (x1, y1), (SIDE_FLOOR_LINE,) * 3, thickness, cv2.LINE_AA, shift)


def side_view(people: list[Person], framing: SideFraming) -> list[Person]:
    """The bodies seen from the side (turned 90 degrees about the vertical axis), framed by
    the video's `framing`, so the panel shows depth."""
    return [Person(p.track_id, framing.apply(p.vertices), p.joints2d, p.height) for p in people]


def joint_radius(height: float) -> int:
    """Radius in pixels of a joint marker for a person `height` pixels tall (box height):
    proportional, 3 px for a 180 px person, at least 1."""
    return max(1, round(height / 60))


def draw_joints(image: np.ndarray, people: list[Person]) -> None:
    """The 2D joints and bones, sized to each person (their box height)."""
    for person in people:
        colour = tuple(int(255 * x * 0.75) for x in PALETTE[person.track_id % len(PALETTE)])
        points = np.round(person.joints2d).astype(int)
        size = person.height or float(np.ptp(person.joints2d[:, 1]) * 1.2)  # joints span ~80% of a box
        radius = joint_radius(size)
        thickness = max(1, round(size / 90))
        for a, b in _BONES:
            cv2.line(image, tuple(points[a]), tuple(points[b]), colour, thickness, cv2.LINE_AA)
        for point in points:
            cv2.circle(image, tuple(point), radius, (255, 255, 255), -1, cv2.LINE_AA)


@dataclass(frozen=True)
class RenderResult:
    folder: Path
    video: Path | None
    frames: int  # frames drawn
    pngs: int
    seconds: float
    png_folder: Path | None = None  # where the PNGs went (folder/frames), if any


def render_video(folder: Path, body: Body, options: RenderOptions = RenderOptions(),
                 device: torch.device = torch.device("cpu"), source: Path | None = None,
                 progress: Callable[[int, int | None], None] | None = None) -> RenderResult:
    """Render `folder` (one video's reconstruct output) to folder/overlay.mp4 and PNGs, or
    with `options.compare` every model's bodies side by side to folder/compare.mp4. A full
    disk, a read-only folder or a permission error, also from the encoder's thread, raises
    OutputError (exit 6); no partial file is left. Holds the video's lock
    (`strcli.utils.locks.video_lock`): BusyError (exit 9) when another process writes the folder.

    Without a video (`options.video` False) only the frames asked for are drawn, and the
    source is decoded up to the last of them. PNGs go to a fresh folder that replaces
    folder/frames/ when the render is complete, so no PNG of an earlier render stays.
    `progress(done, total)` is called with done = 0 before the first frame. A folder of the
    user's where overlay.mp4 goes, or a file where frames/ goes, or a frame asked for that the
    output does not hold (`check_render_frames`): UsageError (exit 2) first, nothing touched."""
    render_targets(folder, options.video, options.compare, bool(options.frames))
    check_render_frames(folder, options.frames)
    with writing(folder / (COMPARE if options.compare else OVERLAY)), \
            video_lock(folder.absolute().parent, folder.absolute().name, "render"):
        return _render_video(folder, body, options, device, source, progress)


def _render_video(folder: Path, body: Body, options: RenderOptions, device: torch.device, source: Path | None,
                  progress: Callable[[int, int | None], None] | None) -> RenderResult:
    started = time.perf_counter()
    manifest, panels, source = _load(folder, options, source)
    opts = manifest["options"]
    stride = int(opts["stride"])
    start, end = int(opts["start_frame"]), opts["end_frame"]
    wanted = set(options.frames)
    if not options.video:  # decode no further than the last frame asked for
        end = max(wanted) + 1 if end is None else min(int(end), max(wanted) + 1)
    reader = VideoReader(source, start, end, stride)
    info = reader.info
    check_same_video(manifest, info, folder.name)
    intrinsics = Intrinsics(manifest["intrinsics"]["focal"], info.width, info.height)
    fps = options.fps or info.fps / stride
    keep_times = options.fps is None  # each frame at its source time (a variable rate is kept)
    faces = torch.as_tensor(body.faces, device=device)
    # Burned into every frame (each --compare panel its own model's), when there is one.
    first = (manifest.get("models") or [{}])[0].get("name")  # the model a plain render draws
    captions = [overlay_caveats(manifest, options.body_note, label.lower() if label else first) for label, _ in panels]
    floors = FloorPath.load(folder) if options.side_view else None  # the world's floor, when there is a world
    sides = [frame_side_view(tracks, body, device, info.width, info.height, floors=floors) if options.side_view
             else None for _, tracks in panels]
    writer = None
    if options.video:
        writer = VideoWriter(folder / (COMPARE if options.compare else OVERLAY),
                             info.width * (2 if options.side_view else 1) * len(panels), info.height,
                             fps, options.crf, options.preset,
                             copy_audio_from=source if keep_times else None)
    in_range = {f for f in wanted if f >= start and (end is None or f < end) and (f - start) % stride == 0}
    processed = manifest["counts"]["frames_processed"]
    total = processed if options.video else len(in_range)
    pngs: list[Path] = []
    png_dir = folder / f".frames.partial-{os.getpid()}" if wanted else None

    def emit(item: tuple[int, float, np.ndarray]) -> None:  # runs in the write-behind thread
        index, at, drawn = item
        if writer is not None:
            writer.write(drawn, at if keep_times else None)
        if png_dir is not None and index in wanted:
            pngs.append(_write_png(png_dir / f"{index:06d}.png", drawn))

    sink: WriteBehind[tuple[int, float, np.ndarray]] = WriteBehind(emit, depth=3)
    count, drawn_count, first_time, last_time = 0, 0, 0.0, 0.0
    threads = torch.get_num_threads()
    if progress:
        progress(0, total)
    try:
        if device.type == "cpu":  # leave cores to the decoder's and the encoder's threads
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
        # Decoding runs ahead and encoding behind in threads, while this one draws.
        for frame in ReadAhead(reader, depth=3):
            first_time = frame.time if count == 0 else first_time
            last_time = frame.time
            count += 1
            if writer is None and frame.index not in wanted:
                continue  # PNGs only: draw just the frames asked for
            drawn = [_draw_frame(frame.image, _people_at(frame.index, tracks, body, device), faces, intrinsics,
                                 options, label, side, caption, floors.at(frame.index) if floors else None)
                     for (label, tracks), side, caption in zip(panels, sides, captions)]
            sink.put((frame.index, frame.time - first_time,
                      drawn[0] if len(drawn) == 1 else np.concatenate(drawn, axis=1)))
            drawn_count += 1
            if progress:
                progress(drawn_count, total)
        sink.close()
        if options.video and count != processed:  # the whole range was decoded: it must be the same
            raise VideoError(f"{source.name} gave {count} frames in the range of {folder.name}, which was "
                             f"reconstructed from {processed}: it is not the same video (or it changed).",
                             "Pass the video it was made from with --video-file.")
        end_time = (last_time + stride / info.fps) if keep_times and info.fps else first_time + count / fps
        video = writer.close(first_time, end_time) if writer is not None else None
        if png_dir is not None:
            _replace_frames(png_dir, folder / FRAMES_DIR)
    except BaseException:
        sink.abort()
        if writer is not None:
            writer.abort()
        if png_dir is not None:
            shutil.rmtree(png_dir, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(threads)
    return RenderResult(folder, video, drawn_count, len(pngs), time.perf_counter() - started,
                        folder / FRAMES_DIR if pngs else None)


def _replace_frames(fresh: Path, frames: Path) -> None:
    """Put the PNGs of this render (`fresh`) in place of frames/, dropping any of earlier renders."""
    try:
        fresh.mkdir(exist_ok=True)
        if frames.exists():
            old = frames.with_name(f".frames.old-{os.getpid()}")
            frames.rename(old)
            fresh.rename(frames)
            shutil.rmtree(old, ignore_errors=True)
        else:
            fresh.rename(frames)
    except OSError as err:
        raise output_error(err, frames) from err


Panel = tuple[str | None, list[TrackMotion]]  # (label, tracks to draw)


def _load(folder: Path, options: RenderOptions, source: Path | None) -> tuple[dict, list[Panel], Path]:
    """The manifest, the panels to draw (one, or one per model with `compare`) and the
    source video of an output folder. A damaged folder is a UsageError (exit 2)."""
    with reading_output(folder):
        return _read_folder(folder, options, source)


def _read_folder(folder: Path, options: RenderOptions, source: Path | None) -> tuple[dict, list[Panel], Path]:
    manifest = check_output(folder).manifest  # shapes, finite values, focal, frame counts: DamagedOutput (exit 2)
    source = source_file(manifest, source, folder.name)
    if options.compare:
        models = manifest.get("models", [])
        if len(models) < 2:
            raise UsageError(f"{folder.name} holds one model's results; --compare needs several.",
                             "Reconstruct with e.g. --model str,tcmr first.")
        sets = [(m["name"].upper(), [TrackMotion.load(folder / m["folder"] / t["npz"]) for t in m["tracks"]])
                for m in models]
    else:
        sets = [(None, [TrackMotion.load(folder / t["npz"]) for t in manifest["tracks"]])]
    panels: list[Panel] = []
    for label, tracks in sets:
        if options.tracks is not None:
            unknown = sorted(set(options.tracks) - {t.track_id for t in tracks})
            if unknown:
                raise UsageError(f"{folder.name} has no track {unknown[0]} (tracks: "
                                 f"{', '.join(str(t.track_id) for t in tracks) or 'none'}).")
            tracks = [t for t in tracks if t.track_id in options.tracks]
        panels.append((label, tracks))
    return manifest, panels, source


def _draw_frame(frame: np.ndarray, people: list[Person], faces: Tensor, intrinsics: Intrinsics,
                options: RenderOptions, label: str | None = None, side: SideFraming | None = None,
                caption: str = "", floor: Floor | None = None) -> np.ndarray:
    """One output panel (H, W or 2W, 3) uint8: the overlay with its `caption` (`draw_caption`,
    within the overlay's W columns), the side view beside it (on the `floor`, when the output
    has a world), and the model's name in the corner when comparing."""
    # A copy, always: on a CPU `.to` would share `frame`, and each panel (each model of
    # --compare) must start from the untouched source picture, not from the last one drawn.
    image = torch.from_numpy(frame).to(faces.device, copy=True)
    base = image if options.overlay else torch.full_like(image, SIDE_BACKGROUND)
    drawn = draw_people(base, people, faces, intrinsics, options.alpha).cpu().numpy()
    if options.joints:
        draw_joints(drawn, people)
    if caption:  # on the overlay alone: wrapped to the frame and the side panel's width, it crossed into that panel
        draw_caption(drawn, caption)
    if options.side_view:
        side = side or frame_side_view([], None, image.device, intrinsics.width, intrinsics.height)  # type: ignore[arg-type]
        seen = side_view(people, side)
        backdrop = np.full(frame.shape, SIDE_BACKGROUND, np.uint8)
        if floor is not None:
            draw_floor(backdrop, floor, side, seen)
        panel = torch.from_numpy(backdrop).to(faces.device)
        turned = draw_people(panel, seen, faces, side.intrinsics, 1.0).cpu().numpy()
        drawn = np.concatenate([drawn, turned], axis=1)
    if label:
        draw_label(drawn, label)
    return drawn


def draw_label(image: np.ndarray, text: str) -> None:
    """`text` in white on a dark box in the top-left corner, sized to the frame."""
    scale = max(0.6, image.shape[0] / 720)
    thickness = max(1, round(2 * scale))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = round(8 * scale)
    cv2.rectangle(image, (0, 0), (w + 2 * pad, h + base + 2 * pad), (20, 20, 20), -1)
    cv2.putText(image, text, (pad, pad + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)


@torch.inference_mode()
def _people_at(frame: int, tracks: list[TrackMotion], body: Body, device: torch.device) -> list[Person]:
    rows = [(t, r) for t in tracks if (r := t.row(frame)) is not None]
    if not rows:
        return []

    def stack(name: str) -> Tensor:
        return torch.from_numpy(np.stack([getattr(t, name)[r] for t, r in rows])).to(device, torch.float32)

    out = body.axis_angle(stack("global_orient"), stack("body_pose"), stack("betas"), stack("transl"))
    return [Person(t.track_id, out.vertices[k], t.joints2d[r],
                   float(t.boxes[r, 3] - t.boxes[r, 1]) if t.boxes is not None else 0.0)
            for k, (t, r) in enumerate(rows)]


def _write_png(path: Path, image: np.ndarray) -> Path:
    """PNG through a temporary name. OpenCV says only False when it fails, so the image is
    encoded in memory and written by Python, whose errors carry the errno (full disk...).
    Nothing is swept: the folder is this render's own fresh one."""
    with WholeFile(path, keep_suffix=True, sweep=False) as tmp:
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"cv2 could not encode {path}")
        tmp.write_bytes(encoded.tobytes())
    return path

def render_result(result: VideoResult, body: Body, options: RenderOptions, device: torch.device,
                  progress: Progress | None = None) -> VideoResult:
    """`reconstruct --render`, after a video's reconstruction: its overlay, unless a skipped
    video's one is newer than its outputs. A failure marks the video failed (the
    reconstruction stands) instead of raising."""
    assert result.output is not None
    overlay = result.output / OVERLAY
    if (result.status == "skipped" and options.video and not options.frames and overlay.is_file()
            and overlay.stat().st_mtime >= (result.output / MANIFEST).stat().st_mtime):
        return replace(result, rendered=overlay)

    def advance(done: int, total: int | None) -> None:
        if progress is not None:
            if done == 0:  # called once before the first frame, with the frame count
                progress.start("render", total)
            else:
                progress.advance()

    try:
        rendered = render_video(result.output, body, options, device, progress=advance)
    except Exception as err:  # the reconstruction stands; the video counts as failed
        if progress is not None:
            progress.fail()
        failure = err if isinstance(err, StrcliError) else write_failure(err)
        if failure is None:
            raise
        return replace(result, status="failed", message=f"rendering failed: {failure}", exit_code=failure.exit_code)
    if progress is not None:
        progress.finish()
    return replace(result, rendered=rendered.video, seconds=result.seconds + rendered.seconds,
                   bytes=folder_bytes(result.output))
