"""Sparsity-constrained and quadratically regularized optimal transport (Liu, Puigcerver &
Blondel, AISTATS 2023), by L-BFGS on the smooth dual or semi-dual in Rust.

>>> import numpy as np, optcore
>>> rng = np.random.default_rng(0)
>>> M = rng.random((40, 30)); a = np.full(40, 1 / 40); b = np.full(30, 1 / 30)
>>> res = optcore.ot.sparse_ot(a, b, M, k=4, reg=0.1)
>>> int(np.diff(res.plan.indptr).max()) <= 4
True
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from .. import _core
from .._progress import Progress
from .._result import OptimizeResult, finish
from .._validation import (
    as_float_array,
    check_finite,
    normalize_workers,
    positive_int,
    positive_scalar,
    working_dtype,
)
from . import checks
from .options import default_tol

__all__ = ["SparseOTResult", "smooth_ot", "sparse_ot"]

_DUALS = ("semi", "dual")


class SparseOTResult(OptimizeResult):
    r"""Result of :func:`sparse_ot` and :func:`smooth_ot`.

    Attributes
    ----------
    plan, x : scipy.sparse.csc_array, shape (n, m)
        The plan implied by the returned dual variables, with at most ``k`` nonzeros per
        column, of the dtype of the inputs.
    fun : float
        The maximized objective, evaluated at the returned variables: the dual
        :math:`D(\alpha, \beta)` (``dual="dual"``, the objective of POT's ``smooth_ot_dual``)
        or the semi-dual :math:`S(\alpha)` (``dual="semi"``, POT's ``smooth_ot_semi_dual``).
        The two have the same maximum, :math:`\max_\beta D(\alpha, \beta) = S(\alpha)`.
    primal : float
        ``<plan, M> + (reg / 2) ||plan||^2`` of the returned plan (equal to ``fun`` at the
        optimum when ``k >= n``; above it otherwise: the dual is a relaxation).
    cost : float
        ``<plan, M>``.
    marginal_error : float
        ``||P 1 - a||_1 + ||P^T 1 - b||_1`` measured on ``plan``.
    alpha, beta : ndarray
        Dual variables (float64); ``beta`` is None for the semi-dual, and for the dual it is
        :math:`\beta^*(\alpha) = \arg\max_\beta D(\alpha, \beta)`.
    nit, nfev : int
        L-BFGS iterations and objective evaluations (passes over ``M``).
    success, status, message
        ``success`` is True exactly when ``marginal_error <= tol``; status 0 converged,
        1 iteration limit, 2 infeasible (no plan with at most ``k`` nonzeros per column meets
        the marginals within ``tol``, proven by a lower bound named in ``message``), 4 the
        line search found no decrease (a kink of the objective or its precision limit), 99
        stopped by the callback.
    k, reg, dual, tol
        What was solved.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> res = optcore.ot.sparse_ot(np.full(3, 1 / 3), np.full(3, 1 / 3), 1.0 - np.eye(3), k=1, reg=0.1)
    >>> res.plan.format, res.plan.nnz, bool(res.marginal_error <= res.tol)
    ('csc', 3, True)
    """

    plan: scipy.sparse.csc_array
    cost: float
    marginal_error: float


def sparse_ot(
    a,
    b,
    M,
    k,
    reg,
    *,
    dual: str = "semi",
    tol: float | None = None,
    maxiter: int = 1000,
    memory: int = 10,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    workers: int | None = None,
    warn: bool = True,
) -> SparseOTResult:
    r"""Optimal transport with at most ``k`` nonzeros per column of the plan.

    Solves the smooth relaxations of Liu, Puigcerver & Blondel (AISTATS 2023) of

    .. math::
        \min_{T \ge 0,\; T 1 = a,\; T^\top 1 = b} \langle T, M\rangle + \frac{\mathrm{reg}}{2}
        \|T\|^2 \quad \text{s.t. } \|t_j\|_0 \le k \text{ for every column } t_j

    by L-BFGS (two-loop recursion, weak-Wolfe line search) on the concave dual
    :math:`D(\alpha, \beta) = \langle\alpha, a\rangle + \langle\beta, b\rangle - \sum_j
    \frac{1}{2\,\mathrm{reg}} \sum_{\text{top } k} [\alpha + \beta_j - M_{:j}]_+^2` or semi-dual
    :math:`S(\alpha)` (the top-``k`` simplex projection), in Rust, in parallel over columns.

    The two are tied exactly, where ``k`` binds too: :math:`\max_\beta D(\alpha, \beta) =
    S(\alpha)`. For fixed :math:`\alpha` the column term of :math:`D` keeps one top-``k`` set
    for every :math:`\beta_j` (a shift does not reorder :math:`\alpha - M_{:j}`), and its
    maximizer :math:`\beta_j^*` solves :math:`\sum_{\text{top } k} [\alpha + \beta_j -
    M_{:j}]_+ = \mathrm{reg}\, b_j`: the semi-dual's simplex threshold on the support its
    top-``k`` projection selects. So ``dual="dual"`` maximizes POT's ``smooth_ot_dual`` objective
    by partial maximization: L-BFGS over :math:`\alpha` with :math:`\beta = \beta^*(\alpha)`
    eliminated exactly (the gradient :math:`\nabla_\alpha D(\alpha, \beta^*) = a - P 1` by
    Danskin's theorem; the iterates are those of ``dual="semi"``), and returns
    :math:`(\alpha, \beta^*(\alpha))`, the plan :math:`[\alpha_i + \beta_j^* - M_{ij}]_+ /
    \mathrm{reg}` on each column's top ``k`` and :math:`D(\alpha, \beta^*)` evaluated there.
    It reaches the maximum of the same objective as ``smooth_ot_dual``, whose L-BFGS-B over
    :math:`(\alpha, \beta)` jointly needs several times the iterations. ``k = 1`` recovers
    unregularized OT on problems whose optimum is a map; ``k >= n`` is quadratically
    regularized OT (:func:`smooth_ot`). The conventions (``reg``, the objectives) are those of
    POT's ``ot.smooth.smooth_ot_dual`` / ``smooth_ot_semi_dual`` with ``reg_type="l2"`` or
    ``"sparsity_constrained"`` (``max_nz=k``).

    Parameters
    ----------
    a, b : array_like, shapes (n,) and (m,)
        Marginals: non-negative, finite, equal total masses (relative 1e-6; ``b`` is then
        rescaled onto ``sum(a)``). ``None`` or ``[]``: uniform.
    M : array_like, shape (n, m)
        Cost matrix, finite, dense.
    k : int
        Nonzeros allowed per column, ``>= 1`` (values above ``n`` mean ``n``).
    reg : float
        Quadratic regularization, > 0.
    dual : {"semi", "dual"}
        Maximize the semi-dual over ``alpha`` (column sums of the plan exact) or the dual over
        ``(alpha, beta)`` (with ``beta`` eliminated exactly, above; column sums exact to
        rounding).
    tol : float, optional
        Bound on ``||P 1 - a||_1 + ||P^T 1 - b||_1`` **of the returned plan** (the L1 norm of
        the objective's gradient); ``success`` is True exactly when it holds. Default
        ``1e-9 * sum(a)`` in float64, ``1e-5 * sum(a)`` in float32. For ``k < n`` the
        relaxation's plan need not meet the marginals: the run may then end with status 4,
        or 2 when no plan with at most ``k`` nonzeros per column can (``k * m < n`` positive
        rows, a column heavier than the ``k`` largest rows, or ``k = 1`` with equal ``b_j``
        and row masses that are not multiples of them).
    maxiter : int
        L-BFGS iterations.
    memory : int
        L-BFGS memory (pairs kept).
    callback : callable, optional
        ``callback(intermediate_result)`` every ``check_every`` iterations with ``nit``,
        ``marginal_error``, ``alpha`` and ``fun`` (:math:`S(\alpha) = \max_\beta D(\alpha,
        \beta)`); ``StopIteration`` stops the run (status 99).
    check_every : int
        Iterations between callbacks and progress lines.
    disp : bool
        Print one line per check.
    workers : int, optional
        Threads (``None`` or -1: all cores). Results are bit-identical for any value.
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` when ``tol`` is not met.

    Returns
    -------
    SparseOTResult

    Raises
    ------
    ValueError
        Bad weights, shapes, non-finite ``M``, ``k < 1``, ``reg <= 0``, unknown ``dual``.
    TypeError
        Non-integer ``k``, complex data, a sparse ``M``.

    Notes
    -----
    One objective evaluation costs one pass over ``M`` (transposed once to column order) with
    a partial selection per column: O(n m) plus O(k log k) per column. Dual variables are kept
    in float64; float32 inputs give a float32 plan.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(20, 2)), rng.normal(size=(30, 2))
    >>> M = ((x[:, None] - y[None]) ** 2).sum(-1)
    >>> res = optcore.ot.sparse_ot(np.full(20, 1 / 20), np.full(30, 1 / 30), M, k=4, reg=0.1)
    >>> bool(res.success), int(np.diff(res.plan.indptr).max()) <= 4
    (True, True)
    """
    if not isinstance(dual, str) or dual not in _DUALS:
        raise ValueError(f"unknown dual {dual!r}; choose one of {list(_DUALS)}.")
    k = positive_int(k, "k")
    checks.arguments(M, reg, None, None)
    reg = positive_scalar(reg, "reg")
    Ma = checks.native(as_float_array(M, "M"))
    if Ma.ndim != 2:
        raise ValueError(f"`M` must be a 2-D cost matrix of shape (len(a), len(b)); got shape {Ma.shape}.")
    n, m = Ma.shape
    aa = checks.weights(a, "a", n)
    bb = checks.weights(b, "b", m)
    if aa.shape != (n,) or bb.shape != (m,):
        raise ValueError(f"`a` and `b` must have shapes ({n},) and ({m},) to match `M`; got {aa.shape} and {bb.shape}.")
    checks.check_weights(aa, "a", np)
    checks.check_weights(bb, "b", np)
    check_finite(Ma, "M")
    dtype = working_dtype(aa, bb, Ma)
    checks.check_overflow(float(Ma.min()), float(Ma.max()), reg, dtype)
    mass = float(aa.sum(dtype=np.float64))
    scale = checks.check_masses(mass, float(bb.sum(dtype=np.float64)), lambda _: "`b`")
    if scale is not None:
        bb = bb.astype(np.float64) * scale[0]
    tol = default_tol(dtype) * mass if tol is None else positive_scalar(tol, "tol")
    maxiter = positive_int(maxiter, "maxiter", minimum=0)
    memory = positive_int(memory, "memory")
    check_every = positive_int(check_every, "check_every")
    workers = normalize_workers(workers)

    def build(state: dict) -> SparseOTResult:
        return SparseOTResult(
            nit=state["nit"], marginal_error=state["error"], alpha=state.get("alpha"), fun=state.get("fun")
        )

    progress = Progress(callback, disp, build, f"optcore.ot.sparse_ot(k={k}, dual={dual!r}), n={n}, m={m}")
    opts = {"k": k, "reg": reg, "dual": dual, "tol": tol, "maxiter": maxiter, "memory": memory}
    run = {"progress": progress if progress.active else None, "check_every": check_every, "workers": workers}
    fn = getattr(_core, "sparse_ot_f32" if dtype == np.float32 else "sparse_ot_f64")
    c = lambda x: np.ascontiguousarray(x, dtype=dtype)  # noqa: E731
    out = fn(c(aa), c(bb), c(Ma), opts, run)
    plan = scipy.sparse.csc_array((out["data"], out["indices"], out["indptr"]), shape=(n, m))
    err = float(out["marginal_error"])
    status = int(out["status"])
    gap, why = _sparsity_gap(aa, bb, k) if status in (1, 4) and k < n else (0.0, "")
    if gap > tol:
        status = 2
    elif status in (1, 4) and k == 1:
        why = (
            "with k = 1 the semi-dual (which dual='dual' maximises with beta eliminated) is unregularized OT's, "
            "piecewise linear (`reg` only adds a constant): "
            "L-BFGS needs many iterations to land on a vertex whose plan meets the marginals; "
            "raise maxiter, or use k >= 2"
        )
    elif status in (1, 4) and k < n:
        why = (
            "the objective has kinks where a column's top-k support changes; when k binds, its optimum sits on "
            "them and the plan of one support need not meet the marginals (the relaxation's solution mixes "
            "k-sparse plans), so more iterations rarely help: a larger k does"
        )
    messages = {
        0: f"Converged: marginal error {err:.3g} <= tol {tol:g} on the returned plan.",
        1: f"Iteration limit reached: marginal error {err:.3g} > tol {tol:g}" + (f" ({why})." if why else "."),
        2: (
            f"Infeasible: a plan with at most {k} nonzeros per column cannot meet the marginals ({why}): "
            f"its marginal error is at least {gap:.3g} > tol {tol:g}; the returned plan (error {err:.3g}) "
            "is the relaxation's."
        ),
        4: f"Stopped: {out.get('detail', '')}; marginal error {err:.3g} > tol {tol:g}" + (f" ({why})." if why else "."),
        99: "`callback` raised `StopIteration`.",
    }
    res = SparseOTResult(
        x=plan,
        plan=plan,
        fun=float(out["dual_value"]),
        primal=float(out["primal"]),
        cost=float(out["cost"]),
        marginal_error=err,
        alpha=np.asarray(out["alpha"]),
        beta=np.asarray(out["beta"]) if dual == "dual" else None,
        nit=int(out["nit"]),
        nfev=int(out["nfev"]),
        status=status,
        message=messages.get(status, ""),
        k=k,
        reg=reg,
        dual=dual,
        tol=tol,
    )
    finish(res, "optcore.ot.sparse_ot", progress=progress, warn=warn, warn_statuses=(1, 2, 4), stacklevel=3)
    return res


def _sparsity_gap(a: np.ndarray, b: np.ndarray, k: int) -> tuple[float, str]:
    """A lower bound on ``||T 1 - a||_1 + ||T^T 1 - b||_1`` over every plan ``T >= 0`` with at
    most ``k`` nonzeros per column, and the reason for it (0 and "" when none is found).

    Three arguments, each a proof for every such plan:

    - rows: at most ``k`` nonzeros per positive column leave ``n+ - k m+`` positive rows empty
      (``n+``, ``m+`` the counts of positive ``a_i``, ``b_j``; a zero column is all zero or its
      entries count in full), each missing all of its ``a_i``;
    - columns: column ``j`` puts ``b_j`` on ``k`` rows, so a row receives more than its
      ``a_i`` unless ``b_j <= `` the sum of the ``k`` largest ``a_i``;
    - ``k = 1`` with equal positive ``b_j = c``: a row receives a whole number of columns, each
      off ``c`` by what it moves, so row ``i`` is off by at least the distance of ``a_i`` to the
      multiples of ``c`` (triangle inequality).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    apos, bpos = np.sort(a[a > 0]), b[b > 0]
    best, why = 0.0, ""
    empty = apos.size - k * bpos.size
    if empty > 0:
        gap = float(apos[:empty].sum())
        if gap > best:
            best = gap
            why = f"{apos.size} rows of positive mass need more than {k} x {bpos.size} nonzeros"
    top = float(apos[::-1][:k].sum())
    if bpos.size and float(bpos.max()) - top > best:
        best = float(bpos.max()) - top
        why = f"a column of mass {float(bpos.max()):.6g} exceeds the {k} largest row masses ({top:.6g})"
    if k == 1 and bpos.size == b.size and b.size and np.all(b == b[0]):
        c = float(b[0])
        q = a / c
        gap = float((np.abs(q - np.round(q)) * c).sum())
        if gap > best:
            best = gap
            why = f"with k = 1 every row mass must be a whole number of column masses ({c:.6g})"
    return best, why


def smooth_ot(a, b, M, reg, *, dual: str = "semi", **kwargs) -> SparseOTResult:
    r"""Quadratically regularized optimal transport:
    :math:`\min_{T \in U(a, b)} \langle T, M\rangle + \frac{\mathrm{reg}}{2}\|T\|^2`.

    :func:`sparse_ot` with no sparsity constraint (``k = n``); same keyword arguments. The
    plan is sparse by itself (entries ``[alpha_i + beta_j - M_ij]_+ / reg``). Matches POT's
    ``ot.smooth.smooth_ot_dual`` / ``smooth_ot_semi_dual`` with ``reg_type="l2"``.

    Parameters
    ----------
    a, b : array_like
        Source and target weights (equal masses).
    M : array_like, shape (n, m)
        Cost matrix.
    reg : float
        Weight of the quadratic regularization, > 0.
    dual : {"semi", "dual"}
        Optimize the semi-dual (``alpha`` only) or the dual (``alpha`` and ``beta``).
    **kwargs
        ``tol``, ``maxiter``, ``callback``, ``check_every``, ``disp``, ``workers``, ``warn`` as
        :func:`sparse_ot` takes them.

    Returns
    -------
    SparseOTResult
        The plan (sparse), the objective, the measured marginal error.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> res = optcore.ot.smooth_ot([0.5, 0.5], [0.5, 0.5], np.array([[0.0, 1.0], [1.0, 0.0]]), reg=0.1)
    >>> bool(res.success), np.round(res.plan.toarray(), 3).tolist()
    (True, [[0.5, 0.0], [0.0, 0.5]])
    """
    Ma = as_float_array(M, "M") if M is not None else None
    if Ma is None or Ma.ndim != 2:
        raise ValueError("`M` must be a 2-D cost matrix of shape (len(a), len(b)).")
    return sparse_ot(a, b, Ma, max(Ma.shape[0], 1), reg, dual=dual, **kwargs)
