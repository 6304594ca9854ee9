//! What every iterative solver shares: termination reasons, progress reports and observers
//! (argmin's split). A solver owns its state and loop; every `check_every` iterations it
//! hands a [`Report`] to an [`Observer`], which may stop the run.
//!
//! The binding implements [`Observer`] to re-take the GIL briefly, check for Ctrl-C and run
//! the user's Python callback; the core knows nothing of Python.

use std::time::{Duration, Instant};

/// Why a run ended. Maps one-to-one onto `OptimizeResult.status` (see [`Termination::status`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Termination {
    /// The stopping criterion holds on the returned point.
    Converged,
    /// `maxiter` (or another budget) was reached first.
    MaxIter,
    /// Infeasibility was detected (LP: primal infeasible).
    Infeasible,
    /// Unboundedness was detected (LP: dual infeasible).
    Unbounded,
    /// A breakdown the method cannot recover from; the message says what and what to try.
    Numerical(String),
    /// The observer asked to stop (Python: the callback raised `StopIteration`).
    Stopped,
    /// The observer aborted the run (Ctrl-C, or the callback raised): nothing is returned,
    /// the binding re-raises its pending error.
    Aborted,
}

impl Termination {
    /// The project's status codes: 0 converged, 1 limit, 2 infeasible, 3 unbounded,
    /// 4 numerical, 99 stopped by the callback (-1 for an aborted run, never shown to users).
    pub fn status(&self) -> i32 {
        match self {
            Termination::Converged => 0,
            Termination::MaxIter => 1,
            Termination::Infeasible => 2,
            Termination::Unbounded => 3,
            Termination::Numerical(_) => 4,
            Termination::Stopped => 99,
            Termination::Aborted => -1,
        }
    }
}

/// What an observer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Stop and return the current iterate (status 99).
    Stop,
    /// Stop and return nothing (the observer holds an error to raise).
    Abort,
}

/// A snapshot of a run, handed to observers (built only when an observer asks for it).
pub struct Report<T> {
    pub nit: usize,
    /// The solver's convergence measure (OT: the L1 marginal error of the current plan).
    pub error: f64,
    /// Named state vectors (OT: `f`, `g`).
    pub vectors: Vec<(&'static str, Vec<T>)>,
    /// Named scalars (e.g. the current regularisation in ε-scaling).
    pub scalars: Vec<(&'static str, f64)>,
}

/// Called by solvers every iteration; see the module docs.
pub trait Observer<T>: Send {
    /// `report` builds the snapshot lazily: an implementation that has nothing to do this
    /// iteration (see [`Cadence`]) does not pay for it.
    fn observe(&mut self, nit: usize, report: &dyn Fn() -> Report<T>) -> Control;

    /// Whether the run has been interrupted (Ctrl-C), asked *within* one long iteration (between
    /// groups of rows) so that an interrupt is honoured within a fraction of a second even when
    /// an iteration takes seconds. An implementation throttles itself; the default never
    /// interrupts.
    fn interrupted(&mut self) -> bool {
        false
    }
}

/// An observer that never stops a run.
pub struct NoObserver;
impl<T> Observer<T> for NoObserver {
    fn observe(&mut self, _nit: usize, _report: &dyn Fn() -> Report<T>) -> Control {
        Control::Continue
    }
}

/// What an observer should do at an iteration (see [`Cadence::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing this iteration.
    Nothing,
    /// Only check for interrupts (a long time has passed since the last check).
    Interrupts,
    /// The full check: interrupts and the user's callback (every `check_every` iterations).
    Callback,
}

/// When an observer acts: the callback every `check_every` iterations, and an interrupt check
/// whenever `max_gap` has passed since the last one, so that Ctrl-C is honoured within a
/// fraction of a second even when `check_every` iterations take long.
pub struct Cadence {
    check_every: usize,
    max_gap: Duration,
    last: Instant,
}

impl Cadence {
    pub fn new(check_every: usize) -> Self {
        Cadence { check_every: check_every.max(1), max_gap: Duration::from_millis(200), last: Instant::now() }
    }
    pub fn poll(&mut self, nit: usize) -> Due {
        let now = Instant::now();
        let due = if nit % self.check_every == 0 {
            Due::Callback
        } else if now.duration_since(self.last) >= self.max_gap {
            Due::Interrupts
        } else {
            return Due::Nothing;
        };
        self.last = now;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_calls_back_every_check_every() {
        let mut c = Cadence::new(5);
        let due: Vec<_> = (0..11).map(|k| c.poll(k) == Due::Callback).collect();
        assert_eq!(due, [true, false, false, false, false, true, false, false, false, false, true]);
    }

    #[test]
    fn status_codes_follow_design() {
        assert_eq!(Termination::Converged.status(), 0);
        assert_eq!(Termination::MaxIter.status(), 1);
        assert_eq!(Termination::Numerical("x".into()).status(), 4);
        assert_eq!(Termination::Stopped.status(), 99);
    }
}
