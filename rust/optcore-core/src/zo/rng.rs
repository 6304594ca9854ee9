//! Counter-based random numbers: Philox4x32-10 (Salmon et al., SC 2011), the generator of
//! cuRAND, JAX and NumPy's `Philox`.
//!
//! A draw is a pure function of a key (the run's 64-bit seed) and a 128-bit counter, here
//! `(index, direction, iteration, stream)`. So a direction is *regenerated* from
//! `(seed, iteration, direction)` whenever it is needed instead of being stored (memory O(d)
//! whatever q is, as in MeZO's seed trick), and no draw depends on how many threads or which
//! executor evaluated the previous batch: the same seed gives the same run.

/// What a draw is for; keeps the streams of one iteration apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stream {
    /// Search directions of the gradient estimators (and ZO-RankSGD's perturbations).
    Directions = 0,
    /// CGE's random coordinate subsets.
    Coordinates = 1,
    /// The isotropic perturbation of `perturbed`.
    Perturbation = 2,
    /// CBO's Brownian increments (and consensus hopping's resampling).
    Noise = 3,
    /// CBO's initial particles.
    Init = 4,
}

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds: 128 random bits from a counter and a key.
#[inline]
pub fn philox(mut c: [u32; 4], key: u64) -> [u32; 4] {
    let (mut k0, mut k1) = (key as u32, (key >> 32) as u32);
    for _ in 0..10 {
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0];
        k0 = k0.wrapping_add(W0);
        k1 = k1.wrapping_add(W1);
    }
    c
}

/// A uniform in the open interval (0, 1) from 64 random bits (53 of them used).
#[inline(always)]
fn open01(bits: u64) -> f64 {
    ((bits >> 11) as f64 + 0.5) * (1.0 / 9_007_199_254_740_992.0)
}

/// The random numbers of one run, keyed by its seed.
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    pub seed: u64,
}

impl Counter {
    fn block(&self, index: u64, direction: u64, iteration: u64, stream: Stream) -> [u32; 4] {
        // index and direction are below 2^32 in any run that fits in memory; the iteration
        // keeps its high bits next to the stream tag.
        let c3 = (stream as u32) | (((iteration >> 32) as u32) << 8);
        philox([index as u32, direction as u32, iteration as u32, c3], self.seed)
    }

    /// Fills `out` with independent standard normals (Box–Muller on pairs of uniforms),
    /// entry `j` a function of `(seed, iteration, direction, j / 2, stream)` only.
    pub fn normals(&self, iteration: u64, direction: u64, stream: Stream, out: &mut [f64]) {
        self.normals_at(iteration, direction, stream, 0, out);
    }

    /// Entries `start..start + out.len()` of what [`Counter::normals`] writes (`start` even):
    /// a direction generated in chunks of coordinates, each chunk the same numbers as the
    /// whole, so a d-vector never needs to be held.
    pub fn normals_at(&self, iteration: u64, direction: u64, stream: Stream, start: usize, out: &mut [f64]) {
        assert!(start % 2 == 0, "normals_at: chunks start at an even index");
        let p0 = (start / 2) as u64;
        for (j, pair) in out.chunks_mut(2).enumerate() {
            let b = self.block(p0 + j as u64, direction, iteration, stream);
            let u1 = open01(((b[0] as u64) << 32) | b[1] as u64);
            let u2 = open01(((b[2] as u64) << 32) | b[3] as u64);
            let r = (-2.0 * u1.ln()).sqrt();
            let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
            pair[0] = r * c;
            if pair.len() > 1 {
                pair[1] = r * s;
            }
        }
    }

    /// A uniform on (0, 1) for draw `j` of `(iteration, direction, stream)`.
    pub fn uniform(&self, iteration: u64, direction: u64, j: u64, stream: Stream) -> f64 {
        let b = self.block(j, direction, iteration, stream);
        open01(((b[0] as u64) << 32) | b[1] as u64)
    }

    /// `k` distinct indices of `0..n`, uniformly (partial Fisher–Yates), sorted.
    pub fn subset(&self, iteration: u64, n: usize, k: usize) -> Vec<usize> {
        let k = k.min(n);
        if k == n {
            return (0..n).collect();
        }
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let u = self.uniform(iteration, 0, i as u64, Stream::Coordinates);
            let j = i + ((u * (n - i) as f64) as usize).min(n - i - 1);
            idx.swap(i, j);
        }
        let mut s = idx[..k].to_vec();
        s.sort_unstable();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answer() {
        // Random123's known-answer test for philox4x32-10 with zero counter and key.
        assert_eq!(philox([0; 4], 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        // ... and with all bits set.
        assert_eq!(philox([u32::MAX; 4], u64::MAX), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        let pi = [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344];
        assert_eq!(philox(pi, 0x299f_31d0_a409_3822), [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]);
    }

    #[test]
    fn normals_are_standard() {
        let c = Counter { seed: 7 };
        let mut v = vec![0.0; 200_001];
        c.normals(3, 1, Stream::Directions, &mut v);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let kurt = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.01, "{var}");
        assert!((kurt - 3.0).abs() < 0.05, "{kurt}");
    }

    #[test]
    fn draws_depend_on_every_counter_word() {
        let c = Counter { seed: 1 };
        let mut a = [0.0; 4];
        let mut b = [0.0; 4];
        c.normals(0, 0, Stream::Directions, &mut a);
        for (it, dir, st) in [(1, 0, Stream::Directions), (0, 1, Stream::Directions), (0, 0, Stream::Noise)] {
            c.normals(it, dir, st, &mut b);
            assert_ne!(a, b);
        }
        c.normals(0, 0, Stream::Directions, &mut b);
        assert_eq!(a, b);
        // A prefix does not depend on the length asked for.
        let mut long = [0.0; 7];
        c.normals(0, 0, Stream::Directions, &mut long);
        assert_eq!(&long[..4], &a);
        assert_ne!(Counter { seed: 2 }.uniform(0, 0, 0, Stream::Init), c.uniform(0, 0, 0, Stream::Init));
    }

    #[test]
    fn chunks_are_the_whole() {
        let c = Counter { seed: 9 };
        let mut whole = vec![0.0; 1001];
        c.normals(4, 2, Stream::Directions, &mut whole);
        let mut parts = vec![0.0; 1001];
        for (k, ch) in parts.chunks_mut(64).enumerate() {
            c.normals_at(4, 2, Stream::Directions, 64 * k, ch);
        }
        assert_eq!(whole, parts);
    }

    #[test]
    fn subsets_are_distinct_and_uniform() {
        let c = Counter { seed: 5 };
        let mut hits = [0usize; 10];
        for it in 0..4000 {
            let s = c.subset(it, 10, 3);
            assert_eq!(s.len(), 3);
            assert!(s.windows(2).all(|w| w[0] < w[1]));
            for i in s {
                hits[i] += 1;
            }
        }
        // Each index is chosen with probability 3/10: 1200 of 4000 (sd about 29).
        assert!(hits.iter().all(|&h| (h as i64 - 1200).abs() < 150), "{hits:?}");
        assert_eq!(c.subset(0, 4, 9), vec![0, 1, 2, 3]);
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// Where a normal's time goes: `cargo test --profile fast -p optcore-core zo::rng::speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn generation_cost() {
        let n = 4_000_000usize;
        let c = Counter { seed: 1 };
        let mut v = vec![0.0; n];
        let t = std::time::Instant::now();
        c.normals(0, 0, Stream::Directions, &mut v);
        let full = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let mut acc = 0u32;
        for j in 0..n / 2 {
            acc ^= c.block(j as u64, 0, 0, Stream::Directions)[0];
        }
        let ph = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let mut s = 0.0;
        for (j, x) in v.iter().enumerate().step_by(2) {
            let u = open01((j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ x.to_bits());
            s += (-2.0 * u.ln()).sqrt() + (std::f64::consts::TAU * u).sin_cos().0;
        }
        let tr = t.elapsed().as_secs_f64();
        println!(
            "per entry: normals {:.1} ns, philox {:.1} ns, ln+sqrt+sin_cos {:.1} ns ({acc} {s})",
            full / n as f64 * 1e9,
            ph / n as f64 * 1e9,
            tr / n as f64 * 1e9
        );
    }
}
