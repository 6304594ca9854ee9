"""optcore.bilevel: hypergradients against closed forms, convergence to known optima, the
finite-difference fallback, a non-singleton lower level, reproducibility, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import optcore
from optcore import bilevel
from optcore.bilevel import problems
from optcore.fixed_point import operators as ops


def quadratic_as_python(q: problems.Quadratic, *, hvp: bool, batched: bool = False) -> bilevel.Problem:
    """The same quadratic as Python oracles (optionally without second-order oracles)."""
    m = q._m

    def grad_f(x, y):
        return m["R"] @ y + m["P"] @ x + m["p"], m["Q"] @ y + m["R"].T @ x + m["q"]

    def grad_g(x, y):
        if y.ndim == 2:
            return y @ m["B"].T + (m["C"] @ x)[None, :], y @ m["A"].T + (m["B"].T @ x + m["a"])[None, :]
        return m["B"] @ y + m["C"] @ x, m["A"] @ y + m["B"].T @ x + m["a"]

    kw = {}
    if hvp:
        kw = {"hvp_yy": lambda x, y, v: m["A"] @ v, "jvp_xy": lambda x, y, v: m["B"] @ v}
    return bilevel.Problem(grad_f, grad_g, f=q.upper, batched=batched, d_y=q.d_y, **kw)


def ridge(n=60, p=5, seed=0, per_feature=True, dtype=np.float64, sparse=False):
    rng = np.random.default_rng(seed)
    X, Xv = rng.standard_normal((n, p)), rng.standard_normal((n, p))
    w = rng.standard_normal(p)
    t, tv = X @ w + 0.5 * rng.standard_normal(n), Xv @ w + 0.5 * rng.standard_normal(n)
    if sparse:
        X, Xv = sp.csr_array(X), sp.csr_array(Xv)
    else:
        X, Xv = X.astype(dtype), Xv.astype(dtype)
    return problems.RidgeHyperparameter(X, t, Xv, tv, per_feature=per_feature, dtype=dtype)


# --- hypergradients against closed forms ------------------------------------------------------


@pytest.mark.parametrize("method", ["exact", "cg"])
def test_hypergradient_matches_closed_form_on_quadratic(method):
    q = problems.Quadratic.random(4, 15, seed=1)
    x = np.linspace(-1, 1, 4)
    got = bilevel.hypergradient(q, x, q.y_star(x), method=method)
    want = q.hypergradient_closed_form(x)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("per_feature", [True, False])
@pytest.mark.parametrize("method", ["exact", "cg"])
def test_hypergradient_matches_closed_form_on_ridge(per_feature, method):
    prob = ridge(per_feature=per_feature)
    lam = np.linspace(-1, 0.5, prob.d_x)
    got = bilevel.hypergradient(prob, lam, prob.y_star(lam), method=method)
    np.testing.assert_allclose(got, prob.hypergradient_closed_form(lam), rtol=1e-8, atol=1e-12)


def test_hypergradient_neumann_and_lower_solve():
    q = problems.Quadratic.random(3, 10, seed=2)
    x = np.ones(3)
    want = q.hypergradient_closed_form(x)
    np.testing.assert_allclose(bilevel.hypergradient(q, x, q.y_star(x), method="neumann", terms=3000), want, rtol=1e-7)
    # y=None solves the lower level first (to ~1e-8 relative).
    np.testing.assert_allclose(bilevel.hypergradient(q, x, method="exact"), want, rtol=1e-6, atol=1e-8)


def test_finite_difference_second_order_matches_analytic():
    q = problems.Quadratic.random(3, 12, seed=3)
    rng = np.random.default_rng(0)
    x, y, v = rng.standard_normal(3), rng.standard_normal(12), rng.standard_normal(12)
    want = bilevel.hypergradient(q, x, y, method="exact")
    for batched in (False, True):
        got = bilevel.hypergradient(quadratic_as_python(q, hvp=False, batched=batched), x, y, method="exact")
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    o = q.oracles(x, y, v)
    np.testing.assert_allclose(o["hvp_yy"], q._m["A"] @ v, rtol=1e-12)
    np.testing.assert_allclose(o["jvp_xy"], q._m["B"] @ v, rtol=1e-12)


def test_logistic_second_order_matches_finite_differences_and_sparse_matches_dense():
    rng = np.random.default_rng(4)
    X, Xv = rng.standard_normal((30, 4)), rng.standard_normal((20, 4))
    lab, labv = rng.integers(0, 3, 30), rng.integers(0, 3, 20)
    dense = problems.LogisticHyperCleaning(X, lab, Xv, labv, reg=0.1)
    sparse = problems.LogisticHyperCleaning(sp.csr_array(X), lab, sp.csr_array(Xv), labv, reg=0.1)
    x, y, v = rng.standard_normal(30), 0.3 * rng.standard_normal(12), rng.standard_normal(12)
    a, b = dense.oracles(x, y, v), sparse.oracles(x, y, v)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14)
    # Analytic products against central differences of the analytic gradient.
    h = 1e-6
    gp, gm = dense.oracles(x, y + h * v), dense.oracles(x, y - h * v)
    np.testing.assert_allclose(a["hvp_yy"], (gp["grad_g_y"] - gm["grad_g_y"]) / (2 * h), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a["jvp_xy"], (gp["grad_g_x"] - gm["grad_g_x"]) / (2 * h), rtol=1e-6, atol=1e-9)


# --- convergence to known optima ---------------------------------------------------------------


@settings(max_examples=6)
@given(seed=st.integers(0, 10_000), d_x=st.integers(1, 5), d_y=st.integers(2, 20))
def test_aid_f2sa_penalty_converge_on_random_quadratics(seed, d_x, d_y):
    q = problems.Quadratic.random(d_x, d_y, seed=seed)
    xs = q.optimal_x
    scale = 1 + np.linalg.norm(xs)
    res = bilevel.minimize(q, np.zeros(d_x), method="aid", maxiter=500, tol=1e-9, rng=0)
    assert res.success and np.linalg.norm(res.x - xs) <= 1e-6 * scale
    res = bilevel.minimize(q, np.zeros(d_x), method="penalty", maxiter=1000, rng=0, warn=False)
    assert np.linalg.norm(res.x - xs) <= 1e-2 * scale
    res = bilevel.minimize(q, np.zeros(d_x), method="f2sa", maxiter=1500, rng=0, warn=False)
    assert np.linalg.norm(res.x - xs) <= 1e-2 * scale


@pytest.mark.parametrize("method", ["itd", "soba", "borep"])
def test_other_methods_approach_the_optimum(method):
    q = problems.Quadratic.random(3, 10, seed=5)
    opts = {"inner_steps": 200} if method == "itd" else None
    res = bilevel.minimize(q, np.zeros(3), method=method, maxiter=2000, rng=0, options=opts, warn=False)
    assert q.value(res.x) - q.optimal_value <= 1e-3 * (1 + abs(q.optimal_value))


def test_python_oracles_give_the_native_result():
    q = problems.Quadratic.random(3, 8, seed=6)
    a = bilevel.minimize(q, np.zeros(3), np.zeros(8), method="aid", maxiter=50, rng=0, warn=False)
    b = bilevel.minimize(
        quadratic_as_python(q, hvp=True), np.zeros(3), np.zeros(8), method="aid", maxiter=50, rng=0, warn=False
    )
    np.testing.assert_allclose(a.x, b.x, rtol=1e-10, atol=1e-12)
    assert a.oracle_calls == b.oracle_calls
    assert b.fun == pytest.approx(q.upper(b.x, b.y))


def test_result_fields_counts_and_phase_times():
    q = problems.Quadratic.random(2, 6, seed=7)
    res = bilevel.minimize(q, np.zeros(2), method="aid", maxiter=20, rng=0, warn=False)
    assert isinstance(res, optcore.OptimizeResult)
    for key in (
        "x",
        "y",
        "fun",
        "hypergrad_norm",
        "nit",
        "oracle_calls",
        "phase_times",
        "success",
        "status",
        "message",
    ):
        assert key in res
    assert res.oracle_calls["hvp_yy"] > 0 and res.oracle_calls["grad_g"] >= 20 * 10
    assert set(res.phase_times) == {"setup", "lower", "linear", "upper"}
    first_order = bilevel.minimize(q, np.zeros(2), method="f2sa", maxiter=20, rng=0, warn=False)
    # The method makes no second-order calls; the only ones are those of the final |grad F|
    # measurement (and of the certification when the method's criterion holds): a CG solve
    # of at most d_y + 1 products and one mixed product each.
    calls = first_order.oracle_calls
    assert first_order.hypergrad_estimate > 0
    assert calls["hvp_yy"] <= 2 * (q.d_y + 1) and calls["jvp_xy"] <= 2


def test_batched_problem_is_called_with_stacks():
    q = problems.Quadratic.random(2, 5, seed=8)
    inner = quadratic_as_python(q, hvp=False, batched=True)
    shapes = []
    orig = inner.grad_g

    def spy(x, y):
        shapes.append(y.shape)
        return orig(x, y)

    inner.grad_g = spy
    bilevel.minimize(inner, np.zeros(2), method="f2sa", maxiter=3, rng=0, warn=False)
    assert (2, 5) in shapes


# --- BDA's non-singleton counterexample ---------------------------------------------------------


def test_penalty_solves_bda_counterexample():
    # min_{x in [-100, 100]} ½(x − y₂)² + ½(y₁ − 1)²  s.t.  y ∈ argmin_y ½y₁² − x y₁ (any y₂).
    prob = bilevel.Problem(
        grad_f=lambda x, y: (np.array([x[0] - y[1]]), np.array([y[0] - 1.0, y[1] - x[0]])),
        grad_g=lambda x, y: (np.array([-y[0]]), np.array([y[0] - x[0], 0.0])),
    )
    res = bilevel.minimize(
        prob,
        [-5.0],
        [0.0, 0.0],
        method="penalty",
        maxiter=3000,
        rng=0,
        warn=False,
        options={"sigma": 1e-3, "project_x": ops.Box([-100.0], [100.0])},
    )
    np.testing.assert_allclose(res.x, [1.0], atol=1e-2)
    np.testing.assert_allclose(res.y, [1.0, 1.0], atol=1e-2)


def test_penalty_with_constrained_lower_level():
    # g = ½‖y − x‖² over the box y ≤ 0.5; f = ½‖y − 1‖² + ½‖x‖²·0.01. y*(x) = min(x, 0.5).
    d = 3
    prob = bilevel.Problem(
        grad_f=lambda x, y: (0.01 * x, y - 1.0),
        grad_g=lambda x, y: (x - y, y - x),
    )
    res = bilevel.minimize(
        prob,
        np.zeros(d),
        np.zeros(d),
        method="penalty",
        maxiter=2000,
        rng=0,
        warn=False,
        options={"project_y": ops.Box(np.full(d, -np.inf), np.full(d, 0.5))},
    )
    assert np.all(res.y <= 0.5 + 1e-12)
    np.testing.assert_allclose(res.y, 0.5, atol=1e-2)


# --- stochastic runs, dtypes ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["soba", "f2sa", "aid"])
def test_stochastic_runs_are_reproducible_by_seed(method):
    prob = ridge(n=80)
    kw = dict(method=method, maxiter=30, options={"batch_size": 16}, warn=False)
    a = bilevel.minimize(prob, np.zeros(prob.d_x), rng=3, **kw)
    b = bilevel.minimize(prob, np.zeros(prob.d_x), rng=np.random.default_rng(3), **kw)
    c = bilevel.minimize(prob, np.zeros(prob.d_x), rng=4, **kw)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def test_user_problem_receives_minibatch_indices():
    rng = np.random.default_rng(0)
    n, p = 40, 3
    X, t = rng.standard_normal((n, p)), rng.standard_normal(n)
    seen = []

    def grad_g(x, w, batch):
        idx = np.arange(n) if batch is None else batch
        seen.append(None if batch is None else len(batch))
        r = X[idx] @ w - t[idx]
        return np.exp(x) * w @ w * np.ones(1), 2 * X[idx].T @ r / len(idx) + 2 * np.exp(x) * w

    prob = bilevel.Problem(lambda x, w, batch: (np.zeros(1), w - 1.0), grad_g, n_samples=(n, n))
    r1 = bilevel.minimize(
        prob, [0.0], np.zeros(p), method="soba", maxiter=20, rng=1, options={"batch_size": 8}, warn=False
    )
    assert 8 in seen
    r2 = bilevel.minimize(
        prob, [0.0], np.zeros(p), method="soba", maxiter=20, rng=1, options={"batch_size": 8}, warn=False
    )
    np.testing.assert_array_equal(r1.x, r2.x)


def test_float32_keeps_its_dtype():
    q = problems.Quadratic.random(3, 10, seed=9)
    res = bilevel.minimize(q, np.zeros(3, np.float32), method="aid", maxiter=300, tol=1e-4, rng=0, warn=False)
    assert res.x.dtype == np.float32 and res.y.dtype == np.float32
    np.testing.assert_allclose(res.x, q.optimal_x, atol=1e-3)
    prob = ridge(dtype=np.float32)
    lam = np.zeros(prob.d_x, np.float32)
    g = bilevel.hypergradient(prob, lam, prob.y_star(lam).astype(np.float32))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, prob.hypergradient_closed_form(lam), rtol=1e-3, atol=1e-5)


def test_ridge_sparse_matches_dense_and_aid_improves_validation():
    dense, sparse = ridge(sparse=False), ridge(sparse=True)
    lam = np.zeros(dense.d_x)
    np.testing.assert_allclose(bilevel.hypergradient(dense, lam), bilevel.hypergradient(sparse, lam), rtol=1e-9)
    res = bilevel.minimize(dense, lam, method="aid", maxiter=100, rng=0, warn=False)
    assert dense.value(res.x) < dense.value(lam)


def test_hyper_cleaning_recovers_clean_labels():
    rng = np.random.default_rng(1)
    n, p, k = 200, 5, 3
    W = rng.standard_normal((p, k)) * 3
    X, Xv = rng.standard_normal((n, p)), rng.standard_normal((100, p))
    lab, labv = (X @ W).argmax(1), (Xv @ W).argmax(1)
    noisy = lab.copy()
    flip = rng.random(n) < 0.4
    noisy[flip] = rng.integers(0, k, flip.sum())
    prob = problems.LogisticHyperCleaning(X, noisy, Xv, labv, reg=1e-2)
    res = bilevel.minimize(prob, np.zeros(n), method="aid", maxiter=100, rng=0, warn=False)
    start = bilevel.minimize(prob, np.zeros(n), method="aid", maxiter=0, rng=0, warn=False)
    assert res.fun < start.fun
    corrupted = flip & (noisy != lab)
    assert res.x[corrupted].mean() < res.x[~corrupted].mean()


# --- callbacks and errors ----------------------------------------------------------------------------


def test_callback_stop_and_disp(capsys):
    q = problems.Quadratic.random(2, 4, seed=10)

    def cb(r):
        assert r.x.shape == (2,)
        raise StopIteration

    res = bilevel.minimize(q, np.zeros(2), method="aid", callback=cb, check_every=5, disp=True, rng=0)
    assert res.status == 99 and res.nit == 5
    assert "optcore.bilevel.minimize" in capsys.readouterr().out


def _prob(**over):
    base = dict(grad_f=lambda x, y: (np.zeros(2), y.copy()), grad_g=lambda x, y: (np.zeros(2), y - x))
    base.update(over)
    return bilevel.Problem(**base)


def test_user_oracle_errors_name_the_oracle():
    with pytest.raises(ValueError, match="`grad_g` returned gy of shape"):
        bilevel.minimize(_prob(grad_g=lambda x, y: (np.zeros(2), np.zeros(5))), np.zeros(2), np.zeros(2), method="aid")
    with pytest.raises(optcore.NumericalError, match="`hvp_yy`"):
        bilevel.minimize(_prob(hvp_yy=lambda x, y, v: v * np.nan), np.zeros(2), np.zeros(2), method="aid")
    with pytest.raises(optcore.NumericalError, match="`grad_f`"):
        bilevel.minimize(_prob(grad_f=lambda x, y: (np.full(2, np.inf), y)), np.zeros(2), np.zeros(2), method="f2sa")

    def boom(x, y, v):
        raise KeyError("user bug")

    with pytest.raises(KeyError) as info:
        bilevel.minimize(_prob(jvp_xy=boom), np.zeros(2), np.zeros(2), method="soba")
    assert any("`jvp_xy`" in n for n in info.value.__notes__)
    with pytest.raises(ValueError, match="pair"):
        bilevel.minimize(_prob(grad_f=lambda x, y: y), np.zeros(2), np.zeros(2))


def test_bad_inputs_raise_value_errors():
    q = problems.Quadratic.random(2, 4, seed=11)
    with pytest.raises(ValueError, match="unknown method"):
        bilevel.minimize(q, np.zeros(2), method="newton")
    with pytest.raises(ValueError, match="unknown option"):
        bilevel.minimize(q, np.zeros(2), method="aid", options={"sigma": 1.0})
    with pytest.raises(ValueError, match="x0"):
        bilevel.minimize(q, np.zeros(3))
    with pytest.raises(ValueError, match="y0"):
        bilevel.minimize(_prob(), np.zeros(2))
    with pytest.raises(ValueError, match="batch_size"):
        bilevel.minimize(q, np.zeros(2), options={"batch_size": 4})
    with pytest.raises(ValueError, match="project_x"):
        bilevel.minimize(q, np.zeros(2), options={"project_x": ops.Box([0.0], [1.0])})
    with pytest.raises(ValueError, match="project_y"):
        bilevel.minimize(q, np.zeros(2), method="aid", options={"project_y": ops.Box(np.zeros(4), np.ones(4))})
    with pytest.raises(ValueError, match="non-finite"):
        bilevel.minimize(q, [np.nan, 0.0])
    with pytest.raises(ValueError, match="hypergradient|method"):
        bilevel.hypergradient(q, np.zeros(2), method="lu")
    with pytest.raises(TypeError):
        bilevel.minimize(object(), np.zeros(2))
    with pytest.raises(ValueError, match="A"):
        problems.Quadratic(
            -np.eye(2),
            np.ones((1, 2)),
            np.zeros(2),
            np.zeros((1, 1)),
            np.eye(2),
            np.zeros((1, 2)),
            np.eye(1),
            np.zeros(1),
            np.zeros(2),
        )
    with pytest.raises(ValueError, match="labels"):
        problems.LogisticHyperCleaning(np.ones((3, 2)), [0, 1, -1], np.ones((2, 2)), [0, 1])


# --- package surface: exports, docstring example, README example, the tour ------------------


def test_exported_and_docstring_example():
    import doctest

    assert "bilevel" in optcore.__all__
    assert set(bilevel.__all__) <= set(dir(bilevel))
    result = doctest.testmod(bilevel, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_readme_example_runs():
    import os

    text = open(os.path.dirname(__file__) + "/../README.md", encoding="utf-8").read()
    code = text.split("## Bilevel optimization")[1].split("```python")[1].split("```")[0]
    ns: dict = {}
    exec(code, ns)  # noqa: S102
    res, g = ns["res"], ns["g"]
    # The penalty method's fixed point is O(sigma) away from a stationary point of F: success
    # only when |grad F| measured at res.x is <= tol (here it is about 3e-6 > 1e-6: status 1).
    assert np.linalg.norm(g) < 1e-3
    assert res.success == (res.hypergrad_norm <= 1e-6)
    assert res.hypergrad_norm == pytest.approx(np.linalg.norm(g), rel=1e-3)


def test_tour_section_runs(capsys):
    from optcore.__main__ import tour_bilevel

    tour_bilevel(0)
    out = capsys.readouterr().out
    assert "optcore aid" in out and "scipy L-BFGS-B" in out


# --- stochastic and float32 runs on the finite-sum problems ----------------------------------


@pytest.mark.parametrize("method,opts", [("soba", {}), ("f2sa", {}), ("f2sa", {"momentum": 0.5}), ("aid", {})])
def test_minibatch_runs_decrease_the_hyper_objective(method, opts):
    prob = ridge(n=400, p=8, seed=12)
    lam0 = np.zeros(prob.d_x)
    res = bilevel.minimize(
        prob, lam0, method=method, maxiter=200, rng=0, warn=False, options={"batch_size": 32, **opts}
    )
    assert np.all(np.isfinite(res.x)) and prob.value(res.x) < prob.value(lam0)


def test_f2sa_momentum_variant_differs_under_noise_and_is_reproducible():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 3))
    lab = rng.integers(0, 2, 100)
    prob = problems.LogisticHyperCleaning(X, lab, X[:40], lab[:40], reg=1e-2)
    kw = dict(method="f2sa", maxiter=30, rng=5, warn=False)
    plain = bilevel.minimize(prob, np.zeros(100), options={"batch_size": 16}, **kw)
    mom = bilevel.minimize(prob, np.zeros(100), options={"batch_size": 16, "momentum": 0.3}, **kw)
    mom2 = bilevel.minimize(prob, np.zeros(100), options={"batch_size": 16, "momentum": 0.3}, **kw)
    assert not np.array_equal(plain.x, mom.x)
    np.testing.assert_array_equal(mom.x, mom2.x)
    assert mom.oracle_calls["grad_g"] > plain.oracle_calls["grad_g"]  # the STORM correction's extra calls


def test_logistic_float32_run_keeps_dtype_and_cleans():
    rng = np.random.default_rng(2)
    n, p, k = 120, 4, 3
    W = rng.standard_normal((p, k)) * 3
    X, Xv = rng.standard_normal((n, p)).astype(np.float32), rng.standard_normal((60, p)).astype(np.float32)
    lab, labv = (X @ W).argmax(1), (Xv @ W).argmax(1)
    noisy = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), lab)
    prob = problems.LogisticHyperCleaning(sp.csr_array(X), noisy, Xv, labv, reg=1e-2, dtype=np.float32)
    res = bilevel.minimize(prob, np.zeros(n, np.float32), method="f2sa", maxiter=50, rng=0, warn=False)
    start = bilevel.minimize(prob, np.zeros(n, np.float32), method="f2sa", maxiter=0, rng=0, warn=False)
    assert res.x.dtype == np.float32 and res.y.dtype == np.float32
    assert res.fun < start.fun


@pytest.mark.parametrize("method", ["aid", "itd", "f2sa"])
def test_same_seed_same_run_whatever_workers(method):
    # 400 and 300 rows: the native problems' sums over rows run in several blocks, so
    # workers=2 really splits them over threads; the results must not change by a bit.
    rng = np.random.default_rng(11)
    X, Xv = rng.standard_normal((400, 12)), rng.standard_normal((300, 12))
    w = rng.standard_normal(12)
    t, tv = X @ w + 0.1 * rng.standard_normal(400), Xv @ w + 0.1 * rng.standard_normal(300)
    lab, labv = rng.integers(0, 3, 400), rng.integers(0, 3, 300)
    for prob in (
        problems.RidgeHyperparameter(X, t, Xv, tv),
        problems.LogisticHyperCleaning(sp.csr_array(X), lab, Xv, labv, reg=1e-2),
    ):
        x0 = np.zeros(prob.d_x)
        runs = [
            bilevel.minimize(prob, x0, method=method, maxiter=15, rng=4, warn=False, workers=w) for w in (1, 2, None)
        ]
        for r in runs[1:]:
            assert np.array_equal(r.x, runs[0].x) and np.array_equal(r.y, runs[0].y)
            assert r.nit == runs[0].nit and r.hypergrad_norm == runs[0].hypergrad_norm
        hgs = [bilevel.hypergradient(prob, runs[0].x, runs[0].y, method="cg", workers=w) for w in (1, 2)]
        assert np.array_equal(hgs[0], hgs[1])
