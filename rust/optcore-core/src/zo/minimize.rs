//! `optcore.zo.minimize`'s loop: [`solve`] drives a [`Zo`] state with an [`Objective`] and an
//! [`Observer`] until a limit, the target or the `xtol` criterion.

use super::functions::{Evaluation, Objective};
use super::optimizer::Zo;
use crate::error::{OptError, Result};
use crate::real::Real;
use crate::solver::{Control, Observer, Report, Termination};

/// When [`solve`] stops early.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No batch is started that would take the evaluation count past this.
    pub maxfev: usize,
    pub maxiter: u64,
    /// Converged once a value `<= f_target` was seen (`-inf`: never).
    pub f_target: f64,
    /// Move the best point and the last iterate out of the state into the [`Output`] instead
    /// of copying them (no third and fourth copy of `x` at the end): the state is finished,
    /// only its scalars stay meaningful.
    pub take: bool,
}

/// What [`solve`] returns.
pub struct Output<T> {
    /// The best point evaluated and its value.
    pub x: Vec<T>,
    pub fun: f64,
    /// The last iterate (CBO: consensus point).
    pub x_last: Vec<T>,
    pub nit: u64,
    pub nfev: usize,
    pub termination: Termination,
    pub history: Vec<(usize, f64)>,
    /// CBO: the run ended because the particles collapsed (status 1: no progress possible,
    /// not convergence).
    pub collapsed: bool,
}

fn output<T: Real>(zo: &mut Zo<T>, termination: Termination, take: bool) -> Result<Output<T>> {
    let collapsed = zo.collapsed() && matches!(termination, Termination::MaxIter);
    let fun = zo.best_value();
    let (x, x_last) = if take { zo.take_points()? } else { (zo.best().0, zo.x()) };
    Ok(Output {
        x,
        fun,
        x_last,
        nit: zo.nit(),
        nfev: zo.nfev(),
        termination,
        history: zo.history().to_vec(),
        collapsed,
    })
}

/// Runs `zo` on `f` until a limit, the target, the `xtol` criterion, a numerical breakdown or
/// the observer stops it. An error of the objective (e.g. a Python exception) is returned as
/// is; the observer sees `error` = best value so far and the vectors `x` (best point).
pub fn solve<T: Real>(
    zo: &mut Zo<T>,
    f: &dyn Objective<T>,
    lim: &Limits,
    obs: &mut dyn Observer<T>,
) -> Result<Output<T>> {
    if f.dim() != zo.dim() {
        return Err(OptError::InvalidInput(format!(
            "objective of dimension {} for x0 of length {}",
            f.dim(),
            zo.dim()
        )));
    }
    let mode = f.evaluation();
    // The batch of points is the larger buffer (batch × d): asking for it first fails fast,
    // before the values are zero-filled.
    if mode == Evaluation::Batch && zo.nit() < lim.maxiter && zo.nfev() + zo.batch_size() <= lim.maxfev {
        zo.ask()?;
    }
    if mode != Evaluation::Batch {
        // Without the batch, an iteration still holds O(batch) scalars (the values, their
        // recorded copy, the signs and the differences): reserving them once (untouched) fails
        // fast on a batch no memory holds, before anything is zero-filled.
        let n = crate::alloc::checked_len(zo.batch_size(), 4, "the values of a batch")?;
        drop(crate::alloc::try_with_capacity::<f64>(n, "the values of a batch")?);
    }
    let mut values = crate::alloc::try_zeroed::<f64>(zo.batch_size(), "the batch of values")?;
    let mut point = Vec::new();
    loop {
        if zo.nit() >= lim.maxiter || zo.nfev() + zo.batch_size() > lim.maxfev {
            return output(zo, Termination::MaxIter, lim.take);
        }
        match mode {
            Evaluation::Batch => f.eval(zo.ask()?, &mut values)?,
            Evaluation::PerPoint => {
                for i in 0..values.len() {
                    f.eval_filled(&mut |buf| zo.point(i, buf), &mut point, &mut values[i..i + 1])?;
                }
            }
            Evaluation::Values => {
                zo.begin()?;
                let z = &*zo;
                f.values(z.nit(), &|| z.state_hash(), &mut values)?;
            }
        }
        match zo.tell(&values) {
            Ok(()) => {}
            Err(OptError::Numerical(s)) => return output(zo, Termination::Numerical(s), lim.take),
            Err(e) => return Err(e),
        }
        let best = zo.best_value();
        if (best <= lim.f_target || zo.converged()) && best.is_finite() {
            return output(zo, Termination::Converged, lim.take);
        }
        if best == f64::NEG_INFINITY {
            let s = "the objective returned -inf (unbounded below, or a failed evaluation): no finite value to report";
            return output(zo, Termination::Numerical(s.into()), lim.take);
        }
        if zo.converged() {
            // The xtol criterion holds, but no finite value was seen: nothing converged.
            let s = format!(
                "the iterate stopped moving (xtol criterion) but every one of the {} values evaluated was +inf",
                zo.nfev()
            );
            return output(zo, Termination::Numerical(s), lim.take);
        }
        if zo.collapsed() {
            return output(zo, Termination::MaxIter, lim.take);
        }
        let nit = zo.nit() as usize;
        let c = obs.observe(nit, &|| {
            let (x, fun) = zo.best();
            Report { nit, error: fun, vectors: vec![("x", x)], scalars: vec![("nfev", zo.nfev() as f64)] }
        });
        match c {
            Control::Continue => {}
            Control::Stop => return output(zo, Termination::Stopped, lim.take),
            Control::Abort => return output(zo, Termination::Aborted, lim.take),
        }
    }
}
