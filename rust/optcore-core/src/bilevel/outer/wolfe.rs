//! The strong-Wolfe line search of the L-BFGS outer loop, used where the problem evaluates
//! `f` and `x` has no bounds (as L-BFGS-B's line search, Moré–Thuente's conditions): a step
//! `t` is accepted when `F̂(x + t d) ≤ F̂(x) + c₁ t ĝᵀd` (or, below `F̂`'s rounding error, the
//! trapezoid estimate of the decrease passes the same test) and `|ĝ(x + t d)ᵀd| ≤ c₂ |ĝᵀd|`
//! (`c₂ = 0.9`). From `t = 1` the step grows (`t ← 4t`) while the slope stays steep and the
//! value keeps decreasing; once a bracket is found (a failed trial, a value that is not
//! lower, or a positive slope) it shrinks by safeguarded cubic interpolation on the values
//! and slopes at its ends (Nocedal & Wright, Algorithms 3.5 and 3.6).
//!
//! Backtracking on Armijo's test alone accepts any step that decreases `F̂` enough, also one
//! that stops far short of the minimiser along `d` or overshoots it with a steep positive
//! slope; the curvature condition makes the L-BFGS pairs describe the curvature along the
//! step, which is what L-BFGS-B's iteration counts come from.
//!
//! Failed trials are those of [`super::line_search`]: non-finite values or gradients, a lower
//! solve that missed its tolerance; they end the bracket on the right. When no trial passes,
//! the caller falls back to the backtracking search.

use super::{arc_point, Evaluator, Point, C1, CURV, MAX_EXTRAP, MAX_TRIALS};
use crate::bilevel::methods::Ctx;
use crate::error::{OptError, Result};
use crate::real::Real;

/// One evaluated step: the point, its step length, `F̂`, the slope `ĝᵀd` there, and the
/// lower-level step state the evaluation left.
struct Trial<T> {
    p: Point<T>,
    t: f64,
    f: f64,
    s: f64,
    state: (f64, Vec<T>),
}

/// `x + t d` evaluated warm-started from `from`; `None` for a failed trial.
fn trial<T: Real>(
    c: &mut Ctx<'_, T>,
    ev: &Evaluator<'_, T>,
    cur: &Point<T>,
    d: &[f64],
    (t, eta): (f64, f64),
    from: &Point<T>,
) -> Result<Option<Trial<T>>> {
    let (xt, _, _) = arc_point(cur, d, t, &None);
    match ev.at(c, xt, from, eta) {
        Ok(n)
            if n.g.iter().all(|e| e.is_finite())
                && n.fval.is_finite()
                && (n.res <= ev.trusted_residual(eta, cur.res) || n.res.is_nan()) =>
        {
            let s: f64 = n.g.iter().zip(d).map(|(a, b)| a * b).sum();
            let f = n.fval;
            Ok(Some(Trial { p: n, t, f, s, state: (c.alpha, c.track.clone()) }))
        }
        Ok(_) | Err(OptError::Numerical(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The minimiser of the cubic through `(ta, fa, sa)` and `(tb, fb, sb)` (values and
/// slopes), `None` where it does not exist.
fn cubic_min(ta: f64, fa: f64, sa: f64, tb: f64, fb: f64, sb: f64) -> Option<f64> {
    let d1 = sa + sb - 3.0 * (fa - fb) / (ta - tb);
    let disc = d1 * d1 - sa * sb;
    if disc.is_nan() || disc < 0.0 {
        return None;
    }
    let d2 = (tb - ta).signum() * disc.sqrt();
    let t = tb - (tb - ta) * (sb + d2 - d1) / (sb - sa + 2.0 * d2);
    t.is_finite().then_some(t)
}

/// The search (module docs); `None` when `d` is not a descent direction or no trial passes.
pub(super) fn wolfe_search<T: Real>(
    c: &mut Ctx<'_, T>,
    ev: &Evaluator<'_, T>,
    cur: &Point<T>,
    d: &[f64],
    eta: f64,
) -> Result<Option<(Point<T>, f64)>> {
    let d0: f64 = cur.g.iter().zip(d).map(|(a, b)| a * b).sum();
    if d0.is_nan() || d0 >= 0.0 {
        return Ok(None);
    }
    let f0 = cur.fval;
    let kept = (c.alpha, c.track.clone());
    // The sufficient-decrease test (module docs).
    let sufficient = |tr: &Trial<T>| {
        let df = tr.f - f0;
        let rounding = 100.0 * f64::EPSILON * (f0.abs() + tr.f.abs());
        df <= C1 * tr.t * d0 || (df.abs() <= rounding && 0.5 * (d0 + tr.s) <= C1 * d0)
    };
    // `lo`: the best trial that passed the sufficient-decrease test (`None`: the start point);
    // `hi`: the other end of the bracket as (t, F̂, slope), NaN values for a failed trial.
    let mut lo: Option<Trial<T>> = None;
    let mut hi: Option<(f64, f64, f64)> = None;
    let mut t = 1.0f64;
    let mut grown = 0;
    for _ in 0..MAX_TRIALS {
        let from = lo.as_ref().map_or(cur, |l| &l.p);
        let tr = trial(c, ev, cur, d, (t, eta), from)?;
        let (t_lo, f_lo, s_lo) = lo.as_ref().map_or((0.0, f0, d0), |l| (l.t, l.f, l.s));
        match tr {
            Some(tr) if sufficient(&tr) && (lo.is_none() || tr.f < f_lo) => {
                if tr.s.abs() <= -CURV * d0 {
                    c.alpha = tr.state.0;
                    c.track = tr.state.1;
                    return Ok(Some((tr.p, tr.t)));
                }
                let overshoot = match hi {
                    Some((th, _, _)) => tr.s * (th - tr.t) >= 0.0,
                    None => tr.s > 0.0,
                };
                if overshoot {
                    hi = Some((t_lo, f_lo, s_lo));
                }
                lo = Some(tr);
            }
            Some(tr) => hi = Some((tr.t, tr.f, tr.s)),
            None => hi = Some((t, f64::NAN, f64::NAN)),
        }
        let (t_lo, f_lo, s_lo) = lo.as_ref().map_or((0.0, f0, d0), |l| (l.t, l.f, l.s));
        t = match hi {
            None => {
                grown += 1;
                if grown > MAX_EXTRAP {
                    break;
                }
                4.0 * t_lo
            }
            Some((th, fh, sh)) => {
                let (a, b) = (t_lo.min(th), t_lo.max(th));
                let w = b - a;
                if w <= 1e-12 * b {
                    break;
                }
                let guess = cubic_min(t_lo, f_lo, s_lo, th, fh, sh).unwrap_or(0.5 * (a + b));
                guess.clamp(a + 0.1 * w, b - 0.1 * w)
            }
        };
    }
    match lo {
        Some(l) => {
            c.alpha = l.state.0;
            c.track = l.state.1;
            Ok(Some((l.p, l.t)))
        }
        None => {
            (c.alpha, c.track) = kept;
            Ok(None)
        }
    }
}
