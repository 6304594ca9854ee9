//! Nonexpansive operators `T: ℝ^d → ℝ^d` that the fixed-point iterations apply, and the native
//! ones: projections onto a box, a Euclidean ball, the probability simplex and an affine set,
//! the reflected resolvent of a linear monotone operator, and the combinators (composition,
//! convex average, reflection `2T − I`) that build alternating projections and
//! Douglas–Rachford from them.
//!
//! Vectors are `T`-typed slices; anything that decides a result (norms, inner products, the
//! linear solves) is computed in f64. The dense factors of [`Affine`] and [`LinearResolvent`]
//! are f64 and shared (`Arc`) between the f32 and f64 instances of an operator.

use crate::error::{OptError, Result};
use crate::linalg::dot_lanes8 as dot;
use crate::linalg::lu::Lu;
use crate::linalg::nrm2_diff;
use crate::real::Real;
use std::sync::Arc;

/// A map `T: ℝ^d → ℝ^d`. `apply` writes `T x` into `out` (both of length [`Operator::dim`]).
/// An implementation that can fail (a user's Python function) returns an error, which ends
/// the run.
pub trait Operator<T: Real>: Send + Sync {
    fn dim(&self) -> usize;
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()>;
}

/// A shared operator: the building block of composites.
pub type SharedOp<T> = Arc<dyn Operator<T>>;

fn check_len(what: &str, d: usize, len: usize) -> Result<()> {
    if d != len {
        return Err(OptError::InvalidInput(format!("{what}: expected a vector of length {d}, got {len}")));
    }
    Ok(())
}

/// `x ↦ x`.
pub struct Identity {
    pub d: usize,
}
impl<T: Real> Operator<T> for Identity {
    fn dim(&self) -> usize {
        self.d
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        out.copy_from_slice(x);
        Ok(())
    }
}

/// Projection onto `{x : lo ≤ x ≤ hi}` (entries may be infinite).
pub struct BoxProj<T> {
    lo: Vec<T>,
    hi: Vec<T>,
}
impl<T: Real> BoxProj<T> {
    pub fn new(lo: Vec<T>, hi: Vec<T>) -> Result<Self> {
        if lo.len() != hi.len() || lo.is_empty() {
            return Err(OptError::InvalidInput("box bounds must be non-empty and of equal length".into()));
        }
        if lo.iter().zip(&hi).any(|(l, h)| l.is_nan() || h.is_nan() || l > h) {
            return Err(OptError::InvalidInput("box bounds must satisfy lower <= upper (no NaN)".into()));
        }
        Ok(BoxProj { lo, hi })
    }
}
impl<T: Real> Operator<T> for BoxProj<T> {
    fn dim(&self) -> usize {
        self.lo.len()
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        for (((o, &v), &l), &h) in out.iter_mut().zip(x).zip(&self.lo).zip(&self.hi) {
            *o = if v < l {
                l
            } else if v > h {
                h
            } else {
                v
            };
        }
        Ok(())
    }
}

/// Projection onto the closed ball `{x : ‖x − c‖₂ ≤ r}`.
pub struct Ball<T> {
    center: Vec<T>,
    radius: f64,
}
impl<T: Real> Ball<T> {
    pub fn new(center: Vec<T>, radius: f64) -> Result<Self> {
        if center.is_empty() || !center.iter().all(|c| c.is_finite()) {
            return Err(OptError::InvalidInput("ball center must be a non-empty finite vector".into()));
        }
        if !(radius >= 0.0 && radius.is_finite()) {
            return Err(OptError::InvalidInput("ball radius must be finite and >= 0".into()));
        }
        Ok(Ball { center, radius })
    }
}
impl<T: Real> Operator<T> for Ball<T> {
    fn dim(&self) -> usize {
        self.center.len()
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        // Scaled: a point at 1e200 is at distance 1e200, not inf (which would project it
        // onto the center).
        let dist = nrm2_diff(x, &self.center);
        if dist <= self.radius {
            out.copy_from_slice(x);
        } else {
            let s = self.radius / dist;
            for ((o, &v), &c) in out.iter_mut().zip(x).zip(&self.center) {
                *o = T::from_f64(c.as_f64() + s * (v.as_f64() - c.as_f64()));
            }
        }
        Ok(())
    }
}

/// Projection onto the scaled simplex `{x ≥ 0 : Σ x = total}` (sort-based, O(d log d)).
///
/// The threshold is computed on `u = x − max x` (the projection commutes with shifts), so
/// that `total` is not lost against huge entries: `(1e16, 0, 0)` projects to `(1, 0, 0)`.
/// `+inf` entries share `total` equally (the limit of the projection); `-inf` entries get 0.
pub struct Simplex {
    pub d: usize,
    pub total: f64,
}
impl Simplex {
    pub fn new(d: usize, total: f64) -> Result<Self> {
        if d == 0 || !(total > 0.0 && total.is_finite()) {
            return Err(OptError::InvalidInput("simplex needs d >= 1 and a positive finite total".into()));
        }
        Ok(Simplex { d, total })
    }
}
impl<T: Real> Operator<T> for Simplex {
    fn dim(&self) -> usize {
        self.d
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        if x.iter().any(|v| v.is_nan()) {
            out.iter_mut().for_each(|o| *o = T::nan());
            return Ok(());
        }
        let top = x.iter().map(|v| v.as_f64()).fold(f64::NEG_INFINITY, f64::max);
        if !top.is_finite() {
            // +inf entries (or, when every entry is -inf, all of them) share the total.
            let hits = x.iter().filter(|v| v.as_f64() == top).count() as f64;
            for (o, &v) in out.iter_mut().zip(x) {
                *o = T::from_f64(if v.as_f64() == top { self.total / hits } else { 0.0 });
            }
            return Ok(());
        }
        let mut u: Vec<f64> = x.iter().map(|v| v.as_f64() - top).collect();
        u.sort_unstable_by(|a, b| b.total_cmp(a));
        // θ = (Σ_{i≤ρ} u_i − total)/ρ for the largest ρ with u_ρ > θ_ρ; ρ ≥ 1 always holds
        // (u_1 = 0 > −total), so θ is set by the first step.
        let (mut cum, mut theta) = (0.0, -self.total);
        for (j, &v) in u.iter().enumerate() {
            cum += v;
            let t = (cum - self.total) / (j + 1) as f64;
            if v > t {
                theta = t;
            } else {
                break;
            }
        }
        for (o, &v) in out.iter_mut().zip(x) {
            *o = T::from_f64(((v.as_f64() - top) - theta).max(0.0));
        }
        Ok(())
    }
}

/// Projection onto the affine set `{x : A x = b}` with `A` (`m x d`, full row rank):
/// `x − Aᵀ (A Aᵀ)⁻¹ (A x − b)`, the Gram matrix factored once.
pub struct AffineData {
    a: Vec<f64>,
    b: Vec<f64>,
    m: usize,
    d: usize,
    gram: Lu,
}
impl AffineData {
    pub fn new(a: Vec<f64>, b: Vec<f64>, m: usize, d: usize) -> Result<Self> {
        if m == 0 || d == 0 || a.len() != m * d || b.len() != m {
            return Err(OptError::InvalidInput("affine set: A must be m x d and b of length m (m, d >= 1)".into()));
        }
        if !a.iter().chain(&b).all(|v| v.is_finite()) {
            return Err(OptError::InvalidInput("affine set: A and b must be finite".into()));
        }
        let mut g = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..=i {
                let s = dot(&a[i * d..(i + 1) * d], &a[j * d..(j + 1) * d]);
                g[i * m + j] = s;
                g[j * m + i] = s;
            }
        }
        let gram = Lu::factor(&g, m, 1e-13, "A Aᵀ (A must have full row rank)")?;
        Ok(AffineData { a, b, m, d, gram })
    }
}
pub struct Affine(pub Arc<AffineData>);
impl<T: Real> Operator<T> for Affine {
    fn dim(&self) -> usize {
        self.0.d
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        let p = &*self.0;
        let xf: Vec<f64> = x.iter().map(|v| v.as_f64()).collect();
        let mut y: Vec<f64> = (0..p.m).map(|i| dot(&p.a[i * p.d..(i + 1) * p.d], &xf) - p.b[i]).collect();
        p.gram.solve_in_place(&mut y);
        let mut z = xf;
        for (i, &yi) in y.iter().enumerate() {
            for (zj, &aij) in z.iter_mut().zip(&p.a[i * p.d..(i + 1) * p.d]) {
                *zj -= aij * yi;
            }
        }
        for (o, v) in out.iter_mut().zip(z) {
            *o = T::from_f64(v);
        }
        Ok(())
    }
}

/// The reflected resolvent `x ↦ 2 (I + λL)⁻¹ x − x` of a linear monotone `L` (`d x d`, its
/// symmetric part positive semidefinite), with `I + λL` factored once.
pub struct LinearResolventData {
    d: usize,
    lu: Lu,
}
impl LinearResolventData {
    pub fn new(l: &[f64], d: usize, lambda: f64) -> Result<Self> {
        if d == 0 || l.len() != d * d {
            return Err(OptError::InvalidInput("linear resolvent: L must be d x d with d >= 1".into()));
        }
        if !(lambda > 0.0 && lambda.is_finite()) {
            return Err(OptError::InvalidInput("linear resolvent: lambda must be positive and finite".into()));
        }
        let mut m: Vec<f64> = l.iter().map(|v| lambda * v).collect();
        for i in 0..d {
            m[i * d + i] += 1.0;
        }
        Ok(LinearResolventData { d, lu: Lu::factor(&m, d, 1e-14, "I + lambda L")? })
    }
}
pub struct LinearResolvent(pub Arc<LinearResolventData>);
impl<T: Real> Operator<T> for LinearResolvent {
    fn dim(&self) -> usize {
        self.0.d
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        let mut y: Vec<f64> = x.iter().map(|v| v.as_f64()).collect();
        self.0.lu.solve_in_place(&mut y);
        for ((o, &v), yi) in out.iter_mut().zip(x).zip(y) {
            *o = T::from_f64(2.0 * yi - v.as_f64());
        }
        Ok(())
    }
}

/// `ops[n-1] ∘ … ∘ ops[0]`: `ops[0]` is applied first.
pub struct Compose<T: Real> {
    ops: Vec<SharedOp<T>>,
}
impl<T: Real> Compose<T> {
    pub fn new(ops: Vec<SharedOp<T>>) -> Result<Self> {
        let Some(d) = ops.first().map(|o| o.dim()) else {
            return Err(OptError::InvalidInput("compose needs at least one operator".into()));
        };
        if ops.iter().any(|o| o.dim() != d) {
            return Err(OptError::InvalidInput("composed operators must have the same dimension".into()));
        }
        Ok(Compose { ops })
    }
}
impl<T: Real> Operator<T> for Compose<T> {
    fn dim(&self) -> usize {
        self.ops[0].dim()
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        self.ops[0].apply(x, out)?;
        let mut tmp = vec![T::zero(); x.len()];
        for op in &self.ops[1..] {
            tmp.copy_from_slice(out);
            op.apply(&tmp, out)?;
        }
        Ok(())
    }
}

/// The convex combination `Σ w_i T_i` (weights positive, summing to 1).
pub struct Average<T: Real> {
    ops: Vec<SharedOp<T>>,
    weights: Vec<f64>,
}
impl<T: Real> Average<T> {
    pub fn new(ops: Vec<SharedOp<T>>, weights: Vec<f64>) -> Result<Self> {
        let Some(d) = ops.first().map(|o| o.dim()) else {
            return Err(OptError::InvalidInput("average needs at least one operator".into()));
        };
        if ops.iter().any(|o| o.dim() != d) || weights.len() != ops.len() {
            return Err(OptError::InvalidInput("averaged operators need one weight each and equal dimensions".into()));
        }
        let s: f64 = weights.iter().sum();
        if weights.iter().any(|w| w.is_nan() || *w <= 0.0) || (s - 1.0).abs() > 1e-12 {
            return Err(OptError::InvalidInput("average weights must be positive and sum to 1".into()));
        }
        Ok(Average { ops, weights })
    }
}
impl<T: Real> Operator<T> for Average<T> {
    fn dim(&self) -> usize {
        self.ops[0].dim()
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        let mut acc = vec![0.0f64; x.len()];
        let mut tmp = vec![T::zero(); x.len()];
        for (op, &w) in self.ops.iter().zip(&self.weights) {
            op.apply(x, &mut tmp)?;
            for (a, &t) in acc.iter_mut().zip(&tmp) {
                *a += w * t.as_f64();
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = T::from_f64(a);
        }
        Ok(())
    }
}

/// The reflection `2 T − I` (nonexpansive when `T` is firmly nonexpansive, e.g. a projection).
pub struct Reflect<T: Real> {
    op: SharedOp<T>,
}
impl<T: Real> Reflect<T> {
    pub fn new(op: SharedOp<T>) -> Self {
        Reflect { op }
    }
}
impl<T: Real> Operator<T> for Reflect<T> {
    fn dim(&self) -> usize {
        self.op.dim()
    }
    fn apply(&self, x: &[T], out: &mut [T]) -> Result<()> {
        self.op.apply(x, out)?;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = T::from_f64(2.0 * o.as_f64() - v.as_f64());
        }
        Ok(())
    }
}

/// The Douglas–Rachford operator `(I + R_B R_A)/2` for the intersection of two sets given by
/// their projections `pa`, `pb` (`R = 2P − I`). Its fixed points `z` give `P_A z ∈ A ∩ B`.
pub fn douglas_rachford<T: Real>(pa: SharedOp<T>, pb: SharedOp<T>) -> Result<Average<T>> {
    let d = pa.dim();
    let rr: SharedOp<T> = Arc::new(Compose::new(vec![Arc::new(Reflect::new(pa)), Arc::new(Reflect::new(pb))])?);
    Average::new(vec![Arc::new(Identity { d }), rr], vec![0.5, 0.5])
}

/// `op.apply` with the lengths checked (for callers outside the solver loop).
pub fn apply_checked<T: Real>(op: &dyn Operator<T>, x: &[T], out: &mut [T]) -> Result<()> {
    check_len("operator input", op.dim(), x.len())?;
    check_len("operator output", op.dim(), out.len())?;
    op.apply(x, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap<T: Real>(op: &dyn Operator<T>, x: &[T]) -> Vec<T> {
        let mut out = vec![T::zero(); x.len()];
        apply_checked(op, x, &mut out).unwrap();
        out
    }

    #[test]
    fn box_clips() {
        let b = BoxProj::new(vec![0.0, f64::NEG_INFINITY], vec![1.0, 2.0]).unwrap();
        assert_eq!(ap(&b, &[-1.0, 5.0]), vec![0.0, 2.0]);
        assert_eq!(ap(&b, &[0.5, -1e300]), vec![0.5, -1e300]);
        assert!(BoxProj::new(vec![1.0], vec![0.0]).is_err());
    }

    #[test]
    fn ball_projects_radially() {
        let b = Ball::new(vec![1.0, 1.0], 1.0).unwrap();
        let p: Vec<f64> = ap(&b, &[4.0, 5.0]);
        assert!((p[0] - 1.6).abs() < 1e-15 && (p[1] - 1.8).abs() < 1e-15);
        assert_eq!(ap(&b, &[1.5, 1.0]), vec![1.5, 1.0]);
    }

    #[test]
    fn simplex_projection_is_feasible_and_optimal() {
        let s = Simplex::new(4, 1.0).unwrap();
        let p: Vec<f64> = ap(&s, &[0.5, 0.2, -3.0, 0.9]);
        // θ = (0.9 + 0.5 + 0.2 - 1)/3 = 0.2: (0.3, 0, 0, 0.7).
        let want = [0.3, 0.0, 0.0, 0.7];
        for (u, v) in p.iter().zip(want) {
            assert!((u - v).abs() < 1e-15, "{p:?}");
        }
        // Already on the simplex: unchanged up to the rounding of the f32 sum.
        let q = ap(&s, &[0.1f32, 0.2, 0.3, 0.4]);
        for (u, v) in q.iter().zip([0.1f32, 0.2, 0.3, 0.4]) {
            assert!((u - v).abs() <= 1e-7, "{q:?}");
        }
    }

    #[test]
    fn projections_at_huge_inputs() {
        // Issue 17 item 8: the shift by the max keeps the total against 1e16.
        let s = Simplex::new(3, 1.0).unwrap();
        assert_eq!(ap(&s, &[1e16, 0.0, 0.0]), vec![1.0, 0.0, 0.0]);
        assert_eq!(ap(&s, &[1e200, -1e200, 0.0]), vec![1.0, 0.0, 0.0]);
        assert_eq!(ap(&s, &[1e16f32, 0.0, 0.0]), vec![1.0f32, 0.0, 0.0]);
        let p: Vec<f64> = ap(&s, &[1e16, 1e16, 0.0]);
        assert!((p[0] - 0.5).abs() < 1e-15 && (p[1] - 0.5).abs() < 1e-15 && p[2] == 0.0, "{p:?}");
        assert_eq!(ap(&s, &[f64::INFINITY, 0.0, f64::INFINITY]), vec![0.5, 0.0, 0.5]);
        assert_eq!(ap(&s, &[f64::NEG_INFINITY, 0.0, 3.0]), vec![0.0, 0.0, 1.0]);
        // Ball: the distance is scaled, so 1e200 lands on the sphere, not at the center.
        let b = Ball::new(vec![0.0, 0.0], 2.0).unwrap();
        assert_eq!(ap(&b, &[1e200, 0.0]), vec![2.0, 0.0]);
        let p: Vec<f64> = ap(&b, &[3e200, 4e200]);
        assert!((p[0] - 1.2).abs() < 1e-15 && (p[1] - 1.6).abs() < 1e-15, "{p:?}");
        let bx = BoxProj::new(vec![-1.0, -1.0], vec![1.0, 1.0]).unwrap();
        assert_eq!(ap(&bx, &[1e200, -1e200]), vec![1.0, -1.0]);
        let plane = Arc::new(AffineData::new(vec![1.0, 1.0], vec![1.0], 1, 2).unwrap());
        let p: Vec<f64> = ap(&Affine(plane.clone()), &[1e16, 0.0]);
        assert!((p[0] + p[1] - 1.0).abs() <= 2.0 && (p[0] - 5e15).abs() <= 2.0, "{p:?}");
        let p: Vec<f64> = ap(&Affine(plane.clone()), &[1e200, -1e200]);
        assert!((p[0] - 1e200).abs() <= 1e185 && (p[1] + 1e200).abs() <= 1e185, "{p:?}");
        // DR of the ball and the plane from 1e200: finite (no overflow in the reflections).
        let pa: SharedOp<f64> = Arc::new(Ball::new(vec![0.0, 0.0], 2.0).unwrap());
        let dr = douglas_rachford(pa, Arc::new(Affine(plane))).unwrap();
        let z: Vec<f64> = ap(&dr, &[1e200, 1e200]);
        assert!(z.iter().all(|v| v.is_finite()) && crate::linalg::nrm2(&z) <= 1.5e200, "{z:?}");
    }

    #[test]
    fn affine_projection_satisfies_constraints_and_is_orthogonal() {
        let a = vec![1.0, 2.0, 0.0, 0.0, 1.0, -1.0];
        let data = Arc::new(AffineData::new(a.clone(), vec![1.0, 2.0], 2, 3).unwrap());
        let op = Affine(data);
        let x = [3.0, -1.0, 0.5];
        let p: Vec<f64> = ap(&op, &x);
        assert!((p[0] + 2.0 * p[1] - 1.0).abs() < 1e-14 && (p[1] - p[2] - 2.0).abs() < 1e-14);
        // x - p lies in the row space of A: orthogonal to the null space (2, -1, -1).
        let r: Vec<f64> = x.iter().zip(&p).map(|(u, v)| u - v).collect();
        assert!((2.0 * r[0] - r[1] - r[2]).abs() < 1e-14);
        assert!(AffineData::new(vec![1.0, 1.0, 2.0, 2.0], vec![0.0, 0.0], 2, 2).is_err());
    }

    #[test]
    fn linear_resolvent_of_skew_matrix_is_orthogonal() {
        // L skew-symmetric: the Cayley transform 2(I + L)^{-1} - I is orthogonal.
        let l = [0.0, 2.0, -2.0, 0.0];
        let op = LinearResolvent(Arc::new(LinearResolventData::new(&l, 2, 1.0).unwrap()));
        let y: Vec<f64> = ap(&op, &[3.0, 4.0]);
        assert!(((y[0] * y[0] + y[1] * y[1]).sqrt() - 5.0).abs() < 1e-13);
    }

    #[test]
    fn combinators() {
        let d = 2;
        let bx: SharedOp<f64> = Arc::new(BoxProj::new(vec![0.0; d], vec![1.0; d]).unwrap());
        let ball: SharedOp<f64> = Arc::new(Ball::new(vec![0.0; d], 1.0).unwrap());
        let c = Compose::new(vec![bx.clone(), ball.clone()]).unwrap(); // ball ∘ box
        let p = ap(&c, &[3.0, 3.0]);
        let s = 0.5f64.sqrt();
        assert!((p[0] - s).abs() < 1e-15 && (p[1] - s).abs() < 1e-15);
        let r = ap(&Reflect::new(bx.clone()), &[2.0, 0.5]);
        assert_eq!(r, vec![0.0, 0.5]);
        let avg = Average::new(vec![bx.clone(), Arc::new(Identity { d })], vec![0.25, 0.75]).unwrap();
        assert_eq!(ap(&avg, &[2.0, 0.5]), vec![1.75, 0.5]);
        assert!(Average::new(vec![bx.clone()], vec![0.5]).is_err());
        let three: SharedOp<f64> = Arc::new(Identity { d: 3 });
        assert!(Compose::new(vec![bx, three]).is_err());
    }

    #[test]
    fn douglas_rachford_fixes_points_of_the_intersection() {
        let pa: SharedOp<f64> = Arc::new(Ball::new(vec![0.0, 0.0], 1.0).unwrap());
        let pb: SharedOp<f64> = Arc::new(Affine(Arc::new(AffineData::new(vec![1.0, 0.0], vec![0.5], 1, 2).unwrap())));
        let dr = douglas_rachford(pa, pb).unwrap();
        let z = [0.5, 0.3];
        let t = ap(&dr, &z);
        assert!((t[0] - z[0]).abs() < 1e-15 && (t[1] - z[1]).abs() < 1e-15);
    }
}
