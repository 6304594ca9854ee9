//! The finite sums that [`super::solve()`] runs on: the [`FiniteSum`] trait, bilinear matrix games
//! over simplices ([`GameSum`]), affine operators split by rows ([`LinearSum`]), and the Euclidean
//! projection onto a simplex (Condat 2016) that the games use.

use super::dense::{axpy, cols_dot, cols_dot4, dot, rows_dot};
use super::pdhg::PrimalDual;
use super::sampled::Sampler;
use crate::error::{OptError, Result};
use crate::linalg::lu::Lu;

/// A finite sum `F = (1/N) Σ_i F_i` of operators on `R^d` with a constraint set `C`.
pub trait FiniteSum: Send + Sync {
    fn dim(&self) -> usize;
    /// Number of components `N`.
    fn n(&self) -> usize;
    /// `out += s · F_i(z)`.
    fn add_component(&self, i: usize, z: &[f64], s: f64, out: &mut [f64]) -> Result<()>;
    /// `out += s · (F_i(u) − F_i(w))` (two component evaluations). Linear components override
    /// it with one pass over `F_i(u − w)`, which also skips coordinates where `u` and `w` agree.
    fn add_component_diff(&self, i: usize, u: &[f64], w: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        self.add_component(i, u, s, out)?;
        self.add_component(i, w, -s, out)
    }
    /// `out = F(z)`.
    fn full(&self, z: &[f64], out: &mut [f64]) -> Result<()>;
    /// `z ← P_C(z)`.
    fn project(&self, z: &mut [f64]) -> Result<()>;
    /// Lipschitz constant of `F` (or a bound).
    fn lipschitz(&self) -> f64;
    /// Mean-square Lipschitz constant of the components under the problem's sampling:
    /// `sqrt((1/N) Σ_i L_i²)` uniformly; `(1/N) Σ_i L_i` with [`FiniteSum::sampler`] drawing
    /// `i` with probability `∝ L_i`.
    fn lipschitz_ms(&self) -> f64;
    /// Importance sampling of the components for the stochastic estimators (`None`: uniform).
    fn sampler(&self) -> Option<&Sampler> {
        None
    }
    /// A hint that component `i` is about to be evaluated: `stage` 0 fetches where its data
    /// lies, 1 the data (called for a whole minibatch per stage, so that the memory accesses of
    /// randomly drawn components overlap). Does nothing by default.
    fn prefetch(&self, _i: usize, _stage: usize) {}
    /// `F` is (1/L)-cocoercive (Algorithm 1 applies).
    fn cocoercive(&self) -> bool {
        false
    }
    /// The primal–dual split `F(x, y) = (∇f(x) + Kᵀy, −K x + ∂g*(y))`, where the problem has
    /// one: `"halpern"` then runs restarted Halpern on the PDHG operator.
    fn primal_dual(&self) -> Option<&dyn PrimalDual> {
        None
    }
}

/// Euclidean projection onto `{x ≥ 0, Σ x = total}` (Condat 2016, expected linear time).
pub fn project_simplex(y: &mut [f64], total: f64, v: &mut Vec<f64>, vt: &mut Vec<f64>) {
    if y.is_empty() {
        return;
    }
    if y.iter().any(|x| x.is_nan()) {
        y.iter_mut().for_each(|x| *x = f64::NAN);
        return;
    }
    v.clear();
    vt.clear();
    v.push(y[0]);
    let mut rho = y[0] - total;
    for &yn in &y[1..] {
        if yn > rho {
            rho += (yn - rho) / (v.len() as f64 + 1.0);
            if rho > yn - total {
                v.push(yn);
            } else {
                vt.append(v);
                v.push(yn);
                rho = yn - total;
            }
        }
    }
    for &yv in vt.iter() {
        if yv > rho {
            v.push(yv);
            rho += (yv - rho) / v.len() as f64;
        }
    }
    loop {
        let before = v.len();
        let mut i = 0;
        while i < v.len() {
            if v[i] <= rho {
                let yr = v.swap_remove(i);
                rho += (rho - yr) / v.len().max(1) as f64;
            } else {
                i += 1;
            }
        }
        if v.len() == before {
            break;
        }
    }
    y.iter_mut().for_each(|x| *x = (*x - rho).max(0.0));
}

/// `min_{x ∈ Δ_n} max_{y ∈ Δ_m} yᵀ A x` as `F(x, y) = (Aᵀy, −Ax)`, `z = (x, y)`; component `k`
/// (of `N = max(m, n)`) is `N · (y_k a_k, −x_k A_{:,k})` (row `k` and column `k`, where they exist).
pub struct GameSum {
    a: Vec<f64>,
    at: Vec<f64>,
    pub m: usize,
    pub n: usize,
    lip: f64,
    lip_ms: f64,
    scratch: std::sync::Mutex<(Vec<f64>, Vec<f64>)>,
}

impl GameSum {
    /// `a`: `m x n` row-major; `lip`: `‖A‖₂`.
    pub fn new(a: &[f64], m: usize, n: usize, lip: f64) -> Result<Self> {
        if m == 0 || n == 0 || a.len() != m * n || !a.iter().all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput("matrix game: A must be a finite m x n matrix".into()));
        }
        let mut at = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                at[j * m + i] = a[i * n + j];
            }
        }
        // Component k reads only y_k and x_k: E_ξ ‖F_ξ(u) − F_ξ(v)‖² = N Σ_k (‖a_k‖² Δy_k² +
        // ‖A_{:,k}‖² Δx_k²) ≤ N max_k max(‖a_k‖², ‖A_{:,k}‖²) ‖Δ‖².
        let big = m.max(n);
        let mut worst: f64 = 0.0;
        for k in 0..big {
            let r = if k < m { a[k * n..(k + 1) * n].iter().map(|v| v * v).sum::<f64>() } else { 0.0 };
            let c = if k < n { at[k * m..(k + 1) * m].iter().map(|v| v * v).sum::<f64>() } else { 0.0 };
            worst = worst.max(r).max(c);
        }
        let lip_ms = (big as f64 * worst).sqrt();
        Ok(GameSum { a: a.to_vec(), at, m, n, lip, lip_ms, scratch: Default::default() })
    }

    /// `(max_i (A x)_i, min_j (Aᵀ y)_j, yᵀ A x)` of `z = (x, y)`.
    pub fn gap_parts(&self, z: &[f64]) -> (f64, f64, f64) {
        let (x, y) = z.split_at(self.n);
        let ax: Vec<f64> = (0..self.m).map(|i| dot(&self.a[i * self.n..(i + 1) * self.n], x)).collect();
        let aty: Vec<f64> = (0..self.n).map(|j| dot(&self.at[j * self.m..(j + 1) * self.m], y)).collect();
        let hi = ax.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let lo = aty.iter().fold(f64::INFINITY, |m, &v| m.min(v));
        (hi, lo, dot(y, &ax))
    }
}

impl FiniteSum for GameSum {
    fn dim(&self) -> usize {
        self.m + self.n
    }
    fn n(&self) -> usize {
        self.m.max(self.n)
    }
    fn add_component(&self, k: usize, z: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        let big = self.n() as f64;
        let (x, y) = z.split_at(self.n);
        let (ox, oy) = out.split_at_mut(self.n);
        if k < self.m && y[k] != 0.0 {
            axpy(ox, s * big * y[k], &self.a[k * self.n..(k + 1) * self.n]);
        }
        if k < self.n && x[k] != 0.0 {
            axpy(oy, -s * big * x[k], &self.at[k * self.m..(k + 1) * self.m]);
        }
        Ok(())
    }
    fn add_component_diff(&self, k: usize, u: &[f64], w: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        let big = self.n() as f64;
        let (ox, oy) = out.split_at_mut(self.n);
        if k < self.m {
            let dy = u[self.n + k] - w[self.n + k];
            if dy != 0.0 {
                axpy(ox, s * big * dy, &self.a[k * self.n..(k + 1) * self.n]);
            }
        }
        if k < self.n {
            let dx = u[k] - w[k];
            if dx != 0.0 {
                axpy(oy, -s * big * dx, &self.at[k * self.m..(k + 1) * self.m]);
            }
        }
        Ok(())
    }
    fn full(&self, z: &[f64], out: &mut [f64]) -> Result<()> {
        let (x, y) = z.split_at(self.n);
        let (ox, oy) = out.split_at_mut(self.n);
        cols_dot(&self.a, self.n, y, ox);
        rows_dot(&self.a, self.n, x, oy);
        oy.iter_mut().for_each(|o| *o = -*o);
        Ok(())
    }
    fn project(&self, z: &mut [f64]) -> Result<()> {
        let mut s = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let (v, vt) = &mut *s;
        let (x, y) = z.split_at_mut(self.n);
        project_simplex(x, 1.0, v, vt);
        project_simplex(y, 1.0, v, vt);
        Ok(())
    }
    fn lipschitz(&self) -> f64 {
        self.lip
    }
    fn lipschitz_ms(&self) -> f64 {
        self.lip_ms
    }
    fn primal_dual(&self) -> Option<&dyn PrimalDual> {
        Some(self)
    }
}

/// `f = δ_Δn`, `K = A`, `g* = δ_Δm`: both proximal maps are simplex projections.
impl PrimalDual for GameSum {
    fn nx(&self) -> usize {
        self.n
    }
    fn k_mul(&self, x: &[f64], out: &mut [f64]) {
        rows_dot(&self.a, self.n, x, out);
    }
    fn kt_mul(&self, y: &[f64], out: &mut [f64]) {
        cols_dot4(&self.a, self.n, y, out);
    }
    fn norm_k(&self) -> f64 {
        self.lip
    }
    fn prox_f(&self, _tau: f64, x: &mut [f64]) -> Result<()> {
        let mut s = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let (v, vt) = &mut *s;
        project_simplex(x, 1.0, v, vt);
        Ok(())
    }
    fn prox_g(&self, _sigma: f64, y: &mut [f64]) -> Result<()> {
        self.prox_f(0.0, y)
    }
    fn polish(
        &self,
        z: &[f64],
        kty: &[f64],
        kx: &[f64],
        allowed: f64,
        last: &mut Vec<usize>,
    ) -> Result<(Option<Vec<f64>>, f64)> {
        super::polish::game_polish(&self.a, (self.m, self.n), z, (kty, kx), allowed, last)
    }
}

/// `F(z) = M z + q` (`M`: `d x d` row-major), unconstrained, split into its `d` rows:
/// component `k` is `d · e_k (m_kᵀ z + q_k)`.
pub struct LinearSum {
    mat: Vec<f64>,
    q: Vec<f64>,
    d: usize,
    lip: f64,
    lip_ms: f64,
    cocoercive: bool,
    saddle: Option<Saddle>,
}

/// The blocks of `M = [[H, −Aᵀ], [A, 0]]`, `q = (−h, −b)` (quadratic min-max
/// `min_x max_y ½xᵀHx − hᵀx − ⟨Ax − b, y⟩`): `f = ½xᵀHx − hᵀx`, `K = −A`, `g*(y) = −bᵀy`.
struct Saddle {
    nx: usize,
    a: Vec<f64>,
    hmat: Vec<f64>,
    h: Vec<f64>,
    b: Vec<f64>,
    norm_a: f64,
    /// `LU(I + τH)` for the step `τ` it was prepared for.
    factor: std::sync::Mutex<Option<(f64, Lu)>>,
}

impl LinearSum {
    /// `lip`: `‖M‖₂`; `cocoercive`: `M` is symmetric positive semidefinite.
    pub fn new(mat: &[f64], q: &[f64], lip: f64, cocoercive: bool) -> Result<Self> {
        let d = q.len();
        if d == 0 || mat.len() != d * d || !mat.iter().chain(q).all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput(
                "linear operator: M must be a finite d x d matrix and q of length d".into(),
            ));
        }
        // E_ξ ‖F_ξ(u) − F_ξ(v)‖² = (1/d) Σ_k d² (m_kᵀ Δ)² = d ‖M Δ‖²: exactly √d ‖M‖₂.
        Ok(LinearSum {
            mat: mat.to_vec(),
            q: q.to_vec(),
            d,
            lip,
            lip_ms: (d as f64).sqrt() * lip,
            cocoercive,
            saddle: None,
        })
    }

    /// Declares the saddle structure `M = [[H, −Aᵀ], [A, 0]]` with `x` the first `nx`
    /// coordinates (`norm_a`: `‖A‖₂`), so that `"halpern"` runs on the PDHG operator. The blocks
    /// are checked against `M` (exactly: the Python layer builds `M` from them).
    pub fn with_saddle(mut self, nx: usize, norm_a: f64) -> Result<Self> {
        let d = self.d;
        let bad = |what: &str| Err(OptError::InvalidInput(format!("saddle split of M: {what}")));
        if nx == 0 || nx >= d || !(norm_a > 0.0 && norm_a.is_finite()) {
            return bad("need 0 < nx < d and ‖A‖ > 0");
        }
        let ny = d - nx;
        let m = &self.mat;
        let mut a = vec![0.0; ny * nx];
        for i in 0..ny {
            for j in 0..nx {
                let v = m[(nx + i) * d + j];
                if m[j * d + nx + i] != -v {
                    return bad("the upper-right block is not −Aᵀ");
                }
                a[i * nx + j] = v;
            }
            if m[(nx + i) * d + nx..(nx + i + 1) * d].iter().any(|&v| v != 0.0) {
                return bad("the lower-right block is not 0");
            }
        }
        let hmat: Vec<f64> = (0..nx).flat_map(|i| m[i * d..i * d + nx].iter().copied()).collect();
        let h = self.q[..nx].iter().map(|v| -v).collect();
        let b = self.q[nx..].iter().map(|v| -v).collect();
        self.saddle = Some(Saddle { nx, a, hmat, h, b, norm_a, factor: Default::default() });
        Ok(self)
    }
}

impl PrimalDual for Saddle {
    fn nx(&self) -> usize {
        self.nx
    }
    fn k_mul(&self, x: &[f64], out: &mut [f64]) {
        rows_dot(&self.a, self.nx, x, out);
        out.iter_mut().for_each(|o| *o = -*o);
    }
    fn kt_mul(&self, y: &[f64], out: &mut [f64]) {
        cols_dot4(&self.a, self.nx, y, out);
        out.iter_mut().for_each(|o| *o = -*o);
    }
    fn norm_k(&self) -> f64 {
        self.norm_a
    }
    /// Factors `I + τH` once (`2nx³/3` flops); its cost in dense evaluations of `F` (`2d²`
    /// flops) is `nx³ / (3d²)`.
    fn prepare(&self, tau: f64) -> Result<f64> {
        let nx = self.nx;
        let mut mat: Vec<f64> = self.hmat.iter().map(|v| tau * v).collect();
        for i in 0..nx {
            mat[i * nx + i] += 1.0;
        }
        let lu = Lu::factor(&mat, nx, 1e-14, "I + τH")?;
        *self.factor.lock().unwrap_or_else(|p| p.into_inner()) = Some((tau, lu));
        let d = (nx + self.b.len()) as f64;
        Ok((nx as f64).powi(3) / (3.0 * d * d))
    }
    fn prox_f(&self, tau: f64, x: &mut [f64]) -> Result<()> {
        let guard = self.factor.lock().unwrap_or_else(|p| p.into_inner());
        match &*guard {
            Some((t, lu)) if *t == tau => {
                for (xi, &hi) in x.iter_mut().zip(&self.h) {
                    *xi += tau * hi;
                }
                lu.solve_in_place(x);
                Ok(())
            }
            _ => Err(OptError::InvalidInput("the proximal map of f was not prepared for this step".into())),
        }
    }
    fn prox_g(&self, sigma: f64, y: &mut [f64]) -> Result<()> {
        for (yi, &bi) in y.iter_mut().zip(&self.b) {
            *yi += sigma * bi;
        }
        Ok(())
    }
    fn smooth(&self) -> bool {
        true
    }
}

impl FiniteSum for LinearSum {
    fn dim(&self) -> usize {
        self.d
    }
    fn n(&self) -> usize {
        self.d
    }
    fn add_component(&self, k: usize, z: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        out[k] += s * self.d as f64 * (dot(&self.mat[k * self.d..(k + 1) * self.d], z) + self.q[k]);
        Ok(())
    }
    fn add_component_diff(&self, k: usize, u: &[f64], w: &[f64], s: f64, out: &mut [f64]) -> Result<()> {
        let row = &self.mat[k * self.d..(k + 1) * self.d];
        out[k] += s * self.d as f64 * (dot(row, u) - dot(row, w));
        Ok(())
    }
    fn full(&self, z: &[f64], out: &mut [f64]) -> Result<()> {
        rows_dot(&self.mat, self.d, z, out);
        out.iter_mut().zip(&self.q).for_each(|(o, &q)| *o += q);
        Ok(())
    }
    fn project(&self, _z: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn lipschitz(&self) -> f64 {
        self.lip
    }
    fn lipschitz_ms(&self) -> f64 {
        self.lip_ms
    }
    fn cocoercive(&self) -> bool {
        self.cocoercive
    }
    fn primal_dual(&self) -> Option<&dyn PrimalDual> {
        self.saddle.as_ref().map(|s| s as &dyn PrimalDual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn brute_simplex(y: &[f64], total: f64) -> Vec<f64> {
        // bisection on the threshold
        let (mut lo, mut hi) = (
            y.iter().cloned().fold(f64::INFINITY, f64::min) - total,
            y.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            let s: f64 = y.iter().map(|v| (v - mid).max(0.0)).sum();
            if s > total {
                lo = mid
            } else {
                hi = mid
            }
        }
        y.iter().map(|v| (v - hi).max(0.0)).collect()
    }

    #[test]
    fn condat_projection_matches_bisection() {
        let mut rng = Rng::new(3);
        let (mut v, mut vt) = (Vec::new(), Vec::new());
        for d in [1usize, 2, 7, 50, 333] {
            for _ in 0..20 {
                let y: Vec<f64> = (0..d).map(|_| rng.normal() * 2.0).collect();
                let mut z = y.clone();
                project_simplex(&mut z, 1.5, &mut v, &mut vt);
                let r = brute_simplex(&y, 1.5);
                for (a, b) in z.iter().zip(&r) {
                    assert!((a - b).abs() < 1e-9, "{d}: {a} vs {b}");
                }
                assert!((z.iter().sum::<f64>() - 1.5).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn components_average_to_the_full_operator() {
        let mut rng = Rng::new(5);
        let (m, n) = (4, 6);
        let a: Vec<f64> = (0..m * n).map(|_| rng.normal()).collect();
        let g = GameSum::new(&a, m, n, 1.0).unwrap();
        let z: Vec<f64> = (0..m + n).map(|_| rng.uniform()).collect();
        let mut full = vec![0.0; m + n];
        g.full(&z, &mut full).unwrap();
        let mut avg = vec![0.0; m + n];
        for k in 0..g.n() {
            g.add_component(k, &z, 1.0 / g.n() as f64, &mut avg).unwrap();
        }
        for (a, b) in full.iter().zip(&avg) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
