"""Loopback HTTP mirrors for the data tests: serve a folder, optionally misbehave."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    # join handler threads on close, so no socket outlives the test
    daemon_threads = False
    block_on_close = True


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.mirror.requests.append(self.path.rsplit("/", 1)[-1])
        super().do_GET()

    def copyfile(self, source, outputfile):
        mirror = self.server.mirror
        if mirror.delay:
            time.sleep(mirror.delay)
        if self.path.rsplit("/", 1)[-1] in mirror.truncate:
            # Content-Length already promised the whole file: send half, hang up
            data = source.read()
            outputfile.write(data[: len(data) // 2])
            outputfile.flush()
            self.close_connection = True
            return
        super().copyfile(source, outputfile)


@dataclass
class Mirror:
    """A running loopback mirror: its base URL and the file names requested."""

    url: str
    truncate: set = field(default_factory=set)
    delay: float = 0.0
    requests: list = field(default_factory=list)


@contextmanager
def serve(directory, *, truncate=(), delay=0.0):
    """Serve ``directory`` on 127.0.0.1 (free port) for the ``with`` block.

    ``truncate`` names files sent half-way before the connection is closed;
    ``delay`` seconds are waited before each body, to make transfers overlap.
    """
    server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(directory)))
    host, port = server.server_address[:2]
    server.mirror = Mirror(f"http://{host}:{port}/", set(truncate), delay)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@contextmanager
def stalled():
    """A loopback URL whose server accepts connections and never answers.

    Every accepted connection is held open until the ``with`` block ends, then
    closed, so a client still waiting on one gets a reset instead of hanging on.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.05)
    held, done = [], threading.Event()

    def accept():
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    host, port = listener.getsockname()
    try:
        yield f"http://{host}:{port}/"
    finally:
        done.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
