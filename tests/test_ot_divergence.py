"""The Sinkhorn divergence (optcore.ot.sinkhorn_divergence): values against POT and GeomLoss's
formula, non-negativity, zero on identical inputs, gradients against finite differences,
float32, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from optcore.ot import Grid, sinkhorn_divergence

TIGHT = 1e-13


def _clouds(n, m, d=2, seed=0, shift=0.3):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, d)), rng.random((m, d)) + shift
    a, b = rng.random(n) + 0.2, rng.random(m) + 0.2
    return a / a.sum(), x, b / b.sum(), y


def _sq(u, v):
    return ((u[:, None, :] - v[None, :, :]) ** 2).sum(-1)


def _geomloss_formula(a, x, b, y, eps, iters=5000):
    """GeomLoss's debiased formula written out: symmetric (averaged) softmin updates for OT(a, a)
    and OT(b, b), alternating ones for OT(a, b); S = <a, f_ba - f_aa> + <b, g_ab - g_bb>."""

    def softmin(C, h):
        return -eps * logsumexp(h[None, :] - C / eps, axis=1)

    la, lb = np.log(a), np.log(b)
    Cxy, Cxx, Cyy = _sq(x, y), _sq(x, x), _sq(y, y)
    f_ba, g_ab = np.zeros(len(a)), np.zeros(len(b))
    f_aa, g_bb = np.zeros(len(a)), np.zeros(len(b))
    for _ in range(iters):
        f_ba = softmin(Cxy, lb + g_ab / eps)
        g_ab = softmin(Cxy.T, la + f_ba / eps)
        f_aa = 0.5 * (f_aa + softmin(Cxx, la + f_aa / eps))
        g_bb = 0.5 * (g_bb + softmin(Cyy, lb + g_bb / eps))
    return float(a @ (f_ba - f_aa) + b @ (g_ab - g_bb))


@pytest.mark.parametrize("reg", [0.5, 0.05])
def test_value_matches_geomloss_formula(reg):
    a, x, b, y = _clouds(12, 9, seed=1)
    res = sinkhorn_divergence(a, x, b, y, reg, tol=TIGHT)
    assert res.success
    assert abs(res.fun - _geomloss_formula(a, x, b, y, reg)) < 1e-9


def test_value_matches_geomloss_itself():
    torch = pytest.importorskip("torch")
    geomloss = pytest.importorskip("geomloss")
    a, x, b, y = _clouds(30, 25, seed=2)
    reg = 0.1
    # GeomLoss's cost for p=2 is |x - y|^2 / 2: double it with the blur eps = blur^2.
    loss = geomloss.SamplesLoss(
        "sinkhorn", p=2, blur=np.sqrt(reg / 2), scaling=0.99, cost=lambda u, v: ((u[:, None] - v[None]) ** 2).sum(-1)
    )
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    ref = float(loss(t(a), t(x), t(b), t(y)))
    res = sinkhorn_divergence(a, x, b, y, reg, tol=TIGHT)
    assert abs(res.fun - ref) < 1e-4 * max(1.0, abs(ref))


def test_transport_objective_matches_pot():
    ot = pytest.importorskip("ot")
    a, x, b, y = _clouds(15, 11, seed=3)
    reg = 0.1
    ref = ot.bregman.empirical_sinkhorn_divergence(x, y, reg, a, b, numIterMax=100_000, stopThr=1e-14)
    res = sinkhorn_divergence(a, x, b, y, reg, objective="transport", tol=TIGHT)
    assert abs(res.fun - float(ref)) < 1e-9


def test_dense_form_equals_point_clouds():
    a, x, b, y = _clouds(8, 6, seed=4)
    r1 = sinkhorn_divergence(a, x, b, y, 0.1, tol=TIGHT, return_grad=True)
    r2 = sinkhorn_divergence(
        a, None, b, None, 0.1, M=_sq(x, y), Ma=_sq(x, x), Mb=_sq(y, y), tol=TIGHT, return_grad=True
    )
    assert abs(r1.fun - r2.fun) < 1e-10
    assert np.allclose(r1.grad_a, r2.grad_a, atol=1e-9) and np.allclose(r1.grad_b, r2.grad_b, atol=1e-9)
    # the cost gradient is the plan: the chain rule through M = |x - y|^2 gives grad_x
    gx = 2 * (r2.grad_M.sum(1)[:, None] * x - r2.grad_M @ y)
    Sa = r2.grad_Ma + r2.grad_Ma.T
    gx += 2 * (Sa.sum(1)[:, None] * x - Sa @ x)
    assert np.allclose(gx, r1.grad_x, atol=1e-9)


@settings(max_examples=60)
@given(n=st.integers(1, 7), m=st.integers(1, 7), d=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_nonnegative_and_zero_on_identical_inputs(n, m, d, seed):
    a, x, b, y = _clouds(n, m, d, seed=seed, shift=0.0)
    res = sinkhorn_divergence(a, x, b, y, 0.1, tol=1e-11)
    assert res.success and res.fun >= -1e-10
    assert res.fun == pytest.approx(res.ot_ab - 0.5 * res.ot_aa - 0.5 * res.ot_bb)
    same = sinkhorn_divergence(a, x, a, x, 0.1, return_grad=True)
    assert same.fun == 0.0
    assert np.abs(same.grad_x).max() < 1e-7 and np.abs(same.grad_a - same.grad_a.mean()).max() < 1e-7


@settings(max_examples=50)
@given(n=st.integers(2, 6), m=st.integers(2, 6), reg=st.sampled_from([1.0, 0.3, 0.1]), seed=st.integers(0, 2**16))
def test_gradients_match_finite_differences(n, m, reg, seed):
    a, x, b, y = _clouds(n, m, 2, seed=seed)
    rng = np.random.default_rng(seed + 1)
    res = sinkhorn_divergence(a, x, b, y, reg, tol=TIGHT, return_grad=True)
    assert res.success
    assert abs(a @ res.grad_a + b @ res.grad_b - res.fun) < 1e-10
    h = 1e-5

    def S(**kw):
        args = dict(a=a, x=x, b=b, y=y) | kw
        return sinkhorn_divergence(args["a"], args["x"], args["b"], args["y"], reg, tol=TIGHT).fun

    Dx, Dy = rng.standard_normal(x.shape), rng.standard_normal(y.shape)
    fd = (S(x=x + h * Dx) - S(x=x - h * Dx)) / (2 * h)
    assert abs(fd - np.sum(res.grad_x * Dx)) < 1e-6 * max(1.0, abs(fd))
    fd = (S(y=y + h * Dy) - S(y=y - h * Dy)) / (2 * h)
    assert abs(fd - np.sum(res.grad_y * Dy)) < 1e-6 * max(1.0, abs(fd))
    # weights: a direction of zero sum (the weights stay on the simplex)
    da = rng.standard_normal(n)
    da -= da.mean()
    h = 1e-6 * float(a.min()) / max(1e-12, float(np.abs(da).max()))
    fd = (S(a=a + h * da) - S(a=a - h * da)) / (2 * h)
    assert abs(fd - res.grad_a @ da) < 1e-5 * max(1.0, abs(fd))


def test_zero_weights_get_c_transform_gradients():
    a, x, b, y = _clouds(6, 5, seed=7)
    a[2] = 0.0
    a /= a.sum()
    res = sinkhorn_divergence(a, x, b, y, 0.2, tol=TIGHT, return_grad=True)
    assert np.all(np.isfinite(res.grad_a)) and np.all(np.isfinite(res.grad_x))
    # moving mass onto the empty point: the one-sided derivative matches
    da = -a.copy()
    da[2] += 1.0
    h = 1e-7
    s1 = sinkhorn_divergence(a + h * da, x, b, y, 0.2, tol=TIGHT).fun
    assert abs((s1 - res.fun) / h - res.grad_a @ da) < 1e-4


def test_float32_keeps_its_dtype():
    a, x, b, y = _clouds(10, 8, seed=5)
    f = lambda v: v.astype(np.float32)  # noqa: E731
    r32 = sinkhorn_divergence(f(a), f(x), f(b), f(y), 0.1, return_grad=True)
    r64 = sinkhorn_divergence(a, x, b, y, 0.1, return_grad=True)
    assert r32.success and r32.grad_x.dtype == np.float32 and r32.grad_a.dtype == np.float32
    assert abs(r32.fun - r64.fun) < 1e-4
    assert np.abs(r32.grad_x - r64.grad_x).max() < 1e-3


def test_bad_inputs_are_named():
    a, x, b, y = _clouds(4, 3)
    M = _sq(x, y)
    cases = [
        (dict(a=a, x=x, b=b, y=None, reg=0.1), "both point clouds"),
        (dict(a=a, x=None, b=b, y=None, reg=0.1), "give the point clouds"),
        (dict(a=a, x=x, b=b, y=y, reg=None), "`reg`"),
        (dict(a=a, x=x, b=b, y=y, reg=-1.0), "`reg`"),
        (dict(a=a, x=x, b=b, y=y, reg=0.1, M=M), "not both"),
        (dict(a=a, b=b, reg=0.1, M=M, Ma=_sq(x, x)), "all three costs"),
        (dict(a=a, b=b, reg=0.1, M=M, Ma=_sq(x, x), Mb=_sq(x, x)), "`Mb` must have shape"),
        (dict(a=a[:3], x=x, b=b, y=y, reg=0.1), "`a` must have shape"),
        (dict(a=-a, x=x, b=b, y=y, reg=0.1), "`a` has negative"),
        (dict(a=a, x=x, b=2 * b, y=y, reg=0.1), "same total mass"),
        (dict(a=a, x=x, b=b, y=y[:, :1], reg=0.1), "point clouds of shapes"),
        (dict(a=a, x=x, b=b, y=y, reg=0.1, objective="sharp"), "unknown objective"),
        (dict(a=a, x=x, b=b, y=y, reg=0.1, objective="transport", return_grad=True), "`return_grad` needs"),
        (dict(a=a, x=np.where(x > 0.5, np.inf, x), b=b, y=y, reg=0.1), "`x` contains"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg.replace("(", r"\(")):
            sinkhorn_divergence(**kw)
    with pytest.raises(TypeError, match="return_grad"):
        sinkhorn_divergence(a, x, b, y, 0.1, return_grad="yes")


def _grid_case(seed=0):
    g = Grid([np.linspace(0, 1, 12), np.linspace(0, 1, 9)])
    rng = np.random.default_rng(seed)
    a, b = rng.random(g.shape) + 0.1, rng.random(g.shape) + 0.1
    return g, a / a.sum(), b / b.sum()


@pytest.mark.parametrize("seed", [0, 1])
def test_grid_divergence_equals_the_dense_form(seed):
    g, a, b = _grid_case(seed)
    M = g.cost_matrix()
    rg = sinkhorn_divergence(a, None, b, None, reg=0.05, M=g, return_grad=True, tol=1e-12)
    rd = sinkhorn_divergence(a.ravel(), None, b.ravel(), None, reg=0.05, M=M, Ma=M, Mb=M, return_grad=True, tol=1e-12)
    assert rg.success and rg.fun > 0
    assert rg.fun == pytest.approx(rd.fun, rel=1e-10)
    assert rg.grad_a.shape == g.shape
    np.testing.assert_allclose(rg.grad_a.ravel(), rd.grad_a, atol=1e-10)
    np.testing.assert_allclose(rg.grad_b.ravel(), rd.grad_b, atol=1e-10)
    # the weight gradient predicts the change of the divergence along a mass-preserving direction
    d = np.zeros(g.shape)
    d[0, 0], d[5, 4] = 1e-4, -1e-4
    plus = sinkhorn_divergence(a + d, None, b, None, reg=0.05, M=g, tol=1e-12).fun
    minus = sinkhorn_divergence(a - d, None, b, None, reg=0.05, M=g, tol=1e-12).fun
    assert (plus - minus) / 2 == pytest.approx(float(np.sum(rg.grad_a * d)), rel=1e-5)


def test_grid_divergence_is_zero_for_identical_inputs_and_named_errors():
    g, a, b = _grid_case()
    assert sinkhorn_divergence(a, None, a, None, reg=0.05, M=g).fun == pytest.approx(0.0, abs=1e-12)
    r32 = sinkhorn_divergence(a.astype(np.float32), None, b.astype(np.float32), None, reg=0.05, M=g, return_grad=True)
    assert r32.grad_a.dtype == np.float32 and r32.success
    a0 = a.copy()
    a0[0, 0] = 0
    with pytest.raises(ValueError, match="positive weights"):
        sinkhorn_divergence(a0 / a0.sum(), None, b, None, reg=0.05, M=g, return_grad=True)
    with pytest.raises(ValueError, match="Grid"):
        sinkhorn_divergence(a, None, b, None, reg=0.05, M=g, Ma=np.eye(2))
