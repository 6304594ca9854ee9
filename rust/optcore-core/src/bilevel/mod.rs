//! Bilevel optimisation: `min_x F(x) = f(x, y*(x))`, `y*(x) = argmin_y g(x, y)`.
//!
//! [`oracle`] defines the [`Oracle`] trait every method is generic over (first- and
//! second-order oracles, minibatches, a finite-difference fallback for the second-order
//! products) and the counting wrapper; [`problems`] the native problems (quadratic, ridge
//! hyperparameters, logistic hyper-cleaning on dense or CSR data); [`methods`] F2SA, the
//! penalty method, AID (CG / Neumann), ITD, SOBA and BO-REP; [`hypergrad`] the hypergradient
//! at a point, exactly or iteratively.

pub mod hypergrad;
pub mod methods;
pub mod oracle;
pub mod problems;

#[cfg(test)]
mod tests;

pub use hypergrad::{hypergradient, HgMethod};
pub use methods::{minimize, LinSolve, Method, Options, Output};
pub use oracle::{fd_second, Batch, Counts, Oracle, Phase, PHASE_NAMES};
pub use problems::{Logistic, Quadratic, Ridge};
