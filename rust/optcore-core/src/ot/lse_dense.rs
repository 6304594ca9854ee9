//! A dense cost as a [`LogKernel`]: the log-sum-exps of the log-domain loop computed by
//! scalings of a stored kernel (the stabilised form of [`super::sinkhorn`]).
//!
//! The operator stores `K_ij = exp(fb_i + gb_j - M_ij / reg)` for reference potentials
//! `(fb, gb)` (in units of `1/reg`). Then `LSE_j(h_j - M_ij / reg) = ln(sum_j K_ij v_j) - fb_i`
//! with `v_j = exp(h_j - gb_j)`: a multiply-add pass over `K` instead of one `exp` per entry.
//! When a scaling leaves `[lo, hi]` the kernel is rebuilt around the current potentials (the
//! last ones seen on each side: an absorption), so every stored number stays in range; a row or
//! column whose sum under- or overflows is computed exactly (max-shifted log-sum-exp over `M`).
//! Rows are independent and column sums are per-row-block partials added in block order, so
//! results do not depend on the number of threads.
//!
//! The passes over the cost (kernel build, applies, measurement) are compiled twice from the
//! same unfused arithmetic ([`pass`]): for any x86-64 CPU and with AVX2 where the CPU has it (the
//! two give bit-identical results, the second 4 lanes wide). A cost of fewer than [`PAR_MIN`]
//! entries is passed over on the calling thread: at that size a pass takes tens of
//! microseconds, less than handing it to the thread pool and waiting for it (far less on a
//! loaded machine).

use super::grid::{lse_dispatch, simd};
use super::sinkhorn::reduce_blocks;
use super::unbalanced::{LogKernel, RowUpdate, Sums};
use crate::error::{OptError, Result};
use crate::parallel::row_block;
use crate::real::Real;
use rayon::prelude::*;

/// Rows and columns computed exactly (diagnostics: how often a scaled sum leaves the range).
pub(crate) static EXACT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Costs with at least this many entries are passed over in parallel (see the module docs).
pub(super) const PAR_MIN: usize = 1 << 18;

/// The passes with an exponential per entry (kernel build, measurement) run in parallel from
/// this many entries: they cost ten times a multiply-add pass, so the hand-over to the pool
/// pays for itself at a smaller size.
const PAR_EXP: usize = 1 << 16;

/// A dense row-major `n x m` cost as a [`LogKernel`] (see the module docs).
pub struct DenseOperator<'c, T> {
    cost: &'c [T],
    n: usize,
    m: usize,
    inv: f64,
    kern: Vec<T>,
    fb: Vec<f64>,
    gb: Vec<f64>,
    built: bool,
    /// The last potentials seen on each side, in the units of the cost (None: not yet).
    last_f: Option<Vec<f64>>,
    last_g: Option<Vec<f64>>,
    partials: Vec<f64>,
    /// The column pass's sums (`m`), combined from `partials`.
    colsum: Vec<f64>,
    scale: Vec<T>,
    /// Number of kernel rebuilds.
    pub rebuilds: usize,
    /// Number of measurements (diagnostics).
    pub measures: usize,
    /// The plan of the last measurement, where asked for ([`Self::keep_plan`]).
    plan: Option<Vec<T>>,
}

impl<'c, T: Real> DenseOperator<'c, T> {
    pub fn new(cost: &'c [T], n: usize, m: usize) -> Result<Self> {
        let len = crate::alloc::checked_len(n, m, "the kernel")?;
        if cost.len() != len {
            return Err(OptError::InvalidInput("the cost has the wrong length".into()));
        }
        if !cost.iter().all(|x| x.is_finite()) {
            return Err(OptError::InvalidInput("M must be finite".into()));
        }
        let nb = n.div_ceil(row_block(n.max(1)));
        Ok(DenseOperator {
            cost,
            n,
            m,
            inv: 1.0,
            kern: crate::alloc::try_zeroed::<T>(len, "the kernel")?,
            fb: vec![0.0; n],
            gb: vec![0.0; m],
            built: false,
            last_f: None,
            last_g: None,
            partials: crate::alloc::try_zeroed::<f64>(
                crate::alloc::checked_len(nb, m, "the column sums")?,
                "the column sums",
            )?,
            colsum: vec![0.0; m],
            scale: vec![T::zero(); n.max(m)],
            rebuilds: 0,
            measures: 0,
            plan: None,
        })
    }

    /// Makes every measurement also write its plan `P_ij = exp(fs_i + gs_j - C_ij / reg)` in
    /// the working dtype (allocated here, fallibly), and take its sums over the plan as
    /// written (rounded to `T`): the returned plan is then the one measured, at no extra pass
    /// over the cost. [`Self::take_plan`] hands it over.
    pub fn keep_plan(&mut self) -> Result<()> {
        if self.plan.is_none() {
            self.plan = Some(crate::alloc::try_zeroed::<T>(self.n * self.m, "the plan")?);
        }
        Ok(())
    }

    /// The plan of the last measurement (None unless [`Self::keep_plan`] was called).
    pub fn take_plan(&mut self) -> Option<Vec<T>> {
        self.plan.take()
    }

    /// The range the scalings must stay in (f32: narrower, as in the dense log solver).
    fn range() -> (f64, f64) {
        if T::SAFE_LO < 1e-100 {
            (1e-100, 1e100)
        } else {
            (1e-6, 1e6)
        }
    }

    /// Rebuilds `K` around the last potentials (in `1/reg` units; a side never seen, or a
    /// `-inf` entry, is normalised so that its row's or column's largest entry is 1).
    fn rebuild(&mut self) {
        let (n, m, inv) = (self.n, self.m, self.inv);
        let cost = self.cost;
        let gb: Vec<f64> = match &self.last_g {
            Some(g) => g.iter().map(|&x| x * inv).collect(),
            None => vec![0.0; m],
        };
        let mut fb: Vec<f64> = match &self.last_f {
            Some(f) => f.iter().map(|&x| x * inv).collect(),
            None => vec![f64::NEG_INFINITY; n],
        };
        let mut gfin: Vec<f64> = gb.iter().map(|&g| if g.is_finite() { g } else { 0.0 }).collect();
        let (par, fast) = (n * m >= PAR_EXP, simd());
        // Columns whose potential was never seen are normalised by a column maximum, which
        // needs every row's shift first; otherwise each row is shifted and built in one go
        // (while it is in cache).
        let col_max = self.last_g.as_ref().is_none_or(|lg| lg.iter().any(|x| !x.is_finite()));
        let shift = |i: usize, f: &mut f64| {
            if !f.is_finite() {
                *f = -pass::row_max(fast, &cost[i * m..(i + 1) * m], &gfin, inv);
            }
        };
        if !col_max {
            let gr = &gfin;
            let row = |(i, ((krow, crow), f)): KernelRow<'_, T>| {
                shift(i, f);
                pass::exp_row(fast, krow, crow, gr, *f, inv);
            };
            if par {
                self.kern.par_chunks_mut(m).zip(cost.par_chunks(m)).zip(fb.par_iter_mut()).enumerate().for_each(row);
            } else {
                self.kern.chunks_mut(m).zip(cost.chunks(m)).zip(fb.iter_mut()).enumerate().for_each(row);
            }
        } else {
            if par {
                fb.par_iter_mut().enumerate().for_each(|(i, f)| shift(i, f));
            } else {
                fb.iter_mut().enumerate().for_each(|(i, f)| shift(i, f));
            }
            let mut gb = gfin.clone();
            for (j, g) in gb.iter_mut().enumerate() {
                if self.last_g.as_ref().is_none_or(|lg| !lg[j].is_finite()) {
                    let mx = (0..n).fold(f64::NEG_INFINITY, |acc, i| acc.max(fb[i] - cost[i * m + j].as_f64() * inv));
                    *g = -mx;
                }
            }
            let (fbr, gbr) = (&fb, &gb);
            let build =
                |(i, (krow, crow)): (usize, (&mut [T], &[T]))| pass::exp_row(fast, krow, crow, gbr, fbr[i], inv);
            if par {
                self.kern.par_chunks_mut(m).zip(cost.par_chunks(m)).enumerate().for_each(build);
            } else {
                self.kern.chunks_mut(m).zip(cost.chunks(m)).enumerate().for_each(build);
            }
            gfin = gb;
        }
        let gb = gfin;
        self.fb = fb;
        self.gb = gb;
        self.built = true;
        self.rebuilds += 1;
    }

    /// `scale = exp(h - base)` (0 where `h` is `-inf`); false when one leaves the range.
    fn scalings(h: &[T], base: &[f64], scale: &mut [T]) -> bool {
        let mut ok = true;
        for ((s, &x), &b) in scale.iter_mut().zip(h).zip(base) {
            let (v, in_range) = Self::scaling(x, b);
            ok &= in_range;
            *s = v;
        }
        ok
    }

    /// One entry of [`Self::scalings`]: `exp(x - b)`, and whether it is in the range.
    #[inline]
    fn scaling(x: T, b: f64) -> (T, bool) {
        let x = x.as_f64();
        if x == f64::NEG_INFINITY {
            return (T::zero(), true);
        }
        let (lo, hi) = Self::range();
        let v = (x - b).exp();
        (T::from_f64(v), (lo..=hi).contains(&v))
    }

    /// The row pass's set-up: records `h` (the last column potentials), rebuilds the kernel
    /// where it is not built or a scaling `exp(h - gb)` leaves the range, and returns the
    /// scalings (in the operator's `scale` buffer: hand it back).
    fn row_scalings(&mut self, h: &[T]) -> Vec<T> {
        let reg = 1.0 / self.inv;
        remember(&mut self.last_g, h, reg);
        let mut scale = std::mem::take(&mut self.scale);
        if !self.built || !Self::scalings(h, &self.gb, &mut scale[..self.m]) {
            self.rebuild();
            Self::scalings(h, &self.gb, &mut scale[..self.m]);
        }
        scale
    }

    /// The column pass's result from its block partials: `out_j = ln(colsum_j) - gb_j`, exact
    /// where the sum leaves the safe range.
    fn col_lse(&mut self, h: &[T], out: &mut [T], par: bool) {
        let mut colsum = std::mem::take(&mut self.colsum);
        colsum.iter_mut().for_each(|x| *x = 0.0);
        add_blocks(&self.partials, self.m, &mut colsum, par);
        for (j, (o, &s)) in out.iter_mut().zip(&colsum).enumerate() {
            *o = if (T::SAFE_LO..=T::SAFE_HI).contains(&s) {
                T::from_f64(s.ln() - self.gb[j])
            } else {
                self.exact_col(h, j)
            };
        }
        self.colsum = colsum;
    }

    /// The scalings `(u, v) = (exp(fs - fb), exp(gs - gb))` that turn the stored kernel into
    /// the plan of `(fs, gs)`, for the measurement: f64 only (a float32 kernel would round the
    /// plan to float32), where the kernel is built at `reg` and every scaling is in range
    /// (else None: the measurement takes an exponential per entry).
    fn plan_scalings(&self, fs: &[f64], gs: &[f64], reg: f64) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
        if T::SAFE_LO >= 1e-100 || !self.built || self.inv != 1.0 / reg {
            return Ok(None);
        }
        let (lo, hi) = Self::range();
        let mut ok = true;
        let mut side = |x: &[f64], base: &[f64], what| -> Result<Vec<f64>> {
            let mut out = crate::alloc::try_with_capacity(x.len(), what)?;
            out.extend(x.iter().zip(base).map(|(&x, &b)| {
                let v = (x - b).exp();
                ok &= x == f64::NEG_INFINITY || (lo..=hi).contains(&v);
                v
            }));
            Ok(out)
        };
        let (u, v) =
            (side(fs, &self.fb, "the measurement's scalings")?, side(gs, &self.gb, "the measurement's scalings")?);
        Ok(ok.then_some((u, v)))
    }

    /// Exact `LSE_i(h_i - M_ij inv)` of column `j` (a fallback).
    fn exact_col(&self, h: &[T], j: usize) -> T {
        EXACT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let col: Vec<T> = (0..self.n).map(|i| self.cost[i * self.m + j]).collect();
        let mut z = vec![T::zero(); self.n];
        lse_dispatch(simd(), h, &col, T::from_f64(-self.inv), &mut z)
    }
}

impl<T: Real> LogKernel<T> for DenseOperator<'_, T> {
    fn n(&self) -> usize {
        self.n
    }
    fn m(&self) -> usize {
        self.m
    }
    fn cost_range(&self) -> f64 {
        let (lo, hi) = self
            .cost
            .par_chunks(1 << 16)
            .map(|c| {
                c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x.as_f64()), h.max(x.as_f64())))
            })
            .reduce(|| (f64::INFINITY, f64::NEG_INFINITY), |(a, b), (c, d)| (a.min(c), b.max(d)));
        hi - lo
    }
    fn set_reg(&mut self, reg: f64) -> Result<()> {
        self.inv = 1.0 / reg;
        self.built = false;
        Ok(())
    }
    fn rows(&mut self, h: &[T], out: &mut [T]) {
        let scale = self.row_scalings(h);
        let (m, inv, fast) = (self.m, self.inv, simd());
        let v = &scale[..m];
        let (kern, cost, fb) = (&self.kern, self.cost, &self.fb);
        let done = |z: &mut Vec<T>, i: usize, s: f64| row_lse(z, h, &cost[i * m..(i + 1) * m], inv, fb[i], s);
        // Two rows at a time (each row's sum exactly as alone: two independent chains).
        let row = |z: &mut Vec<T>, (c, ob): (usize, &mut [T])| {
            for (p, pair) in ob.chunks_mut(2).enumerate() {
                let i = c * 32 + 2 * p;
                if let [o0, o1] = pair {
                    let (s0, s1) = pass::dot2(fast, &kern[i * m..(i + 1) * m], &kern[(i + 1) * m..(i + 2) * m], v);
                    *o0 = done(z, i, s0);
                    *o1 = done(z, i + 1, s1);
                } else {
                    pair[0] = done(z, i, pass::dot(fast, &kern[i * m..(i + 1) * m], v));
                }
            }
        };
        if self.n * m >= PAR_MIN {
            out.par_chunks_mut(32).enumerate().for_each_init(Vec::new, row);
        } else {
            let mut z = Vec::new();
            out.chunks_mut(32).enumerate().for_each(|t| row(&mut z, t));
        }
        self.scale = scale;
    }
    fn cols(&mut self, h: &[T], out: &mut [T]) {
        let reg = 1.0 / self.inv;
        remember(&mut self.last_f, h, reg);
        let mut scale = std::mem::take(&mut self.scale);
        if !self.built || !Self::scalings(h, &self.fb, &mut scale[..self.n]) {
            self.rebuild();
            Self::scalings(h, &self.fb, &mut scale[..self.n]);
        }
        let (n, m, fast) = (self.n, self.m, simd());
        let rb = row_block(n);
        let u = &scale[..n];
        let block = |((kb, ub), acc): ((&[T], &[T]), &mut [f64])| pass::col_sums(fast, kb, ub, acc);
        if n * m >= PAR_MIN {
            self.kern.par_chunks(rb * m).zip(u.par_chunks(rb)).zip(self.partials.par_chunks_mut(m)).for_each(block);
        } else {
            self.kern.chunks(rb * m).zip(u.chunks(rb)).zip(self.partials.chunks_mut(m)).for_each(block);
        }
        self.scale = scale;
        self.col_lse(h, out, n * m >= PAR_MIN);
    }
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
        self.fused(hm, lse_n, upd, reg, f, hn, lse_m);
    }
    fn measure(&mut self, fs: &[f64], gs: &[f64], reg: f64) -> Result<Sums> {
        self.measures += 1;
        let (n, m) = (self.n, self.m);
        let rb = row_block(n);
        let inv = 1.0 / reg;
        // Scratch sized by the problem: allocated fallibly (a MemoryError, never an abort, when
        // the measurement is what runs out of memory).
        let mut partials = crate::alloc::try_zeroed::<f64>(self.partials.len(), "the measurement's partial sums")?;
        let mut rows = crate::alloc::try_zeroed::<f64>(n, "the measurement's row sums")?;
        let fast = simd();
        // Groups of GROUP row blocks: the blocks' running sums are independent chains of
        // additions, interleaved (each block's own sums still in its row-then-column order).
        const GROUP: usize = pass::GROUP;
        // f64: the plan's entries as `u_i K_ij v_j` from the stored kernel where it is built
        // at this reg and the scalings are in range (a multiply per entry instead of an
        // exponential; the same numbers to a few ulps).
        let sc = self.plan_scalings(fs, gs, reg)?;
        let span_rows = GROUP * rb;
        let kern = &self.kern;
        let group = |(gi, (((((mr, fb), rsb), acc), plan), p)): (usize, GroupArgs<'_, T>)| {
            let mut costs = [0.0; GROUP];
            let (r0, r1) = (gi * span_rows, ((gi + 1) * span_rows).min(n));
            let scg = sc.as_ref().map(|(us, vs)| (&kern[r0 * m..r1 * m], &us[r0..r1], &vs[..]));
            pass::measure_group(fast, (mr, fb, gs, scg), (rsb, acc, &mut costs, plan, p), inv, rb);
            costs
        };
        // The plan's rows by group (empty groups when no plan is kept).
        let mut plan = self.plan.take();
        let span = if plan.is_some() { GROUP * rb * m } else { 0 };
        let ngroups = n.div_ceil(GROUP * rb);
        // One row of plan entries per block of each group, written before it is read.
        let mut scratch = crate::alloc::try_zeroed::<f64>(
            crate::alloc::checked_len(ngroups * GROUP, m, "the measurement's rows")?,
            "the measurement's rows",
        )?;
        let mut none: Vec<&mut [T]> = Vec::new();
        let plan_groups: Vec<&mut [T]> = match plan.as_mut() {
            Some(p) => p.chunks_mut(span).collect(),
            None => {
                none.resize_with(ngroups, || &mut []);
                none
            }
        };
        let costs: Vec<[f64; GROUP]> = if n * m >= PAR_EXP {
            self.cost
                .par_chunks(GROUP * rb * m)
                .zip(fs.par_chunks(GROUP * rb))
                .zip(rows.par_chunks_mut(GROUP * rb))
                .zip(partials.par_chunks_mut(GROUP * m))
                .zip(plan_groups)
                .zip(scratch.par_chunks_mut(GROUP * m))
                .enumerate()
                .map(group)
                .collect()
        } else {
            self.cost
                .chunks(GROUP * rb * m)
                .zip(fs.chunks(GROUP * rb))
                .zip(rows.chunks_mut(GROUP * rb))
                .zip(partials.chunks_mut(GROUP * m))
                .zip(plan_groups)
                .zip(scratch.chunks_mut(GROUP * m))
                .enumerate()
                .map(group)
                .collect()
        };
        self.plan = plan;
        // The blocks' costs added in block order.
        let nb = partials.len() / m;
        let costs: Vec<f64> = costs.iter().flatten().take(nb).copied().collect();
        let mut cols = crate::alloc::try_zeroed::<f64>(m, "the measurement's column sums")?;
        add_blocks(&partials, m, &mut cols, n * m >= PAR_EXP);
        Ok(Sums { rows, cols, cost: costs.iter().sum() })
    }
}

/// `LSE_j(h_j - c_j inv)` of one row from its scaled sum `s = sum_j K_ij exp(h_j - gb_j)`:
/// `ln s - fb_i`, or exactly over the cost row `crow` where `s` leaves the safe range (`z`:
/// scratch of the row's length, allocated on first use).
fn row_lse<T: Real>(z: &mut Vec<T>, h: &[T], crow: &[T], inv: f64, fbi: f64, s: f64) -> T {
    if (T::SAFE_LO..=T::SAFE_HI).contains(&s) {
        T::from_f64(s.ln() - fbi)
    } else {
        EXACT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if z.is_empty() {
            z.resize(crow.len(), T::zero());
        }
        lse_dispatch(simd(), h, crow, T::from_f64(-inv), z)
    }
}

/// One row of a kernel build: `(i, ((kernel row, cost row), its shift))`.
type KernelRow<'a, T> = (usize, ((&'a mut [T], &'a [T]), &'a mut f64));

/// One group of row blocks of the measurement: `((((cost rows, fs), row sums), column
/// partials), plan rows), scratch)` (the plan's rows empty when no plan is kept).
type GroupArgs<'a, T> = (((((&'a [T], &'a [f64]), &'a mut [f64]), &'a mut [f64]), &'a mut [T]), &'a mut [f64]);

/// [`reduce_blocks`] (the per-block partials added in block order), on this thread when `par`
/// is false (the same sums, in the same order).
fn add_blocks(partials: &[f64], m: usize, out: &mut [f64], par: bool) {
    if par {
        return reduce_blocks(partials, m, out);
    }
    let nb = partials.len() / m;
    for (j, o) in out.iter_mut().enumerate() {
        let mut s = 0.0;
        for b in 0..nb {
            s += partials[b * m + j];
        }
        *o = s;
    }
}

/// The passes over the cost and the kernel, each written once and compiled for any x86-64 CPU,
/// with AVX2 and with AVX-512 (chosen by `fast` and the CPU). The arithmetic is unfused in all,
/// so the wider versions only compute more lanes at once: the results are bit-identical.
mod pass {
    use crate::real::{Real, Unfused};

    /// Generates `$name(fast, args..)`, dispatching to the body compiled with AVX2 where
    /// `fast` (true only when the CPU has AVX2 and FMA).
    macro_rules! dispatched {
        ($(#[$doc:meta])* fn $name:ident<T>($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
            $(#[$doc])*
            #[inline(always)]
            pub(super) fn $name<T: Real>(fast: bool, $($arg: $ty),*) -> $ret {
                #[inline(always)]
                fn generic<T: Real>($($arg: $ty),*) -> $ret $body
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<T: Real>($($arg: $ty),*) -> $ret {
                    generic::<T>($($arg),*)
                }
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512<T: Real>($($arg: $ty),*) -> $ret {
                    generic::<T>($($arg),*)
                }
                #[cfg(target_arch = "x86_64")]
                if fast {
                    if wide() {
                        // SAFETY: `wide()` is true only when the CPU supports AVX-512F (and
                        // `fast` that it supports AVX2 and FMA).
                        return unsafe { avx512::<T>($($arg),*) };
                    }
                    // SAFETY: `fast` is true only when the CPU supports AVX2 and FMA.
                    return unsafe { avx2::<T>($($arg),*) };
                }
                let _ = fast;
                generic::<T>($($arg),*)
            }
        };
    }

    /// Whether the CPU has AVX-512F: the passes then run 8 lanes wide (the same unfused
    /// operations per lane, so the same bits; the exponential passes take fewer instructions).
    #[cfg(target_arch = "x86_64")]
    fn wide() -> bool {
        std::is_x86_feature_detected!("avx512f")
    }

    dispatched! {
        /// `max_j (g_j - c_j inv)` of one cost row (4 lanes of maxima: the maximum does not
        /// depend on the order).
        fn row_max<T>(row: &[T], g: &[f64], inv: f64) -> f64 {
            let mut acc = [f64::NEG_INFINITY; 4];
            let (mut rc, mut gc) = (row.chunks_exact(4), g.chunks_exact(4));
            for (r, gv) in (&mut rc).zip(&mut gc) {
                for l in 0..4 {
                    acc[l] = acc[l].max(gv[l] - r[l].as_f64() * inv);
                }
            }
            for (&c, &gv) in rc.remainder().iter().zip(gc.remainder()) {
                acc[0] = acc[0].max(gv - c.as_f64() * inv);
            }
            acc.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v))
        }
    }

    dispatched! {
        /// One kernel row: `k_j = exp(fi + g_j - c_j inv)`.
        fn exp_row<T>(krow: &mut [T], crow: &[T], g: &[f64], fi: f64, inv: f64) -> () {
            for ((k, &c), &gj) in krow.iter_mut().zip(crow).zip(g) {
                *k = T::from_f64((fi + gj - c.as_f64() * inv).fast_exp::<Unfused>());
            }
        }
    }

    dispatched! {
        /// `sum_j k_j v_j` in f64 (8 partial sums).
        fn dot<T>(k: &[T], v: &[T]) -> f64 {
            const L: usize = 8;
            let mut acc = [0f64; L];
            let (mut kc, mut vc) = (k.chunks_exact(L), v.chunks_exact(L));
            for (kr, vr) in (&mut kc).zip(&mut vc) {
                for l in 0..L {
                    acc[l] += (kr[l] * vr[l]).as_f64();
                }
            }
            for (&a, &b) in kc.remainder().iter().zip(vc.remainder()) {
                acc[0] += (a * b).as_f64();
            }
            acc.iter().sum()
        }
    }

    dispatched! {
        /// [`dot`] of two rows against the same `v`, interleaved: each sum has [`dot`]'s 8 partial
        /// sums in [`dot`]'s order (bit-identical), the two rows' chains run side by side.
        fn dot2<T>(k0: &[T], k1: &[T], v: &[T]) -> (f64, f64) {
            const L: usize = 8;
            let (mut a0, mut a1) = ([0f64; L], [0f64; L]);
            let (mut c0, mut c1, mut vc) = (k0.chunks_exact(L), k1.chunks_exact(L), v.chunks_exact(L));
            for ((r0, r1), vr) in (&mut c0).zip(&mut c1).zip(&mut vc) {
                for l in 0..L {
                    a0[l] += (r0[l] * vr[l]).as_f64();
                    a1[l] += (r1[l] * vr[l]).as_f64();
                }
            }
            for ((&x0, &x1), &y) in c0.remainder().iter().zip(c1.remainder()).zip(vc.remainder()) {
                a0[0] += (x0 * y).as_f64();
                a1[0] += (x1 * y).as_f64();
            }
            (a0.iter().sum(), a1.iter().sum())
        }
    }

    dispatched! {
        /// `acc += u k`: one kernel row's share of the column sums, added as [`col_sums`] adds
        /// it (the fused pass adds its rows one at a time, in the same order).
        fn axpy<T>(acc: &mut [f64], k: &[T], u: f64) -> () {
            for (a, &x) in acc.iter_mut().zip(k) {
                *a += u * x.as_f64();
            }
        }
    }

    dispatched! {
        /// The column sums of one block of kernel rows `kb` scaled by `ub` (rows with a zero
        /// scaling skipped), into `acc`.
        fn col_sums<T>(kb: &[T], ub: &[T], acc: &mut [f64]) -> () {
            acc.iter_mut().for_each(|x| *x = 0.0);
            for (krow, &ui) in kb.chunks_exact(acc.len()).zip(ub) {
                if ui == T::zero() {
                    continue;
                }
                let ui = ui.as_f64();
                for (a, &k) in acc.iter_mut().zip(krow) {
                    *a += ui * k.as_f64();
                }
            }
        }
    }

    /// The stored kernel's rows of a group with its scalings `(rows, u, v)`, when the
    /// measurement scales the kernel (None: it takes the exponentials).
    pub(super) type KernelRows<'a, T> = Option<(&'a [T], &'a [f64], &'a [f64])>;

    /// Row blocks whose sums [`measure_group`] interleaves.
    pub(super) const GROUP: usize = 4;

    /// What [`measure_group`] writes: `(row sums, column partials, costs, plan rows, scratch)`;
    /// the scratch holds one row of plan entries per block, written before it is read.
    pub(super) type GroupOut<'a, T> = (&'a mut [f64], &'a mut [f64], &'a mut [f64; GROUP], &'a mut [T], &'a mut [f64]);

    dispatched! {
        /// The measurement of up to [`GROUP`] row blocks of `rb` rows: for `P_ij = exp(fs_i +
        /// gs_j - C_ij inv)` (rows with `fs_i = -inf` skipped), the row sums into `rsb`, each
        /// block's column sums into its part of `acc` and its `<P, C>` into `costs`, every sum
        /// taken in the order of one loop over the block's rows and columns. Where all the
        /// blocks have the row, their additions are interleaved (independent chains, no
        /// reordering within one). With a non-empty `plan` (these rows of it) each entry is
        /// written there in `T` and summed as written (in f64 the same sums).
        fn measure_group<T>(
            inp: (&[T], &[f64], &[f64], KernelRows<'_, T>),
            out: GroupOut<'_, T>,
            inv: f64,
            rb: usize
        ) -> () {
            let ((mr, fs, gs, sc), (rsb, acc, costs, plan, p)) = (inp, out);
            let m = gs.len();
            let nbk = acc.len() / m;
            for r in 0..rb {
                let mut active = [false; GROUP];
                for (q, on) in active.iter_mut().enumerate().take(nbk) {
                    let i = q * rb + r;
                    if i >= fs.len() {
                        continue;
                    }
                    let out = if plan.is_empty() { None } else { Some(&mut plan[i * m..(i + 1) * m]) };
                    if fs[i] != f64::NEG_INFINITY {
                        let pr = &mut p[q * m..(q + 1) * m];
                        match sc {
                            Some((kr, us, vs)) => scaled_row::<T>(false, &kr[i * m..(i + 1) * m], vs, us[i], pr),
                            None => plan_row::<T>(false, &mr[i * m..(i + 1) * m], gs, fs[i], inv, pr),
                        }
                        if let Some(out) = out {
                            for (o, v) in out.iter_mut().zip(pr.iter_mut()) {
                                *o = T::from_f64(*v);
                                *v = o.as_f64();
                            }
                        }
                        *on = true;
                    } else if let Some(out) = out {
                        // A zero weight: a zero row of the plan.
                        out.iter_mut().for_each(|o| *o = T::zero());
                    }
                }
                if active.iter().all(|&a| a) {
                    let c: [&[T]; GROUP] = std::array::from_fn(|q| &mr[(q * rb + r) * m..(q * rb + r + 1) * m]);
                    let pq: [&[f64]; GROUP] = std::array::from_fn(|q| &p[q * m..(q + 1) * m]);
                    let mut parts = acc.chunks_exact_mut(m);
                    let a: [&mut [f64]; GROUP] = std::array::from_fn(|_| parts.next().expect("GROUP blocks"));
                    let mut rs = [0.0f64; GROUP];
                    let mut cost = *costs;
                    for j in 0..m {
                        for q in 0..GROUP {
                            let pj = pq[q][j];
                            rs[q] += pj;
                            a[q][j] += pj;
                            cost[q] += pj * c[q][j].as_f64();
                        }
                    }
                    *costs = cost;
                    for (q, &v) in rs.iter().enumerate() {
                        rsb[q * rb + r] = v;
                    }
                    continue;
                }
                for q in (0..nbk).filter(|&q| active[q]) {
                    let i = q * rb + r;
                    let (row, pr, aq) = (&mr[i * m..(i + 1) * m], &p[q * m..(q + 1) * m], &mut acc[q * m..(q + 1) * m]);
                    let mut rs = 0.0;
                    for ((&c, &pj), a) in row.iter().zip(pr).zip(aq.iter_mut()) {
                        rs += pj;
                        *a += pj;
                        costs[q] += pj * c.as_f64();
                    }
                    rsb[i] = rs;
                }
            }
        }
    }

    dispatched! {
        /// One row of the plan from the stored kernel: `p_j = u k_j v_j`.
        fn scaled_row<T>(krow: &[T], v: &[f64], u: f64, p: &mut [f64]) -> () {
            for ((o, &k), &vj) in p.iter_mut().zip(krow).zip(v) {
                *o = u * k.as_f64() * vj;
            }
        }
    }

    dispatched! {
        /// One row of the plan: `p_j = exp(fi + gs_j - c_j inv)` (0 where `gs_j = -inf`).
        fn plan_row<T>(row: &[T], gs: &[f64], fi: f64, inv: f64, p: &mut [f64]) -> () {
            for ((o, &c), &gj) in p.iter_mut().zip(row).zip(gs) {
                let v = (fi + gj - c.as_f64() * inv).fast_exp::<Unfused>();
                *o = if gj == f64::NEG_INFINITY { 0.0 } else { v };
            }
        }
    }
}

#[path = "lse_dense_fused.rs"]
mod fused;

#[cfg(test)]
#[path = "lse_dense_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "lse_dense_speed.rs"]
mod speed;

/// `*slot = h * scale` in f64, in place once the slot holds a vector (the potentials are
/// recorded on every half-iteration: no allocation per iteration).
fn remember<T: Real>(slot: &mut Option<Vec<f64>>, h: &[T], scale: f64) {
    match slot {
        Some(v) if v.len() == h.len() => v.iter_mut().zip(h).for_each(|(o, &x)| *o = x.as_f64() * scale),
        _ => *slot = Some(h.iter().map(|&x| x.as_f64() * scale).collect()),
    }
}
