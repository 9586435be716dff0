"""`strcli.utils.locks.WholeFile`: a file under its final name is whole; a failure leaves
no temporary, keeps the earlier file, and is one OutputError (exit 6) when it is the disk's."""

import errno
import os
import subprocess

import pytest

from strcli.utils.errors import Interrupted, OutputError, UsageError
from strcli.utils.locks import WholeFile, WholeSet, write_text_whole

DEAD_PID = 999_999_999  # above any pid_max: never a running process


@pytest.fixture
def read_only(tmp_path):
    """A folder on a tmpfs remounted read-only (tests run as root, which ignores chmod),
    holding `old.txt`; skipped where `mount` is not permitted."""
    where = tmp_path / "ro"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True,
                      check=False).returncode:
        pytest.skip("mounting a small tmpfs is not permitted here")
    try:
        (where / "old.txt").write_text("old")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_the_complete_temporary_is_renamed(tmp_path):
    path = tmp_path / "sub" / "table1.json"
    with WholeFile(path) as tmp:
        assert tmp == path.with_name(f".table1.json.partial-{os.getpid()}")
        assert tmp.parent.is_dir() and not path.exists()  # the folder is made; the final name waits
        tmp.write_text("{}")
    assert path.read_text() == "{}"
    assert [p.name for p in path.parent.iterdir()] == ["table1.json"]


def test_keep_suffix_ends_the_temporary_in_the_final_extension(tmp_path):
    whole = WholeFile(tmp_path / "overlay.mp4", keep_suffix=True)
    assert whole.tmp.name == f".overlay.partial-{os.getpid()}.mp4"  # FFmpeg picks the container by it


@pytest.mark.parametrize("existing", [None, "old"])
def test_an_exception_leaves_no_temporary_and_the_earlier_file(tmp_path, existing):
    path = tmp_path / "best.pt"
    if existing is not None:
        path.write_text(existing)
    # not about writing: raised on unchanged
    with pytest.raises(ValueError, match="half"), WholeFile(path) as tmp:
        tmp.write_text("half")
        raise ValueError("half written")
    assert (path.read_text() if path.exists() else None) == existing
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if existing is None else ["best.pt"])


@pytest.mark.parametrize("error", [UsageError("bad"), Interrupted("SIGINT", 130)])
def test_strcli_errors_and_interruptions_pass_unchanged(tmp_path, error):
    with pytest.raises(type(error)) as info, WholeFile(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise error
    assert info.value is error and list(tmp_path.iterdir()) == []


def test_a_full_disk_is_one_output_error_also_through_a_library_error(tmp_path):
    path = tmp_path / "last.pt"
    for raised in (OSError(errno.ENOSPC, "No space left on device"), RuntimeError("file write failed")):
        with pytest.raises(OutputError) as info, WholeFile(path) as tmp:
            tmp.write_bytes(b"x" * 100)
            if isinstance(raised, RuntimeError):  # torch's way: its own error raised from the OSError
                raise raised from OSError(errno.ENOSPC, "No space left on device")
            raise raised
        assert info.value.exit_code == 6 and str(info.value).startswith(f"the disk is full while writing {path}.")
        assert list(tmp_path.iterdir()) == []


def test_a_read_only_folder_is_one_output_error_and_leaves_nothing(read_only):
    for path in (read_only / "old.txt", read_only / "new" / "a.txt"):  # a file of the folder, a folder to make
        with pytest.raises(OutputError) as info, WholeFile(path) as tmp:
            tmp.write_text("new")
        assert info.value.exit_code == 6 and f"{path} is on a read-only file system." in str(info.value)
    with pytest.raises(OutputError, match="read-only"):
        write_text_whole(read_only / "old.txt", "new")
    assert [p.name for p in read_only.iterdir()] == ["old.txt"] and (read_only / "old.txt").read_text() == "old"


def test_a_dead_process_temporary_is_swept_a_live_one_kept(tmp_path):
    stale = [tmp_path / f".a.txt.partial-{DEAD_PID}", tmp_path / f".overlay.partial-{DEAD_PID}.mp4"]
    mine = tmp_path / f".a.txt.partial-{os.getpid()}-other"
    for path in [*stale, mine]:
        path.write_text("half")
    with WholeFile(tmp_path / "a.txt") as tmp:
        tmp.write_text("a")
    with WholeFile(tmp_path / "overlay.mp4", keep_suffix=True) as tmp:
        tmp.write_text("v")
    assert not any(p.exists() for p in stale) and mine.exists()
    stale[0].write_text("half")
    with WholeFile(tmp_path / "a.txt", sweep=False) as tmp:
        tmp.write_text("a")
    assert stale[0].exists()


def test_begin_commit_discard_for_a_writer_that_spans_calls(tmp_path):
    path = tmp_path / "overlay.mp4"
    path.write_text("earlier")
    whole = WholeFile(path, keep_suffix=True)
    whole.begin().write_text("half")
    whole.discard()
    whole.discard()  # twice, or with no temporary: no error
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.mp4"] and path.read_text() == "earlier"
    whole.begin().write_text("whole")
    assert whole.commit() == path and path.read_text() == "whole"
    with pytest.raises(OutputError, match="cannot write"):  # nothing to rename: still one line
        whole.commit()


def test_a_set_removes_the_files_it_replaces_with_its_own(tmp_path):
    """`WholeSet.replaces`: gone once the set is in place, no temporary left; a file the set
    writes is not removed."""
    (tmp_path / "bvh").mkdir()
    (tmp_path / "bvh" / "old.bvh").write_text("camera frame")
    (tmp_path / "a.glb").write_text("camera frame")
    with WholeSet() as files:
        files.replaces(tmp_path / "bvh" / "old.bvh")
        files.replaces(tmp_path / "a.glb")
        files.add(tmp_path / "a.glb").write_text("world frame")
        assert (tmp_path / "bvh" / "old.bvh").is_file()  # until the set is renamed in
    assert (tmp_path / "a.glb").read_text() == "world frame"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a.glb", "bvh"]


def test_a_set_that_cannot_move_a_replaced_file_aside_changes_nothing(tmp_path, monkeypatch):
    """Renaming the replaced files aside comes before the set's files are renamed in: a
    failure there puts back those moved, discards the set (OutputError, exit 6), and leaves
    the folder as it was."""
    for name in ("a.bvh", "b.bvh", "c.glb"):
        (tmp_path / name).write_text("earlier")
    real = os.replace

    def refuse(source, target):
        if os.path.basename(source) == "b.bvh":
            raise OSError(errno.EACCES, "Permission denied")
        return real(source, target)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError), WholeSet() as files:
        files.replaces(tmp_path / "a.bvh")
        files.replaces(tmp_path / "b.bvh")
        files.add(tmp_path / "c.glb").write_text("new")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {n: "earlier" for n in ("a.bvh", "b.bvh", "c.glb")}
