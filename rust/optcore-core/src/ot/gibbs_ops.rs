//! The vectorised primitives of the log-domain Gibbs-kernel applies ([`super::gibbs`]): small
//! dense matrix products with register tiles, `exp`/`ln` passes with shifts, maxima and an L1
//! distance, each compiled for any x86-64 CPU and with AVX2+FMA (chosen at run time), in
//! float64.

use crate::real::{Fused, Madd, Real, Unfused};

/// Sums below this are recomputed exactly by the caller (see [`super::gibbs`]).
pub(super) const TRUSTED: f64 = 1e-280;

/// `ln x` for `x` in `[TRUSTED, 1e300]`, vectorisable (exponent from the bits, then the
/// `atanh` series of the mantissa in `[sqrt(1/2), sqrt(2))`: about 1 ulp).
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn fast_ln<M: Madd>(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    let bits = x.to_bits();
    // The biased exponent as a float, without an integer conversion.
    let ebits = f64::from_bits((bits >> 52) | 0x4330_0000_0000_0000) - 4_503_599_627_370_496.0;
    let mant = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = mant > std::f64::consts::SQRT_2;
    let mant = if big { mant * 0.5 } else { mant };
    let e = ebits - 1023.0 + if big { 1.0 } else { 0.0 };
    let s = (mant - 1.0) / (mant + 1.0);
    let z = s * s;
    let mut p = 1.0 / 23.0;
    p = M::madd(p, z, 1.0 / 21.0);
    p = M::madd(p, z, 1.0 / 19.0);
    p = M::madd(p, z, 1.0 / 17.0);
    p = M::madd(p, z, 1.0 / 15.0);
    p = M::madd(p, z, 1.0 / 13.0);
    p = M::madd(p, z, 1.0 / 11.0);
    p = M::madd(p, z, 1.0 / 9.0);
    p = M::madd(p, z, 1.0 / 7.0);
    p = M::madd(p, z, 1.0 / 5.0);
    p = M::madd(p, z, 1.0 / 3.0);
    p = M::madd(p, z, 1.0);
    M::madd(e, LN2, 2.0 * s * p)
}

/// Shapes and row strides of a product `c = a b`: `a` is rows x inner (row stride `lda`), `b`
/// inner x cols (stride `ldb`), `c` rows x cols (stride `ldc`).
#[derive(Clone, Copy)]
pub(super) struct Dims {
    pub(super) rows: usize,
    pub(super) inner: usize,
    pub(super) cols: usize,
    pub(super) lda: usize,
    pub(super) ldb: usize,
    pub(super) ldc: usize,
}

impl Dims {
    /// Contiguous operands.
    pub(super) fn packed(rows: usize, inner: usize, cols: usize) -> Self {
        Dims { rows, inner, cols, lda: inner, ldb: cols, ldc: cols }
    }
}

/// `c = a b` (see [`Dims`]): register tiles of 4 x 8, so that the loop is bound by the
/// multiply-adds rather than by loads and stores.
#[inline(always)]
fn gemm<M: Madd>(a: &[f64], b: &[f64], c: &mut [f64], d: Dims) {
    const R: usize = 4;
    const C: usize = 8;
    let mut i = 0;
    while i + R <= d.rows {
        let mut j = 0;
        while j + C <= d.cols {
            let mut acc = [[0f64; C]; R];
            for p in 0..d.inner {
                let br: &[f64; C] = b[p * d.ldb + j..p * d.ldb + j + C].try_into().unwrap();
                for (r, accr) in acc.iter_mut().enumerate() {
                    let av = a[(i + r) * d.lda + p];
                    for l in 0..C {
                        accr[l] = M::madd(av, br[l], accr[l]);
                    }
                }
            }
            for (r, accr) in acc.iter().enumerate() {
                c[(i + r) * d.ldc + j..(i + r) * d.ldc + j + C].copy_from_slice(accr);
            }
            j += C;
        }
        for r in i..i + R {
            gemm_tail::<M>(&a[r * d.lda..r * d.lda + d.inner], b, &mut c[r * d.ldc..r * d.ldc + d.cols], j, d.ldb);
        }
        i += R;
    }
    for r in i..d.rows {
        gemm_tail::<M>(&a[r * d.lda..r * d.lda + d.inner], b, &mut c[r * d.ldc..r * d.ldc + d.cols], 0, d.ldb);
    }
}

/// `c = a b^T` for row-major `a` (rows x inner) and `b` (cols x inner), contiguous: dot
/// products in tiles of 2 x 4 rows with 4 lanes each.
#[inline(always)]
fn gemm_nt<M: Madd>(a: &[f64], b: &[f64], c: &mut [f64], rows: usize, inner: usize, cols: usize) {
    const L: usize = 4;
    let dot = |x: &[f64], y: &[f64]| -> f64 {
        let mut acc = [0f64; L];
        let (xc, yc) = (x.chunks_exact(L), y.chunks_exact(L));
        let (xr, yr) = (xc.remainder(), yc.remainder());
        for (xv, yv) in xc.zip(yc) {
            for l in 0..L {
                acc[l] = M::madd(xv[l], yv[l], acc[l]);
            }
        }
        let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for (&u, &v) in xr.iter().zip(yr) {
            s = M::madd(u, v, s);
        }
        s
    };
    let mut i = 0;
    while i + 2 <= rows {
        let (a0, a1) = (&a[i * inner..(i + 1) * inner], &a[(i + 1) * inner..(i + 2) * inner]);
        let mut j = 0;
        while j + 4 <= cols {
            let mut acc = [[[0f64; L]; 4]; 2];
            let bs: [&[f64]; 4] = std::array::from_fn(|q| &b[(j + q) * inner..(j + q + 1) * inner]);
            let full = inner / L * L;
            let mut p = 0;
            while p < full {
                for q in 0..4 {
                    for l in 0..L {
                        acc[0][q][l] = M::madd(a0[p + l], bs[q][p + l], acc[0][q][l]);
                        acc[1][q][l] = M::madd(a1[p + l], bs[q][p + l], acc[1][q][l]);
                    }
                }
                p += L;
            }
            for (r, ar) in [a0, a1].iter().enumerate() {
                for q in 0..4 {
                    let v = &acc[r][q];
                    let mut s = (v[0] + v[1]) + (v[2] + v[3]);
                    for t in full..inner {
                        s = M::madd(ar[t], bs[q][t], s);
                    }
                    c[(i + r) * cols + j + q] = s;
                }
            }
            j += 4;
        }
        for jj in j..cols {
            let bj = &b[jj * inner..(jj + 1) * inner];
            c[i * cols + jj] = dot(a0, bj);
            c[(i + 1) * cols + jj] = dot(a1, bj);
        }
        i += 2;
    }
    for r in i..rows {
        let ar = &a[r * inner..(r + 1) * inner];
        for jj in 0..cols {
            c[r * cols + jj] = dot(ar, &b[jj * inner..(jj + 1) * inner]);
        }
    }
}

/// Columns `from..cols` of one row of [`gemm`].
#[inline(always)]
fn gemm_tail<M: Madd>(arow: &[f64], b: &[f64], crow: &mut [f64], from: usize, ldb: usize) {
    for (j, cv) in crow.iter_mut().enumerate().skip(from) {
        let mut s = 0.0;
        for (p, &av) in arow.iter().enumerate() {
            s = M::madd(av, b[p * ldb + j], s);
        }
        *cv = s;
    }
}

/// [`gemm`] with AVX2+FMA intrinsics: the 4 x 8 tile of `c` lives in eight registers (LLVM
/// does not keep the generic tile in registers).
///
/// # Safety
/// The CPU must support AVX2 and FMA; the slices must hold the shapes of `d` (checked).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2(a: &[f64], b: &[f64], c: &mut [f64], d: Dims) {
    gemm_avx2_at(a, b, c, d, 1)
}

/// [`gemm_avx2`] with the 8 columns `j..j + 8` of row `p` of `b` at `j * jstride + p * ldb`:
/// `jstride = 1` for a row-major `b`, `jstride = inner, ldb = 8` for `b` in panels of 8
/// columns ([`pack_panels`]; then `cols % 8 == 0`). The arithmetic is the same either way.
///
/// # Safety
/// As [`gemm_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2_at(a: &[f64], b: &[f64], c: &mut [f64], d: Dims, jstride: usize) {
    use std::arch::x86_64::*;
    if d.rows == 0 || d.cols == 0 {
        return;
    }
    let b_len = if jstride == 1 { (d.inner.max(1) - 1) * d.ldb + d.cols } else { d.cols * d.inner };
    assert!(
        a.len() >= (d.rows - 1) * d.lda + d.inner
            && (d.inner == 0 || b.len() >= b_len)
            && c.len() >= (d.rows - 1) * d.ldc + d.cols
            && (jstride == 1 || (d.cols % 8 == 0 && d.ldb == 8 && jstride == d.inner))
    );
    let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut i = 0;
    while i + 4 <= d.rows {
        let mut j = 0;
        while j + 8 <= d.cols {
            let z = _mm256_setzero_pd();
            let (mut c00, mut c01, mut c10, mut c11) = (z, z, z, z);
            let (mut c20, mut c21, mut c30, mut c31) = (z, z, z, z);
            let (a0p, a1p, a2p, a3p) =
                (ap.add(i * d.lda), ap.add((i + 1) * d.lda), ap.add((i + 2) * d.lda), ap.add((i + 3) * d.lda));
            for p in 0..d.inner {
                let brow = bp.add(j * jstride + p * d.ldb);
                let (b0, b1) = (_mm256_loadu_pd(brow), _mm256_loadu_pd(brow.add(4)));
                let x = _mm256_broadcast_sd(&*a0p.add(p));
                c00 = _mm256_fmadd_pd(x, b0, c00);
                c01 = _mm256_fmadd_pd(x, b1, c01);
                let x = _mm256_broadcast_sd(&*a1p.add(p));
                c10 = _mm256_fmadd_pd(x, b0, c10);
                c11 = _mm256_fmadd_pd(x, b1, c11);
                let x = _mm256_broadcast_sd(&*a2p.add(p));
                c20 = _mm256_fmadd_pd(x, b0, c20);
                c21 = _mm256_fmadd_pd(x, b1, c21);
                let x = _mm256_broadcast_sd(&*a3p.add(p));
                c30 = _mm256_fmadd_pd(x, b0, c30);
                c31 = _mm256_fmadd_pd(x, b1, c31);
            }
            for (r, (lo, hi)) in [(c00, c01), (c10, c11), (c20, c21), (c30, c31)].into_iter().enumerate() {
                let crow = cp.add((i + r) * d.ldc + j);
                _mm256_storeu_pd(crow, lo);
                _mm256_storeu_pd(crow.add(4), hi);
            }
            j += 8;
        }
        for r in i..i + 4 {
            gemm_tail::<Fused>(&a[r * d.lda..r * d.lda + d.inner], b, &mut c[r * d.ldc..r * d.ldc + d.cols], j, d.ldb);
        }
        i += 4;
    }
    for r in i..d.rows {
        // One row at a time, 8 columns per step.
        let arow = ap.add(r * d.lda);
        let mut j = 0;
        while j + 8 <= d.cols {
            let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            for p in 0..d.inner {
                let brow = bp.add(j * jstride + p * d.ldb);
                let x = _mm256_broadcast_sd(&*arow.add(p));
                lo = _mm256_fmadd_pd(x, _mm256_loadu_pd(brow), lo);
                hi = _mm256_fmadd_pd(x, _mm256_loadu_pd(brow.add(4)), hi);
            }
            let crow = cp.add(r * d.ldc + j);
            _mm256_storeu_pd(crow, lo);
            _mm256_storeu_pd(crow.add(4), hi);
            j += 8;
        }
        gemm_tail::<Fused>(&a[r * d.lda..r * d.lda + d.inner], b, &mut c[r * d.ldc..r * d.ldc + d.cols], j, d.ldb);
    }
}

/// [`gemm_nt`] with AVX2+FMA intrinsics: tiles of 2 rows of `a` by 4 rows of `b`, eight
/// vector accumulators, reduced at the end of each dot product.
///
/// # Safety
/// The CPU must support AVX2 and FMA; the slices must hold the shapes (checked).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_nt_avx2(a: &[f64], b: &[f64], c: &mut [f64], rows: usize, inner: usize, cols: usize) {
    use std::arch::x86_64::*;
    assert!(a.len() >= rows * inner && b.len() >= cols * inner && c.len() >= rows * cols);
    #[inline(always)]
    unsafe fn hsum(v: __m256d) -> f64 {
        let lo = _mm256_castpd256_pd128(v);
        let hi = _mm256_extractf128_pd(v, 1);
        let s = _mm_add_pd(lo, hi);
        _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
    }
    let full = inner / 4 * 4;
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    while i + 2 <= rows {
        let (a0, a1) = (ap.add(i * inner), ap.add((i + 1) * inner));
        let mut j = 0;
        while j + 4 <= cols {
            let bs = [bp.add(j * inner), bp.add((j + 1) * inner), bp.add((j + 2) * inner), bp.add((j + 3) * inner)];
            let mut acc = [[_mm256_setzero_pd(); 4]; 2];
            let mut p = 0;
            while p < full {
                let (x0, x1) = (_mm256_loadu_pd(a0.add(p)), _mm256_loadu_pd(a1.add(p)));
                for q in 0..4 {
                    let y = _mm256_loadu_pd(bs[q].add(p));
                    acc[0][q] = _mm256_fmadd_pd(x0, y, acc[0][q]);
                    acc[1][q] = _mm256_fmadd_pd(x1, y, acc[1][q]);
                }
                p += 4;
            }
            for (r, ar) in [a0, a1].into_iter().enumerate() {
                for q in 0..4 {
                    let mut s = hsum(acc[r][q]);
                    for t in full..inner {
                        s = (*ar.add(t)).mul_add(*bs[q].add(t), s);
                    }
                    c[(i + r) * cols + j + q] = s;
                }
            }
            j += 4;
        }
        for jj in j..cols {
            c[i * cols + jj] = dot_fma(&a[i * inner..(i + 1) * inner], &b[jj * inner..(jj + 1) * inner]);
            c[(i + 1) * cols + jj] = dot_fma(&a[(i + 1) * inner..(i + 2) * inner], &b[jj * inner..(jj + 1) * inner]);
        }
        i += 2;
    }
    for r in i..rows {
        for jj in 0..cols {
            c[r * cols + jj] = dot_fma(&a[r * inner..(r + 1) * inner], &b[jj * inner..(jj + 1) * inner]);
        }
    }
}

/// A plain fused dot product (the edges of [`gemm_nt_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_fma(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).fold(0.0, |s, (&u, &v)| u.mul_add(v, s))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_shift_avx2(x: &[f64], shift: f64, out: &mut [f64]) {
    exp_shift::<Fused>(x, shift, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn ln_add_avx2(s: &[f64], shift: f64, out: &mut [f64]) -> bool {
    ln_add::<Fused>(s, shift, out)
}

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`gemm`], with AVX2+FMA where the CPU has it.
pub(super) fn matmul(a: &[f64], b: &[f64], c: &mut [f64], d: Dims) {
    #[cfg(target_arch = "x86_64")]
    if avx2() && d.rows % 4 != 0 && d.rows < 64 {
        // A few rows (k histograms): padded with zero rows to whole 4-row tiles, so that `b` is
        // read once per tile rather than once per row.
        let rows = d.rows.next_multiple_of(4);
        let mut ap = vec![0.0; rows * d.inner];
        for (r, dst) in ap.chunks_exact_mut(d.inner.max(1)).take(d.rows).enumerate() {
            dst.copy_from_slice(&a[r * d.lda..r * d.lda + d.inner]);
        }
        let mut cp = vec![0.0; rows * d.cols];
        let pd = Dims { rows, inner: d.inner, cols: d.cols, lda: d.inner, ldb: d.ldb, ldc: d.cols };
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { gemm_avx2(&ap, b, &mut cp, pd) };
        for r in 0..d.rows {
            c[r * d.ldc..r * d.ldc + d.cols].copy_from_slice(&cp[r * d.cols..(r + 1) * d.cols]);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { gemm_avx2(a, b, c, d) };
    }
    gemm::<Unfused>(a, b, c, d)
}

/// Whether [`matmul_panels`] runs for products with `cols` columns (AVX2+FMA, whole panels).
pub(super) fn panels_fit(cols: usize) -> bool {
    avx2() && cols % 8 == 0
}

/// `out` (`cols x inner`, in panels of 8 columns: column `j + l` of row `p` at
/// `j * inner + 8 p + l`) from the row-major `b` (`inner x cols`, row `p` scaled by `wts[p]`
/// where given); `cols % 8 == 0`.
pub(super) fn pack_panels(b: &[f64], wts: Option<&[f64]>, inner: usize, cols: usize, out: &mut [f64]) {
    for (p, row) in b.chunks_exact(cols).take(inner).enumerate() {
        let wt = wts.map(|w| w[p]);
        for (j, src) in row.chunks_exact(8).enumerate() {
            let dst = &mut out[j * 8 * inner + 8 * p..j * 8 * inner + 8 * p + 8];
            match wt {
                Some(wt) => dst.iter_mut().zip(src).for_each(|(o, &v)| *o = v * wt),
                None => dst.copy_from_slice(src),
            }
        }
    }
}

/// [`matmul`] with `b` in panels ([`pack_panels`]): the same sums (the same fused
/// multiply-adds in the same order), `b` read contiguously. Only where [`panels_fit`].
pub(super) fn matmul_panels(a: &[f64], bp: &[f64], c: &mut [f64], d: Dims) {
    assert!(panels_fit(d.cols), "matmul_panels needs AVX2+FMA and whole panels");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU supports the features (checked above); shapes checked inside.
    unsafe {
        gemm_avx2_at(a, bp, c, Dims { ldb: 8, ..d }, d.inner)
    }
}

/// [`gemm_nt`], with AVX2+FMA where the CPU has it.
pub(super) fn matmul_nt(a: &[f64], b: &[f64], c: &mut [f64], rows: usize, inner: usize, cols: usize) {
    #[cfg(target_arch = "x86_64")]
    if avx2() && rows % 2 == 1 && rows < 64 {
        // An odd number of rows: one zero row makes whole 2-row tiles (no scalar last row).
        let mut ap = a[..rows * inner].to_vec();
        ap.resize((rows + 1) * inner, 0.0);
        let mut cp = vec![0.0; (rows + 1) * cols];
        // SAFETY: as below.
        unsafe { gemm_nt_avx2(&ap, b, &mut cp, rows + 1, inner, cols) };
        c[..rows * cols].copy_from_slice(&cp[..rows * cols]);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { gemm_nt_avx2(a, b, c, rows, inner, cols) };
    }
    gemm_nt::<Unfused>(a, b, c, rows, inner, cols)
}

/// `out = exp(x - shift)` (0 for `-inf`).
#[inline(always)]
fn exp_shift<M: Madd>(x: &[f64], shift: f64, out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - shift).fast_exp::<M>();
    }
}

/// `out = shift + ln s` where `s` is trusted; returns whether every sum was.
#[inline(always)]
fn ln_add<M: Madd>(s: &[f64], shift: f64, out: &mut [f64]) -> bool {
    let mut ok = true;
    for (o, &v) in out.iter_mut().zip(s) {
        ok &= v >= TRUSTED;
        *o = shift + fast_ln::<M>(v.max(TRUSTED));
    }
    ok
}

/// `out = exp(x - shift)` element-wise (`shift` finite).
#[inline(always)]
fn exp_sub<M: Madd>(x: &[f64], shift: &[f64], out: &mut [f64]) {
    for ((o, &v), &sh) in out.iter_mut().zip(x).zip(shift) {
        *o = (v - sh).fast_exp::<M>();
    }
}

/// `out = shift - lo + ln s` element-wise where `s` is trusted; returns whether every sum was.
#[inline(always)]
fn ln_add_each<M: Madd>(s: &[f64], shift: &[f64], lo: f64, out: &mut [f64]) -> bool {
    let mut ok = true;
    for ((o, &v), &sh) in out.iter_mut().zip(s).zip(shift) {
        ok &= v >= TRUSTED;
        *o = (sh - lo) + fast_ln::<M>(v.max(TRUSTED));
    }
    ok
}

/// `sum |exp(x + y) - q|` (`x + y = -inf` counts as 0): the barycenter's error check before
/// it was split into [`exp_sum`] and a sum, kept as the reference the split must match.
#[cfg(test)]
#[inline(always)]
fn exp_l1<M: Madd>(x: &[f64], y: &[f64], q: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (xc, yc, qc) = (x.chunks_exact(4), y.chunks_exact(4), q.chunks_exact(4));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .zip(qc.remainder())
        .map(|((&a, &b), &c)| ((a + b).fast_exp::<M>() - c).abs())
        .sum();
    for ((xv, yv), qv) in xc.zip(yc).zip(qc) {
        for l in 0..4 {
            acc[l] += ((xv[l] + yv[l]).fast_exp::<M>() - qv[l]).abs();
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `out = exp(x + y)` element-wise, each exactly as `exp_l1` takes it.
#[inline(always)]
fn exp_add<M: Madd>(x: &[f64], y: &[f64], out: &mut [f64]) {
    for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
        *o = (a + b).fast_exp::<M>();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_add_avx2(x: &[f64], y: &[f64], out: &mut [f64]) {
    exp_add::<Fused>(x, y, out)
}

/// `out = exp(x + y)` (vectorised): the terms of `exp_l1_dist`, bit for bit.
pub(super) fn exp_sum(x: &[f64], y: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { exp_add_avx2(x, y, out) };
    }
    exp_add::<Unfused>(x, y, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_sub_avx2(x: &[f64], shift: &[f64], out: &mut [f64]) {
    exp_sub::<Fused>(x, shift, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn ln_add_each_avx2(s: &[f64], shift: &[f64], lo: f64, out: &mut [f64]) -> bool {
    ln_add_each::<Fused>(s, shift, lo, out)
}

#[cfg(all(test, target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_l1_avx2(x: &[f64], y: &[f64], q: &[f64]) -> f64 {
    exp_l1::<Fused>(x, y, q)
}

pub(super) fn exp_subbed(x: &[f64], shift: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { exp_sub_avx2(x, shift, out) };
    }
    exp_sub::<Unfused>(x, shift, out)
}

pub(super) fn ln_added_each(s: &[f64], shift: &[f64], lo: f64, out: &mut [f64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { ln_add_each_avx2(s, shift, lo, out) };
    }
    ln_add_each::<Unfused>(s, shift, lo, out)
}

/// `sum_j |exp(x_j + y_j) - q_j|` (vectorised; `-inf` sums count as 0): the L1 distance of a
/// marginal given in the log domain as `x + y` to `q`.
#[cfg(test)]
pub(super) fn exp_l1_dist(x: &[f64], y: &[f64], q: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { exp_l1_avx2(x, y, q) };
    }
    exp_l1::<Unfused>(x, y, q)
}

/// `out = exp(x)` (vectorised; 0 for `-inf`).
pub(super) fn exp_all(x: &[f64], out: &mut [f64]) {
    exp_shifted(x, 0.0, out)
}

pub(super) fn exp_shifted(x: &[f64], shift: f64, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { exp_shift_avx2(x, shift, out) };
    }
    exp_shift::<Unfused>(x, shift, out)
}

pub(super) fn ln_added(s: &[f64], shift: f64, out: &mut [f64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { ln_add_avx2(s, shift, out) };
    }
    ln_add::<Unfused>(s, shift, out)
}

/// `out = num / den` element-wise.
#[inline(always)]
fn div_each(num: &[f64], den: &[f64], out: &mut [f64]) {
    for ((o, &a), &b) in out.iter_mut().zip(num).zip(den) {
        *o = a / b;
    }
}

/// `x *= f` element-wise.
#[inline(always)]
fn scale_each(x: &mut [f64], f: f64) {
    x.iter_mut().for_each(|v| *v *= f);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn div_each_avx2(num: &[f64], den: &[f64], out: &mut [f64]) {
    div_each(num, den, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scale_each_avx2(x: &mut [f64], f: f64) {
    scale_each(x, f)
}

/// `out = num / den` (vectorised; the scaling form's ratios).
pub(super) fn ratio(num: &[f64], den: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { div_each_avx2(num, den, out) };
    }
    div_each(num, den, out)
}

/// `x *= f` (vectorised).
pub(super) fn scale(x: &mut [f64], f: f64) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { scale_each_avx2(x, f) };
    }
    scale_each(x, f)
}

/// The largest entry (`-inf` for none; the entries are never NaN), in 4 lanes that compile
/// to vector maxima.
#[inline(always)]
fn max_lanes(x: &[f64]) -> f64 {
    let mut acc = [f64::NEG_INFINITY; 4];
    let xc = x.chunks_exact(4);
    let tail = xc.remainder().iter().fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for v in xc {
        for l in 0..4 {
            acc[l] = if v[l] > acc[l] { v[l] } else { acc[l] };
        }
    }
    acc.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

/// `acc = max(acc, x)` element-wise (vector maxima).
#[inline(always)]
fn max_each(x: &[f64], acc: &mut [f64]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a = if v > *a { v } else { *a };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn max_lanes_avx2(x: &[f64]) -> f64 {
    use std::arch::x86_64::*;
    let xc = x.chunks_exact(4);
    let tail = max_lanes(xc.remainder());
    let mut acc = _mm256_set1_pd(f64::NEG_INFINITY);
    for v in xc {
        acc = _mm256_max_pd(acc, _mm256_loadu_pd(v.as_ptr()));
    }
    let mut lanes = [0.0; 4];
    _mm256_storeu_pd(lanes.as_mut_ptr(), acc);
    lanes.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn max_each_avx2(x: &[f64], acc: &mut [f64]) {
    max_each(x, acc)
}

/// The largest entry (`-inf` for none).
pub(super) fn max_of(x: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { max_lanes_avx2(x) };
    }
    max_lanes(x)
}

/// The least entry (`inf` for none; the entries are never NaN), in 4 lanes that compile to
/// vector minima.
#[inline(always)]
fn min_lanes(x: &[f64]) -> f64 {
    let mut acc = [f64::INFINITY; 4];
    let xc = x.chunks_exact(4);
    let tail = xc.remainder().iter().fold(f64::INFINITY, |m, &v| if v < m { v } else { m });
    for v in xc {
        for l in 0..4 {
            acc[l] = if v[l] < acc[l] { v[l] } else { acc[l] };
        }
    }
    acc.iter().fold(tail, |m, &v| if v < m { v } else { m })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn min_lanes_avx2(x: &[f64]) -> f64 {
    min_lanes(x)
}

/// The least entry (`inf` for none).
pub(super) fn min_of(x: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { min_lanes_avx2(x) };
    }
    min_lanes(x)
}

/// `acc = max(acc, x)` element-wise.
pub(super) fn max_into(x: &[f64], acc: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: as in `matmul`.
        return unsafe { max_each_avx2(x, acc) };
    }
    max_each(x, acc)
}

#[cfg(test)]
#[path = "gibbs_ops_tests.rs"]
mod tests;
