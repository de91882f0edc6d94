"""Strict reader and writer for the IDX files MNIST and Fashion-MNIST ship in.

The header is checked before anything is trusted: magic number, dimensions
and the exact payload length, so a truncated or mislabelled file fails here
with a message naming it instead of surfacing later as a reshape error.
"""

from __future__ import annotations

import struct

import numpy as np

IMAGE_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned byte, 1 dimension
ROWS = COLS = 28
NUM_CLASSES = 10


class DataIntegrityError(ValueError):
    """A data file failed verification (digest, gzip stream or IDX header).

    Attributes
    ----------
    filename, source : str or None
        The file and where it came from (mirror URL or local path).
    expected, actual : str or None
        What the check wanted and what it found (digests, usually).
    """

    def __init__(self, message, *, filename=None, expected=None, actual=None, source=None):
        super().__init__(message)
        self.filename = filename
        self.expected = expected
        self.actual = actual
        self.source = source


class IdxFormatError(DataIntegrityError):
    """An IDX file whose header or length is not what MNIST requires."""


def read_idx(data: bytes, filename: str) -> np.ndarray:
    """Parse an unsigned-byte IDX file of any rank.

    Parameters
    ----------
    data : bytes
        The decompressed file.
    filename : str
        Used in error messages only.

    Returns
    -------
    numpy.ndarray
        A writable uint8 array of the shape the header declares.
    """
    if len(data) < 4:
        raise IdxFormatError(f"{filename}: {len(data)} bytes is too short for an IDX header",
                             filename=filename)
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim == 0:
        raise IdxFormatError(
            f"{filename}: bad IDX magic number 0x{magic:08x} (want 0x000008NN: unsigned bytes)",
            filename=filename, expected="0x000008NN", actual=f"0x{magic:08x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{filename}: truncated IDX header ({len(data)} bytes)",
                             filename=filename)
    dims = struct.unpack(f">{ndim}I", data[4:header])
    want = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != want:
        raise IdxFormatError(
            f"{filename}: IDX header declares shape {dims} ({want} bytes) "
            f"but the file has {len(data)} bytes",
            filename=filename, expected=str(want), actual=str(len(data)))
    # copy: frombuffer views are read-only and would pin ``data``
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_images(data: bytes, filename: str) -> np.ndarray:
    """Parse an MNIST image file into an ``(N, 784)`` uint8 array."""
    _check_magic(data, IMAGE_MAGIC, filename)
    images = read_idx(data, filename)
    if images.shape[1:] != (ROWS, COLS):
        raise IdxFormatError(
            f"{filename}: images are {images.shape[1]}x{images.shape[2]}, expected {ROWS}x{COLS}",
            filename=filename, expected=f"{ROWS}x{COLS}",
            actual=f"{images.shape[1]}x{images.shape[2]}")
    return images.reshape(len(images), ROWS * COLS)


def read_labels(data: bytes, filename: str) -> np.ndarray:
    """Parse an MNIST label file into an ``(N,)`` uint8 array of classes 0-9."""
    _check_magic(data, LABEL_MAGIC, filename)
    labels = read_idx(data, filename)
    if labels.size and labels.max() >= NUM_CLASSES:
        raise IdxFormatError(f"{filename}: label {labels.max()} is outside 0-{NUM_CLASSES - 1}",
                             filename=filename)
    return labels


def read_any(data: bytes, filename: str) -> np.ndarray:
    """Parse images or labels, chosen by the standard MNIST file name."""
    return read_images(data, filename) if "-images-" in filename else read_labels(data, filename)


def write_idx(array) -> bytes:
    """Encode a uint8 array as IDX bytes (the inverse of :func:`read_idx`)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"array: IDX writer needs uint8 data, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array: IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def _check_magic(data: bytes, magic: int, filename: str) -> None:
    got = struct.unpack(">I", data[:4])[0] if len(data) >= 4 else None
    if got != magic:
        shown = "none (file too short)" if got is None else f"0x{got:08x}"
        raise IdxFormatError(f"{filename}: IDX magic number is {shown}, expected 0x{magic:08x}",
                             filename=filename, expected=f"0x{magic:08x}", actual=shown)
