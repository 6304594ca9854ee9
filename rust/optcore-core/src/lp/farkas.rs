//! The certificate polish: a Farkas ray solved exactly on the rows that PDHG's dual drift
//! singles out, then tested on the full problem.
//!
//! On an infeasible LP the dual iterate drifts along a Farkas ray, but the drift can line up
//! with the ray long before it certifies: on Netlib's gosh the drift `y_k − y_{k/2}` has
//! cosine 0.994 with HiGHS's 9-row ray at 32k iterations, while the 0.6% of it off those rows
//! still breaks the certificate test by 72 φ (`benches/results/linprog_gosh.md`). The rows are
//! right before the values are; so, at checks `1, 2, 4, 8, …` (the drift over the second half
//! of the run so far), once two successive drifts point the same way (cosine ≥ [`COS_MIN`])
//! and the drift is a sizeable part of `y` (a feasible LP's drift shrinks to nothing), the
//! polish takes the `K` rows where the drift is largest (`K = 16, 64, 256`, stopping at the
//! first that certifies) and solves the *elastic* feasibility problem of those rows exactly
//! with a dense bounded simplex ([`super::simplex`]), on the scaled problem:
//!
//! `min Σ_i (p_i + q_i)  s.t.  l_i ≤ â_iᵀx + p_i − q_i ≤ u_i (i ∈ S),  l̂ ≤ x ≤ û,  p, q ≥ 0`.
//!
//! Its optimal duals `y` satisfy `|y_i| ≤ 1`, `y_i ≥ 0` only on a finite lower row bound,
//! `y_i ≤ 0` only on a finite upper one, and `λ = −Âᵀy` is `≥ 0` only on a finite lower
//! column bound, `≤ 0` on an upper one (the reduced costs of `r`, `x` at an optimum), and the
//! optimal value equals `φ(y)`, the Farkas objective. A positive optimum is a Farkas ray
//! supported on `S`. That ray, unscaled and with `Aᵀy` recomputed from the unscaled rows, must
//! then pass the solver's own test ([`super::certificates::primal_infeasible`], plain, at
//! `tol_infeasible`) on the **full** problem, and `φ` must stand clear of the rounding of its
//! terms (`φ ≥ 1e-9 Σ |terms|`): a consistent LP has every row subset feasible, so its
//! elastic optimum is 0 up to rounding, and a ray of rounding-size `φ` fails that last test.
//! Nothing here changes the iterates: a polish that finds nothing costs only its time, which
//! the caller caps by a work budget (tableau entries updated, not seconds, so that the
//! verdict at a given iteration does not depend on the machine's load).

use super::certificates::{forbidden_sign, primal_infeasible, Farkas};
use super::problem::Lp;
use super::scaling::Scaled;
use super::simplex::{Outcome, Start, Tableau};
use crate::alloc::{try_with_capacity, try_zeroed};
use crate::error::Result;

/// Two successive drifts must have at least this cosine for the polish to run.
pub(super) const COS_MIN: f64 = 0.8;
/// ... and the drift must be at least this part of `‖y‖`.
const DRIFT_MIN: f64 = 0.05;
/// The row counts tried, smallest first.
const SIZES: [usize; 3] = [16, 64, 256];
/// Largest dense tableau (entries) the polish builds: 32 MB.
const MAX_ENTRIES: usize = 4 << 20;
/// `φ` must exceed this share of the sum of its terms' magnitudes.
const CANCEL: f64 = 1e-9;

/// What the polish found, for the result's message.
pub(super) struct Found {
    /// Rows from the drift, and singleton rows added for their columns.
    pub rows: usize,
    pub singletons: usize,
    pub cols: usize,
    pub pivots: usize,
    pub phi_rel: f64,
}

/// The polish's state over a run: the dual iterate at the last sampled check and the drift
/// before it, and the work it has done.
pub(super) struct Polish {
    m: usize,
    n: usize,
    /// Checks seen; a sample is taken at checks 1, 2, 4, 8, …
    checks: usize,
    next: usize,
    prev_y: Vec<f64>,
    prev_drift: Vec<f64>,
    drift: Vec<f64>,
    have_drift: bool,
    /// Column of the subproblem for each column of the LP (`u32::MAX`: none), and the ray's
    /// `Aᵀy`: length n, allocated at the first polish.
    col_pos: Vec<u32>,
    /// The singleton rows of each column (CSR-like: `single_ptr[j]..single_ptr[j + 1]` in
    /// `single_rows`), built at the first polish.
    single_ptr: Vec<usize>,
    single_rows: Vec<usize>,
    dy: Vec<f64>,
    at_dy: Vec<f64>,
    /// What is left of the current run's work budget (tableau entries).
    budget: f64,
    /// Polishes run, LPs solved and their time (s), for the result's message.
    pub runs: usize,
    pub solves: usize,
    pub seconds: f64,
}

impl Polish {
    pub(super) fn new(m: usize, n: usize) -> Self {
        Polish {
            m,
            n,
            checks: 0,
            next: 1,
            prev_y: Vec::new(),
            prev_drift: Vec::new(),
            drift: Vec::new(),
            have_drift: false,
            col_pos: Vec::new(),
            single_ptr: Vec::new(),
            single_rows: Vec::new(),
            dy: Vec::new(),
            at_dy: Vec::new(),
            budget: 0.0,
            runs: 0,
            solves: 0,
            seconds: 0.0,
        }
    }

    /// At a check with the unscaled dual iterate `y`: whether this check is a sample whose
    /// drift has stabilised (then [`Polish::run`] should follow). Allocates its three
    /// m-vectors at the first sample (fallibly).
    pub(super) fn sample(&mut self, y: &[f64]) -> Result<bool> {
        self.checks += 1;
        if self.checks != self.next {
            return Ok(false);
        }
        self.next = self.next.saturating_mul(2);
        if self.prev_y.is_empty() {
            self.prev_y = try_zeroed(self.m, "linprog: the certificate polish's dual samples")?;
            self.prev_drift = try_zeroed(self.m, "linprog: the certificate polish's dual samples")?;
            self.drift = try_zeroed(self.m, "linprog: the certificate polish's dual samples")?;
            self.prev_y.copy_from_slice(y);
            return Ok(false);
        }
        std::mem::swap(&mut self.drift, &mut self.prev_drift);
        let (mut dd, mut pp, mut dp, mut yy) = (0.0, 0.0, 0.0, 0.0);
        for (((d, p), &yi), y0) in self.drift.iter_mut().zip(&self.prev_drift).zip(y).zip(self.prev_y.iter_mut()) {
            *d = yi - *y0;
            *y0 = yi;
            dd += *d * *d;
            pp += p * p;
            dp += *d * p;
            yy += yi * yi;
        }
        let had = self.have_drift;
        self.have_drift = true;
        let cos = dp / (dd.sqrt() * pp.sqrt());
        Ok(had && cos >= COS_MIN && dd >= DRIFT_MIN * DRIFT_MIN * yy && dd.is_finite())
    }

    /// Tries the restricted Farkas problems on the latest drift's top rows; `Some` when one
    /// gives a ray that certifies the full LP. `x`, `ax` are the current unscaled primal point
    /// and its product (for the test's signature only: the plain test does not read them);
    /// `budget` caps the tableau entries the simplex updates over the whole run (a work
    /// measure, so that the outcome does not depend on the machine's load); `stop` is asked
    /// between pivots.
    pub(super) fn run(
        &mut self,
        (lp, s): (&Lp, &Scaled),
        (x, ax): (&[f64], &[f64]),
        (tol, budget): (f64, f64),
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Found>> {
        self.budget = budget;
        let start = std::time::Instant::now();
        self.runs += 1;
        if self.col_pos.is_empty() {
            self.col_pos = try_with_capacity(self.n, "linprog: the certificate polish's column map")?;
            self.col_pos.resize(self.n, u32::MAX);
            self.dy = try_zeroed(self.m, "linprog: the certificate polish's ray")?;
            self.at_dy = try_zeroed(self.n, "linprog: the certificate polish's ray")?;
            self.singletons(&lp.a)?;
        }
        // Candidate rows: a drift entry of a sign the row can carry, largest first (ties by
        // index, so the order is deterministic).
        let mut rows: Vec<usize> = try_with_capacity(self.m, "linprog: the certificate polish's row order")?;
        rows.extend((0..self.m).filter(|&i| {
            let v = self.drift[i];
            v != 0.0 && !forbidden_sign(v, lp.lc[i], lp.uc[i])
        }));
        let drift = &self.drift;
        rows.sort_by(|&a, &b| drift[b].abs().total_cmp(&drift[a].abs()).then(a.cmp(&b)));
        let mut found = None;
        for &k in SIZES.iter() {
            let k = k.min(rows.len());
            let mut set = rows[..k].to_vec();
            set.sort_unstable();
            let outcome = self.solve_on(&set, (lp, s), (x, ax), tol, stop);
            self.solves += 1;
            match outcome? {
                Step::Found(f) => {
                    found = Some(f);
                    break;
                }
                Step::Stop => break,
                Step::Next => {}
            }
            if k == rows.len() {
                break;
            }
        }
        self.seconds += start.elapsed().as_secs_f64();
        Ok(found)
    }

    /// The index of the singleton rows by column.
    fn singletons(&mut self, a: &super::problem::Csr) -> Result<()> {
        let what = "linprog: the certificate polish's singleton rows";
        let single = |i: usize| a.indptr[i + 1] - a.indptr[i] == 1;
        let count = (0..a.nrows).filter(|&i| single(i)).count();
        self.single_ptr = try_with_capacity(self.n + 1, what)?;
        self.single_ptr.resize(self.n + 1, 0);
        for i in (0..a.nrows).filter(|&i| single(i)) {
            self.single_ptr[a.indices[a.indptr[i]] as usize + 1] += 1;
        }
        for j in 0..self.n {
            self.single_ptr[j + 1] += self.single_ptr[j];
        }
        self.single_rows = try_with_capacity(count, what)?;
        self.single_rows.resize(count, 0);
        let mut fill = self.single_ptr.clone();
        for i in (0..a.nrows).filter(|&i| single(i)) {
            let j = a.indices[a.indptr[i]] as usize;
            self.single_rows[fill[j]] = i;
            fill[j] += 1;
        }
        Ok(())
    }

    /// The restricted problem on the rows `set` (ascending) and the singleton rows of their
    /// columns (bounds written as rows: the subproblem holds every bound of its columns), and
    /// the test of its ray.
    fn solve_on(
        &mut self,
        set: &[usize],
        (lp, s): (&Lp, &Scaled),
        (x, ax): (&[f64], &[f64]),
        tol: f64,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Step> {
        let a = &s.a;
        // Columns: those the rows touch, in order of first appearance.
        let mut cols: Vec<usize> = Vec::new();
        for &i in set {
            for k in a.indptr[i]..a.indptr[i + 1] {
                let j = a.indices[k] as usize;
                if self.col_pos[j] == u32::MAX {
                    self.col_pos[j] = cols.len() as u32;
                    cols.push(j);
                }
            }
        }
        let mut rows = set.to_vec();
        for &j in &cols {
            rows.extend_from_slice(&self.single_rows[self.single_ptr[j]..self.single_ptr[j + 1]]);
        }
        rows.sort_unstable();
        rows.dedup();
        let result = self.elastic(&rows, &cols, (lp, s), (x, ax), tol, stop);
        let result = result.map(|step| match step {
            Step::Found(f) => Step::Found(Found { rows: set.len(), singletons: rows.len() - set.len(), ..f }),
            other => other,
        });
        for &j in &cols {
            self.col_pos[j] = u32::MAX;
        }
        result
    }

    fn elastic(
        &mut self,
        set: &[usize],
        cols: &[usize],
        (lp, s): (&Lp, &Scaled),
        (x, ax): (&[f64], &[f64]),
        tol: f64,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Step> {
        let (m, nx) = (set.len(), cols.len());
        // Variables: x (nx), then r_k, p_k, q_k for each row k of the subproblem.
        let n = nx + 3 * m;
        if m == 0 || m.saturating_mul(n) > MAX_ENTRIES {
            return Ok(Step::Stop);
        }
        let what = "linprog: the certificate polish's tableau";
        let mut t = try_zeroed(m * n, what)?;
        let mut cost = try_zeroed(n, what)?;
        let mut lo = try_zeroed(n, what)?;
        let mut hi = try_zeroed(n, what)?;
        let mut at = try_zeroed(n, what)?;
        let mut beta = try_zeroed(m, what)?;
        let mut basis: Vec<usize> = try_with_capacity(m, what)?;
        for (q, &j) in cols.iter().enumerate() {
            let (l, u) = (s.lv[j], s.uv[j]);
            (lo[q], hi[q]) = (l, u);
            // Nonbasic at the finite bound nearer 0 (free: at 0).
            at[q] = match (l.is_finite(), u.is_finite()) {
                (true, true) if u.abs() < l.abs() => u,
                (true, _) => l,
                (false, true) => u,
                (false, false) => 0.0,
            };
        }
        for (k, &i) in set.iter().enumerate() {
            let (r, p, q) = (nx + 3 * k, nx + 3 * k + 1, nx + 3 * k + 2);
            let row = &mut t[k * n..(k + 1) * n];
            let mut act = 0.0;
            for e in s.a.indptr[i]..s.a.indptr[i + 1] {
                let c = self.col_pos[s.a.indices[e] as usize] as usize;
                row[c] += s.a.data[e];
                act += s.a.data[e] * at[c];
            }
            // â_iᵀx − r + p − q = 0.
            (row[r], row[p], row[q]) = (-1.0, 1.0, -1.0);
            let (l, u) = (s.lc[i], s.uc[i]);
            (lo[r], hi[r]) = (l, u);
            (lo[p], hi[p], lo[q], hi[q]) = (0.0, f64::INFINITY, 0.0, f64::INFINITY);
            (cost[p], cost[q]) = (1.0, 1.0);
            // The basic variable of the row: r when the activity is within the row bounds,
            // else the elastic variable that closes the gap with r at the nearer bound.
            let (b, sign, value) = if act > l && act < u {
                (r, -1.0, act)
            } else {
                let rv = if act <= l { l } else { u };
                at[r] = rv;
                if rv - act >= 0.0 {
                    (p, 1.0, rv - act)
                } else {
                    (q, -1.0, act - rv)
                }
            };
            if sign < 0.0 {
                row.iter_mut().for_each(|v| *v = -*v);
            }
            basis.push(b);
            beta[k] = value;
        }
        let mut tab = Tableau::new(Start { m, n, t, cost, lo, hi, basis, beta, at })?;
        let outcome = tab.solve((50 * (m + n), self.budget), stop);
        self.budget -= tab.work();
        match outcome {
            Outcome::Optimal => {}
            Outcome::Stopped => return Ok(Step::Stop),
            // Out of budget: larger row sets would cost more.
            Outcome::Limit if self.budget <= 0.0 => return Ok(Step::Stop),
            Outcome::Limit | Outcome::Unbounded => return Ok(Step::Next),
        }
        // The duals: y_k = c_p − d_p = 1 − d_p; unscaled, y = γ D_r ŷ (γ dropped: a ray).
        let d = tab.reduced_costs();
        for (k, &i) in set.iter().enumerate() {
            let v = (1.0 - d[nx + 3 * k + 1]) * s.dr[i];
            self.dy[i] = if forbidden_sign(v, lp.lc[i], lp.uc[i]) { 0.0 } else { v };
        }
        let verdict = self.test(set, lp, (x, ax), tol);
        let pivots = tab.pivots();
        for &i in set {
            self.dy[i] = 0.0;
        }
        Ok(match verdict {
            Some(phi_rel) => Step::Found(Found { rows: m, singletons: 0, cols: nx, pivots, phi_rel }),
            None => Step::Next,
        })
    }

    /// The certificate test of the ray `self.dy` (supported on `set`) on the full LP, with
    /// `Aᵀy` from the unscaled rows; `Some(φ / ‖y‖∞)` when it certifies.
    fn test(&mut self, set: &[usize], lp: &Lp, (x, ax): (&[f64], &[f64]), tol: f64) -> Option<f64> {
        let a = &lp.a;
        for &i in set {
            let v = self.dy[i];
            for e in a.indptr[i]..a.indptr[i + 1] {
                self.at_dy[a.indices[e] as usize] += a.data[e] * v;
            }
        }
        let passed = primal_infeasible(lp, &self.dy, &self.at_dy, x, ax, tol, (true, false)) == Farkas::Yes;
        // φ against the magnitude of its terms (only the rows of `set` and their columns are
        // nonzero).
        let (mut phi, mut mag, mut size) = (0.0f64, 0.0f64, 0.0f64);
        let mut term = |b: f64, v: f64| {
            phi += b * v;
            mag += (b * v).abs();
        };
        for &i in set {
            let v = self.dy[i];
            size = size.max(v.abs());
            if v > 0.0 {
                term(lp.lc[i], v);
            } else if v < 0.0 {
                term(lp.uc[i], v);
            }
        }
        for &i in set {
            for e in a.indptr[i]..a.indptr[i + 1] {
                let j = a.indices[e] as usize;
                let lam = -self.at_dy[j];
                if lam > 0.0 && lp.lv[j].is_finite() {
                    term(lp.lv[j], lam);
                } else if lam < 0.0 && lp.uv[j].is_finite() {
                    term(lp.uv[j], lam);
                }
                // Count each column once.
                self.at_dy[j] = 0.0;
            }
        }
        (passed && phi > 0.0 && phi >= CANCEL * mag).then_some(phi / size)
    }
}

/// What one restricted solve says about the next.
enum Step {
    Found(Found),
    /// Nothing certified: try more rows.
    Next,
    /// Stopped (interrupt, time, or the problem grew too large): no more rows.
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_uniform as uniform;
    use crate::lp::problem::Csr;
    use crate::lp::scaling::scale;

    const INF: f64 = f64::INFINITY;

    /// Feeds `polish` the dual samples `y`, `y + d`, (a check in between), `y + 3d`, so that
    /// the two drifts are `d` and `2d`; returns whether the last sample asks for a polish.
    fn settle(polish: &mut Polish, y: &[f64], d: &[f64]) -> bool {
        let at = |t: f64| y.iter().zip(d).map(|(a, b)| a + t * b).collect::<Vec<f64>>();
        assert!(!polish.sample(&at(0.0)).unwrap());
        assert!(!polish.sample(&at(1.0)).unwrap());
        assert!(!polish.sample(&at(2.0)).unwrap());
        polish.sample(&at(3.0)).unwrap()
    }

    /// 40 rows over 30 columns: rows 0..37 feasible at x = 1 (random, some equations), and an
    /// infeasible core of three rows: x0 + x1 <= 1, x0 >= 0.7, x1 >= 0.7 (rows 37, 38, 39).
    fn core_lp(seed: u64) -> Lp {
        let (m, n) = (40usize, 30usize);
        let mut rnd = uniform(seed);
        let mut rows = vec![vec![0.0; n]; m];
        let (mut lc, mut uc) = (vec![-INF; m], vec![INF; m]);
        for (i, row) in rows.iter_mut().enumerate().take(m - 3) {
            for v in row.iter_mut() {
                if rnd() < 0.2 {
                    *v = (rnd() * 10.0).round() - 5.0;
                }
            }
            let act: f64 = row.iter().sum();
            match i % 3 {
                0 => (lc[i], uc[i]) = (act, act),
                1 => uc[i] = act + rnd(),
                _ => lc[i] = act - rnd(),
            }
        }
        rows[37][0] = 1.0;
        rows[37][1] = 1.0;
        uc[37] = 1.0;
        rows[38][0] = 1.0;
        lc[38] = 0.7;
        rows[39][1] = 1.0;
        lc[39] = 0.7;
        let refs: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
        Lp { a: Csr::from_dense(&refs), c: vec![1.0; n], lc, uc, lv: vec![0.0; n], uv: vec![INF; n] }
    }

    #[test]
    fn a_drift_on_the_infeasible_rows_is_polished_into_a_certificate() {
        let lp = core_lp(5);
        let s = scale(&lp, None);
        let (m, n) = (lp.a.nrows, lp.a.ncols);
        let mut rnd = uniform(11);
        // The drift points at the core's ray (-1, 1, 1) with small noise on every other row.
        let mut d: Vec<f64> = (0..m).map(|_| 1e-3 * (rnd() - 0.5)).collect();
        (d[37], d[38], d[39]) = (-1.0, 1.0, 1.0);
        let y: Vec<f64> = (0..m).map(|_| rnd() - 0.5).collect();
        let mut p = Polish::new(m, n);
        assert!(settle(&mut p, &y, &d));
        let (x, ax) = (vec![1.0; n], vec![0.0; m]);
        let found = p.run((&lp, &s), (&x, &ax), (1e-6, f64::INFINITY), &mut || false).unwrap().expect("a certificate");
        assert_eq!(found.rows, 16);
        assert!(found.phi_rel > 0.0);
        // gosh's case: the drift is 0 on the singleton rows x0 >= 0.7, x1 >= 0.7 (the iterates
        // never make them active), so they are no candidates; they come in as the singleton
        // rows of row 37's columns, and the ray is found.
        (d[38], d[39]) = (0.0, 0.0);
        let mut p = Polish::new(m, n);
        assert!(settle(&mut p, &y, &d));
        let found = p.run((&lp, &s), (&x, &ax), (1e-6, f64::INFINITY), &mut || false).unwrap().expect("a certificate");
        assert!(found.singletons >= 2, "{}", found.singletons);
        (d[38], d[39]) = (1.0, 1.0);
        // Without the core rows among the candidates (a drift that leaves them out) there is none.
        (d[37], d[38], d[39]) = (0.0, 0.0, 0.0);
        let mut p = Polish::new(m, n);
        for v in d.iter_mut().take(37) {
            *v = if *v == 0.0 { 1e-3 } else { *v * 1e3 };
        }
        // (the sample may or may not call for a polish; run it anyway on this drift)
        settle(&mut p, &y, &d);
        let mut lp_no_core = lp.clone();
        for i in 37..40 {
            (lp_no_core.lc[i], lp_no_core.uc[i]) = (-INF, INF);
        }
        let s2 = scale(&lp_no_core, None);
        assert!(p.run((&lp_no_core, &s2), (&x, &ax), (1e-6, f64::INFINITY), &mut || false).unwrap().is_none());
    }

    #[test]
    fn the_sample_asks_only_for_a_settled_growing_drift() {
        let (m, n) = (4, 2);
        let y = [1.0, -2.0, 0.5, 3.0];
        // Drifts that turn: no polish.
        let mut p = Polish::new(m, n);
        let samples = [[0.0; 4], [1.0, 0.0, 0.0, 0.0], [1.0; 4], [1.0, 0.0, 5.0, 0.0]];
        let asks: Vec<bool> = samples
            .iter()
            .map(|s| p.sample(&y.iter().zip(s).map(|(a, b)| a + b).collect::<Vec<f64>>()).unwrap())
            .collect();
        assert_eq!(asks, [false, false, false, false]);
        // A settled drift below 5% of ‖y‖ (a converging feasible run): no polish.
        let mut p = Polish::new(m, n);
        assert!(!settle(&mut p, &y, &[1e-3, 0.0, 0.0, 0.0]));
        // A settled sizeable drift: polish; the next sample is at check 8.
        let mut p = Polish::new(m, n);
        assert!(settle(&mut p, &y, &[1.0, 0.0, 0.0, 0.0]));
        for _ in 0..3 {
            assert!(!p.sample(&y).unwrap());
        }
    }

    /// A random LP feasible at a random point `x*` inside its column bounds: inequality rows
    /// through or near `A x*`, equality rows at `A x*` (more of them than columns sometimes,
    /// so that the rounding of `A x*` can make them inconsistent by 1e-16), column bounds
    /// that are finite, huge, or infinite.
    fn feasible_lp(seed: u64) -> (Lp, Vec<f64>) {
        let mut rnd = uniform(seed);
        let n = 2 + (rnd() * 12.0) as usize;
        let m = 1 + (rnd() * 2.5 * n as f64) as usize;
        let big = [1.0, 1e4, 1e-4][(rnd() * 3.0) as usize];
        let mut lv = vec![0.0; n];
        let mut uv = vec![0.0; n];
        let mut xs = vec![0.0; n];
        for j in 0..n {
            let r = rnd();
            (lv[j], uv[j]) = if r < 0.3 {
                (0.0, INF)
            } else if r < 0.5 {
                (-INF, INF)
            } else if r < 0.6 {
                (-1e9 * big, 1e9 * big)
            } else {
                (-big * rnd(), big * rnd())
            };
            xs[j] = if lv[j].is_finite() && uv[j].is_finite() {
                lv[j] + (uv[j] - lv[j]) * rnd()
            } else if lv[j].is_finite() {
                lv[j] + big * rnd()
            } else {
                big * (rnd() - 0.5)
            };
            if rnd() < 0.2 && lv[j].is_finite() {
                xs[j] = lv[j];
            }
        }
        let mut rows = vec![vec![0.0; n]; m];
        let (mut lc, mut uc) = (vec![-INF; m], vec![INF; m]);
        for i in 0..m {
            for v in rows[i].iter_mut() {
                if rnd() < 0.5 {
                    *v = (rnd() - 0.5) * [1.0, 1e3, 1e-3][i % 3];
                }
            }
            let act: f64 = rows[i].iter().zip(&xs).map(|(a, x)| a * x).sum();
            let slack = if rnd() < 0.5 { 0.0 } else { rnd() * big };
            match (rnd() * 4.0) as usize {
                0 => (lc[i], uc[i]) = (act, act),
                1 => uc[i] = act + slack,
                2 => lc[i] = act - slack,
                _ => (lc[i], uc[i]) = (act - slack, act + slack),
            }
        }
        let refs: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
        let c = (0..n).map(|_| rnd() - 0.5).collect();
        (Lp { a: Csr::from_dense(&refs), c, lc, uc, lv, uv }, xs)
    }

    #[test]
    fn feasible_lps_are_never_certified_whatever_the_drift() {
        let (mut fired, mut solves) = (0, 0);
        for seed in 0..400u64 {
            let (lp, xs) = feasible_lp(seed);
            let s = scale(&lp, None);
            let (m, n) = (lp.a.nrows, lp.a.ncols);
            let mut ax = vec![0.0; m];
            lp.a.matvec(&xs, &mut ax);
            let mut rnd = uniform(1000 + seed);
            for _ in 0..3 {
                let d: Vec<f64> = (0..m).map(|_| if rnd() < 0.3 { 0.0 } else { rnd() - 0.5 }).collect();
                let mut p = Polish::new(m, n);
                fired += usize::from(settle(&mut p, &vec![0.0; m], &d));
                let found = p.run((&lp, &s), (&xs, &ax), (1e-6, f64::INFINITY), &mut || false).unwrap();
                assert!(found.is_none(), "seed {seed}: a feasible LP certified infeasible");
                solves += p.solves;
            }
        }
        assert!(fired > 1000 && solves >= 1200, "{fired} {solves}");
    }
}
