"""Finite sums over the samples of sparse data: :class:`SampleSaddle` (exported by
:mod:`optcore.monotone`), the problem on which ``"vr_halpern"`` saves epochs."""

from __future__ import annotations

import numpy as np

from . import _core
from ._validation import as_float_array, check_finite, nonnegative_scalar, positive_int, positive_scalar

__all__ = ["SampleSaddle"]


def _csr(M, name: str):
    """``M`` (SciPy sparse or dense 2-D) as canonical float64 CSR (sorted, no duplicates), a copy;
    and the dtype the results take (float32 for float32 data, else float64)."""
    import scipy.sparse as sp  # noqa: PLC0415

    if sp.issparse(M):
        kind = M.dtype.kind
        if kind not in "fiub":
            raise TypeError(f"`{name}` must have real entries; got dtype {M.dtype}.")
        dtype = np.dtype(np.float32) if M.dtype == np.float32 else np.dtype(np.float64)
        A = sp.csr_matrix(M, dtype=np.float64, copy=True)
    else:
        arr = as_float_array(M, name)
        if arr.ndim != 2:
            raise ValueError(f"`{name}` must be a 2-D (N, d) matrix (SciPy sparse or dense); got shape {arr.shape}.")
        dtype = np.dtype(arr.dtype)
        A = sp.csr_matrix(np.asarray(arr, dtype=np.float64))
    if A.ndim != 2 or A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"`{name}` must be a non-empty (N, d) matrix; got shape {A.shape}.")
    check_finite(A.data, name)
    A.sum_duplicates()
    A.sort_indices()
    return A, dtype


class SampleSaddle:
    r"""The saddle problem of ``N`` samples of sparse data,

    .. math::

        \min_x \max_y \frac1N \sum_{i=1}^N \Big[\frac{\alpha}{2} u_i^2 + v_i u_i
        - \frac{\beta}{2} v_i^2\Big], \qquad u_i = p_i^\top x - c_i,\quad v_i = q_i^\top y,

    with ``p_i``, ``q_i`` the rows of sparse matrices ``P`` and ``Q``. With ``alpha = 0`` and
    ``beta = 1`` it is linear instrumental-variable regression in its saddle (GMM) form
    (regressors ``P``, instruments ``Q``, targets ``c``; the max over ``y`` gives
    ``||K x - Q^T c / N||^2`` in the metric of ``(Q^T Q / N)^{-1}``, ``K = Q^T P / N``), which is
    also policy evaluation's MSPBE (``q_i`` the features of a state, ``p_i`` the discounted
    difference of the next state's, ``c_i`` minus the reward); ``alpha > 0`` blends in least
    squares. As a monotone inclusion ``F = (1/N) Σ_i F_i`` with the sample's operator
    ``F_i(x, y) = (p_i (alpha u_i + v_i), q_i (beta v_i - u_i))``: monotone, affine, and cheap
    (it reads one row of ``P`` and one of ``Q``), so one epoch (``N`` component evaluations)
    costs one full ``F`` (two passes over each matrix).

    ``"vr_halpern"`` draws component ``i`` with probability proportional to its Lipschitz
    constant ``L_i = ||[[alpha a^2, a b], [-a b, beta b^2]]||_2`` (``a = ||p_i||``,
    ``b = ||q_i||``), so the components' mean-square constant ``lipschitz_ms`` is their mean.
    When the samples share directions (an intercept, frequent features) ``F``'s own constant
    ``lipschitz`` is of the same order, and variance reduction saves up to a factor
    ``sqrt(N) * lipschitz / lipschitz_ms`` in epochs (Cai, Alacaoglu & Diakonikolas 2024): the
    regime of many cheap samples. ``z = (x, y)`` is unconstrained.

    Parameters
    ----------
    P : sparse matrix or array_like, shape (N, d_x)
        The regressors, one sample per row (any SciPy sparse format, or dense); finite.
    Q : sparse matrix or array_like, shape (N, d_y)
        The instruments (test functions), one sample per row; finite.
    c : array_like, shape (N,), optional
        The targets (default 0).
    alpha, beta : float
        Non-negative weights of the least-squares term and of the ``y`` regulariser (defaults
        0 and 1).
    lipschitz : float, optional
        ``||M||_2`` of the linear part ``M`` of ``F``, if known; default: estimated once by power
        iterations in the core (raised by 0.1 %).

    Examples
    --------
    >>> import numpy as np
    >>> from optcore.monotone import SampleSaddle, solve
    >>> prob = SampleSaddle.iv_regression(2000, 10, rng=0)
    >>> res = solve(prob, method="vr_halpern", tol=1e-6, rng=0, options={"max_epochs": 2000})
    >>> bool(res.success), bool(np.linalg.norm(prob.operator(res.x)) < 1e-5)
    (True, True)
    """

    def __init__(self, P, Q, c=None, *, alpha: float = 0.0, beta: float = 1.0, lipschitz: float | None = None):
        self.P, dp = _csr(P, "P")
        self.Q, dq = _csr(Q, "Q")
        n = self.P.shape[0]
        if self.Q.shape[0] != n:
            raise ValueError(f"`P` and `Q` must have the same number of rows (samples); got {n} and {self.Q.shape[0]}.")
        if c is None:
            self.c = np.zeros(n)
        else:
            self.c = np.asarray(as_float_array(c, "c"), dtype=np.float64).reshape(-1)
            if self.c.shape != (n,):
                raise ValueError(f"`c` must have shape ({n},); got {np.shape(c)}.")
            check_finite(self.c, "c")
        self.alpha = nonnegative_scalar(alpha, "alpha")
        self.beta = nonnegative_scalar(beta, "beta")
        self._given_lipschitz = None if lipschitz is None else positive_scalar(lipschitz, "lipschitz")
        self.dtype = np.dtype(np.float32) if dp == dq == np.float32 else np.dtype(np.float64)
        self._native = None

    @classmethod
    def iv_regression(
        cls, n: int = 10_000, d: int = 50, *, nnz: int = 4, alpha: float = 1.0, scale: float = 2.0, rng=None
    ) -> SampleSaddle:
        """A synthetic sparse instrumental-variable regression: instruments ``q_i`` = an intercept
        and ``nnz`` features of ``d - 1`` (uniform columns, values ``U(0.5, 1.5) scale/sqrt(nnz)``),
        regressors ``p_i = q_i`` plus ``nnz`` entries of noise (``N(0, 1/4) scale^2/nnz``), targets
        ``c_i = p_i^T x_true + N(0, 1/100)``; ``x`` and ``y`` in ``R^d``."""
        import scipy.sparse as sp  # noqa: PLC0415

        n, d, nnz = positive_int(n, "n"), positive_int(d, "d", minimum=2), positive_int(nnz, "nnz")
        g = np.random.default_rng(rng)
        rows = np.repeat(np.arange(n), nnz)

        def block(values):
            cols = g.integers(1, d, size=n * nnz)
            return sp.csr_matrix((values.ravel(), (rows, cols)), shape=(n, d))

        intercept = sp.csr_matrix((np.ones(n), (np.arange(n), np.zeros(n, dtype=np.int64))), shape=(n, d))
        Q = (intercept + block(g.uniform(0.5, 1.5, n * nnz) * scale / np.sqrt(nnz))).tocsr()
        P = (Q + block(g.normal(0.0, 0.5, n * nnz) * scale / np.sqrt(nnz))).tocsr()
        x_true = g.normal(size=d)
        return cls(P, Q, P @ x_true + 0.1 * g.normal(size=n), alpha=alpha)

    @property
    def n(self) -> int:
        """Number of samples (components) ``N``."""
        return self.P.shape[0]

    @property
    def dim(self) -> int:
        return self.P.shape[1] + self.Q.shape[1]

    @property
    def lipschitz(self) -> float:
        """``||M||_2``, the Lipschitz constant of ``F`` (given, or estimated once in the core)."""
        return float(self._problem().lipschitz)

    @property
    def lipschitz_ms(self) -> float:
        """The components' mean-square Lipschitz constant under importance sampling: their mean."""
        return float(self._problem().lipschitz_ms)

    def _split(self, z):
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        if z.shape != (self.dim,):
            raise ValueError(f"`z` must have shape ({self.dim},); got {z.shape}.")
        nx = self.P.shape[1]
        return z[:nx], z[nx:]

    def operator(self, z) -> np.ndarray:
        """``F(z)`` computed with SciPy (for checks)."""
        x, y = self._split(z)
        u = self.P @ x - self.c
        v = self.Q @ y
        n = self.n
        return np.concatenate([self.P.T @ (self.alpha * u + v) / n, self.Q.T @ (self.beta * v - u) / n])

    def objective(self, z) -> float:
        """The saddle function's value at ``z = (x, y)``."""
        x, y = self._split(z)
        u = self.P @ x - self.c
        v = self.Q @ y
        return float(np.mean(0.5 * self.alpha * u * u + v * u - 0.5 * self.beta * v * v))

    def _problem(self):
        if self._native is None:

            def parts(A):
                return (A.indptr.astype(np.int64), A.indices.astype(np.int64), A.data, A.shape[0], A.shape[1])

            self._native = _core.fs_sample_saddle(
                parts(self.P), parts(self.Q), np.ascontiguousarray(self.c), self.alpha, self.beta, self._given_lipschitz
            )
        return self._native

    def _start(self, x0):
        if x0 is None:
            return np.zeros(self.dim)
        z = np.asarray(as_float_array(x0, "x0"), dtype=np.float64).reshape(-1)
        if z.shape != (self.dim,):
            raise ValueError(f"`x0` must have shape ({self.dim},); got {np.shape(x0)}.")
        check_finite(z, "x0")
        return z
