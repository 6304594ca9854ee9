//! Tests of the ask/tell state machine and the loop, on the native test functions.

use super::super::estimate::{Directions, Scheme};
use super::super::functions::{Func, Objective, TestFunction};
use super::super::minimize::{solve, Limits, Output};
use super::*;
use crate::solver::{NoObserver, Termination};

fn opts(method: Method, step: Step, d: usize) -> Options {
    Options {
        method,
        step,
        lower: vec![f64::NEG_INFINITY; d],
        upper: vec![f64::INFINITY; d],
        xtol: 0.0,
        nan_as_inf: false,
        seed: 3,
    }
}

fn gaussian(q: usize) -> Method {
    Method::Gradient {
        est: Estimator { dirs: Directions::Gaussian, scheme: Scheme::Forward, q, mu: 1e-7 },
        update: Update::Plain,
        perturbation: None,
    }
}

fn run(method: Method, step: Step, func: Func, x0: &[f64], maxfev: usize) -> Output<f64> {
    let d = x0.len();
    let mut zo = Zo::new(x0, opts(method, step, d)).unwrap();
    let lim = Limits { maxfev, maxiter: u64::MAX, f_target: 1e-10, take: false };
    solve(&mut zo, &TestFunction { func, d }, &lim, &mut NoObserver).unwrap()
}

#[test]
fn nesterov_spokoiny_rate_on_the_sphere() {
    // f = |x|², L = 2, step 1/(4(d+4)L): E f_k <= (1 - 7/(16(d+4)))^k f_0 (see the Python tests).
    let d = 10;
    let x0 = vec![1.0; d];
    let h = 1.0 / (8.0 * (d as f64 + 4.0));
    let out = run(gaussian(1), Step::Fixed(h), Func::Sphere, &x0, 2 * 3000);
    let bound = (1.0 - 7.0 / (16.0 * (d as f64 + 4.0))).powi(out.nit as i32) * d as f64;
    assert_eq!(out.termination, Termination::Converged, "fun {} after {} iterations", out.fun, out.nit);
    let k_bound = ((1e-10 / d as f64).ln() / (1.0 - 7.0 / (16.0 * (d as f64 + 4.0))).ln()).ceil() as u64;
    assert!(out.nit <= 2 * k_bound, "{} iterations; bound in expectation {k_bound}; {bound}", out.nit);
}

#[test]
fn every_method_decreases_rastrigin_and_sphere() {
    let d = 8;
    let x0 = vec![0.3; d];
    let adaptive = Step::Adaptive { step0: 0.1, grow: 1.25, shrink: 0.5 };
    let est = |dirs, scheme, q| Estimator { dirs, scheme, q, mu: 1e-6 };
    let methods = vec![
        gaussian(4),
        Method::Gradient {
            est: est(Directions::Sphere, Scheme::Central, 4),
            update: Update::Plain,
            perturbation: None,
        },
        Method::Gradient {
            est: est(Directions::Coordinates { n: 8 }, Scheme::Forward, 0),
            update: Update::Plain,
            perturbation: None,
        },
        Method::Gradient { est: est(Directions::Sphere, Scheme::Forward, 4), update: Update::Sign, perturbation: None },
        Method::Gradient {
            est: est(Directions::Sphere, Scheme::Forward, 4),
            update: Update::AdaMM { beta1: 0.9, beta2: 0.999, eps: 1e-12 },
            perturbation: None,
        },
        Method::Gradient {
            est: est(Directions::Sphere, Scheme::Central, 4),
            update: Update::Plain,
            perturbation: Some(0.0),
        },
        Method::Gradient {
            est: est(Directions::Gaussian, Scheme::Forward, 4),
            update: Update::Momentum { beta: 0.9 },
            perturbation: None,
        },
    ];
    for m in methods {
        let out = run(m.clone(), adaptive, Func::Sphere, &x0, 20_000);
        assert!(out.fun < 1e-6, "{m:?}: {} {:?} nit {} nfev {}", out.fun, out.termination, out.nit, out.nfev);
    }
    for noise in [Noise::Isotropic, Noise::Anisotropic] {
        for hopping in [false, true] {
            let m = Method::Cbo(Cbo {
                particles: 50,
                alpha: 1e5,
                lambda: 1.0,
                sigma: match (hopping, noise) {
                    (true, _) => 1.0,
                    (false, Noise::Anisotropic) => 1.18,
                    // isotropic noise has d times the variance: contraction needs d sigma² < 2 lambda
                    (false, Noise::Isotropic) => 1.18 / (d as f64).sqrt(),
                },
                dt: 0.1,
                noise,
                hopping,
                sigma_decay: 0.97,
                init_std: 2.0,
            });
            let out = run(m.clone(), adaptive, Func::Sphere, &vec![2.0; d], 20_000);
            // A sanity check from f(x0) = 32 (CBO's accuracy is examined in tests/test_zo.py).
            assert!(out.fun < 0.5, "{noise:?} hopping={hopping}: sphere {}", out.fun);
            let out = run(m, adaptive, Func::Rastrigin, &vec![2.0; d], 20_000);
            assert!(out.fun.is_finite() && out.nit > 10, "{noise:?} hopping={hopping}: rastrigin {}", out.fun);
        }
    }
    // DeepZero's sparse CGE with a fixed step (random subsets of 3 of the 8 coordinates).
    let sparse = Method::Gradient {
        est: est(Directions::Coordinates { n: 3 }, Scheme::Central, 0),
        update: Update::Plain,
        perturbation: None,
    };
    let out = run(sparse, Step::Fixed(0.4), Func::Sphere, &x0, 20_000);
    assert!(out.fun < 1e-6, "sparse cge: {}", out.fun);
    let rank = Method::Rank { m: 8, k: 3, mu: 1e-2, decay: 0.99 };
    let out = run(rank, Step::Fixed(0.1), Func::Sphere, &x0, 20_000);
    assert!(out.fun < 1e-3, "rank: {}", out.fun);
}

#[test]
fn same_seed_same_run_any_pool() {
    let d = 6;
    let m = Method::Cbo(Cbo {
        particles: 30,
        alpha: 10.0,
        lambda: 1.0,
        sigma: 0.7,
        dt: 0.1,
        noise: Noise::Anisotropic,
        hopping: false,
        sigma_decay: 1.0,
        init_std: 1.0,
    });
    let go = |w| {
        crate::parallel::with_workers(Some(w), || run(m.clone(), Step::Fixed(0.0), Func::Ackley, &vec![1.0; d], 3000))
    };
    let (a, b) = (go(1), go(2));
    assert_eq!(a.x, b.x);
    assert_eq!(a.history, b.history);
}

#[test]
fn nan_ends_the_run_or_counts_as_inf() {
    struct NanAbove;
    impl Objective<f64> for NanAbove {
        fn dim(&self) -> usize {
            2
        }
        fn eval(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
            for (o, r) in out.iter_mut().zip(x.chunks(2)) {
                *o = if r[0] > 0.5 { f64::NAN } else { r[0] * r[0] + r[1] * r[1] };
            }
            Ok(())
        }
    }
    let lim = Limits { maxfev: 1000, maxiter: 100, f_target: f64::NEG_INFINITY, take: false };
    let mut o = opts(Method::Rank { m: 6, k: 6, mu: 1.0, decay: 1.0 }, Step::Fixed(0.1), 2);
    let mut zo = Zo::new(&[0.4, 0.0], o.clone()).unwrap();
    let out = solve(&mut zo, &NanAbove, &lim, &mut NoObserver).unwrap();
    assert!(matches!(out.termination, Termination::Numerical(ref s) if s.contains("NaN")));
    assert!(out.fun.is_finite());
    o.nan_as_inf = true;
    let mut zo = Zo::new(&[0.4, 0.0], o).unwrap();
    let out = solve(&mut zo, &NanAbove, &lim, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::MaxIter);
}

#[test]
fn bounds_hold() {
    let d = 4;
    let mut o = opts(gaussian(2), Step::Adaptive { step0: 0.5, grow: 1.25, shrink: 0.5 }, d);
    o.lower = vec![0.5; d];
    o.upper = vec![2.0; d];
    o.xtol = 1e-12;
    let mut zo = Zo::new(&[1.0; 4], o).unwrap();
    let lim = Limits { maxfev: 5000, maxiter: u64::MAX, f_target: f64::NEG_INFINITY, take: false };
    let out = solve(&mut zo, &TestFunction { func: Func::Sphere, d }, &lim, &mut NoObserver).unwrap();
    assert!(out.x_last.iter().all(|&v| (0.5..=2.0).contains(&v)));
    assert!((out.fun - 1.0).abs() < 1e-5, "{}", out.fun);
}

/// A test function seen through each [`Evaluation`] mode ([`Evaluation::Values`] computes the
/// batch on its own replica of the state, as the seed transport's workers do).
struct Modes {
    func: Func,
    d: usize,
    mode: super::super::functions::Evaluation,
    replica: std::sync::Mutex<Option<Zo<f32>>>,
}

impl Objective<f32> for Modes {
    fn dim(&self) -> usize {
        self.d
    }
    fn eval(&self, x: &[f32], out: &mut [f64]) -> Result<()> {
        TestFunction { func: self.func, d: self.d }.eval(x, out)
    }
    fn evaluation(&self) -> super::super::functions::Evaluation {
        self.mode
    }
    fn values(&self, nit: u64, digest: &dyn Fn() -> u64, out: &mut [f64]) -> Result<()> {
        let mut guard = self.replica.lock().unwrap();
        let rep = guard.as_mut().unwrap();
        assert_eq!(rep.nit(), nit);
        assert_eq!(rep.state_hash(), digest());
        let mut p = vec![0.0f32; self.d];
        for (i, o) in out.iter_mut().enumerate() {
            rep.point(i, &mut p)?;
            *o = self.func.value(&p);
        }
        rep.tell(out)
    }
}

#[test]
fn points_one_at_a_time_and_replicas_reproduce_the_batch_run() {
    use super::super::functions::Evaluation;
    let d = 6;
    let x0: Vec<f32> = (0..d).map(|i| 0.3 * i as f32 - 0.7).collect();
    let est = |dirs, scheme| Estimator { dirs, scheme, q: 3, mu: 1e-3 };
    let adaptive = Step::Adaptive { step0: 0.1, grow: 1.25, shrink: 0.5 };
    let methods = [
        (
            Method::Gradient {
                est: est(Directions::Gaussian, Scheme::Forward),
                update: Update::Plain,
                perturbation: None,
            },
            adaptive,
        ),
        (
            Method::Gradient {
                est: est(Directions::Sphere, Scheme::Central),
                update: Update::Momentum { beta: 0.9 },
                perturbation: Some(0.0),
            },
            adaptive,
        ),
        (
            Method::Gradient {
                est: est(Directions::Coordinates { n: 2 }, Scheme::Forward),
                update: Update::Sign,
                perturbation: None,
            },
            Step::Fixed(0.01),
        ),
        (
            Method::Gradient {
                est: est(Directions::Sphere, Scheme::Forward),
                update: Update::AdaMM { beta1: 0.9, beta2: 0.99, eps: 1e-12 },
                perturbation: None,
            },
            adaptive,
        ),
        (Method::Rank { m: 5, k: 5, mu: 0.01, decay: 1.0 }, Step::Fixed(0.05)),
    ];
    for (method, step) in methods {
        for bounded in [false, true] {
            let mut o = opts(method.clone(), step, d);
            if bounded {
                o.lower = vec![-0.5; d];
                o.upper = vec![0.4; d];
            }
            let lim = Limits { maxfev: 300, maxiter: u64::MAX, f_target: f64::NEG_INFINITY, take: false };
            let mut outs = Vec::new();
            for mode in [Evaluation::Batch, Evaluation::PerPoint, Evaluation::Values] {
                let mut zo = Zo::new(&x0, o.clone()).unwrap();
                let replica = std::sync::Mutex::new(Some(Zo::new(&x0, o.clone()).unwrap()));
                let f = Modes { func: Func::Rastrigin, d, mode, replica };
                let out = solve(&mut zo, &f, &lim, &mut NoObserver).unwrap();
                outs.push((out.x, out.x_last, out.fun.to_bits(), out.nit, out.history, zo.state_hash()));
            }
            assert!(outs[0].3 > 10);
            assert_eq!(outs[0], outs[1], "{method:?} bounded {bounded}: per point");
            assert_eq!(outs[0], outs[2], "{method:?} bounded {bounded}: replica values");
        }
    }
}

#[test]
fn point_equals_the_row_of_ask() {
    let d = 5;
    let mut o = opts(gaussian(4), Step::Fixed(0.1), d);
    o.lower = vec![-0.1; d];
    o.upper = vec![1.0; d];
    let mut zo = Zo::new(&[0.0f64, 0.5, 1.0, -0.1, 0.2], o).unwrap();
    let batch = zo.ask().unwrap().to_vec();
    let mut p = vec![0.0; d];
    for (i, row) in batch.chunks(d).enumerate() {
        zo.point(i, &mut p).unwrap();
        assert_eq!(&p[..], row);
    }
    assert!(zo.point(5, &mut p).is_err());
}
