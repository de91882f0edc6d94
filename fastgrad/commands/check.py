"""``fastgrad check``: placeholder until validation lands."""


def register(subparsers):
    p = subparsers.add_parser("check", help="(not yet available)")
    p.set_defaults(func=_run)


def _run(args):
    raise SystemExit("fastgrad check: not implemented yet")
