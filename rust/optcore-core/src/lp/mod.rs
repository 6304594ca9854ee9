//! Linear programs by restarted reflected Halpern PDHG (r²HPDHG; Lu & Yang 2024, cuPDLPx).
//!
//! Problem: `min cᵀx  s.t.  l_c ≤ A x ≤ u_c,  l_v ≤ x ≤ u_v` (infinite bounds allowed), with
//! duals `y` (`y_i > 0` where the lower row bound is active, `< 0` where the upper is) and
//! reduced costs `λ = c − Aᵀy`.
//!
//! 0. Before iterating, a row with an upper bound of −∞ (lower +∞) is infeasible, and a few
//!    rounds of bound propagation ([`presolve`]) look for a row whose activity range misses
//!    its bounds (infeasibility proven without iterating); a warm start is clipped to the
//!    variable bounds they imply.
//! 1. Scaling ([`scaling`]): 10 Ruiz passes (∞-norms), one Pock–Chambolle pass (α = 1), then
//!    bounds divided by `1 + ‖b‖₂` (finite row bounds, each capped at 100× their median, so
//!    that an inactive 1e12 does not shrink the active ones) and `c` by `1 + ‖c‖₂`; everything
//!    is reported unscaled, `x` clipped to its bounds.
//! 2. Steps `τ = η/ω`, `σ = ηω`, `η = 0.998 / ‖Â‖₂` (Lanczos, with a margin:
//!    [`crate::linalg::lanczos`]), primal weight `ω`.
//! 3. PDHG operator `T(x, y)` ([`step`]): `x̄ = Π_X(x − τ(c − Aᵀy))`, `x̃ = 2x̄ − x`,
//!    `ȳ = y − σ(A x̃ − Π_[l_c,u_c](A x̃ − y/σ))`; reflected Halpern step
//!    `z⁺ = (k+1)/(k+2) (2 T z − z) + z₀/(k+2)`, `k` counted since the last restart.
//! 4. Every `check_every` iterations, on the PDHG output `(x̄, ȳ)` of the **unscaled** problem
//!    ([`kkt`]): relative primal residual, dual residual and gap (reduced costs count on a
//!    finite bound near `x`, PDLP's rule); converged when all three
//!    are `≤ tol`. Restarts and the primal weight ([`restart`]): cuPDLPx's rule on the
//!    fixed-point residual, then PID control of `ω` and a residual-balancing factor.
//! 5. Infeasibility ([`certificates`]): the iterate difference over the last check interval,
//!    the one since the last restart, the dual iterate itself, and the rays of Park & Ryu's
//!    accelerated displacement estimator (the fixed-point residual's Picard proxy, which does
//!    not slow down with Halpern's anchor) are tested as Farkas rays,
//!    scale-invariantly, and must pass at two consecutive checks (an unbounded ray also needs
//!    a nearly feasible iterate that does not pass the KKT test). When the KKT test passes
//!    while ‖y‖ is still growing steadily (the signature of an LP infeasible by less than the
//!    tolerance), the iterations go on to twice the count (up to four times while ‖y‖ keeps
//!    growing steadily) looking for such a certificate before the converged point is returned.
//! 6. The certificate polish ([`farkas`]): at checks 1, 2, 4, 8, … whose dual drift points the
//!    way the one before did, the Farkas LP restricted to the rows where the drift is largest is
//!    solved exactly (a dense simplex, [`simplex`]), and its ray is tested on the full problem
//!    by the same certificate test; it finds rays that the iterates line up with long before
//!    they certify (Netlib's gosh).
//!
//! Files: [`problem`] (the LP, options, output, input checks), [`scaling`], [`step`],
//! [`restart`], [`kkt`], [`certificates`], [`farkas`] with [`simplex`], [`presolve`], and
//! [`mod@solve`], the driver that runs them in that order.

pub mod certificates;
pub mod farkas;
pub mod kkt;
pub mod presolve;
pub mod problem;
pub mod restart;
pub mod scaling;
pub mod simplex;
pub mod solve;
pub mod step;

pub use problem::{Csr, Lp, Options, Output};
pub use solve::solve;
