"""MkDocs hook: replace ``<!-- cli-help: NAME -->`` with the output of ``fastgrad NAME --help``.

The CLI page then shows every flag of every subcommand as the installed parser
defines it, so it cannot fall behind the code. The help is formatted at a
fixed width, so the page is the same on every terminal.
"""

from __future__ import annotations

import contextlib
import io
import os
import re

MARKER = re.compile(r"^<!-- cli-help: ([a-z]+) -->$", re.MULTILINE)
WIDTH = "88"


def help_text(command):
    """What ``fastgrad COMMAND --help`` prints (``fastgrad --help`` for ``fastgrad``)."""
    from fastgrad.cli import build_parser

    argv = ["--help"] if command == "fastgrad" else [command, "--help"]
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps at the terminal's width otherwise
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            build_parser().parse_args(argv)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    text = out.getvalue().rstrip()
    if not text.startswith("usage:"):
        raise ValueError(f"fastgrad {command} --help printed no usage: is it a subcommand?")
    return text


def on_page_markdown(markdown, page, config, files):
    """Expand every marker on the page into a fenced block of the command's help."""
    return MARKER.sub(lambda m: f"```text\n{help_text(m[1])}\n```", markdown)
