//! Linear algebra shared by the solvers: vector helpers that accumulate in f64, a design
//! matrix that is dense (row-major) or CSR, a plain f64 CSR matrix with a row-parallel
//! product ([`csr::Csr`], the LP solver's), and conjugate gradients on a matrix-free SPD
//! operator.

pub mod cg;
pub mod csr;
pub mod design;

pub use cg::{cg, CgInfo};
pub use design::Design;

use crate::real::Real;

/// `Σ a_i b_i`, accumulated in f64.
pub fn dot<T: Real>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(&u, &v)| u.as_f64() * v.as_f64()).sum()
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
