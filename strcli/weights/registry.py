"""The weights registry: what strcli can use, where it lives, how it is fetched and checked.

`weights/manifest.toml` declares every asset as data (file name, URLs, sha256, size,
licence, which command needs it). Files live under the weights root
($STRCLI_WEIGHTS_DIR, else the checkout's `weights/`). Downloads go to `<file>.part`,
resume with HTTP Range requests, are verified, then renamed into place, so a file under
its final name is always complete. Checksums of assets the manifest does not pin
are recorded in `registry.json` on first fetch or import and verified from then on.

A download must keep moving: fewer than `MIN_RATE_BYTES` in any `MIN_RATE_WINDOW_S` seconds
gives up (the `.part` is kept to resume), as total silence for `timeout` seconds does. A
file with no checksum to verify (none pinned, none recorded yet) is checked by the
`set_download_check` hook (the loaders' structural check, registered by `strcli.road.assets`)
before its checksum is recorded.

Size (over 500 lines): one concern, the assets (manifest, states, checksums, downloads with
resume, imports), which every command reaches without torch; its parts call each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from strcli import __version__
from strcli.utils.errors import (
    CorruptAssetError,
    DownloadError,
    MissingAssetError,
    StrcliError,
    UsageError,
    output_error,
    write_failure,
)
from strcli.utils.locks import WholeFile, write_text_whole

WEIGHTS_DIR_ENV = "STRCLI_WEIGHTS_DIR"
MANIFEST_ENV = "STRCLI_MANIFEST"
_CHECKOUT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
_CHUNK = 1 << 20
# A download that brings fewer than MIN_RATE_BYTES in MIN_RATE_WINDOW_S seconds is given up
# (a server trickling bytes would otherwise hold `weights fetch` forever: the socket timeout
# only ends total silence). Read at each download, so that tests can make them small.
MIN_RATE_BYTES = 64 * 1024
MIN_RATE_WINDOW_S = 60.0

Progress = Callable[[int, "int | None"], None]  # (bytes done, total bytes or None)
DownloadCheck = Callable[["Asset", Path], None]  # raises StrcliError for a file that is unusable
_download_check: DownloadCheck | None = None


def set_download_check(check: DownloadCheck | None) -> None:
    """Register the check a downloaded file with no checksum to verify must pass before it
    is recorded (`strcli.road.assets.check_download`, which knows the loaders; the registry
    imports none). It raises a StrcliError for a file the commands could not use."""
    global _download_check
    _download_check = check


def weights_root() -> Path:
    """Where weights files live: $STRCLI_WEIGHTS_DIR, else the checkout's weights/."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        root = Path(env)
        probe = root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise UsageError(f"${WEIGHTS_DIR_ENV}={env}: {probe} is a file, not a folder.",
                             f"Point ${WEIGHTS_DIR_ENV} at a folder (it is created when missing), or unset it.")
        return root
    if _CHECKOUT_WEIGHTS.is_dir():
        return _CHECKOUT_WEIGHTS
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data_home) / "strcli" / "weights"


def manifest_path() -> Path:
    env = os.environ.get(MANIFEST_ENV)
    return Path(env) if env else _CHECKOUT_WEIGHTS / "manifest.toml"


@dataclass(frozen=True)
class Asset:
    """One entry of the manifest."""

    name: str
    file: str  # path under the weights root
    description: str
    licence: str
    needed_by: tuple[str, ...]
    urls: tuple[str, ...] = ()
    sha256: str = ""  # "" = not pinned: recorded at first fetch or import
    size: int = 0  # bytes; 0 = unknown
    archive_member: str = ""  # the file is this member of the archive at `urls`
    manual: bool = False  # cannot be fetched automatically (licence, or never published)
    homepage: str = ""
    instructions: str = ""  # how to obtain a manual asset
    model: str = ""  # a checkpoint's kind (str, tcmr, vibe, spin): checked by structure on import
    optional: bool = False  # not in a bare `weights fetch`: fetched by name or on first use
    offline: str = ""  # the way around a failed download, besides `weights import` (a sentence)

    def path(self, root: Path | None = None) -> Path:
        return (root or weights_root()) / self.file


@dataclass(frozen=True)
class Manifest:
    assets: dict[str, Asset]
    path: Path

    @classmethod
    def load(cls, path: str | Path | None = None) -> Manifest:
        path = Path(path) if path else manifest_path()
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise CorruptAssetError(f"cannot read the weights manifest {path} ({err}).") from err
        assets = {}
        table = raw.get("assets", {})
        if not isinstance(table, dict):
            raise CorruptAssetError(f"{path}: `assets` is a {type(table).__name__}, not a table of [assets.NAME] "
                                    "tables.", "Check the manifest (weights/manifest.toml is the shipped one).")
        kinds = {f.name: f.type for f in dataclasses.fields(Asset)}
        for name, entry in table.items():
            if not isinstance(entry, dict):
                raise CorruptAssetError(f"{path}: asset {name!r} is {entry!r}, not a table.",
                                        "Check the manifest (weights/manifest.toml is the shipped one).")
            entry = dict(entry)
            for key, value in entry.items():
                kind = kinds.get(key)
                fits = {"str": isinstance(value, str), "int": isinstance(value, int) and not isinstance(value, bool),
                        "bool": isinstance(value, bool),
                        "tuple[str, ...]": isinstance(value, list) and all(isinstance(v, str) for v in value)
                        }.get(kind if isinstance(kind, str) else "", True)
                if not fits:
                    shown = {"str": "a string", "int": "a whole number", "bool": "true or false",
                             "tuple[str, ...]": "a list of strings"}[kind]
                    raise CorruptAssetError(f"{path}: asset {name!r} has {key} = {value!r}, not {shown}.",
                                            "Check the manifest (weights/manifest.toml is the shipped one).")
            for key in ("needed_by", "urls"):
                entry[key] = tuple(entry.get(key, ()))
            try:
                assets[name] = Asset(name=name, **entry)
            except TypeError as err:
                raise CorruptAssetError(f"{path}: asset {name!r} is malformed ({err}).") from err
        return cls(assets, path)

    def get(self, name: str) -> Asset:
        if name not in self.assets:
            raise UsageError(f"unknown asset {name!r}; known: {', '.join(self.assets)}.",
                             "`strcli weights list` shows each with its file.")
        return self.assets[name]


class Registry:
    """`registry.json` beside the weights: checksums recorded for files the manifest does
    not pin, and the size/mtime at which each file was last verified (to skip rehashing)."""

    def __init__(self, root: Path) -> None:
        self.path = root / "registry.json"
        self.entries: dict[str, dict] = {}
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return  # nothing recorded yet
        except (OSError, UnicodeDecodeError) as err:
            raise self._damaged(f"cannot be read ({getattr(err, 'strerror', None) or err})") from err
        try:
            entries = json.loads(text)
        except ValueError as err:
            raise self._damaged(f"is not JSON ({err})") from err
        if not isinstance(entries, dict) or not all(isinstance(e, dict) for e in entries.values()):
            what = type(entries).__name__ if not isinstance(entries, dict) else "an object with entries that are not"
            raise self._damaged(f"is not a JSON object of recorded checksums (it holds {what}"
                                + (" objects)" if isinstance(entries, dict) else ")"))
        self.entries = entries

    def _damaged(self, what: str) -> CorruptAssetError:
        return CorruptAssetError(f"{self.path} {what}.",
                                 "Move it away or delete it: strcli records each file's checksum again on the "
                                 "next `strcli weights fetch` or `import` (pinned checksums are in the manifest).")

    def record(self, asset: Asset, path: Path, sha256: str, source: str) -> None:
        stat = path.stat()
        self.entries[asset.name] = {"file": asset.file, "sha256": sha256, "size": stat.st_size,
                                    "mtime": stat.st_mtime, "source": source,
                                    "recorded": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                    "strcli": __version__}
        write_text_whole(self.path, json.dumps(self.entries, indent=2, sort_keys=True))

    def expected_sha256(self, asset: Asset) -> str:
        return asset.sha256 or self.entries.get(asset.name, {}).get("sha256", "")

    def verified_unchanged(self, asset: Asset, path: Path) -> bool:
        entry = self.entries.get(asset.name)
        if not entry or entry.get("sha256") != self.expected_sha256(asset):
            return False
        stat = path.stat()
        return entry.get("size") == stat.st_size and entry.get("mtime") == stat.st_mtime


class Status(str, Enum):
    PRESENT = "present"  # on disk and matching its checksum
    UNVERIFIED = "unverified"  # on disk, but no checksum is pinned or recorded
    MISSING = "missing"
    CORRUPT = "corrupt"  # on disk, wrong size or checksum


@dataclass(frozen=True)
class AssetState:
    asset: Asset
    path: Path
    status: Status
    detail: str = ""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_asset(asset: Asset, root: Path | None = None, registry: Registry | None = None) -> AssetState:
    root = root or weights_root()
    registry = registry or Registry(root)
    path = asset.path(root)
    if not path.is_file():
        return AssetState(asset, path, Status.MISSING)
    expected = registry.expected_sha256(asset)
    if asset.size and path.stat().st_size != asset.size:
        return AssetState(asset, path, Status.CORRUPT,
                          f"{path.stat().st_size} bytes, expected {asset.size}")
    if not expected:
        return AssetState(asset, path, Status.UNVERIFIED, "no checksum pinned or recorded")
    if registry.verified_unchanged(asset, path):
        return AssetState(asset, path, Status.PRESENT)
    actual = sha256_file(path)
    if actual != expected:
        return AssetState(asset, path, Status.CORRUPT, f"sha256 {actual[:12]}…, expected {expected[:12]}…")
    try:  # remember the verification so the next check skips hashing
        registry.record(asset, path, actual, registry.entries.get(asset.name, {}).get("source", "verified"))
    except OSError:
        pass  # a read-only weights dir only costs a rehash next time
    return AssetState(asset, path, Status.PRESENT)


def require(name: str, manifest: Manifest | None = None, root: Path | None = None) -> Path:
    """The path of asset `name`, or an error that says how to get it."""
    manifest = manifest or Manifest.load()
    asset = manifest.get(name)
    state = check_asset(asset, root)
    if state.status in (Status.PRESENT, Status.UNVERIFIED):
        return state.path
    how = asset.instructions if asset.manual else f"run `strcli weights fetch {name}`"
    if state.status == Status.CORRUPT:
        raise CorruptAssetError(f"{asset.description} at {state.path} is corrupt ({state.detail}).",
                                f"Delete it and {how}.")
    raise MissingAssetError(f"{asset.description} is missing: no {state.path}.", f"To get it, {how}.")


def fetch_asset(asset: Asset, root: Path | None = None, progress: Progress | None = None,
                timeout: float = 60.0) -> Path:
    """Download `asset` (resuming a previous partial download), verify it, rename into place.

    Verified means: the pinned or recorded sha256 and size match; with no checksum to
    verify, the file passes the `set_download_check` check (it is recognised by its
    structure and loads safely) before its checksum is recorded. Raises DownloadError (exit
    5; InterruptedDownload when the `.part` is kept for a rerun to resume) for a download
    that failed, stalled, was cut short, or brought a damaged archive or an unusable file;
    CorruptAssetError (exit 4) for a checksum mismatch; OutputError (exit 6) when it cannot
    be written."""
    root = root or weights_root()
    registry = Registry(root)
    final = asset.path(root)
    if asset.manual or not asset.urls:
        raise MissingAssetError(f"{asset.description} cannot be downloaded automatically.",
                                asset.instructions or f"See {asset.homepage}.")
    state = check_asset(asset, root, registry)
    if state.status == Status.PRESENT:
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise output_error(err, final) from err
    part = final.with_name(final.name + ".part")
    archive = root / ".downloads" / archive_name(asset.urls[0])
    try:
        if asset.archive_member:
            got = _download_any(asset.urls, archive, progress, timeout)
            _extract_member(archive, asset.archive_member, part)
        else:
            got = _download_any(asset.urls, final, progress, timeout, keep_part=True)
    except (InterruptedDownload, DamagedDownload):
        raise
    except DownloadError as err:
        raise download_failed(asset, final, err.message) from err
    actual = sha256_file(part)
    expected = registry.expected_sha256(asset)
    if expected and actual != expected:
        part.unlink()
        if asset.archive_member:
            archive.unlink(missing_ok=True)  # a bad archive must not be reused by the next fetch
        raise CorruptAssetError(
            f"checksum mismatch for {asset.name}: got sha256 {actual}, expected {expected}; "
            "the download was deleted.",
            "Run the fetch again; if it persists the file at the URL changed: report it.")
    if asset.size and part.stat().st_size != asset.size:
        size = part.stat().st_size
        part.unlink()
        raise CorruptAssetError(f"{asset.name}: downloaded {size} bytes, expected {asset.size}; "
                                "the download was deleted.")
    if not expected:
        _check_unverified(asset, part, archive if asset.archive_member else None, got)
    os.replace(part, final)
    registry.record(asset, final, actual, asset.urls[0])
    return final


def _check_unverified(asset: Asset, part: Path, archive: Path | None, got: Fetched) -> None:
    """A downloaded file with no checksum to verify it by must pass the registered check
    (`set_download_check`) before it is recorded as the reference. One that fails is kept
    as `.part` for a rerun to resume when the download may have been cut short (the server
    sent no length) and the server takes Range requests; else it is deleted, and its
    archive with it. Raises InterruptedDownload (kept) or DownloadError (deleted), exit 5."""
    if _download_check is None:
        return
    try:
        _download_check(asset, part)
    except StrcliError as err:
        reason = err.message.rstrip(".")
        cut = "" if got.length_known else " (the server sent no length, so it may have been cut short)"
        if archive is None and not got.length_known and got.ranges and got.added:
            raise InterruptedDownload(
                f"the download of {asset.name} is not a usable file{cut}: {reason}; it is kept as {part} "
                "and was not recorded.", "Rerun the same command to resume it.") from err
        part.unlink(missing_ok=True)
        if archive is not None:
            archive.unlink(missing_ok=True)
        raise DamagedDownload(f"the download of {asset.name} is not a usable file{cut}: {reason}; it was deleted "
                            "and not recorded.", "Run the command again to download it anew.") from err


def download_failed(asset: Asset, final: Path, reason: str) -> DownloadError:
    """A failed download of `asset`, saying which file, where it would go, and every way
    around it: the download on another machine and `strcli weights import`, and the
    asset's own (`offline` in the manifest: --detections, --untrained --offline, ...)."""
    source = asset.urls[0] + (f" (member {asset.archive_member})" if asset.archive_member else "")
    ways = [f"check the network and rerun; or download {source} on a machine with network and run "
            f"`strcli weights import FILE`"]
    if asset.offline:
        ways.append(asset.offline)
    error = DownloadError(f"cannot download {asset.name} ({Path(asset.file).name}, to {final}): {reason}.",
                          "To go on: " + "; ".join(ways) + ".")
    error.reason = reason  # type: ignore[attr-defined]  # for `gather`'s one message
    return error


def archive_name(url: str) -> str:
    """The cached archive's file name: the URL's last part when it names a file
    (data.tar.gz), else one derived from the whole URL (Google Drive's `uc?id=...`)."""
    name = Path(url.split("?")[0]).name
    if "." in name:
        return name
    return f"{name or 'archive'}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


class InterruptedDownload(DownloadError):
    """The connection broke mid-file; the `.part` file is kept so a rerun resumes."""


class DamagedDownload(DownloadError):
    """A download arrived whole by its length but cannot be used (a damaged or cut archive,
    a file its loader refuses); it was deleted, so that a rerun downloads it anew."""


@dataclass(frozen=True)
class Fetched:
    """What a download learned of its server: whether it sent the length (so that a short
    body is known to be short), whether it takes Range requests, and how many bytes came."""

    length_known: bool = True
    ranges: bool = False
    added: int = 0


def _download_any(urls: tuple[str, ...], dest: Path, progress: Progress | None,
                  timeout: float, keep_part: bool = False) -> Fetched:
    """Download the first URL that works into `dest.part` (then to `dest` unless keep_part)."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not keep_part and dest.is_file():
        return Fetched()  # a cached archive: read (and deleted when damaged) by the caller
    failures = []
    for url in urls:
        try:
            got = _download(url, part, progress, timeout)
            break
        except InterruptedDownload:
            raise
        except DownloadError as err:
            failures.append(f"{url}: {err.message}")
    else:
        raise DownloadError("; ".join(failures), "Check the network connection and the URL, then rerun.")
    if not keep_part:
        os.replace(part, dest)
    return got


def _download(url: str, part: Path, progress: Progress | None, timeout: float) -> Fetched:
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": f"strcli/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        request = urllib.request.Request(url, headers=headers)
    except ValueError as err:
        raise DownloadError(f"bad URL ({err})") from err
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            return Fetched(ranges=True)  # the partial file is already whole; the checksum decides
        raise DownloadError(f"HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"cannot connect ({getattr(err, 'reason', err)})") from err
    min_bytes, window = MIN_RATE_BYTES, MIN_RATE_WINDOW_S
    with response:
        resumed = response.status == 206
        if not resumed:
            have = 0  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None and length.isdigit() else None
        ranges = resumed or response.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        done = have
        window_start, window_done = time.monotonic(), done
        with open(part, "ab" if resumed else "wb") as out:
            while True:
                try:
                    block = response.read1(_CHUNK)  # what has come, not a whole MiB: the rate is seen
                except (http.client.HTTPException, OSError) as err:
                    raise InterruptedDownload(
                        f"interrupted after {done} bytes ({type(err).__name__}).",
                        "Rerun the same command to resume.") from err
                if not block:
                    break
                try:
                    out.write(block)
                except OSError as err:
                    out.close()
                    part.unlink(missing_ok=True)  # a part file on a full disk holds the space needed
                    raise output_error(err, part.with_name(part.name.removesuffix(".part"))) from err
                done += len(block)
                if progress:
                    progress(done, total)
                now = time.monotonic()
                if now - window_start >= window:
                    if done - window_done < min_bytes:
                        of = f" of {total}" if total is not None else ""
                        raise InterruptedDownload(
                            f"the download stalled: {done - window_done} bytes in the last {now - window_start:.0f} s, "
                            f"fewer than the {_kib(min_bytes)} it must bring every {window:g} s ({done}{of} bytes "
                            "so far).",
                            f"The partial file {part} is kept: rerun the same command to resume, later or on a "
                            "faster network.")
                    window_start, window_done = now, done
    if total is not None and done < total:
        raise InterruptedDownload(f"interrupted after {done} of {total} bytes.",
                                  "Rerun the same command to resume.")
    return Fetched(length_known=total is not None, ranges=ranges, added=done - have)


def _kib(count: int) -> str:
    return f"{count // 1024} KiB" if count >= 1024 else f"{count} bytes"


def _extract_member(archive: Path, member: str, dest: Path) -> None:
    """Copy one member of a .tar(.gz/.bz2/.xz) or .zip archive to `dest` (nothing else is
    unpacked). An archive that cannot be read to the member's end (cut short, damaged: any
    error of the archive, gzip, zlib or lzma readers) is deleted, and so is `dest`, so that a
    rerun downloads it anew: DownloadError (exit 5). An archive without the member:
    CorruptAssetError (exit 4). A failed write of `dest`: OutputError (exit 6)."""
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                return
            with tarfile.open(archive) as tf:
                info = tf.getmember(member)
                src = tf.extractfile(info)
                if src is None:
                    raise KeyError(member)
                with src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        except KeyError as err:
            dest.unlink(missing_ok=True)
            raise CorruptAssetError(f"{archive} has no member {member} ({err}).",
                                    f"Delete {archive} and fetch again.") from err
    except StrcliError:
        raise
    except Exception as err:  # tarfile, zipfile, gzip (EOFError, BadGzipFile), zlib, lzma, bz2 errors
        written = write_failure(err, dest)
        if written is not None:
            dest.unlink(missing_ok=True)
            raise written from err
        dest.unlink(missing_ok=True)
        archive.unlink(missing_ok=True)
        detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise DamagedDownload(f"the downloaded archive {archive} is damaged or cut short ({detail}): deleted.",
                            "Run the command again to download it anew.") from err


def identify(path: Path, manifest: Manifest, registry: Registry, digest: str | None = None) -> Asset | None:
    """The manifest asset a user's file is: by checksum (`digest`, if already computed),
    else by file name; None if neither says."""
    digest = digest or sha256_file(path)
    for asset in manifest.assets.values():
        if digest == registry.expected_sha256(asset):
            return asset
    for asset in manifest.assets.values():
        if path.name == Path(asset.file).name:
            return asset
    return None


def smpl_asset_name(gender: str) -> str:
    """The manifest name of the SMPL body-model file of `gender`."""
    return f"smpl_{gender}"


def store_file(source: Path, asset: Asset, digest: str, root: Path | None = None,
               check: Callable[[Asset, Path], None] | None = None) -> AssetState:
    """Copy a user's file in under `asset`'s name (temporary name, then renamed) and record its
    checksum `digest`: CorruptAssetError (exit 4) when the manifest pins another checksum, or
    when `check(asset, source)`, the caller's loadability check, refuses it first. The
    registry knows no loader: `strcli.road.assets.import_file` identifies and checks the file."""
    root = root or weights_root()
    registry = Registry(root)
    pinned = asset.sha256
    if pinned and digest != pinned:
        raise CorruptAssetError(f"{source} does not match {asset.name}: sha256 {digest}, "
                                f"expected {pinned}.", "Check you have the right file.")
    if check is not None:
        check(asset, source)
    dest = asset.path(root)
    if source.resolve() != dest.resolve():
        with WholeFile(dest) as tmp:
            shutil.copyfile(source, tmp)
    registry.record(asset, dest, digest, f"import:{source}")
    return AssetState(asset, dest, Status.PRESENT)


def list_states(manifest: Manifest | None = None, root: Path | None = None) -> list[AssetState]:
    """Every asset's state under the weights root (`strcli.road.assets.list_states` adds where
    the SMPL files are really taken from)."""
    manifest = manifest or Manifest.load()
    root = root or weights_root()
    registry = Registry(root)
    return [check_asset(asset, root, registry) for asset in manifest.assets.values()]


def ensure(name: str, download: bool = True, progress: Progress | None = None,
           manifest: Manifest | None = None, root: Path | None = None) -> AssetState:
    """Asset `name`, downloaded on first use when it can be and `download` allows it;
    otherwise the error `require` gives. The state's checksum is known unless UNVERIFIED."""
    manifest = manifest or Manifest.load()
    asset = manifest.get(name)
    state = check_asset(asset, root)
    if state.status == Status.MISSING and download and not asset.manual and asset.urls:
        fetch_asset(asset, root, progress)
        state = check_asset(asset, root)
    if state.status not in (Status.PRESENT, Status.UNVERIFIED):
        require(name, manifest, root)  # raises the error that says how to get it
    return state


def recorded_sha256(name: str, manifest: Manifest | None = None, root: Path | None = None) -> str:
    """The checksum a present asset was verified against ("" if none is known)."""
    manifest = manifest or Manifest.load()
    return Registry(root or weights_root()).expected_sha256(manifest.get(name))


@dataclass(frozen=True)
class Need:
    """A manifest asset a run needs. `fallback` says what the run does without it when it
    cannot be had ("" = the run cannot go on); `way` is a further way around its absence
    (a sentence), besides the asset's own (`Asset.offline`, `Asset.instructions`)."""

    asset: str
    fallback: str = ""
    way: str = ""
    what: str = ""  # what the file is, for the message (default: the asset's description)


def gather(needs: Sequence[Need], download: bool, elsewhere: Sequence[MissingAssetError] = (),
           progress_for: Callable[[str], Progress] | None = None, manifest: Manifest | None = None,
           root: Path | None = None) -> list[str]:
    """Make every asset of `needs` present before a run starts, or fail once, naming every
    file it lacks. Returns the names of the assets that stay missing and have a fallback.

    First every asset is checked; nothing is downloaded while a file is missing that no
    download brings: one of `elsewhere` (the SMPL model, found by `find_smpl_file`) or a
    manual asset without a fallback. Then, with `download`, each missing downloadable asset
    is fetched (`progress_for(name)` gets its bytes), the others still tried when one fails.
    Corrupt files are left to `ensure` (exit 4).

    Raises MissingAssetError (exit 3) when a missing file needs a manual step, or when
    `download` is False and a file without a fallback is missing; DownloadError (exit 5)
    when every missing file could be downloaded but a download failed. The message names
    each missing file, where it goes, and every way around it.
    """
    manifest = manifest or Manifest.load()
    root = root or weights_root()
    registry = Registry(root)
    missing: list[tuple[Need, Asset]] = []
    for need in needs:
        asset = manifest.get(need.asset)
        if all(n.asset != need.asset for n, _ in missing) and \
                check_asset(asset, root, registry).status == Status.MISSING:
            missing.append((need, asset))
    fetchable = [(n, a) for n, a in missing if not a.manual and a.urls]
    blocking = [(n, a) for n, a in missing if (a.manual or not a.urls) and not n.fallback]
    if elsewhere or blocking:  # a manual step comes first: download nothing yet
        listed = blocking + [(n, a) for n, a in fetchable if download or not n.fallback]
        raise _missing_files(listed, elsewhere, {}, root, download, manual_first=True)
    if not download:
        listed = [(n, a) for n, a in fetchable if not n.fallback]
        if listed:
            raise _missing_files(listed, (), {}, root, download)
        return [n.asset for n, _ in missing]
    failures: dict[str, str] = {}
    for need, asset in fetchable:
        try:
            fetch_asset(asset, root, progress_for(asset.name) if progress_for else None)
        except DownloadError as err:
            reason = getattr(err, "reason", err.message).rstrip(".")
            failures[asset.name] = reason + (" (the partial file is kept: a rerun resumes it)"
                                             if isinstance(err, InterruptedDownload) else "")
    if failures:
        raise _missing_files([(n, a) for n, a in fetchable if a.name in failures], (), failures, root, download)
    return [n.asset for n, a in missing if (a.manual or not a.urls)]


def _missing_files(listed: list[tuple[Need, Asset]], elsewhere: Sequence[MissingAssetError],
                   failures: dict[str, str], root: Path, download: bool,
                   manual_first: bool = False) -> MissingAssetError | DownloadError:
    """One error naming every missing file of a run (`gather`): what, where it would go,
    why it is missing, and each way around it."""
    # One entry per file: what it is and where it goes, then every way around it.
    entries = [(err.message.rstrip("."), err.hint.rstrip(".")) for err in elsewhere]
    for need, asset in listed:
        where = f"{Path(asset.file).name}, to {asset.path(root)}"
        if asset.manual or not asset.urls:
            entries.append((f"{asset.name} ({need.what or asset.description}; {where})",
                            (asset.instructions or f"see {asset.homepage}") + (f"; {need.way}" if need.way else "")))
            continue
        why = (f": download failed: {failures[asset.name]}" if asset.name in failures
               else ": not downloaded yet" if manual_first and download else "")
        source = asset.urls[0] + (f" (member {asset.archive_member} of it)" if asset.archive_member else "")
        named = Path(asset.archive_member).name if asset.archive_member else archive_name(asset.urls[0])
        file = named if "-" not in named or "." in named.split("-")[-1] else Path(asset.file).name
        way = f"download {source} where there is network, then `strcli weights import {file} --name {asset.name}`"
        entries.append((f"{asset.name} ({where}){why}",
                        way + "".join(f"; {extra}" for extra in (asset.offline, need.way) if extra)))
    fetch = [a.name for n, a in listed if not a.manual and a.urls]
    first = ""
    if fetch and not download:
        first = (f"rerun without --offline where there is network, or run `strcli weights fetch "
                 f"{' '.join(fetch)}` there")
    elif fetch and failures:
        first = "check the network and rerun (downloads resume)"
    elif fetch:
        first = "rerun with network: the files not downloaded yet are fetched then"
    why = ("" if failures else " (nothing was downloaded: a manual step comes first)" if manual_first and download
           else " and --offline downloads nothing" if not download else "")
    if len(entries) == 1:  # one file: one line
        (what, way), = entries
        message = f"1 file this run needs is missing{why}: {what}."
        hint = "To go on: " + "; ".join(w for w in (first, way) if w) + "."
    else:  # several: a headline, then one indented line per file, so that each stays readable
        message = (f"{len(entries)} files this run needs are missing{why}:\n"
                   + "\n".join(f"  - {what}.\n      To go on: {way}." for what, way in entries))
        hint = f"\n  Then {first}." if first else "\n  Then rerun."
    error = (DownloadError if failures and not manual_first else MissingAssetError)(message, hint)
    if len(entries) > 1:
        error.lines = (message.split("\n")[0],
                       *(line for what, way in entries for line in (f"  - {what}.", f"      To go on: {way}.")),
                       hint.lstrip("\n"))
    return error
