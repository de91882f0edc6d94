"""``fastgrad bench``: placeholder until its issue lands."""


def register(subparsers):
    p = subparsers.add_parser("bench", help="(not yet available)")
    p.set_defaults(func=_run)


def _run(args):
    raise SystemExit("fastgrad bench: not implemented yet")
