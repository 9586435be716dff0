"""Start-up of the commands that need no network against `python -c "import torch"`, in one run.

    python benchmarks/startup.py [--repeats 5] [--video V --detections D]

Makes a short reconstruction once (12 frames of the shared running.mp4 with its detection
file, untrained networks, the generated test body), then times, each --repeats times, in
fresh processes:

- `python -c "import torch"` (the floor every command that touches a tensor pays),
- `strcli --version`,
- `strcli render OUT --frames 0 --no-video` (one PNG: start-up plus one frame drawn),
- `strcli export OUT` (glTF + BVH of the 12 frames),
- `strcli view OUT --port 0` until it prints its URL.

Prints the median wall time of each and its ratio to `import torch`; the house issue asks
render, export and view to stay within 1.5 times. Numbers go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO.parent / "shared" / "assets"


def wall(command: list[str], env: dict[str, str], until: str | None = None, timeout: float = 300) -> float:
    """Seconds from spawning `command` to its exit, or to the first output line holding `until`."""
    start = time.perf_counter()
    if until is None:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return time.perf_counter() - start
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if until in line:
                return time.perf_counter() - start
        raise SystemExit(f"{' '.join(command)} ended without printing {until!r}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--video", type=Path, default=ASSETS / "videos" / "running.mp4")
    parser.add_argument("--detections", type=Path, default=ASSETS / "detections" / "running.det.txt")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = dict(os.environ, STRCLI_WEIGHTS_DIR=str(root / "weights"), PYTHONPATH=str(REPO))
        strcli = [sys.executable, "-m", "strcli"]
        smpl = root / "smpl"
        subprocess.run([*strcli, "weights", "make-test-smpl", str(smpl)], env=env, check=True, capture_output=True)
        print("making a 12-frame reconstruction (not timed)...", file=sys.stderr)
        subprocess.run([*strcli, "reconstruct", str(args.video), "--detections", str(args.detections), "--untrained",
                        "--offline", "--end", "12", "--smpl-dir", str(smpl), "-o", str(root / "out"), "-q"],
                       env=env, check=True, capture_output=True)
        folder = root / "out" / args.video.stem
        cases = {
            "python -c 'import torch'": ([sys.executable, "-c", "import torch"], None),
            "strcli --version": ([*strcli, "--version"], None),
            "strcli render --frames 0 --no-video": ([*strcli, "render", str(folder), "--frames", "0", "--no-video",
                                                     "--smpl-dir", str(smpl)], None),
            "strcli export (12 frames)": ([*strcli, "export", str(folder), "--smpl-dir", str(smpl)], None),
            "strcli view, up to its URL": ([*strcli, "view", str(folder), "--port", "0", "--smpl-dir", str(smpl)],
                                           "http://"),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):  # interleaved, so a busy moment hits every case alike
            for name, (command, until) in cases.items():
                times[name].append(wall(command, env, until))
    floor = statistics.median(times["python -c 'import torch'"])
    print(f"| command | median s ({args.repeats} runs) | / import torch |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {median / floor:.2f} |")


if __name__ == "__main__":
    main()
