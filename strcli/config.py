"""Fixed facts and defaults shared by every stage: one source of truth for each constant.

SMPL sizes are facts of the body model. The pipeline numbers (crop size, box scale, focal
length, window length) follow the TCMR/VIBE/SPIN conventions in
`docs/model.md`; each stage imports them from here instead of repeating them.
"""

from __future__ import annotations

# SMPL body model.
SMPL_JOINTS = 24  # global orientation + 23 body joints
SMPL_BODY_JOINTS = SMPL_JOINTS - 1
SMPL_BETAS = 10
SMPL_VERTICES = 6890
SMPL_POSE_6D = SMPL_JOINTS * 6  # 144: the regressor's pose representation
CAMERA_PARAMS = 3  # weak-perspective [s, tx, ty]

# Human3.6M joint regressor (17 joints) -> the 14 LSP-order evaluation joints.
H36M_TO_J17 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10, 0, 7, 9)
H36M_TO_J14 = H36M_TO_J17[:14]
J14_PELVIS = (2, 3)  # left and right hip in the 14-joint order; their mean is the pelvis

# Image side of the network.
CROP_SIZE = 224
BBOX_SCALE = 1.2  # TCMR's box enlargement (VIBE uses 1.1)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_FOCAL = 5000.0  # focal length (px) of the 224 px crop camera

# Temporal side.
WINDOW = 16  # frames per STR window (the paper's T)
FEATURE_DIM = 2048  # ResNet-50 pooled feature

# Output folders.
MANIFEST = "manifest.json"  # written last into OUT/<stem>/: a folder holding it is complete
OVERLAY = "overlay.mp4"  # `strcli render`'s video in OUT/<stem>/
# `--model`: the networks strcli runs on a track's features: the temporal models, and SPIN
# (per frame, no temporal module; Table 1's per-frame baseline).
TEMPORAL_MODELS = ("str", "tcmr", "vibe", "spin")
CAMERA_MODELS = ("auto", "static", "rotating", "moving")  # `reconstruct --camera` (docs/world.md)
CAMERA_FILE = "camera.npz"  # the camera of every processed frame, in the world, in OUT/<stem>/
COMPARE = "compare.mp4"  # `strcli render --compare`: the models of `reconstruct --model str,tcmr` side by side
FRAMES_DIR = "frames"  # `strcli render --frames`: the PNGs
BVH_DIR = "bvh"  # `strcli export`: bvh/<stem>_<track id>.bvh
EXPORT_RECORD = "export.json"  # `strcli export`: the frame of <stem>.fbx and <stem>.blend (strcli.export.existing)

# `strcli render --preset`: x264's speed presets, fastest first.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow")

# Light, desaturated colours (RGB 0-1) in the spirit of the paper's figures; track k gets
# TRACK_COLOURS[k % len(TRACK_COLOURS)] in every render, export and view, so a person keeps
# their colour everywhere.
TRACK_COLOURS = ((0.65, 0.74, 0.86), (0.93, 0.71, 0.55), (0.62, 0.84, 0.64), (0.89, 0.64, 0.72),
                 (0.79, 0.72, 0.90), (0.93, 0.86, 0.55), (0.58, 0.83, 0.83), (0.85, 0.78, 0.68))
# Their names, as the viewer's track list says them (its checkboxes carry no colour).
TRACK_COLOUR_NAMES = ("blue", "orange", "green", "pink", "lilac", "yellow", "teal", "tan")
