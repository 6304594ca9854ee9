"""Input checks of :func:`optcore.ot.sinkhorn`, one path for the CPU and the device.

Each check is written once over the array module ``xp`` (NumPy or CuPy); the CPU dispatch
(:mod:`._cpu`) and the device dispatch (:mod:`._device`) call the same functions, so what a
weight, a mass, a cost or a warm start must satisfy, and the messages that say so, are the
same on both. The Rust core checks the same invariants again (it is callable on its own).
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_nonnegative

__all__ = [
    "arguments",
    "batch_weights",
    "check_masses",
    "check_overflow",
    "check_weights",
    "device_float",
    "native",
    "point_clouds",
    "warm_start",
    "weights",
]


def arguments(M, reg, x, y, return_plan=True) -> None:
    """The combination of cost arguments: ``reg``, and ``M`` or the point clouds ``x``, ``y``;
    ``return_plan`` a bool; no sparse matrices."""
    if not isinstance(return_plan, (bool, np.bool_)):
        raise TypeError(f"`return_plan` must be True or False; got {return_plan!r}.")
    for arr, nm in ((M, "M"), (x, "x"), (y, "y")):
        if hasattr(arr, "toarray") and hasattr(arr, "nnz"):
            raise TypeError(f"a sparse `{nm}` is not supported: the cost is dense; convert it with `{nm}.toarray()`.")
    if reg is None:
        raise ValueError("`reg` (the entropic regularisation, > 0) is required.")
    if (x is None) != (y is None):
        raise ValueError("give both point clouds `x` and `y`, or neither.")
    if x is not None and M is not None:
        raise ValueError("give either the cost matrix `M` or the point clouds `x` and `y`, not both.")
    if x is None and M is None:
        raise ValueError("`M` (the cost matrix) is required, or point clouds `x` and `y`.")


def native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in native byte order (a big-endian ``'>f4'`` stays float32)."""
    if not arr.dtype.isnative:
        return arr.astype(arr.dtype.newbyteorder("="))
    return arr


def weights(w, name: str, size_hint: int | None, dtype=np.float64) -> np.ndarray:
    """Host weights as a float array (uniform of ``dtype`` for ``None`` or ``[]``)."""
    if w is None or (not hasattr(w, "shape") and isinstance(w, (list, tuple)) and len(w) == 0):
        if size_hint is None:
            raise ValueError(f"`{name}` is empty and the size of M gives no default.")
        return np.full(size_hint, 1.0 / size_hint, dtype=dtype)
    arr = native(as_float_array(w, name))
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array of weights; got shape {arr.shape}.")
    return arr


def device_float(arr, name: str, xp):
    """A float32/float64 array of ``xp`` (integers and bools become float64)."""
    arr = xp.asarray(arr)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"`{name}` is complex; optimal transport needs real data.")
    if kind not in "biuf":
        raise TypeError(f"`{name}` must be numeric; got dtype {arr.dtype}.")
    if kind == "f" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def point_clouds(X, Y):
    """Point clouds as 2-D arrays (a 1-D cloud is n points in dimension 1), same dimension."""
    X = X[:, None] if X.ndim == 1 else X
    Y = Y[:, None] if Y.ndim == 1 else Y
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"`x` and `y` must be point clouds of shapes (n, d) and (m, d); got {X.shape} and {Y.shape}.")
    return X, Y


def batch_weights(w, name: str, B: int, size: int, xp):
    """Weights of a batch as a (B, size) array (uniform for None; a 1-D array is shared)."""
    if w is None:
        return None
    w = xp.asarray(w)
    if w.ndim == 1 and w.shape[0] == size:
        return xp.broadcast_to(w, (B, size))
    if w.shape == (B, size):
        return w
    raise ValueError(f"`{name}` must have shape ({size},) or ({B}, {size}) for a batch of {B} problems; got {w.shape}.")


def check_weights(w, name: str, xp) -> None:
    """Finite and non-negative weights."""
    if xp is np:
        check_nonnegative(w, name)
        return
    if not bool(xp.isfinite(w).all()):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    if bool((w < 0).any()):
        raise ValueError(f"`{name}` has negative weights; weights must be non-negative.")


def check_masses(mass_a, mass_b, which) -> np.ndarray | None:
    """Equal total masses (relative 1e-6) of ``a`` and each ``b``.

    ``mass_a``, ``mass_b``: float64 masses (scalars, or one per problem or histogram);
    ``which(i)`` names the ``b`` of entry ``i`` in the message. Returns the factors
    ``mass_a / mass_b`` that put each ``b`` onto ``a``'s mass (so that a ``tol`` far below 1e-6
    is attainable), or None when the masses are equal.
    """
    ma, mb = np.atleast_1d(mass_a), np.atleast_1d(mass_b)
    if np.any(ma <= 0):
        raise ValueError("`a` has zero total mass; at least one weight must be positive.")
    bad = np.abs(mb - ma) > 1e-6 * ma
    if np.any(bad):
        i = int(np.argmax(bad))
        ai = ma[i if ma.size > 1 else 0]
        raise ValueError(
            f"`a` and {which(i)} must have the same total mass: sum(a) = {ai:.10g}, sum(b) = {mb[i]:.10g}. "
            "Normalise them, e.g. b = b * a.sum() / b.sum()."
        )
    if np.any(mb != ma):
        return ma / mb
    return None


def check_overflow(lo: float, hi: float, reg: float, dtype) -> None:
    """Costs in ``[lo, hi]`` over ``reg`` within the dtype's range: potentials and exponents are
    sums of terms of size ``|M| / reg``, and beyond ``sqrt(max)`` of the dtype the arithmetic
    overflows or means nothing."""
    limit = float(np.sqrt(np.finfo(dtype).max))
    with np.errstate(over="ignore", invalid="ignore"):
        spread = max(hi - lo, abs(lo), abs(hi)) / reg
    if not spread <= limit:
        raise ValueError(
            f"the cost / `reg` is too large for {np.dtype(dtype)} (max |M| / reg = {spread:.3g} > {limit:.3g}): "
            "rescale the cost, e.g. M = M / M.max(), and reg with it."
        )


def warm_start(x0, want_f: tuple, want_g: tuple, dtype, xp, *, reshape: bool = False):
    """``x0 = (f, g)`` as contiguous arrays of ``dtype`` of shapes ``want_f`` and ``want_g``,
    finite or ``-inf``. ``reshape`` (the device path) accepts any shape with that many entries."""
    try:
        f0, g0 = x0
    except (TypeError, ValueError):
        raise ValueError("`x0` must be a pair (f, g) of potentials.") from None
    if reshape:
        f0, g0 = xp.asarray(f0, dtype=dtype), xp.asarray(g0, dtype=dtype)
        ok = f0.size == int(np.prod(want_f)) and g0.size == int(np.prod(want_g))
        if ok:
            f0, g0 = xp.ascontiguousarray(f0.reshape(want_f)), xp.ascontiguousarray(g0.reshape(want_g))
    else:
        f0 = xp.ascontiguousarray(as_float_array(f0, "x0[0]"), dtype=dtype)
        g0 = xp.ascontiguousarray(as_float_array(g0, "x0[1]"), dtype=dtype)
        ok = f0.shape == want_f and g0.shape == want_g
    if not ok:
        raise ValueError(f"`x0` shapes must be {want_f} and {want_g}; got {f0.shape} and {g0.shape}.")
    for v, nm in ((f0, "x0[0]"), (g0, "x0[1]")):
        if bool(xp.any(xp.isnan(v) | (v == np.inf))):
            raise ValueError(f"`{nm}` contains NaN or +inf; potentials must be finite or -inf.")
    return f0, g0
