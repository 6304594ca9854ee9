"""The presolve of :func:`optcore.linprog`: the problems answered before iterating (``nit == 0``).

- bounds that admit no point (``lb > ub``, ``lb = +inf``, ``ub = -inf``): status 2, naming the
  variable (always, as SciPy does; the rest only with ``options['presolve']``);
- a zero row whose bounds exclude 0: status 2, naming the row;
- singleton rows (one nonzero ``a`` in column ``j``): ``l <= a x_j <= u`` is a bound on ``x_j``;
  bounds that cross give status 2, naming the row;
- when then every variable is fixed (``lb == ub``, or by singleton rows) or in no other row,
  ``x`` is set from the bounds and the cost's sign: status 0, 2 if the remaining rows miss their
  bounds, 3 if a variable decreases without bound. The dual of a singleton row is the reduced
  cost of the bound it set, divided by its coefficient (``y_i = c_j / a``, HiGHS's value and
  sign: the bound's own marginal is then 0); every other row dual is 0.

A problem that presolve does not settle is solved unchanged (the singleton rows stay rows).
"""

from __future__ import annotations

import numpy as np

from ._linprog_polish import kkt

#: Implied bounds that cross by less than this (relative) are rounding: the variable is fixed.
CROSS_TOL = 1e-9


def bounds_conflict(lb: np.ndarray, ub: np.ndarray) -> str | None:
    """Why the bounds admit no point (SciPy's status 2, not an exception), naming the variable."""
    bad = np.nonzero((lb > ub) | (lb == np.inf) | (ub == -np.inf))[0]
    if not bad.size:
        return None
    j = int(bad[0])
    more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
    if lb[j] == np.inf or ub[j] == -np.inf:
        why = "a lower bound of +inf" if lb[j] == np.inf else "an upper bound of -inf"
        return f"`bounds` give variable {j} {why}{more}"
    return f"`bounds` give variable {j} a lower bound {lb[j]:g} > its upper bound {ub[j]:g}{more}"


def _row_name(lp, i: int) -> str:
    m_ub = lp.Aub.shape[0]
    return f"row {i} of `A_ub`" if i < m_ub else f"row {i - m_ub} of `A_eq`"


def _start(lb, ub):
    """A finite point of each variable's bounds: the lower bound, else the upper, else 0."""
    return np.where(np.isfinite(lb), lb, np.where(np.isfinite(ub), ub, 0.0))


def presolved(lp, tol: float, presolve: bool):
    """``(x, y, status, detail)`` when the problem is answered before iterating, else None."""
    lb, ub, c, A = lp.lb, lp.ub, lp.c, lp.A
    n, m = c.size, A.shape[0]
    y = np.zeros(m)
    conflict = bounds_conflict(lb, ub)
    if conflict is not None:
        return _start(lb, ub), y, 2, conflict
    if not presolve:
        return None
    count = np.diff(A.indptr)
    zero = count == 0
    if np.any(zero):
        bfin = np.r_[lp.lc, lp.uc]
        bnorm = 1.0 + float(np.linalg.norm(bfin[np.isfinite(bfin)]))
        viol = np.maximum(np.maximum(lp.lc, 0.0), np.maximum(-lp.uc, 0.0)) * zero
        if float(np.linalg.norm(viol)) / bnorm > tol:
            i = int(np.argmax(viol))
            b = lp.uc[i] if i < lp.Aub.shape[0] else lp.lc[i]
            return _start(lb, ub), y, 2, f"{_row_name(lp, i)} is all zeros but its right-hand side is {b:g}"
    single = count == 1
    lb2, ub2, from_lo, from_hi = lb.copy(), ub.copy(), np.full(n, -1), np.full(n, -1)
    if np.any(single):
        rows = np.nonzero(single)[0]
        k = A.indptr[rows]
        cols, a = A.indices[k], A.data[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            lo = np.where(a > 0, lp.lc[rows] / a, lp.uc[rows] / a)
            hi = np.where(a > 0, lp.uc[rows] / a, lp.lc[rows] / a)
        best = np.full(n, -np.inf)
        np.maximum.at(best, cols, lo)
        win = (lo == best[cols]) & (lo > lb[cols])
        from_lo[cols[win]] = rows[win]
        lb2 = np.maximum(lb, best)
        best = np.full(n, np.inf)
        np.minimum.at(best, cols, hi)
        win = (hi == best[cols]) & (hi < ub[cols])
        from_hi[cols[win]] = rows[win]
        ub2 = np.minimum(ub, best)
        cross = lb2 > ub2
        if np.any(cross):
            scale = 1.0 + np.maximum(np.abs(np.where(cross, lb2, 0.0)), np.abs(np.where(cross, ub2, 0.0)))
            bad = np.nonzero(cross & (lb2 - ub2 > CROSS_TOL * scale))[0]
            if bad.size:
                j = int(bad[0])
                by = [_row_name(lp, int(r)) for r in (from_lo[j], from_hi[j]) if r >= 0]
                return (
                    np.clip(_start(lb, ub), lb, ub),
                    y,
                    2,
                    f"singleton rows make the bounds of variable {j} cross: {lb2[j]:.9g} <= x[{j}] <= "
                    f"{ub2[j]:.9g} (from {' and '.join(by)})",
                )
            mid = 0.5 * (lb2 + ub2)
            lb2, ub2 = np.where(cross, mid, lb2), np.where(cross, mid, ub2)
    others = ~single & ~zero
    in_rows = np.bincount(A.indices[np.repeat(others, count)], minlength=n) > 0
    fixed = lb2 == ub2
    if not np.all(fixed | ~in_rows):
        return None
    # a zero cost takes the finite bound nearest below, as HiGHS does (any point is optimal)
    start = _start(lb2, ub2)
    x = np.where(c > 0, lb2, np.where(c < 0, ub2, start))
    unbounded = ~np.isfinite(x)
    x = np.where(unbounded, start, x)
    x[fixed] = lb2[fixed]
    # the duals of the singleton rows whose bound x sits on (the reduced cost moves to the row)
    on_lo = (c > 0) & (from_lo >= 0) & ~unbounded
    on_hi = (c < 0) & (from_hi >= 0) & ~unbounded
    for on, src in ((on_lo, from_lo), (on_hi, from_hi)):
        j = np.nonzero(on)[0]
        r = src[j]
        y[r] = c[j] / A.data[A.indptr[r]]
    rel = kkt(lp, x, y)[0]
    what = "every variable is fixed, bounded by singleton rows, or in no row"
    if rel[0] > tol:
        return x, np.zeros(m), 2, f"{what}, and the rows miss their bounds by {rel[0]:.3g} > tol"
    if np.any(unbounded):
        j = int(np.nonzero(unbounded)[0][0])
        return x, np.zeros(m), 3, f"variable {j} is in no other row and its cost {c[j]:g} decreases without bound"
    return x, y, 0, f"solved in presolve: {what}"
