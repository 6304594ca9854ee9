"""Property-testing kit: Hypothesis strategies for each family's problems, and checkers that
re-measure what a result says about itself.

optcore promises that a result's claims hold *on what is returned*: ``success`` is exactly the
criterion that ``tol`` names, re-measured; ``nit <= maxiter``; a plan's marginal error is the
error of that plan; an "optimal" LP meets the relative KKT tolerance on the unscaled problem.
This module lets optcore's own test suite, and yours, check that on any input.

Problems
--------
Each problem is a small frozen dataclass with the data, what is known about the answer, and a
``solve(**kwargs)`` method that calls the optcore solver:

- :class:`OTProblem` (``a``, ``b``, ``M``, ``reg``) for :func:`optcore.ot.sinkhorn`;
- :class:`LinearProgram` (SciPy's ``linprog`` arguments and the known ``status``) for
  :func:`optcore.linprog`;
- :class:`FixedPointProblem` (a nonexpansive ``T``, ``x0`` and the known displacement) for
  :func:`optcore.fixed_point.halpern`;
- :class:`BilevelQuadratic` for :func:`optcore.bilevel.minimize`;
- :class:`ZOProblem` (``f``, ``x0``, ``bounds``, the known minimum) for :func:`optcore.zo.minimize`.

Strategies (need ``hypothesis``): :func:`ot_problems`, :func:`linear_programs`,
:func:`fixed_point_problems`, :func:`bilevel_quadratics`, :func:`zo_problems`.

Checker: :func:`check_result` returns the list of violated claims (empty when the result is
consistent with itself and with what is known about the problem); :func:`check_generic`
checks the claims every result makes (``success == (status == 0)``, ``nit <= maxiter``, a
non-empty message, a finite ``x`` unless status 4) for problems the kit cannot describe.

Bad input (every family): :func:`bad_arrays` and :func:`bad_scalars` generate bad and extreme
variants of an argument (``None``, empty, 0-d, wrong shapes, NaN/inf, 1e±300, complex,
object/str, integers >= 2**64, bools, float16/big-endian dtypes); a public entry point must
answer each with one of :func:`named_errors` naming the argument, or a consistent result.
optcore's ``tests/test_fuzz.py`` runs every entry point over them.

Install the strategies' dependency with ``pip install "optcore[testing]"``.

Examples
--------
>>> from hypothesis import given, settings
>>> import optcore.testing as ot_testing
>>> @settings(max_examples=5, deadline=None)
... @given(ot_testing.ot_problems())
... def test_sinkhorn_claims(problem):
...     res = problem.solve(maxiter=2000)
...     assert ot_testing.check_result(res, problem) == []
>>> test_sinkhorn_claims()
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._testing_generic import (
    _close,
    _generic,
    _st,
    bad_arrays,
    bad_scalars,
    check_generic,
    named_errors,
)

__all__ = [
    "OTProblem",
    "LinearProgram",
    "FixedPointProblem",
    "BilevelQuadratic",
    "ZOProblem",
    "ot_problems",
    "linear_programs",
    "fixed_point_problems",
    "bilevel_quadratics",
    "zo_problems",
    "check_result",
    "marginal_error",
    "lp_kkt",
    "bad_arrays",
    "bad_scalars",
    "check_generic",
    "named_errors",
]


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OTProblem:
    """An entropic OT problem ``min <P, M> + reg sum P log P`` over ``U(a, b)``."""

    a: np.ndarray
    b: np.ndarray
    M: np.ndarray
    reg: float
    method: str = "log"

    def solve(self, **kwargs):
        import optcore

        kwargs.setdefault("method", self.method)
        kwargs.setdefault("warn", False)
        return optcore.ot.sinkhorn(self.a, self.b, self.M, reg=self.reg, **kwargs)


@dataclass(frozen=True)
class LinearProgram:
    """A linear program in ``scipy.optimize.linprog``'s form with its known status
    (0 optimal, 2 infeasible, 3 unbounded) and, when optimal, its optimal value."""

    c: np.ndarray
    A_ub: np.ndarray | None = None
    b_ub: np.ndarray | None = None
    A_eq: np.ndarray | None = None
    b_eq: np.ndarray | None = None
    bounds: Any = (0, None)
    status: int | None = None
    fun: float | None = None

    def solve(self, **kwargs):
        import optcore

        return optcore.linprog(self.c, self.A_ub, self.b_ub, self.A_eq, self.b_eq, bounds=self.bounds, **kwargs)

    def bounds_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of every variable as float arrays (``None`` -> infinite)."""
        n = len(self.c)
        bnd = self.bounds
        try:
            empty = bnd is None or np.size(bnd) == 0
        except ValueError:  # ragged: not empty
            empty = False
        if empty:
            bnd = (0, None)  # SciPy: None, [], [[]] (and an empty array) mean the default
        arr = np.array(bnd, dtype=object)
        if arr.ndim == 1:
            arr = np.tile(arr, (n, 1))
        lb = np.array([-np.inf if v is None else float(v) for v in arr[:, 0]])
        ub = np.array([np.inf if v is None else float(v) for v in arr[:, 1]])
        return lb, ub


@dataclass(frozen=True)
class FixedPointProblem:
    """A nonexpansive map ``T`` and a start ``x0``. ``displacement`` is the known infimal
    displacement vector (zero when ``T`` has a fixed point)."""

    T: Callable
    x0: np.ndarray
    displacement: np.ndarray | None = None

    @property
    def consistent(self) -> bool:
        return self.displacement is None or not np.any(self.displacement)

    def solve(self, **kwargs):
        import optcore

        kwargs.setdefault("warn", False)
        return optcore.fixed_point.halpern(self.T, self.x0, **kwargs)


@dataclass(frozen=True)
class BilevelQuadratic:
    """A bilevel quadratic with a closed-form hyper-objective (:class:`optcore.bilevel.problems.Quadratic`)."""

    d_x: int
    d_y: int
    seed: int
    problem: Any = field(repr=False, compare=False, default=None)

    def __post_init__(self):
        if self.problem is None:
            from optcore.bilevel.problems import Quadratic

            object.__setattr__(self, "problem", Quadratic.random(self.d_x, self.d_y, seed=self.seed))

    def solve(self, **kwargs):
        from optcore import bilevel

        kwargs.setdefault("warn", False)
        return bilevel.minimize(self.problem, np.zeros(self.d_x), **kwargs)


@dataclass(frozen=True)
class ZOProblem:
    """A black-box objective with its known minimiser ``xopt`` and minimum ``fopt``."""

    f: Callable
    x0: np.ndarray
    xopt: np.ndarray
    fopt: float
    bounds: tuple | None = None

    def solve(self, **kwargs):
        from optcore import zo

        kwargs.setdefault("warn", False)
        return zo.minimize(self.f, self.x0, bounds=self.bounds, **kwargs)


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


def ot_problems(*, max_size: int = 8, dtypes=(np.float64, np.float32), extreme: bool = True, methods=("log",)):
    """Entropic OT problems: sizes 1..``max_size``, weights with equal masses (not always 1),
    including zeros and, with ``extreme``, weights down to 1e-300 (1e-30 in float32); costs of
    scale 1e-3..1e3, possibly negative; ``reg`` from 1e-3 to 10 times the cost's range."""
    st = _st()

    @st.composite
    def build(draw):
        dt = np.dtype(draw(st.sampled_from(dtypes)))
        n = draw(st.integers(1, max_size))
        m = draw(st.integers(1, max_size))
        tiny = 1e-300 if dt == np.float64 else 1e-30
        w_el = st.one_of(
            st.floats(1e-3, 1.0),
            st.just(0.0),
            st.floats(tiny, 1e-8) if extreme else st.floats(1e-3, 1.0),
        )
        a = np.array(draw(st.lists(w_el, min_size=n, max_size=n)), dtype=np.float64)
        b = np.array(draw(st.lists(w_el, min_size=m, max_size=m)), dtype=np.float64)
        if a.sum() <= 0:
            a[0] = 1.0
        if b.sum() <= 0:
            b[0] = 1.0
        mass = draw(st.sampled_from([1.0, 1.0, 0.25, 3.0]))
        a = a / a.sum() * mass
        b = b / b.sum() * mass
        scale = draw(st.sampled_from([1e-3, 1.0, 1e3] if extreme else [1.0]))
        lo = draw(st.sampled_from([0.0, -1.0]))
        M = np.array(draw(st.lists(st.floats(lo, 1.0), min_size=n * m, max_size=n * m))).reshape(n, m) * scale
        spread = float(M.max() - M.min()) or scale
        reg = draw(st.sampled_from([1e-3, 1e-2, 1e-1, 1.0, 10.0])) * spread
        method = draw(st.sampled_from(methods))
        return OTProblem(a.astype(dt), b.astype(dt), M.astype(dt), float(reg), method)

    return build()


def linear_programs(*, max_vars: int = 6, max_rows: int = 5, statuses=(0, 2, 3), scales=(1.0, 1e-4, 1e4)):
    """Small LPs with a known status. Optimal ones are boxed (every variable has finite
    bounds, so a feasible point makes the LP bounded) around a known feasible point;
    infeasible ones hold two rows ``a x <= beta`` and ``-a x <= -beta - delta``; unbounded ones
    have a variable with cost < 0, no upper bound and no constraint. Data is integer, then
    multiplied by one of ``scales`` (scaling must not change the status)."""
    st = _st()
    ints = st.integers(-9, 9)

    @st.composite
    def build(draw):
        n = draw(st.integers(1, max_vars))
        m_ub = draw(st.integers(0, max_rows))
        m_eq = draw(st.integers(0, max(0, min(max_rows - m_ub, n - 1))))
        status = draw(st.sampled_from(statuses))
        s = draw(st.sampled_from(scales))
        x_feas = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), float)
        c = np.array(draw(st.lists(ints, min_size=n, max_size=n)), float)
        A_ub = np.array(draw(st.lists(ints, min_size=m_ub * n, max_size=m_ub * n)), float).reshape(m_ub, n)
        slack = np.array(draw(st.lists(st.integers(0, 3), min_size=m_ub, max_size=m_ub)), float)
        b_ub = A_ub @ x_feas + slack
        A_eq = np.array(draw(st.lists(ints, min_size=m_eq * n, max_size=m_eq * n)), float).reshape(m_eq, n)
        b_eq = A_eq @ x_feas
        bounds = [(0.0, 5.0)] * n
        if status == 2:
            a = np.array(draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), float)
            if not a.any():
                a[0] = 1.0
            beta = float(a @ x_feas)
            delta = float(draw(st.integers(1, 4)))
            A_ub = np.vstack([A_ub, a, -a])
            b_ub = np.r_[b_ub, beta, -beta - delta]
        elif status == 3:
            c = np.r_[c, -float(draw(st.integers(1, 5)))]
            A_ub = np.hstack([A_ub, np.zeros((A_ub.shape[0], 1))])
            A_eq = np.hstack([A_eq, np.zeros((A_eq.shape[0], 1))])
            bounds = bounds + [(0.0, None)]
        fun = None
        if status == 0:
            fun = _highs_fun(c * s, A_ub * s, b_ub * s, A_eq * s, b_eq * s, bounds)
        return LinearProgram(
            c * s,
            A_ub * s if A_ub.size else None,
            b_ub * s if A_ub.size else None,
            A_eq * s if A_eq.size else None,
            b_eq * s if A_eq.size else None,
            bounds,
            status,
            fun,
        )

    return build()


def _highs_fun(c, A_ub, b_ub, A_eq, b_eq, bounds):
    from scipy.optimize import linprog

    r = linprog(
        c,
        A_ub if A_ub.size else None,
        b_ub if A_ub.size else None,
        A_eq if A_eq.size else None,
        b_eq if A_eq.size else None,
        bounds=bounds,
        method="highs",
    )
    return float(r.fun) if r.status == 0 else None


def fixed_point_problems(*, max_dim: int = 6, dtypes=(np.float64, np.float32), extreme: bool = True):
    """Nonexpansive maps with known answers: projections composed onto a box and a ball that
    intersect (consistent: every fixed point lies in both sets), Douglas–Rachford on a
    ball and a hyperplane that misses it (inconsistent: the displacement is the gap vector),
    and the averaged linear map ``x -> c + s (x - c)`` (a Python callable, ``0 <= s <= 1``;
    its fixed point is ``c``). With ``extreme``, ``x0`` is sometimes scaled to 1e200 (1e30 in
    float32), where unscaled norms overflow."""
    st = _st()

    @st.composite
    def build(draw):
        from optcore.fixed_point import operators as ops

        d = draw(st.integers(1, max_dim))
        dt = np.dtype(draw(st.sampled_from(dtypes)))
        x0 = np.array(draw(st.lists(st.floats(-10, 10), min_size=d, max_size=d)), dtype=dt)
        kind = draw(st.integers(0, 2))
        # Only consistent problems start far out: at 1e200 a gap of order 1 is below the
        # spacing of the floats, and the computed DR map has fixed points there.
        if extreme and kind != 1 and draw(st.integers(0, 3)) == 0:
            x0 = (x0.astype(np.float64) * (1e200 if dt == np.float64 else 1e30)).astype(dt)
        if kind == 2:
            c = np.array(draw(st.lists(st.floats(-5, 5), min_size=d, max_size=d)), dtype=dt)
            s = dt.type(draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])))

            def T(x, c=c, s=s):
                return (c + s * (x - c)).astype(x.dtype)

            # s = 1 is the identity: every point is fixed.
            return FixedPointProblem(T, x0, np.zeros(d))
        if kind == 0:
            r = draw(st.floats(0.5, 3.0))
            T = ops.Compose(ops.Box(-1.0, 1.0, dim=d), ops.Ball(np.zeros(d), r))
            return FixedPointProblem(T, x0, np.zeros(d))
        r = draw(st.floats(0.5, 2.0))
        gap = draw(st.floats(0.5, 5.0))
        u = np.zeros(d)
        u[draw(st.integers(0, d - 1))] = 1.0
        ball = ops.Ball(np.zeros(d), r)
        plane = ops.Affine(u[None, :], [r + gap])
        # DR's iterates drift by the gap between the sets: from the ball to the plane.
        return FixedPointProblem(ops.DouglasRachford(ball, plane), x0, gap * u)

    return build()


def bilevel_quadratics(*, max_dx: int = 5, max_dy: int = 12):
    """Bilevel quadratics with closed-form hypergradients and optima."""
    st = _st()
    return st.builds(
        BilevelQuadratic,
        d_x=st.integers(1, max_dx),
        d_y=st.integers(1, max_dy),
        seed=st.integers(0, 2**31 - 1),
    )


def zo_problems(*, max_dim: int = 8, bounded=(False, True)):
    """Shifted ellipsoids ``f(x) = sum_i w_i (x_i - s_i)^2`` (conditioning up to 100) with the
    minimiser inside the optional bounds."""
    st = _st()

    @st.composite
    def build(draw):
        d = draw(st.integers(1, max_dim))
        s = np.array(draw(st.lists(st.floats(-2, 2), min_size=d, max_size=d)))
        w = np.logspace(0, draw(st.floats(0, 2)), d)
        x0 = np.array(draw(st.lists(st.floats(-4, 4), min_size=d, max_size=d)))
        bounds = (-3.0, 3.0) if draw(st.sampled_from(bounded)) else None

        def f(x, s=s, w=w):
            return float(np.sum(w * (np.asarray(x, float) - s) ** 2))

        return ZOProblem(f, x0, s, 0.0, bounds)

    return build()


# --------------------------------------------------------------------------------------------
# Checkers
# --------------------------------------------------------------------------------------------


def marginal_error(plan, a, b) -> float:
    """``||P 1 - a||_1 + ||P^T 1 - b||_1`` in float64 (scaled sums, no overflow)."""
    P = np.asarray(plan, dtype=np.float64)
    return float(
        np.abs(P.sum(1) - np.asarray(a, np.float64)).sum() + np.abs(P.sum(0) - np.asarray(b, np.float64)).sum()
    )


def lp_kkt(problem: LinearProgram, res) -> dict:
    """Relative primal residual, dual residual and duality gap of ``res`` on the unscaled
    ``problem``, as :func:`optcore.linprog` defines them (rows ``lc <= A x <= uc``; the duals
    are the returned marginals with HiGHS's signs)."""
    c = np.asarray(problem.c, float).ravel()  # SciPy accepts any shape with n entries (squeezed)
    n = c.size
    A_ub = np.zeros((0, n)) if problem.A_ub is None else np.asarray(problem.A_ub, float).reshape(-1, n)
    A_eq = np.zeros((0, n)) if problem.A_eq is None else np.asarray(problem.A_eq, float).reshape(-1, n)
    b_ub = np.zeros(0) if problem.b_ub is None else np.asarray(problem.b_ub, float).ravel()
    b_eq = np.zeros(0) if problem.b_eq is None else np.asarray(problem.b_eq, float).ravel()
    lb, ub = problem.bounds_arrays()
    x = np.asarray(res.x, float)
    A = np.vstack([A_ub, A_eq])
    lc = np.r_[np.full(len(b_ub), -np.inf), b_eq]
    uc = np.r_[b_ub, b_eq]
    ax = A @ x
    pr = ax - np.clip(ax, lc, uc)
    bfin = np.r_[lc, uc]
    bnorm = float(np.linalg.norm(bfin[np.isfinite(bfin)]))
    y = np.r_[np.asarray(res.ineqlin.marginals, float), np.asarray(res.eqlin.marginals, float)]
    red = c - A.T @ y
    lam = lp_bound_part(red, x, lb, ub)
    du2 = float(np.sum((red - lam) ** 2))
    dobj = float(np.sum(np.where(lam > 0, lb * np.where(lam > 0, lam, 0), 0.0)))
    dobj += float(np.sum(np.where(lam < 0, ub * np.where(lam < 0, lam, 0), 0.0)))
    ok_lo = (y > 0) & np.isfinite(lc)
    ok_hi = (y < 0) & np.isfinite(uc)
    with np.errstate(invalid="ignore"):  # inf * 0 where the mask drops the term anyway
        dobj += float(np.sum(np.where(ok_lo, lc * np.where(ok_lo, y, 0), 0.0)))
        dobj += float(np.sum(np.where(ok_hi, uc * np.where(ok_hi, y, 0), 0.0)))
    du2 += float(np.sum(np.where(~ok_lo & ~ok_hi & (y != 0), y * y, 0.0)))
    pobj = float(c @ x)
    return {
        "rel_primal": float(np.linalg.norm(pr)) / (1.0 + bnorm),
        "rel_dual": math.sqrt(du2) / (1.0 + float(np.linalg.norm(c))),
        "rel_gap": abs(pobj - dobj) / (1.0 + abs(pobj) + abs(dobj)),
        "bound_violation": float(np.max(np.r_[0.0, lb - x, x - ub])),
        "pobj": pobj,
        "dobj": dobj,
    }


def check_result(res, problem, *, tol: float | None = None, maxiter: int | None = None, rtol: float = 0.0) -> list[str]:
    """The claims of ``res`` that do not hold when re-measured on ``problem``.

    Parameters
    ----------
    res : OptimizeResult
        What an optcore solver returned for ``problem``.
    problem : OTProblem, LinearProgram, FixedPointProblem, BilevelQuadratic or ZOProblem
    tol, maxiter : optional
        The ``tol`` and ``maxiter`` the solve was given (the solver's defaults otherwise:
        ``res.tol`` where the result records it).
    rtol : float
        The fixed-point solve's ``rtol``.

    Returns
    -------
    list of str
        One line per violated claim; empty when the result is consistent.
    """
    out = _generic(res, maxiter)
    if out and any(s.startswith("missing") for s in out):
        return out
    status = int(res.status)
    if isinstance(problem, OTProblem):
        out += _check_ot(res, problem, tol)
    elif isinstance(problem, LinearProgram):
        out += _check_lp(res, problem, 1e-6 if tol is None else tol)
    elif isinstance(problem, FixedPointProblem):
        out += _check_fixed_point(res, problem, tol, rtol)
    elif isinstance(problem, BilevelQuadratic):
        out += _check_bilevel(res, problem, 1e-6 if tol is None else tol)
    elif isinstance(problem, ZOProblem):
        out += _check_zo(res, problem)
    else:
        raise TypeError(f"check_result does not know problems of type {type(problem).__name__}")
    if status == 4 and "converged" in str(res.message).lower()[:12]:
        out.append("status 4 with a 'Converged' message")
    return out


def _check_ot(res, p: OTProblem, tol) -> list[str]:
    out = []
    tol = float(res.get("tol", tol) if tol is None else tol)
    P = np.asarray(res.plan)
    # The inputs in native byte order: '>f4' is float32 data (the solver computes in and
    # returns native float32), and the re-measurement must not run in a byte-swapped dtype.
    p = _native_ot(p)
    # float32 only when every input is float32, else float64.
    f32 = all(np.asarray(v).dtype == np.float32 for v in (p.a, p.b, p.M))
    want = np.dtype(np.float32 if f32 else np.float64)
    if P.dtype != want:
        out.append(f"plan dtype {P.dtype} != working dtype {want}")
    if not np.all(np.isfinite(P)):
        if res.status != 4:
            out.append("non-finite plan entries without status 4")
        return out
    if np.any(P < 0):
        out.append(f"negative plan entries (min {P.min():g})")
    err = marginal_error(P, p.a, _ot_target(p.a, p.b, want))
    if not _close(err, float(res.marginal_error), rtol=1e-6, atol=1e-12 * (1 + float(np.sum(p.a)))):
        out.append(f"marginal_error {res.marginal_error:.6g} but measured {err:.6g} on the plan")
    if res.status != 99 and bool(res.success) != (err <= tol):
        out.append(f"success={res.success} (status {res.status}) but measured marginal error {err:.3g} vs tol {tol:g}")
    if res.status == 0:
        cost = float(np.sum(P.astype(np.float64) * np.asarray(p.M, np.float64)))
        scale = float(np.sum(np.abs(P.astype(np.float64) * np.asarray(p.M, np.float64))))
        if not _close(cost, float(res.cost), rtol=1e-5, atol=1e-12 * (1 + scale)):
            out.append(f"cost {res.cost:.6g} but <P, M> = {cost:.6g}")
    return out


def _native_ot(p: OTProblem) -> OTProblem:
    """``p`` with every array in native byte order (same values and precision)."""

    def native(v):
        arr = np.asarray(v)
        return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))

    return OTProblem(native(p.a), native(p.b), native(p.M), p.reg, p.method)


def _check_lp(res, p: LinearProgram, tol: float) -> list[str]:
    out = []
    status = int(res.status)
    if p.status is not None and status in (0, 2, 3) and status != p.status:
        out.append(f"status {status} but the LP's status is {p.status}")
    if status != 0:
        return out
    x = np.asarray(res.x, float)
    if not np.all(np.isfinite(x)):
        return out + ["optimal with a non-finite x"]
    k = lp_kkt(p, res)
    for name in ("rel_primal", "rel_dual", "rel_gap"):
        if k[name] > tol * (1 + 1e-6) + 1e-15:
            out.append(f"optimal but re-measured {name} {k[name]:.3g} > tol {tol:g}")
    if k["bound_violation"] > 0:
        out.append(f"x violates its bounds by {k['bound_violation']:.3g}")
    if not _close(float(res.fun), k["pobj"], rtol=1e-12, atol=1e-12):
        out.append(f"fun {res.fun!r} != c @ x = {k['pobj']!r}")
    if p.fun is not None:
        # a relative gap <= tol with residuals <= tol bounds the objective error at about that scale
        err = abs(float(res.fun) - p.fun) / (1.0 + abs(p.fun))
        if err > 1e3 * tol:
            out.append(f"fun {res.fun:.9g} but the optimum is {p.fun:.9g} (relative {err:.2g})")
    return out


def _check_fixed_point(res, p: FixedPointProblem, tol, rtol) -> list[str]:
    out = []
    x = np.asarray(res.x)
    if not np.all(np.isfinite(x)):
        return out if res.status == 4 else out + ["non-finite x without status 4"]
    T = p.T
    tx = np.asarray(T(x))
    # Scaled norms, as documented: a residual of 1e200 is 1e200, not inf.
    r = fixed_point_norm(x.astype(np.float64) - tx.astype(np.float64))
    r0 = fixed_point_norm(p.x0.astype(np.float64) - np.asarray(T(p.x0)).astype(np.float64))
    if tol is None:
        tol = 1e-5 if x.dtype == np.float32 else 1e-8
    thresh = tol + rtol * r0 if rtol > 0 else tol
    ok = math.isfinite(r) and math.isfinite(thresh) and r <= thresh
    # Rounding slack both ways: the solver's own f64 sum and this one may differ in the last bits.
    if res.success and not (math.isfinite(r) and math.isfinite(thresh) and r <= thresh * (1 + 1e-6)):
        out.append(f"success=True but the measured residual is {r:.3g} > {thresh:.3g}")
    if res.status == 1 and ok and r < thresh * (1 - 1e-6):
        out.append(f"status 1 but the measured residual {r:.3g} meets {thresh:.3g}")
    if res.status == 4 and ok:
        out.append(f"status 4 with a converged measured residual {r:.3g} <= {thresh:.3g}")
    # No fixed point: every residual is >= ||v||, so success is a contradiction only when the
    # threshold is below ||v|| (with rtol, tol + rtol * r0 may exceed ||v|| and be met).
    if res.status == 0 and not p.consistent and fixed_point_norm(p.displacement) > thresh * (1 + 1e-6):
        out.append("converged on a problem with no fixed point")
    if res.status == 2 and p.consistent:
        out.append("a consistent problem reported without fixed point")
    if res.status == 2 and p.displacement is not None and res.get("displacement") is not None:
        v = np.asarray(res.displacement, float)
        gap = float(np.linalg.norm(p.displacement))
        if np.linalg.norm(np.abs(v) - np.abs(p.displacement)) > 1e-2 * gap:
            out.append(
                f"displacement off the known gap vector by {np.linalg.norm(np.abs(v) - np.abs(p.displacement)):.3g}"
            )
    return out


def _check_bilevel(res, p: BilevelQuadratic, tol: float) -> list[str]:
    out = []
    x = np.asarray(res.x, float)
    if not np.all(np.isfinite(x)):
        return out if res.status == 4 else out + ["non-finite x without status 4"]
    g = float(np.linalg.norm(p.problem.hypergradient_closed_form(x)))
    if res.status == 0 and g > tol * (1 + 1e-6):
        out.append(f"success but the true hypergradient norm is {g:.3g} > tol {tol:g}")
    F = float(p.problem.value(x))
    if res.get("fun") is not None and np.isfinite(res.fun) and not _close(float(res.fun), F, rtol=1e-6, atol=1e-12):
        out.append(f"fun {res.fun:.9g} but F(x) = {F:.9g}")
    return out


def _check_zo(res, p: ZOProblem) -> list[str]:
    out = []
    x = np.asarray(res.x, float)
    if p.bounds is not None:
        lo, hi = p.bounds
        if np.any(x < lo) or np.any(x > hi):
            out.append("x outside the bounds")
        xl = res.get("x_last")
        if xl is not None and (np.any(np.asarray(xl, float) < lo) or np.any(np.asarray(xl, float) > hi)):
            out.append("x_last outside the bounds")
    if res.status == 0 and not math.isfinite(float(res.fun)):
        out.append(f"success with a non-finite best value fun = {res.fun!r}")
    if np.all(np.isfinite(x)):
        fx = p.f(x)
        if not _close(float(res.fun), fx, rtol=1e-12, atol=1e-300):
            out.append(f"fun {res.fun!r} but f(x) = {fx!r}")
    return out


# --------------------------------------------------------------------------------------------
# Fixed points: helpers
# --------------------------------------------------------------------------------------------


def fixed_point_norm(v) -> float:
    """``||v||_2`` in float64, scaled by the largest magnitude (as the solver measures it), so
    that entries of 1e200 give 1e200 rather than inf; NaN if an entry is NaN."""
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return 0.0
    big = float(np.max(np.abs(v)))
    if not math.isfinite(big) or big == 0.0:
        return big
    return float(big * np.sqrt(np.sum((v / big) ** 2)))


# linprog (trust wave, tlp): the bound rule of the KKT measurement.


def lp_bound_part(red, x, lb, ub) -> np.ndarray:
    """The part of the reduced costs ``red`` that the bounds carry (``lambda``; the rest is dual
    residual), as :func:`optcore.linprog` measures it: ``red > 0`` on a finite lower bound,
    ``red < 0`` on a finite upper one, each only where that bound is near ``x``
    (``|x - bound| <= |x|``: PDLP's rule; a rounding-size reduced cost on a far bound of 1e12
    would otherwise put an unclosable gap into the dual objective)."""
    red, x = np.asarray(red, float), np.asarray(x, float)
    with np.errstate(invalid="ignore"):
        near_lb = np.isfinite(lb) & (np.abs(x - lb) <= np.abs(x))
        near_ub = np.isfinite(ub) & (np.abs(x - ub) <= np.abs(x))
    return np.where(((red > 0) & near_lb) | ((red < 0) & near_ub), red, 0.0)


# --------------------------------------------------------------------------------------------
# OT helpers
# --------------------------------------------------------------------------------------------


def _ot_target(a, b, dtype) -> np.ndarray:
    """The ``b`` a sinkhorn plan's marginals are measured against, as documented: within the
    accepted mass mismatch (relative 1e-6) ``b`` is rescaled onto ``sum(a)`` in the working
    ``dtype`` (what the iterations fit); returned as float64."""
    a, b = np.asarray(a).astype(dtype), np.asarray(b).astype(dtype)
    mass_a = np.atleast_1d(a.sum(dtype=np.float64))
    mass_b = np.atleast_1d(b.sum(axis=0, dtype=np.float64))
    b64 = b.astype(np.float64)
    if np.any(mass_b != mass_a):
        b64 = (b64 * (mass_a / mass_b)).astype(dtype).astype(np.float64)
    return b64
