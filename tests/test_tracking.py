import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from strcli.utils.errors import UsageError
from strcli.road.tracking import (
    DetectionFit,
    DetectionTracker,
    Detections,
    TrackedBox,
    TrackingConfig,
    YoloPersonDetector,
    drop_outside,
    finalize_tracks,
    read_mot_detections,
    track_detections,
)


def test_mot_file_is_parsed_to_zero_based_xyxy(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n1,-1,0,0,5,5,0.2,-1,-1,-1\n3,-1,1,2,3,4,0.5,-1,-1,-1\n")
    det = read_mot_detections(path)
    assert sorted(det) == [0, 2]
    assert np.allclose(det[0].xyxy[0], [10, 20, 40, 60]) and np.allclose(det[0].conf, [0.9, 0.2])
    assert np.allclose(det[0].xywh[0], [25, 40, 30, 40])
    assert len(read_mot_detections(path, min_score=0.3)[0]) == 1
    (tmp_path / "bad.txt").write_text("1,2,3\n")
    with pytest.raises(UsageError, match="bad.txt, line 1: 3 column"):
        read_mot_detections(tmp_path / "bad.txt")


GOOD = "1,-1,10,20,30,40,0.9,-1,-1,-1\n"


@pytest.mark.parametrize("line, said", [
    ("5,-1,nan,20,30,40,0.9,-1,-1,-1", "the x is nan"),
    ("5,-1,10,20,inf,40,0.9,-1,-1,-1", "the width is inf"),
    ("5,-1,10,-inf,30,40,0.9,-1,-1,-1", "the y is -inf"),
    ("5,-1,10,20,-30,40,0.9,-1,-1,-1", "the box is -30x40 pixels (width and height must be positive)"),
    ("5,-1,10,20,0,0,0.9,-1,-1,-1", "the box is 0x0 pixels (width and height must be positive)"),
    ("5,-1,1e308,20,1e308,40,0.9,-1,-1,-1", "the x 1e+308 is beyond a million pixels"),
    ("5,-1,10,20,30,1e39,0.9,-1,-1,-1", "the height 1e+39 is beyond a million pixels"),  # float32 overflow
    ("5,-1,10,20,30,40,nan,-1,-1,-1", "the score is nan"),
    ("12.5,-1,10,20,30,40,0.9,-1,-1,-1", "the frame number 12.5 is not a whole number"),
    ("0,-1,10,20,30,40,0.9,-1,-1,-1", "the frame number 0 is below 1 (MOT frame numbers start at 1)"),
    ("5,-1,ten,20,30,40,0.9,-1,-1,-1", "the x 'ten' is not a number"),
])
def test_a_malformed_line_is_named_with_what_is_wrong(tmp_path, line, said):
    path = tmp_path / "d.txt"
    path.write_text(GOOD + "\n" + line + "\n" + GOOD)  # line 3: blank lines count
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning leaks
        with pytest.raises(UsageError) as error:
            read_mot_detections(path)
    assert str(error.value).startswith(f"--detections d.txt, line 3: {said}.")
    assert "another video" not in str(error.value) and "\n" not in str(error.value)
    assert error.value.exit_code == 2


def test_every_malformed_line_is_counted_and_all_nan_scores_are_refused(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("".join(f"{f},-1,10,20,30,40,nan,-1,-1,-1\n" for f in range(1, 6)))
    with pytest.raises(UsageError, match=r"line 1: the score is nan \(and 4 more malformed line\(s\)\)\."):
        read_mot_detections(path, min_score=0.5)  # was: silently no person found


def test_whole_frame_numbers_written_as_decimals_and_a_byte_order_mark_are_accepted(tmp_path):
    path = tmp_path / "d.txt"
    path.write_bytes("\ufeff1,-1,10,20,30,40,0.9,-1,-1,-1\r\n12.0,-1,1,2,3,4,0.5,-1,-1,-1\r\n".encode())
    det = read_mot_detections(path)
    assert sorted(det) == [0, 11] and np.allclose(det[11].xyxy[0], [1, 2, 4, 6])


def test_misfits_never_outnumber_the_boxes(tmp_path, assets):
    """Boxes mostly outside the frame on frames after the video's last were counted twice
    ("5617 of its 5404 boxes"): each box now counts once."""
    from strcli.road.reconstruct import ReconstructOptions, track_video
    from strcli.road.video import probe

    own = (assets / "detections" / "running.det.txt").read_text().splitlines()[:20]
    late = [f"{f},-1,1900,300,200,200,0.9,-1,-1,-1" for f in range(181, 301)]  # 10% inside, after frame 180
    path = tmp_path / "d.txt"
    path.write_text("\n".join(own + late) + "\n")
    info = probe(assets / "videos" / "running.mp4")
    with pytest.raises(UsageError) as error:
        track_video(info, 0, None, ReconstructOptions(), detections=path)
    assert "does not fit this video: 120 of its 140 boxes" in str(error.value)
    given, outside, mostly = drop_outside(read_mot_detections(path), 1920, 1088)
    fit = DetectionFit.of(140, given, outside, mostly, 179)
    assert (fit.outside, fit.past_end, fit.mostly_outside, fit.misfits) == (0, 120, 0, 120)
    assert DetectionFit.of(140, given, outside, mostly, None).mostly_outside == 120


def walking(x0, dx, y, frames):
    """Detections of one person walking horizontally: frame -> box."""
    return {f: np.array([x0 + dx * f, y, x0 + dx * f + 40, y + 100], np.float32) for f in frames}


def test_bytetrack_keeps_two_walkers_apart():
    a = walking(0, 5, 50, range(60))
    b = walking(600, -5, 300, range(10, 60))
    det = {}
    for f in range(60):
        boxes = [box for walker in (a, b) if (box := walker.get(f)) is not None]
        det[f] = Detections(np.stack(boxes), np.full(len(boxes), 0.9, np.float32))
    tracks = finalize_tracks(track_detections(det, range(60), fps=30), TrackingConfig(smooth_window=1))
    assert len(tracks) == 2
    assert [t.track_id for t in tracks] == [0, 1]  # renumbered by first appearance
    first, second = tracks
    assert first.frames[0] == 0 and second.frames[0] >= 10
    # Each track carries its own walker's detected boxes.
    assert np.allclose(first.boxes, np.stack([a[f] for f in first.frames]))
    assert np.allclose(second.boxes, np.stack([b[f] for f in second.frames]))


def box(frame, track_id, x):
    return TrackedBox(frame, track_id, np.array([x, 0, x + 10, 20], np.float32), 0.9)


def test_short_gaps_are_interpolated_and_long_ones_are_not():
    rows = [box(f, 7, 2.0 * f) for f in [*range(0, 10), *range(13, 20), *range(40, 50)]]
    (track,) = finalize_tracks(rows, TrackingConfig(max_gap=5, smooth_window=1, min_length=5))
    assert track.frames.tolist() == [*range(0, 20), *range(40, 50)]
    assert track.interpolated[10:13].all() and not track.interpolated[:10].any()
    assert np.allclose(track.boxes[10:13, 0], [20, 22, 24])  # on the line between frames 9 and 13
    assert track.scores[11] == 0
    assert [(s.start, s.stop) for s in track.segments()] == [(0, 20), (20, 30)]


def test_short_tracks_dropped_longest_kept_and_renumbered():
    rows = ([box(f, 3, 0) for f in range(5, 30)] + [box(f, 9, 50) for f in range(0, 12)]
            + [box(f, 4, 90) for f in range(2, 5)])
    tracks = finalize_tracks(rows, TrackingConfig(min_length=8, smooth_window=1))
    assert [(t.track_id, t.frames[0], len(t)) for t in tracks] == [(0, 0, 12), (1, 5, 25)]
    (longest,) = finalize_tracks(rows, TrackingConfig(min_length=8, max_people=1))
    assert longest.track_id == 0 and len(longest) == 25


def test_smoothing_averages_jitter_but_keeps_a_straight_path():
    jitter = np.array([1.0, -1.0] * 10)
    rows = [TrackedBox(f, 1, np.array([f + jitter[f], 0, f + 10, 10], np.float32), 0.9) for f in range(20)]
    (track,) = finalize_tracks(rows, TrackingConfig(smooth_window=5))
    assert np.abs(track.boxes[2:-2, 0] - np.arange(2, 18)).max() < 0.25
    assert np.allclose(track.boxes[:, 2], np.arange(20) + 10)  # a straight line stays straight


def test_real_running_video_is_one_track(assets):
    det = read_mot_detections(assets / "detections" / "running.det.txt")
    tracks = finalize_tracks(track_detections(det, range(180), fps=30))
    assert len(tracks) == 1
    assert tracks[0].frames.tolist() == list(range(180))


def test_untrained_yolo_detects_a_batch_as_it_detects_each_frame_and_feeds_bytetrack():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    detector = YoloPersonDetector("yolo11n.yaml", imgsz=128, conf=0.3)
    # An untrained YOLO's features fade to ~1e-7 and its class bias is set for p ~ 1e-5, so it
    # finds nobody; a zero person bias makes every anchor a person at p = 0.5 (then NMS).
    for branch in detector.model.model.model[-1].cv3:
        branch[-1].bias.data[0] = 0.0
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(3)]
    batched = detector(images)
    alone = [detector([image])[0] for image in images]
    assert detector([]) == []
    assert all(isinstance(d, Detections) and d.xyxy.dtype == np.float32 for d in batched)
    assert sum(len(d) for d in batched) > 0  # something to compare
    for b, a in zip(batched, alone):
        assert len(b) == len(a)
        assert np.allclose(b.xyxy, a.xyxy, atol=1e-2) and np.allclose(b.conf, a.conf, atol=1e-4)
        assert ((b.xyxy[:, 2:] >= b.xyxy[:, :2]) & (b.conf[:, None] >= 0.3)).all()
    # fp16 as a GPU runs it, said in the installed ultralytics' words (it computes in fp32 on a CPU)
    half = YoloPersonDetector("yolo11n.yaml", imgsz=128, conf=0.3, half=True)
    half.model = detector.model
    assert [len(d) for d in half(images)] == [len(d) for d in batched]
    tracker = DetectionTracker(fps=10)
    out = [tracker(k, found) for k, found in enumerate(batched)]
    assert tracker.tracker.frame_id == 3 and tracker.tracker.args.track_buffer == 10  # 1 s at 10 fps
    for k, boxes in enumerate(out):  # every tracked box is one of that frame's detections
        for box in boxes:
            assert box.frame == k and np.isclose(batched[k].xyxy, box.xyxy).all(axis=1).any()


@pytest.mark.parametrize("setting", [None, "3"])
def test_using_ultralytics_leaves_the_thread_setting_of_later_processes_alone(setting):
    # ultralytics sets OMP_NUM_THREADS=1 on import when it is unset; a process started
    # afterwards (a DataLoader worker, a benchmark's fresh process) would run on one thread.
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if setting is not None:
        env["OMP_NUM_THREADS"] = setting
    script = ("import os, subprocess, sys\n"
              "from strcli.road.tracking import make_bytetrack\n"
              "make_bytetrack(30.0)\n"
              "import ultralytics\n"  # imported for real by now
              "print(os.environ.get('OMP_NUM_THREADS'))\n"
              "print(subprocess.run([sys.executable, '-c', 'import torch; print(torch.get_num_threads())'],"
              " capture_output=True, text=True, check=True).stdout.strip())\n")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    seen, child_threads = out.stdout.split()
    assert seen == str(setting)
    expected = subprocess.run(  # what a process started from the same shell gets
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env, capture_output=True,
        text=True, check=True).stdout.strip()
    assert int(child_threads) == int(expected) >= 1


def test_running_yolo_leaves_pytorchs_thread_count_alone():
    # ultralytics' select_device sets torch's threads to min(8, cores - 1) on a CPU; the
    # ResNet-50 and STR that run after the detector must keep the process's setting.
    import torch

    before = torch.get_num_threads()
    ours = 5 if min(8, max(1, (os.cpu_count() or 1) - 1)) == 3 else 3
    torch.set_num_threads(ours)
    try:
        YoloPersonDetector("yolo11n.yaml", imgsz=64, conf=0.001)([np.zeros((48, 64, 3), np.uint8)])
        assert torch.get_num_threads() == ours
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------- birth frames; detections that do not fit


def write_mot(path, rows):
    """rows: (0-based frame, x1, y1, x2, y2) -> a MOT detections file."""
    path.write_text("".join(f"{f + 1},-1,{x1},{y1},{x2 - x1},{y2 - y1},0.9,-1,-1,-1\n" for f, x1, y1, x2, y2 in rows))
    return path


@pytest.mark.parametrize("born", [19, 1, 40])
def test_a_track_born_after_the_first_frame_keeps_its_first_box(tmp_path, born):
    """ByteTrack confirms a track on its second detection; the box that started it is
    given back: a person detected from frame `born` on is tracked from frame `born`."""
    a = walking(0, 5, 50, range(60))
    b = walking(600, -5, 300, range(born, 60))
    rows = [(f, *walker[f]) for f in range(60) for walker in (a, b) if f in walker]
    det = read_mot_detections(write_mot(tmp_path / "d.txt", rows))
    raw = list(track_detections(det, range(60), fps=30))
    late = [r for r in raw if r.frame == born and np.allclose(r.xyxy, b[born])]
    assert len(late) == 1  # the birth box is handed out, once
    tracks = finalize_tracks(raw, TrackingConfig(smooth_window=1))
    second = tracks[1]
    assert second.frames[0] == born and len(second) == 60 - born
    assert np.allclose(second.boxes[0], b[born], atol=1e-3)
    assert np.allclose(second.boxes, np.stack([b[f] for f in second.frames]), atol=1e-3)
    assert not second.interpolated.any()


def test_a_track_lost_and_found_again_or_detected_sparsely_loses_no_box():
    """Re-found tracks are reported on the frame they are found; with detections every
    3rd frame (--detect-every 3) a late person's track starts on its first detection."""
    a = walking(0, 5, 50, range(60))
    seen = [f for f in range(60) if not 25 <= f < 30]  # occluded for 5 frames
    det = {f: Detections(a[f][None], np.array([0.9], np.float32)) for f in seen}
    tracks = finalize_tracks(track_detections(det, range(60), fps=30), TrackingConfig(smooth_window=1))
    assert len(tracks) == 1 and tracks[0].frames.tolist() == list(range(60))
    assert tracks[0].interpolated.tolist() == [25 <= f < 30 for f in range(60)]
    assert np.allclose(tracks[0].boxes[~tracks[0].interpolated], np.stack([a[f] for f in seen]))

    b = walking(600, -5, 300, range(19, 60))
    tracker = DetectionTracker(30 / 3)
    boxes = []
    for f in range(0, 60, 3):  # detection frames only, as track_video feeds them
        people = [w[f] for w in (a, b) if f in w]
        boxes += tracker(f, Detections(np.stack(people), np.full(len(people), 0.9, np.float32)))
    tracks = finalize_tracks(boxes, TrackingConfig(smooth_window=1, min_length=2))
    assert [int(t.frames[0]) for t in tracks] == [0, 21]  # 21: b's first detection frame
    assert np.allclose(tracks[1].boxes[0], b[21])


def test_boxes_outside_the_frame_and_lines_after_the_end_are_dropped_and_counted(tmp_path, assets):
    """Real video, doctored detections: its own boxes, plus boxes wholly outside the
    1920x1088 frame and lines after its last frame (180): those are dropped, counted in a
    warning, and make no track."""
    from strcli.road.reconstruct import ReconstructOptions, track_video
    from strcli.road.video import probe

    own = (assets / "detections" / "running.det.txt").read_text().splitlines()
    extra = [f"{f},-1,{x},{y},80,200,0.9,-1,-1,-1" for f in range(1, 41)
             for x, y in ((2500, 300), (-400, 300), (800, 1200))]  # right of, left of, below the frame
    extra += [f"{f},-1,900,300,80,200,0.9,-1,-1,-1" for f in range(181, 201)]  # after the last frame
    doctored = tmp_path / "doctored.txt"
    doctored.write_text("\n".join(own + extra) + "\n")
    info = probe(assets / "videos" / "running.mp4")
    tracked = track_video(info, 0, None, ReconstructOptions(), detections=doctored)
    assert len(tracked.tracks) == 1  # the runner only: nothing posed off-screen
    box = tracked.tracks[0].boxes
    assert (box[:, 2] > 0).all() and (box[:, 0] < 1920).all() and (box[:, 3] > 0).all() and (box[:, 1] < 1088).all()
    (warning,) = tracked.warnings
    assert "120 box(es) wholly outside the 1920x1088 frame" in warning
    assert "20 box(es) on frames after the video's last (frame 180" in warning
    assert f"of {len(own) + len(extra)}" in warning and "is this the right file?" in warning
    assert tracked.detections == len(own)


@pytest.mark.parametrize("video, other", [("running.mp4", "pedestrians.det.txt"),
                                          ("pedestrians.avi", "running.det.txt")])
def test_the_detections_of_another_video_are_refused(assets, video, other):
    """pedestrians' file on running.mp4: 795 frames of boxes for a 180-frame video;
    running's on pedestrians.avi: boxes of a 1920x1088 frame in a 768x576 one."""
    from strcli.road.reconstruct import ReconstructOptions, track_video
    from strcli.road.video import probe

    info = probe(assets / "videos" / video)
    with pytest.raises(UsageError, match="does not fit this video") as error:
        track_video(info, 0, None, ReconstructOptions(), detections=assets / "detections" / other)
    assert UsageError.exit_code == 2 and "another video" in str(error.value)


# --------------------------------------------------------------- a fast person (issue 23)


def sideways(widths_per_frame: float, frames: int = 30, width: float = 60.0) -> dict[int, np.ndarray]:
    """A 60x150 px person moving right by `widths_per_frame` of their width each frame."""
    return {f: np.array([20 + widths_per_frame * width * f, 100, 20 + widths_per_frame * width * f + width, 250],
                        np.float32) for f in range(frames)}


@pytest.mark.parametrize("fps", [10, 30])
def test_bytetrack_follows_up_to_six_tenths_of_a_width_a_frame(fps):
    """The measurement behind LONE_REACH_WIDTHS' comment: ByteTrack alone (overlap of
    consecutive boxes) follows 0.6 of a box width a frame and nothing from 0.7 on."""
    for speed, expected in ((0.6, [30]), (0.7, [])):
        det = {f: Detections(box[None], np.array([0.9], np.float32)) for f, box in sideways(speed).items()}
        tracks = finalize_tracks(track_detections(det, range(30), fps=fps))
        assert [len(t) for t in tracks] == expected, speed


def write_fast_person(tmp_path, speed: float, frames: int = 30):
    """A 640x360 clip and a MOT file of one person moving `speed` box widths a frame, and a
    bystander standing still at the right."""
    from generated_video import write_clip

    video = write_clip(tmp_path / "fast.mp4", frames=frames, size=(640, 360))
    runner = sideways(speed, frames, width=20.0)
    rows = [(f, *runner[f]) for f in range(frames)] + [(f, 590.0, 40.0, 630.0, 140.0) for f in range(frames)]
    lines = [f"{f + 1},-1,{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},0.9" for f, x1, y1, x2, y2 in rows]
    dets = tmp_path / "fast.txt"
    dets.write_text("\n".join(lines) + "\n")
    return video, dets, runner


def test_a_fast_person_is_tracked_when_nothing_else_competes(tmp_path):
    """Boxes moving their own width a frame never overlap: ByteTrack confirms no track. They
    are linked (each the other's only candidate), into one track of every frame, and said."""
    from strcli.road.reconstruct import ReconstructOptions, track_video
    from strcli.road.video import probe

    video, dets, runner = write_fast_person(tmp_path, 1.0)
    tracked = track_video(probe(video), 0, None, ReconstructOptions(), detections=dets)
    assert len(tracked.tracks) == 2  # the bystander (ByteTrack's) and the runner (linked)
    (fast,) = [t for t in tracked.tracks if t.boxes[:, 0].min() < 300]
    assert fast.frames.tolist() == list(range(30)) and not fast.interpolated.any()
    assert np.allclose(fast.boxes, np.stack([runner[f] for f in range(30)]), atol=1e-3)  # constant speed: smoothing keeps it
    (said,) = [w for w in tracked.warnings if "linked from boxes" in w]
    assert said.startswith("1 track(s) were linked from boxes moving up to 1.0 box widths a frame")


def test_two_fast_people_near_each_other_are_not_guessed():
    """Two lone boxes each within reach of the next frame's two: nothing is linked."""
    from strcli.road.tracking import link_lone_boxes

    a, b = sideways(1.0), {f: box + np.array([0, 40, 0, 40], np.float32) for f, box in sideways(1.0).items()}
    det = {f: Detections(np.stack([a[f], b[f]]), np.array([0.9, 0.9], np.float32)) for f in range(30)}
    links = link_lone_boxes(det, list(track_detections(det, range(30), fps=30)), TrackingConfig())
    assert links.linked_tracks == 0 and links.boxes == []


def test_a_person_too_fast_to_link_is_said_so_not_blamed_on_min_track_length(tmp_path):
    from strcli.road.reconstruct import ReconstructOptions, track_video
    from strcli.road.video import probe

    video, dets, _ = write_fast_person(tmp_path, 2.5, frames=12)  # 50 px a frame, within the 640 px frame
    options = ReconstructOptions()
    tracked = track_video(probe(video), 0, None, options, detections=dets)
    assert len(tracked.tracks) == 1  # the bystander only
    dets.write_text("".join(line for line in dets.read_text().splitlines(True) if ",590.0," not in line))
    tracked = track_video(probe(video), 0, None, options, detections=dets)
    assert tracked.tracks == []
    (said,) = [w for w in tracked.warnings if "no track was made" in w]
    assert "moved about 2.5 box widths between detected frames" in said and "--min-track-length" not in said
    # A slow person seen too briefly is the track length's doing, and is said so.
    from strcli.road.tracking import LoneLinks, no_track_reason

    brief = no_track_reason(5, LoneLinks([], 0, 0.0, 0.1, 5), options.tracking)
    assert brief == ("people were detected (5 boxes) but no track lasted 8 frames (--min-track-length): the longest "
                     "ran 5. Lower --min-track-length, or process more frames (--start, --end, --stride).")
