//! [`Zo::state_hash`]: the digest by which the seed transport's replicas are checked against
//! the coordinator's state.

use super::lazy::{Best, Replay, Seed};
use super::stream::Estimate;
use super::Zo;
use crate::real::Real;

/// A 64-bit FNV-1a style digest of words (not cryptographic: it detects replicas that drifted).
struct Digest(u64);

impl Digest {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }
    fn f64s(&mut self, v: &[f64]) {
        self.word(v.len() as u64);
        v.iter().for_each(|x| self.word(x.to_bits()));
    }
}

impl Digest {
    fn vector<T: Real>(&mut self, v: &[T]) {
        self.word(v.len() as u64);
        v.iter().for_each(|x| self.word(x.as_f64().to_bits()));
    }
    fn estimate(&mut self, e: &Estimate) {
        self.word(e.it);
        self.f64s(&e.c);
        self.f64s(&e.norms);
        self.word(e.coords.len() as u64);
        e.coords.iter().for_each(|&j| self.word(j as u64));
        self.word(e.scale.to_bits());
        self.word(e.pert.unwrap_or(f64::NAN).to_bits());
    }
    fn replay(&mut self, r: &Replay) {
        self.estimate(&r.e);
        self.word(r.lr.to_bits());
    }
    fn seed(&mut self, s: &Seed) {
        for w in [s.dir.it, s.dir.i as u64, s.dir.coord as u64, s.dir.norm.to_bits(), s.h.to_bits()] {
            self.word(w);
        }
        self.word(u64::from(s.clip) | (u64::from(s.centre) << 1));
    }
}

impl<T: Real> Zo<T> {
    /// A digest of everything a tell reads or writes (iterate, anchor, previous iterate, the
    /// best point's seed, estimate's scalars, moments, step size, counters): two states with
    /// the same options that told the same values have the same digest, and a replica that
    /// drifted (a lost, corrupted or differently computed update) almost surely has another.
    pub fn state_hash(&self) -> u64 {
        let mut h = Digest(0xcbf2_9ce4_8422_2325);
        for v in [&self.x, &self.anchor, &self.prev] {
            h.vector(v);
        }
        match &self.best {
            Best::Dense(v) => {
                h.word(1);
                h.vector(v);
            }
            Best::AtX(s) => {
                h.word(2);
                h.seed(s);
            }
            Best::AtAnchor(s, branch) => {
                h.word(3);
                h.seed(s);
                match branch {
                    Some(r) => h.replay(r),
                    None => h.word(u64::MAX),
                }
            }
        }
        h.word(self.chain.len() as u64);
        self.chain.iter().for_each(|r| h.replay(r));
        for v in [&self.g, &self.m1, &self.v2, &self.vhat, &self.parts] {
            h.f64s(v);
        }
        // The last estimate, as the scalars it is regenerated from.
        match &self.last {
            Some(e) => h.estimate(e),
            None => h.word(u64::MAX),
        }
        let r = self.radius.unwrap_or(f64::NAN);
        for w in [self.lr, self.f_prev, self.best_f, self.sigma_now, r, self.credit, self.last_lr] {
            h.word(w.to_bits());
        }
        for w in [self.nit, self.nfev as u64, self.small_moves as u64, self.failures as u64, self.prev_is_x as u64] {
            h.word(w);
        }
        h.0
    }
}
