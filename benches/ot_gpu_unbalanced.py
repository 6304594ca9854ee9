"""Section 6 of ``benches/ot_gpu.py``: unbalanced OT and grids on the device (issue 21).

Run through ``python benches/ot_gpu.py`` (section "unbalanced"), or without a GPU on the NumPy
emulation of the kernels with ``python benches/ot_gpu.py --dry-run`` (that proves the section
runs; its times are emulation times, not GPU times). ``out`` is the calling script's module (its
``section``, ``line`` and ``wall``: one report).
"""

from __future__ import annotations

import time

import numpy as np


def _xp_wall(out, xp, fn):
    """(seconds, result) of fn(), synchronised on the device (``out.wall``) when xp is CuPy."""
    if xp is np:
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out
    return out.wall(fn)


def _device_solver(xp):
    """optcore.ot.sinkhorn on CuPy arrays (the device driver), or the same driver on NumPy
    through the kernel emulation (--dry-run)."""
    if xp is np:
        from optcore.ot._device import sinkhorn_emulated

        return sinkhorn_emulated
    import optcore

    return optcore.ot.sinkhorn


def _relaxed_residual(rows, cols, f, g, a, b, reg, reg_m):
    """||P 1 - a~||_1 + ||P^T 1 - b~||_1 (the residual of optcore's solvers; a~ = a when
    balanced), float64 NumPy, from a plan's marginals and its potentials."""
    from optcore.ot.unbalanced import reg_m_pair

    pair = reg_m_pair(reg_m) or (np.inf, np.inf)
    err = 0.0
    for marg, p, w, rho in ((rows, f, a, pair[0]), (cols, g, b, pair[1])):
        w, p = np.ravel(w).astype(np.float64), np.ravel(p).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t = w if np.isinf(rho) else np.where(w > 0, w * np.exp(-(p - reg * np.log(w)) / rho), 0.0)
        err += float(np.abs(np.ravel(marg) - t).sum())
    return err


def _grid_marginals(ax, f, g, reg):
    """Row and column sums of exp((f_i + g_j - C_ij) / reg) on the 2-D grid ax x ax (squared
    Euclidean cost), float64, by two matrix products per side (independent of optcore)."""
    K = np.exp(-((ax[:, None] - ax[None, :]) ** 2) / reg)
    s = ax.size
    f, g = f.astype(np.float64).reshape(s, s), g.astype(np.float64).reshape(s, s)

    def side(p, q):  # sum_j exp((p_i + q_j - C_ij) / reg)
        top = q[np.isfinite(q)].max()
        with np.errstate(under="ignore", over="ignore", invalid="ignore"):
            out = np.exp((p + top) / reg) * (K @ np.exp((q - top) / reg) @ K.T)
        return np.where(np.isneginf(p), 0.0, out)

    return side(f, g), side(g, f)


def unbalanced_grids(out, res, xp, n, side, reg, tols):
    """Section 6 (see ``benches/ot_gpu.py``); ``xp`` = numpy runs it on the emulation (--dry-run)."""
    import optcore

    solve = _device_solver(xp)
    host = np.asarray if xp is np else (lambda v: v.get())
    where = "GPU" if xp is not np else "NumPy emulation of the kernels (--dry-run: not GPU times)"
    out.section(f"Unbalanced and grids on the {where}: dense n = m = {n}, grid {side}x{side}, reg = {reg}")
    out.line("ms/iter: difference of runs of 10 and 30 iterations; 'vs balanced': over the balanced dense")
    out.line("iteration on the same M. End to end: to tol; the residual (relaxed targets when unbalanced) is")
    out.line("re-measured here on the returned plan (dense) or potentials (grid); CPU: optcore's Rust solver")
    out.line("on the same problem, max |f - f_cpu| (balanced: after removing the mean difference).\n")
    out.line(
        "| case | dtype | ms/iter | vs balanced | end to end s | nit | success | residual (here) | CPU s | max abs f diff |"
    )
    out.line("|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(21)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    M64 = np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T, 0.0)
    M64 /= M64.max()
    a64, b64 = np.full(n, 1.0 / n), 1.5 * rng.random(n) / n
    ax = np.linspace(0.0, 1.0, side)
    grid = optcore.ot.Grid([ax, ax])
    ga = np.exp(-((ax[:, None] - 0.3) ** 2 + (ax[None, :] - 0.4) ** 2) / 0.02)
    gb = np.exp(-((ax[:, None] - 0.7) ** 2 + (ax[None, :] - 0.6) ** 2) / 0.03)
    ga, gb = ga / ga.sum(), gb / gb.sum()
    cases = [
        ("dense balanced", a64, a64, M64, None),
        ("dense reg_m=0.5", a64, b64, M64, 0.5),
        ("dense reg_m=(inf,0.5)", a64, b64, M64, (np.inf, 0.5)),
        ("grid balanced", ga, gb, grid, None),
        ("grid reg_m=0.5", ga, 1.2 * gb, grid, 0.5),
    ]
    rows = []
    for dtype, tol in tols.items():
        dt = np.dtype(dtype)
        bal = None
        for name, ha, hb, hM, reg_m in cases:
            is_grid = isinstance(hM, optcore.ot.Grid)
            args = (xp.asarray(ha, dtype=dt), xp.asarray(hb, dtype=dt), hM if is_grid else xp.asarray(hM, dtype=dt))
            kw = dict(reg_m=reg_m, warn=False, return_plan=not is_grid)

            def run(k, args=args, kw=kw):
                opts = {"overrelaxation": 1.0}
                kw = {**kw, "return_plan": False}
                return solve(*args, reg, tol=1e-300, maxiter=k, check_every=k, options=opts, **kw)

            run(2)
            t1 = min(_xp_wall(out, xp, lambda run=run: run(10))[0] for _ in range(2))
            t2 = min(_xp_wall(out, xp, lambda run=run: run(30))[0] for _ in range(2))
            per = (t2 - t1) / 20
            bal = per if bal is None else bal
            t_e, r = _xp_wall(out, xp, lambda args=args, kw=kw: solve(*args, reg, tol=tol, maxiter=20_000, **kw))
            f, g = host(r.f), host(r.g)
            if is_grid:
                mr, mc = _grid_marginals(ax, f, g, reg)
            else:
                P = r.plan
                mr, mc = host(P.sum(axis=1, dtype=np.float64)), host(P.sum(axis=0, dtype=np.float64))
            resid = _relaxed_residual(mr, mc, f, g, ha, hb, reg, reg_m)
            cpu_M = hM if is_grid else hM.astype(dt)
            t_c, c = _xp_wall(
                out,
                np,
                lambda ha=ha, hb=hb, cpu_M=cpu_M, reg_m=reg_m, is_grid=is_grid: optcore.ot.sinkhorn(
                    ha.astype(dt),
                    hb.astype(dt),
                    cpu_M,
                    reg,
                    reg_m=reg_m,
                    tol=tol,
                    maxiter=20_000,
                    warn=False,
                    return_plan=not is_grid,
                ),
            )
            live = np.isfinite(c.f)
            d = f.astype(np.float64)[live] - c.f.astype(np.float64)[live]
            if reg_m is None:  # balanced potentials are defined up to a constant
                d = d - d.mean()
            row = dict(
                case=name,
                dtype=dt.name,
                per_iter=per,
                vs_balanced=per / bal,
                end_to_end=t_e,
                nit=int(r.nit),
                success=bool(r.success),
                residual=resid,
                cpu=t_c,
                cpu_success=bool(c.success),
                max_df=float(np.abs(d).max()),
            )
            rows.append(row)
            out.line(
                f"| {name} | {dt.name} | {per * 1e3:.2f} | {per / bal:.2f}× | {t_e:.3f} | {r.nit} | {r.success} | "
                f"{resid:.2e} | {t_c:.3f} | {row['max_df']:.1e} |"
            )
    res["unbalanced_grids"] = rows
