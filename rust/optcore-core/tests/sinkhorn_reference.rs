//! The core's Sinkhorn solvers against straightforward dense references (plain f64 loops).

use optcore_core::ot::{sinkhorn_log, sinkhorn_scaling, EpsScaling, LogOptions, Overrelax, Problem};
use optcore_core::parallel::with_workers;
use optcore_core::real::logsumexp;
use optcore_core::{Control, NoObserver, Observer, Report, Termination};

/// A small deterministic generator (no dependency needed for test data).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn problem(n: usize, m: usize, seed: u64, zeros: bool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut r = Lcg(seed);
    let mut a: Vec<f64> = (0..n).map(|_| r.next() + 0.1).collect();
    let mut b: Vec<f64> = (0..m).map(|_| r.next() + 0.1).collect();
    if zeros {
        a[0] = 0.0;
        b[m - 1] = 0.0;
    }
    let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    a.iter_mut().for_each(|x| *x /= sa);
    b.iter_mut().for_each(|x| *x /= sb);
    let xs: Vec<(f64, f64)> = (0..n).map(|_| (r.next(), r.next())).collect();
    let ys: Vec<(f64, f64)> = (0..m).map(|_| (r.next(), r.next())).collect();
    let cost = xs.iter().flat_map(|x| ys.iter().map(move |y| (x.0 - y.0).powi(2) + (x.1 - y.1).powi(2))).collect();
    (a, b, cost)
}

/// Textbook log-domain Sinkhorn with exact log-sum-exp, run for a fixed number of iterations.
fn reference(a: &[f64], b: &[f64], cost: &[f64], reg: f64, iters: usize) -> Vec<f64> {
    let (n, m) = (a.len(), b.len());
    let (mut f, mut g) = (vec![0.0; n], vec![0.0; m]);
    for _ in 0..iters {
        for i in 0..n {
            let row: Vec<f64> = (0..m).map(|j| (g[j] - cost[i * m + j]) / reg).collect();
            f[i] = if a[i] == 0.0 { f64::NEG_INFINITY } else { reg * (a[i].ln() - logsumexp(&row)) };
        }
        for j in 0..m {
            let col: Vec<f64> = (0..n).map(|i| (f[i] - cost[i * m + j]) / reg).collect();
            g[j] = if b[j] == 0.0 { f64::NEG_INFINITY } else { reg * (b[j].ln() - logsumexp(&col)) };
        }
    }
    (0..n * m).map(|idx| ((f[idx / m] + g[idx % m] - cost[idx]) / reg).exp()).collect()
}

fn marginal_error(plan: &[f64], a: &[f64], b: &[f64]) -> f64 {
    let m = b.len();
    let rows: f64 =
        a.iter().enumerate().map(|(i, &ai)| (plan[i * m..(i + 1) * m].iter().sum::<f64>() - ai).abs()).sum();
    let cols: f64 =
        b.iter().enumerate().map(|(j, &bj)| ((0..a.len()).map(|i| plan[i * m + j]).sum::<f64>() - bj).abs()).sum();
    rows + cols
}

fn max_abs_diff(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

fn log_opts(reg: f64, tol: f64) -> LogOptions {
    LogOptions { reg, tol, maxiter: 100_000, eps_scaling: None, overrelax: Overrelax::Auto }
}

#[test]
fn log_method_matches_the_dense_reference() {
    for (n, m, reg, zeros) in [(30, 40, 0.05, false), (25, 17, 0.01, true), (1, 5, 0.1, false), (64, 64, 0.02, true)] {
        let (a, b, cost) = problem(n, m, 7 + n as u64, zeros);
        let reference = reference(&a, &b, &cost, reg, 20_000);
        for overrelax in [Overrelax::Auto, Overrelax::Off, Overrelax::Fixed(1.5)] {
            let opts = LogOptions { overrelax, ..log_opts(reg, 1e-12) };
            let out = sinkhorn_log(&Problem::new(&a, &b, &cost), &opts, None, None, &mut NoObserver).unwrap();
            assert_eq!(out.termination, Termination::Converged, "{n}x{m} reg {reg} {overrelax:?}");
            assert!(out.marginal_error <= 1e-12);
            // The reported error is the error of the returned plan.
            assert!((marginal_error(&out.plan, &a, &b) - out.marginal_error).abs() < 1e-14);
            assert!(max_abs_diff(&out.plan, &reference) < 1e-10, "{n}x{m} reg {reg} {overrelax:?}");
            let cost_ref: f64 = reference.iter().zip(&cost).map(|(p, c)| p * c).sum();
            assert!((out.cost - cost_ref).abs() < 1e-10);
        }
    }
}

#[test]
fn eps_scaling_and_scaling_match_the_reference() {
    let (a, b, cost) = problem(40, 30, 3, true);
    let reg = 0.02;
    let reference = reference(&a, &b, &cost, reg, 20_000);
    let opts = LogOptions { eps_scaling: Some(EpsScaling::default()), ..log_opts(reg, 1e-12) };
    let out = sinkhorn_log(&Problem::new(&a, &b, &cost), &opts, None, None, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::Converged);
    assert!(out.stages > 1);
    assert!(max_abs_diff(&out.plan, &reference) < 1e-10);
    let out = sinkhorn_scaling(&Problem::new(&a, &b, &cost), reg, 1e-12, 100_000, None, None, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::Converged);
    assert!(max_abs_diff(&out.plan, &reference) < 1e-10);
}

#[test]
fn scaling_with_several_histograms_solves_each() {
    let (a, b0, cost) = problem(20, 15, 11, false);
    let (_, b1, _) = problem(20, 15, 12, true);
    let b: Vec<f64> = b0.iter().chain(&b1).copied().collect();
    let p = Problem { a: &a, b: &b, cost: &cost, n: 20, m: 15, k: 2 };
    let out = sinkhorn_scaling(&p, 0.05, 1e-11, 100_000, None, None, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::Converged);
    for (h, bh) in [&b0, &b1].iter().enumerate() {
        let plan = &out.plan[h * 300..(h + 1) * 300];
        assert!(max_abs_diff(plan, &reference(&a, bh, &cost, 0.05, 20_000)) < 1e-10);
        assert!(out.marginal_error[h] <= 1e-11);
    }
}

#[test]
fn tiny_reg_stays_finite_in_both_dtypes() {
    let (a, b, cost) = problem(50, 60, 5, true);
    let out = sinkhorn_log(&Problem::new(&a, &b, &cost), &log_opts(1e-4, 1e-9), None, None, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::Converged);
    assert!(out.plan.iter().all(|x| x.is_finite() && *x >= 0.0));
    assert!(out.fun.is_finite());
    let (a32, b32, c32): (Vec<f32>, Vec<f32>, Vec<f32>) = (
        a.iter().map(|&x| x as f32).collect(),
        b.iter().map(|&x| x as f32).collect(),
        cost.iter().map(|&x| x as f32).collect(),
    );
    let out =
        sinkhorn_log(&Problem::new(&a32, &b32, &c32), &log_opts(1e-4, 1e-5), None, None, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::Converged);
    assert!(out.plan.iter().all(|x| x.is_finite() && *x >= 0.0));
    // Classic scaling underflows here and says so, without NaN.
    let out = sinkhorn_scaling(&Problem::new(&a, &b, &cost), 1e-4, 1e-9, 10_000, None, None, &mut NoObserver).unwrap();
    assert!(matches!(out.termination, Termination::Numerical(ref s) if s.contains("method='log'")));
    assert!(out.plan.iter().all(|x| x.is_finite()));
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let (a, b, cost) = problem(150, 120, 9, true);
    let run = |w| {
        with_workers(Some(w), || {
            sinkhorn_log(&Problem::new(&a, &b, &cost), &log_opts(0.01, 1e-10), None, None, &mut NoObserver).unwrap()
        })
    };
    let (o1, o3) = (run(1), run(3));
    assert_eq!(o1.plan, o3.plan);
    assert_eq!(o1.nit, o3.nit);
}

#[test]
fn observer_stops_and_aborts() {
    struct StopAt(usize, Control, Vec<usize>);
    impl Observer<f64> for StopAt {
        fn observe(&mut self, nit: usize, report: &dyn Fn() -> Report<f64>) -> Control {
            let r = report();
            assert_eq!(r.vectors.len(), 2);
            self.2.push(nit);
            if nit >= self.0 {
                self.1
            } else {
                Control::Continue
            }
        }
    }
    let (a, b, cost) = problem(30, 30, 2, false);
    let mut obs = StopAt(5, Control::Stop, vec![]);
    let opts = LogOptions { overrelax: Overrelax::Off, ..log_opts(0.001, 1e-14) };
    let out = sinkhorn_log(&Problem::new(&a, &b, &cost), &opts, None, None, &mut obs).unwrap();
    assert_eq!(out.termination, Termination::Stopped);
    assert!((marginal_error(&out.plan, &a, &b) - out.marginal_error).abs() < 1e-14);
    let mut obs = StopAt(3, Control::Abort, vec![]);
    let out = sinkhorn_log(&Problem::new(&a, &b, &cost), &opts, None, None, &mut obs).unwrap();
    assert_eq!(out.termination, Termination::Aborted);
    assert!(out.plan.is_empty());
}

#[test]
fn invalid_input_is_an_error_not_a_panic() {
    let (a, b, cost) = problem(5, 6, 1, false);
    let bad_b: Vec<f64> = b.iter().map(|x| x * 2.0).collect();
    assert!(sinkhorn_log(&Problem::new(&a, &bad_b, &cost), &log_opts(0.1, 1e-9), None, None, &mut NoObserver).is_err());
    assert!(sinkhorn_log(&Problem::new(&a, &b, &cost), &log_opts(0.0, 1e-9), None, None, &mut NoObserver).is_err());
    let mut nan_cost = cost.clone();
    nan_cost[3] = f64::NAN;
    assert!(sinkhorn_scaling(&Problem::new(&a, &b, &nan_cost), 0.1, 1e-9, 10, None, None, &mut NoObserver).is_err());
}

/// Issue 17: a weight of 1e-300 sends every iteration through the exact recovery; those
/// iterations count toward `maxiter`, reach the observer, and end the run once the measured
/// plan meets `tol` (it ran to `maxiter + 1` before). At a reg near the cost's rounding they
/// reach the observer on every iteration and leave no `+inf` potential.
#[test]
fn recovery_iterations_count_and_are_observed() {
    struct Count(Vec<usize>);
    impl Observer<f64> for Count {
        fn observe(&mut self, nit: usize, report: &dyn Fn() -> Report<f64>) -> Control {
            let r = report();
            assert!(r.vectors.iter().all(|(_, v)| v.iter().all(|&x| x < f64::INFINITY)));
            self.0.push(nit);
            Control::Continue
        }
    }
    let (a, b, cost) = (vec![1.0, 1e-300], vec![0.5, 0.5], vec![0.0, 1.0, 1.0, 0.0]);
    let opts = LogOptions { maxiter: 10_000, ..log_opts(0.1, 1e-6) };
    let out = sinkhorn_log(&Problem::new(&a, &b, &cost), &opts, None, None, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::Converged);
    assert!(out.nit < 10 && out.marginal_error <= 1e-6);

    let (a, b, cost) = problem(6, 5, 3, false);
    let mut obs = Count(Vec::new());
    let opts = LogOptions { maxiter: 300, ..log_opts(1e-14, 1e-300) };
    let out = sinkhorn_log(&Problem::new(&a, &b, &cost), &opts, None, None, &mut obs).unwrap();
    assert!(out.nit <= 300);
    assert!(obs.0.len() + 1 >= out.nit, "{} observations for {} iterations", obs.0.len(), out.nit);
    assert!(out.f.iter().chain(&out.g).all(|&x| x < f64::INFINITY));
}
