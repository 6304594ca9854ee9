//! The direct lower solve ([`super::direct`]): dense Hessians against products, the forced and
//! automatic paths against the iterative one, and the size limit.

use super::direct::{LowerSolve, FORCED_MAX_DY};
use super::methods::{Method, Options, Outer};
use super::oracle::{Batch, Oracle, Probe};
use super::{minimize, Logistic, Ridge};
use crate::linalg::Design;
use crate::rng::Rng;
use crate::solver::{NoObserver, Termination};

fn design(n: usize, p: usize, r: &mut Rng) -> Design<f64> {
    Design::dense((0..n * p).map(|_| r.normal()).collect(), n, p).unwrap()
}

/// The dense Hessian of `o` at `(x, y)` equals its columns `H e_j` from the products.
fn hessian_matches_products(o: &dyn Oracle<f64>, x: &[f64], y: &[f64]) {
    let dy = y.len();
    let mut h = vec![0.0; dy * dy];
    o.hessian_yy(x, y, &mut h).expect("a dense Hessian").unwrap();
    let mut e = vec![0.0; dy];
    let mut col = vec![0.0; dy];
    for j in 0..dy {
        e[j] = 1.0;
        o.second(Probe { x, y, v: &e, batch: None }, Some(&mut col), None).unwrap();
        e[j] = 0.0;
        for i in 0..dy {
            let d = (h[i * dy + j] - col[i]).abs();
            assert!(d < 1e-12 * (1.0 + col[i].abs()), "H[{i}, {j}] = {} vs {}", h[i * dy + j], col[i]);
        }
    }
}

fn ridge(n: usize, p: usize, seed: u64) -> Ridge<f64> {
    let mut r = Rng::new(seed);
    let (xt, xv) = (design(n, p, &mut r), design(n, p, &mut r));
    let tt = (0..n).map(|_| r.normal()).collect();
    let tv = (0..n).map(|_| r.normal()).collect();
    Ridge::new(xt, tt, xv, tv, true).unwrap()
}

#[test]
fn dense_hessians_match_the_products() {
    let rg = ridge(30, 6, 1);
    hessian_matches_products(&rg, &[0.1, -0.4, 0.3, 0.0, 1.2, -2.0], &[0.5, -1.0, 0.2, 0.7, 0.1, 0.0]);
    let mut r = Rng::new(5);
    let (n, p, k) = (25, 4, 3);
    let lab: Vec<usize> = (0..n).map(|i| i % k).collect();
    let lg = Logistic::new(design(n, p, &mut r), lab.clone(), design(n, p, &mut r), lab, k, 0.1).unwrap();
    let x: Vec<f64> = (0..n).map(|_| r.normal()).collect();
    let w: Vec<f64> = (0..p * k).map(|_| 0.3 * r.normal()).collect();
    if lg.hessian_costs().is_some() {
        hessian_matches_products(&lg, &x, &w);
    }
}

fn lbfgs(method: Method, lower: LowerSolve) -> Options<f64> {
    let mut o = Options::<f64>::new(method);
    o.outer = Outer::Lbfgs;
    o.tol = 1e-10;
    o.lower_solve = lower;
    o
}

#[test]
fn direct_and_iterative_paths_reach_the_same_ridge_optimum() {
    let rg = ridge(60, 12, 2);
    let mut xs = Vec::new();
    for lower in [LowerSolve::Direct, LowerSolve::Iterative, LowerSolve::Auto] {
        // Bounds keep λ finite (unbounded, some λ_j run off to −∞ where F is flat).
        let mut o = lbfgs(Method::Aid, lower);
        o.bounds = Some((vec![-6.0; 12], vec![6.0; 12]));
        let out = minimize(&rg, &[0.0; 12], &[0.0; 12], &o, &mut NoObserver).unwrap();
        assert!(matches!(out.termination, Termination::Converged), "{lower:?}: {:?}", out.termination);
        assert!(out.measured && out.hypergrad_norm <= 1e-10, "{lower:?}: {}", out.hypergrad_norm);
        assert_eq!(out.direct, lower != LowerSolve::Iterative || out.direct, "{lower:?}");
        if lower == LowerSolve::Direct {
            assert!(out.direct && out.counts.hessians > 0);
        }
        if lower == LowerSolve::Iterative {
            assert!(!out.direct && out.counts.hessians == 0);
        }
        xs.push((out.x, out.fun));
    }
    for (x, f) in &xs[1..] {
        let d = x.iter().zip(&xs[0].0).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(d < 1e-6, "paths differ by {d}");
        assert!((f - xs[0].1).abs() <= 1e-12 * f.abs(), "F {f} vs {}", xs[0].1);
    }
}

/// An oracle that only has dimensions: `minimize` must refuse it before calling anything.
struct Huge;

impl Oracle<f64> for Huge {
    fn dims(&self) -> (usize, usize) {
        (1, FORCED_MAX_DY + 1)
    }
    fn grad_f(&self, _: &[f64], _: &[f64], _: Batch, _: &mut [f64], _: &mut [f64]) -> crate::error::Result<()> {
        unreachable!()
    }
    fn grad_g(&self, _: &[f64], _: &[f64], _: Batch, _: Option<&mut [f64]>, _: &mut [f64]) -> crate::error::Result<()> {
        unreachable!()
    }
}

#[test]
fn forced_direct_refuses_a_too_large_lower_level() {
    let o = lbfgs(Method::Aid, LowerSolve::Direct);
    let err = minimize(&Huge, &[0.0], &vec![0.0; FORCED_MAX_DY + 1], &o, &mut NoObserver).err().unwrap();
    assert!(format!("{err}").contains("lower_solve='direct'"), "{err}");
    let mut o = lbfgs(Method::Itd, LowerSolve::Direct);
    o.outer = Outer::Lbfgs;
    let err = minimize(&Huge, &[0.0], &vec![0.0; FORCED_MAX_DY + 1], &o, &mut NoObserver).err().unwrap();
    assert!(format!("{err}").contains("'aid' or 'exact'"), "{err}");
}

/// The pieces of one direct evaluation of ridge at `d = 500`, `n = 800` (the bench's case,
/// `benches/bilevel_outer.py`), best of 30, on the global pool: the Hessian buffer and build,
/// the factorisation, one solve, one Gram product (`grad_g`, `grad_f`, `value_f` each make
/// one) and a whole evaluation through `minimize` with `maxiter` outer iterations.
#[test]
#[ignore]
fn timing_of_a_direct_ridge_evaluation() {
    use crate::linalg::chol::Cholesky;
    let (n, p) = (800, 500);
    let rg = ridge(n, p, 3);
    let x: Vec<f64> = (0..p).map(|j| 0.3 * ((j as f64) * 0.7).sin()).collect();
    let y: Vec<f64> = (0..p).map(|j| 0.1 * ((j as f64) * 0.3).cos()).collect();
    let best = |f: &mut dyn FnMut()| {
        let mut b = f64::INFINITY;
        for _ in 0..30 {
            let t = std::time::Instant::now();
            f();
            b = b.min(t.elapsed().as_secs_f64() * 1e3);
        }
        b
    };
    let t_buf = best(&mut || {
        std::hint::black_box(Cholesky::buffer(p, "H").unwrap());
    });
    let mut h = Cholesky::buffer(p, "H").unwrap();
    let t_build = best(&mut || {
        rg.hessian_yy(&x, &y, &mut h).unwrap().unwrap();
    });
    let t_factor = best(&mut || {
        std::hint::black_box(Cholesky::factor(h.clone(), p, "H").unwrap());
    });
    let t_clone = best(&mut || {
        std::hint::black_box(h.clone());
    });
    let ch = Cholesky::factor(h.clone(), p, "H").unwrap();
    let mut b = y.clone();
    let t_solve = best(&mut || {
        b.copy_from_slice(&y);
        ch.solve_in_place(&mut b);
    });
    let mut g = vec![0.0; p];
    let t_gram = best(&mut || {
        rg.grad_g(&x, &y, None, None, &mut g).unwrap();
    });
    let mut o = lbfgs(Method::Aid, LowerSolve::Direct);
    o.tol = 1e-12;
    o.maxiter = 100;
    let t = std::time::Instant::now();
    let out = minimize(&rg, &vec![0.0; p], &vec![0.0; p], &o, &mut NoObserver).unwrap();
    let per = t.elapsed().as_secs_f64() * 1e3 / out.nit as f64;
    eprintln!(
        "buffer {t_buf:.3} ms, build {t_build:.3}, factor {:.3} (incl. check, zeroing), solve {t_solve:.3}, \
         Gram product {t_gram:.3}; minimize: {per:.3} ms per outer iteration ({} its, {} hessians, {} grad_g)",
        t_factor - t_clone,
        out.nit,
        out.counts.hessians,
        out.counts.grad_g
    );
}
