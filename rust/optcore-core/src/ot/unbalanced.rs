//! Log-domain Sinkhorn over any log-domain kernel, balanced or unbalanced: the loop behind
//! grids ([`super::grid`]) and unbalanced OT on dense costs.
//!
//! A [`LogKernel`] applies `h -> LSE_j(h_j - C_ij / reg)` (rows) and its transpose (columns)
//! without necessarily storing `C`: a grid applies it by separable 1-D passes, a dense cost
//! ([`super::lse_dense::DenseOperator`]) by scalings of a stored kernel. [`sinkhorn_lse`] runs log-domain Sinkhorn on it, with the
//! shared [`Controller`] (over-relaxation, stall test, ε-scaling stages).
//!
//! # The unbalanced problem
//!
//! With marginal relaxations `rho_a`, `rho_b` (`inf`: that marginal is a constraint) the
//! problem is POT's `sinkhorn_unbalanced` (`reg_type="kl"`) and OTT's `tau = rho / (rho + reg)`:
//!
//! `min_P <P, C> + reg KL(P | a b^T) + rho_a KL(P 1 | a) + rho_b KL(P^T 1 | b)`
//!
//! with the generalised `KL(p | q) = sum p ln(p / q) - p + q`. The plan is
//! `P_ij = exp((f_i + g_j - C_ij) / reg)` as in the balanced case, and the Sinkhorn updates
//! (Chizat et al. 2018) are `f_i = reg ln a_i - tau_a reg LSE_j((g_j - C_ij) / reg)`, the same
//! for `g` (`tau = 1`: the balanced update), each iteration followed by the closed-form
//! translation `(f + l, g - l)` of translation-invariant Sinkhorn (Séjourné et al. 2022; see
//! [`translate`]), which keeps the convergence rate from degrading as `rho` grows. At the solution the marginals are the relaxed
//! targets `P 1 = a exp(-(f - reg ln a) / rho_a)` and `P^T 1 = b exp(-(g - reg ln b) / rho_b)`
//! (`a` and `b` when balanced).
//!
//! # What the tolerance means
//!
//! `marginal_error = ||P 1 - a~||_1 + ||P^T 1 - b~||_1` with `a~`, `b~` those targets computed
//! from the returned potentials: the fixed-point residual of the optimality conditions, the
//! balanced L1 marginal error when `rho = inf`. As in the other solvers the loop's estimate
//! (the row residual from the `f` pass, the column residual from the `g` pass) only triggers a
//! measurement; the returned `marginal_error`, `cost` and `fun` are measured in f64 on the
//! returned potentials ([`LogKernel::measure`]), and only that measurement decides success.

use super::controller::{eps_schedule, Controller, EpsScaling, Overrelax};
use crate::error::{OptError, Result};
use crate::parallel::chunked_sums;
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};
use rayon::prelude::*;

/// Row sums, column sums and `<P, C>` of a plan, measured in f64.
#[derive(Clone, Debug, Default)]
pub struct Sums {
    pub rows: Vec<f64>,
    pub cols: Vec<f64>,
    pub cost: f64,
}

/// A cost `C` (`n x m`) seen through its log-domain Gibbs kernel at the current `reg`.
pub trait LogKernel<T: Real>: Send {
    fn n(&self) -> usize;
    fn m(&self) -> usize;
    /// `max C - min C` (the first ε of an ε-scaling schedule).
    fn cost_range(&self) -> f64;
    /// Sets the `reg` of [`Self::rows`] and [`Self::cols`] (an error when its kernels do not fit).
    fn set_reg(&mut self, reg: f64) -> Result<()>;
    /// `out_i = LSE_j(h_j - C_ij / reg)` (`h`: m, `out`: n).
    fn rows(&mut self, h: &[T], out: &mut [T]);
    /// `out_j = LSE_i(h_i - C_ij / reg)` (`h`: n, `out`: m).
    fn cols(&mut self, h: &[T], out: &mut [T]);
    /// Row and column sums and `<P, C>` of `P_ij = exp(fs_i + gs_j - C_ij / reg)`, in f64
    /// (`fs = f / reg`, `gs = g / reg`).
    fn measure(&mut self, fs: &[f64], gs: &[f64], reg: f64) -> Result<Sums>;
    /// One iteration's passes: `lse_n = rows(hm)`, then `f_i = upd(i, lse_n_i)` (the updated
    /// potential), `hn = f / reg` in the working dtype, and `lse_m = cols(hn)`. A kernel that
    /// stores its matrix may fuse them into one read of it (each row's update, then that row's
    /// share of the column sums, while it is in cache), with the same results as this default.
    #[allow(clippy::too_many_arguments)]
    fn rows_cols(
        &mut self,
        hm: &[T],
        lse_n: &mut [T],
        upd: RowUpdate<'_, T>,
        reg: f64,
        f: &mut [T],
        hn: &mut [T],
        lse_m: &mut [T],
    ) {
        self.rows(hm, lse_n);
        f.iter_mut().zip(lse_n.iter()).enumerate().for_each(|(i, (x, &l))| *x = upd(i, l));
        scaled(f, reg, hn);
        self.cols(hn, lse_m);
    }
}

/// The update of one potential in a fused pass ([`LogKernel::rows_cols`]): `(i, lse_i) -> f_i`.
pub type RowUpdate<'x, T> = &'x (dyn Fn(usize, T) -> T + Sync);

/// Options of [`sinkhorn_lse`].
#[derive(Clone, Debug)]
pub struct LseOptions {
    pub reg: f64,
    /// Marginal relaxations `(rho_a, rho_b)`; `inf` for a balanced marginal.
    pub reg_m: (f64, f64),
    /// Bound on the measured residual (see the module docs).
    pub tol: f64,
    pub maxiter: usize,
    pub eps_scaling: Option<EpsScaling>,
    pub overrelax: Overrelax,
}

/// Result of [`sinkhorn_lse`] (no plan: it is implied by `f`, `g`; empty when aborted).
#[derive(Debug)]
pub struct LseOutput<T> {
    pub f: Vec<T>,
    pub g: Vec<T>,
    pub nit: usize,
    pub termination: Termination,
    /// The measured residual (see the module docs).
    pub marginal_error: f64,
    /// `<P, C>`.
    pub cost: f64,
    /// Balanced: `<P, C> + reg sum P ln P`; unbalanced: the objective of the module docs.
    pub fun: f64,
    /// Total mass of the plan.
    pub mass: f64,
    pub stages: usize,
}

/// What [`measure`] finds on `(f, g)`.
struct Measured {
    err: f64,
    cost: f64,
    fun: f64,
    mass: f64,
}

/// `tau = rho / (rho + reg)` (1 for `rho = inf`).
fn tau(rho: f64, reg: f64) -> f64 {
    if rho.is_infinite() {
        1.0
    } else {
        rho / (rho + reg)
    }
}

/// The relaxed target `w exp(-(f - reg ln w) / rho)` of one marginal (`w` when `rho = inf`).
fn target(w: f64, f: f64, reg: f64, rho: f64) -> f64 {
    target_ln(w, w.ln(), f, reg, rho)
}

/// [`target`] with `ln w` given (`lw`: the weights' logarithms are taken once per run).
#[inline]
fn target_ln(w: f64, lw: f64, f: f64, reg: f64, rho: f64) -> f64 {
    if w == 0.0 || rho.is_infinite() {
        w
    } else {
        w * (-(f - reg * lw) / rho).exp()
    }
}

/// `KL(p | q) = sum p ln(p / q) - p + q` of two marginals.
fn kl(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(&p, &q)| if p > 0.0 { p * (p / q).ln() - p + q } else { q }).sum()
}

/// The residual, cost, objective and mass of `P(f, g)`, measured in f64.
fn measure<T: Real, K: LogKernel<T> + ?Sized>(
    op: &mut K,
    a: &[T],
    b: &[T],
    f: &[T],
    g: &[T],
    opts: &LseOptions,
) -> Result<Measured> {
    let reg = opts.reg;
    let (ra, rb) = opts.reg_m;
    let fs: Vec<f64> = f.iter().map(|x| x.as_f64() / reg).collect();
    let gs: Vec<f64> = g.iter().map(|x| x.as_f64() / reg).collect();
    let s = op.measure(&fs, &gs, reg)?;
    let a64: Vec<f64> = a.iter().map(|x| x.as_f64()).collect();
    let b64: Vec<f64> = b.iter().map(|x| x.as_f64()).collect();
    let ta: Vec<f64> = a64.iter().zip(f).map(|(&w, &x)| target(w, x.as_f64(), reg, ra)).collect();
    let tb: Vec<f64> = b64.iter().zip(g).map(|(&w, &x)| target(w, x.as_f64(), reg, rb)).collect();
    let l1 = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(x, y)| (x - y).abs()).sum::<f64>();
    let err = l1(&s.rows, &ta) + l1(&s.cols, &tb);
    let mass: f64 = s.rows.iter().sum();
    // sum_i r_i f_i (0 where r_i = 0: f_i may be -inf there).
    let dot = |r: &[f64], f: &[T], w: &[f64], shift: bool| -> f64 {
        r.iter()
            .zip(f)
            .zip(w)
            .map(|((&r, &x), &w)| if r > 0.0 { r * (x.as_f64() - if shift { reg * w.ln() } else { 0.0 }) } else { 0.0 })
            .sum()
    };
    let fun = if ra.is_infinite() && rb.is_infinite() {
        // <P, C> + reg sum P ln P = sum_i r_i f_i + sum_j c_j g_j.
        dot(&s.rows, f, &a64, false) + dot(&s.cols, g, &b64, false)
    } else {
        // <P, C> + reg KL(P | a b^T) = sum r (f - reg ln a) + sum c (g - reg ln b) - reg (m(P) - m(a) m(b)).
        let (ma, mb): (f64, f64) = (a64.iter().sum(), b64.iter().sum());
        let mut v = dot(&s.rows, f, &a64, true) + dot(&s.cols, g, &b64, true) - reg * (mass - ma * mb);
        if ra.is_finite() {
            v += ra * kl(&s.rows, &a64);
        }
        if rb.is_finite() {
            v += rb * kl(&s.cols, &b64);
        }
        v
    };
    Ok(Measured { err, cost: s.cost, fun, mass })
}

/// One half-iteration: `out_i = reg ln w_i - tau reg lse_i` with `lse = LSE_j(h_j - C_ij/reg)`
/// from the kernel, and the residual `sum_i |exp(cur_i/reg + lse_i) - target_i|` of the
/// current potentials `cur` (f64, summed in fixed chunks).
struct Half<'x, T> {
    w: &'x [T],
    /// `ln w` (`-inf` at zero weights).
    ln_w: &'x [f64],
    cur: &'x [T],
    lse: &'x [T],
    reg: f64,
    rho: f64,
}

/// The residual of [`Half`] (see there).
fn half_residual<T: Real>(h: &Half<'_, T>) -> f64 {
    let (reg, rho) = (h.reg, h.rho);
    let [err] = chunked_sums(h.w.len(), |r| {
        let mut e = 0.0;
        for i in r {
            let (wi, ci, li) = (h.w[i].as_f64(), h.cur[i].as_f64(), h.lse[i].as_f64());
            let row = if ci == f64::NEG_INFINITY || li == f64::NEG_INFINITY { 0.0 } else { (ci / reg + li).exp() };
            e += (row - target_ln(wi, h.ln_w[i], ci, reg, rho)).abs();
        }
        [e]
    });
    err
}

/// The updated potential `reg ln w - t reg lse` of one point (`t`: [`tau`]; `lw = ln w`).
#[inline]
fn new_potential<T: Real>(lw: f64, l: T, reg: f64, t: f64) -> T {
    let l = l.as_f64();
    // ln w = -inf exactly at the zero weights.
    if lw == f64::NEG_INFINITY {
        T::neg_infinity()
    } else if l == f64::NEG_INFINITY {
        // No mass reaches this point: the row of the plan is zero.
        T::infinity()
    } else {
        T::from_f64(reg * lw - t * reg * l)
    }
}

/// [`half_residual`], and the updated potentials into `out`.
fn half_update<T: Real>(h: &Half<'_, T>, out: &mut [T]) -> f64 {
    let err = half_residual(h);
    let t = tau(h.rho, h.reg);
    each(out, h.ln_w, h.lse, |o, &lw, &l| *o = new_potential(lw, l, h.reg, t));
    err
}

/// Vectors shorter than this are updated on the calling thread: an element-wise pass over
/// them takes microseconds, less than a hand-over to the thread pool.
const PAR_LEN: usize = 1 << 15;

/// `f(out_i, x_i, y_i)` for every `i`, in parallel for long vectors (element-wise: the same
/// results either way).
fn each<O: Send, X: Sync, Y: Sync>(out: &mut [O], x: &[X], y: &[Y], f: impl Fn(&mut O, &X, &Y) + Sync) {
    if out.len() < PAR_LEN {
        out.iter_mut().zip(x).zip(y).for_each(|((o, x), y)| f(o, x, y));
    } else {
        out.par_iter_mut().zip(x).zip(y).for_each(|((o, x), y)| f(o, x, y));
    }
}

/// `v <- v + omega (new - v)`, or `new` where either is infinite (zero weights, first pass).
fn relax<T: Real>(v: &mut [T], new: &[T], omega: f64) {
    each(v, new, new, |x, &y, _| *x = relaxed(*x, y, omega));
}

/// One entry of [`relax`].
#[inline]
fn relaxed<T: Real>(x: T, y: T, omega: f64) -> T {
    if omega == 1.0 || !x.is_finite() || !y.is_finite() {
        y
    } else {
        T::from_f64(x.as_f64() + omega * (y.as_f64() - x.as_f64()))
    }
}

/// The translation-invariant step of unbalanced Sinkhorn (Séjourné et al. 2022): `(f + l, g - l)`
/// leaves the plan unchanged, and the `l` that maximises the dual along that direction is
/// `ln(A / B) / (1/rho_a + 1/rho_b)` with `A = sum a exp(-(f - reg ln a) / rho_a)` (`sum a` when
/// `rho_a = inf`), `B` alike. Without it the total mass converges at the rate `1 - O(reg / rho)`:
/// tens of thousands of iterations near the balanced limit. Returns `l` (0 when not applied).
fn translate<T: Real>(f: &mut [T], g: &mut [T], (a, b): Logs<'_, T>, reg: f64, (ra, rb): (f64, f64)) -> f64 {
    if ra.is_infinite() && rb.is_infinite() {
        return 0.0;
    }
    let side = |(w, lw): (&[T], &[f64]), p: &[T], rho: f64| -> f64 {
        w.iter()
            .zip(lw)
            .zip(p)
            .map(|((&w, &lw), &x)| {
                let (w, x) = (w.as_f64(), x.as_f64());
                if w == 0.0 {
                    0.0
                } else if rho.is_infinite() {
                    w
                } else {
                    w * (-(x - reg * lw) / rho).exp()
                }
            })
            .sum()
    };
    let (sa, sb) = (side(a, f, ra), side(b, g, rb));
    let l = (sa / sb).ln() / (1.0 / ra + 1.0 / rb);
    if !(l.is_finite() && sa > 0.0 && sb > 0.0) {
        return 0.0;
    }
    each(f, a.0, a.0, |x, _, _| *x = T::from_f64(x.as_f64() + l));
    each(g, b.0, b.0, |x, _, _| *x = T::from_f64(x.as_f64() - l));
    l
}

/// The column residual `sum_j |P^T 1_j - target_j|` of the current potentials, from the last
/// column pass: that pass saw `f` before the translation by `l` (and `g` was updated after it),
/// and the translation leaves the plan unchanged, so `P^T 1_j = exp((g_j + l) / reg + lse_j)`.
/// An estimate (the kernel's rounding, not the f64 measurement): it only spares measurements
/// that cannot succeed (see [`sinkhorn_lse`]).
fn fresh_col_residual<T: Real>((b, ln_b): (&[T], &[f64]), g: &[T], lse: &[T], reg: f64, rho: f64, l: f64) -> f64 {
    let mut e = 0.0;
    for (((&w, &lw), &gj), &lj) in b.iter().zip(ln_b).zip(g).zip(lse) {
        let (w, gj, lj) = (w.as_f64(), gj.as_f64(), lj.as_f64());
        let col = if gj == f64::NEG_INFINITY || lj == f64::NEG_INFINITY { 0.0 } else { ((gj + l) / reg + lj).exp() };
        e += (col - target_ln(w, lw, gj, reg, rho)).abs();
    }
    e
}

/// Weights with their logarithms: `((a, ln a), (b, ln b))`.
type Logs<'x, T> = ((&'x [T], &'x [f64]), (&'x [T], &'x [f64]));

/// `out = v / reg` in the working dtype.
pub(super) fn scaled<T: Real>(v: &[T], reg: f64, out: &mut [T]) {
    let inv = 1.0 / reg;
    each(out, v, v, |o, &x, _| *o = T::from_f64(x.as_f64() * inv));
}

/// Checks what the loop relies on (the Python API checks the same with nicer messages).
fn validate<T: Real>(n: usize, m: usize, a: &[T], b: &[T], opts: &LseOptions) -> Result<()> {
    let bad = |s: &str| Err(OptError::InvalidInput(s.to_string()));
    if n == 0 || m == 0 || a.len() != n || b.len() != m {
        return bad("a and b must match the cost's shape");
    }
    if !(opts.reg > 0.0 && opts.reg.is_finite()) {
        return bad("reg must be positive and finite");
    }
    let (ra, rb) = opts.reg_m;
    if !(ra > 0.0 && rb > 0.0) || ra.is_nan() || rb.is_nan() {
        return bad("reg_m must be positive (inf for a balanced marginal)");
    }
    let ok = |w: &[T]| w.iter().all(|&x| x.is_finite() && x >= T::zero());
    if !ok(a) || !ok(b) {
        return bad("weights must be finite and non-negative");
    }
    let ma: f64 = a.iter().map(|x| x.as_f64()).sum();
    let mb: f64 = b.iter().map(|x| x.as_f64()).sum();
    if ma <= 0.0 || mb <= 0.0 {
        return bad("a and b must have positive total mass");
    }
    if ra.is_infinite() && rb.is_infinite() && ((ma - mb) / ma).abs() > 1e-6 {
        return bad("a and b must have the same total mass (balanced problem)");
    }
    if let Overrelax::Fixed(w) = opts.overrelax {
        if !(1.0..2.0).contains(&w) {
            return bad("the over-relaxation factor must be in [1, 2)");
        }
    }
    Ok(())
}

/// Log-domain Sinkhorn on a [`LogKernel`], balanced or unbalanced (see the module docs).
/// `x0 = (f0, g0)` warm-starts the potentials (ε-scaling then runs only its last stage).
pub fn sinkhorn_lse<T: Real, K: LogKernel<T> + ?Sized>(
    op: &mut K,
    a: &[T],
    b: &[T],
    opts: &LseOptions,
    x0: Option<(&[T], &[T])>,
    obs: &mut dyn Observer<T>,
) -> Result<LseOutput<T>> {
    let (n, m) = (op.n(), op.m());
    validate(n, m, a, b, opts)?;
    if x0.is_some_and(|(f, g)| f.len() != n || g.len() != m) {
        return Err(OptError::InvalidInput("warm-start potentials have the wrong length".into()));
    }
    let reg = opts.reg;
    let stages = match &opts.eps_scaling {
        Some(es) if x0.is_none() => eps_schedule(reg, es, op.cost_range()),
        _ => vec![reg],
    };
    let (stage_tol, stage_maxiter) =
        opts.eps_scaling.as_ref().map_or((0.0, usize::MAX), |es| (es.stage_tol, es.stage_maxiter.max(1)));
    let alloc = |len, what| crate::alloc::try_zeroed::<T>(len, what);
    let (mut f, mut g) = match x0 {
        Some((f0, g0)) => (f0.to_vec(), g0.to_vec()),
        None => (alloc(n, "f")?, alloc(m, "g")?),
    };
    // `f_prev`: the potentials the iteration starts from (the fused pass updates `f` in place).
    let (mut f_prev, mut g_new) = (alloc(n, "f")?, alloc(m, "g")?);
    let (mut hs_m, mut hs_n) = (alloc(m, "g")?, alloc(n, "f")?);
    let (mut lse_n, mut lse_m, mut lse_m_next) = (alloc(n, "f")?, alloc(m, "g")?, alloc(m, "g")?);
    let mut ctl = Controller::new(opts.overrelax, stages.clone(), stage_tol, stage_maxiter);
    let mut nit = 0usize;

    let aborted = |nit| LseOutput {
        f: Vec::new(),
        g: Vec::new(),
        nit,
        termination: Termination::Aborted,
        marginal_error: f64::NAN,
        cost: f64::NAN,
        fun: f64::NAN,
        mass: f64::NAN,
        stages: 0,
    };
    let finish = |op: &mut K, f: Vec<T>, g: Vec<T>, nit, termination, stage, st: Option<Measured>| {
        let st = match st {
            Some(st) => st,
            None => measure(op, a, b, &f, &g, opts)?,
        };
        if !st.err.is_finite() {
            return Err(super::sinkhorn::overflow_error(reg));
        }
        Ok(LseOutput {
            f,
            g,
            nit,
            termination,
            marginal_error: st.err,
            cost: st.cost,
            fun: st.fun,
            mass: st.mass,
            stages: stage,
        })
    };

    // The column residual of the last g pass (carried into the next ε stage: an estimate until
    // that stage's first g pass; infinite before the first one).
    let mut col_err = f64::INFINITY;
    // The weights' logarithms, taken once (the same numbers as taken at each use).
    let logs = |w: &[T], what| -> Result<Vec<f64>> {
        let mut v = crate::alloc::try_with_capacity(w.len(), what)?;
        v.extend(w.iter().map(|x| x.as_f64().ln()));
        Ok(v)
    };
    let (ln_a, ln_b) = (logs(a, "f")?, logs(b, "g")?);
    // The translation of the last iteration (see `fresh_col_residual`).
    let mut shift = 0.0;
    // What the estimate of a hopeless measurement (below) may be off by, in units of the
    // total mass: the kernel's rounding (f32 kernels round to 1e-7).
    let mass: f64 = a.iter().chain(b).map(|x| x.as_f64()).sum();
    let slack = mass * if T::SAFE_LO < 1e-100 { 1e-11 } else { 1e-3 };
    for (si, &eps) in stages.iter().enumerate() {
        let last = si + 1 == stages.len();
        op.set_reg(eps)?;
        ctl.begin_stage();
        let mut stage_it = 0usize;
        let (mut confirm, mut confirm_fails) = (opts.tol, 0usize);
        loop {
            // One iteration's passes over the kernel (fused where it can: one read of it): the
            // f update from the row pass, relaxed, then the column pass on the new f. What
            // follows decides on the potentials it started from, `(f_prev, g)` (returned when
            // the run ends here: the column pass is then spent), exactly as if it had looked
            // before the update.
            scaled(&g, eps, &mut hs_m);
            f_prev.copy_from_slice(&f);
            let omega = ctl.omega();
            let t_a = tau(opts.reg_m.0, eps);
            let upd = |i: usize, l: T| relaxed(f_prev[i], new_potential(ln_a[i], l, eps, t_a), omega);
            op.rows_cols(&hs_m, &mut lse_n, &upd, eps, &mut f, &mut hs_n, &mut lse_m_next);
            let half = Half { w: a, ln_w: &ln_a, cur: &f_prev, lse: &lse_n, reg: eps, rho: opts.reg_m.0 };
            let row_err = half_residual(&half);
            let err = row_err + col_err;
            // A measurement (a pass over the cost with an exponential per entry) only where the
            // residual re-estimated on the current potentials does not rule success out: one that
            // is at least 1.5 tol + slack away cannot measure <= tol (the estimate is accurate to
            // the kernel's rounding, far below the slack), so it is counted as failed exactly as
            // the measurement would be (its error exceeds tol >= confirm >= err, so the new
            // confirm is err / 2 either way). The last allowed failure is always measured.
            let hopeless = last
                && err <= confirm
                && stage_it > 0
                && confirm_fails < 8
                && row_err + fresh_col_residual((b, &ln_b), &g, &lse_m, eps, opts.reg_m.1, shift)
                    > 1.5 * opts.tol + slack;
            if hopeless {
                confirm_fails += 1;
                confirm = err * 0.5;
            } else if last && err <= confirm {
                let st = measure(op, a, b, &f_prev, &g, opts)?;
                if st.err <= opts.tol {
                    return finish(op, f_prev, g, nit, Termination::Converged, si + 1, Some(st));
                }
                // Rounding keeps the measured error above the estimate: ask for more (a few
                // times at most: then it is a precision floor).
                confirm_fails += 1;
                if confirm_fails > 8 {
                    ctl.stall.best = ctl.stall.best.min(st.err);
                    return finish(op, f_prev, g, nit, ctl.stall.termination::<T>(opts.tol), si + 1, Some(st));
                }
                confirm = err.min(st.err) * 0.5;
            }
            if nit >= opts.maxiter {
                return finish(op, f_prev, g, nit, Termination::MaxIter, si + 1, None);
            }
            if last && err.is_finite() && ctl.stalled(nit, err) {
                return finish(op, f_prev, g, nit, ctl.stall.termination::<T>(opts.tol), si + 1, None);
            }
            // nit = 0: the initial potentials are not yet consistent with zero weights.
            let control = if nit == 0 {
                Control::Continue
            } else {
                obs.observe(nit, &|| Report {
                    nit,
                    error: err,
                    vectors: vec![("f", f_prev.clone()), ("g", g.clone())],
                    scalars: vec![("reg", eps), ("omega", ctl.omega())],
                })
            };
            match control {
                Control::Continue => {}
                Control::Stop => return finish(op, f_prev, g, nit, Termination::Stopped, si + 1, None),
                Control::Abort => return Ok(aborted(nit)),
            }
            std::mem::swap(&mut lse_m, &mut lse_m_next);
            let half = Half { w: b, ln_w: &ln_b, cur: &g, lse: &lse_m, reg: eps, rho: opts.reg_m.1 };
            col_err = half_update(&half, &mut g_new);
            relax(&mut g, &g_new, omega);
            shift = translate(&mut f, &mut g, ((a, &ln_a), (b, &ln_b)), eps, opts.reg_m);
            nit += 1;
            stage_it += 1;
            ctl.observe(err);
            if !last && ctl.stage_over(err, stage_it) {
                break;
            }
        }
    }
    unreachable!("the last stage only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::grid::{Grid, GridOperator};
    use crate::ot::lse_dense::DenseOperator;
    use crate::ot::sinkhorn::{sinkhorn_log, LogOptions, Problem};
    use crate::solver::NoObserver;

    fn opts(reg: f64, reg_m: (f64, f64)) -> LseOptions {
        LseOptions { reg, reg_m, tol: 1e-12, maxiter: 20_000, eps_scaling: None, overrelax: Overrelax::Auto }
    }

    #[test]
    fn grid_matches_dense_balanced() {
        let grid = Grid::new(vec![vec![0.0, 0.2, 0.5, 0.6, 1.0], vec![0.0, 0.3, 0.9]], 2.0).unwrap();
        let n = grid.len();
        let a: Vec<f64> = (0..n).map(|i| 1.0 + (i % 3) as f64).collect();
        let sa: f64 = a.iter().sum();
        let a: Vec<f64> = a.iter().map(|x| x / sa).collect();
        let b: Vec<f64> = (0..n).map(|i| 1.0 + (i % 4) as f64).collect();
        let sb: f64 = b.iter().sum();
        let b: Vec<f64> = b.iter().map(|x| x / sb).collect();
        let shape = grid.shape();
        let pt = |i: usize| [grid.axes()[0][i / shape[1]], grid.axes()[1][i % shape[1]]];
        let cost: Vec<f64> = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| {
                let (x, y) = (pt(i), pt(j));
                (x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2)
            })
            .collect();
        let reg = 0.05;
        let mut op = GridOperator::new(&grid).unwrap();
        let out =
            sinkhorn_lse(&mut op, &a, &b, &opts(reg, (f64::INFINITY, f64::INFINITY)), None, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged);
        let dense = sinkhorn_log(
            &Problem::new(&a, &b, &cost),
            &LogOptions { reg, tol: 1e-13, maxiter: 10_000, eps_scaling: None, overrelax: Overrelax::Auto },
            None,
            None,
            &mut NoObserver,
        )
        .unwrap();
        let c = out.f[0] - dense.f[0];
        for (u, v) in out.f.iter().zip(&dense.f) {
            assert!((u - c - v).abs() <= 1e-10, "{u} {v}");
        }
        assert!((out.cost - dense.cost).abs() <= 1e-10);
        assert!((out.fun - dense.fun).abs() <= 1e-10);
    }

    #[test]
    fn dense_unbalanced_is_a_fixed_point() {
        let (n, m) = (7, 5);
        let a: Vec<f64> = (0..n).map(|i| 0.1 + 0.05 * i as f64).collect();
        let b: Vec<f64> = (0..m).map(|j| 0.3 - 0.02 * j as f64).collect();
        let cost: Vec<f64> = (0..n * m).map(|k| ((k * 37) % 11) as f64 / 11.0).collect();
        let mut op = DenseOperator::new(&cost, n, m).unwrap();
        let out = sinkhorn_lse(&mut op, &a, &b, &opts(0.1, (0.5, 2.0)), None, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged);
        assert!(out.marginal_error <= 1e-12);
    }
}
