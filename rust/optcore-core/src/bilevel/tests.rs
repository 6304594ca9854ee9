//! Checks of the bilevel core against dense closed forms.

use super::*;
use crate::linalg::lu::Lu;
use crate::linalg::Design;
use crate::operators::{BoxProj, SharedOp};
use crate::rng::Rng;
use crate::solver::NoObserver;
use std::sync::Arc;

fn solve(a: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let lu = Lu::factor(a, n, 1e-14, "test matrix").unwrap();
    let mut x = b.to_vec();
    lu.solve_in_place(&mut x);
    x
}

fn random_quadratic(dx: usize, dy: usize, seed: u64) -> Quadratic {
    let mut r = Rng::new(seed);
    let mut m = |n: usize, s: f64| -> Vec<f64> { (0..n).map(|_| s * r.normal()).collect() };
    let u = m(dy * dy, 1.0);
    let mut a = vec![0.0; dy * dy];
    for i in 0..dy {
        for j in 0..dy {
            a[i * dy + j] = (0..dy).map(|k| u[k * dy + i] * u[k * dy + j]).sum::<f64>() / dy as f64
                + if i == j { 0.5 } else { 0.0 };
        }
    }
    let eye = |n: usize, c: f64| -> Vec<f64> { (0..n * n).map(|i| if i % (n + 1) == 0 { c } else { 0.0 }).collect() };
    Quadratic {
        dx,
        dy,
        a_mat: a,
        b_mat: m(dx * dy, 0.3),
        a_vec: m(dy, 1.0),
        c_mat: eye(dx, 0.1),
        q_mat: eye(dy, 1.0),
        r_mat: m(dx * dy, 0.1),
        p_mat: eye(dx, 1.0),
        p_vec: m(dx, 1.0),
        q_vec: m(dy, 1.0),
    }
}

/// `∇F(x)` and `y*(x)` by dense solves (independent of the core's hypergradient code).
fn closed_form(q: &Quadratic, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (dx, dy) = (q.dx, q.dy);
    let rhs: Vec<f64> =
        (0..dy).map(|j| -(q.a_vec[j] + (0..dx).map(|i| q.b_mat[i * dy + j] * x[i]).sum::<f64>())).collect();
    let y = solve(&q.a_mat, dy, &rhs);
    let mut gx = vec![T0; dx];
    let mut gy = vec![T0; dy];
    Oracle::<f64>::grad_f(q, x, &y, None, &mut gx, &mut gy).unwrap();
    let v = solve(&q.a_mat, dy, &gy);
    let hg: Vec<f64> = (0..dx).map(|i| gx[i] - (0..dy).map(|j| q.b_mat[i * dy + j] * v[j]).sum::<f64>()).collect();
    (hg, y)
}
const T0: f64 = 0.0;

fn optimum(q: &Quadratic) -> Vec<f64> {
    let dx = q.dx;
    let g0 = closed_form(q, &vec![0.0; dx]).0;
    let mut h = vec![0.0; dx * dx];
    for j in 0..dx {
        let mut e = vec![0.0; dx];
        e[j] = 1.0;
        let gj = closed_form(q, &e).0;
        for i in 0..dx {
            h[i * dx + j] = gj[i] - g0[i];
        }
    }
    solve(&h, dx, &g0.iter().map(|v| -v).collect::<Vec<_>>())
}

#[test]
fn hypergradient_matches_closed_form_on_quadratic() {
    let q = random_quadratic(4, 7, 1);
    let x = [0.3, -1.0, 0.5, 2.0];
    let (want, y) = closed_form(&q, &x);
    for m in [HgMethod::Exact, HgMethod::Cg { tol: 1e-14, maxiter: 100 }] {
        let (got, _, _) = hypergradient::<f64>(&q, &x, &y, m).unwrap();
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-10, "{m:?}: {err}");
    }
    let (got, _, _) = hypergradient::<f64>(&q, &x, &y, HgMethod::Neumann { terms: 2000, eta: 0.1 }).unwrap();
    let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(err < 1e-8, "neumann: {err}");
}

/// The quadratic with only the second-order products in `.1` analytic (`(hyy, hxy)`); the
/// others come from the core's finite differences of `grad_g`.
struct Declared(Quadratic, (bool, bool));
impl Oracle<f64> for Declared {
    fn dims(&self) -> (usize, usize) {
        (self.0.dx, self.0.dy)
    }
    fn grad_f(&self, x: &[f64], y: &[f64], b: Batch, gx: &mut [f64], gy: &mut [f64]) -> crate::error::Result<()> {
        self.0.grad_f(x, y, b, gx, gy)
    }
    fn grad_g(
        &self,
        x: &[f64],
        ys: &[f64],
        b: Batch,
        gx: Option<&mut [f64]>,
        gy: &mut [f64],
    ) -> crate::error::Result<()> {
        self.0.grad_g(x, ys, b, gx, gy)
    }
    fn analytic(&self) -> (bool, bool) {
        self.1
    }
    fn products(
        &self,
        at: Probe<'_, f64>,
        hyy: Option<&mut [f64]>,
        hxy: Option<&mut [f64]>,
    ) -> crate::error::Result<()> {
        assert!(hyy.is_none() || self.1 .0, "the policy asks only for the declared products");
        assert!(hxy.is_none() || self.1 .1, "the policy asks only for the declared products");
        self.0.products(at, hyy, hxy)
    }
}

#[test]
fn finite_difference_second_order_matches_analytic() {
    let q = random_quadratic(3, 6, 2);
    let (x, y) = ([0.5, -0.2, 1.0], [0.1, 0.2, -0.3, 0.4, 0.0, 1.5]);
    let v = [1.0, -2.0, 0.5, 0.0, 3.0, -1.0];
    let (mut h1, mut j1, mut h2, mut j2) = ([0.0; 6], [0.0; 3], [0.0; 6], [0.0; 3]);
    let at = Probe { x: &x, y: &y, v: &v, batch: None };
    q.second(at, Some(&mut h1), Some(&mut j1)).unwrap();
    Declared(random_quadratic(3, 6, 2), (false, false)).second(at, Some(&mut h2), Some(&mut j2)).unwrap();
    for (a, b) in h1.iter().zip(&h2).chain(j1.iter().zip(&j2)) {
        assert!((a - b).abs() < 1e-8 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

#[test]
fn second_policy_mixes_analytic_and_finite_differences() {
    let q = random_quadratic(3, 6, 2);
    let (x, y) = ([0.5, -0.2, 1.0], [0.1, 0.2, -0.3, 0.4, 0.0, 1.5]);
    let v = [1.0, -2.0, 0.5, 0.0, 3.0, -1.0];
    let (mut h1, mut j1, mut h2, mut j2, mut j3) = ([0.0; 6], [0.0; 3], [0.0; 6], [0.0; 3], [0.0; 3]);
    let at = Probe { x: &x, y: &y, v: &v, batch: None };
    q.second(at, Some(&mut h1), Some(&mut j1)).unwrap();
    let o = Declared(random_quadratic(3, 6, 2), (true, false));
    assert!(!o.has_second());
    o.second(at, Some(&mut h2), Some(&mut j2)).unwrap();
    assert_eq!(h1, h2, "the analytic product is used as is");
    fd_second(&o, at, None, Some(&mut j3)).unwrap();
    assert_eq!(j2, j3, "the other product is the finite difference");
    for (a, b) in j1.iter().zip(&j2) {
        assert!((a - b).abs() < 1e-8 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

/// Central differences of `value` along coordinate directions against an analytic gradient.
fn check_grad(value: impl Fn(&[f64]) -> f64, at: &[f64], grad: &[f64], idx: &[usize]) {
    for &j in idx {
        let h = 1e-5;
        let (mut p, mut m) = (at.to_vec(), at.to_vec());
        p[j] += h;
        m[j] -= h;
        let fd = (value(&p) - value(&m)) / (2.0 * h);
        assert!((fd - grad[j]).abs() < 1e-6 * (1.0 + fd.abs()), "coordinate {j}: fd {fd} vs {}", grad[j]);
    }
}

fn random_design(n: usize, p: usize, r: &mut Rng) -> Design<f64> {
    Design::dense((0..n * p).map(|_| r.normal()).collect(), n, p).unwrap()
}

#[test]
fn ridge_and_logistic_gradients_match_finite_differences() {
    let mut r = Rng::new(3);
    let (n, p) = (20, 4);
    let ridge = Ridge::new(
        random_design(n, p, &mut r),
        (0..n).map(|_| r.normal()).collect(),
        random_design(n, p, &mut r),
        (0..n).map(|_| r.normal()).collect(),
        true,
    )
    .unwrap();
    let lam = [0.1, -0.5, 0.3, 0.0];
    let w = [0.5, -1.0, 0.2, 0.7];
    let (mut gx, mut gy) = ([0.0; 4], [0.0; 4]);
    ridge.grad_g(&lam, &w, None, Some(&mut gx), &mut gy).unwrap();
    check_grad(|w| ridge.value_g(&lam, w).unwrap().unwrap(), &w, &gy, &[0, 1, 2, 3]);
    check_grad(|l| ridge.value_g(l, &w).unwrap().unwrap(), &lam, &gx, &[0, 1, 2, 3]);

    let k = 3;
    let csr = {
        let dense = random_design(n, p, &mut r);
        let Design::Dense { data, .. } = dense else { unreachable!() };
        let (mut ip, mut ix, mut dv) = (vec![0], vec![], vec![]);
        for i in 0..n {
            for j in 0..p {
                if (i + j) % 3 != 0 {
                    ix.push(j);
                    dv.push(data[i * p + j]);
                }
            }
            ip.push(ix.len());
        }
        Design::csr(ip, ix, dv, n, p).unwrap()
    };
    let lab: Vec<usize> = (0..n).map(|i| i % k).collect();
    let lg = Logistic::new(csr, lab.clone(), random_design(n, p, &mut r), lab, k, 0.1).unwrap();
    let x: Vec<f64> = (0..n).map(|_| r.normal()).collect();
    let wv: Vec<f64> = (0..p * k).map(|_| 0.3 * r.normal()).collect();
    let (mut gx, mut gy) = (vec![0.0; n], vec![0.0; p * k]);
    lg.grad_g(&x, &wv, None, Some(&mut gx), &mut gy).unwrap();
    check_grad(|w| lg.value_g(&x, w).unwrap().unwrap(), &wv, &gy, &[0, 3, 7, 11]);
    check_grad(|xx| lg.value_g(xx, &wv).unwrap().unwrap(), &x, &gx, &[0, 5, 19]);
    let (mut fx, mut fy) = (vec![0.0; n], vec![0.0; p * k]);
    lg.grad_f(&x, &wv, None, &mut fx, &mut fy).unwrap();
    check_grad(|w| lg.value_f(&x, w).unwrap().unwrap(), &wv, &fy, &[1, 4, 10]);
    // Analytic second-order products against finite differences of the analytic gradient.
    let v: Vec<f64> = (0..p * k).map(|_| r.normal()).collect();
    let (mut h1, mut j1, mut h2, mut j2) = (vec![0.0; p * k], vec![0.0; n], vec![0.0; p * k], vec![0.0; n]);
    let at = Probe { x: &x, y: &wv, v: &v, batch: None };
    lg.second(at, Some(&mut h1), Some(&mut j1)).unwrap();
    fd_second(&lg, at, Some(&mut h2), Some(&mut j2)).unwrap();
    for (a, b) in h1.iter().zip(&h2).chain(j1.iter().zip(&j2)) {
        assert!((a - b).abs() < 1e-6 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

fn run(q: &dyn Oracle<f64>, dx: usize, dy: usize, opts: &Options<f64>) -> Output<f64> {
    minimize(q, &vec![0.0; dx], &vec![0.0; dy], opts, &mut NoObserver).unwrap()
}

#[test]
fn aid_f2sa_penalty_itd_soba_converge_on_a_quadratic() {
    let q = random_quadratic(3, 8, 4);
    let xs = optimum(&q);
    for (method, maxiter, tol) in [
        (Method::Aid, 500, 1e-8),
        (Method::Itd, 2000, 1e-4),
        (Method::Soba, 5000, 1e-6),
        (Method::F2sa, 3000, 1e-3),
        (Method::Penalty, 2000, 1e-3),
    ] {
        let mut o = Options::new(method);
        o.maxiter = maxiter;
        o.tol = 1e-10;
        if method == Method::Itd {
            // ITD differentiates the truncated unrolled map: its fixed point is biased unless
            // the unrolling is long enough for (I − αH)^T to vanish.
            o.inner_steps = 300;
        }
        if method == Method::Penalty {
            o.inner_steps = 200;
            o.inner_tol = 1e-12;
        }
        let out = run(&q, 3, 8, &o);
        let err = out.x.iter().zip(&xs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < tol, "{method:?}: |x - x*| = {err}, status {:?}", out.termination);
    }
}

#[test]
fn penalty_solves_bda_counterexample_with_non_singleton_lower_level() {
    // f = ½(x − y₂)² + ½(y₁ − 1)², g = ½y₁² − x y₁ (any y₂ is lower-optimal); x* = 1, y* = (1, 1).
    struct Bda;
    impl Oracle<f64> for Bda {
        fn dims(&self) -> (usize, usize) {
            (1, 2)
        }
        fn grad_f(&self, x: &[f64], y: &[f64], _: Batch, gx: &mut [f64], gy: &mut [f64]) -> crate::error::Result<()> {
            gx[0] = x[0] - y[1];
            gy[0] = y[0] - 1.0;
            gy[1] = y[1] - x[0];
            Ok(())
        }
        fn grad_g(
            &self,
            x: &[f64],
            ys: &[f64],
            _: Batch,
            mut gx: Option<&mut [f64]>,
            gy: &mut [f64],
        ) -> crate::error::Result<()> {
            for (b, y) in ys.chunks(2).enumerate() {
                gy[2 * b] = y[0] - x[0];
                gy[2 * b + 1] = 0.0;
                if let Some(g) = gx.as_deref_mut() {
                    g[b] = -y[0];
                }
            }
            Ok(())
        }
    }
    let mut o = Options::new(Method::Penalty);
    o.maxiter = 3000;
    o.sigma = 1e-3;
    o.inner_steps = 100;
    let bx: SharedOp<f64> = Arc::new(BoxProj::new(vec![-100.0], vec![100.0]).unwrap());
    o.proj_x = Some(bx);
    let out = minimize(&Bda, &[-5.0], &[0.0, 0.0], &o, &mut NoObserver).unwrap();
    assert!((out.x[0] - 1.0).abs() < 1e-2, "x = {:?}", out.x);
    assert!((out.y[0] - 1.0).abs() < 1e-2 && (out.y[1] - 1.0).abs() < 1e-2, "y = {:?}", out.y);
}

#[test]
fn stochastic_runs_are_reproducible_by_seed() {
    let mut r = Rng::new(5);
    let (n, p) = (50, 3);
    let ridge = Ridge::new(
        random_design(n, p, &mut r),
        (0..n).map(|_| r.normal()).collect(),
        random_design(n, p, &mut r),
        (0..n).map(|_| r.normal()).collect(),
        false,
    )
    .unwrap();
    let mut o = Options::new(Method::Soba);
    o.maxiter = 50;
    o.batch_f = 8;
    o.batch_g = 8;
    o.seed = 11;
    let a = run(&ridge, 1, p, &o);
    let b = run(&ridge, 1, p, &o);
    assert_eq!(a.x, b.x);
    o.seed = 12;
    let c = run(&ridge, 1, p, &o);
    assert_ne!(a.x, c.x);
}

#[test]
fn lbfgs_outer_reaches_the_closed_form_optimum() {
    let q = random_quadratic(5, 12, 3);
    let want = optimum(&q);
    for method in [Method::Aid, Method::Exact, Method::Itd] {
        let mut o = Options::<f64>::new(method);
        o.outer = Outer::Lbfgs;
        o.tol = 1e-10;
        let out = minimize::<f64>(&q, &[0.0; 5], &[0.0; 12], &o, &mut NoObserver).unwrap();
        let err = out.x.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(matches!(out.termination, crate::solver::Termination::Converged), "{method:?}: {:?}", out.termination);
        assert!(err < 1e-9, "{method:?}: {err}");
        assert!(out.nit < 100, "{method:?}: {} iterations", out.nit);
    }
}

#[test]
fn lbfgs_outer_respects_bounds() {
    let q = random_quadratic(5, 12, 4);
    let free = optimum(&q);
    let mut o = Options::<f64>::new(Method::Aid);
    o.outer = Outer::Lbfgs;
    o.tol = 1e-9;
    // Box the unconstrained optimum's first two coordinates out.
    let lo: Vec<f64> = free.iter().enumerate().map(|(i, v)| if i < 2 { v + 0.5 } else { -1e3 }).collect();
    o.bounds = Some((lo.clone(), vec![1e3; 5]));
    let out = minimize::<f64>(&q, &[0.0; 5], &[0.0; 12], &o, &mut NoObserver).unwrap();
    assert!(
        matches!(out.termination, crate::solver::Termination::Converged),
        "{:?} nit {} pg {} x {:?} lo {:?}",
        out.termination,
        out.nit,
        out.hypergrad_norm,
        out.x,
        lo
    );
    assert!(out.x.iter().zip(&lo).all(|(x, l)| x >= l));
    assert_eq!(&out.x[..2], &lo[..2]);
}

/// The measurement's lower-level solve with a step estimated where the lower level was
/// flatter (ridge at `λ = 0`, measured at `exp(λ₀) ≈ 1.6e5`): plain accelerated gradient
/// descent diverges and `grad_g` overflows; the checked solve re-estimates the step there.
#[test]
fn measure_survives_a_stale_lower_step() {
    let mut r = Rng::new(7);
    let (n, p) = (20, 3);
    let ridge = Ridge::new(
        random_design(n, p, &mut r),
        (0..n).map(|_| r.normal()).collect(),
        random_design(n, p, &mut r),
        (0..n).map(|_| r.normal()).collect(),
        true,
    )
    .unwrap();
    let o = Options::<f64>::new(Method::Aid);
    let mut c = methods::Ctx::new(&ridge, &o).unwrap();
    let lg = c.lipschitz_g(&[0.0; 3], &[0.0; 3]).unwrap();
    c.alpha = 1.0 / lg;
    let x = [12.0, 0.0, -1.0];
    let mut y = [0.1, -0.2, 0.3];
    // Stale: the unchecked solve diverges here.
    let a = c.alpha;
    assert!(c.solve_lower(&x, &mut y.clone(), a, 1e-12, 1000).is_err());
    let mut gy = [0.0; 3];
    ridge.grad_g(&x, &y, None, None, &mut gy).unwrap();
    let start = gy.iter().map(|v| v * v).sum::<f64>().sqrt();
    let (g, ys, lower) = c.measure(&x, &y).unwrap();
    assert!(g.is_finite() && ys.iter().all(|v| v.is_finite()));
    // The step now fits the curvature at x (`L ≥ 2 exp(12)`) and the solve made progress
    // (1000 steps at condition number ~1e5 from a cold start: not to 1e-12).
    assert!(c.alpha <= 1.0 / (2.0 * 12f64.exp()), "step {}", c.alpha);
    assert!(lower < 1e-3 * start, "lower residual {lower} from {start}");
    y.copy_from_slice(&ys);
    ridge.grad_g(&x, &y, None, None, &mut gy).unwrap();
    assert_eq!(gy.iter().map(|v| v * v).sum::<f64>().sqrt(), lower);
}

mod lvhba_tests {
    use crate::bilevel::{minimize_lvhba, LlcToy, LvOptions};
    use crate::solver::{NoObserver, Termination};

    #[test]
    fn llc_toy_default_steps() {
        let p = LlcToy { n: 3, a: 1.0 };
        let o = LvOptions::<f64> { maxiter: 1, ..Default::default() };
        let out = minimize_lvhba(&p, &[1.0; 3], &[0.0; 6], &o, &mut NoObserver).unwrap();
        // Per coordinate (x, y₁, y₂): ∇²f = [[1, 0, −1], [0, 1, 0], [−1, 0, 1]], ∇²g =
        // [[0, −1, 0], [−1, 1, 0], [0, 0, 0]]: rows F_x = F_y = √2, G_x = 1, G_y = √2, G_θ = 1;
        // J = −𝟏ᵀ: J_x² = 3, J_y² = 6, J² = 9; γ₁ = γ₂ = c₀ = 1.
        let r2 = 2f64.sqrt();
        let (lx, ly) = (r2 + 1.0, 2.0 * r2 + 1.0);
        let rho = ly / 9.0;
        let a = (0.5 / (lx + rho * 3f64.sqrt() * 3.0)).min(0.5 / (ly + rho * 6f64.sqrt() * 3.0)).min(0.25);
        let want = [a, a, 0.25, 0.5 / 10.0, rho, (rho * a).min(0.5 / 9.0)];
        let st = out.steps;
        let got = [st.x, st.y, st.theta, st.lam, st.rho, st.dual];
        for (g, w) in got.iter().zip(&want) {
            assert!((g / w - 1.0).abs() < 1e-3, "{st:?} vs {want:?}");
        }
        // Given steps and ρ are used as they are.
        let o =
            LvOptions::<f64> { maxiter: 1, alpha: Some(0.01), eta: Some(0.02), rho: Some(2.0), ..Default::default() };
        let st = minimize_lvhba(&p, &[1.0; 3], &[0.0; 6], &o, &mut NoObserver).unwrap().steps;
        // τ = min(ρα, ½/J²) = ρα here: the dual step of the former single-step rule.
        assert_eq!((st.x, st.y, st.theta, st.lam, st.rho, st.dual), (0.01, 0.01, 0.02, 0.02, 2.0, 0.02));
    }

    #[test]
    fn llc_toy_consistent_reaches_closed_form() {
        let p = LlcToy { n: 3, a: 2.0 / 3.0 };
        let (xs, ys, _) = p.solution();
        let o = LvOptions::<f64> { maxiter: 200_000, tol: 1e-9, ..Default::default() };
        // default steps from power iterations at the start
        let out = minimize_lvhba(&p, &[1.0; 3], &[0.0; 6], &o, &mut NoObserver).unwrap();
        let ex = out.x.iter().zip(&xs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let ey = out.y.iter().zip(&ys).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert_eq!(out.termination, Termination::Converged, "{:?} nit {}", out.measures, out.nit);
        assert!(ex < 1e-6 && ey < 1e-6, "x err {ex}, y err {ey}");
        assert!((out.multipliers[0] - 1.0).abs() < 1e-6);
    }
}
