//! Zeroth-order (derivative-free) optimisation: gradient estimators from function values,
//! the methods built on them, consensus-based optimisation and ZO-RankSGD.
//!
//! [`rng`] is the counter-based generator (directions are regenerated from
//! `(seed, iteration, index)`, never stored); [`estimate`] assembles the Gaussian, sphere and
//! coordinate-wise estimators and ZO-RankSGD's ranking estimator; [`optimizer`] holds the
//! ask/tell state machine of every method and the loop [`solve`]; [`functions`] has the
//! [`Objective`] trait and the native batched test functions.

pub mod estimate;
pub mod functions;
pub mod optimizer;
pub mod rng;

pub use estimate::{Directions, Estimator, Scheme};
pub use functions::{Func, Objective, TestFunction};
pub use optimizer::{solve, Cbo, Limits, Method, Noise, Options, Output, Step, Update, Zo};
