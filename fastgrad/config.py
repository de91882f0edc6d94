"""Every Numba option fastgrad uses, in one place.

Kernels import their decorator options from here instead of scattering
literals: ``cache`` so a warm start skips compilation, ``nogil`` so kernels may
run from several Python threads, ``parallel`` only where a kernel has a
``prange``. fastmath stays off (the dense micro-kernel and the incremental
sweeps only contract multiply-adds into FMAs): reassociation would change the
finite differences (and break bitwise thread-count invariance).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numba

#: Environment variable that sets the default thread count of the JIT methods.
THREADS_ENV = "FASTGRAD_THREADS"

#: Options of serial kernels.
JIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

#: LLVM fast-math flags of the dense micro-kernel's multiply-adds (kernels/dense.py):
#: ``contract`` alone lets LLVM fuse ``acc + x * w`` into one FMA instruction (one
#: rounding instead of two). Unlike reassociation it keeps the order of every sum,
#: so results stay bitwise the same for any thread count.
DENSE_FP_FLAGS = ("contract",)

#: Options of kernels with a ``prange`` loop.
PARALLEL_OPTIONS = {**JIT_OPTIONS, "parallel": True}

#: Options of the incremental kernels' sweeps (long chains of multiply-adds per
#: perturbed entry): the same LLVM ``contract`` flag as the dense micro-kernel, so
#: ``a * b + c`` becomes one FMA. Deterministic, and it keeps every sum's order.
SWEEP_OPTIONS = {**PARALLEL_OPTIONS, "fastmath": set(DENSE_FP_FLAGS)}

#: Kernels that take a user's jitted function as an argument are specialised per
#: function; caching them to disk would key the cache on an unpicklable object.
GENERIC_OPTIONS = {**PARALLEL_OPTIONS, "cache": False}



def _preload_tbb():
    """Make the ``tbb`` wheel's library loadable by Numba.

    The wheel puts ``libtbb.so.12`` in ``<prefix>/lib``, which the dynamic
    loader does not search in a virtual environment, so Numba would silently
    fall back to OpenMP. Loading it by path first fixes that.
    """
    for name in ("libtbb.so.12", "libtbb.12.dylib"):
        path = Path(sys.prefix) / "lib" / name
        if path.is_file():
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass
            return


# The workqueue layer aborts when two Python threads enter parallel regions at
# once; "threadsafe" picks TBB (the ``tbb`` wheel) or else OpenMP, both safe.
# A user who sets NUMBA_THREADING_LAYER keeps their choice (and TBB still loads).
_preload_tbb()
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "threadsafe"


def max_threads() -> int:
    """Number of threads Numba was started with (all cores by default)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def default_threads() -> int:
    """Default thread count: ``$FASTGRAD_THREADS`` if set, else all cores."""
    raw = os.environ.get(THREADS_ENV)
    if raw is None or raw.strip() == "":
        return max_threads()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
    return min(value, max_threads())


def threading_layer() -> str:
    """Name of the threading layer in use ('tbb', 'omp', ...), or the configured one."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return str(numba.config.THREADING_LAYER)


#: Work chunks per thread in parameter-parallel kernels: more than one per
#: thread evens out the load when a core is busy with something else.
CHUNKS_PER_THREAD = 4


def n_chunks(threads: int, size: int) -> int:
    """Number of ``prange`` chunks for ``size`` independent items on ``threads`` threads."""
    return max(1, min(size, threads * CHUNKS_PER_THREAD))


_PACKAGE = Path(__file__).resolve().parent


def kernel_sources_digest(root=_PACKAGE) -> str:
    """Digest of everything compiled into the kernels: their sources, this file, Numba."""
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted((root / "kernels").glob("*.py")) + [root / "config.py"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def kernel_cache_dir() -> Path:
    """Where the kernels' compiled code is cached, keyed by :func:`kernel_sources_digest`.

    Under ``$NUMBA_CACHE_DIR`` if set, else the package's ``kernels/__pycache__``
    if writable, else the per-user cache folder.
    """
    candidates = [Path(os.environ["NUMBA_CACHE_DIR"])] if os.environ.get("NUMBA_CACHE_DIR") \
        else [_PACKAGE / "kernels" / "__pycache__"]
    import platformdirs

    candidates.append(Path(platformdirs.user_cache_dir("fastgrad")) / "numba")
    base = next((c for c in candidates if _writable(c)), Path(tempfile.gettempdir()))
    return base / f"fastgrad-kernels-{kernel_sources_digest()}"


@contextmanager
def kernel_cache():
    """Decorate kernels in this body with their cache in :func:`kernel_cache_dir`.

    Numba keys a cached function on its own file only, so a kernel calling one
    from another file (``full.py`` -> ``forward.py``) would keep running stale
    code after that file changed (an editable install after ``git pull``). A
    folder per digest of all kernel sources rules that out. Numba reads the
    setting when a function is decorated, so functions outside this body keep
    the user's choice.
    """
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(kernel_cache_dir())
    try:
        yield
    finally:
        numba.config.CACHE_DIR = previous
