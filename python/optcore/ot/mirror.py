"""Mirror Sinkhorn (Ballu & Berthet, ICML 2023): convex objectives over the transport polytope.

>>> import numpy as np, optcore
>>> a = np.array([0.5, 0.5]); M = np.array([[0.0, 1.0], [1.0, 0.0]])
>>> res = optcore.ot.mirror_sinkhorn(a, a, M, maxiter=2000, output="last", tol=1e-6)
>>> bool(res.success), round(res.cost, 2)
(True, 0.0)
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._progress import Progress
from .._result import OptimizeResult, finish
from .._validation import (
    as_float_array,
    check_finite,
    normalize_workers,
    positive_int,
    positive_scalar,
    working_dtype,
)
from . import checks

__all__ = ["MirrorResult", "mirror_sinkhorn"]

_OBJECTIVES = ("linear", "quadratic", "kl")
_OUTPUTS = ("average", "last")


class MirrorResult(OptimizeResult):
    """Result of :func:`mirror_sinkhorn`.

    Attributes
    ----------
    plan, x : ndarray, shape (n, m)
        The returned plan: the step-weighted average of one pair of consecutive iterates in
        eight (in four over the first 32 iterations; ``output="average"``, see
        :func:`mirror_sinkhorn`'s ``output``) or the last iterate. It satisfies the marginals only approximately (see
        ``marginal_error``); it is never rounded.
    fun : float
        ``F(plan)``: ``<plan, M>`` plus the built-in term; with ``grad`` also ``fun(plan)``
        when ``fun`` is given, else NaN. With ``cost_sampler``: ``<plan, M>`` when ``M`` (the
        expected cost) is given, else NaN.
    cost : float
        ``<plan, M>`` (NaN without ``M``).
    marginal_error : float
        ``||P 1 - a||_1 + ||P^T 1 - b||_1`` measured on ``plan``.
    nit : int
        Iterations (each one mirror step and one row or column scaling).
    history : ndarray, shape (k, 2)
        ``(nit, marginal_error)`` at each measurement (every ``check_every`` iterations).
    step0 : float
        The first step size used.
    gap : float
        A certified bound on ``F(plan) - F*`` (``F*`` the minimum over the transport polytope),
        from convexity and a dual pair the iteration provides (see :func:`mirror_sinkhorn`'s
        Notes); NaN with ``cost_sampler`` (noisy gradients certify nothing) or when the
        gradient at the plan is not finite (``"kl"`` on a plan with zeros).
    success, status, message
        ``success`` is True exactly when ``marginal_error <= tol`` and, with ``gap_tol``,
        ``gap <= gap_tol``, both measured on the returned plan.
    output, objective, tol, gap_tol
        What was solved.

    Examples
    --------
    >>> import numpy as np, optcore
    >>> res = optcore.ot.mirror_sinkhorn([0.5, 0.5], [0.5, 0.5], np.array([[0.0, 1.0], [1.0, 0.0]]), maxiter=200)
    >>> res.nit, res.history.shape, bool(res.cost <= res.gap)  # cost - OT <= gap; OT = 0 here
    (200, (20, 2), True)
    """

    plan: np.ndarray
    cost: float
    marginal_error: float
    history: np.ndarray


def mirror_sinkhorn(
    a,
    b,
    M=None,
    *,
    grad=None,
    cost_sampler=None,
    objective: str = "linear",
    ref=None,
    fun=None,
    step="sqrt",
    step0: float | None = None,
    output: str = "average",
    maxiter: int = 1000,
    tol: float | None = None,
    gap_tol: float | None = None,
    rng=None,
    callback=None,
    check_every: int = 10,
    disp: bool = False,
    workers: int | None = None,
    warn: bool = True,
) -> MirrorResult:
    r"""Minimise a convex ``F(P)`` over the transport polytope by Mirror Sinkhorn.

    Solves :math:`\min_{P \ge 0,\; P 1 = a,\; P^\top 1 = b} F(P)` by the single loop of
    Ballu & Berthet (ICML 2023): from :math:`P_0 = a b^\top / \sum a`, each iteration takes the
    entropic mirror step :math:`P \odot \exp(-\eta_t \nabla F(P_t))` and scales the result onto
    the row marginal (even iterations) or the column marginal (odd ones). The iteration runs in
    the log domain in Rust; built-in objectives never call Python. The linear objective stores
    the plan and ``exp(-eta M)`` (once per block of constant step) and updates the plan by
    multiplications, two iterations per pass over it, without an ``exp`` per entry (when the
    step times the cost's range is below 150 in float64, 15 in float32; else the log domain):
    it holds two ``n x m`` arrays (three with ``output="average"``, which it reads and writes on
    one pass in eight).

    ``F(P) = <P, M>`` (when ``M`` is given) ``+`` the built-in term of ``objective`` ``+`` the
    user's term whose gradient ``grad`` returns. With ``F = <P, M>`` the averaged plan's cost
    approaches the exact OT cost at the paper's :math:`O(\log T / \sqrt{T})` rate, with no
    regularisation parameter.

    Parameters
    ----------
    a, b : array_like, shapes (n,) and (m,)
        Marginals: non-negative, finite, equal total masses (relative 1e-6; ``b`` is then
        rescaled onto ``sum(a)``). ``None``: uniform (needs ``M`` or ``ref`` for the size).
    M : array_like, shape (n, m), optional
        Cost matrix (finite): the linear term ``<P, M>``. With ``cost_sampler`` it is the
        expected cost, used only to report ``cost`` and ``fun``.
    grad : callable, optional
        ``grad(P) -> array (n, m)``: the gradient of the user's term of ``F`` at ``P`` (called
        once per iteration, with the GIL; noisy or stochastic gradients are fine).
    cost_sampler : callable, optional
        Online costs: ``cost_sampler(k, rng) -> array (n, m)``, a noisy cost at iteration
        ``k`` (the gradient of ``<P, C_k>``), with ``rng`` the ``numpy.random.Generator`` made
        from ``rng``. Exclusive with ``grad``.
    objective : {"linear", "quadratic", "kl"}
        The built-in term: none (``"linear"``: ``F = <P, M>``), ``||P - ref||^2``
        (``"quadratic"``) or ``KL(P | ref) = sum P log(P / ref) - P + ref`` (``"kl"``; ``ref``
        positive wherever ``a_i b_j > 0``).
    ref : array_like, shape (n, m)
        The reference plan of ``"quadratic"`` and ``"kl"`` (finite, non-negative for ``"kl"``).
    fun : callable, optional
        ``fun(P) -> float``: the user's term of ``F``, evaluated once on the returned plan.
    step : {"sqrt", "horizon"} or float
        Step sizes: ``"sqrt"`` (the paper's decreasing :math:`\eta_0 / \sqrt{t+1}`, made
        piecewise constant over the blocks of iterations ``[0, 2), [2, 4), [4, 8), ...``: on each
        block the step is the block's mean of :math:`\eta_0 / \sqrt{t+1}`, so the step sums equal
        the paper's at block ends and the sum of squared steps is at most the paper's; the rate's
        bound is kept),
        ``"horizon"`` (the paper's constant :math:`\eta_0 / \sqrt{\mathrm{maxiter}}` for a known
        horizon), or a positive float (a constant step).
    step0 : float, optional
        :math:`\eta_0`. Default: the paper's :math:`\sqrt{\delta} / \|\nabla F(P_0)\|_\infty`
        with :math:`\delta = \|\log a\|_\infty + \|\log b\|_\infty` over the positive weights of
        the normalised marginals (at least 1).
    output : {"average", "last"}
        Return the step-weighted average of the iterates (the paper's guarantees: robust to
        noisy gradients) or the last iterate (faster in the noiseless case). The average is
        held on one pair of consecutive iterates in four over the first 32 iterations and one
        in eight after,
        :math:`\bar P_T = \sum_{s \in A, s \le T} w_s P_s / \sum_{s \in A, s \le T} w_s`
        with :math:`A = \{1, 8, 9, 16, 17, 24, 25, 32, 33, 48, 49, 64, 65, \dots\}`
        (``s // 2`` a multiple of 4 below 16, of 8 from 16 on; :math:`P_s` is the iterate made
        by iteration ``s - 1``) and :math:`w_s` the sum of the
        steps :math:`\eta_{s'-1}` of the iterates :math:`s'` of the same parity (the same
        scaling) since the previous averaged one (:math:`w_1 = \eta_0`,
        :math:`w_8 = \eta_1 + \eta_3 + \eta_5 + \eta_7`,
        :math:`w_9 = \eta_2 + \eta_4 + \eta_6 + \eta_8`, ...): each averaged iterate stands for
        the iterates since the last. This keeps the paper's :math:`O(\log T / \sqrt{T})` rate
        (the argument is in the Notes), comes out a little below the paper's average of every
        iterate in practice, and lets the linear objective read and write the ``n x m`` average
        on one pass over the plan in eight.
    maxiter : int
        Iterations (each is one mirror step and one scaling): the horizon. Without ``gap_tol``
        the run takes all of them (marginal feasibility alone is no reason to stop: the
        starting product plan is feasible).
    tol : float, optional
        Bound on ``||P 1 - a||_1 + ||P^T 1 - b||_1`` **of the returned plan**; ``success``
        needs it. Default ``1e-3 * sum(a)`` (the average converges at
        :math:`O(1/\sqrt{T})`: tolerances far below that need many iterations).
    gap_tol : float, optional
        Bound on the certified suboptimality ``gap >= F(plan) - F*`` of the returned plan (in
        the units of ``F``). Given, the gap is measured every ``check_every`` iterations
        once the marginal error is within ``tol`` (about three passes over the plan), the run
        stops when both hold, and ``success`` needs both. ``None`` (default): the whole horizon
        ``maxiter`` runs and the final gap is reported. Not with ``cost_sampler``.
    rng : None, int or numpy.random.Generator
        Seed of the generator handed to ``cost_sampler``.
    callback : callable, optional
        ``callback(intermediate_result)`` every ``check_every`` iterations with ``nit``,
        ``marginal_error`` (at the last measurement) and ``step``. ``StopIteration`` stops the
        run (status 99). Ctrl-C is honoured within about 0.2 s.
    check_every : int
        Iterations between measurements of the marginal error and callbacks.
    disp : bool
        Print one line per check.
    workers : int, optional
        Threads (``None`` or -1: all cores). Results are bit-identical for any value.
    warn : bool
        Warn :class:`~optcore.ConvergenceWarning` when ``tol`` is not met.

    Returns
    -------
    MirrorResult
        The plan, its measured marginal error, cost and objective, and the certified ``gap``.

    Raises
    ------
    ValueError
        Bad weights, shapes, ``step``, ``objective``, ``output``, a missing ``ref`` or cost,
        ``grad`` with ``cost_sampler``, or a ``grad``/``cost_sampler`` returning a wrong shape or
        non-finite values.
    TypeError
        Non-callable ``grad``/``cost_sampler``/``fun``, complex data.

    Notes
    -----
    The certificate: for convex ``F``, any plan ``P`` (feasible or not) and any ``f``, ``g``
    with ``f_i + g_j <= G_ij``, ``G = ∇F(P)``, convexity gives
    ``F(P) - F* <= <G, P> - <f, a> - <g, b>``. The iteration's accumulated log-domain row and
    column scalings, divided by the sum of the steps, are dual potentials of the averaged
    gradients; two c-transforms make them feasible for ``G`` (``g_j = min_i G_ij - f_i``, then
    ``f_i = min_j G_ij - g_j``). With ``grad`` the oracle is called once more at each
    certificate (at the returned plan).

    Why the averaged pairs keep the rate. The paper's average of every iterate satisfies
    ``F(P_bar) - F* <= (D + c L^2 sum eta_t^2) / sum eta_t`` (mirror descent;
    ``D = KL(P* | P_0)``, ``L = max |grad F|``). The output replaces each iterate by a later one
    of the same scaling, at most 14 iterations on (a window of constant size), and consecutive
    iterates differ by ``O(eta_t L + delta_t)`` in l1 (``delta_t`` the marginal error the
    scaling removes, whose squares sum within the same bound), which changes the weighted sum
    by ``O(L^2 sum eta_t^2 + L sum eta_t delta_t)``: the order of the bound's own second term.
    The at most 14 iterates after the last averaged pair are left out; each is that close to a
    feasible plan, so their terms change the bound by the same order again.

    Examples
    --------
    Linear objective: the averaged plan approaches the exact OT plan (cost 0 here), with a
    certified bound on how far it is.

    >>> import numpy as np, optcore
    >>> M = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> res = optcore.ot.mirror_sinkhorn([0.5, 0.5], [0.5, 0.5], M, maxiter=2000)
    >>> bool(res.success), bool(res.cost <= res.gap < 0.05)
    (True, True)

    Stop as soon as the certificate allows (``gap_tol``), with the last iterate:

    >>> res = optcore.ot.mirror_sinkhorn([0.5, 0.5], [0.5, 0.5], M, output="last", gap_tol=1e-3, maxiter=10**5)
    >>> bool(res.success), res.nit < 10**5, bool(res.gap <= 1e-3)
    (True, True, True)

    A convex objective through its gradient: the plan closest to ``P0`` in the Frobenius norm
    (the method's rate is ``O(1/sqrt(T))``: after 3000 iterations the last iterate's marginals
    are within 1e-2, not 1e-3).

    >>> P0 = np.array([[0.4, 0.0], [0.2, 0.4]])
    >>> grad = lambda P: 2 * (P - P0)
    >>> res = optcore.ot.mirror_sinkhorn([0.5, 0.5], [0.5, 0.5], grad=grad, output="last", maxiter=3000, tol=1e-2)
    >>> bool(res.success), np.round(res.plan, 2).tolist()
    (True, [[0.4, 0.1], [0.1, 0.4]])
    """
    if grad is not None and cost_sampler is not None:
        raise ValueError("give `grad` or `cost_sampler`, not both.")
    for name, f in (("grad", grad), ("cost_sampler", cost_sampler), ("fun", fun)):
        if f is not None and not callable(f):
            raise TypeError(f"`{name}` must be callable; got {type(f).__name__}.")
    if objective not in _OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {list(_OBJECTIVES)}.")
    if output not in _OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {list(_OUTPUTS)}.")
    if (ref is None) != (objective == "linear"):
        raise ValueError(
            f"objective={objective!r} " + ("needs `ref`, the reference plan." if ref is None else "takes no `ref`.")
        )
    if objective == "linear" and M is None and grad is None and cost_sampler is None:
        raise ValueError("nothing to minimise: give `M`, `grad`, `cost_sampler`, or a quadratic/kl `objective`.")
    Ma = None if M is None else as_float_array(M, "M")
    Ra = None if ref is None else as_float_array(ref, "ref")
    shape = Ma.shape if Ma is not None else Ra.shape if Ra is not None else None
    for name, arr in (("M", Ma), ("ref", Ra)):
        if arr is not None and (arr.ndim != 2 or arr.shape != shape):
            raise ValueError(f"`{name}` must be a 2-D array of shape (len(a), len(b)); got {arr.shape}.")
    aa = checks.weights(a, "a", None if shape is None else shape[0])
    bb = checks.weights(b, "b", None if shape is None else shape[1])
    if aa.ndim != 1 or bb.ndim != 1:
        raise ValueError(f"`a` and `b` must be 1-D; got shapes {aa.shape} and {bb.shape}.")
    n, m = aa.shape[0], bb.shape[0]
    if shape is not None and shape != (n, m):
        raise ValueError(f"`M`/`ref` have shape {shape} but len(a) = {n} and len(b) = {m}.")
    checks.check_weights(aa, "a", np)
    checks.check_weights(bb, "b", np)
    for name, arr in (("M", Ma), ("ref", Ra)):
        if arr is not None:
            check_finite(arr, name)
    if objective == "kl" and np.any(Ra < 0):
        raise ValueError("`ref` has negative entries; the KL reference plan must be non-negative.")
    dtype = working_dtype(*(x for x in (aa, bb, Ma, Ra) if x is not None))
    mass = float(aa.sum(dtype=np.float64))
    scale = checks.check_masses(mass, float(bb.sum(dtype=np.float64)), lambda _: "`b`")
    if scale is not None:
        bb = bb.astype(np.float64) * scale[0]
    tol = 1e-3 * mass if tol is None else positive_scalar(tol, "tol")
    if gap_tol is not None:
        if cost_sampler is not None:
            raise ValueError("`gap_tol` needs exact gradients; with `cost_sampler` the horizon `maxiter` is run.")
        gap_tol = positive_scalar(gap_tol, "gap_tol")
    maxiter = positive_int(maxiter, "maxiter", minimum=0)
    check_every = positive_int(check_every, "check_every")
    workers = normalize_workers(workers)
    schedule, eta0 = _schedule(step, step0, maxiter)
    gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng

    c = lambda x: None if x is None else np.ascontiguousarray(x, dtype=dtype)  # noqa: E731
    oracle = _oracle(grad, cost_sampler, gen, n, m, dtype)
    if schedule == "horizon":
        g0 = _first_gradient(aa, bb, mass, Ma if cost_sampler is None else None, objective, Ra, oracle)
        schedule, eta0 = "constant", _paper_step0(aa, bb, mass, g0) / np.sqrt(max(maxiter, 1))
    core_cost = None if cost_sampler is not None else c(Ma)

    def build(state: dict) -> MirrorResult:
        return MirrorResult(nit=state["nit"], marginal_error=state["error"], step=state.get("step"))

    progress = Progress(callback, disp, build, f"optcore.ot.mirror_sinkhorn(objective={objective!r}), n={n}, m={m}")
    opts = {
        "step": eta0,
        "schedule": schedule,
        "output": output,
        "objective": objective,
        "tol": tol,
        "gap_tol": gap_tol,
        "certify": cost_sampler is None,
        "maxiter": maxiter,
        "check_every": check_every,
    }
    run = {"progress": progress if progress.active else None, "check_every": check_every, "workers": workers}
    fn = getattr(_core, "mirror_sinkhorn_f32" if dtype == np.float32 else "mirror_sinkhorn_f64")
    out = fn(c(aa), c(bb), core_cost, c(Ra), oracle, opts, run)
    # <P, M> as the core measured it on the returned plan (f64 sums), or here when the core ran
    # without M (noisy costs).
    cost = float(out["cost"]) if core_cost is not None else _cost(out["plan"], Ma)
    res = _result(out, cost, Ra, fun, grad is not None, cost_sampler is not None, (tol, gap_tol), output, objective)
    finish(res, "optcore.ot.mirror_sinkhorn", progress=progress, warn=warn, stacklevel=3)
    return res


def _schedule(step, step0, maxiter):
    """``(schedule, eta0)`` for the core: ``"sqrt"``, ``"constant"``, or ``"horizon"`` (made
    constant by the caller once the first gradient is known)."""
    eta0 = None if step0 is None else positive_scalar(step0, "step0")
    if isinstance(step, str):
        if step not in ("sqrt", "horizon"):
            raise ValueError(f"unknown step {step!r}; use 'sqrt', 'horizon' or a positive float.")
        if step == "horizon" and eta0 is not None:
            return "constant", eta0 / np.sqrt(max(maxiter, 1))
        return step, eta0
    if step0 is not None:
        raise ValueError("`step0` goes with step='sqrt' or 'horizon'; a float `step` is the constant step itself.")
    return "constant", positive_scalar(step, "step")


def _oracle(grad, cost_sampler, gen, n, m, dtype):
    """The user's gradient as the core calls it: ``(t, flat P) -> flat G`` of the dtype, checked."""
    if grad is None and cost_sampler is None:
        return None
    name = "grad" if grad is not None else "cost_sampler"

    def oracle(t, p):
        G = grad(p.reshape(n, m)) if grad is not None else cost_sampler(t, gen)
        G = np.asarray(G)
        if G.shape != (n, m):
            raise ValueError(f"`{name}` returned shape {G.shape}; expected ({n}, {m}).")
        if G.dtype.kind not in "biuf":
            raise TypeError(f"`{name}` returned dtype {G.dtype}; expected real numbers.")
        if not np.all(np.isfinite(G)):
            raise ValueError(f"`{name}` returned non-finite values at iteration {t}.")
        return np.ascontiguousarray(G, dtype=dtype).ravel()

    return oracle


def _first_gradient(a, b, mass, M, objective, R, oracle):
    """``∇F(P_0)`` at the product plan (for the step of ``step="horizon"``)."""
    P0 = np.outer(a, b) / mass
    G = np.zeros_like(P0) if M is None else np.asarray(M, np.float64).copy()
    if objective == "quadratic":
        G += 2 * (P0 - R)
    elif objective == "kl":
        with np.errstate(divide="ignore", invalid="ignore"):
            G += np.where(P0 > 0, np.log(P0) - np.log(R), 0.0)
    if oracle is not None:
        G += oracle(0, P0.ravel()).reshape(P0.shape)
    return G


def _paper_step0(a, b, mass, G) -> float:
    """The paper's ``sqrt(delta) / ||G||_inf`` (as the core computes it for ``"sqrt"``)."""
    ext = lambda w: float(np.max(np.abs(np.log(w[w > 0] / mass)), initial=0.0))  # noqa: E731
    delta = max(ext(a) + ext(b), 1.0)
    gmax = float(np.max(np.abs(G)))
    return np.sqrt(delta) / gmax if gmax > 0 else 1.0


def _cost(plan, M) -> float | None:
    """``<plan, M>`` in float64 (None without ``M``)."""
    return float(np.sum(plan.astype(np.float64) * M)) if M is not None else None


def _result(out, cost, R, fun, grad_given, sampled, tols, output, objective) -> MirrorResult:
    """The result of the core's output; ``cost`` is ``<plan, M>`` (None without ``M``)."""
    tol, gap_tol = tols
    plan = out["plan"]
    if sampled:
        value = float("nan") if cost is None else cost
    elif not grad_given:
        value = float(out["fun"])
    elif fun is None:
        value = float("nan")
    else:
        value = (0.0 if cost is None else cost) + _builtin(plan, R, objective) + float(fun(plan))
    status = int(out["status"])
    err, gap = float(out["marginal_error"]), float(out["gap"])
    if sampled:
        measured = f"marginal error {err:.3g} (noisy costs: no optimality certificate)"
    else:
        measured = f"marginal error {err:.3g}, certified suboptimality gap {gap:.3g}"
    if gap_tol is None:
        converged = f"Ran the horizon of {int(out['nit'])} iterations: {measured}; marginal error <= tol {tol:g}."
        limit = f"Ran the horizon of {int(out['nit'])} iterations: {measured}; marginal error > tol {tol:g}."
    else:
        converged = f"Converged: {measured}; marginal error <= tol {tol:g} and gap <= gap_tol {gap_tol:g}."
        limit = f"Iteration limit reached: {measured}; tol {tol:g}, gap_tol {gap_tol:g} not both met."
    messages = {
        0: converged,
        1: limit,
        4: f"Numerical breakdown: {out['detail']}",
        99: "`callback` raised `StopIteration`.",
    }
    return MirrorResult(
        x=plan,
        plan=plan,
        fun=value,
        cost=float("nan") if cost is None else cost,
        marginal_error=err,
        nit=int(out["nit"]),
        status=status,
        message=messages.get(status, ""),
        history=np.array(out["history"], dtype=float).reshape(-1, 2),
        step0=float(out["step0"]),
        output=output,
        objective=objective,
        tol=tol,
        gap_tol=gap_tol,
        gap=gap,
    )


def _builtin(plan, R, objective) -> float:
    """The built-in term of ``F`` at ``plan`` (as the core computes it)."""
    P = plan.astype(np.float64)
    if objective == "quadratic":
        return float(np.sum((P - R) ** 2))
    if objective == "kl":
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(np.where(P > 0, P * np.log(P / R), 0.0) - P + R))
    return 0.0
