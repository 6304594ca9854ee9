//! Sinkhorn–Newton–Sparse (Tang et al., ICLR 2024) with the safeguards of its successors.
//!
//! The dual (Lyapunov) potential, in the units of `M` and with the module's plan convention
//! `P_ij = exp((f_i + g_j - M_ij) / reg)`, is the concave function
//!
//! ```text
//! D(f, g) = <a, f> + <b, g> - reg * sum_ij P_ij(f, g)
//! ```
//!
//! with gradient `(a - P 1, b - P^T 1)` (the marginal residuals) and Hessian `-H / reg`,
//! `H = [[diag(P 1), P], [P^T, diag(P^T 1)]]` (positive semidefinite, null vector `(1, -1)`).
//! The ascent Newton step is `reg * H^{-1} grad`.
//!
//! 1. **Sinkhorn stage**: the log-domain solver ([`super::sinkhorn_log`]) until the switch rule
//!    fires: a fixed count (the paper's `N1`) when given, else as soon as the marginal error is
//!    below `switch_tol` (relative to the total mass), or below `3 * switch_tol` and improving
//!    less than 2× over the last 10 iterations, or improving less than 2× over the last 500
//!    (Newton far from the solution at small `reg` is slower than over-relaxed Sinkhorn, so
//!    the stage ends on slowness alone only after a long plateau).
//! 2. **Newton stage**: each step keeps the largest entries of `P` (by default at least the
//!    paper's `3 n`, enough to hold all but `1e-5` of the mass, and every entry that is at
//!    least 1e-3 of its row's or column's sum; selected from a histogram of their exponents
//!    and a small selection, no sort), keeps the **exact**
//!    diagonal blocks `diag(P 1)`, `diag(P^T 1)`, adds a shift `mu * ||grad||_2` (SSNS's damping,
//!    `mu` updated from the ratio of actual to predicted increase), eliminates the `f` block
//!    (its diagonal is exact) and solves the `m x m` Schur complement by Jacobi-preconditioned
//!    conjugate gradients. The shifted Schur complement is positive definite, so the null
//!    direction needs no special handling. A backtracking (Armijo) line search on `D` accepts
//!    the step; when no step length increases `D`, one Sinkhorn iteration is taken instead and
//!    the shift is increased.
//!
//! Every pass over the plan (one per line-search trial) is an `O(n m)` multi-threaded pass;
//! the sparse linear algebra is `O(nnz)` with `nnz ~ 3 n` by default.

use rayon::prelude::*;

use super::controller::{EpsScaling, LineSearch, NewtonControl, Overrelax};
use super::sinkhorn::{materialize, sinkhorn_log, LogOptions, LogWork, PlanScratch, PlanStats, Problem};
use super::sparsify::{row_sum, sparsify, Csr, Select, RELATIVE};
use crate::error::{OptError, Result};
use crate::parallel::row_block;
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};

/// Options of [`sinkhorn_sns`].
#[derive(Clone, Debug)]
pub struct SnsOptions {
    pub reg: f64,
    /// Bound on `||P 1 - a||_1 + ||P^T 1 - b||_1` of the returned plan.
    pub tol: f64,
    /// Total iterations (Sinkhorn and Newton).
    pub maxiter: usize,
    /// Fraction of the `n m` plan entries kept in the sparsified Hessian. `None`: adaptive,
    /// at least the paper's `2 / min(n, m)` of the Hessian's `(n + m)^2` entries (`3 / n` of
    /// the plan's entries when `n = m`), enough of the largest to hold all but `1e-5` of the
    /// plan's mass, and every entry at least 1e-3 of its row's or column's sum.
    pub density: Option<f64>,
    /// Fixed number of Sinkhorn iterations before the Newton stage (the paper's `N1`);
    /// `None`: the adaptive switch rule.
    pub warmup: Option<usize>,
    /// Adaptive rule: switch once the marginal error is below `switch_tol * sum(a)` (or below
    /// three times that and improving slowly).
    pub switch_tol: f64,
    /// Over-relaxation of the Sinkhorn stage.
    pub overrelax: Overrelax,
    /// Cap on conjugate-gradient iterations per Newton step.
    pub cg_maxiter: usize,
    /// ε-scaling in the Sinkhorn stage (the switch rule then applies in its last stage).
    pub eps_scaling: bool,
}

impl SnsOptions {
    pub fn new(reg: f64, tol: f64, maxiter: usize) -> Self {
        SnsOptions {
            reg,
            tol,
            maxiter,
            density: None,
            warmup: None,
            switch_tol: 1e-2,
            overrelax: Overrelax::Auto,
            cg_maxiter: 1000,
            eps_scaling: false,
        }
    }
}

/// Result of [`sinkhorn_sns`]. `plan` is empty when the run was aborted.
#[derive(Debug)]
pub struct SnsOutput<T> {
    pub plan: Vec<T>,
    pub f: Vec<T>,
    pub g: Vec<T>,
    /// Total iterations: `n_sinkhorn + n_newton`.
    pub nit: usize,
    /// Sinkhorn iterations (warm-up and fallbacks).
    pub n_sinkhorn: usize,
    /// Accepted Newton steps.
    pub n_newton: usize,
    pub termination: Termination,
    pub marginal_error: f64,
    pub cost: f64,
    pub fun: f64,
    /// Fraction of the `n m` plan entries kept in the last sparsified Hessian (0 without a
    /// Newton step).
    pub hessian_density: f64,
    /// Conjugate-gradient iterations over all Newton steps.
    pub cg_iterations: usize,
    /// Plan passes of the line search (each one `O(n m)` exponentials).
    pub line_search_evals: usize,
}

/// Ends the Sinkhorn stage by the switch rule (and forwards to the user's observer).
struct Switch<'a, T> {
    inner: &'a mut dyn Observer<T>,
    fixed: Option<usize>,
    switch_err: f64,
    reg: f64,
    history: Vec<f64>,
    switched: bool,
}

impl<T: Real> Observer<T> for Switch<'_, T> {
    fn observe(&mut self, nit: usize, report: &dyn Fn() -> Report<T>) -> Control {
        let c = self.inner.observe(nit, report);
        if c != Control::Continue {
            return c;
        }
        let fire = match self.fixed {
            Some(n1) => nit >= n1,
            None => {
                let rep = report();
                // Only the last stage of an ε-scaling warm-up counts.
                if rep.scalars.iter().any(|&(k, v)| k == "reg" && v != self.reg) {
                    self.history.clear();
                    return Control::Continue;
                }
                let err = rep.error;
                self.history.push(err);
                let h = &self.history;
                // Less than 2x better than `w` iterations ago.
                let slow = |w: usize| h.len() > w && err > 0.5 * h[h.len() - 1 - w];
                // Near the solution a slowing Sinkhorn hands over at once; far from it only
                // after a long plateau (Newton's global phase costs some hundred Sinkhorn
                // iterations' worth at small reg).
                err <= self.switch_err || (err <= 3.0 * self.switch_err && slow(10)) || slow(500)
            }
        };
        if fire {
            self.switched = true;
            Control::Stop
        } else {
            Control::Continue
        }
    }
}

/// The sparsified Newton system of one step: the kept plan entries `ps`, the weights `a`, `b`
/// (their zeros mark inactive rows and columns), the plan's marginals `r`, `c`, the gradient
/// `(ga, gb)` and the shift.
#[derive(Clone, Copy)]
struct NewtonSystem<'s> {
    ps: &'s Csr,
    a: &'s [f64],
    b: &'s [f64],
    r: &'s [f64],
    c: &'s [f64],
    ga: &'s [f64],
    gb: &'s [f64],
    shift: f64,
}

/// The Newton direction `d'` solving `(H_s + shift I) d' = (ga, gb)` on the active rows and
/// columns (`a_i > 0`, `b_j > 0`; zero elsewhere), with `H_s = [[diag(r), Ps], [Ps^T, diag(c)]]`:
/// the `f` block is eliminated and the Schur complement `diag(c + shift) - Ps^T diag(r +
/// shift)^-1 Ps` solved by Jacobi-preconditioned CG to relative residual `cg_rtol`. Returns
/// `(d'_f, d'_g, CG iterations)`.
fn newton_direction(sys: &NewtonSystem<'_>, cg_rtol: f64, cg_max: usize) -> (Vec<f64>, Vec<f64>, usize) {
    let NewtonSystem { ps, a, b, r, c, ga, gb, shift } = *sys;
    let (n, m) = (a.len(), b.len());
    let dr: Vec<f64> = (0..n).map(|i| if a[i] > 0.0 { r[i] + shift } else { 1.0 }).collect();
    let dc: Vec<f64> = (0..m).map(|j| if b[j] > 0.0 { c[j] + shift } else { 1.0 }).collect();
    let active_col: Vec<bool> = b.iter().map(|&x| x > 0.0).collect();
    let mut tn = vec![0.0; n];
    let mut tm = vec![0.0; m];
    let schur = |x: &[f64], out: &mut [f64], tn: &mut [f64], tm: &mut [f64]| {
        ps.mul(x, tn);
        tn.iter_mut().zip(&dr).for_each(|(v, d)| *v /= d);
        ps.mul_t(tn, tm);
        for j in 0..m {
            out[j] = if active_col[j] { dc[j] * x[j] - tm[j] } else { 0.0 };
        }
    };
    let mut diag = dc.clone();
    for (i, &di) in dr.iter().enumerate() {
        for k in ps.indptr[i]..ps.indptr[i + 1] {
            let j = ps.indices[k] as usize;
            diag[j] -= ps.data[k] * ps.data[k] / di;
        }
    }
    let diag: Vec<f64> = diag.iter().zip(&dc).map(|(&d, &c)| if d > 1e-300 { d } else { c.max(1e-300) }).collect();
    // rhs = gb - Ps^T (ga / dr)
    let q: Vec<f64> = ga.iter().zip(&dr).map(|(x, d)| x / d).collect();
    ps.mul_t(&q, &mut tm);
    let rhs: Vec<f64> = (0..m).map(|j| if active_col[j] { gb[j] - tm[j] } else { 0.0 }).collect();
    let cg_tol = cg_rtol * rhs.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut x = vec![0.0; m];
    let mut res = rhs;
    let mut z: Vec<f64> = res.iter().zip(&diag).map(|(r, d)| r / d).collect();
    let mut dir = z.clone();
    let mut rz: f64 = res.iter().zip(&z).map(|(a, b)| a * b).sum();
    let mut sd = vec![0.0; m];
    let mut its = 0;
    while its < cg_max {
        if res.iter().map(|x| x * x).sum::<f64>().sqrt() <= cg_tol {
            break;
        }
        schur(&dir, &mut sd, &mut tn, &mut tm);
        let dsd: f64 = dir.iter().zip(&sd).map(|(a, b)| a * b).sum();
        // Not positive, or NaN: the direction has no curvature to use.
        if dsd.is_nan() || dsd <= 0.0 {
            break;
        }
        let alpha = rz / dsd;
        x.iter_mut().zip(&dir).for_each(|(x, d)| *x += alpha * d);
        res.iter_mut().zip(&sd).for_each(|(r, s)| *r -= alpha * s);
        z.iter_mut().zip(res.iter().zip(&diag)).for_each(|(z, (r, d))| *z = r / d);
        let rz_new: f64 = res.iter().zip(&z).map(|(a, b)| a * b).sum();
        let beta = rz_new / rz;
        rz = rz_new;
        dir.iter_mut().zip(&z).for_each(|(d, z)| *d = z + beta * *d);
        its += 1;
    }
    // Back-substitute: d'_f = (ga - Ps d'_g) / dr.
    ps.mul(&x, &mut tn);
    let dfp: Vec<f64> = (0..n).map(|i| if a[i] > 0.0 { (ga[i] - tn[i]) / dr[i] } else { 0.0 }).collect();
    (dfp, x, its)
}

/// Pieces of the Newton stage exposed for tests against dense references (not a stable API).
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// `D(f, g)` in f64.
    pub fn dual(a: &[f64], b: &[f64], cost: &[f64], reg: f64, f: &[f64], g: &[f64]) -> f64 {
        let m = b.len();
        let mut total = 0.0;
        for (i, fi) in f.iter().enumerate() {
            for (j, gj) in g.iter().enumerate() {
                total += ((fi + gj - cost[i * m + j]) / reg).exp();
            }
        }
        a.iter().zip(f).map(|(a, f)| a * f).sum::<f64>() + b.iter().zip(g).map(|(b, g)| b * g).sum::<f64>()
            - reg * total
    }

    /// The plan `P(f, g)` and its marginal residuals (the gradient of `D`) computed by the
    /// solver's own pass, and the sparsified plan (dense, dropped entries zero) with the
    /// Newton direction `d'` for the given `density` (`None`: the adaptive rule) and `shift`.
    #[allow(clippy::type_complexity)] // (P, grad_f, grad_g, sparsified P, d'): read once by the tests
    #[allow(clippy::too_many_arguments)] // the problem and the iterate, as the tests build them
    pub fn newton_step(
        a: &[f64],
        b: &[f64],
        cost: &[f64],
        reg: f64,
        f: &[f64],
        g: &[f64],
        density: Option<f64>,
        shift: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let p = Problem::new(a, b, cost);
        let (n, m) = (p.n, p.m);
        let rb = row_block(n);
        let floor = 1e-7 * a.iter().sum::<f64>() / (n * m) as f64;
        let mut w =
            Work { p: &p, reg, rb, partials: vec![0.0; n.div_ceil(rb) * m], colsum: vec![0.0; m], passes: 0, floor };
        let mut plan = vec![0.0; n * m];
        let cur = w.pass(f, g, &mut plan);
        let ga: Vec<f64> = (0..n).map(|i| a[i] - cur.r[i]).collect();
        let gb: Vec<f64> = (0..m).map(|j| b[j] - cur.c[j]).collect();
        let select = match density {
            Some(d) => Select::Exact(((d * (n * m) as f64).ceil() as usize).clamp(1, n * m)),
            None => Select::Covering { min: 3 * n.max(m), coverage: 1.0 - 1e-5, relative: RELATIVE },
        };
        let ps = sparsify(&plan, m, w.floor, &cur.r, &cur.c, select);
        let mut dense = vec![0.0; n * m];
        for i in 0..n {
            for k in ps.indptr[i]..ps.indptr[i + 1] {
                dense[i * m + ps.indices[k] as usize] = ps.data[k];
            }
        }
        let (df, dg, _) = newton_direction(
            &NewtonSystem { ps: &ps, a, b, r: &cur.r, c: &cur.c, ga: &ga, gb: &gb, shift },
            1e-14,
            10 * (n + m),
        );
        let grad = ga.into_iter().chain(gb).collect();
        let dir = df.into_iter().chain(dg).collect();
        (plan, grad, dense, dir, cur.r.into_iter().chain(cur.c).collect())
    }
}

/// One pass: the plan `P(f, g)` into `plan`, its row and column sums, and its statistics.
struct Pass {
    st: PlanStats,
    r: Vec<f64>,
    c: Vec<f64>,
    total: f64,
}

struct Work<'p, 'a, T> {
    p: &'p Problem<'a, T>,
    reg: f64,
    rb: usize,
    partials: Vec<f64>,
    colsum: Vec<f64>,
    passes: usize,
    /// Plan entries below this are left out of the exponent histogram (see [`histogram`]).
    floor: f64,
}

impl<T: Real> Work<'_, '_, T> {
    fn pass(&mut self, f: &[f64], g: &[f64], plan: &mut [T]) -> Pass {
        let p = self.p;
        let ft: Vec<T> = f.iter().map(|&x| T::from_f64(x)).collect();
        let gt: Vec<T> = g.iter().map(|&x| T::from_f64(x)).collect();
        let st = materialize(
            p,
            &ft,
            &gt,
            self.reg,
            plan,
            PlanScratch { partials: &mut self.partials, colsum: &mut self.colsum, rb: self.rb },
        );
        // Row sums and the exponent histogram in one read of each (cache-warm) row block.
        let r: Vec<f64> = plan.par_chunks(p.m).map(row_sum).collect();
        let c = self.colsum.clone();
        let total = c.iter().sum();
        self.passes += 1;
        Pass { st, r, c, total }
    }

    /// `D(f, g)` (zero-weight entries, with `-inf` potentials, contribute nothing).
    fn dual(&self, f: &[f64], g: &[f64], total: f64) -> f64 {
        let dot = |w: &[T], x: &[f64]| -> f64 {
            w.iter().zip(x).filter(|(w, _)| w.as_f64() > 0.0).map(|(w, x)| w.as_f64() * x).sum::<f64>()
        };
        dot(self.p.a, f) + dot(self.p.b, g) - self.reg * total
    }
}

/// Sinkhorn–Newton–Sparse; see the module docs. `f0`, `g0` warm-start the potentials.
pub fn sinkhorn_sns<T: Real>(
    p: &Problem<'_, T>,
    opts: &SnsOptions,
    f0: Option<&[T]>,
    g0: Option<&[T]>,
    obs: &mut dyn Observer<T>,
) -> Result<SnsOutput<T>> {
    p.validate(opts.reg)?;
    if p.k != 1 {
        return Err(OptError::InvalidInput("the SNS solver takes one target histogram".into()));
    }
    if let Some(d) = opts.density {
        if !(d > 0.0 && d <= 1.0) {
            return Err(OptError::InvalidInput("density must be in (0, 1]".into()));
        }
    }
    let (n, m, reg) = (p.n, p.m, opts.reg);
    let mass: f64 = p.a.iter().map(|x| x.as_f64()).sum();

    // --- Sinkhorn stage -----------------------------------------------------------------
    let mut switch = Switch {
        inner: obs,
        fixed: opts.warmup,
        switch_err: opts.switch_tol * mass,
        reg,
        history: Vec::new(),
        switched: false,
    };
    let (mut f, mut g, mut plan, n_warm) = if opts.warmup == Some(0) {
        // Straight to Newton: row-minimum potentials (as the log solver starts), or x0.
        let f: Vec<f64> = match f0 {
            Some(f) => f.iter().map(|x| x.as_f64()).collect(),
            None => p.cost.chunks(m).map(|row| row.iter().fold(f64::INFINITY, |a, &x| a.min(x.as_f64()))).collect(),
        };
        let g: Vec<f64> = g0.map_or(vec![0.0; m], |g| g.iter().map(|x| x.as_f64()).collect());
        (f, g, crate::alloc::try_zeroed::<T>(crate::alloc::checked_len(n, m, "the plan")?, "the plan")?, 0)
    } else {
        let log_opts = LogOptions {
            reg,
            tol: opts.tol,
            maxiter: opts.maxiter,
            eps_scaling: opts.eps_scaling.then(EpsScaling::default),
            overrelax: opts.overrelax,
        };
        let out = sinkhorn_log(p, &log_opts, f0, g0, &mut switch)?;
        let done = match out.termination {
            Termination::Stopped => !switch.switched,
            _ => true,
        };
        if done {
            let nit = out.nit;
            return Ok(SnsOutput {
                plan: out.plan,
                f: out.f,
                g: out.g,
                nit,
                n_sinkhorn: nit,
                n_newton: 0,
                termination: out.termination,
                marginal_error: out.marginal_error,
                cost: out.cost,
                fun: out.fun,
                hessian_density: 0.0,
                cg_iterations: 0,
                line_search_evals: 0,
            });
        }
        let f = out.f.iter().map(|x| x.as_f64()).collect();
        let g = out.g.iter().map(|x| x.as_f64()).collect();
        (f, g, out.plan, out.nit)
    };
    let obs = switch.inner;
    // Zero weights: -inf potentials (their rows and columns of P are zero).
    for (fi, ai) in f.iter_mut().zip(p.a) {
        if ai.as_f64() == 0.0 {
            *fi = f64::NEG_INFINITY;
        }
    }
    for (gj, bj) in g.iter_mut().zip(p.b) {
        if bj.as_f64() == 0.0 {
            *gj = f64::NEG_INFINITY;
        }
    }

    // --- Newton stage -------------------------------------------------------------------
    let rb = row_block(n);
    let floor = 1e-7 * mass / (n * m) as f64;
    let partials =
        crate::alloc::try_zeroed(crate::alloc::checked_len(n.div_ceil(rb), m, "the column sums")?, "the column sums")?;
    let colsum = crate::alloc::try_zeroed(m, "the column sums")?;
    let mut w = Work { p, reg, rb, partials, colsum, passes: 0, floor };
    let select = match opts.density {
        Some(d) => Select::Exact(((d * (n * m) as f64).ceil() as usize).clamp(1, n * m)),
        // At least the paper's lambda = 2 / n of the (n + m)^2 Hessian entries (the n + m
        // diagonal ones and the kept plan entries twice: 3 n plan entries when n = m), and
        // enough to hold all but `1 - coverage` of the plan's mass.
        None => {
            let nm = (n + m) as f64;
            let min = ((2.0 / n.min(m) as f64 * nm * nm - nm) / 2.0).ceil() as usize;
            Select::Covering { min: min.clamp(1, n * m), coverage: 1.0 - 1e-5, relative: RELATIVE }
        }
    };
    let a: Vec<f64> = p.a.iter().map(|x| x.as_f64()).collect();
    let b: Vec<f64> = p.b.iter().map(|x| x.as_f64()).collect();
    let mut cur = w.pass(&f, &g, &mut plan);
    let (mut n_sinkhorn, mut n_newton, mut cg_total) = (n_warm, 0usize, 0usize);
    let mut newton = NewtonControl::new();
    let mut density = 0.0;
    let cg_max = opts.cg_maxiter.max(1);

    let finish =
        |plan: Vec<T>, f: &[f64], g: &[f64], cur: &Pass, nit, termination, n_sinkhorn, n_newton, density, cg, evals| {
            SnsOutput {
                plan,
                f: f.iter().map(|&x| T::from_f64(x)).collect(),
                g: g.iter().map(|&x| T::from_f64(x)).collect(),
                nit,
                n_sinkhorn,
                n_newton,
                termination,
                marginal_error: cur.st.err(),
                cost: cur.st.cost,
                fun: cur.st.cost + reg * cur.st.plogp,
                hessian_density: density,
                cg_iterations: cg,
                line_search_evals: evals,
            }
        };

    loop {
        let nit = n_sinkhorn + n_newton;
        let err = cur.st.err();
        if !err.is_finite() {
            return Err(OptError::Numerical(format!(
                "the plan has non-finite entries at iteration {nit} (reg = {reg:e}): M / reg overflows \
                 the floating-point range; rescale M and reg together"
            )));
        }
        if err <= opts.tol {
            return Ok(finish(
                plan,
                &f,
                &g,
                &cur,
                nit,
                Termination::Converged,
                n_sinkhorn,
                n_newton,
                density,
                cg_total,
                w.passes,
            ));
        }
        if nit >= opts.maxiter {
            return Ok(finish(
                plan,
                &f,
                &g,
                &cur,
                nit,
                Termination::MaxIter,
                n_sinkhorn,
                n_newton,
                density,
                cg_total,
                w.passes,
            ));
        }
        if newton.stalled(nit, err) {
            let t = Termination::Numerical(newton.detail(opts.tol, T::NAME));
            return Ok(finish(plan, &f, &g, &cur, nit, t, n_sinkhorn, n_newton, density, cg_total, w.passes));
        }
        // The Sinkhorn stage's last iteration has been observed already.
        let control = if n_warm > 0 && nit == n_warm {
            Control::Continue
        } else {
            obs.observe(nit, &|| Report {
                nit,
                error: err,
                vectors: vec![
                    ("f", f.iter().map(|&x| T::from_f64(x)).collect()),
                    ("g", g.iter().map(|&x| T::from_f64(x)).collect()),
                ],
                scalars: vec![("reg", reg), ("n_newton", n_newton as f64), ("hessian_density", density)],
            })
        };
        match control {
            Control::Continue => {}
            Control::Stop => {
                return Ok(finish(
                    plan,
                    &f,
                    &g,
                    &cur,
                    nit,
                    Termination::Stopped,
                    n_sinkhorn,
                    n_newton,
                    density,
                    cg_total,
                    w.passes,
                ));
            }
            Control::Abort => {
                return Ok(SnsOutput {
                    plan: Vec::new(),
                    f: Vec::new(),
                    g: Vec::new(),
                    nit,
                    n_sinkhorn,
                    n_newton,
                    termination: Termination::Aborted,
                    marginal_error: f64::NAN,
                    cost: f64::NAN,
                    fun: f64::NAN,
                    hessian_density: density,
                    cg_iterations: cg_total,
                    line_search_evals: w.passes,
                })
            }
        }

        // Gradient (marginal residuals) on the active rows and columns.
        let ga: Vec<f64> = (0..n).map(|i| if a[i] > 0.0 { a[i] - cur.r[i] } else { 0.0 }).collect();
        let gb: Vec<f64> = (0..m).map(|j| if b[j] > 0.0 { b[j] - cur.c[j] } else { 0.0 }).collect();
        let gnorm = (ga.iter().chain(&gb).map(|x| x * x).sum::<f64>()).sqrt();
        let shift = newton.mu * gnorm;

        // Sparsified off-diagonal block; exact diagonals.
        let ps = sparsify(&plan, m, w.floor, &cur.r, &cur.c, select);
        density = ps.data.len() as f64 / (n * m) as f64;
        // Preconditioned CG (inexact Newton: relative tolerance min(0.1, sqrt(err / mass))).
        let cg_rtol = NewtonControl::cg_rtol(err, mass);
        let (dfp, dgp, its) = newton_direction(
            &NewtonSystem { ps: &ps, a: &a, b: &b, r: &cur.r, c: &cur.c, ga: &ga, gb: &gb, shift },
            cg_rtol,
            cg_max,
        );
        cg_total += its;
        let (mut tn, mut tm) = (vec![0.0; n], vec![0.0; m]);
        // Slope grad . d' and the model's predicted increase reg (grad.d' - d'^T H_s d' / 2).
        let slope: f64 = ga.iter().zip(&dfp).chain(gb.iter().zip(&dgp)).map(|(a, b)| a * b).sum();
        ps.mul(&dgp, &mut tn);
        ps.mul_t(&dfp, &mut tm);
        let quad: f64 = (0..n).map(|i| dfp[i] * (cur.r[i] * dfp[i] + tn[i])).sum::<f64>()
            + (0..m).map(|j| dgp[j] * (cur.c[j] * dgp[j] + tm[j])).sum::<f64>();
        let pred = reg * (slope - 0.5 * quad);

        // Backtracking line search on D along reg * d'.
        let d0 = w.dual(&f, &g, cur.total);
        let scale = a
            .iter()
            .zip(&f)
            .chain(b.iter().zip(&g))
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, x)| (w * x).abs())
            .sum::<f64>()
            + reg * cur.total;
        let search = LineSearch { reg, slope, d0, scale, err };
        let mut accepted = None;
        if search.ascent() {
            for alpha in LineSearch::STEPS {
                let step = alpha * reg;
                let ft: Vec<f64> = f.iter().zip(&dfp).map(|(x, d)| x + step * d).collect();
                let gt: Vec<f64> = g.iter().zip(&dgp).map(|(x, d)| x + step * d).collect();
                let trial = w.pass(&ft, &gt, &mut plan);
                let d1 = w.dual(&ft, &gt, trial.total);
                if search.accepts(alpha, d1, trial.st.err()) {
                    accepted = Some((alpha, ft, gt, trial, d1));
                    break;
                }
            }
        }
        match accepted {
            Some((alpha, ft, gt, trial, d1)) => {
                newton.accepted(alpha, d1 - d0, pred);
                f = ft;
                g = gt;
                cur = trial;
                n_newton += 1;
            }
            None => {
                // No step length increases D: one exact (log-sum-exp) Sinkhorn iteration.
                newton.rejected();
                let ft: Vec<T> = f.iter().map(|&x| T::from_f64(x)).collect();
                let gt: Vec<T> = g.iter().map(|&x| T::from_f64(x)).collect();
                let mut lw = LogWork::new(n, m, Some(&ft), Some(&gt))?;
                lw.iterate(p, reg, true);
                f = lw.f.iter().map(|x| x.as_f64()).collect();
                g = lw.g.iter().map(|x| x.as_f64()).collect();
                cur = w.pass(&f, &g, &mut plan);
                n_sinkhorn += 1;
            }
        }
    }
}
