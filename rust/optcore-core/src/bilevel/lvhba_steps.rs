//! LV-HBA's default steps, one per block, from the curvature of each block at the start point.
//!
//! Every constant is a 10-step power iteration (seeded by `seed`) on central differences of the
//! oracles at `(x0, y0)`; none needs a Hessian. With `‖A‖` the spectral norm:
//!
//! * `F_b = ‖(∇²f)_{b,:}‖`, `G_b = ‖(∇²g)_{b,:}‖` for the blocks `b ∈ {x, y}` (the rows of the
//!   Hessian that the block's gradient sees), `G_θ = ‖∇²ᵧᵧg‖`;
//! * `J_b = ‖J_b h‖` and `J = ‖(J_x h, J_y h)‖` of the constraint's Jacobian.
//!
//! Then `ρ = min(1, max_b(F_b/c₀ + G_b + [b = y]/γ₁)/J²)` (the augmented-Lagrangian term never
//! stiffer than the rest of the reformulation: a coupled constraint that sums hundreds of
//! entries has `J²` in the hundreds), and
//!
//! * `α_x = α_y = min_b ½ / (F_b/c₀ + G_b + [b = y]/γ₁ + ρ J_b J)`, at most `η_θ` (the lower
//!   copy moves at least as fast as the upper one). One step for both blocks: with `α_x` on its
//!   own bound (larger, `x` is only coupled) the paper's toy diverges for `c₀ ≥ 10`, `n = 100`
//!   (the `x`–`θ`–`λ` coupling of `−v_γ` through `J_xhᵀλ` is not in the row bounds). When the
//!   constraints do not involve `x` (`J_x = 0`) that coupling is absent and `x` takes its own
//!   `α_x = ½ / (F_x/c₀ + G_x)`: on the paper's SVM (`x` the log-weights of the samples,
//!   `G_x ∝ max e^{c_i}` ≈ 0.007 at the paper's start) it is 69 where the common step is 0.012,
//!   which leaves `x` where it started. Its curvature grows with `x` there, so this step is
//!   re-estimated at the current point every [`REFRESH`] iterations ([`refresh_x_step`]; it
//!   only decreases);
//! * `η_θ = ½ / (G_θ + 1/γ₁)`, the gradient step of the proximal lower problem;
//! * `η_λ = ½ / (γ₁ J² + 1/γ₂)`, the dual ascent step of `λ` (the proximal problem's dual
//!   curvature is at most `γ₁ J_y² + 1/γ₂`, the proximal term making it `1/γ₁`-strongly convex
//!   in `θ`; `J²` rather than `J_y²` also covers the drift of `x`, which `h(x, θ)` sees: with
//!   `J_y²` the toy above diverges for `c₀ ≥ 10`), and at most `η_θ`: the bound assumes `θ`
//!   settles faster than `λ` moves (on the SVM problem, whose `G_θ = ‖Z‖²` is in the
//!   thousands, a faster `λ` drives the constraint violation up);
//! * `τ = min(ρ max(α_x, α_y), ½/J²)`, the dual step of the multipliers `μ`.
//!
//! A given `step` sets `α_x = α_y`, a given `lower_step` sets `η_θ = η_λ`, a given `rho` sets `ρ`.

use super::{Run, State, Steps};
use crate::alloc::{try_collect, try_filled};
use crate::error::{OptError, Result};
use crate::real::Real;
use crate::rng::Rng;

/// What the estimates' buffers (sized by `d_x + d_y` or by the constraints) are called in a
/// memory error.
const WHAT: &str = "LV-HBA's step estimates";

/// The largest eigenvalue magnitude (from below) of a symmetric map by `probes` power
/// iterations from a random start.
fn power<R>(
    r: &mut R,
    rng: &mut Rng,
    n: usize,
    probes: usize,
    mut apply: impl FnMut(&mut R, &[f64]) -> Result<Vec<f64>>,
) -> Result<f64> {
    if n == 0 {
        return Ok(0.0);
    }
    let mut u: Vec<f64> = try_collect((0..n).map(|_| rng.normal()), WHAT)?;
    let mut l = 0.0;
    for _ in 0..probes {
        let un = u.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(un > 0.0 && un.is_finite()) {
            break;
        }
        u.iter_mut().for_each(|v| *v /= un);
        let w = apply(r, &u)?;
        l = w.iter().map(|v| v * v).sum::<f64>().sqrt();
        u = w;
    }
    Ok(l)
}

/// `(x + ε v_x, y + ε v_y, x − ε v_x, y − ε v_y, ε)`.
type FdPoints<T> = (Vec<T>, Vec<T>, Vec<T>, Vec<T>, f64);

/// `(x, y) ± ε v` for a joint direction `v` (length `d_x + d_y`), with the central-difference
/// step `ε = ε_mach^{1/3} (1 + ‖(x, y)‖) / ‖v‖`; returns the points and `ε`.
fn fd_points<T: Real>(x: &[T], y: &[T], v: &[f64]) -> Result<FdPoints<T>> {
    let nrm = x.iter().chain(y).map(|e| e.as_f64().powi(2)).sum::<f64>().sqrt();
    let vn = v.iter().map(|e| e * e).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    let eps = T::epsilon().as_f64().cbrt() * (1.0 + nrm) / vn;
    let dx = x.len();
    let shift = |a: &[T], off: usize, sgn: f64| -> Result<Vec<T>> {
        try_collect(a.iter().enumerate().map(|(i, e)| T::from_f64(e.as_f64() + sgn * eps * v[off + i])), WHAT)
    };
    Ok((shift(x, 0, 1.0)?, shift(y, dx, 1.0)?, shift(x, 0, -1.0)?, shift(y, dx, -1.0)?, eps))
}

/// A block of the joint vector `(x, y)`: `[lo, hi)`.
type Block = (usize, usize);

/// `v` restricted to `b` (zero elsewhere).
fn mask(v: &[f64], b: Block) -> Result<Vec<f64>> {
    try_collect(v.iter().enumerate().map(|(i, &e)| if i >= b.0 && i < b.1 { e } else { 0.0 }), WHAT)
}

/// `H v` by central differences of `grad_f` (`upper`) or `grad_g` at `(x, y)`.
fn hvp<T: Real>(r: &mut Run<'_, T>, x: &[T], y: &[T], v: &[f64], upper: bool) -> Result<Vec<f64>> {
    let mut out = try_filled(v.len(), 0.0, WHAT)?;
    if v.iter().all(|&e| e == 0.0) {
        return Ok(out);
    }
    let (xp, yp, xm, ym, eps) = fd_points(x, y, v)?;
    for (pt, sgn) in [((&xp, &yp), 1.0), ((&xm, &ym), -1.0)] {
        if upper {
            r.counts.grad_f += 1;
            r.p.grad_f(pt.0, pt.1, &mut r.gx, &mut r.gy)?;
            super::finite("grad_f", &r.gx)?;
            super::finite("grad_f", &r.gy)?;
        } else {
            r.grad_g(pt.0, pt.1)?;
        }
        for (o, g) in out.iter_mut().zip(r.gx.iter().chain(&r.gy)) {
            *o += sgn * g.as_f64() / (2.0 * eps);
        }
    }
    Ok(out)
}

/// `‖H_{b,:}‖ = √λ_max(P_b H² P_b)` of `∇²f` (`upper`) or `∇²g`.
fn hess_rows<T: Real>(r: &mut Run<'_, T>, rng: &mut Rng, s: &State<T>, b: Block, upper: bool) -> Result<f64> {
    let n = s.x.len() + s.y.len();
    let l = power(r, rng, n, 10, |r, u| {
        let w = hvp(r, &s.x, &s.y, &mask(u, b)?, upper)?;
        mask(&hvp(r, &s.x, &s.y, &w, upper)?, b)
    })?;
    Ok(l.sqrt())
}

/// `‖J_B‖²` for the union `B` of the blocks `bx`, `by` (top eigenvalue of `J_B J_Bᵀ`, by
/// central differences of `h` along `J_Bᵀw`).
fn jac_sq<T: Real>(r: &mut Run<'_, T>, rng: &mut Rng, s: &State<T>, bx: bool, by: bool) -> Result<f64> {
    let m = r.hv.len();
    power(r, rng, m, 10, |r, w| {
        let wt: Vec<T> = try_collect(w.iter().map(|&e| T::from_f64(e)), WHAT)?;
        r.jac(&s.x, &s.y, &wt)?;
        let keep = |on: bool, e: &T| if on { e.as_f64() } else { 0.0 };
        let (jx, jy) = (r.jx.iter().map(|e| keep(bx, e)), r.jy.iter().map(|e| keep(by, e)));
        let mut v: Vec<f64> = try_collect(jx, WHAT)?;
        v.extend(jy);
        if v.iter().all(|&e| e == 0.0) {
            return try_filled(m, 0.0, WHAT);
        }
        let (xp, yp, xm, ym, eps) = fd_points(&s.x, &s.y, &v)?;
        r.h(&xp, &yp)?;
        let hp: Vec<f64> = try_collect(r.hv.iter().map(|e| e.as_f64()), WHAT)?;
        r.h(&xm, &ym)?;
        try_collect(hp.iter().zip(&r.hv).map(|(a, b)| (a - b.as_f64()) / (2.0 * eps)), WHAT)
    })
}

/// Every how many iterations an own step of `x` is re-estimated.
pub(super) const REFRESH: usize = 100;

/// Re-estimates `x`'s own step `½ / (F_x/c₀ + G_x)` at the current point (after iteration
/// `nit`) and keeps the smaller of it and the current one.
pub(super) fn refresh_x_step<T: Real>(r: &mut Run<'_, T>, s: &State<T>, nit: usize) -> Result<()> {
    let mut rng = Rng::new(r.o.seed ^ (nit as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let bx = (0, s.x.len());
    let gx = hess_rows(r, &mut rng, s, bx, false)?;
    let fx = hess_rows(r, &mut rng, s, bx, true)?;
    let lx = fx / r.o.c0 + gx;
    if lx > 0.0 && lx.is_finite() {
        r.st.x = r.st.x.min(0.5 / lx);
    }
    Ok(())
}

/// The steps of the module docs at the start point `s`.
pub(super) fn default_steps<T: Real>(r: &mut Run<'_, T>, s: &State<T>) -> Result<Steps> {
    let mut rng = Rng::new(r.o.seed);
    let (dx, dy) = (s.x.len(), s.y.len());
    let (bx, by) = ((0, dx), (dx, dx + dy));
    let gx = hess_rows(r, &mut rng, s, bx, false)?;
    let gy = hess_rows(r, &mut rng, s, by, false)?;
    let fx = hess_rows(r, &mut rng, s, bx, true)?;
    let fy = hess_rows(r, &mut rng, s, by, true)?;
    let g_theta = power(r, &mut rng, dx + dy, 10, |r, u| mask(&hvp(r, &s.x, &s.y, &mask(u, by)?, false)?, by))?;
    let jx2 = jac_sq(r, &mut rng, s, true, false)?;
    let jy2 = jac_sq(r, &mut rng, s, false, true)?;
    let jj = jac_sq(r, &mut rng, s, true, true)?;
    let o = r.o;
    let (g1, g2) = (1.0 / o.gamma1, 1.0 / o.gamma2);
    // The curvature of each block without the augmented-Lagrangian term.
    let (lx, ly) = (fx / o.c0 + gx, fy / o.c0 + gy + g1);
    let rho = o.rho.unwrap_or_else(|| if jj > 0.0 { (lx.max(ly) / jj).min(1.0) } else { 1.0 });
    let eta_t = o.eta.unwrap_or(0.5 / (g_theta + g1));
    let eta_l = o.eta.unwrap_or((0.5 / (o.gamma1 * jj + g2)).min(eta_t));
    let (ax, ay) = match o.alpha {
        Some(a) => (a, a),
        None => {
            let j = jj.sqrt();
            let a = (0.5 / (ly + rho * jy2.sqrt() * j)).min(eta_t);
            if jx2 == 0.0 && lx > 0.0 {
                r.x_own = true;
                (0.5 / lx, a)
            } else {
                let lx = lx + rho * jx2.sqrt() * j;
                let a = if lx > 0.0 { a.min(0.5 / lx) } else { a };
                (a, a)
            }
        }
    };
    let dual = if jj > 0.0 { (rho * ax.max(ay)).min(0.5 / jj) } else { rho * ax.max(ay) };
    let st = Steps { x: ax, y: ay, theta: eta_t, lam: eta_l, rho, dual };
    let ok = [ax, ay, eta_t, eta_l, rho, dual].iter().all(|v| *v > 0.0 && v.is_finite());
    if !ok {
        return Err(OptError::Numerical(format!(
            "could not estimate the step sizes at x0, y0 (‖∇²g‖ rows ≈ ({gx}, {gy}), ‖∇²f‖ rows ≈ ({fx}, {fy}), \
             ‖J‖² ≈ {jj}; steps {st:?}); pass options['step'], options['lower_step'] and options['rho']"
        )));
    }
    Ok(st)
}
