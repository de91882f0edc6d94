"""Recognising Ctrl-C, which Numba re-raises from a kernel as a SystemError."""


def is_interrupt(exc) -> bool:
    """Whether ``exc`` is, or was caused by, a KeyboardInterrupt (Numba wraps them)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
