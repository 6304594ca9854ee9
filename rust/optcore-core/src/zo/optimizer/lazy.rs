//! Where a gradient method keeps its best point and the adaptive step's previous iterate,
//! so that an iteration holds at most two d-vectors besides the point handed to `fun`.
//!
//! The best point is a point of some batch: it is kept as what regenerates it ([`Seed`]: the
//! batch's iteration, the direction, the step along it, whether it was clipped) on top of the
//! iterate the batch was centred at. That center is the current iterate ([`Best::AtX`]) or
//! the *anchor*, an older iterate kept for it ([`Best::AtAnchor`]); a best point of a batch
//! whose center was taken back is the anchor plus that rejected step (`branch`).
//!
//! The previous iterate is not kept either: it is the anchor followed by the accepted steps
//! since, but for the last (`chain`, each an estimate's scalars and its step size; the last
//! step is `last`), so the step back recomputes it by replaying them with the very arithmetic
//! of the step (a plain or sign update keeps no vectors, so a step is a function of the
//! iterate, the estimate's scalars and `lr`). When the best point improves in a batch, the
//! anchor moves to that batch's center at the next step (a copy made during the step's
//! pass), so the chain is usually empty and the step back a copy. Replays are paid from a
//! budget of [`REPLAY_RATE`] passes per iteration; a step that would make a longer chain than
//! the budget pays for, and the updates that cannot be replayed (heavy ball, AdaMM: their
//! step also depends on vectors that change) or have large estimates (CGE's coordinates),
//! instead materialise the best point and keep the previous iterate (the classic four
//! vectors).
//!
//! Every point, iterate and value is the same as with the materialised vectors (bit for bit).

use super::stream::{gen_point, replay, Dir, Estimate, CHUNK};
use super::{Method, Step, Update, Zo};
use crate::alloc::try_filled;
use crate::error::Result;
use crate::real::Real;
use crate::zo::estimate::{Directions, Estimator};

/// Replay passes earned per iteration (an iteration's own work is about two passes: the
/// batch's directions and the step's), and the most that can be saved up (a run starts with
/// that much).
pub(super) const REPLAY_RATE: f64 = 0.25;
pub(super) const REPLAY_SAVINGS: f64 = 32.0;

/// A point of a batch as what regenerates it from the batch's center.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Seed {
    pub dir: Dir,
    /// The signed step along the direction.
    pub h: f64,
    /// Clipped onto the box.
    pub clip: bool,
    /// The center itself.
    pub centre: bool,
}

/// One accepted (or rejected) step: `x ← T(P(x − lr dir(e)))`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Replay {
    pub e: Estimate,
    pub lr: f64,
}

/// The best point (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Best<T> {
    Dense(Vec<T>),
    AtX(Seed),
    AtAnchor(Seed, Option<Box<Replay>>),
}

impl<T> Best<T> {
    /// The seed of a best point on the iterate.
    fn clone_seed(&self) -> Option<Seed> {
        match self {
            Best::AtX(s) => Some(*s),
            _ => None,
        }
    }
}

/// Which vector the step's pass copies the iterate into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    Nothing,
    Anchor,
    Prev,
}

fn buffer<T: Real>(v: Vec<T>, d: usize, what: &str) -> Result<Vec<T>> {
    if v.len() == d {
        Ok(v)
    } else {
        drop(v);
        try_filled(d, T::zero(), what)
    }
}

impl<T: Real> Zo<T> {
    fn gradient_parts(&self) -> Option<(Estimator, Update)> {
        match self.o.method {
            Method::Gradient { est, update, .. } => Some((est, update)),
            _ => None,
        }
    }

    /// The step is a function of the iterate and the estimate's scalars (plain and sign
    /// updates), and an estimate is a few scalars (not CGE's coordinates).
    fn replayable(&self) -> bool {
        match self.gradient_parts() {
            Some((est, Update::Plain | Update::Sign)) => !matches!(est.dirs, Directions::Coordinates { .. }),
            _ => false,
        }
    }

    fn adaptive(&self) -> bool {
        matches!(self.o.step, Step::Adaptive { .. })
    }

    /// What regenerates point `i` of the current batch.
    pub(super) fn seed(&mut self, est: &Estimator, i: usize) -> Seed {
        if i == 0 {
            let dir = Dir { it: self.nit, i: 0, coord: 0, norm: f64::NAN };
            return Seed { dir, h: 0.0, clip: false, centre: true };
        }
        let (h, clip) = self.decide(est, i);
        let (j, _) = est.slot(i);
        Seed { dir: Dir::of(self.nit, j, &self.coords, &self.norms), h, clip, centre: false }
    }

    /// Point `i` of the current batch is the new best point.
    pub(super) fn note_best(&mut self, est: &Estimator, i: usize) {
        let s = self.seed(est, i);
        self.best = Best::AtX(s);
    }

    /// One replay pass earned (see [`REPLAY_RATE`]).
    pub(super) fn earn_replays(&mut self) {
        self.credit = (self.credit + REPLAY_RATE).min(REPLAY_SAVINGS);
    }

    /// Writes the best point into `dst` (in place when `from_anchor`: `dst` holds the anchor).
    fn write_best(&self, dst: &mut [T], from_anchor: bool) {
        let Some((est, update)) = self.gradient_parts() else {
            if let Best::Dense(v) = &self.best {
                dst.copy_from_slice(v);
            }
            return;
        };
        let mut buf = vec![0.0; 2 * CHUNK];
        let b = (&self.o.lower[..], &self.o.upper[..]);
        match &self.best {
            Best::Dense(v) => dst.copy_from_slice(v),
            Best::AtX(s) => gen_point(&est, &self.rng, b, s, Some(&self.x), dst, &mut buf),
            Best::AtAnchor(s, branch) => {
                if !from_anchor {
                    dst.copy_from_slice(&self.anchor);
                }
                if let Some(r) = branch {
                    replay(&est, &self.rng, update, b, r, dst, &mut buf);
                }
                gen_point(&est, &self.rng, b, s, None, dst, &mut buf);
            }
        }
    }

    /// The best point as a new vector.
    pub(super) fn best_point(&self) -> Result<Vec<T>> {
        if let Best::Dense(v) = &self.best {
            let mut out = crate::alloc::try_with_capacity(v.len(), "the best point")?;
            out.extend_from_slice(v);
            return Ok(out);
        }
        let mut out = try_filled(self.d, T::zero(), "the best point")?;
        self.write_best(&mut out, false);
        Ok(out)
    }

    /// Moves the best point out (generated in place in the anchor when it is there).
    pub(super) fn take_best(&mut self) -> Result<Vec<T>> {
        let out = match &self.best {
            Best::Dense(_) => match std::mem::replace(&mut self.best, Best::Dense(Vec::new())) {
                Best::Dense(v) => v,
                _ => unreachable!(),
            },
            Best::AtAnchor(..) => {
                let mut a = std::mem::take(&mut self.anchor);
                self.write_best(&mut a, true);
                a
            }
            Best::AtX(_) => self.best_point()?,
        };
        self.best = Best::Dense(Vec::new());
        self.anchor = Vec::new();
        self.prev = Vec::new();
        self.chain.clear();
        Ok(out)
    }

    /// Turns the best point into a vector in the anchor's place (the anchor is not needed
    /// afterwards).
    fn materialise_in_anchor(&mut self) {
        let mut a = std::mem::take(&mut self.anchor);
        self.write_best(&mut a, true);
        self.best = Best::Dense(a);
        self.chain.clear();
    }

    /// The iterate is the previous iterate (a failed estimate kept it in place): the last step
    /// joins the chain (it is dropped from `last`), or the best point becomes a vector when
    /// steps cannot be replayed.
    pub(super) fn stay(&mut self) {
        if !self.prev_is_x && self.prev.is_empty() && matches!(self.best, Best::AtAnchor(..)) {
            match self.last.take() {
                Some(e) if self.replayable() => self.chain.push(Replay { e, lr: self.last_lr }),
                last => {
                    self.last = last;
                    self.materialise_in_anchor();
                }
            }
        }
        self.prev_is_x = true;
        self.prev = Vec::new();
    }

    /// Arranges the vectors before an accepted step (see the module docs); returns where the
    /// step's pass copies the iterate.
    pub(super) fn before_step(&mut self) -> Result<Keep> {
        let adaptive = self.adaptive();
        let keep = match &self.best {
            // The best point's center moves on: it becomes the anchor.
            Best::AtX(_) => Keep::Anchor,
            Best::AtAnchor(..) | Best::Dense(_) if !adaptive => Keep::Nothing,
            Best::AtAnchor(..) if self.chain_allowed() => Keep::Nothing,
            Best::AtAnchor(..) => {
                self.materialise_in_anchor();
                Keep::Prev
            }
            Best::Dense(_) => Keep::Prev,
        };
        match keep {
            Keep::Anchor => {
                self.prev = Vec::new();
                self.chain.clear();
                self.anchor = buffer(std::mem::take(&mut self.anchor), self.d, "the previous iterate")?;
            }
            Keep::Prev => self.prev = buffer(std::mem::take(&mut self.prev), self.d, "the previous iterate")?,
            Keep::Nothing => {}
        }
        Ok(keep)
    }

    /// Whether the step may keep the anchor: the last step joins the chain (unless there was
    /// none since the step back) and the budget pays for replaying the chain.
    fn chain_allowed(&self) -> bool {
        self.prev_is_x || (self.replayable() && (self.chain.len() + 1) as f64 <= self.credit)
    }

    /// The vector [`Keep`] names, taken out for the step's pass (empty: none).
    pub(super) fn kept(&mut self, keep: Keep) -> Vec<T> {
        match keep {
            Keep::Nothing => Vec::new(),
            Keep::Anchor => std::mem::take(&mut self.anchor),
            Keep::Prev => std::mem::take(&mut self.prev),
        }
    }

    /// Puts the kept vector back after a step (before `last` becomes the new step's) and
    /// moves the previous step into the chain.
    pub(super) fn after_step(&mut self, keep: Keep, kept: Vec<T>) {
        match keep {
            Keep::Anchor => {
                self.anchor = kept;
                if let Best::AtX(s) = self.best {
                    self.best = Best::AtAnchor(s, None);
                }
            }
            Keep::Prev => self.prev = kept,
            Keep::Nothing => {
                if self.adaptive() && !self.prev_is_x && matches!(self.best, Best::AtAnchor(..)) {
                    let e = self.last.take().expect("the last step");
                    self.chain.push(Replay { e, lr: self.last_lr });
                }
            }
        }
        self.prev_is_x = false;
    }

    /// The adaptive step's step back: the iterate becomes the previous iterate (see the module
    /// docs); a best point of the rejected center is kept as a branch from the anchor.
    pub(super) fn step_back(&mut self) -> Result<()> {
        if self.prev_is_x {
            return Ok(());
        }
        let replayable = self.replayable();
        // The rejected step (cloned only where it becomes a branch).
        let rejected = |z: &Self| z.last.clone().map(|e| Box::new(Replay { e, lr: z.last_lr }));
        if !self.prev.is_empty() {
            // The classic vectors: the previous iterate is kept.
            match self.best.clone_seed() {
                Some(s) if replayable => {
                    let r = rejected(self);
                    self.anchor = std::mem::take(&mut self.prev);
                    self.x.copy_from_slice(&self.anchor);
                    self.best = Best::AtAnchor(s, r);
                    self.chain.clear();
                }
                Some(_) => {
                    let b = self.best_point()?;
                    self.best = Best::Dense(b);
                    std::mem::swap(&mut self.x, &mut self.prev);
                    self.prev = Vec::new();
                }
                _ => {
                    std::mem::swap(&mut self.x, &mut self.prev);
                    self.prev = Vec::new();
                }
            }
            self.prev_is_x = true;
            return Ok(());
        }
        match self.best.clone_seed() {
            Some(s) if replayable => {
                let r = rejected(self);
                self.restore();
                if !self.chain.is_empty() {
                    self.anchor.copy_from_slice(&self.x);
                    self.chain.clear();
                }
                self.best = Best::AtAnchor(s, r);
            }
            Some(_) => {
                // Not replayable: the chain is empty, the previous iterate is the anchor.
                let b = self.best_point()?;
                self.best = Best::Dense(b);
                std::mem::swap(&mut self.x, &mut self.anchor);
                self.anchor = Vec::new();
                self.chain.clear();
            }
            _ => self.restore(),
        }
        self.prev_is_x = true;
        Ok(())
    }

    /// `x ← the anchor followed by the chain` (paid from the replay budget).
    fn restore(&mut self) {
        self.x.copy_from_slice(&self.anchor);
        if self.chain.is_empty() {
            return;
        }
        let (est, update) = self.gradient_parts().expect("a gradient method");
        let mut buf = std::mem::take(&mut self.scratch);
        let b = (&self.o.lower[..], &self.o.upper[..]);
        for r in &self.chain {
            replay(&est, &self.rng, update, b, r, &mut self.x, &mut buf);
        }
        self.scratch = buf;
        self.credit -= self.chain.len() as f64;
    }
}
