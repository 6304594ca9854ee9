//! The classic scaling (u/v) Sinkhorn solver, and the fused scaling pass ([`ScalingWork`]) it
//! shares with the log-domain solver, which runs it on the current plan as its kernel.

use super::controller::Stall;
use super::kernels::{run, LogBlock, PlanSums};
use super::sinkhorn::{materialize, overflow_error, reduce_blocks, PlanScratch, PlanStats, Problem};
use crate::error::{OptError, Result};
use crate::parallel::row_block;
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};
use rayon::prelude::*;

/// The fused scaling iteration on a stored kernel `K` with `k` histograms: `u` (row, h),
/// `v` (h, column). Shared by the log-domain solver (`K` = the current plan, `k = 1`) and
/// the classic scaling solver (`K = exp(-M/reg)`).
pub(super) struct ScalingWork<T> {
    n: usize,
    m: usize,
    k: usize,
    rb: usize,
    nb: usize,
    pub(super) u: Vec<T>,
    pub(super) u_new: Vec<T>,
    v: Vec<T>,
    v_new: Vec<T>,
    partials: Vec<f64>,
    errs: Vec<f64>,
    colsum: Vec<f64>,
    /// [`Self::scale_plan`]'s column partials (blocks of `row_block(n)` rows) and sums.
    plan_partials: Vec<f64>,
    plan_colsum: Vec<f64>,
}

impl<T: Real> ScalingWork<T> {
    /// The workspace, allocated fallibly (a `MemoryError`, never an abort, when it does not fit).
    pub(super) fn new(n: usize, m: usize, k: usize) -> Result<Self> {
        use crate::alloc::{checked_len, try_filled, try_zeroed};
        // Blocks depend on (n, k) only; partials stay under ~256 histogram-rows of length m.
        let rb = row_block(n).max(n.div_ceil((256 / k).max(2)));
        let nb = n.div_ceil(rb);
        let (nk, km) = (checked_len(n, k, "the scalings")?, checked_len(k, m, "the scalings")?);
        Ok(ScalingWork {
            n,
            m,
            k,
            rb,
            nb,
            u: try_filled(nk, T::one(), "the scalings")?,
            u_new: try_filled(nk, T::one(), "the scalings")?,
            v: try_filled(km, T::one(), "the scalings")?,
            v_new: try_filled(km, T::one(), "the scalings")?,
            partials: try_zeroed(checked_len(nb, km, "the column sums")?, "the column sums")?,
            errs: try_zeroed(checked_len(nb, k, "the marginal errors")?, "the marginal errors")?,
            colsum: try_zeroed(km, "the column sums")?,
            plan_partials: try_zeroed(checked_len(n.div_ceil(row_block(n)), m, "the column sums")?, "the column sums")?,
            plan_colsum: try_zeroed(m, "the column sums")?,
        })
    }

    pub(super) fn reset(&mut self) {
        self.u.iter_mut().for_each(|x| *x = T::one());
        self.v.iter_mut().for_each(|x| *x = T::one());
    }

    /// Row pass: per-histogram row-marginal errors of `diag(u) K diag(v)`, the new `u` in
    /// `u_new`, and `K^T u_new` in `colsum`. `None` on a breakdown.
    pub(super) fn row_pass(&mut self, kmat: &[T], a: &[T], omega: f64) -> Option<Vec<f64>> {
        let (m, k, rb, nb) = (self.m, self.k, self.rb, self.nb);
        let v = &self.v;
        let ok = kmat
            .par_chunks(rb * m)
            .zip(a.par_chunks(rb))
            .zip(self.u.par_chunks(rb * k))
            .zip(self.u_new.par_chunks_mut(rb * k))
            .zip(self.partials.par_chunks_mut(k * m))
            .zip(self.errs.par_chunks_mut(k))
            .map(|(((((kr, a), ub), unb), acc), e)| run::scaling_rows(kr, a, v, ub, unb, omega, acc, e))
            .collect::<Vec<bool>>()
            .iter()
            .all(|&x| x);
        if !ok {
            return None;
        }
        reduce_blocks(&self.partials, k * m, &mut self.colsum);
        Some((0..k).map(|h| (0..nb).map(|b| self.errs[b * k + h]).sum()).collect())
    }

    /// Column update `v = (b / K^T u_new)^omega v^(1-omega)`; accepts `u_new`. Returns the
    /// per-histogram column errors of the new plan, or `None` on a breakdown (nothing changed).
    pub(super) fn col_update(&mut self, b: &[T], omega: f64) -> Option<Vec<f64>> {
        let m = self.m;
        let mut errs = vec![0.0; self.k];
        for (idx, ((vn, &bj), &s)) in self.v_new.iter_mut().zip(b).zip(&self.colsum).enumerate() {
            let bj = bj.as_f64();
            if bj == 0.0 {
                *vn = T::zero();
                continue;
            }
            let vj = self.v[idx].as_f64();
            let x = if omega == 1.0 { bj / s } else { (bj / s).powf(omega) * vj.powf(1.0 - omega) };
            if !(s >= T::SAFE_LO && s <= T::SAFE_HI && T::from_f64(x).is_finite() && x > 0.0) {
                return None;
            }
            *vn = T::from_f64(x);
            errs[idx / m] += (s * vn.as_f64() - bj).abs();
        }
        std::mem::swap(&mut self.u, &mut self.u_new);
        std::mem::swap(&mut self.v, &mut self.v_new);
        Some(errs)
    }

    /// Potentials of histogram `h` shifted by `reg ln u`, `reg ln v` (`-inf` where zero).
    pub(super) fn absorbed(&self, h: usize, f: &[T], g: &[T], reg: f64) -> (Vec<T>, Vec<T>) {
        let (n, m, k) = (self.n, self.m, self.k);
        let fa = (0..n).map(|i| T::from_f64(f[i].as_f64() + reg * self.u[i * k + h].as_f64().ln())).collect();
        let ga = (0..m).map(|j| T::from_f64(g[j].as_f64() + reg * self.v[h * m + j].as_f64().ln())).collect();
        (fa, ga)
    }

    /// Turns the kernel into the plan `diag(u) K diag(v)` in place (histogram 0) and measures
    /// it; `f`, `g` are the kernel's potentials. Absorb the scalings afterwards.
    pub(super) fn scale_plan(&mut self, p: &Problem<'_, T>, f: &[T], g: &[T], reg: f64, kmat: &mut [T]) -> PlanStats {
        let (m, rb) = (self.m, row_block(self.n));
        let (fa, ga) = self.absorbed(0, f, g, reg);
        let inv = 1.0 / reg;
        let gs: Vec<T> = ga.iter().map(|&x| T::from_f64(x.as_f64() * inv)).collect();
        let (u, v) = (&self.u, &self.v);
        let partials = &mut self.plan_partials;
        partials.iter_mut().for_each(|x| *x = 0.0);
        let sums: Vec<PlanSums> = p
            .cost
            .par_chunks(rb * m)
            .zip(p.a.par_chunks(rb))
            .zip(fa.par_chunks(rb))
            .zip(u.par_chunks(rb))
            .zip(kmat.par_chunks_mut(rb * m))
            .zip(partials.par_chunks_mut(m))
            .map(|(((((mrows, a), f), ub), kr), acc)| {
                run::scaled_plan_rows(&LogBlock { mrows, a, f, gs: &gs, reg }, ub, v, kr, acc)
            })
            .collect();
        let colsum = &mut self.plan_colsum;
        reduce_blocks(partials, m, colsum);
        let mut st = PlanStats {
            col_err: colsum.iter().zip(p.b).map(|(&s, &bj)| (s - bj.as_f64()).abs()).sum(),
            ..Default::default()
        };
        for s in &sums {
            st.row_err += s.row_err;
            st.cost += s.cost;
            st.plogp += s.plogp;
        }
        st
    }

    pub(super) fn out_of_range(&self, lo: f64, hi: f64) -> bool {
        let bad = |x: &T| {
            let x = x.as_f64();
            x != 0.0 && !(lo..=hi).contains(&x)
        };
        self.u.iter().any(bad) || self.v.iter().any(bad)
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

/// Classic Sinkhorn–Knopp on `K = exp((min M - M)/reg)` with `k` target histograms sharing
/// `a` (the shift by `min M` makes it invariant to constants added to M; the potentials
/// include it).
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
    let cmin = p.cost.par_iter().map(|x| x.as_f64()).reduce(|| f64::INFINITY, f64::min);
    let shift = T::from_f64(cmin * inv);
    let mut sw = ScalingWork::new(n, m, k)?;
    if let Some(f) = f0 {
        for i in 0..n {
            for h in 0..k {
                sw.u[i * k + h] = T::from_f64(((f[h * n + i].as_f64() - cmin) * inv).exp());
            }
        }
    }
    if let Some(g) = g0 {
        for (v, &x) in sw.v.iter_mut().zip(g) {
            *v = T::from_f64((x.as_f64() * inv).exp());
        }
    }
    // The kernel's potentials: f = min M (the shift), g = 0.
    let base_f = vec![T::from_f64(cmin); n];
    let base_g = vec![T::zero(); m];
    let mut kmat = crate::alloc::try_zeroed::<T>(crate::alloc::checked_len(n, m, "the kernel")?, "the kernel")?;
    let gibbs = |kmat: &mut [T]| {
        p.cost.par_chunks(1 << 14).zip(kmat.par_chunks_mut(1 << 14)).for_each(|(c, o)| run::gibbs(c, ninv, shift, o));
    };
    gibbs(&mut kmat);
    let mut k_valid = true;
    let rb = row_block(n);
    // The plans of k > 1 histograms, allocated (fallibly) before the run.
    let spare = std::cell::RefCell::new(if k == 1 {
        Vec::new()
    } else {
        let len = crate::alloc::checked_len(crate::alloc::checked_len(k, n, "the plans")?, m, "the plans")?;
        crate::alloc::try_zeroed::<T>(len, "the plans")?
    });
    // The measurement's column partials and sums, allocated (fallibly) before the run.
    let scratch = std::cell::RefCell::new((
        crate::alloc::try_zeroed::<f64>(
            crate::alloc::checked_len(n.div_ceil(rb), m, "the column sums")?,
            "the column sums",
        )?,
        crate::alloc::try_zeroed::<f64>(m, "the column sums")?,
    ));
    // Plans of all histograms from (u, v), measured; for k = 1 the plan reuses K's buffer.
    let measure = |sw: &ScalingWork<T>, kmat: &mut Vec<T>, nit, termination| {
        let mut plans = if k == 1 { std::mem::take(kmat) } else { spare.take() };
        // Borrowed, not taken: a run may measure more than once (a breakdown's fallback).
        let mut sc = scratch.borrow_mut();
        let (part, cs) = &mut *sc;
        let (mut fs, mut gs) = (Vec::with_capacity(k * n), Vec::with_capacity(k * m));
        let (mut e, mut c, mut fun) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        for (h, plan) in plans.chunks_exact_mut(n * m).enumerate() {
            let (f, g) = sw.absorbed(h, &base_f, &base_g, reg);
            let ph = Problem::new(p.a, &p.b[h * m..(h + 1) * m], p.cost);
            let st = materialize(&ph, &f, &g, reg, plan, PlanScratch { partials: part, colsum: cs, rb });
            e[h] = st.err();
            c[h] = st.cost;
            fun[h] = st.cost + reg * st.plogp;
            fs.extend(f);
            gs.extend(g);
        }
        ScalingOutput { plan: plans, f: fs, g: gs, nit, termination, marginal_error: e, cost: c, fun }
    };
    let breakdown = |nit: usize, what: &str| {
        Termination::Numerical(format!(
            "numerical underflow/overflow at iteration {nit}: {what} left the floating-point range \
             (K = exp(-M/reg) with reg = {reg:e} is too small for method='scaling'); \
             use method='log' or a larger reg"
        ))
    };
    let mut col_err = vec![f64::INFINITY; k];
    let mut confirm = tol;
    let mut confirm_fails = 0usize;
    let mut stall = Stall::new();
    let mut nit = 0usize;
    loop {
        if !k_valid {
            gibbs(&mut kmat);
            k_valid = true;
        }
        let Some(row_err) = sw.row_pass(&kmat, p.a, 1.0) else {
            return Ok(measure(&sw, &mut kmat, nit, breakdown(nit, "K v")));
        };
        let err = row_err.iter().zip(&col_err).map(|(r, c)| r + c).fold(0.0, f64::max);
        if err <= confirm {
            let out = measure(&sw, &mut kmat, nit, Termination::Converged);
            if out.marginal_error.iter().all(|&e| e <= tol) {
                return Ok(out);
            }
            if out.marginal_error.iter().any(|e| !e.is_finite()) {
                return Err(overflow_error(reg));
            }
            confirm_fails += 1;
            if confirm_fails > 8 {
                stall.best = stall.best.min(out.marginal_error.iter().fold(0.0, |a: f64, &b| a.max(b)));
                let t = stall.termination::<T>(tol);
                return Ok(ScalingOutput { termination: t, ..out });
            }
            if k == 1 {
                kmat = out.plan;
                k_valid = false;
            }
            confirm = err * 0.5;
            continue;
        }
        if nit >= maxiter {
            return Ok(measure(&sw, &mut kmat, nit, Termination::MaxIter));
        }
        if stall.stalled(nit, err) {
            return Ok(measure(&sw, &mut kmat, nit, stall.termination::<T>(tol)));
        }
        // nit = 0: no column update yet, so there is no error to report.
        let control = if nit == 0 {
            Control::Continue
        } else {
            obs.observe(nit, &|| {
                let (f, g) = sw.absorbed(0, &base_f, &base_g, reg);
                Report { nit, error: err, vectors: vec![("f", f), ("g", g)], scalars: vec![] }
            })
        };
        match control {
            Control::Continue => {}
            Control::Stop => return Ok(measure(&sw, &mut kmat, nit, Termination::Stopped)),
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
        match sw.col_update(p.b, 1.0) {
            Some(e) => col_err = e,
            None => return Ok(measure(&sw, &mut kmat, nit, breakdown(nit, "K^T u"))),
        }
        nit += 1;
    }
}
