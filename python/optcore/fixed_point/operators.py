"""Native nonexpansive operators for :func:`optcore.fixed_point.halpern`.

Each class wraps an operator implemented in Rust, so that a fixed-point problem built from
them runs without Python in the loop. Build composites in Python and pass the result to
``halpern``::

    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> ball = ops.Ball(np.zeros(3), 1.0)
    >>> plane = ops.Affine([[1.0, 1.0, 1.0]], [1.0])
    >>> T = ops.DouglasRachford(ball, plane)        # (I + R_plane R_ball) / 2
    >>> P = plane @ ball                            # composition: ball first, then plane
    >>> np.round(P(np.array([2.0, 0.0, 0.0])), 6)
    array([1., 0., 0.])

Every operator is callable on a 1-D array of length ``dim`` (float32 stays float32; other
real dtypes are computed in float64).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _core
from .._validation import as_float_array, check_finite, nonnegative_scalar, positive_int, positive_scalar

__all__ = [
    "Operator",
    "Identity",
    "Box",
    "Ball",
    "Simplex",
    "Affine",
    "LinearResolvent",
    "Compose",
    "Average",
    "Reflection",
    "reflect",
    "DouglasRachford",
]


class Operator:
    """Base class: a map ``T: R^d -> R^d`` implemented natively.

    ``T(x)`` applies it; ``S @ T`` is the composition ``x -> S(T(x))``. The subclasses below
    build the operators; this class is not instantiated directly.

    Attributes
    ----------
    dim : int
        The dimension ``d`` of the space the operator acts on.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> T = ops.Box(0.0, 1.0, dim=2) @ ops.Ball(np.zeros(2), 2.0)   # the ball first, then the box
    >>> isinstance(T, ops.Operator), T.dim, T(np.array([3.0, -4.0])).tolist()
    (True, 2, [1.0, 0.0])
    """

    _handle: _core.NativeOperator

    @property
    def dim(self) -> int:
        """The dimension ``d``."""
        return int(self._handle.dim)

    def __call__(self, x) -> np.ndarray:
        arr = as_float_array(x, "x")
        if arr.shape != (self.dim,):
            raise ValueError(
                f"`x` must be a 1-D array of length {self.dim} (the operator's dim); got shape {arr.shape}."
            )
        check_finite(arr, "x")
        if arr.dtype == np.float32:
            return self._handle.apply_f32(np.ascontiguousarray(arr))
        return self._handle.apply_f64(np.ascontiguousarray(arr, dtype=np.float64))

    def __matmul__(self, other):
        if not isinstance(other, Operator):
            return NotImplemented
        return Compose(self, other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


def _operator(op, name: str) -> Operator:
    if not isinstance(op, Operator):
        raise TypeError(
            f"`{name}` must be an operator from optcore.fixed_point.operators; got {type(op).__name__}. "
            "(Python callables can be passed to halpern() directly, but not combined with native operators.)"
        )
    return op


def _dim(value, name: str = "dim") -> int:
    """A dimension: a positive integer below 2**62 (``ValueError`` naming it beyond)."""
    d = positive_int(value, name)
    if d > 2**62:
        raise ValueError(f"`{name}` = {d} is too large (at most 2**62).")
    return d


def _vector(x, name: str) -> np.ndarray:
    arr = as_float_array(x, name)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array; got shape {arr.shape}.")
    return np.ascontiguousarray(arr, dtype=np.float64)


class Identity(Operator):
    """``x -> x`` on ``R^dim``.

    Useful in combinations: ``Average([T, Identity(d)], [a, 1 - a])`` relaxes ``T``.

    Parameters
    ----------
    dim : int
        The dimension, a positive integer.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> ops.Identity(3)(np.array([1.0, -2.0, 3.0]))
    array([ 1., -2.,  3.])
    """

    def __init__(self, dim: int):
        self._handle = _core.op_identity(_dim(dim))


class Box(Operator):
    """Projection onto the box ``{x : lower <= x <= upper}``: ``clip(x, lower, upper)``.

    ``lower``/``upper`` are arrays or scalars (``-inf``/``inf`` allowed); scalars broadcast to
    ``dim``, which is needed when both are scalars.

    Parameters
    ----------
    lower, upper : array_like or float
        The bounds, 1-D of length ``dim`` or scalars; ``lower <= upper`` everywhere, no NaN.
    dim : int, optional
        The dimension; inferred from ``lower`` or ``upper`` when one of them is an array.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> ops.Box(np.zeros(3), np.ones(3))(np.array([-1.0, 0.5, 2.0]))
    array([0. , 0.5, 1. ])
    """

    def __init__(self, lower, upper, dim: int | None = None):
        lo = as_float_array(lower, "lower").astype(np.float64)
        hi = as_float_array(upper, "upper").astype(np.float64)
        if dim is None:
            sizes = [a.size for a in (lo, hi) if a.ndim == 1]
            if not sizes:
                raise ValueError("`dim` is required when `lower` and `upper` are both scalars.")
            dim = sizes[0]
        dim = _dim(dim)
        try:
            lo, hi = np.broadcast_to(lo, (dim,)), np.broadcast_to(hi, (dim,))
        except ValueError:
            raise ValueError(
                f"`lower` and `upper` must be scalars or 1-D arrays of length {dim}; "
                f"got shapes {np.shape(lower)} and {np.shape(upper)}."
            ) from None
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
            raise ValueError("`lower` and `upper` must not contain NaN.")
        if np.any(lo > hi):
            i = int(np.argmax(lo > hi))
            raise ValueError(f"`lower` must be <= `upper` everywhere; lower[{i}] = {lo[i]:g} > upper[{i}] = {hi[i]:g}.")
        self.lower, self.upper = np.array(lo), np.array(hi)
        self._handle = _core.op_box(np.ascontiguousarray(lo), np.ascontiguousarray(hi))


class Ball(Operator):
    """Projection onto the Euclidean ball ``{x : ||x - center||_2 <= radius}``.

    Points inside are left unchanged; a point outside moves radially onto the sphere:
    ``center + radius (x - center) / ||x - center||``.

    Parameters
    ----------
    center : array_like, shape (dim,)
        The center, finite; its length is the dimension.
    radius : float
        The radius, ``>= 0`` (0: the projection onto the point ``center``).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> P = ops.Ball(np.zeros(2), 1.0)
    >>> np.round(P(np.array([3.0, 4.0])), 12).tolist(), P(np.array([0.3, 0.4])).tolist()
    ([0.6, 0.8], [0.3, 0.4])
    """

    def __init__(self, center, radius: float):
        c = _vector(center, "center")
        check_finite(c, "center")
        self.center, self.radius = c, nonnegative_scalar(radius, "radius")
        self._handle = _core.op_ball(c, self.radius)


class Simplex(Operator):
    """Projection onto the scaled probability simplex ``{x >= 0 : sum(x) = total}``
    (sort-based, O(d log d); the threshold is computed on ``x - max(x)``, so huge entries keep
    their precision: ``Simplex(3)([1e16, 0, 0])`` is ``[1, 0, 0]``).

    Parameters
    ----------
    dim : int
        The dimension.
    total : float
        The sum of the entries of every point of the simplex, ``> 0`` (default 1).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> ops.Simplex(3)(np.array([0.5, 0.5, -1.0])).tolist(), ops.Simplex(2, total=2.0)(np.zeros(2)).tolist()
    ([0.5, 0.5, 0.0], [1.0, 1.0])
    """

    def __init__(self, dim: int, total: float = 1.0):
        self.total = positive_scalar(total, "total")
        self._handle = _core.op_simplex(_dim(dim), self.total)


class Affine(Operator):
    """Projection onto the affine set ``{x : A x = b}``: ``x - A^T (A A^T)^{-1} (A x - b)``.

    ``A`` is ``(m, d)`` with full row rank ``m`` (a 1-D ``A`` is one hyperplane ``a . x = b``);
    ``A A^T`` is factored once.

    Parameters
    ----------
    A : array_like, shape (m, d) or (d,)
        The constraint matrix, finite, full row rank (``ValueError`` otherwise).
    b : array_like, shape (m,)
        The right-hand side.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> P = ops.Affine([[1.0, 1.0]], [1.0])        # the line x_0 + x_1 = 1
    >>> P(np.array([1.0, 1.0])).tolist()
    [0.5, 0.5]
    """

    def __init__(self, A, b):
        A = as_float_array(A, "A").astype(np.float64)
        if A.ndim == 1:
            A = A[None, :]
        if A.ndim != 2 or A.size == 0:
            raise ValueError(f"`A` must be a non-empty 2-D array of shape (m, d); got shape {A.shape}.")
        b = np.atleast_1d(as_float_array(b, "b").astype(np.float64))
        if b.shape != (A.shape[0],):
            raise ValueError(f"`b` must have shape ({A.shape[0]},) to match `A` of shape {A.shape}; got {b.shape}.")
        check_finite(A, "A")
        check_finite(b, "b")
        rank = int(np.linalg.matrix_rank(A))
        if rank < A.shape[0]:
            raise ValueError(
                f"`A` must have full row rank: rank {rank} < {A.shape[0]} rows. Remove redundant rows "
                "(e.g. with scipy.linalg.orth on A.T) or check that the constraints are consistent."
            )
        self.A, self.b = np.ascontiguousarray(A), np.ascontiguousarray(b)
        self._handle = _core.op_affine(self.A, self.b)


class LinearResolvent(Operator):
    """The reflected resolvent ``x -> 2 (I + lam L)^{-1} x - x`` of a linear monotone operator
    ``L`` (``d x d``, ``x . L x >= 0``: its symmetric part positive semidefinite); nonexpansive.
    Its fixed points are the null space of ``L``. ``I + lam L`` is LU-factored once.

    Parameters
    ----------
    L : array_like, shape (d, d)
        The linear operator, finite and monotone (``ValueError`` when the symmetric part has a
        negative eigenvalue).
    lam : float
        The resolvent's step ``> 0`` (default 1).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> R = ops.LinearResolvent(np.diag([0.0, 1.0]))   # (I + L)^{-1} = diag(1, 1/2)
    >>> R(np.array([1.0, 1.0])).tolist()               # 2 (I + L)^{-1} x - x
    [1.0, 0.0]
    """

    def __init__(self, L, lam: float = 1.0):
        L = as_float_array(L, "L").astype(np.float64)
        if L.ndim != 2 or L.shape[0] != L.shape[1] or L.size == 0:
            raise ValueError(f"`L` must be a non-empty square matrix; got shape {L.shape}.")
        check_finite(L, "L")
        self.lam = positive_scalar(lam, "lam")
        sym = 0.5 * (L + L.T)
        lmin = float(np.linalg.eigvalsh(sym).min())
        scale = max(1.0, float(np.abs(L).max()))
        if lmin < -1e-10 * scale * L.shape[0]:
            raise ValueError(
                f"`L` must be monotone (x . L x >= 0 for all x): the symmetric part (L + L.T)/2 has "
                f"eigenvalue {lmin:.3g} < 0."
            )
        self.L = np.ascontiguousarray(L)
        self._handle = _core.op_linear_resolvent(self.L, self.lam)


class Compose(Operator):
    """``Compose(T1, T2, ..., Tn)(x) = T1(T2(...Tn(x)))`` (``Tn`` applied first), as ``T1 @ T2 @ ...``.
    Alternating projections onto A and B is ``Compose(PB, PA)``.

    Parameters
    ----------
    *ops : Operator
        The operators, all of the same dimension, the last applied first (one list or tuple
        of them is accepted too).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> box, ball = ops.Box(-0.5, 0.5, dim=2), ops.Ball(np.zeros(2), 1.0)
    >>> ops.Compose(box, ball)(np.array([3.0, 4.0])).tolist()   # ball: (0.6, 0.8), then box
    [0.5, 0.5]
    """

    def __init__(self, *ops: Operator):
        if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
            ops = tuple(ops[0])
        if not ops:
            raise ValueError("`Compose` needs at least one operator.")
        self.ops = tuple(_operator(o, f"ops[{i}]") for i, o in enumerate(ops))
        _same_dim(self.ops)
        self._handle = _core.op_compose([o._handle for o in reversed(self.ops)])


class Average(Operator):
    """The convex combination ``sum_i w_i T_i`` (weights positive, summing to 1; default equal).
    ``Average([T, Identity(d)], [a, 1 - a])`` is the Krasnosel'skii–Mann relaxation of ``T``.

    Parameters
    ----------
    ops : sequence of Operator
        The operators, all of the same dimension.
    weights : array_like, optional
        One positive weight per operator, summing to 1 (within 1e-12); default equal weights.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> T = ops.Average([ops.Box(0.0, 1.0, dim=2), ops.Identity(2)], [0.25, 0.75])
    >>> T(np.array([2.0, -2.0])).tolist()               # 0.25 clip(x) + 0.75 x
    [1.75, -1.5]
    """

    def __init__(self, ops: Sequence[Operator], weights=None):
        ops = tuple(ops)
        if not ops:
            raise ValueError("`ops` must contain at least one operator.")
        self.ops = tuple(_operator(o, f"ops[{i}]") for i, o in enumerate(ops))
        _same_dim(self.ops)
        w = (
            np.full(len(ops), 1.0 / len(ops))
            if weights is None
            else as_float_array(weights, "weights").astype(np.float64)
        )
        if w.shape != (len(ops),):
            raise ValueError(f"`weights` must have one entry per operator ({len(ops)}); got shape {w.shape}.")
        if not (np.all(np.isfinite(w)) and np.all(w > 0) and abs(w.sum() - 1.0) <= 1e-12):
            raise ValueError(f"`weights` must be positive and sum to 1; got {w.tolist()} (sum {w.sum():.17g}).")
        self.weights = w
        self._handle = _core.op_average([o._handle for o in self.ops], [float(v) for v in w])


class Reflection(Operator):
    """``2 T - I`` (nonexpansive when ``T`` is firmly nonexpansive, e.g. a projection).

    Parameters
    ----------
    op : Operator
        The operator ``T`` to reflect.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> R = ops.Reflection(ops.Box(0.0, 1.0, dim=2))   # mirror image across the box's faces
    >>> R(np.array([1.5, 0.5])).tolist()
    [0.5, 0.5]
    """

    def __init__(self, op: Operator):
        self.op = _operator(op, "op")
        self._handle = _core.op_reflect(self.op._handle)


def reflect(op: Operator) -> Reflection:
    """The reflection ``2 op - I`` of a projection (or resolvent) ``op``.

    Parameters
    ----------
    op : Operator
        A projection or resolvent (firmly nonexpansive, so that the reflection is nonexpansive).

    Returns
    -------
    Reflection
        The operator ``x -> 2 op(x) - x``.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.fixed_point import operators as ops
    >>> R = ops.reflect(ops.Affine([[0.0, 1.0]], [0.0]))   # reflection across the line x_1 = 0
    >>> R(np.array([2.0, 3.0])).tolist()
    [2.0, -3.0]
    """
    return Reflection(op)


class DouglasRachford(Operator):
    """The Douglas–Rachford operator ``(I + R_B R_A) / 2`` (``R = 2P - I``) for finding a point
    of ``A ∩ B`` given the projections ``PA`` and ``PB``.

    A fixed point ``z`` gives the solution ``PA(z)`` (:meth:`shadow`). When ``A ∩ B`` is empty
    the operator has no fixed point; its infimal displacement vector is
    ``P_{cl(A - B)}(0)``, the gap vector pointing from ``B`` to ``A``.

    Parameters
    ----------
    PA, PB : Operator
        The projections onto ``A`` and ``B`` (of the same dimension).

    Examples
    --------
    >>> import numpy as np, optcore
    >>> from optcore.fixed_point import operators as ops
    >>> T = ops.DouglasRachford(ops.Box(0.0, 1.0, dim=2), ops.Affine([[1.0, 1.0]], [1.5]))
    >>> res = optcore.fixed_point.halpern(T, np.array([3.0, -2.0]), restart="adaptive")
    >>> x = T.shadow(res.x)                 # a point of the box on the line x_0 + x_1 = 1.5
    >>> bool(res.success), bool(abs(x.sum() - 1.5) < 1e-7 and x.min() >= 0 and x.max() <= 1)
    (True, True)
    """

    def __init__(self, PA: Operator, PB: Operator):
        self.PA, self.PB = _operator(PA, "PA"), _operator(PB, "PB")
        _same_dim((self.PA, self.PB))
        self._handle = _core.op_douglas_rachford(self.PA._handle, self.PB._handle)

    def shadow(self, z) -> np.ndarray:
        """``PA(z)``: the point of ``A ∩ B`` when ``z`` is a fixed point."""
        return self.PA(z)


def _same_dim(ops) -> None:
    dims = [o.dim for o in ops]
    if len(set(dims)) > 1:
        raise ValueError(f"operators must all have the same dimension; got dims {dims}.")
