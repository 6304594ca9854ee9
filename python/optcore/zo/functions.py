"""Native batched test functions (BBOB / nevergrad definitions, unshifted and unrotated).

Each is callable on a batch ``X`` of shape ``(B, d)`` (returns ``(B,)`` float64 values) or on
one point of shape ``(d,)`` (returns a float), computed in Rust with the rows spread over
``workers`` threads. Passed to :func:`optcore.zo.minimize` they run without Python in the loop.

>>> import numpy as np
>>> from optcore.zo import functions
>>> functions.rosenbrock(np.ones((2, 5)))
array([0., 0.])
>>> float(functions.sphere(np.array([1.0, 2.0])))
5.0
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import as_float_array, normalize_workers, positive_scalar

__all__ = [
    "TestFunction",
    "sphere",
    "ellipsoid",
    "rosenbrock",
    "rastrigin",
    "ackley",
    "schwefel",
    "lunacek",
    "ALL",
]

_XOPT = {
    "sphere": 0.0,
    "ellipsoid": 0.0,
    "rosenbrock": 1.0,
    "rastrigin": 0.0,
    "ackley": 0.0,
    "schwefel": 420.968746,
    "lunacek": 2.5,
}


class TestFunction:
    """A native test function ``f: R^d -> R`` for any ``d``.

    Parameters
    ----------
    name : {"sphere", "ellipsoid", "rosenbrock", "rastrigin", "ackley", "schwefel", "lunacek"}
    cond : float
        Condition number of ``"ellipsoid"``, ``f(x) = sum_i cond^(i/(d-1)) x_i^2``
        (default 1e6, as BBOB's f2); ignored by the others.

    Attributes
    ----------
    name, cond

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import zo
    >>> f = zo.functions.TestFunction("rosenbrock")
    >>> f(f.xopt(5)), f(np.zeros(5))
    (0.0, 4.0)
    >>> res = zo.minimize(zo.functions.TestFunction("sphere"), np.ones(10), rng=0)
    >>> bool(res.success)
    True
    """

    __test__ = False  # not a pytest class

    def __init__(self, name: str, cond: float = 1e6):
        if name not in _XOPT:
            raise ValueError(f"unknown test function {name!r}; choose one of {sorted(_XOPT)}.")
        self.name = name
        self.cond = positive_scalar(cond, "cond")

    @property
    def native(self) -> tuple[str, float]:
        return (self.name, self.cond)

    def xopt(self, d: int) -> np.ndarray:
        """The global minimiser in ``R^d`` (Schwefel: to 6 digits)."""
        return np.full(d, _XOPT[self.name])

    def __call__(self, X, workers: int | None = None):
        """``f`` at the rows of ``X`` (``(B, d)`` -> ``(B,)``) or at one point (``(d,)`` -> float)."""
        x = as_float_array(X, "X")
        if x.ndim not in (1, 2) or x.shape[-1] == 0:
            raise ValueError(
                f"`X` must be a point of shape (d,) or a batch of shape (B, d) with d >= 1; got {x.shape}."
            )
        one = x.ndim == 1
        fn = _core.zo_function_f32 if x.dtype == np.float32 else _core.zo_function_f64
        xs = np.ascontiguousarray(x.reshape(1, -1) if one else x)
        out = fn(self.name, self.cond, xs, normalize_workers(workers))
        return float(out[0]) if one else out

    def __repr__(self) -> str:
        extra = f", cond={self.cond:g}" if self.name == "ellipsoid" else ""
        return f"optcore.zo.functions.TestFunction({self.name!r}{extra})"


sphere = TestFunction("sphere")
ellipsoid = TestFunction("ellipsoid")
rosenbrock = TestFunction("rosenbrock")
rastrigin = TestFunction("rastrigin")
ackley = TestFunction("ackley")
schwefel = TestFunction("schwefel")
lunacek = TestFunction("lunacek")

#: Every named function, by name.
ALL = {f.name: f for f in (sphere, ellipsoid, rosenbrock, rastrigin, ackley, schwefel, lunacek)}
