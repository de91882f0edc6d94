"""Apply one-line mutations to a copy of the repository and check that the tests fail.

Each mutation is a text substitution in one source file; the tests that should
catch it are run in a temporary copy of the working tree (tracked and
untracked, not ignored files) with its own ``NUMBA_CACHE_DIR``, so neither the
checkout nor its kernel cache is touched. A mutation is *caught* when pytest
fails. A mutation whose pattern no longer matches its file exactly once, or
that names a test file (or test) that does not exist, fails the run before any
test runs: when the code moves, its mutations must move with it
(``tests/test_mutate.py`` checks the same in the normal suite).

Not run in CI (minutes of compiling). Usage::

    python tools/mutate.py                 # every mutation, relevant tests only
    python tools/mutate.py -k expm1 race   # mutations whose name contains a word
    python tools/mutate.py --list
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = ["-m", "pytest", "-x", "-q", "-W", "error", "--benchmark-disable", "-p",
          "no:cacheprovider"]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple
    runs: int = 1  # a race must be caught on every run


W = ("tests/test_witness.py", "tests/test_methods.py")
T = ("tests/training/test_update.py",)
OPT = ("tests/training/test_optimizers.py",)  # each rule, NumPy and compiled, bitwise the book's
# the per-step kernels against NumPy and the reference
BATCH = ("tests/training/test_minibatch.py",)
CHECK = ("tests/test_check.py",)
MUTATIONS = [
    Mutation("incremental: m2 moment scaled 1/3 instead of 1/2", "fastgrad/kernels/incremental.py",
             "m2 *= _I2", "m2 *= _I3", W),
    Mutation("incremental: u^3/6 term of the expm1 series dropped",
             "fastgrad/kernels/incremental.py",
             "u * (_I2 + u * (_F3 + u * (_F4", "u * (_I2 + u * (0.0 + u * (_F4", W),
    Mutation("dense: softmax max-shift removed (jit's batched loss)",
             "fastgrad/kernels/dense.py",
             "        denom = 0.0\n        for k in range(n_out):\n",
             "        m = 0.0\n        denom = 0.0\n        for k in range(n_out):\n", W),
    Mutation("incremental: softmax max-shift removed (cached forward)",
             "fastgrad/kernels/incremental.py",
             "            m = max(m, a2[k])\n        total = 0.0\n",
             "            m = max(m, a2[k])\n        m = 0.0\n        total = 0.0\n", W),
    Mutation("incremental: softmax max-shift removed (samples recomputed)",
             "fastgrad/kernels/incremental.py",
             "        m = max(m, logits[k] + d * w[k])\n    total = 0.0\n",
             "        m = max(m, logits[k] + d * w[k])\n    m = 0.0\n    total = 0.0\n", W),
    Mutation("deep: m2 moment scaled 1/3 instead of 1/2", "fastgrad/kernels/deep.py",
             "                m2 *= 0.5\n", "                m2 *= 1.0 / 3.0\n", W),
    Mutation("deep: third sigmoid Taylor coefficient dropped", "fastgrad/kernels/deep.py",
             "s3 = _F3 * s1 * (1.0 - 6.0 * s * oms)", "s3 = 0.0", W),
    Mutation("deep: ReLU SIMD block taken where a step turns the unit off",
             "fastgrad/kernels/deep.py", "if a > s_max and s_max < reach",
             "if a > 0.0 and s_max < reach", W + ("tests/test_multilayer.py",)),
    Mutation("optimizers: NumPy SGD rule step x1.001", "fastgrad/optimizers.py",
             "return p - self.lr * g, {}", "return p - 1.001 * self.lr * g, {}", OPT),
    Mutation("update kernel: SGD step x1.001 (what training runs)", "fastgrad/kernels/update.py",
             "new_p[i] = p[i] - lr * g[i]\n", "new_p[i] = p[i] - 1.001 * lr * g[i]\n", OPT + T),
    Mutation("update kernel: momentum's velocity not decayed", "fastgrad/kernels/update.py",
             "vi = mom * v[i] - lr * g[i]", "vi = v[i] - lr * g[i]", OPT),
    Mutation("update kernel: Adam's 1e-7 inside the square root", "fastgrad/kernels/update.py",
             "lr_t * mi / (math.sqrt(vi) + EPS)", "lr_t * mi / math.sqrt(vi + EPS)", OPT),
    Mutation("update kernel: NaN/Inf not counted", "fastgrad/kernels/update.py",
             "return 0 if math.isfinite(x) else 1", "return 0", OPT),
    Mutation("training: loss recorded before the update", "fastgrad/training/loop.py",
             "loss = self.model.loss(new, batch,", "loss = self.model.loss(state.params, batch,",
             T),
    Mutation("training: minibatches drawn without replacement", "fastgrad/training/loop.py",
             "pick = rng.integers(0, len(self.data[0]), size=self.batch_size)",
             "pick = rng.choice(len(self.data[0]), size=self.batch_size, replace=False)", T),
    Mutation("compiled loss: hidden activation skipped", "fastgrad/kernels/batch.py",
             "z[j] = activate(a[j], act)", "z[j] = a[j]", BATCH + T),
    Mutation("compiled loss: weight decay left out", "fastgrad/training/minibatch.py",
             "labels.size + reference.decay_term(params, arch.weight_decay)", "labels.size",
             BATCH),
    Mutation("minibatch CSR: each row's values all its first", "fastgrad/kernels/batch.py",
             "sub_values[q] = values[start + q - sub_ptr[r]]", "sub_values[q] = values[start]",
             BATCH + T),
    Mutation("minibatch rows: the first rows, not the picked ones", "fastgrad/kernels/batch.py",
             "row = x[pick[r]]", "row = x[r]", BATCH),
    Mutation("training: default lr 0.01", "fastgrad/training/settings.py",
             "CHAPTER4_LR = 0.1", "CHAPTER4_LR = 0.01", T),
    Mutation("methods: threads ignored", "fastgrad/methods.py",
             "numba.set_num_threads(threads)", "numba.set_num_threads(previous)",
             ("tests/test_threads.py",)),
    Mutation("check: reference-vs-analytic tolerance infinite", "fastgrad/validate.py",
             "BACKPROP_TOL = 1e-7", 'BACKPROP_TOL = float("inf")', CHECK),
    Mutation("check: method-vs-reference tolerance infinite", "fastgrad/validate.py",
             "DEFAULT_TOL = 1e-9", 'DEFAULT_TOL = float("inf")', CHECK),
    Mutation("check: --tol ignored", "fastgrad/commands/check.py",
             "methods=args.methods, tol=args.tol,\n", "methods=args.methods, tol=DEFAULT_TOL,\n",
             CHECK),
    Mutation("check: --backprop-tol ignored", "fastgrad/commands/check.py",
             "threads=args.threads, backprop_tol=args.backprop_tol,\n",
             "threads=args.threads, backprop_tol=BACKPROP_TOL,\n", CHECK),
    Mutation("generic: per-chunk copy removed (threads share one array)",
             "fastgrad/kernels/generic.py", "mine = flat.copy()", "mine = flat",
             ("tests/test_generic.py::test_threads_never_share_one_array",), runs=10),
    Mutation("bench compare: regression threshold 1.25 -> 5.0", "fastgrad/bench/compare.py",
             "REGRESSION = 1.25", "REGRESSION = 5.0", ("tests/bench/test_compare.py",)),
    Mutation("data: download timeout removed", "fastgrad/data.py",
             "stream=True, timeout=TIMEOUT,", "stream=True,", ("tests/test_data.py",)),
    Mutation("reference: central difference off by 5e-7", "fastgrad/reference.py",
             "grad[idx] = (fxh1 - fxh2) / (2 * h)", "grad[idx] = (fxh1 - fxh2) / (2 * h) + 5e-7",
             ("tests/test_reference.py",)),
    Mutation("reference: off by 5e-7, seen by the benchmarks alone", "fastgrad/reference.py",
             "grad[idx] = (fxh1 - fxh2) / (2 * h)", "grad[idx] = (fxh1 - fxh2) / (2 * h) + 5e-7",
             ("bench/bench_peers.py",)),
    # --- stencil kernels (jacobian, gradcheck's full and directional modes) ---
    Mutation("stencil: column chunks share one array (no per-chunk copy)",
             "fastgrad/kernels/stencil.py",
             "        mine = flat.copy()\n        view = mine.reshape(shape)\n        for p in",
             "        mine = flat\n        view = mine.reshape(shape)\n        for p in",
             ("tests/test_jacobian.py::test_threads_never_share_one_array",), runs=5),
    Mutation("stencil: perturbed entry not restored after its column",
             "fastgrad/kernels/stencil.py", "            mine[p] = original\n",
             "            mine[p] = original + 0.0 * h\n            mine[p] = mine[p] + h * 0.25\n",
             ("tests/test_jacobian.py",)),
    Mutation("stencil: direction block not restored before the next task",
             "fastgrad/kernels/stencil.py", "if t + 1 < stop:", "if t + 1 < 0:",
             ("tests/test_gradcheck.py::test_direction_stencil_against_a_numpy_witness",)),
    Mutation("stencil: direction block restored only below the next task's block",
             "fastgrad/kernels/stencil.py", "for i in range(max(a, hi[t + 1]), b):",
             "for i in range(max(a, hi[t + 1]), a):",
             ("tests/test_gradcheck.py::test_direction_stencil_against_a_numpy_witness",)),
    Mutation("stencil: direction step not scaled by h",
             "fastgrad/kernels/stencil.py", "((float(row[i]) * scale) * h) * shift",
             "(float(row[i]) * scale) * shift",
             ("tests/test_gradcheck.py::test_direction_stencil_against_a_numpy_witness",)),
    # --- the convolutional net (kernels/conv.py, kernels/conv_incremental.py) ---------
    Mutation("conv: pool switch ignored in the sweep (the old winner kept at +h)",
             "fastgrad/kernels/conv_incremental.py",
             "if win_up == win and best > 0.0 and up > 0.0:", "if best > 0.0 and up > 0.0:",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: wrong pool max (one input of each window ignored)",
             "fastgrad/kernels/conv.py",
             "m = max(max(top[POOL * px], top[POOL * px + 1]),",
             "m = max(max(top[POOL * px], top[POOL * px]),",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: wrong channel offset in the sweep (input channel 0 for the safe windows)",
             "fastgrad/kernels/conv_incremental.py",
             "row[r] = h * img[oy * stride + fy, ox * stride + fx]",
             "row[r] = h * xpad[n, 0][oy * stride + fy, ox * stride + fx]",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: critical window's step read at the wrong tap (fy and fx swapped)",
             "fastgrad/kernels/conv_incremental.py",
             "s_q[q] = h * img[oy * stride + fy, ox * stride + fx]",
             "s_q[q] = h * img[oy * stride + fx, ox * stride + fy]",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: bias step missing from the channel recompute",
             "fastgrad/kernels/conv_incremental.py", "s_q[:] = h", "s_q[:] = 0.0",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: winner's position transposed in the safe windows' steps",
             "fastgrad/kernels/conv_incremental.py",
             "oy = POOL * (r // pool_w) + q // POOL", "oy = POOL * (r // pool_w) + q % POOL",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: wrong W2 rows (another filter's block)",
             "fastgrad/kernels/conv_incremental.py",
             "W2c = W2[c * n_windows:(c + 1) * n_windows]",
             "W2c = W2[(filters - 1 - c) * n_windows:(filters - c) * n_windows]",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: -h side assumed the mirror of +h", "fastgrad/kernels/conv_incremental.py",
             "                    if zm[k] != -zp[k]:", "                    if False:",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: a window near a switch taken as safe (margin test dropped)",
             "fastgrad/kernels/conv_incremental.py",
             "if best - reach_h > 0.0 and best - reach_h > second + reach_h:",
             "if best - reach_h > 0.0:",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: a window near the kink taken as dead (its reach left out)",
             "fastgrad/kernels/conv_incremental.py",
             "if best + reach_h <= 0.0:", "if best <= 0.0:",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: hidden ReLU kink ignored in the shift", "fastgrad/kernels/layers.py",
             "        return s if a + s > 0.0 else -a\n", "        return s\n",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
    Mutation("conv: convolution bias dropped from the compiled forward pass",
             "fastgrad/kernels/conv.py", "o[oy, ox] += bf", "o[oy, ox] += 0.0",
             ("tests/test_conv_methods.py", "tests/test_witness_conv.py")),
]


def problems(mutations, root: Path = ROOT) -> list:
    """Why each of ``mutations`` cannot run as written, one line per problem.

    Its pattern must occur exactly once in its file, and every test it names
    (``path`` or ``path::test_name``) must exist, or the mutation proves nothing.
    """
    found = []
    for m in mutations:
        target = root / m.path
        if not target.is_file():
            found.append(f"{m.name}: {m.path} does not exist")
        elif (count := target.read_text().count(m.old)) != 1:
            found.append(f"{m.name}: its pattern occurs {count} times in {m.path}, not once")
        for test in m.tests:
            file, _, node = test.partition("::")
            path = root / file
            if not path.is_file():
                found.append(f"{m.name}: test file {file} does not exist")
            elif node and f"def {node.split('[')[0]}(" not in path.read_text():
                found.append(f"{m.name}: {file} has no test {node}")
    return found


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked + untracked, ignored left out)."""
    files = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = raw.decode()
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(work: Path, tests, env, timeout) -> tuple[str, float]:
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, *PYTEST, *tests], cwd=work, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start
    code = {0: "passed", 1: "failed"}.get(proc.returncode, f"error (exit {proc.returncode})")
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
    return code, time.monotonic() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", nargs="+", default=None, help="only mutations whose name "
                        "contains one of these words")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k is None or any(w in m.name for w in args.k)]
    broken = problems(chosen)
    if args.list:
        for m in chosen:
            print(f"{m.name}  [{m.path}; {' '.join(m.tests)}]")
    for line in broken:
        print(f"broken mutation: {line}", file=sys.stderr)
    if broken:
        print("update the mutations in tools/mutate.py to follow the code", file=sys.stderr)
        return 2
    if args.list:
        return 0
    if not chosen:
        print(f"no mutation matches {' '.join(args.k)}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="fastgrad-mutate-"))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(work / ".numba-cache"),
           "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("FASTGRAD_THREADS", None)
    rows, missed = [], 0
    try:
        copy_tree(work)
        where = subprocess.run([sys.executable, "-c", "import fastgrad; print(fastgrad.__file__)"],
                               cwd=work, env=env, capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(work)):
            print(f"the copy imports fastgrad from {where!r}, not from {work}", file=sys.stderr)
            return 2
        baseline = sorted({t for m in chosen for t in m.tests})
        status, seconds = run_tests(work, baseline, env, args.timeout)
        print(f"baseline (unmutated) {' '.join(baseline)}: {status} in {seconds:.0f} s",
              flush=True)
        if status != "passed":
            return 2
        for m in chosen:
            target = work / m.path
            source = target.read_text() if target.is_file() else ""
            count = source.count(m.old)
            if count != 1:  # checked before the run; the copy should not differ
                verdict = f"BROKEN (pattern found {count} times)"
                missed += 1
                rows.append((m.name, verdict))
                print(f"{m.name}: {verdict}", flush=True)
                continue
            target.write_text(source.replace(m.old, m.new))
            try:
                outcomes = [run_tests(work, m.tests, env, args.timeout) for _ in range(m.runs)]
            finally:
                target.write_text(source)
            caught = sum(s != "passed" for s, _ in outcomes)
            kinds = sorted({s for s, _ in outcomes if s != "passed"})
            verdict = "caught" if caught == m.runs else "MISSED"
            if m.runs > 1:
                verdict += f" {caught}/{m.runs} runs"
            if kinds and kinds != ["failed"]:
                verdict += f" ({', '.join(kinds)})"
            missed += caught != m.runs
            secs = sum(s for _, s in outcomes)
            rows.append((m.name, verdict))
            print(f"{m.name}: {verdict} ({secs:.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    width = max(len(n) for n, _ in rows) if rows else 10
    print(f"\n{'mutation':<{width}}  result")
    print(f"{'-' * width}  {'-' * 20}")
    for name, verdict in rows:
        print(f"{name:<{width}}  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
