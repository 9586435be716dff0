"""`strcli view`: the reconstructed bodies in 3D, in the browser, with viser.

viser serves a web page (its prebuilt client, no network needed) and keeps the scene in
sync over a websocket. Two frames (`--frame`):

- `world` (the default; docs/world.md): y up, the floor y = 0, metres. Every track's SMPL
  body posed with its world keys (`world_global_orient`, `world_transl`, and
  `world_body_pose` where a track file has it); the floor grid at y = 0 under the people;
  the video camera's path (camera.npz's positions) as a line and its frustum moving along
  it, posed by camera.npz's rotation of the frame on screen; optional markers, small dots on
  the floor under the feet touching it (`foot_contacts`); a first view that frames the people
  (`strcli.view.framing`). A folder of an older strcli (no camera.npz or no world keys)
  is shown in the camera frame, with one warning.
- `camera`: the camera frame of the reconstruction (x right, y down, z forward) shown with
  -y as up; the frustum at the origin; a ground grid under the lowest foot.

Bodies are posed by strcli's own body model (per-frame betas and pose correctives, as
`strcli render` draws them) only for the frame on screen; the frustum's image is the current
frame, downscaled (decoded on demand: `FrameSource` keeps one decoder and seeks only when
the slider jumps). GUI: play/pause, a frame slider, and one checkbox per track. Memory
does not grow with the video's length: the track files (a few hundred bytes a frame) are
the only per-frame data held. Bodies that are not real results (untrained networks, the
generated test body) say so at the top of the sidebar, as `strcli render`'s caption does.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from strcli.body.camera import Intrinsics
from strcli.body.smpl import Body
from strcli.config import CAMERA_FILE, TRACK_COLOUR_NAMES
from strcli.export.gltf import camera_yfov
from strcli.render.caption import overlay_caveats
from strcli.render.overlay import PALETTE, TrackMotion
from strcli.road.grounding import FOOT_JOINTS
from strcli.road.inputs import check_same_video, source_file, source_video
from strcli.road.options import check_serve_address
from strcli.road.output_check import check_output
from strcli.road.outputs import reading_output
from strcli.road.video import probe, upright_rotation
from strcli.utils.errors import UsageError
from strcli.view.frames import FrameSource
from strcli.view.framing import ASPECT, ViewPose, frame_people
from strcli.road.world import CameraPath
from strcli.view.world import WorldMotion

IDLE_POLL = 0.25  # seconds: how often an idle viewer looks whether it is to stop
Frame = Literal["world", "camera"]
GRID_MARGIN = 3.0  # metres of floor grid beyond the people and the camera's path
PATH_COLOUR = (40, 40, 40)  # the camera's path: dark grey, as viser's frustum
CONTACT_COLOUR = (20, 20, 20)  # the foot contact markers
# metres: each foot contact marker's width, a dot on the floor under the touching joint. 12 cm
# balls at the joints hid the feet (a new user's trial, frame 53 of running.mp4); a dot at
# the joint itself would lie inside the foot (4-5 cm inside the surface of the test body's, HUMAN_RADII).
CONTACT_SIZE = 0.04
# viser's points face the camera and are drawn twice their `point_size` wide: its shader sets
# gl_PointSize = point_size * H / (z * tan(fov / 2)), where a width w spans w * H / (2 z tan(fov / 2))
# pixels (viser/client/src/ThreeAssets.tsx); a new user's trial measured the 4 cm dots at about 10 cm.
VISER_POINT_WIDTH = 2.0


class Scene:
    """What the viewer shows of one output folder, frame by frame, in `frame` ("world" or
    "camera"). `frame` is "camera" when "world" was asked of a folder without a world, and
    `warning` then says why in one line (else None). `caveat`: what `strcli render` burns
    into its frames when the bodies are not real results (`overlay_caveats`: untrained
    networks or the generated test body, from the manifest, or `body_note`, the body drawn
    now), else ""."""

    def __init__(self, folder: Path, body: Body, source: Path | None = None, frame: Frame = "world",
                 body_note: str = "") -> None:
        with reading_output(folder):  # a damaged folder: UsageError (exit 2)
            self._read(folder, body, source, frame, body_note)

    def _read(self, folder: Path, body: Body, source: Path | None, frame: Frame, body_note: str) -> None:
        manifest = check_output(folder).manifest  # shapes, finite values, focal, frame counts: DamagedOutput (exit 2)
        self.body = body
        # the track files shown are the first model's, as a plain `render` draws them
        self.caveat = overlay_caveats(manifest, body_note, (manifest.get("models") or [{}])[0].get("name"))
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
        self.fps = float(manifest["video"]["fps"] or 25.0) / int(manifest["options"]["stride"])
        self.frame: Frame = frame
        self.warning: str | None = None
        self.world: list[WorldMotion] = []
        self.camera_path: CameraPath | None = None
        if frame == "world":
            self._read_world(folder, manifest)
        self.floor = self._floor(folder, manifest)
        self.depth = self._depth(folder, manifest)
        if source is not None:  # --video-file: the video it was made from, as `render` checks it (exit 7)
            video = source_file(manifest, source, folder.name)
            check_same_video(manifest, probe(video), folder.name)
        else:
            video = source_video(manifest["input"], source)  # none found: the camera shows no frames
        # The rule of `probe` again: a manifest of an older strcli may record any angle.
        rotation = upright_rotation(float(manifest["video"]["rotation"] or 0))[0]
        mirrored = manifest["video"]["mirrored"]
        seekable = not manifest["counts"]["timestamps_mended"]
        self.video = FrameSource(video, rotation, mirrored=mirrored, seekable=seekable) if video.is_file() else None

    def _read_world(self, folder: Path, manifest: dict) -> None:
        """The world keys of every track and camera.npz; without them (an older strcli), the
        camera frame and `warning`."""
        camera = CameraPath.load(folder / CAMERA_FILE)
        world = [WorldMotion.load(folder / t["npz"]) for t in manifest["tracks"]]
        lacking = [str(t.track_id) for t, w in zip(self.tracks, world) if w is None]
        if camera is None or lacking:
            what = f"no {CAMERA_FILE}" if camera is None else f"no world keys in track{'s' if len(lacking) > 1 else ''} " \
                + ", ".join(lacking)
            self.frame = "camera"
            self.warning = (f"{folder} has no world ({what}: made by an older strcli?): shown in the camera "
                            "frame; reconstruct it again for the world.")
            return
        self.world = [w for w in world if w is not None]
        self.camera_path = camera
        # Each track's pelvis in the rest pose of its mean shape: what `world_transl` is added to.
        with torch.inference_mode():
            self.rest_pelvis = [self.body.axis_angle(torch.zeros(1, 3), torch.zeros(1, 69), torch.from_numpy(
                t.betas.mean(0, keepdims=True)).float()).joints[0, 0].numpy() for t in self.tracks]

    @property
    def roots(self) -> np.ndarray:
        """(K, 3) every track's root (pelvis) in the world over the video, metres."""
        return np.concatenate([w.joints[:, 0] for w in self.world]) if self.world else np.zeros((0, 3))

    @property
    def middles(self) -> np.ndarray:
        """(P, 3) each track's median root in the world, metres: where the person typically is."""
        return np.stack([np.median(w.joints[:, 0], axis=0) for w in self.world]) if self.world else np.zeros((0, 3))

    def first_view(self, aspect: float) -> ViewPose:
        """The world view that frames the people (`strcli.view.framing`) from beside the
        first frame's camera; canvas width / height `aspect`."""
        assert self.camera_path is not None
        return frame_people(self.roots, self.camera_path.rotations[0], middles=self.middles, aspect=aspect)

    def contacts(self, frame: int, shown: set[int]) -> np.ndarray:
        """(K, 3) world positions, metres, on the floor (y = 0) under the foot joints touching
        it in `frame`, of the tracks in `shown`: where the contact markers go."""
        points = [w.joints[r][list(FOOT_JOINTS)][w.contacts[r]] for t, w in zip(self.tracks, self.world)
                  if t.track_id in shown and (r := t.row(frame)) is not None]
        if not points:
            return np.zeros((0, 3))
        return np.concatenate(points) * np.array([1.0, 0.0, 1.0])

    @staticmethod
    def _floor(folder: Path, manifest: dict) -> float:
        """The ground's height (camera y, down positive): the lowest ankle seen, plus a few cm (a
        track file without `joints3d`, which the output check allows: its pelvis's, plus 0.9 m)."""
        lowest = []
        for t in manifest["tracks"]:
            with np.load(folder / t["npz"], allow_pickle=False) as data:
                lowest.append(float(data["joints3d"][:, [7, 8, 10, 11], 1].max()) if "joints3d" in data
                              else float(data["transl"][:, 1].max()) + 0.9)
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
    def pose(self, frame: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Track id -> (vertices (V, 3), joints (24, 3)) of the people in `frame`, metres, in
        the scene's frame. In the world: posed with the world keys, moved by `world_transl`
        plus the offset of the frame's own shape's pelvis from the mean shape's (per-frame
        betas: the pelvis lands where `world_joints3d` has it)."""
        rows = [(k, t, r) for k, t in enumerate(self.tracks) if (r := t.row(frame)) is not None]
        if not rows:
            return {}

        def stack(arrays: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(arrays)).float()

        betas = stack([t.betas[r] for _, t, r in rows])
        if self.frame == "camera":
            out = self.body.axis_angle(stack([t.global_orient[r] for _, t, r in rows]),
                                       stack([t.body_pose[r] for _, t, r in rows]), betas,
                                       stack([t.transl[r] for _, t, r in rows]))
            return {t.track_id: (out.vertices[i].numpy(), out.joints[i, :24].numpy()) for i, (_, t, _) in enumerate(rows)}
        out = self.body.axis_angle(stack([self.world[k].global_orient[r] for k, _, r in rows]),
                                   stack([self.world[k].body_pose[r] for k, _, r in rows]), betas)
        offset = (stack([self.world[k].transl[r] + self.rest_pelvis[k] for k, _, r in rows])
                  - out.joints[:, 0])[:, None]  # (B, 1, 3)
        return {t.track_id: ((out.vertices[i] + offset[i]).numpy(), (out.joints[i, :24] + offset[i]).numpy())
                for i, (_, t, _) in enumerate(rows)}

    def bodies(self, frame: int) -> dict[int, np.ndarray]:
        """Track id -> (V, 3) vertices of the people in `frame`, in the scene's frame."""
        return {tid: vertices for tid, (vertices, _) in self.pose(frame).items()}


def serve(folder: Path, body: Body, host: str = "127.0.0.1", port: int = 8080, source: Path | None = None,
          announce: Callable[[str], None] = print, stop: threading.Event | None = None,
          loading: Callable[[str], None] = lambda line: None, frame: Frame = "world",
          warn: Callable[[str], None] = lambda line: None, paused: bool = False, body_note: str = "") -> None:
    """Serve the viewer of `folder` until `stop` is set (KeyboardInterrupt and SIGTERM's
    `Interrupted` pass through, after the server is stopped). `port` 0 takes any free port;
    a port out of range or in use is a UsageError (exit 2), before anything loads.
    `loading(line)` hears what is being read (the tracks, every one listed, and the video)
    before `announce(url)`. `frame`: "world" or "camera" (module docstring); `warn(line)`
    hears why a folder without a world is shown in the camera frame. `paused`: open on the
    first frame, not playing. `body_note`: a caveat about `body` (`TEST_BODY_NOTE` for the
    generated test body); with the manifest's untrained networks it is said at the top of the
    page's sidebar (`Scene.caveat`)."""
    import viser

    check_serve_address(host, port)
    loading(f"reading {folder}...")
    scene = Scene(folder, body, source, frame, body_note)
    if len(scene.frames) == 0:
        raise UsageError(f"{folder.name} has no tracks to show.")
    if scene.warning:
        warn(scene.warning)
    loading(track_list(scene.tracks))
    loading(f"video frames from {scene.video.path}" if scene.video is not None
            else "no source video found (--video-file FILE shows its frames): the camera shows none")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # viser's address box: `announce` says it in one line
            server = viser.ViserServer(host=host, port=port, verbose=False)
    except OSError as err:
        raise UsageError(f"cannot serve on {host}:{port} ({err.strerror or err}).",
                         "Choose another --port.") from err
    stop = stop or threading.Event()
    try:
        if port and server.get_port() != port:  # taken since the check: viser moved on to another
            raise UsageError(f"port {port} on {host} is in use by another program.",
                             "Choose another --port (--port 0: any free one).")
        with _signals_stop(stop) as caught:
            _build(server, scene, stop, announce, host, server.get_port(), paused)
    finally:
        # viser prints "(viser) Server stopped" from its server thread, which `stop` joins: the
        # command's own one line says it (strcli.cli.view).
        with contextlib.redirect_stdout(io.StringIO()):
            server.stop()
        if scene.video is not None:
            scene.video.close()
    if caught.signum is not None:  # now that the server is down: what the signal would have done
        caught.raise_as_before()


class _Caught:
    """The first SIGINT or SIGTERM that came while serving, and the handlers before."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, object] = {}

    def raise_as_before(self) -> None:
        """Do what the handler before would have done: KeyboardInterrupt (Python's SIGINT
        handler), the command's `Interrupted` (strcli.cli.common's SIGTERM handler), or the
        signal's default action."""
        assert self.signum is not None
        handler = self.previous.get(self.signum, signal.SIG_DFL)
        if callable(handler):
            handler(self.signum, None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(self.signum)


@contextlib.contextmanager
def _signals_stop(stop: threading.Event):
    """While serving, SIGINT and SIGTERM set `stop` instead of raising where the main
    thread happens to be: an exception raised inside viser's or torch's calls (a frame being
    sent) once left the command hung instead of stopped. `serve` raises as before once the
    server is down. Outside the main thread (no signal handlers there) nothing changes."""
    caught = _Caught()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def defer(signum: int, _frame: object) -> None:
        if caught.signum is None:
            caught.signum = signum
        stop.set()

    caught.previous = {s: signal.signal(s, defer) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in caught.previous.items():
            signal.signal(s, handler)


def caveat_markdown(caveat: str) -> str:
    """`Scene.caveat` ("TEST ONLY, NOT REAL BODIES: untrained ...") as the sidebar's markdown:
    its first part bold, the networks and body it names after it."""
    head, _, rest = caveat.partition(": ")
    return f"**{head}**: {rest}" if rest else f"**{caveat}**"


def colour_name(track_id: int) -> str:
    """The name of a track's colour (TRACK_COLOURS, as render and export draw it too)."""
    return TRACK_COLOUR_NAMES[track_id % len(TRACK_COLOUR_NAMES)]


def track_list(tracks: list[TrackMotion]) -> str:
    """Every track of a scene in one line: "3 tracks: 1 (frames 0-79), 2 (...), ..."."""
    listed = ", ".join(f"{t.track_id} (frames {int(t.frames[0])}-{int(t.frames[-1])})" if len(t.frames)
                       else f"{t.track_id}" for t in tracks)
    return f"{len(tracks)} track{'s' if len(tracks) != 1 else ''}: {listed}"


def _stage_camera_frame(server, scene: Scene) -> float:
    """The camera frame's up, first view and grid; returns the frustum's scale (metres)."""
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
    return 0.2 * depth


def _stage_world(server, scene: Scene) -> float:
    """The world's up (+y), first view (`Scene.first_view`), the floor grid at y = 0 under the
    people and the camera, and the camera's path; returns the frustum's scale (metres)."""
    assert scene.camera_path is not None
    path = scene.camera_path.positions
    server.scene.set_up_direction("+y")
    view = scene.first_view(ASPECT)
    server.initial_camera.position = tuple(view.position)
    server.initial_camera.look_at = tuple(view.look_at)
    server.initial_camera.up = tuple(view.up)
    server.initial_camera.fov = view.fov
    ground = np.concatenate((scene.roots[:, [0, 2]], path[:, [0, 2]]))
    low, high = ground.min(0) - GRID_MARGIN, ground.max(0) + GRID_MARGIN
    size = high - low
    server.scene.add_grid("/ground", width=float(size[0]), height=float(size[1]), plane="xz",
                          cell_size=0.5 if size.max() < 20 else 1.0, section_size=1.0 if size.max() < 20 else 5.0,
                          position=(float(low[0] + high[0]) / 2, 0.0, float(low[1] + high[1]) / 2))
    if len(path) > 1 and np.linalg.norm(np.diff(path, axis=0), axis=1).sum() > 0.01:  # a still camera has no path
        segments = np.stack((path[:-1], path[1:]), axis=1).astype(np.float32)  # (P - 1, 2, 3)
        server.scene.add_line_segments("/camera_path", segments, PATH_COLOUR, thickness=2.0, thickness_units="screen")
    distance = float(np.median(np.linalg.norm(scene.roots - path[0], axis=1)))
    return float(np.clip(0.08 * distance, 0.3, 2.0))


def _build(server, scene: Scene, stop: threading.Event, announce: Callable[[str], None], host: str,
           port: int, paused: bool = False) -> None:
    from viser import transforms

    faces = scene.body.faces
    intr = scene.intrinsics
    world = scene.frame == "world"
    scale = _stage_world(server, scene) if world else _stage_camera_frame(server, scene)
    first = scene.video.at(float(scene.times[0])) if scene.video is not None else None
    frustum = server.scene.add_camera_frustum("/camera", fov=camera_yfov(intr.focal, intr.height),
                                              aspect=intr.width / intr.height, scale=scale,
                                              image=first, format="jpeg", jpeg_quality=80)
    meshes: dict[int, object] = {}
    colours = {t.track_id: tuple(int(255 * c) for c in PALETTE[t.track_id % len(PALETTE)]) for t in scene.tracks}
    if scene.caveat:  # first in the sidebar, above the controls: the page says what `render`'s frames say
        server.gui.add_markdown(caveat_markdown(scene.caveat))
    with server.gui.add_folder("Playback"):
        playing = server.gui.add_checkbox("Playing", not paused)
        slider = server.gui.add_slider("Frame", 0, len(scene.frames) - 1, 1, 0)
        speed = server.gui.add_slider("Speed", 0.25, 2.0, 0.25, 1.0)
    # A sidebar docked to the right edge, as tall as the window, which scrolls: the 3D canvas is
    # beside it, not under it (a floating panel hid the bodies on the right of the first view,
    # and capped its height, hiding the tracks past the tenth or so). viser 1.1 docks on request
    # (`main_panel.dock_right`; its older `control_layout="fixed"` is deprecated).
    server.gui.configure_theme(control_width="medium", show_share_button=False)
    server.gui.main_panel.dock_right()
    with server.gui.add_folder("Tracks"):
        server.gui.add_markdown(f"{len(scene.tracks)} track{'s' if len(scene.tracks) != 1 else ''}: "
                                + ", ".join(str(t.track_id) for t in scene.tracks))
        show_all, hide_all = server.gui.add_button("Show all"), server.gui.add_button("Hide all")
        feet = server.gui.add_checkbox("Foot contacts", True, hint="Markers on the feet touching the floor "
                                       "(the track files' foot_contacts)") if world else None
        toggles = {t.track_id: server.gui.add_checkbox(f"track {t.track_id} ({colour_name(t.track_id)})", True)
                   for t in scene.tracks}
    markers: dict[str, object] = {}  # "/contacts": the foot contact markers, once added

    def set_all(value: bool) -> None:
        for toggle in toggles.values():
            toggle.value = value

    show_all.on_click(lambda _: set_all(True))
    hide_all.on_click(lambda _: set_all(False))
    shown: dict[str, object] = {"state": None}

    def state() -> tuple:
        return int(slider.value), tuple(t.value for t in toggles.values()), feet.value if feet is not None else None

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
        if world:
            assert scene.camera_path is not None
            row = scene.camera_path.row(frame)
            frustum.position = scene.camera_path.positions[row]
            frustum.wxyz = transforms.SO3.from_matrix(scene.camera_path.rotations[row]).wxyz
            touching = scene.contacts(frame, {tid for tid, t in toggles.items() if t.value}) if feet.value else None
            if touching is not None and len(touching):
                markers["/contacts"] = server.scene.add_point_cloud(
                    "/contacts", touching.astype(np.float32), CONTACT_COLOUR, point_size=CONTACT_SIZE / VISER_POINT_WIDTH,
                    point_shape="circle", point_shading="flat")
            elif "/contacts" in markers:
                markers["/contacts"].visible = False
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
    for control in (playing, slider, speed, *toggles.values(), *([feet] if feet is not None else [])):
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
