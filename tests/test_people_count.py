"""Issue 16 item 1: nothing guesses a rotation representation from a shape.

Three people's axis-angles stacked are (3, 3), one body's rotation matrix is (3, 3): the
body model used to take the first for the second. Frames with 1 to 5 people are drawn,
1- to 5-frame sequences posed, through the real paths.
"""

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from strcli.body.smpl import Body
from strcli.cli.main import app
from strcli.body.rotations import axis_angle_to_rotmat
from strcli.train import metrics

runner = CliRunner()
WIDTH, HEIGHT, FRAMES = 640, 360, 10
# Five people side by side, 80 x 240 px each, 120 px apart: one box each, no overlap.
BOXES = [(40 + 120 * j, 60, 120 + 120 * j, 300) for j in range(5)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_body_poses_any_number_of_bodies_from_either_representation(smpl_files, count):
    body = Body.from_file(smpl_files["chumpy"])
    g = torch.Generator().manual_seed(count)
    go, bp = torch.randn(count, 3, generator=g) * 0.5, torch.randn(count, 69, generator=g) * 0.3
    betas = torch.randn(count, 10, generator=g)
    by_angle = body.axis_angle(go, bp, betas)
    by_matrix = body.rotmat(axis_angle_to_rotmat(go)[:, None], axis_angle_to_rotmat(bp.reshape(count, 23, 3)), betas)
    one_by_one = torch.cat([body.axis_angle(go[k:k + 1], bp[k:k + 1], betas[k:k + 1]).vertices for k in range(count)])
    assert by_angle.vertices.shape == (count, 6890, 3)
    assert torch.allclose(by_angle.vertices, one_by_one, atol=1e-5)
    assert torch.allclose(by_matrix.vertices, by_angle.vertices, atol=1e-5)
    # A shape that does not fit the named representation is refused, never reinterpreted.
    with pytest.raises(ValueError, match="global_orient"):
        body.rotmat(go, bp, betas)
    with pytest.raises(ValueError, match="global_orient"):
        body.axis_angle(axis_angle_to_rotmat(go)[:, None], bp, betas)
    with pytest.raises(TypeError):
        body(go, bp, betas)  # the representation must be said


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5])
def test_evaluation_scores_short_sequences(smpl_files, assets, frames):
    """What `score_dataset` does per sequence: the predicted body from rotation matrices,
    the ground-truth body (MPVPE) from axis-angles; a prediction equal to the truth scores 0."""
    from strcli.train.evaluate import lsp14

    body = Body.from_file(smpl_files["chumpy"], assets / "smpl_helpers" / "J_regressor_h36m.npy")
    g = torch.Generator().manual_seed(frames)
    pose = torch.randn(frames, 72, generator=g) * 0.3
    shape = torch.randn(frames, 10, generator=g)
    true = body.axis_angle(pose[:, :3], pose[:, 3:], shape)
    rotmat = axis_angle_to_rotmat(pose.reshape(frames, 24, 3))
    pred = body.rotmat(rotmat[:, :1], rotmat[:, 1:], shape)
    assert metrics.mpvpe(pred.vertices, true.vertices).shape == (frames,)
    assert float(metrics.mpvpe(pred.vertices, true.vertices).max()) < 1e-3  # mm
    joints = lsp14(pred)
    assert joints.shape == (frames, 14, 3)
    assert float(metrics.mpjpe(joints, lsp14(true), metrics.LSP_PELVIS).max()) < 1e-3
    moved = body.axis_angle(pose[:, :3], pose[:, 3:] + 0.2, shape)  # a different pose scores > 0
    assert float(metrics.mpvpe(moved.vertices, true.vertices).min()) > 1.0


def _five_people_clip(tmp_path):
    video = tmp_path / "crowd.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for _ in range(FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((HEIGHT, WIDTH, 3), 40, np.uint8),
                                                                   format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    dets = tmp_path / "crowd.det.txt"
    dets.write_text("".join(f"{f + 1},-1,{x1},{y1},{x2 - x1},{y2 - y1},0.9,-1,-1,-1\n"
                            for f in range(FRAMES) for x1, y1, x2, y2 in BOXES))
    return video, dets


def _frames(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_render_draws_every_person_on_frames_with_1_to_5_people(tmp_path, assets, smpl_files):
    from test_reconstruct import mean_checkpoint

    video, dets = _five_people_clip(tmp_path)
    smpl = smpl_files["chumpy"].parent
    result = runner.invoke(app, ["reconstruct", str(video), "-o", str(tmp_path / "out"), "--detections", str(dets),
                                 "--smpl-dir", str(smpl), "--checkpoint", str(mean_checkpoint(tmp_path / "m.pt", assets)),
                                 "--untrained", "--offline", "--device", "cpu", "--mesh-format", "none", "-q",
                                 "--min-track-length", "2"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "crowd"
    with np.load(folder / "tracks" / "0.npz") as data:
        assert len(data["frames"]) >= FRAMES - 1
    ids = sorted(int(p.stem) for p in (folder / "tracks").glob("*.npz"))
    assert len(ids) == 5
    box_of = {}
    for tid in ids:
        with np.load(folder / "tracks" / f"{tid}.npz") as data:
            centre = (data["boxes"][:, 0] + data["boxes"][:, 2]).mean() / 2
        box_of[tid] = min(range(5), key=lambda j: abs((BOXES[j][0] + BOXES[j][2]) / 2 - centre))
    assert sorted(box_of.values()) == list(range(5))
    for count in range(1, 6):
        drawn = ids[:count]
        result = runner.invoke(app, ["render", str(folder), "--smpl-dir", str(smpl), "--device", "cpu", "-q",
                                     "--tracks", ",".join(map(str, drawn))])
        assert result.exit_code == 0, result.output
        frames = _frames(folder / "overlay.mp4")
        assert len(frames) == FRAMES
        changed = np.abs(frames[FRAMES // 2].astype(int) - 40).sum(2) > 40  # (H, W)
        for tid in ids:
            x1, y1, x2, y2 = BOXES[box_of[tid]]
            inside = changed[y1:y2, x1:x2].sum()
            if tid in drawn:
                assert inside > 1500, (count, tid, inside)  # this person's body is drawn
            else:
                assert inside < 50, (count, tid, inside)  # and nobody else's


def test_readme_example_three_people_on_one_frame(tmp_path, assets, smpl_files):
    """The README's example: `reconstruct ... --render` on OpenCV's pedestrians clip, where
    from frame 405 on three tracks share frames."""
    from test_reconstruct import mean_checkpoint

    smpl = smpl_files["chumpy"].parent
    result = runner.invoke(app, ["reconstruct", str(assets / "videos" / "pedestrians.avi"), "-o", str(tmp_path / "out"),
                                 "--detections", str(assets / "detections" / "pedestrians.det.txt"),
                                 "--smpl-dir", str(smpl), "--checkpoint", str(mean_checkpoint(tmp_path / "m.pt", assets)),
                                 "--untrained", "--offline", "--device", "cpu", "--mesh-format", "none", "-q",
                                 "--start", "405", "--end", "425", "--render"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "pedestrians"
    per_frame: dict[int, list[np.ndarray]] = {}
    for path in (folder / "tracks").glob("*.npz"):
        with np.load(path) as data:
            for frame, box in zip(data["frames"].tolist(), data["boxes"]):
                per_frame.setdefault(frame, []).append(box)
    three = [f for f, boxes in sorted(per_frame.items()) if len(boxes) == 3]
    assert three, {f: len(b) for f, b in per_frame.items()}
    frames = _frames(folder / "overlay.mp4")
    with av.open(str(assets / "videos" / "pedestrians.avi")) as container:
        source = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0))
                  if three[0] <= i <= three[-1]}
    for frame in three:
        drawn = frames[frame - 405]
        changed = np.abs(drawn.astype(int) - source[frame]).sum(2) > 40
        for x1, y1, x2, y2 in per_frame[frame]:
            x1, y1 = max(int(x1), 0), max(int(y1), 0)
            assert changed[y1:int(y2), x1:int(x2)].sum() > 100, (frame, (x1, y1, x2, y2))
