"""Sinkhorn–Newton–Sparse on the device (the algorithm of ``rust/optcore-core/src/ot/sns.rs``).

1. Sinkhorn stage: :func:`~optcore.ot._gpu.sinkhorn.solve_log` (the CUDA kernels) until the
   marginal error is below ``switch_tol * sum(a)`` (or for ``warmup`` iterations).
2. Newton stage, per step: the dense plan on the device (``sk_plan_dense``); its marginals and
   the gradient; the kept entries chosen from a histogram of their base-2 exponents (counts
   and mass per bin — no sort): the largest entries that hold all but 1e-5 of the mass, and at
   least the paper's ``3 n`` of them (or ``density * n * m`` when given); the sparsified
   off-diagonal block as a CSR matrix (``cupyx.scipy.sparse``); the exact diagonals; the
   shift ``mu * ||grad||``; Jacobi-preconditioned conjugate gradients on the ``m x m`` Schur
   complement, all on the device; an Armijo backtracking line search on the dual, each trial
   one plan pass; one Sinkhorn iteration when no step length increases the dual.

Written over the array module ``xp`` and its sparse module, so that CI runs it on NumPy/SciPy
with the emulated kernels.
"""

from __future__ import annotations

import math

import numpy as np

from ..._core import LineSearch, NewtonController
from .sinkhorn import _host, _Passes, _plan, solve_log

__all__ = ["solve_sns"]

_FLOOR_EXP = -160  # log2 of the smallest plan entry the histogram resolves (float64 ~ 2^-1074)


def _threshold(xp, P, total: float, min_keep: int, density: float | None) -> float:
    """Smallest kept value, a power of two: the largest ``2^e`` such that the entries
    ``>= 2^e`` number at least ``min_keep`` (or ``density * P.size``) and hold all but 1e-5 of
    ``total``.

    Both conditions only get easier as ``e`` decreases, so ``e`` is found by bisection over
    [-160, 1]: about 8 steps of two plain reductions (count and mass) each, no sort and no
    atomics. (A histogram of the exponents — ``histogram`` or ``bincount`` — took 42 ms of a
    45 ms Newton step at n = 5000 on an H200: 25 million atomic adds into the few hot bins
    serialise.)"""
    flat = P.reshape(-1)
    want = max(1, min(P.size, int(math.ceil(density * P.size)) if density else min_keep))

    def ok(e: int) -> bool:
        t = 2.0**e
        kept = flat >= t
        if int(_host(kept.sum())) < want:
            return False
        return bool(density) or float(_host(xp.where(kept, flat, 0).sum(dtype=np.float64))) >= (1 - 1e-5) * total

    lo, hi = _FLOOR_EXP, 2  # ok(lo) is assumed (or nothing is cut), ok(hi) is false
    if not ok(lo):
        return 0.0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return float(2.0**lo)


def _cg_schur(xp, Ps, PsT, dr, dc, active_c, rhs, rtol, maxiter):
    """Jacobi-preconditioned CG on ``diag(dc) - Ps^T diag(1/dr) Ps`` (active columns)."""
    diag = dc - (PsT.multiply(PsT) @ (1.0 / dr))
    diag = xp.where(diag > 1e-300, diag, xp.maximum(dc, 1e-300))

    def op(x):
        return xp.where(active_c, dc * x - PsT @ ((Ps @ x) / dr), 0.0)

    x = xp.zeros_like(rhs)
    res = rhs.copy()
    tol = rtol * float(xp.linalg.norm(rhs))
    z = res / diag
    d = z.copy()
    rz = float(res @ z)
    its = 0
    while its < maxiter and float(xp.linalg.norm(res)) > tol:
        sd = op(d)
        dsd = float(d @ sd)
        if not dsd > 0:
            break
        alpha = rz / dsd
        x += alpha * d
        res -= alpha * sd
        z = res / diag
        rz_new = float(res @ z)
        d = z + (rz_new / rz) * d
        rz = rz_new
        its += 1
    return x, its


def solve_sns(
    kern,
    sparse,
    cost,
    a,
    b,
    reg,
    *,
    tol,
    maxiter,
    f0=None,
    g0=None,
    overrelaxation=None,
    switch_tol=1e-2,
    warmup=None,
    density=None,
    cg_maxiter=1000,
    eps_stages=None,
    check_every=10,
    progress=None,
):
    """SNS for one dense problem (``a`` (1, n), ``b`` (1, m)); returns the dict of
    :func:`~optcore.ot._gpu.sinkhorn.solve_log` plus the SNS counters."""
    xp = kern.xp
    dtype = kern.dtype
    n, m = cost.n, cost.m
    mass = float(_host(a.sum(dtype=np.float64)))
    if warmup is not None:
        warm = solve_log(
            kern,
            cost,
            a,
            b,
            reg,
            tol=0.0,
            maxiter=min(warmup, maxiter),
            f0=f0,
            g0=g0,
            overrelaxation=overrelaxation,
            check_every=max(1, min(check_every, warmup or 1)),
            progress=progress,
            return_plan=False,
        )
    else:
        warm = solve_log(
            kern,
            cost,
            a,
            b,
            reg,
            tol=switch_tol * mass,
            maxiter=maxiter,
            f0=f0,
            g0=g0,
            overrelaxation=overrelaxation,
            eps_stages=eps_stages,
            check_every=check_every,
            progress=progress,
            return_plan=False,
        )
    n_sink = int(warm["nit"])
    out = {
        "n_sinkhorn": n_sink,
        "n_newton": 0,
        "hessian_density": 0.0,
        "cg_iterations": 0,
        "line_search_evals": 0,
        "stages": 1,
    }
    if warm["status"] in (4, 99):
        out.update({k: warm[k] for k in ("f", "g", "nit", "status", "detail")})
        return _finish(kern, cost, a, b, reg, out)
    f = warm["f"].astype(np.float64)
    g = warm["g"].astype(np.float64)
    av, bv = a[0].astype(np.float64), b[0].astype(np.float64)
    act_r, act_c = av > 0, bv > 0
    min_keep = int(math.ceil((2.0 / min(n, m) * (n + m) ** 2 - (n + m)) / 2.0))
    passes = _Passes(kern, cost, a, b, 1)
    newton = NewtonController()
    n_newton, cg_total, evals = 0, 0, 0
    dens = 0.0

    def plan_of(fv, gv):
        P = _plan(kern, cost, fv.astype(dtype)[None], gv.astype(dtype)[None], reg, 1)[0]
        r = P.sum(axis=1, dtype=np.float64)
        c = P.sum(axis=0, dtype=np.float64)
        return P, r, c

    P, r, c = plan_of(f[0], g[0])
    f, g = f[0], g[0]
    status, detail = 1, ""
    while True:
        nit = n_sink + n_newton
        err = float(_host(xp.abs(r - av).sum() + xp.abs(c - bv).sum()))
        if not math.isfinite(err):
            status, detail = 4, f"non-finite plan entries at iteration {nit} (reg = {reg:g}); rescale M and reg."
            break
        if err <= tol:
            status = 0
            break
        if nit >= maxiter:
            break
        if newton.stalled(nit, err):
            status, detail = 4, newton.stall_detail(tol, np.dtype(dtype).name)
            break
        if progress is not None and n_newton > 0:
            state = {
                "nit": nit,
                "error": err,
                "f": f.astype(dtype),
                "g": g.astype(dtype),
                "reg": reg,
                "n_newton": n_newton,
                "hessian_density": dens,
            }
            if not progress(state):
                status = 99
                break
        ga = xp.where(act_r, av - r, 0.0)
        gb = xp.where(act_c, bv - c, 0.0)
        gnorm = float(xp.sqrt((ga * ga).sum() + (gb * gb).sum()))
        shift = newton.mu * gnorm
        total = float(_host(r.sum()))
        tau = _threshold(xp, P, total, min_keep, density)
        Pk = xp.where(P >= tau, P, 0).astype(np.float64)
        Ps = sparse.csr_matrix(Pk)
        del Pk
        PsT = Ps.T.tocsr()
        dens = Ps.nnz / (n * m)
        dr = xp.where(act_r, r + shift, 1.0)
        dc = xp.where(act_c, c + shift, 1.0)
        rhs = xp.where(act_c, gb - PsT @ (ga / dr), 0.0)
        cg_rtol = NewtonController.cg_rtol(err, mass)
        dgp, its = _cg_schur(xp, Ps, PsT, dr, dc, act_c, rhs, cg_rtol, cg_maxiter)
        cg_total += its
        dfp = xp.where(act_r, (ga - Ps @ dgp) / dr, 0.0)
        slope = float(ga @ dfp + gb @ dgp)
        quad = float(dfp @ (r * dfp + Ps @ dgp) + dgp @ (c * dgp + PsT @ dfp))
        pred = reg * (slope - 0.5 * quad)
        with np.errstate(invalid="ignore"):
            d0 = float(xp.where(act_r, av * f, 0).sum() + xp.where(act_c, bv * g, 0).sum()) - reg * total
            scale = (
                float(xp.where(act_r, xp.abs(av * f), 0).sum() + xp.where(act_c, xp.abs(bv * g), 0).sum()) + reg * total
            )
        search = LineSearch(reg, slope, d0, scale, err)
        accepted = None
        for alpha in search.steps():
            ft = f + alpha * reg * dfp
            gt = g + alpha * reg * dgp
            Pt, rt, ct = plan_of(ft, gt)
            evals += 1
            tt = float(_host(rt.sum()))
            with np.errstate(invalid="ignore"):
                d1 = float(xp.where(act_r, av * ft, 0).sum() + xp.where(act_c, bv * gt, 0).sum()) - reg * tt
            et = float(_host(xp.abs(rt - av).sum() + xp.abs(ct - bv).sum()))
            if search.accepts(alpha, d1, et):
                accepted = (alpha, ft, gt, Pt, rt, ct, d1)
                break
        if accepted is not None:
            alpha, f, g, P, r, c, d1 = accepted
            newton.accepted(alpha, d1 - d0, pred)
            n_newton += 1
        else:
            newton.rejected()
            one = solve_log(
                kern,
                cost,
                a,
                b,
                reg,
                tol=0.0,
                maxiter=1,
                f0=f.astype(dtype)[None],
                g0=g.astype(dtype)[None],
                overrelaxation=1.0,
                check_every=1,
                return_plan=False,
            )
            f, g = one["f"][0].astype(np.float64), one["g"][0].astype(np.float64)
            P, r, c = plan_of(f, g)
            n_sink += 1
    del passes
    out.update(
        {
            "f": f.astype(dtype)[None],
            "g": g.astype(dtype)[None],
            "nit": n_sink + n_newton,
            "status": status,
            "detail": detail,
            "n_sinkhorn": n_sink,
            "n_newton": n_newton,
            "hessian_density": dens,
            "cg_iterations": cg_total,
            "line_search_evals": evals,
        }
    )
    return _finish(kern, cost, a, b, reg, out, P)


def _finish(kern, cost, a, b, reg, out, P=None):
    """Plan, its measured marginal error, cost and objective."""
    xp = kern.xp
    f, g = out["f"], out["g"]
    if P is None:
        P = _plan(kern, cost, f, g, reg, 1)[0]
    passes = _Passes(kern, cost, a, b, 1)
    _, cost_d, fun_d = passes.measure(f, g, reg)
    rows = P.sum(axis=1, dtype=np.float64)
    cols = P.sum(axis=0, dtype=np.float64)
    err = xp.abs(rows - a[0]).sum() + xp.abs(cols - b[0]).sum()
    out.update(plan=P[None], marginal_error=np.atleast_1d(_host(err)), cost=_host(cost_d), fun=_host(fun_d))
    return out
