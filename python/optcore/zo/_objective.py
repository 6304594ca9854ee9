"""The user's objective and ranking oracle as the core calls them: values checked and
converted to float64, a per-point or executor objective wrapped into a batched one."""

from __future__ import annotations

import numpy as np


def _real(y, what: str, who: str = "`fun` must return") -> np.ndarray:
    """``y`` as float64, refusing what is not a real number (``None`` and objects would
    otherwise become NaN, strings would be parsed). ``who`` starts the error message."""
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{who} {what}: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{who} {what}; got {type(y).__name__} ({y!r:.60}).")
    return arr.astype(np.float64, copy=False)


def values(y, B: int) -> np.ndarray:
    v = _real(y, "real numbers")
    if v.shape != (B,):
        raise ValueError(
            f"`fun` with vectorized=True must return an array of shape ({B},) for a batch of shape ({B}, d); "
            f"got shape {v.shape}."
        )
    return v


def told_values(y, B: int) -> np.ndarray:
    """The ``values`` given to ``Optimizer.tell``: ``B`` real numbers, one per row of the batch."""
    v = _real(y, "real numbers", "`values` must be")
    if v.shape != (B,):
        raise ValueError(f"`values` must have shape ({B},), one value per row of the asked batch; got shape {v.shape}.")
    return v


def scalar(y) -> float:
    v = _real(y, "a real number")
    if v.size != 1:
        raise ValueError(f"`fun` must return a scalar for a point of shape (d,); got an array of shape {v.shape}.")
    return float(v.reshape(()))


def batched(fun, vectorized: bool, executor):
    """The user's objective as ``X (B, d) -> (B,) float64``: one call on the batch
    (``vectorized``), one call per row through ``executor.map`` (results gathered in order),
    or one call per row here."""
    if vectorized:
        return lambda X: values(fun(X), X.shape[0])
    if executor is not None:
        return lambda X: np.array([scalar(y) for y in executor.map(fun, list(X))], dtype=np.float64)
    return lambda X: np.array([scalar(fun(x)) for x in X], dtype=np.float64)


def ranking(r, m: int | None = None, name: str = "rank_oracle") -> np.ndarray:
    """A ranking (indices of the best rows, best first) as a 1-D integer array, every index in
    ``range(m)``."""
    arr = np.asarray(r)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"`{name}`: a ranking must be a 1-D sequence of integer indices; got {r!r}.")
    if m is not None and arr.size and (arr.min() < 0 or arr.max() >= m):
        bad = arr[(arr < 0) | (arr >= m)][0]
        raise ValueError(
            f"`{name}` returned the index {int(bad)}; a ranking holds distinct indices in range({m}) (rows of X)."
        )
    return arr
