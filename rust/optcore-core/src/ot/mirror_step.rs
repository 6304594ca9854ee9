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

/// The averaged output holds one pair of consecutive iterates in this many (see
/// [`AverageWeights`]), after the first [`DENSE_PAIRS`] pairs.
pub(super) const AVERAGE_EVERY: usize = 8;
/// The first this many pairs (32 iterations) hold one pair in [`AVERAGE_EVERY_FIRST`]: a short
/// run keeps more than its first iterate in the average (with one pair in eight from the
/// start, a run of 10 iterations would average `P_1` alone).
pub(super) const DENSE_PAIRS: usize = 16;
/// The spacing of the averaged pairs over the first [`DENSE_PAIRS`] pairs.
pub(super) const AVERAGE_EVERY_FIRST: usize = 4;

/// Whether the iterate `P_s` (`s >= 1`, made by iteration `s - 1`) is one the averaged output
/// holds: the pairs `(P_{2p}, P_{2p+1})` with `p ≡ 0 (mod AVERAGE_EVERY_FIRST)` for
/// `p < DENSE_PAIRS` and `p ≡ 0 (mod AVERAGE_EVERY)` after, i.e.
/// `P_1, P_8, P_9, P_16, P_17, P_24, P_25, P_32, P_33, P_48, P_49, P_64, …`. Each pair is one
/// column-feasible and one row-feasible iterate, which the stored-plan form of
/// `mirror_mult.rs` has at hand in one pass.
pub(super) fn averaged(s: usize) -> bool {
    let p = s / 2;
    let every = if p < DENSE_PAIRS { AVERAGE_EVERY_FIRST } else { AVERAGE_EVERY };
    s >= 1 && p % every == 0
}

/// The weights of the averaged output
/// `P̄_T = Σ_{s ∈ A, s <= T} w_s P_s / Σ_{s ∈ A, s <= T} w_s`, over the iterates `A` of
/// [`averaged`]: `w_s` is the sum of the steps `η_{s'-1}` of the iterates `s'` of the parity of
/// `s` (the same scaling: rows or columns) since the previous averaged one, `s' ∈ (s - 2 d, s]`
/// with `d` the spacing of the pairs there (`w_1 = η_0`, `w_8 = η_1 + η_3 + η_5 + η_7`,
/// `w_9 = η_2 + η_4 + η_6 + η_8`, …, `w_48 = η_33 + η_35 + … + η_47`). Each averaged iterate
/// stands for the iterates of its scaling since the last one held; the weights of every
/// iterate up to the last averaged pair are all there.
///
/// Why it keeps the paper's rate. The paper's average `Σ_t η_t P_{t+1} / Σ_t η_t` satisfies
/// `F(P̄) - F* <= (D + c L² Σ_t η_t²) / Σ_t η_t` (mirror descent: `D = KL(P* | P_0)`,
/// `L = ||∇F||_∞`), the `O(log T / sqrt T)` of the `"sqrt"` schedule. Here each `P_t` is
/// replaced by a later iterate `P_{r(t)}`, `r(t) - t < 2 AVERAGE_EVERY` (a window of constant
/// size: a window growing with `t` would lose the rate), and consecutive iterates differ in ℓ1
/// by `O(η_u L + δ_u)` (the mirror step, then a scaling that removes the marginal error `δ_u`
/// of the step), so `|F(P_{r(t)}) - F(P_t)| <= L Σ_{t <= u < r(t)} O(η_u L + δ_u)`.
/// Weighted by `η_t` (within a constant of `η_u` over such a window) and summed, the change is
/// `O(AVERAGE_EVERY (L² Σ η_u² + L Σ η_u δ_u))`, and `Σ η_u δ_u <= (Σ η_u²)^{1/2}
/// (Σ δ_u²)^{1/2}` with `Σ δ_u²` bounded by twice the divergence the scalings remove, itself
/// within the same mirror-descent bound: the same order as the bound's own second term. The
/// iterates after the last averaged pair (fewer than `2 AVERAGE_EVERY`) are left out; each of
/// their terms `η_t (F(P_t) - F*)` is at least `-O(L η_t (δ_t + η_t L))` (an iterate is that
/// close to a plan of `U(a, b)`, Altschuler et al.'s rounding), so leaving them out changes the
/// bound by the same order again. Convexity of `F` then bounds `F(P̄_T) - F*` at the same
/// `O(log T / sqrt T)`, and the marginal error of `P̄_T` likewise. In practice the averaged
/// pairs come out a little better than the average of every iterate (each one stands for
/// earlier, worse iterates): 11 to 21% lower suboptimality at T = 10 to 10⁴ on the point clouds
/// of `benches/results/ot_mirror.md` (the rates table, with and without noise; at every T at
/// least as low as with one pair in four throughout, the rule before), 40% on a 2 x 2 problem
/// at T = 500. The first pairs are held denser because a run of a few tens of iterations would
/// otherwise average almost only its first iterate. What it saves: the stored-plan pass reads
/// and writes the `n x m` average on one pass in `AVERAGE_EVERY` (one in
/// `AVERAGE_EVERY_FIRST` over the first 32 iterations) instead of on every pass.
#[derive(Clone, Debug, Default)]
pub(super) struct AverageWeights {
    /// Steps of the iterates not held yet, per parity of `s`.
    carry: [f64; 2],
    /// `Σ w_s` over the averaged iterates so far.
    sum: f64,
}

impl AverageWeights {
    /// The iterate `P_s`, made with the step `η`: its weight in the running mean
    /// (`w_s / Σ w`, the mean moving by that fraction towards `P_s`), or `None` when it is not
    /// one the average holds. Called for every iterate, in order.
    pub(super) fn push(&mut self, s: usize, eta: f64) -> Option<f64> {
        self.carry[s % 2] += eta;
        if !averaged(s) {
            return None;
        }
        let w = std::mem::take(&mut self.carry[s % 2]);
        self.sum += w;
        Some(w / self.sum)
    }
}

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

    #[test]
    fn the_average_holds_every_fourth_then_every_eighth_pair_with_the_steps_since_the_last() {
        let taken: Vec<usize> = (0..100).filter(|&s| averaged(s)).collect();
        assert_eq!(taken, [1, 8, 9, 16, 17, 24, 25, 32, 33, 48, 49, 64, 65, 80, 81, 96, 97]);
        // steps eta_t = t + 1: w_1 = 1, w_8 = 2 + 4 + 6 + 8, w_9 = 3 + 5 + 7 + 9
        let mut w = AverageWeights::default();
        let got: Vec<(usize, f64)> = (1..=9).filter_map(|s| w.push(s, s as f64).map(|f| (s, f))).collect();
        assert_eq!(got, [(1, 1.0), (8, 20.0 / 21.0), (9, 24.0 / 45.0)]);
        // past the first 16 pairs: w_48 = 34 + 36 + ... + 48 = 328 of 1 + 2 + ... + 33 + 328 = 889
        let mut w = AverageWeights::default();
        let last = (1..=48).filter_map(|s| w.push(s, s as f64).map(|f| (s, f))).last();
        assert_eq!(last, Some((48, 328.0 / 889.0)));
    }
}
