"""``optcore.linprog``: linear programs by restarted reflected Halpern PDHG, with SciPy's interface.

>>> import optcore
>>> res = optcore.linprog([-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6])
>>> bool(res.success), round(res.fun, 4), res.x.round(4)
(True, -2.8, array([1.6, 1.2]))
"""

from __future__ import annotations

import functools
import numbers
import os
import time
import warnings
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from scipy.optimize import OptimizeWarning

from . import _core
from ._linprog_polish import kkt as _kkt
from ._linprog_polish import polish_refined as _polish_refined
from ._linprog_presolve import presolved as _presolved
from ._progress import Progress
from ._result import OptimizeResult, finish
from ._validation import nonnegative_scalar, normalize_workers, positive_int
from ._validation import positive_scalar as _positive_scalar

__all__ = ["linprog"]

#: Bounds at or beyond this magnitude are infinite (as in HiGHS and SciPy).
INF = 1e20


def _array(value, name: str, dtype=None) -> np.ndarray:
    """``np.asarray`` that names ``name`` when the input is ragged or not numbers."""
    try:
        return np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Invalid input for linprog: unable to read `{name}` as an array ({exc}).") from None


def positive_scalar(value, name: str) -> float:
    """A positive finite float; an integer beyond float range is a ValueError naming ``name``."""
    try:
        return _positive_scalar(value, name)
    except OverflowError:
        raise ValueError(f"`{name}` must be a positive finite number; got an integer beyond float range.") from None


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
        arr = _array(A, name)
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


def _vector(b, name: str, size: int, matrix: str) -> np.ndarray:
    """``b`` as a float vector with one entry per row of ``matrix`` (both named on a mismatch)."""
    if b is None:
        if size:
            raise ValueError(
                f"Invalid input for linprog: `{name}` is missing but `{matrix}` has {size} rows; "
                f"give both `{matrix}` and `{name}`, or neither."
            )
        return np.zeros(0)
    arr = _array(b, name)
    if arr.dtype.kind == "c":
        raise TypeError(f"`{name}` is complex; linprog needs real data.")
    try:
        arr = arr.astype(np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be numeric.") from None
    if arr.shape != (size,):
        raise ValueError(
            f"Invalid input for linprog: `{name}` must have one entry per row of `{matrix}` ({size} rows); "
            f"got {arr.size} entries."
        )
    if np.any(np.isnan(arr)):
        raise ValueError(f"Invalid input for linprog: `{name}` must not contain values nan.")
    return arr


def _empty_bounds(bounds) -> bool:
    """SciPy's test for "no bounds given": ``None``, ``[]`` or ``[[]]`` (all mean ``(0, None)``)."""
    if bounds is None:
        return True
    if isinstance(bounds, np.ndarray):
        return bounds.size == 0
    try:
        return bool(np.array_equal(bounds, [])) or bool(np.array_equal(bounds, [[]]))
    except Exception:  # noqa: BLE001 - ragged input: not empty; the parser below reports it
        return False


def _bounds(bounds, n: int) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's forms: ``None``, ``[]`` or ``[[]]`` for the default ``(0, None)``; one (lb, ub)
    pair for all, a list of n pairs, or an (n, 2) array; ``None`` inside a pair for infinite;
    values beyond 1e20 in magnitude are infinite. Inconsistent bounds (lb > ub, lb = +inf,
    ub = -inf) are returned as they are: the problem is infeasible (status 2), as in SciPy."""
    if _empty_bounds(bounds):
        bounds = (0.0, np.inf)
    if isinstance(bounds, np.ndarray) and bounds.dtype.kind in "iuf" and bounds.shape in ((n, 2), (1, 2), (2,), (2, 1)):
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
    elif arr.ndim == 2 and arr.shape in ((1, 2), (2, 1)):
        arr = np.tile(arr.reshape(1, 2), (n, 1))
    if arr.ndim != 2 or arr.shape != (n, 2):
        raise ValueError(
            f"Invalid input for linprog: `bounds` must be a pair (lb, ub), or {n} pairs; got shape {np.shape(arr)}."
        )

    def conv(v, default):
        if v is None:
            return default
        if isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(v, (bool, np.bool_)):
            try:
                return float(v)
            except OverflowError:  # an integer beyond float: infinite, with its sign
                return float(np.sign(v)) * np.inf
        raise ValueError(f"Invalid input for linprog: `bounds` must be numbers or None; got {v!r}.")

    lb = np.array([conv(v, -np.inf) for v in arr[:, 0]], dtype=np.float64)
    ub = np.array([conv(v, np.inf) for v in arr[:, 1]], dtype=np.float64)
    return _check_bounds(lb, ub)


def _check_bounds(lb: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.any(np.isnan(lb)) or np.any(np.isnan(ub)):
        raise ValueError("Invalid input for linprog: `bounds` must not be NaN (use None for an infinite bound).")
    lb[lb <= -INF] = -np.inf
    ub[ub >= INF] = np.inf
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
    tol: float | None = None,
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

    Status 2 (infeasible) always rests on a Farkas ray that passes the certificate test on the
    full problem (``options['tol_infeasible']``): bound propagation before iterating, rays from
    the iterates at two consecutive checks, or the certificate polish, which at checks 1, 2, 4,
    8, ... whose dual drift keeps its direction solves the Farkas LP restricted to the rows
    where the drift is largest (and the singleton rows of their columns) exactly, by a small
    dense simplex; ``message`` says which. The polish changes no iterate; its time counts.

    Parameters
    ----------
    c, A_ub, b_ub, A_eq, b_eq, bounds
        As in SciPy: dense arrays or any ``scipy.sparse`` matrix (never densified); ``bounds``
        one ``(lb, ub)`` pair for all variables, a sequence of pairs, or an ``(n, 2)`` array;
        ``None`` inside a pair is infinite, ``|bound| >= 1e20`` too; ``bounds=None``, ``[]``
        or ``[[]]`` mean the default ``(0, None)``, as in SciPy. Bounds that admit no point
        (``lb > ub``, ``lb = +inf``, ``ub = -inf``) give status 2 with a message naming the
        variable, not an exception (SciPy's HiGHS does the same); NaN raises ``ValueError``.
    method : {"halpern-pdhg"}
        The only method (other names raise ``ValueError``).
    callback : callable, optional
        ``callback(res)`` at every convergence check (every ``options['check_every']``
        iterations, default 64) with an ``OptimizeResult`` holding SciPy's intermediate fields
        ``x``, ``fun``, ``slack``, ``con``, ``success`` (False), ``phase`` (2: PDHG has one
        phase), ``status`` (0), ``nit``, ``message`` ("Optimization proceeding nominally.") and
        ``complete`` (False), the current duals ``ineqlin.marginals`` and
        ``eqlin.marginals``, the relative residuals
        ``rel_primal``, ``rel_dual``, ``rel_gap``, the primal weight
        ``primal_weight`` (ω: primal step η/ω, dual step ηω, scaled problem) and ``restarts``; raising
        ``StopIteration`` stops with status 99.
    options : dict, optional
        ``check_every`` (iterations between checks), ``tol_infeasible`` (tolerance of the
        infeasibility certificates: a ray's sign violation relative to its objective, default
        1e-6; 1e-4 declared 7 feasible Netlib problems infeasible, 1e-8 misses 4 more of the
        infeasible ones), ``presolve`` (default True: before iterating, a few rounds of bound
        propagation look for a row whose activity range misses its bounds, which proves the LP
        infeasible at once; the problem itself is solved unchanged; and problems that
        presolve settles are answered with ``nit == 0``: a zero row whose bounds exclude 0
        gives status 2; a singleton row (one nonzero) is a bound on its variable, and
        singleton bounds that cross give status 2 naming the rows; when then every variable
        is fixed (``lb == ub``, or by singleton rows) or in no other row, ``x`` is set from
        the bounds and the cost's sign: status 0, 2 if the rows miss their bounds, 3 if a
        variable decreases without bound; a singleton row's dual is then HiGHS's, the reduced
        cost of the bound it set over its coefficient), ``polish`` (default True: after PDHG
        converges, the active set that the primal-dual pair shows is solved for the last
        digits by a sparse LU of its reduced systems, with PDHG continued to ``tol/10`` and
        ``tol/100`` when that guess is wrong; the polished point is kept only when its
        measured KKT error is smaller, the status never changes, and ``res.polished`` and
        ``message`` say what happened; skipped when the active system has over 200000 rows
        and columns; see ``optcore._linprog_polish``), and ``maxiter`` /
        ``time_limit`` / ``disp`` (SciPy's spelling, same as the keywords; the options win).
        SciPy's tolerances ``primal_feasibility_tolerance``, ``dual_feasibility_tolerance``,
        ``ipm_optimality_tolerance`` and ``tol`` set ``tol`` (the smallest given) when the
        keyword ``tol`` is not given; SciPy's ``simplex_dual_edge_weight_strategy``,
        ``mip_rel_gap`` and ``mip_max_nodes`` are accepted and have no effect. Any other name
        warns SciPy's ``OptimizeWarning`` ("Unrecognized options detected: ...") and is
        ignored, as in SciPy; a non-dict raises ``TypeError``.
    x0, y0 : array_like, optional
        Warm start: primal ``x`` (length n) and dual ``y`` (one value per row of ``A_ub`` then
        ``A_eq``, HiGHS's signs, e.g. ``np.r_[res.ineqlin.marginals, res.eqlin.marginals]``);
        both the anchor and the first iterate.
    integrality : array_like, optional
        Integer variables are not supported: nonzero entries warn SciPy's ``OptimizeWarning``
        ("Only `method='highs'` supports integer constraints. ... Ignoring `integrality`") and
        the continuous relaxation is solved; ``res.message`` says so.
    tol : float, optional
        Default 1e-6 (or the tolerance options, above). Relative KKT tolerance on the **unscaled** problem: primal residual
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
        ``message`` (which criterion decided), ``nit`` (0 when presolve settled it, and then
        ``presolved=True``), and ``ineqlin``, ``eqlin``, ``lower``,
        ``upper`` with ``marginals`` (HiGHS's signs: ``d fun / d b``) and ``residual``; plus
        ``rel_primal``, ``rel_dual``, ``rel_gap``, ``dual_fun``, ``restarts``, ``polished``
        (True when the returned point is the polish's) and ``phase_times`` (seconds of the
        PDHG run and of the polish, its continued iterations included; ``nit`` counts those
        too).

    Examples
    --------
    >>> import optcore
    >>> res = optcore.linprog([-1, -1], A_ub=[[1, 2], [3, 1]], b_ub=[4, 6])
    >>> res.status, round(res.fun, 4)
    (0, -2.8)
    >>> bool(max(res.rel_primal, res.rel_dual, res.rel_gap) <= 1e-6)  # success: all three <= tol
    True
    >>> bool(res.polished), float(abs(res.x - [1.6, 1.2]).max()) < 1e-15  # the vertex's last digits
    (True, True)
    """
    if not isinstance(method, str) or method.lower() not in ("halpern-pdhg", "pdhg"):
        raise ValueError(f"Unknown solver {method!r}: optcore.linprog has method='halpern-pdhg'.")
    opts = _options(options)
    maxiter = opts.get("maxiter", maxiter)
    time_limit = opts.get("time_limit", time_limit)
    disp = opts.get("disp", disp)
    if not isinstance(disp, (bool, np.bool_, numbers.Integral)):
        raise TypeError(f"`disp` (or options['disp']) must be True or False; got {type(disp).__name__}.")
    disp = bool(disp)
    cvec = _array(c, "c")
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
    bub = _vector(b_ub, "b_ub", Aub.shape[0], "A_ub")
    beq = _vector(b_eq, "b_eq", Aeq.shape[0], "A_eq")
    if np.any(np.isinf(beq)):
        raise ValueError("Invalid input for linprog: `b_eq` must be finite.")
    lb, ub = _bounds(bounds, n)
    relaxed = _integrality(integrality, n)
    tol = _tolerance(tol, opts)
    maxiter = DEFAULT_MAXITER if maxiter is None else positive_int(maxiter, "maxiter", minimum=0)
    time_limit = _time_limit(time_limit)
    check_every = min(positive_int(opts.get("check_every", 64), "options['check_every']"), 2**62)
    try:
        tol_inf = nonnegative_scalar(opts.get("tol_infeasible", 1e-6), "options['tol_infeasible']")
    except OverflowError:
        raise ValueError(
            "options['tol_infeasible'] must be a finite number; got an integer beyond float range."
        ) from None
    try:
        workers = normalize_workers(workers)
    except OverflowError:
        raise ValueError(f"`workers` must be None, -1 or a positive thread count; got {workers}.") from None
    if workers is not None:  # more threads than cores buy nothing (the result does not depend on them)
        workers = min(workers, os.cpu_count() or 1)
    presolve = opts.get("presolve", True)
    if not isinstance(presolve, (bool, np.bool_)):
        raise ValueError(f"options['presolve'] must be True or False, got {presolve!r}.")
    polish = opts.get("polish", True)
    if not isinstance(polish, (bool, np.bool_)):
        raise ValueError(f"options['polish'] must be True or False, got {polish!r}.")
    m_ub, m_eq = Aub.shape[0], Aeq.shape[0]
    A = sp.vstack([Aub, Aeq], format="csr").astype(np.float64)
    A.sum_duplicates()
    A.eliminate_zeros()
    A.sort_indices()
    bub_c = bub.copy()
    bub_c[bub_c >= INF] = np.inf
    lc = np.r_[np.full(m_ub, -np.inf), beq]
    uc = np.r_[bub_c, beq]
    m = m_ub + m_eq
    xs = ys = None
    if x0 is not None:
        xs = _array(x0, "x0", np.float64).reshape(-1)
        if xs.shape != (n,) or not np.all(np.isfinite(xs)):
            raise ValueError(f"Invalid input for linprog: `x0` must be {n} finite values.")
    if y0 is not None:
        ys = _array(y0, "y0", np.float64).reshape(-1)
        if ys.shape != (m,) or not np.all(np.isfinite(ys)):
            raise ValueError(f"Invalid input for linprog: `y0` must be {m} finite values (rows of A_ub then A_eq).")

    lp = _Problem(cvec, Aub, bub, Aeq, beq, lb, ub, A, lc, uc)
    note = " The continuous relaxation was solved (`integrality` ignored: no integer support)." if relaxed else ""
    settled = _presolved(lp, tol, bool(presolve))
    if settled is not None:
        x, y, status, detail = settled
        rel, dual_fun, red = _kkt(lp, x, y)
        res = _assemble(lp, x, y, red, status, detail, 0, rel, dual_fun if status == 0 else 0.0, 0, note)
        res["presolved"] = True
        res["polished"] = False
        res["phase_times"] = {"pdhg": 0.0, "polish": 0.0}
        return finish(res, "optcore.linprog", progress=None, warn=warn)

    def build(state: dict) -> OptimizeResult:
        x = np.asarray(state["x"])
        y = np.asarray(state["y"])
        slack = bub - Aub @ x
        con = beq - Aeq @ x
        return OptimizeResult(
            x=x,
            fun=float(cvec @ x),
            slack=slack,
            con=con,
            success=False,
            phase=2,
            status=0,
            message="Optimization proceeding nominally.",
            complete=False,
            nit=state["nit"],
            ineqlin=OptimizeResult(marginals=y[:m_ub], residual=slack),
            eqlin=OptimizeResult(marginals=y[m_ub:], residual=con),
            rel_primal=state.get("rel_primal"),
            rel_dual=state.get("rel_dual"),
            rel_gap=state.get("rel_gap"),
            primal_weight=state.get("primal_weight"),
            restarts=int(state.get("restarts", 0)),
        )

    progress = Progress(callback, disp, build, f"optcore.linprog(halpern-pdhg, tol={tol:g}), {m} rows, {n} columns")
    t_start = time.perf_counter()

    def pdhg(x0, y0, tol_run, maxiter_run, time_run, prog):
        return _core.linprog_pdhg(
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
            x0,
            y0,
            tol=tol_run,
            maxiter=int(min(maxiter_run, 2**62)),
            time_limit=time_run,
            check_every=check_every,
            tol_infeasible=tol_inf,
            presolve=bool(presolve),
            progress=prog,
            workers=workers,
        )

    out = pdhg(xs, ys, tol, maxiter, time_limit, progress if progress.active else None)
    status = int(out["status"])
    # The iterate can sit outside its bounds by rounding after unscaling (x = β D_c x̂): the
    # returned x is clipped to them, and everything below is measured on that x.
    x = np.clip(np.asarray(out["x"]), lb, ub)
    y, red = np.asarray(out["y"]), np.asarray(out["reduced"])
    rel = (float(out["rel_primal"]), float(out["rel_dual"]), float(out["rel_gap"]))
    dual_fun = float(out["dual_obj"])
    detail = out["reason"] or out["detail"]
    t_pdhg = time.perf_counter() - t_start
    polished, t_polish, nit = False, 0.0, int(out["nit"])
    if status == 0 and polish:

        def more(x0, y0, tol_run, iters, nit_done):
            """PDHG continued from (x0, y0); the callback sees the iterations counted on."""
            left = time_limit - (time.perf_counter() - t_start)
            if left <= 0:
                return None
            prog = (lambda st: progress({**st, "nit": st["nit"] + nit_done})) if progress.active else None
            o = pdhg(x0, np.ascontiguousarray(y0), tol_run, iters, left, prog)
            r = (float(o["rel_primal"]), float(o["rel_dual"]), float(o["rel_gap"]))
            return int(o["status"]), np.clip(np.asarray(o["x"]), lb, ub), np.asarray(o["y"]), r, int(o["nit"])

        # Only a converged point is polished, and only a smaller measured KKT error is kept: the
        # status stays 0 (python/optcore/_linprog_polish.py), or 99 when the callback stops the
        # continued iterations. Further active-set guesses only while their work stays under a
        # quarter of the PDHG iterations' (about 4 flops per nonzero of A each; at least 1e7).
        p, extra, status = _polish_refined(
            lp,
            x,
            y,
            rel,
            nit=nit,
            tol=tol,
            more=more,
            max_extra=min(nit, maxiter - nit),
            budget=max(A.nnz * nit, 1e7),
        )
        x, y, red, rel, dual_fun, polished, t_polish = p.x, p.y, p.red, p.rel, p.dual_fun, p.polished, p.seconds
        nit += extra
        note = f" {p.note[0].upper()}{p.note[1:]}." + note
        if status == 99:
            detail = "the callback stopped the polish's continued iterations (the best point found is returned)"
    res = _assemble(lp, x, y, red, status, detail, nit, rel, dual_fun, int(out["restarts"]), note)
    res["polished"] = polished
    res["phase_times"] = {"pdhg": t_pdhg, "polish": t_polish}
    return finish(res, "optcore.linprog", progress=progress, warn=warn)


class _Problem:
    """The parsed LP: SciPy's pieces and the stacked rows ``lc <= A x <= uc``."""

    def __init__(self, c, Aub, bub, Aeq, beq, lb, ub, A, lc, uc):
        self.c, self.Aub, self.bub, self.Aeq, self.beq = c, Aub, bub, Aeq, beq
        self.lb, self.ub, self.A, self.lc, self.uc = lb, ub, A, lc, uc

    @functools.cached_property
    def AT(self):
        """``A.T`` as CSR (made when the polish first needs it)."""
        return self.A.T.tocsr()


def _assemble(lp: _Problem, x, y, red, status, detail, nit, rel, dual_fun, restarts, note) -> OptimizeResult:
    """The final result, every field measured on the returned ``x`` (SciPy's fields and optcore's)."""
    m_ub = lp.Aub.shape[0]
    slack = lp.bub - lp.Aub @ x
    con = lp.beq - lp.Aeq @ x
    # The reduced costs on the bounds, as the KKT test counts them (optcore.testing.lp_bound_part).
    with np.errstate(invalid="ignore"):
        near_lb = np.isfinite(lp.lb) & (np.abs(x - lp.lb) <= np.abs(x))
        near_ub = np.isfinite(lp.ub) & (np.abs(x - lp.ub) <= np.abs(x))
    lower_m = np.where(near_lb, np.maximum(red, 0.0), 0.0)
    upper_m = np.where(near_ub, np.minimum(red, 0.0), 0.0)
    head = _MESSAGES.get(status, "Stopped")
    message = f"{head}: {detail}." if detail else f"{head}."
    return OptimizeResult(
        x=x,
        fun=float(lp.c @ x),
        slack=slack,
        con=con,
        status=status,
        success=status == 0,
        message=message + note,
        nit=nit,
        ineqlin=OptimizeResult(marginals=y[:m_ub], residual=slack),
        eqlin=OptimizeResult(marginals=y[m_ub:], residual=con),
        lower=OptimizeResult(marginals=lower_m, residual=x - lp.lb),
        upper=OptimizeResult(marginals=upper_m, residual=lp.ub - x),
        rel_primal=rel[0],
        rel_dual=rel[1],
        rel_gap=rel[2],
        dual_fun=dual_fun,
        restarts=restarts,
        method="halpern-pdhg",
    )


def _options(options) -> dict:
    """``options`` as a dict of the names optcore uses; SciPy's other names are accepted (those
    without a meaning for PDHG have no effect), unknown ones warn SciPy's ``OptimizeWarning``
    and are ignored, as SciPy does."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"`options` must be a dict of solver options or None; got {type(options).__name__}.")
    bad = [k for k in options if not isinstance(k, str)]
    if bad:  # SciPy passes the options as keywords: a TypeError there too
        raise TypeError(f"`options` keys must be strings (option names); got {bad[0]!r}.")
    unknown = {k: v for k, v in options.items() if k not in _KNOWN_OPTIONS}
    if unknown:
        warnings.warn(
            f"Unrecognized options detected: {unknown}. These will be ignored (known: {sorted(_KNOWN_OPTIONS)}).",
            OptimizeWarning,
            stacklevel=3,
        )
    return {k: v for k, v in options.items() if k not in unknown}


#: Options read by optcore (SciPy's spelling where SciPy has the name; see the docstring).
_USED_OPTIONS = {"maxiter", "disp", "time_limit", "presolve", "polish", "check_every", "tol_infeasible"} | set(
    ("tol", "dual_feasibility_tolerance", "primal_feasibility_tolerance", "ipm_optimality_tolerance")
)
#: SciPy's HiGHS options without a meaning for a first-order LP method: accepted, no effect.
_INERT_OPTIONS = {"simplex_dual_edge_weight_strategy", "mip_rel_gap", "mip_max_nodes"}
_KNOWN_OPTIONS = _USED_OPTIONS | _INERT_OPTIONS
_TOLERANCE_OPTIONS = ("tol", "dual_feasibility_tolerance", "primal_feasibility_tolerance", "ipm_optimality_tolerance")


def _tolerance(tol, opts: dict) -> float:
    """The keyword ``tol`` if given; else the smallest of SciPy's tolerance options given (one
    relative KKT tolerance bounds the primal and dual residuals and the gap); else 1e-6."""
    given = [positive_scalar(opts[k], f"options['{k}']") for k in _TOLERANCE_OPTIONS if opts.get(k) is not None]
    if tol is not None:
        return positive_scalar(tol, "tol")
    return min(given) if given else 1e-6


def _time_limit(time_limit) -> float:
    if time_limit is None:
        return float("inf")
    if isinstance(time_limit, (numbers.Integral, np.integer)) and not isinstance(time_limit, (bool, np.bool_)):
        if abs(int(time_limit)) > 2**1000:  # beyond a float: no limit at all, or a wrong sign
            if time_limit > 0:
                return float("inf")
            raise ValueError(f"`time_limit` must be a positive number of seconds; got {time_limit}.")
    return positive_scalar(time_limit, "time_limit")


def _integrality(integrality, n: int) -> bool:
    """True when ``integrality`` asks for integer variables: SciPy's warning for a method
    without integer support is given and the continuous relaxation is solved."""
    if integrality is None:
        return False
    try:
        arr = np.broadcast_to(_array(integrality, "integrality"), (n,))
    except ValueError:
        raise ValueError(
            f"Invalid input for linprog: `integrality` must be one value or {n} values (one per variable)."
        ) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`integrality` must hold integers 0 to 3; got dtype {arr.dtype}.")
    if not np.any(arr):
        return False
    warnings.warn(
        "Only `method='highs'` supports integer constraints (optcore.linprog: method='halpern-pdhg' "
        "has none). Ignoring `integrality`: the continuous relaxation is solved.",
        OptimizeWarning,
        stacklevel=3,
    )
    return True
