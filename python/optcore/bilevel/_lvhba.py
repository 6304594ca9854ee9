"""``minimize(method="lvhba")``: bilevel problems whose lower level has constraints coupling
``x`` and ``y``, by LV-HBA (Yao, Yu, Zeng, Zhang, ICLR 2024).

The problem is ``min_{x ∈ X, y ∈ Y} f(x, y)`` s.t. ``y ∈ argmin_{θ ∈ Y} {g(x, θ) : h(x, θ) ≤ 0}``
(the last ``n_eq`` entries of ``h`` are equalities ``h_i = 0``). The iteration, the
measured criterion and the options are described in :func:`optcore.bilevel.minimize`.
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._progress import Progress
from .._result import STATUS_MESSAGES, OptimizeResult, finish
from .._validation import nonnegative_scalar, normalize_workers, positive_int, positive_scalar
from ..exceptions import NumericalError
from ..fixed_point.operators import Operator

#: ``options`` keys of ``method="lvhba"``.
OPTIONS = (
    "step",
    "lower_step",
    "z_step",
    "c0",
    "power",
    "gamma1",
    "gamma2",
    "z_max",
    "rho",
    "project_x",
    "project_y",
)


class ConstrainedResult(OptimizeResult):
    """Result of :func:`optcore.bilevel.minimize` with ``method="lvhba"``.

    Attributes
    ----------
    x, y : ndarray
        The upper-level point and the lower-level point returned with it.
    fun : float
        ``f(x, y)`` at the returned point (NaN when the problem cannot evaluate ``f``).
    multipliers : ndarray
        The lower level's multipliers ``λ`` of ``h`` (``>= 0`` for inequalities; clipped to
        ``[0, z_max]``, equalities to ``[-z_max, z_max]``).
    constraint_violation : float
        ``max(max_i h_i(x, y)⁺, max_eq |h_i(x, y)|)`` at the returned point.
    lower_residual : float
        The lower level's KKT residual at the returned ``(x, y)`` with ``multipliers``:
        ``max(‖y − P_Y(y − ∇ᵧg − J_yhᵀλ)‖∞, max_ineq |λ_i h_i(x, y)|)`` (for a convex lower
        level, small means ``y`` solves it).
    stationarity : float
        ``c ‖(x, y) − P((x, y) − α d)‖∞ / α``: the projected gradient of the penalised
        reformulation ``f + c (g − v_γ) +`` (augmented-Lagrangian terms of ``h(x, y) ≤ 0``) at
        the returned point, in ``f``'s units, with the final penalty ``c``.
    penalty : float
        The final penalty ``c = c0 (nit+1)^power``.
    step, lower_step : float
        The steps used: ``α_y`` of ``y`` and ``η_θ`` of ``θ`` (estimated unless given).
    steps : dict
        All the per-block steps used: ``x``, ``y`` (``α_x``, ``α_y``), ``theta``, ``lambda``
        (``η_θ``, ``η_λ``), ``rho`` (``ρ``) and ``dual`` (``τ``, the step of ``μ``).
    theta, z : ndarray
        LV-HBA's lower copy ``θ`` and the multipliers' anchor ``z``.
    nit : int
    oracle_calls : dict
        ``grad_f``, ``grad_g``, ``h``, ``jac_h``, ``value_f``.
    success, status, message
        ``status`` 0: ``constraint_violation``, ``lower_residual`` and ``stationarity``, all
        measured at the returned point, are ``<= tol``; 1: ``maxiter`` first; 4: the iterates
        diverged; 99: stopped by the callback.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> toy = bilevel.problems.ConstrainedToy(n=2, a=2 / 3)
    >>> res = bilevel.minimize(toy, np.ones(2), method="lvhba", maxiter=100_000, tol=1e-8)
    >>> type(res).__name__, bool(res.success), bool(max(res.constraint_violation, res.stationarity) <= 1e-8)
    ('ConstrainedResult', True, True)
    """


def _check_array(name: str, part: str, value, shape, dtype) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"`{name}` must return real arrays; its {part} has dtype {arr.dtype}.")
    if arr.shape != shape:
        raise ValueError(f"`{name}` returned {part} of shape {arr.shape}; expected {shape}.")
    if not np.all(np.isfinite(arr)):
        raise NumericalError(f"`{name}` returned non-finite values (NaN or inf) in {part}.")
    return np.ascontiguousarray(arr, dtype=dtype)


def constrained_spec(prob, dx: int, dy: int, dtype: np.dtype) -> tuple:
    """The oracle tuple the core calls for a ``Problem`` with ``h`` and ``jac_h``: flat arrays
    of ``dtype`` in and out, shapes and finiteness checked, errors naming the oracle."""
    if prob.n_samples is not None:
        raise ValueError("method='lvhba' needs full (not finite-sum) oracles: build the Problem without n_samples.")

    def call(name, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:
            exc.add_note(f"(raised by the user's `{name}` oracle, called by optcore.bilevel, method='lvhba')")
            raise

    def pair(name, r):
        if not (isinstance(r, (tuple, list)) and len(r) == 2):
            raise ValueError(f"`{name}` must return a pair; got {type(r).__name__}.")
        return r

    def grad(name, fn):
        def wrapped(x, y):
            if prob.batched:
                r = pair(name, call(name, fn, x, y.reshape(1, dy)))
                gx = _check_array(name, "gx", r[0], (1, dx), dtype).reshape(-1)
                return gx, _check_array(name, "gy", r[1], (1, dy), dtype).reshape(-1)
            r = pair(name, call(name, fn, x, y))
            return _check_array(name, "gx", r[0], (dx,), dtype), _check_array(name, "gy", r[1], (dy,), dtype)

        return wrapped

    x_probe = np.zeros(dx, dtype)
    y_probe = np.zeros(dy, dtype)
    h0 = np.asarray(call("h", prob.h, x_probe, y_probe))
    if h0.ndim != 1 or h0.size == 0:
        raise ValueError(f"`h` must return a non-empty 1-D array of constraint values; got shape {h0.shape}.")
    m = h0.size
    if prob.n_eq > m:
        raise ValueError(f"`n_eq` = {prob.n_eq} exceeds the number of constraints h returns ({m}).")

    def h(x, y):
        return _check_array("h", "its value", call("h", prob.h, x, y), (m,), dtype)

    def jac_t(x, y, w):
        r = pair("jac_h", call("jac_h", prob.jac_h, x, y))
        jx = _check_array("jac_h", "J_x", r[0], (m, dx), dtype)
        jy = _check_array("jac_h", "J_y", r[1], (m, dy), dtype)
        return np.ascontiguousarray(jx.T @ w, dtype=dtype), np.ascontiguousarray(jy.T @ w, dtype=dtype)

    value_f = None
    if prob.f is not None:

        def value_f(x, y):
            v = np.asarray(call("f", prob.f, x, y))
            if v.size != 1 or not np.isfinite(v).all():
                raise ValueError(f"`f` must return one finite number; got {v!r}.")
            return float(v.reshape(()))

    return (dx, dy, m, prob.n_eq, grad("grad_f", prob.grad_f), grad("grad_g", prob.grad_g), h, jac_t, value_f)


def _core_options(opts: dict, dims: tuple, tol: float, maxiter: int, check_every: int, seed: int) -> dict:
    out = {"maxiter": maxiter, "tol": tol, "check_every": check_every, "seed": seed}
    for key in ("step", "lower_step", "z_step", "c0", "gamma1", "gamma2", "z_max", "rho"):
        if key in opts:
            out[key] = positive_scalar(opts[key], f"options[{key!r}]")
            if not np.isfinite(out[key]):
                raise ValueError(f"options[{key!r}] must be finite; got {opts[key]!r}.")
    if "power" in opts:
        out["power"] = nonnegative_scalar(opts["power"], "options['power']")
        if not out["power"] < 1:
            raise ValueError(
                f"options['power'] must be in [0, 1) (the paper's theory: (0, 1/2)); got {opts['power']!r}."
            )
    for key, d in (("project_x", dims[0]), ("project_y", dims[1])):
        op = opts.get(key)
        if op is None:
            continue
        if not isinstance(op, Operator):
            raise TypeError(
                f"options[{key!r}] must be an operator of optcore.fixed_point.operators; got {type(op).__name__}."
            )
        if op.dim != d:
            raise ValueError(f"options[{key!r}] acts on R^{op.dim}, but the variable has {d} entries.")
        out[key] = op._handle
    return out


def _message(status: int, detail, d: dict, tol: float) -> str:
    what = (
        f"constraint violation {d['constraint_violation']:.3e}, lower-level KKT residual "
        f"{d['lower_residual']:.3e}, reformulation stationarity {d['stationarity']:.3e} "
        f"(measured at the returned point, penalty c = {d['penalty']:.3g})"
    )
    if status == 0:
        return f"Converged: {what} all <= tol = {tol:g}."
    if status == 1:
        msg = f"Iteration limit reached (maxiter = {d['nit']}): {what}; tol = {tol:g}."
        if d["stationarity"] <= tol < d["lower_residual"]:
            msg += (
                f" The point is stationary for the penalised reformulation at c = {d['penalty']:.3g}: its"
                " distance to the bilevel solution is set by the penalty (O(1/c)), not by the iterations at this"
                " c; a larger c0 or power (< 1/2) reaches a larger c."
            )
        return msg
    return STATUS_MESSAGES[status] + (f" {detail}" if detail else "")


def minimize_lvhba(prob, x, y, dtype, handle, *, seed, opts, tol, maxiter, callback, check_every, disp, warn, workers):
    """The ``method="lvhba"`` branch of :func:`optcore.bilevel.minimize` (inputs validated)."""
    copts = _core_options(opts, (x.size, y.size), tol, maxiter, check_every, seed)

    def build(state: dict) -> ConstrainedResult:
        return ConstrainedResult(x=state["x"], y=state["y"], nit=state["nit"], kkt=state.get("kkt"))

    progress = Progress(callback, disp, build, title="optcore.bilevel.minimize(method='lvhba')")
    fn = _core.bilevel_lvhba_f32 if dtype == np.float32 else _core.bilevel_lvhba_f64
    run = {
        "progress": progress if progress.active else None,
        "check_every": check_every,
        "workers": normalize_workers(workers),
    }
    d = fn(handle, x, y, copts, run)
    status = int(d.pop("status"))
    detail = d.pop("detail")
    message = _message(status, detail, d, tol)
    res = ConstrainedResult(**d, status=status, message=message, method="lvhba")
    return finish(res, "bilevel.minimize(method='lvhba')", progress=progress, warn=warn, stacklevel=4)


def validate_problem_fields(h, jac_h, n_eq, project_x):
    """Checks ``Problem``'s constrained-lower-level fields; returns ``n_eq`` as an int."""
    if (h is None) != (jac_h is None):
        raise ValueError("`h` and `jac_h` go together: give both (a constrained lower level) or neither.")
    for name, fn in (("h", h), ("jac_h", jac_h)):
        if fn is not None and not callable(fn):
            raise TypeError(f"`{name}` must be callable or None; got {type(fn).__name__}.")
    n_eq = positive_int(n_eq, "n_eq", minimum=0)
    if n_eq and h is None:
        raise ValueError("`n_eq` counts equality constraints among h's entries: it needs `h`.")
    if project_x is not None and not isinstance(project_x, Operator):
        raise TypeError(
            f"`project_x` must be an operator of optcore.fixed_point.operators; got {type(project_x).__name__}."
        )
    return n_eq
