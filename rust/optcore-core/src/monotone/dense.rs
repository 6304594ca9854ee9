//! Dense kernels of the monotone sums: inner products, row-by-row matrix–vector products and
//! `axpy`, compiled twice (baseline x86_64 and AVX) and chosen at run time.
//!
//! [`cols_dot4`] (Halpern–PDHG's `Kᵀy`) has its own summation order, the same on every CPU;
//! the others keep the order of the baseline. The AVX versions are bit-identical to the
//! baseline ones: [`dot`] keeps the eight partial
//! sums of [`crate::linalg::dot_lanes8`] (lane `l` adds the products of indices `≡ l mod 8` in
//! order, combined as `((s₀+s₄)+(s₁+s₅))+((s₂+s₆)+(s₃+s₇))`, then the tail), with separate
//! multiplies and adds (no FMA contraction), so results do not depend on the CPU. What the AVX
//! path buys is width (four lanes per instruction instead of two) and, in [`rows_dot`], four
//! rows per pass sharing the loads of `x`: on the 2-core dev machine the baseline `F` of a
//! 500 x 500 game cost about 5x NumPy's (OpenBLAS) `A x` and `Aᵀ y`.

use crate::linalg::dot_lanes8;

/// The tail of [`dot_lanes8`] (indices past the last full group of 8), the same expression.
#[inline(always)]
fn tail(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[inline]
fn has_avx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `Σ a_i b_i` in the summation order of [`dot_lanes8`] (bit-identical to it).
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX; both slices hold `n` entries.
        return unsafe { avx::dot(&a[..n], &b[..n]) };
    }
    dot_lanes8(&a[..n], &b[..n])
}

/// `out[i] = dot(mat[i·ncols..(i+1)·ncols], x)` for every `i < out.len()` (row-major `mat`).
pub fn rows_dot(mat: &[f64], ncols: usize, x: &[f64], out: &mut [f64]) {
    assert!(mat.len() >= out.len() * ncols && x.len() >= ncols, "rows_dot: shapes");
    let x = &x[..ncols];
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX; the shapes were checked above.
        unsafe { avx::rows_dot(mat, ncols, x, out) };
        return;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = dot_lanes8(&mat[i * ncols..(i + 1) * ncols], x);
    }
}

/// `out += c · a` (each entry `out_j + c a_j`, one rounding for the product and one for the sum).
#[inline]
pub fn axpy(out: &mut [f64], c: f64, a: &[f64]) {
    let n = out.len().min(a.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX; both slices hold `n` entries.
        unsafe { avx::axpy(&mut out[..n], c, &a[..n]) };
        return;
    }
    for (o, &v) in out[..n].iter_mut().zip(&a[..n]) {
        *o += c * v;
    }
}

/// Columns per block of [`cols_dot`]: eight partial sums of 256 columns are 16 KiB (L1).
const BLOCK: usize = 256;

/// `out[j] = dot(column j of mat, y)` for every `j < out.len()` (row-major `mat` with
/// `y.len()` rows of `ncols`), bit-identical to [`dot`] on the column, but reading `mat` by
/// rows: `Aᵀ y` needs no stored transpose. The eight partial sums of [`dot_lanes8`] become
/// eight accumulator rows (row `i` adds into accumulator `i mod 8`), the tail rows a ninth.
/// A game keeps one copy of `A` in cache instead of `A` and `Aᵀ`: on the 1000 x 1000 game the
/// two copies (16 MB) fell out of the shared L3 and `F` cost 3x NumPy's.
pub fn cols_dot(mat: &[f64], ncols: usize, y: &[f64], out: &mut [f64]) {
    assert!(mat.len() >= y.len() * ncols && out.len() <= ncols, "cols_dot: shapes");
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX; the shapes were checked above.
        unsafe { avx::cols_dot(mat, ncols, y, out) };
        return;
    }
    cols_dot_impl(mat, ncols, y, out)
}

#[inline(always)]
fn cols_dot_impl(mat: &[f64], ncols: usize, y: &[f64], out: &mut [f64]) {
    let m = y.len();
    let main = m / 8 * 8;
    // The start of `Iterator::sum` for f64 (its sign of zero is the tail's when it is empty).
    let init: f64 = std::iter::empty::<f64>().sum();
    let mut acc = [[0.0f64; BLOCK]; 8];
    let mut t = [0.0f64; BLOCK];
    let ncols_out = out.len();
    for c0 in (0..ncols_out).step_by(BLOCK) {
        let w = BLOCK.min(ncols_out - c0);
        for a in acc.iter_mut() {
            a[..w].fill(0.0);
        }
        t[..w].fill(init);
        for (i, &yi) in y[..main].iter().enumerate() {
            let row = &mat[i * ncols + c0..i * ncols + c0 + w];
            for (s, &v) in acc[i % 8][..w].iter_mut().zip(row) {
                *s += v * yi;
            }
        }
        for (i, &yi) in y.iter().enumerate().skip(main) {
            let row = &mat[i * ncols + c0..i * ncols + c0 + w];
            for (s, &v) in t[..w].iter_mut().zip(row) {
                *s += v * yi;
            }
        }
        for (j, o) in out[c0..c0 + w].iter_mut().enumerate() {
            let a = |l: usize| acc[l][j];
            *o = ((a(0) + a(4)) + (a(1) + a(5))) + ((a(2) + a(6)) + (a(3) + a(7))) + t[j];
        }
    }
}

/// `out = matᵀ y` (row-major `mat` with `y.len()` rows of `ncols`, `out.len() <= ncols`) in
/// another summation order than [`cols_dot`]: rows by groups of four, `out_j += (a₀ⱼy₀ + a₁ⱼy₁)
/// + (a₂ⱼy₂ + a₃ⱼy₃)`, then the rows left over one by one. Each group reads `out` once instead of
/// the four accumulator rows of [`cols_dot`]: the `Kᵀy` of Halpern–PDHG, whose iterates need no
/// agreement with the other methods' `F` (the same order on every CPU: no FMA).
pub fn cols_dot4(mat: &[f64], ncols: usize, y: &[f64], out: &mut [f64]) {
    assert!(mat.len() >= y.len() * ncols && out.len() <= ncols, "cols_dot4: shapes");
    #[cfg(target_arch = "x86_64")]
    if has_avx() {
        // SAFETY: the CPU has AVX; the shapes were checked above.
        unsafe { avx::cols_dot4(mat, ncols, y, out) };
        return;
    }
    cols_dot4_impl(mat, ncols, y, out)
}

#[inline(always)]
fn cols_dot4_impl(mat: &[f64], ncols: usize, y: &[f64], out: &mut [f64]) {
    let w = out.len();
    out.fill(0.0);
    let m = y.len();
    let main = m / 4 * 4;
    let row = |i: usize| &mat[i * ncols..i * ncols + w];
    for i in (0..main).step_by(4) {
        let (r0, r1, r2, r3) = (row(i), row(i + 1), row(i + 2), row(i + 3));
        let (y0, y1, y2, y3) = (y[i], y[i + 1], y[i + 2], y[i + 3]);
        for ((((o, &a0), &a1), &a2), &a3) in out.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
            *o += (a0 * y0 + a1 * y1) + (a2 * y2 + a3 * y3);
        }
    }
    for (i, &yi) in y.iter().enumerate().skip(main) {
        for (o, &a) in out.iter_mut().zip(row(i)) {
            *o += a * yi;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::tail;
    use std::arch::x86_64::*;

    /// `((s₀+s₁)+(s₂+s₃))` of `l + h`: the combination of the eight lanes of `dot_lanes8`.
    #[inline(always)]
    unsafe fn combine(l: __m256d, h: __m256d) -> f64 {
        let s = _mm256_add_pd(l, h);
        let mut a = [0.0f64; 4];
        _mm256_storeu_pd(a.as_mut_ptr(), s);
        (a[0] + a[1]) + (a[2] + a[3])
    }

    #[inline(always)]
    unsafe fn madd(acc: __m256d, a: *const f64, b: __m256d) -> __m256d {
        _mm256_add_pd(acc, _mm256_mul_pd(_mm256_loadu_pd(a), b))
    }

    #[target_feature(enable = "avx")]
    pub unsafe fn dot(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len();
        let c = n / 8;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut l, mut h) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        for k in 0..c {
            let o = 8 * k;
            l = madd(l, pa.add(o), _mm256_loadu_pd(pb.add(o)));
            h = madd(h, pa.add(o + 4), _mm256_loadu_pd(pb.add(o + 4)));
        }
        combine(l, h) + tail(&a[8 * c..], &b[8 * c..])
    }

    /// Four rows at a time: eight accumulators, `x` loaded once per group of 8 columns.
    #[target_feature(enable = "avx")]
    pub unsafe fn rows_dot(mat: &[f64], ncols: usize, x: &[f64], out: &mut [f64]) {
        let rows = out.len();
        let c = ncols / 8;
        let px = x.as_ptr();
        let mut i = 0;
        while i + 4 <= rows {
            let p0 = mat.as_ptr().add(i * ncols);
            let (p1, p2, p3) = (p0.add(ncols), p0.add(2 * ncols), p0.add(3 * ncols));
            let z = _mm256_setzero_pd();
            let (mut a0, mut b0, mut a1, mut b1, mut a2, mut b2, mut a3, mut b3) = (z, z, z, z, z, z, z, z);
            for k in 0..c {
                let o = 8 * k;
                let (xl, xh) = (_mm256_loadu_pd(px.add(o)), _mm256_loadu_pd(px.add(o + 4)));
                a0 = madd(a0, p0.add(o), xl);
                b0 = madd(b0, p0.add(o + 4), xh);
                a1 = madd(a1, p1.add(o), xl);
                b1 = madd(b1, p1.add(o + 4), xh);
                a2 = madd(a2, p2.add(o), xl);
                b2 = madd(b2, p2.add(o + 4), xh);
                a3 = madd(a3, p3.add(o), xl);
                b3 = madd(b3, p3.add(o + 4), xh);
            }
            let xt = &x[8 * c..];
            for (r, (l, h)) in [(a0, b0), (a1, b1), (a2, b2), (a3, b3)].into_iter().enumerate() {
                let row = &mat[(i + r) * ncols + 8 * c..(i + r + 1) * ncols];
                out[i + r] = combine(l, h) + tail(row, xt);
            }
            i += 4;
        }
        while i < rows {
            out[i] = dot(&mat[i * ncols..(i + 1) * ncols], x);
            i += 1;
        }
    }

    #[target_feature(enable = "avx")]
    pub unsafe fn cols_dot(mat: &[f64], ncols: usize, y: &[f64], out: &mut [f64]) {
        super::cols_dot_impl(mat, ncols, y, out)
    }

    #[target_feature(enable = "avx")]
    pub unsafe fn cols_dot4(mat: &[f64], ncols: usize, y: &[f64], out: &mut [f64]) {
        super::cols_dot4_impl(mat, ncols, y, out)
    }

    #[target_feature(enable = "avx")]
    pub unsafe fn axpy(out: &mut [f64], c: f64, a: &[f64]) {
        let n = out.len();
        let cv = _mm256_set1_pd(c);
        let (po, pa) = (out.as_mut_ptr(), a.as_ptr());
        let n4 = n / 4 * 4;
        let mut j = 0;
        while j < n4 {
            let v = _mm256_add_pd(_mm256_loadu_pd(po.add(j)), _mm256_mul_pd(cv, _mm256_loadu_pd(pa.add(j))));
            _mm256_storeu_pd(po.add(j), v);
            j += 4;
        }
        for (o, &v) in out[n4..].iter_mut().zip(&a[n4..]) {
            *o += c * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn kernels_are_bit_identical_to_the_baseline() {
        let mut rng = Rng::new(11);
        for (rows, cols) in [(1usize, 1usize), (3, 7), (4, 8), (5, 9), (9, 17), (13, 64), (7, 131), (21, 300), (8, 513)]
        {
            let mat: Vec<f64> = (0..rows * cols).map(|_| rng.normal() * 1e3).collect();
            let x: Vec<f64> = (0..cols).map(|_| rng.normal()).collect();
            let mut out = vec![0.0; rows];
            rows_dot(&mat, cols, &x, &mut out);
            for (i, &o) in out.iter().enumerate() {
                let row = &mat[i * cols..(i + 1) * cols];
                assert_eq!(o.to_bits(), dot_lanes8(row, &x).to_bits(), "{rows}x{cols} row {i}");
                assert_eq!(dot(row, &x).to_bits(), dot_lanes8(row, &x).to_bits());
            }
            let yr: Vec<f64> = (0..rows).map(|_| rng.normal()).collect();
            let mut col = vec![0.0; cols];
            cols_dot(&mat, cols, &yr, &mut col);
            for (j, &c) in col.iter().enumerate() {
                let cj: Vec<f64> = (0..rows).map(|i| mat[i * cols + j]).collect();
                assert_eq!(c.to_bits(), dot_lanes8(&cj, &yr).to_bits(), "{rows}x{cols} column {j}");
            }
            let mut col4 = vec![0.0; cols];
            cols_dot4(&mat, cols, &yr, &mut col4);
            let mut want4 = vec![0.0; cols];
            cols_dot4_impl(&mat, cols, &yr, &mut want4);
            for (j, (&c, &w)) in col4.iter().zip(&want4).enumerate() {
                assert_eq!(c.to_bits(), w.to_bits(), "{rows}x{cols} column {j}");
                assert!((c - col[j]).abs() <= 1e-9 * (1.0 + col[j].abs()));
            }
            let mut y: Vec<f64> = (0..cols).map(|_| rng.normal()).collect();
            let mut want = y.clone();
            for (w, &v) in want.iter_mut().zip(&x) {
                *w += 0.37 * v;
            }
            axpy(&mut y, 0.37, &x);
            assert!(y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
