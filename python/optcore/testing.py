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

import numpy as np

from ._testing_generic import (
    _close,
    _generic,
    bad_arrays,
    bad_scalars,
    check_generic,
    named_errors,
)
from ._testing_problems import (
    BilevelQuadratic,
    FixedPointProblem,
    LinearProgram,
    OTProblem,
    ZOProblem,
    bilevel_quadratics,
    fixed_point_problems,
    linear_programs,
    ot_problems,
    zo_problems,
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
# Checkers
# --------------------------------------------------------------------------------------------


def marginal_error(plan, a, b) -> float:
    """``||P 1 - a||_1 + ||P^T 1 - b||_1`` in float64.

    Parameters
    ----------
    plan : array_like
        The plan ``P``, shape ``(n, m)``.
    a, b : array_like
        The marginals it should have.

    Returns
    -------
    float
        The L1 marginal error, as :func:`optcore.ot.sinkhorn` reports it.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.testing import marginal_error
    >>> marginal_error(np.array([[0.5, 0.0], [0.25, 0.25]]), [0.5, 0.5], [0.75, 0.25])
    0.0
    """
    P = np.asarray(plan, dtype=np.float64)
    return float(
        np.abs(P.sum(1) - np.asarray(a, np.float64)).sum() + np.abs(P.sum(0) - np.asarray(b, np.float64)).sum()
    )


def lp_kkt(problem: LinearProgram, res) -> dict:
    """Relative primal residual, dual residual and duality gap of ``res`` on the unscaled
    ``problem``, as :func:`optcore.linprog` defines them (rows ``lc <= A x <= uc``; the duals
    are the returned marginals with HiGHS's signs).

    Parameters
    ----------
    problem : LinearProgram
        The LP.
    res : OptimizeResult
        What :func:`optcore.linprog` (or SciPy's ``linprog``) returned for it.

    Returns
    -------
    dict
        ``rel_primal``, ``rel_dual``, ``rel_gap``, ``bound_violation``, ``pobj``, ``dobj``.

    Examples
    --------
    >>> from optcore.testing import LinearProgram, lp_kkt
    >>> lp = LinearProgram([-1.0, -2.0], A_ub=[[1.0, 1.0]], b_ub=[4.0], bounds=(0, 3))
    >>> kkt = lp_kkt(lp, lp.solve())
    >>> max(kkt["rel_primal"], kkt["rel_dual"], kkt["rel_gap"]) <= 1e-6
    True
    """
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

    Examples
    --------
    >>> import numpy as np
    >>> import optcore
    >>> from optcore.testing import OTProblem, check_result
    >>> p = OTProblem(np.full(2, 0.5), np.full(2, 0.5), np.array([[0.0, 1.0], [1.0, 0.0]]), reg=0.1)
    >>> res = p.solve(tol=1e-9)
    >>> check_result(res, p)
    []
    >>> res["success"] = not res.success  # a result that lies about itself
    >>> check_result(res, p)  # doctest: +ELLIPSIS
    ['success=...]
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
