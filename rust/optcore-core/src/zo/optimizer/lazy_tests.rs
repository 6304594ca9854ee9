//! The best point and the previous iterate kept as seeds and replays (`lazy`): on a rugged
//! objective the chain grows past one step and is replayed, and every step back and every
//! best point is bit for bit the point kept as vectors would give.

use super::super::estimate::{Directions, Scheme};
use super::lazy::{Best, REPLAY_SAVINGS};
use super::*;

/// A bowl with a fine ripple: lucky points stay best for many steps.
fn rugged(x: &[f64]) -> f64 {
    let s: f64 = x.iter().enumerate().map(|(j, v)| v * (j + 1) as f64).sum();
    x.iter().map(|v| (v - 0.3) * (v - 0.3)).sum::<f64>() + 0.05 * (2e3 * s).sin()
}

fn check(dirs: Directions, update: Update, lower: f64, upper: f64, fails: usize) -> (usize, usize) {
    let d = 9;
    let est = Estimator { dirs, scheme: Scheme::Forward, q: 3, mu: 1e-3 };
    let o = Options {
        method: Method::Gradient { est, update, perturbation: None },
        step: Step::Adaptive { step0: 0.1, grow: 1.25, shrink: 0.5 },
        lower: vec![lower; d],
        upper: vec![upper; d],
        xtol: 0.0,
        nan_as_inf: true,
        seed: 4,
    };
    let x0: Vec<f64> = (0..d).map(|j| -0.4 + 0.07 * j as f64).collect();
    let mut zo = Zo::new(&x0, o).unwrap();
    let (mut best_x, mut best_f) = (Vec::new(), f64::INFINITY);
    let (mut longest, mut replayed) = (0, 0);
    let mut centres: Vec<Vec<f64>> = Vec::new();
    let mut fc: Vec<f64> = Vec::new();
    let mut calls = 0;
    for _ in 0..300 {
        let b = zo.ask().unwrap().to_vec();
        // Every `fails`-th evaluation fails (+inf): the iteration stays, or steps back.
        let mut v: Vec<f64> = b.chunks(d).map(rugged).collect();
        for f in v.iter_mut() {
            calls += 1;
            if fails > 0 && calls % fails == 0 {
                *f = f64::INFINITY;
            }
        }
        for (p, &f) in b.chunks(d).zip(&v) {
            if f < best_f {
                (best_x, best_f) = (p.to_vec(), f);
            }
        }
        centres.push(b[..d].to_vec());
        fc.push(v[0]);
        let credit = zo.credit;
        zo.tell(&v).unwrap();
        if zo.credit < credit {
            replayed += 1;
        }
        longest = longest.max(zo.chain.len());
        let (x, f) = zo.best();
        assert_eq!((x, f), (best_x.clone(), best_f));
        assert!(zo.anchor.is_empty() || zo.prev.is_empty() || matches!(zo.best, Best::Dense(_)));
    }
    // A step back (the center's value rose) returns to exactly the previous center.
    for k in 1..centres.len() - 1 {
        if fc[k] > fc[k - 1] {
            assert_eq!(centres[k + 1], centres[k - 1], "iteration {k}");
        }
    }
    assert!(zo.credit <= REPLAY_SAVINGS);
    (longest, replayed)
}

#[test]
fn replayed_previous_iterate_and_regenerated_best_point_are_the_kept_ones() {
    let inf = f64::INFINITY;
    for fails in [0, 7] {
        let (longest, replayed) = check(Directions::Gaussian, Update::Plain, -inf, inf, fails);
        assert!(longest >= 2 && replayed > 0, "chain {longest}, replays {replayed}");
        let (longest, replayed) = check(Directions::Sphere, Update::Sign, -0.3, 0.25, fails);
        assert!(longest >= 1 && replayed > 0, "chain {longest}, replays {replayed}");
        // Not replayable: the best point and the previous iterate are kept as vectors when needed.
        let (longest, _) = check(Directions::Gaussian, Update::Momentum { beta: 0.5 }, -inf, inf, fails);
        assert_eq!(longest, 0);
        check(Directions::Coordinates { n: 4 }, Update::Plain, -0.3, 0.25, fails);
    }
}
