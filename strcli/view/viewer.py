"""`strcli view`: the reconstructed bodies in 3D, in the browser, with viser.

viser serves a web page (its prebuilt client, no network needed) and keeps the scene in
sync over a websocket. The scene is the camera frame of the reconstruction (x right,
y down, z forward, metres) shown with -y as up: every track's SMPL body, posed by
strcli's own body model (per-frame betas and pose correctives, as `strcli render` draws
them) only for the frame on screen; the video's camera as a frustum at the origin with the
current frame, downscaled, as its image (decoded on demand: `FrameSource` keeps one
decoder and seeks only when the slider jumps); a ground grid under the lowest foot. GUI:
play/pause, a frame slider, and one checkbox per track. Memory does not grow with the
video's length: the track files (a few hundred bytes a frame) are the only per-frame data
held.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from strcli.body.smpl import Body
from strcli.body.camera import Intrinsics
from strcli.utils.errors import UsageError, VideoError
from strcli.export.gltf import camera_yfov
from strcli.road.options import check_serve_address
from strcli.road.output_check import check_output
from strcli.road.outputs import reading_output
from strcli.render.overlay import PALETTE, TrackMotion
from strcli.road.inputs import source_video
from strcli.road.timing import FrameClock
from strcli.road.video import stream_rate, upright, upright_rotation, video_stream

FRAME_WIDTH = 480  # pixels: the frustum image is downscaled to this width
_SEEK_AHEAD = 2.0  # seconds: a jump further than this (or backwards) seeks instead of decoding on
IDLE_POLL = 0.25  # seconds: how often an idle viewer looks whether it is to stop


class FrameSource:
    """Frames of a video by presentation time (seconds from its first frame, as
    `VideoReader` gives them: `FrameClock`'s times), upright and downscaled to `width`,
    decoded on demand with one open decoder from the stream every command reads
    (`video_stream`). `seekable` False (a file whose timestamps had to be mended: its own
    times are not the frames') decodes from the start instead of seeking back."""

    def __init__(self, path: Path, rotation: int, width: int = FRAME_WIDTH, mirrored: bool = False,
                 seekable: bool = True) -> None:
        self.path, self.rotation, self.width, self.mirrored = path, rotation, width, mirrored
        self.seekable = seekable
        self.lock = threading.Lock()
        self.container = av.open(str(path))
        stream = video_stream(self.container)
        if stream is None:
            self.container.close()
            raise VideoError(f"{path} has no video stream.")
        self.stream = stream
        self.stream.thread_type = "AUTO"
        rate = stream_rate(self.stream) or 25.0  # the reader's step (`probe`), for the same times
        self.discontinuous = bool(self.container.format.flags & av.format.Flags.ts_discont.value)
        self.step = 1 / rate
        self.clock = FrameClock(self.step, self.discontinuous)
        self.size: tuple[int, int] | None = None  # the first frame's (width, height), as decoded
        self.frames = self.container.decode(self.stream)
        self.last: tuple[float, av.VideoFrame] | None = None
        first = self._next()
        if first is None:
            raise VideoError(f"{path} has no decodable frames.")

    def _next(self) -> tuple[float, av.VideoFrame] | None:
        try:
            frame = next(self.frames)
        except (StopIteration, av.error.FFmpegError):
            return None
        self.size = self.size or (frame.width, frame.height)
        self.last = (self.clock(float(frame.time) if frame.time is not None else None), frame)
        return self.last

    def _seek(self, seconds: float) -> None:
        """Go back to just before `seconds`: by the file's own times when they are the
        frames', else by decoding again from the start."""
        if self.seekable and self.clock.origin is not None and self.stream.time_base is not None:
            self.container.seek(int((seconds + self.clock.origin) / self.stream.time_base), stream=self.stream,
                                backward=True, any_frame=False)
            self.clock = FrameClock(self.step, self.discontinuous, origin=self.clock.origin)
            self.frames = self.container.decode(self.stream)
            self.last = None
            return
        self.container.seek(0, backward=True, any_frame=False)
        self.clock = FrameClock(self.step, self.discontinuous)
        self.frames = self.container.decode(self.stream)
        self.last = None

    def at(self, seconds: float) -> np.ndarray | None:
        """(h, w, 3) uint8 RGB of the frame shown at `seconds`, or None past the end."""
        with self.lock:
            if self.last is None or seconds < self.last[0] - 1e-4 or (
                    self.seekable and seconds > self.last[0] + _SEEK_AHEAD):
                self._seek(seconds)
                self._next()
            while self.last is not None and self.last[0] < seconds - 1e-4:
                if self._next() is None:
                    break
            if self.last is None:
                return None
            frame = self.last[1]
            if self.size is not None and (frame.width, frame.height) != self.size:
                frame = frame.reformat(width=self.size[0], height=self.size[1])
            image = upright(frame.to_ndarray(format="rgb24"), self.rotation, self.mirrored)
        scale = self.width / image.shape[1]
        return cv2.resize(image, (self.width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)

    def close(self) -> None:
        self.container.close()


class Scene:
    """What the viewer shows of one output folder, frame by frame."""

    def __init__(self, folder: Path, body: Body, source: Path | None = None) -> None:
        with reading_output(folder):  # a damaged folder: UsageError (exit 2)
            self._read(folder, body, source)

    def _read(self, folder: Path, body: Body, source: Path | None) -> None:
        manifest = check_output(folder).manifest  # shapes, finite values, focal, frame counts: DamagedOutput (exit 2)
        self.body = body
        self.tracks = [TrackMotion.load(folder / t["npz"]) for t in manifest["tracks"]]
        cam = manifest["intrinsics"]
        self.intrinsics = Intrinsics(float(cam["focal"]), int(cam["width"]), int(cam["height"]))
        frames, times = [], []
        for t in manifest["tracks"]:
            with np.load(folder / t["npz"], allow_pickle=False) as data:
                frames.append(data["frames"])
                times.append(data["times"])
        if frames:
            index = np.concatenate(frames)
            order = np.unique(index, return_index=True)[1]
            self.frames = index[order]
            self.times = np.concatenate(times)[order]
        else:
            self.frames, self.times = np.zeros(0, np.int64), np.zeros(0)
        self.fps = float(manifest["video"].get("fps") or 25.0) / int(manifest["options"].get("stride", 1))
        self.floor = self._floor(folder, manifest)
        self.depth = self._depth(folder, manifest)
        video = source_video(manifest["input"], source)
        # The rule of `probe` again: a manifest of an older strcli may record any angle.
        rotation = upright_rotation(float(manifest["video"].get("rotation") or 0))[0]
        mirrored = bool(manifest["video"].get("mirrored", False))
        seekable = not manifest.get("counts", {}).get("timestamps_mended", 0)
        self.video = FrameSource(video, rotation, mirrored=mirrored, seekable=seekable) if video.is_file() else None

    @staticmethod
    def _floor(folder: Path, manifest: dict) -> float:
        """The ground's height (camera y, down positive): the lowest ankle seen, plus a few cm."""
        lowest = []
        for t in manifest["tracks"]:
            with np.load(folder / t["npz"], allow_pickle=False) as data:
                lowest.append(float(data["joints3d"][:, [7, 8, 10, 11], 1].max()))
        return max(lowest) + 0.05 if lowest else 1.5

    @staticmethod
    def _depth(folder: Path, manifest: dict) -> float:
        """The people's median distance from the camera (metres): sizes the grid and frustum."""
        depths = []
        for t in manifest["tracks"]:
            with np.load(folder / t["npz"], allow_pickle=False) as data:
                depths.append(data["transl"][:, 2])
        return float(np.median(np.concatenate(depths))) if depths else 5.0

    @torch.inference_mode()
    def bodies(self, frame: int) -> dict[int, np.ndarray]:
        """Track id -> (V, 3) camera-frame vertices of the people in `frame`."""
        rows = [(t, r) for t in self.tracks if (r := t.row(frame)) is not None]
        if not rows:
            return {}

        def stack(name: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([getattr(t, name)[r] for t, r in rows])).float()

        out = self.body.axis_angle(stack("global_orient"), stack("body_pose"), stack("betas"), stack("transl"))
        return {t.track_id: out.vertices[k].numpy() for k, (t, _) in enumerate(rows)}


def serve(folder: Path, body: Body, host: str = "127.0.0.1", port: int = 8080, source: Path | None = None,
          announce: Callable[[str], None] = print, stop: threading.Event | None = None,
          loading: Callable[[str], None] = lambda line: None) -> None:
    """Serve the viewer of `folder` until `stop` is set (KeyboardInterrupt and SIGTERM's
    `Interrupted` pass through, after the server is stopped). `port` 0 takes any free port;
    a port out of range or in use is a UsageError (exit 2), before anything loads.
    `loading(line)` hears what is being read (the tracks, every one listed, and the video)
    before `announce(url)`."""
    import viser

    check_serve_address(host, port)
    loading(f"reading {folder}...")
    scene = Scene(folder, body, source)
    if len(scene.frames) == 0:
        raise UsageError(f"{folder.name} has no tracks to show.")
    loading(track_list(scene.tracks))
    loading(f"video frames from {scene.video.path}" if scene.video is not None
            else "no source video found (--video-file FILE shows its frames): the camera shows none")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # viser's address box: `announce` says it in one line
            server = viser.ViserServer(host=host, port=port, verbose=False)
    except OSError as err:
        raise UsageError(f"cannot serve on {host}:{port} ({err.strerror or err}).",
                         "Choose another --port.") from err
    try:
        if port and server.get_port() != port:  # taken since the check: viser moved on to another
            raise UsageError(f"port {port} on {host} is in use by another program.",
                             "Choose another --port (--port 0: any free one).")
        _build(server, scene, stop or threading.Event(), announce, host, server.get_port())
    finally:
        # viser prints "(viser) Server stopped" from its server thread, which `stop` joins: the
        # command's own one line says it (strcli.cli.view).
        with contextlib.redirect_stdout(io.StringIO()):
            server.stop()
        if scene.video is not None:
            scene.video.close()


def track_list(tracks: list[TrackMotion]) -> str:
    """Every track of a scene in one line: "3 tracks: 1 (frames 0-79), 2 (...), ..."."""
    listed = ", ".join(f"{t.track_id} (frames {int(t.frames[0])}-{int(t.frames[-1])})" if len(t.frames)
                       else f"{t.track_id}" for t in tracks)
    return f"{len(tracks)} track{'s' if len(tracks) != 1 else ''}: {listed}"


def _build(server, scene: Scene, stop: threading.Event, announce: Callable[[str], None], host: str,
           port: int) -> None:
    faces = scene.body.faces
    intr = scene.intrinsics
    depth = scene.depth
    server.scene.set_up_direction("-y")
    # Start above the people and to the right of the video's camera, looking at them: from behind
    # the camera the video frame on its frustum (at 0.2 depth) would stand between the view and
    # every body the camera sees (a new user's trial found them hidden).
    server.initial_camera.position = (0.5 * depth, scene.floor - 0.6 * depth, 0.1 * depth)
    server.initial_camera.look_at = (0.0, scene.floor - 0.9, 0.9 * depth)
    server.initial_camera.up = (0.0, -1.0, 0.0)
    server.scene.add_grid("/ground", width=4 * depth, height=4 * depth, plane="xz",
                          cell_size=0.5 if depth < 10 else 1.0, position=(0.0, scene.floor, depth))
    first = scene.video.at(float(scene.times[0])) if scene.video is not None else None
    frustum = server.scene.add_camera_frustum("/camera", fov=camera_yfov(intr.focal, intr.height),
                                              aspect=intr.width / intr.height, scale=0.2 * depth,
                                              image=first, format="jpeg", jpeg_quality=80)
    meshes: dict[int, object] = {}
    colours = {t.track_id: tuple(int(255 * c) for c in PALETTE[t.track_id % len(PALETTE)]) for t in scene.tracks}
    with server.gui.add_folder("Playback"):
        playing = server.gui.add_checkbox("Playing", True)
        slider = server.gui.add_slider("Frame", 0, len(scene.frames) - 1, 1, 0)
        speed = server.gui.add_slider("Speed", 0.25, 2.0, 0.25, 1.0)
    # A sidebar as tall as the window, which scrolls: the floating panel capped its height and
    # hid the tracks past the tenth or so.
    server.gui.configure_theme(control_layout="fixed", control_width="medium", show_share_button=False)
    with server.gui.add_folder("Tracks"):
        server.gui.add_markdown(f"{len(scene.tracks)} track{'s' if len(scene.tracks) != 1 else ''}: "
                                + ", ".join(str(t.track_id) for t in scene.tracks))
        show_all, hide_all = server.gui.add_button("Show all"), server.gui.add_button("Hide all")
        toggles = {t.track_id: server.gui.add_checkbox(f"track {t.track_id}", True) for t in scene.tracks}

    def set_all(value: bool) -> None:
        for toggle in toggles.values():
            toggle.value = value

    show_all.on_click(lambda _: set_all(True))
    hide_all.on_click(lambda _: set_all(False))
    shown: dict[str, object] = {"state": None}

    def state() -> tuple:
        return int(slider.value), tuple(t.value for t in toggles.values())

    def show(index: int) -> None:
        frame = int(scene.frames[index])
        bodies = scene.bodies(frame)
        for tid in list(meshes) + [t for t in bodies if t not in meshes]:
            visible = tid in bodies and toggles[tid].value
            if visible:
                # A mesh's vertices are replaced by re-adding it under the same name.
                meshes[tid] = server.scene.add_mesh_simple(f"/tracks/{tid}", bodies[tid].astype(np.float32),
                                                           faces, color=colours[tid], side="double")
            elif tid in meshes:
                meshes[tid].visible = False
        if scene.video is not None:
            image = scene.video.at(float(scene.times[index]))
            if image is not None:
                frustum.image = image
        shown["state"] = state()

    # Idle unless someone watches: with no browser connected, or paused, the loop sleeps
    # until a client connects or a control changes (`wake`); playing, it sleeps until the
    # next frame is due. `stop` is looked at every IDLE_POLL seconds.
    wake = threading.Event()

    def poke(*_: object) -> None:
        wake.set()

    server.on_client_connect(poke)
    server.on_client_disconnect(poke)
    for control in (playing, slider, speed, *toggles.values()):
        control.on_update(poke)
    show(int(slider.value))  # the scene a first client gets
    announce(f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}")
    due = time.perf_counter()
    while not stop.is_set():
        wake.clear()
        if state() != shown["state"]:
            show(int(slider.value))
        if not playing.value or not server.get_clients():
            wake.wait(IDLE_POLL)
            due = time.perf_counter()
            continue
        now = time.perf_counter()
        if now < due:
            wake.wait(min(due - now, IDLE_POLL))
            continue
        slider.value = (int(slider.value) + 1) % len(scene.frames)
        period = 1.0 / (scene.fps * speed.value)
        due = due + period if due + period > now else now + period  # a late frame is not caught up
