"""The rasterizer against exact silhouettes, and `strcli render` end to end."""

import json
import math
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import torch
import trimesh
from typer.testing import CliRunner

from strcli.body.camera import Intrinsics
from strcli.cli.main import app
from strcli.render.rasterize import project_vertices, rasterize
from strcli.render.overlay import PALETTE, Person, draw_people

runner = CliRunner()
K = Intrinsics(800.0, 320, 240)


def mesh(shape, centre):
    m = trimesh.creation.icosphere(3) if shape == "sphere" else trimesh.creation.box((0.8, 0.5, 0.3))
    return torch.tensor(m.vertices + centre, dtype=torch.float32), torch.tensor(m.faces, dtype=torch.int64)


def silhouette(vertices, faces):
    xy, _ = project_vertices(vertices, K)
    mask = np.zeros((K.height, K.width), np.uint8)
    for face in faces:  # one call per triangle: their union, whatever overlaps
        cv2.fillConvexPoly(mask, np.round(xy[face].numpy() * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
    return mask.astype(bool)


@pytest.mark.parametrize("shape, centre", [("sphere", (0.1, -0.05, 3.0)), ("box", (-0.2, 0.1, 2.5)),
                                           ("sphere", (1.0, 0.0, 2.0))])  # the last leaves the image
def test_coverage_matches_the_projected_silhouette(shape, centre):
    vertices, faces = mesh(shape, centre)
    fragments = rasterize(vertices, faces, K)
    covered = np.zeros(K.width * K.height, bool)
    covered[fragments.pixel.numpy()] = True
    expected = silhouette(vertices, faces).reshape(-1)
    iou = (covered & expected).sum() / (covered | expected).sum()
    assert iou > 0.95
    assert len(np.unique(fragments.pixel.numpy())) == len(fragments.pixel)  # one fragment per pixel
    assert torch.allclose(fragments.bary.sum(1), torch.ones(len(fragments.pixel)), atol=1e-4)


def test_depth_is_the_true_surface_depth():
    vertices, faces = mesh("sphere", (0.0, 0.0, 3.0))
    fragments = rasterize(vertices, faces, K)
    centre = (K.height // 2) * K.width + K.width // 2
    (at,) = torch.nonzero(fragments.pixel == centre).squeeze(1)
    assert fragments.depth[at] == pytest.approx(2.0, abs=0.01)  # unit sphere at 3 m: front at 2 m


def test_nearer_body_hides_the_farther_one_and_an_arm_its_torso():
    far, faces = mesh("sphere", (0.3, 0.0, 4.0))
    near, _ = mesh("sphere", (-0.3, 0.0, 3.0))
    image = torch.zeros(K.height, K.width, 3, dtype=torch.uint8)
    people = [Person(1, far, np.zeros((24, 2))), Person(0, near, np.zeros((24, 2)))]
    out = draw_people(image, people, faces, K, alpha=1.0).numpy().astype(float) / 255
    both = silhouette(far, faces) & silhouette(near, faces)
    assert both.sum() > 500
    hue = out[both] / out[both].sum(1, keepdims=True)
    near_hue = PALETTE[0] / PALETTE[0].sum()
    far_hue = PALETTE[1] / PALETTE[1].sum()
    assert (np.abs(hue - near_hue).sum(1) < np.abs(hue - far_hue).sum(1)).mean() > 0.98
    # One mesh: a small box (an arm) in front of a big one (a torso) is drawn in front.
    torso, torso_faces = mesh("box", (0.0, 0.0, 3.0))
    arm, arm_faces = mesh("box", (0.0, 0.0, 2.5))
    arm = (arm - torch.tensor([0.0, 0.0, 2.5])) * 0.3 + torch.tensor([0.0, 0.0, 2.5])
    vertices = torch.cat([torso, arm])
    faces = torch.cat([torso_faces, arm_faces + len(torso)])
    fragments = rasterize(vertices, faces, K)
    inner = cv2.erode(silhouette(arm, arm_faces).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    in_arm = torch.from_numpy(inner.reshape(-1))[fragments.pixel]  # (edge pixels may go either way)
    assert in_arm.sum() > 100 and bool((fragments.face[in_arm] >= len(torso_faces)).all())


@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.37, 0.81), (0.5, 0.5)])
def test_a_tiled_square_is_covered_once_without_cracks(offset):
    # 30 x 30 quads, two triangles each, of about 3.3 pixels (SMPL's triangles at 1080p),
    # with pixel-aligned and unaligned vertices: the shared edges leave no pixel out.
    n, side = 30, 100.0
    u, v = np.meshgrid(np.linspace(0, side, n + 1), np.linspace(0, side, n + 1))
    x0, y0 = 110 + offset[0], 70 + offset[1]
    z = 2.0
    points = np.stack([(x0 + u - K.width / 2) * z / K.focal, (y0 + v - K.height / 2) * z / K.focal,
                       np.full_like(u, z)], -1).reshape(-1, 3)
    i = (np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]).reshape(-1)
    faces = np.concatenate([np.stack([i, i + 1, i + n + 2], 1), np.stack([i, i + n + 2, i + n + 1], 1)])
    fragments = rasterize(torch.tensor(points, dtype=torch.float32), torch.tensor(faces), K, cull_back=False)
    pixel = fragments.pixel.numpy()
    assert len(np.unique(pixel)) == len(pixel)
    covered = np.zeros((K.height, K.width), bool)
    covered.reshape(-1)[pixel] = True
    centre_x, centre_y = np.arange(K.width) + 0.5, np.arange(K.height) + 0.5
    inside = (((centre_y > y0) & (centre_y < y0 + side))[:, None]
              & ((centre_x > x0) & (centre_x < x0 + side))[None, :])
    on_border = ((np.abs(centre_y - y0) < 1e-3) | (np.abs(centre_y - y0 - side) < 1e-3))[:, None] | (
        (np.abs(centre_x - x0) < 1e-3) | (np.abs(centre_x - x0 - side) < 1e-3))[None, :]
    assert inside.sum() > 9000 and (covered == inside)[~on_border].all()
    assert torch.allclose(fragments.depth, torch.full_like(fragments.depth, z), atol=1e-4)


def test_mesh_behind_the_camera_is_not_drawn():
    vertices, faces = mesh("sphere", (0.0, 0.0, -3.0))
    assert len(rasterize(vertices, faces, K).pixel) == 0


@pytest.mark.parametrize("joints, side_view", [(False, False), (True, False), (False, True)])
def test_each_panel_is_drawn_on_its_own_copy_of_the_frame(joints, side_view):
    """--compare draws one frame once per model: each panel must hold its own model's body
    and label only, and the decoded frame must stay untouched (on a CPU a tensor made from
    it shares its memory)."""
    from strcli.render.overlay import RenderOptions, _draw_frame

    ball, faces = mesh("sphere", (0.0, 0.0, 0.0))
    left = ball * 0.25 + torch.tensor([-0.35, 0.0, 5.0])  # model A's body, left of the centre
    right = ball * 0.25 + torch.tensor([0.35, 0.0, 5.0])  # model B's, right
    joints2d = np.tile(np.array([[160.0, 225.0]]), (24, 1))  # below both bodies
    frame = np.random.default_rng(0).integers(0, 256, (K.height, K.width, 3), dtype=np.uint8)
    source = frame.copy()
    options = RenderOptions(joints=joints, side_view=side_view, compare=not side_view)
    panels = [_draw_frame(frame, [Person(0, vertices, joints2d, 180.0)], faces, K, options, label)
              for vertices, label in ((left, "A"), (right, "B"))]
    assert np.array_equal(frame, source)  # the source picture is not drawn on
    alone = [silhouette(v, faces) for v in (left, right)]
    for panel, mine, other in ((panels[0], alone[0], alone[1]), (panels[1], alone[1], alone[0])):
        overlay = panel[:, :K.width]
        changed = (overlay != source).any(axis=2)
        assert changed[mine].mean() > 0.95  # its own body is drawn
        untouched = other & ~mine
        untouched[:60, :] = False  # the label's corner
        assert untouched.sum() > 500 and not changed[untouched].any()  # the other model's body is not
    assert not np.array_equal(panels[0], panels[1])
    if not side_view:  # each label in its own panel: "A" and "B" differ in their corner
        assert not np.array_equal(panels[0][:40, :40], panels[1][:40, :40])


@pytest.fixture
def reconstructed(tmp_path, assets, smpl_files):
    """A video reconstructed with the mean-predicting STR."""
    from test_reconstruct import mean_checkpoint

    checkpoint = mean_checkpoint(tmp_path / "mean.pt", assets)
    smpl = smpl_files["chumpy"].parent

    def run(video, detections, *extra, said=None):
        """The output folder; with a list `said`, the run is not --quiet and its output goes there."""
        args = ["reconstruct", str(video), "-o", str(tmp_path / "out"), "--detections", str(detections),
                "--smpl-dir", str(smpl), "--checkpoint", str(checkpoint), "--untrained", "--offline",
                "--device", "cpu", "--mesh-format", "none", *(() if said is not None else ("--quiet",)),
                *map(str, extra)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        if said is not None:
            said.extend(result.output.splitlines())
        return tmp_path / "out" / video.stem

    return run, smpl


def decoded(path):
    """(codec, pixel format, frame rate), frames, stream kinds of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        kinds = [s.type for s in container.streams]
        return (stream.codec_context.name, stream.codec_context.pix_fmt, float(stream.average_rate)), frames, kinds


def test_render_overlays_the_body_on_the_person(reconstructed, assets):
    run, smpl = reconstructed
    folder = run(assets / "videos" / "running.mp4", assets / "detections" / "running.det.txt", "--end", 10)
    result = runner.invoke(app, ["render", str(folder.parent), "--smpl-dir", str(smpl), "--device", "cpu",
                                 "--frames", "2,3", "--side-view", "-q"])
    assert result.exit_code == 0, result.output
    (codec, pix_fmt, rate), frames, kinds = decoded(folder / "overlay.mp4")
    assert kinds == ["video"] and len(frames) == 10
    assert (codec, pix_fmt) == ("h264", "yuv420p")
    assert frames[0].shape == (1088, 3840, 3) and rate == pytest.approx(30)
    png = cv2.cvtColor(cv2.imread(str(folder / "frames" / "000002.png")), cv2.COLOR_BGR2RGB)
    assert png.shape == (1088, 3840, 3) and sorted(p.name for p in (folder / "frames").iterdir()) == [
        "000002.png", "000003.png"]
    # The body is drawn inside the tracked box and nowhere far from it.
    with np.load(folder / "tracks" / "0.npz") as data:
        x1, y1, x2, y2 = data["boxes"][2].astype(int)
    source = next(f.to_ndarray(format="rgb24") for i, f in enumerate(av.open(str(assets / "videos" / "running.mp4")).decode(video=0)) if i == 2)
    changed = np.abs(png[:, :1920].astype(int) - source).sum(2) > 30
    # The caption (a random ResNet-50: no SPIN file) in its band at the bottom left, not a body.
    from strcli.render.caption import draw_caption, overlay_caveats

    top, right = draw_caption(np.zeros_like(png), overlay_caveats(json.loads((folder / "manifest.json").read_text())))
    assert changed[top:, :right].mean() > 0.5  # drawn
    changed[top:, :right] = False
    ys, xs = np.nonzero(changed)
    assert changed[y1:y2, x1:x2].sum() > 2000
    assert xs.min() > x1 - 0.6 * (y2 - y1) and xs.max() < x2 + 0.6 * (y2 - y1) and ys.min() > y1 - 50
    assert (png[:, 1920:] != 235).any(axis=2).sum() > 2000  # the side panel shows the body too
    assert not list(folder.glob(".overlay.partial-*"))
    # and the world's floor (camera.npz), as a band with a line under the body
    from strcli.render.overlay import SIDE_FLOOR, FloorPath

    assert (png[:, 1920:] == SIDE_FLOOR).all(axis=2).sum() > 20000
    assert (png[:, 1920:] < 120).all(axis=2).sum() > 200
    with np.load(folder / "camera.npz") as camera:
        floor = FloorPath.load(folder).at(2)
        assert np.allclose(floor.up, camera["rotation"][2][1]) and floor.height == camera["position"][2][1]
    (folder / "camera.npz").unlink()  # an older strcli's folder: no world, no floor
    assert FloorPath.load(folder) is None


def test_rotated_source_gives_an_upright_overlay_with_its_audio(reconstructed, tmp_path):
    run, smpl = reconstructed
    video = tmp_path / "phone.mp4"
    with av.open(str(video), "w") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.set_display_rotation(90)
        audio = out.add_stream("aac", rate=16000)
        for i in range(30):
            image = np.full((48, 64, 3), 90, np.uint8)
            for packet in vs.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        samples = (0.3 * np.sin(np.arange(16000) * 2 * math.pi * 440 / 16000)).astype(np.float32)
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (vs, audio):
            for packet in stream.encode():
                out.mux(packet)
    dets = tmp_path / "phone.txt"
    dets.write_text("".join(f"{f + 1},-1,12,6,24,52,0.9,-1,-1,-1\n" for f in range(30)))
    folder = run(video, dets)
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    _, frames, kinds = decoded(folder / "overlay.mp4")
    assert frames[0].shape == (64, 48, 3) and len(frames) == 30  # upright: 48 wide, 64 high
    assert kinds == ["video", "audio"]


@pytest.mark.parametrize("rotation, matrix", [(135, None), (45, None), (0, [0] * 9)])
def test_a_rotation_that_is_no_quarter_turn_is_ignored_end_to_end(reconstructed, tmp_path, rotation, matrix):
    """135 degrees turned the frames without swapping the size (render crashed); a zeroed
    matrix (PyAV: 232 degrees) turned them upside down: both are now used as stored, as
    players show them, with a warning."""
    run, smpl = reconstructed
    video = tmp_path / "skewed.mp4"
    with av.open(str(video), "w") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        if matrix is None:
            vs.set_display_rotation(rotation)
        else:
            vs.set_display_matrix(matrix)
        for i in range(12):
            image = np.full((48, 64, 3), 90, np.uint8)
            image[:8, :8] = 255
            for packet in vs.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    dets = tmp_path / "skewed.txt"
    dets.write_text("".join(f"{f + 1},-1,20,6,24,36,0.9,-1,-1,-1\n" for f in range(12)))
    folder = run(video, dets)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["video"]["rotation"], manifest["video"]["width"], manifest["video"]["height"]) == (0, 64, 48)
    said = [w for w in manifest["warnings"] if "display rotation" in w]
    assert len(said) == 1 and said[0] == manifest["video"]["rotation_warning"] and "was ignored" in said[0]
    with np.load(folder / "tracks" / "0.npz") as track:
        assert track["image_size"].tolist() == [64, 48]
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    _, frames, _ = decoded(folder / "overlay.mp4")
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3)
    assert frames[0][3, 3].mean() > 200  # the white block stays at the top left, as stored


def test_reconstruct_render_writes_the_overlay_and_a_rerun_keeps_it(reconstructed, assets):
    run, smpl = reconstructed
    video, dets = assets / "videos" / "running.mp4", assets / "detections" / "running.det.txt"
    folder = run(video, dets, "--end", 6, "--render", "--json")
    overlay = folder / "overlay.mp4"
    (_, pix_fmt, rate), frames, _ = decoded(overlay)
    assert len(frames) == 6 and frames[0].shape == (1088, 1920, 3) and rate == pytest.approx(30)
    source = [f.to_ndarray(format="rgb24") for _, f in zip(range(6), av.open(str(video)).decode(video=0))]
    assert (np.abs(frames[3].astype(int) - source[3]).sum(2) > 30).sum() > 2000  # a body is drawn
    stamp = overlay.stat().st_mtime_ns
    folder = run(video, dets, "--end", 6, "--render")  # done already: neither redone nor re-rendered
    assert overlay.stat().st_mtime_ns == stamp
    said = []
    folder = run(video, dets, "--end", 6, "--render", "--overwrite", said=said)
    assert overlay.stat().st_mtime_ns != stamp
    # The video's own warnings (here the world stage's: this body finds no foot contact) come
    # before its render's progress, not after it as if the render had said them.
    warned = [i for i, line in enumerate(said) if line.startswith("warning: running.mp4: ")]
    rendering = [i for i, line in enumerate(said) if line.startswith("running.mp4: render ")]
    assert warned and rendering and max(warned) < min(rendering), said
    assert len(warned) == len({said[i] for i in warned})  # each said once


def test_render_fps_and_quality(reconstructed, assets):
    run, smpl = reconstructed
    folder = run(assets / "videos" / "running.mp4", assets / "detections" / "running.det.txt", "--end", 8)
    sizes = {}
    for crf in (12, 40):
        result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu",
                                     "--fps", "12.5", "--crf", str(crf), "-q"])
        assert result.exit_code == 0, result.output
        (_, _, rate), frames, _ = decoded(folder / "overlay.mp4")
        assert rate == pytest.approx(12.5) and len(frames) == 8
        sizes[crf] = (folder / "overlay.mp4").stat().st_size
    assert sizes[12] > 3 * sizes[40]
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--crf", "60"])
    assert result.exit_code == 2 and "--crf 60" in result.output
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--preset", "warp"])
    assert result.exit_code == 2 and "--preset warp" in result.output
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--tracks", "7"])
    assert result.exit_code == 2 and "no track 7" in result.output


# --------------------------------------------------------------- variable frame rate, the right video, SMPL reuse


def vfr_folder(run, tmp_path, *extra):
    """The 30/10/30 fps clip (with audio) reconstructed, one person box in its right part."""
    from generated_video import VFR_TIMES, write_vfr_clip

    video = write_vfr_clip(tmp_path / "vfr.mp4")
    dets = tmp_path / "vfr.txt"
    dets.write_text("".join(f"{f + 1},-1,56,4,30,56,0.9,-1,-1,-1\n" for f in range(len(VFR_TIMES))))
    return video, run(video, dets, *extra)


def source_frames(video):
    with av.open(str(video)) as container:
        frames = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return [t - frames[0][0] for t, _ in frames], [image for _, image in frames]


def test_variable_rate_overlay_keeps_every_frames_source_time_and_its_audio(reconstructed, tmp_path):
    """Frames at 30, 10, then 30 fps: each overlay frame is shown at its source frame's
    time (not at a constant average 17.8 fps) and shows that frame; the audio is copied."""
    run, smpl = reconstructed
    video, folder = vfr_folder(run, tmp_path)
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    times, images = source_frames(video)
    with av.open(str(folder / "overlay.mp4")) as container:
        stream = container.streams.video[0]
        tick = float(stream.time_base)
        out = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        kinds = [s.type for s in container.streams]
        audio_seconds = float(container.streams.audio[0].duration * container.streams.audio[0].time_base)
    assert len(out) == len(times) == 45 and kinds == ["video", "audio"]
    from strcli.render.caption import draw_caption, overlay_caveats

    caption = overlay_caveats(json.loads((folder / "manifest.json").read_text()))  # a random ResNet-50
    top, _ = draw_caption(np.zeros_like(images[0]), caption)
    for (at, image), source_time, source in zip(out, times, images):
        assert abs(at - source_time) <= max(tick, 1e-3)  # the source's time, within a tick
        left = (slice(0, top), slice(0, 28))  # the left third above the caption: grey 12 + 5 i, no body there
        assert abs(float(image[left].mean()) - float(source[left].mean())) < 3
    assert out[15][0] == pytest.approx(times[15], abs=1e-3) and times[15] == pytest.approx(14 / 30 + 0.1, abs=1e-3)
    assert audio_seconds == pytest.approx(times[-1] + 1 / 30, abs=0.15)  # as long as the video


def test_render_fps_gives_a_constant_rate(reconstructed, tmp_path):
    run, smpl = reconstructed
    _, folder = vfr_folder(run, tmp_path)
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "-q",
                                 "--fps", "20"])
    assert result.exit_code == 0, result.output
    with av.open(str(folder / "overlay.mp4")) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    assert times == pytest.approx([i / 20 for i in range(45)], abs=1e-3)


def test_a_variable_rate_motion_is_resampled_for_amass_and_says_so(reconstructed, tmp_path):
    run, _ = reconstructed
    _, folder = vfr_folder(run, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["video"]["variable_frame_rate"] is True
    (track,) = manifest["tracks"]
    assert track["amass_resampled"] is True and track["amass_fps"] == pytest.approx(30, abs=0.05)
    assert any("variable frame rate" in w and "resampled" in w for w in manifest["warnings"])
    with np.load(folder / track["amass"]) as amass, np.load(folder / track["npz"]) as npz:
        assert bool(amass["resampled"]) and float(amass["mocap_framerate"]) == pytest.approx(30, abs=0.05)
        step = np.diff(amass["times"])
        assert np.allclose(step, 1 / float(amass["mocap_framerate"]), atol=1e-9)  # a constant rate
        assert amass["times"][0] == pytest.approx(npz["times"][0]) and amass["times"][-1] <= npz["times"][-1]
        assert len(amass["poses"]) == len(amass["trans"]) == len(amass["times"]) > len(npz["times"])
        assert np.array_equal(amass["source_frames"], npz["frames"])
        assert np.allclose(amass["source_times"], npz["times"])
    with np.load(folder / track["npz"]) as npz:
        assert npz["frames"].tolist() == list(range(45))


def test_seconds_select_frames_by_timestamp_end_to_end(reconstructed, tmp_path):
    run, _ = reconstructed
    video, folder = vfr_folder(run, tmp_path, "--start", "1.0s", "--end", "2.0s", "--min-track-length", "2")
    times, _ = source_frames(video)
    wanted = [i for i, t in enumerate(times) if 1.0 - 1e-9 <= t < 2.0 - 1e-9]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["options"]["start_frame"], manifest["options"]["end_frame"]) == (wanted[0], wanted[-1] + 1)
    assert manifest["counts"]["frames_processed"] == len(wanted) == 10
    with np.load(folder / manifest["tracks"][0]["npz"]) as npz:
        assert npz["frames"].tolist() == wanted
        assert np.allclose(npz["times"], [times[i] for i in wanted], atol=1e-6)


def test_render_refuses_a_different_video(reconstructed, assets, tmp_path):
    """running.mp4's result (1920x1088, 180 frames, 30 fps) over pedestrians.avi (768x576,
    795, 10 fps), and over a shorter cut of running.mp4, is refused with one line, exit 7."""
    run, smpl = reconstructed
    folder = run(assets / "videos" / "running.mp4", assets / "detections" / "running.det.txt", "--end", 6)
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "-q",
                                 "--video-file", str(assets / "videos" / "pedestrians.avi")])
    assert result.exit_code == 7, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "is not the video running was reconstructed from" in line
    assert "768x576 pixels, not 1920x1088" in line and "10 fps, not 30" in line and "795 frames, not 180" in line
    assert not (folder / "overlay.mp4").exists()
    # The same picture size and rate, another length: a 90-frame clip of the same video.
    from generated_video import write_clip

    other = write_clip(tmp_path / "other.mp4", frames=90, rate=30, size=(1920, 1088))
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "-q",
                                 "--video-file", str(other)])
    assert result.exit_code == 7 and "90 frames, not 180" in result.stderr
    # The video itself, moved: accepted.
    moved = tmp_path / "moved.mp4"
    moved.write_bytes((assets / "videos" / "running.mp4").read_bytes())
    result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "-q",
                                 "--video-file", str(moved)])
    assert result.exit_code == 0, result.output


def test_frames_the_output_lacks_are_refused_before_frames_is_touched(reconstructed, assets):
    """`--frames 999` past a 5-frame output, or `--frames 1` between the frames --stride 2
    kept: exit 2 naming the frames that exist, and the PNGs of an earlier render stay."""
    run, smpl = reconstructed
    folder = run(assets / "videos" / "running.mp4", assets / "detections" / "running.det.txt", "--end", 5,
                 "--stride", 2)
    render = ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "--no-video", "-q"]
    first = runner.invoke(app, [*render, "--frames", "2"])
    assert first.exit_code == 0, first.output
    before = sorted(p.name for p in (folder / "frames").iterdir())
    assert before == ["000002.png"]
    for asked in ("999", "1", "0,1,2"):
        result = runner.invoke(app, [*render, "--frames", asked])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: --frames {asked}: the output running has frames 0-4 (every 2nd)"), line
        assert "--frames 0,2,4" in line
        assert sorted(p.name for p in (folder / "frames").iterdir()) == before


def test_render_reuses_the_smpl_file_the_manifest_records(reconstructed, assets):
    run, smpl = reconstructed
    folder = run(assets / "videos" / "running.mp4", assets / "detections" / "running.det.txt", "--end", 3)
    result = runner.invoke(app, ["render", str(folder), "--device", "cpu", "-q"])  # no --smpl-dir
    assert result.exit_code == 0, result.output
    assert (folder / "overlay.mp4").is_file()
    from strcli.body.files import smpl_file_for_outputs

    assert smpl_file_for_outputs([folder]) == ((smpl / "SMPL_NEUTRAL.pkl").resolve(), None)


def test_caveats_are_read_from_the_manifest():
    from strcli.body.files import TEST_BODY_NOTE
    from strcli.render.caption import overlay_caveats

    trained = [{"name": "detector", "path": "/w/yolo11m.pt", "note": "asset detector"},
               {"name": "backbone", "path": "/w/spin.pt", "note": "SPIN ResNet-50"},
               {"name": "mean_params", "path": None, "note": "built-in fallback (MeanParams.neutral)"},
               {"name": "str", "path": "/w/best.pt", "note": "strcli checkpoint, full"},
               {"name": "smpl", "path": "/w/SMPL_NEUTRAL.pkl", "note": ""}]
    assert overlay_caveats({"weights": trained}) == ""  # real results: no caption
    random = [dict(w, path=None, note="random init (seed 0)") if w["name"] in ("backbone", "str") else w
              for w in trained]
    assert overlay_caveats({"weights": random}) == "TEST ONLY, NOT REAL BODIES: untrained ResNet-50, STR (random weights)"
    yaml = [dict(w, note="untrained (built from yaml)") if w["name"] == "detector" else w for w in trained]
    assert "untrained detector" in overlay_caveats({"weights": yaml})
    test_body = [dict(w, note=TEST_BODY_NOTE) if w["name"] == "smpl" else w for w in trained]
    assert overlay_caveats({"weights": test_body}).endswith(": a generated test body, not SMPL")
    # the body drawn now is the test body, whatever the manifest says
    assert overlay_caveats({"weights": trained}, TEST_BODY_NOTE).endswith("a generated test body, not SMPL")
    assert overlay_caveats({"weights": random}, TEST_BODY_NOTE).count(";") == 1
    # --compare: each panel names its own temporal model, and the shared networks
    both = [*random, {"name": "tcmr", "path": "/w/tcmr.pth.tar", "note": "TCMR, epoch 30"}]
    assert overlay_caveats({"weights": both}, model="str").endswith("untrained ResNet-50, STR (random weights)")
    assert overlay_caveats({"weights": both}, model="tcmr").endswith("untrained ResNet-50 (random weights)")


@pytest.mark.parametrize("height, width", [(240, 320), (1080, 1920)])
def test_the_caption_is_legible_and_fits_the_frame(height, width):
    from strcli.render.caption import draw_caption

    image = np.empty((height, width, 3), np.uint8)
    image[:] = (200, 40, 90)  # no grey the caption's anti-aliasing could make
    text = "TEST ONLY, NOT REAL BODIES: untrained ResNet-50, STR (random weights); a generated test body, not SMPL"
    top, right = draw_caption(image, text)
    changed = (image != (200, 40, 90)).any(axis=2)
    assert not changed[:top].any() and not changed[:, right:].any()  # only the band at the bottom left
    assert changed[top:, :right].all()  # a solid band (text drawn on it)
    white = (image[top:, :right] > 200).all(axis=2)
    rows = np.nonzero(white.any(axis=1))[0]
    assert white.sum() > 0.04 * white.size  # text, not an empty band
    lines = len(np.split(rows, np.nonzero(np.diff(rows) > 1)[0] + 1))  # runs of rows with white
    assert 11 <= (height - top) / lines  # at least 11 rows per line of text
    assert (height - top) < 0.3 * height  # a caption, not a curtain


CAVEAT = "TEST ONLY, NOT REAL BODIES: untrained ResNet-50, STR, detector (random weights); a generated test body, not SMPL"


@pytest.mark.parametrize("height, width", [(576, 768), (1080, 200), (1080, 120), (120, 160), (480, 90), (48, 64), (30, 24),
                                           (200, 1920)])
def test_the_caption_stays_inside_its_panel_at_any_size(height, width):
    """Narrow panels, small videos, the longest caption: every pixel it draws lies within the
    panel's columns and rows, and no letter is cut by the panel's right edge (a column of
    background is left right of the text)."""
    from strcli.render.caption import draw_caption

    wide = np.full((height, 3 * width, 3), (200, 40, 90), np.uint8)  # the panel and what lies right of it
    panel = np.ascontiguousarray(wide[:, :width])
    top, right = draw_caption(panel, CAVEAT)
    wide[:, :width] = panel
    changed = (wide != (200, 40, 90)).any(axis=2)
    assert not changed[:, width:].any() and 0 < right <= width and 0 <= top < height
    assert not changed[:top].any() and not changed[:, right:].any()
    ink = (wide[top:, :right] != 20).any(axis=2)  # the letters, anti-aliased, on the dark band
    assert (wide[top:, :right] > 200).all(axis=2).any()
    assert not ink[:, -1].any(), "a letter runs into the panel's right edge"


def test_a_side_view_render_captions_the_video_panel_only():
    """pedestrians.avi is 768 px wide: the caption wrapped to the two panels' 1536 px ran 878
    px into the side panel. Now it wraps within the video's 768 px, and the side panel is
    the side view's alone."""
    from strcli.body.camera import Intrinsics
    from strcli.render.overlay import SIDE_BACKGROUND, RenderOptions, _draw_frame

    frame = np.full((576, 768, 3), (200, 40, 90), np.uint8)
    options = RenderOptions(side_view=True, video=False, frames=(0,))
    drawn = _draw_frame(frame, [], torch.zeros((1, 3), dtype=torch.long), Intrinsics(700.0, 768, 576), options,
                        caption=CAVEAT)
    assert drawn.shape == (576, 1536, 3)
    assert (drawn[:, 768:] == SIDE_BACKGROUND).all()  # no caption in the side panel
    changed = (drawn[:, :768] != (200, 40, 90)).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert xs.max() < 767 and ys.min() > 0.75 * 576  # the band at the bottom, inside the video's columns
    assert (drawn[:, :768] > 200).all(axis=2).sum() > 1500  # its text


def test_render_burns_the_caveat_into_the_frames(reconstructed, assets):
    """The mean-predicting STR with a random ResNet-50 (no SPIN file): the frames say so; the
    same folder whose manifest records trained weights draws the same bodies with no caption."""
    run, smpl = reconstructed
    folder = run(assets / "videos" / "running.mp4", assets / "detections" / "running.det.txt", "--end", 3)

    def render():
        result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu",
                                     "--frames", "1", "--no-video", "-q"])
        assert result.exit_code == 0, result.output
        return cv2.cvtColor(cv2.imread(str(folder / "frames" / "000001.png")), cv2.COLOR_BGR2RGB)

    manifest = json.loads((folder / "manifest.json").read_text())
    assert [w["note"] for w in manifest["weights"] if w["name"] == "backbone"] == ["random init (seed 0)"]
    captioned = render()
    for used in manifest["weights"]:
        if used["name"] == "backbone":
            used.update(path=str(folder / "spin.pt"), note="SPIN ResNet-50")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    plain = render()
    differs = (captioned != plain).any(axis=2)
    ys, xs = np.nonzero(differs)
    height, width = plain.shape[:2]
    assert ys.min() > 0.9 * height and xs.min() < 10  # the band at the bottom left, nothing else
    assert 400 < xs.max() < width  # as wide as its text
    band = captioned[ys.min():, :xs.max()]
    assert (band < 40).all(axis=2).mean() > 0.5 and (band > 200).all(axis=2).mean() > 0.04  # white on dark


def _standing(centre, samples=8, rng=None):
    """(samples, 200, 3) points of a 0.5 x 1.7 x 0.3 m box person around `centre` (camera
    frame, y down, metres), walking 1 m to the right over the samples."""
    rng = rng or np.random.default_rng(0)
    box = (rng.random((200, 3)) - 0.5) * np.array([0.5, 1.7, 0.3])
    steps = np.linspace(0, 1, samples)[:, None, None] * np.array([1.0, 0, 0])
    return torch.tensor(box[None] + np.array(centre) + steps, dtype=torch.float32)


def test_the_side_view_frames_the_crowd_not_the_farthest_person():
    """pedestrians.avi's shape: a crowd 6 to 15 m away and one person 56 m away. The side view
    (depth across the panel) must show the crowd whole and large; the far one may leave it."""
    from strcli.render.overlay import SIDE_MARGIN, bulk_bodies, side_framing

    rng = np.random.default_rng(1)
    crowd = [_standing((x, 1.0, z), rng=rng) for x, z in zip(np.linspace(-3, 3, 10), np.linspace(6, 15, 10))]
    far = _standing((2.0, 1.0, 56.0), rng=rng)
    bodies = torch.cat([*crowd, far])
    assert bulk_bodies(bodies).tolist() == [True] * 80 + [False] * 8
    width, height = 640, 480
    framing = side_framing(bodies, width, height)
    heights = []
    for person in crowd:
        xy, depth = project_vertices(framing.apply(person.reshape(-1, 3)), framing.intrinsics)
        assert (depth > 0).all()
        assert xy[:, 0].min() >= 0.5 * SIDE_MARGIN * width and xy[:, 0].max() <= (1 - 0.5 * SIDE_MARGIN) * width
        assert xy[:, 1].min() >= 0.5 * SIDE_MARGIN * height and xy[:, 1].max() <= (1 - 0.5 * SIDE_MARGIN) * height
        heights.append(float(xy[:, 1].max() - xy[:, 1].min()))
    # Of a useful size: the crowd spans ~10 m of depth across the panel, so a 1.7 m person
    # is over a tenth of its height (framing all 50 m would make it ~3%).
    assert min(heights) > 0.1 * height
    # A crowd without a far-off person keeps everyone in the framing (tested whole in
    # test_first_hour's side-view test).
    assert bulk_bodies(torch.cat(crowd)).all()


def test_the_side_view_draws_the_floor_under_each_body_at_its_own_depth():
    """A camera 1.6 m above the floor, looking 20 degrees down: a person standing on the
    floor 6 m away stands on their floor line in the side panel; one floating 0.5 m up, 9 m
    away, is above theirs by the projection of 0.5 m; the band is the floor's, not the air's."""
    from scipy.spatial.transform import Rotation

    from strcli.render.overlay import (SIDE_BACKGROUND, SIDE_FLOOR, Floor, draw_floor, side_framing,
                                       side_view)

    to_world = Rotation.from_euler("x", -20, degrees=True).as_matrix() @ np.diag([1.0, -1.0, -1.0])
    camera = np.array([0.0, 1.6, 0.0])  # camera.npz's position: its y is the height above the floor
    floor = Floor(tuple(to_world[1]), float(camera[1]))
    rng = np.random.default_rng(0)

    def person(x, z, lift):
        """(400, 3) camera-frame points of a 0.5 x 1.7 x 0.3 m box person, its sole `lift` m up."""
        box = (rng.random((400, 3)) - [0.5, 0.0, 0.5]) * [0.5, 1.7, 0.3]
        box[:50, 1] = 0.0  # its sole
        world = box + [x, lift, z]
        return (world - camera) @ to_world  # world -> camera: the inverse rotation
    standing, floating = person(0.3, -6.0, 0.0), person(-0.4, -9.0, 0.5)
    framing = side_framing(torch.tensor(np.stack([standing, floating]), dtype=torch.float32), 768, 576)
    people = [Person(k, torch.tensor(v, dtype=torch.float32), np.zeros((24, 2))) for k, v in enumerate((standing, floating))]
    seen = side_view(people, framing)
    panel = np.full((576, 768, 3), SIDE_BACKGROUND, np.uint8)
    draw_floor(panel, floor, framing, seen)
    intr = framing.intrinsics

    def pixel(points):
        """(N, 3) side-camera points -> (N, 2) int pixel (column, row)."""
        uv, _ = project_vertices(torch.tensor(points, dtype=torch.float32), intr)
        return np.floor(uv.numpy()).astype(int)

    def dark_rows(column):
        return np.nonzero(panel[:, column, 0] < 150)[0]

    for k, lift in ((0, 0.0), (1, 0.5)):
        points = seen[k].vertices.numpy()
        sole = pixel(points[:50].mean(0, keepdims=True))[0]
        lines = dark_rows(sole[0])
        assert len(lines) and lines.max() - lines.min() <= 4  # one thin line under the body
        depth = points[:, 2].mean()
        # the lift, seen from the side camera at the body's depth, measured down the column to a floor
        # line tilted as the camera is (20 degrees): f lift / (depth cos 20)
        expected = intr.focal * lift / (depth * np.cos(np.radians(20)))
        assert abs(lines.mean() - sole[1] - expected) < 2.5, (k, lines.mean(), sole[1], expected)
    assert expected > 20  # the floating person is visibly off its line
    # the band: floor under the bodies is in it, a point a metre up is not
    up = np.array(floor.up) @ np.array(((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0))).T  # world up, side axes
    soles = pixel(np.concatenate([seen[0].vertices.numpy()[:50], seen[1].vertices.numpy()[:50] - 0.5 * up]))
    band = (panel != SIDE_BACKGROUND).any(axis=2)  # the floor's grey and the lines on it
    assert band[soles[:, 1], soles[:, 0]].all()
    assert (panel == SIDE_FLOOR).all(axis=2).mean() > 0.01
    above = pixel(seen[0].vertices.numpy()[:50] + up)
    assert not band[above[:, 1], above[:, 0]].any()
    assert (panel == SIDE_BACKGROUND).all(axis=2).mean() > 0.5  # the air is left as it was
