"""The road for one video, one module per stage, in the order the data walks it:

`video` (decode, streamed and upright) -> `tracking` (people -> tracks) -> `crops` (boxes ->
224 x 224 crops) -> `features` (ResNet-50) -> `windows` (the temporal model on 16-frame
windows) -> `posing` (SMPL in the full image's camera) -> `outputs` (files, written safely).
`reconstruct` runs the road for one video and `batch` for many; `models` loads the networks the
road needs; `options` and `inputs` check the command line's values and files before anything
heavy is imported.

Importing this package imports nothing heavy: each stage imports its own libraries.
"""

# The registry checks a download it has no checksum for with the loaders' check (registered on import).
from strcli.road import assets as _assets  # noqa: E402, F401
