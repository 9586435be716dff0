"""Run by the Python that has `bpy` (Blender as a module), not by pytest: imports a .glb and
BVH files the way docs/using-exports.md says and writes what Blender evaluates, in glTF's
y-up frame, to an .npz.

    python blender_probe.py REQUEST.json OUT.npz

REQUEST: {"glb" | "fbx" | "blend": path, "fps": float, "meshes": {name: [time, ...]},
          "bvh": [{"file": path, "frame_start": int, "frames": [bvh frame, ...]}]}
A .glb or .fbx is imported into an empty scene set to `fps`; a .blend is opened as saved.
OUT: glb_<name>_vertices (T, V, 3), glb_<name>_joints (T, 24, 3) (whichever of the three
     was asked for), bvh_<i>_joints (T, 24, 3), bvh_<i>_name, joint_names, scene_fps,
     scene (fps, frame_start, frame_end, resolution x, y, has camera, background images).
"""

import json
import sys

import bpy
import numpy as np

JOINTS = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
          "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
          "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hand", "right_hand")


def to_yup(points):
    """Blender's z-up world -> glTF's y-up: (x, y, z) -> (x, z, -y)."""
    points = np.asarray(points, np.float64)
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)


def goto(scene, frame):
    whole = int(np.floor(frame))
    scene.frame_set(whole, subframe=float(frame - whole))


def heads(armature):
    world = armature.matrix_world
    return [list(world @ armature.pose.bones[name].head) for name in JOINTS]


def main():
    with open(sys.argv[1]) as file:
        request = json.load(file)
    out = {}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    source = request.get("glb") or request.get("fbx") or request.get("blend")
    if source:
        if request.get("blend"):
            bpy.ops.wm.open_mainfile(filepath=source)
            scene = bpy.context.scene
        else:
            scene.render.fps, scene.render.fps_base = round(request["fps"]), 1.0
            if request.get("fbx"):
                bpy.ops.import_scene.fbx(filepath=source, anim_offset=0.0)  # time 0 on frame 0, as the .glb
            else:
                bpy.ops.import_scene.gltf(filepath=source)
        for name, times in request["meshes"].items():
            mesh = bpy.data.objects[name]
            armature = mesh.find_armature()
            vertices, joints = [], []
            for t in times:
                goto(scene, t * request["fps"])
                evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
                data = evaluated.to_mesh()
                co = np.empty(len(data.vertices) * 3)
                data.vertices.foreach_get("co", co)
                matrix = np.array(evaluated.matrix_world)
                co = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
                evaluated.to_mesh_clear()
                vertices.append(to_yup(co))
                joints.append(to_yup(heads(armature)))
            out[f"glb_{name}_vertices"] = np.stack(vertices)
            out[f"glb_{name}_joints"] = np.stack(joints)
    for index, item in enumerate(request.get("bvh", [])):
        before = set(bpy.data.objects)
        bpy.ops.import_anim.bvh(filepath=item["file"], global_scale=1.0, frame_start=item["frame_start"],
                                update_scene_fps=True, update_scene_duration=True, axis_forward="-Z", axis_up="Y",
                                rotate_mode="NATIVE")
        (armature,) = set(bpy.data.objects) - before
        joints = []
        for frame in item["frames"]:
            goto(scene, item["frame_start"] + frame)
            joints.append(to_yup(heads(armature)))
        out[f"bvh_{index}_joints"] = np.stack(joints)
        out[f"bvh_{index}_name"] = np.array(armature.name)
    out["scene_fps"] = np.array(scene.render.fps / scene.render.fps_base)
    camera = scene.camera
    out["scene"] = np.array([scene.render.fps / scene.render.fps_base, scene.frame_start, scene.frame_end,
                             scene.render.resolution_x, scene.render.resolution_y, camera is not None,
                             len(camera.data.background_images) if camera is not None else 0], float)
    out["joint_names"] = np.array(JOINTS)
    np.savez(sys.argv[2], **out)


main()
