"""Many videos: find them, split them into shards, run each, never let one stop the rest.

Inputs are files or folders (searched for video files, not recursively, in name order).
`--shard i/n` keeps every n-th video starting at the i-th (0-based), so n processes (a
Slurm array, several machines) share one folder without coordination; each video's
outputs are written under a temporary name and renamed when complete (`strcli.road.outputs`),
so they can share one output folder too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from strcli.utils.errors import StrcliError, UsageError, write_failure
from strcli.road.inputs import VIDEO_SUFFIXES, Shard, check_stems, detections_for, find_videos, select_shard  # noqa: F401 (re-exported)
from strcli.road.reconstruct import Models, Progress, ReconstructOptions, VideoResult, reconstruct_video


def run_batch(videos: Sequence[Path], out_root: Path, options: ReconstructOptions, models: Models,
              detections: Path | None = None, overwrite: bool = False,
              progress_for: Callable[[Path], Progress] | None = None,
              on_result: Callable[[VideoResult], None] | None = None,
              after: Callable[[VideoResult, Progress | None], VideoResult] | None = None
              ) -> list[VideoResult]:
    """Reconstruct every video, then run `after` on its result (`reconstruct --render`:
    `strcli.render.overlay.render_result`); a failure is recorded and the next video goes on."""
    results = []
    clashes = check_stems(videos)
    for video in videos:
        if video in clashes:
            result = VideoResult(video, "failed", message=clashes[video], exit_code=UsageError.exit_code)
        else:
            progress = None
            try:
                dets = detections_for(video, detections, single=len(videos) == 1)
                progress = progress_for(video) if progress_for else None
                result = reconstruct_video(video, out_root, options, models, dets, overwrite, progress)
                if after is not None and result.output is not None:
                    result = after(result, progress)
            except Exception as err:  # a full disk from any stage is one line too, and the batch goes on
                if progress is not None:
                    progress.fail()  # the stage it stopped in is not `done`
                if err is models.build_error:
                    raise  # the networks could not be built: no video can run
                failure = err if isinstance(err, StrcliError) else write_failure(err)
                if failure is None:
                    raise
                result = VideoResult(video, "failed", message=str(failure), exit_code=failure.exit_code)
        results.append(result)
        if on_result:
            on_result(result)
    return results




def exit_code(results: Sequence[VideoResult]) -> int:
    """0 when every video succeeded (or was skipped), else the code of the first failure."""
    return next((r.exit_code for r in results if r.status == "failed"), 0)
