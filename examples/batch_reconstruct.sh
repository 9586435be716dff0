#!/usr/bin/env bash
# Reconstruct every video of a folder, one strcli call per video, and report the failures.
#
#   examples/batch_reconstruct.sh VIDEO_DIR OUT_DIR [extra strcli reconstruct flags...]
#
# Safe to rerun: videos already done with the same options and weights are skipped.
# One bad file never stops the others; the script exits non-zero if any failed.
# (`strcli reconstruct VIDEO_DIR -o OUT_DIR` does the same in one process, loading the
# networks once; this loop is for schedulers that want one job per file.)
set -uo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 VIDEO_DIR OUT_DIR [strcli reconstruct flags...]" >&2
    exit 2
fi
videos=$1
out=$2
shift 2
failed=0
total=0
shopt -s nullglob nocaseglob
for video in "$videos"/*.{mp4,mov,m4v,avi,mkv,webm}; do
    total=$((total + 1))
    if strcli reconstruct "$video" -o "$out" --quiet "$@"; then
        echo "ok      $video"
    else
        code=$?
        echo "FAILED  $video (exit $code)" >&2
        failed=$((failed + 1))
    fi
done
echo "$((total - failed)) of $total video(s) ok, $failed failed"
[ "$failed" -eq 0 ]
