//! The driver: presolve, scaling, then restarted reflected Halpern PDHG with a check every
//! `check_every` iterations (KKT errors on the unscaled problem, infeasibility certificates,
//! limits, the observer, the restart test and the primal weight).

use super::certificates::{
    clip_to_cone, dual_infeasible, primal_infeasible, test_ray, Farkas, GrowthHistory, ProxyDrift,
};
use super::farkas::Polish;
use super::kkt::{kkt, Kkt, Pair, Work};
use super::presolve::{infinite_row_bound, propagate, redundant_bounds};
use super::problem::{clamp, scaled_norm, Lp, Norms, Options, Output};
use super::restart::{fixed_point_residual, PrimalWeight, Restarts};
use super::scaling::{diff_into, scale, Scaled};
use super::step::{pdhg_step, Iterates, Step};
use crate::error::Result;
use crate::linalg::lanczos::spectral_norm;
use crate::linalg::norm;
use crate::solver::{Control, Observer, Report, Termination};
use std::ops::ControlFlow;

/// Solves `lp` from the (unscaled) start `(x0, y0)`.
pub fn solve(
    lp: &Lp,
    x0: Option<&[f64]>,
    y0: Option<&[f64]>,
    opts: &Options,
    obs: &mut dyn Observer<f64>,
) -> Result<Output> {
    lp.validate(x0, y0)?;
    let start = std::time::Instant::now();
    let norms = lp.norms();
    if let Some(proof) = infinite_row_bound(lp) {
        return Ok(presolved(lp, x0, norms, proof.to_string()));
    }
    // The warm start is clipped to the bounds that the rows imply: every feasible point lies
    // within them, and a start far outside (1e150 where the rows allow 4) would otherwise
    // anchor the Halpern iterates out there for as many iterations as the distance is large.
    // Row bounds that the rows' activity cannot reach stay out of the bound scale β.
    let (mut x0c, mut redundant) = (None, None);
    if opts.propagation_rounds > 0 {
        match propagate(lp, opts.propagation_rounds) {
            Err(proof) => return Ok(presolved(lp, x0, norms, proof.to_string())),
            Ok((lb, ub)) => {
                redundant = Some(redundant_bounds(lp, &lb, &ub));
                x0c = x0.map(|v| {
                    v.iter().zip(lb.iter().zip(&ub)).map(|(&x, (&l, &u))| clamp(x, l, u)).collect::<Vec<f64>>()
                })
            }
        }
    }
    let x0 = x0c.as_deref().or(x0);
    reserve_for(lp)?;
    let mut run = Run::new(lp, (x0, y0), opts, (norms, redundant.as_deref()), start);
    loop {
        let (wa, wt) = run.restarts.weights();
        // A check needs z and T z both, so the Halpern step is fused into the passes except
        // at a check.
        let check = (run.nit + 1) % opts.check_every == 0 || run.nit + 1 >= opts.maxiter;
        let omega = run.weight.omega;
        let step = Step { tau: run.eta / omega, sigma: run.eta * omega, wa, wt, fused: !check };
        pdhg_step(&run.s, step, &mut run.it);
        run.nit += 1;
        run.restarts.advance();
        if check {
            match run.check(obs)? {
                ControlFlow::Break(out) => return Ok(out),
                ControlFlow::Continue(k) => run.restart_or_step(k, (wa, wt)),
            }
        }
    }
}

/// Checks that the solve's buffers fit before allocating them: the scaled matrix and its
/// transpose (value, index, and row pointer per entry) and about 40 vectors of length m or n.
/// A request the machine cannot hold is [`crate::error::OptError::Memory`] (Python's
/// `MemoryError`) instead of an abort in one of the infallible allocations that follow.
fn reserve_for(lp: &Lp) -> Result<()> {
    reserve(lp.a.nrows, lp.a.ncols, lp.a.data.len())
}

fn reserve(m: usize, n: usize, nnz: usize) -> Result<()> {
    use crate::alloc::{checked_len, try_with_capacity};
    let entries = checked_len(nnz, 2 * 16, "linprog: the scaled matrix and its transpose")?;
    let vectors = checked_len(m.saturating_add(n).saturating_add(2), 40 * 8, "linprog: the iterate vectors")?;
    let bytes = entries.saturating_add(vectors);
    drop(try_with_capacity::<u8>(bytes, "linprog: the solver's buffers")?);
    Ok(())
}

/// The answer when bound propagation proved infeasibility: the start (clipped to the bounds)
/// with zero duals, as no iteration ran.
fn presolved(lp: &Lp, x0: Option<&[f64]>, norms: Norms, reason: String) -> Output {
    let (m, n) = (lp.a.nrows, lp.a.ncols);
    let x: Vec<f64> = (0..n).map(|j| clamp(x0.map_or(0.0, |v| v[j]), lp.lv[j], lp.uv[j])).collect();
    let y = vec![0.0; m];
    let mut ax = vec![0.0; m];
    lp.a.matvec(&x, &mut ax);
    let mut reduced = vec![0.0; n];
    let k = kkt(lp, &Pair { x: &x, y: &y, ax: &ax, aty: &vec![0.0; n] }, norms, &mut reduced);
    k.output((x, y, reduced), (Termination::Infeasible, reason), (0, 0))
}

/// The state of one solve.
struct Run<'a> {
    lp: &'a Lp,
    opts: &'a Options,
    norms: Norms,
    start: std::time::Instant,
    s: Scaled,
    /// `η = 0.998 / ‖Â‖₂`: `τ = η/ω`, `σ = ηω`.
    eta: f64,
    it: Iterates,
    /// The PDHG output at the last check (for the drift over a check interval).
    last_xb: Vec<f64>,
    last_yb: Vec<f64>,
    w: Work,
    tmp_m: Vec<f64>,
    tmp_n: Vec<f64>,
    nit: usize,
    restarts: Restarts,
    weight: PrimalWeight,
    /// Consecutive checks at which a primal (dual) infeasibility certificate held.
    pinf_hits: usize,
    dinf_hits: usize,
    /// ‖y‖ (unscaled) at the checks, for the test of a steadily growing dual iterate.
    y_norms: GrowthHistory,
    /// `‖a_i‖_∞` of every row and `‖c‖_∞` (unscaled), the sizes the unboundedness test
    /// measures a ray against.
    row_max: Vec<f64>,
    c_max: f64,
    /// Set when the KKT test passed while the dual iterate kept growing: the converged result,
    /// returned unless an infeasibility certificate turns up by iteration `until`.
    held: Option<(Output, usize)>,
    /// Park & Ryu's residual estimator and its Picard-proxy drift, as candidate rays.
    proxy: ProxyDrift,
    /// The certificate polish (an exact Farkas LP on the rows the dual drift singles out).
    polish: Polish,
}

impl<'a> Run<'a> {
    fn new(
        lp: &'a Lp,
        (x0, y0): (Option<&[f64]>, Option<&[f64]>),
        opts: &'a Options,
        (norms, redundant): (Norms, Option<&[u8]>),
        start: std::time::Instant,
    ) -> Self {
        let (m, n) = (lp.a.nrows, lp.a.ncols);
        let s = scale(lp, redundant);
        let anorm = spectral_norm(&s.a, &s.at);
        let eta = if anorm > 0.0 { 0.998 / anorm } else { 1.0 };
        // The warm start scaled: x̂ = x / (β D_c), ŷ = y / (γ D_r).
        let mut x: Vec<f64> = match x0 {
            Some(x0) => x0.iter().zip(&s.dc).map(|(v, d)| v / (d * s.beta)).collect(),
            None => vec![0.0; n],
        };
        let y: Vec<f64> = match y0 {
            Some(y0) => y0.iter().zip(&s.dr).map(|(v, d)| v / (d * s.gamma)).collect(),
            None => vec![0.0; m],
        };
        for (j, xj) in x.iter_mut().enumerate() {
            *xj = clamp(*xj, s.lv[j], s.uv[j]);
        }
        let (last_xb, last_yb) = (x.clone(), y.clone());
        Run {
            lp,
            opts,
            norms,
            start,
            s,
            eta,
            it: Iterates::new(x, y),
            last_xb,
            last_yb,
            w: Work::new(m, n),
            tmp_m: vec![0.0; m],
            tmp_n: vec![0.0; n],
            nit: 0,
            restarts: Restarts::new(),
            weight: PrimalWeight::new(),
            pinf_hits: 0,
            dinf_hits: 0,
            y_norms: GrowthHistory::new(),
            row_max: lp.a.row_norms(f64::INFINITY),
            c_max: lp.c.iter().fold(0.0, |m, v| m.max(v.abs())),
            held: None,
            proxy: ProxyDrift::new(m, n),
            polish: Polish::new(m, n),
        }
    }

    /// The KKT errors of the unscaled PDHG output `T z`, which goes to `w.xu`, `w.yu` (with
    /// its products in `w.ax`, `w.at_y` and its reduced costs in `w.reduced`).
    fn measure(&mut self) -> Kkt {
        let (s, w) = (&self.s, &mut self.w);
        s.unscale_x(&mut w.xu, &self.it.xb);
        // Unscaling can put x outside its bounds by rounding: the point measured (and returned)
        // is clipped to them, and `A x` is the product of that very point.
        for ((xj, &l), &u) in w.xu.iter_mut().zip(&self.lp.lv).zip(&self.lp.uv) {
            *xj = clamp(*xj, l, u);
        }
        s.unscale_y(&mut w.yu, &self.it.yb);
        self.lp.a.matvec(&w.xu, &mut w.ax);
        s.at.matvec(&self.it.yb, &mut self.tmp_n);
        s.unscale_cols(&mut w.at_y, &self.tmp_n);
        let pair = Pair { x: &w.xu, y: &w.yu, ax: &w.ax, aty: &w.at_y };
        kkt(self.lp, &pair, self.norms, &mut w.reduced)
    }

    /// The output at the current check: the unscaled PDHG output and its errors `k`.
    fn output(&self, termination: Termination, reason: String, k: Kkt) -> Output {
        let point = (self.w.xu.clone(), self.w.yu.clone(), self.w.reduced.clone());
        k.output(point, (termination, reason), (self.nit, self.restarts.count))
    }

    /// The check after iteration `nit`: `Break` ends the run with that output, `Continue`
    /// hands on the KKT errors of `T z`.
    fn check(&mut self, obs: &mut dyn Observer<f64>) -> Result<ControlFlow<Output, Kkt>> {
        let (opts, nit) = (self.opts, self.nit);
        let k = self.measure();
        if !k.finite() {
            let msg = format!(
                "the iterates are no longer finite at iteration {nit} (the problem may be badly scaled, or \
                 infeasible/unbounded without a certificate found in time)"
            );
            return Ok(ControlFlow::Break(self.output(Termination::Numerical(msg.clone()), msg, k)));
        }
        self.y_norms.push(norm(&self.w.yu));
        if k.converged(opts.tol) && self.held.is_none() {
            let reason = format!(
                "relative KKT error <= {:.1e} (primal {:.1e}, dual {:.1e}, gap {:.1e})",
                opts.tol, k.rel_primal, k.rel_dual, k.rel_gap
            );
            let out = self.output(Termination::Converged, reason, k);
            if !self.y_norms.growing() {
                return Ok(ControlFlow::Break(out));
            }
            // An LP infeasible by less than the tolerance can pass the KKT test while PDHG's
            // dual iterate grows along a Farkas ray at a constant rate, where a feasible LP's
            // iterates stay bounded (Halpern's iterates stay within the anchor's distance of a
            // saddle point, in the metric of the current primal weight). Before calling it
            // optimal, go on as long again looking for a certificate (longer while ‖y‖ grows).
            self.held = Some((out, 2 * nit));
        }
        if self.restarts.checks > 0 {
            if let Some(out) = self.certificates(k) {
                return Ok(ControlFlow::Break(out));
            }
        }
        if self.polish.sample(&self.w.yu)? {
            if let Some(out) = self.polish(obs, k)? {
                return Ok(ControlFlow::Break(out));
            }
        }
        self.last_xb.copy_from_slice(&self.it.xb);
        self.last_yb.copy_from_slice(&self.it.yb);
        self.restarts.checks += 1;
        let elapsed = self.start.elapsed().as_secs_f64();
        if let Some((passed, until)) = self.held.as_ref().map(|h| (h.0.nit, h.1)) {
            // Past `until`, a dual iterate that still grows at every check keeps the search
            // going, up to 4x the iteration that passed the KKT test (cplex2 at 1e-4: passed
            // at 14 720, growing steadily from about 18 000 and faster from 29 000, certificate
            // at 30 784); a feasible LP's stops growing, and its converged result comes back
            // at `until`.
            let more = nit < 4 * passed && self.y_norms.rising();
            if (nit >= until && !more) || nit >= opts.maxiter || elapsed >= opts.time_limit {
                let (mut out, _) = self.held.take().unwrap();
                out.reason += &format!(
                    " at iteration {}; the dual iterates were still growing steadily, but the {} iterations \
                     after found no infeasibility certificate",
                    out.nit,
                    nit - out.nit
                );
                out.nit = nit;
                return Ok(ControlFlow::Break(out));
            }
        }
        if nit >= opts.maxiter || elapsed >= opts.time_limit {
            let reason = if nit >= opts.maxiter { "iteration limit" } else { "time limit" };
            let reason = format!(
                "{reason} reached (primal {:.1e}, dual {:.1e}, gap {:.1e} > tol {:.1e})",
                k.rel_primal, k.rel_dual, k.rel_gap, opts.tol
            );
            return Ok(ControlFlow::Break(self.output(Termination::MaxIter, reason, k)));
        }
        Ok(match self.observe(obs, k) {
            Some(out) => ControlFlow::Break(out),
            None => ControlFlow::Continue(k),
        })
    }

    /// The certificate polish at a check whose dual drift has settled ([`Polish`]): `Some` with
    /// the infeasible verdict when its ray certifies the full LP, or with the aborted output
    /// when an interrupt came in during it. Its time counts against the time limit (it is
    /// asked between pivots too); it runs no PDHG iteration.
    fn polish(&mut self, obs: &mut dyn Observer<f64>, k: Kkt) -> Result<Option<Output>> {
        let (limit, start) = (self.opts.time_limit, self.start);
        // Its own budget, in tableau entries updated: a quarter of the matrix entries the
        // iterations so far have read (each reads the matrix twice), at least 4e8 (a few tenths
        // of a second), so that the polish's share of a long run stays small. A work measure, not
        // a time: the verdict at a given iteration does not depend on the machine's load.
        let budget = 4e8f64.max(0.5 * self.nit as f64 * self.lp.a.data.len() as f64);
        let mut interrupted = false;
        let mut stop = || {
            interrupted = interrupted || obs.interrupted();
            interrupted || start.elapsed().as_secs_f64() >= limit
        };
        let tol = self.opts.tol_infeasible;
        let found = self.polish.run((self.lp, &self.s), (&self.w.xu, &self.w.ax), (tol, budget), &mut stop)?;
        if interrupted {
            return Ok(Some(self.output(Termination::Aborted, String::new(), k)));
        }
        let Some(f) = found else { return Ok(None) };
        let p = &self.polish;
        let mut reason = format!(
            "a Farkas certificate from the certificate polish: the exact Farkas LP on the {} rows where the dual \
             drift is largest (with {} singleton rows of their columns; {} columns, {} pivots) gives a ray that \
             passes the certificate test on the full problem (phi / max|y| = {:.1e}); the polish ran {} time{} \
             ({} LP{}, {:.2} s)",
            f.rows,
            f.singletons,
            f.cols,
            f.pivots,
            f.phi_rel,
            p.runs,
            if p.runs == 1 { "" } else { "s" },
            p.solves,
            if p.solves == 1 { "" } else { "s" },
            p.seconds
        );
        if let Some((out, _)) = &self.held {
            reason += &format!(
                " (the KKT test had passed at iteration {}, but the dual iterates kept growing at a steady rate)",
                out.nit
            );
        }
        Ok(Some(self.output(Termination::Infeasible, reason, k)))
    }

    /// After a check that goes on: a restart at `T z` (with a new primal weight) when the
    /// fixed-point residual calls for one, else the Halpern step that the unfused pass left
    /// out, with the weights `(wa, wt)` of that pass.
    fn restart_or_step(&mut self, k: Kkt, weights: (f64, f64)) {
        let r = fixed_point_residual(&self.s, &self.it, (self.eta, self.weight.omega), &mut self.w, &mut self.tmp_m);
        if self.restarts.due(r, self.nit) {
            self.weight.update(&self.it, &k, self.restarts.first, &mut self.w);
            self.it.restart_at_output();
            self.restarts.restarted(r);
        } else {
            self.it.halpern_step(weights);
        }
    }

    /// The observer's call at a check.
    fn observe(&mut self, obs: &mut dyn Observer<f64>, k: Kkt) -> Option<Output> {
        let nit = self.nit;
        let err = k.rel_primal.max(k.rel_dual).max(k.rel_gap);
        let (w, omega, restarts) = (&self.w, self.weight.omega, self.restarts.count);
        let control = obs.observe(nit, &|| Report {
            nit,
            error: err,
            vectors: vec![("x", w.xu.clone()), ("y", w.yu.clone())],
            scalars: vec![
                ("rel_primal", k.rel_primal),
                ("rel_dual", k.rel_dual),
                ("rel_gap", k.rel_gap),
                ("primal_obj", k.pobj),
                ("dual_obj", k.dobj),
                ("primal_weight", omega),
                ("restarts", restarts as f64),
            ],
        });
        match control {
            Control::Continue => None,
            Control::Stop => {
                // After the KKT test passed, the converged point is the answer.
                if let Some((mut out, _)) = self.held.take() {
                    out.reason += &format!(
                        " at iteration {} (the callback stopped the search for an infeasibility certificate)",
                        out.nit
                    );
                    out.nit = nit;
                    return Some(out);
                }
                Some(self.output(Termination::Stopped, "stopped by the callback".into(), k))
            }
            Control::Abort => Some(self.output(Termination::Aborted, String::new(), k)),
        }
    }

    /// The infeasibility tests at a check; `Some` when a certificate held at two consecutive
    /// checks.
    fn certificates(&mut self, k: Kkt) -> Option<Output> {
        let (lp, s, tol) = (self.lp, &self.s, self.opts.tol_infeasible);
        let (it, w, tmp_m, tmp_n) = (&self.it, &mut self.w, &mut self.tmp_m, &mut self.tmp_n);
        // Two candidate rays: the drift of the PDHG outputs over the last check interval, and
        // since the last anchor (which averages out the Halpern iterates' oscillation); the
        // guarded Farkas test only on the first (on the drift since the anchor it accepts rays
        // of feasible LPs).
        let mut p_inf = false;
        let mut d_inf = false;
        for (ry, rx, tests) in
            [(&self.last_yb, &self.last_xb, (true, true)), (&it.y_anchor, &it.x_anchor, (true, false))]
        {
            diff_into(&mut w.dy, &it.yb, ry);
            s.unscale_y(&mut w.dyu, &w.dy);
            s.at.matvec(&w.dy, tmp_n);
            s.unscale_cols(&mut w.at_dy, tmp_n);
            p_inf |= match primal_infeasible(lp, &w.dyu, &w.at_dy, &w.xu, &w.ax, tol, tests) {
                Farkas::Yes => true,
                Farkas::No => false,
                Farkas::Recheck => {
                    clip_to_cone(lp, s, &w.dyu, &mut w.a_ray, &mut w.ray, tmp_m, tmp_n);
                    primal_infeasible(lp, &w.a_ray, &w.ray, &w.xu, &w.ax, tol, tests) == Farkas::Yes
                }
            };
            diff_into(&mut w.dx, &it.xb, rx);
            s.unscale_x(&mut w.dxu, &w.dx);
            d_inf |= dual_infeasible(lp, &w.dxu, (&lp.a, &self.row_max, self.c_max), tol, &mut w.ray, &mut w.a_ray);
        }
        // The accelerated estimator's candidates (the proxy drift, then the residual), plain
        // test only. After the step the Halpern weights are those of k + 2: wt / wa = k + 2.
        let (wa, wt) = self.restarts.weights();
        let epoch = self.restarts.count + usize::from(!self.restarts.first);
        let sizes = (&self.row_max[..], self.c_max);
        let drift = self.proxy.candidates(it, (wt / wa - 1.0, epoch), (&mut w.dx, &mut w.dy));
        if drift && !(p_inf && d_inf) {
            let (p, d) = test_ray((lp, s), w, (tmp_m, tmp_n), (tol, (true, false)), sizes);
            (p_inf, d_inf) = (p_inf || p, d_inf || d);
        }
        if drift {
            ProxyDrift::residual(it, (&mut w.dx, &mut w.dy));
        }
        if !(p_inf && d_inf) {
            let (p, d) = test_ray((lp, s), w, (tmp_m, tmp_n), (tol, (true, false)), sizes);
            (p_inf, d_inf) = (p_inf || p, d_inf || d);
        }
        // Last candidate: the dual iterate itself, which grows along the ray when the LP is
        // infeasible (y/‖y‖ → ray at rate 1/k). A feasible LP's optimal y can look like a ray
        // by the plain test, never by the guarded one, since Σ v_j |x_j| ≥ φ at any feasible x.
        if !p_inf {
            p_inf = primal_infeasible(lp, &w.yu, &w.at_y, &w.xu, &w.ax, tol, (false, true)) == Farkas::Yes;
        }
        self.pinf_hits = if p_inf { self.pinf_hits + 1 } else { 0 };
        // A recession ray with cᵀd < 0 proves unboundedness only for a feasible problem:
        // require the primal residual to be small too (else primal infeasibility is the
        // answer, found by the test above).
        // Both scale-invariantly: the residual against the sizes of `b` and `A x` (`1 + ‖b‖`
        // alone lets a tiny-data LP look feasible), and not at a point that passes the KKT
        // test (an optimal point, however it drifts, makes the LP bounded).
        let residual = k.rel_primal * (1.0 + self.norms.b);
        let near_feasible = residual <= 1e-3 * (self.norms.b + scaled_norm(w.ax.iter().copied()));
        let optimal = k.converged(self.opts.tol);
        self.dinf_hits = if d_inf && near_feasible && !optimal { self.dinf_hits + 1 } else { 0 };
        if self.pinf_hits >= 2 {
            let mut reason = "a Farkas certificate (dual ray) held at two consecutive checks".to_string();
            if let Some((out, _)) = &self.held {
                reason += &format!(
                    " (the KKT test had passed at iteration {}, but the dual iterates kept growing at a \
                     steady rate, so the iterations went on to look for one: the LP is infeasible by \
                     less than the tolerance)",
                    out.nit
                );
            }
            return Some(self.output(Termination::Infeasible, reason, k));
        }
        // (A converged run looks only for a Farkas ray: it has an approximate optimum.)
        if self.dinf_hits >= 2 && self.held.is_none() {
            let reason = "an unbounded primal ray held at two consecutive checks".to_string();
            return Some(self.output(Termination::Unbounded, reason, k));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_uniform as uniform;
    use crate::lp::problem::Csr;
    use crate::solver::NoObserver;

    fn dense(rows: &[&[f64]]) -> Csr {
        Csr::from_dense(rows)
    }

    #[test]
    fn small_lp_optimum_and_duals() {
        // min -x - y  s.t. x + 2y <= 4, 3x + y <= 6, x, y >= 0: optimum (1.6, 1.2), value -2.8.
        let lp = Lp {
            a: dense(&[&[1.0, 2.0], &[3.0, 1.0]]),
            c: vec![-1.0, -1.0],
            lc: vec![f64::NEG_INFINITY; 2],
            uc: vec![4.0, 6.0],
            lv: vec![0.0; 2],
            uv: vec![f64::INFINITY; 2],
        };
        let o = Options { tol: 1e-9, ..Options::default() };
        let out = solve(&lp, None, None, &o, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Converged, "{}", out.reason);
        assert!((out.x[0] - 1.6).abs() < 1e-6 && (out.x[1] - 1.2).abs() < 1e-6, "{:?}", out.x);
        assert!((out.primal_obj + 2.8).abs() < 1e-7);
        // duals of <= rows are <= 0: (-0.4, -0.2)
        assert!((out.y[0] + 0.4).abs() < 1e-6 && (out.y[1] + 0.2).abs() < 1e-6, "{:?}", out.y);
    }

    #[test]
    fn results_do_not_depend_on_the_number_of_threads() {
        // Large enough for the parallel passes (over 150 000 entries plus rows) and the chunked
        // convergence checks.
        let (m, n) = (8000usize, 40_000usize);
        let mut rnd = uniform(99);
        let (mut indptr, mut indices, mut data) = (vec![0], vec![], vec![]);
        for i in 0..m {
            let mut cols: Vec<usize> = (0..20).map(|_| (rnd() * n as f64) as usize % n).collect();
            cols.push(i);
            cols.sort_unstable();
            cols.dedup();
            for j in cols {
                indices.push(j);
                data.push(rnd() + 0.1);
            }
            indptr.push(data.len());
        }
        let a = Csr::new(m, n, indptr, indices, data).unwrap();
        let c: Vec<f64> = (0..n).map(|_| rnd() - 0.3).collect();
        let lp = Lp {
            a,
            c,
            lc: vec![f64::NEG_INFINITY; m],
            uc: vec![1.0; m],
            lv: vec![0.0; n],
            uv: (0..n).map(|j| if j % 3 == 0 { f64::INFINITY } else { 2.0 }).collect(),
        };
        let opts = Options { maxiter: 640, ..Options::default() };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| solve(&lp, None, None, &opts, &mut NoObserver).unwrap())
        };
        let (one, two) = (run(1), run(3));
        assert_eq!(one.nit, two.nit);
        assert_eq!(one.restarts, two.restarts);
        assert!(one.x == two.x && one.y == two.y, "iterates differ between 1 and 3 threads");
        assert_eq!(one.rel_gap.to_bits(), two.rel_gap.to_bits());
    }

    #[test]
    fn infeasible_and_unbounded_are_detected() {
        // x + y <= 1 and x + y >= 3 with x, y >= 0: infeasible.
        let lp = Lp {
            a: dense(&[&[1.0, 1.0], &[1.0, 1.0]]),
            c: vec![1.0, 1.0],
            lc: vec![f64::NEG_INFINITY, 3.0],
            uc: vec![1.0, f64::INFINITY],
            lv: vec![0.0; 2],
            uv: vec![f64::INFINITY; 2],
        };
        // Bound propagation proves it before iterating (row 1 can reach at most 1 once row 0
        // gives x, y <= 1); without it, a Farkas ray does.
        let out = solve(&lp, None, None, &Options::default(), &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Infeasible, "{}", out.reason);
        assert!(out.nit == 0 && out.reason.contains("bound propagation"), "{}", out.reason);
        let no_propagation = Options { propagation_rounds: 0, ..Options::default() };
        let out = solve(&lp, None, None, &no_propagation, &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Infeasible, "{}", out.reason);
        assert!(out.nit > 0 && out.reason.contains("Farkas"), "{}", out.reason);
        // min -x s.t. x - y <= 1, x, y >= 0: unbounded along (1, 1).
        let lp = Lp {
            a: dense(&[&[1.0, -1.0]]),
            c: vec![-1.0, 0.0],
            lc: vec![f64::NEG_INFINITY],
            uc: vec![1.0],
            lv: vec![0.0; 2],
            uv: vec![f64::INFINITY; 2],
        };
        let out = solve(&lp, None, None, &Options::default(), &mut NoObserver).unwrap();
        assert_eq!(out.termination, Termination::Unbounded, "{}", out.reason);
    }

    #[test]
    fn buffers_that_cannot_exist_are_a_memory_error() {
        for (m, n, nnz) in [(1 << 40, 1 << 40, 1), (1, 1, usize::MAX / 8), (usize::MAX, 1, 1)] {
            assert!(matches!(reserve(m, n, nnz), Err(crate::error::OptError::Memory(_))), "{m} {n} {nnz}");
        }
        assert!(reserve(1000, 1000, 10_000).is_ok());
    }

    #[test]
    fn a_warm_start_of_the_wrong_length_is_an_error() {
        let lp = Lp {
            a: dense(&[&[1.0, 1.0]]),
            c: vec![1.0, 1.0],
            lc: vec![1.0],
            uc: vec![f64::INFINITY],
            lv: vec![0.0; 2],
            uv: vec![f64::INFINITY; 2],
        };
        for (x0, y0) in [(Some(&[1.0][..]), None), (None, Some(&[1.0, 2.0][..]))] {
            let err = solve(&lp, x0, y0, &Options::default(), &mut NoObserver).unwrap_err();
            assert!(err.to_string().contains("warm start"), "{err}");
        }
    }
}
