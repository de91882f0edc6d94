"""Dense layers for a whole batch: ``out = z @ W + b``, activations, loss.

Serial kernels, meant to run inside a caller's ``prange`` on per-thread
buffers (they allocate only small scratch arrays of their own).

Determinism: every output ``out[s, j]`` is the chain
``acc = 0; acc = acc + z[s, k] * W[k, j]`` for ``k = 0, 1, ..., n_in - 1``
(one fused multiply-add per step where the CPU has FMA), then ``acc + b[j]``.
Every sample and every output goes through the same micro-kernel (tails are
zero-padded, never computed by other code), so a result does not depend on
the batch a sample sits in, its position there, or the thread count.

Speed: Numba does not keep sums in SIMD registers across a loop (its LLVM
pipeline runs without the SLP vectoriser), so the micro-kernel is written
in LLVM IR: a block of 4 samples by 8 (or 4) outputs keeps its sums in
``<4 x double>`` registers over the whole ``k`` loop, loading each row of the
packed weights once per 4 samples and each input once per 8 outputs.
Weights are packed in strips of 8 columns (:func:`pack`) so that loop reads
them contiguously; the last strip is 4 or 8 wide, zero-padded.

:func:`sparse_affine` is the same layer for inputs in CSR, bitwise equal to
the dense one (it only skips the ``+ 0 * w`` steps); which of the two is
faster depends on the density, see :data:`DENSE_MIN_DENSITY`.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from fastgrad.config import DENSE_FP_FLAGS, JIT_OPTIONS

#: Added inside the log of the cross entropy, as in the book.
LOG_EPS = 1e-7

#: Fraction of non-zero inputs from which the dense first layer (``affine_packed``)
#: beats a sparse one over CSR. Measured with ``python bench/dense_report.py --only
#: threshold`` (one thread, CPU time, AVX2 EPYC, 2026-11-30), batch 100 and 128 alike:
#: against ``forward.sample_hidden`` the crossover is at 0.33 for 784-50 and 0.38 for
#: 784-100, against :func:`sparse_affine` at 0.40 and 0.36 (packing W on every call
#: instead moves them up by 0.06-0.10). Times near the crossover are flat: anywhere in
#: 0.33-0.40 costs at most ~5% over the best path. Real batches: MNIST (18% lit) runs
#: 1.8-2.2x faster sparse, Fashion-MNIST (50%) 1.2-1.5x faster dense, Fashion
#: standardised per pixel (100%) 2.3-2.9x faster dense.
DENSE_MIN_DENSITY = 0.38

#: Fraction of the columns a dense first layer visits (:func:`affine_columns`, columns
#: zero in a whole block of 4 samples left out) below which skipping them pays: per
#: visited column it runs 7-35% slower than :func:`affine_packed` (an index load, gaps
#: in the weight stream). Measured (one thread, CPU time, AVX2 EPYC, 2026-11-30,
#: 784-50, batch 100; bench/jit_inputs.py --only kernels): Fashion-MNIST (77% visited)
#: 191 us against 217 us dense; MNIST (38%) 112 us; standardised (100%) 235 us against
#: 218 us.
DENSE_COLUMNS_MAX_VISITED = 0.9

#: Samples per micro-kernel block.
ROWS = 4
#: Widest strip of outputs (two ``<4 x double>`` vectors).
STRIP = 8

_F64 = ir.DoubleType()
_VEC = ir.VectorType(_F64, 4)
_I32 = ir.IntType(32)


def _flagged(instr):
    instr.flags.extend(DENSE_FP_FLAGS)
    return instr


def _c_array(ty, ndim):
    return isinstance(ty, types.Array) and ty.dtype == types.float64 and ty.ndim == ndim \
        and ty.layout == "C"


def _make_micro(width, indexed=False):
    """Intrinsic ``micro(z, s, Wp, off, tile)``: ``tile[r, :width]`` = sums of ``z[s + r]``.

    ``z`` (>= s + 4 rows, n_in) and ``tile`` (4, >= width) C-contiguous float64;
    ``Wp[off + k * width + c]`` holds ``W[k, j0 + c]`` of the strip. No bounds
    checks: the caller guarantees the ranges. ``indexed``: the intrinsic takes
    ``(..., tile, kidx, start, stop)`` and sums over ``k`` in
    ``kidx[start:stop]`` (ascending) instead of ``0 .. n_in - 1``.
    """
    n_vec = width // 4

    def typer(z, s, Wp, off, tile, index=()):
        if not (_c_array(z, 2) and _c_array(Wp, 1) and _c_array(tile, 2)
                and isinstance(s, types.Integer) and isinstance(off, types.Integer)):
            return None
        if index and not (isinstance(index[0], types.Array) and index[0].ndim == 1
                          and index[0].layout == "C"
                          and isinstance(index[0].dtype, types.Integer)
                          and all(isinstance(t, types.Integer) for t in index[1:])):
            return None
        return types.void(z, s, Wp, off, tile, *index), codegen

    def codegen(context, builder, signature, args):
        z_ty, s_ty, wp_ty, off_ty, tile_ty = signature.args[:5]
        za = context.make_array(z_ty)(context, builder, args[0])
        wa = context.make_array(wp_ty)(context, builder, args[2])
        ta = context.make_array(tile_ty)(context, builder, args[4])
        intp = context.get_value_type(types.intp)
        row0 = context.cast(builder, args[1], s_ty, types.intp)
        offset = context.cast(builder, args[3], off_ty, types.intp)
        n_in = cgutils.unpack_tuple(builder, za.shape, 2)[1]
        tile_cols = cgutils.unpack_tuple(builder, ta.shape, 2)[1]
        if indexed:
            kidx_ty = signature.args[5]
            ka = context.make_array(kidx_ty)(context, builder, args[5])
            start = context.cast(builder, args[6], signature.args[6], types.intp)
            stop = context.cast(builder, args[7], signature.args[7], types.intp)
            count = builder.sub(stop, start)
        else:
            count = n_in

        def const(v):
            return ir.Constant(intp, v)

        def vec_ptr(base, index):
            return builder.bitcast(builder.gep(base, [index]), _VEC.as_pointer())

        rows = [builder.gep(za.data, [builder.mul(builder.add(row0, const(r)), n_in)])
                for r in range(ROWS)]
        strip = builder.gep(wa.data, [offset])
        # Allocas in the entry block: LLVM promotes them to registers.
        acc = [[cgutils.alloca_once(builder, _VEC) for _ in range(n_vec)]
               for _ in range(ROWS)]
        for row in acc:
            for a in row:
                builder.store(ir.Constant(_VEC, [0.0] * 4), a)
        splat = ir.Constant(ir.VectorType(_I32, 4), [0] * 4)
        undef = ir.Constant(_VEC, ir.Undefined)
        with cgutils.for_range(builder, count) as loop:
            if indexed:
                k = context.cast(
                    builder, builder.load(builder.gep(ka.data, [builder.add(start,
                                                                          loop.index)])),
                    kidx_ty.dtype, types.intp)
            else:
                k = loop.index
            w_row = builder.gep(strip, [builder.mul(k, const(width))])
            w = [builder.load(vec_ptr(w_row, const(4 * c)), align=8) for c in range(n_vec)]
            for r in range(ROWS):
                x = builder.load(builder.gep(rows[r], [k]))
                xv = builder.shuffle_vector(
                    builder.insert_element(undef, x, ir.Constant(_I32, 0)), undef, splat)
                for c in range(n_vec):
                    prod = _flagged(builder.fmul(xv, w[c]))
                    total = _flagged(builder.fadd(builder.load(acc[r][c]), prod))
                    builder.store(total, acc[r][c])
        for r in range(ROWS):
            t_row = builder.gep(ta.data, [builder.mul(const(r), tile_cols)])
            for c in range(n_vec):
                builder.store(builder.load(acc[r][c]), vec_ptr(t_row, const(4 * c)), align=8)
        return context.get_dummy_value()

    if indexed:
        @intrinsic
        def micro_at(typingctx, z, s, Wp, off, tile, kidx, start, stop):
            return typer(z, s, Wp, off, tile, (kidx, start, stop))

        return micro_at

    @intrinsic
    def micro(typingctx, z, s, Wp, off, tile):
        return typer(z, s, Wp, off, tile)

    return micro


_micro8 = _make_micro(8)
_micro4 = _make_micro(4)
_micro8_at = _make_micro(8, indexed=True)
_micro4_at = _make_micro(4, indexed=True)


def _make_sparse(n_vec, width):
    """Intrinsic ``sparse(indices, values, start, stop, W, row_len, off, tile)``.

    ``tile[0, :4 * n_vec]`` = sums of ``values[q] * W[indices[q], cols]`` over
    ``q`` in ``start:stop``: the dense chain minus its zero terms, the sums in
    registers over all non-zeros. ``width`` 0: ``W`` is a flat row-major
    matrix (rows of ``row_len``) and ``cols`` its ``4 * n_vec`` columns from
    ``off``; else ``W`` is a packed strip ``width`` wide starting at ``off``.
    """

    @intrinsic
    def sparse(typingctx, indices, values, start, stop, W, row_len, off, tile):
        ints = (start, stop, row_len, off)
        if not (isinstance(indices, types.Array) and indices.ndim == 1
                and indices.layout == "C" and isinstance(indices.dtype, types.Integer)
                and _c_array(values, 1) and _c_array(W, 1) and _c_array(tile, 2)
                and all(isinstance(t, types.Integer) for t in ints)):
            return None
        sig = types.void(indices, values, start, stop, W, row_len, off, tile)

        def codegen(context, builder, signature, args):
            ia, va, wa, ta = (context.make_array(signature.args[i])(context, builder, args[i])
                              for i in (0, 1, 4, 7))
            start_, stop_, row_len_, off_ = (
                context.cast(builder, args[i], signature.args[i], types.intp) for i in (2, 3, 5, 6))
            intp = context.get_value_type(types.intp)

            def const(v):
                return ir.Constant(intp, v)

            stride = row_len_ if width == 0 else const(width)
            base = builder.gep(wa.data, [off_])
            acc = [cgutils.alloca_once(builder, _VEC) for _ in range(n_vec)]
            for a in acc:
                builder.store(ir.Constant(_VEC, [0.0] * 4), a)
            splat = ir.Constant(ir.VectorType(_I32, 4), [0] * 4)
            undef = ir.Constant(_VEC, ir.Undefined)
            with cgutils.for_range(builder, builder.sub(stop_, start_)) as loop:
                q = builder.add(start_, loop.index)
                k = context.cast(builder, builder.load(builder.gep(ia.data, [q])),
                                 signature.args[0].dtype, types.intp)
                x = builder.load(builder.gep(va.data, [q]))
                xv = builder.shuffle_vector(
                    builder.insert_element(undef, x, ir.Constant(_I32, 0)), undef, splat)
                row = builder.gep(base, [builder.mul(k, stride)])
                for v, a in enumerate(acc):
                    ptr = builder.bitcast(builder.gep(row, [const(4 * v)]), _VEC.as_pointer())
                    prod = _flagged(builder.fmul(xv, builder.load(ptr, align=8)))
                    builder.store(_flagged(builder.fadd(builder.load(a), prod)), a)
            for v, a in enumerate(acc):
                ptr = builder.gep(ta.data, [const(4 * v)])
                builder.store(builder.load(a), builder.bitcast(ptr, _VEC.as_pointer()), align=8)
            return context.get_dummy_value()

        return sig, codegen

    return sparse


#: Columns a sparse pass keeps in registers (12 vectors of 4, of the 16 AVX2 has).
SPARSE_COLS = 48
_sparse_rows = _make_sparse(SPARSE_COLS // 4, 0)
_sparse8 = _make_sparse(2, 8)
_sparse4 = _make_sparse(1, 4)


@njit(**JIT_OPTIONS)
def _strip_width(n_out, j0):
    """Width of the packed strip starting at column ``j0``: 8, or 4 for a short last one."""
    return 4 if n_out - j0 <= 4 else 8


@njit(**JIT_OPTIONS)
def packed_size(n_in, n_out):
    """Number of float64 in the packed form of an ``(n_in, n_out)`` weight matrix."""
    last = n_out % STRIP
    padded = n_out - last + (0 if last == 0 else _strip_width(n_out, n_out - last))
    return n_in * padded


@njit(**JIT_OPTIONS)
def packed_index(n_in, n_out, k, j):
    """Position of ``W[k, j]`` in the packed array (to perturb a packed copy in place)."""
    j0 = j - j % STRIP
    return j0 * n_in + k * _strip_width(n_out, j0) + (j - j0)


@njit(**JIT_OPTIONS)
def pack(W, Wp):
    """Fill ``Wp`` (:func:`packed_size`,) with ``W`` (n_in, n_out) in zero-padded strips."""
    n_in, n_out = W.shape
    for j0 in range(0, n_out, STRIP):
        width = _strip_width(n_out, j0)
        base = j0 * n_in
        for k in range(n_in):
            for c in range(width):
                j = j0 + c
                Wp[base + k * width + c] = W[k, j] if j < n_out else 0.0


@njit(**JIT_OPTIONS)
def _block(z, s, Wp, b, out, row_out, n_rows, tile):
    """Outputs of samples ``z[s:s+4]`` into ``out[row_out:row_out+n_rows]``."""
    n_in = z.shape[1]
    n_out = out.shape[1]
    for j0 in range(0, n_out, STRIP):
        width = _strip_width(n_out, j0)
        if width == 8:
            _micro8(z, s, Wp, j0 * n_in, tile)
        else:
            _micro4(z, s, Wp, j0 * n_in, tile)
        for r in range(n_rows):
            for c in range(min(width, n_out - j0)):
                out[row_out + r, j0 + c] = tile[r, c] + b[j0 + c]


@njit(**JIT_OPTIONS)
def affine_packed(z, Wp, b, out):
    """Fill ``out`` (batch, n_out) with ``z @ W + b``, ``W`` given packed (:func:`pack`).

    ``z`` (batch, n_in), ``Wp``, ``b`` (n_out,) and ``out`` C-contiguous float64;
    ``out`` must not overlap the inputs.
    """
    n_samples, n_in = z.shape
    tile = np.empty((ROWS, STRIP))
    full = n_samples - n_samples % ROWS
    for s in range(0, full, ROWS):
        _block(z, s, Wp, b, out, s, ROWS, tile)
    if full < n_samples:  # the last 1-3 samples, zero-padded to a block
        rest = np.zeros((ROWS, n_in))
        rest[:n_samples - full] = z[full:]
        _block(rest, 0, Wp, b, out, full, n_samples - full, tile)


@njit(**JIT_OPTIONS)
def block_columns(x):
    """``(kptr, kidx)``: for each block of 4 samples of ``x`` (the last one ragged),
    ``kidx[kptr[i]:kptr[i+1]]`` are the columns non-zero in any of its rows, ascending."""
    n_samples, n_in = x.shape
    n_blocks = (n_samples + ROWS - 1) // ROWS
    kptr = np.zeros(n_blocks + 1, dtype=np.int64)
    lit = np.zeros(n_in, dtype=np.bool_)
    kidx = np.empty(n_blocks * n_in, dtype=np.int64)
    for blk in range(n_blocks):
        lit[:] = False
        for s in range(blk * ROWS, min(n_samples, (blk + 1) * ROWS)):
            for k in range(n_in):
                if x[s, k] != 0.0:
                    lit[k] = True
        q = kptr[blk]
        for k in range(n_in):
            if lit[k]:
                kidx[q] = k
                q += 1
        kptr[blk + 1] = q
    return kptr, kidx[:kptr[n_blocks]].copy()


@njit(**JIT_OPTIONS)
def _block_at(z, s, Wp, b, out, row_out, n_rows, tile, kidx, start, stop):
    """:func:`_block` over the columns ``kidx[start:stop]`` only."""
    n_in = z.shape[1]
    n_out = out.shape[1]
    for j0 in range(0, n_out, STRIP):
        width = _strip_width(n_out, j0)
        if width == 8:
            _micro8_at(z, s, Wp, j0 * n_in, tile, kidx, start, stop)
        else:
            _micro4_at(z, s, Wp, j0 * n_in, tile, kidx, start, stop)
        for r in range(n_rows):
            for c in range(min(width, n_out - j0)):
                out[row_out + r, j0 + c] = tile[r, c] + b[j0 + c]


@njit(**JIT_OPTIONS)
def affine_columns(z, kptr, kidx, Wp, b, out):
    """:func:`affine_packed` skipping, per block of 4 samples, the columns of ``z`` that
    are zero in all its rows (``(kptr, kidx)`` from :func:`block_columns` of ``z``).

    Only ``+ 0 * w`` steps are left out, so for finite weights the result is
    bitwise that of :func:`affine_packed` (and of :func:`sparse_affine`).
    """
    n_samples, n_in = z.shape
    tile = np.empty((ROWS, STRIP))
    full = n_samples - n_samples % ROWS
    for s in range(0, full, ROWS):
        blk = s // ROWS
        _block_at(z, s, Wp, b, out, s, ROWS, tile, kidx, kptr[blk], kptr[blk + 1])
    if full < n_samples:
        rest = np.zeros((ROWS, n_in))
        rest[:n_samples - full] = z[full:]
        blk = full // ROWS
        _block_at(rest, 0, Wp, b, out, full, n_samples - full, tile, kidx, kptr[blk],
                  kptr[blk + 1])


@njit(**JIT_OPTIONS)
def affine_selected(z, kidx, n_k, Wp, out):
    """Fill ``out`` (rows, n_out) with ``z[:, K] @ W[K, :]``, ``K = kidx[:n_k]`` ascending.

    ``W`` (``z.shape[1]``, n_out) given packed (:func:`pack`); rows of ``W``
    outside ``K`` are never read. Each output is the chain of
    :func:`affine_packed` over ``K`` alone, with no bias: for a ``W`` whose
    rows outside ``K`` are zero (a product through a ReLU mask), bitwise
    the result of :func:`affine_packed` with a zero bias.
    """
    n_rows, n_in = z.shape
    n_out = out.shape[1]
    zero = np.zeros(n_out)
    tile = np.empty((ROWS, STRIP))
    full = n_rows - n_rows % ROWS
    for s in range(0, full, ROWS):
        _block_at(z, s, Wp, zero, out, s, ROWS, tile, kidx, 0, n_k)
    if full < n_rows:
        rest = np.zeros((ROWS, n_in))
        rest[:n_rows - full] = z[full:]
        _block_at(rest, 0, Wp, zero, out, full, n_rows - full, tile, kidx, 0, n_k)


@njit(**JIT_OPTIONS)
def sparse_affine(indptr, indices, values, W, Wp, b, out):
    """Fill ``out`` (batch, n_out) with ``x @ W + b`` for ``x`` in CSR.

    ``(indptr, indices, values)`` as from ``forward.dense_to_csr`` (columns
    ascending within a row); ``W`` (n_in, n_out) C-contiguous and ``Wp`` the
    same weights packed: blocks of 48 columns read rows of ``W``, the rest
    the zero-padded strips of ``Wp``. Each output is the chain of
    :func:`affine_packed` without its zero terms, so for finite weights both
    give bitwise the same result.
    """
    n_in, n_out = W.shape
    flat = W.reshape(W.size)
    tile = np.empty((1, SPARSE_COLS))
    wide = n_out - n_out % SPARSE_COLS
    for n in range(out.shape[0]):
        start, stop = indptr[n], indptr[n + 1]
        for j0 in range(0, wide, SPARSE_COLS):
            _sparse_rows(indices, values, start, stop, flat, n_out, j0, tile)
            for c in range(SPARSE_COLS):
                out[n, j0 + c] = tile[0, c] + b[j0 + c]
        for j0 in range(wide, n_out, STRIP):
            if _strip_width(n_out, j0) == 8:
                _sparse8(indices, values, start, stop, Wp, n_out, j0 * n_in, tile)
            else:
                _sparse4(indices, values, start, stop, Wp, n_out, j0 * n_in, tile)
            for c in range(min(STRIP, n_out - j0)):
                out[n, j0 + c] = tile[0, c] + b[j0 + c]


@njit(**JIT_OPTIONS)
def affine(z, W, b, out):
    """Fill ``out`` (batch, n_out) with ``z @ W + b`` (packs ``W`` into a scratch array).

    ``z`` (batch, n_in), ``W`` (n_in, n_out), ``b`` (n_out,), ``out``:
    C-contiguous float64; ``out`` must not overlap the inputs.
    """
    n_in, n_out = W.shape
    Wp = np.empty(packed_size(n_in, n_out))
    pack(W, Wp)
    affine_packed(z, Wp, b, out)


@njit(**JIT_OPTIONS)
def sigmoid_(a):
    """``a = 1 / (1 + exp(-a))`` in place, element-wise (C-contiguous, any shape)."""
    flat = a.reshape(a.size)
    for i in range(flat.size):
        flat[i] = 1.0 / (1.0 + math.exp(-flat[i]))


@njit(**JIT_OPTIONS)
def relu_(a):
    """``a = a if a > 0 else 0`` in place; NaN becomes 0, like ``np.where(a > 0, a, 0)``."""
    flat = a.reshape(a.size)
    for i in range(flat.size):
        if not flat[i] > 0.0:
            flat[i] = 0.0


@njit(**JIT_OPTIONS)
def loss_from_logits(logits, labels):
    """Mean cross entropy ``-mean(log(softmax(logits)[s, labels[s]] + 1e-7))``.

    Each row's softmax is shifted by the row maximum, as in the reference;
    samples are summed in order.
    """
    n_samples, n_out = logits.shape
    total = 0.0
    for s in range(n_samples):
        m = logits[s, 0]
        for k in range(1, n_out):
            if logits[s, k] > m:
                m = logits[s, k]
        denom = 0.0
        for k in range(n_out):
            denom += math.exp(logits[s, k] - m)
        total += math.log(math.exp(logits[s, labels[s]] - m) / denom + LOG_EPS)
    return -total / n_samples
