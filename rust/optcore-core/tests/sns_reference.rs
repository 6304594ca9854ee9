//! Sinkhorn–Newton–Sparse against dense references: the dual's gradient and Hessian against
//! finite differences, the sparse Newton direction against a dense solve, and whole solves
//! against the log-domain solver.

use optcore_core::ot::sns::testing::{dual, newton_step};
use optcore_core::ot::{sinkhorn_log, sinkhorn_sns, LogOptions, Overrelax, Problem, SnsOptions};
use optcore_core::{NoObserver, Termination};

/// A small deterministic generator (xorshift), so the tests need no crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn problem(n: usize, m: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut a: Vec<f64> = (0..n).map(|_| 0.2 + rng.next()).collect();
    let mut b: Vec<f64> = (0..m).map(|_| 0.2 + rng.next()).collect();
    let (sa, sb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    a.iter_mut().for_each(|x| *x /= sa);
    b.iter_mut().for_each(|x| *x /= sb);
    let cost = (0..n * m).map(|_| rng.next()).collect();
    (a, b, cost)
}

/// Potentials near (not at) the optimum: a few log-domain iterations.
fn rough_potentials(a: &[f64], b: &[f64], cost: &[f64], reg: f64, iters: usize) -> (Vec<f64>, Vec<f64>) {
    let p = Problem::new(a, b, cost);
    let opts = LogOptions { reg, tol: 0.0, maxiter: iters, eps_scaling: None, overrelax: Overrelax::Off };
    let out = sinkhorn_log(&p, &opts, None, None, &mut NoObserver).unwrap();
    (out.f, out.g)
}

/// Dense solve by Gaussian elimination with partial pivoting.
#[allow(clippy::needless_range_loop)] // textbook Gaussian elimination: the indices read as the formula
fn solve(mut mat: Vec<Vec<f64>>, mut rhs: Vec<f64>) -> Vec<f64> {
    let n = rhs.len();
    for k in 0..n {
        let piv = (k..n).max_by(|&i, &j| mat[i][k].abs().total_cmp(&mat[j][k].abs())).unwrap();
        mat.swap(k, piv);
        rhs.swap(k, piv);
        for i in k + 1..n {
            let l = mat[i][k] / mat[k][k];
            for j in k..n {
                mat[i][j] -= l * mat[k][j];
            }
            rhs[i] -= l * rhs[k];
        }
    }
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        let s: f64 = (k + 1..n).map(|j| mat[k][j] * x[j]).sum();
        x[k] = (rhs[k] - s) / mat[k][k];
    }
    x
}

#[test]
fn gradient_is_the_marginal_residual_and_matches_finite_differences() {
    let (n, m, reg) = (7, 5, 0.3);
    let (a, b, cost) = problem(n, m, 1);
    let (f, g) = rough_potentials(&a, &b, &cost, reg, 3);
    let (_, grad, _, _, _) = newton_step(&a, &b, &cost, reg, &f, &g, Some(1.0), 0.0);
    let h = 1e-5;
    for k in 0..n + m {
        let (mut fp, mut gp, mut fm, mut gm) = (f.clone(), g.clone(), f.clone(), g.clone());
        if k < n {
            fp[k] += h;
            fm[k] -= h;
        } else {
            gp[k - n] += h;
            gm[k - n] -= h;
        }
        let fd = (dual(&a, &b, &cost, reg, &fp, &gp) - dual(&a, &b, &cost, reg, &fm, &gm)) / (2.0 * h);
        assert!((fd - grad[k]).abs() <= 1e-8, "component {k}: finite difference {fd} vs gradient {}", grad[k]);
    }
}

#[test]
fn hessian_matches_finite_differences_of_the_gradient() {
    let (n, m, reg) = (6, 8, 0.2);
    let (a, b, cost) = problem(n, m, 2);
    let (f, g) = rough_potentials(&a, &b, &cost, reg, 2);
    let (plan, _, _, _, sums) = newton_step(&a, &b, &cost, reg, &f, &g, Some(1.0), 0.0);
    let mut rng = Rng(77);
    let v: Vec<f64> = (0..n + m).map(|_| rng.next() - 0.5).collect();
    // -H v / reg with H = [[diag(r), P], [P^T, diag(c)]].
    let mut hv = vec![0.0; n + m];
    for i in 0..n {
        hv[i] = sums[i] * v[i] + (0..m).map(|j| plan[i * m + j] * v[n + j]).sum::<f64>();
    }
    for j in 0..m {
        hv[n + j] = sums[n + j] * v[n + j] + (0..n).map(|i| plan[i * m + j] * v[i]).sum::<f64>();
    }
    let h = 1e-6;
    let shifted = |s: f64| {
        let fs: Vec<f64> = (0..n).map(|i| f[i] + s * v[i]).collect();
        let gs: Vec<f64> = (0..m).map(|j| g[j] + s * v[n + j]).collect();
        newton_step(&a, &b, &cost, reg, &fs, &gs, Some(1.0), 0.0).1
    };
    let (gp, gm) = (shifted(h), shifted(-h));
    for k in 0..n + m {
        let fd = (gp[k] - gm[k]) / (2.0 * h);
        let exact = -hv[k] / reg;
        assert!((fd - exact).abs() <= 1e-6 * (1.0 + exact.abs()), "component {k}: {fd} vs {exact}");
    }
    // The null direction (1, -1) of H.
    let null: f64 = (0..n).map(|i| sums[i] - (0..m).map(|j| plan[i * m + j]).sum::<f64>()).map(f64::abs).sum();
    assert!(null < 1e-14);
}

#[test]
fn sparse_newton_direction_matches_a_dense_solve() {
    let (n, m, reg) = (9, 7, 0.05);
    let (a, b, cost) = problem(n, m, 3);
    let (f, g) = rough_potentials(&a, &b, &cost, reg, 5);
    for (density, shift) in [(Some(1.0), 1e-4), (Some(0.3), 1e-4), (None, 1e-3), (Some(0.1), 0.0)] {
        let (_, grad, ps, dir, sums) = newton_step(&a, &b, &cost, reg, &f, &g, density, shift);
        if shift == 0.0 && ps.iter().filter(|&&x| x > 0.0).count() < n.max(m) {
            // Without a shift the sparsified system can be singular; the solver always shifts.
            continue;
        }
        // Dense (H_s + shift I) from the same kept entries, exact diagonal.
        let dim = n + m;
        let mut mat = vec![vec![0.0; dim]; dim];
        for i in 0..n {
            mat[i][i] = sums[i] + shift;
            for j in 0..m {
                mat[i][n + j] = ps[i * m + j];
                mat[n + j][i] = ps[i * m + j];
            }
        }
        for j in 0..m {
            mat[n + j][n + j] = sums[n + j] + shift;
        }
        let reference = solve(mat, grad.clone());
        let scale = reference.iter().map(|x| x.abs()).fold(0.0, f64::max);
        for k in 0..dim {
            assert!(
                (dir[k] - reference[k]).abs() <= 1e-7 * scale,
                "density {density:?}, shift {shift}: component {k}: {} vs {}",
                dir[k],
                reference[k]
            );
        }
        // An ascent direction of D.
        let slope: f64 = grad.iter().zip(&dir).map(|(g, d)| g * d).sum();
        assert!(slope > 0.0);
    }
}

fn max_abs_diff(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

#[test]
fn sns_and_log_return_the_same_plan() {
    for (n, m, reg, seed) in [(40, 40, 0.01, 4), (60, 25, 0.002, 5), (30, 50, 0.05, 6)] {
        let (a, b, cost) = problem(n, m, seed);
        let p = Problem::new(&a, &b, &cost);
        let sns = sinkhorn_sns(&p, &SnsOptions::new(reg, 1e-11, 10_000), None, None, &mut NoObserver).unwrap();
        assert_eq!(sns.termination, Termination::Converged, "n={n} m={m} reg={reg}");
        assert!(sns.marginal_error <= 1e-11);
        let opts = LogOptions { reg, tol: 1e-11, maxiter: 100_000, eps_scaling: None, overrelax: Overrelax::Auto };
        let log = sinkhorn_log(&p, &opts, None, None, &mut NoObserver).unwrap();
        assert_eq!(log.termination, Termination::Converged);
        let d = max_abs_diff(&sns.plan, &log.plan);
        assert!(d <= 1e-9, "n={n} m={m} reg={reg}: plans differ by {d}");
    }
}

#[test]
fn zero_weights_rectangular_and_tiny_reg_stay_finite() {
    let (n, m) = (30, 20);
    let (mut a, mut b, cost) = problem(n, m, 7);
    a[3] = 0.0;
    a[17] = 0.0;
    b[0] = 0.0;
    let (sa, sb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    a.iter_mut().for_each(|x| *x /= sa);
    b.iter_mut().for_each(|x| *x *= 1.0 / sb);
    let p = Problem::new(&a, &b, &cost);
    for reg in [1e-1, 1e-3, 1e-4] {
        let out = sinkhorn_sns(&p, &SnsOptions::new(reg, 1e-9, 5_000), None, None, &mut NoObserver).unwrap();
        assert!(out.plan.iter().all(|x| x.is_finite() && *x >= 0.0), "reg={reg}");
        assert!(out.marginal_error.is_finite());
        assert_eq!(out.termination.status(), if out.marginal_error <= 1e-9 { 0 } else { out.termination.status() });
        for j in 0..m {
            assert_eq!(out.plan[3 * m + j], 0.0);
            assert_eq!(out.plan[17 * m + j], 0.0);
        }
        assert!((0..n).all(|i| out.plan[i * m] == 0.0));
        assert!(out.f[3] == f64::NEG_INFINITY && out.g[0] == f64::NEG_INFINITY);
        assert_eq!(out.termination, Termination::Converged, "reg={reg}: error {}", out.marginal_error);
    }
}

#[test]
fn fixed_warmup_runs_exactly_that_many_sinkhorn_iterations() {
    let (a, b, cost) = problem(50, 50, 8);
    let p = Problem::new(&a, &b, &cost);
    let opts = SnsOptions { warmup: Some(7), ..SnsOptions::new(1e-3, 1e-10, 5_000) };
    let out = sinkhorn_sns(&p, &opts, None, None, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::Converged);
    assert!(out.n_newton > 0);
    assert!(out.n_sinkhorn >= 7);
    let opts = SnsOptions { warmup: Some(0), ..SnsOptions::new(1e-2, 1e-10, 5_000) };
    let out = sinkhorn_sns(&p, &opts, None, None, &mut NoObserver).unwrap();
    assert_eq!(out.termination, Termination::Converged);
    assert_eq!(out.nit, out.n_sinkhorn + out.n_newton);
}
