"""The weights registry against a real HTTP server on 127.0.0.1 serving small files."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strcli.cli.main import app
from strcli.road.assets import import_file, list_states
from strcli.utils.errors import CorruptAssetError, DownloadError, MissingAssetError, UsageError
from strcli.weights.registry import (
    InterruptedDownload,
    Manifest,
    Registry,
    Status,
    check_asset,
    fetch_asset,
    require,
    sha256_file,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FileServer:
    """Serves `files` with Range support; can cut the next response of a path in half."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_next: set[str] = set()
        self.no_length: set[str] = set()  # sent without Content-Length (HTTP/1.0, ended by closing)
        self.ranges_advertised: set[str] = set()  # "Accept-Ranges: bytes" on the whole file
        self.trickle: dict[str, float] = {}  # one byte every so many seconds
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if self.headers.get("Range", "").startswith("bytes="):
                    start = int(self.headers["Range"][6:].split("-")[0])
                    if start >= len(body):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                rest = body[start:]
                if self.path not in server.no_length:
                    self.send_header("Content-Length", str(len(rest)))
                if self.path in server.ranges_advertised:
                    self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if self.path in server.trickle:
                    try:
                        for i in range(min(len(rest), 100)):
                            self.wfile.write(rest[i:i + 1])
                            self.wfile.flush()
                            time.sleep(server.trickle[self.path])
                    except OSError:
                        pass  # the client gave up
                    self.close_connection = True
                    return
                if self.path in server.cut_next:
                    server.cut_next.discard(self.path)
                    self.wfile.write(rest[: len(rest) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(rest)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FileServer()
    srv.files["/model.pt"] = PAYLOAD
    yield srv
    srv.close()


def write_manifest(tmp_path: Path, server: FileServer, **assets: dict) -> Manifest:
    lines = []
    for name, entry in assets.items():
        lines.append(f"[assets.{name}]")
        entry = {"description": f"test asset {name}", "licence": "MIT", "needed_by": ["test"],
                 **entry}
        for key, value in entry.items():
            if key == "urls":
                value = [u.replace("{url}", server.url) for u in value]
            lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "manifest.toml"
    path.write_text("\n".join(lines) + "\n")
    return Manifest.load(path)


def test_fetch_downloads_verifies_and_renames(tmp_path, server):
    manifest = write_manifest(tmp_path, server, model={"file": "sub/model.pt",
                                                       "urls": ["{url}/model.pt"], "sha256": SHA,
                                                       "size": len(PAYLOAD)})
    seen = []
    path = fetch_asset(manifest.get("model"), progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "weights" / "sub" / "model.pt"
    assert path.read_bytes() == PAYLOAD
    assert not path.with_name("model.pt.part").exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert check_asset(manifest.get("model")).status == Status.PRESENT
    # A second fetch is a no-op: nothing is downloaded again.
    count = len(server.requests)
    fetch_asset(manifest.get("model"))
    assert len(server.requests) == count


def test_wrong_checksum_deletes_the_download(tmp_path, server):
    manifest = write_manifest(tmp_path, server, model={"file": "model.pt", "urls": ["{url}/model.pt"],
                                                       "sha256": "0" * 64})
    with pytest.raises(CorruptAssetError, match="checksum mismatch"):
        fetch_asset(manifest.get("model"))
    weights = tmp_path / "weights"
    assert not (weights / "model.pt").exists()
    assert not (weights / "model.pt.part").exists()


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    manifest = write_manifest(tmp_path, server, model={"file": "model.pt", "urls": ["{url}/model.pt"],
                                                       "sha256": SHA})
    server.cut_next.add("/model.pt")
    with pytest.raises(InterruptedDownload, match="interrupted after 524288 of 1048576 bytes"):
        fetch_asset(manifest.get("model"))
    part = tmp_path / "weights" / "model.pt.part"
    assert part.stat().st_size == len(PAYLOAD) // 2
    assert not (tmp_path / "weights" / "model.pt").exists()  # nothing looks complete
    path = fetch_asset(manifest.get("model"))
    assert server.requests[-1] == ("/model.pt", f"bytes={len(PAYLOAD) // 2}-")
    assert path.read_bytes() == PAYLOAD


def test_http_404_tries_the_next_url_then_fails(tmp_path, server):
    manifest = write_manifest(
        tmp_path, server,
        mirrored={"file": "a.pt", "urls": ["{url}/gone.pt", "{url}/model.pt"], "sha256": SHA},
        gone={"file": "b.pt", "urls": ["{url}/gone.pt"]},
    )
    assert fetch_asset(manifest.get("mirrored")).read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_asset(manifest.get("gone"))
    assert not (tmp_path / "weights" / "b.pt").exists()


def test_unreachable_host_is_a_download_error(tmp_path, server):
    manifest = write_manifest(tmp_path, server, model={"file": "m.pt", "urls": ["http://127.0.0.1:9/m.pt"]})
    with pytest.raises(DownloadError, match="cannot connect"):
        fetch_asset(manifest.get("model"), timeout=5)


def test_unpinned_checksum_is_recorded_then_enforced(tmp_path, server):
    manifest = write_manifest(tmp_path, server, model={"file": "model.pt", "urls": ["{url}/model.pt"]})
    path = fetch_asset(manifest.get("model"))
    registry = Registry(tmp_path / "weights")
    assert registry.expected_sha256(manifest.get("model")) == SHA
    path.write_bytes(PAYLOAD[:-1] + b"\x00")  # silently damaged later
    state = check_asset(manifest.get("model"))
    assert state.status == Status.CORRUPT and "expected" in state.detail


def test_archive_member_is_extracted_and_verified(tmp_path, server):
    member = b"mean parameters" * 100
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("data/smpl_mean_params.npz")
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    server.files["/data.tar.gz"] = buffer.getvalue()
    manifest = write_manifest(tmp_path, server, mean={
        "file": "smpl_mean_params.npz", "urls": ["{url}/data.tar.gz"],
        "archive_member": "data/smpl_mean_params.npz", "sha256": hashlib.sha256(member).hexdigest()})
    assert fetch_asset(manifest.get("mean")).read_bytes() == member
    assert (tmp_path / "weights" / ".downloads" / "data.tar.gz").is_file()  # kept for sibling members
    wrong = write_manifest(tmp_path, server, mean={
        "file": "other.npz", "urls": ["{url}/data.tar.gz"],
        "archive_member": "data/smpl_mean_params.npz", "sha256": "0" * 64})
    with pytest.raises(CorruptAssetError, match="checksum mismatch"):
        fetch_asset(wrong.get("mean"))
    assert not (tmp_path / "weights" / ".downloads" / "data.tar.gz").exists()  # not reused next time


def test_import_recognises_files_and_checks_them(tmp_path, server, smpl_files):
    manifest = write_manifest(
        tmp_path, server,
        model={"file": "model.pt", "urls": ["{url}/model.pt"], "sha256": SHA},
        smpl_neutral={"file": "smpl/SMPL_NEUTRAL.pkl", "manual": True},
    )
    mine = tmp_path / "downloaded-elsewhere.bin"
    mine.write_bytes(PAYLOAD)
    state = import_file(mine, manifest=manifest)  # recognised by its checksum
    assert state.asset.name == "model" and state.path.read_bytes() == PAYLOAD
    wrong = tmp_path / "model.pt"
    wrong.write_bytes(b"something else")
    with pytest.raises(CorruptAssetError, match="does not match model"):
        import_file(wrong, name="model", manifest=manifest)
    state = import_file(smpl_files["chumpy"], manifest=manifest)  # recognised by its name
    assert state.path == tmp_path / "weights" / "smpl" / "SMPL_NEUTRAL.pkl"
    not_smpl = tmp_path / "SMPL_NEUTRAL.pkl"
    not_smpl.write_bytes(b"\x80\x02}q\x00.")  # a pickled empty dict
    with pytest.raises(CorruptAssetError, match="not an SMPL model"):
        import_file(not_smpl, manifest=manifest)
    with pytest.raises(UsageError, match="cannot tell which asset"):
        import_file(tmp_path / "downloaded-elsewhere.bin", manifest=write_manifest(
            tmp_path / "..", server, other={"file": "o.pt"}))


def test_require_says_how_to_get_an_asset(tmp_path, server):
    manifest = write_manifest(
        tmp_path, server, model={"file": "model.pt", "urls": ["{url}/model.pt"]},
        smpl_neutral={"file": "smpl/SMPL_NEUTRAL.pkl", "manual": True,
                      "instructions": "register at the SMPL website"})
    with pytest.raises(MissingAssetError, match="strcli weights fetch model"):
        require("model", manifest)
    with pytest.raises(MissingAssetError, match="register at the SMPL website"):
        require("smpl_neutral", manifest)
    with pytest.raises(MissingAssetError, match="cannot be downloaded automatically"):
        fetch_asset(manifest.get("smpl_neutral"))


def test_shipped_manifest_pins_the_real_helper_files(assets):
    manifest = Manifest.load()
    assert {"detector", "spin_checkpoint", "smpl_mean_params", "j_regressor_h36m", "str_checkpoint",
            "smpl_neutral"} <= set(manifest.assets)
    for asset in manifest.assets.values():
        assert asset.licence and asset.needed_by
        assert asset.manual or asset.urls, asset.name
        assert not asset.manual or asset.instructions, asset.name
    helpers = assets / "smpl_helpers"
    assert manifest.get("smpl_mean_params").sha256 == sha256_file(helpers / "smpl_mean_params.npz")
    assert manifest.get("j_regressor_h36m").sha256 == sha256_file(helpers / "J_regressor_h36m.npy")
    states = {s.asset.name: s.status for s in list_states(manifest)}
    assert set(states.values()) == {Status.MISSING}  # a fresh weights dir


def test_cli_list_fetch_and_import(tmp_path, server, monkeypatch, assets):
    manifest = write_manifest(
        tmp_path, server,
        model={"file": "model.pt", "urls": ["{url}/model.pt"], "sha256": SHA},
        gone={"file": "gone.pt", "urls": ["{url}/gone.pt"]},
        smpl_mean_params={"file": "smpl_mean_params.npz", "manual": True, "instructions": "x",
                          "sha256": sha256_file(assets / "smpl_helpers" / "smpl_mean_params.npz")},
    )
    monkeypatch.setenv("STRCLI_MANIFEST", str(manifest.path))
    runner = CliRunner()
    listed = runner.invoke(app, ["weights", "list", "--json"])
    assert listed.exit_code == 0
    assert {row["name"]: row["status"] for row in json.loads(listed.stdout)} == {
        "model": "missing", "gone": "missing", "smpl_mean_params": "missing"}
    fetched = runner.invoke(app, ["weights", "fetch", "model", "--quiet"])
    assert fetched.exit_code == 0, fetched.output
    assert (tmp_path / "weights" / "model.pt").read_bytes() == PAYLOAD
    failed = runner.invoke(app, ["weights", "fetch", "gone", "--quiet"])
    assert failed.exit_code == DownloadError.exit_code
    assert "HTTP 404" in failed.stderr
    imported = runner.invoke(app, ["weights", "import", str(assets / "smpl_helpers" / "smpl_mean_params.npz")])
    assert imported.exit_code == 0, imported.output
    table = runner.invoke(app, ["weights", "list"])
    assert "present" in table.stdout and "gone: strcli weights fetch gone" in table.stdout


def test_cached_archives_get_names_that_say_where_they_came_from():
    from strcli.weights.registry import archive_name

    assert archive_name("http://visiondata.cis.upenn.edu/spin/data.tar.gz") == "data.tar.gz"
    drive = archive_name("https://drive.google.com/uc?id=1WmSYmDWdMSXyNU6ZcFQVF8ULtR_S9L3b&export=download")
    other = archive_name("https://drive.google.com/uc?id=another&export=download")
    assert drive.startswith("uc-") and drive != other  # two Drive archives never share a cache file


def test_weights_list_honours_strcli_smpl_dir(tmp_path, monkeypatch, smpl_files):
    """`weights list` reports the SMPL file where reconstruct will take it from."""
    runner = CliRunner()
    listed = runner.invoke(app, ["weights", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["smpl_neutral"]["status"] == "missing"
    models = tmp_path / "models"
    (models / "smpl").mkdir(parents=True)
    (models / "smpl" / "SMPL_NEUTRAL.pkl").write_bytes(smpl_files["chumpy"].read_bytes())
    monkeypatch.setenv("STRCLI_SMPL_DIR", str(models))
    listed = runner.invoke(app, ["weights", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["smpl_neutral"]["status"] == "unverified"
    assert rows["smpl_neutral"]["path"] == str(models / "smpl" / "SMPL_NEUTRAL.pkl")
    assert "$STRCLI_SMPL_DIR" in rows["smpl_neutral"]["detail"]
    assert rows["smpl_male"]["status"] == "missing"
    table = runner.invoke(app, ["weights", "list"])
    assert "smpl_neutral: register" not in table.stdout


@pytest.mark.parametrize("args, smpl", [
    (["basicmodel_m_lbs_10_207_0_v1.1.0.pkl"], True),  # an official download name
    (["SMPL_NEUTRAL.pkl"], True),
    (["body.pkl", "--name", "smpl_female"], True),  # the asset named
    (["smpl_mean_params.npz"], False),  # SPIN's mean parameters are no body model
    (["tcmr.pth.tar"], False),
])
def test_import_of_a_missing_smpl_file_names_the_test_body(tmp_path, args, smpl):
    result = CliRunner().invoke(app, ["weights", "import", str(tmp_path / args[0]), *args[1:]])
    assert result.exit_code == MissingAssetError.exit_code == 3
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "does not exist" in result.stderr
    assert ("strcli weights make-test-smpl DIR" in result.stderr) == smpl


def _targz(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_truncated_archive_is_deleted_and_downloaded_anew(tmp_path, server, monkeypatch):
    """A .tar.gz cut in half (its Content-Length matching) is one line and exit 5, never
    "interrupted (Ctrl-C)", and is not reused: the rerun downloads it again."""
    member = bytes(range(256)) * 512  # does not compress to nothing: half the gzip lacks its end
    whole = _targz("data/mean.npz", member)
    server.files["/data.tar.gz"] = whole[: len(whole) // 2]
    manifest = write_manifest(tmp_path, server, mean={
        "file": "mean.npz", "urls": ["{url}/data.tar.gz"], "archive_member": "data/mean.npz",
        "sha256": hashlib.sha256(member).hexdigest()})
    monkeypatch.setenv("STRCLI_MANIFEST", str(manifest.path))
    cached = tmp_path / "weights" / ".downloads" / "data.tar.gz"
    for _ in range(2):  # the same line each time: the damaged archive is never reused
        result = CliRunner().invoke(app, ["weights", "fetch", "mean", "--quiet"])
        assert result.exit_code == DownloadError.exit_code == 5, result.output
        assert result.stderr.count("\n") == 1 and "Ctrl-C" not in result.stderr
        assert f"the downloaded archive {cached} is damaged or cut short (EOFError" in result.stderr
        assert "deleted. Run the command again" in result.stderr
        assert not cached.exists() and not (tmp_path / "weights" / "mean.npz.part").exists()
    assert [path for path, _ in server.requests].count("/data.tar.gz") == 2
    server.files["/data.tar.gz"] = whole  # the server mends: a rerun gets the archive anew
    assert fetch_asset(manifest.get("mean")).read_bytes() == member


@pytest.mark.parametrize("body", [b"\x1f\x8b" + bytes(5000), bytes(range(256)) * 8], ids=["bad-gzip", "no-archive"])
def test_a_damaged_archive_is_a_download_error_and_deleted(tmp_path, server, body):
    server.files["/data.tar.gz"] = body
    manifest = write_manifest(tmp_path, server, mean={
        "file": "mean.npz", "urls": ["{url}/data.tar.gz"], "archive_member": "data/mean.npz", "sha256": SHA})
    with pytest.raises(DownloadError, match="is damaged or cut short") as caught:
        fetch_asset(manifest.get("mean"))
    assert caught.value.exit_code == 5
    assert not (tmp_path / "weights" / ".downloads" / "data.tar.gz").exists()


def test_an_eof_error_is_never_reported_as_ctrl_c(tmp_path, monkeypatch, capsys):
    """Click turns an EOFError that escapes a command into an Abort, which was reported as
    "interrupted (Ctrl-C)", exit 130: any file read to a sudden end could say it."""
    import sys

    from strcli.cli.main import run
    from strcli.weights import registry

    def cut_short(*args, **kwargs):
        raise EOFError("Ran out of input")

    monkeypatch.setattr(registry.Manifest, "load", cut_short)
    monkeypatch.setattr(sys, "argv", ["strcli", "weights", "list"])
    with pytest.raises(SystemExit) as stopped:
        run()
    err = capsys.readouterr().err
    assert stopped.value.code == 1
    assert err.startswith("error: a file or stream strcli was reading ended early (EOFError: Ran out of input)")
    assert "Ctrl-C" not in err and err.count("\n") == 1


def _serve_cut_npy(tmp_path, server, ranges: bool):
    """An unpinned asset `extra` (a .npy file) whose next download the server cuts in half,
    sending no Content-Length (and advertising Range requests with `ranges`): the file's
    bytes, and the manifest that names it."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.arange(20000, dtype=np.float64))
    whole = buffer.getvalue()
    server.files["/extra.npy"] = whole
    server.no_length.add("/extra.npy")
    if ranges:
        server.ranges_advertised.add("/extra.npy")
    server.cut_next.add("/extra.npy")
    return whole, write_manifest(tmp_path, server, extra={"file": "extra.npy", "urls": ["{url}/extra.npy"]})


def test_an_unpinned_download_cut_short_without_length_is_not_recorded(tmp_path, server, monkeypatch):
    """A body cut short by a server that sent no Content-Length looks whole; with no checksum
    to verify, the file is checked as `weights import` checks it: it is refused (exit 5),
    not recorded, and deleted (the server takes no Range requests)."""
    whole, manifest = _serve_cut_npy(tmp_path, server, ranges=False)
    monkeypatch.setenv("STRCLI_MANIFEST", str(manifest.path))
    runner = CliRunner()
    result = runner.invoke(app, ["weights", "fetch", "extra", "--quiet"])
    assert result.exit_code == DownloadError.exit_code == 5, result.output
    assert result.stderr.count("\n") == 1
    assert ("the download of extra is not a usable file (the server sent no length, so it may have been cut "
            "short)") in result.stderr
    assert "it was deleted and not recorded. Run the command again" in result.stderr
    weights = tmp_path / "weights"
    assert not (weights / "extra.npy").exists() and not (weights / "extra.npy.part").exists()
    assert "extra" not in Registry(weights).entries
    listed = runner.invoke(app, ["weights", "list", "--json"])
    assert [row["status"] for row in json.loads(listed.stdout)] == ["missing"]
    # The whole file passes the check and is recorded.
    assert runner.invoke(app, ["weights", "fetch", "extra", "--quiet"]).exit_code == 0
    assert Registry(weights).entries["extra"]["sha256"] == hashlib.sha256(whole).hexdigest()


def test_an_unpinned_download_cut_short_is_kept_to_resume_where_ranges_work(tmp_path, server):
    whole, manifest = _serve_cut_npy(tmp_path, server, ranges=True)
    with pytest.raises(InterruptedDownload, match=r"not a usable file .*it is kept as .*extra\.npy\.part"):
        fetch_asset(manifest.get("extra"))
    part = tmp_path / "weights" / "extra.npy.part"
    assert part.stat().st_size == len(whole) // 2
    assert "extra" not in Registry(tmp_path / "weights").entries
    assert fetch_asset(manifest.get("extra")).read_bytes() == whole  # resumed
    assert server.requests[-1] == ("/extra.npy", f"bytes={len(whole) // 2}-")


def test_a_download_that_brings_too_few_bytes_gives_up_and_keeps_the_part(tmp_path, server, monkeypatch):
    """A server trickling bytes (one every 0.05 s) held `weights fetch` forever: the socket
    timeout ends only silence. Fewer than MIN_RATE_BYTES in MIN_RATE_WINDOW_S: exit 5."""
    from strcli.weights import registry

    monkeypatch.setattr(registry, "MIN_RATE_BYTES", 1024)
    monkeypatch.setattr(registry, "MIN_RATE_WINDOW_S", 0.5)
    server.trickle["/model.pt"] = 0.05
    manifest = write_manifest(tmp_path, server, model={"file": "model.pt", "urls": ["{url}/model.pt"],
                                                       "sha256": SHA})
    monkeypatch.setenv("STRCLI_MANIFEST", str(manifest.path))
    start = time.monotonic()
    result = CliRunner().invoke(app, ["weights", "fetch", "model", "--quiet"])
    assert time.monotonic() - start < 3
    assert result.exit_code == DownloadError.exit_code == 5, result.output
    assert result.stderr.startswith("error: model: the download stalled: ") and result.stderr.count("\n") == 1
    assert "fewer than the 1 KiB it must bring every 0.5 s" in result.stderr
    part = tmp_path / "weights" / "model.pt.part"
    assert 1 <= part.stat().st_size < 1024 and "is kept: rerun the same command to resume" in result.stderr
    assert not (tmp_path / "weights" / "model.pt").exists()


def test_a_library_message_over_lines_and_a_path_with_a_newline_stay_one_line(tmp_path, monkeypatch):
    """Every `error:` line is one line: a library's wrapped message is joined, a path holding a
    newline is shown escaped."""
    from strcli.cli import common
    from strcli.utils.errors import CorruptAssetError

    folder = tmp_path / "two\nlines"
    missing = folder / "SMPL_NEUTRAL.pkl"
    result = CliRunner().invoke(app, ["weights", "import", str(missing)])
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert str(tmp_path / "two\\nlines" / "SMPL_NEUTRAL.pkl") + " does not exist" in result.stderr

    def wrapped(*args, **kwargs):
        raise CorruptAssetError(f"{missing} is no SMPL file (A load persistent id instruction was encountered,\n"
                                "but no persistent_load function was specified.).", "Check the file.")

    monkeypatch.setattr("strcli.road.assets.import_file", wrapped)
    folder.mkdir()
    missing.write_bytes(b"x")
    result = CliRunner().invoke(app, ["weights", "import", str(missing), "--name", "smpl_neutral"])
    assert result.exit_code == 4 and result.stderr.count("\n") == 1
    assert result.stderr == (f"error: {tmp_path}/two\\nlines/SMPL_NEUTRAL.pkl is no SMPL file (A load persistent "
                             "id instruction was encountered, but no persistent_load function was specified.). "
                             "Check the file.\n")
    listing = CorruptAssetError("2 files are missing:\n  - a.\n  - b.", "\n  Then rerun.")
    listing.lines = ("2 files are missing:", "  - a (one\nreason).", "  - b.", "  Then rerun.")
    assert common.error_text(listing) == "2 files are missing:\n  - a (one reason).\n  - b.\n  Then rerun."


def test_make_test_smpl_into_a_file_is_a_usage_error(tmp_path):
    file = tmp_path / "body.pkl"
    file.write_bytes(b"mine")
    for target in (file, file / "deeper"):
        result = CliRunner().invoke(app, ["weights", "make-test-smpl", str(target)])
        assert result.exit_code == UsageError.exit_code == 2, result.output
        assert result.stderr == (f"error: {file} is a file, not a folder. Pass a folder (it is made when missing), "
                                 "then --smpl-dir with it.\n")
    assert file.read_bytes() == b"mine"


def test_a_spin_checkpoint_cut_short_without_length_is_refused_before_it_is_recorded(tmp_path, server):
    """The tester's case: half a torch file, then close, with no Content-Length, for the
    unpinned spin_checkpoint; it was recorded and failed only at reconstruct (exit 4)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(1000, 100)}}, buffer)
    server.files["/model_checkpoint.pt"] = buffer.getvalue()
    server.no_length.add("/model_checkpoint.pt")
    server.cut_next.add("/model_checkpoint.pt")
    manifest = write_manifest(tmp_path, server, spin_checkpoint={
        "file": "spin_model_checkpoint.pt", "urls": ["{url}/model_checkpoint.pt"], "model": "spin"})
    with pytest.raises(DownloadError, match=r"not a usable file \(the server sent no length.*is not a PyTorch "
                                            r"checkpoint.*it was deleted and not recorded") as caught:
        fetch_asset(manifest.get("spin_checkpoint"))
    assert caught.value.exit_code == 5 and not isinstance(caught.value, InterruptedDownload)
    assert Registry(tmp_path / "weights").entries == {}
    assert check_asset(manifest.get("spin_checkpoint")).status == Status.MISSING
