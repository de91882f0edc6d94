"""Small file helpers shared by several rooms: training checkpoints, bench reports, figures."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def atomic_write(path, write):
    """Write ``path`` all at once: ``write(fh)`` fills a temp file that replaces it.

    The temp file sits in the same folder (``os.replace`` is atomic only within
    one file system) and is removed if anything fails, Ctrl-C included, so the
    old ``path`` is either intact or fully replaced, never half written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.part"
        try:
            # like mkstemp, but honouring the umask (mkstemp forces 0600)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
