"""FBX and .blend through Blender's own exporters: `bpy` (Blender 5 as a Python module from
PyPI, Python 3.11 only) runs in a Python of its own, found by `bpy_python`, on the script
`strcli/export/blender_scene.py`; strcli's environment never imports bpy.

FBX is what animators ask for over BVH; no well-kept library writes it without Autodesk's
licensed SDK except Blender's exporter. The FBX and the .blend hold what the .glb holds
(Blender imports it first), with the scene set up: the video's rate, frame range and
resolution, the camera, and in the .blend the video as the camera's background.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from strcli.utils.errors import MissingAssetError, OutputError

BPY_ENV = "STRCLI_BPY_PYTHON"  # the Python that can `import bpy`
BLENDER_FORMATS = ("fbx", "blend")
SCRIPT = Path(__file__).with_name("blender_scene.py")
TIMEOUT_S = 600


def bpy_python(formats: tuple[str, ...] = BLENDER_FORMATS) -> Path:
    """The Python executable named by $STRCLI_BPY_PYTHON. MissingAssetError (exit 3) when the
    variable is unset or names no file; whether it can import bpy shows when it runs."""
    wanted = ",".join(f for f in formats if f in BLENDER_FORMATS) or "fbx"
    how = ("Install Blender's Python module in a venv of its own (python3.11 -m venv ~/.venv-bpy && "
           f"~/.venv-bpy/bin/pip install bpy) and set {BPY_ENV}=~/.venv-bpy/bin/python")
    value = os.environ.get(BPY_ENV)
    if not value:
        raise MissingAssetError(f"{wanted} export needs Blender's Python module (bpy) and {BPY_ENV} is not set.",
                                f"{how}.")
    path = Path(value).expanduser()
    if not path.is_file():
        raise MissingAssetError(f"{wanted} export: {BPY_ENV}={value} is not a file.", f"{how}.")
    return path


@dataclass(frozen=True)
class BlenderRequest:
    """What `blender_scene.py` reads (its docstring)."""

    glb: str
    fps: int  # Blender's integer rate: the video's rate is fps / fps_base
    fps_base: float
    frame_end: int
    width: int
    height: int
    video: str | None
    video_frames: int
    fbx: str | None
    blend: str | None


def scene_rate(rate: float) -> tuple[int, float]:
    """A frame rate as Blender writes it: (integer fps, fps_base) with fps / fps_base = rate
    (29.97... -> (30, 1.001))."""
    fps = max(1, round(rate))
    return fps, float(Fraction(fps) / Fraction(rate).limit_denominator(1_000_000))


def run_blender(python: Path, request: BlenderRequest, folder: Path) -> None:
    """Run `blender_scene.py` with `request` (written into `folder` under a hidden name);
    OutputError (exit 6) with Blender's last message when it fails."""
    path = folder / f".blender-request.partial-{os.getpid()}.json"
    path.write_text(json.dumps(asdict(request)))
    try:
        done = subprocess.run([str(python), str(SCRIPT), str(path)], capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise OutputError(f"Blender ({python}) could not run: {err}.",
                          f"Check that {BPY_ENV} names a Python that can import bpy.") from err
    finally:
        path.unlink(missing_ok=True)
    if done.returncode != 0:
        said = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        last = said[-1].strip() if said else f"exit status {done.returncode}"
        if "No module named 'bpy'" in last:
            raise MissingAssetError(f"{BPY_ENV}={python} cannot import bpy.",
                                    f"Install it there: {python} -m pip install bpy (Python 3.11).")
        raise OutputError(f"Blender could not write the scene: {last.rstrip('.')}.",
                          "Check the disk and the output folder, then export again.")
