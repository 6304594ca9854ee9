"""optcore.bilevel's L-BFGS outer loop with the direct lower solve (issue 22): the strong-Wolfe
line search (L-BFGS-B's) takes about as many iterations as SciPy's L-BFGS-B on the closed form, never
accepts a step that increases F, and the blocked Cholesky behind the direct solve gives the
same bits whatever the number of threads."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from optcore import bilevel
from optcore.bilevel import problems

optimize = pytest.importorskip("scipy.optimize")


def ridge(p, n, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(p)
    X, Xv = rng.standard_normal((n, p)), rng.standard_normal((n, p))
    t, tv = X @ w + rng.standard_normal(n), Xv @ w + rng.standard_normal(n)
    pr = problems.RidgeHyperparameter(X, t, Xv, tv)
    pr.exact = Exact(X, t, Xv, tv)
    return pr


class Exact:
    """F(λ) and ∇F(λ) in closed form from precomputed Gram matrices (NumPy)."""

    def __init__(self, X, t, Xv, tv):
        n, nv = len(t), len(tv)
        self.G, self.b = 2 * X.T @ X / n, 2 * X.T @ t / n
        self.Gv, self.bv, self.cv = 2 * Xv.T @ Xv / nv, 2 * Xv.T @ tv / nv, tv @ tv / nv

    def value_grad(self, lam):
        e = np.exp(lam)
        H = self.G + np.diag(2 * e)
        w = np.linalg.solve(H, self.b)
        v = np.linalg.solve(H, self.Gv @ w - self.bv)
        return 0.5 * w @ self.Gv @ w - self.bv @ w + self.cv, -2 * e * w * v

    def value(self, lam):
        return self.value_grad(lam)[0]


def run(pr, maxiter, **kw):
    xs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bilevel.minimize(
            pr,
            np.zeros(pr.d_x),
            method="aid",
            outer="lbfgs",
            tol=1e-12,
            maxiter=maxiter,
            rng=0,
            callback=lambda r: xs.append(np.array(r.x)),
            check_every=1,
            **kw,
        )
    return res, xs


def first_reach(values, f_star, rel):
    return next((k for k, f in enumerate(values) if f - f_star <= rel * abs(f_star)), None)


@pytest.mark.parametrize("d", [50, 100])
def test_iterations_to_1e_6_are_within_1_5x_of_scipy_lbfgsb(d):
    # Measured with L-BFGS-B's line search (Moré–Thuente, ftol 1e-3): 217 against 194
    # (d = 50), 292 against 298 (d = 100). The previous strong-Wolfe search (t <- 4t, cubic
    # clipped to the bracket's inner 80%, c1 = 1e-4) took 266 and 588. The counts are chaotic
    # (a 1e-12 relative perturbation of the hypergradient moves L-BFGS-B's own count at d = 100
    # between 263 and 524), hence the margin.
    pr = ridge(d, 800)
    res, xs = run(pr, 1000)
    assert res.lower_solve == "direct"
    F_ours = [pr.exact.value(x) for x in xs]
    F_scipy = []
    optimize.minimize(
        pr.exact.value_grad,
        np.zeros(pr.d_x),
        jac=True,
        method="L-BFGS-B",
        callback=lambda intermediate_result: F_scipy.append(pr.exact.value(intermediate_result.x)),
        options={"gtol": 1e-12, "ftol": 0, "maxiter": 1000},
    )
    f_star = min(min(F_ours), min(F_scipy))
    k_ours, k_scipy = first_reach(F_ours, f_star, 1e-6), first_reach(F_scipy, f_star, 1e-6)
    assert k_ours is not None and k_scipy is not None
    assert k_ours <= 1.5 * k_scipy, (k_ours, k_scipy)


def test_no_accepted_step_increases_F():
    pr = ridge(40, 300, seed=3)
    res, xs = run(pr, 200)
    F = np.array([pr.exact.value(np.zeros(pr.d_x))] + [pr.exact.value(x) for x in xs])
    # Armijo on F̂ (exact to rounding with the direct solve): each step decreases F, up to F's
    # rounding error.
    assert np.all(np.diff(F) <= 1e-12 * np.abs(F[:-1])), np.diff(F).max()
    assert res.fun == pytest.approx(pr.exact.value(res.x), rel=1e-10)


def test_the_direct_solve_is_bit_identical_across_workers():
    # d = 300 ≥ the order from which the factorisation's panels run in parallel.
    pr = ridge(300, 400, seed=1)
    a, _ = run(pr, 15, workers=1)
    b, _ = run(pr, 15, workers=2)
    assert a.lower_solve == b.lower_solve == "direct"
    assert a.nit == b.nit
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert a.fun == b.fun
