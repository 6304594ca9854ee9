//! [`Zo::state_hash`]: the digest by which the seed transport's replicas are checked against
//! the coordinator's state.

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

impl<T: Real> Zo<T> {
    /// A digest of everything a tell reads or writes (iterate, previous iterate, estimate's scalars,
    /// moments, step size, counters): two states with the same options that told the same
    /// values have the same digest, and a replica that drifted (a lost, corrupted or
    /// differently computed update) almost surely has another.
    pub fn state_hash(&self) -> u64 {
        let mut h = Digest(0xcbf2_9ce4_8422_2325);
        for v in [&self.x, &self.x_prev, &self.best_x] {
            h.word(v.len() as u64);
            v.iter().for_each(|x| h.word(x.as_f64().to_bits()));
        }
        for v in [&self.g, &self.m1, &self.v2, &self.vhat, &self.parts] {
            h.f64s(v);
        }
        // The last estimate, as the scalars it is regenerated from.
        match &self.last {
            Some(e) => {
                h.word(e.it);
                h.f64s(&e.c);
                h.f64s(&e.norms);
                h.word(e.coords.len() as u64);
                e.coords.iter().for_each(|&j| h.word(j as u64));
                h.word(e.scale.to_bits());
                h.word(e.pert.unwrap_or(f64::NAN).to_bits());
            }
            None => h.word(u64::MAX),
        }
        let r = self.radius.unwrap_or(f64::NAN);
        for w in [self.lr, self.f_prev, self.best_f, self.sigma_now, r] {
            h.word(w.to_bits());
        }
        for w in [self.nit, self.nfev as u64, self.small_moves as u64, self.failures as u64] {
            h.word(w);
        }
        h.0
    }
}
