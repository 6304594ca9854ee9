//! The step sizes of Mirror Sinkhorn, shared by the general loop and the linear fast paths.
//!
//! A constant step is one phase. The decreasing schedule is the paper's `η_0 / sqrt(t + 1)`
//! made piecewise constant over dyadic blocks of iterations `[0, 2)`, `[2, 4)`, `[4, 8)`, …:
//! on each block the step is the block's mean of `η_0 / sqrt(t + 1)`. The step sums
//! `S_t = Σ_{s<t} η_s` therefore equal the paper's at every block end, the steps stay
//! non-increasing and within a factor `sqrt(2)` of the paper's, and `Σ η_t²` is at most the
//! paper's (a mean squared is at most the mean of the squares): the mirror-descent bound
//! `(D + L² Σ η_t² / 2) / Σ η_t` behind the `O(log T / sqrt T)` rate is at least as good at
//! every block end and within a constant factor in between. Constant steps over blocks let
//! the linear objective's plan be updated by a stored `exp(-η M)` (see `mirror_mult.rs`),
//! rebuilt once per block (`log2 T` times), instead of one `exp` per entry and iteration.

use super::mirror::Step;

/// The schedule with its first step resolved; remembers the current block.
#[derive(Clone, Debug)]
pub(super) struct Schedule {
    step0: f64,
    /// `(start, end, step)` of the block last asked for.
    block: (usize, usize, f64),
}

impl Schedule {
    pub(super) fn new(step: Step, step0: f64) -> Self {
        let block = if matches!(step, Step::Sqrt(_)) { (0, 0, f64::NAN) } else { (0, usize::MAX, step0) };
        Schedule { step0, block }
    }

    /// The block `[start, end)` of constant step that holds iteration `t`, and its step.
    pub(super) fn block(&mut self, t: usize) -> (usize, usize, f64) {
        let (start, end, _) = self.block;
        if t >= start && t < end {
            return self.block;
        }
        let start = if t < 2 { 0 } else { 1usize << (usize::BITS - 1 - t.leading_zeros()) };
        let end = if t < 2 { 2 } else { start.saturating_mul(2) };
        let sum: f64 = (start..end).map(|s| 1.0 / ((s + 1) as f64).sqrt()).sum();
        self.block = (start, end, self.step0 * sum / (end - start) as f64);
        self.block
    }

    /// `η_t`.
    pub(super) fn eta(&mut self, t: usize) -> f64 {
        self.block(t).2
    }

    /// The largest step of the run (the first).
    pub(super) fn max_eta(&mut self) -> f64 {
        let keep = self.block;
        let e = self.eta(0);
        self.block = keep;
        e
    }

    /// `η_0` of the decreasing schedule, or the constant step.
    pub(super) fn step0(&self) -> f64 {
        self.step0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sums_match_the_paper_schedule() {
        let mut s = Schedule::new(Step::Sqrt(None), 0.7);
        let (mut ours, mut paper, mut sq_ours, mut sq_paper) = (0.0, 0.0, 0.0, 0.0);
        for t in 0..4096usize {
            let (e, p) = (s.eta(t), 0.7 / ((t + 1) as f64).sqrt());
            assert!(e <= p * 2f64.sqrt() && e >= p / 2f64.sqrt(), "t {t}: {e} vs {p}");
            if t > 0 {
                assert!(e <= s.eta(t - 1));
            }
            ours += e;
            paper += p;
            sq_ours += e * e;
            sq_paper += p * p;
            if (t + 1).is_power_of_two() && t > 0 {
                assert!((ours - paper).abs() <= 1e-12 * paper, "t {t}");
                assert!(sq_ours <= sq_paper);
            }
        }
        let mut c = Schedule::new(Step::Constant(0.3), 0.3);
        assert_eq!(c.block(12345), (0, usize::MAX, 0.3));
        assert_eq!(c.max_eta(), 0.3);
    }
}
