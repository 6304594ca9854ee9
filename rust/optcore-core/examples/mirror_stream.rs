//! The memory traffic of Mirror Sinkhorn's stored-plan pass, measured without its arithmetic.
//!
//! Times passes over `n x m` arrays (row blocks of `optcore_core::parallel::row_block`, on the
//! rayon pool) that only stream the arrays the real passes stream, with one multiplication or
//! addition per entry and array:
//!
//! - `K`: read one array (a fused log-domain Sinkhorn iteration reads its stored kernel once);
//! - `QE`: read `Q` and `E`, write `Q` (the stored-plan pass, two Mirror iterations);
//! - `QEA`: read `Q`, `E` and the average, write `Q` and the average (the pass that also
//!   updates the average).
//!
//! Run: `cargo run -p optcore-core --profile fast --example mirror_stream [reps]`. Prints a
//! markdown table: per size and dtype, the median seconds per pass and the seconds per Mirror
//! iteration (half a pass) as ratios to the `K` pass of the same repeat (median over repeats).

use optcore_core::parallel::row_block;
use rayon::prelude::*;
use std::time::Instant;

trait Num: Copy + Send + Sync + std::ops::Mul<Output = Self> + std::ops::Add<Output = Self> + 'static {
    const NAME: &'static str;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Num for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Num for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

/// Reads `k` once (a sum in eight lanes).
#[inline(always)]
fn pass_k<T: Num>(k: &[T]) -> f64 {
    let mut acc = [T::from_f64(0.0); 8];
    let mut ch = k.chunks_exact(8);
    for c in &mut ch {
        for l in 0..8 {
            acc[l] = acc[l] + c[l];
        }
    }
    acc.iter().map(|x| x.to_f64()).sum()
}

/// Reads `q`, `e` (and `avg`), writes `q` (and `avg`): `q = q e`, `avg += w q`. `e` may be
/// stored in another precision than `q` (f32 for f64).
#[inline(always)]
fn pass_q<T: Num, U: Num, const AVG: bool>(q: &mut [T], e: &[U], avg: &mut [T], w: T) -> f64 {
    if AVG {
        for ((x, &y), z) in q.iter_mut().zip(e).zip(avg.iter_mut()) {
            *x = *x * T::from_f64(y.to_f64());
            *z = *z + w * *x;
        }
    } else {
        for (x, &y) in q.iter_mut().zip(e) {
            *x = *x * T::from_f64(y.to_f64());
        }
    }
    q[0].to_f64()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pass_k_avx2<T: Num>(k: &[T]) -> f64 {
    pass_k(k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pass_q_avx2<T: Num, U: Num, const AVG: bool>(q: &mut [T], e: &[U], avg: &mut [T], w: T) -> f64 {
    pass_q::<T, U, AVG>(q, e, avg, w)
}

/// One `QE` (or, with `avg`, `QEA`) pass over the row blocks, first to last or (`rev`) last
/// to first.
fn pass<T: Num, U: Num>(q: &mut [T], e: &[U], avg: Option<&mut [T]>, rb: usize, m: usize, rev: bool) -> f64 {
    let w = T::from_f64(1e-3);
    match avg {
        Some(avg) => {
            let it = q.par_chunks_mut(rb * m).zip(e.par_chunks(rb * m)).zip(avg.par_chunks_mut(rb * m));
            // SAFETY: AVX2 and FMA are present (asserted by the caller).
            let f = |((qr, er), ar): ((&mut [T], &[U]), &mut [T])| unsafe { pass_q_avx2::<T, U, true>(qr, er, ar, w) };
            if rev {
                it.rev().map(f).sum::<f64>()
            } else {
                it.map(f).sum::<f64>()
            }
        }
        None => {
            let it = q.par_chunks_mut(rb * m).zip(e.par_chunks(rb * m));
            // SAFETY: as above.
            let f = |(qr, er): (&mut [T], &[U])| unsafe { pass_q_avx2::<T, U, false>(qr, er, &mut [], w) };
            if rev {
                it.rev().map(f).sum::<f64>()
            } else {
                it.map(f).sum::<f64>()
            }
        }
    }
}

/// The median (other jobs share the cores: the repeats' spread is wide).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run<T: Num>(n: usize, reps: usize) {
    let m = n;
    let rb = row_block(n);
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    assert!(avx2, "the example times the AVX2 passes");
    let k: Vec<T> = (0..n * m).map(|i| T::from_f64(1.0 + (i % 7) as f64 * 1e-3)).collect();
    let mut q = k.clone();
    // `e` keeps `q` in range over the repeats
    let e: Vec<T> = vec![T::from_f64(1.0); n * m];
    let e32: Vec<f32> = vec![1.0; n * m];
    let mut avg = k.clone();
    let inner = 20;
    let (mut tk, mut tq, mut ta) = (Vec::new(), Vec::new(), Vec::new());
    // Four passes as the real run makes them (the average on the first): all first to last,
    // or every other pass last to first (`mirror_mult.rs`).
    let (mut cyc_f, mut cyc_a, mut last_f, mut last_a) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The same, alternating, with `E` stored in f32 (for f64: 4 bytes instead of 8).
    let (mut cyc_32, mut last_32) = (Vec::new(), Vec::new());
    let mut sink = 0.0;
    for _ in 0..reps {
        let t0 = Instant::now();
        for _ in 0..inner {
            sink += k
                .par_chunks(rb * m)
                // SAFETY: AVX2 and FMA are present (asserted above).
                .map(|kr| unsafe { pass_k_avx2(kr) })
                .sum::<f64>();
        }
        tk.push(t0.elapsed().as_secs_f64() / inner as f64);
        let t0 = Instant::now();
        for _ in 0..inner {
            sink += q
                .par_chunks_mut(rb * m)
                .zip(e.par_chunks(rb * m))
                // SAFETY: as above.
                .map(|(qr, er)| unsafe { pass_q_avx2::<T, T, false>(qr, er, &mut [], T::from_f64(1e-3)) })
                .sum::<f64>();
        }
        tq.push(t0.elapsed().as_secs_f64() / inner as f64);
        let t0 = Instant::now();
        for _ in 0..inner {
            sink += q
                .par_chunks_mut(rb * m)
                .zip(e.par_chunks(rb * m))
                .zip(avg.par_chunks_mut(rb * m))
                // SAFETY: as above.
                .map(|((qr, er), ar)| unsafe { pass_q_avx2::<T, T, true>(qr, er, ar, T::from_f64(1e-3)) })
                .sum::<f64>();
        }
        ta.push(t0.elapsed().as_secs_f64() / inner as f64);
        for (alt, cyc, last) in [(false, &mut cyc_f, &mut last_f), (true, &mut cyc_a, &mut last_a)] {
            let t0 = Instant::now();
            for _ in 0..inner / 4 {
                for p in 0..4 {
                    sink += pass(&mut q, &e, (p == 0).then_some(&mut avg[..]), rb, m, alt && p % 2 == 1);
                }
            }
            cyc.push(t0.elapsed().as_secs_f64() / (inner / 4 * 4) as f64);
            let t0 = Instant::now();
            for _ in 0..inner / 4 {
                for p in 0..4 {
                    sink += pass(&mut q, &e, None, rb, m, alt && p % 2 == 1);
                }
            }
            last.push(t0.elapsed().as_secs_f64() / (inner / 4 * 4) as f64);
        }
        let t0 = Instant::now();
        for _ in 0..inner / 4 {
            for p in 0..4 {
                sink += pass(&mut q, &e32, (p == 0).then_some(&mut avg[..]), rb, m, p % 2 == 1);
            }
        }
        cyc_32.push(t0.elapsed().as_secs_f64() / (inner / 4 * 4) as f64);
        let t0 = Instant::now();
        for _ in 0..inner / 4 {
            for p in 0..4 {
                sink += pass(&mut q, &e32, None, rb, m, p % 2 == 1);
            }
        }
        last_32.push(t0.elapsed().as_secs_f64() / (inner / 4 * 4) as f64);
    }
    // Paired: each repeat's passes over the K pass of the same repeat (run next to each other,
    // so under the same load), the median over repeats. Per Mirror iteration (a pass does
    // two): the last iterate, the average on every pass (before) and on one pass in four.
    let paired = |f: &dyn Fn(f64, f64) -> f64| median((0..reps).map(|r| f(tq[r], ta[r]) / tk[r]).collect());
    let last = paired(&|q, _| q / 2.0);
    let every = paired(&|_, a| a / 2.0);
    let pairs = paired(&|q, a| (3.0 * q + a) / 8.0);
    // The four-pass sequences, per Mirror iteration (eight per sequence).
    let seq = |v: &[f64]| median((0..reps).map(|r| v[r] / 2.0 / tk[r]).collect());
    let (lf, la, cf, ca) = (seq(&last_f), seq(&last_a), seq(&cyc_f), seq(&cyc_a));
    let e32 =
        if T::NAME == "f64" { format!("{:.2} | {:.2}", seq(&last_32), seq(&cyc_32)) } else { "- | -".to_string() };
    let (k1, q1, a1) = (median(tk.clone()), median(tq.clone()), median(ta.clone()));
    println!(
        "| {n} | {} | {k1:.3e} | {q1:.3e} | {a1:.3e} | {last:.2} | {every:.2} | {pairs:.2} | {lf:.2} | {la:.2} | \
         {cf:.2} | {ca:.2} | {e32} |{}",
        T::NAME,
        if sink.is_finite() { "" } else { " (!)" }
    );
}

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(7);
    println!(
        "| n = m | dtype | K pass (s) | QE pass (s) | QEA pass (s) | last / K | average, every pass / K | average, \
         one pass in four / K | last, 4 passes forward / K | last, 4 passes alternating / K | average, 4 passes \
         forward / K | average, 4 passes alternating / K | last, alternating, E in f32 / K | average, \
         alternating, E in f32 / K |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in [500, 1000, 2000] {
        run::<f64>(n, reps);
        run::<f32>(n, reps);
    }
}
