"""The ask/tell interface (:class:`Optimizer`) and the one-shot gradient estimate built on it."""

from __future__ import annotations

import concurrent.futures

import numpy as np

from .. import _core
from .._result import finish
from .._validation import normalize_workers
from ..exceptions import NumericalError
from ._config import _config, _point, _x0
from ._minimize import ZOResult
from ._objective import batched
from ._objective import ranking as ranking_of
from ._objective import told_values as values_of
from .functions import TestFunction

__all__ = ["Optimizer", "gradient"]


class Optimizer:
    """Ask/tell interface to every method of :func:`minimize`.

    >>> import numpy as np
    >>> from optcore import zo
    >>> opt = zo.Optimizer("sphere", np.ones(5), rng=0)
    >>> for _ in range(200):
    ...     X = opt.ask()                      # (batch_size, d)
    ...     opt.tell(X, (X ** 2).sum(1))       # values in the order of X
    >>> bool(opt.best[1] < 1e-6)
    True

    The constructor takes ``method``, ``x0`` and the keywords ``bounds``, ``rng``, ``lr``,
    ``mu``, ``q``, ``xtol``, ``nan_as_inf`` and ``options`` of :func:`minimize`, with the same
    defaults. ``tell`` with NaN values (without ``nan_as_inf``) raises
    :class:`~optcore.NumericalError`; the state stays usable (the batch is still pending).
    ``"rank"`` takes a ranking instead: :meth:`tell_ranking`.

    Parameters
    ----------
    method : str
        A method of :func:`minimize` (:data:`METHODS`); default ``"sphere"``.
    x0 : array_like, shape (d,)
        The starting point (required), finite; projected onto ``bounds``.
    bounds : None, scipy.optimize.Bounds, (lb, ub) or sequence of (lo, hi)
        Box constraints, as in :func:`minimize`: every asked point lies in them.
    rng : None, int or numpy.random.Generator
        Seeds the directions (and CBO's particles): the same seed asks the same batches.
    lr, mu : float, optional
        Step size (default: the adaptive rule) and smoothing radius of the perturbations
        ``x + mu u`` (default ``sqrt(eps) max(1, |x0|_inf)``, forward differences).
    q : int, optional
        Directions per batch of the random estimators (default ``min(10, d)``).
    xtol : float, optional
        The step criterion of :meth:`result` (default 1e-10 in float64, 1e-6 in float32).
    nan_as_inf : bool
        Treat told NaN values as ``+inf`` instead of raising.
    options : dict, optional
        The method's constants, as in :func:`minimize`.

    Attributes
    ----------
    x : ndarray
        The current iterate (CBO: the consensus point).
    best : tuple of (ndarray, float)
        The best point told and its value.
    gradient : ndarray
        The last gradient estimate.
    batch_size, nit, nfev : int
        Points per batch, batches told, and points told.
    lr : float
        The current step size.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import zo
    >>> f_batch = lambda X: ((X - 1.0) ** 2).sum(axis=1)
    >>> opt = zo.Optimizer(method="sphere", x0=np.zeros(4), rng=0)
    >>> for _ in range(300):
    ...     X = opt.ask()  # evaluate these points however you like (a cluster, a lab)
    ...     opt.tell(X, f_batch(X))
    >>> x_best, best = opt.best
    >>> bool(best < 1e-3)
    True
    """

    def __init__(
        self,
        method: str = "sphere",
        x0=None,
        *,
        bounds=None,
        rng=None,
        lr=None,
        mu=None,
        q=None,
        xtol=None,
        nan_as_inf: bool = False,
        options: dict | None = None,
    ):
        if x0 is None:
            raise ValueError("`x0` is required: the starting point, a 1-D array.")
        x = _x0(x0)
        self.method = method.lower() if isinstance(method, str) else method
        cfg = _config(
            method, x, bounds=bounds, rng=rng, lr=lr, mu=mu, q=q, xtol=xtol, nan_as_inf=nan_as_inf, options=options
        )
        self._state = _core.ZoState(x, cfg)
        self._asked = None

    @property
    def batch_size(self) -> int:
        return self._state.batch_size

    def ask(self) -> np.ndarray:
        """The next batch, shape ``(batch_size, d)`` (the same until it is told)."""
        self._asked = self._state.ask()
        return self._asked.copy()

    def _check_batch(self, X) -> None:
        if self._asked is None:
            raise ValueError("tell() needs a batch from ask() first.")
        X = np.asarray(X)
        if X.shape != self._asked.shape or not np.array_equal(X, self._asked):
            raise ValueError("`X` must be the batch returned by the last ask() (values are matched to its rows).")

    def tell(self, X, values) -> None:
        """The values of the asked batch ``X``, in its row order."""
        self._check_batch(X)
        try:
            self._state.tell(values_of(values, self._asked.shape[0]))
        except NumericalError as exc:  # a NaN among the told values (nan_as_inf=False)
            raise NumericalError(f"`values`: {exc}") from None
        self._asked = None

    def tell_ranking(self, X, ranking) -> None:
        """``"rank"``: the indices of the ``k`` best rows of ``X``, best first."""
        self._check_batch(X)
        self._state.tell_ranking([int(i) for i in ranking_of(ranking, self._asked.shape[0], "ranking")])
        self._asked = None

    @property
    def x(self) -> np.ndarray:
        """The current iterate (CBO: the consensus point)."""
        return self._state.x

    @property
    def best(self) -> tuple[np.ndarray, float]:
        """``(best point told, its value)``."""
        return self._state.best

    @property
    def gradient(self) -> np.ndarray:
        """The last gradient estimate (gradient methods and ``"rank"``)."""
        return self._state.gradient

    @property
    def history(self) -> np.ndarray:
        return self._state.history

    @property
    def nit(self) -> int:
        return self._state.nit

    @property
    def nfev(self) -> int:
        return self._state.nfev

    @property
    def lr(self) -> float:
        return self._state.lr

    def result(self) -> ZOResult:
        """The state as a :class:`ZOResult` (status 0 when the ``xtol`` criterion holds, else 1)."""
        x, f = self.best
        status = 0 if self._state.converged else 1
        msg = "Converged: the last steps were below xtol." if status == 0 else "Running (ask/tell)."
        if self._state.collapsed:
            msg = "The particles collapsed (spread below xtol): CBO makes no more progress; not a convergence test."
        if status == 0 and not np.isfinite(f):
            status, msg = 4, f"The iterate stopped moving but the best value is {f} (no finite value was told)."
        res = ZOResult(
            x=x if np.isfinite(f) else self.x,
            fun=f,
            x_last=self.x,
            nfev=self.nfev,
            nit=self.nit,
            status=status,
            message=msg,
            history=self.history,
            method=self.method,
        )
        return finish(res, "optcore.zo.Optimizer", warn=False)


def gradient(
    fun,
    x,
    *,
    method: str = "gaussian",
    q: int | None = None,
    mu: float | None = None,
    scheme: str = "forward",
    n_coords: int | None = None,
    rng=None,
    vectorized: bool = False,
    workers: int | None = None,
) -> np.ndarray:
    """One zeroth-order gradient estimate of ``fun`` at ``x`` (float64).

    ``method`` is ``"gaussian"`` (``(1/q) sum c_i u_i``, ``u_i ~ N(0, I)``: unbiased for the
    gradient of ``f_mu(x) = E f(x + mu u)``), ``"sphere"`` (``(d/q) sum c_i u_i``, ``u_i``
    uniform on the unit sphere) or ``"cge"`` (``c_j`` on ``n_coords`` coordinates, default
    all: the finite-difference gradient), with ``c = (f(x + mu u) - f(x)) / mu`` (forward) or
    ``(f(x + mu u) - f(x - mu u)) / (2 mu)`` (central). Defaults as in :func:`minimize`.
    ``workers`` is as in :func:`minimize`: threads for a native test function's rows, or a
    thread pool for a per-point Python ``fun`` (None: all cores for a native function, calls
    in this thread for a Python one); the estimate is the same whatever ``workers`` is.

    Parameters
    ----------
    fun : callable or optcore.zo.functions.TestFunction
        ``fun(x) -> float`` (or ``fun(X) -> (B,)`` with ``vectorized=True``).
    x : array_like, shape (d,)
        Where to estimate the gradient; ``fun`` must be finite at ``x`` and around it.
    method : {"gaussian", "sphere", "cge"}
        The estimator (above).
    q : int, optional
        Random directions (``"gaussian"``, ``"sphere"``; default ``min(10, d)``).
    mu : float, optional
        Finite-difference step (default ``sqrt(eps) max(1, |x|_inf)`` forward,
        ``eps^(1/3) max(1, |x|_inf)`` central).
    scheme : {"forward", "central"}
        One-sided or central differences (the module docs give the evaluations each costs).
    n_coords : int, optional
        ``"cge"``: the number of random coordinates (default all ``d``).
    rng : None, int or numpy.random.Generator
        Seeds the directions: the same seed gives the same estimate.
    vectorized : bool
        ``fun`` takes the whole batch of probe points in one call.
    workers : int, optional
        See above.

    Returns
    -------
    ndarray, shape (d,)
        The estimate, float64.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import zo
    >>> g = zo.gradient(lambda x: float(x @ x), np.array([1.0, -2.0]), method="cge", scheme="central")
    >>> np.round(g, 6)
    array([ 2., -4.])
    """
    if not (callable(fun) or isinstance(fun, TestFunction)):
        raise TypeError(f"`fun` must be callable or an optcore.zo.functions test function; got {type(fun).__name__}.")
    if method not in ("gaussian", "sphere", "cge"):
        raise ValueError(f"`method` must be 'gaussian', 'sphere' or 'cge'; got {method!r}.")
    x = _point(x, "x")
    opts = {"scheme": scheme}
    if n_coords is not None:
        opts["n_coords"] = n_coords
    w = normalize_workers(workers)
    opt = Optimizer(method, x, rng=rng, mu=mu, q=q, lr=0.0, options=opts)
    X = opt.ask()
    if isinstance(fun, TestFunction):
        V = fun(X, workers=w)
    elif not vectorized and w is not None and w > 1:
        with concurrent.futures.ThreadPoolExecutor(w) as pool:
            V = batched(fun, False, pool)(X)
    else:
        V = batched(fun, vectorized, None)(X)
    try:
        opt._state.tell(np.asarray(V, dtype=np.float64))
    except NumericalError as exc:
        # A finite difference needs finite values at and around `x`: the point is the input to fix.
        raise ValueError(
            f"`fun` is not finite at `x` or at the probe points around it ({exc}); pass an `x` where `fun` is "
            "finite (and a smaller `mu`)."
        ) from None
    return opt.gradient
