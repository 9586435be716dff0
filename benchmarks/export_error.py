"""What `strcli export` approximates, in millimetres per vertex, for your SMPL file and tracks.

    python benchmarks/export_error.py OUT/<stem> [--smpl-dir DIR]

Poses every track of the folder with strcli's SMPL posing and with what <stem>.glb
holds (no pose correctives, 4 largest weights, mean betas), cause by cause
(`strcli.export.accuracy`), and prints a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from strcli.body.smpl import find_smpl_file, load_smpl_arrays
from strcli.export.accuracy import approximation_error
from strcli.export.motion import TrackMotion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--smpl-dir", type=Path)
    args = parser.parse_args()
    arrays = load_smpl_arrays(find_smpl_file("neutral", args.smpl_dir))
    manifest = json.loads((args.folder / "manifest.json").read_text())
    print("track  cause                      mean mm   p99 mm   max mm")
    for entry in manifest["tracks"]:
        result = approximation_error(arrays, TrackMotion.load(args.folder / entry["npz"]))
        for cause in ("correctives", "four_weights", "mean_shape", "total"):
            e = getattr(result, cause)
            print(f"{entry['track_id']:5d}  {cause:24s} {e.mean:9.3f} {e.p99:8.3f} {e.max:8.3f}")
    print(f"vertices with more than 4 non-zero weights: {result.vertices_over_four}")


if __name__ == "__main__":
    main()
