"""Bilevel optimisation: ``min_x F(x) = f(x, y*(x))`` with ``y*(x) = argmin_y g(x, y)``.

The methods run in Rust, generic over one oracle interface with two implementations: the
native problems of :mod:`optcore.bilevel.problems` (analytic gradients, Hessian–vector and
mixed products, no Python in the loop) and :class:`Problem`, which calls your Python
functions (taking the GIL only for each call).

>>> import numpy as np
>>> from optcore import bilevel
>>> prob = bilevel.problems.Quadratic.random(d_x=5, d_y=20, seed=0)
>>> res = bilevel.minimize(prob, np.zeros(5), method="aid", rng=0)
>>> bool(res.success), bool(np.allclose(res.x, prob.optimal_x, atol=1e-6))
(True, True)

Methods (``method=``)
---------------------
``"aid"``
    Approximate implicit differentiation: ``inner_steps`` gradient steps on ``y`` (warm
    started), then ``∇²ᵧᵧg v = ∇ᵧf`` by warm-started conjugate gradients (plain CG on the
    Hessian, not the normal equations) or a Neumann series (``solver="neumann"``), then
    ``x ← x − β (∇ₓf − ∇²ₓᵧg v)``.
``"itd"``
    Iterative differentiation: unroll ``inner_steps`` lower-level steps and differentiate
    through them in reverse (one Hessian–vector and one mixed product per unrolled step). Its
    fixed point is biased unless ``(I − αH)^inner_steps`` is negligible.
``"soba"``
    Single loop: one step each on ``y``, on ``v`` (tracking ``H⁻¹∇ᵧf``) and on ``x``.
``"borep"``
    BO-REP: lower-level updates every ``period`` iterations, one step on ``z`` per iteration
    (projected onto a ball of ``radius``), momentum ``beta`` on the hypergradient and
    normalised steps ``x ← x − η_k m/‖m‖`` with ``η_k = η_0/(k+1)^decay`` and ``η_0`` the
    length of the first gradient step, ``outer_step ‖ĝ_0‖``, and ``decay = 0.5`` by default
    (with a constant ``η``, as in the paper's experiments, normalised steps settle within
    about ``η`` of a stationary point instead of converging to it).
``"exact"``
    The exact hypergradient: ``∇²ᵧᵧg`` built from ``d_y`` Hessian–vector products and
    factorised (small ``d_y``), the lower level solved by Newton–CG. Runs with ``outer="lbfgs"``
    by default.
``"f2sa"``
    Fully first-order (Kwon et al. 2023): inner steps on ``y`` for ``f + λ g`` and on ``z``
    for ``g``, ``x ← x − β [∇ₓf(x, y) + λ(∇ₓg(x, y) − ∇ₓg(x, z))]``, and ``λ`` grows by
    ``lam_delta/(k+1)^lam_power`` up to ``lam_max``. ``momentum=η`` gives the STORM variant:
    every direction (of ``y``, ``z`` and ``x``) becomes ``h_k = d_k + (1 − η)(h_{k−1} −
    d(previous point; same sample))``, which costs a second evaluation per step.
``"penalty"``
    The penalty method of Kwon et al. 2024: gradient descent on the σ-scaled hyper-objective
    ``ψ_σ(x) = (min_y [σf + g] − min_y g)/σ`` (F2SA's kernel with ``λ = 1/σ`` fixed and
    inner loops run to ``inner_tol``). The lower level may be constrained to a convex set
    given as a projection (``options={"project_y": ...}``, an operator of
    :mod:`optcore.fixed_point.operators`); it need not have a unique solution.
``"lvhba"``
    A lower level with constraints that couple ``x`` and ``y``,
    ``y ∈ argmin_θ {g(x, θ) : h(x, θ) ≤ 0}`` (``Problem(h=..., jac_h=...)`` or a native
    problem such as ``problems.ConstrainedToy``): LV-HBA (Yao et al., ICLR 2024), a single
    loop of first-order steps on the proximal Lagrangian value-function reformulation; see
    :func:`minimize`.

Outer loops (``outer=``)
------------------------
``"gd"``
    The method's own update (above); the default for every method but ``"exact"``.
``"lbfgs"``
    For ``aid``, ``itd`` and ``exact``: L-BFGS on ``F`` driven by the method's hypergradient,
    for runs that must reach the optimum. Every outer point is evaluated afresh: the lower
    level by Newton–CG warm-started at the last accepted ``y`` (Hessian–vector products), the
    linear system by CG warm-started at the last ``v`` (``aid``; ``exact``: dense LU; ``itd``:
    ``inner_steps`` unrolled steps from the solved ``y``). Inexactness rule: at outer iteration
    ``k`` the lower level is solved to ``‖∇ᵧg‖ ≤ η_k R`` (``R`` the lower residual at the start)
    and the linear system to ``‖Hv − ∇ᵧf‖ ≤ η_k ‖∇ᵧf‖``, ``η_k = 1e-6 min(1, ‖ĝ_{k−1}‖/‖ĝ₀‖)``:
    the hypergradient's error shrinks in proportion to the hypergradient (a bounded relative
    error keeps it a descent direction). Line search: where the problem evaluates ``f``,
    ``x`` has no bounds and the method is ``aid`` or ``exact``, L-BFGS-B's (Moré–Thuente:
    sufficient decrease with ``c₁ = 1e-3`` and ``|ĝ(x + t d)ᵀd| ≤ 0.9 |ĝᵀd|``; the first
    iteration's first trial ``x − ĝ/‖ĝ‖``); otherwise (and where that search finds no step)
    backtracking with interpolation; when the
    problem evaluates ``f`` (native problems, ``Problem(f=...)``), Armijo's test on
    ``F̂ = f(x, y) − vᵀ∇ᵧg(x, y)`` (``F`` to second order in the residuals), so no accepted
    step increases ``F`` beyond its rounding error; without ``f``, the decrease is estimated
    from the directional derivatives at both ends of the step (trapezoid rule). ``bounds``
    (as in SciPy's L-BFGS-B) are handled by the two-metric projection scheme: variables held
    at a bound by the gradient are fixed, the two-loop recursion runs on the others, and the
    line search follows the projected path. Options: ``memory`` (10 pairs), ``cg_maxiter``
    (CG steps per solve: at least ``min(2 d_y, 2000)``), ``refine_steps``, ``inner_step``
    (fallback gradient steps), ``inner_steps`` (``itd``), ``lower_solve`` (``aid``, ``exact``):

    - ``"direct"``: the dense lower Hessian ``∇²ᵧᵧg`` is factored by Cholesky at every outer
      point and serves both Newton's method on the lower level (one exact step when ``g`` is
      quadratic in ``y``, as for ridge) and the adjoint system; built by the native problems
      themselves (``Quadratic``, ``RidgeHyperparameter`` with ``p <= n``), else from ``d_y``
      Hessian–vector products; ``d_y`` up to 8192 (above: ``ValueError``);
    - ``"iterative"``: Newton–CG and CG as above;
    - ``"auto"`` (default): ``"iterative"`` until an outer point's Hessian–vector products cost
      more flops than one factorisation (``d_y^3/3`` plus building the Hessian; twice that when
      ``g`` is not quadratic in ``y``), then ``"direct"`` for the rest of the run, for native
      problems that build their Hessian and ``d_y <= 2000`` (``exact``: direct from the start).
      ``result.lower_solve`` says which path the run ended with; the final measurement of
      ``hypergrad_norm`` uses the same path.
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._progress import Progress
from .._result import STATUS_MESSAGES, OptimizeResult, finish
from .._validation import (
    _real_scalar,
    as_float_array,
    check_finite,
    check_options,
    nonnegative_scalar,
    normalize_workers,
    positive_int,
    positive_scalar,
    seed_from_rng,
)
from ..fixed_point.operators import Operator
from . import problems
from ._lvhba import OPTIONS as _LVHBA_OPTIONS
from ._lvhba import ConstrainedResult, constrained_spec, minimize_lvhba
from ._problem import Problem
from .problems import NativeConstrainedProblem, NativeProblem

__all__ = [
    "Problem",
    "minimize",
    "hypergradient",
    "BilevelResult",
    "ConstrainedResult",
    "METHODS",
    "OUTER_METHODS",
    "problems",
]

_COMMON = (
    "inner_steps",
    "inner_step",
    "outer_step",
    "decay",
    "batch_size",
    "refine_steps",
    "lipschitz_probes",
    "project_x",
)

#: The methods of :func:`minimize` and their ``options`` keys.
METHODS = {
    "aid": _COMMON + ("solver", "cg_maxiter", "cg_tol", "neumann_terms"),
    "itd": _COMMON,
    "soba": _COMMON,
    "borep": _COMMON + ("beta", "period", "radius"),
    "f2sa": _COMMON + ("lam0", "lam_delta", "lam_power", "lam_max", "momentum", "inner_tol", "project_y"),
    "penalty": _COMMON + ("sigma", "inner_tol", "project_y"),
    "exact": _COMMON + ("cg_maxiter",),
    "lvhba": _LVHBA_OPTIONS,
}

#: The methods that run with ``outer="lbfgs"`` and their ``options`` keys there.
OUTER_METHODS = {
    "aid": ("memory", "cg_maxiter", "refine_steps", "inner_step", "lower_solve"),
    "itd": ("memory", "cg_maxiter", "refine_steps", "inner_step", "inner_steps"),
    "exact": ("memory", "cg_maxiter", "refine_steps", "inner_step", "lower_solve"),
}

_DEFAULT_INNER = {"aid": 10, "itd": 20, "soba": 1, "borep": 10, "f2sa": 10, "penalty": 100, "exact": 10}


class BilevelResult(OptimizeResult):
    """Result of :func:`minimize`.

    Attributes
    ----------
    x, y : ndarray
        The returned upper-level iterate, and the lower level ``y ≈ y*(x)`` re-solved at it
        where ``hypergrad_norm`` is measured (otherwise the method's last lower iterate).
    fun : float
        ``f(x, y)`` at the returned point, so ``≈ F(x)`` where ``y`` was re-solved (NaN when
        the problem cannot evaluate ``f``).
    hypergrad_norm : float
        ``‖∇F(x)‖`` measured at the returned ``x``, independently of the method (also with
        ``maxiter=0``: at ``x0``): the lower level re-solved from ``y`` to ``1e-12``
        relative, ``∇²ᵧᵧg v = ∇ᵧf`` by CG, ``∇ₓf − ∇²ₓᵧg v`` (with ``lower_solve ==
        "direct"``: Newton with the factored Hessian, ``v`` from the factor). With a constrained lower level
        (``project_y``) it cannot be measured, and it is the method's estimate (the message
        says so).
    hypergrad_estimate : float
        Norm of the method's last hypergradient estimate (``f2sa`` / ``penalty``: of the
        penalty gradient ``∇ₓf + λ(∇ₓg(x, y) − ∇ₓg(x, z))``); NaN when no iteration ran.
    lower_residual : float
        ``‖∇ᵧg‖`` at the returned ``y`` where it was re-solved; else at the last lower-level step (``f2sa``/``penalty``: the larger gradient
        mapping of the two inner problems).
    nit : int
        Outer iterations.
    oracle_calls : dict
        ``grad_f``, ``grad_g`` (points: a batched call of B points counts B), ``hvp_yy``,
        ``jvp_xy`` (analytic products), ``fd_second`` (second-order products by central
        differences, each also counted as two ``grad_g``), ``value_f``.
    phase_times : dict
        Wall time in seconds of ``setup`` (step estimation, initial refinement), ``lower``,
        ``linear`` and ``upper``.
    lower_solve : str
        ``outer="lbfgs"``: ``"direct"`` or ``"iterative"``, the lower solve the run ended with
        (see ``options['lower_solve']``); ``"iterative"`` for the other outer loops.
    inner_step, outer_step : float
        The steps used (estimated unless given; ``outer="lbfgs"``: the last line-search step).
    lam : float
        ``f2sa``: the final ``λ``; ``penalty``: ``1/σ``; NaN otherwise.
    success, status, message, method
        ``status`` 0: the method's estimate and the lower-level residual are ``<= tol``
        (``f2sa``: with ``λ = lam_max``) *and* the measured ``hypergrad_norm`` is ``<= tol``
        (while the estimate holds but the measurement does not, as for ITD's or the penalty
        method's biased fixed points, the run goes on: status 1 at ``maxiter``); 4: the
        iterates diverged; 99: stopped by the callback. ``message`` names what was measured.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> res = bilevel.minimize(bilevel.problems.Quadratic.random(3, 5, seed=0), np.zeros(3), tol=1e-8)
    >>> type(res).__name__, bool(res.success), bool(res.hypergrad_norm <= 1e-8), res.y.shape
    ('BilevelResult', True, True, (5,))
    """

    y: np.ndarray
    hypergrad_norm: float
    oracle_calls: dict


def _vector(v, name: str) -> np.ndarray:
    arr = as_float_array(v, name)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array; got shape {arr.shape}.")
    check_finite(arr, name)
    return arr


def _prepare(prob, x0, y0, name_y="y0"):
    """Validated flat ``x0``, ``y0`` in the working dtype and the core's problem object."""
    if isinstance(prob, NativeProblem):
        x = _vector(x0, "x0")
        dtype = prob._dtype(x.dtype)
        dx, dy = prob.d_x, prob.d_y
        y = np.zeros(dy, dtype) if y0 is None else _vector(y0, name_y)
    elif isinstance(prob, Problem):
        x = _vector(x0, "x0")
        if y0 is None:
            if prob.d_y is None:
                raise ValueError(
                    f"`{name_y}` is required for a Problem of Python functions (or give Problem(..., d_y=...))."
                )
            y = np.zeros(prob.d_y, x.dtype)
        else:
            y = _vector(y0, name_y)
        dtype = np.dtype(np.float32) if (x.dtype == np.float32 and y.dtype == np.float32) else np.dtype(np.float64)
        dx, dy = x.size, y.size
    else:
        raise TypeError(
            "`prob` must be an optcore.bilevel.Problem or a problem of optcore.bilevel.problems; "
            f"got {type(prob).__name__}."
        )
    if x.shape != (dx,):
        raise ValueError(f"`x0` must have {dx} entries for this problem; got {x.size}.")
    if y.shape != (dy,):
        raise ValueError(f"`{name_y}` must have {dy} entries for this problem; got {y.size}.")
    x = np.ascontiguousarray(x, dtype=dtype)
    y = np.ascontiguousarray(y, dtype=dtype)
    handle = prob._handle_for(dtype) if isinstance(prob, NativeProblem) else prob._spec(dx, dy, dtype)
    return x, y, dtype, handle


def _prepare_constrained(prob, x0, y0):
    """``_prepare`` for ``method="lvhba"``: flat ``x0``, ``y0`` and the core's problem object."""
    x = _vector(x0, "x0")
    if isinstance(prob, NativeConstrainedProblem):
        dtype = prob._dtype(x.dtype)
        dx, dy = prob.d_x, prob.d_y
        y = prob._default_y0(dtype) if y0 is None else _vector(y0, "y0")
    else:
        if y0 is None and prob.d_y is None:
            raise ValueError("`y0` is required for a Problem of Python functions (or give Problem(..., d_y=...)).")
        y = np.zeros(prob.d_y, x.dtype) if y0 is None else _vector(y0, "y0")
        dtype = np.dtype(np.float32) if (x.dtype == np.float32 and y.dtype == np.float32) else np.dtype(np.float64)
        dx, dy = x.size, y.size
    if x.shape != (dx,):
        raise ValueError(f"`x0` must have {dx} entries for this problem; got {x.size}.")
    if y.shape != (dy,):
        raise ValueError(f"`y0` must have {dy} entries for this problem; got {y.size}.")
    x = np.ascontiguousarray(x, dtype=dtype)
    y = np.ascontiguousarray(y, dtype=dtype)
    handle = (
        prob._handle_for(dtype) if isinstance(prob, NativeConstrainedProblem) else constrained_spec(prob, dx, dy, dtype)
    )
    return x, y, dtype, handle


def _core_options(method: str, opts: dict, prob, tol: float, maxiter: int, seed: int, dims) -> dict:
    out = {"maxiter": maxiter, "tol": tol, "seed": seed, "inner_steps": _DEFAULT_INNER[method]}
    batch = opts.pop("batch_size", None)
    nf, ng = (prob.n_samples or (0, 0)) if isinstance(prob, Problem) else prob.n_samples
    if batch is not None:
        if nf == 0 or ng == 0:
            raise ValueError(
                "options['batch_size'] needs a finite-sum problem: give Problem(..., n_samples=(n_f, n_g))."
            )
        bf, bg = batch if isinstance(batch, (tuple, list)) else (batch, batch)
        out["batch_f"] = positive_int(bf, "batch_size")
        out["batch_g"] = positive_int(bg, "batch_size")
    stochastic = batch is not None
    out["decay"] = 0.5 if (stochastic or method == "borep") else 0.0
    for key in ("inner_steps", "cg_maxiter", "neumann_terms", "period", "refine_steps", "lipschitz_probes"):
        if key in opts:
            name = f"options[{key!r}]"
            opts[key] = positive_int(opts[key], name, minimum=0 if key == "refine_steps" else 1)
            if opts[key] > 2**62:
                raise ValueError(f"{name} = {opts[key]} is absurdly large (at most 2**62).")
    for key in ("inner_step", "outer_step", "cg_tol", "lam0", "lam_delta", "lam_max", "sigma"):
        if key in opts:
            opts[key] = positive_scalar(opts[key], f"options[{key!r}]")
    if "radius" in opts:
        v = _real_scalar(opts["radius"], "options['radius']")
        if not v > 0:
            raise ValueError(f"`options['radius']` must be positive (inf: no ball); got {opts['radius']!r}.")
        opts["radius"] = v
    for key in ("decay", "lam_power", "inner_tol"):
        if key in opts:
            opts[key] = nonnegative_scalar(opts[key], f"options[{key!r}]")
    if "beta" in opts:
        opts["beta"] = nonnegative_scalar(opts["beta"], "options['beta']")
        if not opts["beta"] < 1:
            raise ValueError(f"options['beta'] must be in [0, 1); got {opts['beta']!r}.")
    if "momentum" in opts and opts["momentum"] is not None:
        opts["momentum"] = positive_scalar(opts["momentum"], "options['momentum']")
        if not opts["momentum"] <= 1:
            raise ValueError(f"options['momentum'] must be in (0, 1]; got {opts['momentum']!r}.")
    if "solver" in opts and not isinstance(opts["solver"], str):
        raise TypeError(f"options['solver'] must be a string ('cg' or 'neumann'); got {type(opts['solver']).__name__}.")
    if "solver" in opts and opts["solver"] not in ("cg", "neumann"):
        raise ValueError(f"options['solver'] must be 'cg' or 'neumann'; got {opts['solver']!r}.")
    if method == "penalty":
        out["inner_tol"] = 1e-2 * tol * opts.get("sigma", 1e-4)
    for key, d in (("project_x", dims[0]), ("project_y", dims[1])):
        if key in opts:
            op = opts[key]
            if not isinstance(op, Operator):
                raise TypeError(
                    f"options[{key!r}] must be an operator of optcore.fixed_point.operators; got {type(op).__name__}."
                )
            if op.dim != d:
                raise ValueError(f"options[{key!r}] acts on R^{op.dim}, but the variable has {d} entries.")
            opts[key] = op._handle
    out.update(opts)
    return out


def _bounds(bounds, n: int) -> tuple[list[float], list[float]]:
    """``bounds`` (a ``scipy.optimize.Bounds``, ``n`` pairs, or one pair) as two float lists."""
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lo, hi = bounds.lb, bounds.ub
    else:
        try:
            pairs = list(bounds)
        except TypeError:
            raise TypeError(f"`bounds` must be a sequence of (lo, hi) pairs or scipy.optimize.Bounds; got {bounds!r}.")
        if len(pairs) == n and all(isinstance(b, (tuple, list)) and len(b) == 2 for b in pairs):
            lo, hi = [b[0] for b in pairs], [b[1] for b in pairs]
        elif len(pairs) == 2:
            lo, hi = pairs
        else:
            raise ValueError(
                f"`bounds` must give {n} (lo, hi) pairs (one per entry of x0) or one pair; got {bounds!r}."
            )

    def side(v, inf):
        if v is None:
            return np.full(n, inf)
        a = np.array([inf if e is None else e for e in v] if isinstance(v, (list, tuple)) else v, dtype=object)
        a = np.where(a == None, inf, a).astype(np.float64)  # noqa: E711
        try:
            return np.broadcast_to(a, (n,)).astype(np.float64)
        except ValueError:
            raise ValueError(f"`bounds` must give {n} lower and upper bounds; got shape {a.shape}.") from None

    lo, hi = side(lo, -np.inf), side(hi, np.inf)
    if np.isnan(lo).any() or np.isnan(hi).any() or (lo > hi).any():
        raise ValueError("`bounds` must satisfy lo <= hi (no NaN).")
    return lo.tolist(), hi.tolist()


def _message(status: int, detail, measured: bool, d: dict, method: str, tol: float) -> str:
    """What the result claims, naming exactly what was measured."""
    hg, est = d["hypergrad_norm"], d["hypergrad_estimate"]
    kind = "penalty gradient" if method in ("f2sa", "penalty") else "hypergradient estimate"
    how = (
        "lower level re-solved by Newton with the factored Hessian, H v = grad_y f by Cholesky"
        if d.get("lower_solve") == "direct"
        else "lower level re-solved, H v = grad_y f by CG"
    )
    what = (
        f"|grad F(x)| = {hg:.3e} measured at the returned x ({how})"
        if measured
        else f"the method's {kind} |g| = {hg:.3e} (|grad F| is not measured: a constrained lower level)"
    )
    if d.get("_bounds"):
        what = what.replace("|grad F(x)|", "|x - clip(x - grad F(x))| (projected gradient)")
    if status == 0:
        return f"Converged: {what} <= tol = {tol:g}; the method's {kind} was {est:.3e}."
    if status == 1:
        return f"Iteration limit reached (maxiter = {d['nit']}): {what}, tol = {tol:g}."
    return STATUS_MESSAGES[status] + (f" {detail}" if detail else "")


def minimize(
    prob,
    x0,
    y0=None,
    *,
    method: str = "aid",
    outer: str | None = None,
    bounds=None,
    maxiter: int = 1000,
    tol: float = 1e-6,
    rng=None,
    options: dict | None = None,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    warn: bool = True,
    workers: int | None = None,
) -> BilevelResult:
    """Minimise ``F(x) = f(x, y*(x))``, ``y*(x) = argmin_y g(x, y)``.

    Parameters
    ----------
    prob : Problem or a problem of :mod:`optcore.bilevel.problems`
    x0 : array_like
        Initial upper-level point (1-D). float32 stays float32 (native problems: the dtype
        they were built with).
    y0 : array_like, optional
        Initial lower-level point. ``None`` starts from zeros (native problems, or a
        ``Problem`` built with ``d_y``). Every method first refines it by at most
        ``refine_steps`` (default 1000) gradient steps on ``g(x0, ·)``.
    method : {"aid", "itd", "exact", "soba", "borep", "f2sa", "penalty", "lvhba"}
        See the module docs.
    outer : {"gd", "lbfgs"}, optional
        The outer loop (module docs): ``"lbfgs"`` for ``aid``, ``itd`` and ``exact`` (the
        default for ``exact``), ``"gd"`` (the method's own update) otherwise.
    bounds : sequence of (lo, hi) pairs, scipy.optimize.Bounds or (lo, hi), optional
        Bounds on ``x`` as in SciPy's L-BFGS-B (``None`` entries: unbounded; one pair of
        scalars or arrays applies to every entry); needs ``outer="lbfgs"``. ``x0`` is clipped
        into them; with bounds, ``hypergrad_norm`` is the norm of the projected gradient
        ``x − clip(x − ∇F(x))``.
    maxiter : int
        Outer iterations.
    tol : float
        Converged (status 0) when the method's hypergradient estimate and the lower-level
        residual are both ``<= tol`` (``f2sa`` also needs ``λ = lam_max``) and ``‖∇F‖``
        measured at that ``x`` is ``<= tol`` (see ``BilevelResult.hypergrad_norm``).
        ``lvhba``: when the constraint violation, the lower level's KKT residual and the
        reformulation's stationarity, all measured at the returned point, are ``<= tol``
        (see :class:`ConstrainedResult`).
    rng : int, numpy.random.Generator or None
        Seeds the core's PRNG (minibatches, power-iteration starts): the same seed gives the
        same result.
    options : dict, optional
        Every constant of the method (unknown keys raise ``ValueError``):

        - all methods: ``inner_steps`` (lower-level steps per iteration; defaults aid 10,
          itd 20, soba 1, borep 10, f2sa 10, penalty 100 at most), ``inner_step`` (default
          ``1/L̂_g``, a power iteration on ``∇²ᵧᵧg``: 10 steps, up to 100 while the estimate
          still grows by more than 1% a step), ``outer_step`` (default
          ``1/L̂_F``, a power iteration on finite differences of the hypergradient at ``x0``;
          ``f2sa``/``penalty`` use their first-order penalty gradient), ``decay`` (steps
          scale as ``1/(k+1)^decay``; default 0, or 0.5 with minibatches and for ``borep``),
          ``batch_size`` (int or ``(b_f, b_g)``: minibatches of a finite-sum problem),
          ``refine_steps`` (1000), ``lipschitz_probes`` (3), ``project_x`` (an operator of
          :mod:`optcore.fixed_point.operators`: projected upper-level steps);
        - ``aid``: ``solver`` ("cg" or "neumann"), ``cg_maxiter`` (20), ``cg_tol`` (1e-10,
          relative to ``‖∇ᵧf‖``), ``neumann_terms`` (10);
        - ``borep``: ``beta`` (0.9), ``period`` (2), ``radius`` (inf);
        - ``f2sa``: ``lam0`` (1), ``lam_delta`` (1), ``lam_power`` (0), ``lam_max`` (1e4),
          ``momentum`` (None, or the STORM ``η`` in (0, 1]), ``inner_tol`` (0),
          ``project_y``;
        - ``penalty``: ``sigma`` (1e-4), ``inner_tol`` (``1e-2 tol σ``), ``project_y``.
        - ``lvhba`` (its own keys): ``step`` (``α`` of ``(x, y)``), ``lower_step`` (``η`` of
          ``(θ, λ)``) and ``rho`` (the augmented-Lagrangian parameter of the upper copy's
          constraint ``h(x, y) ≤ 0``); by default one step per block, from the curvature of
          that block at ``(x0, y0)`` (10-step power iterations on central differences of
          ``grad_f``, ``grad_g`` and ``h``, started from ``rng``): with ``F_b``, ``G_b`` the
          norms of the rows of ``∇²f``, ``∇²g`` that block ``b ∈ {x, y}`` sees,
          ``G_θ = ‖∇²ᵧᵧg‖`` and ``J_b``, ``J`` the norms of the constraint's Jacobian,
          ``ρ = min(1, max_b(F_b/c0 + G_b + [b = y]/γ₁)/J²)``,
          ``α_x = α_y = min(η_θ, min_b ½/(F_b/c0 + G_b + [b = y]/γ₁ + ρ J_b J))`` (when ``h``
          does not involve ``x``, ``J_x = 0``: ``α_x = ½/(F_x/c0 + G_x)`` of its own,
          re-estimated at the current point every 100 iterations, never increased),
          ``η_θ = ½/(G_θ + 1/γ₁)``, ``η_λ = min(½/(γ₁ J² + 1/γ₂), η_θ)`` and the step of ``μ``
          ``τ = min(ρ α, ½/J²)`` (the result's ``steps``); a given ``step`` sets ``α``, a
          given ``lower_step`` both ``η``. ``z_step`` (``β``, 0.1),
          ``c0`` (1) and ``power`` (0.3): the penalty ``c_k = c0 (k+1)^power``; ``gamma1``,
          ``gamma2`` (1, 1): the proximal parameters; ``z_max`` (1e4): multipliers stay in
          ``[0, z_max]``; ``project_x``, ``project_y`` (operators: ``X``, and ``Y`` for both
          ``y`` and ``θ``). Iteration ``k``: ``θ ← P_Y(θ − η_θ(∇ᵧg(x, θ) + J_yh(x, θ)ᵀλ +
          (θ − y)/γ₁))``, ``λ ← Π(λ + η_λ(h(x, θ) − (λ − z)/γ₂))``; then
          ``d_x = ∇ₓf/c_k + ∇ₓg(x, y) − ∇ₓg(x, θ) − J_xh(x, θ)ᵀλ + J_xh(x, y)ᵀμ̂``,
          ``d_y = ∇ᵧf/c_k + ∇ᵧg(x, y) − (y − θ)/γ₁ + J_yh(x, y)ᵀμ̂`` with
          ``μ̂ = Π(μ + ρh(x, y))``, ``(x, y) ← P_{X×Y}((x, y) − (α_x d_x, α_y d_y))``,
          ``μ ← Π(μ + τh(x, y))``, ``z ← Π(z + β(λ − z)/γ₂)``. The reformulation's
          minimiser is ``O(1/c)`` from the solution unless ``f``'s gradient vanishes there,
          so the accuracy grows with the iterations like ``1/c_k``.
    callback : callable, optional
        ``callback(intermediate_result)`` every ``check_every`` iterations with ``x``, ``y``,
        ``nit``, ``hypergrad_norm``; raising ``StopIteration`` stops the run (status 99).
    check_every : int
    disp : bool
        Print one line per check (iteration, hypergradient norm, time).
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` on status 1 or 4.
    workers : int, optional
        Threads for the native problems' sums over data rows (None: all cores).

    Returns
    -------
    BilevelResult

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> q = bilevel.problems.Quadratic.random(d_x=3, d_y=5, seed=0)  # closed-form solution known
    >>> res = bilevel.minimize(q, np.zeros(3), method="aid", tol=1e-8)
    >>> res.success, bool(np.allclose(res.x, q.optimal_x, atol=1e-6))
    (True, True)
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}.")
    if outer is None:
        outer = "lbfgs" if method == "exact" else "gd"
    if outer not in ("gd", "lbfgs"):
        raise ValueError(f"`outer` must be 'gd' or 'lbfgs'; got {outer!r}.")
    if outer == "lbfgs" and method not in OUTER_METHODS:
        raise ValueError(
            f"outer='lbfgs' needs a method with a hypergradient ({', '.join(OUTER_METHODS)}); got method={method!r}."
        )
    if bounds is not None and outer != "lbfgs":
        raise ValueError("`bounds` needs outer='lbfgs' (with outer='gd', pass options['project_x']).")
    # Beyond 2**62 iterations is unlimited in practice (and must fit the core's counters).
    maxiter = min(positive_int(maxiter, "maxiter", minimum=0), 2**62)
    tol = nonnegative_scalar(tol, "tol")
    check_every = positive_int(check_every, "check_every")
    lbfgs = outer == "lbfgs"
    allowed = OUTER_METHODS[method] if lbfgs else METHODS[method]
    opts = check_options(options, allowed, f"{method}' with outer='{outer}" if lbfgs else method)
    memory = opts.pop("memory", None)
    lower_solve = opts.pop("lower_solve", None)
    if lower_solve is not None and lower_solve not in ("auto", "direct", "iterative"):
        raise ValueError(f"options['lower_solve'] must be 'auto', 'direct' or 'iterative'; got {lower_solve!r}.")
    if getattr(prob, "project_x", None) is not None and opts.get("project_x") is None:
        opts["project_x"] = prob.project_x
    constrained = isinstance(prob, NativeConstrainedProblem) or getattr(prob, "h", None) is not None
    if constrained != (method == "lvhba"):
        raise ValueError(
            "a constrained lower level (Problem(h=..., jac_h=...) or a native constrained problem) is solved by "
            "method='lvhba', and method='lvhba' needs one."
        )
    if method == "lvhba":
        x, y, dtype, handle = _prepare_constrained(prob, x0, y0)
        return minimize_lvhba(
            prob,
            x,
            y,
            dtype,
            handle,
            seed=seed_from_rng(rng, high=2**63 - 1),
            opts=opts,
            tol=tol,
            maxiter=maxiter,
            callback=callback,
            check_every=check_every,
            disp=disp,
            warn=warn,
            workers=workers,
        )
    x, y, dtype, handle = _prepare(prob, x0, y0)
    copts = _core_options(method, opts, prob, tol, maxiter, seed_from_rng(rng, high=2**63 - 1), (x.size, y.size))
    copts["outer"] = outer
    if memory is not None:
        copts["memory"] = positive_int(memory, "options['memory']")
    if lower_solve is not None:
        copts["lower_solve"] = lower_solve
    if bounds is not None:
        copts["bounds"] = _bounds(bounds, x.size)

    def build(state: dict) -> BilevelResult:
        return BilevelResult(x=state["x"], y=state["y"], nit=state["nit"], hypergrad_norm=state["hypergrad_norm"])

    progress = Progress(callback, disp, build, title=f"optcore.bilevel.minimize(method={method!r})")
    fn = _core.bilevel_minimize_f32 if dtype == np.float32 else _core.bilevel_minimize_f64
    run = {
        "progress": progress if progress.active else None,
        "check_every": check_every,
        "workers": normalize_workers(workers),
    }
    d = fn(handle, x, y, method, copts, run)
    d["_bounds"] = bounds is not None
    status = int(d.pop("status"))
    detail = d.pop("detail")
    measured = bool(d.pop("measured"))
    message = _message(status, detail, measured, d, method, tol)
    del d["_bounds"]
    res = BilevelResult(**d, status=status, message=message, method=method)
    return finish(res, f"bilevel.minimize(method={method!r})", progress=progress, warn=warn)


def hypergradient(
    prob,
    x,
    y=None,
    method: str = "exact",
    *,
    tol: float = 1e-12,
    maxiter: int = 1000,
    terms: int = 100,
    eta=None,
    workers: int | None = None,
):
    """The hypergradient ``∇F(x) = ∇ₓf − ∇²ₓᵧg v`` with ``∇²ᵧᵧg v = ∇ᵧf``, at ``(x, y)``.

    For small problems, to check your own oracles (and their Hessian–vector products) against
    a closed form or against :func:`minimize`'s estimates.

    Parameters
    ----------
    prob : Problem or a native problem
    x : array_like
    y : array_like, optional
        The lower-level solution ``y*(x)``; ``None`` computes it by at most 100000 steps of
        accelerated gradient descent on ``g(x, ·)`` from zeros to
        ``‖∇ᵧg‖ <= 1e-8 ‖∇ᵧg(x, 0)‖`` (a ``Problem`` needs ``d_y``).
        The result is exact only to the accuracy of ``y``.
    method : {"exact", "cg", "neumann"}
        ``"exact"`` builds ``∇²ᵧᵧg`` with ``d_y`` products and solves by dense LU;
        ``"cg"`` runs conjugate gradients to ``‖r‖ <= tol ‖∇ᵧf‖`` (at most ``maxiter``
        products); ``"neumann"`` sums ``terms`` terms of ``η Σ (I − η H)^q ∇ᵧf`` (``eta``
        default ``1/L̂_g``).
    workers : int, optional
        Threads for the native problems' sums over data rows (None: all cores; the result is
        the same whatever ``workers`` is).

    Returns
    -------
    ndarray
        The hypergradient, shape ``(d_x,)``, in the working dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from optcore import bilevel
    >>> q = bilevel.problems.Quadratic.random(d_x=3, d_y=5, seed=0)
    >>> x = np.zeros(3)
    >>> g = bilevel.hypergradient(q, x, q.y_star(x), method="exact")
    >>> bool(np.allclose(g, q.hypergradient_closed_form(x)))
    True
    """
    if method not in ("exact", "cg", "neumann"):
        raise ValueError(f"`method` must be 'exact', 'cg' or 'neumann'; got {method!r}.")
    tol = nonnegative_scalar(tol, "tol")
    maxiter = positive_int(maxiter, "maxiter")
    terms = positive_int(terms, "terms")
    workers = normalize_workers(workers)
    if eta is not None:
        eta = positive_scalar(eta, "eta")
    xa, ya, dtype, handle = _prepare(prob, x, y, name_y="y")
    f32 = dtype == np.float32
    need_solve = y is None
    if need_solve or (method == "neumann" and eta is None):
        mn = _core.bilevel_minimize_f32 if f32 else _core.bilevel_minimize_f64
        opts = {"maxiter": 0, "refine_steps": 100_000 if need_solve else 0, "seed": 0}
        d = mn(handle, xa, ya, "aid", opts, {"progress": None, "check_every": 10, "workers": workers})
        if need_solve:
            ya = d["y"]
        if eta is None:
            eta = d["inner_step"]
    eta = 1.0 if eta is None else float(eta)
    fn = _core.bilevel_hypergradient_f32 if f32 else _core.bilevel_hypergradient_f64
    spec = {"method": method, "tol": tol, "maxiter": maxiter, "terms": terms, "eta": eta}
    return fn(handle, xa, ya, spec, workers)["hypergrad"]
