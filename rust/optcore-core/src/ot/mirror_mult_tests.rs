//! The stored-plan form against the potentials form and the general loop.

use super::super::mirror::{mirror_sinkhorn, Objective, Step};
use super::super::mirror_linear::mirror_linear_exp;
use super::*;
use crate::solver::NoObserver;

/// A random problem with positive weights and a cost in `[0, scale)`.
fn problem<T: Real>(n: usize, m: usize, seed: u64, scale: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut a: Vec<f64> = (0..n).map(|_| 0.2 + next()).collect();
    let mut b: Vec<f64> = (0..m).map(|_| 0.2 + next()).collect();
    let (sa, sb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    a.iter_mut().for_each(|v| *v /= sa);
    b.iter_mut().for_each(|v| *v /= sb);
    let c: Vec<f64> = (0..n * m).map(|_| scale * next()).collect();
    let t = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect();
    (t(a), t(b), t(c))
}

struct Logs {
    ln_a: Vec<f64>,
    ln_b: Vec<f64>,
    ln_mass: f64,
    delta: f64,
}

fn logs<T: Real>(a: &[T], b: &[T]) -> Logs {
    let mass: f64 = a.iter().map(|x| x.as_f64()).sum();
    let ln_mass = mass.ln();
    let ln_a: Vec<f64> = a.iter().map(|x| x.as_f64().ln()).collect();
    let ln_b: Vec<f64> = b.iter().map(|x| x.as_f64().ln()).collect();
    let ext = |v: &[f64]| v.iter().map(|x| (x - ln_mass).abs()).fold(0.0, f64::max);
    let delta = (ext(&ln_a) + ext(&ln_b)).max(1.0);
    Logs { ln_a, ln_b, ln_mass, delta }
}

fn opts(step: Step, output: Output, maxiter: usize, check_every: usize) -> MirrorOptions {
    MirrorOptions { step, output, tol: 1e-12, gap_tol: None, certify: true, maxiter, check_every }
}

/// The stored-plan form (must apply) and the potentials form on the same problem.
fn both<T: Real>(a: &[T], b: &[T], c: &[T], o: &MirrorOptions) -> (MirrorOutput<T>, MirrorOutput<T>) {
    let l = logs(a, b);
    let p = Linear { a, b, cost: c, ln_a: &l.ln_a, ln_b: &l.ln_b, ln_mass: l.ln_mass, delta: l.delta };
    let gmax = c.iter().fold(0.0f64, |x, v| x.max(v.as_f64().abs()));
    let step0 = match o.step {
        Step::Sqrt(Some(e)) | Step::Constant(e) => e,
        Step::Sqrt(None) => l.delta.sqrt() / gmax,
    };
    let mult = mirror_mult(&p, o, &mut Schedule::new(o.step, step0), &mut NoObserver).unwrap().expect("applies");
    let exp = mirror_linear_exp(&p, o, Schedule::new(o.step, step0), &mut NoObserver).unwrap();
    (mult, exp)
}

/// The general loop (an n x m log state), reached with a zero gradient oracle.
fn general<T: Real>(a: &[T], b: &[T], c: &[T], o: &MirrorOptions) -> MirrorOutput<T> {
    let mut zero = |_: usize, _: &[T], g: &mut [T]| {
        g.iter_mut().for_each(|x| *x = T::zero());
        Ok(())
    };
    mirror_sinkhorn(a, b, Some(c), Objective::Linear, Some(&mut zero), o, &mut NoObserver).unwrap()
}

/// `max |x - y| / max |y|`.
fn rel<T: Real>(x: &[T], y: &[T]) -> f64 {
    let d = x.iter().zip(y).fold(0.0f64, |acc, (u, v)| acc.max((u.as_f64() - v.as_f64()).abs()));
    d / y.iter().fold(0.0f64, |acc, v| acc.max(v.as_f64().abs()))
}

#[test]
fn follows_the_general_iteration() {
    let (a, b, c) = problem::<f64>(7, 5, 1, 1.0);
    for step in [Step::Sqrt(None), Step::Constant(3.0)] {
        for output in [Output::Average, Output::Last] {
            // odd horizons and check intervals exercise the row-only and column-only passes
            for (maxiter, ce) in [(200, 10), (201, 7)] {
                let o = opts(step, output, maxiter, ce);
                let (mult, exp) = both(&a, &b, &c, &o);
                let general = general(&a, &b, &c, &o);
                let (d1, d2) = (rel(&mult.plan, &general.plan), rel(&exp.plan, &general.plan));
                assert!(d1 < 1e-12 && d2 < 1e-12, "{step:?} {output:?} {maxiter}: {d1:e} {d2:e}");
                assert_eq!((mult.nit, general.nit), (maxiter, maxiter));
                assert!((mult.gap - general.gap).abs() <= 1e-10 * general.gap.abs(), "{} {}", mult.gap, general.gap);
                assert_eq!(mult.history.len(), general.history.len());
                assert_eq!(mult.marginal_error, marginal_error(&mult.plan, &a, &b));
            }
        }
    }
}

#[test]
fn rounding_stays_bounded_over_1e5_iterations() {
    // Measured: within 4e-14 of the general loop after 1e5 iterations (the potentials form
    // drifts to 5e-12 with the constant step: its exponents `r + c - S M` cancel).
    let (a, b, c) = problem::<f64>(6, 5, 2, 1.0);
    for step in [Step::Sqrt(None), Step::Constant(2.0)] {
        for output in [Output::Average, Output::Last] {
            let o = opts(step, output, 100_000, 1000);
            let (mult, exp) = both(&a, &b, &c, &o);
            let gen = general(&a, &b, &c, &o);
            let (d, dexp) = (rel(&mult.plan, &gen.plan), rel(&exp.plan, &gen.plan));
            // the stored factor's rounding is a fixed perturbation of M, not a growing one
            assert!(d < 1e-12 && dexp < 1e-10, "{step:?} {output:?}: {d:e} {dexp:e}");
            assert!((mult.marginal_error - gen.marginal_error).abs() < 1e-12);
        }
    }
}

#[test]
fn underflow_behaves_like_the_exp_form() {
    // η (max M - min M) near the limit: most entries fall below the safe range.
    let (a, b, c) = problem::<f64>(8, 8, 3, 1.0);
    let o = opts(Step::Constant(140.0), Output::Last, 2000, 10);
    let (mult, exp) = both(&a, &b, &c, &o);
    let gen = general(&a, &b, &c, &o);
    let (d, dexp) = (rel(&mult.plan, &gen.plan), rel(&exp.plan, &gen.plan));
    assert!(d < 1e-10 && dexp < 1e-10, "{d:e} {dexp:e}");
    let zeros = mult.plan.iter().filter(|&&x| x == 0.0).count();
    assert!(zeros > 20, "{zeros}");
    for (x, y) in mult.plan.iter().zip(&exp.plan) {
        assert!((*x == 0.0) == (*y == 0.0) || x.max(*y) < 1e-280, "{x:e} {y:e}");
    }
    let (a, b, c) = problem::<f32>(8, 8, 3, 1.0);
    let o = opts(Step::Constant(14.0), Output::Average, 2000, 10);
    let (mult, exp) = both(&a, &b, &c, &o);
    let gen = general(&a, &b, &c, &o);
    let (d, dexp) = (rel(&mult.plan, &gen.plan), rel(&exp.plan, &gen.plan));
    assert!(d < 1e-3 && dexp < 1e-3, "{d:e} {dexp:e}");
}

#[test]
fn steps_out_of_range_use_the_exp_form() {
    let (a, b, c) = problem::<f32>(5, 4, 4, 1.0);
    let l = logs(&a, &b);
    let p = Linear { a: &a, b: &b, cost: &c, ln_a: &l.ln_a, ln_b: &l.ln_b, ln_mass: l.ln_mass, delta: l.delta };
    let o = opts(Step::Constant(60.0), Output::Last, 100, 10);
    let out = mirror_mult(&p, &o, &mut Schedule::new(o.step, 60.0), &mut NoObserver).unwrap();
    assert!(out.is_none());
}

#[test]
fn sweep_direction_and_thread_count_change_no_bit() {
    // 150 rows: five row blocks of 32 (`parallel::row_block`), so the backward passes take
    // them in another order, on pools of different sizes.
    let (a, b, c) = problem::<f64>(150, 37, 5, 1.0);
    let l = logs(&a, &b);
    let p = Linear { a: &a, b: &b, cost: &c, ln_a: &l.ln_a, ln_b: &l.ln_b, ln_mass: l.ln_mass, delta: l.delta };
    let step0 = l.delta.sqrt() / c.iter().fold(0.0f64, |x, v| x.max(v.abs()));
    for output in [Output::Average, Output::Last] {
        // odd horizon and check interval: row-only and column-only passes too
        let o = opts(Step::Sqrt(None), output, 301, 7);
        let run = |threads: usize, alternate: bool| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut s = Schedule::new(o.step, step0);
                mirror_mult_sweeps(&p, &o, &mut s, &mut NoObserver, alternate).unwrap().expect("applies")
            })
        };
        let reference = run(1, false);
        for (threads, alternate) in [(1, true), (2, true), (3, true), (4, false)] {
            let out = run(threads, alternate);
            let same = out.plan.iter().zip(&reference.plan).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{output:?}: {threads} threads, alternate {alternate}");
            assert_eq!(out.gap.to_bits(), reference.gap.to_bits());
            assert_eq!(out.history, reference.history);
        }
        // and the multi-block passes follow the general loop
        let gen = general(&a, &b, &c, &o);
        let d = rel(&reference.plan, &gen.plan);
        assert!(d < 1e-12, "{output:?}: {d:e}");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_rows_match_the_portable_rows() {
    use super::avx2::Avx2F64;
    use crate::real::Fused;
    if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
        return;
    }
    // Row lengths with and without tails of the 8- and 4-lane bodies; entries spanning the
    // stored-zero threshold, exact zeros, a NaN and an infinity.
    for (len, seed) in [(1usize, 1u64), (3, 2), (4, 3), (7, 4), (8, 5), (13, 6), (64, 7), (1001, 8)] {
        let (_, _, v) = problem::<f64>(3, len, seed, 1.0);
        let (q0, e, b) = (&v[..len], &v[len..2 * len], &v[2 * len..]);
        let mut q0 = q0.to_vec();
        q0[0] = 1e-300;
        if len > 5 {
            (q0[1], q0[2], q0[5]) = (0.0, f64::NAN, f64::INFINITY);
        }
        let al = 0.37;
        assert_eq!(
            <Lanes<Fused> as Rows<f64>>::sum(&q0, e, b).to_bits(),
            <Avx2F64 as Rows<f64>>::sum(&q0, e, b).to_bits(),
            "sum, {len}"
        );
        let w = Weights {
            w0: 0.25,
            small0: tiny::<f64>() / 0.25,
            w1: 0.125,
            small1: tiny::<f64>() / 0.125,
            small: tiny::<f64>() * 1e3,
            rebuild: None,
        };
        fn both<const ROW: bool, const COL: bool, const AVG: bool>(
            q0: &[f64],
            e: &[f64],
            b: &[f64],
            al: f64,
            w: &Weights<f64>,
        ) {
            let n = q0.len();
            let (mut q1, mut q2) = (q0.to_vec(), q0.to_vec());
            let (mut c1, mut c2) = (vec![0.5; n], vec![0.5; n]);
            let mut a1: Vec<f64> = e.iter().map(|x| x * 0.3).collect();
            a1[n / 2] = 1e-310;
            let mut a2 = a1.clone();
            let ahead = Some([q0.as_ptr(), e.as_ptr(), b.as_ptr()]);
            <Lanes<Fused> as Rows<f64>>::update::<ROW, COL, AVG>(
                Row { q: &mut q1, e, b, avg: &mut a1, colacc: &mut c1, al, ahead },
                w,
            );
            <Avx2F64 as Rows<f64>>::update::<ROW, COL, AVG>(
                Row { q: &mut q2, e, b, avg: &mut a2, colacc: &mut c2, al, ahead },
                w,
            );
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&q1), bits(&q2), "update {ROW} {COL} {AVG}, {n}");
            assert_eq!(bits(&c1), bits(&c2), "column sums {ROW} {COL} {AVG}, {n}");
            assert_eq!(bits(&a1), bits(&a2), "average {ROW} {COL} {AVG}, {n}");
        }
        for avg in [false, true] {
            let mut w = w;
            if avg && len % 2 == 0 {
                w.w0 = 0.0;
            }
            if avg {
                both::<true, true, true>(&q0, e, b, al, &w);
                both::<true, false, true>(&q0, e, b, al, &w);
                both::<false, true, true>(&q0, e, b, al, &w);
            } else {
                both::<true, true, false>(&q0, e, b, al, &w);
                both::<true, false, false>(&q0, e, b, al, &w);
                both::<false, true, false>(&q0, e, b, al, &w);
            }
        }
    }
}
