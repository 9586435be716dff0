"""TCMR and VIBE: files in the released layout load strictly, compute what the papers'
models compute, and run through reconstruct, evaluate, render --compare and weights import."""

import io
import json
import zipfile

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from published_checkpoints import gen_state_dict, smpl_copy, write_released
from strcli.model.checkpoints import read_checkpoint_file
from strcli.cli.main import app
from strcli.utils.errors import CorruptAssetError, UsageError
from strcli.model.regressor import MeanParams
from strcli.model.published import load_published, load_temporal, recognise
from strcli.road.windows import StreamingWindows, predict_sequences
from strcli.road.assets import import_file

runner = CliRunner()


@pytest.fixture(scope="module")
def released(tmp_path_factory, assets):
    root = tmp_path_factory.mktemp("released")
    mean = MeanParams.from_npz(assets / "smpl_helpers" / "smpl_mean_params.npz")
    return {"root": root, "mean": mean,
            "tcmr": write_released(root / "tcmr_demo_model.pth.tar", "tcmr", mean, seed=1),
            "vibe": write_released(root / "vibe_model_wo_3dpw.pth.tar", "vibe", mean, seed=2)}


def _gru_reference(x, p, prefix, layers, bidirectional):
    """PyTorch's GRU equations written out, sequence first: x (T, B, C) -> (T, B, D*H)."""
    out = x
    for layer in range(layers):
        directions = []
        for suffix in ([""] + (["_reverse"] if bidirectional else [])):
            w_ih, w_hh = p[f"{prefix}.weight_ih_l{layer}{suffix}"], p[f"{prefix}.weight_hh_l{layer}{suffix}"]
            b_ih, b_hh = p[f"{prefix}.bias_ih_l{layer}{suffix}"], p[f"{prefix}.bias_hh_l{layer}{suffix}"]
            h = torch.zeros(out.shape[1], w_hh.shape[1], dtype=torch.float64)
            steps = range(out.shape[0] - 1, -1, -1) if suffix else range(out.shape[0])
            ys = [None] * out.shape[0]
            for t in steps:
                gi, gh = out[t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
                r = torch.sigmoid(gi[:, : len(h[0])] + gh[:, : len(h[0])])
                z = torch.sigmoid(gi[:, len(h[0]) : 2 * len(h[0])] + gh[:, len(h[0]) : 2 * len(h[0])])
                n = torch.tanh(gi[:, 2 * len(h[0]) :] + r * gh[:, 2 * len(h[0]) :])
                h = (1 - z) * n + z * h
                ys[t] = h
            directions.append(torch.stack(ys))
        out = torch.cat(directions, dim=-1)
    return out


def test_released_files_load_strictly_and_are_recognised(released):
    for kind in ("tcmr", "vibe"):
        raw = read_checkpoint_file(released[kind])  # legacy format, numpy score: no code runs
        assert recognise(raw) == kind and isinstance(raw["performance"], np.floating)
        loaded = load_published(released[kind], kind)
        assert loaded.meta == {"epoch": 29, "performance": pytest.approx(52.7 if kind == "tcmr" else 56.5)}
        assert loaded.smpl_copy_keys == len(smpl_copy())
        expected = {k: v for k, v in gen_state_dict(kind, released["mean"], seed=1 if kind == "tcmr" else 2).items()
                    if not k.startswith("regressor.smpl.")}
        state = loaded.model.state_dict()
        assert set(state) == set(expected) and all(torch.equal(state[k], expected[k]) for k in expected)
    with pytest.raises(CorruptAssetError, match="is a VIBE checkpoint, not a TCMR checkpoint"):
        load_published(released["vibe"], "tcmr")
    with pytest.raises(CorruptAssetError, match="is a TCMR checkpoint, not a strcli STR checkpoint"):
        load_temporal(released["tcmr"], "str")


def test_a_missing_or_renamed_key_is_named(released, tmp_path):
    state = gen_state_dict("tcmr")
    del state["encoder.gru_bef.weight_hh_l1"]
    write_released(tmp_path / "missing.pth.tar", "tcmr", state=state)
    with pytest.raises(CorruptAssetError, match=r"missing keys: encoder\.gru_bef\.weight_hh_l1"):
        load_published(tmp_path / "missing.pth.tar", "tcmr")
    state = gen_state_dict("vibe")
    state["encoder.linear_out.weight"] = state.pop("encoder.linear.weight")
    write_released(tmp_path / "renamed.pth.tar", "vibe", state=state)
    with pytest.raises(CorruptAssetError, match=r"missing keys: encoder\.linear\.weight.*unexpected keys: "
                                                r"encoder\.linear_out\.weight"):
        load_published(tmp_path / "renamed.pth.tar", "vibe")
    state = gen_state_dict("vibe")
    state["encoder.linear.weight"] = state["encoder.linear.weight"][:, :512]
    write_released(tmp_path / "narrow.pth.tar", "vibe", state=state)
    with pytest.raises(CorruptAssetError, match=r"encoder\.linear\.weight \(2048, 512\) in the file vs \(2048, 1024\)"):
        load_published(tmp_path / "narrow.pth.tar", "vibe")


def test_tcmr_and_vibe_compute_what_the_papers_describe(released):
    torch.manual_seed(0)
    x = torch.randn(2, 16, 2048, dtype=torch.float64)
    tcmr = load_published(released["tcmr"], "tcmr").model.double()
    p = {k: v.double() for k, v in tcmr.state_dict().items()}
    seq = x.transpose(0, 1)  # (T, B, C)
    cur = _gru_reference(seq, p, "encoder.gru_cur", 2, True)[8]  # the middle frame, both directions
    bef = _gru_reference(seq[:8], p, "encoder.gru_bef", 2, False)[-1]  # frames 0..7
    aft = _gru_reference(seq[9:].flip(0), p, "encoder.gru_aft", 2, False)[-1]  # frames 15..9
    branches = torch.stack([torch.relu(bef) @ p["encoder.linear_bef.weight"].T + p["encoder.linear_bef.bias"],
                            torch.relu(cur) @ p["encoder.linear_cur.weight"].T + p["encoder.linear_cur.bias"],
                            torch.relu(aft) @ p["encoder.linear_aft.weight"].T + p["encoder.linear_aft.bias"]], 1)
    h = (branches @ p["encoder.attention.fc.weight"].T + p["encoder.attention.fc.bias"]).reshape(2, -1)
    for i in (0, 2, 4):
        h = torch.tanh(h @ p[f"encoder.attention.attention.{i}.weight"].T + p[f"encoder.attention.attention.{i}.bias"])
    fused = (branches * h.softmax(-1)[:, :, None]).sum(1)
    with torch.inference_mode():
        assert torch.allclose(tcmr.encoder(x), fused, atol=1e-9)
        assert tcmr(x).betas.shape == (2, 10)  # one prediction per window
    vibe = load_published(released["vibe"], "vibe").model.double()
    p = {k: v.double() for k, v in vibe.state_dict().items()}
    y = torch.relu(_gru_reference(seq, p, "encoder.gru", 2, False)) @ p["encoder.linear.weight"].T
    with torch.inference_mode():
        assert torch.allclose(vibe.encoder(x), (y + p["encoder.linear.bias"] + seq).transpose(0, 1), atol=1e-9)
        assert vibe(x).betas.shape == (2, 16, 10)  # every frame


def test_tcmr_gives_every_frame_the_centre_of_its_own_window(released):
    """TCMR's convention (its demo's FeatureDataset): frame t's window is t-8 .. t+7, the
    first 8 and last 7 frames get 16 copies of themselves; streamed or not, every frame gets
    exactly the prediction of its own window."""
    model = load_published(released["tcmr"], "tcmr").model
    torch.manual_seed(3)
    features = [torch.randn(21, 2048), torch.randn(5, 2048)]
    merged = predict_sequences(model, features, batch_size=7)
    for f, pred in zip(features, merged):
        n = len(f)
        inside = (torch.arange(n) >= 8) & (torch.arange(n) <= n - 8)
        index = torch.where(inside[:, None], torch.arange(n)[:, None] + torch.arange(-8, 8)[None],
                            torch.arange(n)[:, None].expand(n, 16))
        with torch.inference_mode():
            direct = model(f[index])
        assert pred.betas.shape == (n, 10) and torch.allclose(pred.betas, direct.betas, atol=1e-5)
        assert torch.allclose(pred.rotmat, direct.rotmat, atol=1e-5)
    stream = StreamingWindows(model, [21, 5], batch_size=4)
    got: dict[int, list] = {0: [], 1: []}
    for s, f in enumerate(features):
        for row in f:
            for final in stream.add(s, row[None]):
                got[final.sequence].append(final)
    for final in stream.flush():
        got[final.sequence].append(final)
    for s, pred in enumerate(merged):
        betas = torch.cat([g.prediction.betas for g in sorted(got[s], key=lambda g: g.first)])
        assert torch.allclose(betas, pred.betas, atol=1e-5)


def test_weights_import_recognises_released_files_by_structure(released, tmp_path):
    state = import_file(released["tcmr"])
    assert state.asset.name == "tcmr_demo" and state.path.name == "tcmr_demo_model.pth.tar"
    renamed = tmp_path / "vibe_model_w_3dpw.pth.tar"
    renamed.write_bytes(released["vibe"].read_bytes())
    assert import_file(renamed).asset.name == "vibe_w_3dpw"
    anonymous = write_released(tmp_path / "downloaded.pt", "vibe", seed=9)  # bytes not seen before
    with pytest.raises(UsageError, match="is a VIBE checkpoint.*--name with one of: vibe_wo_3dpw, vibe_w_3dpw"):
        import_file(anonymous)
    assert import_file(anonymous, name="vibe_wo_3dpw").path.name == "vibe_model_wo_3dpw.pth.tar"
    liar = write_released(tmp_path / "tcmr_table4_3dpw_test.pth.tar", "vibe", seed=10)  # VIBE under a TCMR name
    with pytest.raises(CorruptAssetError, match="is a VIBE checkpoint, not a TCMR checkpoint"):
        import_file(liar)
    result = runner.invoke(app, ["weights", "import", str(anonymous), "--name", "tcmr_demo"])
    assert result.exit_code == 4 and "is a VIBE checkpoint, not a TCMR checkpoint" in result.output


def _reconstruct(workspace_args, *args):
    return runner.invoke(app, [*workspace_args, *map(str, args)])


@pytest.fixture(scope="module")
def compared(released, assets, smpl_files, tmp_path_factory):
    """running.mp4, frames 0..39, through STR (untrained), TCMR and VIBE (released layout)."""
    root = tmp_path_factory.mktemp("compare")
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STRCLI_WEIGHTS_DIR", str(root / "weights"))
        mp.setenv("STRCLI_CACHE_DIR", str(root / "cache"))
        base = ["reconstruct", "--smpl-dir", str(smpl_files["chumpy"].parent), "--offline", "--device", "cpu",
                "--untrained", "--batch-size", "16", "--detections", str(assets / "detections" / "running.det.txt")]
        result = _reconstruct(base, assets / "videos" / "running.mp4", "-o", out, "--end", 40, "--model",
                              "str,tcmr,vibe", "--checkpoint", released["tcmr"], "--checkpoint", released["vibe"],
                              "--mesh-format", "none", "--json")
        yield {"base": base, "out": out, "result": result, "root": root}


def test_reconstruct_writes_every_models_results_one_prediction_per_frame(compared):
    assert compared["result"].exit_code == 0, compared["result"].output
    folder = compared["out"] / "running"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["str", "tcmr", "vibe"]
    assert [m["folder"] for m in manifest["models"]] == [".", "models/tcmr", "models/vibe"]
    assert manifest["models"][0]["tracks"] == manifest["tracks"]
    notes = {w["name"]: w["note"] for w in manifest["weights"]}
    assert notes["tcmr"] == "TCMR checkpoint, epoch 29" and notes["vibe"] == "VIBE checkpoint, epoch 29"
    results = {}
    for model in manifest["models"]:
        (summary,) = model["tracks"]
        with np.load(folder / model["folder"] / summary["npz"]) as npz:
            assert npz["frames"].tolist() == list(range(40))  # one prediction for every frame
            assert np.isfinite(npz["body_pose"]).all() and np.isfinite(npz["transl"]).all()
            results[model["name"]] = {k: npz[k] for k in ("body_pose", "betas", "boxes")}
    assert np.array_equal(results["str"]["boxes"], results["tcmr"]["boxes"])  # one tracking for all
    assert not np.allclose(results["str"]["body_pose"], results["tcmr"]["body_pose"])
    assert not np.allclose(results["tcmr"]["betas"], results["vibe"]["betas"])


def test_render_compare_draws_the_models_side_by_side(compared, smpl_files):
    assert compared["result"].exit_code == 0, compared["result"].output
    folder = compared["out"] / "running"
    result = runner.invoke(app, ["render", str(folder), "--compare", "--smpl-dir", str(smpl_files["chumpy"].parent),
                                 "--device", "cpu", "-q", "--preset", "ultrafast", "--frames", "20"])
    assert result.exit_code == 0, result.output
    with av.open(str(folder / "compare.mp4")) as video:
        stream = video.streams.video[0]
        assert (stream.width, stream.height) == (3 * 1920, 1088)
        assert sum(1 for _ in video.decode(stream)) == 40
    import cv2

    image = cv2.imread(str(folder / "frames" / "000020.png"))
    for panel in range(3):
        corner = image[5:20, panel * 1920 + 2 : panel * 1920 + 10]
        assert corner.mean() < 40  # the label's dark box in each panel's corner
        assert image[20:40, panel * 1920 : panel * 1920 + 120].max() > 200  # and white letters on it
    single = runner.invoke(app, ["render", str(compared["out"] / "running"), "--compare", "--side-view",
                                 "--smpl-dir", str(smpl_files["chumpy"].parent)])
    assert single.exit_code == 2 and "--compare and --side-view" in single.output


def test_each_compare_panel_is_that_models_own_render(compared, smpl_files, tmp_path):
    """Panel k of --compare is what `strcli render` draws of model k alone (its label's corner
    aside): on a CPU the panels once all showed every model's bodies and the last label."""
    import shutil

    import cv2

    folder = compared["out"] / "running"
    smpl = str(smpl_files["chumpy"].parent)
    result = runner.invoke(app, ["render", str(folder), "--compare", "--smpl-dir", smpl, "--device", "cpu", "-q",
                                 "--no-video", "--frames", "12"])
    assert result.exit_code == 0, result.output
    both = cv2.imread(str(folder / "frames" / "000012.png"))
    manifest = json.loads((folder / "manifest.json").read_text())
    alone = []
    for model in manifest["models"]:  # a copy of the folder holding this model's tracks only
        copy = tmp_path / model["name"] / "running"
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("frames", "*.mp4"))
        tracks = [dict(t, npz=f"{model['folder']}/{t['npz']}") for t in model["tracks"]]
        (copy / "manifest.json").write_text(json.dumps(dict(manifest, tracks=tracks, models=[])))
        one = runner.invoke(app, ["render", str(copy), "--smpl-dir", smpl, "--device", "cpu", "-q", "--no-video",
                                  "--frames", "12"])
        assert one.exit_code == 0, one.output
        alone.append(cv2.imread(str(copy / "frames" / "000012.png")))
    label = np.zeros(alone[0].shape[:2], bool)
    label[:100, :300] = True  # the name's box in the corner
    label[-100:, :] = True  # the "test only" caption (untrained networks): the copies' manifests name STR's too
    for k, image in enumerate(alone):
        panel = both[:, k * 1920:(k + 1) * 1920]
        assert np.array_equal(panel[~label], image[~label]), manifest["models"][k]["name"]
    for a in range(3):  # and the models' bodies differ, so the panels do
        for b in range(a + 1, 3):
            assert (np.abs(alone[a].astype(int) - alone[b]).sum(2) > 30).sum() > 500


def test_wrong_files_for_a_model_say_what_they_are(compared, released, assets, tmp_path):
    video = assets / "videos" / "running.mp4"
    wrong = _reconstruct(compared["base"], video, "-o", tmp_path, "--end", 16, "--model", "tcmr",
                         "--checkpoint", released["vibe"])
    assert wrong.exit_code == 4 and "is a VIBE checkpoint, not a TCMR checkpoint" in wrong.output
    extra = _reconstruct(compared["base"], video, "-o", tmp_path, "--end", 16, "--model", "str,vibe",
                         "--checkpoint", released["tcmr"])
    assert extra.exit_code == 2 and "is a TCMR checkpoint, but --model is str,vibe" in extra.output
    bad = _reconstruct(compared["base"], video, "-o", tmp_path, "--model", "str,hmr")
    assert bad.exit_code == 2 and "--model str,hmr" in bad.output


def test_tcmr_demo_is_fetched_from_its_archive_on_first_use(released, assets, smpl_files, tmp_path, monkeypatch):
    import tomllib

    from test_features import write_spin_checkpoint
    from test_weights import FileServer

    from strcli.weights.registry import manifest_path

    spin = tmp_path / "spin.pt"
    write_spin_checkpoint(spin, assets)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("base_data/smpl_mean_params.npz", (assets / "smpl_helpers" / "smpl_mean_params.npz").read_bytes())
        zf.writestr("base_data/tcmr_demo_model.pth.tar", released["tcmr"].read_bytes())
    server = FileServer()
    server.files["/base_data.zip"] = archive.getvalue()
    try:
        real = tomllib.loads(manifest_path().read_text())
        text = manifest_path().read_text().replace(real["assets"]["tcmr_demo"]["urls"][0], f"{server.url}/base_data.zip")
        (tmp_path / "manifest.toml").write_text(text)
        monkeypatch.setenv("STRCLI_MANIFEST", str(tmp_path / "manifest.toml"))
        result = runner.invoke(app, ["reconstruct", str(assets / "videos" / "running.mp4"), "-o", str(tmp_path / "out"),
                                     "--model", "tcmr", "--backbone", str(spin), "--end", "12", "--mesh-format", "none",
                                     "--detections", str(assets / "detections" / "running.det.txt"),
                                     "--smpl-dir", str(smpl_files["chumpy"].parent), "--device", "cpu", "-q"])
        assert result.exit_code == 0, result.output
        fetched = tmp_path / "weights" / "tcmr" / "tcmr_demo_model.pth.tar"
        assert fetched.read_bytes() == released["tcmr"].read_bytes()
        manifest = json.loads((tmp_path / "out" / "running" / "manifest.json").read_text())
        tcmr = next(w for w in manifest["weights"] if w["name"] == "tcmr")
        assert tcmr["path"] == str(fetched.resolve()) and [m["name"] for m in manifest["models"]] == ["tcmr"]
    finally:
        server.close()


def test_evaluate_scores_a_published_checkpoint(released, assets, smpl_files, tmp_path, monkeypatch):
    from generated_dataset import write_set

    from strcli.body.smpl import Body
    from strcli.train.data import FILES
    from strcli.train.evaluate import score_dataset
    from strcli.train.data import eval_videos

    body = Body.from_file(smpl_files["chumpy"], assets / "smpl_helpers" / "J_regressor_h36m.npy")
    data = tmp_path / "data"
    write_set(body, data / FILES[("3dpw", "test")], "3dpw", "test", 2, 20, seed=5)
    for name in ("smpl_mean_params.npz", "J_regressor_h36m.npy"):
        assert runner.invoke(app, ["weights", "import", str(assets / "smpl_helpers" / name)]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "--data-dir", str(data), "--checkpoint", str(released["tcmr"]),
                                 "--model", "tcmr", "--smpl-dir", str(smpl_files["chumpy"].parent), "--device",
                                 "cpu", "--offline", "-q", "--json-out", str(tmp_path / "tcmr.json")])
    assert result.exit_code == 0, result.output
    assert "TCMR" in result.stdout and "3DPW" in result.stdout
    scores = json.loads((tmp_path / "tcmr.json").read_text())
    model = load_published(released["tcmr"], "tcmr").model
    expected = score_dataset(model, body, "3dpw", eval_videos("3dpw", data / FILES[("3dpw", "test")]),
                             torch.device("cpu"))
    assert scores["meta"]["model"] == "tcmr" and scores["datasets"][0]["mpjpe"] == pytest.approx(expected.mpjpe, rel=1e-4)
    wrong = runner.invoke(app, ["evaluate", "--data-dir", str(data), "--checkpoint", str(released["vibe"]),
                                "--model", "tcmr", "--smpl-dir", str(smpl_files["chumpy"].parent), "--offline"])
    assert wrong.exit_code == 4 and "is a VIBE checkpoint, not a TCMR checkpoint" in wrong.output
