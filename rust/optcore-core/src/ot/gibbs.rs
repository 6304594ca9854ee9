//! The Gibbs kernel `exp(-C / reg)` of a cost, applied in the log domain: the one operation
//! the barycenter iterations ([`super::barycenter`]) need, behind the [`BatchLogKernel`] trait so
//! that a dense cost ([`DenseKernel`]) and a separable grid cost ([`SeparableKernel`], the
//! convolutional form of Solomon et al. 2015) plug into the same solver.
//!
//! # Stable and fast
//!
//! `LSE_i(x_i - C_ij / reg)` is computed as `mx + ln sum_i exp(x_i - mx) K_ij` with `mx` the
//! largest `x_i` of the vector (of the fibre, on a grid) and `K = exp(-(C - min C) / reg)`
//! precomputed once: the sums are a matrix product (no `exp` per term), and every term it drops
//! to underflow (`exp(x_i - mx)` or `K_ij` below 1e-308) is below 1e-308. A sum of at least
//! [`TRUSTED`] therefore has full relative accuracy; a smaller one (small `reg`, potentials far
//! apart) is recomputed exactly with the max-shifted log-sum-exp over its terms. So the apply is
//! a matrix product at moderate `reg` and the exact log-domain sum at tiny `reg`, entry by entry.
//! Everything runs in float64 (the kernels are float64 whatever the data's dtype).

use super::gibbs_ops::{
    exp_shifted, exp_subbed, ln_added, ln_added_each, matmul, matmul_nt, matmul_panels, max_into, max_of, min_of,
    pack_panels, panels_fit, ratio, scale, Dims, TRUSTED,
};
use crate::alloc::{checked_len, try_zeroed};
use crate::error::{OptError, Result};
use crate::real::Real;
use rayon::prelude::*;

/// Number of exact fallbacks (diagnostics: how often the matrix-product path is not trusted).
pub(crate) static FALLBACKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Parallel tasks get at least this many multiply-adds each: waking a thread costs more than a
/// small product (and much more on a loaded machine), so small applies run on one thread.
const TASK_WORK: usize = 1 << 18;

/// The least number of items per parallel task for items of `work` multiply-adds each.
fn min_items(work: usize) -> usize {
    TASK_WORK.div_ceil(work.max(1))
}

/// The Gibbs kernel of a cost between `n` source points and `m` target points, applied in the
/// log domain to `k` stacked vectors at once (histogram-major, float64, `-inf` allowed).
pub trait BatchLogKernel: Sync {
    /// Source points (the input histograms' support).
    fn n(&self) -> usize;
    /// Target points (the barycenter's support).
    fn m(&self) -> usize;
    /// The scratch space of applies to `k` stacked vectors, allocated once (fallibly: a
    /// `MemoryError`, not an abort) and reused by every apply (none by default).
    fn workspace(&self, _k: usize) -> Result<Workspace> {
        Ok(Workspace::default())
    }
    /// Where applies to one vector at a time are as fast as to stacked ones (each its own
    /// product, as on a 2-D grid): the least number of vectors worth a parallel task. `None`
    /// (the default): stacked applies are faster (one matrix product for all).
    fn per_vector(&self) -> Option<usize> {
        None
    }
    /// `out[h*m + j] = LSE_i(x[h*n + i] - C_ij / reg)` for `h < k` (`ws` from
    /// [`Self::workspace`] for at least `k` vectors).
    fn to_target(&self, x: &[f64], k: usize, out: &mut [f64], ws: &mut Workspace);
    /// `out[h*n + i] = LSE_j(y[h*m + j] - C_ij / reg)` for `h < k`.
    fn to_source(&self, y: &[f64], k: usize, out: &mut [f64], ws: &mut Workspace);
    /// [`Self::to_target`] of one vector given as [`Scaled`], its result left in the scaling
    /// form too: `Some(t)` with `out_j = t + ln s_j` for the sums written to `s` (every one
    /// trusted, so the logarithms are exact to rounding); `None` (the default) where the kernel
    /// has no such apply or it does not hold to full accuracy here: the caller then takes
    /// [`Self::to_target`] (`ws` for one vector).
    fn to_target_scaled(&self, _x: Scaled<'_>, _s: &mut [f64], _ws: &mut Workspace) -> Option<f64> {
        None
    }
    /// [`Self::to_target_scaled`] the other way ([`Self::to_source`]).
    fn to_source_scaled(&self, _y: Scaled<'_>, _s: &mut [f64], _ws: &mut Workspace) -> Option<f64> {
        None
    }
}

/// The input of a scaled apply ([`BatchLogKernel::to_target_scaled`]): log-domain values, or
/// the scaling form `x_i = c + ln(num_i / den_i)` (`num >= 0`, `den > 0`; no logarithm or
/// exponential is then taken of the entries: the apply's shifted exponentials are the ratios
/// over their row maxima).
#[derive(Clone, Copy)]
pub enum Scaled<'a> {
    Logs(&'a [f64]),
    Ratio { num: &'a [f64], den: &'a [f64], c: f64 },
}

/// Scratch space of a kernel's applies ([`BatchLogKernel::workspace`]): one set of buffers per
/// stacked vector, so that the vectors' applies run in parallel without allocating.
#[derive(Default)]
pub struct Workspace {
    per: Vec<Scratch>,
}

/// The buffers of one 2-D apply of a [`SeparableKernel`] (see [`SeparableKernel::apply_2d`]).
struct Scratch {
    /// Shifted exponentials of the input image.
    e: Vec<f64>,
    /// The sums after the first axis, and after both.
    s1: Vec<f64>,
    s2: Vec<f64>,
    /// Row maxima of the input and the rows' weights.
    shifts: Vec<f64>,
    wts: Vec<f64>,
    /// The weighted first-pass sums in panels (where the products take them).
    sp: Vec<f64>,
}

/// Exact `LSE_t(x_t - c_t)` over the terms `(x_t, c_t)` of an iterator (two passes).
fn exact_lse(terms: impl Iterator<Item = (f64, f64)> + Clone) -> f64 {
    FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mx = terms.clone().fold(f64::NEG_INFINITY, |m, (x, c)| m.max(x - c));
    if mx == f64::NEG_INFINITY {
        return mx;
    }
    mx + terms.map(|(x, c)| (x - c - mx).exp()).sum::<f64>().ln()
}

/// A dense cost `M` (n x m, row-major): `K = exp(-(M - min M)/reg)` is stored in float64.
pub struct DenseKernel<'a, T> {
    cost: &'a [T],
    n: usize,
    m: usize,
    reg: f64,
    lo: f64,
    k: Vec<f64>,
}

/// Columns (to the target) or rows (to the source) of the output per parallel task.
const BLOCK: usize = 64;

impl<'a, T: Real> DenseKernel<'a, T> {
    /// The kernel of `cost` (n x m) at `reg`; `cost` must be finite.
    pub fn new(cost: &'a [T], n: usize, m: usize, reg: f64) -> Result<Self> {
        let len = checked_len(n, m, "the Gibbs kernel")?;
        if cost.len() != len || n == 0 || m == 0 {
            return Err(OptError::InvalidInput("the cost must be a non-empty n x m matrix".into()));
        }
        if !cost.iter().all(|c| c.is_finite()) {
            return Err(OptError::InvalidInput("M must be finite".into()));
        }
        let lo = cost.iter().fold(f64::INFINITY, |l, &c| l.min(c.as_f64()));
        let mut k = try_zeroed::<f64>(len, "the Gibbs kernel")?;
        k.par_chunks_mut(m).zip(cost.par_chunks(m)).for_each(|(kr, cr)| {
            for (kv, &c) in kr.iter_mut().zip(cr) {
                *kv = (-(c.as_f64() - lo) / reg).exp();
            }
        });
        Ok(DenseKernel { cost, n, m, reg, lo, k })
    }

    /// Shifts and shifted exponentials of `k` stacked vectors of length `len`.
    fn shifted(x: &[f64], len: usize) -> (Vec<f64>, Vec<f64>) {
        let shifts: Vec<f64> = x.chunks_exact(len).map(max_of).collect();
        let mut e = vec![0.0; x.len()];
        for ((er, xr), &s) in e.chunks_exact_mut(len).zip(x.chunks_exact(len)).zip(&shifts) {
            if s > f64::NEG_INFINITY {
                exp_shifted(xr, s, er);
            }
        }
        (shifts, e)
    }

    /// `out = shift + ln s` for the block of outputs `o0..o0 + w` of each of the `k` vectors,
    /// the untrusted sums recomputed exactly (`cost(t, o)`: the cost of input `t`, output `o`).
    fn finish(&self, parts: &[Vec<f64>], x: &[f64], shifts: &[f64], out: &mut [f64], forward: bool) {
        let (len, out_len) = if forward { (self.n, self.m) } else { (self.m, self.n) };
        let lo = self.lo / self.reg;
        for (bi, s) in parts.iter().enumerate() {
            let (o0, o1) = (bi * BLOCK, ((bi + 1) * BLOCK).min(out_len));
            let w = o1 - o0;
            for (h, &shift) in shifts.iter().enumerate() {
                let o = &mut out[h * out_len + o0..h * out_len + o1];
                if shift == f64::NEG_INFINITY {
                    o.iter_mut().for_each(|v| *v = f64::NEG_INFINITY);
                    continue;
                }
                let sh = &s[h * w..(h + 1) * w];
                if ln_added(sh, shift - lo, o) {
                    continue;
                }
                let xr = &x[h * len..(h + 1) * len];
                for (oo, (ov, &sv)) in o.iter_mut().zip(sh).enumerate() {
                    if sv < TRUSTED {
                        let j = o0 + oo;
                        let c = |t: usize| {
                            let idx = if forward { t * self.m + j } else { j * self.m + t };
                            self.cost[idx].as_f64() / self.reg
                        };
                        *ov = exact_lse((0..len).map(|t| (xr[t], c(t))));
                    }
                }
            }
        }
    }
}

impl<T: Real> BatchLogKernel for DenseKernel<'_, T> {
    fn n(&self) -> usize {
        self.n
    }
    fn m(&self) -> usize {
        self.m
    }
    fn to_target(&self, x: &[f64], k: usize, out: &mut [f64], _ws: &mut Workspace) {
        let (n, m) = (self.n, self.m);
        let (shifts, e) = Self::shifted(x, n);
        // s (k x m) = e (k x n) K (n x m), in blocks of columns of K (each task its own block).
        let parts: Vec<Vec<f64>> = (0..m.div_ceil(BLOCK))
            .into_par_iter()
            .with_min_len(min_items(k * n * BLOCK))
            .map(|bi| {
                let (j0, j1) = (bi * BLOCK, ((bi + 1) * BLOCK).min(m));
                let mut s = vec![0.0; k * (j1 - j0)];
                let d = Dims { rows: k, inner: n, cols: j1 - j0, lda: n, ldb: m, ldc: j1 - j0 };
                matmul(&e, &self.k[j0..], &mut s, d);
                s
            })
            .collect();
        self.finish(&parts, x, &shifts, out, true);
    }
    fn to_source(&self, y: &[f64], k: usize, out: &mut [f64], _ws: &mut Workspace) {
        let (n, m) = (self.n, self.m);
        let (shifts, e) = Self::shifted(y, m);
        // s (k x n) = e (k x m) K^T, in blocks of rows of K.
        let parts: Vec<Vec<f64>> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .with_min_len(min_items(k * m * BLOCK))
            .map(|bi| {
                let (i0, i1) = (bi * BLOCK, ((bi + 1) * BLOCK).min(n));
                let mut s = vec![0.0; k * (i1 - i0)];
                matmul_nt(&e, &self.k[i0 * m..i1 * m], &mut s, k, m, i1 - i0);
                s
            })
            .collect();
        self.finish(&parts, y, &shifts, out, false);
    }
}

/// One axis of a separable cost: the 1-D cost `c` (n_a x m_a) over `reg`, its kernel both ways.
struct Axis {
    n: usize,
    m: usize,
    /// `C / reg` (n x m) and its transpose.
    c: Vec<f64>,
    ct: Vec<f64>,
    /// `exp(-(C - min C)/reg)` (n x m) and its transpose.
    k: Vec<f64>,
    kt: Vec<f64>,
    /// `min C / reg`.
    lo: f64,
    /// `k` and `kt` in panels of 8 columns ([`pack_panels`]), where [`panels_fit`] (else empty).
    kp: Vec<f64>,
    ktp: Vec<f64>,
}

/// A separable cost on a grid, `C(p, q) = sum_a C_a(p_a, q_a)` (e.g. the squared Euclidean
/// distance on a product of 1-D point sets): the kernel is the product of 1-D kernels, applied
/// one axis after the other, `O(N * sum_a n_a)` per apply for `N` grid points and no `N x N`
/// array (the convolutional form of Solomon et al. 2015, in the log domain). Grids are row-major
/// (the last axis fastest).
pub struct SeparableKernel {
    axes: Vec<Axis>,
}

impl SeparableKernel {
    /// `costs[a]` is the 1-D cost of axis `a`, row-major `shapes[a].0 x shapes[a].1` (source x
    /// target), finite.
    pub fn new(costs: &[&[f64]], shapes: &[(usize, usize)], reg: f64) -> Result<Self> {
        if costs.is_empty() || costs.len() != shapes.len() {
            return Err(OptError::InvalidInput("one 1-D cost per axis".into()));
        }
        let mut axes = Vec::with_capacity(costs.len());
        for (&c, &(n, m)) in costs.iter().zip(shapes) {
            if n == 0 || m == 0 || c.len() != n * m || !c.iter().all(|v| v.is_finite()) {
                return Err(OptError::InvalidInput(
                    "each axis cost must be a finite, non-empty n_a x m_a matrix".into(),
                ));
            }
            let lo = c.iter().fold(f64::INFINITY, |l, &v| l.min(v)) / reg;
            // Four n_a x m_a matrices: allocated fallibly (a long axis is a MemoryError, not an abort).
            let fresh = || crate::alloc::try_with_capacity::<f64>(n * m, "a grid axis' 1-D kernel");
            let (mut cr, mut k, mut ct, mut kt) = (fresh()?, fresh()?, fresh()?, fresh()?);
            cr.extend(c.iter().map(|&v| v / reg));
            k.extend(cr.iter().map(|&v| (lo - v).exp()));
            let tr = |x: &[f64], out: &mut Vec<f64>| out.extend((0..m).flat_map(|j| (0..n).map(move |i| x[i * m + j])));
            tr(&cr, &mut ct);
            tr(&k, &mut kt);
            let panels = |x: &[f64], rows: usize, cols: usize| -> Result<Vec<f64>> {
                if !panels_fit(cols) {
                    return Ok(Vec::new());
                }
                let mut p = try_zeroed(n * m, "a grid axis' 1-D kernel")?;
                pack_panels(x, None, rows, cols, &mut p);
                Ok(p)
            };
            let (kp, ktp) = (panels(&k, n, m)?, panels(&kt, m, n)?);
            axes.push(Axis { n, m, ct, kt, c: cr, k, lo, kp, ktp });
        }
        Ok(SeparableKernel { axes })
    }

    /// One axis of an apply: `x` of shape (outer, len, inner) to `out` (outer, out_len, inner),
    /// `out[o, j, i] = LSE_t(x[o, t, i] - cost[t, j])`, `kmat`/`cmat` (len x out_len), `kt`
    /// (out_len x len).
    fn axis(x: &[f64], out: &mut [f64], dims: [usize; 4], mats: [&[f64]; 3], lo: f64) {
        let [outer, len, out_len, inner] = dims;
        let [kmat, kt, cmat] = mats;
        let (isz, osz) = (len * inner, out_len * inner);
        if inner == 1 {
            // Rows are the fibres: shift each row by its max, one matrix product for a block.
            let per = min_items(64 * len * out_len);
            out.par_chunks_mut(64 * out_len).zip(x.par_chunks(64 * len)).with_min_len(per).for_each(|(ob, xb)| {
                let rows = xb.len() / len;
                let shifts: Vec<f64> = xb.chunks_exact(len).map(max_of).collect();
                let mut e = vec![0.0; rows * len];
                for ((er, xr), &s) in e.chunks_exact_mut(len).zip(xb.chunks_exact(len)).zip(&shifts) {
                    if s > f64::NEG_INFINITY {
                        exp_shifted(xr, s, er);
                    } else {
                        er.iter_mut().for_each(|v| *v = 0.0);
                    }
                }
                let mut s = vec![0.0; rows * out_len];
                matmul(&e, kmat, &mut s, Dims::packed(rows, len, out_len));
                for (r, (orow, srow)) in ob.chunks_exact_mut(out_len).zip(s.chunks_exact(out_len)).enumerate() {
                    let xr = &xb[r * len..(r + 1) * len];
                    if shifts[r] == f64::NEG_INFINITY {
                        orow.iter_mut().for_each(|v| *v = f64::NEG_INFINITY);
                    } else if !ln_added(srow, shifts[r] - lo, orow) {
                        for (j, (ov, &sv)) in orow.iter_mut().zip(srow).enumerate() {
                            if sv < TRUSTED {
                                *ov = exact_lse((0..len).map(|t| (xr[t], cmat[t * out_len + j])));
                            }
                        }
                    }
                }
            });
            return;
        }
        // Fibres run across rows: shift each column (fixed i) by its max, then
        // out_o = K^T (out_len x len) times E_o (len x inner).
        let per = min_items(len * out_len * inner);
        out.par_chunks_mut(osz).zip(x.par_chunks(isz)).take(outer).with_min_len(per).for_each(|(oo, xo)| {
            let mut shifts = vec![f64::NEG_INFINITY; inner];
            for row in xo.chunks_exact(inner) {
                max_into(row, &mut shifts);
            }
            // An all -inf fibre: shift 0 (its exponentials are 0, its outputs -inf below).
            let empty: Vec<bool> = shifts.iter().map(|&s| s == f64::NEG_INFINITY).collect();
            shifts.iter_mut().filter(|s| **s == f64::NEG_INFINITY).for_each(|s| *s = 0.0);
            let mut e = vec![0.0; isz];
            for (er, xr) in e.chunks_exact_mut(inner).zip(xo.chunks_exact(inner)) {
                exp_subbed(xr, &shifts, er);
            }
            let mut s = vec![0.0; osz];
            matmul(kt, &e, &mut s, Dims::packed(out_len, len, inner));
            for (j, (orow, srow)) in oo.chunks_exact_mut(inner).zip(s.chunks_exact(inner)).enumerate() {
                if ln_added_each(srow, &shifts, lo, orow) {
                    continue;
                }
                for (i, (ov, &sv)) in orow.iter_mut().zip(srow).enumerate() {
                    if empty[i] {
                        *ov = f64::NEG_INFINITY;
                    } else if sv < TRUSTED {
                        *ov = exact_lse((0..len).map(|t| (xo[t * inner + i], cmat[t * out_len + j])));
                    }
                }
            }
            if empty.iter().any(|&e| e) {
                for orow in oo.chunks_exact_mut(inner) {
                    for (ov, _) in orow.iter_mut().zip(&empty).filter(|(_, &e)| e) {
                        *ov = f64::NEG_INFINITY;
                    }
                }
            }
        });
    }

    /// A 2-D apply of one image `x` (h x w) without the log/exp between the two axes: the first
    /// pass (along rows, shifted by each row's max) leaves sums `s` whose logs would be
    /// `mx_r + ln s`; the second pass takes `s * exp(mx_r - max_r mx_r)` directly (h exps instead of
    /// an `ln` and an `exp` per entry). Every dropped term is below 1e-308 as in the general path,
    /// so the result is as accurate whenever every sum is trusted; false (and `out` unspecified)
    /// when one is not: the caller then runs the general path. The trusted range of the first
    /// pass is checked once per image (the least sum of the rows that have mass), that of the
    /// second once per entry as its logarithms are taken. `sc`: this image's scratch.
    fn apply_2d(&self, x: &[f64], out: &mut [f64], forward: bool, sc: &mut Scratch) -> bool {
        let Some(t) = self.apply_2d_logs(x, forward, sc) else {
            return false;
        };
        let ho_wo = out.len();
        ln_added(&sc.s2[..ho_wo], t, out)
    }

    /// The steps of [`Self::apply_2d`] before the logarithms: `Some(t)` with the output
    /// `t + ln s` for the sums `s` left in `sc.s2` (not yet checked), `None` where the first
    /// pass is not trusted or every entry is `-inf`.
    fn apply_2d_logs(&self, x: &[f64], forward: bool, sc: &mut Scratch) -> Option<f64> {
        let (h, w) = self.image(forward).0;
        let (e, shifts, wts) = (&mut sc.e[..h * w], &mut sc.shifts[..h], &mut sc.wts[..h]);
        for (s, xr) in shifts.iter_mut().zip(x.chunks_exact(w)) {
            *s = max_of(xr);
        }
        let top = shifts.iter().fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        if top == f64::NEG_INFINITY {
            return None;
        }
        let mut empty_rows = false;
        for ((er, xr), &sh) in e.chunks_exact_mut(w).zip(x.chunks_exact(w)).zip(shifts.iter()) {
            if sh > f64::NEG_INFINITY {
                exp_shifted(xr, sh, er);
            } else {
                er.iter_mut().for_each(|v| *v = 0.0);
                empty_rows = true;
            }
        }
        // Rows of weight exp(mx_r - top); an empty row (all -inf) has weight 0.
        exp_shifted(shifts, top, wts);
        let empty = empty_rows.then_some(f64::NEG_INFINITY);
        self.products(forward, sc, empty).then(|| top - self.axes[0].lo - self.axes[1].lo)
    }

    /// A 2-D apply of one image in the scaling form `x = c + ln(num / den)` ([`Scaled`]): the
    /// shifted exponentials `exp(x - mx_r)` of [`Self::apply_2d`] are the ratios over their row
    /// maxima `u / max_r u` (`u = num / den`), the rows' weights `max_r u / max u`: no `exp` or
    /// `ln` per entry, the same sums up to rounding. `None` where a row maximum (of a row with
    /// mass) is below `1e-290` (its ratios could lose relative accuracy to subnormals), the
    /// largest is not finite, or a sum of either pass is untrusted: the caller then takes the
    /// log-domain path. Otherwise `Some(t)` with the output `t + ln s`, `s` left in `sc.s2`
    /// (every entry trusted).
    fn apply_2d_ratio(&self, (num, den, c): (&[f64], &[f64], f64), forward: bool, sc: &mut Scratch) -> Option<f64> {
        let (h, w) = self.image(forward).0;
        let (e, shifts, wts) = (&mut sc.e[..h * w], &mut sc.shifts[..h], &mut sc.wts[..h]);
        ratio(&num[..h * w], &den[..h * w], e);
        let mut empty_rows = false;
        for (er, s) in e.chunks_exact_mut(w).zip(shifts.iter_mut()) {
            *s = max_of(er);
            if *s > 0.0 {
                scale(er, 1.0 / *s);
            } else {
                empty_rows = true;
            }
        }
        let top = max_of(shifts);
        let least = shifts.iter().filter(|&&v| v > 0.0).fold(f64::INFINITY, |m, &v| m.min(v));
        if !(top.is_finite() && top > 0.0 && least >= 1e-290) {
            return None;
        }
        let inv = 1.0 / top;
        for (wt, &s) in wts.iter_mut().zip(shifts.iter()) {
            *wt = s * inv;
        }
        if !self.products(forward, sc, empty_rows.then_some(0.0)) {
            return None;
        }
        let (ho, wo) = self.image(forward).1;
        (min_of(&sc.s2[..ho * wo]) >= TRUSTED).then(|| c + top.ln() - self.axes[0].lo - self.axes[1].lo)
    }

    /// The input and output shapes `((h, w), (ho, wo))` of a 2-D apply.
    fn image(&self, forward: bool) -> ((usize, usize), (usize, usize)) {
        let (a0, a1) = (&self.axes[0], &self.axes[1]);
        if forward {
            ((a0.n, a1.n), (a0.m, a1.m))
        } else {
            ((a0.m, a1.m), (a0.n, a1.n))
        }
    }

    /// The two products of a 2-D apply: `s1 = e K_2` (the shifted exponentials `sc.e`), checked
    /// trusted on the rows with mass (those whose shift in `sc.shifts` is above `empty`, where
    /// some row has none), its rows weighted by `sc.wts`, then `s2 = K_1^T s1`. False where the
    /// first pass is not trusted.
    fn products(&self, forward: bool, sc: &mut Scratch, empty: Option<f64>) -> bool {
        let (a0, a1) = (&self.axes[0], &self.axes[1]);
        let ((h, w), (ho, wo)) = self.image(forward);
        let (k1t, k2, k2p) = if forward { (&a0.kt, &a1.k, &a1.kp) } else { (&a0.k, &a1.kt, &a1.ktp) };
        let (e, s1, s2) = (&sc.e[..h * w], &mut sc.s1[..h * wo], &mut sc.s2[..ho * wo]);
        let (shifts, wts) = (&sc.shifts[..h], &sc.wts[..h]);
        // Both products with the right operand in panels where they fit (the same sums).
        let panels = panels_fit(wo) && !k2p.is_empty();
        if panels {
            matmul_panels(e, k2p, s1, Dims::packed(h, w, wo));
        } else {
            matmul(e, k2, s1, Dims::packed(h, w, wo));
        }
        // The first pass' sums, of the rows with mass (an empty row's sums are 0, unused).
        let least = match empty {
            Some(none) => s1
                .chunks_exact(wo)
                .zip(shifts.iter())
                .filter(|(_, &sh)| sh > none)
                .fold(f64::INFINITY, |m, (row, _)| m.min(min_of(row))),
            None => min_of(s1),
        };
        if least < TRUSTED {
            return false;
        }
        if panels {
            let sp = &mut sc.sp[..h * wo];
            pack_panels(s1, Some(wts), h, wo, sp);
            matmul_panels(k1t, sp, s2, Dims::packed(ho, h, wo));
            return true;
        }
        for (row, &wt) in s1.chunks_exact_mut(wo).zip(wts.iter()) {
            row.iter_mut().for_each(|v| *v *= wt);
        }
        matmul(k1t, s1, s2, Dims::packed(ho, h, wo));
        true
    }

    /// A scaled apply ([`BatchLogKernel::to_target_scaled`]) of a 2-D kernel: the sums copied
    /// to `s`.
    fn apply_scaled(&self, x: Scaled<'_>, s: &mut [f64], forward: bool, ws: &mut Workspace) -> Option<f64> {
        let sc = ws.per.first_mut().filter(|_| self.axes.len() == 2)?;
        let t = match x {
            Scaled::Logs(x) => {
                let t = self.apply_2d_logs(x, forward, sc)?;
                (min_of(&sc.s2[..s.len()]) >= TRUSTED).then_some(t)?
            }
            Scaled::Ratio { num, den, c } => self.apply_2d_ratio((num, den, c), forward, sc)?,
        };
        s.copy_from_slice(&sc.s2[..s.len()]);
        Some(t)
    }

    /// The least number of images per parallel task of 2-D applies.
    fn per_task(&self) -> usize {
        let (a0, a1) = (&self.axes[0], &self.axes[1]);
        min_items(self.n().max(self.m()) * (a0.n.max(a0.m) + a1.n.max(a1.m)))
    }

    /// Scratch for one 2-D apply either way (the largest image, first-pass sums and output).
    fn scratch(&self) -> Result<Scratch> {
        let (a0, a1) = (&self.axes[0], &self.axes[1]);
        let what = "the grid kernel's work buffers";
        let len = |a: usize, b: usize| checked_len(a, b, what);
        let img = len(a0.n, a1.n)?.max(len(a0.m, a1.m)?);
        let mid = len(a0.n, a1.m)?.max(len(a0.m, a1.n)?);
        let rows = a0.n.max(a0.m);
        Ok(Scratch {
            e: try_zeroed(img, what)?,
            s1: try_zeroed(mid, what)?,
            s2: try_zeroed(img, what)?,
            shifts: try_zeroed(rows, what)?,
            wts: try_zeroed(rows, what)?,
            sp: try_zeroed(mid, what)?,
        })
    }

    fn apply(&self, x: &[f64], k: usize, out: &mut [f64], forward: bool, ws: &mut Workspace) {
        let d = self.axes.len();
        if d == 2 && ws.per.len() >= k {
            let (n, m) = (self.n(), self.m());
            let (len, out_len) = if forward { (n, m) } else { (m, n) };
            let per = self.per_task();
            let one = |((o, xh), sc): ((&mut [f64], &[f64]), &mut Scratch)| self.apply_2d(xh, o, forward, sc);
            let ok: Vec<bool> = if k <= per {
                // One task: on this thread (no hand-over to the pool).
                out.chunks_mut(out_len).zip(x.chunks(len)).zip(ws.per.iter_mut()).take(k).map(one).collect()
            } else {
                out.par_chunks_mut(out_len)
                    .zip(x.par_chunks(len))
                    .zip(ws.per.par_iter_mut())
                    .take(k)
                    .with_min_len(per)
                    .map(one)
                    .collect()
            };
            for (h, _) in ok.iter().enumerate().filter(|(_, &g)| !g) {
                self.apply_axes(&x[h * len..(h + 1) * len], 1, &mut out[h * out_len..(h + 1) * out_len], forward);
            }
            return;
        }
        self.apply_axes(x, k, out, forward);
    }

    /// The general apply: one axis after the other, each with its own logs and exponentials.
    fn apply_axes(&self, x: &[f64], k: usize, out: &mut [f64], forward: bool) {
        let d = self.axes.len();
        // Current shape (per histogram), updated axis by axis.
        let mut shape: Vec<usize> = self.axes.iter().map(|a| if forward { a.n } else { a.m }).collect();
        let mut cur = x.to_vec();
        for (ai, ax) in self.axes.iter().enumerate() {
            let (len, out_len) = if forward { (ax.n, ax.m) } else { (ax.m, ax.n) };
            let outer: usize = k * shape[..ai].iter().product::<usize>();
            let inner: usize = shape[ai + 1..].iter().product();
            let mats: [&[f64]; 3] = if forward { [&ax.k, &ax.kt, &ax.c] } else { [&ax.kt, &ax.k, &ax.ct] };
            let mut next = vec![0.0; outer * out_len * inner];
            Self::axis(&cur, &mut next, [outer, len, out_len, inner], mats, ax.lo);
            shape[ai] = out_len;
            if ai + 1 == d {
                out.copy_from_slice(&next);
            } else {
                cur = next;
            }
        }
    }
}

impl BatchLogKernel for SeparableKernel {
    fn n(&self) -> usize {
        self.axes.iter().map(|a| a.n).product()
    }
    fn m(&self) -> usize {
        self.axes.iter().map(|a| a.m).product()
    }
    fn per_vector(&self) -> Option<usize> {
        (self.axes.len() == 2).then(|| self.per_task())
    }
    fn workspace(&self, k: usize) -> Result<Workspace> {
        if self.axes.len() != 2 {
            return Ok(Workspace::default());
        }
        let mut per = crate::alloc::try_with_capacity(k, "the grid kernel's work buffers")?;
        for _ in 0..k {
            per.push(self.scratch()?);
        }
        Ok(Workspace { per })
    }
    fn to_target(&self, x: &[f64], k: usize, out: &mut [f64], ws: &mut Workspace) {
        self.apply(x, k, out, true, ws);
    }
    fn to_source(&self, y: &[f64], k: usize, out: &mut [f64], ws: &mut Workspace) {
        self.apply(y, k, out, false, ws);
    }
    fn to_target_scaled(&self, x: Scaled<'_>, s: &mut [f64], ws: &mut Workspace) -> Option<f64> {
        self.apply_scaled(x, s, true, ws)
    }
    fn to_source_scaled(&self, y: Scaled<'_>, s: &mut [f64], ws: &mut Workspace) -> Option<f64> {
        self.apply_scaled(y, s, false, ws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_ref(x: &[f64], cost: &[f64], n: usize, m: usize, reg: f64) -> Vec<f64> {
        (0..m).map(|j| exact_lse((0..n).map(|i| (x[i], cost[i * m + j] / reg)))).collect()
    }

    #[test]
    fn dense_apply_is_exact_at_any_reg() {
        let (n, m) = (13, 9);
        let cost: Vec<f64> = (0..n * m).map(|i| ((i * 7 % 11) as f64) / 10.0).collect();
        for &reg in &[1.0, 1e-2, 1e-4] {
            let kern = DenseKernel::new(&cost, n, m, reg).unwrap();
            let x: Vec<f64> =
                (0..2 * n).map(|i| if i == 3 { f64::NEG_INFINITY } else { (i as f64 * 1.3).sin() / reg }).collect();
            let mut out = vec![0.0; 2 * m];
            kern.to_target(&x, 2, &mut out, &mut kern.workspace(2).unwrap());
            for h in 0..2 {
                let r = dense_ref(&x[h * n..(h + 1) * n], &cost, n, m, reg);
                for j in 0..m {
                    assert!((out[h * m + j] - r[j]).abs() <= 1e-12 * r[j].abs().max(1.0), "{reg} {h} {j}");
                }
            }
        }
    }

    #[test]
    fn scaled_applies_match_the_log_domain_apply() {
        let (h, w) = (9, 12);
        let t = |len: usize| -> Vec<f64> { (0..len).map(|i| i as f64 / (len - 1) as f64).collect() };
        let sq =
            |p: &[f64]| -> Vec<f64> { p.iter().flat_map(|&u| p.iter().map(move |&v| (u - v) * (u - v))).collect() };
        let (ch, cw) = (sq(&t(h)), sq(&t(w)));
        let n = h * w;
        // A zero row and scattered zeros in the numerator; denominators over many decades.
        let num: Vec<f64> = (0..n).map(|i| if i / w == 3 || i % 7 == 2 { 0.0 } else { 1.0 + (i % 5) as f64 }).collect();
        let den: Vec<f64> = (0..n).map(|i| 10f64.powi((i % 9) as i32 - 4)).collect();
        let c = -3.7;
        let logs: Vec<f64> = num.iter().zip(&den).map(|(&a, &b)| c + (a / b).ln()).collect();
        for &reg in &[0.5, 1e-2] {
            let sep = SeparableKernel::new(&[&ch, &cw], &[(h, h), (w, w)], reg).unwrap();
            for forward in [true, false] {
                let mut ws = sep.workspace(1).unwrap();
                let mut want = vec![0.0; n];
                if forward {
                    sep.to_target(&logs, 1, &mut want, &mut ws);
                } else {
                    sep.to_source(&logs, 1, &mut want, &mut ws);
                }
                for x in [Scaled::Logs(&logs), Scaled::Ratio { num: &num, den: &den, c }] {
                    let mut s = vec![0.0; n];
                    let t = if forward {
                        sep.to_target_scaled(x, &mut s, &mut ws)
                    } else {
                        sep.to_source_scaled(x, &mut s, &mut ws)
                    };
                    let t = t.expect("trusted at these regs");
                    for (&sv, &v) in s.iter().zip(&want) {
                        let got = t + sv.ln();
                        assert!((got - v).abs() <= 1e-12 * v.abs().max(1.0), "{reg} {forward}: {got} vs {v}");
                    }
                }
            }
        }
        // Untrusted sums (a tiny reg, potentials far apart): no scaled apply.
        let sep = SeparableKernel::new(&[&ch, &cw], &[(h, h), (w, w)], 1e-4).unwrap();
        let far: Vec<f64> = (0..n).map(|i| if i == 0 { 0.0 } else { -1e6 }).collect();
        let mut s = vec![0.0; n];
        assert!(sep.to_target_scaled(Scaled::Logs(&far), &mut s, &mut sep.workspace(1).unwrap()).is_none());
    }

    #[test]
    fn separable_matches_dense_on_a_grid() {
        let (h, w) = (6, 5);
        let t = |len: usize| -> Vec<f64> { (0..len).map(|i| i as f64 / (len - 1) as f64).collect() };
        let (th, tw) = (t(h), t(w));
        let sq =
            |p: &[f64]| -> Vec<f64> { p.iter().flat_map(|&u| p.iter().map(move |&v| (u - v) * (u - v))).collect() };
        let (ch, cw) = (sq(&th), sq(&tw));
        let n = h * w;
        let mut full = vec![0.0; n * n];
        for p in 0..n {
            for q in 0..n {
                full[p * n + q] = ch[(p / w) * h + q / w] + cw[(p % w) * w + q % w];
            }
        }
        for &reg in &[0.5, 1e-3] {
            let sep = SeparableKernel::new(&[&ch, &cw], &[(h, h), (w, w)], reg).unwrap();
            let dense = DenseKernel::new(&full, n, n, reg).unwrap();
            let x: Vec<f64> = (0..2 * n).map(|i| (i as f64 * 0.7).cos() / reg).collect();
            for forward in [true, false] {
                let (mut a, mut b) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
                let (mut ws, mut wd) = (sep.workspace(2).unwrap(), dense.workspace(2).unwrap());
                if forward {
                    sep.to_target(&x, 2, &mut a, &mut ws);
                    dense.to_target(&x, 2, &mut b, &mut wd);
                } else {
                    sep.to_source(&x, 2, &mut a, &mut ws);
                    dense.to_source(&x, 2, &mut b, &mut wd);
                }
                for (u, v) in a.iter().zip(&b) {
                    assert!((u - v).abs() <= 1e-11 * v.abs().max(1.0), "{reg}: {u} vs {v}");
                }
            }
        }
    }
}
