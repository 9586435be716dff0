"""Run by the Python that has `bpy` (Blender as a module), not by pytest: opens .glb, .fbx and
.blend files and BVH files the way docs/using-exports.md says, one after another in one
Blender process (each in a fresh scene: Blender's start-up is most of a probe's time), and
writes what Blender evaluates, in glTF's y-up frame, to an .npz.

    python blender_probe.py REQUEST.json OUT.npz

REQUEST: {"sources": [{"key": str, "glb" | "fbx" | "blend" | "empty": path, "fps": float,
                       "meshes": {name: [time, ...]}, "camera_times": [time, ...],
                       "bvh": [{"file": path, "frame_start": int, "frames": [bvh frame, ...]}]}]}
A .glb or .fbx is imported into an empty scene set to `fps`; a .blend is opened as saved;
"empty": an empty scene (for BVH files alone). The BVH files of a source are imported after
its meshes were measured.
OUT, per source KEY: KEY_<name>_vertices (T, V, 3), KEY_<name>_joints (T, 24, 3),
     KEY_camera_rotation (T, 3, 3) and KEY_camera_position (T, 3) of the scene camera (its
     world rotation turned y up: a glTF camera's axes, looking down -z), KEY_camera_name,
     KEY_bvh_<i>_joints (T, 24, 3), KEY_bvh_<i>_name, KEY_scene_fps, KEY_scene (fps,
     frame_start, frame_end, resolution x, y, has camera, background images), KEY_objects
     (the names of the scene's objects); joint_names.
"""

import json
import sys

import bpy
import numpy as np

JOINTS = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
          "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
          "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hand", "right_hand")
# Blender's z-up world -> glTF's y-up: (x, y, z) -> (x, z, -y)
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def to_yup(points):
    """Blender's z-up world -> glTF's y-up: (x, y, z) -> (x, z, -y)."""
    return np.asarray(points, np.float64) @ Z_UP_TO_Y_UP.T


def goto(scene, frame):
    whole = int(np.floor(frame))
    scene.frame_set(whole, subframe=float(frame - whole))


def heads(armature):
    world = armature.matrix_world
    return [list(world @ armature.pose.bones[name].head) for name in JOINTS]


def measure(source, out):
    key = source["key"]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    fps = source["fps"]
    if source.get("blend"):
        bpy.ops.wm.open_mainfile(filepath=source["blend"])
        scene = bpy.context.scene
    elif source.get("fbx") or source.get("glb"):
        scene.render.fps, scene.render.fps_base = round(fps), 1.0
        if source.get("fbx"):
            bpy.ops.import_scene.fbx(filepath=source["fbx"], anim_offset=0.0)  # time 0 on frame 0, as the .glb
        else:
            bpy.ops.import_scene.gltf(filepath=source["glb"])
    for name, times in source.get("meshes", {}).items():
        mesh = bpy.data.objects[name]
        armature = mesh.find_armature()
        vertices, joints = [], []
        for t in times:
            goto(scene, t * fps)
            evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
            data = evaluated.to_mesh()
            co = np.empty(len(data.vertices) * 3)
            data.vertices.foreach_get("co", co)
            matrix = np.array(evaluated.matrix_world)
            co = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
            evaluated.to_mesh_clear()
            vertices.append(to_yup(co))
            joints.append(to_yup(heads(armature)))
        out[f"{key}_{name}_vertices"] = np.stack(vertices)
        out[f"{key}_{name}_joints"] = np.stack(joints)
    camera = scene.camera or next((o for o in scene.objects if o.type == "CAMERA"), None)
    if source.get("camera_times") and camera is not None:
        rotations, positions = [], []
        for t in source["camera_times"]:
            goto(scene, t * fps)
            matrix = np.array(camera.matrix_world)
            rotation = matrix[:3, :3] / np.linalg.norm(matrix[:3, :3], axis=0)  # without the object's scale
            rotations.append(Z_UP_TO_Y_UP @ rotation)
            positions.append(to_yup(matrix[:3, 3]))
        out[f"{key}_camera_rotation"] = np.stack(rotations)
        out[f"{key}_camera_position"] = np.stack(positions)
        out[f"{key}_camera_name"] = np.array(camera.name)
    out[f"{key}_objects"] = np.array(sorted(o.name for o in scene.objects))
    out[f"{key}_backgrounds"] = np.array([b.image.filepath for b in scene.camera.data.background_images
                                          if b.image is not None] if scene.camera is not None else [], dtype=str)
    out[f"{key}_scene"] = np.array([scene.render.fps / scene.render.fps_base, scene.frame_start, scene.frame_end,
                                    scene.render.resolution_x, scene.render.resolution_y, scene.camera is not None,
                                    len(scene.camera.data.background_images) if scene.camera is not None else 0],
                                   float)
    for index, item in enumerate(source.get("bvh", [])):
        before = set(bpy.data.objects)
        bpy.ops.import_anim.bvh(filepath=item["file"], global_scale=1.0, frame_start=item["frame_start"],
                                update_scene_fps=True, update_scene_duration=True, axis_forward="-Z", axis_up="Y",
                                rotate_mode="NATIVE")
        (armature,) = set(bpy.data.objects) - before
        joints = []
        for frame in item["frames"]:
            goto(scene, item["frame_start"] + frame)
            joints.append(to_yup(heads(armature)))
        out[f"{key}_bvh_{index}_joints"] = np.stack(joints)
        out[f"{key}_bvh_{index}_name"] = np.array(armature.name)
    out[f"{key}_scene_fps"] = np.array(scene.render.fps / scene.render.fps_base)


def main():
    with open(sys.argv[1]) as file:
        request = json.load(file)
    out = {"joint_names": np.array(JOINTS)}
    for source in request["sources"]:
        measure(source, out)
    np.savez(sys.argv[2], **out)


main()
