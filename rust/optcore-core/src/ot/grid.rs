//! Grids: the Gibbs kernel of a separable cost, applied in the log domain by 1-D passes.
//!
//! A [`Grid`] is the Cartesian product of `d` sorted 1-D axes (of any lengths `n_0, ..., n_{d-1}`),
//! its points in C order (the last axis varies fastest). Its cost between points `x` and `y` is
//! `C(x, y) = sum_k |x_k - y_k|^p`, so the Gibbs kernel `exp(-C/reg)` is the tensor product of
//! the 1-D kernels `exp(-|x_k - y_k|^p / reg)`. [`GridKernel::apply`] computes
//! `out_i = LSE_j(h_j - C_ij / reg)` over all grid points `j` as `d` successive 1-D
//! log-sum-exps, one per axis, each max-shifted per output (stable for any `reg`): a pass costs
//! `n * n_k` exponentials, so one application costs `n * sum_k n_k` instead of `n^2`, and no
//! `n x n` array exists. Applying the kernel this way is what Sinkhorn on a grid
//! ([`super::unbalanced::sinkhorn_lse`] with a [`GridOperator`]) and a convolutional barycenter
//! need.
//!
//! # Layout of a pass
//!
//! A pass reads its input as `(R, L)` rows (`L` the length of the last axis of the current
//! layout, contiguous) and writes `(L, R)`: the axis it reduced moves to the front. After `d`
//! passes the axes are back in their order. Each output row is one task of the thread pool
//! and is computed in a fixed order, so results do not depend on the number of threads.

use super::gibbs::{BatchLogKernel, SeparableKernel, Workspace};
use super::unbalanced::{LogKernel, Sums};
use crate::error::{OptError, Result};
use crate::real::{Fused, Madd, Real, Unfused};
use rayon::prelude::*;

/// A Cartesian grid with the separable cost `sum_k |x_k - y_k|^p`.
#[derive(Clone, Debug)]
pub struct Grid {
    axes: Vec<Vec<f64>>,
    p: f64,
    n: usize,
}

impl Grid {
    /// A grid of the given axes (each non-empty, finite, strictly increasing) and cost
    /// exponent `p > 0`.
    pub fn new(axes: Vec<Vec<f64>>, p: f64) -> Result<Self> {
        let bad = |s: String| Err(OptError::InvalidInput(s));
        if axes.is_empty() {
            return bad("a grid needs at least one axis".into());
        }
        if !(p > 0.0 && p.is_finite()) {
            return bad("the cost exponent p must be positive and finite".into());
        }
        let mut n = 1usize;
        for (k, ax) in axes.iter().enumerate() {
            if ax.is_empty() {
                return bad(format!("axis {k} of the grid is empty"));
            }
            if !ax.iter().all(|x| x.is_finite()) {
                return bad(format!("axis {k} of the grid has non-finite coordinates"));
            }
            if ax.windows(2).any(|w| w[1] <= w[0]) {
                return bad(format!("axis {k} of the grid is not strictly increasing"));
            }
            n = n
                .checked_mul(ax.len())
                .ok_or_else(|| OptError::InvalidInput("the grid has more points than a usize holds".into()))?;
        }
        Ok(Grid { axes, p, n })
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (every axis has a point).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The axis lengths.
    pub fn shape(&self) -> Vec<usize> {
        self.axes.iter().map(Vec::len).collect()
    }

    pub fn axes(&self) -> &[Vec<f64>] {
        &self.axes
    }

    pub fn p(&self) -> f64 {
        self.p
    }

    /// `|x - y|^p` (the 1-D cost of one axis).
    fn cost1(&self, x: f64, y: f64) -> f64 {
        let t = (x - y).abs();
        if self.p == 2.0 {
            t * t
        } else if self.p == 1.0 {
            t
        } else {
            t.powf(self.p)
        }
    }

    /// The largest cost between two grid points (the smallest is 0).
    pub fn cost_max(&self) -> f64 {
        self.axes.iter().map(|ax| self.cost1(ax[0], ax[ax.len() - 1])).sum()
    }
}

/// The log-domain Gibbs kernel of a [`Grid`] at one `reg`: per axis the `n_k x n_k` matrix
/// `L_k[i, j] = -|x_i - x_j|^p / reg` (optionally, on one axis, `+ ln |x_i - x_j|^p`: the
/// kernel weighted by that axis' cost, for measuring `<P, C>`).
#[derive(Clone, Debug)]
pub struct GridKernel<T> {
    shape: Vec<usize>,
    n: usize,
    mats: Vec<Vec<T>>,
    /// Per axis, per row `i`, the maxima of `L_k[i, j]` over blocks of [`BLK`] columns.
    bounds: Vec<Vec<T>>,
}

impl<T: Real> GridKernel<T> {
    /// The kernel `exp(-C / reg)` in the log domain (a `MemoryError`-style error when the
    /// `n_k x n_k` matrices do not fit).
    pub fn new(grid: &Grid, reg: f64) -> Result<Self> {
        Self::build(grid, reg, None)
    }

    /// The kernel `exp(-C / reg) * C_k` (weighted by the cost of axis `k`) in the log domain:
    /// `sum_k` of its applications gives `sum_j exp(h_j - C_ij/reg) C_ij`.
    pub fn weighted(grid: &Grid, reg: f64, k: usize) -> Result<Self> {
        Self::build(grid, reg, Some(k))
    }

    fn build(grid: &Grid, reg: f64, weight: Option<usize>) -> Result<Self> {
        let inv = 1.0 / reg;
        let mut mats: Vec<Vec<T>> = Vec::with_capacity(grid.axes.len());
        for (k, ax) in grid.axes.iter().enumerate() {
            let len = crate::alloc::checked_len(ax.len(), ax.len(), "a grid axis' 1-D kernel")?;
            let mut mat = crate::alloc::try_with_capacity(len, "a grid axis' 1-D kernel")?;
            for &x in ax {
                for &y in ax {
                    let c = grid.cost1(x, y);
                    let w = if weight == Some(k) { c.ln() } else { 0.0 };
                    mat.push(T::from_f64(-c * inv + w));
                }
            }
            mats.push(mat);
        }
        let bounds = mats.iter().zip(grid.shape()).map(|(m, l)| block_max(m, l)).collect();
        Ok(GridKernel { shape: grid.shape(), n: grid.n, mats, bounds })
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `out_i = LSE_j(h_j + sum_k L_k[i_k, j_k])` for every grid point `i` (with the plain
    /// kernel: `LSE_j(h_j - C_ij / reg)`), by `d` 1-D passes. `h`, `out` and `work` have one
    /// entry per grid point; `h` may hold `-inf` (an output is `-inf` when no term is finite).
    pub fn apply(&self, h: &[T], out: &mut [T], work: &mut [T]) {
        let d = self.shape.len();
        assert!(h.len() == self.n && out.len() == self.n && work.len() == self.n, "grid buffers have the wrong length");
        let fast = simd();
        // Pass p reduces axis d-1-p; the last pass writes `out`.
        for pass in 0..d {
            let axis = d - 1 - pass;
            let into_out = (d - 1 - pass) % 2 == 0;
            let (src, dst): (&[T], &mut [T]) = match (pass, into_out) {
                (0, true) => (h, &mut *out),
                (0, false) => (h, &mut *work),
                (_, true) => (&*work, &mut *out),
                (_, false) => (&*out, &mut *work),
            };
            line_pass(src, dst, (&self.mats[axis], &self.bounds[axis]), self.shape[axis], fast);
        }
    }
}

/// Columns per block of the bounds that let a pass skip negligible terms.
const BLK: usize = 8;

/// Maxima of each row (length `l`) of `v` over blocks of [`BLK`] entries.
fn block_max<T: Real>(v: &[T], l: usize) -> Vec<T> {
    v.chunks_exact(l)
        .flat_map(|row| row.chunks(BLK).map(|c| c.iter().fold(T::neg_infinity(), |m, &x| if x > m { x } else { m })))
        .collect()
}

/// Terms more than this below the largest one are left out of a log-sum-exp: with at most
/// a few thousand of them they change the sum by less than the dtype's rounding
/// (f64: `e^-46 = 1e-20`; f32: `e^-28 = 7e-13`).
fn cutoff<T: Real>() -> T {
    T::from_f64(if T::SAFE_LO < 1e-100 { 46.0 } else { 28.0 })
}

/// One pass: `src` as `(r, l)` rows, `dst` as `(l, r)`, `dst[i, q] = LSE_j(src[q, j] + mat[i, j])`
/// (`mat` with its block maxima `bounds`).
fn line_pass<T: Real>(src: &[T], dst: &mut [T], (mat, bounds): (&[T], &[T]), l: usize, fast: bool) {
    let r = src.len() / l;
    let nb = l.div_ceil(BLK);
    let xb = block_max(src, l);
    let cut = cutoff::<T>();
    dst.par_chunks_mut(r).enumerate().for_each(|(i, row)| {
        let (mi, bi) = (&mat[i * l..(i + 1) * l], &bounds[i * nb..(i + 1) * nb]);
        for (q, o) in row.iter_mut().enumerate() {
            *o = lse_bounded_dispatch(fast, (&src[q * l..(q + 1) * l], &xb[q * nb..(q + 1) * nb]), (mi, bi), cut);
        }
    });
}

/// `LSE_j(x_j + y_j)`, max-shifted, skipping the blocks of [`BLK`] terms whose bound
/// `xb + yb` (block maxima) is more than `cut` below the largest term: their sum is below the
/// dtype's rounding of the result. The sum of exponentials is accumulated in f64.
#[inline(always)]
fn lse_bounded<T: Real, M: Madd>((x, xb): (&[T], &[T]), (y, yb): (&[T], &[T]), cut: T) -> T {
    let mut acc = [T::neg_infinity(); BLK];
    let (mut xc, mut yc) = (x.chunks_exact(BLK), y.chunks_exact(BLK));
    for (xr, yr) in (&mut xc).zip(&mut yc) {
        for l in 0..BLK {
            let v = xr[l] + yr[l];
            acc[l] = if v > acc[l] { v } else { acc[l] };
        }
    }
    for (&xj, &yj) in xc.remainder().iter().zip(yc.remainder()) {
        let v = xj + yj;
        acc[0] = if v > acc[0] { v } else { acc[0] };
    }
    let mx = acc.iter().fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
    if mx == T::neg_infinity() || mx.is_nan() {
        return mx;
    }
    let thr = mx - cut;
    let mut s = [0f64; BLK];
    let (mut xc, mut yc) = (x.chunks_exact(BLK), y.chunks_exact(BLK));
    for ((xr, yr), (&bx, &by)) in (&mut xc).zip(&mut yc).zip(xb.iter().zip(yb)) {
        if bx + by < thr {
            continue;
        }
        for l in 0..BLK {
            s[l] += (xr[l] + yr[l] - mx).fast_exp::<M>().as_f64();
        }
    }
    for (&xj, &yj) in xc.remainder().iter().zip(yc.remainder()) {
        s[0] += (xj + yj - mx).fast_exp::<M>().as_f64();
    }
    T::from_f64(mx.as_f64() + s.iter().sum::<f64>().ln())
}

/// [`lse_bounded`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lse_bounded_avx2<T: Real>(x: (&[T], &[T]), y: (&[T], &[T]), cut: T) -> T {
    lse_bounded::<T, Fused>(x, y, cut)
}

/// [`lse_bounded`], the AVX2 + FMA version where the CPU has it (`fast`).
#[inline(always)]
fn lse_bounded_dispatch<T: Real>(fast: bool, x: (&[T], &[T]), y: (&[T], &[T]), cut: T) -> T {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is true only when the CPU supports AVX2 and FMA.
        return unsafe { lse_bounded_avx2(x, y, cut) };
    }
    let _ = fast;
    lse_bounded::<T, Unfused>(x, y, cut)
}

/// `LSE_j(x_j + s y_j)` (max-shifted, the sum of exponentials in f64; `z` scratch).
#[inline(always)]
fn lse<T: Real, M: Madd>(x: &[T], y: &[T], s: T, z: &mut [T]) -> T {
    const L: usize = 8;
    let mut acc = [T::neg_infinity(); L];
    let mut zc = z.chunks_exact_mut(L);
    let (mut xc, mut yc) = (x.chunks_exact(L), y.chunks_exact(L));
    for ((zr, xr), yr) in (&mut zc).zip(&mut xc).zip(&mut yc) {
        for l in 0..L {
            let v = M::madd(yr[l], s, xr[l]);
            zr[l] = v;
            acc[l] = if v > acc[l] { v } else { acc[l] };
        }
    }
    for ((zj, &xj), &yj) in zc.into_remainder().iter_mut().zip(xc.remainder()).zip(yc.remainder()) {
        let v = M::madd(yj, s, xj);
        *zj = v;
        acc[0] = if v > acc[0] { v } else { acc[0] };
    }
    let mx = acc.iter().fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
    if mx == T::neg_infinity() || mx.is_nan() {
        return mx;
    }
    let mut s = [0f64; L];
    let mut zc = z.chunks_exact(L);
    for zr in &mut zc {
        for l in 0..L {
            s[l] += (zr[l] - mx).fast_exp::<M>().as_f64();
        }
    }
    for &v in zc.remainder() {
        s[0] += (v - mx).fast_exp::<M>().as_f64();
    }
    T::from_f64(mx.as_f64() + s.iter().sum::<f64>().ln())
}

/// [`lse`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn lse_avx2<T: Real>(x: &[T], y: &[T], s: T, z: &mut [T]) -> T {
    lse::<T, Fused>(x, y, s, z)
}

/// [`lse`], the AVX2 + FMA version where the CPU has it (`fast`); shared with the dense
/// operator of [`super::unbalanced`].
#[inline(always)]
pub(super) fn lse_dispatch<T: Real>(fast: bool, x: &[T], y: &[T], s: T, z: &mut [T]) -> T {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is true only when the CPU supports AVX2 and FMA.
        return unsafe { lse_avx2(x, y, s, z) };
    }
    let _ = fast;
    lse::<T, Unfused>(x, y, s, z)
}

/// Whether the AVX2 + FMA versions run on this CPU.
pub(super) fn simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A grid as the [`LogKernel`] of the log-domain loop: the same grid for both marginals (the
/// cost is symmetric, so rows and columns are the same application). The f64 kernels of the
/// measurement are built when first needed.
pub struct GridOperator<'g, T> {
    grid: &'g Grid,
    kernel: GridKernel<T>,
    /// The half-iterations' kernel: max-shifted exponentials and one matrix product per axis
    /// (`n` exponentials a pass instead of `n n_k`), each sum that leaves the trusted range
    /// recomputed exactly ([`SeparableKernel`]), its two f64 buffers and its scratch; `None` until `set_reg`.
    fast: Option<(SeparableKernel, Vec<f64>, Vec<f64>, Workspace)>,
    work: Vec<T>,
    exact: Option<(f64, GridKernel<f64>, Vec<GridKernel<f64>>)>,
    work64: Vec<f64>,
}

impl<'g, T: Real> GridOperator<'g, T> {
    pub fn new(grid: &'g Grid) -> Result<Self> {
        let n = grid.len();
        Ok(GridOperator {
            grid,
            kernel: GridKernel::new(grid, 1.0)?,
            fast: None,
            work: crate::alloc::try_zeroed::<T>(n, "the grid work buffer")?,
            exact: None,
            work64: Vec::new(),
        })
    }

    /// `out_i = LSE_j(h_j - C_ij / reg)` (the cost is symmetric: rows and columns alike).
    fn half(&mut self, h: &[T], out: &mut [T]) {
        match &mut self.fast {
            Some((k, x, y, ws)) => {
                x.iter_mut().zip(h).for_each(|(d, &s)| *d = s.as_f64());
                k.to_source(x, 1, y, ws);
                out.iter_mut().zip(y.iter()).for_each(|(d, &s)| *d = T::from_f64(s));
            }
            None => self.kernel.apply(h, out, &mut self.work),
        }
    }

    /// The f64 kernels of the measurement at `reg` (built once per `reg`).
    fn exact(&mut self, reg: f64) -> Result<()> {
        if self.exact.as_ref().is_none_or(|e| e.0 != reg) {
            let d = self.grid.axes.len();
            let w = (0..d).map(|k| GridKernel::weighted(self.grid, reg, k)).collect::<Result<_>>()?;
            self.exact = Some((reg, GridKernel::new(self.grid, reg)?, w));
        }
        if self.work64.is_empty() {
            self.work64 = crate::alloc::try_zeroed::<f64>(self.grid.len(), "the grid work buffer")?;
        }
        Ok(())
    }
}

impl<T: Real> LogKernel<T> for GridOperator<'_, T> {
    fn n(&self) -> usize {
        self.grid.len()
    }
    fn m(&self) -> usize {
        self.grid.len()
    }
    fn cost_range(&self) -> f64 {
        self.grid.cost_max()
    }
    fn set_reg(&mut self, reg: f64) -> Result<()> {
        self.kernel = GridKernel::new(self.grid, reg)?;
        let grid = self.grid;
        let mut costs: Vec<Vec<f64>> = Vec::with_capacity(grid.axes.len());
        for ax in &grid.axes {
            let mut c = crate::alloc::try_with_capacity(ax.len() * ax.len(), "a grid axis' 1-D cost")?;
            c.extend(ax.iter().flat_map(|&x| ax.iter().map(move |&y| grid.cost1(x, y))));
            costs.push(c);
        }
        let refs: Vec<&[f64]> = costs.iter().map(Vec::as_slice).collect();
        let shapes: Vec<(usize, usize)> = grid.axes.iter().map(|ax| (ax.len(), ax.len())).collect();
        let n = grid.len();
        // The kernel computes in f64 whatever T is, in two f64 buffers of n.
        let x = crate::alloc::try_zeroed::<f64>(n, "the grid work buffer")?;
        let y = crate::alloc::try_zeroed::<f64>(n, "the grid work buffer")?;
        let kern = SeparableKernel::new(&refs, &shapes, reg)?;
        let ws = kern.workspace(1)?;
        self.fast = Some((kern, x, y, ws));
        Ok(())
    }
    fn rows(&mut self, h: &[T], out: &mut [T]) {
        self.half(h, out);
    }
    fn cols(&mut self, h: &[T], out: &mut [T]) {
        self.half(h, out);
    }
    fn measure(&mut self, fs: &[f64], gs: &[f64], reg: f64) -> Result<Sums> {
        self.exact(reg)?;
        let n = self.grid.len();
        let (_, kern, weighted) = self.exact.as_ref().expect("built above");
        let mut lr = crate::alloc::try_zeroed::<f64>(n, "the grid work buffer")?;
        let mut lc = crate::alloc::try_zeroed::<f64>(n, "the grid work buffer")?;
        kern.apply(gs, &mut lr, &mut self.work64);
        kern.apply(fs, &mut lc, &mut self.work64);
        let rows: Vec<f64> = fs.iter().zip(&lr).map(|(&f, &l)| plan_sum(f, l)).collect();
        let cols: Vec<f64> = gs.iter().zip(&lc).map(|(&g, &l)| plan_sum(g, l)).collect();
        // <P, C> = sum_k sum_i exp(f_i/reg + LSE_j(g_j/reg - C_ij/reg + ln C^k_ij)).
        let mut cost = 0.0;
        for w in weighted {
            w.apply(gs, &mut lr, &mut self.work64);
            cost += fs.iter().zip(&lr).map(|(&f, &l)| plan_sum(f, l)).sum::<f64>();
        }
        Ok(Sums { rows, cols, cost })
    }
}

/// `exp(s + l)`, 0 when either is `-inf` (a zero weight, or no mass reaching the point).
fn plan_sum(s: f64, l: f64) -> f64 {
    if s == f64::NEG_INFINITY || l == f64::NEG_INFINITY {
        0.0
    } else {
        (s + l).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_lse(grid: &Grid, h: &[f64], reg: f64) -> Vec<f64> {
        // Points in C order.
        let shape = grid.shape();
        let n = grid.len();
        let coords = |mut i: usize| {
            let mut c = vec![0.0; shape.len()];
            for k in (0..shape.len()).rev() {
                c[k] = grid.axes[k][i % shape[k]];
                i /= shape[k];
            }
            c
        };
        (0..n)
            .map(|i| {
                let x = coords(i);
                let z: Vec<f64> = (0..n)
                    .map(|j| {
                        let y = coords(j);
                        let c: f64 = x.iter().zip(&y).map(|(&u, &v)| grid.cost1(u, v)).sum();
                        h[j] - c / reg
                    })
                    .collect();
                crate::real::logsumexp(&z)
            })
            .collect()
    }

    #[test]
    fn separable_apply_matches_the_dense_sum() {
        for axes in [
            vec![vec![0.0, 0.3, 0.4, 1.0, 1.5]],
            vec![vec![0.0, 0.5, 1.0], vec![0.0, 0.1, 0.2, 0.7]],
            vec![vec![0.0, 1.0], vec![-1.0, 0.0, 2.0], vec![0.0, 0.25, 0.5, 0.75, 1.0]],
        ] {
            let grid = Grid::new(axes, 2.0).unwrap();
            let n = grid.len();
            let h: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64 * 0.3 - 2.0).collect();
            for reg in [1.0, 1e-2, 1e-4] {
                let k = GridKernel::<f64>::new(&grid, reg).unwrap();
                let (mut out, mut work) = (vec![0.0; n], vec![0.0; n]);
                k.apply(&h, &mut out, &mut work);
                let want = dense_lse(&grid, &h, reg);
                for (u, v) in out.iter().zip(&want) {
                    assert!((u - v).abs() <= 1e-12 * v.abs().max(1.0), "{u} vs {v} at reg {reg}");
                }
            }
        }
    }

    #[test]
    fn bad_axes_are_named() {
        assert!(Grid::new(vec![vec![0.0, 0.0]], 2.0).is_err());
        assert!(Grid::new(vec![vec![0.0, f64::NAN]], 2.0).is_err());
        assert!(Grid::new(vec![vec![]], 2.0).is_err());
        assert!(Grid::new(vec![vec![0.0, 1.0]], 0.0).is_err());
    }
}
