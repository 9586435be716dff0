"""How the viewer's first view (`strcli.view.framing.frame_people`) frames one world-frame
output, for several kept shares, with and without every track's median: the share of every root (every track, every frame) in
view, and the median over tracks of a body's height in pixels at its median position, on
a canvas of viser's 3D view beside its sidebar in a 1000 x 700 window (676 x 700 pixels,
measured on headless chromium's screenshot). The numbers docs/view.md quotes:

    PYTHONPATH=. python benchmarks/view_framing.py OUT/pedestrians
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from strcli.view.framing import BODY_HEIGHT, frame_people, project

CANVAS = (676, 700)


def main(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    with np.load(folder / "camera.npz") as camera:
        first = camera["rotation"][0]
    tracks = []
    for track in manifest["tracks"]:
        with np.load(folder / track["npz"]) as data:
            tracks.append(data["world_joints3d"][:, 0])
    roots = np.concatenate(tracks)
    print(f"{folder}: {len(tracks)} tracks, {len(roots)} roots")
    half = np.array([0.0, BODY_HEIGHT / 2, 0.0])
    middles = np.stack([np.median(track, axis=0) for track in tracks])
    for keep, framed in [(k, None) for k in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)] + [(0.7, middles), (0.5, middles)]:
        view = frame_people(roots, first, keep=keep, middles=framed)
        pixels, depth = project(roots, view, CANVAS)
        inside = (depth > 0) & (pixels >= 0).all(1) & (pixels[:, 0] <= CANVAS[0]) & (pixels[:, 1] <= CANVAS[1])
        heights = []
        for track in tracks:
            middle = np.median(track, axis=0)
            (bottom, top), _ = project(np.stack((middle - half, middle + half)), view, CANVAS)
            heights.append(bottom[1] - top[1])
        people = "" if framed is None else " and every track's median"
        print(f"keep {keep:.1f}{people}: {100 * inside.mean():5.1f}% of the roots in view, bodies "
              f"{np.median(heights):4.0f} px tall (median over tracks), view {np.linalg.norm(view.position - view.look_at):5.1f} m "
              "from the people's middle")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
