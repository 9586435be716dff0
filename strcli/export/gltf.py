"""Tracks -> one glTF 2.0 binary (`<stem>.glb`) with a skinned SMPL body per track.

Layout of the file (pygltflib writes it; the arrays are packed here):
- the frame (`strcli.export.motion`, `--frame`): the video's world (y up, floor y = 0) or
  the camera frame turned by `CAMERA_TO_YUP`; `extras.strcli` says which (`frame`, `up`,
  `floor`, `camera_model`).
- scene nodes: `camera` (the video's camera, looking down -z, y up: in the world frame it
  moves along camera.npz's path, a translation and rotation key per processed frame, its
  rotation camera.npz's times `CAMERA_TO_YUP`; in the camera frame it stays at the origin),
  then, with `--floor` (world frame only), `floor` (a grey quad at y = 0 covering every
  pelvis and the camera path, `FLOOR_MARGIN` beyond them), then per track a root node `<stem>_<id>` (static,
  at the origin; Blender's armature) holding a static joint `<stem>_<id>_reach` and a node
  `<stem>_<id>_shown` (the visibility scale below) that holds SMPL's 24-joint skeleton (nodes named as SMPL's joints, translations = the track's bone
  offsets from its mean-betas rest joints), and a skinned mesh node `<stem>_<id>_body` (mesh
  and skin of that track; at the scene root as the spec asks of skinned meshes). The video's
  stem is in every name so that the scenes of several videos imported into one Blender file
  do not collide.
- one skin per track: the 24 joints and, as the 25th, the `_reach` node; inverse bind
  matrices = the inverse of each joint's rest transform (a translation by minus its rest
  position; identity for `_reach`).
- one mesh per track: the rest shape of the track's mean betas, normals, JOINTS_0 and
  WEIGHTS_0 (the 4 largest SMPL skinning weights of each vertex, renormalised: glTF's one
  set of four influences that every importer reads), one material of the track's colour;
  after SMPL's vertices, two vertices that no face uses (`BOUNDS_VERTICES`), bound to the
  static `_reach` joint at two opposite corners of the box the body can reach over the whole track
  (`reach_box`). They are never drawn; they make a player's bounding volume of the skinned
  mesh cover the track whatever pose it is measured in: three.js measures a skinned mesh's
  bounding sphere once, at its first draw, when a person who enters later is scaled to 0,
  and then frustum-culled that person for ever.
- one animation `motion`: the camera's keys (world frame), and per track, the pelvis translation and every joint's rotation
  (unit quaternions, LINEAR) at the track's frame presentation times (variable frame rate
  kept: the key times are the video's own), and the `_shown` node's scale (STEP): 1 while
  the track has frames, 0 before, after and in gaps longer than --max-gap, so a person is
  hidden when the video does not show them. The show/hide keys lie half a frame time before
  a run's first frame and after its last (`visibility_keys`), never on a frame's time, so a
  player that rounds key times to float32 shows every frame of the run and no other.
What glTF cannot carry (SMPL's pose correctives, more than 4 weights) is measured by
`strcli.export.accuracy`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

from strcli import __version__
from strcli.body.camera import Intrinsics
from strcli.export.motion import (
    CAMERA_TO_YUP,
    SMPL_JOINT_NAMES,
    CameraPath,
    RestBody,
    TrackMotion,
    frame_runs,
)
from strcli.road.outputs import output_error
from strcli.utils.locks import WholeFile, WholeSet

LEGACY_GLB_NAME = "animation.glb"  # what older strcli named every video's scene; `glb_path` still finds it
BOUNDS_VERTICES = 2  # unused vertices after SMPL's: the corners of `reach_box`
MAX_INFLUENCES = 4  # glTF's JOINTS_0/WEIGHTS_0: what three.js, Unity, Unreal and Blender all read
ZNEAR, ZFAR = 0.01, 1000.0  # metres, the camera's clipping planes
FLOOR_MARGIN = 1.0  # metres the floor quad reaches beyond the farthest pelvis or camera position
FLOOR_COLOUR = (0.5, 0.5, 0.5)  # linear RGB: a plain grey that no track colour (config.TRACK_COLOURS) is
_ALIGN = 4


def glb_name(stem: str) -> str:
    """The scene file of the video `stem`: `<stem>.glb`."""
    return f"{stem}.glb"


def glb_path(folder: Path) -> Path | None:
    """The scene file exported into a video's output folder: `<stem>.glb`, else the name older
    strcli wrote (`animation.glb`); None when there is neither."""
    for path in (folder / glb_name(folder.name), folder / LEGACY_GLB_NAME):
        if path.is_file():
            return path
    return None


def top_weights(weights: np.ndarray, count: int = MAX_INFLUENCES) -> tuple[np.ndarray, np.ndarray]:
    """(V, 24) skinning weights -> (V, count) uint8 joint indices and float32 weights: each
    vertex's `count` largest, renormalised to sum to 1; a slot of zero weight has joint 0
    (as the glTF validator asks)."""
    order = np.argsort(-weights, axis=1, kind="stable")[:, :count]
    picked = np.take_along_axis(weights, order, axis=1).astype(np.float64)
    picked = picked / picked.sum(axis=1, keepdims=True)
    picked = picked.astype(np.float32)
    picked[:, 0] += np.float32(1) - picked.sum(axis=1, dtype=np.float32)  # exact sum in float32
    order[picked == 0] = 0
    return order.astype(np.uint8), picked


def truncated_weights(weights: np.ndarray, count: int = MAX_INFLUENCES) -> np.ndarray:
    """(V, 24) -> (V, 24) the weights the file holds (4 largest, renormalised), as a dense matrix."""
    joints, values = top_weights(weights, count)
    dense = np.zeros_like(weights, dtype=np.float64)
    np.add.at(dense, (np.arange(len(dense))[:, None], joints.astype(np.int64)), values.astype(np.float64))
    return dense


def camera_yfov(focal: float, height: int) -> float:
    """Vertical field of view (radians) of a pinhole of `focal` pixels over `height` pixels."""
    return 2.0 * math.atan(height / (2.0 * focal))


class _Packer:
    """Collects arrays into one binary buffer and makes their buffer views and accessors."""

    def __init__(self, gltf: gl.GLTF2) -> None:
        self.gltf, self.blob = gltf, bytearray()

    def add(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = True,
            normalized: bool = False) -> int:
        array = np.ascontiguousarray(array)
        component = {np.dtype(np.float32): gl.FLOAT, np.dtype(np.uint8): gl.UNSIGNED_BYTE,
                     np.dtype(np.uint16): gl.UNSIGNED_SHORT, np.dtype(np.uint32): gl.UNSIGNED_INT}[array.dtype]
        self.blob += b"\0" * (-len(self.blob) % _ALIGN)
        view = gl.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=array.nbytes, target=target)
        self.blob += array.tobytes()
        self.gltf.bufferViews.append(view)
        width = {gl.SCALAR: 1, gl.VEC3: 3, gl.VEC4: 4, gl.MAT4: 16}[kind]
        flat = array.reshape(len(array), width)
        accessor = gl.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component,
                               count=len(array), type=kind, normalized=normalized or None)
        if bounds:
            cast = float if array.dtype == np.float32 else int
            accessor.min = [cast(v) for v in flat.min(axis=0)]
            accessor.max = [cast(v) for v in flat.max(axis=0)]
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1


def _continuous(quats: np.ndarray) -> np.ndarray:
    """(N, 4) quaternions with signs flipped so that neighbours lie in one hemisphere (the
    same rotations, interpolated the short way by every player)."""
    out = quats.copy()
    for k in range(1, len(out)):
        if np.dot(out[k], out[k - 1]) < 0:
            out[k] = -out[k]
    return out


def visibility_keys(track: TrackMotion, frame_step: int, start: float) -> tuple[np.ndarray, np.ndarray]:
    """Key times (K,) seconds and scales (K,) for the track's `_shown` node (STEP): 1 from half
    a frame time before the first frame of each run of consecutive frames, 0 from half a frame
    time after its last frame, and 0 from `start` (the animation's first time) when the track
    begins later. Half a frame away from every frame time: a key on a frame's time, rounded to
    float32 as the file stores it, falls on either side of the frame (three.js hid some
    tracks on their first frame and showed one frozen a frame after its last)."""
    half = 0.5 * frame_step / track.fps
    times, scales = [], []
    if track.times[0] - half > start:
        times.append(start)
        scales.append(0.0)
    for first, last in frame_runs(track.frames, frame_step):
        times += [max(track.times[first] - half, start), track.times[last] + half]
        scales += [1.0, 0.0]
    return np.asarray(times, np.float64), np.asarray(scales, np.float64)


def reach_box(rest: RestBody, pelvis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3,), (3,) metres: the corners of an axis-aligned box holding every vertex of the body
    in any pose with its pelvis at any of `pelvis` (N, 3). Bound: a vertex skinned to joint j
    lies within (length of the bone chain from the pelvis to j) + |vertex - joint j| of the
    pelvis, whatever the rotations (linear blend skinning mixes such points)."""
    chain = np.zeros(len(rest.parents))
    for j in range(1, len(rest.parents)):  # SMPL lists parents before children
        chain[j] = chain[rest.parents[j]] + np.linalg.norm(rest.offsets[j])
    used = rest.weights > 0  # (V, 24)
    reach = chain[None] + np.linalg.norm(rest.vertices[:, None] - rest.joints[None], axis=-1)  # (V, 24)
    radius = float(np.where(used, reach, 0.0).max())
    return pelvis.min(axis=0) - radius, pelvis.max(axis=0) + radius


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals of a mesh's vertices (V, 3) with triangles (F, 3): the sum of the
    normals of the faces around each vertex, weighted by their areas (the cross product's
    length), normalised. A vertex no face uses, or whose faces have no area, gets +y: glTF
    requires every NORMAL to be a unit vector (the Khronos validator fails a file otherwise).

    numpy here rather than trimesh (whose `vertex_normals` weights by angle instead): trimesh's
    import alone costs `strcli export` a fifth of a second of start-up for a dozen lines."""
    triangles = vertices[faces]  # (F, 3, 3)
    face = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])  # (F, 3), length = 2 area
    summed = np.zeros_like(vertices, dtype=np.float64)
    for corner in range(3):
        np.add.at(summed, faces[:, corner], face)
    length = np.linalg.norm(summed, axis=1, keepdims=True)
    unit = np.divide(summed, length, out=np.zeros_like(summed), where=length > 1e-12)
    unit[length[:, 0] <= 1e-12] = (0.0, 1.0, 0.0)
    return unit


def floor_corners(tracks: list[tuple[TrackMotion, RestBody]], path: CameraPath | None,
                  margin: float = FLOOR_MARGIN) -> np.ndarray:
    """(4, 3) the floor quad's corners at y = 0, counter-clockwise seen from above (+y): the
    x-z box of every track's pelvis and every camera position, `margin` metres wider."""
    points = [t.root_positions(rest) for t, rest in tracks] + ([path.positions] if path is not None else [])
    flat = np.concatenate(points)[:, [0, 2]] if points else np.zeros((1, 2))
    (x0, z0), (x1, z1) = flat.min(axis=0) - margin, flat.max(axis=0) + margin
    return np.array([[x0, 0.0, z0], [x0, 0.0, z1], [x1, 0.0, z1], [x1, 0.0, z0]])


def _about(tracks: list[tuple[TrackMotion, RestBody]], frame_step: int, video_name: str, frame: str,
           path: CameraPath | None, floor: bool) -> dict:
    """The file's `extras.strcli`: what it holds and in which frame."""
    about = {"video": video_name, "tracks": [t.track_id for t, _ in tracks], "frame_step": frame_step,
             "units": "metres", "frame": frame}
    if frame == "world":
        model = path.model if path is not None else "static"
        about.update(up="+y", floor="y = 0" + (" (the node 'floor')" if floor else ""),
                     camera=("the node 'camera', keyed at every processed frame from camera.npz (the "
                             f"video camera's estimated {model} motion)" if model != "static" else
                             "the node 'camera', where camera.npz puts the video camera (static: it does not move)"),
                     camera_model=model)
    else:
        about.update(up="+y (camera frame turned 180 degrees about x)", camera="at the origin")
    return about


def build_gltf(tracks: list[tuple[TrackMotion, RestBody]], frame_step: int, colours: np.ndarray,
               video_name: str, camera: Intrinsics, body_note: str = "", path: CameraPath | None = None,
               floor: bool = False, caveat: str = "") -> gl.GLTF2:
    """The glTF document (module docstring) of a video's tracks; `frame_step` = reconstruct's
    --stride (frames between a track's consecutive frames); colours (K, 3) RGB 0-1 per track;
    `camera` the full-image camera of the reconstruction; `body_note` a caveat about the body
    model (the generated test body's), written to `extras.strcli.body_model` and to the
    asset's `extras` so the file never travels without it. The frame is the tracks' own
    (`TrackMotion.frame`, all alike; "camera" without tracks unless `path` is given); `path`:
    the camera's path in the world (animates the camera node; world frame only); `floor`: add
    the floor quad (world frame only; ValueError in the camera frame, whose y = 0 is no floor);
    `caveat`: what says the bodies are not real results (`strcli.road.caveats.overlay_caveats`:
    untrained networks, the test body), written to `extras.strcli.caveat`; "" for real ones."""
    frame = tracks[0][0].frame if tracks else ("world" if path is not None else "camera")
    if any(t.frame != frame for t, _ in tracks) or (frame == "camera" and (path is not None or floor)):
        raise ValueError(f"build_gltf: tracks in several frames, or a camera path or floor in the camera frame "
                         f"({frame})")
    about = _about(tracks, frame_step, video_name, frame, path, floor)
    if body_note:
        about["body_model"] = body_note
    if caveat:
        about["caveat"] = caveat
    gltf = gl.GLTF2(asset=gl.Asset(version="2.0", generator=f"strcli {__version__}",
                                   extras={"body_model": body_note} if body_note else None),
                    scene=0, scenes=[gl.Scene(name=video_name, nodes=[])], extras={"strcli": about})
    packer = _Packer(gltf)
    scene = gltf.scenes[0].nodes
    gltf.cameras.append(gl.Camera(name="video", type=gl.PERSPECTIVE, perspective=gl.Perspective(
        yfov=camera_yfov(camera.focal, camera.height), aspectRatio=camera.width / camera.height,
        znear=ZNEAR, zfar=ZFAR)))
    gltf.nodes.append(gl.Node(name="camera", camera=0))
    scene.append(0)
    start = min([float(t.times[0]) for t, _ in tracks] + ([float(path.times[0])] if path is not None else []),
                default=0.0)
    animation = gl.Animation(name="motion", samplers=[], channels=[])
    if path is not None and len(path):
        _animate_camera(gltf, packer, animation, path)
    if floor:
        _add_floor(gltf, packer, floor_corners(tracks, path))
        scene.append(len(gltf.nodes) - 1)
    shared: dict[str, int] = {}
    for k, (track, rest) in enumerate(tracks):
        name = f"{video_name}_{track.track_id}"
        rotations = track.local_rotations().as_quat().reshape(len(track), -1, 4)  # (N, 24, 4) xyzw
        positions = track.root_positions(rest)  # (N, 3)
        joint_count = len(rest.parents)
        if "indices" not in shared:
            joints, weights = top_weights(rest.weights)
            corner_joints = np.zeros((BOUNDS_VERTICES, MAX_INFLUENCES), np.uint8)
            corner_joints[:, 0] = joint_count  # the `_reach` node, the skin's last joint
            corner_weights = np.zeros((BOUNDS_VERTICES, MAX_INFLUENCES), np.float32)
            corner_weights[:, 0] = 1.0
            shared["indices"] = packer.add(rest.faces.astype(np.uint16 if rest.vertices.shape[0] < 65535
                                                             else np.uint32).reshape(-1),
                                           gl.SCALAR, gl.ELEMENT_ARRAY_BUFFER, bounds=False)
            shared["joints"] = packer.add(np.vstack([joints, corner_joints]), gl.VEC4, gl.ARRAY_BUFFER, bounds=False)
            shared["weights"] = packer.add(np.vstack([weights, corner_weights]), gl.VEC4, gl.ARRAY_BUFFER,
                                           bounds=False)
        corners = np.stack(reach_box(rest, positions))  # (2, 3), y-up world = the static root's frame
        vertices = np.vstack([rest.vertices, corners])
        normals = np.vstack([vertex_normals(rest.vertices, rest.faces), np.tile([0.0, 1.0, 0.0], (BOUNDS_VERTICES, 1))])
        position = packer.add(vertices.astype(np.float32), gl.VEC3, gl.ARRAY_BUFFER)
        normal = packer.add(normals.astype(np.float32), gl.VEC3, gl.ARRAY_BUFFER, bounds=False)
        gltf.materials.append(gl.Material(name=name, doubleSided=False,
                                          pbrMetallicRoughness=gl.PbrMetallicRoughness(
                                              baseColorFactor=[*map(float, colours[k]), 1.0],
                                              metallicFactor=0.0, roughnessFactor=0.8)))
        gltf.meshes.append(gl.Mesh(name=name, primitives=[gl.Primitive(
            attributes=gl.Attributes(POSITION=position, NORMAL=normal, JOINTS_0=shared["joints"],
                                     WEIGHTS_0=shared["weights"]),
            indices=shared["indices"], material=len(gltf.materials) - 1, mode=gl.TRIANGLES)]))
        # Nodes: the track root, its `_shown` and `_reach` nodes, then its 24 joints in SMPL's order.
        # The root is no joint, so that Blender makes it the track's own armature (a joint there
        # put every track's bones into one armature).
        root_node, shown_node, reach_node = len(gltf.nodes), len(gltf.nodes) + 1, len(gltf.nodes) + 2
        joint_nodes = [root_node + 3 + j for j in range(joint_count)]
        gltf.nodes.append(gl.Node(name=name, children=[shown_node, reach_node]))
        gltf.nodes.append(gl.Node(name=f"{name}_shown", children=[joint_nodes[0]]))
        gltf.nodes.append(gl.Node(name=f"{name}_reach"))
        offsets = rest.offsets
        for j, joint_name in enumerate(SMPL_JOINT_NAMES):
            children = [joint_nodes[c] for c in np.flatnonzero(rest.parents == j)]
            translation = positions[0] if j == 0 else offsets[j]
            gltf.nodes.append(gl.Node(name=joint_name, children=children or None,
                                      translation=[float(v) for v in translation],
                                      rotation=[float(v) for v in rotations[0, j]]))
        ibm = np.tile(np.eye(4), (joint_count + 1, 1, 1))
        ibm[:joint_count, :3, 3] = -rest.joints
        gltf.skins.append(gl.Skin(name=name, skeleton=root_node, joints=[*joint_nodes, reach_node],
                                  inverseBindMatrices=packer.add(
                                      ibm.transpose(0, 2, 1).astype(np.float32).reshape(-1, 16), gl.MAT4,
                                      bounds=False)))
        gltf.nodes.append(gl.Node(name=f"{name}_body", mesh=len(gltf.meshes) - 1, skin=len(gltf.skins) - 1))
        scene += [root_node, len(gltf.nodes) - 1]
        # Animation: one time axis per track, its own frames' presentation times.
        times = packer.add(track.times.astype(np.float32), gl.SCALAR)

        def channel(node: int, path: str, values: np.ndarray, kind: str, input_: int = times,
                    interpolation: str = gl.ANIM_LINEAR) -> None:
            animation.samplers.append(gl.AnimationSampler(input=input_, output=packer.add(
                values.astype(np.float32), kind), interpolation=interpolation))
            animation.channels.append(gl.AnimationChannel(sampler=len(animation.samplers) - 1,
                                                          target=gl.AnimationChannelTarget(node=node, path=path)))

        channel(joint_nodes[0], "translation", positions, gl.VEC3)
        for j in range(joint_count):
            channel(joint_nodes[j], "rotation", _continuous(rotations[:, j]), gl.VEC4)
        key_times, scales = visibility_keys(track, frame_step, start)
        channel(shown_node, "scale", np.repeat(scales[:, None], 3, axis=1), gl.VEC3,
                input_=packer.add(key_times.astype(np.float32), gl.SCALAR), interpolation=gl.ANIM_STEP)
    if animation.channels:
        gltf.animations.append(animation)
    gltf.buffers.append(gl.Buffer(byteLength=len(packer.blob)))
    gltf.set_binary_blob(bytes(packer.blob))
    return gltf


def _animate_camera(gltf: gl.GLTF2, packer: _Packer, animation: gl.Animation, path: CameraPath) -> None:
    """The `camera` node (node 0) along `path`: its first pose as the node's own, and a
    translation and a rotation key (LINEAR) at each processed frame's time."""
    # a glTF camera looks down -z with +y up: camera.npz's rotation @ CAMERA_TO_YUP
    quats = _continuous(Rotation.from_matrix(path.rotations @ CAMERA_TO_YUP).as_quat())  # (P, 4) xyzw, glTF's order
    node = gltf.nodes[0]
    node.translation = [float(v) for v in path.positions[0]]
    node.rotation = [float(v) for v in quats[0]]
    times = packer.add(path.times.astype(np.float32), gl.SCALAR)
    for target, values, kind in (("translation", path.positions, gl.VEC3), ("rotation", quats, gl.VEC4)):
        animation.samplers.append(gl.AnimationSampler(input=times, output=packer.add(values.astype(np.float32), kind),
                                                      interpolation=gl.ANIM_LINEAR))
        animation.channels.append(gl.AnimationChannel(sampler=len(animation.samplers) - 1,
                                                      target=gl.AnimationChannelTarget(node=0, path=target)))


def _add_floor(gltf: gl.GLTF2, packer: _Packer, corners: np.ndarray) -> None:
    """The node and mesh `floor`: two triangles over `corners` (4, 3), normals +y, one grey
    material (not metallic, rough)."""
    position = packer.add(corners.astype(np.float32), gl.VEC3, gl.ARRAY_BUFFER)
    normal = packer.add(np.tile(np.float32([0.0, 1.0, 0.0]), (4, 1)), gl.VEC3, gl.ARRAY_BUFFER, bounds=False)
    indices = packer.add(np.array([0, 1, 2, 0, 2, 3], np.uint16), gl.SCALAR, gl.ELEMENT_ARRAY_BUFFER, bounds=False)
    gltf.materials.append(gl.Material(name="floor", doubleSided=True, pbrMetallicRoughness=gl.PbrMetallicRoughness(
        baseColorFactor=[*FLOOR_COLOUR, 1.0], metallicFactor=0.0, roughnessFactor=1.0)))
    gltf.meshes.append(gl.Mesh(name="floor", primitives=[gl.Primitive(
        attributes=gl.Attributes(POSITION=position, NORMAL=normal), indices=indices,
        material=len(gltf.materials) - 1, mode=gl.TRIANGLES)]))
    gltf.nodes.append(gl.Node(name="floor", mesh=len(gltf.meshes) - 1))


def write_glb(gltf: gl.GLTF2, path: Path, files: WholeSet | None = None) -> Path:
    """Write `gltf` as a .glb: to a hidden temporary name, renamed when complete; the scene
    older strcli wrote into the same folder (`animation.glb`) is then removed, so that one
    scene of the video is left. With `files` (a set written all or none, `strcli export`'s),
    the temporary is one of the set's and returned: the set renames it with the others."""
    legacy = path.parent / LEGACY_GLB_NAME
    if files is not None:
        tmp = files.add(path, keep_suffix=True)  # .<stem>.partial-<pid>.glb: Blender reads it by its suffix
        tmp.write_bytes(b"".join(gltf.save_to_bytes()))
        if path.name != LEGACY_GLB_NAME:
            files.replaces(legacy)
        return tmp
    with WholeFile(path) as tmp:
        tmp.write_bytes(b"".join(gltf.save_to_bytes()))
    if path.name != LEGACY_GLB_NAME:
        try:
            legacy.unlink(missing_ok=True)
        except OSError as err:
            raise output_error(err, path) from err
    return path

