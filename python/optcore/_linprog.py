"""``optcore.linprog``: linear programs by restarted reflected Halpern PDHG, with SciPy's interface.

>>> import optcore
>>> res = optcore.linprog([-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6])
>>> bool(res.success), round(res.fun, 4), res.x.round(4)
(True, -2.8, array([1.6, 1.2]))
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from . import _core
from ._progress import Progress
from ._result import OptimizeResult, finish
from ._validation import nonnegative_scalar, normalize_workers, positive_int, positive_scalar

__all__ = ["linprog"]

#: Bounds at or beyond this magnitude are infinite (as in HiGHS and SciPy).
INF = 1e20

#: The iteration limit when ``maxiter`` is None: every run with default settings ends (a
#: second or two on a small LP, in proportion to the nonzeros on a large one).
DEFAULT_MAXITER = 10_000_000

_MESSAGES = {
    0: "Optimization terminated successfully",
    1: "Iteration or time limit reached",
    2: "The problem is infeasible",
    3: "The problem is unbounded",
    4: "Numerical difficulties encountered",
    99: "Stopped by the callback",
}


def _matrix(A, name: str, n: int):
    """``A`` as CSR float64 (any dense or scipy.sparse input; no dense copy of a sparse one)."""
    if A is None:
        return sp.csr_array((0, n))
    if sp.issparse(A):
        if A.dtype.kind not in "biuf":
            kind = "complex" if A.dtype.kind == "c" else f"of dtype {A.dtype}"
            raise TypeError(f"`{name}` is a sparse matrix {kind}; linprog needs real data (take .real first).")
        M = sp.csr_array(A, dtype=np.float64)
    else:
        arr = np.asarray(A)
        if arr.dtype.kind == "c":
            raise TypeError(f"`{name}` is complex; linprog needs real data.")
        if arr.dtype.kind not in "biuf":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"`{name}` must be numeric; got dtype {arr.dtype}.") from None
        if arr.size == 0:
            return sp.csr_array((0, n))
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"Invalid input for linprog: `{name}` must be two-dimensional; got {arr.ndim} dimensions.")
        M = sp.csr_array(arr.astype(np.float64))
    if M.shape[1] != n:
        raise ValueError(f"Invalid input for linprog: `{name}` must have {n} columns (len(c)); got shape {M.shape}.")
    if not np.all(np.isfinite(M.data)):
        raise ValueError(f"Invalid input for linprog: `{name}` must not contain values inf, nan, or None.")
    return M


def _vector(b, name: str, size: int) -> np.ndarray:
    if b is None:
        if size:
            raise ValueError(f"Invalid input for linprog: `{name}` is missing but its matrix has {size} rows.")
        return np.zeros(0)
    arr = np.asarray(b)
    if arr.dtype.kind == "c":
        raise TypeError(f"`{name}` is complex; linprog needs real data.")
    try:
        arr = arr.astype(np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be numeric.") from None
    if arr.shape != (size,):
        raise ValueError(
            f"Invalid input for linprog: `{name}` must have {size} entries (the rows of its matrix); got {arr.size}."
        )
    if np.any(np.isnan(arr)):
        raise ValueError(f"Invalid input for linprog: `{name}` must not contain values nan.")
    return arr


def _bounds(bounds, n: int) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's forms: one (lb, ub) pair for all, a list of n pairs, or an (n, 2) array; None
    for infinite; values beyond 1e20 in magnitude are infinite."""
    if bounds is None:
        return np.full(n, -np.inf), np.full(n, np.inf)
    if isinstance(bounds, np.ndarray) and bounds.dtype.kind in "iuf" and bounds.shape in ((n, 2), (1, 2), (2,)):
        # numeric array: vectorized (the per-entry path below takes seconds at 10^6 variables)
        arr2 = np.broadcast_to(bounds.astype(np.float64).reshape(-1, 2), (n, 2))
        lb, ub = arr2[:, 0].copy(), arr2[:, 1].copy()
        return _check_bounds(lb, ub)
    try:
        arr = np.array(bounds, dtype=object)
    except Exception:  # noqa: BLE001
        raise ValueError("Invalid input for linprog: unable to interpret `bounds`.") from None
    if arr.ndim == 1 and arr.size == 2:
        arr = np.tile(arr.reshape(1, 2), (n, 1))
    elif arr.ndim == 2 and arr.shape == (1, 2):
        arr = np.tile(arr, (n, 1))
    if arr.ndim != 2 or arr.shape != (n, 2):
        raise ValueError(
            f"Invalid input for linprog: `bounds` must be a pair (lb, ub), or {n} pairs; got shape {np.shape(arr)}."
        )

    def conv(v, default):
        if v is None:
            return default
        if isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(v, bool):
            return float(v)
        raise ValueError(f"Invalid input for linprog: bounds must be numbers or None; got {v!r}.")

    lb = np.array([conv(v, -np.inf) for v in arr[:, 0]], dtype=np.float64)
    ub = np.array([conv(v, np.inf) for v in arr[:, 1]], dtype=np.float64)
    return _check_bounds(lb, ub)


def _check_bounds(lb: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.any(np.isnan(lb)) or np.any(np.isnan(ub)):
        raise ValueError("Invalid input for linprog: bounds must not be NaN.")
    lb[lb <= -INF] = -np.inf
    ub[ub >= INF] = np.inf
    if np.any(lb == np.inf) or np.any(ub == -np.inf):
        raise ValueError("Invalid input for linprog: a lower bound of +inf or an upper bound of -inf.")
    bad = np.nonzero(lb > ub)[0]
    if bad.size:
        j = int(bad[0])
        raise ValueError(f"Invalid input for linprog: lower bound {lb[j]} > upper bound {ub[j]} for variable {j}.")
    return lb, ub


def linprog(
    c,
    A_ub=None,
    b_ub=None,
    A_eq=None,
    b_eq=None,
    bounds=(0, None),
    method: str = "halpern-pdhg",
    callback=None,
    options: dict | None = None,
    x0=None,
    integrality=None,
    *,
    tol: float = 1e-6,
    maxiter: int | None = None,
    time_limit: float | None = None,
    y0=None,
    disp: bool = False,
    warn: bool = True,
    workers: int | None = None,
) -> OptimizeResult:
    r"""Minimize ``c @ x`` subject to ``A_ub @ x <= b_ub``, ``A_eq @ x == b_eq``,
    ``lb <= x <= ub`` — the call of :func:`scipy.optimize.linprog`, solved by a first-order
    method: restarted reflected Halpern PDHG (r²HPDHG, as in cuPDLPx) in the Rust core.

    Parameters
    ----------
    c, A_ub, b_ub, A_eq, b_eq, bounds
        As in SciPy: dense arrays or any ``scipy.sparse`` matrix (never densified); ``bounds``
        one ``(lb, ub)`` pair for all variables, a sequence of pairs, or an ``(n, 2)`` array,
        ``None`` for infinite (default ``(0, None)``); ``|bound| >= 1e20`` is infinite.
    method : {"halpern-pdhg"}
        The only method (other names raise ``ValueError``).
    callback : callable, optional
        ``callback(res)`` at every convergence check (every ``options['check_every']``
        iterations, default 64) with an ``OptimizeResult`` holding ``x``, ``fun``, ``nit``, the
        current duals ``ineqlin.marginals`` and ``eqlin.marginals``, the relative residuals
        ``rel_primal``, ``rel_dual``, ``rel_gap``, the primal weight
        ``primal_weight`` (ω: primal step η/ω, dual step ηω, scaled problem) and ``restarts``; raising
        ``StopIteration`` stops with status 99.
    options : dict, optional
        ``check_every`` (iterations between checks), ``tol_infeasible`` (tolerance of the
        infeasibility certificates: a ray's sign violation relative to its objective, default
        1e-6; 1e-4 declared 7 feasible Netlib problems infeasible, 1e-8 misses 4 more of the
        infeasible ones), ``presolve`` (default True: before iterating, a few rounds of bound
        propagation look for a row whose activity range misses its bounds, which proves the LP
        infeasible at once; the problem itself is solved unchanged), and ``maxiter`` /
        ``time_limit`` / ``disp``
        (SciPy's spelling, same as the keywords).
    x0, y0 : array_like, optional
        Warm start: primal ``x`` (length n) and dual ``y`` (one value per row of ``A_ub`` then
        ``A_eq``, HiGHS's signs, e.g. ``np.r_[res.ineqlin.marginals, res.eqlin.marginals]``);
        both the anchor and the first iterate.
    integrality : None
        Integer variables are not supported (anything but None or all zeros raises).
    tol : float
        Relative KKT tolerance on the **unscaled** problem: primal residual
        ``||A x - proj(A x)|| / (1 + ||b||)``, dual residual ``||c - A^T y - lambda|| / (1 + ||c||)``
        (``lambda``: the reduced costs that a finite bound near ``x`` carries, ``|x_j - bound| <=
        |x_j|`` as in PDLP; :func:`optcore.testing.lp_bound_part`) and gap ``|p - d| / (1 + |p| + |d|)`` all ``<= tol`` (1e-4 to 1e-8 work). An LP
        infeasible by less than ``tol`` can pass that test; when it passes while the dual iterate
        is still growing at a steady rate (as it does along a Farkas ray), the run goes on to
        twice the iterations looking for an infeasibility certificate (status 2) before it
        returns the converged point (status 0); ``message`` says so either way.
    maxiter, time_limit : optional
        Iteration and wall-time (seconds) limits: status 1. ``maxiter`` defaults to 10**7
        (integers beyond 2**62 are taken as 2**62), ``time_limit`` to none.
    disp : bool
        Print one line per check.
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` on status 1 or 4.
    workers : int, optional
        Threads for the row passes (``None`` or ``-1``: all cores; ``1``: serial). The result
        does not depend on it.

    Returns
    -------
    optcore.OptimizeResult
        SciPy's fields: ``x``, ``fun``, ``slack``, ``con``, ``status`` (0 optimal, 1 limit, 2
        infeasible, 3 unbounded, 4 numerical trouble, 99 callback), ``success``,
        ``message`` (which criterion decided), ``nit``, and ``ineqlin``, ``eqlin``, ``lower``,
        ``upper`` with ``marginals`` (HiGHS's signs: ``d fun / d b``) and ``residual``; plus
        ``rel_primal``, ``rel_dual``, ``rel_gap``, ``dual_fun``, ``restarts``.

    Examples
    --------
    >>> import optcore
    >>> res = optcore.linprog([-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6])
    >>> res.status, round(res.fun, 4)
    (0, -2.8)
    >>> bool(max(res.rel_primal, res.rel_dual, res.rel_gap) <= 1e-6)  # success: all three <= tol
    True
    """
    if not isinstance(method, str) or method.lower() not in ("halpern-pdhg", "pdhg"):
        raise ValueError(f"Unknown solver {method!r}: optcore.linprog has method='halpern-pdhg'.")
    opts = dict(options or {})
    known = {"check_every", "tol_infeasible", "presolve", "maxiter", "time_limit", "disp"}
    unknown = set(opts) - known
    if unknown:
        raise ValueError(f"Unrecognized options {sorted(unknown)}; known: {sorted(known)}.")
    maxiter = opts.get("maxiter", maxiter)
    time_limit = opts.get("time_limit", time_limit)
    disp = opts.get("disp", disp)
    if not isinstance(disp, (bool, np.bool_, numbers.Integral)):
        raise TypeError(f"`disp` (or options['disp']) must be True or False; got {type(disp).__name__}.")
    disp = bool(disp)
    cvec = np.asarray(c)
    if cvec.dtype.kind == "c":
        raise TypeError("`c` is complex; linprog needs real data.")
    try:
        cvec = cvec.astype(np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError("`c` must be numeric.") from None
    n = cvec.size
    if n == 0:
        raise ValueError("Invalid input for linprog: `c` must have at least one entry.")
    if not np.all(np.isfinite(cvec)):
        raise ValueError("Invalid input for linprog: `c` must not contain values inf, nan, or None.")
    Aub = _matrix(A_ub, "A_ub", n)
    Aeq = _matrix(A_eq, "A_eq", n)
    bub = _vector(b_ub, "b_ub", Aub.shape[0])
    beq = _vector(b_eq, "b_eq", Aeq.shape[0])
    if np.any(np.isinf(beq)):
        raise ValueError("Invalid input for linprog: `b_eq` must be finite.")
    lb, ub = _bounds(bounds, n)
    if integrality is not None and np.any(np.asarray(integrality) != 0):
        raise ValueError("optcore.linprog does not support integer variables (`integrality`).")
    tol = positive_scalar(tol, "tol")
    maxiter = DEFAULT_MAXITER if maxiter is None else positive_int(maxiter, "maxiter", minimum=0)
    time_limit = float("inf") if time_limit is None else positive_scalar(time_limit, "time_limit")
    check_every = min(positive_int(opts.get("check_every", 64), "options['check_every']"), 2**62)
    tol_inf = nonnegative_scalar(opts.get("tol_infeasible", 1e-6), "options['tol_infeasible']")
    workers = normalize_workers(workers)
    presolve = opts.get("presolve", True)
    if not isinstance(presolve, (bool, np.bool_)):
        raise ValueError(f"options['presolve'] must be True or False, got {presolve!r}.")
    m_ub, m_eq = Aub.shape[0], Aeq.shape[0]
    A = sp.vstack([Aub, Aeq], format="csr").astype(np.float64)
    A.sum_duplicates()
    A.sort_indices()
    bub_c = bub.copy()
    bub_c[bub_c >= INF] = np.inf
    lc = np.r_[np.full(m_ub, -np.inf), beq]
    uc = np.r_[bub_c, beq]
    m = m_ub + m_eq
    xs = ys = None
    if x0 is not None:
        xs = np.asarray(x0, dtype=np.float64).reshape(-1)
        if xs.shape != (n,) or not np.all(np.isfinite(xs)):
            raise ValueError(f"Invalid input for linprog: `x0` must be {n} finite values.")
    if y0 is not None:
        ys = np.asarray(y0, dtype=np.float64).reshape(-1)
        if ys.shape != (m,) or not np.all(np.isfinite(ys)):
            raise ValueError(f"Invalid input for linprog: `y0` must be {m} finite values (rows of A_ub then A_eq).")

    def build(state: dict) -> OptimizeResult:
        x = state["x"]
        y = state["y"]
        return OptimizeResult(
            x=x,
            fun=float(cvec @ x),
            nit=state["nit"],
            rel_primal=state.get("rel_primal"),
            ineqlin=OptimizeResult(marginals=y[:m_ub]),
            eqlin=OptimizeResult(marginals=y[m_ub:]),
            rel_dual=state.get("rel_dual"),
            rel_gap=state.get("rel_gap"),
            primal_weight=state.get("primal_weight"),
            restarts=int(state.get("restarts", 0)),
            phase=2,
            status=1,
            message="in progress",
        )

    progress = Progress(callback, disp, build, f"optcore.linprog(halpern-pdhg, tol={tol:g}), {m} rows, {n} columns")
    out = _core.linprog_pdhg(
        A.indptr.astype(np.int64),
        A.indices.astype(np.int64),
        np.ascontiguousarray(A.data),
        m,
        n,
        np.ascontiguousarray(cvec),
        lc,
        uc,
        lb,
        ub,
        xs,
        ys,
        tol=tol,
        maxiter=int(min(maxiter, 2**62)),
        time_limit=time_limit,
        check_every=check_every,
        tol_infeasible=tol_inf,
        presolve=bool(presolve),
        progress=progress if progress.active else None,
        workers=workers,
    )
    status = int(out["status"])
    # The iterate can sit outside its bounds by rounding after unscaling (x = β D_c x̂): the
    # returned x is clipped to them, and everything below is measured on that x.
    x = np.clip(np.asarray(out["x"]), lb, ub)
    y = np.asarray(out["y"])
    red = np.asarray(out["reduced"])
    ax_ub = Aub @ x
    ax_eq = Aeq @ x
    slack = bub - ax_ub
    con = beq - ax_eq
    # The reduced costs on the bounds, as the KKT test counts them (optcore.testing.lp_bound_part).
    with np.errstate(invalid="ignore"):
        near_lb = np.isfinite(lb) & (np.abs(x - lb) <= np.abs(x))
        near_ub = np.isfinite(ub) & (np.abs(x - ub) <= np.abs(x))
    lower_m = np.where(near_lb, np.maximum(red, 0.0), 0.0)
    upper_m = np.where(near_ub, np.minimum(red, 0.0), 0.0)
    detail = out["reason"] or out["detail"]
    message = f"{_MESSAGES.get(status, 'Stopped')}: {detail}." if detail else f"{_MESSAGES.get(status, 'Stopped')}."
    res = OptimizeResult(
        x=x,
        fun=float(cvec @ x),
        slack=slack,
        con=con,
        status=status,
        success=status == 0,
        message=message,
        nit=int(out["nit"]),
        ineqlin=OptimizeResult(marginals=y[:m_ub], residual=slack),
        eqlin=OptimizeResult(marginals=y[m_ub:], residual=con),
        lower=OptimizeResult(marginals=lower_m, residual=x - lb),
        upper=OptimizeResult(marginals=upper_m, residual=ub - x),
        rel_primal=float(out["rel_primal"]),
        rel_dual=float(out["rel_dual"]),
        rel_gap=float(out["rel_gap"]),
        dual_fun=float(out["dual_obj"]),
        restarts=int(out["restarts"]),
        method="halpern-pdhg",
    )
    if status in (2, 3):
        res["x"] = x  # the last iterate (SciPy returns it too), not a solution
    return finish(res, "optcore.linprog", progress=progress, warn=warn)
