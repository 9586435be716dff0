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
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's model folder (DIR/smpl/SMPL_NEUTRAL.pkl) or the file.")] = None,
    video_file: Annotated[Path | None, typer.Option("--video-file", help="The source video, if it moved "
                          "since reconstruct.")] = None,
) -> None:
    """Look at the bodies in 3D in the browser (viser): play/pause, frame slider, camera, tracks."""
    from strcli.road.options import check_serve_address

    check_serve_address(host, port)  # before torch and the body load: a bad port is refused at once
    from strcli.body.smpl import Body, find_smpl_file
    from strcli.view.viewer import serve

    body = Body.from_file(find_smpl_file("neutral", smpl_dir))
    serve(folder, body, host=host, port=port, source=video_file,
          announce=lambda url: print(f"strcli view: open {url} (Ctrl-C to stop)", flush=True))
