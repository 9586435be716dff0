"""How `strcli render --side-view` frames a reconstructed video: the bodies whole in the side
panel and their median height, with the bulk framing (`strcli.render.overlay.bulk_bodies`)
and with every body framed (the framing before it).

    python benchmarks/side_view.py OUT/<stem> SMPL_FILE

OUT/<stem> is one video's `strcli reconstruct` folder; SMPL_FILE the body to pose (e.g. the
generated test body of `strcli weights make-test-smpl`). The bodies are those the side view
frames: up to 32 evenly spread frames of every track; with a world (camera.npz) `render` frames
their shadows on the floor too, which the third line measures. docs/render.md quotes its numbers for
pedestrians.avi reconstructed with `--stride 5` by the mean-predicting STR of
tests/test_reconstruct.py (`mean_checkpoint`), whose depths follow the people's boxes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from strcli.body.smpl import Body
from strcli.render import overlay
from strcli.render.rasterize import project_vertices


def sampled_bodies(folder: Path, body: Body, samples: int = 32) -> torch.Tensor:
    """(S, P, 3): the bodies `frame_side_view` frames (every 7th vertex), camera frame."""
    manifest = json.loads((folder / "manifest.json").read_text())
    bodies = []
    for entry in manifest["tracks"]:
        track = overlay.TrackMotion.load(folder / entry["npz"])
        rows = np.unique(np.linspace(0, len(track.frames) - 1, min(samples, len(track.frames))).astype(int))

        def stack(name: str, t: overlay.TrackMotion = track, r: np.ndarray = rows) -> torch.Tensor:
            return torch.from_numpy(np.asarray(getattr(t, name)[r])).float()

        out = body.axis_angle(stack("global_orient"), stack("body_pose"), stack("betas"), stack("transl"))
        bodies.append(out.vertices[:, ::7])
    return torch.cat(bodies)


def describe(bodies: torch.Tensor, framing: overlay.SideFraming, width: int, height: int) -> str:
    xy, _ = project_vertices(framing.apply(bodies.reshape(-1, 3)), framing.intrinsics)
    xy = xy.reshape(len(bodies), -1, 2)
    inside = ((xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)).all(1)
    tall = (xy[..., 1].max(1).values - xy[..., 1].min(1).values).median()
    return (f"{int(inside.sum())} of {len(bodies)} ({float(inside.float().mean()):.0%}) whole in the "
            f"{width}x{height} panel, median height {float(tall):.0f} px ({float(tall) / height:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("smpl", type=Path)
    args = parser.parse_args()
    manifest = json.loads((args.folder / "manifest.json").read_text())
    width, height = manifest["video"]["width"], manifest["video"]["height"]
    bodies = sampled_bodies(args.folder, Body.from_file(args.smpl))
    depth = bodies.mean(dim=1)[:, 2].numpy()
    print(f"body depths (m): min {depth.min():.1f}, median {np.median(depth):.1f}, "
          f"90th percentile {np.percentile(depth, 90):.1f}, max {depth.max():.1f}")
    print(f"bulk framing: {describe(bodies, overlay.side_framing(bodies, width, height), width, height)} "
          f"(the bulk: {int(overlay.bulk_bodies(bodies).sum())} bodies)")
    floors = overlay.FloorPath.load(args.folder)
    if floors is not None:  # what `render` frames: the bodies and their shadows on the world's floor
        tracks = [overlay.TrackMotion.load(args.folder / t["npz"]) for t in manifest["tracks"]]
        framing = overlay.frame_side_view(tracks, Body.from_file(args.smpl), torch.device("cpu"), width, height,
                                          floors=floors)
        print(f"bulk framing with the floor under the bodies (render's): {describe(bodies, framing, width, height)}")
    every = overlay.bulk_bodies
    overlay.bulk_bodies = lambda b: torch.ones(len(b), dtype=torch.bool)  # the framing before: every body
    try:
        print(f"every body framed: {describe(bodies, overlay.side_framing(bodies, width, height), width, height)}")
    finally:
        overlay.bulk_bodies = every


if __name__ == "__main__":
    main()
