"""`strcli view`: the bodies in 3D in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strcli.cli.common import app, reports_errors


@app.command()
@reports_errors
def view(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="One reconstruct output folder, OUT/<video-stem>.")],
    host: Annotated[str, typer.Option(help="Address to serve on; 127.0.0.1 keeps it to this machine "
                    "(0.0.0.0 to reach it from others).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on (1-65535; 0: any free port). One in use is "
                                           "refused (exit 2).")] = 8080,
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's model folder "
                        "(DIR/smpl/SMPL_NEUTRAL.pkl) or the file. Default: the file the manifest records.")] = None,
    video_file: Annotated[Path | None, typer.Option("--video-file", help="The source video, if it moved "
                          "since reconstruct.")] = None,
    frame: Annotated[str, typer.Option(help="world: y up, the floor at y = 0, the camera's path (docs/world.md); "
                     "camera: the video camera's frame, the camera at the origin. A folder of an older strcli "
                     "without a world is shown in the camera frame, with a warning.")] = "world",
    paused: Annotated[bool, typer.Option("--paused", help="Open paused on the first frame (the Playing box "
                      "plays it).")] = False,
) -> None:
    """Look at the bodies in 3D in the browser (viser): in the world (the floor, the camera's path) or the
    camera frame; play/pause, frame slider, camera, tracks.

    Prints what it loads, then the URL. Ctrl-C or SIGTERM is how a server ends: one line
    (`strcli view: stopped (SIGTERM).`) and exit 0."""
    import sys

    from strcli.body.files import TEST_BODY_NOTE, is_test_body, smpl_file_for_outputs
    from strcli.road.options import check_serve_address
    from strcli.cli.common import usable_outputs
    from strcli.utils.errors import Interrupted, UsageError

    check_serve_address(host, port)  # before torch and the body load: a bad port is refused at once
    if frame not in ("world", "camera"):
        raise UsageError(f"--frame {frame}: choose world or camera.")
    usable_outputs([folder], smpl_dir)  # a named SMPL place, then the manifest (exit 2): before the SMPL file is found through it
    # The SMPL file the bodies were made with (the manifest's), as `render` and `export` take it.
    smpl_file, smpl_note = smpl_file_for_outputs([folder], smpl_dir)
    if smpl_note:
        print(f"warning: {smpl_note}", file=sys.stderr)
    if is_test_body(smpl_file):
        print(f"warning: the body model {smpl_file} is {TEST_BODY_NOTE}: for testing the pipeline only.",
              file=sys.stderr)
    print(f"strcli view: loading torch, viser and the body model {smpl_file}...", file=sys.stderr, flush=True)
    try:
        from strcli.body.smpl import Body
        from strcli.view.viewer import serve

        body = Body.from_file(smpl_file)
        serve(folder, body, host=host, port=port, source=video_file,
              announce=lambda url: print(f"strcli view: open {url} (Ctrl-C to stop)", flush=True),
              loading=lambda line: print(f"strcli view: {line}", file=sys.stderr, flush=True),
              frame=frame, warn=lambda line: print(f"warning: {line}", file=sys.stderr, flush=True),
              paused=paused, body_note=TEST_BODY_NOTE if is_test_body(smpl_file) else "")
    except (KeyboardInterrupt, Interrupted) as err:  # a server's normal end: one line, no error
        print(f"strcli view: stopped ({err.signal_name if isinstance(err, Interrupted) else 'Ctrl-C'}).",
              file=sys.stderr, flush=True)
