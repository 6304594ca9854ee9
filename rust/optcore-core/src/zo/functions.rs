//! Native batched test functions (BBOB/nevergrad definitions, unshifted and unrotated), and
//! [`Objective`], what the loops of [`super::solve`] evaluate.
//!
//! Each row of a batch is summed sequentially in f64 (a fixed order); rows are spread over
//! the thread pool, so the values do not depend on `workers`.

use crate::error::{OptError, Result};
use crate::real::Real;
use rayon::prelude::*;
use std::f64::consts::{E, TAU};

/// Something [`super::solve`] can minimise: values of `f` at the rows of a `(B, d)` batch.
///
/// Implementations: [`TestFunction`] here (no Python in the loop) and, in the binding, a
/// Python callable that takes the whole batch. A Python objective that works point by point
/// or through a `concurrent.futures.Executor` is wrapped on the Python side into such a
/// batched callable, which submits the rows and gathers the results in order: the futures are
/// Python objects that must be created and awaited under the GIL anyway, and one batched
/// interface keeps a single loop here for every kind of objective.
pub trait Objective<T: Real>: Send + Sync {
    fn dim(&self) -> usize;
    /// Writes `f(x_i)` for the `B = out.len()` rows `x_i` of `x` (row-major, `B * dim`).
    /// An error (a Python exception, a wrong shape) ends the run.
    fn eval(&self, x: &[T], out: &mut [f64]) -> Result<()>;
    /// How [`super::solve`] asks for the values of an iteration (default: the whole batch).
    fn evaluation(&self) -> Evaluation {
        Evaluation::Batch
    }
    /// [`Evaluation::PerPoint`]: evaluates one point that `fill` writes into a buffer of the
    /// objective's own (`buf` is kept between calls for that): a Python objective generates
    /// the point straight into the array it hands to the callable, so no second copy of the
    /// point exists.
    fn eval_filled(
        &self,
        fill: &mut dyn FnMut(&mut [T]) -> Result<()>,
        buf: &mut Vec<T>,
        out: &mut [f64],
    ) -> Result<()> {
        if buf.len() != self.dim() {
            *buf = crate::alloc::try_zeroed::<T>(self.dim(), "a point")?;
        }
        fill(buf)?;
        self.eval(buf, out)
    }
    /// [`Evaluation::Values`]: writes the `out.len()` values of the batch of iteration `nit`,
    /// evaluated elsewhere (replicas of the state that regenerate the points from the seed).
    /// `digest` gives [`super::Zo::state_hash`] of the state the batch belongs to, for
    /// checking the replicas.
    fn values(&self, nit: u64, digest: &dyn Fn() -> u64, out: &mut [f64]) -> Result<()> {
        let _ = (nit, digest, out);
        Err(OptError::InvalidInput("this objective evaluates points, not iterations".into()))
    }
}

/// How [`super::solve`] gets the values of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// One [`Objective::eval`] call on the whole `(B, d)` batch (vectorised objectives,
    /// executors that receive the points, native functions spread over threads).
    Batch,
    /// One call per point ([`Objective::eval_filled`]), each generated into the objective's
    /// buffer: memory O(d) whatever `B`.
    PerPoint,
    /// [`Objective::values`]: no point is generated here.
    Values,
}

/// The native test functions. Minimum values are 0 (Schwefel: about 1.3e-5 per coordinate
/// above 0, at `x_i = 420.9687`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Func {
    /// `Σ x_i²`; minimum at 0.
    Sphere,
    /// `Σ cond^{i/(d-1)} x_i²` (separable, condition number `cond`); minimum at 0.
    Ellipsoid { cond: f64 },
    /// `Σ 100 (x_{i+1} - x_i²)² + (1 - x_i)²`; minimum at 1.
    Rosenbrock,
    /// `10 d + Σ x_i² - 10 cos(2π x_i)`; minimum at 0.
    Rastrigin,
    /// `-20 exp(-0.2 sqrt(mean x²)) - exp(mean cos 2π x) + 20 + e`; minimum at 0.
    Ackley,
    /// `418.9829 d - Σ x_i sin(sqrt|x_i|)`; minimum near `x_i = 420.9687`.
    Schwefel,
    /// Lunacek bi-Rastrigin (BBOB f24 without rotation): `min(Σ(x_i-2.5)², d + s Σ(x_i-μ1)²)
    /// + 10 Σ (1 - cos 2π(x_i - 2.5))`; minimum at `x_i = 2.5`.
    Lunacek,
}

impl Func {
    pub fn from_name(name: &str, cond: f64) -> Result<Func> {
        Ok(match name {
            "sphere" => Func::Sphere,
            "ellipsoid" => Func::Ellipsoid { cond },
            "rosenbrock" => Func::Rosenbrock,
            "rastrigin" => Func::Rastrigin,
            "ackley" => Func::Ackley,
            "schwefel" => Func::Schwefel,
            "lunacek" => Func::Lunacek,
            other => return Err(OptError::InvalidInput(format!("unknown test function {other:?}"))),
        })
    }

    /// `f(x)` for one point.
    pub fn value<T: Real>(&self, x: &[T]) -> f64 {
        let d = x.len();
        let it = x.iter().map(|v| v.as_f64());
        match *self {
            Func::Sphere => it.map(|v| v * v).sum(),
            Func::Ellipsoid { cond } => {
                let denom = (d.max(2) - 1) as f64;
                it.enumerate().map(|(i, v)| cond.powf(i as f64 / denom) * v * v).sum()
            }
            Func::Rosenbrock => x
                .windows(2)
                .map(|w| {
                    let (a, b) = (w[0].as_f64(), w[1].as_f64());
                    100.0 * (b - a * a).powi(2) + (1.0 - a).powi(2)
                })
                .sum(),
            Func::Rastrigin => 10.0 * d as f64 + it.map(|v| v * v - 10.0 * (TAU * v).cos()).sum::<f64>(),
            Func::Ackley => {
                let n = d as f64;
                let (s2, sc) = it.fold((0.0, 0.0), |(a, b), v| (a + v * v, b + (TAU * v).cos()));
                -20.0 * (-0.2 * (s2 / n).sqrt()).exp() - (sc / n).exp() + 20.0 + E
            }
            Func::Schwefel => 418.982_887_272_433_9 * d as f64 - it.map(|v| v * v.abs().sqrt().sin()).sum::<f64>(),
            Func::Lunacek => {
                let n = d as f64;
                let mu0 = 2.5;
                let s = 1.0 - 1.0 / (2.0 * (n + 20.0).sqrt() - 8.2);
                let mu1 = -((mu0 * mu0 - 1.0) / s).sqrt();
                let (mut a, mut b, mut c) = (0.0, 0.0, 0.0);
                for v in it {
                    a += (v - mu0).powi(2);
                    b += (v - mu1).powi(2);
                    c += 1.0 - (TAU * (v - mu0)).cos();
                }
                a.min(n + s * b) + 10.0 * c
            }
        }
    }
}

/// A native test function on `ℝ^d` as an [`Objective`].
#[derive(Debug, Clone, Copy)]
pub struct TestFunction {
    pub func: Func,
    pub d: usize,
}

/// Rows per parallel task: large batches of small rows are not split into tiny tasks.
fn rows_per_task(d: usize) -> usize {
    (4096 / d.max(1)).max(1)
}

/// `f` at every row of `x` (`out.len()` rows of length `d`), rows spread over the pool.
pub fn eval_rows<T: Real>(func: Func, d: usize, x: &[T], out: &mut [f64]) {
    let per = rows_per_task(d);
    out.par_chunks_mut(per).zip(x.par_chunks(per * d.max(1))).for_each(|(o, rows)| {
        for (v, row) in o.iter_mut().zip(rows.chunks(d.max(1))) {
            *v = func.value(row);
        }
    });
}

impl<T: Real> Objective<T> for TestFunction {
    fn dim(&self) -> usize {
        self.d
    }
    fn eval(&self, x: &[T], out: &mut [f64]) -> Result<()> {
        if x.len() != out.len() * self.d {
            return Err(OptError::InvalidInput(format!(
                "batch of {} values for {} rows of length {}",
                x.len(),
                out.len(),
                self.d
            )));
        }
        eval_rows(self.func, self.d, x, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minima() {
        let d = 7;
        let at = |v: f64| vec![v; d];
        assert_eq!(Func::Sphere.value(&at(0.0)), 0.0);
        assert_eq!(Func::Ellipsoid { cond: 1e4 }.value(&at(0.0)), 0.0);
        assert_eq!(Func::Rosenbrock.value(&at(1.0)), 0.0);
        assert!(Func::Rastrigin.value(&at(0.0)).abs() < 1e-12);
        assert!(Func::Ackley.value(&at(0.0)).abs() < 1e-12);
        assert!(Func::Lunacek.value(&at(2.5)).abs() < 1e-12);
        let s = Func::Schwefel.value(&at(420.968_746));
        assert!((0.0..1e-4 * d as f64).contains(&s), "{s}");
    }

    #[test]
    fn known_values() {
        let x = [1.0, -2.0, 0.5];
        assert_eq!(Func::Sphere.value(&x), 5.25);
        // cond^{0, 1/2, 1} = 1, 100, 1e4
        assert_eq!(Func::Ellipsoid { cond: 1e4 }.value(&x), 1.0 + 400.0 + 2500.0);
        assert_eq!(Func::Rosenbrock.value(&x), 100.0 * 9.0 + 0.0 + 100.0 * (0.5f64 - 4.0).powi(2) + 9.0);
        assert!((Func::Rastrigin.value(&x) - (30.0 + 5.25 - 10.0 * (1.0 + 1.0 + (-1.0)))).abs() < 1e-12);
    }

    #[test]
    fn batch_equals_rows_in_any_pool() {
        let d = 5;
        let x: Vec<f32> = (0..d * 1000).map(|i| ((i * 37 % 101) as f32) / 20.0 - 2.5).collect();
        let mut a = vec![0.0; 1000];
        let mut b = vec![0.0; 1000];
        crate::parallel::with_workers(Some(1), || eval_rows(Func::Lunacek, d, &x, &mut a));
        crate::parallel::with_workers(Some(3), || eval_rows(Func::Lunacek, d, &x, &mut b));
        assert_eq!(a, b);
        assert_eq!(a[17], Func::Lunacek.value(&x[17 * d..18 * d]));
    }
}
