"""``fastgrad download``: placeholder until its issue lands."""


def register(subparsers):
    p = subparsers.add_parser("download", help="(not yet available)")
    p.set_defaults(func=_run)


def _run(args):
    raise SystemExit("fastgrad download: not implemented yet")
