"""The user's objective and ranking oracle as the core calls them: values checked and
converted to float64, a per-point or executor objective wrapped into a batched one."""

from __future__ import annotations

import numpy as np


def values(y, B: int) -> np.ndarray:
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


def scalar(y) -> float:
    try:
        v = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`fun` must return a real number: {exc}") from None
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


def ranking(r) -> np.ndarray:
    """A ranking (indices of the best rows, best first) as a 1-D integer array."""
    arr = np.asarray(r)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"a ranking must be a 1-D sequence of integer indices; got {r!r}.")
    return arr
