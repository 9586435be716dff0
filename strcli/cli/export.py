"""`strcli export`: glTF and BVH files of the reconstructed motion."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from strcli.cli.common import app, reports_errors
from strcli.utils.errors import StrcliError


@app.command("export")
@reports_errors
def export_motion(
    outputs: Annotated[list[Path], typer.Argument(metavar="OUTPUT", help="reconstruct output folders: OUT (every video "
                                                       "in it) or OUT/<video-stem>.")],
    formats: Annotated[str, typer.Option("--format", help="glb (glTF 2.0 binary: skinned SMPL bodies, one "
                       "animation, the camera), bvh (one file per track), or glb,bvh.")] = "glb,bvh",
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's model folder (DIR/smpl/SMPL_NEUTRAL.pkl) or the file.")] = None,
) -> None:
    """Write OUT/<stem>/animation.glb and OUT/<stem>/bvh/<id>.bvh for Blender, three.js, game engines."""
    from strcli.road.inputs import export_targets, output_folders
    from strcli.road.options import parse_export_formats
    from strcli.body.files import find_smpl_file

    # The flags, the folders and the SMPL file first, without torch: a bad value is refused at once.
    wanted = parse_export_formats(formats)
    folders = output_folders(outputs)
    for folder in folders:  # a folder of the user's as animation.glb, a file as bvh/: refused before any work
        export_targets(folder, wanted)
    smpl_file = find_smpl_file("neutral", smpl_dir)

    from strcli.body.smpl import Body
    from strcli.export.writer import export_video

    body = Body.from_file(smpl_file)
    failed = 0
    for folder in folders:
        try:
            result = export_video(folder, body, wanted)
        except StrcliError as err:
            print(f"error: {folder.name}: {err}", file=sys.stderr)
            failed = failed or err.exit_code
            continue
        files = ([str(result.glb)] if result.glb else []) + ([f"{len(result.bvh)} BVH in {folder / 'bvh'}"]
                                                              if "bvh" in wanted else [])
        print(f"{folder.name}: {result.tracks} track(s): {', '.join(files)} in {result.seconds:.1f} s")
    if failed:
        raise typer.Exit(failed)
