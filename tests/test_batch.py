from pathlib import Path

import pytest

from strcli.road.batch import Shard, check_stems, detections_for, exit_code, find_videos, select_shard
from strcli.utils.errors import UsageError
from strcli.road.reconstruct import VideoResult


def test_shards_split_a_folder_without_overlap(tmp_path):
    for name in ("c.mp4", "a.MOV", "b.avi", "d.mkv", "e.webm", "skip.txt", ".hidden.mp4"):
        (tmp_path / name).write_bytes(b"")
    videos = find_videos([tmp_path])
    assert [v.name for v in videos] == ["a.MOV", "b.avi", "c.mp4", "d.mkv", "e.webm"]
    parts = [select_shard(videos, Shard.parse(f"{i}/3")) for i in range(3)]
    assert sorted(v.name for part in parts for v in part) == sorted(v.name for v in videos)
    assert [len(p) for p in parts] == [2, 2, 1]
    assert select_shard(videos, Shard.parse(None)) == videos


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "1/0"])
def test_bad_shards_are_refused(text):
    with pytest.raises(UsageError, match="--shard"):
        Shard.parse(text)


def test_inputs_are_deduplicated_and_empty_folders_refused(tmp_path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"")
    assert find_videos([video, tmp_path, video]) == [video.resolve()]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no video files"):
        find_videos([tmp_path / "empty"])
    missing = tmp_path / "missing.mp4"
    assert find_videos([missing]) == [missing]  # fails later, alone


def test_detections_are_found_per_video(tmp_path):
    (tmp_path / "dets" / "b" / "det").mkdir(parents=True)
    (tmp_path / "dets" / "a.det.txt").write_text("")
    (tmp_path / "dets" / "b" / "det" / "det.txt").write_text("")
    assert detections_for(Path("x/a.mp4"), tmp_path / "dets", single=False).name == "a.det.txt"
    assert detections_for(Path("x/b.mp4"), tmp_path / "dets", single=False).parts[-3:] == ("b", "det", "det.txt")
    with pytest.raises(UsageError, match="no detections for c.mp4"):
        detections_for(Path("c.mp4"), tmp_path / "dets", single=False)
    with pytest.raises(UsageError, match="one video"):
        detections_for(Path("a.mp4"), tmp_path / "dets" / "a.det.txt", single=False)
    assert detections_for(Path("a.mp4"), None, single=True) is None


def test_same_stems_clash_and_exit_code_is_the_first_failure():
    clashes = check_stems([Path("x/clip.mp4"), Path("y/clip.avi"), Path("z/other.mp4")])
    assert list(clashes) == [Path("x/clip.mp4"), Path("y/clip.avi")]  # both: neither wins by coming first
    assert "x/clip.mp4 and y/clip.avi share the name 'clip'" in clashes[Path("x/clip.mp4")]
    results = [VideoResult(Path("a"), "done"), VideoResult(Path("b"), "failed", exit_code=7),
               VideoResult(Path("c"), "failed", exit_code=3)]
    assert exit_code(results) == 7 and exit_code(results[:1]) == 0


def test_videos_sharing_a_stem_are_refused_in_every_shard(tmp_path, assets):
    """a.avi and a.mp4 in one folder: shard 0/2 holds one, shard 1/2 the other. Each shard
    saw only its own and ran it; the second to finish then found the first's folder and was
    told to --overwrite it. Both are refused, whichever shard, before any model loads."""
    from typer.testing import CliRunner

    from strcli.cli.main import app

    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.avi").symlink_to(assets / "videos" / "pedestrians.avi")
    (folder / "a.mp4").symlink_to(assets / "videos" / "running.mp4")
    (folder / "b.mp4").write_text("not a video")
    for shard, video in (("0/3", "a.avi"), ("1/3", "a.mp4")):
        result = CliRunner().invoke(app, ["reconstruct", str(folder), "-o", str(tmp_path / "out"), "--shard", shard,
                                          "--offline", "--quiet"])
        assert result.exit_code == 2, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {video}: ") and "share the name 'a'" in errors[0]
    assert not (tmp_path / "out" / "a").exists()


def test_detections_that_are_a_device_are_named_as_such(tmp_path, assets):
    """/dev/null exists: it was called missing ("does not exist")."""
    from typer.testing import CliRunner

    from strcli.cli.main import app

    result = CliRunner().invoke(app, ["reconstruct", str(assets / "videos" / "running.mp4"), "-o", str(tmp_path / "out"),
                                      "--detections", "/dev/null", "--offline", "--quiet"])
    assert result.exit_code == 2, result.output
    assert "--detections /dev/null is not a file or a folder (a device or a pipe)." in result.stderr
    with pytest.raises(UsageError, match="is not a file or a folder"):
        detections_for(Path("a.mp4"), Path("/dev/null"), single=True)
