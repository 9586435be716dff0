"""Run by a Python that has `bpy` (Blender as a module, from PyPI), never imported by strcli:
turns the .glb strcli wrote into an FBX and/or a .blend with the scene set up, through
Blender's own importer and exporters. `strcli.export.blender` runs it as a subprocess, so
strcli's environment needs no bpy.

    python blender_scene.py REQUEST.json

REQUEST (written by `strcli.export.blender.blender_request`): glb, fps, fps_base, frame_end,
width, height, video (path or null), video_frames, fbx (output path or null), blend (output
path or null). The outputs are written to exactly these paths (the caller's temporary names).

The scene: Blender's glTF importer places the key at time t on frame t x (fps x fps_base)
(Blender 5.0, io_scene_gltf2 animation_node.py), so the rate is set for the import to the
video's exact rate and afterwards to Blender's usual way of writing it (fps / fps_base);
frames 0 .. frame_end (frame 0 = the video's first frame, as the glTF importer puts it);
render resolution = the video's; the glTF camera is the scene camera, with the video as
its background (the movie's frame 1 on scene frame 0), by its absolute path (Blender would
save it relative to the .blend, which breaks when the .blend moves). In the world frame that camera moves
along the video camera's path (the .glb's keys). The FBX keeps every baked key
(`bake_anim_simplify_factor=0`): the exporter's default, 1.0, drops keys it finds
redundant, and the bodies then missed strcli's by up to 2.6 mm between kept keys (measured
on the pedestrians test clip); with every key, 0.04 mm.
"""

import json
import sys


def main() -> None:
    import bpy

    with open(sys.argv[1], encoding="utf-8") as file:
        request = json.load(file)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = request["fps"], 1.0 / request["fps_base"]  # fps x fps_base = rate
    bpy.ops.import_scene.gltf(filepath=request["glb"])
    scene.render.fps_base = request["fps_base"]  # fps / fps_base = rate, as Blender shows it
    scene.frame_start, scene.frame_end = 0, int(request["frame_end"])
    scene.frame_set(0)
    scene.render.resolution_x, scene.render.resolution_y = request["width"], request["height"]
    scene.render.resolution_percentage = 100
    cameras = [o for o in scene.objects if o.type == "CAMERA"]
    if cameras:
        scene.camera = cameras[0]
        if request.get("video"):
            movie = bpy.data.images.load(request["video"], check_existing=True)
            movie.source = "MOVIE"
            camera = cameras[0].data
            camera.show_background_images = True
            background = camera.background_images.new()
            background.image = movie
            background.image_user.frame_start = 0
            background.image_user.frame_duration = int(request["video_frames"])
            background.alpha = 1.0
    if request.get("fbx"):
        # Only the scene's own objects: the glTF importer adds a bone display shape (a 2 m
        # icosphere) in its hidden `glTF_not_exported` collection, which the FBX exporter would
        # otherwise write as a visible mesh at the origin, one per armature.
        internal = bpy.data.collections.get("glTF_not_exported")
        helpers = set(internal.all_objects) if internal is not None else set()
        for item in scene.objects:
            item.select_set(item not in helpers)
        bpy.ops.export_scene.fbx(filepath=request["fbx"], object_types={"ARMATURE", "MESH", "CAMERA"},
                                 use_selection=True,
                                 bake_anim=True, bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False,
                                 bake_anim_simplify_factor=0.0, add_leaf_bones=False, axis_forward="-Z", axis_up="Y",
                                 global_scale=1.0, apply_unit_scale=True, path_mode="AUTO")
    if request.get("blend"):
        bpy.ops.wm.save_as_mainfile(filepath=request["blend"], check_existing=False, compress=True, relative_remap=False)


if __name__ == "__main__":
    main()
