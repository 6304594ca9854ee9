"""Input validation shared by every solver: dtypes, shapes, finiteness, options.

Every error names the argument and says how to fix it.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = [
    "as_float_array",
    "working_dtype",
    "check_finite",
    "check_nonnegative",
    "positive_scalar",
    "nonnegative_scalar",
    "positive_int",
    "normalize_workers",
    "INT_MAX",
    "check_options",
    "seed_from_rng",
]


def _kind_error(name: str, arr: np.ndarray) -> TypeError:
    return TypeError(
        f"`{name}` must be a real numeric array; got dtype {arr.dtype}. "
        "Convert it first (complex data: take .real or abs)."
    )


def as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a NumPy array of a real floating dtype (ints and bools become float64,
    float16 becomes float32). Complex, object and string data raise ``TypeError``."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"`{name}` could not be converted to an array: {exc}") from None
    kind = arr.dtype.kind
    if kind in "fiub" and not arr.dtype.isnative:  # '>f4' on a little-endian host: same values, native order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if kind in "fiub":
        if arr.dtype == np.float16:
            return arr.astype(np.float32)
        if kind != "f" or arr.dtype.itemsize > 8:
            return arr.astype(np.float64)
        return arr
    raise _kind_error(name, arr)


def working_dtype(*arrays: np.ndarray) -> np.dtype:
    """float32 when every array is float32, float64 otherwise."""
    if arrays and all(a.dtype == np.float32 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def check_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"`{name}` contains {bad} non-finite value(s) (NaN or inf); all entries must be finite.")


def check_nonnegative(arr: np.ndarray, name: str) -> None:
    check_finite(arr, name)
    if np.any(arr < 0):
        raise ValueError(f"`{name}` has negative entries (min {arr.min():g}); weights must be non-negative.")


def _real_scalar(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        arr = np.asarray(value)
        if arr.ndim == 0 and arr.dtype.kind in "fiu":
            value = arr.item()
        else:
            raise TypeError(f"`{name}` must be a real number; got {type(value).__name__}.")
    try:
        return float(value)
    except OverflowError:  # a Python int beyond float range (10**400)
        raise ValueError(
            f"`{name}` is too large for a float ({len(str(abs(int(value))))}-digit integer); "
            "pass a finite float (at most about 1.8e308)."
        ) from None


def positive_scalar(value, name: str) -> float:
    v = _real_scalar(value, name)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"`{name}` must be a positive finite number; got {value!r}.")
    return v


def nonnegative_scalar(value, name: str) -> float:
    v = _real_scalar(value, name)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"`{name}` must be a non-negative finite number; got {value!r}.")
    return v


#: The largest integer the core's counters hold (``i64``/``u64``/``usize`` on 64-bit targets).
INT_MAX = 2**63 - 1


#: Counts that are clamped when huge: "at most this many" (beyond the core's range: no
#: limit) and "every this many" (beyond it: never), as arguments or as ``options`` keys.
_NO_LIMIT_COUNTS = ("maxiter", "maxfev", "check_every")


def _no_limit_count(name: str) -> bool:
    if name.startswith("options[") and name.endswith("]"):
        name = name[len("options[") : -1].strip("'\"")
    return name in _NO_LIMIT_COUNTS


def positive_int(value, name: str, *, minimum: int = 1, maximum: int = INT_MAX, clamp: bool | None = None) -> int:
    """An integer ``>= minimum``; bools, floats and strings are a ``TypeError`` naming ``name``.

    Above ``maximum`` (by default the core's integer range: a Python int of any size reaches
    here) it is clamped to ``maximum`` when ``clamp`` and a ``ValueError`` naming ``name``
    otherwise. ``clamp=None`` clamps the counts whose meaning is "no limit" when huge
    (``maxiter``, ``maxfev``, ``check_every``, also as ``options['...']``) and rejects every
    other integer (sizes, batches, other options)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"`{name}` must be an integer; got {type(value).__name__}.")
    value = int(value)
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {_short(value)}.")
    if value > maximum:
        if clamp or (clamp is None and _no_limit_count(name)):
            return int(maximum)
        raise ValueError(f"`{name}` must be <= {maximum}; got {_short(value)}.")
    return value


def _short(value: int) -> str:
    """An integer for an error message (a 400-digit one as ``~1e400``)."""
    text = str(value)
    return text if len(text) <= 24 else f"~{'-' if value < 0 else ''}1e{len(text.lstrip('-')) - 1}"


def _workers_cap() -> int:
    """See :func:`normalize_workers`."""
    return max(256, 32 * (os.cpu_count() or 1))


def normalize_workers(workers) -> int | None:
    """SciPy's convention: ``None`` or ``-1`` use every core, a positive int that many threads.

    At most ``max(256, 32 * os.cpu_count())`` threads (a ``ValueError`` naming ``workers``
    above): each thread is a real OS thread with its own stack, so 20000 is a mistake, not a
    request. The cap sits well above cores on purpose: per-point Python objectives that wait
    (I/O, a simulator, ``time.sleep``) gain from more threads than cores (the README measures
    10.5x with 16 threads on 2 cores for a 10 ms objective), and 256 leaves room for that on
    small machines while bounding the threads spawned to a few hundred per core-poor host."""
    if workers is None:
        return None
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, (numbers.Integral, np.integer)):
        raise TypeError(f"`workers` must be None or an integer; got {type(workers).__name__}.")
    if workers == -1:
        return None
    workers = int(workers)
    if workers < 1:
        raise ValueError(
            f"`workers` must be a positive integer, or -1/None for all {os.cpu_count()} cores; got {_short(workers)}."
        )
    cap = _workers_cap()
    if workers > cap:
        raise ValueError(
            f"`workers` must be at most {cap} threads (32 per core, at least 256) or -1/None for all "
            f"{os.cpu_count()} cores; got {_short(workers)}."
        )
    return workers


def check_options(options: Mapping | None, allowed: Iterable[str], method: str) -> dict:
    """SciPy-style ``options`` dict; unknown keys raise ``ValueError`` listing the valid ones."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"`options` must be a dict; got {type(options).__name__}.")
    allowed = sorted(allowed)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"unknown option(s) {unknown} for method={method!r}; valid options: {valid}.")
    return dict(options)


def seed_from_rng(rng, *, high: int = 2**64) -> int:
    """The one ``rng`` -> seed rule: ``rng`` (None, an int or a ``numpy.random.Generator``) is
    normalised with ``numpy.random.default_rng`` and one integer in ``[0, high)`` is drawn from
    it, which seeds the core's portable PRNG. A bool or anything ``default_rng`` rejects is a
    ``TypeError``/``ValueError`` naming ``rng``."""
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError("`rng` must be None, an int or a numpy.random.Generator; got bool.")
    try:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"`rng` must be None, an int or a numpy.random.Generator: {exc}") from None
    if high > 2**63:
        return int(gen.integers(0, high, dtype=np.uint64))
    return int(gen.integers(0, high))
