"""Mirror Sinkhorn's averaged output (``output="average"``): it is exactly the weighted average
of the iterates it names (one pair in four over the first 32 iterations, one in eight after,
each weighted by the steps since the last of its scaling), on every loop (stored plan, log-domain potentials, general n x m log state), in
float64 and float32, and it keeps the rate of the paper's average of every iterate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from optcore.ot import mirror_sinkhorn

ot = pytest.importorskip("ot")


def _cloud(n, m, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    M = ((x[:, None] - y[None]) ** 2).sum(-1)
    a, b = rng.random(n) + 0.2, rng.random(m) + 0.2
    return (a / a.sum()).astype(dtype), (b / b.sum()).astype(dtype), M.astype(dtype)


def _averaged(s):
    """The documented rule: iterate ``P_s`` (made by iteration ``s - 1``) is averaged iff
    ``s >= 1`` and ``s // 2`` is a multiple of 4 (``s < 32``) or of 8 (after)."""
    p = s // 2
    return s >= 1 and p % (4 if p < 16 else 8) == 0


def _steps(step, step0, T):
    """``eta_t`` for ``t < T``: a constant, or the block means of ``step0 / sqrt(t + 1)`` over
    ``[0, 2), [2, 4), [4, 8), ...``."""
    if step != "sqrt":
        return np.full(T, float(step))
    eta = np.empty(T)
    start, end = 0, 2
    while start < T:
        eta[start:end] = step0 * np.mean(1 / np.sqrt(np.arange(start, end) + 1.0))
        start, end = end, 2 * end
    return eta


def _weights(eta, T):
    """``{s: w_s}`` of the documented rule: ``w_s`` sums the steps ``eta[s' - 1]`` of the
    iterates ``s' <= s`` of the parity of ``s`` since the previous averaged one."""
    carry, out = [0.0, 0.0], {}
    for s in range(1, T + 1):
        carry[s % 2] += eta[s - 1]
        if _averaged(s):
            out[s], carry[s % 2] = carry[s % 2], 0.0
    return out


def _weighted(iterates, eta, T):
    w = _weights(eta, T)
    return sum(ws * iterates(s).astype(np.float64) for s, ws in w.items()) / sum(w.values())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "form",
    [
        "stored",  # the native linear objective, stored plan and exp(-eta M)
        "potentials",  # the native linear objective with a step too large for the stored form
        "general",  # a gradient oracle: the n x m log-state loop
    ],
)
def test_average_is_the_direct_average_of_the_iterates_it_names(form, dtype):
    a, b, M = _cloud(9, 7, seed=3, dtype=dtype)
    T = 67  # odd horizon past the sparser pairs (48, 49, 64, 65), check interval 7: row-only and
    # column-only passes, checks mid-pair
    step = 400.0 if form == "potentials" else "sqrt"
    kw = dict(step=step, tol=1e-15, warn=False, check_every=7)
    if form == "general":
        kw.update(grad=lambda P: M, fun=lambda P: float(np.sum(P * M)))
        res = mirror_sinkhorn(a, b, maxiter=T, **kw)
    else:
        res = mirror_sinkhorn(a, b, M, maxiter=T, **kw)

    def last(s):
        # The s-th iterate: the last iterate of a run of s iterations (the steps do not depend on
        # the horizon).
        if form == "general":
            return mirror_sinkhorn(a, b, maxiter=s, output="last", **kw).plan
        return mirror_sinkhorn(a, b, M, maxiter=s, output="last", **kw).plan

    direct = _weighted(last, _steps(step, res.step0, T), T)
    # float32: each iterate carries float32 rounding (the log-domain form's exponents S M ~ 1e4)
    rtol = 1e-12 if dtype == np.float64 else 2e-2 if form == "potentials" else 1e-5
    np.testing.assert_allclose(res.plan, direct, rtol=rtol, atol=rtol * direct.max())
    assert res.plan.dtype == dtype
    # and the claims are re-measured on it
    err = np.abs(res.plan.sum(1, dtype=np.float64) - a).sum() + np.abs(res.plan.sum(0, dtype=np.float64) - b).sum()
    assert res.marginal_error == pytest.approx(err, rel=1e-6, abs=1e-12)


def _reference(a, b, M, eta, Ts):
    """NumPy Mirror Sinkhorn for ``<P, M>`` in the log domain: at each horizon in ``Ts`` the
    paper's average of every iterate and the documented average of the pairs."""
    L = np.log(a)[:, None] + np.log(b)[None, :] - np.log(a.sum())
    weights = _weights(eta, max(Ts))
    full, sub, wf, ws, out = 0.0, 0.0, 0.0, 0.0, {}
    for t in range(max(Ts)):
        L = L - eta[t] * M
        if t % 2 == 0:
            L += (np.log(a) - logsumexp(L, axis=1))[:, None]
        else:
            L += (np.log(b) - logsumexp(L, axis=0))[None, :]
        P = np.exp(L)
        wf += eta[t]
        full += eta[t] / wf * (P - full)
        if t + 1 in weights:
            ws += weights[t + 1]
            sub += weights[t + 1] / ws * (P - sub)
        if t + 1 in Ts:
            out[t + 1] = (full.copy(), sub.copy())
    return out


def test_subset_average_keeps_the_rate_of_the_full_average():
    a, b, M = _cloud(20, 16, seed=1)
    exact = ot.emd2(a, b, M)
    Ts = (64, 256, 1024, 4096)
    step0 = mirror_sinkhorn(a, b, M, maxiter=1, warn=False).step0
    ref = _reference(a, b, M, _steps("sqrt", step0, max(Ts)), Ts)
    gaps_full, gaps_sub = [], []
    for T in Ts:
        res = mirror_sinkhorn(a, b, M, maxiter=T, tol=1e-15, warn=False)
        full, sub = ref[T]
        # optcore returns the subset average of the same iterates (long runs included)
        np.testing.assert_allclose(res.plan, sub, rtol=1e-9, atol=1e-12)
        gaps_full.append(float(np.sum(full * M)) - exact)
        gaps_sub.append(res.cost - exact)
    gaps_full, gaps_sub = np.array(gaps_full), np.array(gaps_sub)
    assert np.all(gaps_sub > 0) and np.all(np.diff(gaps_sub) < 0)
    # about the same numbers as the full average, a little lower (each averaged iterate stands
    # for earlier, worse ones)
    assert np.all(gaps_sub <= 1.02 * gaps_full) and np.all(gaps_sub >= 0.5 * gaps_full), (gaps_sub, gaps_full)
    # the same order: log-log slope over T = 64..4096 as steep as the full average's, and at
    # least the paper's O(log T / sqrt T)
    slope = lambda g: np.polyfit(np.log(Ts), np.log(g), 1)[0]  # noqa: E731
    assert slope(gaps_sub) <= slope(gaps_full) + 0.05
    paper = np.log(Ts) / np.sqrt(Ts)
    assert np.all(gaps_sub / paper <= 1.5 * gaps_sub[0] / paper[0])
