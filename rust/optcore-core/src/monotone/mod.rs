//! Finite-sum monotone inclusions `0 ∈ F(z) + N_C(z)`, `F = (1/N) Σ_i F_i`, with `C` given by
//! its projection (the resolvent of the normal cone), and the methods of Cai, Alacaoglu &
//! Diakonikolas (ICLR 2024) with their deterministic baselines.
//!
//! Problems implement [`FiniteSum`]: [`GameSum`] (bilinear matrix games over simplices,
//! `F(x, y) = (Aᵀy, −Ax)`, split into `N = max(m, n)` components by rows and columns),
//! [`LinearSum`] (`F(z) = M z + q` split by rows: quadratic min-max problems, and, when `M`
//! is symmetric positive semidefinite, cocoercive gradients), [`SampleSaddle`] (sums over the
//! samples of sparse data, drawn by importance: the regime where variance reduction saves
//! epochs), and any user implementation (the Python binding's callables).
//!
//! Methods ([`Method`]):
//! - `Eg`: extragradient, `z½ = P(z − s F z)`, `z⁺ = P(z − s F z½)`.
//! - `Eag`: extra-anchored gradient (Yoon & Ryu 2021): the same from `z + (z₀ − z)/(k+2)`.
//! - `Halpern`: on a problem with a primal–dual split ([`PrimalDual`]: games, quadratic
//!   min-max), restarted reflected Halpern on the PDHG operator ([`pdhg`]: the exact resolvent in
//!   the PDHG metric, linear convergence on these sharp problems; on games with support
//!   polishing, [`polish`]); otherwise inexact Halpern on
//!   the resolvent, `x_{k+1} = x₀/(k+2) + (1 − 1/(k+2)) ũ_k`, `ũ_k ≈ J_{c(F+N_C)}(x_k)` by
//!   deterministic forward-reflected-backward steps on the full operator (the deterministic
//!   counterpart of Algorithm 2).
//! - `VrHalpern`: Algorithm 2 (monotone Lipschitz sums): the same outer loop with VR-FoRB
//!   (loopless SVRG snapshot refreshed with probability `p = b/N`, momentum `α = 1 − p`,
//!   forward-reflected steps on minibatches of `b` components) for `M_k = ⌊0.05 N ln(k+2)⌋` inner steps; or,
//!   for cocoercive sums, Algorithm 1: one-step Halpern `x_{k+1} = P(λ_k x₀ + (1−λ_k) x_k −
//!   η F̃_k)`, `λ_k = 2/(k+4)`, with the PAGE estimator (full `F` with probability `p_k`, else
//!   the previous estimate plus a minibatch of `⌊√N⌋` differences; the paper's schedule).
//!
//! Every method stops on the natural (operator-norm) residual `‖z − P(z − F(z)/L)‖·L` of its
//! current point, checked every `check_every` iterations with one full evaluation that is
//! reported separately (`n_residual`) and not counted in `nfev` — except Halpern–PDHG, whose
//! iterations already produce `F` at its point (see [`pdhg`]): its checks cost no evaluation,
//! and the residual it ends with (converged, limit, or stopped) is re-measured with one full
//! evaluation, so the reported residual is always the problem's own. `nfev` counts component
//! evaluations (a full evaluation is `N`), so `nfev / N` is in epochs.

//!
//! Files: [`problems`] holds the [`FiniteSum`] trait, the native sums ([`GameSum`],
//! [`LinearSum`]) and the Condat simplex projection they use; [`dense`] their matrix kernels
//! (AVX-dispatched, bit-identical to the baseline); [`polish`] the support polishing of games;
//! [`sampled`] the sparse sample sums and the importance sampler; [`mod@solve`] holds the
//! methods, their options and output, and the residual checks and restarts of the outer loop.

pub mod dense;
pub mod pdhg;
pub mod polish;
pub mod problems;
pub mod sampled;
pub mod solve;

pub use pdhg::PrimalDual;
pub use problems::{project_simplex, FiniteSum, GameSum, LinearSum};
pub use sampled::{csr_from_parts, SaddleData, SampleSaddle, Sampler};
pub use solve::{natural_residual, solve, Method, Options, Output};
