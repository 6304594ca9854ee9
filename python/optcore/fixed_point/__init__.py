"""Fixed points of nonexpansive maps by Halpern (anchored) iterations.

>>> import numpy as np, optcore
>>> from optcore.fixed_point import operators as ops
>>> T = ops.DouglasRachford(ops.Ball(np.zeros(3), 1.0), ops.Affine([[1.0, 1.0, 1.0]], [1.0]))
>>> res = optcore.fixed_point.halpern(T, np.array([3.0, -1.0, 2.0]), restart="adaptive")
>>> bool(res.success), res.residual <= 1e-8
(True, True)
>>> x = T.shadow(res.x)                  # the point of ball ∩ plane
>>> bool(abs(x.sum() - 1) < 1e-7 and np.linalg.norm(x) <= 1 + 1e-12)
True
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from .._progress import Progress
from .._result import STATUS_MESSAGES, OptimizeResult, finish
from .._validation import (
    as_float_array,
    check_finite,
    check_options,
    nonnegative_scalar,
    normalize_workers,
    positive_int,
    positive_scalar,
)
from . import operators
from .operators import Operator

__all__ = ["halpern", "FixedPointResult", "operators", "METHODS", "default_tol"]

#: The methods of :func:`halpern` and their ``options`` keys.
METHODS = {
    "halpern": ("restart_factor", "tol_disp", "min_disp_iter"),
    "km": ("relaxation", "tol_disp", "min_disp_iter"),
    "picard": ("tol_disp", "min_disp_iter"),
}


def default_tol(dtype) -> float:
    """The default ``tol`` of :func:`halpern`: 1e-8 in float64, 1e-5 in float32 (about what a
    float32 residual ``||x - T(x)||`` can resolve).

    Parameters
    ----------
    dtype : numpy dtype or type
        The working dtype of the run (that of ``x0``).

    Returns
    -------
    float
        The tolerance on ``||x - T(x)||_2`` that :func:`halpern` uses when ``tol`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import default_tol
    >>> default_tol(np.float64), default_tol(np.float32)
    (1e-08, 1e-05)
    """
    return 1e-8 if np.dtype(dtype) == np.float64 else 1e-5


class FixedPointResult(OptimizeResult):
    """Result of :func:`optcore.fixed_point.halpern`.

    Attributes
    ----------
    x : ndarray
        The returned iterate (the shape and dtype of ``x0``).
    residual, fun : float
        ``||x - T(x)||_2`` of the returned ``x`` (``fun`` is the same number). NaN when
        ``T(x)`` was not finite (status 4).
    initial_residual : float
        ``||x0 - T(x0)||_2``.
    nit, nfev : int
        Iterations, and applications of ``T`` (``nit + 1``, plus 5 per probed checkpoint of
        ``"halpern"``'s infeasibility detector: see Notes).
    restarts : int
        Re-anchorings done by ``restart="adaptive"``.
    displacement : ndarray or None
        With ``status == 2``: the estimate of the infimal displacement vector ``v`` (the
        least-norm element of the closure of the range of ``I - T``; nonzero exactly when ``T``
        has no fixed point). ``None`` otherwise.
    success, status, message
        ``status`` 0 converged, 1 iteration limit, 2 no fixed point detected, 4 ``T``
        returned non-finite values, 99 stopped by the callback.
    method : str
        The method that ran (``"halpern"``, ``"km"`` or ``"picard"``).

    Examples
    --------
    >>> import numpy as np, optcore
    >>> from optcore.fixed_point import operators as ops
    >>> T = ops.DouglasRachford(ops.Ball(np.zeros(2), 1.0), ops.Affine([[1.0, 1.0]], [1.0]))
    >>> res = optcore.fixed_point.halpern(T, np.array([3.0, -1.0]), restart="adaptive")
    >>> type(res).__name__, res.status, bool(res.residual <= 1e-8), res.nfev == res.nit + 1
    ('FixedPointResult', 0, True, True)
    """

    residual: float
    nfev: int
    displacement: np.ndarray | None


#: Counts (``maxiter``, ``check_every``, ``min_disp_iter``) above this are clamped to it: the
#: core counts in 64 bits, and no run gets near it.
_COUNT_MAX = 2**62


def _count(value, name: str, *, minimum: int = 1) -> int:
    """A non-negative integer option, clamped to ``_COUNT_MAX`` (a Python int of any size is
    accepted; bools, floats and strings are a ``TypeError`` naming ``name``)."""
    return positive_int(value, name, minimum=minimum, maximum=_COUNT_MAX, clamp=True)


def _norms(d: np.ndarray, axis=None) -> np.ndarray:
    """``||d||_2`` (along ``axis``) in float64, scaled by the largest magnitude so that entries
    of 1e200 do not overflow (the core's scaled norm)."""
    d = np.asarray(d, dtype=np.float64)
    big = np.max(np.abs(d), axis=axis, keepdims=True) if d.size else np.zeros((1,) * d.ndim)
    safe = np.where((big > 0) & np.isfinite(big), big, 1.0)
    out = np.sqrt(np.sum((d / safe) ** 2, axis=axis, keepdims=True)) * safe
    out = np.where(np.isfinite(big), out, big)
    return out.squeeze(axis) if axis is not None else out.reshape(())


def _wrap_callable(T, shape: tuple, dtype: np.dtype):
    """The user's ``T`` as a function on flat arrays of ``dtype``, checking what it returns."""

    def call(xflat: np.ndarray) -> np.ndarray:
        y = np.asarray(T(xflat.reshape(shape)))
        if y.shape != shape:
            raise ValueError(
                f"`T` returned an array of shape {y.shape}; it must return an array of the shape of x0, {shape}."
            )
        if y.dtype.kind not in "fiub":
            raise TypeError(f"`T` must return real numbers; it returned dtype {y.dtype}.")
        return np.ascontiguousarray(y, dtype=dtype).reshape(-1)

    return call


def halpern(
    T,
    x0,
    *,
    method: str = "halpern",
    tol: float | None = None,
    rtol: float = 0.0,
    maxiter: int = 10_000,
    restart: str | None = None,
    anchoring: float | None = None,
    vectorized: bool = False,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    warn: bool = True,
    workers: int | None = None,
    options: dict | None = None,
) -> FixedPointResult:
    r"""Find a fixed point ``x = T(x)`` of a nonexpansive map by Halpern iterations.

    Halpern's iteration anchors every step at ``x0``:

    .. math::
        x_{k+1} = \beta_k x_0 + (1 - \beta_k)\, T(x_k), \qquad \beta_k = \frac{1}{k + 2},

    which guarantees ``||x_k - T(x_k)|| <= 2 ||x0 - x*|| / (k + 1)`` for every fixed point
    ``x*`` (optimal among such methods) and converges to the fixed point nearest to ``x0``.
    Krasnosel'skii–Mann (``x_{k+1} = (1 - a) x_k + a T(x_k)``) and plain Picard iterations are
    available as baselines under the same API.

    Parameters
    ----------
    T : callable or optcore.fixed_point.operators.Operator
        The map. A native operator (``Box``, ``Ball``, ``Simplex``, ``Affine``,
        ``LinearResolvent``, their ``Compose`` / ``Average`` / ``reflect``,
        ``DouglasRachford``) runs the whole loop in Rust. A Python callable ``T(x)`` gets an
        array of the shape and dtype of ``x0`` and must return one of the same shape; it is
        called once per iteration.
    x0 : array_like
        Starting point and anchor, finite. float32 stays float32; other real dtypes become
        float64. With a native operator, a 1-D array of length ``T.dim``.
    method : {"halpern", "km", "picard"}
    tol, rtol : float
        Stop at the first iterate with ``||x_k - T(x_k)||_2 <= tol + rtol * ||x0 - T(x0)||_2``
        and return it: the bound holds on the returned ``x``. The norms are scaled (inputs of
        1e200 do not overflow them), and a non-finite residual or threshold never passes. ``tol`` is absolute (default
        :func:`default_tol`: 1e-8 in float64, 1e-5 in float32); ``rtol`` relative (default 0).
    maxiter : int
        Maximum number of iterations (``T`` is applied ``nit + 1`` times); values above 2**62
        are clamped to it.
    restart : {None, "adaptive"}
        ``"adaptive"`` (``method="halpern"`` only): re-anchor at the current iterate, and
        restart the schedule, whenever the residual has dropped below ``restart_factor``
        (``options``, default 0.2) times its value at the last anchor. Much faster when ``T``
        converges linearly (e.g. averaged linear maps, polyhedral feasibility problems).
    anchoring : float, optional
        ``c > 0`` for the schedule ``beta_k = c / (k + c + 1)``; ``None`` is ``c = 1``
        (``beta_k = 1/(k+2)``), the only value with the guarantee above.
    vectorized : bool
        ``x0`` of shape ``(B, d)`` holds ``B`` independent problems and the Python callable
        ``T`` maps a ``(B, d)`` stack to a ``(B, d)`` stack: one call per iteration serves all
        of them (e.g. a NumPy map applied row-wise, or a batched simulator). The problems run
        in lockstep, as one problem of size ``B d``: they share the anchoring schedule, the
        restarts and the stopping test, which is on the stacked residual ``||X - T(X)||_F``
        (so every row meets ``tol``). The result adds ``residuals``, each row's
        ``||x_b - T(x_b)||`` at the returned point (one more call of ``T``).
    callback : callable, optional
        ``callback(intermediate_result)`` every ``check_every`` iterations with a
        :class:`FixedPointResult` holding ``x``, ``residual`` and ``nit``; raising
        ``StopIteration`` stops the run and returns the current iterate with status 99.
    check_every : int
        Iterations between callbacks and progress lines (Ctrl-C is honoured within ~0.2 s).
    disp : bool
        Print one line per check (iteration, residual, time) and a summary.
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` on status 1 or 4.
    workers : int, optional
        Threads for the run (``None`` or ``-1``: all cores; ``1``: serial). The result does
        not depend on it.
    options : dict, optional
        ``restart_factor`` (``"halpern"`` with ``restart="adaptive"``, in (0, 1), default 0.2);
        ``relaxation`` (``"km"``, in (0, 1], default 0.5); for every method ``tol_disp``
        (default 1e-6; 0 turns detection off) and ``min_disp_iter`` (default 50): see Notes.

    Returns
    -------
    FixedPointResult
        ``x``, ``residual`` (= ``fun``), ``nit``, ``nfev``, ``status``, ``success``,
        ``message``, ``displacement`` (``None`` unless status 2), ``restarts``,
        ``initial_residual``, ``method``.

    Raises
    ------
    TypeError
        ``T`` not callable; complex or non-numeric ``x0``; ``T`` returning non-numbers.
    ValueError
        ``x0`` empty, non-finite, or of the wrong length for a native operator; ``T``
        returning the wrong shape; bad ``method``, ``restart``, ``tol``, ``workers`` or ``options``.
        Any exception raised by a callable ``T`` propagates unchanged.

    Notes
    -----
    **No fixed point (status 2).** Then ``x_k`` drifts along the infimal displacement vector
    ``v`` (``||x - T(x)|| >= ||v|| > 0`` everywhere; for ``DouglasRachford(PA, PB)`` with
    disjoint sets, ``v`` is the gap vector ``P_{cl(A - B)}(0)``). The solver estimates ``v`` at
    checkpoints ``k_{j+1} = ceil(1.5 k_j)``: for ``"km"`` and ``"picard"`` (and ``anchoring``
    other than 1) by the drift of the iterates between consecutive checkpoints,
    ``(x_{k_{j-1}} - x_{k_j}) / (s_{k_j} - s_{k_{j-1}})`` with ``s_k = a k`` (KM) or ``k``
    (Picard); for ``"halpern"`` by the residual ``q - T(q)`` after 4 Picard steps
    ``q = T^4(p)`` from the *Picard proxy* ``p = a - (k+1) u_k`` (``u_k = x_k - T(x_k)`` is Park
    & Ryu's accelerated estimator of ``v``; ``a`` the anchor, ``k`` counted since it; ``p`` is
    the point of the Picard orbit from ``a`` that Halpern's iterates average, exactly so for an
    affine ``T``), which removes the anchor's ``O(1/k)`` pull from ``u_k``. The probe runs only
    once the guard below holds (then also on the two checkpoints before), and its applications
    of ``T`` count in ``nfev``. Status 2 is declared when the estimate exceeds ``tol + rtol * r0``
    in norm (the tolerance can never be met), does not exceed the current residual, and changed
    by at most ``tol_disp`` relative at two consecutive checkpoints, never before ``min_disp_iter``
    iterations, and once a guard holds (below). The returned ``displacement`` is then accurate
    to about ``tol_disp`` relative where ``T`` acts on the iterates as a translation (often far
    better); on polyhedral problems the estimate can rest on a plateau for a while and be off
    by more.

    The guard rules out transients: with a fixed point ``x*`` the iterates of every method stay
    within ``||x0 - x*||`` of ``x*`` (through restarts too), and Halpern's residual stays below
    ``2 ||x0 - x*|| / (k + 1)`` (``k`` counted since the anchor). An iterate farther than
    ``2 B`` from ``x0``, or (Halpern, ``anchoring=None``) a residual above ``2 B / (k + 1)``,
    with ``B = ||x0|| + max(||x0||, ||T(x0)||)``, proves that no fixed point lies within
    ``max(||x0||, ||T(x0)||)`` of the origin; status 2 is never reported for a problem that has
    one. A fixed point farther away can be approached at a constant velocity for a long time
    (e.g. Douglas–Rachford started far from both sets), which no finite test tells apart from
    infeasibility; center such problems near the origin.

    float32 data is iterated in float32; norms are accumulated in float64.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> res = optcore.fixed_point.halpern(np.cos, np.zeros(2), restart="adaptive")
    >>> res.success, np.round(res.x, 6), bool(res.residual <= 1e-8)
    (True, array([0.739085, 0.739085]), True)

    Native operators run the whole loop in Rust; ``shadow`` maps the Douglas–Rachford fixed point
    to a point of both sets:

    >>> from optcore.fixed_point import operators as ops
    >>> T = ops.DouglasRachford(ops.Ball(np.zeros(2), 1.0), ops.Affine([[1.0, 1.0]], [1.0]))
    >>> res = optcore.fixed_point.halpern(T, np.array([2.0, -3.0]), restart="adaptive")
    >>> x = T.shadow(res.x)
    >>> res.success, bool(np.linalg.norm(x) <= 1 + 1e-6), round(float(x.sum()), 6)
    (True, True, 1.0)
    """
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    method = method.lower()
    opts = check_options(options, METHODS[method], method)
    native = isinstance(T, Operator)
    if not native and not callable(T):
        raise TypeError(
            f"`T` must be a callable x -> T(x) or an operator from optcore.fixed_point.operators; "
            f"got {type(T).__name__}."
        )
    x = as_float_array(x0, "x0")
    if x.size == 0:
        raise ValueError(f"`x0` is empty (shape {x.shape}); it must have at least one entry.")
    check_finite(x, "x0")
    if native and x.shape != (T.dim,):
        raise ValueError(f"`x0` must be a 1-D array of length {T.dim} (the operator's dim); got shape {x.shape}.")
    if not isinstance(vectorized, (bool, np.bool_)):
        raise TypeError(f"`vectorized` must be True or False; got {vectorized!r}.")
    if vectorized and native:
        raise ValueError(
            "`vectorized=True` is for Python callables; a native operator already runs in Rust "
            "(solve the problems one by one)."
        )
    if vectorized and x.ndim != 2:
        raise ValueError(f"`vectorized=True` needs x0 of shape (B, d), one row per problem; got shape {x.shape}.")
    dtype = np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)
    shape = x.shape

    tol = default_tol(dtype) if tol is None else nonnegative_scalar(tol, "tol")
    rtol = nonnegative_scalar(rtol, "rtol")
    maxiter = _count(maxiter, "maxiter", minimum=0)
    check_every = _count(check_every, "check_every")
    workers = normalize_workers(workers)
    if restart not in (None, "adaptive"):
        raise ValueError(f"`restart` must be None or 'adaptive'; got {restart!r}.")
    if restart is not None and method != "halpern":
        raise ValueError(f"`restart='adaptive'` applies to method='halpern' only; got method={method!r}.")
    if anchoring is not None and method != "halpern":
        raise ValueError(f"`anchoring` applies to method='halpern' only; got method={method!r}.")
    c = 1.0 if anchoring is None else positive_scalar(anchoring, "anchoring")
    factor = None
    if restart == "adaptive":
        factor = positive_scalar(opts.get("restart_factor", 0.2), "options['restart_factor']")
        if not factor < 1:
            raise ValueError(f"options['restart_factor'] must be in (0, 1); got {factor!r}.")
    elif "restart_factor" in opts:
        raise ValueError("options['restart_factor'] needs restart='adaptive'.")
    relax = 0.5
    if method == "km":
        relax = positive_scalar(opts.get("relaxation", 0.5), "options['relaxation']")
        if not relax <= 1:
            raise ValueError(f"options['relaxation'] must be in (0, 1]; got {relax!r}.")
    tol_disp = nonnegative_scalar(opts.get("tol_disp", 1e-6), "options['tol_disp']")
    mdi = opts.get("min_disp_iter", 50)
    if isinstance(mdi, (bool, np.bool_)) or not isinstance(mdi, (numbers.Integral, np.integer)):
        raise TypeError(f"options['min_disp_iter'] must be a positive integer; got {mdi!r}.")
    mdi = _count(mdi, "options['min_disp_iter']")
    param = c if method == "halpern" else relax

    def build(state: dict) -> FixedPointResult:
        return FixedPointResult(
            x=state["x"].reshape(shape),
            residual=state["error"],
            fun=state["error"],
            nit=state["nit"],
            restarts=int(state.get("restarts", 0)),
            method=method,
        )

    title = f"optcore.fixed_point.halpern(method={method!r}, restart={restart!r}, tol={tol:g}), size {x.size}"
    progress = Progress(callback, disp, build, title)
    prog = progress if progress.active else None
    op = T._handle if native else _wrap_callable(T, shape, dtype)
    fn = _core.halpern_f32 if dtype == np.float32 else _core.halpern_f64
    xflat = np.ascontiguousarray(x, dtype=dtype).reshape(-1)
    out = fn(
        op,
        xflat,
        method,
        param,
        tol,
        rtol,
        maxiter,
        factor,
        tol_disp,
        int(mdi),
        progress=prog,
        check_every=check_every,
        workers=workers,
    )

    status = int(out["status"])
    r, nit = float(out["residual"]), int(out["nit"])
    thresh = float(out["threshold"])
    disp_vec = out["displacement"]
    if status == 0:
        message = f"Converged: residual ||x - T(x)|| = {r:.3e} <= {thresh:.3e}."
    elif status == 1 and not np.isfinite(thresh):
        message = (
            f"Iteration limit reached: the threshold tol + rtol * ||x0 - T(x0)|| is not finite "
            f"(||x0 - T(x0)|| = {float(out['initial_residual']):.3e}), so no residual can meet it; "
            f"use rtol=0 with an absolute tol. Residual ||x - T(x)|| = {r:.3e} after {nit} iterations."
        )
    elif status == 1:
        hint = " or restart='adaptive'" if method == "halpern" and restart is None else ""
        message = (
            f"Iteration limit reached: residual ||x - T(x)|| = {r:.3e} > {thresh:.3e} after {nit} iterations. "
            f"Increase maxiter{hint}" + (", or use float64 data." if dtype == np.float32 else ".")
        )
    elif status == 2:
        message = (
            f"T appears to have no fixed point: the iterates drift at a stable rate along a displacement "
            f"vector of norm {float(_norms(disp_vec)):.3e} > tol (see res.displacement)."
        )
    elif status == 4:
        message = f"Numerical breakdown: {out['detail']}".strip()
    else:
        message = STATUS_MESSAGES.get(status, "Stopped.")
    res = FixedPointResult(
        x=out["x"].reshape(shape),
        residual=r,
        fun=r,
        initial_residual=float(out["initial_residual"]),
        nit=nit,
        nfev=int(out["nfev"]),
        restarts=int(out["restarts"]),
        status=status,
        success=status == 0,
        message=message,
        displacement=None if disp_vec is None else disp_vec.reshape(shape),
        method=method,
    )
    if vectorized:
        xr = res.x
        tx = op(np.ascontiguousarray(xr, dtype=dtype).reshape(-1)).reshape(shape)
        res["nfev"] += 1
        res["residuals"] = _norms(xr.astype(np.float64) - tx.astype(np.float64), axis=1)
    return finish(res, "optcore.fixed_point.halpern", progress=progress, warn=warn)
