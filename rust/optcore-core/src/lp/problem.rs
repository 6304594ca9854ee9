//! The LP in the solver's form, the options and output of [`super::solve()`], the checks on
//! its input, and the clamp that every pass uses.

use crate::error::{OptError, Result};
pub use crate::linalg::csr::Csr;
use crate::solver::Termination;

/// The LP in the solver's form.
#[derive(Clone, Debug)]
pub struct Lp {
    pub a: Csr,
    pub c: Vec<f64>,
    pub lc: Vec<f64>,
    pub uc: Vec<f64>,
    pub lv: Vec<f64>,
    pub uv: Vec<f64>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub tol: f64,
    pub maxiter: usize,
    pub time_limit: f64,
    pub check_every: usize,
    /// Tolerance of the infeasibility (Farkas ray) tests.
    pub tol_infeasible: f64,
    /// Rounds of bound propagation before the first iteration, to prove infeasibility early
    /// ([`super::presolve`]); 0 turns it off.
    pub propagation_rounds: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tol: 1e-6,
            maxiter: 10_000_000,
            time_limit: f64::INFINITY,
            check_every: 64,
            tol_infeasible: 1e-6,
            propagation_rounds: 20,
        }
    }
}

#[derive(Debug)]
pub struct Output {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Reduced costs `c − Aᵀy` (unscaled).
    pub reduced: Vec<f64>,
    pub nit: usize,
    pub termination: Termination,
    /// Which test decided (for the message).
    pub reason: String,
    pub rel_primal: f64,
    pub rel_dual: f64,
    pub rel_gap: f64,
    pub primal_obj: f64,
    pub dual_obj: f64,
    pub restarts: usize,
}

/// `v` clipped to `[lo, hi]` by two comparisons: a NaN `v` passes through, and bounds that
/// are infinite or equal need no check (`f64::clamp` asserts `lo <= hi`).
#[inline(always)]
pub(crate) fn clamp(v: f64, lo: f64, hi: f64) -> f64 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

impl Lp {
    /// Checks the sizes, the warm start's lengths and the bound pairs.
    pub(crate) fn validate(&self, x0: Option<&[f64]>, y0: Option<&[f64]>) -> Result<()> {
        let (m, n) = (self.a.nrows, self.a.ncols);
        if self.c.len() != n || self.lc.len() != m || self.uc.len() != m || self.lv.len() != n || self.uv.len() != n {
            return Err(OptError::InvalidInput("LP arrays have inconsistent sizes".into()));
        }
        if x0.is_some_and(|v| v.len() != n) || y0.is_some_and(|v| v.len() != m) {
            return Err(OptError::InvalidInput(format!("the warm start needs {n} values of x and {m} of y")));
        }
        if self.lc.iter().zip(&self.uc).any(|(l, u)| l > u || l.is_nan() || u.is_nan())
            || self.lv.iter().zip(&self.uv).any(|(l, u)| l > u || l.is_nan() || u.is_nan())
        {
            return Err(OptError::InvalidInput("a lower bound exceeds its upper bound, or is NaN".into()));
        }
        Ok(())
    }

    /// `‖b‖₂` over the finite row bounds and `‖c‖₂`: the scales of the relative KKT errors.
    pub(crate) fn norms(&self) -> Norms {
        let b = scaled_norm(self.lc.iter().chain(&self.uc).copied().filter(|v| v.is_finite()));
        Norms { b, c: scaled_norm(self.c.iter().copied()) }
    }
}

/// `‖v‖₂` of finite values, scaled by the largest magnitude so that 1e200 entries do not
/// overflow to inf.
pub(crate) fn scaled_norm(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let big = v.clone().fold(0.0f64, |m, x| m.max(x.abs()));
    if big == 0.0 || !big.is_finite() {
        return big;
    }
    big * v.map(|x| (x / big) * (x / big)).sum::<f64>().sqrt()
}

/// The norms that the relative KKT errors divide by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Norms {
    pub b: f64,
    pub c: f64,
}
