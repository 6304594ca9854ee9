"""Independent float64 reference computations and checks shared by the tests of
:func:`optcore.ot.sinkhorn` (``test_ot_sinkhorn.py``, ``test_ot_sinkhorn_api.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import strategies as st
from numpy.testing import assert_allclose

METHODS = ("log", "eps_scaling", "scaling", "sns")
LOG_METHODS = ("log", "eps_scaling", "sns")


# ------------------------------------------------------------------------------------------
# Independent reference computations (float64)
# ------------------------------------------------------------------------------------------


def marginal_l1(plan, a, b) -> float:
    """||P 1 - a||_1 + ||P^T 1 - b||_1 of one plan, in float64."""
    P = np.asarray(plan, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(P.sum(axis=1) - a).sum() + np.abs(P.sum(axis=0) - b).sum())


def as_solved(a, b):
    """``b`` as the solver uses it: masses within relative 1e-6 are rescaled onto sum(a) (in
    b's dtype, as documented), and the marginal error is measured against that."""
    b = np.asarray(b)
    sa, sb = float(np.sum(a, dtype=np.float64)), np.sum(b, axis=0, dtype=np.float64)
    if np.all(sb == sa):
        return b
    return (b.astype(np.float64) * (sa / sb)).astype(b.dtype)


def entropic_objective(plan, M, reg) -> float:
    """<P, M> + reg * sum P log P with 0 log 0 = 0, in float64."""
    P = np.asarray(plan, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    pos = P > 0
    entropy = float(np.sum(P[pos] * np.log(P[pos])))
    return float(np.sum(P * M)) + reg * entropy


def plan_from_potentials(f, g, M, reg) -> np.ndarray:
    """exp((f_i + g_j - M_ij) / reg) in float64 (zero where a potential is -inf)."""
    f = np.asarray(f, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.exp((f[:, None] + g[None, :] - M) / reg)


def weights(rng, k, zero_frac=0.0, mass=1.0) -> np.ndarray:
    """Random non-negative weights in float64: a fraction ~zero_frac of exact zeros, the
    others uniform in [0.1, 1], scaled to total ``mass`` (always at least one positive)."""
    w = rng.uniform(0.1, 1.0, k)
    w[rng.random(k) < zero_frac] = 0.0
    if not w.any():
        w[rng.integers(k)] = 1.0
    return w * (mass / w.sum())


def point_cloud(n, m, seed, *, normalize=False):
    """Squared Euclidean costs between uniform points of the unit square."""
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return M / M.max() if normalize else M


@dataclass
class Problem:
    a: np.ndarray
    b: np.ndarray
    M: np.ndarray
    reg: float
    scale: float

    def astype(self, dtype) -> Problem:
        return Problem(self.a.astype(dtype), self.b.astype(dtype), self.M.astype(dtype), self.reg, self.scale)


def random_problem(
    seed, n, m, *, zero_frac=0.3, scale=1.0, reg_factor=0.1, mass=1.0, offset=0.0, dtype=np.float64
) -> Problem:
    rng = np.random.default_rng(seed)
    a = weights(rng, n, zero_frac, mass)
    b = weights(rng, m, zero_frac, mass)
    M = scale * (rng.random((n, m)) + offset)
    return Problem(a, b, M, reg_factor * scale, scale).astype(dtype)


@st.composite
def problems(draw, dtype=None) -> Problem:
    """Random problems: n, m in 1..60, weights with zeros (positive total), costs of any
    scale and sign, reg in [0.05, 1] times the cost scale."""
    n = draw(st.integers(1, 60))
    m = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    zero_frac = draw(st.sampled_from([0.0, 0.25, 0.6]))
    scale = draw(st.floats(0.1, 10.0))
    reg_factor = draw(st.floats(0.05, 1.0))
    mass = draw(st.floats(0.5, 2.0))
    offset = draw(st.floats(-1.0, 1.0))
    if dtype is None:
        dtype = draw(st.sampled_from([np.float32, np.float64]))
    return random_problem(
        seed, n, m, zero_frac=zero_frac, scale=scale, reg_factor=reg_factor, mass=mass, offset=offset, dtype=dtype
    )


def dual_tolerance(plan, reg: float, plan_l1: float) -> np.ndarray:
    """How far f_i + g_j = M_ij + reg log P_ij of two solutions may differ when their plans
    differ by at most plan_l1 in L1: reg * plan_l1 / P_ij, entry by entry."""
    P = np.asarray(plan, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return reg * plan_l1 / P


SOLVE_TOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-4}
#: The documented range of method="scaling": it stops with status 4 once |M| / reg exceeds about this.
SCALING_RANGE = {np.dtype(np.float64): 700.0, np.dtype(np.float32): 87.0}


def plan_identity_rtol(res, M, reg) -> float:
    """Relative error allowed between the plan and exp((f + g - M)/reg) computed from the
    returned (rounded) potentials: the exponent carries eps * (|f| + |g| + |M|) / reg."""
    eps = float(np.finfo(res.plan.dtype).eps)
    size = max(np.max(np.abs(v[np.isfinite(v)]), initial=0.0) for v in (res.f, res.g))
    return 32 * eps * (1.0 + (2 * size + float(np.max(np.abs(M)))) / reg)


def assert_valid_result(res, a, b, M, reg, tol):
    """The invariants every returned result satisfies, checked against float64 references."""
    P = res.plan
    assert P is res.x
    assert P.shape == M.shape
    assert not np.isnan(P).any() and np.all(np.isfinite(P))
    assert np.all(P >= 0)
    b = as_solved(a, b)
    measured = marginal_l1(P, a, b)
    mass = float(np.sum(a, dtype=np.float64))
    assert res.marginal_error == pytest.approx(measured, rel=1e-9, abs=1e-13 * mass)
    assert res.success == (res.marginal_error <= tol)
    if res.success:
        assert res.status == 0
        assert measured <= tol * (1 + 1e-9) + 1e-15
    else:
        assert res.status in (1, 4)
    P64 = P.astype(np.float64)
    assert res.cost == pytest.approx(float(np.sum(P64 * M.astype(np.float64))), rel=1e-9, abs=1e-12 * mass)
    # fun = cost + entropy term can cancel: compare relative to the size of the two terms
    pos = P64 > 0
    terms = abs(res.cost) + reg * abs(float(np.sum(P64[pos] * np.log(P64[pos]))))
    eps = float(np.finfo(P.dtype).eps)
    assert res.fun == pytest.approx(entropic_objective(P64, M, reg), rel=0, abs=64 * eps * terms + 1e-15 * mass)
    # zero weights: zero rows / columns, -inf potentials; positive weights: finite potentials
    assert np.all(P[np.asarray(a) == 0, :] == 0)
    assert np.all(P[:, np.asarray(b) == 0] == 0)
    assert np.all(np.isneginf(res.f[np.asarray(a) == 0]))
    assert np.all(np.isneginf(res.g[np.asarray(b) == 0]))
    assert np.all(np.isfinite(res.f[np.asarray(a) > 0]))
    assert np.all(np.isfinite(res.g[np.asarray(b) > 0]))
    # P_ij = exp((f_i + g_j - M_ij) / reg)
    Q = plan_from_potentials(res.f, res.g, M, reg)
    fin = np.isfinite(res.f)[:, None] & np.isfinite(res.g)[None, :]
    assert np.all(Q[~fin] == 0)
    assert_allclose(P64[fin], Q[fin], rtol=plan_identity_rtol(res, M, reg), atol=1e-30)
