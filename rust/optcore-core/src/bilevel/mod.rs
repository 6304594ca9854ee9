//! Bilevel optimisation: `min_x F(x) = f(x, y*(x))`, `y*(x) = argmin_y g(x, y)`, laid out as
//! `optcore.bilevel` is:
//!
//! | Python                         | here                                                          |
//! |--------------------------------|---------------------------------------------------------------|
//! | `Problem` (the oracles)        | [`oracle`]: the [`Oracle`] trait, the analytic / finite-difference policy of the second-order products ([`second_policy`], [`fd_second`]), the counting wrapper |
//! | `problems` (native problems)   | [`problems`]: quadratic, ridge hyperparameters, logistic hyper-cleaning (dense or CSR) |
//! | `minimize`                     | [`minimize`](mod@minimize): the entry point; [`methods`]: the options and the run's context the methods share |
//! | `method="aid" / "itd" / "soba" / "borep"` | [`implicit`]: the hypergradient methods            |
//! | `method="exact"`, `outer="lbfgs"` | [`outer`]: the L-BFGS outer loop (bounds, line search on `F`, inexactness rule) and `exact` with gradient steps |
//! | `method="f2sa" / "penalty"`    | [`first_order`]: the first-order penalty methods               |
//! | `hypergradient`                | [`hypergrad`]: the hypergradient at a point, exactly or iteratively |

pub mod first_order;
pub mod hypergrad;
pub mod implicit;
pub mod methods;
pub mod minimize;
pub mod oracle;
pub mod outer;
pub mod problems;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_direct;

pub use hypergrad::{hypergradient, HgMethod};
pub use methods::{LinSolve, Method, Options, Outer, Output};
pub use minimize::minimize;
pub use oracle::{fd_second, second_policy, Batch, Counts, Oracle, Phase, Probe, PHASE_NAMES};
pub use problems::{Logistic, Quadratic, Ridge};

// Constrained lower levels (LV-HBA): `method="lvhba"`, `Problem(h=..., jac_h=...)`, and the
// native problems `ConstrainedToy`, `SVMHyperparameter` (the SVM dual) and
// `SVMPrimalHyperparameter` (the primal SVM of the paper's experiment).
pub mod constrained;
pub mod lvhba;
pub mod svm_primal;

// The direct (dense Cholesky) lower solve of the L-BFGS outer loop: `options["lower_solve"]`.
pub mod direct;
pub use constrained::{LlcToy, SvmDual};
pub use direct::LowerSolve;
pub use lvhba::{minimize_lvhba, Constrained, LvCounts, LvOptions, LvOutput, Measures, Steps};
pub use svm_primal::SvmPrimal;
