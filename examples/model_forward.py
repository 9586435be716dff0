"""Run a randomly initialised STR on random features and pose SMPL with the result.

    python examples/model_forward.py [--smpl-dir DIR]

The network is untrained (no STR weights exist), so the bodies are meaningless; this shows
the shapes and the API. Needs the SMPL model (see the README) for the second half.
"""

from __future__ import annotations

import argparse

import torch

from strcli.body.smpl import Body, find_smpl_file
from strcli.utils.errors import StrcliError
from strcli.model import STR, STRConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smpl-dir", help="folder with SMPL_NEUTRAL.pkl")
    args = parser.parse_args()
    model = STR(STRConfig()).eval()
    with torch.no_grad():
        smpl = model(torch.randn(1, 16, 2048))
    print("rotmat", tuple(smpl.rotmat.shape), "betas", tuple(smpl.betas.shape), "cam", tuple(smpl.cam.shape))
    try:
        body = Body.from_file(find_smpl_file(smpl_dir=args.smpl_dir))
    except StrcliError as err:
        raise SystemExit(f"error: {err}") from None
    with torch.no_grad():
        out = body.axis_angle(smpl.global_orient[0], smpl.body_pose[0], smpl.betas[0])
    print("vertices", tuple(out.vertices.shape), "joints", tuple(out.joints.shape))


if __name__ == "__main__":
    main()
