"""The polish step of :func:`optcore.linprog`: from a converged PDHG pair to the vertex's digits.

PDHG stops at a relative KKT error near ``tol`` (1e-6 by default), so its ``x`` agrees with
HiGHS's vertex to about six digits. The polish guesses the optimal active set from the converged
primal-dual pair (which variables sit at a bound, which inequality rows are tight), and solves
the reduced systems of that active set for the last digits:

- primal: the variables off their bounds (``B``) move by the least-norm ``dx`` with
  ``A[R, B] dx = b_R - A[R, :] x`` (``R``: equality rows and tight inequality rows, each at its
  bound); the others are put on their bound;
- dual: the row duals of ``R`` move by the least-norm ``dy`` with ``A[R, B]^T dy = c_B -
  A[R, B]^T y`` (zero reduced cost on ``B``); the duals of the other rows are 0.

Both are least-norm problems with the same matrix ``M = A[R, B]``, and one sparse LU of the
regularized augmented matrix ``[[I, M^T], [M, -delta I]]`` (after equilibrating ``M``) answers
both, refined against the unregularized equations. The least-norm form handles degenerate and
rank-deficient active sets (more tight rows than free variables, redundant equality rows, a
face of optima rather than a vertex) without choosing a basis: a consistent system is solved
exactly, and an inconsistent one (a wrong guess) leaves a residual that the KKT measure sees.

Several guesses of the active set are tried (the exact one PDHG's projections leave, and
tolerance-based ones); each gives a candidate pair, the primal and dual parts are also combined
with the unpolished ones, and the candidate with the smallest relative KKT error, measured on
the unscaled problem exactly as the solver measures it, is kept only when that error is smaller
than the unpolished point's. A failed factorization, a system above the size limit, or no
improvement leave the PDHG point as it is, with the reason in the message.

The factorization is SciPy's SuperLU (``scipy.sparse.linalg.splu``): SciPy is already a
dependency of the package (``linprog`` returns SciPy's result fields and warnings), SuperLU is
a well-kept sparse LU with fill-reducing ordering, and the polish runs once per solve, so the
Python layer costs nothing that matters next to the factorization.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

#: Largest active system (rows plus columns of ``M``) and nonzeros of ``M`` that the polish
#: factorizes; beyond them it is skipped as not cheap.
MAX_SIZE = 200_000
MAX_NNZ = 2_000_000
#: Regularization of the augmented system (``M`` equilibrated to entries of at most 1).
DELTA = 1e-10
#: Refinement rounds against the unregularized equations.
REFINE = 6
#: Active-set guesses solved at most, and how many times a solved guess is re-guessed from.
MAX_SOLVES = 10
MAX_DEPTH = 3


def _norm(v) -> float:
    """``||v||_2`` without BLAS: right after the Rust solve, its worker threads still spin for a
    moment, and a threaded BLAS call then waits on them (60 ms for a dot of 16000 values on a
    busy 2-core machine, against 20 us). Scaled by the largest entry, so that entries beyond
    1e154 do not overflow the squares."""
    v = np.asarray(v, np.float64)
    if v.size == 0:
        return 0.0
    big = float(np.max(np.abs(v)))
    if big == 0.0 or not math.isfinite(big):
        return big
    return big * math.sqrt(float(np.sum(np.square(v / big))))


@dataclass
class Polished:
    """What :func:`polish` returns: the point to return and how it came about."""

    x: np.ndarray
    y: np.ndarray
    red: np.ndarray
    rel: tuple[float, float, float]
    dual_fun: float
    polished: bool
    note: str
    seconds: float
    #: True when the active system was over the size limit (the polish is not cheap here).
    too_large: bool = False
    #: The guesses' work (flops, see :func:`polish`), compared with the budget.
    work: float = 0.0


def kkt(lp, x: np.ndarray, y: np.ndarray) -> tuple[tuple[float, float, float], float, np.ndarray]:
    """``((rel_primal, rel_dual, rel_gap), dual objective, reduced costs)`` of ``(x, y)`` on the
    unscaled problem, as the Rust core measures them (``lp/kkt.rs``): reduced costs count on a
    finite bound near ``x`` (``|x - bound| <= |x|``), a row dual of a sign its row cannot carry
    is dual residual."""
    A, lc, uc, lb, ub, c = lp.A, lp.lc, lp.uc, lp.lb, lp.ub, lp.c
    ax = A @ x
    pr = ax - np.clip(ax, lc, uc)
    bnorm = math.hypot(_norm(lc[np.isfinite(lc)]), _norm(uc[np.isfinite(uc)]))
    red = c - lp.AT @ y
    with np.errstate(invalid="ignore"):
        near_lb = np.isfinite(lb) & (np.abs(x - lb) <= np.abs(x))
        near_ub = np.isfinite(ub) & (np.abs(x - ub) <= np.abs(x))
    lam = np.where(((red > 0) & near_lb) | ((red < 0) & near_ub), red, 0.0)
    du2 = float(np.sum((red - lam) ** 2))
    ok_lo = (y > 0) & np.isfinite(lc)
    ok_hi = (y < 0) & np.isfinite(uc)
    du2 += float(np.sum(np.where(~ok_lo & ~ok_hi, y, 0.0) ** 2))
    with np.errstate(invalid="ignore"):
        dobj = float(np.sum(np.where(lam > 0, lb, 0.0) * np.where(lam > 0, lam, 0.0)))
        dobj += float(np.sum(np.where(lam < 0, ub, 0.0) * np.where(lam < 0, lam, 0.0)))
        dobj += float(np.sum(np.where(ok_lo, lc, 0.0) * np.where(ok_lo, y, 0.0)))
        dobj += float(np.sum(np.where(ok_hi, uc, 0.0) * np.where(ok_hi, y, 0.0)))
    pobj = float(np.sum(c * x))
    rel = (
        _norm(pr) / (1.0 + bnorm),
        math.sqrt(du2) / (1.0 + _norm(c)),
        abs(pobj - dobj) / (1.0 + abs(pobj) + abs(dobj)),
    )
    return rel, dobj, red


def polish(
    lp, x: np.ndarray, y: np.ndarray, rel_before, *, max_size: int | None = None, budget: float = np.inf
) -> Polished:
    """The polished pair when it measures a smaller relative KKT error than ``(x, y)``.

    ``lp`` is the parsed LP (stacked rows ``lc <= A x <= uc``, bounds ``lb <= x <= ub``),
    ``(x, y)`` the converged PDHG pair (``y`` with HiGHS's signs), ``rel_before`` the solver's
    measured ``(rel_primal, rel_dual, rel_gap)`` of it. The result has ``polished=True`` only
    when its pair measures a smaller error (the largest of the three) than ``rel_before`` and
    than ``(x, y)`` re-measured here; otherwise it holds ``(x, y)`` and the reason. ``max_size``
    (default :data:`MAX_SIZE`) bounds the active system's rows plus columns. Once the
    factorizations' estimated flops (the sum of squared column counts of ``L``, a count that
    does not depend on the machine's speed or load, so the result is reproducible; plus the
    solves' and the measurements' passes) exceed ``budget``, no further guess is tried (the
    first always is).
    """
    t0 = time.perf_counter()
    max_size = MAX_SIZE if max_size is None else max_size
    rel0, dobj0, red0 = kkt(lp, x, y)
    best_err = min(max(rel_before), max(rel0))
    best, flops = None, 0.0
    if best_err <= 1e-15:
        why = f"not polished (the KKT error is already {best_err:.2g})"
        return Polished(x, y, red0, tuple(rel_before), dobj0, False, why, time.perf_counter() - t0)
    seen, reasons = set(), []
    # A work list of (guess, the pair it starts from, depth): a guess whose solve improves on
    # PDHG's pair is followed (first) by the guesses its own solution gives, as in a
    # primal-dual active-set method: a row that PDHG's x leaves barely slack is exactly tight
    # at the solved vertex, and joins the next guess.
    queue = [(g, x, y, 0) for g in _guesses(lp, x, y, red0)]
    while queue and len(seen) < MAX_SOLVES:
        guess, bx, by, depth = queue.pop(0)
        key = b"".join(g.tobytes() for g in guess)
        if key in seen:
            continue
        seen.add(key)
        try:
            xs, ys, work = _solve_active(lp, bx, by, guess, max_size)
            flops += work
        except (_Skip, ArithmeticError, MemoryError) as why:
            # a guess that cannot be solved leaves the point as it is (the reason goes to the message)
            reasons.append(str(why) if isinstance(why, _Skip) else f"{type(why).__name__} in the active system")
            if "limit" in str(why):
                break
            continue
        rel_s, dobj_s, red_s = kkt(lp, xs, ys)
        cands = [((xs, ys), (rel_s, dobj_s, red_s))]
        if max(rel_s) > 1e-13:  # the primal or the dual part alone may be the better one
            cands += [((cx, cy), kkt(lp, cx, cy)) for cx, cy in ((xs, y), (x, ys))]
        for (cx, cy), (rel, dobj, red) in cands:
            err = max(rel)
            if np.isfinite(err) and err < best_err:
                best_err, best = err, (cx, cy, red, rel, dobj)
        if best_err <= 1e-13 or flops > budget:
            break
        if depth < MAX_DEPTH and max(rel_s) < max(rel0):
            queue[:0] = [(g, xs, ys, depth + 1) for g in itertools.islice(_guesses(lp, xs, ys, red_s), 2)]
    seconds = time.perf_counter() - t0
    if best is None:
        why = reasons[0] if reasons and len(reasons) == len(seen) else "no active-set guess lowered the KKT error"
        large = any("over the limit" in r for r in reasons)
        return Polished(x, y, red0, tuple(rel_before), dobj0, False, f"not polished ({why})", seconds, large, flops)
    cx, cy, red, rel, dobj = best
    note = f"polished (the active set's reduced system solved: KKT error {max(rel_before):.2g} -> {max(rel):.2g})"
    return Polished(cx, cy, red, rel, dobj, True, note, seconds, False, flops)


#: A polished pair at or below this relative KKT error is final (its objective agrees with the
#: vertex's to about that many digits); above it, PDHG continues (see :func:`polish_refined`).
EXACT = 1e-10


def polish_refined(lp, x, y, rel_before, *, nit: int, tol: float, more, max_extra: int, budget: float):
    """:func:`polish`, then, while the best pair's KKT error stays above :data:`EXACT`, PDHG
    continued from it to ``tol / 10`` and ``tol / 100`` (at most ``max_extra`` iterations in
    all) and polished again, unless the active system was over the size limit or the first
    polish's work over ``budget`` (the factorization is not cheap here). At 1e-6 PDHG
    can leave a row slack that is tight at the optimum (a wrong active-set guess that no
    factorization repairs), and a tenth of the tolerance usually identifies it.

    ``more(x0, y0, tol, maxiter, nit_done)`` runs PDHG from ``(x0, y0)`` and returns ``(status,
    x, y, rel, nit)`` or None (no time left). Returns ``(Polished, extra iterations, status)``:
    the status is 0, or 99 when the callback stopped the continued iterations (the pair is then
    the best one found before). A continued pair is kept only when it measures a smaller error.
    """
    p = polish(lp, x, y, rel_before, budget=budget)
    extra, seconds, status, kept = 0, p.seconds, 0, False
    for k in (1, 2):
        if max(p.rel) <= EXACT or extra >= max_extra or p.too_large or p.work > budget:
            break
        t0 = time.perf_counter()
        got = more(p.x, p.y, tol * 10.0**-k, max_extra - extra, nit + extra)
        seconds += time.perf_counter() - t0
        if got is None:
            break
        status2, x2, y2, rel2, nit2 = got
        extra += nit2
        if status2 != 0:
            status = 99 if status2 == 99 else 0
            break
        q = polish(lp, x2, y2, rel2, budget=budget)
        seconds += q.seconds
        if max(q.rel) < max(p.rel):
            how = "then the active set's reduced system solved" if q.polished else "the continued PDHG point"
            q.note = (
                f"polished after {extra} more PDHG iterations to tol {tol * 10.0**-k:.0e} ({how}: "
                f"KKT error {max(rel_before):.2g} -> {max(q.rel):.2g})"
            )
            q.polished, kept = True, True
            p = q
    if extra and not kept:
        p.note += f"; {extra} more PDHG iterations toward tol {tol / 10:.0e} did not lower it further"
    p.seconds = seconds
    return p, extra, status


class _Skip(Exception):
    """A guess that cannot be polished (too large, singular): the reason, for the message."""


def _guesses(lp, x, y, red):
    """Active-set guesses ``(at_lower, at_upper, side)`` (``side``: 0 for a row left free, 1
    tight at its lower bound, 2 at its upper), most specific first: the one that PDHG's
    projections leave (a variable exactly on a bound, a row exactly at its bound), then
    looser ones (a relative slack below a threshold, or below the matching dual)."""
    lb, ub, lc, uc = lp.lb, lp.ub, lp.lc, lp.uc
    ax = lp.A @ x
    xs = 1.0 + np.abs(x)
    rs = 1.0 + np.abs(ax)
    with np.errstate(invalid="ignore"):
        sl = np.where(np.isfinite(lb), (x - lb) / xs, np.inf)
        su = np.where(np.isfinite(ub), (ub - x) / xs, np.inf)
        rl = np.where(np.isfinite(lc), (ax - lc) / rs, np.inf)
        ru = np.where(np.isfinite(uc), (uc - ax) / rs, np.inf)
    cs = 1.0 + float(np.max(np.abs(lp.c), initial=0.0))
    z, yz = red / cs, y / cs
    eq, fixed = lc == uc, lb == ub

    def pick(thr, use_dual):
        lo, hi, rlo, rhi = sl <= thr, su <= thr, rl <= thr, ru <= thr
        if use_dual:
            lo |= np.isfinite(lb) & (z > sl)
            hi |= np.isfinite(ub) & (-z > su)
            rlo |= np.isfinite(lc) & (yz > rl)
            rhi |= np.isfinite(uc) & (-yz > ru)
        lo = np.where(lo & hi, sl <= su, lo) | fixed  # one side each: the nearer one
        hi = hi & ~lo
        rlo = np.where(rlo & rhi, rl <= ru, rlo) | eq
        rhi = rhi & ~rlo
        return lo, hi, np.where(rlo, 1, np.where(rhi, 2, 0)).astype(np.int8)

    yield pick(1e-12, False)
    yield pick(1e-12, True)
    yield pick(1e-9, True)
    yield pick(1e-7, True)
    yield pick(1e-5, False)


def _segment_max(vals, keys, size):
    """The largest of ``vals`` per key ``0..size-1`` (``keys`` sorted; 0 where a key is absent)."""
    out = np.zeros(size)
    if vals.size:
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        out[keys[starts]] = np.maximum.reduceat(vals, starts)
    return out


def _equilibrate(ri, ci, v, nr, nb):
    """Row and column scalings ``dr``, ``dc`` that bring the rows and columns of ``dr M dc``
    (``M`` given by its entries ``v`` at ``(ri, ci)``, ``ri`` sorted) near unit max norm
    (Ruiz passes)."""
    dr, dc = np.ones(nr), np.ones(nb)
    a = np.abs(v)
    order = np.argsort(ci, kind="stable")
    ci_sorted = ci[order]
    for _ in range(3):
        s = a * dr[ri] * dc[ci]
        rmax = _segment_max(s, ri, nr)
        cmax = _segment_max(s[order], ci_sorted, nb)
        dr /= np.sqrt(np.where(rmax > 0, rmax, 1.0))
        dc /= np.sqrt(np.where(cmax > 0, cmax, 1.0))
    return dr, dc


def _solve_active(lp, x, y, guess, max_size):
    """The polished primal and dual of one active-set guess (see the module docstring)."""
    at_lo, at_hi, side = guess
    tight = side > 0
    free = ~(at_lo | at_hi)
    R = np.nonzero(tight)[0]
    B = np.nonzero(free)[0]
    xn = x.copy()
    xn[at_lo] = lp.lb[at_lo]
    xn[at_hi] = lp.ub[at_hi]
    yn = np.zeros_like(y)
    yn[R] = y[R]
    nb, nr = B.size, R.size
    if nr + nb > max_size:
        raise _Skip(f"the active system has {nr + nb} rows and columns, over the limit {max_size}")
    if nr == 0 or nb == 0:
        return xn, yn, 0.0
    # M = A[R, B] as entries (ri, ci, v), from the CSR arrays of A without SciPy's indexing
    A = lp.A
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    keep = tight[rows] & free[A.indices]
    rpos = np.cumsum(tight) - 1
    cpos = np.cumsum(free) - 1
    ri, ci, v = rpos[rows[keep]], cpos[A.indices[keep]], A.data[keep]
    if v.size > MAX_NNZ:
        raise _Skip(f"the active system has {v.size} nonzeros, over the limit {MAX_NNZ}")
    dr, dc = _equilibrate(ri, ci, v, nr, nb)
    vs = v * dr[ri] * dc[ci]
    Ms = sp.csr_array((vs, (ri, ci)), shape=(nr, nb))
    MsT = Ms.T
    d = np.arange(nb)
    e = nb + np.arange(nr)
    K = sp.csc_array(
        (
            np.concatenate([np.ones(nb), vs, vs, np.full(nr, -DELTA)]),
            (np.concatenate([d, ci, nb + ri, e]), np.concatenate([d, nb + ri, ci, e])),
        ),
        shape=(nb + nr, nb + nr),
    )
    try:
        lu = splu(K, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    except (RuntimeError, MemoryError) as exc:
        raise _Skip(f"the active system's factorization failed: {exc}") from None
    # the work of this guess: the factorization's flops (squared column counts of L), the
    # refinement's solves, and the passes over A that build M and measure the candidates
    fill = lu.L.nnz + lu.U.nnz
    work = float(np.sum(np.diff(lu.L.indptr).astype(float) ** 2)) + 4.0 * REFINE * fill + 40.0 * A.nnz
    # Primal: the least-norm u with Ms u = dr (b_R - A_R xn), and dx_B = dc u. The augmented
    # system with right-hand side (0, r) gives u = Ms^T (Ms Ms^T + delta I)^-1 r.
    target = np.where(side[R] == 1, lp.lc[R], lp.uc[R])
    rp = dr * (target - (A @ xn)[R])
    u, zb, zr = np.zeros(nb), np.zeros(nb), np.zeros(nr)
    for _ in range(REFINE):
        r = rp - Ms @ u
        if not np.all(np.isfinite(r)) or _norm(r) <= 1e-16 * (1.0 + _norm(rp)):
            break
        u += lu.solve(np.concatenate([zb, r]))[:nb]
    xn[B] = xn[B] + dc * u
    # Dual: w with Ms^T w = dc (c_B - A_R,B^T y_R), and dy_R = dr w. The right-hand side
    # (r, 0) gives w = (Ms Ms^T + delta I)^-1 Ms r, the regularized least-squares solution.
    rd = (lp.c[B] - (lp.AT @ yn)[B]) * dc
    w = np.zeros(nr)
    for _ in range(REFINE):
        r = rd - MsT @ w
        if not np.all(np.isfinite(r)) or _norm(r) <= 1e-16 * (1.0 + _norm(rd)):
            break
        w += lu.solve(np.concatenate([r, zr]))[nb:]
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(w))):
        raise _Skip("the active system's solve gave non-finite values")
    xn = np.clip(xn, lp.lb, lp.ub)
    # a tight row's dual keeps the sign its bound allows (an equality row's either sign)
    yr = y[R] + dr * w
    yn[R] = np.where(lp.lc[R] == lp.uc[R], yr, np.where(side[R] == 1, np.maximum(yr, 0.0), np.minimum(yr, 0.0)))
    return xn, yn, work
