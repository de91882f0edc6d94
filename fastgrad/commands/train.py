"""``fastgrad train``: placeholder until its issue lands."""


def register(subparsers):
    p = subparsers.add_parser("train", help="(not yet available)")
    p.set_defaults(func=_run)


def _run(args):
    raise SystemExit("fastgrad train: not implemented yet")
