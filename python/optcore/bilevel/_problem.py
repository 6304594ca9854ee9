"""``optcore.bilevel.Problem``: a bilevel problem given by Python functions (re-exported by
:mod:`optcore.bilevel`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validation import positive_int
from ..fixed_point.operators import Operator
from ._lvhba import validate_problem_fields


class Problem:
    """A bilevel problem given by Python functions.

    Parameters
    ----------
    grad_f : callable
        ``grad_f(x, y) -> (gx, gy)``: the gradients of the upper level ``f`` in ``x`` and
        ``y``.
    grad_g : callable
        ``grad_g(x, y) -> (gx, gy)``: the gradients of the lower level ``g``. With
        ``batched=True`` it may be called with a ``(B, d_y)`` stack of points (same ``x``) and
        must then return ``(B, d_x)`` and ``(B, d_y)`` arrays: one Python call serves several
        points (F2SA's ``y`` and ``z``, the two points of a finite difference).
    hvp_yy, jvp_xy : callable, optional
        ``hvp_yy(x, y, v) -> ∇²ᵧᵧg v`` (length ``d_y``) and ``jvp_xy(x, y, v) -> ∇²ₓᵧg v``
        (the ``x``-gradient of ``⟨∇ᵧg(x, y), v⟩``, length ``d_x``). Missing ones are computed
        by central differences of ``grad_g`` (two gradient evaluations, step
        ``ε = ε_mach^{1/3} (1 + ‖y‖)/‖v‖``).
    f : callable, optional
        ``f(x, y) -> float``: the upper-level value. It gives ``res.fun = F(x)`` (else NaN),
        and ``outer="lbfgs"`` uses it in its line search (no accepted step increases ``F``).
    batched : bool
        See ``grad_g``.
    n_samples : (int, int), optional
        ``(n_f, n_g)``: the upper and lower objectives are finite sums of that many terms.
        Then every oracle is called with one more argument, ``batch``: an int64 array of
        sample indices (a minibatch, when ``options["batch_size"]`` is set) or ``None``
        (the full objective).
    d_y : int, optional
        Lets :func:`minimize` start from ``y0 = zeros(d_y)`` when ``y0`` is not given.
    h, jac_h : callable, optional
        A constrained lower level, ``y*(x) ∈ argmin_y {g(x, y) : h(x, y) ≤ 0}`` (solved by
        ``method="lvhba"`` only): ``h(x, y) -> (m,)`` constraint values and
        ``jac_h(x, y) -> (J_x, J_y)``, its Jacobians of shapes ``(m, d_x)`` and ``(m, d_y)``.
    n_eq : int
        The last ``n_eq`` entries of ``h`` are equalities ``h_i(x, y) = 0``.
    project_x : Operator, optional
        An operator of :mod:`optcore.fixed_point.operators` projecting ``x`` onto its feasible
        set ``X`` (every method; the same as ``options["project_x"]``).

    Errors in your functions are reported with the oracle's name: a wrong shape raises
    ``ValueError``, NaN/inf raises :class:`optcore.NumericalError` naming the oracle (or, where
    the solver can recover, is a failed trial: ``outer="lbfgs"``'s line search backtracks from
    points where an oracle overflows, and a breakdown later in a run ends it with status 4 at its
    last point), and an exception you raise propagates unchanged with a note naming the oracle.

    Examples
    --------
    ``f = ½‖x − 1‖² + ½‖y‖²``, ``g = ½ yᵀAy + xᵀBy``: ``y*(x) = −A⁻¹Bᵀx`` and the solution
    ``x* = (I + B A⁻² Bᵀ)⁻¹ 1`` in closed form.

    >>> import numpy as np
    >>> from optcore import bilevel
    >>> A, B = np.diag(np.arange(1.0, 6.0)), np.ones((2, 5)) * 0.1
    >>> prob = bilevel.Problem(
    ...     grad_f=lambda x, y: (x - 1.0, y),
    ...     grad_g=lambda x, y: (B @ y, A @ y + B.T @ x),
    ...     hvp_yy=lambda x, y, v: A @ v,
    ...     jvp_xy=lambda x, y, v: B @ v,
    ... )
    >>> res = bilevel.minimize(prob, np.zeros(2), np.zeros(5), method="aid", tol=1e-8)
    >>> x_star = np.linalg.solve(np.eye(2) + B @ np.linalg.inv(A @ A) @ B.T, np.ones(2))
    >>> res.success, bool(np.allclose(res.x, x_star, atol=1e-6))
    (True, True)
    """

    def __init__(
        self,
        grad_f: Callable,
        grad_g: Callable,
        *,
        hvp_yy: Callable | None = None,
        jvp_xy: Callable | None = None,
        f: Callable | None = None,
        batched: bool = False,
        n_samples: tuple[int, int] | None = None,
        d_y: int | None = None,
        h: Callable | None = None,
        jac_h: Callable | None = None,
        n_eq: int = 0,
        project_x: Operator | None = None,
    ):
        for name, fn in (("grad_f", grad_f), ("grad_g", grad_g)):
            if not callable(fn):
                raise TypeError(f"`{name}` must be callable; got {type(fn).__name__}.")
        for name, fn in (("hvp_yy", hvp_yy), ("jvp_xy", jvp_xy), ("f", f)):
            if fn is not None and not callable(fn):
                raise TypeError(f"`{name}` must be callable or None; got {type(fn).__name__}.")
        if n_samples is not None:
            if not (isinstance(n_samples, (tuple, list)) and len(n_samples) == 2):
                raise ValueError(f"`n_samples` must be a pair (n_f, n_g); got {n_samples!r}.")
            n_samples = (positive_int(n_samples[0], "n_samples[0]"), positive_int(n_samples[1], "n_samples[1]"))
        self.grad_f, self.grad_g, self.hvp_yy, self.jvp_xy, self.f = grad_f, grad_g, hvp_yy, jvp_xy, f
        self.batched = bool(batched)
        self.n_samples = n_samples
        self.d_y = None if d_y is None else positive_int(d_y, "d_y")
        self.n_eq = validate_problem_fields(h, jac_h, n_eq, project_x)
        self.h, self.jac_h, self.project_x = h, jac_h, project_x

    def _spec(self, dx: int, dy: int, dtype: np.dtype) -> tuple:
        """The oracle tuple the core calls: flat arrays of ``dtype`` in and out, checked."""
        stoch = self.n_samples is not None

        def call(name, fn, *args, batch=None):
            if stoch:
                args = (*args, batch)
            try:
                return fn(*args)
            except Exception as exc:
                exc.add_note(f"(raised by the user's `{name}` oracle, called by optcore.bilevel)")
                raise

        def out(name, part, value, shape):
            arr = np.asarray(value)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"`{name}` must return real arrays; its {part} has dtype {arr.dtype}.")
            if arr.shape != shape:
                raise ValueError(f"`{name}` returned {part} of shape {arr.shape}; expected {shape}.")
            # Non-finite values pass through: the core checks them and names the oracle, and a
            # line search treats them as a failed trial point (a Python exception would end the run).
            return np.ascontiguousarray(arr, dtype=dtype).reshape(-1)

        def pair(name, r):
            if not (isinstance(r, (tuple, list)) and len(r) == 2):
                raise ValueError(f"`{name}` must return a pair (gx, gy); got {type(r).__name__}.")
            return r

        def grad_f(x, y, batch):
            r = pair("grad_f", call("grad_f", self.grad_f, x, y, batch=batch))
            return out("grad_f", "gx", r[0], (dx,)), out("grad_f", "gy", r[1], (dy,))

        def grad_g(x, ys, batch, want_x):
            b = ys.size // dy
            if self.batched:
                r = pair("grad_g", call("grad_g", self.grad_g, x, ys.reshape(b, dy), batch=batch))
                gx = out("grad_g", "gx", r[0], (b, dx)) if want_x else None
                return gx, out("grad_g", "gy", r[1], (b, dy))
            gxs, gys = [], []
            for yk in ys.reshape(b, dy):
                r = pair("grad_g", call("grad_g", self.grad_g, x, yk, batch=batch))
                if want_x:
                    gxs.append(out("grad_g", "gx", r[0], (dx,)))
                gys.append(out("grad_g", "gy", r[1], (dy,)))
            return (np.concatenate(gxs) if want_x else None), np.concatenate(gys)

        def second(x, y, v, batch, want_h, want_j):
            h = out("hvp_yy", "its value", call("hvp_yy", self.hvp_yy, x, y, v, batch=batch), (dy,)) if want_h else None
            j = out("jvp_xy", "its value", call("jvp_xy", self.jvp_xy, x, y, v, batch=batch), (dx,)) if want_j else None
            return h, j

        value_f = None
        if self.f is not None:

            def value_f(x, y):
                v = np.asarray(call("f", self.f, x, y))
                if v.size != 1 or v.dtype.kind not in "fiub":
                    raise ValueError(f"`f` must return one real number; got {v!r}.")
                # NaN or inf passes through (the core's line search backtracks from such points).
                return float(v.reshape(()))

        has_h, has_j = self.hvp_yy is not None, self.jvp_xy is not None
        nf, ng = self.n_samples or (0, 0)
        return (dx, dy, nf, ng, grad_f, grad_g, second if (has_h or has_j) else None, has_h, has_j, value_f)
