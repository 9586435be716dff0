import pickle

import numpy as np
import pytest
import smplx
import torch

from strcli.body.smpl import (
    Body,
    find_smpl_file,
    load_smpl_arrays,
    read_smpl_pickle,
)
from strcli.config import H36M_TO_J14
from strcli.utils.errors import CorruptAssetError, MissingAssetError
from strcli.body.rotations import axis_angle_to_rotmat


def test_chumpy_pickle_reads_to_the_generated_arrays(smpl_files, smpl_arrays):
    data = read_smpl_pickle(smpl_files["chumpy"])
    for key, value in smpl_arrays.items():
        assert np.array_equal(np.asarray(data[key]), value), key
    assert data["bs_style"] == "lbs"


def test_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "SMPL_NEUTRAL.pkl"
    evil.write_bytes(pickle.dumps({"v_template": Exploit()}, protocol=2))
    with pytest.raises(CorruptAssetError, match="refusing to load"):
        read_smpl_pickle(evil)
    assert not marker.exists()


def test_truncated_pickle_is_a_clear_error(tmp_path, smpl_files):
    broken = tmp_path / "SMPL_NEUTRAL.pkl"
    broken.write_bytes(smpl_files["chumpy"].read_bytes()[:1000])
    with pytest.raises(CorruptAssetError, match="not a readable SMPL model"):
        read_smpl_pickle(broken)


def test_body_matches_smplx_own_forward_pass(smpl_files):
    body = Body.from_file(smpl_files["chumpy"])
    reference = smplx.SMPL(model_path=str(smpl_files["plain"]))  # smplx's own loader
    g = torch.Generator().manual_seed(0)
    global_orient = torch.randn(5, 3, generator=g) * 0.5
    body_pose = torch.randn(5, 69, generator=g) * 0.3
    betas = torch.randn(5, 10, generator=g)
    transl = torch.randn(5, 3, generator=g)
    ours = body.axis_angle(global_orient, body_pose, betas, transl)
    theirs = reference(global_orient=global_orient, body_pose=body_pose, betas=betas, transl=transl)
    assert ours.vertices.shape == (5, 6890, 3)
    assert ours.joints.shape == (5, 24, 3)
    assert torch.allclose(ours.vertices, theirs.vertices, atol=1e-6)
    assert torch.allclose(ours.joints, theirs.joints[:, :24], atol=1e-6)
    # Rotation matrices give the same bodies as axis-angle.
    by_matrix = body.rotmat(axis_angle_to_rotmat(global_orient)[:, None], axis_angle_to_rotmat(body_pose.reshape(5, 23, 3)),
                     betas, transl)
    assert torch.allclose(by_matrix.vertices, ours.vertices, atol=1e-5)


def test_rest_pose_is_template_plus_shape_blend(smpl_files, smpl_arrays):
    body = Body.from_file(smpl_files["chumpy"])
    betas = torch.zeros(1, 10)
    betas[0, 0] = 2.0
    out = body.axis_angle(torch.zeros(1, 3), torch.zeros(1, 69), betas)
    expected = smpl_arrays["v_template"] + 2.0 * smpl_arrays["shapedirs"][:, :, 0]
    assert np.allclose(out.vertices[0].numpy(), expected, atol=1e-5)
    joints = smpl_arrays["J_regressor"] @ expected
    assert np.allclose(out.joints[0].numpy(), joints, atol=1e-5)


def test_h36m_joints_from_the_real_regressor(smpl_files, assets):
    regressor_file = assets / "smpl_helpers" / "J_regressor_h36m.npy"
    body = Body.from_file(smpl_files["chumpy"], h36m_regressor=regressor_file)
    out = body.axis_angle(torch.zeros(2, 3), torch.randn(2, 69) * 0.2, torch.zeros(2, 10))
    regressor = np.load(regressor_file)
    expected = np.einsum("jv,nvc->njc", regressor, out.vertices.detach().numpy())
    assert out.joints_h36m.shape == (2, 17, 3)
    assert np.allclose(out.joints_h36m.detach().numpy(), expected, atol=1e-5)
    assert out.joints_lsp14.shape == (2, 14, 3)
    assert torch.equal(out.joints_lsp14[:, 0], out.joints_h36m[:, H36M_TO_J14[0]])


def test_faces_are_the_models(smpl_files, smpl_arrays):
    body = Body.from_file(smpl_files["chumpy"])
    assert body.faces.shape == (13776, 3)
    assert np.array_equal(body.faces, smpl_arrays["f"].astype(np.int64))


def test_pickle_is_converted_once_to_a_cached_npz(smpl_files, isolated_dirs, monkeypatch):
    first = load_smpl_arrays(smpl_files["chumpy"])
    cached = list((isolated_dirs / "cache" / "smpl").glob("SMPL_NEUTRAL-*.npz"))
    assert len(cached) == 1
    with np.load(cached[0], allow_pickle=False) as npz:
        assert npz["J_regressor"].shape == (24, 6890)

    def must_not_unpickle(path):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr("strcli.body.smpl.read_smpl_pickle", must_not_unpickle)
    second = load_smpl_arrays(smpl_files["chumpy"])
    assert np.array_equal(first.posedirs, second.posedirs)


def test_lookup_order_and_missing_message(tmp_path, smpl_files, monkeypatch):
    with pytest.raises(MissingAssetError) as info:
        find_smpl_file("neutral")  # nothing named, weights/smpl/ empty: the licence step
    message = str(info.value)
    assert "SMPL_NEUTRAL.pkl" in message and str(tmp_path / "weights" / "smpl") in message
    assert "smplify.is.tue.mpg.de" in message and "strcli weights import" in message

    weights_smpl = tmp_path / "weights" / "smpl"
    weights_smpl.mkdir(parents=True)
    (weights_smpl / "SMPL_NEUTRAL.pkl").write_bytes(b"w")
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl").write_bytes(b"e")
    flag_dir = tmp_path / "flag"
    flag_dir.mkdir()
    (flag_dir / "SMPL_NEUTRAL.pkl").write_bytes(b"f")
    assert find_smpl_file() == weights_smpl / "SMPL_NEUTRAL.pkl"
    monkeypatch.setenv("STRCLI_SMPL_DIR", str(env_dir))
    assert find_smpl_file() == env_dir / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    assert find_smpl_file(smpl_dir=flag_dir) == flag_dir / "SMPL_NEUTRAL.pkl"


def test_a_model_of_the_wrong_kind_is_refused(tmp_path, smpl_arrays):
    smplh_like = dict(smpl_arrays)
    smplh_like["weights"] = np.zeros((6890, 52))
    path = tmp_path / "SMPLH.npz"
    np.savez(path, **smplh_like)
    with pytest.raises(CorruptAssetError, match="weights has shape"):
        load_smpl_arrays(path)


def test_posing_many_frames_in_slices_equals_posing_them_at_once(smpl_files, monkeypatch):
    # pose_frames poses POSE_CHUNK frames per body-model call (bounded memory): same result
    import strcli.road.posing
    from strcli.body.camera import Intrinsics
    from strcli.model import MeanParams, Regressor

    torch.manual_seed(0)
    body = Body.from_file(smpl_files["chumpy"])
    regressor = Regressor(16, iterations=1, mean_params=MeanParams.neutral()).eval()
    for head in (regressor.decpose, regressor.decshape, regressor.deccam):
        torch.nn.init.normal_(head.weight, std=0.05)  # varied poses, shapes and cameras
    with torch.no_grad():
        prediction = regressor(torch.randn(150, 16))
    boxes = np.column_stack([np.arange(150), np.zeros(150), np.arange(150) + 200, np.full(150, 400)]).astype(np.float32)
    intrinsics = Intrinsics.default_for(1280, 720)
    sliced = strcli.road.posing.pose_frames(prediction, boxes, body, intrinsics)
    monkeypatch.setattr(strcli.road.posing, "POSE_CHUNK", 1000)
    whole = strcli.road.posing.pose_frames(prediction, boxes, body, intrinsics)
    assert sliced.vertices.shape == (150, body.faces.max() + 1, 3)
    for name in ("global_orient", "body_pose", "betas", "cam_crop", "transl", "joints3d", "joints2d", "vertices"):
        assert np.allclose(getattr(sliced, name), getattr(whole, name), atol=1e-5), name
    assert np.ptp(whole.vertices[:, 0, 0]) > 0.01  # the frames differ: a misplaced slice would show


# --------------------------------------------------------------- the SMPL file where users keep it


@pytest.mark.parametrize("layout", ["smplx", "models-smplx", "file", "v1.1.0", "v1.0.0", "lower-case"])
@pytest.mark.parametrize("through", ["--smpl-dir", "$STRCLI_SMPL_DIR"])
def test_the_smpl_file_is_found_where_users_keep_it(tmp_path, monkeypatch, layout, through):
    """smplx's layout (DIR/smpl/SMPL_NEUTRAL.pkl, what smplx.create(DIR, 'smpl') reads, and
    models/smpl/), the file itself, and the official download names, through --smpl-dir
    or $STRCLI_SMPL_DIR."""
    root = tmp_path / "models"
    relative = {"smplx": "smpl/SMPL_NEUTRAL.pkl", "models-smplx": "models/smpl/SMPL_NEUTRAL.pkl",
                "file": "my_body_model.pkl", "v1.1.0": "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
                "v1.0.0": "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
                "lower-case": "basicmodel_neutral_lbs_10_207_0_v1.0.0.pkl"}[layout]
    target = root / relative
    target.parent.mkdir(parents=True)
    target.write_bytes(b"smpl")
    given = target if layout == "file" else root
    if through == "--smpl-dir":
        assert find_smpl_file("neutral", smpl_dir=given) == target
    else:
        monkeypatch.setenv("STRCLI_SMPL_DIR", str(given))
        assert find_smpl_file("neutral") == target


@pytest.mark.parametrize("gender, name", [("male", "basicmodel_m_lbs_10_207_0_v1.1.0.pkl"),
                                          ("female", "basicmodel_f_lbs_10_207_0_v1.1.0.pkl"),
                                          ("female", "basicModel_f_lbs_10_207_0_v1.0.0.pkl"),
                                          ("male", "basicmodel_m_lbs_10_207_0_v1.0.0.pkl")])
def test_official_gendered_names_are_found_in_smplx_layout(tmp_path, gender, name):
    (tmp_path / "smpl").mkdir()
    (tmp_path / "smpl" / name).write_bytes(b"smpl")
    (tmp_path / "smpl" / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl").write_bytes(b"other gender")
    assert find_smpl_file(gender, smpl_dir=tmp_path) == tmp_path / "smpl" / name


def test_a_named_place_without_the_file_is_refused_never_passed_over(tmp_path, monkeypatch):
    """--smpl-dir, else $STRCLI_SMPL_DIR, is the only place looked in: when it does not
    exist or holds no SMPL file, strcli's weights folder is not used instead."""
    weights_smpl = tmp_path / "weights" / "smpl"
    weights_smpl.mkdir(parents=True)
    (weights_smpl / "SMPL_NEUTRAL.pkl").write_bytes(b"w")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingAssetError) as info:
        find_smpl_file("neutral", smpl_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert message.startswith(f"--smpl-dir {tmp_path / 'nowhere'} does not exist: strcli looked there for the SMPL "
                              "neutral body model file and uses no other SMPL file when you name a place.")
    assert str(weights_smpl) not in message and "make-test-smpl" in message
    with pytest.raises(MissingAssetError) as info:
        find_smpl_file("neutral", smpl_dir=empty)
    assert str(info.value).startswith(f"no SMPL neutral body model file in --smpl-dir {empty}: strcli looked for "
                                      "SMPL_NEUTRAL.pkl, SMPL_NEUTRAL.npz, ")
    monkeypatch.setenv("STRCLI_SMPL_DIR", str(tmp_path / "gone"))
    with pytest.raises(MissingAssetError) as info:
        find_smpl_file("neutral")
    assert str(info.value).startswith(f"$STRCLI_SMPL_DIR {tmp_path / 'gone'} does not exist")
    assert "unset it" in str(info.value)
    assert MissingAssetError.exit_code == 3


def test_a_missing_weights_smpl_folder_is_called_missing(tmp_path):
    (tmp_path / "weights").mkdir()  # weights/ is there, weights/smpl/ is not
    with pytest.raises(MissingAssetError) as info:
        find_smpl_file("neutral")
    message = str(info.value)
    assert f"in {tmp_path / 'weights' / 'smpl'} (does not exist)." in message
    assert "not created yet" not in message and "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl" in message
    assert "strcli weights make-test-smpl DIR" in message  # the testing-only alternative


def test_neutral_mean_params_stand_upright_in_the_camera(smpl_files):
    # Without SPIN's file an untrained network starts from MeanParams.neutral: its body must
    # stand head up in the camera frame (y down), or the world stage's floor lands above it.
    from strcli.model import MeanParams, Regressor

    body = Body.from_file(smpl_files["chumpy"])
    regressor = Regressor(16, iterations=1, mean_params=MeanParams.neutral()).eval()
    for head in (regressor.decpose, regressor.decshape, regressor.deccam):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    with torch.no_grad():
        prediction = regressor(torch.randn(2, 16))
        aa = prediction.axis_angle
        out = body.axis_angle(aa[:, :3], aa[:, 3:], prediction.betas)
    joints = out.joints.numpy()
    head, ankles = joints[:, 15], joints[:, [7, 8]]
    assert (head[:, 1] < ankles[:, :, 1].min(axis=1) - 1.0).all()  # the head over 1 m above the ankles (y down)
    assert np.allclose(head[:, [0, 2]], ankles.mean(axis=1)[:, [0, 2]], atol=0.2)  # upright, not leaning
