//! The floating-point types the solvers are generic over, and a vectorisable `exp`.
//!
//! `f64::exp` is a libm call that the compiler cannot vectorise; the Sinkhorn kernels spend
//! most of their time in `exp`, so [`Real::fast_exp`] is a branch-free Cody–Waite range
//! reduction plus a Taylor polynomial (about 1 ulp on the range that matters: see the tests),
//! written so that LLVM turns a loop of them into SIMD code. [`Madd`] chooses between a
//! plain multiply-add and a fused one, so the same kernel can be compiled for CPUs with and
//! without FMA (see [`crate::ot::kernels`]).

use num_traits::Float;
use std::fmt::Debug;

/// Multiply-add policy: `a * b + c`, fused or not.
pub trait Madd: Copy + Send + Sync + 'static {
    fn madd<T: Real>(a: T, b: T, c: T) -> T;
}

/// `a * b + c` with two roundings (any x86-64 CPU).
#[derive(Clone, Copy)]
pub struct Unfused;
impl Madd for Unfused {
    #[inline(always)]
    fn madd<T: Real>(a: T, b: T, c: T) -> T {
        a * b + c
    }
}

/// `a * b + c` with one rounding; only used inside functions compiled with the `fma` feature,
/// where it is a single instruction (elsewhere it would be a slow libm call).
#[derive(Clone, Copy)]
pub struct Fused;
impl Madd for Fused {
    #[inline(always)]
    fn madd<T: Real>(a: T, b: T, c: T) -> T {
        a.mul_add(b, c)
    }
}

/// `f32` or `f64`.
pub trait Real: Float + Default + Debug + Send + Sync + 'static + std::iter::Sum {
    /// "float32" / "float64".
    const NAME: &'static str;
    /// Sums of `exp` terms inside `[SAFE_LO, SAFE_HI]` are trusted by the fast (stabilised)
    /// log-domain path; outside it the exact, max-shifted log-sum-exp is used.
    const SAFE_LO: f64;
    const SAFE_HI: f64;
    /// Below this argument `fast_exp` returns exactly 0.
    const EXP_MIN: Self;

    fn from_f64(x: f64) -> Self;
    fn as_f64(self) -> f64;
    /// `exp(x)`, vectorisable; exact 0 below [`Self::EXP_MIN`] (and for `-inf`).
    fn fast_exp<M: Madd>(self) -> Self;
}

impl Real for f64 {
    const NAME: &'static str = "float64";
    const SAFE_LO: f64 = 1e-280;
    const SAFE_HI: f64 = 1e280;
    const EXP_MIN: f64 = -708.0;

    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    // The ln 2 split is written with fdlibm's digits (the value is the nearest f64); max/min
    // rather than clamp: a NaN argument maps to the lower bound instead of propagating.
    #[allow(clippy::excessive_precision, clippy::manual_clamp)]
    fn fast_exp<M: Madd>(self) -> f64 {
        const LOG2E: f64 = std::f64::consts::LOG2_E;
        // 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
        const SHIFT: f64 = 6_755_399_441_055_744.0;
        const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
        const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
        let x = self;
        let xc = x.max(-708.0).min(709.0);
        let t = M::madd(xc, LOG2E, SHIFT);
        let k = t - SHIFT;
        let r = M::madd(k, -LN2_HI, xc);
        let r = M::madd(k, -LN2_LO, r);
        // Taylor polynomial of degree 12 on |r| <= ln2/2: truncation error < 2e-16.
        let mut p = 1.0 / 479_001_600.0;
        p = M::madd(p, r, 1.0 / 39_916_800.0);
        p = M::madd(p, r, 1.0 / 3_628_800.0);
        p = M::madd(p, r, 1.0 / 362_880.0);
        p = M::madd(p, r, 1.0 / 40_320.0);
        p = M::madd(p, r, 1.0 / 5_040.0);
        p = M::madd(p, r, 1.0 / 720.0);
        p = M::madd(p, r, 1.0 / 120.0);
        p = M::madd(p, r, 1.0 / 24.0);
        p = M::madd(p, r, 1.0 / 6.0);
        p = M::madd(p, r, 0.5);
        p = M::madd(p, r, 1.0);
        p = M::madd(p, r, 1.0);
        // 2^k from the integer in t's low bits (k in [-1021, 1023] after the clamp).
        let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
        let y = p * scale;
        if x < -708.0 {
            0.0
        } else {
            y
        }
    }
}

impl Real for f32 {
    const NAME: &'static str = "float32";
    const SAFE_LO: f64 = 1e-30;
    const SAFE_HI: f64 = 1e30;
    const EXP_MIN: f32 = -87.0;

    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    // As for f64: Cephes' digits for the ln 2 split, and max/min so that NaN maps to a bound.
    #[allow(clippy::excessive_precision, clippy::manual_clamp)]
    fn fast_exp<M: Madd>(self) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23
        const LN2_HI: f32 = 0.693_359_375;
        const LN2_LO: f32 = -2.121_944_4e-4;
        let x = self;
        let xc = x.max(-87.0).min(88.0);
        let t = M::madd(xc, LOG2E, SHIFT);
        let k = t - SHIFT;
        let r = M::madd(k, -LN2_HI, xc);
        let r = M::madd(k, -LN2_LO, r);
        // Degree 7 on |r| <= ln2/2: truncation error < 6e-9.
        let mut p = 1.0 / 5_040.0;
        p = M::madd(p, r, 1.0 / 720.0);
        p = M::madd(p, r, 1.0 / 120.0);
        p = M::madd(p, r, 1.0 / 24.0);
        p = M::madd(p, r, 1.0 / 6.0);
        p = M::madd(p, r, 0.5);
        p = M::madd(p, r, 1.0);
        p = M::madd(p, r, 1.0);
        let scale = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
        let y = p * scale;
        if x < -87.0 {
            0.0
        } else {
            y
        }
    }
}

/// Numerically stable `log(sum_j exp(x_j))` (the exact reference path and the tests use it).
/// `-inf` for an empty slice or one of all `-inf`.
pub fn logsumexp<T: Real>(x: &[T]) -> f64 {
    let mx = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v.as_f64()));
    if !mx.is_finite() {
        return mx;
    }
    let s: f64 = x.iter().map(|&v| (v.as_f64() - mx).exp()).sum();
    mx + s.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_rel_err<T: Real, M: Madd>(lo: f64, hi: f64, n: usize) -> f64 {
        (0..=n)
            .map(|i| {
                let x = lo + (hi - lo) * i as f64 / n as f64;
                let xt = T::from_f64(x);
                let exact = xt.as_f64().exp();
                let got = xt.fast_exp::<M>().as_f64();
                ((got - exact) / exact).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn fast_exp_f64_is_within_a_few_ulp() {
        assert!(max_rel_err::<f64, Unfused>(-700.0, 700.0, 200_001) < 4.0 * f64::EPSILON);
        assert!(max_rel_err::<f64, Fused>(-700.0, 700.0, 200_001) < 4.0 * f64::EPSILON);
        assert!(max_rel_err::<f64, Unfused>(-1.0, 1.0, 100_001) < 3.0 * f64::EPSILON);
    }

    #[test]
    fn fast_exp_f32_is_within_a_few_ulp() {
        assert!(max_rel_err::<f32, Unfused>(-80.0, 80.0, 200_001) < 4.0 * f32::EPSILON as f64);
        assert!(max_rel_err::<f32, Fused>(-80.0, 80.0, 200_001) < 4.0 * f32::EPSILON as f64);
    }

    #[test]
    fn fast_exp_edges() {
        assert_eq!(f64::NEG_INFINITY.fast_exp::<Unfused>(), 0.0);
        assert_eq!((-1e6f64).fast_exp::<Unfused>(), 0.0);
        assert_eq!(f32::NEG_INFINITY.fast_exp::<Unfused>(), 0.0);
        assert_eq!(0.0f64.fast_exp::<Unfused>(), 1.0);
        assert_eq!(0.0f32.fast_exp::<Unfused>(), 1.0);
        assert!((1e6f64).fast_exp::<Unfused>().is_finite());
    }

    #[test]
    fn logsumexp_matches_naive_and_is_stable() {
        let x = [0.1f64, -2.0, 3.5, 0.0];
        let naive: f64 = x.iter().map(|v| v.exp()).sum::<f64>().ln();
        assert!((logsumexp(&x) - naive).abs() < 1e-14);
        let big = [1000.0f64, 1000.0];
        assert!((logsumexp(&big) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(logsumexp::<f64>(&[f64::NEG_INFINITY]), f64::NEG_INFINITY);
        assert_eq!(logsumexp::<f64>(&[]), f64::NEG_INFINITY);
    }
}
