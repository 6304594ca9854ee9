//! Log-domain Sinkhorn on point clouds without an `n x m` array (the CPU counterpart of the
//! GPU's online kernel).
//!
//! The cost is the squared Euclidean distance `C_ij = ||x_i - y_j||^2`, computed on the fly
//! for one row at a time. Each half-iteration is one pass over row blocks (in parallel, a
//! fixed block size, so the result does not depend on the number of threads):
//! `f_i <- reg (ln a_i - LSE_j((g_j - C_ij)/reg))` with the max-shifted log-sum-exp, and the
//! same for `g` with the roles of `x` and `y` exchanged. Memory is `O((n + m) d)`: the
//! potentials, the points and one scratch row per block in flight.
//!
//! # What the tolerance means
//!
//! The `f` pass measures the row error of the current plan `P(f, g)` for free (the row sums
//! are `exp(f_i/reg + LSE_i)`); the `g` pass the column error of `P(f_new, g)`. When their sum
//! drops below `tol`, the current `(f, g)` is measured exactly: row and column sums of
//! `P_ij = exp((f_i + g_j - C_ij)/reg)`, every entry evaluated in f64 from the returned
//! potentials and accumulated in f64 (two passes). Only that measurement decides success,
//! and the returned `marginal_error`, `cost` and `fun` are the ones of that measurement.
//!
//! Over-relaxation (`omega`, as in [`super::sinkhorn`]) is decided by the shared
//! [`Controller`]: `f <- f + omega (f_sinkhorn - f)`.

use super::controller::{Controller, Overrelax};
use crate::error::{OptError, Result};
use crate::real::{Fused, Madd, Real, Unfused};
use crate::solver::{Control, Observer, Report, Termination};
use rayon::prelude::*;

/// Rows per block of a pass (fixed: results do not depend on the number of threads).
const BLOCK: usize = 64;

/// Rows per interrupt check: a pass runs its blocks in parallel in groups of this many rows
/// and asks the observer whether the run was interrupted between groups. The groups are whole
/// blocks and the per-block results are kept in block order, so the grouping changes no sum.
const GROUP: usize = BLOCK * 64;

/// Runs `run` on consecutive row ranges of at most [`GROUP`] rows (`rows` in all), asking
/// `interrupted` between them; the per-block results in order, or `None` when interrupted.
fn grouped<R>(
    rows: usize,
    interrupted: &mut dyn FnMut() -> bool,
    mut run: impl FnMut(std::ops::Range<usize>) -> Vec<R>,
) -> Option<Vec<R>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows {
        let end = (start + GROUP).min(rows);
        out.extend(run(start..end));
        start = end;
        if start < rows && interrupted() {
            return None;
        }
    }
    Some(out)
}

/// A point-cloud problem: weights `a` (n), `b` (m), points `x` (n x d) and `y` (m x d),
/// row-major.
#[derive(Clone, Copy)]
pub struct Clouds<'a, T> {
    pub a: &'a [T],
    pub b: &'a [T],
    pub x: &'a [T],
    pub y: &'a [T],
    pub d: usize,
}

impl<T: Real> Clouds<'_, T> {
    fn n(&self) -> usize {
        self.a.len()
    }
    fn m(&self) -> usize {
        self.b.len()
    }

    /// Checks what the algorithm relies on (the Python API checks the same with nicer messages).
    fn validate(&self, reg: f64) -> Result<()> {
        let bad = |s: &str| Err(OptError::InvalidInput(s.to_string()));
        let (n, m, d) = (self.n(), self.m(), self.d);
        if n == 0 || m == 0 || d == 0 {
            return bad("empty problem");
        }
        if self.x.len() != n * d || self.y.len() != m * d {
            return bad("inconsistent shapes of a, b, x and y");
        }
        if !(reg > 0.0 && reg.is_finite()) {
            return bad("reg must be positive and finite");
        }
        let weights_ok = |w: &[T]| w.iter().all(|&v| v.is_finite() && v >= T::zero());
        if !weights_ok(self.a) || !weights_ok(self.b) {
            return bad("weights must be finite and non-negative");
        }
        if !self.x.iter().chain(self.y).all(|v| v.is_finite()) {
            return bad("x and y must be finite");
        }
        let ma: f64 = self.a.iter().map(|v| v.as_f64()).sum();
        let mb: f64 = self.b.iter().map(|v| v.as_f64()).sum();
        if ma <= 0.0 || mb <= 0.0 || ((ma - mb) / ma).abs() > 1e-6 {
            return bad("a and b must have the same (positive) total mass");
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct OnlineOptions {
    pub reg: f64,
    /// Bound on `||P 1 - a||_1 + ||P^T 1 - b||_1` of the plan implied by the returned potentials.
    pub tol: f64,
    pub maxiter: usize,
    pub overrelax: Overrelax,
}

/// Result of one solve (no plan: it is implied by `f`, `g`). `f`, `g` are empty when the run
/// was aborted.
#[derive(Debug)]
pub struct OnlineOutput<T> {
    pub f: Vec<T>,
    pub g: Vec<T>,
    pub nit: usize,
    pub termination: Termination,
    /// L1 marginal error of the implied plan, measured exactly (f64).
    pub marginal_error: f64,
    /// `<P, C>`.
    pub cost: f64,
    /// `<P, C> + reg sum P ln P`.
    pub fun: f64,
}

/// The points `pts` (count x d, row-major) as `d` coordinate columns (d x count): the inner
/// loops over the other side's points then run over contiguous slices and vectorise.
fn columns<T: Real, U: Real>(pts: &[T], d: usize) -> Vec<U> {
    let count = pts.len() / d;
    let mut out = vec![U::zero(); count * d];
    for (j, p) in pts.chunks_exact(d).enumerate() {
        for (k, &v) in p.iter().enumerate() {
            out[k * count + j] = U::from_f64(v.as_f64());
        }
    }
    out
}

/// `z_j = hs_j - ||p - q_j||^2 / reg` for every other point `q_j` (coordinate columns `cols`),
/// and `max_j z_j`.
#[inline(always)]
fn exponents<T: Real, M: Madd>(p: &[T], cols: &[T], hs: &[T], ninv: T, z: &mut [T]) -> T {
    let mo = hs.len();
    z.fill(T::zero());
    for (k, &pk) in p.iter().enumerate() {
        for (zj, &q) in z.iter_mut().zip(&cols[k * mo..(k + 1) * mo]) {
            let t = pk - q;
            *zj = M::madd(t, t, *zj);
        }
    }
    const L: usize = 8;
    let mut acc = [T::neg_infinity(); L];
    let mut zc = z.chunks_exact_mut(L);
    let mut hc = hs.chunks_exact(L);
    for (zr, hr) in (&mut zc).zip(&mut hc) {
        for l in 0..L {
            let v = M::madd(zr[l], ninv, hr[l]);
            zr[l] = v;
            acc[l] = if v > acc[l] { v } else { acc[l] };
        }
    }
    for (zj, &hj) in zc.into_remainder().iter_mut().zip(hc.remainder()) {
        let v = M::madd(*zj, ninv, hj);
        *zj = v;
        acc[0] = if v > acc[0] { v } else { acc[0] };
    }
    acc.iter().fold(T::neg_infinity(), |m, &v| if v > m { v } else { m })
}

/// `sum_j exp(z_j - mx)`, accumulated in f64.
#[inline(always)]
fn sum_exp<T: Real, M: Madd>(z: &[T], mx: T) -> f64 {
    const L: usize = 8;
    let mut acc = [0f64; L];
    let mut zc = z.chunks_exact(L);
    for zr in &mut zc {
        for l in 0..L {
            acc[l] += (zr[l] - mx).fast_exp::<M>().as_f64();
        }
    }
    for &v in zc.remainder() {
        acc[0] += (v - mx).fast_exp::<M>().as_f64();
    }
    acc.iter().sum()
}

/// `max_j z_j` and `sum_j exp(z_j - max)` of one own point `p` (see [`exponents`]).
#[inline(always)]
fn row_lse<T: Real, M: Madd>(p: &[T], cols: &[T], hs: &[T], ninv: T, z: &mut [T]) -> (T, f64) {
    let mx = exponents::<T, M>(p, cols, hs, ninv, z);
    if mx == T::neg_infinity() {
        return (mx, 0.0);
    }
    (mx, sum_exp::<T, M>(z, mx))
}

/// [`row_lse`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_lse_avx2<T: Real>(p: &[T], cols: &[T], hs: &[T], ninv: T, z: &mut [T]) -> (T, f64) {
    row_lse::<T, Fused>(p, cols, hs, ninv, z)
}

/// [`row_lse`], the AVX2 + FMA version where the CPU has it (`fast`).
#[inline(always)]
fn row_lse_dispatch<T: Real>(fast: bool, p: &[T], cols: &[T], hs: &[T], ninv: T, z: &mut [T]) -> (T, f64) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is true only when the CPU supports AVX2 and FMA.
        return unsafe { row_lse_avx2(p, cols, hs, ninv, z) };
    }
    let _ = fast;
    row_lse::<T, Unfused>(p, cols, hs, ninv, z)
}

/// Whether the AVX2 + FMA versions run on this CPU.
fn simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One half-iteration: for every own point `i` (points `own`, weights `w`, current potential
/// `cur`), `out_i = reg (ln w_i - LSE_j((h_j - C_ij)/reg))` over the other points (coordinate
/// columns `cols`) with potentials `h`. Returns `sum_i |sum_j P(cur, h)_ij - w_i|` (f64).
#[allow(clippy::too_many_arguments)] // the slices of one pass, as is
fn half_pass<T: Real>(
    own: &[T],
    cols: &[T],
    d: usize,
    w: &[T],
    cur: &[T],
    h: &[T],
    reg: f64,
    out: &mut [T],
    interrupted: &mut dyn FnMut() -> bool,
) -> Option<f64> {
    let inv = 1.0 / reg;
    let ninv = T::from_f64(-inv);
    let hs: Vec<T> = h.iter().map(|&v| T::from_f64(v.as_f64() * inv)).collect();
    let mo = h.len();
    let fast = simd();
    let errs: Vec<f64> = grouped(w.len(), interrupted, |r| {
        own[r.start * d..r.end * d]
            .par_chunks(BLOCK * d)
            .zip(w[r.clone()].par_chunks(BLOCK))
            .zip(cur[r.clone()].par_chunks(BLOCK))
            .zip(out[r].par_chunks_mut(BLOCK))
            .map_init(
                || vec![T::zero(); mo],
                |z, (((pts, wb), cb), ob)| {
                    let mut err = 0.0;
                    for (((p, &wi), &ci), o) in pts.chunks_exact(d).zip(wb).zip(cb).zip(ob.iter_mut()) {
                        let (mx, sum) = row_lse_dispatch(fast, p, cols, &hs, ninv, z);
                        let wi = wi.as_f64();
                        if mx == T::neg_infinity() {
                            // No mass reaches this point: the row of the plan is zero.
                            err += wi;
                            *o = if wi == 0.0 { T::neg_infinity() } else { T::infinity() };
                            continue;
                        }
                        let lse = mx.as_f64() + sum.ln();
                        let row = if ci == T::neg_infinity() { 0.0 } else { (ci.as_f64() * inv + lse).exp() };
                        err += (row - wi).abs();
                        *o = if wi == 0.0 { T::neg_infinity() } else { T::from_f64(reg * (wi.ln() - lse)) };
                    }
                    err
                },
            )
            .collect()
    })?;
    Some(errs.iter().sum())
}

/// Exact measurement of `P(f, g)` in f64: what [`measure`] returns.
#[derive(Clone, Copy, Debug, Default)]
struct Measured {
    err: f64,
    cost: f64,
    plogp: f64,
}

/// Row sum, `sum_j P_ij C_ij` and (if `full`) `sum_j P_ij ln P_ij` of one own point `p` with
/// `fi = f_i / reg` (all in f64; `c` scratch of the other side's length).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one row's slices, as is
fn measure_row<T: Real, M: Madd>(
    p: &[T],
    fi: f64,
    cols: &[f64],
    gs: &[f64],
    inv: f64,
    c: &mut [f64],
    full: bool,
) -> (f64, f64, f64) {
    let mo = gs.len();
    c.fill(0.0);
    for (k, &pk) in p.iter().enumerate() {
        let pk = pk.as_f64();
        for (cj, &q) in c.iter_mut().zip(&cols[k * mo..(k + 1) * mo]) {
            let t = pk - q;
            *cj = M::madd(t, t, *cj);
        }
    }
    const L: usize = 4;
    let (mut row, mut cost, mut plogp) = ([0f64; L], [0f64; L], [0f64; L]);
    let mut cc = c.chunks_exact(L);
    let mut gc = gs.chunks_exact(L);
    for (cr, gr) in (&mut cc).zip(&mut gc) {
        for l in 0..L {
            let e = M::madd(cr[l], -inv, fi + gr[l]);
            let pij = e.fast_exp::<M>();
            row[l] += pij;
            if full {
                cost[l] += pij * cr[l];
                // 0 * -inf is NaN: an entry that is exactly 0 adds nothing.
                plogp[l] += if pij > 0.0 { pij * e } else { 0.0 };
            }
        }
    }
    for (&cj, &gj) in cc.remainder().iter().zip(gc.remainder()) {
        let e = M::madd(cj, -inv, fi + gj);
        let pij = e.fast_exp::<M>();
        row[0] += pij;
        if full {
            cost[0] += pij * cj;
            plogp[0] += if pij > 0.0 { pij * e } else { 0.0 };
        }
    }
    (row.iter().sum(), cost.iter().sum(), plogp.iter().sum())
}

/// [`measure_row`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn measure_row_avx2<T: Real>(
    p: &[T],
    fi: f64,
    cols: &[f64],
    gs: &[f64],
    inv: f64,
    c: &mut [f64],
    full: bool,
) -> (f64, f64, f64) {
    measure_row::<T, Fused>(p, fi, cols, gs, inv, c, full)
}

/// [`measure_row`], the AVX2 + FMA version where the CPU has it (`fast`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn measure_row_dispatch<T: Real>(
    fast: bool,
    p: &[T],
    fi: f64,
    cols: &[f64],
    gs: &[f64],
    inv: f64,
    c: &mut [f64],
    full: bool,
) -> (f64, f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is true only when the CPU supports AVX2 and FMA.
        return unsafe { measure_row_avx2(p, fi, cols, gs, inv, c, full) };
    }
    measure_row::<T, Unfused>(p, fi, cols, gs, inv, c, full)
}

/// Row sums of `P_ij = exp((pf_i + pg_j - C_ij)/reg)` (every entry in f64; `cols` the other
/// points' f64 coordinate columns) against `w`, and (if `full`) `sum P C` and `sum P ln P`;
/// per block, summed in block order.
#[allow(clippy::too_many_arguments)] // the slices of one pass, as is
fn measure_rows<T: Real>(
    own: &[T],
    cols: &[f64],
    d: usize,
    w: &[T],
    pf: &[T],
    pg: &[T],
    reg: f64,
    full: bool,
    interrupted: &mut dyn FnMut() -> bool,
) -> Option<Measured> {
    let inv = 1.0 / reg;
    let gs: Vec<f64> = pg.iter().map(|&v| v.as_f64() * inv).collect();
    let mo = pg.len();
    let fast = simd();
    let parts: Vec<Measured> = grouped(w.len(), interrupted, |r| {
        own[r.start * d..r.end * d]
            .par_chunks(BLOCK * d)
            .zip(w[r.clone()].par_chunks(BLOCK))
            .zip(pf[r].par_chunks(BLOCK))
            .map_init(
                || vec![0f64; mo],
                |c, ((pts, wb), fb)| {
                    let mut acc = Measured::default();
                    for ((p, &wi), &fi) in pts.chunks_exact(d).zip(wb).zip(fb) {
                        let fi = fi.as_f64() * inv;
                        let mut row = 0.0;
                        if fi != f64::NEG_INFINITY {
                            let (r, cost, plogp) = measure_row_dispatch(fast, p, fi, cols, &gs, inv, c, full);
                            row = r;
                            acc.cost += cost;
                            acc.plogp += plogp;
                        }
                        acc.err += (row - wi.as_f64()).abs();
                    }
                    acc
                },
            )
            .collect()
    })?;
    Some(parts.iter().fold(Measured::default(), |s, p| Measured {
        err: s.err + p.err,
        cost: s.cost + p.cost,
        plogp: s.plogp + p.plogp,
    }))
}

/// The marginal error, cost and `sum P ln P` of `P(f, g)`, measured exactly (two passes).
fn measure<T: Real>(
    p: &Clouds<'_, T>,
    f: &[T],
    g: &[T],
    reg: f64,
    interrupted: &mut dyn FnMut() -> bool,
) -> Option<Measured> {
    let rows = measure_rows(p.x, &columns::<T, f64>(p.y, p.d), p.d, p.a, f, g, reg, true, interrupted)?;
    let cols = measure_rows(p.y, &columns::<T, f64>(p.x, p.d), p.d, p.b, g, f, reg, false, interrupted)?;
    Some(Measured { err: rows.err + cols.err, ..rows })
}

/// `v <- v + omega (new - v)`, or `new` where either is infinite (zero weights, first pass).
fn relax<T: Real>(v: &mut [T], new: &[T], omega: f64) {
    for (x, &y) in v.iter_mut().zip(new) {
        *x = if omega == 1.0 || !x.is_finite() || !y.is_finite() {
            y
        } else {
            T::from_f64(x.as_f64() + omega * (y.as_f64() - x.as_f64()))
        };
    }
}

/// Log-domain Sinkhorn on point clouds with the cost computed on the fly. `f0`, `g0`
/// warm-start the potentials (units of the cost). Runs on the current rayon pool.
pub fn sinkhorn_online<T: Real>(
    p: &Clouds<'_, T>,
    opts: &OnlineOptions,
    f0: Option<&[T]>,
    g0: Option<&[T]>,
    obs: &mut dyn Observer<T>,
) -> Result<OnlineOutput<T>> {
    let reg = opts.reg;
    p.validate(reg)?;
    let (n, m, d) = (p.n(), p.m(), p.d);
    if f0.is_some_and(|f| f.len() != n) || g0.is_some_and(|g| g.len() != m) {
        return Err(OptError::InvalidInput("warm-start potentials have the wrong length".into()));
    }
    if let Overrelax::Fixed(w) = opts.overrelax {
        if !(1.0..2.0).contains(&w) {
            return Err(OptError::InvalidInput("the over-relaxation factor must be in [1, 2)".into()));
        }
    }
    let mut f = f0.map_or_else(|| crate::alloc::try_zeroed::<T>(n, "f"), |v| Ok(v.to_vec()))?;
    let mut g = g0.map_or_else(|| crate::alloc::try_zeroed::<T>(m, "g"), |v| Ok(v.to_vec()))?;
    let mut tmp_f = crate::alloc::try_zeroed::<T>(n, "f")?;
    let mut tmp_g = crate::alloc::try_zeroed::<T>(m, "g")?;
    let (xcols, ycols) = (columns::<T, T>(p.x, d), columns::<T, T>(p.y, d));
    let mut ctl = Controller::new(opts.overrelax, vec![reg], 0.0, usize::MAX);
    ctl.begin_stage();
    let mut nit = 0usize;
    let mut col_err = f64::INFINITY;
    let mut confirm = opts.tol;
    let mut confirm_fails = 0usize;

    let aborted = |nit| OnlineOutput {
        f: Vec::new(),
        g: Vec::new(),
        nit,
        termination: Termination::Aborted,
        marginal_error: f64::NAN,
        cost: f64::NAN,
        fun: f64::NAN,
    };
    let finish = |f: Vec<T>, g: Vec<T>, nit, termination, st: Option<Measured>, obs: &mut dyn Observer<T>| {
        let st = match st {
            Some(st) => st,
            None => match measure(p, &f, &g, reg, &mut || obs.interrupted()) {
                Some(st) => st,
                None => return Ok(aborted(nit)),
            },
        };
        if !st.err.is_finite() {
            return Err(super::sinkhorn::overflow_error(reg));
        }
        Ok(OnlineOutput {
            f,
            g,
            nit,
            termination,
            marginal_error: st.err,
            cost: st.cost,
            fun: st.cost + reg * st.plogp,
        })
    };

    loop {
        // The f pass: the row error of P(f, g) and the Sinkhorn update of f (not yet applied).
        let Some(row_err) = half_pass(p.x, &ycols, d, p.a, &f, &g, reg, &mut tmp_f, &mut || obs.interrupted()) else {
            return Ok(aborted(nit));
        };
        let err = row_err + col_err;
        if err <= confirm {
            let Some(st) = measure(p, &f, &g, reg, &mut || obs.interrupted()) else {
                return Ok(aborted(nit));
            };
            if st.err <= opts.tol {
                return finish(f, g, nit, Termination::Converged, Some(st), obs);
            }
            // Rounding keeps the measured error above the estimate: ask for more (a few times
            // at most: then it is a precision floor).
            confirm_fails += 1;
            if confirm_fails > 8 {
                ctl.stall.best = ctl.stall.best.min(st.err);
                return finish(f, g, nit, ctl.stall.termination::<T>(opts.tol), Some(st), obs);
            }
            confirm = err.min(st.err) * 0.5;
        }
        if nit >= opts.maxiter {
            return finish(f, g, nit, Termination::MaxIter, None, obs);
        }
        if ctl.stalled(nit, err) {
            return finish(f, g, nit, ctl.stall.termination::<T>(opts.tol), None, obs);
        }
        // nit = 0: the initial potentials are not yet consistent with zero weights.
        let control = if nit == 0 {
            Control::Continue
        } else {
            obs.observe(nit, &|| Report {
                nit,
                error: err,
                vectors: vec![("f", f.clone()), ("g", g.clone())],
                scalars: vec![("reg", reg), ("omega", ctl.omega())],
            })
        };
        match control {
            Control::Continue => {}
            Control::Stop => return finish(f, g, nit, Termination::Stopped, None, obs),
            Control::Abort => return Ok(aborted(nit)),
        }
        let omega = ctl.omega();
        relax(&mut f, &tmp_f, omega);
        let Some(c) = half_pass(p.y, &xcols, d, p.b, &g, &f, reg, &mut tmp_g, &mut || obs.interrupted()) else {
            return Ok(aborted(nit));
        };
        col_err = c;
        relax(&mut g, &tmp_g, omega);
        nit += 1;
        ctl.observe(err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::sinkhorn::{sinkhorn_log, LogOptions, Problem};
    use crate::solver::NoObserver;

    /// `||p - q||^2` in the working dtype (the formula of the dense path's cost).
    #[inline(always)]
    fn sqdist<T: Real>(p: &[T], q: &[T]) -> T {
        p.iter().zip(q).fold(T::zero(), |s, (&u, &v)| {
            let t = u - v;
            s + t * t
        })
    }

    fn clouds(n: usize, m: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
        let mut s = 12345u64;
        let mut r = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        ((0..n * d).map(|_| r()).collect(), (0..m * d).map(|_| r()).collect())
    }

    #[test]
    fn matches_the_dense_log_solver() {
        let (n, m, d) = (37, 53, 3);
        let (x, y) = clouds(n, m, d);
        let a = vec![1.0 / n as f64; n];
        let b = vec![1.0 / m as f64; m];
        let cost: Vec<f64> = (0..n)
            .flat_map(|i| (0..m).map(|j| sqdist(&x[i * d..(i + 1) * d], &y[j * d..(j + 1) * d])).collect::<Vec<_>>())
            .collect();
        let reg = 0.05;
        let dense = sinkhorn_log(
            &Problem::new(&a, &b, &cost),
            &LogOptions { reg, tol: 1e-13, maxiter: 10_000, eps_scaling: None, overrelax: Overrelax::Auto },
            None,
            None,
            &mut NoObserver,
        )
        .unwrap();
        let on = sinkhorn_online(
            &Clouds { a: &a, b: &b, x: &x, y: &y, d },
            &OnlineOptions { reg, tol: 1e-13, maxiter: 10_000, overrelax: Overrelax::Auto },
            None,
            None,
            &mut NoObserver,
        )
        .unwrap();
        assert_eq!(on.termination, Termination::Converged);
        assert!(on.marginal_error <= 1e-13);
        // Potentials are unique up to f + c, g - c.
        let c = on.f[0] - dense.f[0];
        for (u, v) in on.f.iter().zip(&dense.f) {
            assert!((u - c - v).abs() <= 1e-10 * v.abs().max(1.0));
        }
        for (u, v) in on.g.iter().zip(&dense.g) {
            assert!((u + c - v).abs() <= 1e-10 * v.abs().max(1.0));
        }
        assert!((on.cost - dense.cost).abs() <= 1e-10 * dense.cost.abs());
        assert!((on.fun - dense.fun).abs() <= 1e-10 * dense.fun.abs());
    }

    #[test]
    fn bit_identical_for_any_workers() {
        let (n, m, d) = (300, 200, 2);
        let (x, y) = clouds(n, m, d);
        let a = vec![1.0 / n as f64; n];
        let b = vec![1.0 / m as f64; m];
        let opts = OnlineOptions { reg: 0.01, tol: 1e-9, maxiter: 50, overrelax: Overrelax::Auto };
        let run = |w| {
            crate::parallel::with_workers(Some(w), || {
                sinkhorn_online(&Clouds { a: &a, b: &b, x: &x, y: &y, d }, &opts, None, None, &mut NoObserver).unwrap()
            })
        };
        let (r1, r2) = (run(1), run(3));
        assert_eq!(r1.f, r2.f);
        assert_eq!(r1.g, r2.g);
        assert_eq!(r1.marginal_error.to_bits(), r2.marginal_error.to_bits());
    }
}
