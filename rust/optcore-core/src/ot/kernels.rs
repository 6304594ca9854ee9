//! Row kernels of the dense Sinkhorn passes.
//!
//! Each kernel works on one block of rows of a row-major cost matrix, is generic over the
//! float type `T` and the multiply-add policy `M`, and is compiled twice: once for any x86-64
//! CPU ([`Unfused`]) and once with AVX2+FMA enabled ([`Fused`]), chosen at run time by
//! [`dispatch!`]. Sums are accumulated in f64 in eight independent lanes (so they vectorise
//! and are accurate for f32 data); their order depends on the data size only. The exception is
//! the scaling pass in float32, whose dot products and column sums run in float32 over short
//! blocks flushed to f64 (see [`narrow`]).

use crate::real::{Fused, Madd, Real, Unfused};

const LANES: usize = 8;

/// `out[j] = exp(c + gs[j] - mrow[j] * inv)`; returns `sum_j out[j]` (in f64).
#[inline(always)]
fn row_exp<T: Real, M: Madd>(mrow: &[T], gs: &[T], c: T, ninv: T, out: &mut [T]) -> f64 {
    let mut acc = [0f64; LANES];
    let mut mc = mrow.chunks_exact(LANES);
    let mut gc = gs.chunks_exact(LANES);
    let mut oc = out.chunks_exact_mut(LANES);
    for ((mr, gr), or) in (&mut mc).zip(&mut gc).zip(&mut oc) {
        for l in 0..LANES {
            let e = M::madd(mr[l], ninv, c + gr[l]).fast_exp::<M>();
            or[l] = e;
            acc[l] += e.as_f64();
        }
    }
    for ((&mv, &gv), o) in mc.remainder().iter().zip(gc.remainder()).zip(oc.into_remainder()) {
        let e = M::madd(mv, ninv, c + gv).fast_exp::<M>();
        *o = e;
        acc[0] += e.as_f64();
    }
    acc.iter().sum()
}

/// `max_j (gs[j] - mrow[j] * inv)` in f64 (`-inf` if every term is `-inf`).
#[inline(always)]
fn row_max<T: Real, M: Madd>(mrow: &[T], gs: &[T], ninv: T) -> f64 {
    let mut acc = [T::neg_infinity(); LANES];
    let mut mc = mrow.chunks_exact(LANES);
    let mut gc = gs.chunks_exact(LANES);
    for (mr, gr) in (&mut mc).zip(&mut gc) {
        for l in 0..LANES {
            let x = M::madd(mr[l], ninv, gr[l]);
            acc[l] = if x > acc[l] { x } else { acc[l] };
        }
    }
    for (&mv, &gv) in mc.remainder().iter().zip(gc.remainder()) {
        let x = M::madd(mv, ninv, gv);
        acc[0] = if x > acc[0] { x } else { acc[0] };
    }
    acc.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v.as_f64()))
}

/// `acc[j] += x[j] * s` (f64 accumulators).
#[inline(always)]
fn axpy<T: Real, M: Madd>(acc: &mut [f64], x: &[T], s: f64) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a = M::madd(v.as_f64(), s, *a);
    }
}

/// Whether `T` is float32, whose hot sums run in `T` over short blocks (twice the SIMD width
/// of f64) and are flushed to f64 accumulators after each block.
#[inline(always)]
fn narrow<T: Real>() -> bool {
    T::NAME == "float32"
}

/// Elements of a float32 dot product summed in float32 lanes before a flush to f64 (16 per
/// lane: relative rounding about 1e-6, far below float32's default tol of 1e-5).
const DOT_BLOCK: usize = 128;

/// Rows of the scaling pass whose column sums accumulate in float32 before a flush to f64.
const FLUSH_ROWS: usize = 16;

/// `sum_j x[j] * y[j]` in f64 (float32: in blocks of [`DOT_BLOCK`], see [`narrow`]).
#[inline(always)]
fn dot<T: Real, M: Madd>(x: &[T], y: &[T]) -> f64 {
    if narrow::<T>() {
        let mut total = [0f64; LANES];
        for (xb, yb) in x.chunks(DOT_BLOCK).zip(y.chunks(DOT_BLOCK)) {
            let mut acc = [T::zero(); LANES];
            let mut xc = xb.chunks_exact(LANES);
            let mut yc = yb.chunks_exact(LANES);
            for (xr, yr) in (&mut xc).zip(&mut yc) {
                for l in 0..LANES {
                    acc[l] = M::madd(xr[l], yr[l], acc[l]);
                }
            }
            for (&a, &b) in xc.remainder().iter().zip(yc.remainder()) {
                acc[0] = M::madd(a, b, acc[0]);
            }
            for l in 0..LANES {
                total[l] += acc[l].as_f64();
            }
        }
        return total.iter().sum();
    }
    let mut acc = [0f64; LANES];
    let mut xc = x.chunks_exact(LANES);
    let mut yc = y.chunks_exact(LANES);
    for (xr, yr) in (&mut xc).zip(&mut yc) {
        for l in 0..LANES {
            acc[l] = M::madd(xr[l].as_f64(), yr[l].as_f64(), acc[l]);
        }
    }
    for (&a, &b) in xc.remainder().iter().zip(yc.remainder()) {
        acc[0] = M::madd(a.as_f64(), b.as_f64(), acc[0]);
    }
    acc.iter().sum()
}

/// Inputs of one row block of a log-domain pass.
pub struct LogBlock<'a, T> {
    /// `rows * m` costs, row-major.
    pub mrows: &'a [T],
    /// The block's target row masses.
    pub a: &'a [T],
    /// The block's current row potentials.
    pub f: &'a [T],
    /// `g / reg` (all columns).
    pub gs: &'a [T],
    pub reg: f64,
}

/// The fused log-domain Sinkhorn pass over one row block (see `sinkhorn.rs` for the maths).
///
/// For each row: `r_i = sum_j exp((f_i + g_j - M_ij)/reg)` (the row marginal of the current
/// plan), the updated potential `f_new_i = f_i + reg*ln(a_i / r_i)`, and the new plan's row
/// `exp((f_new_i + g_j - M_ij)/reg)` added into `colacc` (the column marginals after the
/// f-update), all from one read of the row. A row whose sum leaves the trusted range (under-
/// or overflow) is redone with the exact max-shifted log-sum-exp, and so is every row when
/// `exact` is set. Returns `sum_i |r_i - a_i|`.
#[inline(always)]
fn log_rows<T: Real, M: Madd>(
    blk: &LogBlock<'_, T>,
    exact: bool,
    f_new: &mut [T],
    tmp: &mut [T],
    colacc: &mut [f64],
) -> f64 {
    let m = blk.gs.len();
    let inv = 1.0 / blk.reg;
    let ninv = T::from_f64(-inv);
    colacc.iter_mut().for_each(|v| *v = 0.0);
    let mut err = 0.0;
    for (i, mrow) in blk.mrows.chunks_exact(m).enumerate() {
        let ai = blk.a[i].as_f64();
        if ai == 0.0 {
            f_new[i] = T::neg_infinity();
            continue;
        }
        let fi = blk.f[i].as_f64();
        if !exact && fi.is_finite() {
            let r = row_exp::<T, M>(mrow, blk.gs, T::from_f64(fi * inv), ninv, tmp);
            if r >= T::SAFE_LO && r <= T::SAFE_HI {
                err += (r - ai).abs();
                let scale = ai / r;
                f_new[i] = T::from_f64(fi + blk.reg * scale.ln());
                axpy::<T, M>(colacc, tmp, scale);
                continue;
            }
        }
        // Exact path: lse = log sum_j exp(gs_j - M_ij/reg), f_new = reg (ln a_i - lse).
        let mx = row_max::<T, M>(mrow, blk.gs, ninv);
        let s = row_exp::<T, M>(mrow, blk.gs, T::from_f64(-mx), ninv, tmp);
        // The largest term is exp(0) = 1 (0 or inf only when the exponent's rounding exceeds
        // its size, at a reg far below the cost's resolution: then that term stands alone).
        let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
        let lse = mx + s.ln();
        let r = if fi.is_finite() { (fi * inv + lse).exp() } else { f64::INFINITY };
        err += (r - ai).abs();
        let fnew = blk.reg * (ai.ln() - lse);
        f_new[i] = T::from_f64(fnew);
        row_exp::<T, M>(mrow, blk.gs, T::from_f64(fnew * inv), ninv, tmp);
        axpy::<T, M>(colacc, tmp, 1.0);
    }
    err
}

/// `cm[j] = max(cm[j], fs_i - M_ij/reg)` over the block's rows (first pass of the exact
/// column log-sum-exp). Rows with `fs_i = -inf` are skipped.
#[inline(always)]
fn col_max<T: Real, M: Madd>(mrows: &[T], fs: &[T], ninv: T, cm: &mut [T]) {
    let m = cm.len();
    cm.iter_mut().for_each(|v| *v = T::neg_infinity());
    for (mrow, &c) in mrows.chunks_exact(m).zip(fs) {
        if c == T::neg_infinity() {
            continue;
        }
        for (x, &mv) in cm.iter_mut().zip(mrow) {
            let v = M::madd(mv, ninv, c);
            *x = if v > *x { v } else { *x };
        }
    }
}

/// `colacc[j] = sum_i exp(fs_i + gs_j - M_ij/reg)` over the block's rows (second pass of the
/// exact column log-sum-exp, with `gs = -colmax`).
#[inline(always)]
fn col_sum<T: Real, M: Madd>(mrows: &[T], fs: &[T], gs: &[T], ninv: T, tmp: &mut [T], colacc: &mut [f64]) {
    let m = gs.len();
    colacc.iter_mut().for_each(|v| *v = 0.0);
    for (mrow, &c) in mrows.chunks_exact(m).zip(fs) {
        if c == T::neg_infinity() {
            continue;
        }
        row_exp::<T, M>(mrow, gs, c, ninv, tmp);
        axpy::<T, M>(colacc, tmp, 1.0);
    }
}

/// Per-block sums of [`plan_rows`].
#[derive(Default, Clone, Copy, Debug)]
pub struct PlanSums {
    /// `sum_i |P_i. - a_i|`
    pub row_err: f64,
    /// `sum_ij P_ij M_ij`
    pub cost: f64,
    /// `sum_ij P_ij ln P_ij`
    pub plogp: f64,
}

/// Lane sums of one plan row: `sum e`, `sum e M`, `sum e x` (with `x = ln e`, 0 where e = 0).
#[inline(always)]
fn plan_row_sums<T: Real, M: Madd>(e: T, mv: T, x: T, l: usize, acc: &mut [[f64; LANES]; 3]) {
    let ef = e.as_f64();
    acc[0][l] += ef;
    acc[1][l] = M::madd(ef, mv.as_f64(), acc[1][l]);
    acc[2][l] += if e > T::zero() { ef * x.as_f64() } else { 0.0 };
}

fn finish_row(acc: &[[f64; LANES]; 3], ai: f64, sums: &mut PlanSums) {
    sums.row_err += (acc[0].iter().sum::<f64>() - ai).abs();
    sums.cost += acc[1].iter().sum::<f64>();
    sums.plogp += acc[2].iter().sum::<f64>();
}

/// Writes the plan rows `P_ij = exp(fs_i + gs_j - M_ij/reg)` into `out`, their column sums
/// into `colacc`, and returns the row-marginal error, cost and entropy sums.
#[inline(always)]
fn plan_rows<T: Real, M: Madd>(blk: &LogBlock<'_, T>, out: &mut [T], colacc: &mut [f64]) -> PlanSums {
    let m = blk.gs.len();
    let ninv = T::from_f64(-1.0 / blk.reg);
    colacc.iter_mut().for_each(|v| *v = 0.0);
    let mut sums = PlanSums::default();
    for (i, (mrow, orow)) in blk.mrows.chunks_exact(m).zip(out.chunks_exact_mut(m)).enumerate() {
        let fs = T::from_f64(blk.f[i].as_f64() / blk.reg);
        let mut acc = [[0f64; LANES]; 3];
        let mut mc = mrow.chunks_exact(LANES);
        let mut gc = blk.gs.chunks_exact(LANES);
        let mut oc = orow.chunks_exact_mut(LANES);
        for ((mr, gr), or) in (&mut mc).zip(&mut gc).zip(&mut oc) {
            for l in 0..LANES {
                let x = M::madd(mr[l], ninv, fs + gr[l]);
                let e = x.fast_exp::<M>();
                or[l] = e;
                plan_row_sums::<T, M>(e, mr[l], x, l, &mut acc);
            }
        }
        for ((&mv, &gv), o) in mc.remainder().iter().zip(gc.remainder()).zip(oc.into_remainder()) {
            let x = M::madd(mv, ninv, fs + gv);
            let e = x.fast_exp::<M>();
            *o = e;
            plan_row_sums::<T, M>(e, mv, x, 0, &mut acc);
        }
        finish_row(&acc, blk.a[i].as_f64(), &mut sums);
        axpy::<T, M>(colacc, orow, 1.0);
    }
    sums
}

/// Overwrites the kernel rows `K` with the plan rows `u_i K_ij v_j` and measures them like
/// [`plan_rows`]; `blk.f`, `blk.gs` are the potentials with the scalings absorbed (for
/// `ln P`), `u` the block's row scalings, `v` the column scalings.
#[inline(always)]
fn scaled_plan_rows<T: Real, M: Madd>(
    blk: &LogBlock<'_, T>,
    u: &[T],
    v: &[T],
    krows: &mut [T],
    colacc: &mut [f64],
) -> PlanSums {
    let m = blk.gs.len();
    let ninv = T::from_f64(-1.0 / blk.reg);
    colacc.iter_mut().for_each(|x| *x = 0.0);
    let mut sums = PlanSums::default();
    for (i, (mrow, krow)) in blk.mrows.chunks_exact(m).zip(krows.chunks_exact_mut(m)).enumerate() {
        let fs = T::from_f64(blk.f[i].as_f64() / blk.reg);
        let ui = u[i];
        let mut acc = [[0f64; LANES]; 3];
        let mut mc = mrow.chunks_exact(LANES);
        let mut gc = blk.gs.chunks_exact(LANES);
        let mut vc = v.chunks_exact(LANES);
        let mut kc = krow.chunks_exact_mut(LANES);
        for (((mr, gr), vr), kr) in (&mut mc).zip(&mut gc).zip(&mut vc).zip(&mut kc) {
            for l in 0..LANES {
                let e = ui * kr[l] * vr[l];
                kr[l] = e;
                plan_row_sums::<T, M>(e, mr[l], M::madd(mr[l], ninv, fs + gr[l]), l, &mut acc);
            }
        }
        for (((&mv, &gv), &vj), kv) in
            mc.remainder().iter().zip(gc.remainder()).zip(vc.remainder()).zip(kc.into_remainder())
        {
            let e = ui * *kv * vj;
            *kv = e;
            plan_row_sums::<T, M>(e, mv, M::madd(mv, ninv, fs + gv), 0, &mut acc);
        }
        finish_row(&acc, blk.a[i].as_f64(), &mut sums);
        axpy::<T, M>(colacc, krow, 1.0);
    }
    sums
}

/// One block of the scaling (u/v) pass with `k` histograms sharing `a` and `K`:
/// `s_hi = sum_j K_ij v_hj`, the current row marginal `u_hi s_hi` (its error against `a_i`
/// added into `err[h]`), the update `u_new_hi = (a_i / s_hi)^omega u_hi^(1-omega)` (plain
/// Sinkhorn for `omega = 1`, over-relaxed above), and `colacc_h += K_i. u_new_hi`.
/// `u`, `u_new` are the block's rows in `(row, h)` layout, `v` is `(h, j)`. Returns false on a
/// breakdown (`K v` outside the trusted range on a row of positive mass).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the slices of the fused scaling pass: one per stream it reads or writes
fn scaling_rows<T: Real, M: Madd>(
    krows: &[T],
    a: &[T],
    v: &[T],
    u: &[T],
    u_new: &mut [T],
    omega: f64,
    colacc: &mut [f64],
    err: &mut [f64],
) -> bool {
    let k = err.len();
    let m = v.len() / k;
    colacc.iter_mut().for_each(|x| *x = 0.0);
    err.iter_mut().for_each(|x| *x = 0.0);
    let mut ok = true;
    // float32: column sums of FLUSH_ROWS rows in float32, then flushed into colacc (f64).
    let mut narrow_acc = if narrow::<T>() { vec![T::zero(); k * m] } else { Vec::new() };
    let flush = |narrow_acc: &mut [T], colacc: &mut [f64]| {
        for (c, x) in colacc.iter_mut().zip(narrow_acc.iter_mut()) {
            *c += x.as_f64();
            *x = T::zero();
        }
    };
    for (il, krow) in krows.chunks_exact(m).enumerate() {
        if !narrow_acc.is_empty() && il > 0 && il % FLUSH_ROWS == 0 {
            flush(&mut narrow_acc, colacc);
        }
        let ai = a[il].as_f64();
        for h in 0..k {
            let idx = il * k + h;
            if ai == 0.0 {
                u_new[idx] = T::zero();
                continue;
            }
            let s = dot::<T, M>(krow, &v[h * m..(h + 1) * m]);
            let ui = u[idx].as_f64();
            let unew = if omega == 1.0 { ai / s } else { (ai / s).powf(omega) * ui.powf(1.0 - omega) };
            err[h] += (ui * s - ai).abs();
            if !(s >= T::SAFE_LO && s <= T::SAFE_HI && T::from_f64(unew).is_finite()) {
                ok = false;
                u_new[idx] = T::zero();
                continue;
            }
            u_new[idx] = T::from_f64(unew);
            if narrow_acc.is_empty() {
                axpy::<T, M>(&mut colacc[h * m..(h + 1) * m], krow, unew);
            } else {
                let s = T::from_f64(unew);
                for (a, &x) in narrow_acc[h * m..(h + 1) * m].iter_mut().zip(krow) {
                    *a = M::madd(x, s, *a);
                }
            }
        }
    }
    if !narrow_acc.is_empty() {
        flush(&mut narrow_acc, colacc);
    }
    ok
}

/// `out[j] = exp(-x[j] / reg)`: the Gibbs kernel, elementwise.
#[inline(always)]
pub(crate) fn gibbs<T: Real, M: Madd>(x: &[T], ninv: T, shift: T, out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = M::madd(v, ninv, shift).fast_exp::<M>();
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The same kernels compiled with AVX2 and FMA enabled.
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn log_rows<T: Real>(b: &LogBlock<'_, T>, e: bool, f: &mut [T], t: &mut [T], c: &mut [f64]) -> f64 {
        super::log_rows::<T, Fused>(b, e, f, t, c)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn col_max<T: Real>(mr: &[T], fs: &[T], ninv: T, cm: &mut [T]) {
        super::col_max::<T, Fused>(mr, fs, ninv, cm)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn col_sum<T: Real>(mr: &[T], fs: &[T], gs: &[T], ninv: T, t: &mut [T], c: &mut [f64]) {
        super::col_sum::<T, Fused>(mr, fs, gs, ninv, t, c)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn plan_rows<T: Real>(b: &LogBlock<'_, T>, o: &mut [T], c: &mut [f64]) -> PlanSums {
        super::plan_rows::<T, Fused>(b, o, c)
    }
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)] // the slices of the fused scaling pass, forwarded as is
    pub unsafe fn scaling_rows<T: Real>(
        kr: &[T],
        a: &[T],
        v: &[T],
        u: &[T],
        un: &mut [T],
        w: f64,
        c: &mut [f64],
        e: &mut [f64],
    ) -> bool {
        super::scaling_rows::<T, Fused>(kr, a, v, u, un, w, c, e)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scaled_plan_rows<T: Real>(
        b: &LogBlock<'_, T>,
        u: &[T],
        v: &[T],
        k: &mut [T],
        c: &mut [f64],
    ) -> PlanSums {
        super::scaled_plan_rows::<T, Fused>(b, u, v, k, c)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gibbs<T: Real>(x: &[T], ninv: T, shift: T, out: &mut [T]) {
        super::gibbs::<T, Fused>(x, ninv, shift, out)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn row_exp<T: Real>(mr: &[T], gs: &[T], c: T, ninv: T, out: &mut [T]) -> f64 {
        super::row_exp::<T, Fused>(mr, gs, c, ninv, out)
    }
}

/// Whether the AVX2+FMA versions run on this CPU (std caches the answer).
#[inline]
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
    }
    "baseline"
}

macro_rules! dispatch {
    ($name:ident($($arg:expr),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the function is compiled for.
                unsafe { super::avx2::$name($($arg),*) }
            } else {
                super::$name::<_, Unfused>($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            super::$name::<_, Unfused>($($arg),*)
        }
    }};
}

/// Public, dispatched entry points (one call per row block).
pub mod run {
    use super::*;

    pub fn log_rows<T: Real>(
        b: &LogBlock<'_, T>,
        exact: bool,
        f_new: &mut [T],
        tmp: &mut [T],
        colacc: &mut [f64],
    ) -> f64 {
        dispatch!(log_rows(b, exact, f_new, tmp, colacc))
    }
    pub fn col_max<T: Real>(mrows: &[T], fs: &[T], ninv: T, cm: &mut [T]) {
        dispatch!(col_max(mrows, fs, ninv, cm))
    }
    pub fn col_sum<T: Real>(mrows: &[T], fs: &[T], gs: &[T], ninv: T, tmp: &mut [T], colacc: &mut [f64]) {
        dispatch!(col_sum(mrows, fs, gs, ninv, tmp, colacc))
    }
    pub fn plan_rows<T: Real>(b: &LogBlock<'_, T>, out: &mut [T], colacc: &mut [f64]) -> PlanSums {
        dispatch!(plan_rows(b, out, colacc))
    }
    #[allow(clippy::too_many_arguments)] // the slices of the fused scaling pass, forwarded as is
    pub fn scaling_rows<T: Real>(
        krows: &[T],
        a: &[T],
        v: &[T],
        u: &[T],
        u_new: &mut [T],
        omega: f64,
        colacc: &mut [f64],
        err: &mut [f64],
    ) -> bool {
        dispatch!(scaling_rows(krows, a, v, u, u_new, omega, colacc, err))
    }
    /// `out = exp(shift - x / reg)` with `ninv = -1 / reg`.
    pub fn gibbs<T: Real>(x: &[T], ninv: T, shift: T, out: &mut [T]) {
        dispatch!(gibbs(x, ninv, shift, out))
    }
    pub fn scaled_plan_rows<T: Real>(
        b: &LogBlock<'_, T>,
        u: &[T],
        v: &[T],
        krows: &mut [T],
        colacc: &mut [f64],
    ) -> PlanSums {
        dispatch!(scaled_plan_rows(b, u, v, krows, colacc))
    }
    /// The bare exp loop of the log-domain pass (`out[j] = exp(c + gs_j - M_j/reg)` and its
    /// sum): the benchmark's per-iteration floor.
    pub fn row_exp<T: Real>(mrow: &[T], gs: &[T], c: T, ninv: T, out: &mut [T]) -> f64 {
        dispatch!(row_exp(mrow, gs, c, ninv, out))
    }
}

/// The per-iteration floor of the log-domain pass, for the benchmarks: `reps` passes of the
/// bare `exp` loop (one `exp` per entry of the row-major cost with `cols` columns, summed per
/// row) on the current thread pool. Returns the total of all sums, so that nothing is
/// optimised away.
pub fn exp_floor<T: Real>(cost: &[T], cols: usize, reg: f64, reps: usize) -> f64 {
    use rayon::prelude::*;
    if cols == 0 {
        return 0.0;
    }
    let gs = vec![T::zero(); cols];
    let ninv = T::from_f64(-1.0 / reg);
    let mut total = 0.0;
    for _ in 0..reps {
        total += cost
            .par_chunks(cols * 32)
            .map(|rows| {
                let mut tmp = vec![T::zero(); cols];
                rows.chunks_exact(cols).map(|r| run::row_exp(r, &gs, T::zero(), ninv, &mut tmp)).sum::<f64>()
            })
            .sum::<f64>();
    }
    total
}
