"""The GPU Sinkhorn driver: the iteration loop around the ``kernels/ot_sinkhorn.cu`` kernels.

:func:`solve_log` runs log-domain Sinkhorn (plain, over-relaxed, ε-scaled) on a dense cost
(``DenseCost``: a batch of row-major matrices, or one matrix shared by a batch of weight pairs),
on point clouds (``OnlineCost``: squared Euclidean cost computed on the fly) or on a grid
(:class:`~optcore.ot._gpu.grid.GridCost`: separable passes), balanced or unbalanced
(``reg_m``: :mod:`optcore.ot._gpu.unbalanced`), and
:func:`solve_scaling` the ``u / (K v)`` form with cuBLAS products. Both work on any object with
the methods of :class:`~optcore.ot._gpu.launch.CupyKernels`; with
:class:`~optcore.ot._gpu.emulate.NumpyKernels` the same code runs on NumPy arrays (CI checks it
against the Rust solver that way).

One iteration is two passes over the cost (g update, then f update), four launches; the L1
marginal error of the plan ``(f, g_new)`` is accumulated on the device every iteration, and the
host reads the errors of the last ``check_every`` iterations at each check (one
synchronisation). The errors read there are fed to the Rust core's controller
(``optcore._core.SinkhornController``, the one the CPU solver runs), which decides the
over-relaxation factor, the end of each ε stage and whether the run has stalled; the driver
runs the progress callback and the tolerance test on what it measured. The returned plan is
the one whose error was measured, and its error is measured again, in float64 sums, on what is
returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._core import SinkhornController
from . import unbalanced as ub
from .launch import MAX_SPLITS

__all__ = ["DenseCost", "OnlineCost", "solve_log", "solve_scaling"]


@dataclass
class DenseCost:
    """``M`` of shape ``(B, n, m)`` (``m_stride = n * m``) or ``(n, m)`` shared by the whole
    batch (``m_stride = 0``)."""

    M: object
    n: int
    m: int
    m_stride: int
    kind: str = "dense"


@dataclass
class OnlineCost:
    """Points ``X`` (n, D) and ``Y`` (m, D), zero-padded to an instantiated ``D``."""

    X: object
    Y: object
    D: int
    kind: str = "online"

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def m(self) -> int:
        return self.Y.shape[0]


class _Passes:
    """Scratch buffers and the two half-iterations of one problem (batch). ``reg_m``:
    ``(rho_a, rho_b)`` of an unbalanced problem (None: balanced)."""

    def __init__(self, kern, cost, a, b, B, reg_m=None):
        xp = kern.xp
        self.kern, self.cost, self.a, self.b, self.B = kern, cost, a, b, B
        self.rho = {"rows": np.inf, "cols": np.inf} if reg_m is None else {"rows": reg_m[0], "cols": reg_m[1]}
        n, m = cost.n, cost.m
        # A pass writes nsplit * B * (n or m) partials.
        size = getattr(cost, "max_splits", MAX_SPLITS) * B * max(n, m)
        self.pm = xp.empty(size, dtype=kern.dtype)
        self.ps = xp.empty(size, dtype=np.float64)
        self.pc = xp.empty(size, dtype=np.float64)
        self.bad = xp.zeros(1, dtype=np.int32)
        self.scratch = xp.zeros((3, B), dtype=np.float64)

    def _partials(self, side: str, h, p_old, w, inv_reg: float, want_cost: bool) -> int:
        k, c = self.kern, self.cost
        if c.kind == "grid":
            return c.partials(h, self.pm, self.ps, self.pc, inv_reg, want_cost)
        if c.kind == "dense":
            fn = k.dense_rows if side == "rows" else k.dense_cols
            return fn(c.M, h, self.pm, self.ps, self.pc, self.B, c.n, c.m, c.m_stride, inv_reg, want_cost)
        X, Y = (c.X, c.Y) if side == "rows" else (c.Y, c.X)
        return k.online(X, Y, h, p_old, w, self.pm, self.ps, self.pc, c.D, inv_reg, want_cost)

    def half(self, side, h, p_old, p_new, reg, omega, flags, err, cost=None, dot=None, want_cost=False, marg=None):
        """One half-iteration (``side`` = "rows": f from g; "cols": g from f); ``marg``
        (float64, (B, length)) receives the plan's marginal on that side."""
        rho = self.rho[side]
        length = self.cost.n if side == "rows" else self.cost.m
        w = self.a if side == "rows" else self.b
        nsplit = self._partials(side, h, p_old, w, 1.0 / reg, want_cost)
        self.kern.finalize(
            self.pm,
            self.ps,
            self.pc,
            nsplit,
            self.B,
            length,
            w,
            length,
            p_old,
            p_new,
            err,
            self.scratch[1] if cost is None else cost,
            self.scratch[2] if dot is None else dot,
            self.scratch[0] if marg is None else marg,
            self.bad,
            reg,
            omega,
            flags | (4 if want_cost else 0) | (8 if marg is not None else 0),
            ub.tau(rho, reg),
            rho,
        )

    def measure(self, f, g, reg, marginals=False):
        """(error, cost, fun) per problem of the plan (f, g), in float64 on the device (the
        error against the relaxed targets when unbalanced; ``fun`` is the balanced
        objective's ``<P 1, f> + <P^T 1, g>``). ``marginals``: also the row and column sums."""
        xp = self.kern.xp
        out = xp.zeros((4, self.B), dtype=np.float64)  # row err, col err, cost, dot
        rows = cols = None
        if marginals:
            rows = xp.empty((self.B, self.cost.n), dtype=np.float64)
            cols = xp.empty((self.B, self.cost.m), dtype=np.float64)
        self.half("rows", g, f, f, reg, 1.0, 0, out[0], cost=out[2], dot=out[3], want_cost=True, marg=rows)
        self.half("cols", f, g, g, reg, 1.0, 0, out[1], cost=self.scratch[1], dot=out[3], marg=cols)
        if marginals:
            return out[0] + out[1], out[2], out[3], rows, cols
        return out[0] + out[1], out[2], out[3]


def _host(x):
    return x.get() if hasattr(x, "get") else np.asarray(x)


def solve_log(
    kern,
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
    eps_stages=None,
    stage_tol=1e-3,
    stage_maxiter=100,
    check_every=10,
    progress=None,
    return_plan=True,
    reg_m=None,
):
    """Log-domain Sinkhorn on the device. ``a`` (B, n), ``b`` (B, m); ``reg_m``: ``(rho_a,
    rho_b)`` of an unbalanced problem (:mod:`.unbalanced`; None: balanced). Returns a dict
    like the Rust bindings' (plan, f, g, nit, status, detail, marginal_error, cost, fun,
    mass, stages)."""
    xp = kern.xp
    dtype = kern.dtype
    B = a.shape[0]
    passes = _Passes(kern, cost, a, b, B, reg_m)
    if reg_m is not None:
        ln_a, ln_b = ub.log_weights(xp, a), ub.log_weights(xp, b)
    neg = dtype.type(-np.inf)
    f = xp.where(a > 0, dtype.type(0), neg).astype(dtype) if f0 is None else f0.astype(dtype, copy=True)
    g = xp.where(b > 0, dtype.type(0), neg).astype(dtype) if g0 is None else g0.astype(dtype, copy=True)
    f_next, g_next = xp.empty_like(f), xp.empty_like(g)
    f_prev = f
    ctl = SinkhornController(reg, overrelaxation, list(eps_stages) if eps_stages else None, stage_tol, stage_maxiter)
    stages = ctl.stages
    err_buf = xp.zeros((check_every, B), dtype=np.float64)
    nit = 0
    status, detail = 1, ""
    tighten = 1.0
    stage_count = 0
    for si, eps in enumerate(stages):
        last = si == len(stages) - 1
        stage_count += 1
        ctl.begin_stage()
        stage_it = 0
        done = False
        while not done:
            cnt = min(check_every, maxiter - nit)
            if not last:
                cnt = min(cnt, ctl.stage_maxiter - stage_it)
            if cnt <= 0:
                status, detail, done = 1, "", True
                break
            err_buf[:cnt] = 0
            for s in range(cnt):
                omega = ctl.omega
                passes.half("cols", f, g, g_next, eps, omega, 1 | 2, err_buf[s])
                passes.half("rows", g_next, f, f_next, eps, omega, 1, err_buf[s])
                f_prev = f
                f, f_next = f_next, f
                g, g_next = g_next, g
                if reg_m is not None:
                    ub.translate(xp, f, g, f_prev, a, b, ln_a, ln_b, eps, reg_m)
            nit += cnt
            stage_it += cnt
            errs = _host(err_buf[:cnt])
            nbad = int(_host(passes.bad)[0])
            worst = errs.max(axis=1)
            ctl.observe(worst.tolist())
            err = float(worst[-1])
            if nbad or not np.isfinite(err):
                status = 4
                detail = (
                    f"non-finite potentials at iteration {nit}: cost / reg overflows {dtype} "
                    f"(reg = {eps:g}); rescale the cost, or use float64."
                )
                f_prev, g = f_prev, g
                done = True
                break
            if progress is not None:
                state = {"nit": nit, "error": err, "f": f_prev, "g": g, "reg": eps, "omega": ctl.omega}
                if not progress(state):
                    status, detail, done = 99, "", True
                    break
            if last:
                if err <= tol * tighten:
                    # Re-measure on the returned plan (float64 sums); rounding can differ.
                    e_meas = _host(passes.measure(f_prev, g, eps)[0])
                    if e_meas.max() <= tol:
                        status, done = 0, True
                        break
                    tighten *= 0.5
                if ctl.stalled(nit, err):
                    status, detail, done = 4, ctl.stall_detail(tol, np.dtype(dtype).name), True
                    break
                if nit >= maxiter:
                    status, done = 1, True
                    break
            elif ctl.stage_over(err, stage_it):
                break
            elif nit >= maxiter:
                status, done = 1, True
                break
        if done:
            break
    f, g = f_prev, g
    err_d, cost_d, fun_d, rows, cols = passes.measure(f, g, reg, marginals=True)
    out = {"f": f, "g": g, "nit": nit, "status": status, "detail": detail, "stages": stage_count}
    out["plan"] = None
    if return_plan:
        # The residual, objective and mass are those of the plan as returned.
        P = out["plan"] = _plan(kern, cost, f, g, reg, B)
        rows = P.sum(axis=2, dtype=np.float64)
        cols = P.sum(axis=1, dtype=np.float64)
        if reg_m is None:
            err_d = xp.abs(rows - a).sum(axis=1) + xp.abs(cols - b).sum(axis=1)
    if reg_m is not None:
        err_d, fun_d, _ = ub.measure(xp, rows, cols, f, g, a, b, reg, reg_m)
    out["mass"] = _host(rows.sum(axis=1))
    out["marginal_error"] = _host(err_d)
    out["cost"] = _host(cost_d)
    out["fun"] = _host(fun_d)
    if status == 0 and out["marginal_error"].max() > tol:
        status = 1  # (cannot happen: the plan was re-measured before stopping)
        out["status"] = status
    return out


def _plan(kern, cost, f, g, reg, B):
    xp = kern.xp
    n, m = cost.n, cost.m
    P = xp.empty((B, n, m), dtype=kern.dtype)
    if cost.kind == "dense":
        kern.plan_dense(cost.M, f, g, P, B, n, m, cost.m_stride, 1.0 / reg)
    elif cost.kind == "grid":
        cost.plan(f, g, P, 1.0 / reg)
    else:
        kern.plan_online(cost.X, cost.Y, f.reshape(-1), g.reshape(-1), P.reshape(n, m), cost.D, 1.0 / reg)
    return P


def solve_scaling(xp, M, a, b, reg, *, tol, maxiter, f0=None, g0=None, check_every=10, progress=None):
    """``u = a / (K v)``, ``v = b / (K^T u)`` with ``K = exp(-M / reg)`` and cuBLAS products.

    ``M`` is (n, m) shared by the k problems or (k, n, m); ``a`` (k, n), ``b`` (k, m). The k
    problems run as one matrix-matrix product per half-iteration when M is shared."""
    dtype = M.dtype
    k = a.shape[0]
    shared = M.ndim == 2
    K = xp.exp(M * dtype.type(-1.0 / reg))

    def Kv(v):  # (k, m) -> (k, n)
        return (K @ v.T).T if shared else xp.matmul(K, v[:, :, None])[:, :, 0]

    def KTu(u):  # (k, n) -> (k, m)
        return (u @ K) if shared else xp.matmul(u[:, None, :], K)[:, 0, :]

    with np.errstate(all="ignore"):
        u = xp.ones_like(a) if f0 is None else xp.exp(f0 / reg).astype(dtype)
        v = xp.ones_like(b) if g0 is None else xp.exp(g0 / reg).astype(dtype)
    err_buf = xp.zeros((check_every, k), dtype=np.float64)
    col_err = xp.full(k, np.inf)
    nit, status, detail = 0, 1, ""
    u_prev, v_prev = u, v
    ctl = SinkhornController(reg, 1.0)
    while nit < maxiter:
        cnt = min(check_every, maxiter - nit)
        for s in range(cnt):
            kv = Kv(v)
            err_buf[s] = xp.abs(u.astype(np.float64) * kv - a).sum(axis=1) + col_err
            u_prev, v_prev = u, v
            u = (a / kv).astype(dtype)
            ktu = KTu(u)
            v = (b / ktu).astype(dtype)
            col_err = xp.abs(v.astype(np.float64) * ktu - b).sum(axis=1)
        nit += cnt
        errs = _host(err_buf[:cnt]).max(axis=1)
        err = float(errs[-1])
        bad = not bool(_host(xp.isfinite(u).all() & xp.isfinite(v).all()))
        if bad or not np.isfinite(err):
            status = 4
            detail = (
                "the scaling iteration under- or overflowed (exp(-M / reg) has entries too small "
                f"for {dtype}); use method='log'."
            )
            break
        if progress is not None:
            with np.errstate(divide="ignore"):
                state = {"nit": nit, "error": err, "f": reg * xp.log(u_prev), "g": reg * xp.log(v_prev)}
            if not progress(state):
                status = 99
                break
        if err <= tol:
            status = 0
            break
        if ctl.stalled(nit, err):
            status, detail = 4, ctl.stall_detail(tol, np.dtype(dtype).name)
            break
    u, v = u_prev, v_prev
    P = u[:, :, None] * K * v[:, None, :]  # K is (n, m) shared or (k, n, m): broadcasting covers both
    P = P.astype(dtype)
    rows = P.sum(axis=2, dtype=np.float64)
    cols = P.sum(axis=1, dtype=np.float64)
    err = xp.abs(rows - a).sum(axis=1) + xp.abs(cols - b).sum(axis=1)
    Mb = M if not shared else M[None]
    cost = (P * Mb).sum(axis=(1, 2), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (reg * xp.log(u)).astype(dtype)
        g = (reg * xp.log(v)).astype(dtype)
        fun = xp.where(rows > 0, f * rows, 0).sum(axis=1) + xp.where(cols > 0, g * cols, 0).sum(axis=1)
    if status == 0 and float(_host(err).max()) > tol:
        status = 1
    return {
        "plan": P,
        "f": f,
        "g": g,
        "nit": nit,
        "status": status,
        "detail": detail,
        "marginal_error": _host(err),
        "cost": _host(cost),
        "fun": _host(fun),
        "stages": 1,
    }
