//! Mirror Sinkhorn (Ballu & Berthet, ICML 2023): `min F(P)` over the transport polytope
//! `U(a, b)` for a convex, differentiable `F`, by one loop that alternates an entropic mirror
//! step and one Sinkhorn scaling.
//!
//! # The iteration
//!
//! Start from the product plan `P_0 = a b^T / sum(a)`. At iteration `t` (0-based) the gradient
//! `G_t = ∇F(P_t)` is taken, the mirror step multiplies `P_t ⊙ exp(-η_t G_t)`, and the result is
//! scaled onto the row marginal `a` (even `t`) or the column marginal `b` (odd `t`). The state is
//! kept in the log domain (`L = ln P`, `-inf` on zero weights): a step is `L -= η_t G_t`, then a
//! max-shifted log-sum-exp per row (or column) and one `exp` per entry that gives `P_{t+1}`.
//!
//! The output is either the last iterate `P_T` or the step-weighted average of the paper's
//! guarantees, held on one pair of consecutive iterates in four over the first 32 iterations
//! and one in eight after:
//! `P̄_T = Σ_{s ∈ A, s <= T} w_s P_s / Σ_{s ∈ A, s <= T} w_s` with
//! `A = {1, 8, 9, 16, 17, 24, 25, 32, 33, 48, 49, …}` and
//! `w_s` the steps of the iterates of the same scaling (rows or columns) since the previous
//! averaged one (`P_s` the iterate made by iteration `s - 1`, so the uninformed product plan
//! `P_0` is left out), kept as a running mean so that the returned plan is the buffer the errors
//! are measured on. It keeps the paper's `O(log T / sqrt T)` rate and in practice comes out a
//! little below the average of every iterate (the argument is at
//! `mirror_step::AverageWeights`); it lets the linear objective's stored-plan form touch the
//! `n x m` average on one pass in eight (`mirror_mult.rs`).
//!
//! # Objectives
//!
//! Built in (no call out of the loop): the linear `<P, M>`, the quadratic `||P - R||²`
//! (gradient `2 (P - R)`) and the Kullback–Leibler divergence `KL(P | R)` (gradient
//! `ln P - ln R`, up to a constant that the scaling removes), each plus `<P, M>` when a cost is
//! given. Anything else comes as a gradient oracle ([`Gradient`]).
//!
//! # What the tolerance means, and the certificate of optimality
//!
//! `tol` bounds `||P 1 - a||_1 + ||P^T 1 - b||_1` of the returned plan. It is measured, in f64,
//! on the output buffer every `check_every` iterations and at the end. Marginal feasibility is
//! not optimality (the starting product plan is exactly feasible), so it never stops the run
//! alone. What measures optimality is a certificate: for convex `F`, any plan `P` and any pair
//! `(f, g)` with `f_i + g_j <= G_ij` where `G = ∇F(P)` (on the support of `a` and `b`),
//! convexity gives `F(P*) >= F(P) + <G, P* - P> >= F(P) - <G, P> + <f, a> + <g, b>`, so
//! `F(P) - F* <= gap := <G, P> - <f, a> - <g, b>`, whether or not `P` meets the marginals. The
//! pair comes from the iteration itself: the accumulated row and column shifts `U`, `V` of the
//! log-domain state, divided by the step sum `S_t = Σ η_s`, are the dual potentials of the
//! averaged gradients (`L = ln(a b^T) - Σ η_s G_s + U ⊕ V`), made feasible for `G` by a
//! c-transform `g_j = min_i (G_ij - f_i)` and improved by a second one `f_i = min_j (G_ij - g_j)`.
//! With `gap_tol` the run stops at the first check where the marginal error `<= tol` and the
//! gap `<= gap_tol` both hold on the returned plan; without it the run takes its whole horizon
//! (`maxiter`, the steps' schedule depends on it) and reports the final gap. Noisy gradients
//! (`certify = false`) give no certificate: the gap is NaN and the horizon is run. The run is
//! reported converged only when the named criteria hold on what is returned. Parallel passes split rows by
//! [`row_block`] and combine partial sums in block order: results do not depend on `workers`.

use super::kernels::run;
use super::mirror_gap::Certificate;
use super::mirror_linear::{mirror_linear, Linear};
use super::mirror_step::{AverageWeights, Schedule};
use crate::alloc::{checked_len, try_filled, try_zeroed};
use crate::error::{OptError, Result};
use crate::parallel::row_block;
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};
use rayon::prelude::*;

/// The built-in part of the objective (always plus `<P, M>` when a cost is given).
#[derive(Clone, Copy)]
pub enum Objective<'a, T> {
    /// `F(P) = <P, M>` (or 0 without a cost: then a [`Gradient`] supplies everything).
    Linear,
    /// `F(P) = <P, M> + ||P - R||²` with the reference `R` (n x m).
    Quadratic(&'a [T]),
    /// `F(P) = <P, M> + Σ P ln(P / R) - P + R` with the reference `R` (n x m, positive wherever
    /// `a_i b_j > 0`).
    Kl(&'a [T]),
}

/// Step sizes `η_t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// The paper's decreasing `η_0 / sqrt(t + 1)`, piecewise constant over dyadic blocks of
    /// iterations with the paper's step sums at block ends (see `mirror_step.rs`). `None`: the paper's
    /// `η_0 = sqrt(δ) / ||G_0||_∞` with `δ = ||ln a||_∞ + ||ln b||_∞` over the positive weights
    /// of the normalised marginals (at least 1), from the first gradient.
    Sqrt(Option<f64>),
    /// A constant `η`.
    Constant(f64),
}

/// Which plan is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The step-weighted average of the iterates (the paper's guarantees).
    Average,
    /// The last iterate.
    Last,
}

#[derive(Clone, Debug)]
pub struct MirrorOptions {
    pub step: Step,
    pub output: Output,
    /// Bound on the marginal error of the returned plan.
    pub tol: f64,
    /// Bound on the certified suboptimality `F(P) - F*` of the returned plan; `None`: run the
    /// horizon (`maxiter`) and report the gap at the end.
    pub gap_tol: Option<f64>,
    /// Whether the gradient is exact (so the gap is a certificate); false for noisy oracles,
    /// which are then never called outside the iteration.
    pub certify: bool,
    pub maxiter: usize,
    /// Iterations between measurements of the marginal error (and between callbacks).
    pub check_every: usize,
}

/// A gradient oracle: `grad(t, P, G)` writes `∇F(P)` (n x m) into `G` at iteration `t`
/// (noisy or stochastic gradients are fine). Added to the built-in objective's gradient.
pub type Gradient<'g, T> = &'g mut OracleFn<'g, T>;

/// The gradient oracle's function type (borrowed for shorter than its own lifetime by the
/// certificate's extra call).
pub type OracleFn<'f, T> = dyn FnMut(usize, &[T], &mut [T]) -> Result<()> + Send + 'f;

pub struct MirrorOutput<T> {
    /// The returned plan (average or last iterate), n x m row-major.
    pub plan: Vec<T>,
    pub nit: usize,
    pub termination: Termination,
    /// `||P 1 - a||_1 + ||P^T 1 - b||_1` of `plan`, in f64.
    pub marginal_error: f64,
    /// `<plan, M>` (0 without a cost).
    pub cost: f64,
    /// The built-in objective at `plan` (NaN when a gradient oracle is part of `F`: the
    /// binding evaluates the user's `F` if given).
    pub fun: f64,
    /// The first step `η_0` used.
    pub step0: f64,
    /// `(nit, marginal error)` at each measurement.
    pub history: Vec<(usize, f64)>,
    /// The certified bound on `F(plan) - F*` (NaN without a certificate: noisy gradients).
    pub gap: f64,
}

/// Mirror Sinkhorn on `a` (n), `b` (m) with the optional cost `cost` (n x m), the built-in
/// `objective` and the optional gradient oracle `grad`. Weights must be finite, non-negative,
/// with equal positive masses (the Python layer rescales `b`).
#[allow(clippy::too_many_arguments)]
pub fn mirror_sinkhorn<T: Real>(
    a: &[T],
    b: &[T],
    cost: Option<&[T]>,
    objective: Objective<'_, T>,
    mut grad: Option<Gradient<'_, T>>,
    opts: &MirrorOptions,
    obs: &mut dyn Observer<T>,
) -> Result<MirrorOutput<T>> {
    let (n, m) = (a.len(), b.len());
    let bad = |s: &str| Err(OptError::InvalidInput(s.to_string()));
    if n == 0 || m == 0 {
        return bad("empty problem");
    }
    let nm = checked_len(n, m, "the plan")?;
    let sized = |x: Option<&[T]>| x.is_none_or(|x| x.len() == nm);
    let reference = match objective {
        Objective::Linear => None,
        Objective::Quadratic(r) | Objective::Kl(r) => Some(r),
    };
    if !sized(cost) || !sized(reference) {
        return bad("M and the reference plan must have shape (len(a), len(b))");
    }
    if cost.is_none() && grad.is_none() && matches!(objective, Objective::Linear) {
        return bad("give a cost M, a reference plan or a gradient");
    }
    let fin = |w: &[T]| w.iter().all(|x| x.is_finite());
    if !a.iter().chain(b).all(|&x| x.is_finite() && x >= T::zero()) {
        return bad("weights must be finite and non-negative");
    }
    if !cost.is_none_or(fin) || !reference.is_none_or(fin) {
        return bad("M and the reference plan must be finite");
    }
    match opts.step {
        Step::Sqrt(Some(e)) | Step::Constant(e) if !(e > 0.0 && e.is_finite()) => return bad("step must be positive"),
        _ => {}
    }
    let mass: f64 = a.iter().map(|x| x.as_f64()).sum();
    let mass_b: f64 = b.iter().map(|x| x.as_f64()).sum();
    if mass <= 0.0 || ((mass - mass_b) / mass).abs() > 1e-6 {
        return bad("a and b must have the same positive total mass");
    }
    let ln_mass = mass.ln();
    let ln_a: Vec<f64> = a.iter().map(|x| x.as_f64().ln()).collect();
    let ln_b: Vec<f64> = b.iter().map(|x| x.as_f64().ln()).collect();
    if let Objective::Kl(r) = objective {
        let ok = (0..nm).all(|k| r[k] > T::zero() || a[k / m] == T::zero() || b[k % m] == T::zero());
        if !ok {
            return bad("the KL reference plan must be positive wherever a_i b_j > 0");
        }
    }
    let delta = {
        let ext = |v: &[f64]| v.iter().filter(|x| x.is_finite()).map(|x| (x - ln_mass).abs()).fold(0.0, f64::max);
        (ext(&ln_a) + ext(&ln_b)).max(1.0)
    };
    if let (Objective::Linear, None, Some(cost)) = (objective, grad.as_ref(), cost) {
        // A constant gradient: the state is two potentials and the step sum (no n x m state).
        let lin = Linear { a, b, cost, ln_a: &ln_a, ln_b: &ln_b, ln_mass, delta };
        return mirror_linear(&lin, opts, obs);
    }

    // State: L = ln P, P, the gradient G, the running average.
    let mut l: Vec<T> = try_filled(nm, T::neg_infinity(), "the log-plan")?;
    let mut p: Vec<T> = try_zeroed(nm, "the plan")?;
    let mut g: Vec<T> =
        if grad.is_some() || reference.is_some() { try_zeroed(nm, "the gradient")? } else { Vec::new() };
    let mut avg: Vec<T> =
        if opts.output == Output::Average { try_zeroed(nm, "the averaged plan")? } else { Vec::new() };
    let rb = row_block(n);
    l.par_chunks_mut(rb * m).zip(p.par_chunks_mut(rb * m)).enumerate().for_each(|(blk, (lr, pr))| {
        for (r, (lrow, prow)) in lr.chunks_mut(m).zip(pr.chunks_mut(m)).enumerate() {
            let i = blk * rb + r;
            if a[i] == T::zero() {
                continue;
            }
            for j in 0..m {
                if b[j] > T::zero() {
                    let v = ln_a[i] + ln_b[j] - ln_mass;
                    lrow[j] = T::from_f64(v);
                    prow[j] = T::from_f64(v.exp());
                }
            }
        }
    });
    let mut step0 = match opts.step {
        Step::Sqrt(Some(e)) | Step::Constant(e) => e,
        Step::Sqrt(None) => f64::NAN,
    };
    let mut schedule: Option<Schedule> = None;
    // The sum of all steps (the certificate's) and the averaged output's weights.
    let (mut step_sum, mut weights) = (0.0, AverageWeights::default());
    let mut history = Vec::new();
    let mut err = f64::INFINITY;
    let mut termination = Termination::MaxIter;
    let mut nit = 0;
    let mut colwork = ColWork::new(n, m)?;
    let zeros: Vec<T> = try_zeroed(m, "a row")?;
    // The accumulated row and column shifts of the log state (the certificate's potentials).
    let mut shifts = Shifts { u: try_zeroed(n, "the row potentials")?, v: try_zeroed(m, "the column potentials")? };
    let mut gap = f64::NAN;
    while nit < opts.maxiter {
        let t = nit;
        // The gradient beyond the linear term, at P_t.
        if let Some(gr) = grad.as_deref_mut() {
            gr(t, &p, &mut g)?;
            if !g.par_iter().all(|x| x.is_finite()) {
                termination = Termination::Numerical(format!(
                    "the gradient at iteration {t} has non-finite entries; check `grad` / `cost_sampler`"
                ));
                break;
            }
        } else {
            g.iter_mut().for_each(|x| *x = T::zero());
        }
        match objective {
            Objective::Linear => {}
            Objective::Quadratic(r) => g.par_iter_mut().zip(p.par_iter().zip(r)).for_each(|(gk, (&pk, &rk))| {
                *gk = *gk + (pk - rk) * T::from_f64(2.0);
            }),
            Objective::Kl(r) => g.par_iter_mut().zip(l.par_iter().zip(r)).for_each(|(gk, (&lk, &rk))| {
                // Entries at -inf stay there whatever their gradient; 0 keeps them NaN-free.
                *gk = if lk == T::neg_infinity() { *gk } else { *gk + lk - rk.ln() };
            }),
        }
        if step0.is_nan() {
            let gmax = |x: &[T]| x.par_iter().map(|v| v.abs().as_f64()).reduce(|| 0.0, f64::max);
            let both = match cost {
                Some(c) if g.is_empty() => gmax(c),
                Some(c) => (0..nm).into_par_iter().map(|k| (c[k] + g[k]).abs().as_f64()).reduce(|| 0.0, f64::max),
                None => gmax(&g),
            };
            step0 = if both > 0.0 { delta.sqrt() / both } else { 1.0 };
        }
        let eta = schedule.get_or_insert_with(|| Schedule::new(opts.step, step0)).eta(t);
        step_sum += eta;
        let take = if avg.is_empty() { None } else { weights.push(t + 1, eta) };
        let step = Mirror { cost, g: (!g.is_empty()).then_some(&g[..]), eta: T::from_f64(eta), m };
        let ok = if t % 2 == 0 {
            row_step(&step, a, &zeros, &mut l, &mut p, &mut shifts.u)
        } else {
            colwork.step(&step, b, &mut l, &mut p, &mut shifts.v)
        };
        if !ok {
            termination = Termination::Numerical(format!(
                "iteration {t}: a row or column of the plan vanished (the objective is infinite on it, or \
                 the step {eta:.3e} is too large for the dtype); lower `step`"
            ));
            nit += 1;
            break;
        }
        if let Some(w) = take {
            let (wt, small) = (T::from_f64(w), T::from_f64(tiny::<T>() / w));
            avg.par_chunks_mut(1 << 14).zip(p.par_chunks(1 << 14)).for_each(|(ac, pc)| {
                for (x, &y) in ac.iter_mut().zip(pc) {
                    let v = *x + wt * (y - *x);
                    *x = if v < small { T::zero() } else { v };
                }
            });
        }
        nit += 1;
        let out: &[T] = if avg.is_empty() { &p } else { &avg };
        if nit % opts.check_every.max(1) == 0 || nit == opts.maxiter {
            err = marginal_error(out, a, b);
            history.push((nit, err));
            if let (Some(gtol), true) = (opts.gap_tol, opts.certify && err <= opts.tol) {
                let f = shifts.potentials(step_sum);
                let cert = Certificate { a, b, cost, objective, f: &f };
                gap = cert.gap(out, &mut g, t, grad.as_deref_mut())?;
                if gap <= gtol {
                    termination = Termination::Converged;
                    break;
                }
            }
        }
        if let Some(end) = observe(obs, nit, err, eta) {
            termination = end;
            break;
        }
    }
    let plan = if avg.is_empty() || nit == 0 { p } else { avg };
    // Re-measured on the buffer that is returned.
    let marginal_error = marginal_error(&plan, a, b);
    if opts.certify && step_sum > 0.0 && !matches!(termination, Termination::Numerical(_)) {
        let f = shifts.potentials(step_sum);
        let cert = Certificate { a, b, cost, objective, f: &f };
        gap = cert.gap(&plan, &mut g, nit, grad.as_deref_mut())?;
    }
    let gap_ok = opts.gap_tol.is_none_or(|t| gap <= t);
    let met = marginal_error <= opts.tol && gap_ok;
    if termination == Termination::Converged && !met {
        termination = Termination::MaxIter;
    }
    if termination == Termination::MaxIter && met {
        termination = Termination::Converged;
    }
    if !plan.par_iter().all(|x| x.is_finite()) && !matches!(termination, Termination::Aborted) {
        termination = Termination::Numerical("the plan has non-finite entries".into());
    }
    let cost_v = cost.map_or(0.0, |c| dot(&plan, c));
    let fun = if grad.is_some() { f64::NAN } else { cost_v + builtin_fun(objective, &plan) };
    Ok(MirrorOutput { plan, nit, termination, marginal_error, cost: cost_v, fun, step0, history, gap })
}

/// Plan entries below this are stored as 0: products of smaller numbers leave the normal
/// range, and subnormal arithmetic is two orders of magnitude slower on common CPUs (the mass
/// dropped is below `1e-290` in f64, `1e-30` in f32, per entry). The marginal error is measured
/// on the stored plan, so it accounts for what is dropped.
pub(super) fn tiny<T: Real>() -> f64 {
    T::min_positive_value().as_f64() / T::epsilon().as_f64()
}

/// What a mirror step subtracts from `L`: `η (M + G)`.
struct Mirror<'s, T> {
    cost: Option<&'s [T]>,
    g: Option<&'s [T]>,
    eta: T,
    m: usize,
}

impl<T: Real> Mirror<'_, T> {
    /// `L_ij -= η (M_ij + G_ij)` on row `i`, and the row's maximum (eight running maxima,
    /// so that the loop vectorises).
    #[inline]
    fn apply(&self, i: usize, lrow: &mut [T]) -> T {
        let (off, eta) = (i * self.m, self.eta);
        match (self.cost, self.g) {
            (Some(c), Some(g)) => {
                for ((x, &cv), &gv) in lrow.iter_mut().zip(&c[off..off + self.m]).zip(&g[off..off + self.m]) {
                    *x = *x - eta * (cv + gv);
                }
            }
            (Some(d), None) | (None, Some(d)) => {
                for (x, &dv) in lrow.iter_mut().zip(&d[off..off + self.m]) {
                    *x = *x - eta * dv;
                }
            }
            (None, None) => {}
        }
        let mut acc = [T::neg_infinity(); 8];
        let mut chunks = lrow.chunks_exact(8);
        for ch in &mut chunks {
            for k in 0..8 {
                acc[k] = if ch[k] > acc[k] { ch[k] } else { acc[k] };
            }
        }
        for &x in chunks.remainder() {
            acc[0] = if x > acc[0] { x } else { acc[0] };
        }
        acc.iter().fold(T::neg_infinity(), |a, &b| if b > a { b } else { a })
    }
}

/// The mirror step and the scaling of every row onto `a`; false when a row with positive
/// weight vanished.
fn row_step<T: Real>(step: &Mirror<'_, T>, a: &[T], zeros: &[T], l: &mut [T], p: &mut [T], u: &mut [f64]) -> bool {
    let m = step.m;
    let rb = row_block(a.len());
    l.par_chunks_mut(rb * m)
        .zip(p.par_chunks_mut(rb * m))
        .zip(u.par_chunks_mut(rb))
        .enumerate()
        .map(|(blk, ((lr, pr), ur))| {
            let mut ok = true;
            for (r, (lrow, prow)) in lr.chunks_mut(m).zip(pr.chunks_mut(m)).enumerate() {
                let i = blk * rb + r;
                if a[i] == T::zero() {
                    continue;
                }
                let mx = step.apply(i, lrow);
                // exp(L - max) and its sum, by the dispatched (SIMD) kernel of the log pass.
                let s = if mx.is_finite() { run::row_exp(lrow, zeros, -mx, T::one(), prow) } else { 0.0 };
                if !(s > 0.0 && s.is_finite() && mx.is_finite()) {
                    ok = false;
                    continue;
                }
                let sc = a[i].as_f64() / s;
                let (sct, shift) = (T::from_f64(sc), T::from_f64(sc.ln()) - mx);
                ur[r] += sc.ln() - mx.as_f64();
                let thr = T::from_f64(tiny::<T>() / sc);
                for (x, y) in lrow.iter_mut().zip(prow.iter_mut()) {
                    *y = if *y < thr { T::zero() } else { *y * sct };
                    *x = *x + shift;
                }
            }
            ok
        })
        .reduce(|| true, |x, y| x && y)
}

/// Buffers of the column step: per row block, partial column maxima and sums.
struct ColWork {
    max: Vec<f64>,
    sum: Vec<f64>,
    m: usize,
}

impl ColWork {
    fn new(n: usize, m: usize) -> Result<Self> {
        let blocks = n.div_ceil(row_block(n));
        let len = checked_len(blocks, m, "the column sums")?;
        Ok(ColWork {
            max: try_filled(len, f64::NEG_INFINITY, "the column maxima")?,
            sum: try_zeroed(len, "the column sums")?,
            m,
        })
    }

    /// The mirror step and the scaling of every column onto `b` (three row-blocked passes:
    /// step and column maxima, exponentials and column sums, scaling); false when a column
    /// with positive weight vanished.
    fn step<T: Real>(&mut self, step: &Mirror<'_, T>, b: &[T], l: &mut [T], p: &mut [T], v: &mut [f64]) -> bool {
        let m = self.m;
        let n = l.len() / m;
        let rb = row_block(n);
        l.par_chunks_mut(rb * m).zip(self.max.par_chunks_mut(m)).enumerate().for_each(|(blk, (lr, cm))| {
            cm.iter_mut().for_each(|x| *x = f64::NEG_INFINITY);
            for (r, lrow) in lr.chunks_mut(m).enumerate() {
                step.apply(blk * rb + r, lrow);
                for (c, x) in cm.iter_mut().zip(lrow.iter()) {
                    let v = x.as_f64();
                    *c = if v > *c { v } else { *c };
                }
            }
        });
        let mut colmax = vec![f64::NEG_INFINITY; m];
        for cm in self.max.chunks(m) {
            for (c, &x) in colmax.iter_mut().zip(cm) {
                *c = if x > *c { x } else { *c };
            }
        }
        // An empty column (-inf throughout) is shifted by 0, so that it stays at -inf, not NaN.
        let neg_max: Vec<T> = colmax.iter().map(|&x| T::from_f64(if x.is_finite() { -x } else { 0.0 })).collect();
        l.par_chunks(rb * m).zip(p.par_chunks_mut(rb * m)).zip(self.sum.par_chunks_mut(m)).for_each(
            |((lr, pr), cs)| {
                cs.iter_mut().for_each(|x| *x = 0.0);
                for (lrow, prow) in lr.chunks(m).zip(pr.chunks_mut(m)) {
                    run::row_exp(lrow, &neg_max, T::zero(), T::one(), prow);
                    for (c, &e) in cs.iter_mut().zip(prow.iter()) {
                        *c += e.as_f64();
                    }
                }
            },
        );
        let mut colsum = vec![0.0f64; m];
        for cs in self.sum.chunks(m) {
            for (c, &x) in colsum.iter_mut().zip(cs) {
                *c += x;
            }
        }
        let mut ok = true;
        let mut scale = vec![T::zero(); m];
        let mut shift = vec![T::zero(); m];
        let mut thr = vec![T::infinity(); m];
        for j in 0..m {
            if b[j] == T::zero() {
                continue;
            }
            if !(colsum[j] > 0.0 && colsum[j].is_finite() && colmax[j].is_finite()) {
                ok = false;
                continue;
            }
            let sc = b[j].as_f64() / colsum[j];
            scale[j] = T::from_f64(sc);
            shift[j] = T::from_f64(sc.ln() - colmax[j]);
            v[j] += sc.ln() - colmax[j];
            thr[j] = T::from_f64(tiny::<T>() / sc);
        }
        l.par_chunks_mut(rb * m).zip(p.par_chunks_mut(rb * m)).for_each(|(lr, pr)| {
            for (lrow, prow) in lr.chunks_mut(m).zip(pr.chunks_mut(m)) {
                for j in 0..m {
                    prow[j] = if prow[j] < thr[j] { T::zero() } else { prow[j] * scale[j] };
                    lrow[j] = lrow[j] + shift[j];
                }
            }
        });
        ok
    }
}

/// The accumulated log-domain shifts: `U` per row (row steps), `V` per column (column steps).
struct Shifts {
    u: Vec<f64>,
    v: Vec<f64>,
}

impl Shifts {
    /// The certificate's row potentials `U / S` (units of `F`).
    fn potentials(&self, step_sum: f64) -> Vec<f64> {
        self.u.iter().map(|x| x / step_sum).collect()
    }
}

/// `||P 1 - a||_1 + ||P^T 1 - b||_1` in f64, combined in row-block order.
pub fn marginal_error<T: Real>(plan: &[T], a: &[T], b: &[T]) -> f64 {
    let (n, m) = (a.len(), b.len());
    let rb = row_block(n);
    let parts: Vec<(f64, Vec<f64>)> = plan
        .par_chunks(rb * m)
        .enumerate()
        .map(|(blk, pr)| {
            let mut cols = vec![0.0f64; m];
            let mut rows = 0.0;
            for (r, prow) in pr.chunks(m).enumerate() {
                let mut s = 0.0;
                for (c, &x) in cols.iter_mut().zip(prow) {
                    s += x.as_f64();
                    *c += x.as_f64();
                }
                rows += (s - a[blk * rb + r].as_f64()).abs();
            }
            (rows, cols)
        })
        .collect();
    let mut cols = vec![0.0f64; m];
    let mut err = 0.0;
    for (r, c) in &parts {
        err += r;
        cols.iter_mut().zip(c).for_each(|(x, y)| *x += y);
    }
    err + cols.iter().zip(b).map(|(c, bj)| (c - bj.as_f64()).abs()).sum::<f64>()
}

/// `Σ x_k y_k` in f64, combined in fixed chunk order.
fn dot<T: Real>(x: &[T], y: &[T]) -> f64 {
    crate::parallel::chunked_sums::<1>(x.len(), |r| [r.map(|k| x[k].as_f64() * y[k].as_f64()).sum()])[0]
}

/// The built-in term of the objective beyond `<P, M>` at `plan`.
fn builtin_fun<T: Real>(objective: Objective<'_, T>, plan: &[T]) -> f64 {
    match objective {
        Objective::Linear => 0.0,
        Objective::Quadratic(r) => crate::parallel::chunked_sums::<1>(plan.len(), |rg| {
            [rg.map(|k| (plan[k].as_f64() - r[k].as_f64()).powi(2)).sum()]
        })[0],
        Objective::Kl(r) => crate::parallel::chunked_sums::<1>(plan.len(), |rg| {
            [rg.map(|k| {
                let (x, y) = (plan[k].as_f64(), r[k].as_f64());
                let xlx = if x > 0.0 { x * (x / y).ln() } else { 0.0 };
                xlx - x + y
            })
            .sum()]
        })[0],
    }
}

/// The observer's turn after a Mirror Sinkhorn iteration (error at the last measurement, the
/// step just taken): `Some` ends the run (status 99, or aborted for an error to raise).
pub(super) fn observe<T: Real>(obs: &mut dyn Observer<T>, nit: usize, error: f64, step: f64) -> Option<Termination> {
    let report = || Report { nit, error, vectors: Vec::new(), scalars: vec![("step", step)] };
    match obs.observe(nit, &report) {
        Control::Continue => None,
        Control::Stop => Some(Termination::Stopped),
        Control::Abort => Some(Termination::Aborted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::NoObserver;

    fn opts(output: Output, maxiter: usize) -> MirrorOptions {
        MirrorOptions {
            step: Step::Sqrt(None),
            output,
            tol: 1e-12,
            maxiter,
            check_every: 10,
            gap_tol: None,
            certify: true,
        }
    }

    #[test]
    fn linear_average_approaches_the_optimal_cost_and_marginals() {
        // 2 x 2 with a unique optimum: the identity plan, cost 0.
        let a = [0.5, 0.5];
        let b = [0.5, 0.5];
        let c = [0.0, 1.0, 1.0, 0.0];
        let out = mirror_sinkhorn(
            &a,
            &b,
            Some(&c[..]),
            Objective::Linear,
            None,
            &opts(Output::Average, 4000),
            &mut NoObserver,
        )
        .unwrap();
        // The average converges at the paper's O(log T / sqrt T) rate; the last iterate faster.
        assert!(out.cost < 0.1, "cost {}", out.cost);
        assert!(out.marginal_error < 1e-2, "err {}", out.marginal_error);
        assert!((out.marginal_error - marginal_error(&out.plan, &a, &b)).abs() == 0.0);
        let last =
            mirror_sinkhorn(&a, &b, Some(&c[..]), Objective::Linear, None, &opts(Output::Last, 4000), &mut NoObserver)
                .unwrap();
        assert!(last.cost < out.cost);
    }

    #[test]
    fn quadratic_to_a_feasible_reference_finds_it() {
        let a = [0.3, 0.7];
        let b = [0.6, 0.4];
        let r = [0.2f64, 0.1, 0.4, 0.3];
        let o = MirrorOptions {
            step: Step::Constant(1.0),
            output: Output::Last,
            tol: 1e-9,
            maxiter: 20000,
            check_every: 1,
            gap_tol: Some(1e-9),
            certify: true,
        };
        let out = mirror_sinkhorn(&a, &b, None, Objective::Quadratic(&r[..]), None, &o, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged);
        for (x, y) in out.plan.iter().zip(r) {
            assert!((x - y).abs() < 1e-6, "{:?}", out.plan);
        }
    }

    #[test]
    fn kl_to_a_reference_is_its_sinkhorn_projection() {
        // KL(P | R) over U(a, b) is minimised by the Sinkhorn scaling of R; with R feasible, R.
        let a = [0.5f32, 0.5];
        let b = [0.25f32, 0.75];
        let r = [0.125f32, 0.375, 0.125, 0.375];
        let o = MirrorOptions {
            step: Step::Constant(0.5),
            output: Output::Last,
            tol: 1e-5,
            maxiter: 2000,
            check_every: 1,
            gap_tol: Some(1e-5),
            certify: true,
        };
        let out = mirror_sinkhorn(&a, &b, None, Objective::Kl(&r[..]), None, &o, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged);
        assert!(out.fun < 1e-5, "{}", out.fun);
    }

    #[test]
    fn the_feasible_start_does_not_stop_the_run_and_the_gap_is_certified() {
        // The product plan meets both marginals exactly but costs 0.5; the optimum costs 0.
        let (a, b, c) = ([0.5, 0.5], [0.5, 0.5], [0.0, 1.0, 1.0, 0.0]);
        let out = mirror_sinkhorn(
            &a,
            &b,
            Some(&c[..]),
            Objective::Linear,
            None,
            &opts(Output::Average, 500),
            &mut NoObserver,
        )
        .unwrap();
        assert_eq!(out.nit, 500);
        assert!(out.cost <= out.gap && out.gap < 0.02, "cost {} gap {}", out.cost, out.gap);
        let o = MirrorOptions { gap_tol: Some(1e-6), tol: 1e-6, ..opts(Output::Last, 100_000) };
        let out = mirror_sinkhorn(&a, &b, Some(&c[..]), Objective::Linear, None, &o, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged);
        // cost - OT <= gap with OT = 0, up to the rounding of the gap's sums
        assert!(out.nit < 100_000 && out.gap <= 1e-6 && out.cost <= out.gap + 1e-15);
    }

    #[test]
    fn the_linear_fast_path_follows_the_general_iteration() {
        // Same iterates as the n x m log state (reached with a zero gradient oracle), to rounding;
        // zero weights, odd and even horizons, both outputs.
        let (n, m) = (9, 7);
        let mut a: Vec<f64> = (0..n).map(|i| 1.0 + (i % 3) as f64).collect();
        a[2] = 0.0;
        let mut b: Vec<f64> = (0..m).map(|j| 2.0 + (j % 2) as f64).collect();
        b[4] = 0.0;
        let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
        b.iter_mut().for_each(|x| *x *= sa / sb);
        let c: Vec<f64> = (0..n * m).map(|k| ((k * 37) % 23) as f64 / 7.0).collect();
        for output in [Output::Average, Output::Last] {
            for maxiter in [0, 1, 2, 7, 40] {
                let o = opts(output, maxiter);
                let fast = mirror_sinkhorn(&a, &b, Some(&c[..]), Objective::Linear, None, &o, &mut NoObserver).unwrap();
                let mut zero = |_: usize, _: &[f64], g: &mut [f64]| -> Result<()> {
                    g.iter_mut().for_each(|x| *x = 0.0);
                    Ok(())
                };
                let general =
                    mirror_sinkhorn(&a, &b, Some(&c[..]), Objective::Linear, Some(&mut zero), &o, &mut NoObserver)
                        .unwrap();
                assert_eq!(fast.nit, general.nit);
                for (x, y) in fast.plan.iter().zip(&general.plan) {
                    assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{output:?} {maxiter}: {x} vs {y}");
                }
                assert!((fast.gap - general.gap).abs() <= 1e-9 * (1.0 + general.gap.abs()) || maxiter == 0);
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_workers() {
        let (n, m) = (70, 9);
        let a = vec![1.0 / n as f64; n];
        let b = vec![1.0 / m as f64; m];
        let c: Vec<f64> = (0..n * m).map(|k| ((k * 7919) % 101) as f64 / 101.0).collect();
        let run = |w| {
            crate::parallel::with_workers(Some(w), || {
                mirror_sinkhorn(
                    &a,
                    &b,
                    Some(&c[..]),
                    Objective::Linear,
                    None,
                    &opts(Output::Average, 50),
                    &mut NoObserver,
                )
                .unwrap()
                .plan
            })
        };
        assert_eq!(run(1), run(3));
    }
}
