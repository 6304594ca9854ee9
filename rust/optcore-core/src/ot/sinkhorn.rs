//! Dense Sinkhorn on the CPU: the log-domain solver (optionally with ε-scaling); the classic
//! scaling (u/v) form and the fused scaling pass both use are in [`super::scaling`].
//!
//! # The log-domain solver
//!
//! The state is a pair of dual potentials `(f, g)` in the units of `M`, with the plan
//! `P(f, g)_ij = exp((f_i + g_j - M_ij)/reg)`. Iterations run in the *stabilised scaling*
//! form (Schmitzer 2019; POT's `sinkhorn_stabilized`): the current plan is stored as a kernel
//! `K = P(f, g)` and the updates are multiplicative scalings `diag(u) K diag(v)` of it, which
//! are the same updates as the log-domain ones (`f + reg ln u`, `g + reg ln v`) but need no
//! `exp`: one fused pass over `K` per iteration computes `K v`, the new `u`, and `K^T u` while
//! each row is in cache. Whenever a scaling leaves `[ABSORB_LO, ABSORB_HI]` it is *absorbed*
//! into the potentials and `K` is rebuilt from them (one `exp` per entry), so every stored
//! number stays in range whatever `reg` is. A sum that under- or overflows triggers one exact
//! log-domain iteration with the max-shifted log-sum-exp ([`LogWork`]) before the rebuild;
//! the first iteration of a run is always exact (arbitrary warm starts).
//!
//! Over-relaxation (`omega`, Thibault et al. 2017; Lehmann et al. 2021) replaces `u` by
//! `u^(1-omega) (a / K v)^omega`; with `Overrelax::Auto` the plain iteration runs first, its
//! observed linear rate `kappa` gives `omega = 2 / (1 + sqrt(1 - kappa))`, and the plain
//! iteration is restored if the error grows.
//!
//! # What the tolerance means
//!
//! Each pass measures the row-marginal error of the current plan for free and the column error
//! comes from the previous column update. When their sum drops below `tol` the plan is
//! materialised and both marginal errors are measured on it, in f64; only then is the run
//! reported converged, so `marginal_error <= tol` holds for the plan that is returned.

use super::controller::{eps_schedule, Controller};
pub use super::controller::{EpsScaling, Overrelax};
use super::kernels::{run, LogBlock, PlanSums};
use super::scaling::ScalingWork;
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
        // One parallel pass: min and max (NaN or inf shows in them).
        let (lo, hi) = self
            .cost
            .par_chunks(1 << 16)
            .map(|c| {
                c.iter().fold((f64::INFINITY, f64::NEG_INFINITY, true), |(l, h, ok), x| {
                    (l.min(x.as_f64()), h.max(x.as_f64()), ok && x.is_finite())
                })
            })
            .reduce(|| (f64::INFINITY, f64::NEG_INFINITY, true), |(a, b, c), (d, e, f)| (a.min(d), b.max(e), c && f))
            .pipe_finite()
            .ok_or_else(|| OptError::InvalidInput("M must be finite".into()))?;
        // Potentials and exponents are sums of terms of size |M| / reg: keep them far from
        // overflow (beyond sqrt(max) the arithmetic is meaningless anyway).
        let limit = T::max_value().as_f64().sqrt();
        if !((hi - lo) / reg <= limit && hi.abs().max(lo.abs()) / reg <= limit) {
            return bad("M / reg is too large for the floating-point type");
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

/// `(min, max, all finite)` to `Some((min, max))` when all finite.
trait PipeFinite {
    fn pipe_finite(self) -> Option<(f64, f64)>;
}
impl PipeFinite for (f64, f64, bool) {
    fn pipe_finite(self) -> Option<(f64, f64)> {
        self.2.then_some((self.0, self.1))
    }
}

#[derive(Clone, Debug)]
pub struct LogOptions {
    pub reg: f64,
    /// Bound on `||P 1 - a||_1 + ||P^T 1 - b||_1` of the returned plan.
    pub tol: f64,
    pub maxiter: usize,
    pub eps_scaling: Option<EpsScaling>,
    pub overrelax: Overrelax,
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
    /// Number of kernel rebuilds (absorptions) and exact log-sum-exp iterations.
    pub rebuilds: usize,
    pub exact_iterations: usize,
}

/// Sum of `nb` block partials of length `m`, in block order (deterministic).
pub(super) fn reduce_blocks(partials: &[f64], m: usize, out: &mut [f64]) {
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

/// What [`materialize`] measures on a plan.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PlanStats {
    pub(super) row_err: f64,
    pub(super) col_err: f64,
    pub(super) cost: f64,
    pub(super) plogp: f64,
}

impl PlanStats {
    pub(super) fn err(&self) -> f64 {
        self.row_err + self.col_err
    }
}

/// Scratch of [`materialize`]: per-block column partials and the column sums, for row
/// blocks of `rb` rows.
pub(super) struct PlanScratch<'s> {
    pub(super) partials: &'s mut [f64],
    pub(super) colsum: &'s mut [f64],
    pub(super) rb: usize,
}

/// `plan = P(f, g)` at `reg`, with its marginal errors (f64), cost and `sum P ln P`.
pub(super) fn materialize<T: Real>(
    p: &Problem<'_, T>,
    f: &[T],
    g: &[T],
    reg: f64,
    plan: &mut [T],
    scratch: PlanScratch<'_>,
) -> PlanStats {
    let (a, b, cost) = (p.a, p.b, p.cost);
    let PlanScratch { partials, colsum, rb } = scratch;
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
    let mut st = PlanStats {
        col_err: colsum.iter().zip(b).map(|(&s, &bj)| (s - bj.as_f64()).abs()).sum(),
        ..Default::default()
    };
    for s in &sums {
        st.row_err += s.row_err;
        st.cost += s.cost;
        st.plogp += s.plogp;
    }
    st
}

/// The exact log-domain iteration (max-shifted log-sum-exp where needed); owns the potentials.
pub(super) struct LogWork<T> {
    m: usize,
    rb: usize,
    pub(super) f: Vec<T>,
    pub(super) g: Vec<T>,
    f_new: Vec<T>,
    gs: Vec<T>,
    fs: Vec<T>,
    tmp: Vec<T>,
    partials: Vec<f64>,
    colsum: Vec<f64>,
}

impl<T: Real> LogWork<T> {
    /// The workspace, allocated fallibly (a `MemoryError`, never an abort, when it does not fit).
    pub(super) fn new(n: usize, m: usize, f0: Option<&[T]>, g0: Option<&[T]>) -> Result<Self> {
        use crate::alloc::{checked_len, try_zeroed};
        let rb = row_block(n);
        let nb = n.div_ceil(rb);
        let start = |x0: Option<&[T]>, len: usize| -> Result<Vec<T>> {
            let mut v = try_zeroed(len, "the potentials")?;
            if let Some(x0) = x0 {
                v.copy_from_slice(x0);
            }
            Ok(v)
        };
        let nbm = checked_len(nb, m, "the column sums")?;
        Ok(LogWork {
            m,
            rb,
            f: start(f0, n)?,
            g: start(g0, m)?,
            f_new: try_zeroed(n, "the potentials")?,
            gs: try_zeroed(m, "the potentials")?,
            fs: try_zeroed(n, "the potentials")?,
            tmp: try_zeroed(nbm, "the log-sum-exp rows")?,
            partials: try_zeroed(nbm, "the column sums")?,
            colsum: try_zeroed(m, "the column sums")?,
        })
    }

    /// One log-domain iteration `f <- reg (ln a - LSE_j((g_j - M_ij)/reg))`, then the same for
    /// `g`; exact (max-shifted) wherever a sum is untrustworthy, everywhere if `exact`.
    pub(super) fn iterate(&mut self, p: &Problem<'_, T>, reg: f64, exact: bool) {
        let (m, rb) = (self.m, self.rb);
        let inv = 1.0 / reg;
        for (s, &g) in self.gs.iter_mut().zip(&self.g) {
            *s = T::from_f64(g.as_f64() * inv);
        }
        let gs = &self.gs;
        p.cost
            .par_chunks(rb * m)
            .zip(p.a.par_chunks(rb))
            .zip(self.f.par_chunks(rb))
            .zip(self.f_new.par_chunks_mut(rb))
            .zip(self.tmp.par_chunks_mut(m))
            .zip(self.partials.par_chunks_mut(m))
            .for_each(|(((((mrows, a), f), f_new), tmp), acc)| {
                run::log_rows(&LogBlock { mrows, a, f, gs, reg }, exact, f_new, tmp, acc);
            });
        reduce_blocks(&self.partials, m, &mut self.colsum);
        std::mem::swap(&mut self.f, &mut self.f_new);
        let mut bad = exact;
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
        p.cost
            .par_chunks(rb * m)
            .zip(fs.par_chunks(rb))
            .zip(self.tmp.par_chunks_mut(m))
            .for_each(|((mrows, fsb), cm)| run::col_max(mrows, fsb, ninv, cm));
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
            // The largest term is exp(0) = 1; at a reg far below the cost's rounding the two
            // passes round the exponent differently, so a sum of 0 or inf means that term.
            let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
            *g = if bj == 0.0 { T::neg_infinity() } else { T::from_f64(reg * (bj.ln() + ng.as_f64() - s.ln())) };
        }
    }

    /// `plan = P(f, g)`, measured.
    fn materialize(&mut self, p: &Problem<'_, T>, reg: f64, plan: &mut [T]) -> PlanStats {
        materialize(
            p,
            &self.f,
            &self.g,
            reg,
            plan,
            PlanScratch { partials: &mut self.partials, colsum: &mut self.colsum, rb: self.rb },
        )
    }
}

fn cost_range<T: Real>(cost: &[T]) -> f64 {
    let (lo, hi) = cost
        .par_chunks(1 << 16)
        .map(|c| {
            c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x.as_f64()), hi.max(x.as_f64())))
        })
        .reduce(|| (f64::INFINITY, f64::NEG_INFINITY), |(a, b), (c, d)| (a.min(c), b.max(d)));
    hi - lo
}

pub(super) fn overflow_error(reg: f64) -> OptError {
    OptError::Numerical(format!(
        "the plan has non-finite entries: M / reg overflows the floating-point range \
         (reg = {reg:e}); rescale M (e.g. M / M.max()) and reg together"
    ))
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
    if let Overrelax::Fixed(w) = opts.overrelax {
        if !(1.0..2.0).contains(&w) {
            return Err(OptError::InvalidInput("the over-relaxation factor must be in [1, 2)".into()));
        }
    }
    let reg = opts.reg;
    // Warm-started potentials are already annealed: ε-scaling then runs only its last stage.
    let warm = f0.is_some() || g0.is_some();
    let stages = match &opts.eps_scaling {
        Some(es) if !warm => eps_schedule(reg, es, cost_range(p.cost)),
        _ => vec![reg],
    };
    let (stage_tol, stage_maxiter) =
        opts.eps_scaling.as_ref().map_or((0.0, usize::MAX), |es| (es.stage_tol, es.stage_maxiter.max(1)));
    // Scalings are absorbed into the potentials when they leave this range (f32: narrower, so
    // that kernel entries flushed to zero at a rebuild stay negligible after rescaling).
    let (absorb_lo, absorb_hi) = if T::SAFE_LO < 1e-100 { (1e-100, 1e100) } else { (1e-6, 1e6) };

    let (n, m) = (p.n, p.m);
    let mut lw = LogWork::new(n, m, f0, g0)?;
    let mut sw = ScalingWork::new(n, m, 1)?;
    let mut kmat = crate::alloc::try_zeroed::<T>(crate::alloc::checked_len(n, m, "the plan")?, "the plan")?;
    let mut ctl = Controller::new(opts.overrelax, stages.clone(), stage_tol, stage_maxiter);
    let (mut nit, mut rebuilds, mut exact_its) = (0usize, 0usize, 0usize);

    // Absorbs the scalings into the potentials.
    let absorb = |lw: &mut LogWork<T>, sw: &mut ScalingWork<T>, eps: f64| {
        let (f, g) = sw.absorbed(0, &lw.f, &lw.g, eps);
        lw.f = f;
        lw.g = g;
        sw.reset();
    };
    // The final plan: the scaled kernel at the target reg, else P(f, g) from the potentials.
    let finish = |lw: &mut LogWork<T>,
                  sw: &mut ScalingWork<T>,
                  eps: f64,
                  mut kmat: Vec<T>,
                  nit,
                  termination,
                  stage,
                  rebuilds,
                  exact| {
        let st = if eps == reg {
            let st = sw.scale_plan(p, &lw.f, &lw.g, eps, &mut kmat);
            absorb(lw, sw, eps);
            st
        } else {
            absorb(lw, sw, eps);
            lw.materialize(p, reg, &mut kmat)
        };
        if !st.err().is_finite() {
            return Err(overflow_error(reg));
        }
        Ok(SinkhornOutput {
            plan: kmat,
            f: std::mem::take(&mut lw.f),
            g: std::mem::take(&mut lw.g),
            nit,
            termination,
            marginal_error: st.err(),
            cost: st.cost,
            fun: st.cost + reg * st.plogp,
            stages: stage,
            rebuilds,
            exact_iterations: exact,
        })
    };

    if warm {
        // A warm start can be anything: one exact iteration makes it consistent.
        lw.iterate(p, stages[0], true);
        nit += 1;
        exact_its += 1;
    } else {
        // f_i = min_j M_ij, g = 0: every row of the first kernel has a largest entry of 1, so
        // no row sum underflows (a column that does triggers the exact recovery).
        p.cost.par_chunks(m).zip(lw.f.par_iter_mut()).for_each(|(row, f)| {
            *f = row.iter().fold(T::infinity(), |acc, &x| if x < acc { x } else { acc });
        });
    }

    for (si, &eps) in stages.iter().enumerate() {
        let last = si + 1 == stages.len();
        let mut stage_it = 0usize;
        let mut confirm = opts.tol;
        let mut confirm_fails = 0usize;
        ctl.begin_stage();
        // K = P(f, g) at this stage's reg; its column error is measured while building it.
        let mut col_err = lw.materialize(p, eps, &mut kmat).col_err;
        rebuilds += 1;
        loop {
            let omega = ctl.omega();
            let row_err = match sw.row_pass(&kmat, p.a, omega) {
                Some(e) => e[0],
                None => {
                    // A row sum left the trusted range: absorb, one exact iteration, rebuild.
                    absorb(&mut lw, &mut sw, eps);
                    lw.iterate(p, eps, false);
                    exact_its += 1;
                    rebuilds += 1;
                    let st = lw.materialize(p, eps, &mut kmat);
                    col_err = st.col_err;
                    ctl.back_off();
                    // The recovery is an iteration like any other: it counts toward maxiter,
                    // reaches the observer, and ends the run when its measured plan converges.
                    stage_it += 1;
                    let stage_over = !last && ctl.stage_over(st.err(), stage_it);
                    match recovered(&mut nit, st, last, stage_over, opts, &lw, eps, obs) {
                        AfterRecovery::Continue => continue,
                        AfterRecovery::NextStage => break,
                        AfterRecovery::End(Termination::Aborted) => return Ok(aborted(nit)),
                        AfterRecovery::End(t) => {
                            return finish(&mut lw, &mut sw, eps, kmat, nit, t, si + 1, rebuilds, exact_its)
                        }
                    }
                }
            };
            let err = row_err + col_err;
            if last && err <= confirm {
                // The plan is the scaled kernel (in place): its rounding is what the scalings
                // were fitted to, so its marginals are as accurate as the dtype allows.
                let st = sw.scale_plan(p, &lw.f, &lw.g, eps, &mut kmat);
                absorb(&mut lw, &mut sw, eps);
                if st.err() <= opts.tol {
                    return Ok(SinkhornOutput {
                        plan: kmat,
                        f: lw.f,
                        g: lw.g,
                        nit,
                        termination: Termination::Converged,
                        marginal_error: st.err(),
                        cost: st.cost,
                        fun: st.cost + reg * st.plogp,
                        stages: si + 1,
                        rebuilds,
                        exact_iterations: exact_its,
                    });
                }
                if !st.err().is_finite() {
                    return Err(overflow_error(reg));
                }
                // Rounding keeps the measured error above the estimate: ask for more (a few
                // times at most: then it is a precision floor). The materialised plan is the
                // current one, so it serves as the rebuilt kernel.
                confirm_fails += 1;
                if confirm_fails > 8 {
                    ctl.stall.best = ctl.stall.best.min(st.err());
                    let t = ctl.stall.termination::<T>(opts.tol);
                    return finish(&mut lw, &mut sw, eps, kmat, nit, t, si + 1, rebuilds, exact_its);
                }
                confirm = err.min(st.err()) * 0.5;
                col_err = st.col_err;
                rebuilds += 1;
                continue;
            }
            if nit >= opts.maxiter {
                return finish(&mut lw, &mut sw, eps, kmat, nit, Termination::MaxIter, si + 1, rebuilds, exact_its);
            }
            if last && ctl.stalled(nit, err) {
                let t = ctl.stall.termination::<T>(opts.tol);
                return finish(&mut lw, &mut sw, eps, kmat, nit, t, si + 1, rebuilds, exact_its);
            }
            // nit = 0: the initial potentials are not yet consistent with zero weights.
            let control = if nit == 0 {
                Control::Continue
            } else {
                obs.observe(nit, &|| {
                    let (f, g) = sw.absorbed(0, &lw.f, &lw.g, eps);
                    Report {
                        nit,
                        error: err,
                        vectors: vec![("f", f), ("g", g)],
                        scalars: vec![("reg", eps), ("omega", ctl.omega())],
                    }
                })
            };
            match control {
                Control::Continue => {}
                Control::Stop => {
                    return finish(&mut lw, &mut sw, eps, kmat, nit, Termination::Stopped, si + 1, rebuilds, exact_its);
                }
                Control::Abort => return Ok(aborted(nit)),
            }
            match sw.col_update(p.b, omega) {
                Some(e) => col_err = e[0],
                None => {
                    // Accept the row update, then recover exactly as above.
                    std::mem::swap(&mut sw.u, &mut sw.u_new);
                    absorb(&mut lw, &mut sw, eps);
                    lw.iterate(p, eps, false);
                    exact_its += 1;
                    rebuilds += 1;
                    let st = lw.materialize(p, eps, &mut kmat);
                    col_err = st.col_err;
                    ctl.back_off();
                    stage_it += 1;
                    let stage_over = !last && ctl.stage_over(st.err(), stage_it);
                    match recovered(&mut nit, st, last, stage_over, opts, &lw, eps, obs) {
                        AfterRecovery::Continue => continue,
                        AfterRecovery::NextStage => break,
                        AfterRecovery::End(Termination::Aborted) => return Ok(aborted(nit)),
                        AfterRecovery::End(t) => {
                            return finish(&mut lw, &mut sw, eps, kmat, nit, t, si + 1, rebuilds, exact_its)
                        }
                    }
                }
            }
            nit += 1;
            stage_it += 1;
            ctl.observe(err);
            if !last && ctl.stage_over(err, stage_it) {
                absorb(&mut lw, &mut sw, eps);
                break;
            }
            if sw.out_of_range(absorb_lo, absorb_hi) {
                absorb(&mut lw, &mut sw, eps);
                let st = lw.materialize(p, eps, &mut kmat);
                col_err = st.col_err;
                rebuilds += 1;
            }
        }
    }
    unreachable!("the last stage only ends by returning")
}

/// What follows an exact recovery iteration.
enum AfterRecovery {
    Continue,
    NextStage,
    /// The run ends (`Aborted`: the observer aborted it).
    End(Termination),
}

/// After an exact recovery iteration (the potentials in `lw` are absorbed, the kernel is
/// `P(f, g)` at `eps` and `st` its measurement): counts the iteration, and says how the run
/// goes on — converged when the measured plan of the last stage meets `tol`, at the iteration
/// limit, as the observer says, or on to the next ε stage when this one is over.
#[allow(clippy::too_many_arguments)] // the loop's state at a recovery, passed as is
fn recovered<T: Real>(
    nit: &mut usize,
    st: PlanStats,
    last: bool,
    stage_over: bool,
    opts: &LogOptions,
    lw: &LogWork<T>,
    eps: f64,
    obs: &mut dyn Observer<T>,
) -> AfterRecovery {
    *nit += 1;
    let k = *nit;
    let err = st.err();
    if last && err <= opts.tol {
        return AfterRecovery::End(Termination::Converged);
    }
    if *nit >= opts.maxiter {
        return AfterRecovery::End(Termination::MaxIter);
    }
    let control = obs.observe(k, &|| Report {
        nit: k,
        error: err,
        vectors: vec![("f", lw.f.clone()), ("g", lw.g.clone())],
        scalars: vec![("reg", eps)],
    });
    match control {
        Control::Continue if stage_over => AfterRecovery::NextStage,
        Control::Continue => AfterRecovery::Continue,
        Control::Stop => AfterRecovery::End(Termination::Stopped),
        Control::Abort => AfterRecovery::End(Termination::Aborted),
    }
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
        rebuilds: 0,
        exact_iterations: 0,
    }
}
