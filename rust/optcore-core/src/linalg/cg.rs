//! Conjugate gradients for `H v = b` with `H` symmetric positive definite, given as a
//! matrix-free product. Plain CG on `H` (not CG on the normal equations `HᵀH v = Hᵀb`, which
//! squares the condition number). Warm start: `v` holds the initial guess on entry.

use crate::error::Result;
use crate::real::Real;

use super::{axpy, dot};

/// What a CG run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgInfo {
    /// Products with `H` (one per iteration, plus one for the initial residual when `v ≠ 0`).
    pub matvecs: usize,
    /// `‖b − H v‖₂` of the returned `v` (the recursively updated residual).
    pub residual: f64,
    /// `residual ≤ tol`.
    pub converged: bool,
    /// Negative or zero curvature `pᵀHp ≤ 0` was met (`H` not positive definite there).
    pub breakdown: bool,
}

/// Solves `H v = b` to `‖b − H v‖ ≤ tol` within `maxiter` products; `hv(p, out)` writes `H p`.
pub fn cg<T: Real>(
    mut hv: impl FnMut(&[T], &mut [T]) -> Result<()>,
    b: &[T],
    v: &mut [T],
    tol: f64,
    maxiter: usize,
) -> Result<CgInfo> {
    let n = b.len();
    let mut r = b.to_vec();
    let mut hp = vec![T::zero(); n];
    let mut matvecs = 0;
    if v.iter().any(|x| *x != T::zero()) {
        hv(v, &mut hp)?;
        matvecs += 1;
        for ((ri, &bi), &h) in r.iter_mut().zip(b).zip(&hp) {
            *ri = T::from_f64(bi.as_f64() - h.as_f64());
        }
    }
    let mut rr = dot(&r, &r);
    let mut p = r.clone();
    let mut breakdown = false;
    let mut it = 0;
    while rr.sqrt() > tol && it < maxiter {
        hv(&p, &mut hp)?;
        matvecs += 1;
        it += 1;
        let php = dot(&p, &hp);
        // NaN-aware: a NaN curvature is a breakdown too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(php > 0.0) {
            breakdown = true;
            break;
        }
        let alpha = rr / php;
        axpy(alpha, &p, v);
        axpy(-alpha, &hp, &mut r);
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        rr = rr_new;
        for (pi, &ri) in p.iter_mut().zip(&r) {
            *pi = T::from_f64(ri.as_f64() + beta * pi.as_f64());
        }
    }
    let residual = rr.sqrt();
    Ok(CgInfo { matvecs, residual, converged: residual <= tol, breakdown })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cg_solves_spd_system_and_warm_start_helps() {
        // H = tridiag(-1, 4, -1), n = 30.
        let n = 30;
        let hv = |p: &[f64], out: &mut [f64]| {
            for i in 0..n {
                let mut s = 4.0 * p[i];
                if i > 0 {
                    s -= p[i - 1];
                }
                if i + 1 < n {
                    s -= p[i + 1];
                }
                out[i] = s;
            }
            Ok(())
        };
        let b: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let mut v = vec![0.0; n];
        let info = cg(hv, &b, &mut v, 1e-12, 100).unwrap();
        assert!(info.converged && !info.breakdown);
        let mut hvv = vec![0.0; n];
        hv(&v, &mut hvv).unwrap();
        let err: f64 = hvv.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-11);
        let info2 = cg(hv, &b, &mut v, 1e-12, 100).unwrap();
        assert!(info2.matvecs <= 2, "warm start at the solution: {info2:?}");
    }
}
