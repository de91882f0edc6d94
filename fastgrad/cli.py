"""Command-line entry point: ``fastgrad check | bench | train | download | steps``.

Thin by design: each subcommand lives in :mod:`fastgrad.commands` and only
parses, calls the library and prints.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fastgrad.interrupts import is_interrupt

# subcommand name -> module in fastgrad.commands defining ``register(subparsers)``
COMMANDS = ("check", "bench", "train", "download", "steps")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    from fastgrad import __version__

    parser = argparse.ArgumentParser(
        prog="fastgrad",
        description="Fast, validated numerical gradients for the book's fully connected networks "
                    "(Deep Learning from Scratch, chapters 4-6).",
    )
    parser.add_argument("--version", action="version", version=f"fastgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"fastgrad.commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # the command line as typed, for reports that say how they were made
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        print(f"fastgrad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastgrad {args.command}: interrupted", file=sys.stderr)
        return 130
    except SystemError as exc:
        # Ctrl-C inside a Numba kernel surfaces as a SystemError caused by it
        if not is_interrupt(exc):
            raise
        print(f"fastgrad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
