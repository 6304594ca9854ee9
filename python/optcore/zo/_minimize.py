"""``optcore.zo.minimize`` and its result class."""

from __future__ import annotations

import concurrent.futures
import numbers

import numpy as np

from .. import _core
from .._progress import Progress
from .._result import STATUS_MESSAGES, OptimizeResult, finish
from .._validation import normalize_workers, positive_int
from ._config import _config, _x0
from ._objective import batched
from ._transport import TRANSPORT_OPTIONS, SeedCoordinator
from .functions import TestFunction

__all__ = ["ZOResult", "minimize"]


class ZOResult(OptimizeResult):
    """Result of :func:`minimize` and :func:`rank_minimize`.

    Attributes
    ----------
    x : ndarray
        The best point evaluated (the dtype of ``x0``). :func:`rank_minimize`, which sees no
        values: the last iterate.
    fun : float
        Its value (``nan`` for :func:`rank_minimize`).
    x_last : ndarray
        The last iterate (``"cbo"``: the last consensus point).
    nfev, nit : int
        Evaluations (points evaluated or ranked) and iterations (batches).
    history : ndarray, shape (n, 2)
        The best-so-far trace: ``(evaluations, best value)`` at every improvement.
    success, status, message
        ``status`` 0: a finite value ``<= f_target`` was evaluated, or (not CBO) the ``xtol``
        criterion holds with a finite best value (the message says which); 1: ``maxfev`` or
        ``maxiter`` reached, or (CBO) the particles collapsed (``res.message`` says so: a
        collapse is not convergence, the consensus may stall anywhere); 4: the objective
        returned NaN (see ``nan_as_inf``) or ``-inf``, the estimate was not finite, or the
        steps stalled with no finite value seen; 99: stopped by the callback.
    method : str
    transport : dict
        Only with ``transport="seeds"``: ``bytes_per_iteration`` (the pickled messages sent
        in each iteration; the first one carries ``fun`` and ``x0``), ``shares``, and the
        fault counters ``desyncs`` (replicas whose digest differed from the coordinator's,
        then rebuilt), ``catch_ups`` (replicas that missed more iterations than a message
        carries and were sent the values from where they were), ``rebuilds`` (replicas built
        from ``x0`` and the log of values: new or restarted workers), ``lost_tasks`` and
        ``local_shares`` (shares the coordinator evaluated itself); ``last_desync`` says why the
        last desynchronised replica was rebuilt (``None``: none was).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import zo
    >>> res = zo.minimize(zo.functions.sphere, np.ones(3), rng=0, f_target=1e-10)
    >>> type(res).__name__, res.status, bool(res.fun <= 1e-10), bool(res.history[-1, 1] == res.fun)
    ('ZOResult', 0, True, True)
    """

    x_last: np.ndarray
    nfev: int
    history: np.ndarray


def _f_target(value) -> float:
    """``f_target`` as a float: a real number, ``±inf`` allowed (``None``: no target)."""
    if value is None:
        return -np.inf
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`f_target` must be a real number or None; got {type(value).__name__}.")
    try:
        v = float(value)
    except OverflowError:  # an int beyond the float range: a target above (below) every value
        v = np.inf if value > 0 else -np.inf
    if np.isnan(v):
        raise ValueError("`f_target` must not be NaN.")
    return v


def _message(status: int, out: dict, maxfev: int, maxiter: int, f_target: float, xtol: float) -> str:
    if status == 0:
        if out["fun"] <= f_target:
            return f"Converged: f = {out['fun']:.6e} <= f_target = {f_target:g}."
        return (
            f"Converged (xtol criterion): the iterate moved by at most xtol * max(1, |x|_inf) (xtol = {xtol:g}) "
            f"in 3 consecutive iterations; f = {out['fun']:.6e}. This says the steps stalled, not that f is minimal."
        )
    if status == 1 and out.get("collapsed"):
        return (
            f"Stopped: the particles collapsed (spread around the consensus <= xtol * max(1, |x|_inf), xtol = {xtol:g}, "
            f"for 3 iterations) at f = {out['fun']:.6e}; CBO can make no more progress. This is not a convergence "
            "test: set f_target, or use more particles or variant='hopping'."
        )
    if status == 1:
        if out["nit"] >= maxiter:
            return f"Iteration limit reached (maxiter = {maxiter})."
        return f"Evaluation budget reached: {out['nfev']} evaluations (maxfev = {maxfev}) before another batch."
    if status == 4:
        return f"Numerical breakdown: {out['detail']}"
    return STATUS_MESSAGES.get(status, "Stopped.")


def minimize(
    fun,
    x0,
    *,
    method: str = "gaussian",
    bounds=None,
    maxfev: int | None = None,
    maxiter: int | None = None,
    f_target: float | None = None,
    xtol: float | None = None,
    lr: float | None = None,
    mu: float | None = None,
    q: int | None = None,
    rng=None,
    vectorized: bool = False,
    executor=None,
    transport: str = "points",
    transport_options: dict | None = None,
    workers: int | None = None,
    nan_as_inf: bool = False,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    warn: bool = True,
    options: dict | None = None,
) -> ZOResult:
    """Minimise ``fun`` from function values only.

    Parameters
    ----------
    fun : callable or optcore.zo.functions.TestFunction
        ``fun(x) -> float`` for ``x`` of shape ``(d,)``; with ``vectorized=True``,
        ``fun(X) -> (B,)`` for a batch ``X`` of shape ``(B, d)``. Points have the dtype of
        ``x0``. A native test function (:mod:`optcore.zo.functions`) runs the whole loop in
        Rust.
    x0 : array_like, shape (d,)
        Starting point (CBO: the center of the initial particles), finite; projected onto
        ``bounds``. float32 stays float32 (points, iterates and ``res.x``); other real dtypes
        become float64.
    method : str
        See :data:`METHODS` and the module docs. Default ``"gaussian"``.
    bounds : None, scipy.optimize.Bounds, (lb, ub) or sequence of (lo, hi)
        Box constraints: ``f`` is only called inside them, and ``res.x``/``x_last`` lie in
        them. Iterates and CBO particles are projected onto the box; a perturbed point of a
        forward difference that leaves it is replaced by its reflection ``x - mu u`` (a
        one-sided difference the other way) when that lies inside, else it is clipped onto
        the box (central differences: clipped). Lower bounds must be ``< +inf``, upper
        bounds ``> -inf``. ``lb``/``ub`` may be scalars or arrays; a 2 x 2
        nested sequence is read as SciPy's ``d`` pairs (use ``Bounds`` for arrays at d = 2).
    maxfev : int
        Evaluation budget (default ``2000 d``); no batch is started that would exceed it.
    maxiter : int
        Iteration (batch) limit (default: none).
    f_target : float
        Stop (status 0) once a value ``<= f_target`` was evaluated.
    xtol : float
        Stop (status 0) once the iterate moved by at most ``xtol * max(1, |x|_inf)`` in three
        consecutive iterations. CBO: stop with status 1 once the particles' spread around the
        consensus stayed below that for three iterations (a collapse; see ``status``).
        Default 1e-10 (float64), 1e-6 (float32); 0 turns it off.
    lr : float
        A fixed step size (``x <- P(x - lr g)``; signSGD: ``lr sign(g)``; AdaMM:
        ``lr m / sqrt(v_hat)``). Default: the adaptive rule of the Notes. ``"rank"``: the
        step length (default ``0.1 max(1, |x0|_inf)``).
    mu : float
        Smoothing radius (the perturbations are ``x + mu u``). Default: the classic
        finite-difference choice ``sqrt(eps) max(1, |x0|_inf)`` for forward and
        ``eps^(1/3) max(1, |x0|_inf)`` for central differences (``eps`` of ``x0``'s dtype:
        1.5e-8 / 6.1e-6 in float64); ``"rank"``: ``0.01 max(1, |x0|_inf)``. Raise it for
        noisy objectives.
    q : int
        Directions per step of the random estimators (default ``min(10, d)``).
    rng : None, int or numpy.random.Generator
        Seeds the run (a 64-bit seed drawn from ``numpy.random.default_rng(rng)``). The same
        seed gives the same run whatever ``workers`` or ``executor``.
    vectorized : bool
        ``fun`` takes a whole batch (one call per iteration).
    executor : concurrent.futures.Executor, optional
        Evaluate the points of a batch with ``executor.map(fun, rows)`` (thread or process
        pools, ``dask.distributed.Client.get_executor()``, ...); results are gathered in order.
    transport : {"points", "seeds"}
        What travels to the ``executor`` (and what memory the run takes). ``"points"``
        (default): every point of a batch is sent to be evaluated (``d`` floats per
        evaluation); a per-point ``fun`` without an executor gets the points one at a time,
        each generated straight into the array ``fun`` receives (memory: see
        :mod:`optcore.zo`). ``"seeds"`` (MeZO's and "Just One Byte (per gradient)"'s
        shared-seed idea): each worker receives ``fun`` and ``x0`` once (by pickle: ``fun``
        must be picklable unless the executor is a thread pool), keeps a replica of the
        state, regenerates its share of the points from the seed and returns their values;
        per iteration only scalars travel, and every replica applies the coordinator's own
        update, so the result is bit-identical to ``transport="points"`` with the same
        ``rng``. Methods ``"gaussian"``, ``"sphere"``, ``"cge"``, ``"signsgd"``, ``"adamm"``,
        ``"perturbed"`` and ``"rank"``; not ``"cbo"``, whose particles move by a consensus of
        all of them (each particle is state that would travel anyway). Needs an ``executor``
        (or ``workers > 1``: a thread pool) and a per-point ``fun``. ``res.transport`` has
        the bytes sent per iteration and the fault counters.
    transport_options : dict, optional
        ``transport="seeds"``: ``sync_every`` (10: every that many iterations the replicas
        compare a digest of their state with the coordinator's and rebuild on a mismatch),
        ``shares`` (tasks per iteration; default the executor's worker count), ``window``
        (8: the iterations of values each message carries, so that a replica that missed
        some catches up without a round trip), ``retries`` (3: resubmissions of a lost task
        before the coordinator evaluates it itself).
    workers : int, optional
        Threads: for a native test function, the rows of a batch are spread over them; for a
        per-point Python ``fun``, a thread pool of that size is used as ``executor``.
    nan_as_inf : bool
        Treat NaN values as ``+inf`` (a failed evaluation). Otherwise NaN ends the run
        (status 4, with the best point so far). An infinite value at the iterate counts as a
        failed step of the adaptive rule; at a perturbed point, the iteration is skipped and
        fresh directions are drawn; at the starting point of a gradient method, it ends the
        run (status 4). CBO gives infinite values zero weight.
    callback : callable, optional
        ``callback(intermediate_result)`` every ``check_every`` iterations with ``x`` (best
        point), ``fun``, ``nit``, ``nfev``; ``StopIteration`` stops the run (status 99).
    check_every : int
    disp : bool
        Print one line per check (iteration, best value, time).
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` on status 1 and 4.
    options : dict
        Method-specific constants (:data:`METHODS`); unknown keys raise ``ValueError``.

        - gradient methods: ``scheme`` (``"forward"``, or ``"central"``: default of
          ``"perturbed"``), ``step0`` (first step length of the adaptive rule, default
          ``0.1 max(1, |x0|_inf)``), ``lr_grow`` (1.25), ``lr_shrink`` (0.5);
          ``"gaussian"``/``"sphere"``/``"cge"``: ``momentum`` (heavy ball
          ``v <- momentum v + g``, ``x <- P(x - lr v)``, with ``v`` reset whenever the adaptive
          rule takes a step back; default 0: plain steps; 0.9 helps on ill-conditioned smooth
          problems, see the benchmark);
          ``"cge"``: ``n_coords`` (coordinates per step, default ``d``);
          ``"signsgd"``/``"adamm"``: ``directions`` (``"sphere"`` or ``"gaussian"``);
          ``"adamm"``: ``beta1`` (0.9), ``beta2`` (0.999), ``eps`` (1e-12);
          ``"perturbed"``: ``perturbation`` (the radius ``r`` of ``Y ~ N(0, r^2/d I)`` added
          to each estimate; default 0 means ``1e-3 |g_0|``, or ``1e-3 max(1, |f(x0)|) /
          max(1, |x0|_inf)`` when ``g_0 = 0``).
        - ``"cbo"``: ``particles`` (50), ``alpha`` (1e3), ``lambda`` (1), ``dt`` (0.1),
          ``noise`` (``"anisotropic"`` or ``"isotropic"``), ``sigma`` (see Notes),
          ``variant`` (``"standard"`` or ``"hopping"``), ``sigma_decay`` (hopping: 0.98 per
          step), ``init_std`` (``0.25 x`` the mean width of finite bounds, else
          ``max(1, |x0|_inf)``).
        - ``"rank"``: ``m`` (8 points per query), ``k`` (``m``: a full ranking), ``decay``
          (``lr <- decay lr`` per step, default 1).

    Returns
    -------
    ZOResult
        ``x`` (best point evaluated), ``fun``, ``nfev``, ``nit``, ``success``, ``status``,
        ``message``, ``history`` (best-so-far trace), ``x_last``, ``method``.

    Raises
    ------
    ValueError
        Bad ``x0``, ``bounds``, ``method``, ``options`` or budgets (naming the argument); an
        objective returning the wrong shape.
    TypeError
        ``fun`` not callable or returning non-numbers.
        Any exception raised by ``fun`` propagates unchanged.

    Notes
    -----
    **Step sizes.** Every batch of a gradient method evaluates the current iterate (the
    "center") and its perturbations. Without ``lr``, the first step has length ``step0``; a
    step after which ``f`` decreased at the next center multiplies the step size by
    ``lr_grow``; one after which it increased is taken back, the step size is multiplied by
    ``lr_shrink``, and fresh directions are drawn at the previous point. So ``f`` at the
    iterates never increases, and no Lipschitz constant is needed. (For the Gaussian
    estimator with ``q = 1`` on an ``L``-smooth ``f``, Nesterov–Spokoiny's fixed step is
    ``lr = 1 / (4 (d + 4) L)``.) With random coordinate subsets (``"cge"`` with
    ``n_coords < d``) a step may fail because the subset holds no useful coordinate; pass a
    fixed ``lr`` there (as DeepZero does).

    **CBO.** ``sigma`` defaults to the value that shrinks the particles' expected squared
    spread by 5% per step, ``(1 - lambda dt)^2 + sigma^2 dt = 0.95`` (isotropic noise:
    ``sigma^2 d dt``); the consensus uses weights ``exp(-alpha (f_i - min f))``.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import zo
    >>> f = lambda x: float(np.sum((x - 1.0) ** 2))  # values only, no gradient
    >>> res = zo.minimize(f, np.zeros(5), method="cge", rng=0, f_target=1e-10)
    >>> res.success, np.round(res.x, 4), bool(res.fun <= 1e-10)
    (True, array([1., 1., 1., 1., 1.]), True)
    """
    if isinstance(fun, TestFunction):
        native = fun.native
    elif callable(fun):
        native = None
    else:
        raise TypeError(f"`fun` must be callable or an optcore.zo.functions test function; got {type(fun).__name__}.")
    x = _x0(x0)
    d = x.size
    cfg = _config(
        method, x, bounds=bounds, rng=rng, lr=lr, mu=mu, q=q, xtol=xtol, nan_as_inf=nan_as_inf, options=options
    )
    method = method.lower()
    state = _core.ZoState(x, cfg)
    B = state.batch_size
    # Budgets beyond 2**62 are unlimited in practice (and must fit the core's 64-bit counters).
    maxfev = 2000 * d if maxfev is None else min(positive_int(maxfev, "maxfev"), 2**62)
    if maxfev < B:
        raise ValueError(f"`maxfev` = {maxfev} is less than one batch of method={method!r} ({B} evaluations).")
    maxiter = 2**62 if maxiter is None else min(positive_int(maxiter, "maxiter"), 2**62)
    f_target = _f_target(f_target)
    check_every = positive_int(check_every, "check_every")
    w = normalize_workers(workers)
    if executor is not None and not isinstance(executor, concurrent.futures.Executor) and not hasattr(executor, "map"):
        raise TypeError(
            f"`executor` must be a concurrent.futures.Executor (or have .map); got {type(executor).__name__}."
        )
    if executor is not None and (vectorized or native is not None):
        raise ValueError(
            "`executor` applies to a per-point Python `fun` (not with vectorized=True or a native function)."
        )
    if transport not in ("points", "seeds"):
        raise ValueError(f"`transport` must be 'points' or 'seeds'; got {transport!r}.")
    if transport_options is not None and not isinstance(transport_options, dict):
        raise TypeError(f"`transport_options` must be a dict; got {type(transport_options).__name__}.")
    unknown = sorted(set(transport_options or {}) - set(TRANSPORT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown transport_options {unknown}; valid keys: {sorted(TRANSPORT_OPTIONS)}.")
    topts = {**TRANSPORT_OPTIONS, **(transport_options or {})}
    if transport == "seeds":
        if method == "cbo":
            raise ValueError(
                "transport='seeds' does not apply to method='cbo': its particles move by a consensus of all of them, "
                "so each one is state that would travel anyway; use transport='points'."
            )
        if vectorized or native is not None:
            raise ValueError("transport='seeds' takes a per-point Python `fun` (not vectorized=True or a native one).")
        if executor is None and not (w is not None and w > 1):
            raise ValueError("transport='seeds' needs an `executor` (or workers > 1 for a thread pool).")
        for key in ("sync_every", "window"):
            topts[key] = positive_int(topts[key], f"transport_options[{key!r}]")
        topts["retries"] = positive_int(topts["retries"], "transport_options['retries']", minimum=0)
        if topts["shares"] is not None:
            topts["shares"] = positive_int(topts["shares"], "transport_options['shares']")
        if executor is not None and not hasattr(executor, "submit"):
            raise TypeError("transport='seeds' needs an executor with .submit (a concurrent.futures.Executor).")

    def build(s: dict) -> ZOResult:
        return ZOResult(x=s["x"], fun=s["error"], nit=s["nit"], nfev=int(s["nfev"]), method=method)

    progress = Progress(callback, disp, build, f"optcore.zo.minimize(method={method!r}), d = {d}, batch {B}")
    prog = progress if progress.active else None
    pool = None
    if native is None and not vectorized and executor is None and w is not None and w > 1:
        pool = executor = concurrent.futures.ThreadPoolExecutor(w)
    coordinator = None
    try:
        run = {"progress": prog, "check_every": check_every, "workers": w if native is not None else None}
        limits = (maxfev, maxiter, f_target)
        if transport == "seeds":
            # The last iteration the budgets allow (no batch is started past maxfev).
            last = min(maxiter, maxfev // B) - 1
            coordinator = SeedCoordinator(fun, x, cfg, executor, B, topts, last=last)
            try:
                out = state.run_seeds(coordinator, topts["sync_every"], limits, run)
            finally:
                coordinator.close()
        else:
            objective = None if native is not None else batched(fun, vectorized, executor)
            # A per-point fun evaluated here gets one point at a time (memory O(d), not O(B d)).
            per_point = native is None and not vectorized and executor is None
            out = state.run(objective, native, limits, run, per_point)
    finally:
        if pool is not None:
            pool.shutdown()
    status = int(out["status"])
    message = _message(status, out, maxfev, maxiter, f_target, cfg["xtol"])
    res = ZOResult(
        x=out["x"],
        fun=float(out["fun"]),
        x_last=out["x_last"],
        nfev=int(out["nfev"]),
        nit=int(out["nit"]),
        status=status,
        message=message,
        history=out["history"],
        method=method,
    )
    if coordinator is not None:
        res["transport"] = coordinator.summary()
    return finish(res, "optcore.zo.minimize", progress=progress, warn=warn)
