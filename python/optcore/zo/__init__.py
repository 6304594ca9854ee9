"""Zeroth-order (derivative-free) optimisation with a Rust core and batched evaluation.

>>> import numpy as np
>>> from optcore import zo
>>> res = zo.minimize(zo.functions.sphere, np.full(10, 3.0), method="gaussian", rng=0, f_target=1e-8)
>>> bool(res.success), res.fun <= 1e-8
(True, True)
>>> res = zo.minimize(lambda X: (X ** 2).sum(1), np.ones(4), method="cbo", vectorized=True, rng=0, warn=False)
>>> res.nfev, bool(res.fun < 0.1)      # CBO: a global method, not a precise one
(8000, True)

Methods (``method=``; options in :data:`METHODS`):

``"gaussian"``, ``"sphere"``
    Two-point estimators with ``q`` Gaussian / uniform-sphere directions per step, forward
    (``1 + q`` evaluations) or central (``1 + 2q``) differences, then a gradient step.
``"cge"``
    Coordinate-wise finite differences (all ``d`` coordinates, or DeepZero's random subsets of
    ``n_coords``).
``"signsgd"``, ``"adamm"``
    ZO-signSGD and ZO-AdaMM on the sphere estimator.
``"perturbed"``
    Central two-point sphere estimator plus an isotropic perturbation (saddle escape).
``"cbo"``
    Consensus-based optimisation (isotropic or anisotropic noise, log-sum-exp consensus,
    ``variant="hopping"`` for consensus hopping).
``"rank"``
    ZO-RankSGD from values (:func:`minimize`) or from a ranking oracle (:func:`rank_minimize`).
"""

from __future__ import annotations

import concurrent.futures
import warnings

import numpy as np

from .. import _core
from .._progress import Progress
from .._result import STATUS_MESSAGES, OptimizeResult
from .._validation import (
    as_float_array,
    check_finite,
    check_options,
    nonnegative_scalar,
    normalize_workers,
    positive_int,
    positive_scalar,
)
from ..exceptions import ConvergenceWarning
from . import functions
from .functions import TestFunction

__all__ = [
    "minimize",
    "rank_minimize",
    "gradient",
    "Optimizer",
    "ZOResult",
    "ranking_oracle",
    "functions",
    "METHODS",
]

_GRADIENT_OPTS = ("scheme", "lr_grow", "lr_shrink", "step0")
#: The methods and their ``options`` keys (every constant of a method is an option).
METHODS = {
    "gaussian": (*_GRADIENT_OPTS, "momentum"),
    "sphere": (*_GRADIENT_OPTS, "momentum"),
    "cge": (*_GRADIENT_OPTS, "momentum", "n_coords"),
    "signsgd": (*_GRADIENT_OPTS, "directions"),
    "adamm": (*_GRADIENT_OPTS, "directions", "beta1", "beta2", "eps"),
    "perturbed": (*_GRADIENT_OPTS, "perturbation"),
    "cbo": ("particles", "alpha", "lambda", "sigma", "dt", "noise", "variant", "sigma_decay", "init_std"),
    "rank": ("m", "k", "decay"),
}


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
        ``status`` 0: ``f_target`` reached or the ``xtol`` criterion holds; 1: ``maxfev`` or
        ``maxiter`` reached; 4: the objective returned NaN (see ``nan_as_inf``) or the estimate
        was not finite; 99: stopped by the callback.
    method : str
    """

    x_last: np.ndarray
    nfev: int
    history: np.ndarray


def _scale(x: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(x))))


def _normalize_bounds(bounds, d: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.full(d, -np.inf), np.full(d, np.inf)
    if bounds is None:
        return lo, hi
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):  # scipy.optimize.Bounds
        lb, ub = bounds.lb, bounds.ub
    else:
        try:
            arr = np.asarray(bounds, dtype=object)
        except Exception:
            arr = None
        if arr is not None and arr.ndim == 2 and arr.shape == (d, 2):  # [(lo, hi), ...]
            lb = [-np.inf if b[0] is None else b[0] for b in bounds]
            ub = [np.inf if b[1] is None else b[1] for b in bounds]
        elif arr is not None and len(arr) == 2:  # (lb, ub), scalars or arrays
            lb, ub = bounds
            lb = -np.inf if lb is None else lb
            ub = np.inf if ub is None else ub
        else:
            raise ValueError(
                "`bounds` must be None, a scipy.optimize.Bounds, a pair (lb, ub) of scalars or arrays, "
                f"or a sequence of d = {d} (lo, hi) pairs."
            )
    try:
        lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), (d,)).copy()
        ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), (d,)).copy()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"`bounds` must give d = {d} lower and upper bounds: {exc}") from None
    if np.isnan(lb).any() or np.isnan(ub).any() or (lb > ub).any():
        raise ValueError("`bounds` must satisfy lower <= upper with no NaN.")
    return lb, ub


def _seed(rng) -> int:
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError("`rng` must be None, an int or a numpy.random.Generator; got bool.")
    try:
        gen = np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"`rng` must be None, an int or a numpy.random.Generator: {exc}") from None
    return int(gen.integers(0, 2**64, dtype=np.uint64))


def _opt_int(opts, key, default, minimum=1):
    v = opts.get(key, default)
    return positive_int(v, f"options[{key!r}]", minimum=minimum)


def _opt_choice(opts, key, default, choices):
    v = opts.get(key, default)
    if v not in choices:
        raise ValueError(f"options[{key!r}] must be one of {list(choices)}; got {v!r}.")
    return v


def _config(method, x, *, bounds, rng, lr, mu, q, xtol, nan_as_inf, options) -> dict:
    """Every constant of a run, defaults resolved (see the Notes of :func:`minimize`)."""
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    method = method.lower()
    opts = check_options(options, METHODS[method], method)
    d = x.size
    dtype = x.dtype
    eps = float(np.finfo(dtype).eps)
    scale = _scale(x)
    lower, upper = _normalize_bounds(bounds, d, dtype)
    cfg = {
        "lower": lower.tolist(),
        "upper": upper.tolist(),
        "seed": _seed(rng),
        "nan_as_inf": bool(nan_as_inf),
        "xtol": (1e-10 if dtype == np.float64 else 1e-6) if xtol is None else nonnegative_scalar(xtol, "xtol"),
        "lr": None if lr is None else nonnegative_scalar(lr, "lr"),
        "step0": 0.1 * scale,
        "grow": 1.25,
        "shrink": 0.5,
    }
    if method in ("cbo", "rank"):
        if q is not None:
            raise ValueError(f"`q` does not apply to method={method!r}.")
    if method == "cbo":
        if mu is not None or lr is not None:
            raise ValueError("`mu` and `lr` do not apply to method='cbo' (see its options).")
        finite = np.isfinite(lower).all() and np.isfinite(upper).all()
        init_std = 0.25 * float(np.mean(upper - lower)) if finite else scale
        noise = _opt_choice(opts, "noise", "anisotropic", ("anisotropic", "isotropic"))
        variant = _opt_choice(opts, "variant", "standard", ("standard", "hopping"))
        lam = positive_scalar(opts.get("lambda", 1.0), "options['lambda']")
        dt = positive_scalar(opts.get("dt", 0.1), "options['dt']")
        init_std = positive_scalar(opts.get("init_std", init_std), "options['init_std']")
        if variant == "hopping":
            sigma = init_std
        else:
            # The expected squared spread shrinks by 5% per step:
            # (1 - lam dt)^2 + sigma^2 dt (x d if isotropic) = 0.95.
            s2 = max(0.95 - (1 - lam * dt) ** 2, 1e-3) / dt
            sigma = float(np.sqrt(s2 / (d if noise == "isotropic" else 1)))
        cfg.update(
            kind="cbo",
            particles=_opt_int(opts, "particles", 50),
            alpha=positive_scalar(opts.get("alpha", 1e3), "options['alpha']"),
            **{"lambda": lam},
            sigma=positive_scalar(opts.get("sigma", sigma), "options['sigma']"),
            dt=dt,
            noise=noise,
            hopping=variant == "hopping",
            sigma_decay=positive_scalar(opts.get("sigma_decay", 0.98 if variant == "hopping" else 1.0),
                                        "options['sigma_decay']"),
            init_std=init_std,
        )
        return cfg
    if method == "rank":
        m = _opt_int(opts, "m", 8, minimum=2)
        k = _opt_int(opts, "k", m)
        if k > m:
            raise ValueError(f"options['k'] must be <= options['m'] = {m}; got {k}.")
        cfg.update(
            kind="rank", m=m, k=k,
            mu=0.01 * scale if mu is None else positive_scalar(mu, "mu"),
            decay=positive_scalar(opts.get("decay", 1.0), "options['decay']"),
        )
        if lr is None:
            cfg["lr"] = 0.1 * scale
        return cfg
    # gradient methods
    scheme = _opt_choice(opts, "scheme", "central" if method == "perturbed" else "forward", ("forward", "central"))
    if mu is None:
        mu = (np.sqrt(eps) if scheme == "forward" else eps ** (1 / 3)) * scale
    mu = positive_scalar(mu, "mu")
    directions = {"gaussian": "gaussian", "sphere": "sphere", "cge": "coordinates", "perturbed": "sphere"}.get(method)
    if directions is None:
        directions = _opt_choice(opts, "directions", "sphere", ("sphere", "gaussian"))
    if method == "cge" and q is not None:
        raise ValueError("method='cge' takes options['n_coords'] (coordinates per step), not `q`.")
    q = positive_int(min(10, d) if q is None else q, "q")
    momentum = nonnegative_scalar(opts.get("momentum", 0.0), "options['momentum']")
    if not momentum < 1:
        raise ValueError(f"options['momentum'] must be in [0, 1); got {momentum!r}.")
    cfg.update(
        kind="gradient",
        directions=directions,
        scheme=scheme,
        q=q,
        n_coords=_opt_int(opts, "n_coords", d) if method == "cge" else 0,
        mu=mu,
        update={"signsgd": "sign", "adamm": "adamm"}.get(method, "momentum" if momentum > 0 else "plain"),
        momentum=momentum,
        beta1=nonnegative_scalar(opts.get("beta1", 0.9), "options['beta1']"),
        beta2=nonnegative_scalar(opts.get("beta2", 0.999), "options['beta2']"),
        eps=nonnegative_scalar(opts.get("eps", 1e-12), "options['eps']"),
        perturbation=nonnegative_scalar(opts.get("perturbation", 0.0), "options['perturbation']")
        if method == "perturbed" else None,
    )
    if not (cfg["beta1"] < 1 and cfg["beta2"] < 1):
        raise ValueError("options['beta1'] and options['beta2'] must be in [0, 1).")
    cfg["step0"] = positive_scalar(opts.get("step0", cfg["step0"]), "options['step0']")
    cfg["grow"] = positive_scalar(opts.get("lr_grow", 1.25), "options['lr_grow']")
    cfg["shrink"] = positive_scalar(opts.get("lr_shrink", 0.5), "options['lr_shrink']")
    if not (cfg["grow"] >= 1 and cfg["shrink"] < 1):
        raise ValueError("options['lr_grow'] must be >= 1 and options['lr_shrink'] < 1.")
    return cfg


def _x0(x0) -> np.ndarray:
    x = as_float_array(x0, "x0")
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"`x0` must be a non-empty 1-D array; got shape {x.shape}.")
    check_finite(x, "x0")
    return np.ascontiguousarray(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)


def _values(y, B: int) -> np.ndarray:
    try:
        v = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`fun` must return real numbers: {exc}") from None
    if v.shape != (B,):
        raise ValueError(
            f"`fun` with vectorized=True must return an array of shape ({B},) for a batch of shape ({B}, d); "
            f"got shape {v.shape}."
        )
    return v


def _scalar(y) -> float:
    try:
        v = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`fun` must return a real number: {exc}") from None
    if v.size != 1:
        raise ValueError(f"`fun` must return a scalar for a point of shape (d,); got an array of shape {v.shape}.")
    return float(v.reshape(()))


def _batched(fun, vectorized: bool, executor):
    """The user's objective as ``X (B, d) -> (B,) float64``: one call on the batch
    (``vectorized``), one call per row through ``executor.map`` (results gathered in order),
    or one call per row here."""
    if vectorized:
        return lambda X: _values(fun(X), X.shape[0])
    if executor is not None:
        return lambda X: np.array([_scalar(y) for y in executor.map(fun, list(X))], dtype=np.float64)
    return lambda X: np.array([_scalar(fun(x)) for x in X], dtype=np.float64)


def _message(status: int, out: dict, maxfev: int, maxiter: int, f_target: float) -> str:
    if status == 0:
        if out["fun"] <= f_target:
            return f"Converged: f = {out['fun']:.6e} <= f_target = {f_target:g}."
        return "Converged: the last steps (CBO: the particles' spread) were below xtol."
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
        Box constraints; iterates are projected onto them (the estimators' perturbed points
        may lie up to ``mu |u|`` outside). ``lb``/``ub`` may be scalars or arrays; a 2 x 2
        nested sequence is read as SciPy's ``d`` pairs (use ``Bounds`` for arrays at d = 2).
    maxfev : int
        Evaluation budget (default ``2000 d``); no batch is started that would exceed it.
    maxiter : int
        Iteration (batch) limit (default: none).
    f_target : float
        Stop (status 0) once a value ``<= f_target`` was evaluated.
    xtol : float
        Stop (status 0) once the iterate moved by at most ``xtol * max(1, |x|_inf)`` in three
        consecutive iterations (CBO: the particles' spread around the consensus). Default
        1e-10 (float64), 1e-6 (float32); 0 turns it off.
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
    """
    if isinstance(fun, TestFunction):
        native = fun.native
    elif callable(fun):
        native = None
    else:
        raise TypeError(f"`fun` must be callable or an optcore.zo.functions test function; got {type(fun).__name__}.")
    x = _x0(x0)
    d = x.size
    cfg = _config(method, x, bounds=bounds, rng=rng, lr=lr, mu=mu, q=q, xtol=xtol, nan_as_inf=nan_as_inf,
                  options=options)
    method = method.lower()
    state = _core.ZoState(x, cfg)
    B = state.batch_size
    maxfev = 2000 * d if maxfev is None else positive_int(maxfev, "maxfev")
    if maxfev < B:
        raise ValueError(f"`maxfev` = {maxfev} is less than one batch of method={method!r} ({B} evaluations).")
    maxiter = 2**62 if maxiter is None else positive_int(maxiter, "maxiter")
    f_target = -np.inf if f_target is None else float(f_target)
    if np.isnan(f_target):
        raise ValueError("`f_target` must not be NaN.")
    check_every = positive_int(check_every, "check_every")
    w = normalize_workers(workers)
    if executor is not None and not isinstance(executor, concurrent.futures.Executor) and not hasattr(executor, "map"):
        raise TypeError(f"`executor` must be a concurrent.futures.Executor (or have .map); got {type(executor).__name__}.")
    if executor is not None and (vectorized or native is not None):
        raise ValueError("`executor` applies to a per-point Python `fun` (not with vectorized=True or a native function).")

    def build(s: dict) -> ZOResult:
        return ZOResult(x=s["x"], fun=s["error"], nit=s["nit"], nfev=int(s["nfev"]), method=method)

    progress = Progress(callback, disp, build, f"optcore.zo.minimize(method={method!r}), d = {d}, batch {B}")
    prog = progress if progress.active else None
    pool = None
    if native is None and not vectorized and executor is None and w is not None and w > 1:
        pool = executor = concurrent.futures.ThreadPoolExecutor(w)
    try:
        objective = None if native is not None else _batched(fun, vectorized, executor)
        out = state.run(objective, native, maxfev, maxiter, f_target, prog, check_every,
                        w if native is not None else None)
    finally:
        if pool is not None:
            pool.shutdown()
    status = int(out["status"])
    message = _message(status, out, maxfev, maxiter, f_target)
    res = ZOResult(
        x=out["x"], fun=float(out["fun"]), x_last=out["x_last"], nfev=int(out["nfev"]), nit=int(out["nit"]),
        success=status == 0, status=status, message=message, history=out["history"], method=method,
    )
    progress.finish(res)
    if warn and status in (1, 4):
        warnings.warn(f"optcore.zo.minimize: {message}", ConvergenceWarning, stacklevel=2)
    return res


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
    """

    def __init__(self, method: str = "sphere", x0=None, *, bounds=None, rng=None, lr=None, mu=None, q=None,
                 xtol=None, nan_as_inf: bool = False, options: dict | None = None):
        if x0 is None:
            raise ValueError("`x0` is required: the starting point, a 1-D array.")
        x = _x0(x0)
        self.method = method.lower() if isinstance(method, str) else method
        cfg = _config(method, x, bounds=bounds, rng=rng, lr=lr, mu=mu, q=q, xtol=xtol, nan_as_inf=nan_as_inf,
                      options=options)
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
        self._state.tell(_values(values, self._asked.shape[0]))
        self._asked = None

    def tell_ranking(self, X, ranking) -> None:
        """``"rank"``: the indices of the ``k`` best rows of ``X``, best first."""
        self._check_batch(X)
        self._state.tell_ranking([int(i) for i in _ranking(ranking)])
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
        return ZOResult(x=x if np.isfinite(f) else self.x, fun=f, x_last=self.x, nfev=self.nfev, nit=self.nit,
                        success=status == 0, status=status, message=msg, history=self.history, method=self.method)


def _ranking(r):
    arr = np.asarray(r)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"a ranking must be a 1-D sequence of integer indices; got {r!r}.")
    return arr


def gradient(fun, x, *, method: str = "gaussian", q: int | None = None, mu: float | None = None,
             scheme: str = "forward", n_coords: int | None = None, rng=None, vectorized: bool = False) -> np.ndarray:
    """One zeroth-order gradient estimate of ``fun`` at ``x`` (float64).

    ``method`` is ``"gaussian"`` (``(1/q) sum c_i u_i``, ``u_i ~ N(0, I)``: unbiased for the
    gradient of ``f_mu(x) = E f(x + mu u)``), ``"sphere"`` (``(d/q) sum c_i u_i``, ``u_i``
    uniform on the unit sphere) or ``"cge"`` (``c_j`` on ``n_coords`` coordinates, default
    all: the finite-difference gradient), with ``c = (f(x + mu u) - f(x)) / mu`` (forward) or
    ``(f(x + mu u) - f(x - mu u)) / (2 mu)`` (central). Defaults as in :func:`minimize`.
    """
    if method not in ("gaussian", "sphere", "cge"):
        raise ValueError(f"`method` must be 'gaussian', 'sphere' or 'cge'; got {method!r}.")
    opts = {"scheme": scheme}
    if n_coords is not None:
        opts["n_coords"] = n_coords
    opt = Optimizer(method, x, rng=rng, mu=mu, q=q, lr=0.0, options=opts)
    X = opt.ask()
    f = _batched(fun, vectorized, None) if not isinstance(fun, TestFunction) else (lambda X: fun(X))
    opt.tell(X, f(X))
    return opt.gradient


def ranking_oracle(fun, k: int | None = None, vectorized: bool = False):
    """A simulated ``(m, k)`` ranking oracle from values: ``oracle(X)`` returns the indices of
    the ``k`` rows of ``X`` with the smallest ``fun`` (all rows when ``k`` is None), best first."""
    f = fun if isinstance(fun, TestFunction) else _batched(fun, vectorized, None)

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
    """
    if not callable(rank_oracle):
        raise TypeError(f"`rank_oracle` must be callable; got {type(rank_oracle).__name__}.")
    m = positive_int(m, "m", minimum=2)
    k = m if k is None else positive_int(k, "k")
    if k > m:
        raise ValueError(f"`k` must be <= m = {m}; got {k}.")
    maxiter = positive_int(maxiter, "maxiter")
    check_every = positive_int(check_every, "check_every")
    opt = Optimizer("rank", x0, bounds=bounds, rng=rng, lr=lr, mu=mu, xtol=xtol,
                    options={"m": m, "k": k, "decay": positive_scalar(decay, "decay")})

    def build(s: dict) -> ZOResult:
        return ZOResult(x=s["x"], fun=np.nan, nit=s["nit"], nfev=s["nfev"], method="rank")

    progress = Progress(callback, disp, build, f"optcore.zo.rank_minimize(m={m}, k={k}), d = {opt.x.size}")
    status = 1
    while opt.nit < maxiter:
        X = opt.ask()
        r = _ranking(rank_oracle(X.copy()))
        if r.shape != (k,):
            raise ValueError(f"`rank_oracle` must return the indices of the k = {k} best rows, best first; got {r!r}.")
        opt.tell_ranking(X, r)
        if opt._state.converged:
            status = 0
            break
        if progress.active and opt.nit % check_every == 0:
            if not progress({"nit": opt.nit, "error": np.nan, "x": opt.x, "nfev": opt.nfev}):
                status = 99
                break
    msg = {0: "Converged: the step fell below xtol.", 1: f"Iteration limit reached (maxiter = {maxiter})."}.get(
        status, STATUS_MESSAGES[99])
    res = ZOResult(x=opt.x, fun=np.nan, x_last=opt.x, nfev=opt.nfev, nit=opt.nit, success=status == 0,
                   status=status, message=msg, history=np.empty((0, 2)), method="rank")
    progress.finish(res)
    if warn and status == 1:
        warnings.warn(f"optcore.zo.rank_minimize: {msg}", ConvergenceWarning, stacklevel=2)
    return res

