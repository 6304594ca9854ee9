//! Zeroth-order (derivative-free) optimisation: gradient estimators from function values,
//! the methods built on them, consensus-based optimisation and ZO-RankSGD, laid out as
//! `optcore.zo` is:
//!
//! | Python                               | here                                                   |
//! |--------------------------------------|--------------------------------------------------------|
//! | `functions` (native test functions)  | [`functions`]: the [`Objective`] trait and the batched test functions |
//! | `gradient` (one estimate)            | [`estimate`]: the Gaussian, sphere and coordinate-wise estimators, ZO-RankSGD's ranking estimator |
//! | `Optimizer` (ask/tell)               | [`optimizer`]: the ask/tell state machine [`Zo`] of every method and its [`Options`] |
//! | `minimize`                           | [`minimize`](mod@minimize): the loop [`solve`] that drives a [`Zo`] with an [`Objective`] |
//! | `rng=`                               | [`rng`]: the counter-based generator (directions are regenerated from `(seed, iteration, index)`, never stored) |
//!
//! `rank_minimize` is `Optimizer("rank")` driven from Python: the ranking oracle is a Python
//! callable that only the Python layer calls.

mod boxes;
pub mod estimate;
pub mod functions;
pub mod minimize;
pub mod optimizer;
pub mod rng;

pub use estimate::{Directions, Estimator, Scheme};
pub use functions::{Evaluation, Func, Objective, TestFunction};
pub use minimize::{solve, Limits, Output};
pub use optimizer::{Cbo, Method, Noise, Options, Step, Update, Zo};
