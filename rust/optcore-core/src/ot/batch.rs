//! Many independent problems of one size, solved by one call: a loop over the problems, each
//! solved exactly as on its own (same operations, same bits).

use super::scaling::{sinkhorn_scaling, ScalingOutput};
use super::sinkhorn::{sinkhorn_log, LogOptions, Problem, SinkhornOutput};
use super::sns::{sinkhorn_sns, SnsOptions, SnsOutput};
use crate::error::{OptError, Result};
use crate::real::Real;
use crate::solver::{Observer, Termination};

/// `count` problems stored back to back: `a` holds `count` (or one shared) weight vectors of
/// length `n`, `b` `count` blocks of `k` histograms of length `m`, `cost` `count` (or one shared)
/// `n x m` matrices.
#[derive(Clone, Copy)]
pub struct Batch<'a, T> {
    pub a: &'a [T],
    pub b: &'a [T],
    pub cost: &'a [T],
    pub n: usize,
    pub m: usize,
    pub k: usize,
    pub count: usize,
}

/// Warm-start potentials of a batch: `count * k * n` and `count * k * m` values.
pub type WarmStart<'a, T> = Option<(&'a [T], &'a [T])>;

impl<'a, T: Real> Batch<'a, T> {
    /// Checks that the arrays hold `count` (or one shared) problems of the stated size.
    pub fn validate(&self, x0: WarmStart<'_, T>) -> Result<()> {
        let (n, m, k, count) = (self.n, self.m, self.k, self.count);
        let fits = |len: usize, each: usize| len == each * count || (count > 0 && len == each);
        let ok = count > 0
            && fits(self.a.len(), n)
            && self.b.len() == count * k * m
            && fits(self.cost.len(), n * m)
            && x0.is_none_or(|(f, g)| f.len() == count * k * n && g.len() == count * k * m);
        if ok {
            Ok(())
        } else {
            Err(OptError::InvalidInput("inconsistent shapes of the batch's a, b, M and x0".into()))
        }
    }

    /// Problem `i`.
    pub fn problem(&self, i: usize) -> Problem<'a, T> {
        let (n, m, k) = (self.n, self.m, self.k);
        let pick = |s: &'a [T], each: usize| if s.len() == each { s } else { &s[i * each..(i + 1) * each] };
        Problem { a: pick(self.a, n), b: &self.b[i * k * m..(i + 1) * k * m], cost: pick(self.cost, n * m), n, m, k }
    }

    /// The warm start of problem `i`.
    fn x0(&self, x0: WarmStart<'a, T>, i: usize) -> (Option<&'a [T]>, Option<&'a [T]>) {
        let (kn, km) = (self.k * self.n, self.k * self.m);
        match x0 {
            Some((f, g)) => (Some(&f[i * kn..(i + 1) * kn]), Some(&g[i * km..(i + 1) * km])),
            None => (None, None),
        }
    }

    /// Solves every problem in order with `solve`; stops after a run that was aborted
    /// (an interrupt or an exception in the observer).
    fn each<O>(
        &self,
        x0: WarmStart<'a, T>,
        aborted: impl Fn(&O) -> bool,
        mut solve: impl FnMut(&Problem<'a, T>, Option<&'a [T]>, Option<&'a [T]>) -> Result<O>,
    ) -> Result<Vec<O>> {
        self.validate(x0)?;
        let mut out = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let (f0, g0) = self.x0(x0, i);
            let o = solve(&self.problem(i), f0, g0)?;
            let stop = aborted(&o);
            out.push(o);
            if stop {
                break;
            }
        }
        Ok(out)
    }
}

/// [`sinkhorn_log`] on every problem of `batch` (one target histogram each).
pub fn sinkhorn_log_batch<T: Real>(
    batch: &Batch<'_, T>,
    opts: &LogOptions,
    x0: WarmStart<'_, T>,
    obs: &mut dyn Observer<T>,
) -> Result<Vec<SinkhornOutput<T>>> {
    batch.each(
        x0,
        |o: &SinkhornOutput<T>| o.termination == Termination::Aborted,
        |p, f0, g0| sinkhorn_log(p, opts, f0, g0, obs),
    )
}

/// [`sinkhorn_sns`] on every problem of `batch` (one target histogram each).
pub fn sinkhorn_sns_batch<T: Real>(
    batch: &Batch<'_, T>,
    opts: &SnsOptions,
    x0: WarmStart<'_, T>,
    obs: &mut dyn Observer<T>,
) -> Result<Vec<SnsOutput<T>>> {
    batch.each(
        x0,
        |o: &SnsOutput<T>| o.termination == Termination::Aborted,
        |p, f0, g0| sinkhorn_sns(p, opts, f0, g0, obs),
    )
}

/// Options of the classic scaling solver.
#[derive(Clone, Debug)]
pub struct ScalingOptions {
    pub reg: f64,
    pub tol: f64,
    pub maxiter: usize,
}

/// [`sinkhorn_scaling`] on every problem of `batch` (`k` histograms each).
pub fn sinkhorn_scaling_batch<T: Real>(
    batch: &Batch<'_, T>,
    opts: &ScalingOptions,
    x0: WarmStart<'_, T>,
    obs: &mut dyn Observer<T>,
) -> Result<Vec<ScalingOutput<T>>> {
    batch.each(
        x0,
        |o: &ScalingOutput<T>| o.termination == Termination::Aborted,
        |p, f0, g0| sinkhorn_scaling(p, opts.reg, opts.tol, opts.maxiter, f0, g0, obs),
    )
}
