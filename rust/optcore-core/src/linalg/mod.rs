//! Linear algebra shared by the solvers: vector helpers that accumulate in f64, a design
//! matrix that is dense (row-major) or CSR, a plain f64 CSR matrix with a row-parallel
//! product ([`csr::Csr`], the LP solver's), conjugate gradients on a matrix-free SPD
//! operator ([`mod@cg`]), dense LU with partial pivoting ([`lu`]) and the spectral-norm estimate
//! by Lanczos ([`lanczos`]).
//!
//! Inner products come in two summation orders, kept apart because changing either would
//! change the iterates of the solvers that use it: [`dot`] adds the products in index order
//! (CG, bilevel, zeroth-order, the LP's norms and restart test), [`dot_lanes8`] in eight
//! interleaved partial sums (the native operators, LU solves and monotone sums).
//! The rule for splitting parallel loops deterministically lives in [`crate::parallel`].

pub mod cg;
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

/// `‖a‖₂`, accumulated in f64.
pub fn norm<T: Real>(a: &[T]) -> f64 {
    dot(a, a).sqrt()
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
    fn dot_lanes8_matches_the_sequential_dot() {
        for n in [0usize, 1, 7, 8, 9, 31, 100] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 1.3).cos()).collect();
            let naive = dot(&a, &b);
            assert!((dot_lanes8(&a, &b) - naive).abs() <= 1e-13 * (1.0 + naive.abs()), "n={n}");
        }
    }
}
