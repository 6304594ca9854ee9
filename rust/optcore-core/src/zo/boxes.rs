//! Box bounds in the dtype of a run: bounds rounded inwards to `T`, and the clip onto a box.

use crate::real::Real;

/// `b` rounded to `T` towards the inside of the box (up for a lower bound, down for an upper
/// one), so that clipping to the rounded bounds and then rounding to `T` stays in the box.
pub(super) fn inward<T: Real>(b: f64, lower: bool) -> f64 {
    let r = T::from_f64(b).as_f64();
    if r == b || !r.is_finite() || !b.is_finite() {
        return if r.is_finite() || !b.is_finite() { r } else { b };
    }
    // Only a narrower T (f32) rounds a finite f64 bound to another value: step it by one
    // ulp of f32 towards the inside.
    match (lower, r < b) {
        (true, true) => f32_step(r as f32, true) as f64,
        (false, false) => f32_step(r as f32, false) as f64,
        _ => r,
    }
}

/// The neighbour of the finite `r` towards `+inf` (`up`) or `-inf`.
fn f32_step(r: f32, up: bool) -> f32 {
    if r == 0.0 {
        let tiny = f32::from_bits(1);
        return if up { tiny } else { -tiny };
    }
    let bits = r.to_bits();
    f32::from_bits(if (r > 0.0) == up { bits + 1 } else { bits - 1 })
}

/// Bound `j` of a side of the box (`default`, an infinity, when the side is empty: no bounds).
#[inline(always)]
pub(super) fn side(v: &[f64], j: usize, default: f64) -> f64 {
    if v.is_empty() {
        default
    } else {
        v[j]
    }
}

/// Clips `x` onto `[lower, upper]` (empty sides: infinite bounds, which still map NaN to
/// `-inf` as `f64::max` does).
pub fn project(x: &mut [f64], lower: &[f64], upper: &[f64]) {
    if lower.is_empty() && upper.is_empty() {
        // `v.max(-inf).min(inf)`: every value unchanged but NaN, which becomes -inf.
        x.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = f64::NEG_INFINITY);
        return;
    }
    for ((v, &l), &u) in x.iter_mut().zip(lower).zip(upper) {
        *v = v.max(l).min(u);
    }
}
