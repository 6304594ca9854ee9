"""Fixed-support entropic Wasserstein barycenters (iterative Bregman projections, log domain).

>>> import numpy as np, optcore
>>> x = np.linspace(0, 1, 30)
>>> M = (x[:, None] - x[None, :]) ** 2
>>> A = np.zeros((30, 2)); A[3, 0] = A[26, 1] = 1.0
>>> res = optcore.ot.barycenter(A, M, reg=1e-3)
>>> bool(res.success), int(np.argmax(res.barycenter))
(True, 14)
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._backend import array_backend
from .._progress import Progress
from .._result import OptimizeResult, finish
from .._validation import (
    as_float_array,
    check_finite,
    check_nonnegative,
    normalize_workers,
    positive_int,
    positive_scalar,
    working_dtype,
)
from . import checks
from .options import default_tol

__all__ = ["BarycenterResult", "barycenter", "grid_cost"]


class BarycenterResult(OptimizeResult):
    """Result of :func:`barycenter`.

    Attributes
    ----------
    barycenter, x : ndarray
        The barycenter ``q``: shape ``(m,)`` for a dense cost, the grid's shape for a separable
        one; the data's dtype.
    fun : float
        ``sum_h w_h (<a_h, f_h> + <q, g_h>)``: the weighted entropic OT values
        ``<P_h, C> + reg * sum P_h log P_h`` of the returned plans at convergence.
    marginal_error : ndarray, shape (k,)
        Per histogram ``h``: ``||P_h 1 - a_h||_1 + ||P_h^T 1 - q||_1``, measured on the plans
        ``P_h = exp((f_h + g_h - C) / reg)`` of the returned potentials (float64) against the
        returned ``q`` (in its dtype).
    f, g : ndarray
        Potentials in the units of the cost, float64 whatever the dtype (the solver's state):
        ``f`` of shape ``(k,) + A``'s histogram shape, ``g`` of shape ``(k,) + q.shape``.
    nit : int
        Iterations (one source and one target update of every plan each).
    success, status, message
        ``success`` is True exactly when ``max(marginal_error) <= tol``.
    weights, reg, tol
        What was solved (``weights`` normalised to sum to 1).

    Examples
    --------
    >>> import numpy as np, optcore
    >>> x = np.linspace(0, 1, 20)
    >>> A = np.zeros((20, 2)); A[4, 0] = A[14, 1] = 1.0     # two Diracs, at x[4] and x[14]
    >>> res = optcore.ot.barycenter(A, (x[:, None] - x[None, :]) ** 2, reg=1e-3)
    >>> type(res).__name__, bool(res.success), res.marginal_error.shape, int(np.argmax(res.barycenter))
    ('BarycenterResult', True, (2,), 9)
    """

    barycenter: np.ndarray
    marginal_error: np.ndarray


def grid_cost(n: int, *, p: float = 2.0) -> np.ndarray:
    """The 1-D cost ``|t_i - t_j|^p`` on ``n`` points ``t = linspace(0, 1, n)``.

    One axis of a grid cost for :func:`barycenter` (POT's ``convolutional_barycenter2d`` uses
    ``p = 2`` on every axis).

    Parameters
    ----------
    n : int
        Points on the axis (at least 1).
    p : float
        Exponent, > 0.

    Returns
    -------
    ndarray, shape (n, n)
        float64.

    Examples
    --------
    >>> import optcore
    >>> optcore.ot.grid_cost(3)
    array([[0.  , 0.25, 1.  ],
           [0.25, 0.  , 0.25],
           [1.  , 0.25, 0.  ]])
    """
    n = positive_int(n, "n")
    p = positive_scalar(p, "p")
    t = np.linspace(0.0, 1.0, n)
    return np.abs(t[:, None] - t[None, :]) ** p


def barycenter(
    A,
    M=None,
    reg=None,
    weights=None,
    *,
    tol: float | None = None,
    maxiter: int = 10_000,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    workers: int | None = None,
    warn: bool = True,
) -> BarycenterResult:
    r"""Entropic Wasserstein barycenter of histograms on a fixed support.

    Finds :math:`q = \arg\min_q \sum_h w_h \mathrm{OT}_{\mathrm{reg}}(a_h, q)` with
    :math:`\mathrm{OT}_{\mathrm{reg}}(a, q) = \min_{P 1 = a,\, P^\top 1 = q} \langle P, C\rangle +
    \mathrm{reg} \sum P \log P`, by iterative Bregman projections (Benamou et al. 2015) run in the
    log domain: one iteration fits every plan's source marginal to its histogram, takes the
    weighted geometric mean of the target marginals as :math:`q`, and fits every target
    marginal to it. Stable at any ``reg``: each Gibbs-kernel apply is a matrix product with
    max-shifted exponentials, and every sum that under- or overflows is recomputed exactly with
    the log-sum-exp (so small ``reg`` costs more time, never accuracy).

    On a grid with a separable cost (``M`` a list of 1-D costs, or ``None`` for the squared
    Euclidean cost on the unit grid) the kernel is applied one axis at a time (the convolutional
    barycenters of Solomon et al. 2015): ``O(N * sum_a n_a)`` per apply for ``N`` grid points,
    and no ``N x N`` array.

    Parameters
    ----------
    A : array_like
        The histograms: non-negative, finite, equal total masses (relative 1e-6; within that,
        each is rescaled onto the first one's mass). With a dense ``M``: shape ``(n, k)``, one
        histogram per column (as POT's ``ot.bregman.barycenter``). With a separable cost: shape
        ``(k, n_1, ..., n_d)``, one image per leading index (as POT's
        ``convolutional_barycenter2d``).
    M : array_like of shape (n, m), sequence of d arrays of shapes (n_a, m_a), or None
        The cost: a dense matrix between the ``n`` source points and the ``m`` barycenter
        points (``m != n`` gives the barycenter another support); or one 1-D cost per grid axis
        (the cost is their sum over the axes; the barycenter has shape ``(m_1, ..., m_d)``);
        or ``None``: ``grid_cost(n_a)`` on every axis of ``A``'s images (the squared Euclidean
        cost on ``linspace(0, 1, n_a)`` per axis, POT's convolutional convention). Finite.
    reg : float
        Entropic regularisation, > 0.
    weights : array_like, shape (k,), optional
        Non-negative barycentric weights, normalised to sum to 1 (default uniform).
    tol : float, optional
        Bound on ``||P_h 1 - a_h||_1 + ||P_h^T 1 - q||_1`` for every histogram, on the returned
        state; ``success`` is True exactly when it holds. Default 1e-9 in float64, 1e-5 in float32.
    maxiter : int
        Maximum number of iterations (at least 1).
    callback : callable, optional
        ``callback(intermediate_result)`` every ``check_every`` iterations, with ``nit``,
        ``marginal_error`` (the largest target-marginal error) and ``barycenter``. Raising
        ``StopIteration`` stops the run (status 99).
    check_every : int
        Iterations between callbacks and progress lines (Ctrl-C is honoured within 0.2 s).
    disp : bool
        Print progress (about one line per second) and a summary.
    workers : int, optional
        Threads (``None`` or -1: all cores). Results are bit-identical for any value.
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` when ``tol`` is not met.

    Returns
    -------
    BarycenterResult
        ``barycenter`` (also ``x``), ``marginal_error`` (per histogram), ``fun``, ``f``, ``g``,
        ``nit``, ``success``, ``status`` (0 converged, 1 iteration limit, 4 stalled above
        ``tol`` by rounding, 99 callback), ``message``, ``weights``, ``reg``, ``tol``.

    Raises
    ------
    ValueError
        Negative or non-finite histograms or weights, unequal masses, non-finite or misshapen
        ``M``, ``reg <= 0``, bad ``tol``/``maxiter``.
    TypeError
        Complex or non-numeric data, CuPy arrays (the barycenter runs on the CPU).

    Notes
    -----
    float32 data gives a float32 barycenter; the iterations run in float64 (the kernel applies
    are float64 matrix products), so float32 reaches any ``tol`` above about 1e-7.
    ``weights`` are normalised (POT uses them as given: pass weights that sum to 1 to compare).

    Examples
    --------
    >>> import numpy as np, optcore
    >>> A = np.zeros((2, 16, 16)); A[0, 2:5, 2:5] = 1; A[1, 10:14, 10:14] = 1
    >>> A /= A.sum(axis=(1, 2), keepdims=True)
    >>> res = optcore.ot.barycenter(A, reg=4e-3)
    >>> res.barycenter.shape, bool(res.success)
    ((16, 16), True)
    """
    if array_backend(A, *(M if isinstance(M, (list, tuple)) else [M]), weights) != "numpy":
        raise TypeError("`A` is a CuPy array: optcore.ot.barycenter runs on the CPU; pass NumPy arrays.")
    if reg is None:
        raise ValueError("`reg` (the entropic regularisation, > 0) is required.")
    reg = positive_scalar(reg, "reg")
    Aa = checks.native(as_float_array(A, "A"))
    separable = M is None or isinstance(M, (list, tuple))
    if separable:
        H, grid, costs = _grid_problem(Aa, M)
        Mc = None
    else:
        Mc = checks.native(as_float_array(M, "M"))
        if Mc.ndim != 2:
            raise ValueError(f"`M` must be a 2-D cost matrix (n, m), or a list of 1-D costs per axis; got {Mc.shape}.")
        if Aa.ndim == 1:
            Aa = Aa[:, None]
        if Aa.ndim != 2 or Aa.shape[0] != Mc.shape[0] or Aa.shape[1] == 0:
            raise ValueError(
                f"`A` must have shape (n, k) = ({Mc.shape[0]}, k), one histogram per column, for `M` of shape "
                f"{Mc.shape}; got {Aa.shape}."
            )
        if Mc.shape[1] == 0:
            raise ValueError(f"`M` has shape {Mc.shape}: the barycenter needs at least one support point.")
        check_finite(Mc, "M")
        H = Aa.T
        grid, costs = (Mc.shape[1],), None
    k = H.shape[0]
    check_nonnegative(H, "A")
    dtype = working_dtype(Aa) if separable else working_dtype(Aa, Mc)
    w = _weights(weights, k)
    masses = H.reshape(k, -1).sum(axis=1, dtype=np.float64)
    scale = checks.check_masses(masses[0], masses, lambda h: f"histogram {h} of `A`")
    Hc = H.reshape(k, -1).astype(np.float64 if scale is not None else dtype)
    if scale is not None:
        Hc = Hc * scale[:, None]
    Hc = np.ascontiguousarray(Hc, dtype=dtype)
    lo, hi = _cost_range(Mc, costs)
    # The iterations run in float64: the cost over reg must fit float64's range.
    checks.check_overflow(lo, hi, reg, np.float64)
    tol = default_tol(dtype) if tol is None else positive_scalar(tol, "tol")
    maxiter = positive_int(maxiter, "maxiter")
    check_every = positive_int(check_every, "check_every")
    workers = normalize_workers(workers)

    def build(state: dict) -> BarycenterResult:
        q = state.get("barycenter")
        return BarycenterResult(
            nit=state["nit"], marginal_error=state["error"], barycenter=None if q is None else q.reshape(grid)
        )

    title = f"optcore.ot.barycenter(reg={reg:g}, tol={tol:g}), k={k}, support={grid}"
    progress = Progress(callback, disp, build, title)
    run = {"progress": progress if progress.active else None, "check_every": check_every, "workers": workers}
    opts = {"reg": reg, "tol": tol, "maxiter": maxiter}
    fn = getattr(_core, "barycenter_f32" if dtype == np.float32 else "barycenter_f64")
    Mcore = None if Mc is None else np.ascontiguousarray(Mc, dtype=dtype)
    out = fn(Hc, w, Mcore, costs, opts, run)
    res = _result(out, Hc, w, grid, H.shape[1:], reg, tol)
    finish(res, "optcore.ot.barycenter", progress=progress, warn=warn, stacklevel=3)
    return res


def _grid_problem(Aa, M):
    """``(histograms (k, *shape), barycenter shape, per-axis float64 costs)`` of a separable cost."""
    if Aa.ndim < 2:
        raise ValueError(f"`A` must have shape (k, n_1, ..., n_d) (k images) for a grid cost; got {Aa.shape}.")
    shape = Aa.shape[1:]
    if Aa.shape[0] == 0 or 0 in shape:
        raise ValueError(f"`A` is empty (shape {Aa.shape}).")
    if M is None:
        costs = [grid_cost(n) for n in shape]
    else:
        if len(M) != len(shape):
            raise ValueError(
                f"`M` must hold one 1-D cost per axis of the images: {len(shape)} axes, got {len(M)} costs."
            )
        costs = []
        for a, (c, n) in enumerate(zip(M, shape)):
            c = checks.native(as_float_array(c, f"M[{a}]"))
            if c.ndim != 2 or c.shape[0] != n or c.shape[1] == 0:
                raise ValueError(f"`M[{a}]` must have shape ({n}, m_{a}) for axis {a} of length {n}; got {c.shape}.")
            check_finite(c, f"M[{a}]")
            costs.append(np.ascontiguousarray(c, dtype=np.float64))
    return Aa, tuple(c.shape[1] for c in costs), costs


def _weights(weights, k: int) -> np.ndarray:
    if weights is None:
        return np.full(k, 1.0 / k)
    w = as_float_array(weights, "weights").astype(np.float64)
    if w.shape != (k,):
        raise ValueError(f"`weights` must have shape ({k},), one weight per histogram; got {w.shape}.")
    check_nonnegative(w, "weights")
    total = float(w.sum())
    if not total > 0:
        raise ValueError("`weights` sum to zero; at least one weight must be positive.")
    w = w / total
    # Exactly 1 after the division, up to rounding the core allows.
    return np.ascontiguousarray(w)


def _cost_range(Mc, costs) -> tuple[float, float]:
    if Mc is not None:
        return float(Mc.min()), float(Mc.max())
    lo = sum(float(c.min()) for c in costs)
    hi = sum(float(c.max()) for c in costs)
    return lo, hi


def _result(out, Hc, w, grid, src_shape, reg, tol) -> BarycenterResult:
    q = out["barycenter"].reshape(grid)
    err = np.asarray(out["marginal_error"], dtype=np.float64)
    status = int(out["status"])
    worst = float(err.max())
    k = Hc.shape[0]
    f, g = out["f"], out["g"]
    with np.errstate(invalid="ignore"):
        qa = q.reshape(-1).astype(np.float64)
        terms = [
            float(np.sum(np.where(Hc[h] > 0, Hc[h] * f[h], 0.0)) + np.sum(np.where(qa > 0, qa * g[h], 0.0)))
            for h in range(k)
        ]
    fun = float(np.dot(w, terms))
    messages = {
        0: f"Converged: marginal error {worst:.3g} <= tol {tol:g} for every histogram.",
        1: f"Iteration limit reached: marginal error {worst:.3g} > tol {tol:g}.",
        4: f"Numerical breakdown: {out['detail']}",
        99: "`callback` raised `StopIteration`.",
    }
    if status == 0 and not worst <= tol:  # the core measured it; a mismatch would be a bug
        status = 1
    return BarycenterResult(
        x=q,
        barycenter=q,
        fun=fun,
        marginal_error=err,
        f=f.reshape((k,) + tuple(src_shape)),
        g=g.reshape((k,) + tuple(grid)),
        nit=int(out["nit"]),
        status=status,
        message=messages.get(status, ""),
        weights=w,
        reg=reg,
        tol=tol,
    )
