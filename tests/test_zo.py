"""Tests of :mod:`optcore.zo`.

References are computed here independently: analytic gradients of quadratics, the explicit
per-direction estimator terms rebuilt from the asked points, ``scipy.optimize.approx_fprime``,
the explicit pairwise sum of ZO-RankSGD's ranking graph, NumPy versions of the test functions,
and the Nesterov–Spokoiny rate of the Gaussian estimator on the sphere.
"""

from __future__ import annotations

import concurrent.futures
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import approx_fprime

import optcore
from optcore import ConvergenceWarning, NumericalError, zo
from optcore.zo import functions as F

GRADIENT_METHODS = ("gaussian", "sphere", "cge", "signsgd", "adamm", "perturbed")
ALL_METHODS = (*GRADIENT_METHODS, "cbo", "rank")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def quadratic(d, seed):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((d, d))
    A = M @ M.T / d + np.eye(d)
    b = rng.standard_normal(d)
    f = lambda X: 0.5 * np.einsum("...i,ij,...j->...", X, A, X) + X @ b  # noqa: E731
    return f, (lambda x: A @ x + b), A


def terms(opt, x, X, values, method, scheme, mu):
    """The per-direction terms of the estimator, rebuilt from the asked points."""
    d = x.size
    if scheme == "forward":
        U = (X[1:] - x) / mu
        c = (values[1:] - values[0]) / mu
    else:
        U = (X[1::2] - x) / mu
        c = (values[1::2] - values[2::2]) / (2 * mu)
    scale = d if method == "sphere" else 1.0
    return scale * c[:, None] * U, U


# ------------------------------------------------------------------------------------------
# Estimators
# ------------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(
    d=st.integers(1, 6),
    mu=st.floats(1e-3, 1.0),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(["gaussian", "sphere"]),
    scheme=st.sampled_from(["forward", "central"]),
)
def test_estimators_are_unbiased_on_quadratics(d, mu, seed, method, scheme):
    """Mean of the estimate over many directions = grad f_mu = grad f (quadratics); the
    library's estimate equals the mean of the explicit terms."""
    f, grad, _ = quadratic(d, seed)
    x = np.random.default_rng(seed + 1).standard_normal(d)
    q = 4000
    opt = zo.Optimizer(method, x, q=q, mu=mu, lr=0.0, rng=seed, options={"scheme": scheme})
    X = opt.ask()
    v = f(X)
    opt.tell(X, v)
    T, U = terms(opt, x, X, v, method, scheme, mu)
    if method == "sphere":
        assert_allclose(np.linalg.norm(U, axis=1), 1.0, rtol=1e-6)
    assert_allclose(opt.gradient, T.mean(0), rtol=1e-9, atol=1e-9 * np.abs(T).max())
    se = T.std(0, ddof=1) / np.sqrt(q)
    assert np.all(np.abs(T.mean(0) - grad(x)) <= 5 * se + 1e-9), (T.mean(0), grad(x), se)


def bumpy(X):
    X = np.asarray(X)
    return np.sum(np.exp(0.5 * X) + np.sin(2 * X), axis=-1)


def bumpy_grad(x):
    return 0.5 * np.exp(0.5 * x) + 2 * np.cos(2 * x)


@pytest.mark.parametrize("method", ["cge", "gaussian", "sphere"])
def test_bias_orders_forward_and_central(method):
    """Forward differences have O(mu) bias, central O(mu^2): halving mu halves / quarters the
    error against the mu -> 0 limit with the same directions (same seed)."""
    x = np.array([0.3, -0.7, 1.1, 0.2])
    for scheme, order in (("forward", 1), ("central", 2)):
        errs = []
        for mu in (1e-2, 5e-3, 2.5e-3):
            q = None if method == "cge" else 3
            opt = zo.Optimizer(method, x, q=q, mu=mu, lr=0.0, rng=7, options={"scheme": scheme})
            X = opt.ask()
            v = bumpy(X)
            opt.tell(X, v)
            _, U = terms(opt, x, X, v, "gaussian", scheme, mu) if method != "cge" else (None, np.eye(4))
            scale = {"sphere": x.size / 3, "gaussian": 1 / 3, "cge": 1.0}[method]
            limit = scale * U.T @ (U @ bumpy_grad(x))  # mu -> 0: scale * sum_i (grad . u_i) u_i
            errs.append(np.linalg.norm(opt.gradient - limit))
        ratios = np.array(errs[:-1]) / np.array(errs[1:])
        assert_allclose(ratios, 2.0**order, rtol=0.1), (method, scheme, errs)


def test_cge_equals_finite_differences():
    x = np.array([0.4, -1.2, 2.0, 0.1, -0.3])
    mu = 1e-6
    g = zo.gradient(bumpy, x, method="cge", mu=mu)
    ref = np.array([(bumpy(x + mu * e) - bumpy(x)) / mu for e in np.eye(5)])
    assert_allclose(g, ref, rtol=1e-12, atol=1e-12)
    # SciPy rounds its step to a representable x + h: the same up to the rounding of h.
    assert_allclose(g, approx_fprime(x, bumpy, mu), rtol=1e-8)
    gc = zo.gradient(bumpy, x, method="cge", mu=1e-4, scheme="central")
    ref = np.array([(bumpy(x + 1e-4 * e) - bumpy(x - 1e-4 * e)) / 2e-4 for e in np.eye(5)])
    assert_allclose(gc, ref, rtol=1e-12)
    assert_allclose(gc, bumpy_grad(x), rtol=0, atol=1e-7)  # O(mu^2) bias


def test_cge_random_subsets_touch_n_coords():
    x = np.linspace(-1, 1, 12)
    opt = zo.Optimizer("cge", x, lr=0.0, rng=3, options={"n_coords": 4, "scheme": "central"})
    assert opt.batch_size == 9
    X = opt.ask()
    opt.tell(X, bumpy(X))
    nz = np.nonzero(opt.gradient)[0]
    assert len(nz) == 4
    assert_allclose(opt.gradient[nz], bumpy_grad(x)[nz], rtol=1e-6)


@given(m=st.integers(2, 9), data=st.data(), d=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_rank_estimator_equals_pairwise_sum(m, data, d, seed):
    k = data.draw(st.integers(1, m))
    x = np.random.default_rng(seed).standard_normal(d)
    mu = 0.1
    opt = zo.Optimizer("rank", x, mu=mu, rng=seed, options={"m": m, "k": k})
    X = opt.ask()
    xi = (X - x) / mu
    top = list(np.random.default_rng(seed + 1).permutation(m)[:k])
    opt.tell_ranking(X, top)
    s, edges = np.zeros(d), 0
    for r, better in enumerate(top):
        for worse in [*top[r + 1 :], *[i for i in range(m) if i not in top]]:
            s += xi[worse] - xi[better]
            edges += 1
    assert edges == k * (k - 1) // 2 + k * (m - k)
    assert_allclose(opt.gradient, s / edges, rtol=1e-9, atol=1e-9)
    # The step is lr along -g/|g| (lr default 0.1 max(1, |x0|_inf)).
    if np.linalg.norm(s) > 1e-12:
        lr = 0.1 * max(1.0, np.abs(x).max())
        assert_allclose(opt.x, x - lr * s / np.linalg.norm(s), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Convergence
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [5, 20])
def test_sphere_within_nesterov_spokoiny_bound(d):
    """Gaussian estimator, q = 1, forward, step h = 1/(4 (d+4) L) on f = |x|^2 (L = 2, strong
    convexity 2): E f_k <= (1 - 1/(8 (d+4)))^k f_0 (Nesterov & Spokoiny 2017, up to O(mu)).
    Every seed must reach f <= 1e-6 f_0 within the bound's iteration count."""
    h = 1.0 / (8 * (d + 4))
    k_bound = int(np.ceil(np.log(1e-6) / np.log(1 - 1 / (8 * (d + 4)))))
    x0 = np.ones(d)
    f0 = float(d)
    for seed in range(4):
        res = zo.minimize(
            F.sphere,
            x0,
            method="gaussian",
            q=1,
            lr=h,
            mu=1e-9,
            rng=seed,
            f_target=1e-6 * f0,
            maxiter=k_bound,
            maxfev=10**9,
        )
        assert res.success, (seed, res.fun, res.nit, k_bound)
        assert res.nfev == 2 * res.nit


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_methods_converge_on_the_sphere(method):
    x0 = np.linspace(-2, 3, 8)
    res = zo.minimize(F.sphere, x0, method=method, rng=1, f_target=1e-6, maxfev=40_000)
    assert res.success and res.status == 0, res
    assert res.fun <= 1e-6 and F.sphere(res.x) == res.fun
    assert res.history[-1, 1] == res.fun and res.history[-1, 0] <= res.nfev
    assert np.all(np.diff(res.history[:, 1]) < 0) and np.all(np.diff(res.history[:, 0]) > 0)


def test_momentum_helps_on_rosenbrock():
    """Heavy ball with restarts (options={'momentum': 0.9}) goes much further down Rosenbrock's
    valley than plain steps on the same budget; plain and momentum runs agree on the sphere."""
    x0 = np.random.default_rng(0).uniform(-4, 4, 10)
    plain = zo.minimize(F.rosenbrock, x0, method="cge", rng=0, maxfev=20_000)
    heavy = zo.minimize(F.rosenbrock, x0, method="cge", rng=0, maxfev=20_000, options={"momentum": 0.9})
    assert heavy.fun < 1e-2 < 1.0 < plain.fun
    res = zo.minimize(F.sphere, x0, method="gaussian", rng=0, f_target=1e-8, options={"momentum": 0.9})
    assert res.success
    with pytest.raises(ValueError, match="momentum"):
        zo.minimize(F.sphere, x0, options={"momentum": 1.0})
    with pytest.raises(ValueError, match="momentum"):
        zo.minimize(F.sphere, x0, method="adamm", options={"momentum": 0.5})


def test_perturbed_escapes_a_saddle():
    f = lambda x: x[0] ** 2 - x[1] ** 2 + x[1] ** 4  # noqa: E731  saddle at 0, minima f = -1/4
    res = zo.minimize(f, np.zeros(2), method="perturbed", rng=0, maxfev=4000)
    assert res.fun < -0.249


@pytest.mark.parametrize("options", [{}, {"noise": "isotropic"}, {"variant": "hopping"}])
def test_cbo_finds_the_ackley_minimum_in_bounds(options):
    res = zo.minimize(
        F.ackley,
        np.full(4, 2.0),
        method="cbo",
        bounds=(-3, 3),
        rng=2,
        maxfev=30_000,
        options={"particles": 100, **options},
    )
    assert np.max(np.abs(res.x)) < 0.05, res
    opt = zo.Optimizer("cbo", np.full(4, 2.0), bounds=(-1, 2.5), rng=0, options=options)
    for _ in range(5):
        X = opt.ask()
        assert X.min() >= -1 and X.max() <= 2.5
        opt.tell(X, F.ackley(X))


def test_bounds_are_respected_and_reached():
    res = zo.minimize(F.sphere, np.full(5, 2.0), method="sphere", bounds=[(0.5, 3)] * 5, rng=0, maxfev=20_000)
    assert np.all(res.x_last >= 0.5) and np.all(res.x_last <= 3)
    assert_allclose(res.x, 0.5, atol=1e-3)


def test_rank_minimize_with_a_ranking_oracle():
    f, _, A = quadratic(6, 0)
    xstar = np.linalg.solve(A, -quadratic(6, 0)[1](np.zeros(6)))
    fstar = float(f(xstar))
    x0 = np.zeros(6)
    res = zo.rank_minimize(zo.ranking_oracle(f, k=3, vectorized=True), x0, m=8, k=3, maxiter=600, decay=0.99, rng=0)
    assert np.isnan(res.fun) and res.nit == 600 and res.nfev == 8 * 600
    assert f(res.x) - fstar < 1e-2 * (f(x0) - fstar)
    # From values, method="rank" with a full ranking does the same.
    res2 = zo.minimize(f, x0, method="rank", vectorized=True, maxfev=8 * 600, rng=0, options={"decay": 0.99})
    assert res2.fun - fstar < 1e-2 * (f(x0) - fstar)


# ------------------------------------------------------------------------------------------
# Reproducibility, batching, executors, dtypes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ALL_METHODS)
def test_same_seed_same_run_whatever_workers_or_executor(method):
    x0 = np.linspace(-1, 2, 6)
    kw = dict(method=method, rng=42, maxfev=600)
    ref = zo.minimize(F.rastrigin, x0, workers=1, **kw)
    runs = [
        zo.minimize(F.rastrigin, x0, workers=2, **kw),
        zo.minimize(lambda x: F.rastrigin(x), x0, **kw),
        zo.minimize(lambda x: F.rastrigin(x), x0, workers=3, **kw),
        zo.minimize(lambda X: F.rastrigin(X), x0, vectorized=True, **kw),
    ]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        runs.append(
            zo.minimize(F.rastrigin, x0, executor=ex, **kw)
            if False
            else zo.minimize(lambda x: F.rastrigin(x), x0, executor=ex, **kw)
        )
    for r in runs:
        assert_allclose(r.x, ref.x, rtol=0, atol=0)
        assert r.fun == ref.fun and r.nfev == ref.nfev and r.nit == ref.nit
        assert_allclose(r.history, ref.history, rtol=0, atol=0)
    if method != "cge":  # all coordinates: deterministic
        other = zo.minimize(F.rastrigin, x0, **{**kw, "rng": 43})
        assert not np.array_equal(other.history, ref.history)
    g = np.random.default_rng(5)
    assert np.array_equal(
        zo.minimize(F.rastrigin, x0, **{**kw, "rng": np.random.default_rng(5)}).x,
        zo.minimize(F.rastrigin, x0, **{**kw, "rng": g}).x,
    )


@pytest.mark.parametrize("method", ["gaussian", "cbo"])
def test_dtypes_are_kept(method, dtype):
    seen = []

    def f(X):
        seen.append(X.dtype)
        return F.sphere(X)

    x0 = np.linspace(-1, 1, 5).astype(dtype)
    res = zo.minimize(f, x0, method=method, vectorized=True, rng=0, maxfev=3000)
    assert res.x.dtype == dtype and res.x_last.dtype == dtype
    assert set(seen) == {dtype}
    assert res.fun < 0.1
    assert zo.minimize(F.sphere, np.arange(3), maxfev=200, rng=0).x.dtype == np.float64  # ints -> float64


def test_ask_tell_matches_minimize():
    x0 = np.linspace(-1, 1, 5)
    opt = zo.Optimizer("sphere", x0, rng=9)
    for _ in range(30):
        X = opt.ask()
        assert_allclose(opt.ask(), X)  # asking again gives the same batch
        opt.tell(X, F.sphere(X))
    res = zo.minimize(F.sphere, x0, method="sphere", rng=9, maxiter=30)
    assert_allclose(opt.best[0], res.x, rtol=0, atol=0)
    assert opt.result().fun == res.fun and opt.nfev == res.nfev
    with pytest.raises(ValueError, match="batch returned by the last ask"):
        X = opt.ask()
        opt.tell(X + 1, F.sphere(X))
    with pytest.raises(NumericalError, match="nan_as_inf"):
        opt.tell(X, np.full(len(X), np.nan))
    opt.tell(X, F.sphere(X))  # still usable


def test_functions_match_numpy_references(dtype):
    rng = np.random.default_rng(0)
    X = rng.uniform(-5, 5, (7, 6)).astype(dtype)
    Y = X.astype(np.float64)
    d = Y.shape[1]
    mu1 = -np.sqrt((2.5**2 - 1) / (1 - 1 / (2 * np.sqrt(d + 20) - 8.2)))
    s = 1 - 1 / (2 * np.sqrt(d + 20) - 8.2)
    refs = {
        "sphere": (Y**2).sum(1),
        "ellipsoid": (1e6 ** (np.arange(d) / (d - 1)) * Y**2).sum(1),
        "rosenbrock": (100 * (Y[:, 1:] - Y[:, :-1] ** 2) ** 2 + (1 - Y[:, :-1]) ** 2).sum(1),
        "rastrigin": 10 * d + (Y**2 - 10 * np.cos(2 * np.pi * Y)).sum(1),
        "ackley": -20 * np.exp(-0.2 * np.sqrt((Y**2).mean(1))) - np.exp(np.cos(2 * np.pi * Y).mean(1)) + 20 + np.e,
        "schwefel": 418.9828872724339 * d - (Y * np.sin(np.sqrt(np.abs(Y)))).sum(1),
        "lunacek": np.minimum(((Y - 2.5) ** 2).sum(1), d + s * ((Y - mu1) ** 2).sum(1))
        + 10 * (1 - np.cos(2 * np.pi * (Y - 2.5))).sum(1),
    }
    for name, ref in refs.items():
        fn = F.ALL[name]
        out = fn(X)
        assert out.dtype == np.float64 and out.shape == (7,)
        assert_allclose(out, ref, rtol=1e-12, atol=1e-10)
        assert fn(X[2]) == out[2]
        assert fn(fn.xopt(d)) < 1e-3
    assert_allclose(F.TestFunction("ellipsoid", cond=1e4)(np.ones((1, 3))), [1 + 100 + 1e4])


# ------------------------------------------------------------------------------------------
# Bad objectives and bad input
# ------------------------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_objective_exceptions_propagate():
    def f(x):
        if x[0] > 1.05:
            raise Boom("bad point")
        return float(x @ x)

    with pytest.raises(Boom, match="bad point"):
        zo.minimize(f, np.full(3, 1.0), method="cbo", rng=0)
    with pytest.raises(Boom):
        zo.minimize(lambda X: (_ for _ in ()).throw(Boom()), np.ones(3), vectorized=True)


def test_nan_ends_the_run_or_counts_as_inf():
    calls = []

    def f(x):
        calls.append(1)
        return np.nan if len(calls) % 7 == 0 else float(x @ x)

    x0 = np.array([1.4, 1.0])
    with pytest.warns(ConvergenceWarning, match="NaN"):
        warnings.simplefilter("always", ConvergenceWarning)
        res = zo.minimize(f, x0, method="gaussian", q=2, rng=0)
    assert res.status == 4 and not res.success and "nan_as_inf" in res.message and "evaluation 7" in res.message
    assert np.isfinite(res.fun) and res.fun == min(f(r) for r in [res.x]) and res.nfev == 6
    res = zo.minimize(f, x0, method="gaussian", rng=0, nan_as_inf=True, maxfev=3000)
    assert res.status in (0, 1) and res.fun < 1e-6


@pytest.mark.parametrize(
    "fun, vectorized, exc, match",
    [
        (lambda X: np.zeros((len(X), 2)), True, ValueError, r"shape \(11,\)"),
        (lambda X: np.zeros(3), True, ValueError, r"shape \(11,\)"),
        (lambda x: np.zeros(2), False, ValueError, "scalar"),
        (lambda x: "a", False, TypeError, "real number"),
    ],
)
def test_wrong_shapes_and_types_from_the_objective(fun, vectorized, exc, match):
    with pytest.raises(exc, match=match):
        zo.minimize(fun, np.ones(10), vectorized=vectorized)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"x0": np.ones((2, 2))}, ValueError, "x0"),
        ({"x0": []}, ValueError, "x0"),
        ({"x0": [1.0, np.nan]}, ValueError, "x0"),
        ({"x0": [1j, 2]}, TypeError, "x0"),
        ({"method": "newton"}, ValueError, "method"),
        ({"options": {"foo": 1}}, ValueError, "foo"),
        ({"maxfev": 3}, ValueError, "maxfev"),
        ({"maxfev": 0}, ValueError, "maxfev"),
        ({"q": 0}, ValueError, "q"),
        ({"mu": -1.0}, ValueError, "mu"),
        ({"lr": np.nan}, ValueError, "lr"),
        ({"bounds": (2.0, 1.0)}, ValueError, "bounds"),
        ({"bounds": [(0, 1)] * 3}, ValueError, "bounds"),
        ({"rng": True}, TypeError, "rng"),
        ({"workers": 0}, ValueError, "workers"),
        ({"f_target": np.nan}, ValueError, "f_target"),
        ({"method": "cbo", "mu": 0.1}, ValueError, "mu"),
        ({"method": "cge", "q": 3}, ValueError, "n_coords"),
        ({"method": "cbo", "options": {"noise": "pink"}}, ValueError, "noise"),
        ({"method": "rank", "options": {"m": 4, "k": 5}}, ValueError, "k"),
        ({"method": "adamm", "options": {"beta1": 1.0}}, ValueError, "beta1"),
        ({"vectorized": True, "executor": concurrent.futures.ThreadPoolExecutor(1)}, ValueError, "executor"),
        ({"fun": 3}, TypeError, "fun"),
    ],
)
def test_bad_input_names_the_argument(kwargs, exc, match):
    args = {"fun": F.sphere, "x0": np.ones(5), **kwargs}
    fun, x0 = args.pop("fun"), args.pop("x0")
    with pytest.raises(exc, match=match):
        zo.minimize(fun, x0, **args)


def test_bad_rankings():
    x0 = np.zeros(3)
    with pytest.raises(ValueError, match="k = 2 best"):
        zo.rank_minimize(lambda X: [0], x0, m=4, k=2, maxiter=3)
    with pytest.raises(ValueError, match="distinct"):
        zo.rank_minimize(lambda X: [1, 1], x0, m=4, k=2, maxiter=3)
    with pytest.raises(ValueError, match="distinct"):
        zo.rank_minimize(lambda X: [0, 7], x0, m=4, k=2, maxiter=3)
    with pytest.raises(Boom):
        zo.rank_minimize(lambda X: (_ for _ in ()).throw(Boom()), x0, maxiter=3)
    with pytest.raises(ValueError, match="tell_ranking"):
        opt = zo.Optimizer("sphere", x0)
        opt.tell_ranking(opt.ask(), [0])


# ------------------------------------------------------------------------------------------
# Callbacks and progress
# ------------------------------------------------------------------------------------------


def test_callback_stop_and_disp(capsys):
    seen = []

    def cb(r):
        seen.append((r.nit, r.nfev, r.fun))
        if r.nit >= 30:
            raise StopIteration

    res = zo.minimize(F.sphere, np.ones(4), callback=cb, check_every=10, rng=0, disp=True)
    assert res.status == 99 and res.nit == 30 and [s[0] for s in seen] == [10, 20, 30]
    assert seen[-1][2] == res.fun
    out = capsys.readouterr().out
    assert "optcore.zo.minimize" in out and "iter" in out


def test_module_is_registered():
    assert optcore.zo is zo
    assert set(zo.METHODS) == set(ALL_METHODS)


# ------------------------------------------------------------------------------------------
# Documentation: doctests, the README example, the tour
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["optcore.zo", "optcore.zo.functions"])
def test_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_readme_example_runs():
    """The README's zeroth-order example runs and gives what its comments say."""
    import os

    text = open(os.path.dirname(__file__) + "/../README.md", encoding="utf-8").read()
    code = text.split("## Zeroth-order optimization")[1].split("```python")[1].split("```")[0]
    ns: dict = {}
    exec(code, ns)  # noqa: S102
    assert ns["res"].success and ns["res"].fun <= 1e-8
    assert ns["res_b"].x.dtype == np.float32
    assert ns["best"] < 1e-6


def test_tour_section_runs(capsys):
    from optcore.__main__ import tour_zo

    tour_zo(8, 0)
    out = capsys.readouterr().out
    assert "optcore zo cge" in out and "scipy Powell" in out


def test_gradient_same_estimate_whatever_workers():
    x = np.linspace(-1.0, 1.0, 6)
    for fun in (F.rastrigin, lambda x: float(np.sum(x**4))):
        ref = zo.gradient(fun, x, method="sphere", q=20, rng=5, workers=1)
        for w in (2, None):
            assert np.array_equal(zo.gradient(fun, x, method="sphere", q=20, rng=5, workers=w), ref)
