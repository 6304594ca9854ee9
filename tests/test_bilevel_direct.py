"""optcore.bilevel's direct lower solve (``options["lower_solve"]``, issue 22): the dense lower
Hessian factored by Cholesky reaches the closed-form optima, agrees with the iterative path,
in float32 and float64, is chosen automatically where it is cheaper, and refuses or builds
what it cannot take from the problem."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from optcore import bilevel
from optcore.bilevel import problems


def ridge(n=300, p=40, seed=0, dtype=None):
    rng = np.random.default_rng(seed)
    X, Xv = rng.standard_normal((n, p)), rng.standard_normal((n, p))
    w = rng.standard_normal(p)
    t, tv = X @ w + rng.standard_normal(n), Xv @ w + rng.standard_normal(n)
    return problems.RidgeHyperparameter(X, t, Xv, tv, dtype=dtype)


def lbfgs(prob, x0, lower, tol=1e-10, **kw):
    return bilevel.minimize(
        prob, x0, method=kw.pop("method", "aid"), outer="lbfgs", rng=0, tol=tol, options={"lower_solve": lower}, **kw
    )


@pytest.mark.parametrize("method", ["aid", "exact"])
@pytest.mark.parametrize("seed", [0, 1])
def test_quadratic_random_closed_form_optimum_with_the_direct_path(method, seed):
    q = problems.Quadratic.random(d_x=6, d_y=40, seed=seed)
    res = lbfgs(q, np.zeros(6), "direct", tol=1e-11, method=method)
    assert res.success, res.message
    assert res.lower_solve == "direct"
    assert np.max(np.abs(res.x - q.optimal_x)) <= 1e-10
    assert abs(res.fun - q.optimal_value) <= 1e-10 * abs(q.optimal_value)
    assert res.hypergrad_norm <= 1e-11 and res.nit < 60


def test_ridge_closed_form_optimum_with_the_direct_path():
    pr = ridge(n=200, p=8, seed=0)
    r = optimize.minimize(
        lambda x: (pr.value(x), pr.hypergradient_closed_form(x)),
        np.zeros(pr.d_x),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 0.0, "maxiter": 5000},
    )
    res = lbfgs(pr, np.zeros(pr.d_x), "direct", tol=1e-11, warn=False)
    assert res.lower_solve == "direct"
    f_star = min(r.fun, pr.value(res.x))
    assert pr.value(res.x) - f_star <= 1e-10 * abs(f_star)
    # What the result says is re-measured: the closed-form hypergradient at the returned x.
    assert np.linalg.norm(pr.hypergradient_closed_form(res.x)) == pytest.approx(res.hypergrad_norm, rel=1e-3, abs=1e-12)
    assert res.fun == pytest.approx(pr.value(res.x), rel=1e-12)


def test_direct_and_iterative_paths_agree():
    pr = ridge(n=200, p=25, seed=3)
    x0 = np.zeros(pr.d_x)
    a = lbfgs(pr, x0, "direct", warn=False)
    b = lbfgs(pr, x0, "iterative", warn=False)
    assert a.lower_solve == "direct" and b.lower_solve == "iterative"
    assert a.success and b.success
    # Features whose λ runs off to −∞ (regularisation switched off: F is flat in them) end
    # wherever each run stopped; the others agree.
    finite = np.abs(a.x) < 20
    assert finite.sum() >= 10
    assert np.max(np.abs(a.x - b.x)[finite]) <= 1e-5
    assert a.fun == pytest.approx(b.fun, rel=1e-12)


def test_auto_switches_to_direct_where_conditioning_grows():
    # λ spreads over several decades, CG's products grow, and one factorisation of the
    # 120 × 120 Hessian becomes cheaper than an evaluation's products.
    pr = ridge(n=300, p=120, seed=1)
    res = lbfgs(pr, np.zeros(pr.d_x), "auto", tol=1e-9, maxiter=150, warn=False)
    assert res.lower_solve == "direct"
    assert res.status in (0, 1), res.message
    assert "Cholesky" in res.message
    # The measured norm is the closed form's at the returned point.
    assert np.linalg.norm(pr.hypergradient_closed_form(res.x)) == pytest.approx(res.hypergrad_norm, rel=1e-4)
    assert res.fun == pytest.approx(pr.value(res.x), rel=1e-10)
    # A problem without a dense Hessian of its own (a Python Problem) stays iterative.
    q = problems.Quadratic.random(d_x=3, d_y=10, seed=0)
    m = q._m
    py = bilevel.Problem(
        lambda x, y: (m["R"] @ y + m["P"] @ x + m["p"], m["Q"] @ y + m["R"].T @ x + m["q"]),
        lambda x, y: (m["B"] @ y + m["C"] @ x, m["A"] @ y + m["B"].T @ x + m["a"]),
        hvp_yy=lambda x, y, v: m["A"] @ v,
        jvp_xy=lambda x, y, v: m["B"] @ v,
        f=q.upper,
        d_y=10,
    )
    res = lbfgs(py, np.zeros(3), "auto")
    assert res.lower_solve == "iterative" and res.success
    # Forced: the Hessian built from d_y products.
    res = lbfgs(py, np.zeros(3), "direct")
    assert res.lower_solve == "direct" and res.success
    assert np.max(np.abs(res.x - q.optimal_x)) <= 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64(dtype):
    q = problems.Quadratic.random(d_x=4, d_y=20, seed=2)
    tol = 1e-3 if dtype == np.float32 else 1e-10
    res = lbfgs(q, np.zeros(4, dtype=dtype), "direct", tol=tol, warn=False)
    assert res.x.dtype == dtype and res.lower_solve == "direct"
    assert res.hypergrad_norm <= tol
    assert np.max(np.abs(res.x - q.optimal_x)) <= (1e-2 if dtype == np.float32 else 1e-9)
    pr = ridge(n=150, p=10, seed=4, dtype=dtype)
    res = lbfgs(pr, np.zeros(10, dtype=dtype), "direct", tol=tol, warn=False)
    assert res.x.dtype == dtype and res.hypergrad_norm <= tol


def test_bad_lower_solve_values_and_sizes():
    q = problems.Quadratic.random(d_x=2, d_y=5, seed=0)
    with pytest.raises(ValueError, match="lower_solve"):
        lbfgs(q, np.zeros(2), "cholesky")
    with pytest.raises(ValueError, match="lower_solve"):
        bilevel.minimize(q, np.zeros(2), method="itd", outer="lbfgs", options={"lower_solve": "direct"})
    with pytest.raises(ValueError, match="lower_solve"):
        bilevel.minimize(q, np.zeros(2), method="aid", outer="gd", options={"lower_solve": "direct"})
    # A forced direct solve on a lower level too large to factor is refused by name, before
    # anything is allocated (d_y = 9000 > 8192).
    big = bilevel.Problem(lambda x, y: (np.zeros(1), np.zeros(9000)), lambda x, y: (np.zeros(1), y.copy()), d_y=9000)
    with pytest.raises(ValueError, match="lower_solve='direct'.*d_y = 9000"):
        lbfgs(big, np.zeros(1), "direct")
