//! Linear algebra shared by the solvers: vector helpers that accumulate in f64, a design
//! matrix that is dense (row-major) or CSR, a plain f64 CSR matrix with a row-parallel
//! product ([`csr::Csr`], the LP solver's), conjugate gradients on a matrix-free SPD
//! operator ([`mod@cg`]), dense Cholesky ([`chol`]), dense LU with partial pivoting ([`lu`]) and the spectral-norm estimate
//! by Lanczos ([`lanczos`]).
//!
//! Inner products come in two summation orders, kept apart because changing either would
//! change the iterates of the solvers that use it: [`dot`] adds the products in index order
//! (CG, bilevel, zeroth-order, the LP's norms and restart test), [`dot_lanes8`] in eight
//! interleaved partial sums (the native operators, LU solves and monotone sums).
//! The rule for splitting parallel loops deterministically lives in [`crate::parallel`].

pub mod cg;
pub mod chol;
mod chol_kernel;
pub mod csr;
pub mod design;
pub mod lanczos;
pub mod lu;

pub use cg::{cg, CgInfo};
pub use design::Design;

use crate::real::Real;

/// `Σ a_i b_i`, accumulated in f64.
pub fn dot<T: Real>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(&u, &v)| u.as_f64() * v.as_f64()).sum()
}

/// `Σ a_i b_i` of f64 slices with eight independent partial sums (vectorisable, and
/// deterministic: the summation order depends only on the length). The order of the native
/// operators, the LU solves and the monotone sums; [`dot`] is the one in index order.
pub fn dot_lanes8(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (u, v) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += u[l] * v[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `out_j += Σ_k M[k, j] w_k` for the row-major `M` (`w.len()` rows of `out.len()` columns):
/// row after row, each entry in `k` order (a product, then an addition: unfused), so that
/// the inner loop runs along contiguous memory, vectorised across `j`; compiled for AVX2
/// where the CPU has it (four lanes instead of SSE2's two; the same operations, the same
/// result). The product `Mᵀ w` (`M w` for a symmetric `M`).
pub fn add_scaled_rows(m: &[f64], w: &[f64], out: &mut [f64]) {
    #[inline(always)]
    fn rows(m: &[f64], w: &[f64], out: &mut [f64]) {
        for (row, &wk) in m.chunks_exact(out.len()).zip(w) {
            for (e, &mkj) in out.iter_mut().zip(row) {
                *e += mkj * wk;
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows_avx2(m: &[f64], w: &[f64], out: &mut [f64]) {
        rows(m, w, out)
    }
    assert!(m.len() >= w.len() * out.len(), "add_scaled_rows: M has too few entries");
    if out.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if chol::simd() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { rows_avx2(m, w, out) };
    }
    rows(m, w, out)
}

/// `‖a‖₂`, accumulated in f64.
pub fn norm<T: Real>(a: &[T]) -> f64 {
    dot(a, a).sqrt()
}

/// `‖a‖₂` without overflow or underflow: the plain sum of squares when it is safely in
/// range (then bit-identical to `sqrt(Σ a_i²)` in index order), else the sum of squares of
/// `a_i / max |a_j|` times that max (the max-abs scaling of LAPACK's `nrm2`), so that
/// entries of 1e200 give 1e200, not inf. NaN when an entry is NaN; inf when one is infinite.
/// Every norm that decides a result of the fixed-point and monotone families is this one.
pub fn nrm2<T: Real>(a: &[T]) -> f64 {
    nrm2_by(a.len(), |i| a[i].as_f64())
}

/// `‖a − b‖₂`, scaled as [`nrm2`] (the difference is formed in f64, so it does not overflow
/// for finite f64 entries below `f64::MAX / 2`).
pub fn nrm2_diff<T: Real>(a: &[T], b: &[T]) -> f64 {
    nrm2_by(a.len().min(b.len()), |i| a[i].as_f64() - b[i].as_f64())
}

/// The scaled 2-norm of the vector `i ↦ f(i)`, `i < n` (see [`nrm2`]).
fn nrm2_by(n: usize, f: impl Fn(usize) -> f64) -> f64 {
    // Squares of numbers below 1e-140 lose bits to subnormals, and the sum overflows near
    // 1e154: outside [1e-280, 1e300] the plain sum is redone scaled.
    let ssq: f64 = (0..n).map(|i| f(i) * f(i)).sum();
    if ssq.is_nan() || (1e-280..=1e300).contains(&ssq) {
        return ssq.sqrt();
    }
    let big = (0..n).map(|i| f(i).abs()).fold(0.0f64, f64::max);
    if big == 0.0 || !big.is_finite() {
        return big;
    }
    let scaled: f64 = (0..n).map(|i| (f(i) / big) * (f(i) / big)).sum();
    big * scaled.sqrt()
}

/// `y ← y + a x`.
pub fn axpy<T: Real>(a: f64, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = T::from_f64(yi.as_f64() + a * xi.as_f64());
    }
}

/// Whether every entry is finite.
pub fn all_finite<T: Real>(a: &[T]) -> bool {
    a.iter().all(|v| v.is_finite())
}

/// `v` converted to f64.
pub fn to_f64<T: Real>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.as_f64()).collect()
}

/// `v` converted from f64.
pub fn from_f64<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// Uniform [0, 1) numbers from a fixed seed (a plain LCG: test data only).
#[cfg(test)]
pub(crate) fn test_uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64) / ((1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nrm2_is_scaled_and_exact_in_range() {
        let a = [3.0f64, 4.0];
        assert_eq!(nrm2(&a), 5.0);
        assert_eq!(nrm2(&[1e200, 0.0]), 1e200);
        assert!((nrm2(&[3e200, 4e200]) / 5e200 - 1.0).abs() < 1e-15);
        assert!((nrm2(&[3e-200, 4e-200]) / 5e-200 - 1.0).abs() < 1e-15);
        assert_eq!(nrm2_diff(&[1e200, 0.0], &[5e199, 0.0]), 5e199);
        assert_eq!(nrm2(&[0.0f64; 3]), 0.0);
        assert!(nrm2(&[f64::NAN, 1.0]).is_nan());
        assert_eq!(nrm2(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert_eq!(nrm2(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(nrm2(&[1e300f64, 1e300]), 1e300 * 2f64.sqrt());
        // In range it is the plain formula, bit for bit.
        let v: Vec<f64> = (0..37).map(|i| (i as f64 * 0.71).sin() * 1e3).collect();
        assert_eq!(nrm2(&v), norm(&v));
        assert_eq!(nrm2(&[1e20f32, 0.0]), 1e20f32 as f64);
    }

    #[test]
    fn dot_lanes8_matches_the_sequential_dot() {
        for n in [0usize, 1, 7, 8, 9, 31, 100] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 1.3).cos()).collect();
            let naive = dot(&a, &b);
            assert!((dot_lanes8(&a, &b) - naive).abs() <= 1e-13 * (1.0 + naive.abs()), "n={n}");
        }
    }
}
