//! The hypergradient `∇F(x) = ∇ₓf − ∇²ₓᵧg v`, `∇²ᵧᵧg v = ∇ᵧf`, at a given `(x, y)`, for users
//! to check their own oracles: `Exact` builds `∇²ᵧᵧg` column by column (`d_y` products) and
//! solves by dense LU; `Cg` and `Neumann` are the iterative solves AID uses.

use super::oracle::{Counted, Counts, Oracle};
use crate::alloc::{checked_len, try_zeroed};
use crate::error::{OptError, Result};
use crate::linalg::lu::Lu;
use crate::linalg::{axpy, cg, norm};
use crate::real::Real;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HgMethod {
    Exact,
    /// CG to `‖r‖ ≤ tol ‖∇ᵧf‖` within `maxiter` products.
    Cg {
        tol: f64,
        maxiter: usize,
    },
    /// `v = η Σ_{q<terms} (I − η H)^q ∇ᵧf`.
    Neumann {
        terms: usize,
        eta: f64,
    },
}

/// The hypergradient, the solution `v`, and the oracle counts.
pub fn hypergradient<T: Real>(
    oracle: &dyn Oracle<T>,
    x: &[T],
    y: &[T],
    method: HgMethod,
) -> Result<(Vec<T>, Vec<T>, Counts)> {
    let (dx, dy) = oracle.dims();
    if x.len() != dx || y.len() != dy {
        return Err(OptError::InvalidInput(format!(
            "x has {} entries and y {}; expected {dx} and {dy}",
            x.len(),
            y.len()
        )));
    }
    let mut o = Counted::new(oracle);
    let mut gx = vec![T::zero(); dx];
    let mut gy = vec![T::zero(); dy];
    o.grad_f(x, y, None, &mut gx, &mut gy)?;
    let mut v = vec![T::zero(); dy];
    match method {
        HgMethod::Exact => v = exact_solve(&mut o, x, y, &gy)?,
        HgMethod::Cg { tol, maxiter } => {
            let t = tol * norm(&gy);
            cg(|p, out| o.hvp(x, y, p, None, out), &gy, &mut v, t, maxiter)?;
        }
        HgMethod::Neumann { terms, eta } => {
            let mut p = gy.clone();
            let mut s = gy.clone();
            let mut hp = vec![T::zero(); dy];
            for _ in 1..terms.max(1) {
                o.hvp(x, y, &p, None, &mut hp)?;
                axpy(-eta, &hp, &mut p);
                axpy(1.0, &p, &mut s);
            }
            v = s.iter().map(|e| T::from_f64(eta * e.as_f64())).collect();
        }
    }
    let mut jv = vec![T::zero(); dx];
    o.jvp(x, y, &v, None, &mut jv)?;
    axpy(-1.0, &jv, &mut gx);
    Ok((gx, v, o.counts))
}

/// Solves `∇²ᵧᵧg(x, y) v = b` exactly: `∇²ᵧᵧg` built column by column (`d_y` products),
/// symmetrised, and factorised by dense LU.
pub(super) fn exact_solve<T: Real>(o: &mut Counted<'_, T>, x: &[T], y: &[T], b: &[T]) -> Result<Vec<T>> {
    let dy = y.len();
    let mut h = try_zeroed::<f64>(checked_len(dy, dy, "the lower-level Hessian")?, "the lower-level Hessian")?;
    let mut e = vec![T::zero(); dy];
    let mut col = vec![T::zero(); dy];
    for j in 0..dy {
        e[j] = T::one();
        o.hvp(x, y, &e, None, &mut col)?;
        e[j] = T::zero();
        for i in 0..dy {
            h[i * dy + j] = col[i].as_f64();
        }
    }
    // Symmetrise (finite differences are symmetric only up to their error).
    for i in 0..dy {
        for j in 0..i {
            let m = 0.5 * (h[i * dy + j] + h[j * dy + i]);
            h[i * dy + j] = m;
            h[j * dy + i] = m;
        }
    }
    let lu = Lu::factor(&h, dy, 1e-14, "the lower-level Hessian ∇²ᵧᵧg")?;
    let mut s: Vec<f64> = b.iter().map(|e| e.as_f64()).collect();
    lu.solve_in_place(&mut s);
    Ok(s.iter().map(|&e| T::from_f64(e)).collect())
}
