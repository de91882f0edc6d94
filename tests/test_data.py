"""Tests for fastgrad.data: verified downloads from loopback mirrors, cache, shim, CLI.

Real MNIST test files come from the shared data folder (never committed); the
missing training images, and anything deliberately broken, are built here.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib
import os
import shutil
import socket
import ssl
import sys
import threading
import time
import tracemalloc
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import requests
import urllib3

from fastgrad import data, idx
from fastgrad.commands import download
from fastgrad.data import DataIntegrityError, DownloadError, FileDigest, IdxFormatError, load_mnist

# also importable under --import-mode=importlib and in spawned workers
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _http import dead_url, serve, stalled  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRAIN_IMG, TRAIN_LAB = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMG, TEST_LAB = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
REAL = (TEST_IMG, TEST_LAB, TRAIN_LAB)
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
N_TRAIN = 64


def _shared_mnist() -> Path | None:
    env = os.environ.get("FASTGRAD_SHARED_DATA")
    roots = [Path(env), Path(env) / "mnist"] if env else []
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
    return next((r for r in roots if all((r / f).is_file() for f in REAL)), None)


SHARED = _shared_mnist()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="real MNIST test files not found (../shared/data/mnist or "
    "$FASTGRAD_SHARED_DATA)")


# --- helpers -----------------------------------------------------------------


def _gz(raw: bytes, level: int = 9) -> bytes:
    return gzip.compress(raw, compresslevel=level, mtime=0)


def _digest(gz: bytes, raw: bytes) -> FileDigest:
    return FileDigest(hashlib.sha256(gz).hexdigest(), hashlib.sha256(raw).hexdigest(), len(raw))


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _synthetic(n=N_TRAIN, seed=0, prefix="train"):
    """Small valid image + label files: ``({filename: gz bytes}, checksums)``."""
    rng = np.random.default_rng(seed)
    raws = {f"{prefix}-images-idx3-ubyte.gz": idx.write_idx(
                rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
            f"{prefix}-labels-idx1-ubyte.gz": idx.write_idx(
                rng.integers(0, 10, n, dtype=np.uint8))}
    files = {name: _gz(raw) for name, raw in raws.items()}
    return files, {name: _digest(files[name], raws[name]) for name in files}


def _write(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def _leftovers(folder: Path):
    """Anything in a cache folder besides finished files (temp/partial files)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or "part" in p.name)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    # never the real user cache, the real Debian copy, or a configured mirror
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path / "env-cache"))
    monkeypatch.delenv(data.ENV_MIRRORS, raising=False)
    monkeypatch.setattr(data.platformdirs, "user_cache_dir", lambda *a: str(tmp_path / "user"))
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"mnist": (), "fashion": ()})
    monkeypatch.setattr(data, "RETRY_DELAY", 0)


def _block_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access while the files are cached")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(requests.Session, "send", refuse)


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a connection."""
    _block_network(monkeypatch)


@pytest.fixture
def site(tmp_path):
    """Mirror folder: real t10k files + synthetic training files; their checksums."""
    if SHARED is None:
        pytest.skip("real MNIST test files not found (../shared/data/mnist or "
                    "$FASTGRAD_SHARED_DATA)")
    folder = tmp_path / "site"
    folder.mkdir()
    for name in (TEST_IMG, TEST_LAB):
        shutil.copyfile(SHARED / name, folder / name)
    files, checksums = _synthetic()
    _write(folder, files)
    return folder, checksums


@pytest.fixture
def mirror(site):
    folder, _ = site
    with serve(folder) as m:
        yield m


# --- download path -----------------------------------------------------------


def test_download_verifies_and_loads(site, mirror, tmp_path):
    folder, checksums = site
    cache = tmp_path / "cache"
    (x, t), (xt, tt) = load_mnist(data_dir=cache, mirrors=[mirror.url], checksums=checksums,
                                  progress=False)
    assert x.shape == (N_TRAIN, 784) and xt.shape == (10000, 784)
    assert x.dtype == xt.dtype == np.float32 and 0.0 <= xt.min() and xt.max() == 1.0
    assert t.dtype == tt.dtype == np.uint8 and tt.shape == (10000,)
    assert tt[:10].tolist() == FIRST_TEST_LABELS
    assert sorted(mirror.requests) == sorted([TRAIN_IMG, TRAIN_LAB, TEST_IMG, TEST_LAB])
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [TRAIN_IMG, TRAIN_LAB, TEST_IMG, TEST_LAB, "fastgrad-mnist.npz"])
    for name in (TEST_IMG, TEST_LAB):  # real files, checked against the published digests
        assert _sha(cache / name) == data.CHECKSUMS["mnist"][name[:-3]].gz_sha256
    raw = gzip.decompress((folder / TRAIN_IMG).read_bytes())
    np.testing.assert_array_equal(x * 255, idx.read_images(raw, TRAIN_IMG))


def test_offline_reload_opens_no_socket(site, mirror, tmp_path, monkeypatch):
    _, checksums = site
    cache = tmp_path / "cache"
    first = load_mnist(False, data_dir=cache, mirrors=[mirror.url], checksums=checksums,
                       progress=False)
    _block_network(monkeypatch)

    def no_gunzip(*args, **kwargs):
        raise AssertionError("the npz cache should make decompression unnecessary")

    monkeypatch.setattr(data, "_gunzip", no_gunzip)
    served = len(mirror.requests)
    for mirrors in (None, [mirror.url]):  # default remote mirrors are not contacted either
        again = load_mnist(False, data_dir=cache, mirrors=mirrors, checksums=checksums)
        for a, b in zip((*first[0], *first[1]), (*again[0], *again[1]), strict=True):
            np.testing.assert_array_equal(a, b)
    assert len(mirror.requests) == served
    assert data.find_cached("mnist", cache)


def test_npz_rebuilt_when_sources_change(site, tmp_path, no_network):
    folder, checksums = site
    cache = shutil.copytree(folder, tmp_path / "cache")
    (_, t), _ = load_mnist(data_dir=cache, mirrors=[], checksums=checksums)
    files, new = _synthetic(seed=1)
    (cache / TRAIN_LAB).write_bytes(files[TRAIN_LAB])
    checksums = {**checksums, TRAIN_LAB: new[TRAIN_LAB]}
    (_, t2), _ = load_mnist(data_dir=cache, mirrors=[], checksums=checksums)
    expected = idx.read_labels(gzip.decompress(files[TRAIN_LAB]), TRAIN_LAB)
    np.testing.assert_array_equal(t2, expected)
    assert not np.array_equal(t, t2)
    (cache / "fastgrad-mnist.npz").write_bytes(b"not a zip file")  # corrupt cache: rebuilt
    (_, t3), _ = load_mnist(data_dir=cache, mirrors=[], checksums=checksums)
    np.testing.assert_array_equal(t3, expected)


def test_corrupt_mirror_skipped_for_next(site, mirror, tmp_path):
    folder, checksums = site
    bad = shutil.copytree(folder, tmp_path / "bad")
    blob = bytearray((bad / TRAIN_IMG).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (bad / TRAIN_IMG).write_bytes(bytes(blob))
    cache = tmp_path / "cache"
    with serve(bad) as corrupt:
        load_mnist(data_dir=cache, mirrors=[corrupt.url, mirror.url], checksums=checksums,
                   progress=False)
    assert corrupt.requests.count(TRAIN_IMG) == 1  # no retry of a digest mismatch
    assert mirror.requests == [TRAIN_IMG]
    assert _sha(cache / TRAIN_IMG) == checksums[TRAIN_IMG].gz_sha256
    assert _leftovers(cache) == []


def test_corrupt_only_mirror_raises_and_caches_nothing(site, tmp_path):
    folder, checksums = site
    blob = bytearray((folder / TRAIN_LAB).read_bytes())
    blob[-9] ^= 0xFF  # inside the gzip CRC trailer: still "gzip", wrong bytes
    (folder / TRAIN_LAB).write_bytes(bytes(blob))
    cache = tmp_path / "cache"
    with serve(folder) as m, pytest.raises(DataIntegrityError) as info:
        load_mnist(data_dir=cache, mirrors=[m.url], checksums=checksums, progress=False)
    message = str(info.value)
    for part in (TRAIN_LAB, checksums[TRAIN_LAB].gz_sha256, _sha(folder / TRAIN_LAB), m.url):
        assert part in message
    assert isinstance(info.value, ValueError) and info.value.filename == TRAIN_LAB
    assert not (cache / TRAIN_LAB).exists() and _leftovers(cache) == []


def test_published_digest_refuses_built_train_images(site, mirror, tmp_path):
    # Without a checksum override the synthetic file must fail the real digest.
    cache = tmp_path / "cache"
    with pytest.raises(DataIntegrityError) as info:
        load_mnist(data_dir=cache, mirrors=[mirror.url], progress=False)
    assert data.CHECKSUMS["mnist"]["train-images-idx3-ubyte"].gz_sha256 in str(info.value)
    assert not (cache / TRAIN_IMG).exists() and _leftovers(cache) == []


def test_truncated_transfer_leaves_no_partial_file(site, mirror, tmp_path):
    folder, checksums = site
    cache = tmp_path / "cache"
    with serve(folder, truncate={TRAIN_IMG}) as flaky:
        with pytest.raises(DownloadError, match=TRAIN_IMG) as info:
            load_mnist(data_dir=cache, mirrors=[flaky.url], checksums=checksums,
                       progress=False)
        assert isinstance(info.value, OSError)
        assert flaky.requests.count(TRAIN_IMG) == 2  # one retry
        assert not (cache / TRAIN_IMG).exists() and _leftovers(cache) == []
        load_mnist(data_dir=cache, mirrors=[flaky.url, mirror.url], checksums=checksums,
                   progress=False)
    assert _sha(cache / TRAIN_IMG) == checksums[TRAIN_IMG].gz_sha256
    assert _leftovers(cache) == []


def _bomb(size: int) -> bytes:
    """``size`` zero bytes gzipped a MiB at a time: a gzip bomb in miniature (~1000:1)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    return b"".join([*(c.compress(zeros) for _ in range(size >> 20)), c.flush()])


@pytest.mark.parametrize("raw_size_known", [True, False], ids=["raw_size", "default-cap"])
def test_gzip_bomb_refused_without_expanding(site, tmp_path, monkeypatch, raw_size_known):
    folder, checksums = site
    limit = 1 << 20  # a test-sized limit; the bomb expands to 64 times that
    (folder / TRAIN_IMG).write_bytes(_bomb(64 << 20))
    if not raw_size_known:
        monkeypatch.setattr(data, "_MAX_RAW_SIZE", limit)
    # raw digest only, as for Fashion-MNIST: the .gz must be decompressed to be checked
    checksums = {**checksums, TRAIN_IMG: FileDigest(
        None, checksums[TRAIN_IMG].raw_sha256, limit if raw_size_known else None)}
    cache = tmp_path / "cache"
    tracemalloc.start()
    try:
        with serve(folder) as m, pytest.raises(DataIntegrityError) as info:
            load_mnist(data_dir=cache, mirrors=[m.url], checksums=checksums, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    for part in (TRAIN_IMG, f"more than the {'expected ' if raw_size_known else ''}{limit}",
                 "gzip bomb", m.url):
        assert part in message
    assert info.value.filename == TRAIN_IMG and m.requests == [TRAIN_IMG]
    assert peak < 16 << 20  # stopped just past the limit, never near the 64 MiB expansion
    assert not cache.exists() or list(cache.iterdir()) == []


def test_downloads_and_npz_are_fsynced_before_rename(site, mirror, tmp_path, monkeypatch):
    _, checksums = site
    synced, renamed = set(), []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.add(os.fstat(fd).st_ino)
        real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        renamed.append(Path(dst).name)
        assert os.stat(src).st_ino in synced, f"{dst} renamed into place before fsync"
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    cache = tmp_path / "cache"
    load_mnist(data_dir=cache, mirrors=[mirror.url], checksums=checksums, progress=False)
    assert sorted(renamed) == sorted([TRAIN_IMG, TRAIN_LAB, TEST_IMG, TEST_LAB,
                                      "fastgrad-mnist.npz"])


def test_dead_and_missing_mirrors_fall_through(site, mirror, tmp_path):
    _, checksums = site
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as empty:  # 404 for everything
        load_mnist(data_dir=tmp_path / "cache", mirrors=[dead_url(), empty.url, mirror.url],
                   checksums=checksums, progress=False)
    assert sorted(empty.requests) == sorted([TRAIN_IMG, TRAIN_LAB, TEST_IMG, TEST_LAB])
    assert len(mirror.requests) == 4


def _fashion_system_copy(folder: Path) -> Path:
    """A folder holding the four Fashion file names, like /usr/share/datasets/fashion-mnist."""
    return _write(folder, {f"{n}.gz": b"" for n in data.FILES})  # presence is what counts


def _mirror_lines(message: str) -> list[str]:
    return [line for line in message.splitlines() if line.startswith("  - http")]


def test_offline_message_is_short_and_names_the_remedies(tmp_path, monkeypatch):
    dead = [dead_url(), dead_url()]  # loopback ports nothing listens on: refused
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        load_mnist(data_dir=cache, mirrors=dead, progress=False)
    message = str(info.value)
    assert message.startswith(f"could not get a verified {TRAIN_IMG} into {cache}:")
    # one line per mirror with the root cause, not urllib3's nested reprs
    assert _mirror_lines(message) == [f"  - {url}{TRAIN_IMG}: connection refused (2 tries)"
                                      for url in dead]
    for noise in ("Max retries", "HTTPConnectionPool", "NewConnectionError", "object at 0x"):
        assert noise not in message
    # what the user can do comes last
    tail = message[message.index("What you can do:"):]
    assert "--data-dir DIR" in tail and str(cache) in tail and data.ENV_MIRRORS in tail
    assert "--dataset fashion" not in message  # no system copy of Fashion-MNIST here

    system = _fashion_system_copy(tmp_path / "usr-share-fashion")
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"mnist": (), "fashion": (system,)})
    with pytest.raises(DownloadError) as info:
        load_mnist(data_dir=cache, mirrors=dead, progress=False)
    last = str(info.value).splitlines()[-1]
    assert "--dataset fashion" in last and str(system) in last
    # the offline-only case ends the same way
    with pytest.raises(DownloadError, match="no mirrors") as info:
        load_mnist(data_dir=cache, mirrors=[], progress=False)
    assert "--data-dir" in str(info.value) and "--dataset fashion" in str(info.value)
    # asking for Fashion itself: suggesting it would be no help
    with pytest.raises(DownloadError) as info:
        load_mnist(dataset="fashion", data_dir=cache, mirrors=dead, progress=False)
    assert "--dataset fashion" not in str(info.value)


def test_offline_message_from_the_cli(tmp_path, monkeypatch, capsys):
    from fastgrad.cli import main

    system = _fashion_system_copy(tmp_path / "fashion")
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"mnist": (), "fashion": (system,)})
    monkeypatch.setenv(data.ENV_MIRRORS, dead_url())
    assert main(["download", "--data-dir", str(tmp_path / "c"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastgrad download: error: could not get a verified")
    assert "connection refused (2 tries)" in err
    for remedy in ("--data-dir DIR", data.ENV_MIRRORS, "--dataset fashion"):
        assert remedy in err


def test_mirror_failures_each_on_one_line(site, tmp_path, monkeypatch):
    folder, checksums = site
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(data, "TIMEOUT", (0.2, 0.2))
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        mute = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with serve(tmp_path / "empty") as empty, serve(folder, truncate={TRAIN_IMG}) as flaky:
            with pytest.raises(DownloadError) as info:
                load_mnist(data_dir=tmp_path / "c", checksums=checksums, progress=False,
                           mirrors=[empty.url, flaky.url, mute, (tmp_path / "empty").as_uri()])
    assert _mirror_lines(str(info.value)) == [
        f"  - {empty.url}{TRAIN_IMG}: HTTP 404 File not found",  # not retried
        f"  - {flaky.url}{TRAIN_IMG}: connection broken during the transfer (2 tries)",
        f"  - {mute}{TRAIN_IMG}: timed out while reading (2 tries)"]
    missing = tmp_path / "empty" / TRAIN_IMG
    assert f"  - {missing.as_uri()}: file not found: {missing} (2 tries)" in str(info.value)


def _wrapped(cause, outer=requests.ConnectionError, root=None):
    """``cause`` (raised from ``root``) nested the way requests and urllib3 nest it."""
    cause.__cause__ = root
    retries = urllib3.exceptions.MaxRetryError(None, "http://example.org/x", cause)
    retries.__cause__ = cause
    return outer(retries)


@pytest.mark.parametrize(("exc", "words"), [
    (_wrapped(urllib3.exceptions.ConnectTimeoutError(None, "timed out"), requests.ConnectTimeout,
              TimeoutError("timed out")), "timed out while connecting"),
    (_wrapped(urllib3.exceptions.NameResolutionError("example.org", None, "no such name"),
              root=socket.gaierror(-2, "Name or service not known")), "host name not found"),
    (_wrapped(urllib3.exceptions.NewConnectionError(None, "Failed to establish ..."),
              root=OSError(101, "Network is unreachable")), "Network is unreachable"),
    (_wrapped(urllib3.exceptions.SSLError("bad"), requests.exceptions.SSLError,
              ssl.SSLCertVerificationError(1, "certificate verify failed")),
     "TLS certificate not trusted"),
    (_wrapped(urllib3.exceptions.ProxyError("proxy", ConnectionRefusedError(111, "refused")),
              requests.exceptions.ProxyError), "proxy failed"),
    (FileNotFoundError(2, "No such file or directory", "/x/t10k.gz"), "file not found: /x/t10k.gz"),
    (PermissionError(13, "Permission denied"), "permission denied"),
    (DownloadError("transfer ended after 3 of 9 bytes"), "transfer ended after 3 of 9 bytes"),
    (OSError("x" * 500), "x" * 117 + "..."),
])
def test_failure_reasons(exc, words):
    assert data._reason(exc) == words


def test_stalled_mirror_ends_within_the_timeout(tmp_path, monkeypatch):
    """A mirror that accepts and never answers fails with a clear error, not a hang."""
    monkeypatch.setattr(data, "TIMEOUT", (1.0, 0.5))
    outcome = {}

    def fetch(url):
        try:
            data.fetch(data_dir=tmp_path / "cache", mirrors=[url], progress=False)
        except Exception as exc:  # inspected below
            outcome["error"] = exc

    with stalled() as url:
        worker = threading.Thread(target=fetch, args=(url,), daemon=True)
        start = time.monotonic()
        worker.start()
        worker.join(20)  # two tries of 0.5 s each, with room for a loaded machine
        elapsed, hung = time.monotonic() - start, worker.is_alive()
    worker.join(10)  # the stalled connections are closed now: a hung client wakes up
    assert not hung, f"download still waiting on a stalled mirror after {elapsed:.0f} s"
    error = outcome.get("error")
    assert isinstance(error, DownloadError), repr(error)
    assert "timed out" in str(error) and url in str(error) and TRAIN_IMG in str(error)


def test_file_mirror_and_progress_bar(site, tmp_path, capsys):
    folder, checksums = site
    (x, _), _ = load_mnist(data_dir=tmp_path / "cache", mirrors=[folder.as_uri()],
                           checksums=checksums, progress=True)
    assert x.shape == (N_TRAIN, 784)
    assert TRAIN_IMG in capsys.readouterr().err


def _load_digest(cache, url, checksums):
    (x, t), (xt, tt) = load_mnist(False, data_dir=cache, mirrors=[url], checksums=checksums,
                                  progress=False)
    return hashlib.sha256(b"".join(a.tobytes() for a in (x, t, xt, tt))).hexdigest()


def test_two_processes_share_one_consistent_cache(site, tmp_path):
    folder, checksums = site
    cache = tmp_path / "cache"
    with serve(folder, delay=0.2) as m, ProcessPoolExecutor(
            2, mp_context=get_context("spawn")) as pool:
        results = [f.result(timeout=50) for f in
                   [pool.submit(_load_digest, cache, m.url, checksums) for _ in range(2)]]
    assert results[0] == results[1] == _load_digest(cache, "http://127.0.0.1:9/", checksums)
    assert _leftovers(cache) == []
    for name in (TRAIN_IMG, TRAIN_LAB):
        assert _sha(cache / name) == checksums[name].gz_sha256


# --- file format and digests -------------------------------------------------


def _header_variants():
    images = np.zeros((N_TRAIN, 28, 28), dtype=np.uint8)
    ok = idx.write_idx(images)
    return {
        "magic": (idx.write_idx(images.reshape(N_TRAIN, 784)), "magic number"),
        "dims": (idx.write_idx(np.zeros((N_TRAIN, 28, 27), dtype=np.uint8)), "28x28"),
        "length": (ok + b"\0", "bytes"),
        "truncated": (ok[:-1], "bytes"),
    }


@pytest.mark.parametrize("variant", ["magic", "dims", "length", "truncated"])
def test_bad_idx_header_is_rejected(site, tmp_path, variant):
    folder, checksums = site
    raw, match = _header_variants()[variant]
    (folder / TRAIN_IMG).write_bytes(_gz(raw))
    checksums = {**checksums, TRAIN_IMG: _digest(_gz(raw), raw)}
    cache = tmp_path / "cache"
    with serve(folder) as m, pytest.raises(IdxFormatError, match=match) as info:
        load_mnist(data_dir=cache, mirrors=[m.url], checksums=checksums, progress=False)
    assert TRAIN_IMG in str(info.value)
    assert not (cache / TRAIN_IMG).exists() and _leftovers(cache) == []


@needs_shared
def test_count_mismatch_between_images_and_labels(site, tmp_path):
    folder, checksums = site
    shutil.copyfile(SHARED / TRAIN_LAB, folder / TRAIN_LAB)  # the real 60000 labels
    del checksums[TRAIN_LAB]
    with pytest.raises(IdxFormatError, match=f"{N_TRAIN} images but .*60000 labels"):
        load_mnist(data_dir=tmp_path / "cache", mirrors=[folder.as_uri()], checksums=checksums,
                   progress=False)


def test_recompressed_copy_accepted_truncated_one_refused(site, tmp_path, no_network):
    folder, checksums = site
    cache = shutil.copytree(folder, tmp_path / "cache")
    raw = gzip.decompress((cache / TEST_LAB).read_bytes())
    (cache / TEST_LAB).write_bytes(_gz(raw, level=1))  # Debian-style: new .gz, same content
    files = {f.name: f for f in data.fetch(data_dir=cache, mirrors=[], checksums=checksums)}
    assert files[TEST_LAB].verified_by == "raw" and files[TEST_IMG].verified_by == "gz"
    assert files[TEST_LAB].sha256 != data.CHECKSUMS["mnist"]["t10k-labels-idx1-ubyte"].gz_sha256
    (cache / TEST_LAB).write_bytes(_gz(raw)[:-100])
    with pytest.raises(DataIntegrityError, match="not a valid gzip file"):
        data.fetch(data_dir=cache, mirrors=[], checksums=checksums)


def test_fashion_from_system_folder_offline(tmp_path, monkeypatch, no_network):
    system = tmp_path / "usr-share"
    train, train_ck = _synthetic(seed=2)
    test, test_ck = _synthetic(n=16, seed=3, prefix="t10k")
    # like Debian: re-compressed, so only the raw digests (as for Fashion) can match
    raws = {n: gzip.decompress(b) for n, b in {**train, **test}.items()}
    _write(system, {n: _gz(r, level=1) for n, r in raws.items()})
    checksums = {n: FileDigest(None, d.raw_sha256, d.raw_size)
                 for n, d in {**train_ck, **test_ck}.items()}
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"mnist": (), "fashion": (system,)})
    cache = tmp_path / "cache"
    assert data.find_cached("fashion", cache) and not data.find_cached("mnist", cache)
    (x, t), (xt, tt) = load_mnist(dataset="fashion", data_dir=cache, checksums=checksums)
    assert x.shape == (N_TRAIN, 784) and xt.shape == (16, 784) and tt.shape == (16,)
    assert [p.name for p in cache.iterdir()] == ["fastgrad-fashion.npz"]  # files read in place

    def no_gunzip(*args, **kwargs):
        raise AssertionError("verified sources recorded in the npz need no decompression")

    monkeypatch.setattr(data, "_gunzip", no_gunzip)
    (x2, _), _ = load_mnist(dataset="fashion", data_dir=cache, checksums=checksums)
    np.testing.assert_array_equal(x, x2)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_from_debian_package(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(data, "SYSTEM_DIRS",
                        {"mnist": (), "fashion": (Path("/usr/share/datasets/fashion-mnist"),)})
    (x, t), (xt, tt) = load_mnist(normalize=False, dataset="fashion", data_dir=tmp_path)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784) and x.dtype == np.uint8
    assert np.bincount(t).tolist() == [6000] * 10 and np.bincount(tt).tolist() == [1000] * 10


# --- API surface -------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"dataset": "cifar"}, ValueError, "dataset"),
    ({"mirrors": ["ftp://example.org/"]}, ValueError, "mirrors"),
    ({"mirrors": ["http:///nohost"]}, ValueError, "mirrors"),
    ({"mirrors": [3]}, TypeError, "mirrors"),
    ({"normalize": "yes"}, TypeError, "normalize"),
    ({"one_hot_label": None}, TypeError, "one_hot_label"),
    ({"data_dir": 3}, TypeError, "data_dir"),
    ({"checksums": {"train-images": None}}, ValueError, "checksums"),
    ({"checksums": {TRAIN_IMG: "abc"}}, TypeError, "checksums"),
    ({"checksums": {TRAIN_IMG: {"gz_sha256": "XYZ"}}}, ValueError, "gz_sha256"),
    ({"mirrors": []}, DownloadError, "no mirrors"),
])
def test_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_mnist(**{"data_dir": tmp_path, **kwargs})


def test_default_dirs_and_env_mirrors(site, mirror, tmp_path, monkeypatch):
    _, checksums = site
    monkeypatch.setenv(data.ENV_MIRRORS, "ftp://example.org/")
    with pytest.raises(ValueError, match=data.ENV_MIRRORS):
        load_mnist(checksums=checksums)
    assert data.default_data_dir("fashion") == tmp_path / "env-cache" / "fashion"
    monkeypatch.delenv(data.ENV_DATA_DIR)
    assert data.default_data_dir() == tmp_path / "user" / "mnist"
    assert not data.find_cached()
    monkeypatch.setenv(data.ENV_MIRRORS, f"{dead_url()}, {mirror.url}")
    load_mnist(checksums=checksums, progress=False)
    assert data.find_cached() and (tmp_path / "user" / "mnist" / TRAIN_IMG).is_file()


@needs_shared
def test_book_shim(site, mirror, monkeypatch):
    _, checksums = site
    # the book's notebooks do sys.path.append(os.pardir); from dataset.mnist import ...
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv(data.ENV_MIRRORS, mirror.url)
    registry = dict(data.CHECKSUMS)
    registry["mnist"] = MappingProxyType({**data.CHECKSUMS["mnist"],
                                          **{k[:-3]: v for k, v in checksums.items()}})
    monkeypatch.setattr(data, "CHECKSUMS", MappingProxyType(registry))
    mnist = importlib.import_module("dataset.mnist")

    (x, t), (xt, tt) = mnist.load_mnist()
    assert x.shape == (N_TRAIN, 784) and xt.shape == (10000, 784) and xt.dtype == np.float32
    assert 0.0 <= xt.min() and xt.max() <= 1.0 and tt.dtype == np.uint8
    (_, _), (raw, _) = mnist.load_mnist(normalize=False)
    assert raw.dtype == np.uint8 and raw.max() == 255
    np.testing.assert_array_equal(xt, raw.astype(np.float32) / 255.0)
    (_, _), (img, _) = mnist.load_mnist(flatten=False)
    assert img.shape == (10000, 1, 28, 28) and img.dtype == np.float32
    (_, t1), (_, tt1) = mnist.load_mnist(one_hot_label=True)
    assert tt1.shape == (10000, 10) and tt1.dtype == np.float32 and t1.shape == (N_TRAIN, 10)
    assert (tt1.sum(axis=1) == 1).all() and (tt1.argmax(axis=1) == tt).all()
    assert tt[:10].tolist() == FIRST_TEST_LABELS


# --- CLI ---------------------------------------------------------------------


def _cli_args(argv):
    parser = argparse.ArgumentParser(prog="fastgrad")
    download.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_download(site, mirror, tmp_path, monkeypatch, capsys):
    _, checksums = site
    cache = tmp_path / "cli"
    args = _cli_args(["download", "--mirror", dead_url(), "--mirror", mirror.url,
                      "--data-dir", str(cache), "--no-progress"])
    assert args.dataset == "mnist" and args.progress is False
    with pytest.raises(DataIntegrityError, match="440fcabf"):  # published digest refuses
        args.func(args)
    assert not (cache / TRAIN_IMG).exists() and _leftovers(cache) == []

    registry = dict(data.CHECKSUMS)
    registry["mnist"] = {**data.CHECKSUMS["mnist"], **{k[:-3]: v for k, v in checksums.items()}}
    monkeypatch.setattr(data, "CHECKSUMS", registry)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for name in (TRAIN_IMG, TRAIN_LAB, TEST_IMG, TEST_LAB):
        assert str(cache / name) in out and _sha(cache / name) in out


def test_cli_main_exit_code(site, mirror, tmp_path, capsys):
    from fastgrad.cli import build_parser, main  # a broken CLI import fails here

    build_parser()  # every subcommand module and fastgrad.__version__ must exist
    code = main(["download", "--mirror", mirror.url, "--data-dir", str(tmp_path / "c"),
                 "--no-progress"])
    assert code == 2 and "440fcabf" in capsys.readouterr().err
