"""MNIST and Fashion-MNIST with verified downloads and an offline cache.

:func:`load_mnist` has the semantics of the book's ``dataset.mnist.load_mnist``.
Every file is checked against its published SHA-256 before use, downloads are
atomic (temp file + ``os.replace``), and once the files are present nothing
touches the network.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit
from urllib.request import url2pathname

import numpy as np
import platformdirs
import requests
import urllib3
from tqdm import tqdm

from fastgrad import idx
from fastgrad.idx import DataIntegrityError, IdxFormatError

__all__ = [
    "CHECKSUMS", "DATASETS", "FILES", "MIRRORS", "DataIntegrityError", "DownloadError",
    "FileDigest", "IdxFormatError", "LocalFile", "default_data_dir", "fetch", "find_cached",
    "load_mnist",
]

DATASETS = ("mnist", "fashion")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MIRRORS = MappingProxyType({
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
})
# Read-only copies installed by the OS (Debian's dataset-fashion-mnist),
# looked in before downloading.
SYSTEM_DIRS = MappingProxyType({
    "mnist": (),
    "fashion": (Path("/usr/share/datasets/fashion-mnist"),),
})
ENV_DATA_DIR = "FASTGRAD_DATA_DIR"
ENV_MIRRORS = "FASTGRAD_MNIST_MIRRORS"
TIMEOUT = (10.0, 60.0)  # requests' (connect, read) seconds
RETRY_DELAY = 1.0  # seconds before the one retry of a failed transfer
_CHUNK = 1 << 20
_NPZ_FORMAT = 1


@dataclass(frozen=True)
class FileDigest:
    """Published digests of one file; at least one SHA-256 must be given.

    ``gz_sha256`` matches the mirrors' exact bytes. ``raw_sha256`` and
    ``raw_size`` describe the decompressed IDX bytes, so a re-compressed copy
    (different .gz bytes, same content) is accepted too.
    """

    gz_sha256: str | None = None
    raw_sha256: str | None = None
    raw_size: int | None = None

    def __post_init__(self):
        for field in ("gz_sha256", "raw_sha256"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or len(value) != 64
                                      or value.strip("0123456789abcdef")):
                raise ValueError(f"{field}: expected 64 lowercase hex digits, got {value!r}")
        if self.gz_sha256 is None and self.raw_sha256 is None:
            raise ValueError("FileDigest needs gz_sha256 or raw_sha256")
        if self.raw_size is not None and (not isinstance(self.raw_size, int) or self.raw_size < 0):
            raise ValueError(f"raw_size: expected a non-negative int, got {self.raw_size!r}")

    def key(self) -> str:
        return f"{self.gz_sha256 or ''}|{self.raw_sha256 or ''}|{self.raw_size or ''}"


# Copied from shared/data/CHECKSUMS.md (published digests).
CHECKSUMS = MappingProxyType({
    "mnist": MappingProxyType({
        "train-images-idx3-ubyte": FileDigest(
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
        "train-labels-idx1-ubyte": FileDigest(
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
        "t10k-images-idx3-ubyte": FileDigest(
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
        "t10k-labels-idx1-ubyte": FileDigest(
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
    }),
    # Upstream publishes only MD5s of its .gz files: verify the content instead.
    "fashion": MappingProxyType({
        "train-images-idx3-ubyte": FileDigest(
            None, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
        "train-labels-idx1-ubyte": FileDigest(
            None, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
        "t10k-images-idx3-ubyte": FileDigest(
            None, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
        "t10k-labels-idx1-ubyte": FileDigest(
            None, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
    }),
})
# Decompression limit for a file whose digest gives no raw_size: the largest
# known IDX file plus a margin (a bigger file needs raw_size in its FileDigest).
_MAX_RAW_SIZE = max(d.raw_size for files in CHECKSUMS.values() for d in files.values()) + (4 << 20)


class DownloadError(OSError):
    """No mirror delivered a file (network or HTTP errors, no digest mismatch)."""


@dataclass(frozen=True)
class LocalFile:
    """A verified data file: where it is, its SHA-256 and what it matched."""

    name: str
    path: Path
    sha256: str
    verified_by: str  # "gz" (published .gz digest), "raw" (decompressed), "cache" (npz record)


def default_data_dir(dataset: str = "mnist") -> Path:
    """Cache folder: ``$FASTGRAD_DATA_DIR/<dataset>``, else the user cache dir."""
    dataset = _check_dataset(dataset)
    root = os.environ.get(ENV_DATA_DIR)
    # one subfolder per dataset: both use the same four file names
    base = Path(root).expanduser() if root else Path(platformdirs.user_cache_dir("fastgrad"))
    return base / dataset


def find_cached(dataset: str = "mnist", data_dir=None) -> bool:
    """Whether all four files are present locally (so loading needs no network).

    Presence only: digests are checked when the files are loaded.
    """
    dataset = _check_dataset(dataset)
    directory = _resolve_dir(dataset, data_dir)
    return all(any(p.is_file() for p in _candidates(dataset, directory, n)) for n in FILES)


def fetch(dataset="mnist", *, data_dir=None, mirrors=None, progress=True, checksums=None):
    """Make sure the four files are present and verified, downloading if needed.

    Parameters are as for :func:`load_mnist`.

    Returns
    -------
    list of LocalFile
        One per file, in :data:`FILES` order.
    """
    dataset = _check_dataset(dataset)
    directory = _resolve_dir(dataset, data_dir)
    digests = _resolve_checksums(dataset, checksums)
    found = _fetch(dataset, directory, digests, _resolve_mirrors(dataset, mirrors), progress, {})
    return [local for local, _raw in found]


def load_mnist(normalize=True, flatten=True, one_hot_label=False, *, dataset="mnist",
               data_dir=None, mirrors=None, progress=True, checksums=None):
    """Load MNIST (or Fashion-MNIST) like the book's ``load_mnist``.

    Parameters
    ----------
    normalize : bool
        float32 pixels in [0, 1] instead of uint8.
    flatten : bool
        Images as ``(N, 784)`` instead of ``(N, 1, 28, 28)``.
    one_hot_label : bool
        Labels as float32 ``(N, 10)`` one-hot instead of uint8 ``(N,)``.
    dataset : {"mnist", "fashion"}
    data_dir : str or PathLike, optional
        Folder holding the files; default :func:`default_data_dir`.
    mirrors : sequence of str, optional
        Base URLs (http, https or file) tried in order; replaces the defaults
        and ``$FASTGRAD_MNIST_MIRRORS``. An empty list means offline only.
    progress : bool
        Show a progress bar per downloaded file.
    checksums : mapping, optional
        File name -> :class:`FileDigest` overriding the published digests
        (for tests with synthetic files).

    Returns
    -------
    (x_train, t_train), (x_test, t_test)
    """
    for name, flag in (("normalize", normalize), ("flatten", flatten),
                       ("one_hot_label", one_hot_label), ("progress", progress)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name}: expected a bool, got {type(flag).__name__}")
    arrays = _load_uint8(dataset, data_dir, mirrors, progress, checksums)
    out = []
    for images, labels in ((arrays["train_img"], arrays["train_label"]),
                           (arrays["test_img"], arrays["test_label"])):
        x = images.astype(np.float32) / np.float32(255.0) if normalize else images
        if not flatten:
            x = x.reshape(-1, 1, idx.ROWS, idx.COLS)
        t = labels
        if one_hot_label:
            t = np.zeros((labels.size, idx.NUM_CLASSES), dtype=np.float32)
            t[np.arange(labels.size), labels] = 1.0
        out.append((x, t))
    return tuple(out)


def load_test_set(dataset="mnist", data_dir=None, normalize=True):
    """The verified test images and labels, from local files only.

    Reads ``t10k-*`` from ``data_dir`` (or the cache and system folders)
    without downloading and without writing anything, so a read-only folder
    holding only the test files, such as a shared data folder, works.

    Parameters
    ----------
    dataset : {"mnist", "fashion"}
    data_dir : str or PathLike, optional
        Folder holding the test files; default :func:`default_data_dir`.
    normalize : bool
        float32 pixels in [0, 1] instead of uint8.

    Returns
    -------
    x : ndarray, shape (N, 784)
        float32 in [0, 1] when ``normalize``, else uint8.
    t : ndarray of uint8, shape (N,)

    Raises
    ------
    FileNotFoundError
        When a test file is not present locally.
    """
    dataset = _check_dataset(dataset)
    directory = _resolve_dir(dataset, data_dir)
    digests = _resolve_checksums(dataset, None)
    arrays = []
    for name in FILES[2:]:
        fname = f"{name}.gz"
        path = next((p for p in _candidates(dataset, directory, name) if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{fname} not found in {directory} (run `fastgrad download`)")
        _sha, raw, _how = _verify(path, fname, digests[name], str(path))
        arrays.append(idx.read_any(raw if raw is not None else _gunzip(path, fname, str(path)),
                                   fname))
    x, t = arrays
    if len(x) != len(t):
        raise IdxFormatError(f"{FILES[2]}.gz has {len(x)} images but {FILES[3]}.gz has "
                             f"{len(t)} labels (in {directory})", filename=f"{FILES[2]}.gz")
    return (x.astype(np.float32) / np.float32(255.0) if normalize else x), t


# --- loading -----------------------------------------------------------------

_ARRAY_KEYS = ("train_img", "train_label", "test_img", "test_label")


def _load_uint8(dataset, data_dir, mirrors, progress, checksums):
    dataset = _check_dataset(dataset)
    directory = _resolve_dir(dataset, data_dir)
    digests = _resolve_checksums(dataset, checksums)
    mirror_list = _resolve_mirrors(dataset, mirrors)
    expected = [digests[n].key() for n in FILES]
    npz_path = directory / f"fastgrad-{dataset}.npz"

    # A source whose exact bytes were verified when the npz was built need
    # not be decompressed again (matters for raw-only digests: Fashion).
    meta = _read_npz(npz_path, arrays=False)
    trusted = {}
    if meta is not None:
        pairs = zip(FILES, expected, meta["expected"], meta["source_sha256"], strict=True)
        for n, key, old_key, sha in pairs:
            if key == old_key:
                trusted[n] = str(sha)
    found = _fetch(dataset, directory, digests, mirror_list, progress, trusted)
    sources = [local.sha256 for local, _raw in found]

    cached = _read_npz(npz_path, arrays=True) if meta is not None else None
    if (cached is not None and list(cached["expected"]) == expected
            and list(cached["source_sha256"]) == sources):
        return cached

    raws = []
    for n, (local, raw) in zip(FILES, found, strict=True):
        if local.verified_by == "cache":  # the npz vouched for it but is unusable: verify fully
            _sha, raw, _how = _verify(local.path, local.name, digests[n], str(local.path))
        raws.append(raw if raw is not None else _gunzip(local.path, local.name, str(local.path)))
    # FILES and _ARRAY_KEYS share their order
    arrays = {key: idx.read_any(raw, local.name)
              for key, (local, _), raw in zip(_ARRAY_KEYS, found, raws, strict=True)}
    for img_key, lab_key, img_name, lab_name in (
            ("train_img", "train_label", FILES[0], FILES[1]),
            ("test_img", "test_label", FILES[2], FILES[3])):
        if len(arrays[img_key]) != len(arrays[lab_key]):
            raise IdxFormatError(
                f"{img_name}.gz has {len(arrays[img_key])} images but {lab_name}.gz has "
                f"{len(arrays[lab_key])} labels (in {directory})", filename=f"{img_name}.gz")
    _write_npz(npz_path, arrays, sources, expected)
    return arrays


def _read_npz(path, *, arrays):
    """The cached arrays and their source digests, or None if absent or unusable."""
    try:
        # our own handle: np.load leaks the one it opens when the zip is truncated
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            keys = ("format", "expected", "source_sha256") + (_ARRAY_KEYS if arrays else ())
            out = {k: z[k] for k in keys}
    except FileNotFoundError:
        return None
    except Exception:  # corrupt, foreign or concurrently replaced: just rebuild it
        return None
    shape = (len(FILES),)
    if (out["format"].shape != () or int(out["format"]) != _NPZ_FORMAT
            or out["expected"].shape != shape or out["source_sha256"].shape != shape):
        return None
    if arrays:
        for i_key, l_key in (("train_img", "train_label"), ("test_img", "test_label")):
            x, t = out[i_key], out[l_key]
            if (x.dtype != np.uint8 or t.dtype != np.uint8 or x.ndim != 2
                    or x.shape[1] != idx.ROWS * idx.COLS or t.shape != (len(x),)):
                return None
    return out


def _write_npz(path, arrays, sources, expected):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temp_file(path.parent, path.name)
    except OSError:  # read-only data folder: loading still works, just uncached
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, format=np.array(_NPZ_FORMAT), expected=np.array(expected),
                     source_sha256=np.array(sources), **arrays)
            fh.flush()
            os.fsync(fh.fileno())  # data on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- fetching and verification -------------------------------------------------


def _fetch(dataset, directory, digests, mirrors, progress, trusted):
    """Return ``[(LocalFile, raw bytes or None)]``, downloading what is missing or bad."""
    session = None  # created only when a download is needed: offline means no socket
    out = []
    try:
        for n in FILES:
            digest, fname = digests[n], f"{n}.gz"
            problems, found = [], None
            for path in _candidates(dataset, directory, n):
                if not path.is_file():
                    continue
                try:
                    sha, raw, how = _verify(path, fname, digest, str(path), trusted.get(n))
                except DataIntegrityError as exc:
                    problems.append(f"local copy {path}: {exc}")
                    continue
                found = (LocalFile(fname, path, sha, how), raw)
                break
            if found is None:
                if not mirrors:
                    # offline: a bad local copy is the real problem, if there is one
                    problems.append("no mirrors to download from")
                    if len(problems) > 1:
                        raise DataIntegrityError(_summary(fname, directory, problems))
                    raise DownloadError(_summary(fname, directory, problems)
                                        + _remedies(dataset, directory))
                if session is None:
                    session = requests.Session()
                found = _download(session, dataset, fname, digest, directory, mirrors,
                                  progress, problems)
            out.append(found)
    finally:
        if session is not None:
            session.close()
    return out


def _download(session, dataset, fname, digest, directory, mirrors, progress, problems):
    directory.mkdir(parents=True, exist_ok=True)
    integrity = None
    for base in mirrors:
        url = base + fname
        failures = []  # one short reason per try: one line per mirror in the message
        for _attempt in (1, 2):
            try:
                return _download_from(session, url, base, fname, digest, directory, progress)
            except DataIntegrityError as exc:  # a corrupt copy stays corrupt: next mirror
                problems.append(str(exc))
                integrity = exc
                break
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                failures.append(_reason(exc))
                status = getattr(getattr(exc, "response", None), "status_code", None)
                if status is not None and status < 500:  # 404 and friends won't change
                    break
                if len(failures) == 1 and RETRY_DELAY:
                    time.sleep(RETRY_DELAY)
        if failures:
            if len(set(failures)) == 1:
                tries = f" ({len(failures)} tries)" if len(failures) > 1 else ""
                problems.append(f"{url}: {failures[0]}{tries}")
            else:
                problems.append(f"{url}: " + "; ".join(
                    f"try {i}: {r}" for i, r in enumerate(failures, 1)))
    message = _summary(fname, directory, problems)
    if integrity is not None:
        # keep the subclass (IdxFormatError) so callers can tell a bad header apart
        raise type(integrity)(message, filename=fname, expected=integrity.expected,
                              actual=integrity.actual, source=integrity.source)
    raise DownloadError(message + _remedies(dataset, directory))


def _download_from(session, url, base, fname, digest, directory, progress):
    fd, tmp = _temp_file(directory, fname)
    try:
        with os.fdopen(fd, "wb") as out:
            if url.startswith("file:"):
                _copy_file(url, out, fname, progress)
            else:
                _copy_http(session, url, out, fname, progress)
            out.flush()
            os.fsync(out.fileno())  # data on disk before the rename makes it visible
        sha, raw, how = _verify(tmp, fname, digest, base)
        if raw is None:
            raw = _gunzip(tmp, fname, base)
        try:
            idx.read_any(raw, fname)  # a bad header never reaches the cache either
        except IdxFormatError as exc:
            exc.source = base
            exc.args = (f"{exc} (from {base})",)
            raise
        os.replace(tmp, directory / fname)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return LocalFile(fname, directory / fname, sha, how), raw


def _temp_file(directory, name):
    """A new hidden file beside ``name``, for an atomic ``os.replace`` into place.

    Unlike ``mkstemp`` (mode 0600) it honours the umask, so a shared cache
    stays readable by everyone it should be.
    """
    while True:
        tmp = Path(directory) / f".{name}.{secrets.token_hex(6)}.part"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), tmp
        except FileExistsError:
            continue


def _copy_http(session, url, out, fname, progress):
    # identity + undecoded stream: we verify the bytes exactly as the mirror stores them
    with session.get(url, stream=True, timeout=TIMEOUT,
                     headers={"Accept-Encoding": "identity"}) as response:
        response.raise_for_status()
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        done = 0
        with tqdm(total=total, desc=fname, unit="B", unit_scale=True, unit_divisor=1024,
                  disable=not progress) as bar:
            for chunk in response.raw.stream(_CHUNK, decode_content=False):
                out.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
    if total is not None and done != total:
        raise DownloadError(f"transfer ended after {done} of {total} bytes")


def _copy_file(url, out, fname, progress):
    path = Path(url2pathname(urlsplit(url).path))
    with open(path, "rb") as src, tqdm(total=os.fstat(src.fileno()).st_size, desc=fname,
                                       unit="B", unit_scale=True, unit_divisor=1024,
                                       disable=not progress) as bar:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            bar.update(len(chunk))


def _verify(path, fname, digest, source, trusted_sha=None):
    """Check one .gz file; return ``(sha256 of the .gz, raw bytes or None, how)``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    sha = h.hexdigest()
    if sha == digest.gz_sha256:
        return sha, None, "gz"
    if trusted_sha is not None and sha == trusted_sha:
        return sha, None, "cache"
    want = f".gz sha256 {digest.gz_sha256}" if digest.gz_sha256 else ""
    if digest.raw_sha256 is None:
        raise DataIntegrityError(
            f"{fname} from {source}: expected {want}, got .gz sha256 {sha}", filename=fname,
            expected=digest.gz_sha256, actual=sha, source=source)
    raw = _gunzip(path, fname, source, digest=digest, gz_sha=sha)
    raw_sha = hashlib.sha256(raw).hexdigest()
    size_ok = digest.raw_size is None or len(raw) == digest.raw_size
    if raw_sha != digest.raw_sha256 or not size_ok:
        want = (want + " or " if want else "") + f"decompressed sha256 {digest.raw_sha256}"
        if digest.raw_size is not None:
            want += f" ({digest.raw_size} bytes)"
        raise DataIntegrityError(
            f"{fname} from {source}: expected {want}; got .gz sha256 {sha}, decompressed "
            f"sha256 {raw_sha} ({len(raw)} bytes)", filename=fname,
            expected=digest.raw_sha256, actual=raw_sha, source=source)
    return sha, raw, "raw"


def _gunzip(path, fname, source, digest=None, gz_sha=None):
    """Decompress a .gz file (all its members) without ever holding more than the limit.

    The limit is ``digest.raw_size`` when known, else :data:`_MAX_RAW_SIZE`:
    output beyond it is refused as soon as it appears, so a gzip bomb costs
    at most the limit in memory, not its full expansion.
    """
    limit = _MAX_RAW_SIZE if digest is None or digest.raw_size is None else digest.raw_size
    parts, size, members = [], 0, 0
    try:
        with open(path, "rb") as fh:
            d, pending = None, b""
            while True:
                if d is None:  # before a member: skip zero padding, stop at end of file
                    pending = pending.lstrip(b"\0")
                    while not pending and (pending := fh.read(_CHUNK)):
                        pending = pending.lstrip(b"\0")
                    if not pending:
                        if members:
                            break
                        raise EOFError("empty file")
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data = pending or fh.read(_CHUNK)
                if not data:
                    raise EOFError("compressed file ended before the end-of-stream marker "
                                   "was reached")
                # max_length stays >= 1 (0 would mean "no limit")
                out = d.decompress(data, limit + 1 - size)
                size += len(out)
                if size > limit:
                    want = (f"the expected {limit} bytes" if digest is not None
                            and digest.raw_size is not None else f"the {limit}-byte limit")
                    raise DataIntegrityError(
                        f"{fname} from {source}: decompresses to more than {want} "
                        f"(refused as a possible gzip bomb)", filename=fname,
                        expected=str(limit), actual=f">{limit} bytes", source=source)
                parts.append(out)
                if d.eof:
                    members += 1
                    pending, d = d.unused_data, None
                else:
                    pending = d.unconsumed_tail
    except (EOFError, zlib.error) as exc:  # truncated or damaged
        detail = ""
        if digest is not None:
            want = " or ".join(f"{kind} sha256 {value}" for kind, value in (
                (".gz", digest.gz_sha256), ("decompressed", digest.raw_sha256)) if value)
            detail = f"; expected {want}, got .gz sha256 {gz_sha}"
        raise DataIntegrityError(
            f"{fname} from {source}: not a valid gzip file ({exc}){detail}", filename=fname,
            expected=digest and (digest.gz_sha256 or digest.raw_sha256), actual=gz_sha,
            source=source) from exc
    return b"".join(parts)


def _summary(fname, directory, problems):
    return f"could not get a verified {fname} into {directory}:\n  - " + "\n  - ".join(problems)


def _remedies(dataset, directory):
    """What a user without a reachable mirror can do, as the end of the error message."""
    lines = [f"copy the four files ({', '.join(f'{n}.gz' for n in FILES)}) into {directory},"
             " or into a folder given with --data-dir DIR (data_dir=DIR in Python)",
             f"name a mirror you can reach: {ENV_MIRRORS}=URL[,URL...] (http://, https:// or "
             "file:///folder/; `fastgrad download --mirror URL` too)"]
    if dataset != "fashion":
        system = next((d for d in SYSTEM_DIRS["fashion"]
                       if all((d / f"{n}.gz").is_file() for n in FILES)), None)
        if system is not None:
            lines.append(f"use Fashion-MNIST, installed on this system in {system}: "
                         '--dataset fashion (dataset="fashion" in Python)')
    return "\nWhat you can do:\n  - " + "\n  - ".join(lines)


# root cause -> a few words, first match wins (requests wraps urllib3 wraps socket errors)
_REASONS = (
    ((urllib3.exceptions.ProxyError, requests.exceptions.ProxyError), "proxy failed"),
    ((ConnectionRefusedError,), "connection refused"),
    ((ConnectionResetError,), "connection reset"),
    ((socket.gaierror, urllib3.exceptions.NameResolutionError), "host name not found"),
    ((urllib3.exceptions.ConnectTimeoutError, requests.ConnectTimeout),
     "timed out while connecting"),
    ((urllib3.exceptions.ReadTimeoutError, requests.ReadTimeout), "timed out while reading"),
    ((TimeoutError, urllib3.exceptions.TimeoutError, requests.Timeout), "timed out"),
    ((ssl.SSLCertVerificationError,), "TLS certificate not trusted"),
    ((ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError), "TLS failed"),
    ((urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError),
     "connection broken during the transfer"),
    ((FileNotFoundError,), "file not found"),
    ((PermissionError,), "permission denied"),
)


def _reason(exc):
    """A few words for why one transfer failed: its root cause, not the whole chain."""
    chain, todo = [], [exc]
    while todo:  # requests and urllib3 nest the cause in args, .reason and __cause__
        e = todo.pop(0)
        if not isinstance(e, BaseException) or any(e is c for c in chain):
            continue
        chain.append(e)
        todo += [*e.args, getattr(e, "reason", None), e.__cause__, e.__context__]
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None) is not None:
        return f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    if isinstance(exc, DownloadError):  # ours: already one short line
        return str(exc)
    # NewConnectionError subclasses ConnectTimeoutError but means any failed connect:
    # its cause (refused, unreachable, ...) says what happened
    causes = [e for e in chain if type(e) is not urllib3.exceptions.NewConnectionError]
    for types, words in _REASONS:
        hit = next((e for e in causes if isinstance(e, types)), None)
        if hit is not None:
            # a local path (file:// mirror, or the cache folder) is worth naming
            where = getattr(hit, "filename", None)
            return f"{words}: {where}" if where else words
    root = chain[-1]
    text = getattr(root, "strerror", None) or str(root) or type(root).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# --- argument checking -------------------------------------------------------


def _check_dataset(dataset):
    if dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {DATASETS}, got {dataset!r}")
    return dataset


def _resolve_dir(dataset, data_dir):
    if data_dir is None:
        return default_data_dir(dataset)
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir: expected a path, got {type(data_dir).__name__}")
    return Path(os.fspath(data_dir)).expanduser()


def _candidates(dataset, directory, name):
    return [directory / f"{name}.gz", *(d / f"{name}.gz" for d in SYSTEM_DIRS[dataset])]


def _resolve_mirrors(dataset, mirrors):
    what = "mirrors"
    if mirrors is None:
        env = os.environ.get(ENV_MIRRORS, "").strip()
        what, mirrors = (f"${ENV_MIRRORS}", env) if env else (what, MIRRORS[dataset])
    if isinstance(mirrors, str):
        mirrors = [m.strip() for m in mirrors.split(",") if m.strip()]
    out = []
    for url in mirrors:
        if not isinstance(url, str):
            raise TypeError(f"{what}: expected URL strings, got {type(url).__name__}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "file"):
            raise ValueError(f"{what}: {url!r} must start with http://, https:// or file://")
        if parts.scheme != "file" and not parts.netloc:
            raise ValueError(f"{what}: {url!r} has no host")
        if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
            raise ValueError(f"{what}: {url!r}: file:// mirrors must be local paths")
        out.append(url if url.endswith("/") else url + "/")
    return out


def _resolve_checksums(dataset, checksums):
    digests = dict(CHECKSUMS[dataset])
    if checksums is None:
        return digests
    if not isinstance(checksums, Mapping):
        raise TypeError(f"checksums: expected a mapping, got {type(checksums).__name__}")
    for key, value in checksums.items():
        name = key.removesuffix(".gz") if isinstance(key, str) else key
        if name not in FILES:
            raise ValueError(f"checksums: unknown file {key!r}; expected one of {FILES}")
        if isinstance(value, Mapping):
            value = FileDigest(**value)
        if not isinstance(value, FileDigest):
            raise TypeError(f"checksums[{key!r}]: expected a FileDigest or mapping")
        digests[name] = value
    return digests
