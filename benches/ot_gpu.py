"""GPU entropic OT benchmark: optcore's CUDA Sinkhorn against OTT-JAX and POT (torch and CuPy
backends), with the device's own ceilings measured in the same run.

    python benches/ot_gpu.py --out benches/results/ot_gpu.md      # needs CuPy and a GPU

Sections (each one guarded: a failing peer is reported, not fatal):

1. Ceilings: device-to-device copy bandwidth (bytes read + written) and the exp rate of a
   register-only kernel (float and double) — the two numbers the kernels are judged against.
2. Dense log-domain, n = m in --sizes, float32 and float64: optcore's time per iteration
   (difference of two runs of K1 and K2 iterations, so fixed costs cancel) against the bandwidth
   roofline 2 n m bytes / copy bandwidth (two passes over M per iteration); then end to end to
   the same plan-measured tolerance for optcore, OTT-JAX (lse_mode=True, jitted, compile time
   excluded), POT sinkhorn_log on torch and on CuPy. Every returned plan's L1 marginal error is
   measured here, in float64, on the device.
3. Online (point clouds, cost on the fly), n = m = --online-n, d in {3, 64}, float32: time per
   iteration against the exp-throughput limit (2 n m exps per iteration / measured exp rate).
4. Batch: B problems of n = m = --batch-n in one call against the same problems solved one by
   one (throughput ratio).
5. SNS: the problem families of ``ot_sns.py`` scaled to n ≈ 5000 (eta = 1/reg = 1200, float64),
   GPU SNS against the GPU log-domain Sinkhorn to a measured L1 marginal error of --sns-tol.
6. Unbalanced and grids (issue 21): unbalanced dense n = m = --ub-n (reg_m = 0.5 and (inf,
   0.5)) and a --grid x --grid grid (balanced and reg_m = 0.5), float32 and float64: time per
   iteration (difference of two runs) against the balanced dense iteration on the same M, end
   to end to the tolerance with the residual re-measured here on what is returned, and the
   Rust CPU solver on the same problem (time, largest potential difference).

    python benches/ot_gpu.py --dry-run   # no GPU: section 6 at small sizes on the NumPy emulation
                                         # of the kernels (proves it runs; not GPU times)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
import traceback

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402

LOG = []


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def section(title):
    LOG.append(f"\n## {title}\n")
    say(f"== {title}")


def line(text=""):
    LOG.append(text)
    say(text)


def guard(fn):
    def wrapped(*a, **k):
        try:
            return fn(*a, **k)
        except Exception as exc:  # noqa: BLE001  (a benchmark section must not stop the others)
            line(f"\n**{fn.__name__} failed**: `{type(exc).__name__}: {str(exc)[:300]}`\n")
            say(traceback.format_exc())
            return None

    return wrapped


def sync():
    import cupy as cp

    cp.cuda.Device().synchronize()


def wall(fn):
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t, out


def event_ms(fn, repeat=5, warmup=1):
    import cupy as cp

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        s, e = cp.cuda.Event(), cp.cuda.Event()
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(cp.cuda.get_elapsed_time(s, e))
    return float(np.median(times)), times


def measured_error(P, a, b):
    """L1 marginal error of a plan, float64 sums, on the device (any array with __dlpack__)."""
    import cupy as cp

    P = cp.from_dlpack(P) if not isinstance(P, cp.ndarray) else P
    a = cp.asarray(a, dtype=cp.float64)
    b = cp.asarray(b, dtype=cp.float64)
    return float(cp.abs(P.sum(axis=1, dtype=cp.float64) - a).sum() + cp.abs(P.sum(axis=0, dtype=cp.float64) - b).sum())


# ---------------------------------------------------------------- 1. ceilings

EXP_SRC = r"""
template <typename T> __device__ T ex(T x);
struct fast { float v; };
struct acc_f { float v; };
struct acc_d { double v; };
template <> __device__ fast ex<fast>(fast x) { return fast{__expf(x.v)}; }
template <> __device__ acc_f ex<acc_f>(acc_f x) { return acc_f{expf(x.v)}; }
template <> __device__ acc_d ex<acc_d>(acc_d x) { return acc_d{exp(x.v)}; }
template <typename T, typename E>
__global__ void exp_rate(T* out, int iters, T seed) {
    T x0 = seed * threadIdx.x * T(1e-6), x1 = x0 + T(1e-3), x2 = x0 + T(2e-3), x3 = x0 + T(3e-3);
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int k = 0; k < iters; ++k) {
        s0 += (T)ex<E>(E{x0 - s0 * T(1e-9)}).v; s1 += (T)ex<E>(E{x1 - s1 * T(1e-9)}).v;
        s2 += (T)ex<E>(E{x2 - s2 * T(1e-9)}).v; s3 += (T)ex<E>(E{x3 - s3 * T(1e-9)}).v;
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = s0 + s1 + s2 + s3;
}
"""


@guard
def ceilings(res):
    import cupy as cp

    section("Device ceilings")
    nbytes = 4 << 30
    src = cp.empty(nbytes // 4, dtype=cp.float32)
    src[:] = 1.0
    dst = cp.empty_like(src)
    ms, _ = event_ms(lambda dst=dst, src=src: cp.copyto(dst, src), repeat=10, warmup=2)
    bw = 2 * nbytes / (ms * 1e-3)
    res["copy_bw"] = bw
    line(
        f"- device-to-device copy of {nbytes / 2**30:.0f} GiB: {ms:.3f} ms → **{bw / 1e12:.2f} TB/s** "
        "(bytes read + written)"
    )
    del src, dst
    exprs = {
        "expf (float, accurate)": ("exp_rate<float, acc_f>", cp.float32, 4096, "float_accurate"),
        "__expf (float, hardware ex2: the special-function unit)": ("exp_rate<float, fast>", cp.float32, 4096, "float"),
        "exp (double)": ("exp_rate<double, acc_d>", cp.float64, 512, "double"),
    }
    mod = cp.RawModule(code=EXP_SRC, options=("-std=c++17",), name_expressions=[v[0] for v in exprs.values()])
    sm = cp.cuda.Device().attributes["MultiProcessorCount"]
    for label, (expr, dt, iters, key) in exprs.items():
        fn = mod.get_function(expr)
        blocks, threads = sm * 16, 256
        out = cp.empty(blocks * threads, dtype=dt)
        ms, _ = event_ms(lambda: fn((blocks,), (threads,), (out, np.int32(iters), dt(0.5))), repeat=5)
        rate = blocks * threads * iters * 4 / (ms * 1e-3)
        res[f"exp_rate_{key}"] = rate
        line(f"- {label}, register-only: **{rate / 1e12:.2f} T exp/s**")
    line("\n(The kernels' streaming sums use __expf in float and exp in double.)")


# ---------------------------------------------------------------- 2. dense


def dense_problem(n, dtype, seed=0):
    import cupy as cp

    rng = cp.random.default_rng(seed)
    x = rng.random((n, 2), dtype=cp.float64)
    y = rng.random((n, 2), dtype=cp.float64)
    M = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    cp.maximum(M, 0, out=M)
    M /= M.max()
    a = cp.full(n, 1.0 / n)
    return a.astype(dtype), a.astype(dtype), M.astype(dtype)


def optcore_per_iter(a, b, M, reg, k1=10, k2=40, **kw):
    import optcore

    def run(k):
        return optcore.ot.sinkhorn(
            a,
            b,
            M,
            reg,
            tol=1e-300,
            maxiter=k,
            check_every=k,
            return_plan=False,
            warn=False,
            options={"overrelaxation": 1.0},
            **kw,
        )

    run(k1)
    t1 = min(wall(lambda: run(k1))[0] for _ in range(2))
    t2 = min(wall(lambda: run(k2))[0] for _ in range(2))
    return (t2 - t1) / (k2 - k1)


def pass_times(a, b, M, reg):
    """Event-timed partial kernels of the f pass (rows) and g pass (columns), finalize excluded."""
    import cupy as cp

    from optcore.ot._gpu.launch import MAX_SPLITS, CupyKernels

    kern = CupyKernels(M.dtype)
    n, m = M.shape
    size = MAX_SPLITS * max(n, m)
    pm, ps, pc = cp.empty(size, dtype=M.dtype), cp.empty(size), cp.empty(size)
    h_r, h_c = cp.zeros(m, dtype=M.dtype), cp.zeros(n, dtype=M.dtype)
    r, _ = event_ms(lambda: kern.dense_rows(M, h_r, pm, ps, pc, 1, n, m, 0, 1 / reg, False), repeat=10)
    c, _ = event_ms(lambda: kern.dense_cols(M, h_c, pm, ps, pc, 1, n, m, 0, 1 / reg, False), repeat=10)
    return r, c


@guard
def dense(res, sizes, reg, tols):
    import cupy as cp

    import optcore

    section(f"Dense log-domain Sinkhorn (uniform points in the unit square, squared Euclidean cost / max, reg = {reg})")
    line("Per iteration: two passes over M (g update, then f update). Roofline = 2·n·m·bytes / copy bandwidth.\n")
    line(
        "| n = m | dtype | optcore ms/iter | roofline ms/iter | % of roofline | f pass / g pass ms (% of one-pass roofline) |"
    )
    line("|---|---|---|---|---|---|")
    rows = []
    for n in sizes:
        for dt in (cp.float32, cp.float64):
            a, b, M = dense_problem(n, dt)
            per = optcore_per_iter(a, b, M, reg)
            roof = 2 * n * n * M.itemsize / res["copy_bw"]
            rows_ms, cols_ms = pass_times(a, b, M, reg)
            rows.append(
                dict(n=n, dtype=np.dtype(dt).name, per_iter=per, roofline=roof, rows_ms=rows_ms, cols_ms=cols_ms)
            )
            line(
                f"| {n} | {np.dtype(dt).name} | {per * 1e3:.3f} | {roof * 1e3:.3f} | {100 * roof / per:.0f}% | "
                f"{rows_ms:.3f} / {cols_ms:.3f} ({100 * roof / 2e-3 / rows_ms:.0f}% / {100 * roof / 2e-3 / cols_ms:.0f}%) |"
            )
            del a, b, M
            cp.get_default_memory_pool().free_all_blocks()
    res["dense_per_iter"] = rows
    line("\nEnd to end, same plan-measured tolerance (every plan's L1 marginal error measured here):\n")
    line("| n = m | dtype | tol | solver | its threshold | time (s) | iterations | measured error | vs optcore |")
    line("|---|---|---|---|---|---|---|---|---|")
    out = []
    for n in sizes:
        for dt in (cp.float32, cp.float64):
            tol = tols[np.dtype(dt).name]
            a, b, M = dense_problem(n, dt)
            results = []
            # optcore (default method: log, auto over-relaxation)
            optcore.ot.sinkhorn(a, b, M, reg, tol=tol, maxiter=20000, warn=False)  # warm-up (compilation)
            t, r = wall(lambda a=a, b=b, M=M: optcore.ot.sinkhorn(a, b, M, reg, tol=tol, maxiter=20000, warn=False))
            results.append(("optcore log", t, r.nit, measured_error(r.plan, a, b), tol))
            del r
            for name, fn in (
                ("OTT-JAX lse_mode", ott_run),
                ("POT sinkhorn_log (torch)", pot_torch_run),
                ("POT sinkhorn_log (cupy)", pot_cupy_run),
            ):
                try:
                    results.append((name, *fn(a, b, M, reg, tol)))
                except Exception as exc:  # noqa: BLE001
                    results.append((name, float("nan"), 0, float("nan"), float("nan")))
                    line(f"<!-- {name} failed: {type(exc).__name__}: {str(exc)[:200]} -->")
                    say(traceback.format_exc())
                cp.get_default_memory_pool().free_all_blocks()
            base = results[0][1]
            for name, t, nit, err, thr in results:
                ok = "" if err <= tol else " (misses tol)"
                line(
                    f"| {n} | {np.dtype(dt).name} | {tol:g} | {name} | {thr:.0e} | {t:.3f} | {nit} | {err:.2e}{ok} | "
                    f"{t / base:.1f}× |"
                )
                out.append(
                    dict(n=n, dtype=np.dtype(dt).name, tol=tol, solver=name, time=t, nit=nit, error=err, threshold=thr)
                )
            del a, b, M
            cp.get_default_memory_pool().free_all_blocks()
    res["dense_e2e"] = out


_OTT = {}


def ott_run(a, b, M, reg, tol):
    import cupy as cp
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from ott.geometry import geometry
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn as ott_sinkhorn

    key = (M.shape, str(M.dtype))
    if key not in _OTT:

        def solve(Mj, aj, bj, eps, thr):
            geom = geometry.Geometry(cost_matrix=Mj, epsilon=eps)
            out = ott_sinkhorn.Sinkhorn(lse_mode=True, threshold=thr, max_iterations=20000)(
                linear_problem.LinearProblem(geom, aj, bj)
            )
            return out.matrix, out.n_iters

        _OTT[key] = jax.jit(solve)
    Mj, aj, bj = (jnp.from_dlpack(x) for x in (M, a, b))
    eps, thr = jnp.asarray(reg, dtype=Mj.dtype), jnp.asarray(tol, dtype=Mj.dtype)
    P, it = _OTT[key](Mj, aj, bj, eps, thr)  # compile + warm-up
    P.block_until_ready()
    sync()
    t = time.perf_counter()
    P, it = _OTT[key](Mj, aj, bj, eps, thr)
    P.block_until_ready()
    t = time.perf_counter() - t
    return t, int(it), measured_error(cp.from_dlpack(P), a, b), tol


def pot_search(run, a, b, tol):
    """POT stops on its own criterion (2-norm of one marginal, every 10 iterations): lower its
    stopThr by 10× until the returned plan's L1 error meets tol (at most 4 tries); returns the
    time, iterations and error of the first run that meets it (or of the last), and the
    threshold used."""
    thr = tol
    for _ in range(4):
        t, P, nit = run(thr)
        err = measured_error(P, a, b)
        if err <= tol:
            break
        thr /= 10
    return t, nit, err, thr


def pot_torch_run(a, b, M, reg, tol):
    import ot
    import torch

    Mt, at, bt = (torch.from_dlpack(x) for x in (M, a, b))
    ot.sinkhorn(at, bt, Mt, reg, method="sinkhorn_log", stopThr=tol, numItermax=10)  # warm-up

    def run(thr):
        torch.cuda.synchronize()
        t = time.perf_counter()
        P, log = ot.sinkhorn(at, bt, Mt, reg, method="sinkhorn_log", stopThr=thr, numItermax=5000, log=True)
        torch.cuda.synchronize()
        return time.perf_counter() - t, P, int(log.get("niter", -1))

    return pot_search(run, a, b, tol)


def pot_cupy_run(a, b, M, reg, tol):
    import ot

    ot.sinkhorn(a, b, M, reg, method="sinkhorn_log", stopThr=tol, numItermax=10)

    def run(thr):
        t, (P, log) = wall(
            lambda: ot.sinkhorn(a, b, M, reg, method="sinkhorn_log", stopThr=thr, numItermax=5000, log=True)
        )
        return t, P, int(log.get("niter", -1))

    return pot_search(run, a, b, tol)


# ---------------------------------------------------------------- 3. online


@guard
def online(res, n, dims, reg):
    import cupy as cp

    import optcore

    section(f"Online form (point clouds, cost on the fly), n = m = {n}, float32, reg = {reg}")
    line("Exp limit per iteration = 2·n·m / measured __expf rate (one exp per pair and half-iteration).\n")
    line("| d | ms/iter | exp limit ms/iter | ratio | n×m array allocated |")
    line("|---|---|---|---|---|")
    rows = []
    for d in dims:
        rng = cp.random.default_rng(d)
        x = (rng.random((n, d), dtype=cp.float32) / np.sqrt(d)).astype(cp.float32)
        y = (rng.random((n, d), dtype=cp.float32) / np.sqrt(d)).astype(cp.float32)
        pool = cp.get_default_memory_pool()
        before = pool.total_bytes()

        def run(k):
            return optcore.ot.sinkhorn(
                None,
                None,
                reg=reg,
                x=x,
                y=y,
                tol=1e-300,
                maxiter=k,
                check_every=k,
                return_plan=False,
                warn=False,
                options={"overrelaxation": 1.0},
            )

        run(1)
        t1 = wall(lambda: run(2))[0]
        t2 = wall(lambda: run(4))[0]
        per = (t2 - t1) / 2
        grew = pool.total_bytes() - before
        limit = 2 * n * n / res["exp_rate_float"]  # __expf: the special-function unit's rate
        rows.append(dict(d=d, per_iter=per, exp_limit=limit, pool_growth=grew))
        line(
            f"| {d} | {per * 1e3:.2f} | {limit * 1e3:.2f} | {per / limit:.1f}× | "
            f"{'no' if grew < n * n * 4 else 'YES'} (pool grew {grew / 2**20:.1f} MiB) |"
        )
    res["online"] = rows


# ---------------------------------------------------------------- 4. batch


@guard
def batch(res, B, n, reg, tol):
    import cupy as cp

    import optcore

    section(f"Batch: {B} problems of n = m = {n} in one call vs one by one (float64, reg = {reg}, tol = {tol})")
    rng = cp.random.default_rng(7)
    x = rng.random((B, n, 2))
    y = rng.random((B, n, 2))
    M = ((x[:, :, None, :] - y[:, None, :, :]) ** 2).sum(-1)
    M /= M.max(axis=(1, 2), keepdims=True)
    a = cp.full((B, n), 1.0 / n)
    optcore.ot.sinkhorn(a, a, M, reg, tol=tol, warn=False)
    t_b, r = wall(lambda: optcore.ot.sinkhorn(a, a, M, reg, tol=tol, warn=False))
    ok_b = bool(r.success)
    optcore.ot.sinkhorn(a[0], a[0], M[0], reg, tol=tol, warn=False)

    def one_by_one():
        return [optcore.ot.sinkhorn(a[i], a[i], M[i], reg, tol=tol, warn=False) for i in range(B)]

    t_1, rs = wall(one_by_one)
    ok_1 = all(q.success for q in rs)
    diff = max(float(cp.abs(r.plan[i] - rs[i].plan).sum()) for i in range(B))
    res["batch"] = dict(B=B, n=n, batched=t_b, one_by_one=t_1, nit=int(r.nit), success=ok_b and ok_1, max_l1_diff=diff)
    line(
        f"- batched: {t_b * 1e3:.1f} ms ({r.nit} iterations, all converged: {ok_b}); one by one: "
        f"{t_1 * 1e3:.1f} ms (all converged: {ok_1}) → **{t_1 / t_b:.1f}× the throughput**; "
        f"largest L1 difference between the two plans of a problem: {diff:.1e}"
    )


@guard
def sns(res, tol, names):
    import cupy as cp
    import ot_sns  # the SNS benchmark's problem families

    import optcore

    section(f"Sinkhorn–Newton–Sparse on the GPU vs the GPU log-domain Sinkhorn (eta = 1200, float64, tol = {tol:g})")
    builders = {
        "random-5000": lambda: ot_sns.random_problem(5000, 0),
        "digits71-L2": lambda: ot_sns.digits_problem("L2", (0, 1), 71),
        "digits71-L1": lambda: ot_sns.digits_problem("L1", (0, 1), 71),
        "gmm71-W2": lambda: ot_sns.gmm_problem(71, "W2", (1, 2)),
        "gmm71-W1": lambda: ot_sns.gmm_problem(71, "W1", (1, 2)),
    }
    line("| problem | n | solver | time (s) | iterations | measured error | log / SNS time |")
    line("|---|---|---|---|---|---|---|")
    rows = []
    for name in names:
        p = builders[name]()
        a, b, M = cp.asarray(p.a), cp.asarray(p.b), cp.asarray(p.M)
        reg = 1 / 1200
        out = {}
        for label, method, cap in (("optcore sns (GPU)", "sns", 2000), ("optcore log (GPU)", "log", 50_000)):
            # warm-up through every stage (SNS: two Sinkhorn, then Newton steps), so that CuPy's
            # kernel compilation is not timed
            optcore.ot.sinkhorn(
                a,
                b,
                M,
                reg,
                method=method,
                tol=tol,
                maxiter=6,
                warn=False,
                options={"warmup": 2} if method == "sns" else None,
            )
            t, r = wall(
                lambda a=a, b=b, M=M: optcore.ot.sinkhorn(a, b, M, reg, method=method, tol=tol, maxiter=cap, warn=False)
            )
            its = f"{r.nit}" + (f" ({r.n_sinkhorn}+{r.n_newton})" if method == "sns" else "")
            err = measured_error(r.plan, a, b)
            out[method] = t
            rows.append(
                dict(problem=name, n=p.n, solver=label, time=t, nit=int(r.nit), error=err, success=bool(r.success))
            )
            ratio = f"{out['log'] / out['sns']:.1f}×" if method == "log" else ""
            line(
                f"| {name} | {p.n} | {label} | {t:.3f} | {its} | {err:.2e}{'' if r.success else ' (not converged)'} | {ratio} |"
            )
        if name == names[0]:
            first = (a, b, M, reg)
        del a, b, M
        cp.get_default_memory_pool().free_all_blocks()
    res["sns"] = rows
    sns_anatomy(res, *first)


@guard
def sns_anatomy(res, a, b, M, reg):
    """Event times of the parts of one Newton step at the Sinkhorn stage's switch point."""
    import cupy as cp
    import cupyx.scipy.sparse as sp

    import optcore
    from optcore.ot._gpu import sns as gsns
    from optcore.ot._gpu.launch import CupyKernels
    from optcore.ot._gpu.sinkhorn import DenseCost, _plan

    kern = CupyKernels(M.dtype)
    n, m = M.shape
    w = optcore.ot.sinkhorn(a, b, M, reg, tol=1e-2, warn=False)
    f, g = w.f[None], w.g[None]
    cost = DenseCost(M, n, m, 0)
    P = _plan(kern, cost, f, g, reg, 1)[0]
    r, c = P.sum(axis=1, dtype=cp.float64), P.sum(axis=0, dtype=cp.float64)
    min_keep = int((2.0 / min(n, m) * (n + m) ** 2 - (n + m)) / 2.0)
    parts = {}
    parts["plan + marginals"] = event_ms(
        lambda: (_plan(kern, cost, f, g, reg, 1), P.sum(axis=1, dtype=cp.float64), P.sum(axis=0, dtype=cp.float64)),
        repeat=3,
    )[0]
    tau = gsns._threshold(cp, P, float(r.sum()), min_keep, None)
    parts["threshold (bisection over exponents)"] = event_ms(
        lambda: gsns._threshold(cp, P, float(r.sum()), min_keep, None), repeat=3
    )[0]
    parts["dense -> CSR"] = event_ms(lambda: sp.csr_matrix(cp.where(P >= tau, P, 0).astype(cp.float64)), repeat=3)[0]
    Ps = sp.csr_matrix(cp.where(P >= tau, P, 0).astype(cp.float64))
    parts["transpose (CSR)"] = event_ms(lambda: Ps.T.tocsr(), repeat=3)[0]
    PsT = Ps.T.tocsr()
    av, bv = a.astype(cp.float64), b.astype(cp.float64)
    ga, gb = av - r, bv - c
    dr, dc = r + 1e-6, c + 1e-6
    rhs = gb - PsT @ (ga / dr)
    its = []

    def cg():
        x, k = gsns._cg_schur(cp, Ps, PsT, dr, dc, bv > 0, rhs, 1e-2, 1000)
        its.append(k)

    parts["CG on the Schur complement"] = event_ms(cg, repeat=3)[0]
    line(
        f"\nOne Newton step's parts on {n}×{m} at the switch point (nnz = {Ps.nnz}, "
        f"{its[-1]} CG iterations; a log-domain iteration here: see the table above):\n"
    )
    for k, v in parts.items():
        line(f"- {k}: {v:.2f} ms")
    res["sns_anatomy"] = dict(parts, nnz=int(Ps.nnz), cg_its=int(its[-1]))


@guard
def ub_section(res, xp, *args):
    """Section 6: benches/ot_gpu_unbalanced.py, reporting into this script's table."""
    from ot_gpu_unbalanced import unbalanced_grids  # noqa: PLC0415  (benches/ is the script's folder)

    unbalanced_grids(sys.modules[__name__], res, xp, *args)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10000,20000")
    p.add_argument("--reg", type=float, default=0.01)
    p.add_argument("--tol32", type=float, default=1e-5)
    p.add_argument("--tol64", type=float, default=1e-6)
    p.add_argument("--online-n", type=int, default=100_000)
    p.add_argument("--online-dims", default="3,64")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--batch-n", type=int, default=256)
    p.add_argument("--sns-tol", type=float, default=1e-8)
    p.add_argument("--sns-problems", default="random-5000,digits71-L2,digits71-L1,gmm71-W2,gmm71-W1")
    p.add_argument("--skip", default="", help="comma list of sections to skip: dense,online,batch,sns,unbalanced")
    p.add_argument("--ub-n", type=int, default=10_000)
    p.add_argument("--grid", type=int, default=256)
    p.add_argument("--dry-run", action="store_true", help="section 6 only, small, on the NumPy emulation")
    p.add_argument("--out", default="benches/results/ot_gpu.md")
    args = p.parse_args()
    if args.dry_run:
        ub_section({}, np, min(args.ub_n, 300), min(args.grid, 24), args.reg, {"float32": 1e-5, "float64": 1e-8})
        print("\n".join(LOG))
        return
    import cupy as cp

    import optcore

    dev = cp.cuda.runtime.getDeviceProperties(0)
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.mem", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except Exception:  # noqa: BLE001
        smi = "?"
    t0 = time.perf_counter()
    res = {"date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "args": vars(args)}
    LOG.append("# optcore Sinkhorn GPU benchmark\n")
    LOG.append(f"`python benches/ot_gpu.py {' '.join(sys.argv[1:])}` — {res['date']}\n")
    LOG.append("## Machine\n")
    versions = {}
    for mod in ("cupy", "torch", "jax", "ot", "ott"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            versions[mod] = "missing"
    LOG.append(
        f"- GPU: {dev['name'].decode()} ({smi}), {dev['multiProcessorCount']} SMs, "
        f"{dev['totalGlobalMem'] / 2**30:.0f} GiB; host {platform.processor() or platform.machine()}"
    )
    res["machine"] = f"{dev['name'].decode()} GPU, {dev['totalGlobalMem'] / 2**30:.0f} GiB"
    LOG.append(
        f"- optcore {optcore.__version__}, CuPy {versions['cupy']}, torch {versions['torch']}, "
        f"jax {versions['jax']}, POT {versions['ot']}, ott-jax {versions['ott']}, Python {platform.python_version()}"
    )
    ceilings(res)
    skip = set(filter(None, args.skip.split(",")))
    if "dense" not in skip:
        dense(res, [int(s) for s in args.sizes.split(",")], args.reg, {"float32": args.tol32, "float64": args.tol64})
    if "online" not in skip:
        online(res, args.online_n, [int(d) for d in args.online_dims.split(",")], args.reg)
    if "batch" not in skip:
        batch(res, args.batch, args.batch_n, 0.05, 1e-8)
    if "sns" not in skip:
        sns(res, args.sns_tol, args.sns_problems.split(","))
    if "unbalanced" not in skip:
        ub_section(res, cp, args.ub_n, args.grid, args.reg, {"float32": args.tol32, "float64": args.tol64})
    LOG.append(f"\nTotal run time {time.perf_counter() - t0:.0f} s.")
    png_name = os.path.basename(os.path.splitext(args.out)[0]) + ".png"
    LOG.append(f"\n![per-iteration, end-to-end and SNS timings]({png_name})")
    text = "\n".join(LOG) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as fh:
        json.dump(res, fh, indent=1, default=float)
    print(text)
    from plots import plot_ot_gpu  # noqa: PLC0415  (benches/plots.py: the PNG beside the table)

    png = plot_ot_gpu(os.path.splitext(args.out)[0] + ".json")
    if png is not None:
        print(f"wrote {png}")


if __name__ == "__main__":
    main()
