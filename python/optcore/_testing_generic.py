"""The family-independent parts of :mod:`optcore.testing`: the status table, the generic claims
every result makes, and the strategies of bad and extreme inputs the fuzz suite feeds to every
entry point. Re-exported by :mod:`optcore.testing`."""

from __future__ import annotations

import math

import numpy as np

#: The status codes every optcore solver uses.
STATUSES = (0, 1, 2, 3, 4, 99)


def _st():
    try:
        from hypothesis import strategies as st
    except ImportError as exc:  # pragma: no cover - hypothesis is a test dependency
        raise ImportError("optcore.testing's strategies need hypothesis: pip install hypothesis") from exc
    return st


def _close(u: float, v: float, rtol: float = 1e-6, atol: float = 0.0) -> bool:
    if u is None or v is None:
        return u is v
    if not (math.isfinite(u) and math.isfinite(v)):
        return u == v or (math.isnan(u) and math.isnan(v))
    return abs(u - v) <= atol + rtol * max(abs(u), abs(v))


def _generic(res, maxiter: int | None) -> list[str]:
    out = []
    for key in ("x", "fun", "success", "status", "message", "nit"):
        if key not in res:
            out.append(f"missing field {key!r}")
    if out:
        return out
    status = int(res.status)
    if status not in STATUSES:
        out.append(f"status {status} is not one of {STATUSES}")
    if bool(res.success) != (status == 0):
        out.append(f"success={res.success} with status {status}")
    if maxiter is not None and res.nit > maxiter:
        out.append(f"nit {res.nit} > maxiter {maxiter}")
    if not isinstance(res.message, str) or not res.message:
        out.append("empty message")
    return out


#: The exceptions a public entry point may raise on bad input (``optcore.NumericalError`` is
#: added by :func:`named_errors`, which imports optcore).
NAMED_ERRORS = (ValueError, TypeError, MemoryError)


def named_errors() -> tuple[type[BaseException], ...]:
    """What bad input may raise.

    Returns
    -------
    tuple of type
        ``(ValueError, TypeError, MemoryError, optcore.NumericalError)``.

    Examples
    --------
    >>> from optcore.testing import named_errors
    >>> ValueError in named_errors()
    True
    """
    from optcore import NumericalError

    return (*NAMED_ERRORS, NumericalError)


def bad_arrays(good, *, random: bool = True):
    """Bad and extreme variants of the valid array ``good``: ``None``, empty, 0-d, wrong
    lengths and extra axes, NaN/inf entries, magnitudes 1e±300, complex, object and string
    arrays, ragged lists, integers >= 2**64, bools, ints, float16, float32, big-endian
    dtypes, negated entries; with ``random``, also arrays of ``good``'s shape with any dtype
    and any entries (NaN, inf, subnormals, the dtype's extremes). Valid variants (float32,
    ints, big-endian, ...) are among them: a solver must accept those or name the argument.

    Parameters
    ----------
    good : array_like
        A valid value of the argument.
    random : bool
        Also draw random arrays of ``good``'s shape with any dtype and any entries.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of bad, extreme and valid-but-unusual values.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> import optcore
    >>> from optcore.testing import bad_arrays, check_generic, named_errors
    >>> @settings(max_examples=20, deadline=None, database=None)
    ... @given(bad_arrays(np.ones(3)))
    ... def test(c):
    ...     try:
    ...         res = optcore.linprog(c, bounds=(0, 1))
    ...     except named_errors():
    ...         return
    ...     assert check_generic(res) == []
    >>> test()
    """
    st = _st()
    g = np.asarray(good, dtype=np.float64)
    flat = g.ravel()
    cases = [
        None,
        [],
        np.zeros((0,) + g.shape[1:]),
        np.array(1.0),
        g[None],
        np.r_[flat, 1.0].reshape(-1),
        np.where(np.arange(g.size).reshape(g.shape) == 0, np.nan, g),
        np.where(np.arange(g.size).reshape(g.shape) == 0, np.inf, g),
        g * 1e300,
        g * 1e-300,
        g + 1e300,
        g + 0.5j,
        g.astype(object),
        g.astype(str),
        "abc",
        [[1.0, 2.0], [3.0]],
        np.full(g.shape, 2**64, dtype=object).tolist(),
        g.astype(bool),
        np.round(g).astype(np.int64),
        g.astype(np.float16),
        g.astype(np.float32),
        g.astype(">f8"),
        g.astype(">f4"),
        -g,
        g.tolist(),
    ]
    if g.size > 1:
        cases.append(flat[:-1].copy())
    if g.ndim == 2:
        cases.append(g.T.copy())
        cases.append(np.asfortranarray(g))
    strat = st.sampled_from(cases)
    if random:
        from hypothesis.extra import numpy as hnp

        dtypes = st.one_of(
            hnp.floating_dtypes(endianness="=", sizes=(16, 32, 64)),
            hnp.floating_dtypes(endianness=">", sizes=(32, 64)),
            hnp.integer_dtypes(endianness="="),
            hnp.unsigned_integer_dtypes(endianness="="),
            hnp.boolean_dtypes(),
        )
        strat = st.one_of(strat, hnp.arrays(dtypes, g.shape))
    return strat


def bad_scalars(*, integer: bool = False):
    """Bad and extreme scalars for a numeric parameter: zero, negatives, NaN, ±inf, 1e±300,
    integers >= 2**64 and beyond float range, bools, strings, ``None``, complex, lists,
    NumPy scalars and, for an ``integer`` parameter, non-integral floats.

    Parameters
    ----------
    integer : bool
        The parameter is an integer: also draw non-integral floats.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of scalars and scalar-like values.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> import optcore
    >>> from optcore.testing import bad_scalars, check_generic, named_errors
    >>> @settings(max_examples=20, deadline=None, database=None)
    ... @given(bad_scalars())
    ... def test(reg):
    ...     try:
    ...         res = optcore.ot.sinkhorn([0.5, 0.5], [0.5, 0.5], np.eye(2), reg=reg, maxiter=100, warn=False)
    ...     except named_errors():
    ...         return
    ...     assert check_generic(res, maxiter=100) == []
    >>> test()
    """
    st = _st()
    cases = [0, 0.0, -1, -1e-6, math.nan, math.inf, -math.inf, 1e300, 1e-300, 2**64, -(2**64), 10**400]
    cases += [True, False, "1e-6", "abc", None, 1j, [1.0], np.array([1.0, 2.0]), np.float32(0.5), np.int64(3)]
    if integer:
        cases += [1.5, np.float64(2.0), np.uint64(2**64 - 1)]
    return st.sampled_from(cases)


def check_generic(res, *, maxiter: int | None = None) -> list[str]:
    """The claims every optcore result makes, whatever the problem: the fields ``x``, ``fun``,
    ``success``, ``status``, ``message``, ``nit`` exist; ``status`` is a known code;
    ``success == (status == 0)``; ``nit <= maxiter``; the message is a non-empty string;
    ``x`` is finite unless ``status`` is 4 (numerical breakdown).

    Parameters
    ----------
    res : OptimizeResult
        Any optcore result.
    maxiter : int, optional
        The ``maxiter`` the solve was given.

    Returns
    -------
    list of str
        The violated claims; empty when there are none.

    Examples
    --------
    >>> import optcore
    >>> from optcore.testing import check_generic
    >>> res = optcore.linprog([1.0, 1.0], bounds=(0, 1))
    >>> check_generic(res)
    []
    >>> check_generic(optcore.OptimizeResult(x=res.x, fun=res.fun, success=False, status=0, message="?", nit=1))
    ['success=False with status 0']
    """
    out = _generic(res, maxiter)
    if out and any(s.startswith("missing") for s in out):
        return out
    x = res.get("x")
    if x is not None and int(res.status) != 4:
        arr = np.asarray(x)
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            out.append(f"non-finite x with status {int(res.status)}")
    return out
