//! Phases of one unbalanced call on a dense cost (an ignored test: run it by name).

use super::*;
use crate::ot::controller::Overrelax;
use crate::ot::unbalanced::{sinkhorn_lse, LseOptions};
use crate::solver::NoObserver;
use std::time::Instant;

/// Phases of one unbalanced call at n = 500 (the bench's problem shape), best of repeats.
#[test]
#[ignore]
fn phases_500() {
    let n: usize = std::env::var("UB_N").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let mut s = 12345u64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<[f64; 2]> = (0..n).map(|_| [rnd(), rnd()]).collect();
    let y: Vec<[f64; 2]> = (0..n).map(|_| [rnd(), rnd()]).collect();
    let cost: Vec<f64> =
        x.iter().flat_map(|p| y.iter().map(move |q| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2))).collect();
    let a: Vec<f64> = (0..n).map(|_| rnd() + 0.1).collect();
    let b: Vec<f64> = (0..n).map(|_| rnd() + 0.1).collect();
    let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    let a: Vec<f64> = a.iter().map(|v| v / sa).collect();
    let b: Vec<f64> = b.iter().map(|v| 1.5 * v / sb).collect();
    // Thread CPU time (the machine is shared: wall time measures the load), best of
    // repeats; wall time where UB_WALL is set (passes handed to the pool).
    let wall = std::env::var("UB_WALL").is_ok();
    let cpu = || {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    };
    let t00 = Instant::now();
    let now = || if wall { t00.elapsed().as_secs_f64() } else { cpu() };
    let best = |f: &mut dyn FnMut()| {
        let mut t = f64::INFINITY;
        for _ in 0..30 {
            let t0 = now();
            f();
            t = t.min(now() - t0);
        }
        t * 1e3
    };
    println!("new: {:.3} ms", best(&mut || drop(DenseOperator::new(&cost, n, n).unwrap())));
    let mut op = DenseOperator::new(&cost, n, n).unwrap();
    op.set_reg(0.05).unwrap();
    let h = vec![0.0; n];
    let mut out = vec![0.0; n];
    println!(
        "rebuild+rows: {:.3} ms",
        best(&mut || {
            op.built = false;
            op.rows(&h, &mut out)
        })
    );
    println!("rows: {:.3} ms", best(&mut || op.rows(&h, &mut out)));
    println!("cols: {:.3} ms", best(&mut || op.cols(&h, &mut out)));
    let fs = vec![0.0; n];
    println!("measure: {:.3} ms", best(&mut || drop(op.measure(&fs, &fs, 0.05).unwrap())));
    for &(reg, rho) in &[(0.05, 0.1), (0.05, 1.0), (0.01, 0.1), (0.01, 1.0)] {
        for maxiter in [0usize, 1, 100_000] {
            let opts = LseOptions {
                reg,
                reg_m: (rho, rho),
                tol: 1e-8,
                maxiter,
                eps_scaling: None,
                overrelax: Overrelax::Auto,
            };
            let (mut nit, mut rebuilds, mut measures) = (0, 0, 0);
            EXACT.store(0, std::sync::atomic::Ordering::Relaxed);
            let t = best(&mut || {
                let mut op = DenseOperator::new(&cost, n, n).unwrap();
                let out = sinkhorn_lse(&mut op, &a, &b, &opts, None, &mut NoObserver).unwrap();
                (nit, rebuilds, measures) = (out.nit, op.rebuilds, op.measures);
            });
            let exact = EXACT.load(std::sync::atomic::Ordering::Relaxed) / 30;
            println!(
                "reg {reg} rho {rho} maxiter {maxiter}: {t:.3} ms, nit {nit}, rebuilds {rebuilds}, \
                 measures {measures}, exact rows/cols {exact}"
            );
        }
    }
}
