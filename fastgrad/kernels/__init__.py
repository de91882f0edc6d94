"""Numba kernels: arithmetic only.

No validation and no Python objects here; the public wrappers in
:mod:`fastgrad.network`, :mod:`fastgrad.methods`, :mod:`fastgrad.generic`,
:mod:`fastgrad.optimizers` and :mod:`fastgrad.training.minibatch` check and
convert every input before calling in.
"""

from fastgrad.config import kernel_cache

# Decorated (and their cache located) inside kernel_cache(); see its docstring.
with kernel_cache():
    from fastgrad.kernels import (  # noqa: F401
        batch,
        ceiling,
        conv,
        conv_incremental,
        deep,
        dense,
        forward,
        full,
        generic,
        incremental,
        layers,
        update,
    )
