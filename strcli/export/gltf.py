"""Tracks -> one glTF 2.0 binary (`animation.glb`) with a skinned SMPL body per track.

Layout of the file (pygltflib writes it; the arrays are packed here):
- scene nodes: `camera` (the video's camera at the origin, looking down -z, y up: the
  camera frame turned by `CAMERA_TO_YUP`), then per track a root node `track_<id>` holding
  SMPL's 24-joint skeleton (nodes named as SMPL's joints, translations = the track's bone
  offsets from its mean-betas rest joints) and a skinned mesh node `track_<id>_body`
  (mesh and skin of that track; at the scene root as the spec asks of skinned meshes).
- one skin per track: the 24 joints, inverse bind matrices = the inverse of each joint's
  rest transform (a translation by minus its rest position).
- one mesh per track: the rest shape of the track's mean betas, normals, JOINTS_0 and
  WEIGHTS_0 (the 4 largest SMPL skinning weights of each vertex, renormalised: glTF's one
  set of four influences that every importer reads), one material of the track's colour.
- one animation `motion`: per track, the pelvis translation and every joint's rotation
  (unit quaternions, LINEAR) at the track's frame presentation times (variable frame rate
  kept: the key times are the video's own), and the track root's scale (STEP): 1 while
  the track has frames, 0 before, after and in gaps longer than --max-gap, so a person
  is hidden when the video does not show them.
What glTF cannot carry (SMPL's pose correctives, more than 4 weights) is measured by
`strcli.export.accuracy`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pygltflib as gl

from strcli import __version__
from strcli.body.camera import Intrinsics
from strcli.export.motion import SMPL_JOINT_NAMES, RestBody, TrackMotion, frame_runs
from strcli.road.outputs import output_error

from strcli.config import GLB_NAME  # noqa: E402, F401 (re-exported)
MAX_INFLUENCES = 4  # glTF's JOINTS_0/WEIGHTS_0: what three.js, Unity, Unreal and Blender all read
ZNEAR, ZFAR = 0.01, 1000.0  # metres, the camera's clipping planes
_ALIGN = 4


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
    """Key times (K,) and scales (K,) for the track root (STEP): 1 from the first frame of each
    run of consecutive frames, 0 one frame time after its last frame, and 0 from `start` (the
    animation's first time) when the track begins later."""
    frame_time = frame_step / track.fps
    times, scales = [], []
    if track.times[0] > start:
        times.append(start)
        scales.append(0.0)
    for first, last in frame_runs(track.frames, frame_step):
        times += [track.times[first], track.times[last] + frame_time]
        scales += [1.0, 0.0]
    return np.asarray(times, np.float64), np.asarray(scales, np.float64)


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


def build_gltf(tracks: list[tuple[TrackMotion, RestBody]], frame_step: int, colours: np.ndarray,
               video_name: str, camera: Intrinsics) -> gl.GLTF2:
    """The glTF document (module docstring) of a video's tracks; `frame_step` = reconstruct's
    --stride (frames between a track's consecutive frames); colours (K, 3) RGB 0-1 per track;
    `camera` the full-image camera of the reconstruction."""
    gltf = gl.GLTF2(asset=gl.Asset(version="2.0", generator=f"strcli {__version__}"),
                    scene=0, scenes=[gl.Scene(name=video_name, nodes=[])],
                    extras={"strcli": {"video": video_name, "tracks": [t.track_id for t, _ in tracks],
                                       "frame_step": frame_step, "units": "metres",
                                       "up": "+y (camera frame turned 180 degrees about x)"}})
    packer = _Packer(gltf)
    scene = gltf.scenes[0].nodes
    gltf.cameras.append(gl.Camera(name="video", type=gl.PERSPECTIVE, perspective=gl.Perspective(
        yfov=camera_yfov(camera.focal, camera.height), aspectRatio=camera.width / camera.height,
        znear=ZNEAR, zfar=ZFAR)))
    gltf.nodes.append(gl.Node(name="camera", camera=0))
    scene.append(0)
    start = min((float(t.times[0]) for t, _ in tracks), default=0.0)
    animation = gl.Animation(name="motion", samplers=[], channels=[])
    shared: dict[str, int] = {}
    for k, (track, rest) in enumerate(tracks):
        if "indices" not in shared:
            joints, weights = top_weights(rest.weights)
            shared["indices"] = packer.add(rest.faces.astype(np.uint16 if rest.vertices.shape[0] < 65535
                                                             else np.uint32).reshape(-1),
                                           gl.SCALAR, gl.ELEMENT_ARRAY_BUFFER, bounds=False)
            shared["joints"] = packer.add(joints, gl.VEC4, gl.ARRAY_BUFFER, bounds=False)
            shared["weights"] = packer.add(weights, gl.VEC4, gl.ARRAY_BUFFER, bounds=False)
        normals = vertex_normals(rest.vertices, rest.faces)
        position = packer.add(rest.vertices.astype(np.float32), gl.VEC3, gl.ARRAY_BUFFER)
        normal = packer.add(normals.astype(np.float32), gl.VEC3, gl.ARRAY_BUFFER, bounds=False)
        gltf.materials.append(gl.Material(name=f"track_{track.track_id}", doubleSided=False,
                                          pbrMetallicRoughness=gl.PbrMetallicRoughness(
                                              baseColorFactor=[*map(float, colours[k]), 1.0],
                                              metallicFactor=0.0, roughnessFactor=0.8)))
        gltf.meshes.append(gl.Mesh(name=f"track_{track.track_id}", primitives=[gl.Primitive(
            attributes=gl.Attributes(POSITION=position, NORMAL=normal, JOINTS_0=shared["joints"],
                                     WEIGHTS_0=shared["weights"]),
            indices=shared["indices"], material=len(gltf.materials) - 1, mode=gl.TRIANGLES)]))
        # Nodes: the track root, then its 24 joints in SMPL's order.
        root_node = len(gltf.nodes)
        joint_nodes = [root_node + 1 + j for j in range(len(rest.parents))]
        rotations = track.local_rotations().as_quat().reshape(len(track), -1, 4)  # (N, 24, 4) xyzw
        positions = track.root_positions(rest)  # (N, 3)
        gltf.nodes.append(gl.Node(name=f"track_{track.track_id}", children=[joint_nodes[0]]))
        offsets = rest.offsets
        for j, name in enumerate(SMPL_JOINT_NAMES):
            children = [joint_nodes[c] for c in np.flatnonzero(rest.parents == j)]
            translation = positions[0] if j == 0 else offsets[j]
            gltf.nodes.append(gl.Node(name=name, children=children or None,
                                      translation=[float(v) for v in translation],
                                      rotation=[float(v) for v in rotations[0, j]]))
        ibm = np.tile(np.eye(4), (len(rest.parents), 1, 1))
        ibm[:, :3, 3] = -rest.joints
        gltf.skins.append(gl.Skin(name=f"track_{track.track_id}", skeleton=joint_nodes[0], joints=joint_nodes,
                                  inverseBindMatrices=packer.add(
                                      ibm.transpose(0, 2, 1).astype(np.float32).reshape(-1, 16), gl.MAT4,
                                      bounds=False)))
        gltf.nodes.append(gl.Node(name=f"track_{track.track_id}_body", mesh=len(gltf.meshes) - 1,
                                  skin=len(gltf.skins) - 1))
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
        for j in range(len(rest.parents)):
            channel(joint_nodes[j], "rotation", _continuous(rotations[:, j]), gl.VEC4)
        key_times, scales = visibility_keys(track, frame_step, start)
        channel(root_node, "scale", np.repeat(scales[:, None], 3, axis=1), gl.VEC3,
                input_=packer.add(key_times.astype(np.float32), gl.SCALAR), interpolation=gl.ANIM_STEP)
    if animation.channels:
        gltf.animations.append(animation)
    gltf.buffers.append(gl.Buffer(byteLength=len(packer.blob)))
    gltf.set_binary_blob(bytes(packer.blob))
    return gltf


def write_glb(gltf: gl.GLTF2, path: Path) -> Path:
    """Write `gltf` as a .glb: to a hidden temporary name, renamed when complete."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"".join(gltf.save_to_bytes()))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise output_error(err, path) from err
    return path

