"""Native bilevel problems: defined exactly, computed in Rust (no Python in the loop).

``RidgeHyperparameter``
    ``x = λ``, ``y = w``; lower level ``g(λ, w) = ‖X_tr w − y_tr‖²/n_tr + Σ_j exp(λ_j) w_j²``
    (one ``λ_j`` per feature, or one scalar ``λ`` with ``per_feature=False``), upper level
    ``f(w) = ‖X_val w − y_val‖²/n_val``.
``LogisticHyperCleaning``
    ``x ∈ R^{n_tr}`` (one weight per training example), ``y = W`` (``p × K``, flattened
    row-major); ``g(x, W) = (1/n_tr) Σ_i sigmoid(x_i) CE(W; a_i, l_i) + reg ‖W‖²/2``,
    ``f(W) = (1/n_val) Σ_i CE(W; a_i, l_i)`` on the validation set (multinomial cross-entropy,
    no intercept: append a column of ones to ``X`` for one). Dense or ``scipy.sparse`` ``X``.
``Quadratic``
    ``g = ½yᵀAy + xᵀBy + aᵀy + ½xᵀCx``, ``f = ½yᵀQy + xᵀRy + ½xᵀPx + pᵀx + qᵀy``;
    ``Quadratic.random(d_x, d_y, seed)`` builds a strongly convex instance and exposes
    ``optimal_x`` and ``optimal_value`` (closed forms).

Every problem minimises from ``y0=None`` starting the lower level at zeros. Finite-sum
problems (ridge, logistic) accept minibatches (``options={"batch_size": b}``).
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import as_float_array, check_finite, nonnegative_scalar

__all__ = [
    "NativeProblem",
    "RidgeHyperparameter",
    "LogisticHyperCleaning",
    "Quadratic",
    "NativeConstrainedProblem",
    "ConstrainedToy",
    "SVMHyperparameter",
    "SVMPrimalHyperparameter",
]


class NativeProblem:
    """Base class of the native problems: a bilevel problem computed in Rust, passed to
    :func:`optcore.bilevel.minimize` and :func:`optcore.bilevel.hypergradient` like a
    :class:`optcore.bilevel.Problem`. Build one of its subclasses.

    Attributes
    ----------
    d_x, d_y : int
        Dimensions of the upper-level ``x`` and lower-level ``y``.
    dtype : numpy dtype or None
        The dtype the problem computes in (None: that of ``x0``).
    n_samples : tuple of int
        ``(n_val, n_tr)``: the rows minibatches of ``f`` and ``g`` draw from (0: none).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> q = bilevel.problems.Quadratic.random(d_x=2, d_y=3, seed=0)
    >>> isinstance(q, bilevel.problems.NativeProblem), q.d_x, q.d_y, q.n_samples
    (True, 2, 3, (0, 0))
    >>> o = q.oracles(np.zeros(2), q.y_star(np.zeros(2)))    # at y*(x): the lower gradient vanishes
    >>> bool(np.linalg.norm(o["grad_g_y"]) < 1e-12)
    True
    """

    d_x: int
    d_y: int
    _handle: _core.NativeBilevel
    dtype: np.dtype | None = None

    @property
    def n_samples(self) -> tuple[int, int]:
        """``(n_val, n_tr)``: rows that minibatches of ``f`` and ``g`` draw from (0: none)."""
        return tuple(self._handle.n_samples)

    def _dtype(self, x_dtype: np.dtype) -> np.dtype:
        if self.dtype is not None:
            return self.dtype
        return np.dtype(np.float32) if x_dtype == np.float32 else np.dtype(np.float64)

    def _handle_for(self, dtype: np.dtype):
        return self._handle

    def oracles(self, x, y, v=None) -> dict:
        """Gradients of ``f`` and ``g`` (``grad_f_x``, ``grad_f_y``, ``grad_g_x``,
        ``grad_g_y``), the values ``f`` and ``g`` and, with ``v``, ``hvp_yy`` and ``jvp_xy``
        at ``(x, y)``."""
        dtype = self._dtype(np.asarray(x).dtype)
        fn = _core.bilevel_eval_f32 if dtype == np.float32 else _core.bilevel_eval_f64
        c = lambda a: np.ascontiguousarray(as_float_array(a, "array"), dtype=dtype).reshape(-1)  # noqa: E731
        return fn(self._handle, c(x), c(y), None if v is None else c(v))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d_x={self.d_x}, d_y={self.d_y})"


def _matrix(X, name: str, dtype):
    """``("dense", flat, n, p)`` or ``("csr", indptr, indices, data, n, p)`` of ``dtype``."""
    try:
        import scipy.sparse as sp  # noqa: PLC0415
    except ImportError:  # pragma: no cover - scipy is a dependency
        sp = None
    if sp is not None and sp.issparse(X):
        X = sp.csr_array(X)
        X.sum_duplicates()
        data = np.ascontiguousarray(as_float_array(X.data, name), dtype=dtype)
        check_finite(data, name)
        n, p = X.shape
        return (
            "csr",
            np.ascontiguousarray(X.indptr, np.int64),
            np.ascontiguousarray(X.indices, np.int64),
            data,
            n,
            p,
        ), (n, p)
    arr = as_float_array(X, name)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 2-D array (or a scipy.sparse matrix); got shape {arr.shape}.")
    check_finite(arr, name)
    return ("dense", np.ascontiguousarray(arr, dtype=dtype).reshape(-1), *arr.shape), arr.shape


def _data_dtype(X, dtype):
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"`dtype` must be float32 or float64; got {dtype}.")
        return dtype
    d = getattr(X, "dtype", np.float64)
    return np.dtype(np.float32) if d == np.float32 else np.dtype(np.float64)


class RidgeHyperparameter(NativeProblem):
    """Ridge regularisation weights ``exp(λ)`` chosen on a validation set (module docs).

    Parameters
    ----------
    X_tr, y_tr, X_val, y_val : array_like
        Training and validation data (``X`` dense 2-D or ``scipy.sparse``).
    per_feature : bool
        One ``λ_j`` per feature (``d_x = p``) or one scalar (``d_x = 1``).
    dtype : float32 or float64, optional
        Default: float32 when ``X_tr`` is float32, float64 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> rng = np.random.default_rng(0)
    >>> X, w = rng.normal(size=(80, 5)), rng.normal(size=5)
    >>> t = X @ w + 0.5 * rng.normal(size=80)
    >>> prob = bilevel.problems.RidgeHyperparameter(X[:40], t[:40], X[40:], t[40:], per_feature=False)
    >>> res = bilevel.minimize(prob, np.zeros(1), method="aid", outer="lbfgs", tol=1e-8)
    >>> bool(res.success), bool(abs(res.fun - prob.value(res.x)) < 1e-8)   # fun = f(w*(λ)) = F(λ)
    (True, True)
    """

    def __init__(self, X_tr, y_tr, X_val, y_val, *, per_feature: bool = True, dtype=None):
        self.dtype = _data_dtype(X_tr, dtype)
        mtr, (n, p) = _matrix(X_tr, "X_tr", self.dtype)
        mval, (nv, pv) = _matrix(X_val, "X_val", self.dtype)
        if pv != p:
            raise ValueError(f"`X_val` has {pv} columns but `X_tr` has {p}.")
        t = np.ascontiguousarray(as_float_array(y_tr, "y_tr"), dtype=self.dtype).reshape(-1)
        tv = np.ascontiguousarray(as_float_array(y_val, "y_val"), dtype=self.dtype).reshape(-1)
        if t.size != n or tv.size != nv:
            raise ValueError(f"`y_tr` must have {n} entries and `y_val` {nv}; got {t.size} and {tv.size}.")
        check_finite(t, "y_tr")
        check_finite(tv, "y_val")
        ctor = _core.bilevel_ridge_f32 if self.dtype == np.float32 else _core.bilevel_ridge_f64
        self._handle = ctor(mtr, t, mval, tv, bool(per_feature))
        self.per_feature = bool(per_feature)
        self.d_x, self.d_y = (p if per_feature else 1), p
        self._data = (X_tr, t, X_val, tv)

    def _dense(self):
        X, t, Xv, tv = self._data
        dense = lambda A: np.asarray(A.toarray() if hasattr(A, "toarray") else A, dtype=np.float64)  # noqa: E731
        return dense(X), t.astype(np.float64), dense(Xv), tv.astype(np.float64)

    def y_star(self, lam) -> np.ndarray:
        """``w*(λ)`` by a dense solve (NumPy, float64)."""
        X, t, _, _ = self._dense()
        n, p = X.shape
        lam = np.broadcast_to(np.asarray(lam, np.float64).reshape(-1), (p,))
        H = 2 * X.T @ X / n + 2 * np.diag(np.exp(lam))
        return np.linalg.solve(H, 2 * X.T @ t / n)

    def value(self, lam) -> float:
        """``F(λ) = f(w*(λ))`` (NumPy, float64)."""
        _, _, Xv, tv = self._dense()
        r = Xv @ self.y_star(lam) - tv
        return float(r @ r / len(tv))

    def hypergradient_closed_form(self, lam) -> np.ndarray:
        """``∇F(λ) = −2 exp(λ) ⊙ w* ⊙ H⁻¹∇_w f`` (summed for a scalar ``λ``), NumPy float64."""
        X, _, Xv, tv = self._dense()
        n, p = X.shape
        lam_v = np.broadcast_to(np.asarray(lam, np.float64).reshape(-1), (p,))
        H = 2 * X.T @ X / n + 2 * np.diag(np.exp(lam_v))
        w = self.y_star(lam)
        v = np.linalg.solve(H, 2 * Xv.T @ (Xv @ w - tv) / len(tv))
        g = -2 * np.exp(lam_v) * w * v
        return g if self.per_feature else np.array([g.sum()])


class LogisticHyperCleaning(NativeProblem):
    """Data hyper-cleaning with multinomial logistic regression (module docs).

    Parameters
    ----------
    X_tr : array_like or scipy.sparse matrix, shape (n_tr, p)
    y_tr : array_like of int, shape (n_tr,)
        Training labels (possibly corrupted) in ``0..classes-1``.
    X_val, y_val
        Clean validation data.
    reg : float
        Ridge weight of the lower level, ``reg ‖W‖²/2``.
    classes : int, optional
        Default ``max(labels) + 1``.
    dtype : float32 or float64, optional
        Default: float32 when ``X_tr`` is float32, float64 otherwise.

    Examples
    --------
    Flip a third of the training labels; the upper level learns to down-weight them.

    >>> import numpy as np
    >>> from optcore import bilevel
    >>> rng = np.random.default_rng(0)
    >>> X = np.hstack([rng.normal(size=(90, 2)), np.ones((90, 1))])
    >>> labels = (X[:, 0] > 0).astype(int)
    >>> noisy = labels.copy(); noisy[:20] = 1 - noisy[:20]
    >>> prob = bilevel.problems.LogisticHyperCleaning(X[:60], noisy[:60], X[60:], labels[60:])
    >>> res = bilevel.minimize(prob, np.zeros(60), method="aid", maxiter=200, warn=False)
    >>> prob.d_x, prob.d_y, bool(res.x[:20].mean() < res.x[20:].mean())   # flipped rows weigh less
    (60, 6, True)
    """

    def __init__(self, X_tr, y_tr, X_val, y_val, *, reg: float = 1e-3, classes: int | None = None, dtype=None):
        self.dtype = _data_dtype(X_tr, dtype)
        mtr, (n, p) = _matrix(X_tr, "X_tr", self.dtype)
        mval, (nv, pv) = _matrix(X_val, "X_val", self.dtype)
        if pv != p:
            raise ValueError(f"`X_val` has {pv} columns but `X_tr` has {p}.")
        lt, lv = (np.asarray(y_tr).reshape(-1), np.asarray(y_val).reshape(-1))
        for name, lab, m in (("y_tr", lt, n), ("y_val", lv, nv)):
            if lab.size != m:
                raise ValueError(f"`{name}` must have {m} labels; got {lab.size}.")
            if lab.dtype.kind not in "iu" or (lab.size and lab.min() < 0):
                raise ValueError(f"`{name}` must hold non-negative integer class labels.")
        k = int(max(lt.max(), lv.max()) + 1) if classes is None else int(classes)
        reg = nonnegative_scalar(reg, "reg")
        ctor = _core.bilevel_logistic_f32 if self.dtype == np.float32 else _core.bilevel_logistic_f64
        self._handle = ctor(mtr, lt.astype(np.int64).tolist(), mval, lv.astype(np.int64).tolist(), k, reg)
        self.classes, self.reg, self.n_features = k, reg, p
        self.d_x, self.d_y = n, p * k

    def weights(self, y) -> np.ndarray:
        """The ``(p, K)`` weight matrix of a lower-level point ``y``."""
        return np.asarray(y).reshape(self.n_features, self.classes)

    def predict(self, y, X) -> np.ndarray:
        """Class predictions ``argmax_k (X W)_k``."""
        return np.asarray(X @ self.weights(y)).argmax(axis=1)

    def accuracy(self, y, X, labels) -> float:
        """Fraction of ``labels`` predicted correctly."""
        return float(np.mean(self.predict(y, X) == np.asarray(labels)))


class Quadratic(NativeProblem):
    """The quadratic bilevel problem (module docs), float64 data serving both dtypes.

    Build one from its matrices, or a random strongly convex one with :meth:`random`.
    ``optimal_x`` and ``optimal_value`` are computed in closed form:
    ``y*(x) = −A⁻¹(Bᵀx + a)``, ``F`` is quadratic in ``x``.

    Parameters
    ----------
    A : array_like, shape (d_y, d_y)
        The lower level's Hessian, symmetric positive definite.
    B : array_like, shape (d_x, d_y)
        The lower level's coupling; its shape sets ``d_x`` and ``d_y``.
    a : array_like, shape (d_y,)
        The lower level's linear term.
    C : array_like, shape (d_x, d_x)
        The lower level's ``x``-only term (it does not move ``y*``).
    Q, R, P : array_like, shapes (d_y, d_y), (d_x, d_y), (d_x, d_x)
        The upper level's quadratic terms.
    p, q : array_like, shapes (d_x,), (d_y,)
        The upper level's linear terms.

    Examples
    --------
    ``g = ½y² − xy``, ``f = ½(y − 1)² + ½x²`` (dropping the constant): ``y* = x``, so
    ``F(x) = ½(x − 1)² + ½x²`` is minimised at ``x = 1/2``.

    >>> import numpy as np
    >>> from optcore import bilevel
    >>> one, zero = np.ones((1, 1)), np.zeros((1, 1))
    >>> q = bilevel.problems.Quadratic(one, -one, [0.0], zero, one, zero, one, [0.0], [-1.0])
    >>> q.optimal_x.tolist(), round(q.optimal_value, 6)
    ([0.5], -0.25)
    >>> res = bilevel.minimize(q, np.zeros(1), method="aid", tol=1e-8)
    >>> bool(res.success), np.round(res.x, 6).tolist()
    (True, [0.5])
    """

    def __init__(self, A, B, a, C, Q, R, P, p, q):
        arrs = {}
        for name, v in zip("A B a C Q R P p q".split(), (A, B, a, C, Q, R, P, p, q)):
            arr = np.asarray(as_float_array(v, name), dtype=np.float64)
            check_finite(arr, name)
            arrs[name] = arr
        dx, dy = arrs["B"].shape if arrs["B"].ndim == 2 else (0, 0)
        shapes = {
            "A": (dy, dy),
            "B": (dx, dy),
            "a": (dy,),
            "C": (dx, dx),
            "Q": (dy, dy),
            "R": (dx, dy),
            "P": (dx, dx),
            "p": (dx,),
            "q": (dy,),
        }
        for name, shp in shapes.items():
            if arrs[name].shape != shp or 0 in shp:
                raise ValueError(f"`{name}` must have shape {shp} (from B's shape (d_x, d_y)); got {arrs[name].shape}.")
        if np.linalg.eigvalsh((arrs["A"] + arrs["A"].T) / 2).min() <= 0:
            raise ValueError("`A` must be symmetric positive definite (the lower level strongly convex).")
        self._m = arrs
        self.d_x, self.d_y = dx, dy
        keys = dict(zip("A B a C Q R P p q".split(), "a_mat b_mat a_vec c_mat q_mat r_mat p_mat p_vec q_vec".split()))
        spec = {key: np.ascontiguousarray(arrs[k]).reshape(-1) for k, key in keys.items()}
        self._handle = _core.bilevel_quadratic({"dx": dx, "dy": dy, **spec})

    @classmethod
    def random(cls, d_x: int = 10, d_y: int = 100, seed=0, *, mu: float = 0.1, coupling: float = 0.1) -> Quadratic:
        """A random instance: ``A`` with eigenvalues in ``[mu, 1]``, couplings ``B`` and
        ``R`` of spectral norm ``coupling``, ``Q`` positive semidefinite with eigenvalues in
        ``[0, 1]``, ``P`` with eigenvalues in ``[0.5, 1]`` (so ``F`` is strongly convex for
        ``coupling ≤ 0.1 mu``-ish; checked)."""
        rng = np.random.default_rng(seed)

        def spd(d, lo, hi):
            U, _ = np.linalg.qr(rng.standard_normal((d, d)))
            return (U * rng.uniform(lo, hi, d)) @ U.T

        def coupled(m, n):
            G = rng.standard_normal((m, n))
            return coupling * G / np.linalg.norm(G, 2)

        prob = cls(
            spd(d_y, mu, 1.0),
            coupled(d_x, d_y),
            rng.standard_normal(d_y),
            np.zeros((d_x, d_x)),
            spd(d_y, 0.0, 1.0),
            coupled(d_x, d_y),
            spd(d_x, 0.5, 1.0),
            rng.standard_normal(d_x),
            rng.standard_normal(d_y),
        )
        if np.linalg.eigvalsh(prob._hessian_F()).min() <= 0:
            raise ValueError("this random instance is not strongly convex in x; lower `coupling`.")
        return prob

    def y_star(self, x) -> np.ndarray:
        """``y*(x) = −A⁻¹(Bᵀx + a)``."""
        m = self._m
        return -np.linalg.solve(m["A"], m["B"].T @ np.asarray(x, np.float64) + m["a"])

    def upper(self, x, y) -> float:
        """``f(x, y)``."""
        m = self._m
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        return float(0.5 * y @ m["Q"] @ y + x @ m["R"] @ y + 0.5 * x @ m["P"] @ x + m["p"] @ x + m["q"] @ y)

    def value(self, x) -> float:
        """``F(x) = f(x, y*(x))``."""
        return self.upper(x, self.y_star(x))

    def hypergradient_closed_form(self, x) -> np.ndarray:
        """``∇F(x) = ∇ₓf − B A⁻¹ ∇ᵧf`` at ``y*(x)``."""
        m = self._m
        x = np.asarray(x, np.float64)
        y = self.y_star(x)
        gx = m["R"] @ y + m["P"] @ x + m["p"]
        gy = m["Q"] @ y + m["R"].T @ x + m["q"]
        return gx - m["B"] @ np.linalg.solve(m["A"], gy)

    def _hessian_F(self) -> np.ndarray:
        m = self._m
        M = -np.linalg.solve(m["A"], m["B"].T)
        return M.T @ m["Q"] @ M + m["R"] @ M + M.T @ m["R"].T + m["P"]

    @property
    def optimal_x(self) -> np.ndarray:
        """The minimiser of ``F``."""
        return np.linalg.solve(self._hessian_F(), -self.hypergradient_closed_form(np.zeros(self.d_x)))

    @property
    def optimal_value(self) -> float:
        """``F(optimal_x)``."""
        return self.value(self.optimal_x)


# Constrained lower levels (``method="lvhba"``).


class NativeConstrainedProblem:
    """Base class of the native problems with a constrained lower level (``method="lvhba"``):
    ``y*(x) ∈ argmin_y {g(x, y) : h(x, y) ≤ 0}``, computed in Rust. Build one of its
    subclasses (:class:`ConstrainedToy`, :class:`SVMHyperparameter`).

    Attributes
    ----------
    d_x, d_y : int
        Dimensions of ``x`` and ``y``.
    m, n_eq : int
        Number of constraints ``h_i``, and how many of them (the last ``n_eq``) are equalities.
    dtype : numpy dtype or None
        The dtype the problem computes in (None: that of ``x0``).

    Examples
    --------
    >>> from optcore import bilevel
    >>> toy = bilevel.problems.ConstrainedToy(n=3)
    >>> isinstance(toy, bilevel.problems.NativeConstrainedProblem), toy.d_x, toy.d_y, toy.m, toy.n_eq
    (True, 3, 6, 1, 1)
    """

    d_x: int
    d_y: int
    m: int
    n_eq: int
    _handle: _core.NativeConstrained
    dtype: np.dtype | None = None

    def _init_dims(self):
        self.d_x, self.d_y, self.m, self.n_eq = self._handle.dims

    def _dtype(self, x_dtype: np.dtype) -> np.dtype:
        if self.dtype is not None:
            return self.dtype
        return np.dtype(np.float32) if x_dtype == np.float32 else np.dtype(np.float64)

    def _handle_for(self, dtype: np.dtype):
        return self._handle

    def _default_y0(self, dtype: np.dtype) -> np.ndarray:
        """The lower-level start of ``minimize(..., y0=None)``: zeros unless the problem says otherwise."""
        return np.zeros(self.d_y, dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d_x={self.d_x}, d_y={self.d_y}, m={self.m}, n_eq={self.n_eq})"


class ConstrainedToy(NativeConstrainedProblem):
    """The synthetic problem of LV-HBA's paper (Yao et al., ICLR 2024, Section 5, "LLC").

    ``x ∈ Rⁿ``, ``y = (y₁, y₂) ∈ R²ⁿ``; upper level ``f = ½‖x − y₂‖² + ½‖y₁ − a𝟏‖²``, lower
    level ``g = ½‖y₁‖² − xᵀy₁ + 𝟏ᵀy₂`` subject to the coupled equality
    ``h = −(𝟏ᵀx + 𝟏ᵀy) = 0``. The lower level is linear in ``y₂``: its solution set is not a
    singleton (the optimistic solution is meant). Closed form: ``x* = (a − 4)/10·𝟏``,
    ``y₁* = x* + 𝟏``, ``y₂* = −2x* − 𝟏``, multiplier ``λ* = 1``; the paper's instance is
    ``a = 1`` (``x* = −0.3·𝟏``). With ``a = 2/3``, ``f(x*, y*) = 0``: the upper level is
    consistent with the lower one, and the penalised reformulation is exact for every
    penalty (with ``a = 1`` its minimiser is ``O(1/c)`` away from the solution).

    Parameters
    ----------
    n : int
        Dimension of ``x`` (the paper: 100).
    a : float
        The upper level's target for ``y₁``.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> toy = bilevel.problems.ConstrainedToy(n=3, a=2 / 3)
    >>> res = bilevel.minimize(toy, np.ones(3), method="lvhba", maxiter=100_000, tol=1e-8)
    >>> res.success, bool(np.allclose(res.x, toy.optimal_x, atol=1e-6))
    (True, True)
    """

    def __init__(self, n: int = 100, a: float = 1.0):
        from .._validation import positive_int  # noqa: PLC0415

        self.n = positive_int(n, "n")
        a = float(a)
        if not np.isfinite(a):
            raise ValueError(f"`a` must be finite; got {a!r}.")
        self.a = a
        self._handle = _core.bilevel_llc_toy(self.n, a)
        self._init_dims()

    @property
    def optimal_x(self) -> np.ndarray:
        """``x* = (a − 4)/10·𝟏``."""
        return np.full(self.n, (self.a - 4.0) / 10.0)

    @property
    def optimal_y(self) -> np.ndarray:
        """``y* = (x* + 𝟏, −2x* − 𝟏)``."""
        xs = (self.a - 4.0) / 10.0
        return np.concatenate([np.full(self.n, xs + 1.0), np.full(self.n, -2.0 * xs - 1.0)])

    optimal_multiplier = 1.0

    def penalised_point(self, c: float, gamma1: float = 1.0) -> tuple:
        """The point LV-HBA converges to at a fixed penalty ``c`` (``options={"power": 0,
        "c0": c}``): the stationary point of the penalised reformulation ``f/c + g − v_γ``
        with ``z = λ``, ``h(x, θ) = h(x, y) = 0``. By symmetry every coordinate is the same;
        per coordinate, with ``x = s``, ``y = (u, w)``, ``θ = (p, q)``, multipliers ``l``
        (lower) and ``m`` (upper), it solves the linear system
        ``p − s − l + (p − u)/γ₁ = 0``, ``1 − l + (q − w)/γ₁ = 0``, ``s + p + q = 0``,
        ``(s − w)/c − u − m + p + l = 0``, ``(u − a)/c + u − s − (u − p)/γ₁ − m = 0``,
        ``(w − s)/c + 1 − (w − q)/γ₁ − m = 0``, ``s + u + w = 0``.

        Returns
        -------
        x, y : ndarray
        multiplier : float
            ``λ``. For ``a = 1``, ``γ₁ = 1``: ``x = x* − 0.24/(c + 1.2)·𝟏``, a relative
            error ``0.8/(c + 1.2)``.
        """
        c, g = float(c), float(gamma1)
        if not (c > 0 and g > 0 and np.isfinite(c) and np.isfinite(g)):
            raise ValueError(f"`c` and `gamma1` must be positive and finite; got {c!r}, {g!r}.")
        # unknowns s, u, w, p, q, l, m
        A = np.array(
            [
                [-1, -1 / g, 0, 1 + 1 / g, 0, -1, 0],
                [0, 0, -1 / g, 0, 1 / g, -1, 0],
                [1, 0, 0, 1, 1, 0, 0],
                [1 / c, -1, -1 / c, 1, 0, 1, -1],
                [-1, 1 / c + 1 - 1 / g, 0, 1 / g, 0, 0, -1],
                [-1 / c, 0, 1 / c - 1 / g, 0, 1 / g, 0, -1],
                [1, 1, 1, 0, 0, 0, 0],
            ]
        )
        b = np.array([0.0, -1.0, 0.0, 0.0, self.a / c, -1.0, 0.0])
        s, u, w, _, _, lam, _ = np.linalg.solve(A, b)
        n = self.n
        return np.full(n, s), np.concatenate([np.full(n, u), np.full(n, w)]), float(lam)


def _svm_data(X_tr, y_tr, X_val, y_val, dtype, intercept: bool) -> tuple:
    """Validated SVM data: ``(dtype, Z_tr, t_tr, Z_val, t_val)``, features as contiguous arrays
    of ``dtype`` (a column of ones appended when ``intercept``), labels as lists of ±1."""
    dt = np.dtype(np.float64 if dtype is None else dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"`dtype` must be float32 or float64; got {dt}.")

    def feats(X, name):
        X = as_float_array(X, name)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"`{name}` must be a non-empty 2-D array; got shape {X.shape}.")
        check_finite(X, name)
        if intercept:
            X = np.hstack([X, np.ones((X.shape[0], 1))])
        return np.ascontiguousarray(X, dtype=dt)

    def labels(t, name, n):
        t = as_float_array(t, name).reshape(-1)
        if t.size != n:
            raise ValueError(f"`{name}` must have {n} labels; got {t.size}.")
        if np.all(np.isin(t, (0.0, 1.0))):
            t = 2.0 * t - 1.0
        if not np.all(np.isin(t, (-1.0, 1.0))):
            raise ValueError(f"`{name}` must hold labels in {{-1, +1}} (or {{0, 1}}).")
        return [float(v) for v in t]

    Z, Zv = feats(X_tr, "X_tr"), feats(X_val, "X_val")
    if Z.shape[1] != Zv.shape[1]:
        raise ValueError(
            f"`X_tr` and `X_val` must have the same number of columns; got {Z.shape[1]} and {Zv.shape[1]}."
        )
    return dt, Z, labels(y_tr, "y_tr", Z.shape[0]), Zv, labels(y_val, "y_val", Zv.shape[0])


class SVMHyperparameter(NativeConstrainedProblem):
    """Per-sample box bounds of a linear soft-margin SVM, chosen on a validation set.

    ``x = C ∈ R^{n_tr}``, ``y = α ∈ R^{n_tr}``: the lower level is the SVM dual
    ``min_α ½‖Zᵀ(t∘α)‖² − 𝟏ᵀα`` subject to the box ``0 ≤ α_i ≤ C_i`` (constraints
    ``h = (−α, α − C) ≤ 0`` that couple ``C`` and ``α``; the intercept is a constant feature
    appended to ``Z`` as in liblinear, so there is no equality constraint); the upper level is
    the mean logistic loss of ``w = Zᵀ(t∘α)`` on the validation set. The lower level is
    convex but not strictly (its solution need not be unique). Use
    ``project_x=optcore.fixed_point.operators.Box(0, C_max)`` to keep ``C`` in a range.

    Parameters
    ----------
    X_tr, X_val : array_like
        Features, ``(n_tr, p)`` and ``(n_val, p)``.
    y_tr, y_val : array_like
        Labels in ``{-1, +1}`` (``{0, 1}`` are mapped to ``{-1, +1}``).
    intercept : bool
        Append a constant feature (default True).
    dtype : numpy dtype, optional
        float64 (default) or float32.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> from optcore.fixed_point.operators import Box
    >>> r = np.random.default_rng(0)
    >>> X = r.normal(size=(60, 3)); t = np.sign(X[:, 0] + 0.3 * r.normal(size=60))
    >>> prob = bilevel.problems.SVMHyperparameter(X[:40], t[:40], X[40:], t[40:])
    >>> res = bilevel.minimize(prob, np.ones(40), method="lvhba", maxiter=2000, warn=False,
    ...                        options={"project_x": Box(0.0, 10.0, dim=40)})
    >>> bool(res.fun < np.log(2)), bool(np.all(res.multipliers >= 0))  # f(C, 0) = log 2
    (True, True)
    """

    def __init__(self, X_tr, y_tr, X_val, y_val, *, intercept: bool = True, dtype=None):
        dt, Z, t, Zv, tv = _svm_data(X_tr, y_tr, X_val, y_val, dtype, intercept)
        fn = _core.bilevel_svm_f32 if dt == np.float32 else _core.bilevel_svm_f64
        self._handle = fn(Z.reshape(-1), t, Zv.reshape(-1), tv, Z.shape[1])
        self.dtype = dt
        self._init_dims()

    @staticmethod
    def weights(X, y, alpha, intercept: bool = True) -> np.ndarray:
        """``w = Zᵀ(t∘α)`` (the last entry the intercept when ``intercept``)."""
        Z = np.hstack([X, np.ones((X.shape[0], 1))]) if intercept else np.asarray(X)
        t = np.where(np.asarray(y) > 0, 1.0, -1.0)
        return Z.T @ (t * alpha)


class SVMPrimalHyperparameter(NativeConstrainedProblem):
    """Per-sample weights of a linear squared-hinge SVM in primal form, chosen on a validation
    set: the SVM experiment of LV-HBA's paper (Yao et al., ICLR 2024, Section 5).

    ``x = c ∈ R^{n_tr}`` (log weights: training sample ``i`` weighs ``e^{c_i}``),
    ``y = (w, b, ξ) ∈ R^{p+1+n_tr}``. The lower level is the SVM
    ``min ½‖w‖² + ½ Σ_i e^{c_i} ξ_i²`` subject to the margins
    ``h_i(y) = 1 − ξ_i − t_i(x_iᵀw + b) ≤ 0`` (strongly convex in ``w`` and ``ξ``; the
    constraints do not involve ``c``; at its solution ``ξ_i = max(0, 1 − t_i(x_iᵀw + b))``). The
    upper level is ``f(y) = Σ_j ℓ(t_j(x_jᵀw + b)/‖w‖)`` over the validation set with
    ``ℓ(u) = leaky_relu(2σ(−5u) − 1)`` (slope 0.01): a smoothed 0-1 loss of the normalised
    margin, about the number of misclassified validation samples (the paper's plots show
    ``f/(n_val/10)``). ``f`` is not defined at ``w = 0``; ``minimize(..., y0=None)`` starts from
    :attr:`start`. Unlike :class:`SVMHyperparameter` (the dual, whose Hessian has the rank of
    the data), this lower level is strongly convex in ``w`` and ``ξ``.

    Parameters
    ----------
    X_tr, X_val : array_like
        Features, ``(n_tr, p)`` and ``(n_val, p)`` (no intercept column: ``b`` is a variable).
    y_tr, y_val : array_like
        Labels in ``{-1, +1}`` (``{0, 1}`` are mapped to ``{-1, +1}``).
    dtype : numpy dtype, optional
        float64 (default) or float32.

    Attributes
    ----------
    n_features : int
        ``p``.
    start : ndarray
        The paper's lower-level start ``w = 𝟏``, ``b = 0``, ``ξ = 𝟏`` (float64).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> r = np.random.default_rng(0)
    >>> X = r.normal(size=(80, 2)); t = np.sign(X[:, 0] + 0.5 * r.normal(size=80))
    >>> prob = bilevel.problems.SVMPrimalHyperparameter(X[:50], t[:50], X[50:], t[50:])
    >>> c0 = np.full(50, -1.0)
    >>> res = bilevel.minimize(prob, c0, method="lvhba", maxiter=3000, warn=False, rng=0, options={"c0": 300.0})
    >>> w, b, xi = prob.split(res.y)
    >>> bool(res.constraint_violation < 0.1), bool(np.all(res.multipliers >= 0))
    (True, True)
    >>> start = prob.upper_loss(prob.lower_solution(c0), X[50:], t[50:])  # the exact SVM at c0
    >>> ys = prob.lower_solution(res.x)  # ... and re-solved at the returned weights
    >>> bool(res.fun < start), bool(prob.upper_loss(ys, X[50:], t[50:]) < start)
    (True, True)

    ``options={"c0": ...}`` puts ``f`` (a sum over the validation set) on ``g``'s scale. At small
    weights (the paper starts at ``c ~ U(−6, −5)``) the lower level's curvature in ``ξ``,
    ``e^c``, is far below that in ``w``, ``y`` stays away from ``y*(c)`` and ``c`` tends to
    drift down (``benches/results/bilevel_lvhba.md``, part 2b).
    """

    def __init__(self, X_tr, y_tr, X_val, y_val, *, dtype=None):
        dt, Z, t, Zv, tv = _svm_data(X_tr, y_tr, X_val, y_val, dtype, intercept=False)
        fn = _core.bilevel_svm_primal_f32 if dt == np.float32 else _core.bilevel_svm_primal_f64
        self._handle = fn(Z.reshape(-1), t, Zv.reshape(-1), tv, Z.shape[1])
        self.dtype = dt
        self.n_features = Z.shape[1]
        self._Z = np.asarray(Z, np.float64)
        self._t = np.asarray(t)
        self._init_dims()

    @property
    def start(self) -> np.ndarray:
        return np.concatenate([np.ones(self.n_features), [0.0], np.ones(self.d_x)])

    def _default_y0(self, dtype: np.dtype) -> np.ndarray:
        return self.start.astype(dtype)

    def split(self, y) -> tuple:
        """``(w, b, ξ)`` of a lower-level point ``y``."""
        y = np.asarray(y, np.float64)
        p = self.n_features
        return y[:p], float(y[p]), y[p + 1 :]

    def decision(self, y, X) -> np.ndarray:
        """``Xw + b``."""
        w, b, _ = self.split(y)
        return np.asarray(X, np.float64) @ w + b

    def accuracy(self, y, X, labels) -> float:
        """The fraction of ``labels`` (±1) that ``sign(Xw + b)`` predicts."""
        return float(np.mean(np.sign(self.decision(y, X)) == np.where(np.asarray(labels) > 0, 1.0, -1.0)))

    def upper_loss(self, y, X, labels) -> float:
        """``Σ_j ℓ(t_j(x_jᵀw + b)/‖w‖)`` on ``(X, labels)`` (``f`` on the validation set)."""
        w = self.split(y)[0]
        u = np.where(np.asarray(labels) > 0, 1.0, -1.0) * self.decision(y, X) / np.linalg.norm(w)
        v = 2.0 / (1.0 + np.exp(np.clip(5.0 * u, -700, 700))) - 1.0
        return float(np.sum(np.where(v > 0, v, 0.01 * v)))

    def lower_solution(self, c, *, tol: float = 1e-10, maxiter: int = 100) -> np.ndarray:
        """The lower level's solution ``y*(c) = (w, b, ξ)`` (float64): the weighted
        squared-hinge SVM ``min ½‖w‖² + ½ Σ e^{c_i} max(0, 1 − t_i(x_iᵀw + b))²`` by a
        generalised Newton method with backtracking, to a gradient norm ``<= tol``. Its
        multipliers are ``λ_i = e^{c_i} ξ_i``."""
        c = np.asarray(c, np.float64).reshape(-1)
        if c.shape != (self.d_x,) or not np.all(np.isfinite(c)) or np.any(c > 700):
            raise ValueError(f"`c` must be {self.d_x} finite log-weights below 700 (e^c finite); got shape {c.shape}.")
        A = np.hstack([self._Z, np.ones((self._Z.shape[0], 1))]) * self._t[:, None]
        e, p = np.exp(c), self.n_features
        reg = np.ones(p + 1)
        reg[p] = 0.0

        def parts(v):
            s = np.maximum(0.0, 1.0 - A @ v)
            return 0.5 * (v[:p] @ v[:p]) + 0.5 * (e * s) @ s, reg * v - A.T @ (e * s), s

        v = np.zeros(p + 1)
        for _ in range(maxiter):
            val, g, s = parts(v)
            if np.linalg.norm(g) <= tol:
                break
            act = s > 0
            H = np.diag(reg + 1e-12) + (A[act].T * e[act]) @ A[act]
            d = np.linalg.solve(H, -g)
            step = 1.0
            while parts(v + step * d)[0] > val + 1e-4 * step * (g @ d) and step > 1e-10:
                step *= 0.5
            v = v + step * d
        return np.concatenate([v, np.maximum(0.0, 1.0 - A @ v)])
