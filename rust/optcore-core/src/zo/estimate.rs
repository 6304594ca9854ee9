//! Gradient estimators from function values (Nesterov–Spokoiny Gaussian smoothing, uniform
//! sphere, coordinate-wise / DeepZero's CGE) and ZO-RankSGD's estimator from a ranking.
//!
//! Directions are regenerated from `(seed, iteration, direction)` (see [`super::rng`]) both
//! when the batch is built and when the estimate is assembled, never stored.

use super::rng::{Counter, Stream};
use crate::real::Real;

/// How the search directions are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Directions {
    /// `u ~ N(0, I)`; `g = (1/q) Σ c_i u_i`, unbiased for `∇f_μ`, `f_μ(x) = E f(x + μu)`.
    Gaussian,
    /// `u ~ Unif(S^{d-1})`; `g = (d/q) Σ c_i u_i`, unbiased for the gradient of the
    /// ball-smoothed `f`.
    Sphere,
    /// Coordinate directions `e_j` for `j` in a random subset of `n` coordinates (all `d` when
    /// `n >= d`: the deterministic finite-difference gradient); `g_j = c_j` on the subset, 0
    /// elsewhere (DeepZero's sparse CGE, not rescaled).
    Coordinates { n: usize },
}

/// Forward `c = (f(x + μu) - f(x)) / μ` (`1 + q` evaluations, bias O(μ)) or central
/// `c = (f(x + μu) - f(x - μu)) / (2μ)` (`1 + 2q` with the center, bias O(μ²)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Forward,
    Central,
}

/// `(lower, upper)`: a box, possibly with infinite sides.
pub type Bounds<'a> = (&'a [f64], &'a [f64]);

/// A batch of points (row-major) and the sign of each direction's one-sided difference.
#[derive(Debug, Clone, Default)]
pub struct Points {
    pub pts: Vec<f64>,
    pub signs: Vec<f64>,
}

/// A two-point (or coordinate-wise) estimator with `q` directions and smoothing radius `mu`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimator {
    pub dirs: Directions,
    pub scheme: Scheme,
    pub q: usize,
    pub mu: f64,
}

impl Estimator {
    /// Directions per estimate (`q`, or the subset size for CGE).
    pub fn count(&self, d: usize) -> usize {
        match self.dirs {
            Directions::Coordinates { n } => n.min(d),
            _ => self.q,
        }
    }

    /// Points per batch: the center and one (forward) or two (central) per direction.
    pub fn batch_size(&self, d: usize) -> usize {
        let k = self.count(d);
        1 + if self.scheme == Scheme::Central { 2 * k } else { k }
    }

    /// The coordinates CGE perturbs at `iteration` (empty for the random directions).
    pub fn coordinates(&self, rng: &Counter, iteration: u64, d: usize) -> Vec<usize> {
        match self.dirs {
            Directions::Coordinates { n } => rng.subset(iteration, d, n),
            _ => Vec::new(),
        }
    }

    /// Direction `i` of `iteration` (random directions only).
    pub fn direction(&self, rng: &Counter, iteration: u64, i: usize, u: &mut [f64]) {
        rng.normals(iteration, i as u64, Stream::Directions, u);
        if self.dirs == Directions::Sphere {
            let n = u.iter().map(|v| v * v).sum::<f64>().sqrt();
            if n > 0.0 {
                u.iter_mut().for_each(|v| *v /= n);
            }
        }
    }

    /// The direction index and the sign of point `i >= 1` of a batch (batch order: the
    /// center, then per direction `+μu` and, central, `-μu`).
    pub fn slot(&self, i: usize) -> (usize, f64) {
        match self.scheme {
            Scheme::Forward => (i - 1, 1.0),
            Scheme::Central => ((i - 1) / 2, if (i - 1) % 2 == 0 { 1.0 } else { -1.0 }),
        }
    }

    /// Writes direction `j` of `iteration` into `u` (CGE: the unit vector of `coords[j]`).
    pub fn fill_direction(&self, rng: &Counter, iteration: u64, coords: &[usize], j: usize, u: &mut [f64]) {
        match self.dirs {
            Directions::Coordinates { .. } => {
                u.iter_mut().for_each(|v| *v = 0.0);
                u[coords[j]] = 1.0;
            }
            _ => self.direction(rng, iteration, j, u),
        }
    }

    /// The perturbed point `x + s μ u` inside the box `[lower, upper]` (`x` is inside): a
    /// forward point that leaves the box is replaced by its reflection `x − s μ u` when that
    /// lies inside (the returned sign is then `−1`), otherwise it is clipped onto the box.
    /// Writes the point into `out` when given (else only the sign is computed). Each entry
    /// is computed from `x_j` and `u_j` alone, in f64, then rounded to `T` (so no d-vector of
    /// f64 is stored); `bounded = false` (every bound infinite) skips the inside tests.
    pub fn perturb<T: Real>(
        &self,
        x: &[T],
        u: &[f64],
        s: f64,
        bounds: Bounds<'_>,
        bounded: bool,
        out: Option<&mut [T]>,
    ) -> f64 {
        let (lower, upper) = bounds;
        let h = s * self.mu;
        let inside = |h: f64| {
            !bounded
                || x.iter().zip(u).zip(lower.iter().zip(upper)).all(|((a, b), (l, up))| {
                    let v = a.as_f64() + h * b;
                    v >= *l && v <= *up
                })
        };
        let (h, sign, clip) = if inside(h) {
            (h, 1.0, false)
        } else if self.scheme == Scheme::Forward && inside(-h) {
            (-h, -1.0, false)
        } else {
            (h, 1.0, true)
        };
        if let Some(out) = out {
            // `clip` implies bounded, i.e. non-empty sides.
            for (j, (o, (a, b))) in out.iter_mut().zip(x.iter().zip(u)).enumerate() {
                let v = a.as_f64() + h * b;
                *o = T::from_f64(if clip { v.max(lower[j]).min(upper[j]) } else { v });
            }
        }
        sign
    }

    /// The batch of `iteration` at `x`: the center, then `x ± μ u_i` (row-major, f64), every
    /// point inside the box `[lower, upper]` (`x` is inside; see [`Estimator::perturb`]).
    /// `signs` gets one entry per direction.
    pub fn points(
        &self,
        rng: &Counter,
        iteration: u64,
        x: &[f64],
        coords: &[usize],
        bounds: Bounds<'_>,
        out: &mut Points,
    ) {
        let d = x.len();
        out.pts.clear();
        out.signs.clear();
        out.pts.extend_from_slice(x);
        let mut u = vec![0.0; d];
        let mut p = vec![0.0; d];
        for i in 1..self.batch_size(d) {
            let (j, s) = self.slot(i);
            self.fill_direction(rng, iteration, coords, j, &mut u);
            let sign = self.perturb(x, &u, s, bounds, !bounds.0.is_empty(), Some(&mut p));
            out.pts.extend_from_slice(&p);
            if s > 0.0 {
                out.signs.push(sign);
            }
        }
    }

    /// The finite differences `c_i` from the values of the batch (center first) and the
    /// directions' signs from [`Estimator::points`].
    pub fn differences(&self, values: &[f64], signs: &[f64], d: usize) -> Vec<f64> {
        let f0 = values[0];
        (0..self.count(d))
            .map(|i| match self.scheme {
                Scheme::Forward => (values[1 + i] - f0) / (self.mu * signs.get(i).copied().unwrap_or(1.0)),
                Scheme::Central => (values[1 + 2 * i] - values[2 + 2 * i]) / (2.0 * self.mu),
            })
            .collect()
    }

    /// The estimate `g` from the values of the batch of `iteration`; `u` (length d) is the
    /// scratch into which each direction is regenerated.
    pub fn gradient(
        &self,
        rng: &Counter,
        iteration: u64,
        coords: &[usize],
        (values, signs): (&[f64], &[f64]),
        (g, u): (&mut [f64], &mut [f64]),
    ) {
        let d = g.len();
        let c = self.differences(values, signs, d);
        g.iter_mut().for_each(|v| *v = 0.0);
        match self.dirs {
            Directions::Coordinates { .. } => {
                for (&j, &cj) in coords.iter().zip(&c) {
                    g[j] = cj;
                }
            }
            _ => {
                let scale = if self.dirs == Directions::Sphere { d as f64 } else { 1.0 } / c.len() as f64;
                for (i, &ci) in c.iter().enumerate() {
                    self.direction(rng, iteration, i, u);
                    g.iter_mut().zip(u.iter()).for_each(|(gv, uv)| *gv += scale * ci * uv);
                }
            }
        }
    }
}

/// Number of edges of ZO-RankSGD's ranking graph for an `(m, k)` oracle: the `k(k-1)/2`
/// ordered pairs of the top `k` and each of them over each of the `m - k` unranked points.
pub fn rank_edges(m: usize, k: usize) -> usize {
    k * (k - 1) / 2 + k * (m - k)
}

/// ZO-RankSGD's estimate `(1/|E|) Σ_{(i ≻ j) ∈ E} (ξ_j - ξ_i)` (an ascent direction) in the
/// closed form: with `top` the indices of the `k` best points, best first, the point of rank
/// `r < k` has weight `2r - m + 1` (r better, `m-1-r` worse) and each unranked point weight
/// `k` (worse than the top `k`, unordered among themselves). `xi(i, out)` writes `ξ_i`.
pub fn rank_gradient(top: &[usize], m: usize, xi: impl Fn(usize, &mut [f64]), g: &mut [f64]) {
    let k = top.len();
    let mut weight = vec![k as f64; m];
    for (r, &i) in top.iter().enumerate() {
        weight[i] = 2.0 * r as f64 - m as f64 + 1.0;
    }
    let e = rank_edges(m, k).max(1) as f64;
    let mut u = vec![0.0; g.len()];
    g.iter_mut().for_each(|v| *v = 0.0);
    for (i, &w) in weight.iter().enumerate() {
        if w != 0.0 {
            xi(i, &mut u);
            g.iter_mut().zip(&u).for_each(|(gv, uv)| *gv += w / e * uv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quad(x: &[f64]) -> f64 {
        // 1/2 Σ (i+1) x_i² + Σ x_i
        x.iter().enumerate().map(|(i, v)| 0.5 * (i + 1) as f64 * v * v + v).sum()
    }

    fn estimate(est: &Estimator, x: &[f64], it: u64) -> Vec<f64> {
        let rng = Counter { seed: 11 };
        let coords = est.coordinates(&rng, it, x.len());
        let mut pts = Points::default();
        let inf = vec![f64::INFINITY; x.len()];
        let ninf = vec![f64::NEG_INFINITY; x.len()];
        est.points(&rng, it, x, &coords, (&ninf, &inf), &mut pts);
        assert_eq!(pts.pts.len(), est.batch_size(x.len()) * x.len());
        let vals: Vec<f64> = pts.pts.chunks(x.len()).map(quad).collect();
        let mut g = vec![0.0; x.len()];
        let mut u = vec![0.0; x.len()];
        est.gradient(&rng, it, &coords, (&vals, &pts.signs), (&mut g, &mut u));
        g
    }

    #[test]
    fn cge_central_is_exact_on_quadratics() {
        let x = [0.3, -1.0, 2.0, 0.5];
        let est = Estimator { dirs: Directions::Coordinates { n: 4 }, scheme: Scheme::Central, q: 0, mu: 1e-3 };
        let g = estimate(&est, &x, 0);
        for (i, gi) in g.iter().enumerate() {
            assert!((gi - ((i + 1) as f64 * x[i] + 1.0)).abs() < 1e-9);
        }
    }

    #[test]
    fn random_estimators_are_unbiased_on_quadratics() {
        let x = [0.3, -1.0, 2.0];
        let grad: Vec<f64> = (0..3).map(|i| (i + 1) as f64 * x[i] + 1.0).collect();
        for dirs in [Directions::Gaussian, Directions::Sphere] {
            for scheme in [Scheme::Forward, Scheme::Central] {
                let est = Estimator { dirs, scheme, q: 4, mu: 0.1 };
                let n = 20_000;
                let mut mean = [0.0; 3];
                for it in 0..n {
                    let g = estimate(&est, &x, it);
                    mean.iter_mut().zip(&g).for_each(|(m, v)| *m += v / n as f64);
                }
                for (m, t) in mean.iter().zip(&grad) {
                    assert!((m - t).abs() < 0.05 * (1.0 + t.abs()), "{dirs:?} {scheme:?}: {mean:?} vs {grad:?}");
                }
            }
        }
    }

    #[test]
    fn rank_closed_form_equals_pairwise_sum() {
        let (m, d) = (7, 3);
        let xis: Vec<Vec<f64>> =
            (0..m).map(|i| (0..d).map(|j| ((i * 5 + j * 3) % 11) as f64 - 5.0).collect()).collect();
        for k in 1..=m {
            let top: Vec<usize> = [4, 0, 6, 2, 1, 5, 3][..k].to_vec();
            let mut g = vec![0.0; d];
            rank_gradient(&top, m, |i, u| u.copy_from_slice(&xis[i]), &mut g);
            // Explicit sum over the edges (better, worse).
            let mut s = vec![0.0; d];
            let mut edges = 0;
            for (r, &b) in top.iter().enumerate() {
                let worse: Vec<usize> =
                    top[r + 1..].iter().copied().chain((0..m).filter(|i| !top.contains(i))).collect();
                for w in worse {
                    edges += 1;
                    for j in 0..d {
                        s[j] += xis[w][j] - xis[b][j];
                    }
                }
            }
            assert_eq!(edges, rank_edges(m, k));
            for j in 0..d {
                assert!((g[j] - s[j] / edges as f64).abs() < 1e-12, "k={k}: {g:?} vs {s:?}");
            }
        }
    }
}
