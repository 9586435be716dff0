"""`--model spin`: Table 1's per-frame baseline through strcli's road, checked against SPIN's
own computation (github nkolot/SPIN, models/hmr.py `HMR.forward`, utils/geometry.py
`rot6d_to_rotmat`), written here from its equations, on the same crops.

The SPIN file is in the layout SPIN released ({"model": HMR state dict, ...}) with random
weights: nothing here is a trained model."""

import json

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from typer.testing import CliRunner

from strcli.cli.main import app
from strcli.model.published import load_published, load_temporal
from strcli.model.regressor import MeanParams, Regressor
from strcli.model.spin import SPIN
from strcli.road.crops import crop_images, square_boxes
from strcli.road.features import Backbone, FeatureExtractor, load_spin_backbone
from strcli.road.windows import predict_sequences

runner = CliRunner()


@pytest.fixture(scope="module")
def spin_file(tmp_path_factory, assets):
    """SPIN's released layout: torchvision's ResNet-50 names without fc, then the regressor's."""
    torch.manual_seed(7)
    resnet = torchvision.models.resnet50(weights=None)
    regressor = Regressor(2048, mean_params=MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz"))
    for head in (regressor.decpose, regressor.decshape, regressor.deccam):  # away from the mean: a real test
        torch.nn.init.normal_(head.weight, std=0.01)
    state = {k: v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    state.update(regressor.state_dict())
    path = tmp_path_factory.mktemp("spin") / "model_checkpoint.pt"
    torch.save({"model": state, "epoch": 3, "total_step_count": 1000}, path)
    return path


def running_crops(assets, frames=6):
    """Crops of the first `frames` frames of running.mp4 around its detections (the road's crops)."""
    rows = np.loadtxt(assets / "detections" / "running.det.txt", delimiter=",")[:frames]
    with av.open(str(assets / "videos" / "running.mp4")) as video:
        images = [f.to_ndarray(format="rgb24") for _, f in zip(range(frames), video.decode(video=0))]
    xyxy = torch.tensor(np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], dtype=torch.float32)
    return crop_images(torch.from_numpy(np.stack(images)), torch.arange(frames), square_boxes(xyxy))


def spin_reference(state, crops, n_iter=3):
    """SPIN's HMR.forward in eval mode, from its equations: ResNet-50 trunk (conv1, bn1, relu,
    maxpool, layer1..4, 7x7 average pool), then n_iter times x_c = [x_f, pose, shape, cam],
    fc1, (dropout), fc2, (dropout), pose += decpose, shape += decshape, cam += deccam, from the
    init_* buffers; rotations: the 6D vector read as a 3x2 matrix (view(-1, 3, 2)), its
    columns a1, a2 -> b1 = a1/|a1|, b2 = normalise(a2 - (b1.a2) b1), b3 = b1 x b2, columns."""
    trunk = torchvision.models.resnet50(weights=None)  # HMR's trunk: torchvision's layout and names
    trunk.fc = torch.nn.Identity()
    trunk.load_state_dict({k: v for k, v in state.items() if not k.startswith(("fc1", "fc2", "dec", "init_"))})
    trunk.eval()
    with torch.no_grad():
        x = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(crops))))
        x = trunk.layer4(trunk.layer3(trunk.layer2(trunk.layer1(x))))
        xf = F.avg_pool2d(x, 7).view(x.shape[0], -1)  # (N, 2048)
        rotmat, shape, cam = spin_regressor_only(state, xf, n_iter)
    return xf, rotmat, shape, cam


def test_spin_model_equals_spins_own_computation_on_the_same_crops(spin_file, assets):
    crops = running_crops(assets)
    state = torch.load(spin_file, weights_only=True)["model"]
    ref_features, ref_rotmat, ref_shape, ref_cam = spin_reference(state, crops)

    backbone = Backbone()
    load_spin_backbone(backbone, spin_file)
    features = FeatureExtractor(backbone, "cpu")(crops)  # the road's features (fp32 on a CPU)
    assert torch.allclose(features, ref_features, rtol=1e-4, atol=1e-5)
    spin = load_published(spin_file, "spin").model
    assert isinstance(spin, SPIN) and not spin.training
    # The road's windows (16 frames, stride 8, padded short track): each frame its own prediction.
    (pred,) = predict_sequences(spin, [features])
    assert pred.rotmat.shape == (6, 24, 3, 3)
    assert torch.allclose(pred.rotmat, ref_rotmat, atol=1e-4)
    assert torch.allclose(pred.betas, ref_shape, atol=1e-4) and torch.allclose(pred.cam, ref_cam, atol=1e-4)
    # On the same features the regressor is SPIN's to float rounding.
    with torch.no_grad():
        same = spin(ref_features)
    rotmat, shape, cam = spin_regressor_only(state, ref_features)
    assert torch.allclose(same.rotmat, rotmat, atol=1e-6) and torch.allclose(same.betas, shape, atol=1e-6)
    assert torch.allclose(same.cam, cam, atol=1e-6)
    assert not torch.allclose(ref_shape, state["init_shape"].expand_as(ref_shape), atol=1e-3)  # not the mean body


def spin_regressor_only(state, xf, n_iter=3):
    """The regressor half of `spin_reference` on given features."""
    n = xf.shape[0]
    pose, shape, cam = (state[k].expand(n, -1) for k in ("init_pose", "init_shape", "init_cam"))
    for _ in range(n_iter):
        xc = torch.cat([xf, pose, shape, cam], 1)
        xc = F.linear(F.linear(xc, state["fc1.weight"], state["fc1.bias"]), state["fc2.weight"], state["fc2.bias"])
        pose = F.linear(xc, state["decpose.weight"], state["decpose.bias"]) + pose
        shape = F.linear(xc, state["decshape.weight"], state["decshape.bias"]) + shape
        cam = F.linear(xc, state["deccam.weight"], state["deccam.bias"]) + cam
    m = pose.reshape(-1, 3, 2)
    b1 = F.normalize(m[:, :, 0], dim=1)
    b2 = F.normalize(m[:, :, 1] - (b1 * m[:, :, 1]).sum(1, keepdim=True) * b1, dim=1)
    return torch.stack((b1, b2, torch.linalg.cross(b1, b2, dim=1)), dim=-1).view(n, 24, 3, 3), shape, cam


def test_spin_sees_one_frame_at_a_time(spin_file):
    spin = load_published(spin_file, "spin").model
    f = torch.randn(2, 16, 2048)
    with torch.no_grad():
        out = spin(f)
        shuffled = f.clone()
        shuffled[:, 1:] = f[:, 1:][:, torch.randperm(15)]
        assert torch.equal(spin(shuffled).betas[:, 0], out.betas[:, 0])
        assert torch.allclose(spin(f[:, 3]).rotmat, out.rotmat[:, 3], atol=1e-6)


def test_evaluate_model_spin_runs_under_the_same_protocol(spin_file, assets, smpl_files, tmp_path):
    from generated_dataset import write_set

    from strcli.body.smpl import Body
    from strcli.train.data import FILES, eval_videos
    from strcli.train.evaluate import predict_frames, score_dataset

    body = Body.from_file(smpl_files["chumpy"], assets / "smpl_helpers" / "J_regressor_h36m.npy")
    data = tmp_path / "data"
    write_set(body, data / FILES[("3dpw", "test")], "3dpw", "test", 2, 20, seed=5)
    for name in ("smpl_mean_params.npz", "J_regressor_h36m.npy"):
        assert runner.invoke(app, ["weights", "import", str(assets / "smpl_helpers" / name)]).exit_code == 0
    args = ["evaluate", "--data-dir", str(data), "--model", "spin", "--smpl-dir", str(smpl_files["chumpy"].parent),
            "--device", "cpu", "--offline", "-q"]
    missing = runner.invoke(app, args)  # without --checkpoint: the manifest's spin_checkpoint, not imported here
    assert missing.exit_code == 3 and "spin_checkpoint" in missing.output
    assert runner.invoke(app, ["weights", "import", str(spin_file), "--name", "spin_checkpoint"]).exit_code == 0
    result = runner.invoke(app, args + ["--json-out", str(tmp_path / "spin.json")])
    assert result.exit_code == 0, result.output
    assert "SPIN" in result.stdout and "3DPW" in result.stdout
    scores = json.loads((tmp_path / "spin.json").read_text())
    model, kind, _ = load_temporal(spin_file)
    videos = eval_videos("3dpw", data / FILES[("3dpw", "test")])
    expected = score_dataset(model, body, "3dpw", videos, torch.device("cpu"))  # the temporal models' scorer
    assert kind == "spin" and scores["meta"]["model"] == "spin"
    assert scores["datasets"][0]["mpjpe"] == pytest.approx(expected.mpjpe, rel=1e-5)
    assert scores["datasets"][0]["accel"] == pytest.approx(expected.accel, rel=1e-5) and expected.accel > 0
    # TCMR's windows (edge frames: 16 copies of themselves) give a per-frame model each frame's own output.
    features = torch.as_tensor(np.asarray(videos[0].features))
    windowed = predict_frames(model, features, torch.device("cpu"))
    with torch.no_grad():
        alone = model(features)
    assert torch.allclose(windowed.rotmat, alone.rotmat, atol=1e-6)
    again = runner.invoke(app, args + ["--checkpoint", str(spin_file), "--json-out", str(tmp_path / "again.json")])
    assert again.exit_code == 0 and json.loads((tmp_path / "again.json").read_text())["datasets"] == scores["datasets"]


def test_reconstruct_and_render_compare_with_spin(spin_file, assets, smpl_files, tmp_path):
    assert runner.invoke(app, ["weights", "import", str(spin_file), "--name", "spin_checkpoint"]).exit_code == 0
    out = tmp_path / "out"
    smpl = str(smpl_files["chumpy"].parent)
    result = runner.invoke(app, ["reconstruct", str(assets / "videos" / "running.mp4"), "-o", str(out), "--end", "20",
                                 "--model", "str,spin", "--untrained", "--smpl-dir", smpl, "--offline", "--device",
                                 "cpu", "--batch-size", "16", "--detections",
                                 str(assets / "detections" / "running.det.txt"), "--mesh-format", "none", "--json",
                                 "--precision", "fp32"])  # compared below with the fp32 features
    assert result.exit_code == 0, result.output
    folder = out / "running"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["str", "spin"]
    notes = {w["name"]: w["note"] for w in manifest["weights"]}
    assert notes["spin"] == "SPIN checkpoint, epoch 3 (its regressor)"
    spin_model = manifest["models"][1]
    (track,) = spin_model["tracks"]
    with np.load(folder / spin_model["folder"] / track["npz"]) as npz:
        assert npz["frames"].tolist() == list(range(20)) and np.isfinite(npz["body_pose"]).all()
        # SPIN's regressor on the road's features of frame 0, alone
        backbone = Backbone()
        load_spin_backbone(backbone, spin_file)
        crops = running_crops(assets, 1)
        with torch.no_grad():
            alone = load_published(spin_file, "spin").model(FeatureExtractor(backbone, "cpu")(crops))
        assert np.allclose(npz["betas"][0], alone.betas[0].numpy(), atol=1e-4)
    render = runner.invoke(app, ["render", str(folder), "--compare", "--smpl-dir", smpl, "--device", "cpu", "-q",
                                 "--preset", "ultrafast", "--frames", "5"])
    assert render.exit_code == 0, render.output
    with av.open(str(folder / "compare.mp4")) as video:
        assert video.streams.video[0].width == 2 * 1920
