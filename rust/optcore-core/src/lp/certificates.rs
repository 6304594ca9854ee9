//! Infeasibility certificates from the iterates: Farkas rays (primal infeasibility) tested on
//! dual rays, unbounded rays (dual infeasibility) on primal ones, the candidate rays of Park &
//! Ryu's accelerated displacement estimator ([`ProxyDrift`]), and the test of a steadily growing
//! dual iterate that makes a converged run look on for a certificate.

use super::kkt::Work;
use super::problem::{Csr, Lp};
use super::scaling::Scaled;
use super::step::Iterates;
use crate::parallel::chunked;

/// Candidate rays from the fixed-point residual `z_k − T z_k` of the Halpern iteration.
///
/// The solver runs Halpern's iteration `z_{k+1} = z₀/(k+2) + (k+1)/(k+2) R z_k` on the
/// reflected PDHG operator `R = 2T − I`. When the LP is infeasible (or unbounded) `R` has no
/// fixed point and `z_k − R z_k = 2 (z_k − T z_k)` converges to the infimal displacement vector
/// `v` at Park & Ryu's accelerated rate `Õ(1/k)` (2023, Thm. 8); `−v` is the direction along
/// which the iterates drift, whose dual part is a Farkas ray (primal part: an unbounded ray).
/// Two candidates come from it:
/// - the residual direction `T z_k − z_k` itself;
/// - the drift of the *Picard proxy* `p_{k+1} = z₀ − (k+1)(z_k − R z_k)` (the recursion gives
///   `(k+2) z_{k+1} − (k+1) z_k = p_{k+1}`; for an affine `R` Halpern's iterate is the average
///   of the Picard orbit from `z₀` and `p_{k+1} = R^{k+1} z₀`) between two checks of the same
///   restart epoch: `(k+1)(T z_k − z_k) − (k'+1)(T z_{k'} − z_{k'})`, up to a positive factor.
///   It removes the anchor's `O(1/k)` pull from the residual, which is what keeps the plain
///   residual (and the iterate differences) from settling on a ray for long.
pub(super) struct ProxyDrift {
    /// `(k+1)(T z_k − z_k)` at the first check of the epoch, and its `k + 1`.
    qx: Vec<f64>,
    qy: Vec<f64>,
    k1_first: f64,
    epoch: Option<usize>,
}

impl ProxyDrift {
    pub(super) fn new(m: usize, n: usize) -> Self {
        ProxyDrift { qx: vec![0.0; n], qy: vec![0.0; m], k1_first: 0.0, epoch: None }
    }

    /// At a check of restart epoch `epoch` with `k1 = k + 1` (`k` the Halpern count of the
    /// iterate `z_k = (it.x, it.y)` whose PDHG output is `(it.xb, it.yb)`): writes into
    /// `(dx, dy)` the residual direction `T z_k − z_k` and returns false at the first check
    /// of an epoch (which it records); at the later ones writes the proxy's drift since that
    /// check (a window that grows with the epoch, over which the oscillation of the PDHG
    /// iterates averages out) and returns true. All scaled.
    pub(super) fn candidates(
        &mut self,
        it: &Iterates,
        (k1, epoch): (f64, usize),
        (dx, dy): (&mut [f64], &mut [f64]),
    ) -> bool {
        let same = self.epoch == Some(epoch) && k1 > self.k1_first;
        let update = |d: &mut [f64], q: &mut [f64], b: &[f64], z: &[f64]| {
            for ((d, q), (&b, &z)) in d.iter_mut().zip(q.iter_mut()).zip(b.iter().zip(z)) {
                if same {
                    *d = k1 * (b - z) - *q;
                } else {
                    *d = b - z;
                    *q = k1 * *d;
                }
            }
        };
        update(dx, &mut self.qx, &it.xb, &it.x);
        update(dy, &mut self.qy, &it.yb, &it.y);
        if !same {
            self.epoch = Some(epoch);
            self.k1_first = k1;
        }
        same
    }

    /// The residual direction `T z_k − z_k` into `(dx, dy)`.
    pub(super) fn residual(it: &Iterates, (dx, dy): (&mut [f64], &mut [f64])) {
        for (d, (&b, &z)) in dx.iter_mut().zip(it.xb.iter().zip(&it.x)) {
            *d = b - z;
        }
        for (d, (&b, &z)) in dy.iter_mut().zip(it.yb.iter().zip(&it.y)) {
            *d = b - z;
        }
    }
}

/// The sizes an unbounded ray is measured against: `‖a_i‖_∞` of every row and `‖c‖_∞`.
pub(super) type RaySizes<'a> = (&'a [f64], f64);

/// Both certificate tests on the scaled candidate ray `(w.dx, w.dy)`: `(primal infeasible,
/// dual infeasible)` by [`primal_infeasible`] (with the recheck of a ray clipped to the cone)
/// and [`dual_infeasible`]; `tests` as in [`primal_infeasible`].
pub(super) fn test_ray(
    (lp, s): (&Lp, &Scaled),
    w: &mut Work,
    (tmp_m, tmp_n): (&mut [f64], &mut [f64]),
    (tol, tests): (f64, (bool, bool)),
    (row_max, c_max): RaySizes<'_>,
) -> (bool, bool) {
    s.unscale_y(&mut w.dyu, &w.dy);
    s.at.matvec(&w.dy, tmp_n);
    s.unscale_cols(&mut w.at_dy, tmp_n);
    let p_inf = match primal_infeasible(lp, &w.dyu, &w.at_dy, &w.xu, &w.ax, tol, tests) {
        Farkas::Yes => true,
        Farkas::No => false,
        Farkas::Recheck => {
            clip_to_cone(lp, s, &w.dyu, &mut w.a_ray, &mut w.ray, tmp_m, tmp_n);
            primal_infeasible(lp, &w.a_ray, &w.ray, &w.xu, &w.ax, tol, tests) == Farkas::Yes
        }
    };
    s.unscale_x(&mut w.dxu, &w.dx);
    let d_inf = dual_infeasible(lp, &w.dxu, (&lp.a, row_max, c_max), tol, &mut w.ray, &mut w.a_ray);
    (p_inf, d_inf)
}

/// Whether a dual value `v` has a sign its row cannot carry: `v > 0` needs a finite lower bound
/// `l`, `v < 0` a finite upper bound `u`.
pub(super) fn forbidden_sign(v: f64, l: f64, u: f64) -> bool {
    (v > 0.0 && !l.is_finite()) || (v < 0.0 && !u.is_finite())
}

/// The dual ray `dy` (unscaled) without its entries of a sign their rows cannot carry, into
/// `v`, and its product `Aᵀv` (unscaled, through the scaled `Aᵀ`) into `at_v`; `tmp_m`, `tmp_n`
/// are work space.
pub(super) fn clip_to_cone(
    lp: &Lp,
    s: &Scaled,
    dy: &[f64],
    v: &mut [f64],
    at_v: &mut [f64],
    tmp_m: &mut [f64],
    tmp_n: &mut [f64],
) {
    for i in 0..dy.len() {
        v[i] = if forbidden_sign(dy[i], lp.lc[i], lp.uc[i]) { 0.0 } else { dy[i] };
        // y = γ D_r ŷ
        tmp_m[i] = v[i] / (s.dr[i] * s.gamma);
    }
    s.at.matvec(tmp_m, tmp_n);
    s.unscale_cols(at_v, tmp_n);
}

/// Outcome of [`primal_infeasible`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Farkas {
    No,
    Yes,
    Recheck,
}

/// Primal infeasibility certificate test on a dual ray `dy` (unscaled): `φ = Σ l_i [dy]₊ −
/// u_i [dy]₋ + Σ l_j [λ]₊ − u_j [λ]₋ > 0` with `λ = −Aᵀdy` (the row sums taken over the
/// entries of `dy` whose sign the row bounds allow), `v_j` the part of `λ_j` whose sign an
/// infinite column bound forbids and `w_i` the entries of `dy` whose sign an infinite row bound
/// forbids. Weak duality: every feasible `x` has `φ ≤ Σ_j v_j |x_j| + Σ_i w_i |(Ax)_i|`, so the
/// ray proves infeasibility up to its violations. Two ways to pass:
/// - `plain`: `max v_j ≤ tol · φ`. It is a proof only for a ray that carries no entry of a
///   sign its row cannot take (`w = 0`: those entries are in `λ` but not in `φ`); when it
///   passes on one that does, the answer is [`Farkas::Recheck`]: test the ray with those
///   entries zeroed and its own `λ` ([`clip_to_cone`]).
/// - `guarded`: `max v_j ≤ 100 tol · φ` and `Σ_j v_j |x_j| + Σ_i w_i |(Ax)_i| ≤ φ / 100` at
///   the current primal iterate `x`: then every feasible point is over 100× larger than `x`
///   where the ray is violated (a statement invariant under scaling the ray and the columns).
///   It finds certificates that the plain test misses (rays whose violation sits on columns
///   where the iterate is small) while keeping a wide margin on feasible LPs.
pub(super) fn primal_infeasible(
    lp: &Lp,
    dy: &[f64],
    at_dy: &[f64],
    x: &[f64],
    ax: &[f64],
    tol: f64,
    (plain, guarded): (bool, bool),
) -> Farkas {
    let mut phi = 0.0;
    let mut scale: f64 = 0.0;
    // Σ_i w_i |(Ax)_i| over the entries of dy of a sign the row's infinite bound forbids
    // (λ = −Aᵀdy includes them, so the weak-duality bound below must too).
    let mut wrong_ax = 0.0f64;
    let mut clipped = false;
    for (((&v, &l), &u), &axi) in dy.iter().zip(&lp.lc).zip(&lp.uc).zip(ax) {
        // clip to the cone: a row without a lower bound cannot carry y > 0, etc.
        let v = if forbidden_sign(v, l, u) {
            wrong_ax += v.abs() * axi.abs();
            clipped = true;
            0.0
        } else {
            v
        };
        scale = scale.max(v.abs());
        if v > 0.0 {
            phi += l * v;
        } else if v < 0.0 {
            phi += u * v;
        }
    }
    if scale == 0.0 {
        return Farkas::No;
    }
    let parts = chunked(at_dy.len(), |range| {
        let (mut phi, mut viol, mut viol_x) = (0.0f64, 0.0f64, 0.0f64);
        for j in range {
            let lam = -at_dy[j];
            let (l, u) = (lp.lv[j], lp.uv[j]);
            let v = if lam > 0.0 {
                if l.is_finite() {
                    phi += l * lam;
                    0.0
                } else {
                    lam
                }
            } else if lam < 0.0 {
                if u.is_finite() {
                    phi += u * lam;
                    0.0
                } else {
                    -lam
                }
            } else {
                0.0
            };
            viol = viol.max(v);
            viol_x += v * x[j].abs();
        }
        (phi, viol, viol_x)
    });
    let (mut viol, mut viol_x) = (0.0f64, wrong_ax);
    for (p, v, vx) in parts {
        phi += p;
        viol = viol.max(v);
        viol_x += vx;
    }
    if !(phi > 0.0 && phi > tol * scale) {
        return Farkas::No;
    }
    if guarded && viol <= 100.0 * tol * phi && viol_x <= 0.01 * phi {
        Farkas::Yes
    } else if plain && viol <= tol * phi {
        if clipped {
            Farkas::Recheck
        } else {
            Farkas::Yes
        }
    } else {
        Farkas::No
    }
}

/// Dual infeasibility (unboundedness) test on a primal ray `dx`, projected onto the recession
/// cone of the bounds and normalised to `‖d‖_∞ = 1`: `−cᵀd ≥ tol · ‖c‖_∞` (a descent direction
/// relative to the size of `c`, not a rounding-level one), and `A d` in the recession cone of
/// the row bounds up to `tol · (−cᵀd)` and, row by row, up to `tol · ‖a_i‖_∞` (`row_max`).
/// Every part is invariant under scaling `A`, `b` or `c`: a direction along which `A d` is
/// small only because `A`'s entries are is no ray. `d` and `ad` are work space of lengths n
/// and m.
pub(super) fn dual_infeasible(
    lp: &Lp,
    dx: &[f64],
    (a, row_max, c_max): (&Csr, &[f64], f64),
    tol: f64,
    d: &mut [f64],
    ad: &mut [f64],
) -> bool {
    let proj = |j: usize| {
        let (v, l, u) = (dx[j], lp.lv[j], lp.uv[j]);
        if (v < 0.0 && l.is_finite()) || (v > 0.0 && u.is_finite()) {
            0.0
        } else {
            v
        }
    };
    // cᵀd and ‖d‖_∞ first: most candidate rays fail cᵀd < 0 and need no product.
    let (mut cd, mut s) = (0.0f64, 0.0f64);
    for (c, m) in chunked(dx.len(), |range| {
        let (mut cd, mut s) = (0.0f64, 0.0f64);
        for j in range {
            let v = proj(j);
            cd += lp.c[j] * v;
            s = s.max(v.abs());
        }
        (cd, s)
    }) {
        cd += c;
        s = s.max(m);
    }
    if s == 0.0 || cd.is_nan() || cd >= 0.0 {
        return false;
    }
    let cd = cd / s;
    if -cd < tol * c_max {
        return false;
    }
    for (j, dj) in d.iter_mut().enumerate() {
        *dj = proj(j) / s;
    }
    a.matvec(d, ad);
    let mut viol: f64 = 0.0;
    for (((&v, &l), &u), &r) in ad.iter().zip(&lp.lc).zip(&lp.uc).zip(row_max) {
        let vi = match (l.is_finite(), u.is_finite()) {
            (true, true) => v.abs(),
            (true, false) => -v,
            (false, true) => v,
            (false, false) => 0.0,
        };
        if vi > tol * r {
            return false;
        }
        viol = viol.max(vi);
    }
    viol <= tol * (-cd)
}

/// Whether the dual iterate is growing steadily at the last check (`norms`: ‖y‖ at every check
/// so far): it grew at every check of the last quarter of the run, by at least 1% over the last
/// eighth, at a rate within 30% of the eighth before; or by at least 5% over the last eighth,
/// at a rate that slowed by at most half from the eighth before. That is what PDHG's dual
/// iterate does on an infeasible LP (it drifts along a Farkas ray at a constant rate), and a
/// feasible LP's does not for long, as its iterates are bounded. The second branch is for a
/// drift that has not settled yet when the KKT test passes: cplex2 (infeasible by 3.7e-10)
/// passes it at 1e-4 at iteration 14 720, when ‖y‖ has grown by 11% then 7% over the last
/// two eighths (a bump of the restarts; the rate is steady from about 18 000 on), where the
/// feasible D6CUBE's ‖y‖, also slowing, grows by 2.4% over its last eighth. A false alarm
/// costs iterations, never the answer: the verdict still needs a Farkas certificate.
pub(super) fn dual_growing(norms: &[f64]) -> bool {
    let c = norms.len();
    if c < 16 {
        return false;
    }
    let e = c / 8;
    let (n0, n1, n2) = (norms[c - 1], norms[c - 1 - e], norms[c - 1 - 2 * e]);
    let (g2, g1) = (n0 - n1, n1 - n2);
    let steady = (g2 - g1).abs() <= 0.3 * g2;
    let fast_settling = g2 >= 0.05 * n0 && g2 <= g1 && g2 >= 0.5 * g1;
    dual_rising(norms) && (steady || fast_settling)
}

/// Whether ‖y‖ grew at every check of the last quarter of the run and by at least 1% over the
/// last eighth, at any rate (the condition for going on with a search already started).
pub(super) fn dual_rising(norms: &[f64]) -> bool {
    let c = norms.len();
    if c < 16 {
        return false;
    }
    let e = c / 8;
    let (n0, n1) = (norms[c - 1], norms[c - 1 - e]);
    norms[c - 1 - 2 * e..].windows(2).all(|p| p[1] > p[0]) && n0 - n1 >= 0.01 * n0
}

/// ‖y‖ at the checks of a run for [`dual_growing`], in bounded memory: at most `2 · CAP + 1`
/// samples, taken every `stride` checks; when full, every other sample goes and the stride
/// doubles, so the samples stay evenly spaced over the whole run (a run of 10⁸ checks keeps
/// a few kilobytes).
pub(super) struct GrowthHistory {
    samples: Vec<f64>,
    stride: usize,
    seen: usize,
    last: f64,
}

impl GrowthHistory {
    const CAP: usize = 128;

    pub(super) fn new() -> Self {
        GrowthHistory { samples: Vec::with_capacity(2 * Self::CAP + 2), stride: 1, seen: 0, last: 0.0 }
    }

    /// Records ‖y‖ at one check.
    pub(super) fn push(&mut self, v: f64) {
        if self.seen % self.stride == 0 {
            self.samples.push(v);
            if self.samples.len() > 2 * Self::CAP {
                let kept: Vec<f64> = self.samples.iter().step_by(2).copied().collect();
                self.samples.clear();
                self.samples.extend(kept);
                self.stride *= 2;
            }
        }
        self.seen += 1;
        self.last = v;
    }

    /// [`dual_growing`] on the samples and the latest value.
    pub(super) fn growing(&self) -> bool {
        self.test(dual_growing)
    }

    /// [`dual_rising`] on the samples and the latest value.
    pub(super) fn rising(&self) -> bool {
        self.test(dual_rising)
    }

    fn test(&self, f: fn(&[f64]) -> bool) -> bool {
        if (self.seen - 1) % self.stride == 0 {
            return f(&self.samples);
        }
        let mut s = self.samples.clone();
        s.push(self.last);
        f(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lp::scaling::scale;

    #[test]
    fn a_ray_with_entries_of_a_forbidden_sign_is_rechecked_without_them() {
        // x <= 10 and x >= 0 with 4 <= x <= 5: feasible. The ray dy = (-1, -5) carries -5 on
        // the row without an upper bound; with it, λ = -Aᵀdy = 6 and φ = 10·(-1) + 4·6 = 14 > 0
        // with no violation, so the plain test alone would call the LP infeasible.
        let p = Lp {
            a: Csr::from_dense(&[&[1.0], &[1.0]]),
            c: vec![0.0],
            lc: vec![f64::NEG_INFINITY, 0.0],
            uc: vec![10.0, f64::INFINITY],
            lv: vec![4.0],
            uv: vec![5.0],
        };
        let (x, ax) = ([4.5], [4.5, 4.5]);
        assert_eq!(primal_infeasible(&p, &[-1.0, -5.0], &[-6.0], &x, &ax, 1e-6, (true, false)), Farkas::Recheck);
        // Without it: λ = 1, φ = -10 + 4 = -6: no certificate.
        assert_eq!(primal_infeasible(&p, &[-1.0, 0.0], &[-1.0], &x, &ax, 1e-6, (true, false)), Farkas::No);
        // The guarded test counts that entry against x (5·4.5 > φ/100).
        assert_eq!(primal_infeasible(&p, &[-1.0, -5.0], &[-6.0], &x, &ax, 1e-6, (false, true)), Farkas::No);
        // A ray within the cone passes outright: x >= 6 added as a third row makes it infeasible.
        let mut q = p.clone();
        q.a = Csr::from_dense(&[&[1.0], &[1.0], &[1.0]]);
        q.lc.push(6.0);
        q.uc.push(f64::INFINITY);
        // dy = (0, 0, 1): φ = 6 + 5·(-1) = 1 > 0 (λ = -1 at the upper bound 5).
        assert_eq!(primal_infeasible(&q, &[0.0, 0.0, 1.0], &[1.0], &x, &[4.5; 3], 1e-6, (true, false)), Farkas::Yes);
    }

    #[test]
    fn clipping_a_ray_to_the_cone_and_its_product() {
        // Rows: (-inf, 1], [0, inf), [2, 3], (-inf, inf); the product goes through the scaling.
        let rows: [&[f64]; 4] = [&[1.0, 2.0, 0.0], &[0.0, -3.0, 0.5], &[4.0, 0.0, -1.0], &[1.0, 1.0, 1.0]];
        let p = Lp {
            a: Csr::from_dense(&rows),
            c: vec![1.0, -2.0, 0.5],
            lc: vec![f64::NEG_INFINITY, 0.0, 2.0, f64::NEG_INFINITY],
            uc: vec![1.0, f64::INFINITY, 3.0, f64::INFINITY],
            lv: vec![0.0, -1.0, f64::NEG_INFINITY],
            uv: vec![5.0, f64::INFINITY, 2.0],
        };
        let s = scale(&p, None);
        let dy = [2.0, -1.5, -0.7, 0.3];
        let (mut v, mut at_v, mut tm, mut tn) = ([0.0; 4], [0.0; 3], [0.0; 4], [0.0; 3]);
        clip_to_cone(&p, &s, &dy, &mut v, &mut at_v, &mut tm, &mut tn);
        // y > 0 needs a lower bound, y < 0 an upper one; a free row takes neither.
        assert_eq!(v, [0.0, 0.0, -0.7, 0.0]);
        for j in 0..3 {
            let want: f64 = (0..4).map(|i| rows[i][j] * v[i]).sum();
            assert!((at_v[j] - want).abs() <= 1e-12 * (1.0 + want.abs()), "{j}: {} vs {want}", at_v[j]);
        }
    }

    #[test]
    fn the_proxy_drift_is_measured_within_an_epoch() {
        // z = (x, y) with T z − z = (1, 2; 3) at k + 1 = 10, then (1.5, 2; 3) at 20.
        let mut it = Iterates::new(vec![0.0, 0.0], vec![0.0]);
        let (mut dx, mut dy) = ([0.0; 2], [0.0; 1]);
        let mut p = ProxyDrift::new(1, 2);
        it.xb = vec![1.0, 2.0];
        it.yb = vec![3.0];
        assert!(!p.candidates(&it, (10.0, 1), (&mut dx, &mut dy)));
        assert_eq!((dx, dy), ([1.0, 2.0], [3.0]));
        it.xb = vec![1.5, 2.0];
        assert!(p.candidates(&it, (20.0, 1), (&mut dx, &mut dy)));
        // 20 (T z − z) − 10 (T z' − z')
        assert_eq!((dx, dy), ([20.0, 20.0], [30.0]));
        ProxyDrift::residual(&it, (&mut dx, &mut dy));
        assert_eq!((dx, dy), ([1.5, 2.0], [3.0]));
        // A new epoch starts over.
        assert!(!p.candidates(&it, (30.0, 2), (&mut dx, &mut dy)));
    }

    #[test]
    fn the_growth_history_stays_bounded_and_sees_growth() {
        let mut h = GrowthHistory::new();
        for k in 0..100_000 {
            h.push(5.0 + 0.3 * k as f64);
        }
        assert!(h.samples.len() <= 2 * GrowthHistory::CAP + 1 && h.growing());
        let mut h = GrowthHistory::new();
        for k in 0..100_000 {
            h.push(10.0 - 5.0 * 0.9999f64.powi(k));
        }
        assert!(h.samples.len() <= 2 * GrowthHistory::CAP + 1 && !h.growing());
    }

    #[test]
    fn a_steadily_growing_dual_iterate() {
        // Linear growth (an infeasible LP's drift along a Farkas ray): yes, from 16 checks on.
        let line: Vec<f64> = (0..40).map(|k| 5.0 + 0.3 * k as f64).collect();
        assert!(dual_growing(&line));
        assert!(!dual_growing(&line[..15]));
        // Converging to a limit (a feasible LP): growth shrinks geometrically, rates far apart.
        let conv: Vec<f64> = (0..40).map(|k| 10.0 - 5.0 * 0.8f64.powi(k)).collect();
        assert!(!dual_growing(&conv));
        // Steady but slow (under 1% of ‖y‖ over the last eighth), or not at every check.
        let slow: Vec<f64> = (0..40).map(|k| 100.0 + 0.01 * k as f64).collect();
        assert!(!dual_growing(&slow));
        let mut dip = line.clone();
        dip[37] = dip[36] - 0.1;
        assert!(!dual_growing(&dip));
        // Accelerating growth: the last eighth's rate is not within 30% of the one before.
        let fast: Vec<f64> = (0..40).map(|k| 1.1f64.powi(k)).collect();
        assert!(!dual_growing(&fast));
        // A fast drift that is settling (cplex2 at 1e-4: 11% then 7% over the last eighths):
        // yes; the same shape at D6CUBE's size (3.7% then 2.4%): no.
        // Slope 1 per check, then 0.65 over the last eighth, from 10 (7% of ‖y‖) or 100 (2.4%).
        let settling = |base: f64| -> Vec<f64> {
            (0..40u32).map(|k| base + k.min(34) as f64 + 0.65 * k.saturating_sub(34) as f64).collect::<Vec<f64>>()
        };
        assert!(dual_growing(&settling(10.0)));
        assert!(!dual_growing(&settling(100.0)));
    }
}
