//! Dense Sinkhorn on the CPU: log-domain (with optional ε-scaling) and scaling (u/v) forms.
//!
//! # The fused log-domain pass
//!
//! With `P(f, g)_ij = exp((f_i + g_j - M_ij)/reg)`, one Sinkhorn iteration sets
//! `f_i <- f_i + reg ln(a_i / r_i)` (`r = P 1`) and then `g_j <- g_j + reg ln(b_j / c_j)`
//! (`c = P^T 1` of the plan after the f-update). Row `i` of the updated plan is row `i` of the
//! old one times `a_i / r_i`, so both updates need **one read of M and one `exp` per entry**:
//! each row is exponentiated once, summed, rescaled and added into the column sums while it is
//! still in cache ([`kernels::run::log_rows`]). After a g-update every plan entry is at most
//! `b_j`, so the exponents are never positive and cannot overflow; a row (or column) sum that
//! leaves the trusted range (underflow at tiny `reg`) is recomputed with the exact max-shifted
//! log-sum-exp. The first pass of a run is always exact (arbitrary warm starts).
//!
//! # What the tolerance means
//!
//! The row pass measures `sum_i |r_i - a_i|` of the current plan for free (its columns are exact
//! up to rounding after the previous g-update). When that estimate drops below `tol` the plan is
//! materialised and both marginal errors are measured on it, in f64; only then is the run
//! reported converged, so `marginal_error <= tol` holds for the plan that is returned.

use super::kernels::{run, LogBlock, PlanSums};
use crate::error::{OptError, Result};
use crate::parallel::row_block;
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};
use rayon::prelude::*;

/// A dense problem: `a` (n), `b` (`k` histograms of length m, histogram-major), `cost` (n x m).
#[derive(Clone, Copy)]
pub struct Problem<'a, T> {
    pub a: &'a [T],
    pub b: &'a [T],
    pub cost: &'a [T],
    pub n: usize,
    pub m: usize,
    pub k: usize,
}

impl<'a, T: Real> Problem<'a, T> {
    /// One target histogram.
    pub fn new(a: &'a [T], b: &'a [T], cost: &'a [T]) -> Self {
        Problem { a, b, cost, n: a.len(), m: b.len(), k: 1 }
    }

    /// Checks what the algorithms rely on (the Python API checks the same with nicer messages).
    pub fn validate(&self, reg: f64) -> Result<()> {
        let bad = |s: &str| Err(OptError::InvalidInput(s.to_string()));
        if self.n == 0 || self.m == 0 || self.k == 0 {
            return bad("empty problem");
        }
        if self.a.len() != self.n || self.b.len() != self.k * self.m || self.cost.len() != self.n * self.m {
            return bad("inconsistent shapes of a, b and M");
        }
        if !(reg > 0.0 && reg.is_finite()) {
            return bad("reg must be positive and finite");
        }
        let weights_ok = |w: &[T]| w.iter().all(|&x| x.is_finite() && x >= T::zero());
        if !weights_ok(self.a) || !weights_ok(self.b) {
            return bad("weights must be finite and non-negative");
        }
        if !self.cost.iter().all(|x| x.is_finite()) {
            return bad("M must be finite");
        }
        let ma: f64 = self.a.iter().map(|x| x.as_f64()).sum();
        if ma <= 0.0 {
            return bad("a has zero total mass");
        }
        for h in 0..self.k {
            let mb: f64 = self.b[h * self.m..(h + 1) * self.m].iter().map(|x| x.as_f64()).sum();
            if mb <= 0.0 || ((ma - mb) / ma).abs() > 1e-6 {
                return bad("a and b must have the same (positive) total mass");
            }
        }
        Ok(())
    }
}

/// ε-scaling: solve at `eps0, eps0*decay, eps0*decay^2, ...` down to `reg`, each stage
/// warm-started from the previous one's potentials and run until its marginal error is below
/// `stage_tol` or for `stage_maxiter` iterations.
#[derive(Clone, Debug)]
pub struct EpsScaling {
    /// Initial regularisation (`None`: the range `max(M) - min(M)`).
    pub eps0: Option<f64>,
    pub decay: f64,
    pub stage_tol: f64,
    pub stage_maxiter: usize,
}

impl Default for EpsScaling {
    fn default() -> Self {
        EpsScaling { eps0: None, decay: 0.5, stage_tol: 1e-3, stage_maxiter: 100 }
    }
}

#[derive(Clone, Debug)]
pub struct LogOptions {
    pub reg: f64,
    /// Bound on `||P 1 - a||_1 + ||P^T 1 - b||_1` of the returned plan.
    pub tol: f64,
    pub maxiter: usize,
    pub eps_scaling: Option<EpsScaling>,
}

/// Result of one solve. `plan` is empty when the run was aborted.
#[derive(Debug)]
pub struct SinkhornOutput<T> {
    pub plan: Vec<T>,
    pub f: Vec<T>,
    pub g: Vec<T>,
    pub nit: usize,
    pub termination: Termination,
    /// L1 marginal error measured on `plan`.
    pub marginal_error: f64,
    /// `<P, M>`.
    pub cost: f64,
    /// `<P, M> + reg sum P ln P`.
    pub fun: f64,
    /// Number of ε stages run (1 without ε-scaling).
    pub stages: usize,
}

/// Sum of `nb` block partials of length `m`, in block order (deterministic).
fn reduce_blocks(partials: &[f64], m: usize, out: &mut [f64]) {
    let nb = partials.len() / m;
    out.par_chunks_mut(1024).enumerate().for_each(|(c, chunk)| {
        for (l, o) in chunk.iter_mut().enumerate() {
            let j = c * 1024 + l;
            let mut s = 0.0;
            for b in 0..nb {
                s += partials[b * m + j];
            }
            *o = s;
        }
    });
}

/// Buffers of the log-domain iteration (allocated once per solve; O(n + 64 m)).
struct LogWork<T> {
    n: usize,
    m: usize,
    rb: usize,
    f: Vec<T>,
    g: Vec<T>,
    f_new: Vec<T>,
    gs: Vec<T>,
    fs: Vec<T>,
    tmp: Vec<T>,
    partials: Vec<f64>,
    colsum: Vec<f64>,
}

impl<T: Real> LogWork<T> {
    fn new(n: usize, m: usize, f0: Option<&[T]>, g0: Option<&[T]>) -> Self {
        let rb = row_block(n);
        let nb = n.div_ceil(rb);
        LogWork {
            n,
            m,
            rb,
            f: f0.map_or_else(|| vec![T::zero(); n], <[T]>::to_vec),
            g: g0.map_or_else(|| vec![T::zero(); m], <[T]>::to_vec),
            f_new: vec![T::zero(); n],
            gs: vec![T::zero(); m],
            fs: vec![T::zero(); n],
            tmp: vec![T::zero(); nb * m],
            partials: vec![0.0; nb * m],
            colsum: vec![0.0; m],
        }
    }

    fn scale_g(&mut self, reg: f64) {
        let inv = 1.0 / reg;
        for (s, &g) in self.gs.iter_mut().zip(&self.g) {
            *s = T::from_f64(g.as_f64() * inv);
        }
    }

    /// The fused pass: returns the row-marginal error of `P(f, g)`, leaves the f-update in
    /// `f_new` and the column sums of `P(f_new, g)` in `colsum`.
    fn pass(&mut self, p: &Problem<'_, T>, reg: f64, exact: bool) -> f64 {
        self.scale_g(reg);
        let (m, rb) = (self.m, self.rb);
        let gs = &self.gs;
        let errs: Vec<f64> = p
            .cost
            .par_chunks(rb * m)
            .zip(p.a.par_chunks(rb))
            .zip(self.f.par_chunks(rb))
            .zip(self.f_new.par_chunks_mut(rb))
            .zip(self.tmp.par_chunks_mut(m))
            .zip(self.partials.par_chunks_mut(m))
            .map(|(((((mrows, a), f), f_new), tmp), acc)| {
                run::log_rows(&LogBlock { mrows, a, f, gs, reg }, exact, f_new, tmp, acc)
            })
            .collect();
        reduce_blocks(&self.partials, m, &mut self.colsum);
        errs.iter().sum()
    }

    /// Accepts `f_new` and updates `g` from `colsum` (exactly where a sum is untrustworthy).
    fn accept(&mut self, p: &Problem<'_, T>, reg: f64) {
        std::mem::swap(&mut self.f, &mut self.f_new);
        let mut bad = false;
        for ((g, &b), &s) in self.g.iter_mut().zip(p.b).zip(&self.colsum) {
            let bj = b.as_f64();
            if bj == 0.0 {
                *g = T::neg_infinity();
            } else if s >= T::SAFE_LO && s <= T::SAFE_HI && g.is_finite() {
                *g = T::from_f64(g.as_f64() + reg * (bj / s).ln());
            } else {
                bad = true;
            }
        }
        if bad {
            self.exact_g(p, reg);
        }
    }

    /// `g_j = reg (ln b_j - LSE_i((f_i - M_ij)/reg))` for every column, in two row-wise passes.
    fn exact_g(&mut self, p: &Problem<'_, T>, reg: f64) {
        let (m, rb) = (self.m, self.rb);
        let inv = 1.0 / reg;
        let ninv = T::from_f64(-inv);
        for (s, &f) in self.fs.iter_mut().zip(&self.f) {
            *s = T::from_f64(f.as_f64() * inv);
        }
        let fs = &self.fs;
        p.cost.par_chunks(rb * m).zip(fs.par_chunks(rb)).zip(self.tmp.par_chunks_mut(m)).for_each(
            |((mrows, fsb), cm)| run::col_max(mrows, fsb, ninv, cm),
        );
        // Column maxima over blocks (max is order-independent), negated into gs.
        let tmp = &self.tmp;
        self.gs.par_iter_mut().enumerate().for_each(|(j, x)| {
            let mx = tmp.chunks_exact(m).fold(T::neg_infinity(), |acc, c| if c[j] > acc { c[j] } else { acc });
            *x = -mx;
        });
        let gs = &self.gs;
        p.cost
            .par_chunks(rb * m)
            .zip(fs.par_chunks(rb))
            .zip(self.tmp.par_chunks_mut(m))
            .zip(self.partials.par_chunks_mut(m))
            .for_each(|(((mrows, fsb), tmp), acc)| run::col_sum(mrows, fsb, gs, ninv, tmp, acc));
        reduce_blocks(&self.partials, m, &mut self.colsum);
        for (((g, &b), &s), &ng) in self.g.iter_mut().zip(p.b).zip(&self.colsum).zip(&self.gs) {
            let bj = b.as_f64();
            *g = if bj == 0.0 { T::neg_infinity() } else { T::from_f64(reg * (bj.ln() + ng.as_f64() - s.ln())) };
        }
    }

    /// Writes `P(f, g)` at `reg` into `plan` and measures it: (L1 marginal error, cost, sum P ln P).
    fn materialize(&mut self, p: &Problem<'_, T>, reg: f64, plan: &mut Vec<T>) -> (f64, f64, f64) {
        plan.resize(self.n * self.m, T::zero());
        materialize(p.a, p.b, p.cost, &self.f, &self.g, reg, plan, &mut self.partials, &mut self.colsum, self.rb)
    }
}

/// Shared by both methods: `plan = P(f, g)` and its marginal error (rows + columns, f64), cost
/// and `sum P ln P`.
#[allow(clippy::too_many_arguments)]
fn materialize<T: Real>(
    a: &[T],
    b: &[T],
    cost: &[T],
    f: &[T],
    g: &[T],
    reg: f64,
    plan: &mut [T],
    partials: &mut [f64],
    colsum: &mut [f64],
    rb: usize,
) -> (f64, f64, f64) {
    let m = b.len();
    let inv = 1.0 / reg;
    let gs: Vec<T> = g.iter().map(|&x| T::from_f64(x.as_f64() * inv)).collect();
    let sums: Vec<PlanSums> = cost
        .par_chunks(rb * m)
        .zip(a.par_chunks(rb))
        .zip(f.par_chunks(rb))
        .zip(plan.par_chunks_mut(rb * m))
        .zip(partials.par_chunks_mut(m))
        .map(|((((mrows, a), f), out), acc)| run::plan_rows(&LogBlock { mrows, a, f, gs: &gs, reg }, out, acc))
        .collect();
    reduce_blocks(partials, m, colsum);
    let col_err: f64 = colsum.iter().zip(b).map(|(&s, &bj)| (s - bj.as_f64()).abs()).sum();
    let (mut row_err, mut c, mut e) = (0.0, 0.0, 0.0);
    for s in &sums {
        row_err += s.row_err;
        c += s.cost;
        e += s.plogp;
    }
    (row_err + col_err, c, e)
}

fn cost_range<T: Real>(cost: &[T]) -> f64 {
    let (lo, hi) = cost
        .par_chunks(1 << 16)
        .map(|c| c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x.as_f64()), hi.max(x.as_f64()))))
        .reduce(|| (f64::INFINITY, f64::NEG_INFINITY), |(a, b), (c, d)| (a.min(c), b.max(d)));
    hi - lo
}

/// The regularisations of an ε-scaling schedule, ending with `reg`.
pub fn eps_schedule(reg: f64, es: &EpsScaling, range: f64) -> Vec<f64> {
    let eps0 = es.eps0.unwrap_or(range);
    let mut out = Vec::new();
    if es.decay > 0.0 && es.decay < 1.0 {
        let mut e = eps0;
        while e > reg && out.len() < 200 {
            out.push(e);
            e *= es.decay;
        }
    }
    out.push(reg);
    out
}

/// Log-domain Sinkhorn (ε-scaling when `opts.eps_scaling` is set). `f0`, `g0` warm-start the
/// potentials (units of M). Runs on the current rayon pool (see [`crate::parallel`]).
pub fn sinkhorn_log<T: Real>(
    p: &Problem<'_, T>,
    opts: &LogOptions,
    f0: Option<&[T]>,
    g0: Option<&[T]>,
    obs: &mut dyn Observer<T>,
) -> Result<SinkhornOutput<T>> {
    p.validate(opts.reg)?;
    if p.k != 1 {
        return Err(OptError::InvalidInput("the log-domain solver takes one target histogram".into()));
    }
    if f0.is_some_and(|f| f.len() != p.n) || g0.is_some_and(|g| g.len() != p.m) {
        return Err(OptError::InvalidInput("warm-start potentials have the wrong length".into()));
    }
    let reg = opts.reg;
    let stages = match &opts.eps_scaling {
        Some(es) => eps_schedule(reg, es, cost_range(p.cost)),
        None => vec![reg],
    };
    let (stage_tol, stage_maxiter) =
        opts.eps_scaling.as_ref().map_or((0.0, usize::MAX), |es| (es.stage_tol, es.stage_maxiter.max(1)));
    let mut w = LogWork::new(p.n, p.m, f0, g0);
    let mut plan: Vec<T> = Vec::new();
    let mut nit = 0usize;
    let mut exact = true;
    let nstages = stages.len();
    let finish = |w: &mut LogWork<T>, plan: &mut Vec<T>, nit, termination, stage| {
        let (err, cost, plogp) = w.materialize(p, reg, plan);
        SinkhornOutput {
            plan: std::mem::take(plan),
            f: std::mem::take(&mut w.f),
            g: std::mem::take(&mut w.g),
            nit,
            termination,
            marginal_error: err,
            cost,
            fun: cost + reg * plogp,
            stages: stage,
        }
    };
    for (si, &eps) in stages.iter().enumerate() {
        let last = si + 1 == nstages;
        let mut stage_it = 0usize;
        let mut confirm = opts.tol;
        loop {
            let err = w.pass(p, eps, exact);
            exact = false;
            if last && err <= confirm {
                let (measured, cost, plogp) = w.materialize(p, reg, &mut plan);
                if measured <= opts.tol {
                    return Ok(SinkhornOutput {
                        plan,
                        f: w.f,
                        g: w.g,
                        nit,
                        termination: Termination::Converged,
                        marginal_error: measured,
                        cost,
                        fun: cost + reg * plogp,
                        stages: si + 1,
                    });
                }
                // Rounding keeps the measured error above the estimate: ask for more.
                confirm = err * 0.5;
            }
            if nit >= opts.maxiter {
                return Ok(finish(&mut w, &mut plan, nit, Termination::MaxIter, si + 1));
            }
            if nit > 0 {
                let control = {
                    let vectors = [("f", &w.f[..]), ("g", &w.g[..])];
                    let scalars = [("reg", eps)];
                    obs.observe(nit, &|| Report { nit, error: err, vectors: &vectors, scalars: &scalars })
                };
                match control {
                    Control::Continue => {}
                    Control::Stop => return Ok(finish(&mut w, &mut plan, nit, Termination::Stopped, si + 1)),
                    Control::Abort => return Ok(aborted(nit)),
                }
            }
            w.accept(p, eps);
            nit += 1;
            stage_it += 1;
            if !last && (err <= stage_tol || stage_it >= stage_maxiter) {
                break;
            }
        }
    }
    unreachable!("the last stage only ends by returning")
}

fn aborted<T>(nit: usize) -> SinkhornOutput<T> {
    SinkhornOutput {
        plan: Vec::new(),
        f: Vec::new(),
        g: Vec::new(),
        nit,
        termination: Termination::Aborted,
        marginal_error: f64::NAN,
        cost: f64::NAN,
        fun: f64::NAN,
        stages: 0,
    }
}

/// Result of the scaling solver with `k` histograms: `plan` is `(k, n, m)`, `f` `(k, n)`,
/// `g` `(k, m)`, and one error/cost/objective per histogram.
#[derive(Debug)]
pub struct ScalingOutput<T> {
    pub plan: Vec<T>,
    pub f: Vec<T>,
    pub g: Vec<T>,
    pub nit: usize,
    pub termination: Termination,
    pub marginal_error: Vec<f64>,
    pub cost: Vec<f64>,
    pub fun: Vec<f64>,
}

/// Classic Sinkhorn–Knopp on `K = exp(-M/reg)` with `k` target histograms sharing `a`.
/// Stops with `Termination::Numerical` (and the last finite iterate) when `K v` or `K^T u`
/// under- or overflows. `f0` is `(k, n)`, `g0` `(k, m)`.
pub fn sinkhorn_scaling<T: Real>(
    p: &Problem<'_, T>,
    reg: f64,
    tol: f64,
    maxiter: usize,
    f0: Option<&[T]>,
    g0: Option<&[T]>,
    obs: &mut dyn Observer<T>,
) -> Result<ScalingOutput<T>> {
    p.validate(reg)?;
    let (n, m, k) = (p.n, p.m, p.k);
    if f0.is_some_and(|f| f.len() != k * n) || g0.is_some_and(|g| g.len() != k * m) {
        return Err(OptError::InvalidInput("warm-start potentials have the wrong length".into()));
    }
    let inv = 1.0 / reg;
    let ninv = T::from_f64(-inv);
    let rb = row_block(n).max(n.div_ceil((256 / k).max(2)));
    let nb = n.div_ceil(rb);
    // u in (row, histogram) layout so that row blocks are contiguous; v is (histogram, column).
    let mut u: Vec<T> = match f0 {
        Some(f) => (0..n * k).map(|idx| T::from_f64((f[(idx % k) * n + idx / k].as_f64() * inv).exp())).collect(),
        None => vec![T::one(); n * k],
    };
    let mut v: Vec<T> = match g0 {
        Some(g) => g.iter().map(|&x| T::from_f64((x.as_f64() * inv).exp())).collect(),
        None => vec![T::one(); k * m],
    };
    let mut u_new = vec![T::zero(); n * k];
    let mut kmat = vec![T::zero(); n * m];
    let gibbs = |kmat: &mut Vec<T>| {
        p.cost.par_chunks(1 << 14).zip(kmat.par_chunks_mut(1 << 14)).for_each(|(c, o)| run::gibbs(c, ninv, o));
    };
    gibbs(&mut kmat);
    let mut k_valid = true;
    let mut partials = vec![0.0f64; nb * k * m];
    let mut errs = vec![0.0f64; nb * k];
    let mut colsum = vec![0.0f64; k * m];
    let mut confirm = tol;
    let mut nit = 0usize;
    let potentials = |u: &[T], v: &[T]| -> (Vec<T>, Vec<T>) {
        let f = (0..k * n).map(|idx| T::from_f64(reg * u[(idx % n) * k + idx / n].as_f64().ln())).collect();
        let g = v.iter().map(|&x| T::from_f64(reg * x.as_f64().ln())).collect();
        (f, g)
    };
    // Plans for all histograms from (u, v), measured; for k = 1 the plan reuses K's buffer.
    let measure = |u: &[T], v: &[T], kmat: &mut Vec<T>| -> (Vec<T>, Vec<T>, Vec<T>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let (f, g) = potentials(u, v);
        let mut plans = if k == 1 { std::mem::take(kmat) } else { vec![T::zero(); k * n * m] };
        let mut part = vec![0.0; n.div_ceil(row_block(n)) * m];
        let mut cs = vec![0.0; m];
        let (mut e, mut c, mut fun) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        for (h, plan) in plans.chunks_exact_mut(n * m).enumerate() {
            let (err, cost, plogp) = materialize(
                p.a,
                &p.b[h * m..(h + 1) * m],
                p.cost,
                &f[h * n..(h + 1) * n],
                &g[h * m..(h + 1) * m],
                reg,
                plan,
                &mut part,
                &mut cs,
                row_block(n),
            );
            e[h] = err;
            c[h] = cost;
            fun[h] = cost + reg * plogp;
        }
        (plans, f, g, e, c, fun)
    };
    let out = |(plan, f, g, e, c, fun): (Vec<T>, Vec<T>, Vec<T>, Vec<f64>, Vec<f64>, Vec<f64>), nit, termination| {
        ScalingOutput { plan, f, g, nit, termination, marginal_error: e, cost: c, fun }
    };
    loop {
        if !k_valid {
            kmat.resize(n * m, T::zero());
            gibbs(&mut kmat);
            k_valid = true;
        }
        let oks: Vec<bool> = kmat
            .par_chunks(rb * m)
            .zip(p.a.par_chunks(rb))
            .zip(u.par_chunks(rb * k))
            .zip(u_new.par_chunks_mut(rb * k))
            .zip(partials.par_chunks_mut(k * m))
            .zip(errs.par_chunks_mut(k))
            .map(|(((((kr, a), ub), unb), acc), e)| run::scaling_rows(kr, a, &v, ub, unb, acc, e))
            .collect();
        let err = (0..k).map(|h| (0..nb).map(|b| errs[b * k + h]).sum::<f64>()).fold(0.0, f64::max);
        if !oks.iter().all(|&x| x) {
            let msg = format!(
                "numerical underflow/overflow at iteration {nit}: K v has zero or non-finite entries \
                 (K = exp(-M/reg) with reg = {reg:e} is too small for method='scaling'); \
                 use method='log' or a larger reg"
            );
            return Ok(out(measure(&u, &v, &mut kmat), nit, Termination::Numerical(msg)));
        }
        if err <= confirm && nit > 0 {
            let measured = measure(&u, &v, &mut kmat);
            if measured.3.iter().all(|&e| e <= tol) {
                return Ok(out(measured, nit, Termination::Converged));
            }
            if k == 1 {
                kmat = measured.0;
                k_valid = false;
            }
            confirm = err * 0.5;
        }
        if nit >= maxiter {
            return Ok(out(measure(&u, &v, &mut kmat), nit, Termination::MaxIter));
        }
        if nit > 0 {
            let control = {
                let (f, g) = potentials(&u, &v);
                let vectors = [("f", &f[..]), ("g", &g[..])];
                obs.observe(nit, &|| Report { nit, error: err, vectors: &vectors, scalars: &[] })
            };
            match control {
                Control::Continue => {}
                Control::Stop => return Ok(out(measure(&u, &v, &mut kmat), nit, Termination::Stopped)),
                Control::Abort => {
                    return Ok(ScalingOutput {
                        plan: Vec::new(),
                        f: Vec::new(),
                        g: Vec::new(),
                        nit,
                        termination: Termination::Aborted,
                        marginal_error: vec![],
                        cost: vec![],
                        fun: vec![],
                    })
                }
            }
        }
        // Column update: v = b / (K^T u_new), blocks summed in order.
        reduce_blocks(&partials, k * m, &mut colsum);
        let mut v_new = v.clone();
        let mut ok = true;
        for ((vn, &b), &s) in v_new.iter_mut().zip(p.b).zip(&colsum) {
            let bj = b.as_f64();
            if bj == 0.0 {
                *vn = T::zero();
                continue;
            }
            let x = T::from_f64(bj / s);
            if !(s > 0.0 && s.is_finite() && x.is_finite() && x > T::zero()) {
                ok = false;
            }
            *vn = x;
        }
        if !ok {
            let msg = format!(
                "numerical underflow/overflow at iteration {nit}: K^T u has zero or non-finite entries \
                 (K = exp(-M/reg) with reg = {reg:e} is too small for method='scaling'); \
                 use method='log' or a larger reg"
            );
            return Ok(out(measure(&u, &v, &mut kmat), nit, Termination::Numerical(msg)));
        }
        std::mem::swap(&mut u, &mut u_new);
        v = v_new;
        nit += 1;
    }
}
