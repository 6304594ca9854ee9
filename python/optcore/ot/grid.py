"""Grids: :class:`Grid` and Sinkhorn with a grid in place of the cost matrix.

On a grid the cost ``C(x, y) = sum_k |x_k - y_k|^p`` is separable, so the Gibbs kernel is a
tensor product of small 1-D kernels: the Rust core (``optcore_core::ot::grid``) applies it in
the log domain by ``d`` 1-D log-sum-exp passes, ``O(n * sum_k n_k)`` work per half-iteration
and no ``n x n`` array.
"""

from __future__ import annotations

import numpy as np

from .._result import finish
from .._validation import _real_scalar, as_float_array, normalize_workers, working_dtype
from . import checks
from .options import integer_option
from .unbalanced import check_method, lse_call, lse_result, prepare_weights

__all__ = ["Grid"]


class Grid:
    """A Cartesian grid: the points of ``d`` sorted 1-D axes, with a separable cost.

    Give it to :func:`optcore.ot.sinkhorn` in place of the cost matrix ``M``; weights on it
    are arrays of shape :attr:`shape` (or flat, in C order).

    Parameters
    ----------
    axes : sequence of array_like
        The coordinates of each axis: 1-D, non-empty, finite, strictly increasing; any
        lengths. A single 1-D array of numbers is a 1-D grid.
    p : float
        Exponent of the cost ``C(x, y) = sum_k |x_k - y_k|^p`` (default 2: the squared
        Euclidean distance), > 0.

    Attributes
    ----------
    axes : tuple of ndarray
        The axes (float64, read-only).
    p : float
    shape : tuple of int
        The axis lengths.
    size : int
        Number of grid points ``n = prod(shape)``.
    ndim : int

    Examples
    --------
    >>> import numpy as np, optcore
    >>> g = optcore.ot.Grid([np.linspace(0, 1, 4), np.linspace(0, 1, 3)])
    >>> g.shape, g.size
    ((4, 3), 12)
    >>> g.cost_matrix().shape
    (12, 12)
    """

    def __init__(self, axes, p: float = 2.0):
        if (
            isinstance(axes, np.ndarray)
            and axes.ndim == 1
            or (isinstance(axes, (list, tuple)) and len(axes) > 0 and all(np.ndim(x) == 0 for x in axes))
        ):
            axes = [axes]
        try:
            axes = list(axes)
        except TypeError:
            raise TypeError(f"`axes` must be a sequence of 1-D coordinate arrays; got {type(axes).__name__}.") from None
        if not axes:
            raise ValueError("`axes` is empty: a grid needs at least one axis.")
        out = []
        for k, ax in enumerate(axes):
            arr = as_float_array(ax, f"axes[{k}]").astype(np.float64)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"`axes[{k}]` must be a non-empty 1-D array of coordinates; got shape {arr.shape}.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"`axes[{k}]` contains NaN or infinite coordinates; all must be finite.")
            if arr.size > 1 and not np.all(np.diff(arr) > 0):
                raise ValueError(f"`axes[{k}]` must be strictly increasing (sort it, and remove repeated coordinates).")
            arr = np.ascontiguousarray(arr)
            arr.setflags(write=False)
            out.append(arr)
        p = _real_scalar(p, "p")
        if not (np.isfinite(p) and p > 0):
            raise ValueError(f"`p` (the cost exponent) must be a positive finite number; got {p!r}.")
        self.axes = tuple(out)
        self.p = float(p)
        self.shape = tuple(int(a.size) for a in out)
        self.ndim = len(out)
        self.size = int(np.prod(self.shape, dtype=object))

    def __repr__(self) -> str:
        return f"Grid(shape={self.shape}, p={self.p:g})"

    def points(self) -> np.ndarray:
        """The grid points, shape ``(size, ndim)``, in C order."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1)

    def cost_max(self) -> float:
        """The largest cost between two grid points (the smallest is 0)."""
        return float(sum((ax[-1] - ax[0]) ** self.p for ax in self.axes))

    def cost_matrix(self) -> np.ndarray:
        """The dense ``size x size`` cost ``sum_k |x_k - y_k|^p`` (float64; for small grids:
        checks and comparisons with dense solvers)."""
        pts = self.points()
        C = np.zeros((self.size, self.size))
        for k in range(self.ndim):
            C += np.abs(pts[:, None, k] - pts[None, :, k]) ** self.p
        return C


def solve_grid(
    a,
    b,
    grid: Grid,
    reg,
    reg_m,
    *,
    method,
    opts,
    tol,
    maxiter,
    x0,
    callback,
    check_every,
    disp,
    workers,
    warn,
    return_plan,
):
    """Sinkhorn on a grid (balanced, or unbalanced with ``reg_m``): no plan unless
    ``return_plan=True``, then the dense ``(size, size)`` plan formed once from the returned
    potentials."""
    from ._cpu import _common, _progress  # noqa: PLC0415  (_cpu is the CPU dispatch's home)

    check_method(method, "a Grid")
    for w, nm in ((a, "a"), (b, "b")):
        # None or [] is uniform; otherwise the grid's shape, or flat.
        if w is not None and np.size(w) > 0 and (np.size(w) != grid.size or np.ndim(w) not in (1, grid.ndim)):
            raise ValueError(
                f"`{nm}` must have the grid's shape {grid.shape} or {grid.size} entries; got shape {np.shape(w)}."
            )
    n = grid.size
    given = [as_float_array(w, nm) for w, nm in ((a, "a"), (b, "b")) if w is not None and np.size(w) > 0]
    p = prepare_weights(a, b, n, n, working_dtype(*given), reg_m, tol=tol, x0=x0, reg=reg)
    checks.check_overflow(0.0, grid.cost_max(), p.reg, p.dtype)
    p.shape_a = p.shape_b = grid.shape
    p.n = p.m = n
    maxiter = integer_option(maxiter, "maxiter", minimum=0)
    check_every = integer_option(check_every, "check_every")
    workers = normalize_workers(workers)
    progress = _progress(callback, disp, method, p, f", grid={grid.shape}" + (f", reg_m={reg_m}" if reg_m else ""))
    fn, core = lse_call(p.dtype, "grid", method, opts, p.reg, reg_m, p.tol, maxiter)
    x0c = None if p.f0 is None else (p.f0, p.g0)
    out = fn(p.a, p.b, list(grid.axes), grid.p, core, _common(progress, check_every, workers), x0c)
    res = lse_result(out, p, method, maxiter)
    res["grid"] = grid
    if return_plan:
        with np.errstate(under="ignore", over="ignore", invalid="ignore"):
            f, g = out["f"].astype(np.float64), out["g"].astype(np.float64)
            res["plan"] = np.exp((f[:, None] + g[None, :] - grid.cost_matrix()) / p.reg).astype(p.dtype)
        res["x"] = res["plan"]
    finish(res, "optcore.ot.sinkhorn", progress=progress, warn=warn, stacklevel=4)
    return res
