"""The command line's inputs, checked before anything heavy is imported or built.

Everything here is cheap (no torch): the videos and files named on the command line
exist, are files, are not empty and can be read (`video_problem`, the file system alone),
each video's header and first frame decode and it is not a still image, and no other
process is writing its output folder (`run_problem`, PyAV and a look at the lock), and
the output folder can be written. `strcli reconstruct` runs these checks first, so a
mistyped path or an undecodable file is refused in about a second, before any model is
loaded or downloaded.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strcli.config import BVH_DIR, COMPARE, EXPORT_RECORD, FRAMES_DIR, MANIFEST, OVERLAY
from strcli.utils.errors import MissingAssetError, OutputError, StrcliError, UsageError, VideoError
from strcli.utils.locks import busy_error, lock_holder

if TYPE_CHECKING:
    from strcli.road.video import VideoInfo

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".ts", ".mts", ".3gp")


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls(0, 1)
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
            raise UsageError(f"bad --shard {text!r}: use i/n with 0 <= i < n (e.g. 0/4 ... 3/4; "
                             "in a Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).")
        return cls(int(match.group(1)), int(match.group(2)))


def find_videos(inputs: Sequence[Path]) -> list[Path]:
    """Files as given (any suffix; a missing one fails later, alone) and the video files
    of folders; duplicates removed."""
    if not inputs:
        raise UsageError("no input videos given.", "Pass video files or folders.")
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            videos = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                            and not p.name.startswith("."))
            if not videos:
                raise UsageError(f"folder {path} holds no video files ({', '.join(VIDEO_SUFFIXES[:5])}, ...).",
                                 "Pass the video files themselves, or a folder that holds them.")
            found += videos
        else:
            found.append(path)
    # Named as given: two symbolic links to one file are two videos (two folders, each named
    # after its link); the same path given twice is one.
    return list(dict.fromkeys(given_path(p) if p.exists() else p for p in found))


def given_path(path: Path) -> Path:
    """`path` made absolute and normalised ("a/../b" -> "b") without following symbolic
    links: the video as the user named it (its stem names the output folder)."""
    return Path(os.path.abspath(path))


def source_video(recorded: object, given: Path | None = None) -> Path:
    """The source video of an output folder: `given` (--video-file), else the manifest's
    `input` (`recorded`) path as given to reconstruct (a symbolic link stays a link: its
    target is recorded beside it, `target`, for the user). KeyError when none is recorded
    (a damaged folder)."""
    if given is not None:
        return given
    path = recorded.get("path") if isinstance(recorded, dict) else None
    if not isinstance(path, str):
        raise KeyError("input.path")
    return Path(path)


def source_file(manifest: dict, given: Path | None, name: str) -> Path:
    """The source video file of output folder `name` (`source_video`: `given`, --video-file,
    else the one `manifest` records); VideoError (exit 7) when it is a folder or does not
    exist. `render` and `view` take it so, then `check_same_video` once it is probed."""
    source = source_video(manifest["input"], given)
    if source.is_dir():
        raise VideoError(f"the source video {source} of {name} is a folder, not a video.",
                         "Pass the video file with --video-file.")
    if not source.is_file():
        if given is not None:
            raise VideoError(f"--video-file {source} does not exist.",
                             f"Pass the video {name} was reconstructed from.")
        raise VideoError(f"the source video {source} of {name} is gone.",
                         "Pass its new location with --video-file.")
    return source


def check_same_video(manifest: dict, info: VideoInfo, name: str) -> None:
    """Refuse (VideoError, exit 7) a source video whose size, frame rate or length differ
    from those of the video `manifest` was reconstructed from: the bodies would be drawn
    over the wrong pictures. A re-encoded or moved copy of the same video passes."""
    was = manifest.get("video") or {}
    differences = []
    if (was.get("width"), was.get("height")) != (info.width, info.height) and was.get("width"):
        differences.append(f"{info.width}x{info.height} pixels, not {was['width']}x{was['height']}")
    if was.get("fps") and info.fps and abs(info.fps - was["fps"]) > 0.01 * was["fps"]:
        differences.append(f"{info.fps:.3g} fps, not {was['fps']:.3g}")
    if was.get("frames_in_file") and info.frames_in_file and was["frames_in_file"] != info.frames_in_file:
        differences.append(f"{info.frames_in_file} frames, not {was['frames_in_file']}")
    elif was.get("duration") and info.duration and abs(info.duration - was["duration"]) > 2 / (info.fps or 1):
        differences.append(f"{info.duration:.2f} s long, not {was['duration']:.2f}")
    if differences:
        raise VideoError(f"{info.path.name} is not the video {name} was reconstructed from: "
                         f"{'; '.join(differences)}.",
                         "Pass the video it was made from with --video-file.")


def check_stems(videos: Sequence[Path]) -> dict[Path, str]:
    """Outputs are named by stem: inputs that share one would overwrite each other, so each of
    them is refused (video -> why), not the first taken and the others refused: which one
    came first would depend on the order, and across `--shard`s on which shard ran first
    (`reconstruct` checks the whole list before it is split)."""
    by_stem: dict[str, list[Path]] = {}
    for video in videos:
        by_stem.setdefault(video.stem, []).append(video)
    clashes: dict[Path, str] = {}
    for stem, same in by_stem.items():
        for video in same if len(same) > 1 else ():
            others = ", ".join(str(v) for v in same if v != video)
            clashes[video] = (f"{video} and {others} share the name {stem!r}, so their outputs would "
                              "collide: rename them or run them into different -o folders.")
    return clashes


def select_shard(videos: Sequence[Path], shard: Shard) -> list[Path]:
    return [v for i, v in enumerate(videos) if i % shard.count == shard.index]


def video_problem(path: Path) -> VideoError | None:
    """Why `path` cannot be a video, from the file system alone (None if it may be one;
    decoding decides the rest)."""
    if not path.exists():
        hint = ""
        siblings = [p.name for p in path.parent.glob(f"{path.stem}.*")] if path.parent.is_dir() else []
        if siblings:
            hint = f"Did you mean {', '.join(sorted(siblings)[:3])}?"
        return VideoError(f"video {path} does not exist.", hint or "Check the path.")
    if path.is_dir():
        return VideoError(f"{path} is a folder, not a video.")
    if not os.access(path, os.R_OK):
        return VideoError(f"video {path} cannot be read (permission denied).", "Check its permissions.")
    if path.stat().st_size == 0:
        return VideoError(f"video {path} is empty (0 bytes).", "Re-copy or re-export it.")
    return None


def detections_for(video: Path, detections: Path | None, single: bool) -> Path | None:
    """The MOT detection file of `video`: the file given (one video only) or, for a folder
    of detection files, `<stem>.det.txt`, `<stem>.txt` or `<stem>/det/det.txt` (MOT layout).
    Raises UsageError (exit 2) when there is none."""
    if detections is None:
        return None
    if detections.is_file():
        if not single:
            raise UsageError("--detections FILE works with one video; for several, pass a folder "
                             "holding <video-stem>.det.txt files.")
        return detections
    if detections.is_dir():
        for candidate in (detections / f"{video.stem}.det.txt", detections / f"{video.stem}.txt",
                          detections / video.stem / "det" / "det.txt"):
            if candidate.is_file():
                return candidate
        raise UsageError(f"no detections for {video.name} in {detections} (looked for "
                         f"{video.stem}.det.txt, {video.stem}.txt, {video.stem}/det/det.txt).",
                         f"Write {video.stem}.det.txt there with your detector (MOT format: frame,-1,x,y,w,h,"
                         "score per line), or drop --detections to run strcli's detector.")
    check_detections(detections)  # gone since the command was checked, or a device or a pipe
    raise UsageError(f"--detections {detections} is not a file or a folder.", "Pass a detections file or a folder of them.")


def run_problem(video: Path, out_root: Path, overwrite: bool, detections: Path | None = None,
                single: bool = True, min_score: float = 0.0, start: str | None = None,
                end: str | None = None) -> StrcliError | None:
    """Why `video`, which passed `video_problem`, cannot run into `out_root/<stem>/` now, or
    None: VideoError (exit 7) when its contents cannot be decoded (text or garbage under a
    video's name, an MP4 cut before its index, no video stream) or it is a still image
    (`strcli.road.video.probe`); UsageError (exit 2) when `detections` (the --detections file or
    folder; `single`: one video in the run) holds no file for it, or its file has a
    malformed line or does not fit the video (`strcli.road.tracking.check_detections_fit`);
    UsageError too when its folder holds another video of the same stem and not
    `overwrite` (`another_video_problem`); UsageError when `start` (--start, as given, with
    `end`) lies past the end of a video whose length the file records; BusyError (exit 9) when another process holds the folder's lock and the video must be
    written (`overwrite`, or no finished folder that could be skipped). A look at the lock,
    as the run starts: a video is refused at once rather than after the models are loaded,
    even if its holder would be done by its turn."""
    try:
        from strcli.road.video import probe  # PyAV: only when a video is checked

        info = probe(video)
    except VideoError as err:
        return err
    if (past := range_problem(info, start, end)) is not None:
        return past
    if detections is not None:
        from strcli.road.tracking import check_detections_fit  # numpy only; sets ultralytics' settings

        try:
            check_detections_fit(detections_for(video, detections, single), info.width, info.height,
                                 info.frames_expected, min_score)
        except UsageError as err:
            return err
    if (foreign := foreign_folder_problem(out_root / video.stem)) is not None:
        return foreign
    if not overwrite and (other := another_video_problem(video, out_root)) is not None:
        return other
    if overwrite or not (out_root / video.stem / MANIFEST).is_file():
        holder = lock_holder(out_root, video.stem)
        if holder is not None:
            return busy_error(out_root / video.stem, holder)
    return None


def range_problem(info: VideoInfo, start: str | None, end: str | None) -> UsageError | None:
    """UsageError when --start (`start`, as given) is at or past the end of the video, by
    the frame count or the duration its file records (else the decoding finds it out)."""
    from strcli.road.video import empty_range_error, parse_position

    first = parse_position(start, "--start")
    if first is None:
        return None
    frames, seconds = info.frames_in_file, info.duration
    if (first.frame is not None and frames and first.frame >= frames) or \
            (first.seconds is not None and seconds and first.seconds >= seconds):
        return empty_range_error(start, end, frames or info.frames_expected or 0, seconds)
    return None


def output_folders(paths: Sequence[Path]) -> list[Path]:
    """reconstruct output folders given as OUT (every video in it) or OUT/<stem>, for
    `render`, `export` and `view`; UsageError (exit 2) when none holds a manifest. A scan of
    OUT skips hidden names: a run's temporaries (`.<stem>.partial-<pid>-*/`, `.<stem>.old-*/`)
    hold manifests too, and are never outputs."""
    folders: list[Path] = []
    for path in paths:
        if (path / MANIFEST).is_file():
            folders.append(path)
        elif path.is_dir():
            folders += sorted(p for p in path.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())
    if not folders:
        missing = [str(p) for p in paths if not p.exists()]
        raise UsageError(f"no reconstruct outputs (folders with {MANIFEST}) in {', '.join(map(str, paths))}"
                         + (f" ({', '.join(missing)}: does not exist)" if missing else "") + ".",
                         "Run `strcli reconstruct VIDEO -o OUT` first, then pass OUT or OUT/<video-stem>.")
    return folders


def is_strcli_output(folder: Path) -> bool:
    """Whether `folder` is a video's folder that `strcli reconstruct` wrote: its manifest.json
    is a JSON object with a fingerprint, or (a damaged output, which --overwrite redoes) it
    holds a manifest.json and a tracks/ folder."""
    if (folder / MANIFEST).is_file() and (folder / "tracks").is_dir():
        return True
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "fingerprint" in manifest


def foreign_folder_problem(folder: Path) -> UsageError | None:
    """UsageError (exit 2) when `folder` (a video's OUT/<stem>) exists and is not a strcli
    output (a file, a symlink, or a folder without strcli's manifest: the user's own data,
    perhaps the video itself): strcli never replaces it, not even with --overwrite."""
    if not (folder.exists() or folder.is_symlink()) or (folder.is_dir() and not folder.is_symlink()
                                                        and is_strcli_output(folder)):
        return None
    kind = "a file" if folder.is_file() else "a link" if folder.is_symlink() else "a folder strcli did not write"
    return UsageError(f"{folder} exists and is {kind} (no strcli manifest.json): strcli will not replace it.",
                      "Write the outputs elsewhere with -o ANOTHER_FOLDER, or move it away.")


def check_targets(folder: Path, files: Sequence[str] = (), folders: Sequence[str] = ()) -> None:
    """UsageError (exit 2), before any work, when a file a command will write into `folder`
    (`files`: overlay.mp4, <stem>.glb, bvh/<stem>_<id>.bvh) is a folder or anything but a
    file, or a folder it will replace (`folders`: frames/, bvh/) is a file or a link:
    strcli writes neither, so it is the user's, and the command would fail at its end."""
    for name in files:
        path = folder / name
        if (path.exists() or path.is_symlink()) and (path.is_dir() or not path.is_file()):
            kind = "a folder" if path.is_dir() else "a link to nothing" if path.is_symlink() else "not a file"
            raise UsageError(f"{path} is in the way: it is {kind}, where strcli writes a file.",
                             "Move it away, then run the command again.")
    for name in folders:
        path = folder / name
        if (path.exists() or path.is_symlink()) and (path.is_symlink() or not path.is_dir()):
            kind = "a link" if path.is_symlink() else "a file"
            raise UsageError(f"{path} is in the way: it is {kind}, where strcli writes a folder of its own.",
                             "Move it away, then run the command again.")


def render_targets(folder: Path, video: bool, compare: bool, pngs: bool) -> None:
    """`check_targets` for `strcli render`: overlay.mp4 (compare.mp4) and frames/."""
    check_targets(folder, files=((COMPARE if compare else OVERLAY),) if video else (),
                  folders=(FRAMES_DIR,) if pngs else ())


def output_frames(manifest: Any) -> range | None:
    """The frame numbers (of the video) an output folder holds: every `stride`-th from its
    start, as many as were processed; None where the manifest does not say (a damaged
    folder, which `check_output` refuses on its own)."""
    try:
        options, counts = manifest["options"], manifest["counts"]
        start, stride, processed = int(options["start_frame"]), int(options["stride"]), int(counts["frames_processed"])
    except (KeyError, TypeError, ValueError):
        return None
    return range(start, start + max(processed, 0) * stride, max(stride, 1))


def describe_frames(frames: range) -> str:
    """"frames 0-4 (every 2nd)", "frames 0-179", "frame 3", "no frames"."""
    if len(frames) == 0:
        return "no frames"
    if len(frames) == 1:
        return f"frame {frames[0]}"
    step = frames.step
    every = "" if step == 1 else f" (every {step}{'nd' if step == 2 else 'rd' if step == 3 else 'th'})"
    return f"frames {frames[0]}-{frames[-1]}{every}"


def check_render_frames(folder: Path, frames: Sequence[int], text: str | None = None) -> None:
    """UsageError (exit 2), before anything is written or replaced, when a frame asked for
    with `render --frames` (`text`, as given) is not in the output of `folder`: past the
    reconstructed range, or between the frames a --stride skipped. The line names the frames
    that exist."""
    if not frames:
        return
    held = output_frames(_read_json(folder / MANIFEST))
    if held is None:
        return
    missing = [f for f in frames if f not in held]
    if not missing:
        return
    asked = f"--frames {text}" if text else f"--frames {','.join(map(str, frames[:5]))}{',...' if len(frames) > 5 else ''}"
    which = "" if len(frames) == 1 else f" (not frame {missing[0]}" + (f" and {len(missing) - 1} more)" if len(missing) > 1 else ")")
    if len(held) == 0:
        hint = "Reconstruct its video again: the output holds no frame."
    else:
        hint = f"Pass frames it has, e.g. --frames {','.join(map(str, held[:3]))}" + (
            f" or --frames {held[0]}:{held[-1] + 1}:{held.step}" if held.step > 1 and len(held) > 3 else "") + "."
    raise UsageError(f"{asked}: the output {folder.name} has {describe_frames(held)}{which}.", hint)


def export_targets(folder: Path, formats: Sequence[str]) -> None:
    """`check_targets` for `strcli export`: <stem>.glb (and the animation.glb older strcli
    wrote, which an export removes), <stem>.fbx, <stem>.blend, export.json, bvh/, and bvh/<stem>_<id>.bvh
    (and the older bvh/<id>.bvh) of every track the manifest lists; the stem is the folder's
    name (`strcli.export.gltf.glb_name`, `strcli.export.bvh.bvh_name`)."""
    ids = []
    manifest = _read_json(folder / MANIFEST)
    for entry in (manifest.get("tracks") if isinstance(manifest, dict) else None) or []:
        if isinstance(entry, dict) and isinstance(entry.get("track_id"), int):
            ids.append(entry["track_id"])
    stem = folder.name
    files = [f"{stem}.{kind}" for kind in ("fbx", "blend") if kind in formats] + [EXPORT_RECORD]  # written or removed
    if "glb" in formats:
        files += [f"{stem}.glb", "animation.glb"]
    check_targets(folder, files=files, folders=(BVH_DIR,) if "bvh" in formats else ())
    if "bvh" in formats:
        check_targets(folder, files=[f"{BVH_DIR}/{stem}_{i}.bvh" for i in ids] + [f"{BVH_DIR}/{i}.bvh" for i in ids]
                      + [f"{BVH_DIR}/info.json"])


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def another_video_problem(video: Path, out_root: Path) -> UsageError | None:
    """UsageError (exit 2) when `out_root/<stem>/` holds the results of another video of
    the same stem: its manifest records another input path that still exists and leads to
    another file, so redoing this one would replace them. None otherwise: no manifest, this
    video's, or a recorded video that is gone (moved or renamed: the folder is redone)."""
    try:
        recorded = json.loads((out_root / video.stem / MANIFEST).read_text()).get("input")
    except (OSError, ValueError, AttributeError):
        return None
    path = recorded.get("path") if isinstance(recorded, dict) else None
    # Another video: a recorded path that still exists and is another file (a path that leads
    # to this same file, through a link or a linked folder, is this video).
    if isinstance(path, str) and Path(path).exists() and Path(path).resolve() != video.resolve():
        return UsageError(f"{out_root / video.stem} holds the results of another video, {path}, not of this one "
                          "(same stem).",
                          "Write this one elsewhere with -o ANOTHER_FOLDER, or pass --overwrite to replace them.")
    return None


def missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first: what a run
    writing into `folder` creates, and removes again if it leaves them empty."""
    missing = []
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_empty(folders: Sequence[Path]) -> None:
    """Remove the `folders` (deepest first, as `missing_folders` gives them) that exist and
    are empty; stop at the first that holds something. Never raises."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:  # not empty (another process's outputs too), or not ours to remove
            return


def check_file(path: Path | None, what: str, error: type = MissingAssetError, allow_suffix: str = "") -> None:
    """A file named by a flag (`what`, e.g. '--backbone') must exist, be a file, be
    readable and not be empty; `allow_suffix` names a suffix that may be missing (a
    detector .yaml built by name)."""
    if path is None or (allow_suffix and path.suffix == allow_suffix and not path.exists()):
        return
    if not path.exists():
        raise error(f"{what} {path} does not exist.", "Check the path.")
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file.", "Name the file itself.")
    if not os.access(path, os.R_OK):
        raise error(f"{what} {path} cannot be read (permission denied).", "Check its permissions.")
    if path.stat().st_size == 0:
        raise error(f"{what} {path} is empty (0 bytes).", "Re-copy or re-download it.")


def check_detections(path: Path | None) -> None:
    """--detections: a readable file (empty is fine: nobody was detected), or a folder."""
    if path is None:
        return
    if not path.exists():
        raise UsageError(f"--detections {path} does not exist.", "Check the path.")
    if not path.is_file() and not path.is_dir():
        raise UsageError(f"--detections {path} is not a file or a folder (a device or a pipe).",
                         "Pass a MOT detections file, or a folder of them.")
    if path.is_file() and not os.access(path, os.R_OK):
        raise UsageError(f"--detections {path} cannot be read (permission denied).", "Check its permissions.")


def check_output_folder(folder: Path) -> None:
    """The output folder (or, if it does not exist yet, its nearest existing parent) must be
    a writable folder; checked by creating and removing a temporary file. A file where the
    folder (or a parent) goes is a bad -o: UsageError (exit 2); a folder that cannot be
    written (read-only, no permission, full disk) is an OutputError (exit 6)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"-o {folder}: {probe} is a file, not a folder.",
                         "Choose another output folder with -o.")
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".strcli-write-check-"):
            pass
    except OSError as err:
        raise OutputError(f"cannot write into {folder} ({err.strerror or err}).",
                          "Choose a writable output folder with -o.") from err
