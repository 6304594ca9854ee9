"""optcore.bilevel's L-BFGS outer loop (``outer="lbfgs"``): the closed-form optimum of random
quadratics and of ridge hyperparameters, monotone F when ``f`` is given, bounds, the ``f``
oracle's errors, reproducibility, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

import optcore
from optcore import bilevel
from optcore.bilevel import problems


def as_python(q: problems.Quadratic, *, with_f: bool = True, hvp: bool = True) -> bilevel.Problem:
    m = q._m
    kw = {"hvp_yy": lambda x, y, v: m["A"] @ v, "jvp_xy": lambda x, y, v: m["B"] @ v} if hvp else {}
    return bilevel.Problem(
        lambda x, y: (m["R"] @ y + m["P"] @ x + m["p"], m["Q"] @ y + m["R"].T @ x + m["q"]),
        lambda x, y: (m["B"] @ y + m["C"] @ x, m["A"] @ y + m["B"].T @ x + m["a"]),
        f=q.upper if with_f else None,
        d_y=q.d_y,
        **kw,
    )


def ridge(n=200, p=8, seed=0):
    rng = np.random.default_rng(seed)
    X, Xv = rng.standard_normal((n, p)), rng.standard_normal((n, p))
    w = rng.standard_normal(p)
    t, tv = X @ w + rng.standard_normal(n), Xv @ w + rng.standard_normal(n)
    return problems.RidgeHyperparameter(X, t, Xv, tv)


def scipy_reference(value, grad, x0, bounds=None):
    r = optimize.minimize(
        lambda x: (value(x), grad(x)),
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"gtol": 1e-12, "ftol": 0.0, "maxiter": 20000},
    )
    return r.x, r.fun


class Recorder:
    """Callback recording every iterate (``check_every=1``)."""

    def __init__(self):
        self.xs = []

    def __call__(self, r):
        self.xs.append(np.array(r.x, copy=True))


@pytest.mark.parametrize("method", ["aid", "exact", "itd"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadratic_random_reaches_the_closed_form_optimum(method, seed):
    q = problems.Quadratic.random(d_x=6, d_y=40, seed=seed)
    res = bilevel.minimize(q, np.zeros(6), method=method, outer="lbfgs", rng=0, tol=1e-11)
    assert res.success, res.message
    assert np.max(np.abs(res.x - q.optimal_x)) <= 1e-10
    assert abs(res.fun - q.optimal_value) <= 1e-10 * abs(q.optimal_value)
    # Quasi-Newton: tens of iterations, not thousands (ITD's include its re-evaluations after
    # unrolling further).
    assert res.nit < (60 if method != "itd" else 300)
    assert res.hypergrad_norm <= 1e-11


def test_exact_defaults_to_lbfgs():
    q = problems.Quadratic.random(d_x=3, d_y=10, seed=0)
    res = bilevel.minimize(q, np.zeros(3), method="exact", tol=1e-10, rng=0)
    assert res.success and res.nit < 30
    gd = bilevel.minimize(q, np.zeros(3), method="exact", outer="gd", tol=1e-8, maxiter=5000, rng=0)
    assert gd.success and gd.nit > res.nit


def test_ridge_reaches_the_closed_form_optimum():
    pr = ridge()
    x_ref, f_ref = scipy_reference(pr.value, pr.hypergradient_closed_form, np.zeros(pr.d_x))
    res = bilevel.minimize(pr, np.zeros(pr.d_x), method="aid", outer="lbfgs", rng=0, tol=1e-10, warn=False)
    f_star = min(f_ref, pr.value(res.x))
    assert (pr.value(res.x) - f_star) <= 1e-8 * abs(f_star)
    assert (f_ref - f_star) <= 1e-8 * abs(f_star)
    # res.fun is F(x), measured independently.
    assert res.fun == pytest.approx(pr.value(res.x), rel=1e-10)


@pytest.mark.parametrize("native", [True, False])
def test_no_accepted_step_increases_F(native):
    q = problems.Quadratic.random(d_x=8, d_y=30, seed=4)
    prob = q if native else as_python(q)
    rec = Recorder()
    res = bilevel.minimize(
        prob, np.full(8, 3.0), np.zeros(30), method="aid", outer="lbfgs", rng=0, tol=1e-10, callback=rec, check_every=1
    )
    assert res.success and len(rec.xs) == res.nit
    values = [q.value(np.full(8, 3.0))] + [q.value(x) for x in rec.xs]
    increases = np.diff(values)
    # Decreasing at every accepted step, up to F's rounding error.
    assert np.all(increases <= 1e-13 * np.abs(values[1:])), increases.max()
    assert values[-1] < values[0] - 1.0


def test_converges_without_f_by_the_derivative_test():
    q = problems.Quadratic.random(d_x=5, d_y=20, seed=5)
    res = bilevel.minimize(as_python(q, with_f=False), np.zeros(5), method="aid", outer="lbfgs", rng=0, tol=1e-10)
    assert res.success and np.isnan(res.fun)
    assert np.max(np.abs(res.x - q.optimal_x)) <= 1e-9
    # Finite-difference second-order products (no hvp_yy / jvp_xy) reach a looser tolerance.
    res = bilevel.minimize(as_python(q, hvp=False), np.zeros(5), method="aid", outer="lbfgs", rng=0, tol=1e-7)
    assert res.success and np.max(np.abs(res.x - q.optimal_x)) <= 1e-6


@pytest.mark.parametrize("form", ["pairs", "Bounds", "pair"])
def test_bounds_are_respected_and_match_lbfgsb(form):
    q = problems.Quadratic.random(d_x=6, d_y=25, seed=6)
    xs = q.optimal_x
    lo = np.where(np.arange(6) % 2 == 0, xs + 0.3, -np.inf)
    hi = np.where(np.isin(np.arange(6), [1, 5]), xs - 0.2, np.inf)
    pairs = [(None if np.isinf(a) else a, None if np.isinf(b) else b) for a, b in zip(lo, hi)]
    bounds = {"pairs": pairs, "Bounds": optimize.Bounds(lo, hi), "pair": (lo, hi)}[form]
    rec = Recorder()
    res = bilevel.minimize(
        q, np.zeros(6), method="aid", outer="lbfgs", rng=0, bounds=bounds, tol=1e-10, callback=rec, check_every=1
    )
    assert res.success, res.message
    assert "projected gradient" in res.message
    for x in [*rec.xs, res.x]:
        assert np.all(x >= lo) and np.all(x <= hi)
    x_ref, f_ref = scipy_reference(q.value, q.hypergradient_closed_form, np.clip(np.zeros(6), lo, hi), pairs)
    assert np.max(np.abs(res.x - x_ref)) <= 1e-7
    assert q.value(res.x) <= f_ref + 1e-10 * abs(f_ref)


def test_reproducible_and_independent_of_workers():
    pr = ridge(n=300, p=12, seed=3)
    runs = [
        bilevel.minimize(pr, np.zeros(pr.d_x), method="aid", outer="lbfgs", tol=1e-9, rng=5, workers=w, warn=False)
        for w in (1, None, 1)
    ]
    for r in runs[1:]:
        assert np.array_equal(r.x, runs[0].x) and r.nit == runs[0].nit and r.fun == runs[0].fun


def test_float32_keeps_its_dtype():
    q = problems.Quadratic.random(d_x=4, d_y=15, seed=7)
    res = bilevel.minimize(q, np.zeros(4, np.float32), method="aid", outer="lbfgs", rng=0, tol=1e-4)
    assert res.x.dtype == np.float32 and res.success
    assert np.max(np.abs(res.x - q.optimal_x)) <= 1e-3


@pytest.mark.parametrize(
    ("f", "exc", "match"),
    [
        (lambda x, y: np.zeros(2), ValueError, "`f`"),
        (lambda x, y: float("nan"), optcore.NumericalError, "`f`"),
        (lambda x, y: "one", ValueError, "`f`"),
    ],
)
def test_f_oracle_errors_name_it(f, exc, match):
    q = problems.Quadratic.random(d_x=3, d_y=5, seed=0)
    p = as_python(q)
    p.f = f
    with pytest.raises(exc, match=match):
        bilevel.minimize(p, np.zeros(3), method="aid", outer="lbfgs")


def test_bad_arguments():
    q = problems.Quadratic.random(d_x=3, d_y=5, seed=0)
    x0 = np.zeros(3)
    with pytest.raises(ValueError, match="outer"):
        bilevel.minimize(q, x0, method="soba", outer="lbfgs")
    with pytest.raises(ValueError, match="outer"):
        bilevel.minimize(q, x0, method="aid", outer="newton")
    with pytest.raises(ValueError, match="bounds"):
        bilevel.minimize(q, x0, method="aid", bounds=(0, 1))
    with pytest.raises(ValueError, match="lo <= hi"):
        bilevel.minimize(q, x0, method="aid", outer="lbfgs", rng=0, bounds=(1, 0))
    with pytest.raises(ValueError, match="pairs"):
        bilevel.minimize(q, x0, method="aid", outer="lbfgs", rng=0, bounds=[(0, 1)] * 4)
    with pytest.raises(ValueError, match="unknown option"):
        bilevel.minimize(q, x0, method="aid", outer="lbfgs", rng=0, options={"outer_step": 0.1})
    with pytest.raises(ValueError, match="memory"):
        bilevel.minimize(q, x0, method="aid", outer="lbfgs", rng=0, options={"memory": 0})


def test_maxiter_and_callback_stop():
    q = problems.Quadratic.random(d_x=6, d_y=25, seed=8)
    res = bilevel.minimize(q, np.zeros(6), method="aid", outer="lbfgs", rng=0, maxiter=2, tol=1e-12, warn=False)
    assert res.status == 1 and res.nit == 2

    def stop(r):
        raise StopIteration

    res = bilevel.minimize(q, np.zeros(6), method="aid", outer="lbfgs", rng=0, callback=stop, check_every=1)
    assert res.status == 99 and res.nit == 1


def ridge_bench_order(p, n, seed=0):
    """benches/bilevel.py's ``ridge_data`` (true weights drawn first)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(p)
    X, Xv = rng.standard_normal((n, p)), rng.standard_normal((n, p))
    return problems.RidgeHyperparameter(X, X @ w + rng.standard_normal(n), Xv, Xv @ w + rng.standard_normal(n))


@pytest.mark.parametrize(("p", "n", "maxiter"), [(5, 50, 3), (10, 40, 10), (20, 40, 30), (50, 80, 10)])
def test_ridge_measurement_after_exp_lambda_grew_does_not_raise(p, n, maxiter):
    """Issue 22 (bench, ridge d=500): the final measurement re-solved the lower level with the
    step estimated at λ = 0; after exp(λ) grew that step diverged and the run raised
    ``NumericalError: grad_g returned non-finite`` instead of returning its last point."""
    pr = ridge_bench_order(p, n)
    # The iterative lower solve's measurement (the direct one has no step to go stale).
    res = bilevel.minimize(
        pr,
        np.zeros(p),
        method="aid",
        outer="lbfgs",
        tol=1e-10,
        maxiter=maxiter,
        rng=0,
        warn=False,
        options={"lower_solve": "iterative"},
    )
    assert res.status == 1 and res.nit == maxiter
    assert np.all(np.isfinite(res.x)) and np.all(np.isfinite(res.y))
    # The lower level is stiffer than at x0 (the returned step fits it) ...
    assert res.inner_step < 0.5 / np.exp(np.max(res.x))
    # ... and the measurement is the closed form's at the returned x.
    g = np.linalg.norm(pr.hypergradient_closed_form(res.x))
    assert res.hypergrad_norm == pytest.approx(g, rel=1e-4)
    assert res.fun == pytest.approx(pr.value(res.x), rel=1e-8)


@pytest.mark.parametrize("oracle", ["f", "grad_f", "grad_g"])
@pytest.mark.parametrize(("seed", "shift"), [(3, 3.0), (4, 0.3), (6, 0.3)])
def test_line_search_backtracks_from_points_where_an_oracle_overflows(oracle, seed, shift):
    """Issue 22: a trial point where a (Python) oracle returns inf or NaN is a failed trial:
    the line search backtracks (it raised ``NumericalError`` from the trial point before), and
    every accepted point is one where all oracles are finite."""
    q = problems.Quadratic.random(d_x=4, d_y=10, seed=seed)
    m, xs = q._m, q.optimal_x
    x0 = xs + shift
    u = (x0 - xs) / np.linalg.norm(x0 - xs)
    hits = []

    def over(x):
        """Past the optimum along the start direction: the oracle overflows there."""
        bad = (x - xs) @ u < -1e-3
        hits.append(bad)
        return (np.nan if len(hits) % 2 else np.inf) if bad else 1.0

    def f(x, y):
        return q.upper(x, y) * (over(x) if oracle == "f" else 1.0)

    def grad_f(x, y):
        s = over(x) if oracle == "grad_f" else 1.0
        return m["R"] @ y + m["P"] @ x + m["p"], s * (m["Q"] @ y + m["R"].T @ x + m["q"])

    def grad_g(x, y):
        s = over(x) if oracle == "grad_g" else 1.0
        return m["B"] @ y + m["C"] @ x, s * (m["A"] @ y + m["B"].T @ x + m["a"])

    prob = bilevel.Problem(grad_f, grad_g, f=f, d_y=q.d_y)
    rec = Recorder()
    res = bilevel.minimize(prob, x0, method="aid", outer="lbfgs", rng=0, tol=1e-9, callback=rec, check_every=1)
    assert any(hits), "no trial point overflowed: the test does not exercise the path"
    assert res.success, res.message
    assert np.max(np.abs(res.x - xs)) <= 1e-8
    assert all((x - xs) @ u >= -1e-3 for x in rec.xs)


def test_f_non_finite_at_the_start_names_f():
    q = problems.Quadratic.random(d_x=3, d_y=5, seed=0)
    p = as_python(q)
    p.f = lambda x, y: np.inf
    with pytest.raises(optcore.NumericalError, match="`f`.*start"):
        bilevel.minimize(p, np.zeros(3), method="aid", outer="lbfgs")
