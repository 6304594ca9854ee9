//! The hypergradient methods: AID (CG or Neumann), ITD, SOBA and BO-REP. Each estimates
//! `∇F(x) = ∇ₓf − ∇²ₓᵧg v` with `∇²ᵧᵧg v = ∇ᵧf` (AID, SOBA, BO-REP) or by differentiating
//! through unrolled lower-level steps (ITD), then steps on `x`.

use super::methods::{decay, end_of_iteration, outer_step_aid, project, Ctx, Run};
use super::oracle::{Phase, Probe};
use crate::alloc::{checked_len, try_with_capacity};
use crate::error::Result;
use crate::linalg::{axpy, norm};
use crate::real::Real;
use crate::solver::{Observer, Termination};

/// Hypergradient descent: each iteration, `step(c, x, y, α, s)` updates the lower level and
/// returns a hypergradient estimate and the last lower-level residual; then
/// `x ← P(x − β s ĝ)` with `s` the step decay.
pub(super) fn run_hgd<T: Real>(
    c: &mut Ctx<'_, T>,
    mut x: Vec<T>,
    mut y: Vec<T>,
    obs: &mut dyn Observer<T>,
    mut step: impl FnMut(&mut Ctx<'_, T>, &[T], &mut Vec<T>, f64, f64) -> Result<(Vec<T>, f64)>,
) -> Result<Run<T>> {
    let beta = outer_step_aid(c, &x, &y)?;
    let opts = c.opts;
    let (mut hg, mut res) = (f64::NAN, f64::NAN);
    let mut term = Termination::MaxIter;
    let mut nit = 0;
    for k in 0..opts.maxiter {
        let s = decay(k, opts.decay);
        let alpha = c.retune(&x, &y)?;
        let (g, r) = step(c, &x, &mut y, alpha, s)?;
        res = r;
        c.o.enter(Phase::Upper);
        hg = norm(&g);
        if hg <= opts.tol && res <= opts.tol && c.certify(k, &x, &y)? {
            term = Termination::Converged;
            break;
        }
        axpy(-beta * s, &g, &mut x);
        project(&opts.proj_x, &mut x)?;
        nit = k + 1;
        if let Some(t) = end_of_iteration(obs, nit, &x, &y, hg, f64::NAN) {
            term = t;
            break;
        }
    }
    Ok((x, y, hg, nit, beta, f64::NAN, term, res))
}

/// AID: `inner_steps` lower-level steps, then `H v = ∇ᵧf` by warm-started CG or Neumann.
///
/// CG's relative tolerance is `min(cg_tol, 1e-2 ‖ĝ_{k−1}‖/‖ĝ_0‖)` (an inexact-Newton forcing
/// term): the error of the hypergradient estimate stays a small fraction of it, so the
/// convergence test `‖ĝ‖ ≤ tol` is meaningful.
pub(super) fn run_aid<T: Real>(c: &mut Ctx<'_, T>, x: Vec<T>, y: Vec<T>, obs: &mut dyn Observer<T>) -> Result<Run<T>> {
    let mut v = vec![T::zero(); y.len()];
    let (mut g0, mut gprev) = (f64::NAN, f64::NAN);
    run_hgd(c, x, y, obs, |c, x, y, alpha, s| {
        if g0 > 0.0 {
            c.cg_rel = c.opts.cg_tol.min(1e-2 * gprev / g0);
        }
        c.o.enter(Phase::Lower);
        let mut res = f64::NAN;
        for _ in 0..c.opts.inner_steps {
            let bg = c.bg();
            res = c.lower_step(x, y, alpha * s, bg.as_deref())?;
        }
        c.o.enter(Phase::Linear);
        let (bf, bg) = (c.bf(), c.bg());
        let g = c.aid_hypergrad(x, y, &mut v, alpha, bf.as_deref(), bg.as_deref())?;
        gprev = norm(&g);
        if g0.is_nan() {
            g0 = gprev;
        }
        Ok((g, res))
    })
}

/// ITD: unroll `inner_steps` lower-level steps from the previous `y`, then the adjoint pass
/// `gₓ −= α ∇²ₓᵧg(yₜ) p`, `p −= α ∇²ᵧᵧg(yₜ) p` backwards over the stored trajectory.
pub(super) fn run_itd<T: Real>(c: &mut Ctx<'_, T>, x: Vec<T>, y: Vec<T>, obs: &mut dyn Observer<T>) -> Result<Run<T>> {
    run_hgd(c, x, y, obs, |c, x, y, alpha, s| {
        let t_steps = c.opts.inner_steps.max(1);
        itd_hypergrad(c, x, y, alpha * s, t_steps)
    })
}

/// ITD's hypergradient at `x`: `t_steps` lower-level steps of size `step` from `y` (which
/// ends at the last one), then the adjoint pass over the stored trajectory. Returns the
/// estimate and the last lower-level residual.
pub(super) fn itd_hypergrad<T: Real>(
    c: &mut Ctx<'_, T>,
    x: &[T],
    y: &mut [T],
    step: f64,
    t_steps: usize,
) -> Result<(Vec<T>, f64)> {
    let (dx, dy) = (x.len(), y.len());
    c.o.enter(Phase::Lower);
    let mut res = f64::NAN;
    // The trajectory (t_steps × d_y values) is sized by the user: allocated fallibly.
    let mut traj: Vec<T> = try_with_capacity(checked_len(t_steps, dy, "ITD's trajectory")?, "ITD's trajectory")?;
    let mut batches: Vec<Option<Vec<usize>>> = try_with_capacity(t_steps, "ITD's trajectory")?;
    for _ in 0..t_steps {
        let bg = c.bg();
        traj.extend_from_slice(y);
        batches.push(bg.clone());
        res = c.lower_step(x, y, step, bg.as_deref())?;
    }
    c.o.enter(Phase::Linear);
    let bf = c.bf();
    let mut gx = vec![T::zero(); dx];
    let mut p = vec![T::zero(); dy];
    c.o.grad_f(x, y, bf.as_deref(), &mut gx, &mut p)?;
    let mut hyy = vec![T::zero(); dy];
    let mut hxy = vec![T::zero(); dx];
    for (yt, bg) in traj.chunks(dy).zip(&batches).rev() {
        c.o.second(Probe { x, y: yt, v: &p, batch: bg.as_deref() }, Some(&mut hyy), Some(&mut hxy))?;
        axpy(-step, &hxy, &mut gx);
        axpy(-step, &hyy, &mut p);
    }
    Ok((gx, res))
}

pub(super) fn run_soba<T: Real>(
    c: &mut Ctx<'_, T>,
    mut x: Vec<T>,
    mut y: Vec<T>,
    obs: &mut dyn Observer<T>,
) -> Result<Run<T>> {
    let beta = outer_step_aid(c, &x, &y)?;
    let opts = c.opts;
    let (dx, dy) = (x.len(), y.len());
    let mut v = vec![T::zero(); dy];
    let (mut hg, mut res) = (f64::NAN, f64::NAN);
    let mut term = Termination::MaxIter;
    let mut nit = 0;
    let (mut gyg, mut gx, mut gy, mut hv, mut jv) =
        (vec![T::zero(); dy], vec![T::zero(); dx], vec![T::zero(); dy], vec![T::zero(); dy], vec![T::zero(); dx]);
    for k in 0..opts.maxiter {
        let s = decay(k, opts.decay);
        let alpha = c.retune(&x, &y)?;
        let (bf, bg) = (c.bf(), c.bg());
        c.o.enter(Phase::Lower);
        c.o.grad_g(&x, &y, bg.as_deref(), None, &mut gyg)?;
        res = norm(&gyg);
        c.o.enter(Phase::Linear);
        c.o.grad_f(&x, &y, bf.as_deref(), &mut gx, &mut gy)?;
        c.o.second(Probe { x: &x, y: &y, v: &v, batch: bg.as_deref() }, Some(&mut hv), Some(&mut jv))?;
        let vres: f64 = hv.iter().zip(&gy).map(|(a, b)| (a.as_f64() - b.as_f64()).powi(2)).sum::<f64>().sqrt();
        c.o.enter(Phase::Upper);
        axpy(-1.0, &jv, &mut gx);
        hg = norm(&gx);
        if hg <= opts.tol && res <= opts.tol && vres <= opts.tol && c.certify(k, &x, &y)? {
            term = Termination::Converged;
            break;
        }
        axpy(-alpha * s, &gyg, &mut y);
        for ((vi, &h), &b) in v.iter_mut().zip(&hv).zip(&gy) {
            *vi = T::from_f64(vi.as_f64() - alpha * s * (h.as_f64() - b.as_f64()));
        }
        axpy(-beta * s, &gx, &mut x);
        project(&opts.proj_x, &mut x)?;
        nit = k + 1;
        if let Some(t) = end_of_iteration(obs, nit, &x, &y, hg, f64::NAN) {
            term = t;
            break;
        }
    }
    Ok((x, y, hg, nit, beta, f64::NAN, term, res))
}

pub(super) fn run_borep<T: Real>(
    c: &mut Ctx<'_, T>,
    mut x: Vec<T>,
    mut y: Vec<T>,
    obs: &mut dyn Observer<T>,
) -> Result<Run<T>> {
    let beta = outer_step_aid(c, &x, &y)?;
    let opts = c.opts;
    let (dx, dy) = (x.len(), y.len());
    let mut z = vec![T::zero(); dy];
    if opts.maxiter > 0 {
        // z₀ ≈ H⁻¹∇ᵧf (CG): from z = 0 the first hypergradient would ignore the lower level.
        let mut gx = vec![T::zero(); dx];
        let mut gy = vec![T::zero(); dy];
        c.o.grad_f(&x, &y, None, &mut gx, &mut gy)?;
        let alpha = c.alpha;
        c.linear_solve(&x, &y, &gy, &mut z, alpha, None)?;
    }
    let mut m = vec![0.0f64; dx];
    let (mut hg, mut res) = (f64::NAN, f64::NAN);
    let mut term = Termination::MaxIter;
    let mut nit = 0;
    let mut eta0 = f64::NAN;
    let (mut gx, mut gy, mut hz, mut jz) =
        (vec![T::zero(); dx], vec![T::zero(); dy], vec![T::zero(); dy], vec![T::zero(); dx]);
    for k in 0..opts.maxiter {
        let alpha = c.retune(&x, &y)?;
        if k % opts.period.max(1) == 0 {
            c.o.enter(Phase::Lower);
            for _ in 0..opts.inner_steps {
                let bg = c.bg();
                res = c.lower_step(&x, &mut y, alpha, bg.as_deref())?;
            }
        }
        let (bf, bg) = (c.bf(), c.bg());
        c.o.enter(Phase::Linear);
        c.o.grad_f(&x, &y, bf.as_deref(), &mut gx, &mut gy)?;
        c.o.second(Probe { x: &x, y: &y, v: &z, batch: bg.as_deref() }, Some(&mut hz), Some(&mut jz))?;
        c.o.enter(Phase::Upper);
        axpy(-1.0, &jz, &mut gx);
        hg = norm(&gx);
        if hg <= opts.tol && res <= opts.tol && c.certify(k, &x, &y)? {
            term = Termination::Converged;
            break;
        }
        for ((zi, &h), &b) in z.iter_mut().zip(&hz).zip(&gy) {
            *zi = T::from_f64(zi.as_f64() - alpha * (h.as_f64() - b.as_f64()));
        }
        let zn = norm(&z);
        if zn > opts.radius {
            let sc = opts.radius / zn;
            z.iter_mut().for_each(|e| *e = T::from_f64(e.as_f64() * sc));
        }
        for (mi, &g) in m.iter_mut().zip(&gx) {
            *mi = opts.beta * *mi + (1.0 - opts.beta) * g.as_f64();
        }
        let mn = m.iter().map(|v| v * v).sum::<f64>().sqrt();
        if eta0.is_nan() && hg > 0.0 {
            // The first normalised step has the length of a gradient step of size β.
            eta0 = beta * hg;
        }
        let eta = eta0 * decay(k, opts.decay);
        if mn > 0.0 && eta > 0.0 {
            for (xi, &mi) in x.iter_mut().zip(&m) {
                *xi = T::from_f64(xi.as_f64() - eta * mi / mn);
            }
        }
        project(&opts.proj_x, &mut x)?;
        nit = k + 1;
        if let Some(t) = end_of_iteration(obs, nit, &x, &y, hg, f64::NAN) {
            term = t;
            break;
        }
    }
    Ok((x, y, hg, nit, beta, f64::NAN, term, res))
}
