"""Result objects (SciPy's ``OptimizeResult``, with optcore's status table)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import OptimizeResult as _ScipyResult

__all__ = ["OptimizeResult", "OTResult", "STATUS_MESSAGES", "finish"]

#: The project's status codes, shared by every solver.
STATUS_MESSAGES = {
    0: "Converged: the tolerance holds on the returned result.",
    1: "Iteration limit reached before the tolerance was met.",
    2: "The problem is infeasible.",
    3: "The problem is unbounded.",
    4: "Numerical breakdown.",
    99: "`callback` raised `StopIteration`.",
}


class OptimizeResult(_ScipyResult):
    """Result of an optcore solver: a ``dict`` with attribute access.

    Every solver sets ``x``, ``fun``, ``success``, ``status``, ``message`` and ``nit``.
    ``status`` is 0 (converged), 1 (iteration/time/evaluation limit), 2 (infeasible),
    3 (unbounded), 4 (numerical breakdown) or 99 (stopped by the callback).

    Attributes
    ----------
    x : ndarray
        The solution.
    fun : float
        The objective at ``x``.
    success : bool
        True exactly when the criterion that ``tol`` names holds, measured on what is returned.
    status : int
        The code above.
    message : str
        Why the run ended, with the measured error.
    nit : int
        Iterations.

    Examples
    --------
    >>> import optcore
    >>> res = optcore.linprog([1.0, 2.0], A_ub=[[-1.0, -1.0]], b_ub=[-1.0])
    >>> isinstance(res, optcore.OptimizeResult), res.status, res["success"], round(res.fun, 6)
    (True, 0, True, 1.0)
    """

    x: np.ndarray
    fun: float
    success: bool
    status: int
    message: str
    nit: int


class OTResult(OptimizeResult):
    """Result of an entropic optimal transport solve.

    Attributes
    ----------
    plan, x : ndarray
        The transport plan ``P`` (``x`` is the same array, SciPy's name). With ``k`` target
        histograms, shape ``(k, n, m)``.
    f, g : ndarray
        Dual potentials in the units of ``M``: ``P_ij = exp((f_i + g_j - M_ij) / reg)``;
        ``-inf`` where a weight is zero. With ``k`` histograms, shapes ``(k, n)``, ``(k, m)``.
    cost : float or ndarray
        The transport cost ``<P, M>``.
    fun : float or ndarray
        The entropic objective ``<P, M> + reg * sum_ij P_ij log P_ij`` (``0 log 0 = 0``).
    marginal_error : float or ndarray
        ``||P 1 - a||_1 + ||P^T 1 - b||_1`` measured on the returned plan.
    nit : int
        Sinkhorn iterations (one update of ``f`` and one of ``g`` each), over all stages.
    success, status, message
        ``success`` is True exactly when ``marginal_error <= tol``.
    method, reg, tol
        What was solved.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> res = optcore.ot.sinkhorn([0.5, 0.5], [0.5, 0.5], np.array([[0.0, 1.0], [1.0, 0.0]]), reg=0.1)
    >>> type(res).__name__, bool(res.marginal_error <= res.tol), res.plan.shape
    ('OTResult', True, (2, 2))
    """

    plan: np.ndarray
    f: np.ndarray
    g: np.ndarray
    cost: float
    marginal_error: float


def finish(
    res: OptimizeResult, solver: str, *, progress=None, warn: bool = True, warn_statuses=(1, 4), stacklevel: int = 3
) -> OptimizeResult:
    """The last step every solver shares.

    Sets ``res.success`` from ``res.status`` (``success`` is exactly status 0), fills a missing
    ``message`` from :data:`STATUS_MESSAGES`, hands the final result to ``progress`` (the
    callback/disp bridge, which prints the last line), and warns
    :class:`~optcore.ConvergenceWarning` prefixed with ``solver`` when ``warn`` is true and the
    status is one of ``warn_statuses``. ``stacklevel`` is counted from the public function
    that calls ``finish`` (3: the user's line, when the public function calls ``finish``
    directly).
    """
    from .exceptions import ConvergenceWarning

    status = int(res["status"])
    res["status"] = status
    res["success"] = status == 0
    if not res.get("message"):
        res["message"] = STATUS_MESSAGES.get(status, "Stopped.")
    if progress is not None:
        progress.finish(res)
    if warn and status in warn_statuses:
        warnings.warn(f"{solver}: {res['message']}", ConvergenceWarning, stacklevel=stacklevel)
    return res
