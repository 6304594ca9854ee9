//! The direct lower solve of the L-BFGS outer loop (`options["lower_solve"]`): the dense lower
//! Hessian `∇²ᵧᵧg(x, y)` factored by Cholesky ([`crate::linalg::chol`]) and used both for
//! Newton's method on `∇ᵧg(x, ·) = 0` and for the adjoint system `∇²ᵧᵧg v = ∇ᵧf`.
//!
//! Where `g` is quadratic in `y` ([`Oracle::quadratic_in_y`](super::oracle::Oracle::quadratic_in_y):
//! ridge, the quadratic problem) one factorisation per outer point serves everything: the
//! Newton step is exact, further steps with the same factor are iterative refinement, and the
//! adjoint reuses it. Otherwise each Newton step factors anew and the adjoint uses the factor at
//! the returned `y`.
//!
//! The choice (`LowerSolve::Auto`): direct when the problem builds its dense Hessian itself
//! ([`Oracle::hessian_costs`](super::oracle::Oracle::hessian_costs)) and `d_y ≤ 2000`, from the
//! first outer point at which the iterative solves (Newton–CG and the adjoint CG) spent more
//! flops in Hessian–vector products than one factorisation costs (`build + d_y³/3`, twice
//! that when `g` is not quadratic in `y`); then for the rest of the run (`exact`, which builds
//! the dense Hessian anyway: from the start).

use super::methods::Ctx;
use crate::error::{OptError, Result};
use crate::linalg::chol::Cholesky;
use crate::linalg::norm;
use crate::real::Real;

/// `lower_solve="auto"` considers the direct solve up to this `d_y`.
pub const AUTO_MAX_DY: usize = 2000;
/// `lower_solve="direct"` refuses a larger `d_y` (a `d_y × d_y` matrix and `d_y³/3` flops per
/// outer point).
pub const FORCED_MAX_DY: usize = 8192;

/// How the L-BFGS outer loop solves the lower level and the adjoint system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowerSolve {
    /// The rule of the module docs.
    Auto,
    /// Always the dense factorisation (from `d_y` products when the problem has no dense
    /// Hessian).
    Direct,
    /// Newton–CG and CG.
    Iterative,
}

/// The flops of one direct evaluation (module docs), when the problem builds its Hessian.
pub(super) fn direct_flops<T: Real>(c: &Ctx<'_, T>, dy: usize) -> Option<f64> {
    let (build, _) = c.o.oracle.hessian_costs()?;
    let one = build + (dy as f64).powi(3) / 3.0;
    Some(if c.o.oracle.quadratic_in_y() { one } else { 2.0 * one })
}

/// `∇²ᵧᵧg(x, y)` built and factored, asking `stop` between blocks; an interrupted
/// factorisation sets `c.aborted` and is an error that ends the evaluation. The matrix is
/// built in the storage of the last factor (`c.spare`, which the callers return there once
/// done with a factor; every entry is overwritten) where it has the size.
fn factor_at<T: Real>(c: &mut Ctx<'_, T>, x: &[T], y: &[T], stop: &mut dyn FnMut() -> bool) -> Result<Cholesky> {
    let dy = y.len();
    let mut h = std::mem::take(&mut c.spare);
    if h.len() != dy * dy {
        h = Cholesky::buffer(dy, "the lower-level Hessian")?;
    }
    c.o.hessian(x, y, &mut h)?;
    match Cholesky::factor_checked(h, dy, "the lower-level Hessian ∇²ᵧᵧg", stop)? {
        Some(ch) => Ok(ch),
        None => {
            c.aborted = true;
            Err(OptError::Numerical("interrupted".into()))
        }
    }
}

/// Newton's method with the factored Hessian on `∇ᵧg(x, ·) = 0` from `y`, until
/// `‖∇ᵧg‖ ≤ max(atol, rtol · max(‖∇ᵧg(x, y_start)‖, R))` (`R` the run's reference residual)
/// or until a step no longer decreases the residual (each step halved at most 8 times: the
/// rounding floor). Returns `∇ᵧg` at the returned `y` and the factor there. `stop`: see
/// [`factor_at`].
pub(super) fn newton<T: Real>(
    c: &mut Ctx<'_, T>,
    x: &[T],
    y: &mut [T],
    (atol, rtol): (f64, f64),
    stop: &mut dyn FnMut() -> bool,
) -> Result<(Vec<T>, Cholesky)> {
    let dy = y.len();
    let quad = c.o.oracle.quadratic_in_y();
    let mut g = vec![T::zero(); dy];
    c.o.grad_g(x, y, None, None, &mut g)?;
    let mut r = norm(&g);
    let atol = atol.max(rtol * r.max(c.r_ref));
    let mut fac: Option<Cholesky> = None;
    let mut yt = vec![T::zero(); dy];
    let mut gt = vec![T::zero(); dy];
    for _ in 0..50 {
        if r <= atol {
            break;
        }
        let ch = match fac.take() {
            Some(f) => f,
            None => factor_at(c, x, y, stop)?,
        };
        let mut p: Vec<f64> = g.iter().map(|e| e.as_f64()).collect();
        ch.solve_in_place(&mut p);
        let improved = c.damped_lower_step(x, (y, &mut g, &mut r), (&mut yt, &mut gt), |step, y, yt| {
            for ((t, &yi), &pi) in yt.iter_mut().zip(y).zip(&p) {
                *t = T::from_f64(yi.as_f64() - step * pi);
            }
        })?;
        // The factor stays valid where `y` did not move or the Hessian does not depend on it.
        if quad || !improved {
            fac = Some(ch);
        }
        if !improved {
            break;
        }
    }
    let ch = match fac {
        Some(f) => f,
        None => factor_at(c, x, y, stop)?,
    };
    Ok((g, ch))
}

/// `v = H⁻¹ b` with the factor.
pub(super) fn solve<T: Real>(ch: &Cholesky, b: &[T]) -> Vec<T> {
    let mut s: Vec<f64> = b.iter().map(|e| e.as_f64()).collect();
    ch.solve_in_place(&mut s);
    s.iter().map(|&e| T::from_f64(e)).collect()
}
