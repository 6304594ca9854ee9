//! Dense Cholesky factorisation `A = L Lᵀ` of a symmetric positive definite matrix, in f64,
//! for the direct lower-level solves of the bilevel outer loop (factor once per outer point,
//! solve twice). Factor once, solve many times.
//!
//! The factorisation is left-looking by blocks of `NB` rows (row-major storage, the lower
//! triangle): block `(I, J)` first subtracts `L[I, :J] L[J, :J]ᵀ` (dot products of row
//! segments, computed two rows of `I` by four rows of `J` at a time in four-lane partial
//! sums: six row loads feed eight products), then finishes with the
//! short dot products inside the block. Every dot product adds its terms in an order fixed by
//! its length alone (four lanes of fused multiply-adds, combined as `(l0 + l2) + (l1 + l3)`,
//! then the tail), so the result is bit-identical whatever the CPU path: the AVX2 + FMA
//! kernel runs the same fused operations in vector registers, the portable one calls
//! `f64::mul_add` (correctly rounded everywhere, slow without hardware FMA).

use crate::alloc::{checked_len, try_zeroed};
use crate::error::{OptError, Result};
use rayon::prelude::*;

/// Rows per block.
const NB: usize = 64;
/// From this order on, the rows of a block row run in parallel.
const PAR_MIN: usize = 192;

/// `L` of `A = L Lᵀ` (row-major `n × n`, the lower triangle; the strict upper triangle is
/// zero).
#[derive(Debug, Clone)]
pub struct Cholesky {
    n: usize,
    l: Vec<f64>,
}

/// `Σ_k a_k b_k` in four lanes (the module's fixed order), each lane a chain of fused
/// multiply-adds.
#[inline(always)]
fn dot4(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (u, v) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] = u[l].mul_add(v[l], acc[l]);
        }
    }
    finish(acc, ra, rb)
}

/// `(l0 + l2) + (l1 + l3)` plus the tail `Σ a_k b_k` (fused, in index order).
#[inline(always)]
fn finish(acc: [f64; 4], ra: &[f64], rb: &[f64]) -> f64 {
    let tail = ra.iter().zip(rb).fold(0.0f64, |s, (x, y)| x.mul_add(*y, s));
    ((acc[0] + acc[2]) + (acc[1] + acc[3])) + tail
}

/// The eight dot products of rows `x[0], x[1]` with rows `y[0..4]` over their first `k`
/// entries, each in the order of [`dot4`] (portable version).
#[inline(always)]
fn dots_2x4(x: [&[f64]; 2], y: [&[f64]; 4], k: usize) -> [[f64; 4]; 2] {
    let mut out = [[0.0f64; 4]; 2];
    for (o, xi) in out.iter_mut().zip(x) {
        for (e, yj) in o.iter_mut().zip(y) {
            *e = dot4(&xi[..k], &yj[..k]);
        }
    }
    out
}

/// [`dots_2x4`] with AVX2 + FMA intrinsics: eight 4-lane accumulators, six loads per four
/// entries; the same fused operations in the same order, so bit-identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_2x4_avx2(x: [&[f64]; 2], y: [&[f64]; 4], k: usize) -> [[f64; 4]; 2] {
    use std::arch::x86_64::*;
    for r in x.iter().chain(&y) {
        assert!(r.len() >= k);
    }
    let kk = k - k % 4;
    let (x0, x1) = (x[0].as_ptr(), x[1].as_ptr());
    let (y0, y1, y2, y3) = (y[0].as_ptr(), y[1].as_ptr(), y[2].as_ptr(), y[3].as_ptr());
    let z = _mm256_setzero_pd();
    let mut acc = [[z; 4]; 2];
    let mut q = 0;
    while q < kk {
        // SAFETY: every row holds at least `k` entries (asserted above).
        let u = [_mm256_loadu_pd(x0.add(q)), _mm256_loadu_pd(x1.add(q))];
        let v = [
            _mm256_loadu_pd(y0.add(q)),
            _mm256_loadu_pd(y1.add(q)),
            _mm256_loadu_pd(y2.add(q)),
            _mm256_loadu_pd(y3.add(q)),
        ];
        for (ai, ui) in acc.iter_mut().zip(u) {
            for (aj, vj) in ai.iter_mut().zip(v) {
                *aj = _mm256_fmadd_pd(ui, vj, *aj);
            }
        }
        q += 4;
    }
    let mut out = [[0.0f64; 4]; 2];
    for ((o, ai), xi) in out.iter_mut().zip(&acc).zip(x) {
        for ((e, aj), yj) in o.iter_mut().zip(ai).zip(y) {
            let mut l = [0.0f64; 4];
            _mm256_storeu_pd(l.as_mut_ptr(), *aj);
            *e = finish(l, &xi[kk..k], &yj[kk..k]);
        }
    }
    out
}

#[inline(always)]
fn tile(fast: bool, x: [&[f64]; 2], y: [&[f64]; 4], k: usize) -> [[f64; 4]; 2] {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` only where the CPU has AVX2 and FMA.
        return unsafe { dots_2x4_avx2(x, y, k) };
    }
    let _ = fast;
    dots_2x4(x, y, k)
}

/// The off-diagonal blocks of one or two rows (`rows`, `m` rows of length `n`) of block row
/// `i0`: for each column block `J < i0`, `L[i, J] = (a[i, J] − L[i, :j0] L[J, :j0]ᵀ) L[J, J]⁻ᵀ`
/// with the finished rows `done` (rows `0..i0`). Rows depend only on themselves and `done`.
#[inline(always)]
fn offdiag(fast: bool, done: &[f64], n: usize, i0: usize, rows: &mut [f64]) {
    let m = rows.len() / n;
    for j0 in (0..i0).step_by(NB) {
        let j1 = (j0 + NB).min(i0);
        if j0 > 0 {
            let mut j = j0;
            while j < j1 {
                let c = [j, (j + 1).min(j1 - 1), (j + 2).min(j1 - 1), (j + 3).min(j1 - 1)];
                let d = tile(
                    fast,
                    [&rows[..j0], &rows[(m - 1) * n..(m - 1) * n + j0]],
                    c.map(|cj| &done[cj * n..cj * n + j0]),
                    j0,
                );
                for (p, dp) in d.iter().enumerate().take(m) {
                    for (q, &cj) in c.iter().enumerate().take((j1 - j).min(4)) {
                        rows[p * n + cj] -= dp[q];
                    }
                }
                j += 4;
            }
        }
        for p in 0..m {
            for j in j0..j1 {
                let s = rows[p * n + j] - dot4(&rows[p * n + j0..p * n + j], &done[j * n + j0..j * n + j]);
                rows[p * n + j] = s / done[j * n + j];
            }
        }
    }
}

/// The diagonal block's products `L[i, :i0] L[j, :i0]ᵀ`, `i0 ≤ j ≤ i`, of one or two rows
/// (`p0`, `p0 + 1` within the block `blk` of `nb` rows of length `n`), as `nb`-wide rows.
#[inline(always)]
fn diag_products(fast: bool, blk: &[f64], n: usize, i0: usize, nb: usize, p0: usize) -> Vec<f64> {
    let m = (nb - p0).min(2);
    let mut out = vec![0.0; m * nb];
    let x = [&blk[p0 * n..p0 * n + i0], &blk[(p0 + m - 1) * n..(p0 + m - 1) * n + i0]];
    let mut q = 0;
    while q < p0 + m {
        let c = [q, (q + 1).min(nb - 1), (q + 2).min(nb - 1), (q + 3).min(nb - 1)];
        let d = tile(fast, x, c.map(|cj| &blk[cj * n..cj * n + i0]), i0);
        for (p, dp) in d.iter().enumerate().take(m) {
            for (t, &cj) in c.iter().enumerate().take((nb - q).min(4)) {
                if cj <= p0 + p {
                    out[p * nb + cj] = dp[t];
                }
            }
        }
        q += 4;
    }
    out
}

/// [`offdiag`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn offdiag_avx2(done: &[f64], n: usize, i0: usize, rows: &mut [f64]) {
    offdiag(true, done, n, i0, rows)
}

/// [`diag_products`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn diag_products_avx2(blk: &[f64], n: usize, i0: usize, nb: usize, p0: usize) -> Vec<f64> {
    diag_products(true, blk, n, i0, nb, p0)
}

/// The in-block factorisation of the diagonal block (its products already subtracted):
/// `Err(j)` at a pivot that is not positive.
#[inline(always)]
fn diag_block(blk: &mut [f64], n: usize, i0: usize, nb: usize) -> std::result::Result<(), usize> {
    for p in 0..nb {
        for q in 0..=p {
            let (i, j) = (i0 + p, i0 + q);
            let s = blk[p * n + j] - dot4(&blk[p * n + i0..p * n + j], &blk[q * n + i0..q * n + j]);
            if p == q {
                #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware: a NaN pivot fails
                if !(s > 0.0) {
                    return Err(i);
                }
                blk[p * n + i] = s.sqrt();
            } else {
                blk[p * n + j] = s / blk[q * n + j];
            }
        }
    }
    Ok(())
}

/// [`diag_block`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn diag_block_avx2(blk: &mut [f64], n: usize, i0: usize, nb: usize) -> std::result::Result<(), usize> {
    diag_block(blk, n, i0, nb)
}

/// The factorisation in place (module docs); `Err(j)` when the `j`-th pivot is not positive.
/// `fast`: the AVX2 + FMA versions (the CPU has both). Rows of a block row are independent
/// in the off-diagonal phase and in the diagonal block's products: pairs of rows run in
/// parallel when `n ≥ PAR_MIN` (each entry computed the same way on any thread).
fn factor_kernel(a: &mut [f64], n: usize, fast: bool) -> std::result::Result<(), usize> {
    let off = |done: &[f64], i0: usize, rows: &mut [f64]| {
        #[cfg(target_arch = "x86_64")]
        if fast {
            // SAFETY: `fast` only where the CPU has AVX2 and FMA.
            return unsafe { offdiag_avx2(done, n, i0, rows) };
        }
        offdiag(false, done, n, i0, rows)
    };
    let prods = |blk: &[f64], i0: usize, nb: usize, p0: usize| {
        #[cfg(target_arch = "x86_64")]
        if fast {
            // SAFETY: as above.
            return unsafe { diag_products_avx2(blk, n, i0, nb, p0) };
        }
        diag_products(false, blk, n, i0, nb, p0)
    };
    let par = n >= PAR_MIN;
    for i0 in (0..n).step_by(NB) {
        let i1 = (i0 + NB).min(n);
        let nb = i1 - i0;
        let (done, rest) = a.split_at_mut(i0 * n);
        let blk = &mut rest[..nb * n];
        if i0 > 0 {
            if par {
                blk.par_chunks_mut(2 * n).for_each(|rows| off(done, i0, rows));
            } else {
                blk.chunks_mut(2 * n).for_each(|rows| off(done, i0, rows));
            }
            let pairs: Vec<usize> = (0..nb).step_by(2).collect();
            let b: &[f64] = blk;
            let ps: Vec<Vec<f64>> = if par {
                pairs.par_iter().map(|&p0| prods(b, i0, nb, p0)).collect()
            } else {
                pairs.iter().map(|&p0| prods(b, i0, nb, p0)).collect()
            };
            for (&p0, pr) in pairs.iter().zip(&ps) {
                for (p, row) in pr.chunks(nb).enumerate() {
                    for q in 0..=p0 + p {
                        blk[(p0 + p) * n + i0 + q] -= row[q];
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        if fast {
            // SAFETY: as above.
            unsafe { diag_block_avx2(blk, n, i0, nb)? };
            continue;
        }
        diag_block(blk, n, i0, nb)?;
    }
    Ok(())
}

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

fn factor_dispatch(a: &mut [f64], n: usize) -> std::result::Result<(), usize> {
    factor_kernel(a, n, simd())
}

impl Cholesky {
    /// Factors the row-major symmetric `n × n` matrix `a` (only its lower triangle is read),
    /// taking its storage. A pivot that is not positive (the matrix is not positive definite
    /// to working precision) or a non-finite entry is an [`OptError::Numerical`] naming `what`.
    pub fn factor(mut a: Vec<f64>, n: usize, what: &str) -> Result<Self> {
        if a.len() != checked_len(n, n, what)? {
            return Err(OptError::InvalidInput(format!("{what}: expected {n}x{n} entries, got {}", a.len())));
        }
        if !(0..n).all(|i| a[i * n..i * n + i + 1].iter().all(|v| v.is_finite())) {
            return Err(OptError::Numerical(format!("{what} has non-finite entries")));
        }
        if let Err(j) = factor_dispatch(&mut a, n) {
            return Err(OptError::Numerical(format!(
                "{what} is not positive definite to working precision (pivot {j} of {n})"
            )));
        }
        for i in 0..n {
            a[i * n + i + 1..(i + 1) * n].iter_mut().for_each(|v| *v = 0.0);
        }
        Ok(Cholesky { n, l: a })
    }

    /// A zeroed `n × n` buffer to build a matrix in (fallible: `n` is user-sized).
    pub fn buffer(n: usize, what: &str) -> Result<Vec<f64>> {
        try_zeroed::<f64>(checked_len(n, n, what)?, what)
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Solves `A x = b` in place (`L y = b`, then `Lᵀ x = y`).
    pub fn solve_in_place(&self, b: &mut [f64]) {
        let (n, l) = (self.n, &self.l);
        for i in 0..n {
            b[i] = (b[i] - dot4(&l[i * n..i * n + i], &b[..i])) / l[i * n + i];
        }
        for i in (0..n).rev() {
            let xi = b[i] / l[i * n + i];
            b[i] = xi;
            for (bk, &lik) in b[..i].iter_mut().zip(&l[i * n..i * n + i]) {
                *bk -= lik * xi;
            }
        }
    }

    /// `log det A = 2 Σ log L_ii`.
    pub fn log_det(&self) -> f64 {
        2.0 * (0..self.n).map(|i| self.l[i * self.n + i].ln()).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut r = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let b: Vec<f64> = (0..n * n).map(|_| r()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>() + if i == j { 0.1 } else { 0.0 };
            }
        }
        a
    }

    #[test]
    fn solves_spd_systems_of_odd_sizes() {
        for &n in &[1usize, 2, 3, 5, 63, 64, 65, 130, 201] {
            let a = spd(n, n as u64);
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut b: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum()).collect();
            let c = Cholesky::factor(a.clone(), n, "A").unwrap();
            c.solve_in_place(&mut b);
            let err = b.iter().zip(&x).map(|(u, v)| (u - v).abs()).fold(0.0, f64::max);
            assert!(err < 1e-8, "n = {n}: error {err}");
            // L Lᵀ reproduces A.
            for i in 0..n {
                for j in 0..=i {
                    let s: f64 = (0..=j).map(|k| c.l[i * n + k] * c.l[j * n + k]).sum();
                    assert!((s - a[i * n + j]).abs() < 1e-10 * (1.0 + a[i * n + j].abs()));
                }
            }
        }
    }

    #[test]
    fn the_simd_and_portable_paths_agree_bitwise() {
        for n in [150usize, 260] {
            let a = spd(n, 7);
            let mut p = a.clone();
            factor_kernel(&mut p, n, false).unwrap();
            let mut q = a;
            factor_dispatch(&mut q, n).unwrap();
            assert_eq!(p, q, "n = {n}");
        }
    }

    #[test]
    fn indefinite_and_non_finite_matrices_are_named_errors() {
        let e = Cholesky::factor(vec![1.0, 2.0, 2.0, 1.0], 2, "the test matrix").unwrap_err();
        assert!(format!("{e}").contains("not positive definite"));
        let e = Cholesky::factor(vec![f64::NAN, 0.0, 0.0, 1.0], 2, "the test matrix").unwrap_err();
        assert!(format!("{e}").contains("non-finite"));
    }

    #[test]
    #[ignore]
    fn timing() {
        for &n in &[200usize, 500, 1000] {
            let a = spd(n, 3);
            let t = std::time::Instant::now();
            let reps = 5;
            for _ in 0..reps {
                Cholesky::factor(a.clone(), n, "A").unwrap();
            }
            eprintln!("n = {n}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3 / reps as f64);
        }
    }
}
