"""`strcli export`: glTF and BVH files of the reconstructed motion."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from strcli.cli.common import app, error_text, reports_errors, usable_outputs
from strcli.utils.errors import StrcliError


@app.command("export")
@reports_errors
def export_motion(
    outputs: Annotated[list[Path], typer.Argument(metavar="OUTPUT", help="reconstruct output folders: OUT (every video "
                                                       "in it) or OUT/<video-stem>.")],
    formats: Annotated[str, typer.Option("--format", help="glb (glTF 2.0 binary: skinned SMPL bodies, one "
                       "animation, the camera), bvh (one file per track), fbx, blend (through Blender: "
                       "$STRCLI_BPY_PYTHON, a Python with bpy), or several: glb,bvh.")] = "glb,bvh",
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's model folder "
                        "(DIR/smpl/SMPL_NEUTRAL.pkl) or the file. Default: the file the manifest records.")] = None,
    frame: Annotated[str, typer.Option("--frame", help="world (y up, bodies on the floor y = 0, the video's camera "
                     "moving along its path; a folder without a world falls back to camera with a warning) or "
                     "camera (the camera at the origin, the camera frame turned 180 degrees about x).")] = "world",
    floor: Annotated[bool, typer.Option("--floor", help="Add a grey floor quad at y = 0 under the people and the "
                     "camera path to the .glb (and FBX, .blend); world frame only.")] = False,
) -> None:
    """Write OUT/<stem>/<stem>.glb, OUT/<stem>/bvh/<stem>_<id>.bvh (and <stem>.fbx, <stem>.blend) for Blender,
    three.js, game engines (docs/using-exports.md)."""
    from strcli.road.inputs import export_targets, output_folders
    from strcli.road.options import parse_export_formats, parse_export_frame
    from strcli.body.files import TEST_BODY_NOTE, is_test_body, smpl_file_for_outputs

    # The flags, the folders and the SMPL file first, without torch: a bad value is refused at once.
    # The SMPL file is the one the manifest records (the bodies were made with it), as `render` takes it.
    wanted = parse_export_formats(formats)
    frame = parse_export_frame(frame, floor)
    if {"fbx", "blend"} & set(wanted):
        from strcli.export.blender import bpy_python

        bpy_python(wanted)
    folders, failed = usable_outputs(output_folders(outputs), smpl_dir)
    for folder in folders:  # a folder of the user's as <stem>.glb, a file as bvh/: refused before any work
        export_targets(folder, wanted)
    smpl_file, smpl_note = smpl_file_for_outputs(folders, smpl_dir)
    if smpl_note:
        print(f"warning: {smpl_note}", file=sys.stderr)
    body_note = TEST_BODY_NOTE if is_test_body(smpl_file) else ""
    if body_note:
        print(f"warning: the body model {smpl_file} is {body_note}: for testing the pipeline only.",
              file=sys.stderr)

    from strcli.body.smpl import Body
    from strcli.export.writer import export_video

    body = Body.from_file(smpl_file)
    for folder in folders:
        try:
            result = export_video(folder, body, wanted, body_note, frame, floor)
        except StrcliError as err:
            print(f"error: {folder.name}: {error_text(err)}", file=sys.stderr)
            failed = failed or err.exit_code
            continue
        if result.warning:
            print(f"warning: {result.warning}", file=sys.stderr)
        if result.removed_note:
            print(f"{folder.name}: {result.removed_note}", file=sys.stderr)
        if result.unknown_warning:
            print(f"warning: {folder.name}: {result.unknown_warning}", file=sys.stderr)
        if result.caveat:  # where the files say so, and where they cannot
            said = [where for where, written in (("the .glb's extras.strcli.caveat", result.glb),
                                                 ("bvh/info.json", result.bvh)) if written]
            unsaid = [p.suffix for p in (result.fbx, result.blend) if p]
            print(f"warning: {folder.name}: {result.caveat}"
                  + (f"; said in {' and '.join(said)}" if said else "")
                  + (f"; the {' and '.join(unsaid)} cannot say it" if unsaid else "") + ".", file=sys.stderr)
        files = ([str(result.glb)] if result.glb else []) + ([f"{len(result.bvh)} BVH in {folder / 'bvh'}"]
                                                              if "bvh" in wanted else [])
        files += [str(p) for p in (result.fbx, result.blend) if p]
        print(f"{folder.name}: {result.tracks} track(s), {result.frame} frame: {', '.join(files)} "
              f"in {result.seconds:.1f} s")
    if failed:
        raise typer.Exit(failed)
