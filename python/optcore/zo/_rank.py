"""ZO-RankSGD from a ranking oracle (:func:`rank_minimize`) and the simulated oracle
(:func:`ranking_oracle`)."""

from __future__ import annotations

import numpy as np

from .._progress import Progress
from .._result import STATUS_MESSAGES, finish
from .._validation import positive_int, positive_scalar
from ._ask_tell import Optimizer
from ._minimize import ZOResult
from ._objective import batched, ranking
from .functions import TestFunction

__all__ = ["rank_minimize", "ranking_oracle"]


def ranking_oracle(fun, k: int | None = None, vectorized: bool = False):
    """A simulated ``(m, k)`` ranking oracle from values: ``oracle(X)`` returns the indices of
    the ``k`` rows of ``X`` with the smallest ``fun`` (all rows when ``k`` is None), best first.

    Parameters
    ----------
    fun : callable or optcore.zo.functions.TestFunction
        The objective, as in :func:`minimize` (one point at a time, or a ``(B, d)`` stack with
        ``vectorized=True``, or a native test function).
    k : int, optional
        How many of the best rows the oracle returns (default: all of them).
    vectorized : bool
        ``fun`` maps a ``(B, d)`` stack to ``(B,)`` values in one call.

    Returns
    -------
    callable
        ``oracle(X) -> ndarray of int``: indices of the ``k`` best rows of ``X``, best first,
        ready for :func:`rank_minimize` or :meth:`Optimizer.tell_ranking`.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import zo
    >>> oracle = zo.ranking_oracle(lambda X: (X**2).sum(axis=1), k=2, vectorized=True)
    >>> oracle(np.array([[3.0], [1.0], [2.0]]))
    array([1, 2])
    """
    f = fun if isinstance(fun, TestFunction) else batched(fun, vectorized, None)

    def oracle(X):
        v = np.asarray(f(X), dtype=np.float64)
        order = np.argsort(v, kind="stable")
        return order if k is None else order[:k]

    return oracle


def rank_minimize(
    rank_oracle,
    x0,
    *,
    m: int = 8,
    k: int | None = None,
    maxiter: int = 1000,
    lr: float | None = None,
    mu: float | None = None,
    decay: float = 1.0,
    bounds=None,
    xtol: float | None = None,
    rng=None,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    warn: bool = True,
) -> ZOResult:
    """ZO-RankSGD (Tang et al., ICLR 2024) from an ``(m, k)`` ranking oracle.

    Each iteration draws ``xi_1..xi_m ~ N(0, I)``, asks ``rank_oracle(X)`` for the indices of
    the ``k`` best rows of ``X = x + mu xi`` (shape ``(m, d)``), best first, and steps
    ``x <- P(x - lr g / |g|)`` along the paper's estimate
    ``g = (1/|E|) sum_{(i better than j) in E} (xi_j - xi_i)`` over the ranking graph ``E``
    (the top-``k`` pairs and each top-``k`` point over each unranked one), assembled in closed
    form in ``O(m d)``. ``lr`` (default ``0.1 max(1, |x0|_inf)``) is multiplied by ``decay``
    after every step; ``mu`` defaults to ``0.01 max(1, |x0|_inf)``. ``k`` defaults to ``m``.

    Returns a :class:`ZOResult` with ``x`` the last iterate, ``fun = nan`` (no values are
    seen), ``nit`` oracle calls and ``nfev = m nit`` points ranked. Status 0 when the step
    fell below ``xtol``, 1 at ``maxiter``, 99 when the callback stopped the run. Exceptions of
    ``rank_oracle`` propagate; a ranking that is not ``k`` distinct indices in ``range(m)``
    raises ``ValueError``.

    Parameters
    ----------
    rank_oracle : callable
        ``rank_oracle(X) -> indices``: for ``X`` of shape ``(m, d)``, the indices of its ``k``
        best rows, best first (for example :func:`ranking_oracle`, or a person's choices).
    x0 : array_like, shape (d,)
        Starting point.
    m : int
        Points per query (``>= 2``; default 8).
    k : int, optional
        Rows ranked per query (``<= m``; default ``m``, a full ranking).
    maxiter : int
        Oracle calls (default 1000).
    lr, mu : float, optional
        Step length and perturbation radius (defaults above).
    decay : float
        ``lr <- decay lr`` after every step (default 1: constant).
    bounds : optional
        Box constraints, as in :func:`minimize` (the iterates and queried points lie in them).
    xtol : float, optional
        Stop (status 0) once the steps fall below it, as in :func:`minimize` (0: never).
    rng : None, int or numpy.random.Generator
        Seeds the perturbations.
    callback : callable, optional
        ``callback(intermediate_result)`` every ``check_every`` iterations with ``x``, ``nit``
        and ``nfev``; ``StopIteration`` stops the run (status 99).
    check_every : int
    disp : bool
        Print progress (about one line per second).
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` on status 1 and 4.

    Returns
    -------
    ZOResult
        As described above (``fun`` is NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import zo
    >>> f_batch = lambda X: ((X - 1.0) ** 2).sum(axis=1)
    >>> oracle = zo.ranking_oracle(f_batch, k=3, vectorized=True)  # only the order of the 3 best
    >>> res = zo.rank_minimize(oracle, np.zeros(5), m=8, k=3, maxiter=500, decay=0.995, rng=0, warn=False)
    >>> bool(f_batch(res.x[None])[0] < 1e-2)
    True
    """
    if not callable(rank_oracle):
        raise TypeError(f"`rank_oracle` must be callable; got {type(rank_oracle).__name__}.")
    m = positive_int(m, "m", minimum=2)
    k = m if k is None else positive_int(k, "k")
    if k > m:
        raise ValueError(f"`k` must be <= m = {m}; got {k}.")
    maxiter = min(positive_int(maxiter, "maxiter"), 2**62)
    check_every = positive_int(check_every, "check_every")
    opt = Optimizer(
        "rank",
        x0,
        bounds=bounds,
        rng=rng,
        lr=lr,
        mu=mu,
        xtol=xtol,
        options={"m": m, "k": k, "decay": positive_scalar(decay, "decay")},
    )

    def build(s: dict) -> ZOResult:
        return ZOResult(x=s["x"], fun=np.nan, nit=s["nit"], nfev=s["nfev"], method="rank")

    progress = Progress(callback, disp, build, f"optcore.zo.rank_minimize(m={m}, k={k}), d = {opt.x.size}")
    status = 1
    x_ok = opt.x  # the last finite iterate (what a run that overflows returns)
    while opt.nit < maxiter:
        X = opt.ask()
        r = ranking(rank_oracle(X.copy()), m)
        if r.shape != (k,):
            raise ValueError(f"`rank_oracle` must return the indices of the k = {k} best rows, best first; got {r!r}.")
        opt.tell_ranking(X, r)
        if not np.all(np.isfinite(opt.x)):
            status = 4
            break
        x_ok = opt.x
        if opt._state.converged:
            status = 0
            break
        if progress.active and opt.nit % check_every == 0:
            if not progress({"nit": opt.nit, "error": np.nan, "x": opt.x, "nfev": opt.nfev}):
                status = 99
                break
    msg = {
        0: "Converged: the step fell below xtol.",
        1: f"Iteration limit reached (maxiter = {maxiter}).",
        4: f"The iterate overflowed (non-finite) at iteration {opt.nit}; the last finite iterate is returned. "
        "Reduce lr (or mu), or start from a smaller x0.",
    }.get(status, STATUS_MESSAGES[99])
    res = ZOResult(
        x=x_ok,
        fun=np.nan,
        x_last=opt.x,
        nfev=opt.nfev,
        nit=opt.nit,
        status=status,
        message=msg,
        history=np.empty((0, 2)),
        method="rank",
    )
    return finish(res, "optcore.zo.rank_minimize", progress=progress, warn=warn, warn_statuses=(1, 4))
