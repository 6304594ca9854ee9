//! Scaling of the LP before iterating, and back: 10 Ruiz passes (∞-norms), one Pock–Chambolle
//! pass (α = 1), then bounds divided by `β = 1 + ‖b‖₂` (finite row bounds that bound
//! propagation does not show redundant) and `c` by
//! `γ = 1 + ‖c‖₂`. `x = β D_c x̂`, `y = γ D_r ŷ`; everything reported is unscaled. Also the
//! element-wise passes (parallel for long vectors) that map vectors between the two.

use super::problem::scaled_norm;
use super::problem::{Csr, Lp};

/// Scaled problem and the maps back.
pub(super) struct Scaled {
    pub a: Csr,
    pub at: Csr,
    pub c: Vec<f64>,
    pub lc: Vec<f64>,
    pub uc: Vec<f64>,
    pub lv: Vec<f64>,
    pub uv: Vec<f64>,
    pub dr: Vec<f64>,
    pub dc: Vec<f64>,
    pub beta: f64,
    pub gamma: f64,
    /// `Some((l, u))` when every scaled variable bound pair is the same (as `[0, ∞)` stays under
    /// any column scaling): the primal pass then reads neither `lv` nor `uv` (16 of about 120
    /// bytes per column on the 10⁶-variable OT LP).
    pub uniform_box: Option<(f64, f64)>,
}

/// The scaled problem; `redundant` marks row bounds that `β` leaves out ([`bound_scale`]).
pub(super) fn scale(lp: &Lp, redundant: Option<&[u8]>) -> Scaled {
    let (m, n) = (lp.a.nrows, lp.a.ncols);
    let mut a = lp.a.clone();
    let mut dr = vec![1.0; m];
    let mut dc = vec![1.0; n];
    let inv_sqrt = |v: f64| if v > 0.0 { 1.0 / v.sqrt() } else { 1.0 };
    for _ in 0..10 {
        let r: Vec<f64> = a.row_norms(f64::INFINITY).into_iter().map(inv_sqrt).collect();
        let cn: Vec<f64> = a.col_norms(f64::INFINITY).into_iter().map(inv_sqrt).collect();
        a.scale(&r, &cn);
        dr.iter_mut().zip(&r).for_each(|(d, s)| *d *= s);
        dc.iter_mut().zip(&cn).for_each(|(d, s)| *d *= s);
    }
    // Pock–Chambolle, α = 1: rows by Σ_j |a_ij|, columns by Σ_i |a_ij|.
    let r: Vec<f64> = a.row_norms(1.0).into_iter().map(inv_sqrt).collect();
    let cn: Vec<f64> = a.col_norms(1.0).into_iter().map(inv_sqrt).collect();
    a.scale(&r, &cn);
    dr.iter_mut().zip(&r).for_each(|(d, s)| *d *= s);
    dc.iter_mut().zip(&cn).for_each(|(d, s)| *d *= s);
    // x = D_c x̂, rows D_r; then bounds / β and c / γ.
    let lc: Vec<f64> = lp.lc.iter().zip(&dr).map(|(v, d)| v * d).collect();
    let uc: Vec<f64> = lp.uc.iter().zip(&dr).map(|(v, d)| v * d).collect();
    let lv: Vec<f64> = lp.lv.iter().zip(&dc).map(|(v, d)| v / d).collect();
    let uv: Vec<f64> = lp.uv.iter().zip(&dc).map(|(v, d)| v / d).collect();
    let c: Vec<f64> = lp.c.iter().zip(&dc).map(|(v, d)| v * d).collect();
    let beta = 1.0 + bound_scale(&lc, &uc, redundant);
    let gamma = 1.0 + scaled_norm(c.iter().copied());
    let div = |v: Vec<f64>, s: f64| v.into_iter().map(|x| x / s).collect::<Vec<f64>>();
    let at = a.transpose();
    let (lv, uv) = (div(lv, beta), div(uv, beta));
    let uniform_box = match (lv.first(), uv.first()) {
        (Some(&l), Some(&u)) if lv.iter().all(|&v| v == l) && uv.iter().all(|&v| v == u) => Some((l, u)),
        _ => None,
    };
    Scaled { a, at, c: div(c, gamma), lc: div(lc, beta), uc: div(uc, beta), lv, uv, dr, dc, beta, gamma, uniform_box }
}

/// `‖b‖₂` over the finite row bounds that are not `redundant` (bit 1: the lower bound, bit 2:
/// the upper; a bound the rows' activity range cannot reach, as bound propagation shows),
/// scaled so that it does not overflow. A right-hand side of 1e12 beside active ones of order 1
/// would otherwise set `β`, shrink the active bounds (and the solution) to 1e-12 while the
/// duals stay of order 1, and ask for a primal weight far outside its range (iterations grew
/// linearly with it).
fn bound_scale(lc: &[f64], uc: &[f64], redundant: Option<&[u8]>) -> f64 {
    let keep = |i: usize, bit: u8| redundant.is_none_or(|r| r[i] & bit == 0);
    let lower = lc.iter().enumerate().filter(move |&(i, v)| v.is_finite() && keep(i, 1)).map(|(_, v)| *v);
    let upper = uc.iter().enumerate().filter(move |&(i, v)| v.is_finite() && keep(i, 2)).map(|(_, v)| *v);
    scaled_norm(lower.chain(upper))
}

impl Scaled {
    /// `out = x` unscaled from the scaled `xs` (`x = β D_c x̂`).
    pub(super) fn unscale_x(&self, out: &mut [f64], xs: &[f64]) {
        scale_into(out, xs, &self.dc, self.beta, false)
    }

    /// `out = y` unscaled from the scaled `ys` (`y = γ D_r ŷ`).
    pub(super) fn unscale_y(&self, out: &mut [f64], ys: &[f64]) {
        scale_into(out, ys, &self.dr, self.gamma, false)
    }

    /// `out = Aᵀ y` unscaled from `Âᵀ ŷ` (a column-space vector: `γ D_c⁻¹`).
    pub(super) fn unscale_cols(&self, out: &mut [f64], v: &[f64]) {
        scale_into(out, v, &self.dc, self.gamma, true)
    }
}

/// `out_i = f(a_i, b_i)`, in parallel for long vectors.
pub(super) fn map2_into(out: &mut [f64], a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64 + Sync + Send) {
    use rayon::prelude::*;
    assert!(out.len() == a.len() && b.len() == a.len());
    let g = |(o, (x, y)): (&mut f64, (&f64, &f64))| *o = f(*x, *y);
    if a.len() > 1 << 15 {
        out.par_iter_mut().zip(a.par_iter().zip(b)).for_each(g);
    } else {
        out.iter_mut().zip(a.iter().zip(b)).for_each(g);
    }
}

/// `out = a ⊙ b · s` (or with `a / b`) element-wise.
pub(super) fn scale_into(out: &mut [f64], a: &[f64], b: &[f64], s: f64, divide: bool) {
    map2_into(out, a, b, |x, d| if divide { x / d * s } else { x * d * s });
}

/// `out = a − b`.
pub(super) fn diff_into(out: &mut [f64], a: &[f64], b: &[f64]) {
    map2_into(out, a, b, |x, y| x - y);
}
