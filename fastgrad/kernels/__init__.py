"""Numba kernels: arithmetic only.

No validation and no Python objects here; the public wrappers in
:mod:`fastgrad.network`, :mod:`fastgrad.methods` and :mod:`fastgrad.generic`
check and convert every input before calling in.
"""
