//! `minimize`: checks the starting point, estimates the lower-level step, refines `y0`, and
//! runs the method of `opts.method`.

use super::direct::{LowerSolve, FORCED_MAX_DY};
use super::methods::{at_start, project, Ctx, Method, Options, Outer, Output};
use super::oracle::{Oracle, Phase};
use super::{first_order, implicit, outer};
use crate::error::{OptError, Result};
use crate::real::Real;
use crate::solver::{Observer, Termination};

/// Runs `opts.method` from `(x0, y0)`.
pub fn minimize<T: Real>(
    oracle: &dyn Oracle<T>,
    x0: &[T],
    y0: &[T],
    opts: &Options<T>,
    obs: &mut dyn Observer<T>,
) -> Result<Output<T>> {
    let (dx, dy) = oracle.dims();
    if x0.len() != dx || y0.len() != dy {
        return Err(OptError::InvalidInput(format!(
            "x0 has {} entries and y0 {}; the problem has d_x = {dx}, d_y = {dy}",
            x0.len(),
            y0.len()
        )));
    }
    if opts.proj_y.is_some() && !matches!(opts.method, Method::F2sa | Method::Penalty) {
        return Err(OptError::InvalidInput(
            "a constrained lower level (project_y) is only supported by the first-order methods 'penalty' and 'f2sa'"
                .into(),
        ));
    }
    check_outer(opts, dx, dy)?;
    let mut c = Ctx::new(oracle, opts)?;
    let mut x = x0.to_vec();
    let mut y = y0.to_vec();
    project(&opts.proj_x, &mut x)?;
    project(&opts.proj_y, &mut y)?;
    c.o.enter(Phase::Setup);
    let lg = match opts.inner_step {
        Some(a) => 1.0 / a,
        None => c.lipschitz_g(&x, &y).map_err(at_start)?,
    };
    if !(lg > 0.0 && lg.is_finite()) {
        return Err(OptError::Numerical(format!(
            "could not estimate the lower-level smoothness at x0, y0 (‖∇²ᵧᵧg‖ estimate {lg} from grad_g \
             along y: its y-part does not change with y there, or the change is below the working \
             precision, e.g. float32 at a large x0); pass options['inner_step'], or start from a \
             smaller x0 or in float64"
        )));
    }
    let alpha = 1.0 / lg;
    c.alpha = alpha;
    let mut lower_res = f64::NAN;
    if opts.refine_steps > 0 {
        lower_res = c.solve_lower(&x, &mut y, alpha, 1e-8, opts.refine_steps).map_err(at_start)?;
    }
    let run = match opts.method {
        Method::Aid | Method::Itd | Method::Exact if opts.outer == Outer::Lbfgs => outer::run_lbfgs(&mut c, x, y, obs)?,
        Method::Exact => outer::run_exact_gd(&mut c, x, y, obs)?,
        Method::F2sa | Method::Penalty => first_order::run_f2sa(&mut c, x, y, obs)?,
        Method::Aid => implicit::run_aid(&mut c, x, y, obs)?,
        Method::Itd => implicit::run_itd(&mut c, x, y, obs)?,
        Method::Soba => implicit::run_soba(&mut c, x, y, obs)?,
        Method::Borep => implicit::run_borep(&mut c, x, y, obs)?,
    };
    let (x, y, hg, nit, beta, lam, mut term, res) = run;
    let _ = alpha;
    let mut lower_residual = if res.is_nan() { lower_res } else { res };
    let mut y = y;
    // ‖∇F‖ measured at the returned x (also when no iteration ran: maxiter = 0), unless the
    // run broke down or was aborted, or the lower level is constrained.
    let mut measured = false;
    let mut hypergrad_norm = hg;
    let ok = matches!(term, Termination::Converged | Termination::MaxIter | Termination::Stopped);
    if ok && c.measurable() && crate::linalg::all_finite(&x) && crate::linalg::all_finite(&y) {
        let (g, ys, r) = c.measure(&x, &y)?;
        hypergrad_norm = g;
        measured = true;
        y = ys;
        lower_residual = r;
        if matches!(term, Termination::Converged) && (g > opts.tol || g.is_nan()) {
            term = Termination::MaxIter; // unreachable in practice: certify measured the same point
        }
    }
    let fun = if matches!(term, Termination::Aborted) { f64::NAN } else { c.o.value_f(&x, &y).unwrap_or(f64::NAN) };
    let times = c.o.finish();
    Ok(Output {
        x,
        y,
        fun,
        hypergrad_norm,
        hypergrad_estimate: hg,
        measured,
        lower_residual,
        nit,
        counts: c.o.counts,
        times,
        inner_step: c.alpha,
        outer_step: beta,
        lam,
        termination: term,
        direct: c.direct,
    })
}

/// The L-BFGS outer loop's preconditions: a method with a hypergradient, full batches, bounds
/// (not a general projection) of the right length with `lo ≤ hi`.
fn check_outer<T: Real>(opts: &Options<T>, dx: usize, dy: usize) -> Result<()> {
    let bad = |m: &str| Err(OptError::InvalidInput(m.into()));
    if opts.outer == Outer::Lbfgs {
        if !matches!(opts.method, Method::Aid | Method::Itd | Method::Exact) {
            return bad("outer='lbfgs' needs a method with a hypergradient: 'aid', 'itd' or 'exact'");
        }
        if opts.batch_f > 0 || opts.batch_g > 0 {
            return bad("outer='lbfgs' uses full batches (minibatches need outer='gd')");
        }
        if opts.proj_x.is_some() {
            return bad("outer='lbfgs' supports bounds on x (bounds=...), not a general projection (project_x)");
        }
    }
    if opts.lower_solve == LowerSolve::Direct {
        if !(opts.outer == Outer::Lbfgs && matches!(opts.method, Method::Aid | Method::Exact)) {
            return bad("lower_solve='direct' applies to method 'aid' or 'exact' with outer='lbfgs'");
        }
        if dy > FORCED_MAX_DY {
            return Err(OptError::InvalidInput(format!(
                "lower_solve='direct' factors the d_y x d_y lower Hessian: d_y = {dy} is above {FORCED_MAX_DY}; \
                 use lower_solve='iterative' (or 'auto')"
            )));
        }
    }
    if let Some((lo, hi)) = &opts.bounds {
        if opts.outer != Outer::Lbfgs {
            return bad("bounds need outer='lbfgs' (with gradient steps, use options['project_x'])");
        }
        if lo.len() != dx || hi.len() != dx || lo.iter().zip(hi).any(|(l, h)| l > h || l.is_nan() || h.is_nan()) {
            return bad("bounds must give d_x pairs lo <= hi");
        }
    }
    Ok(())
}
