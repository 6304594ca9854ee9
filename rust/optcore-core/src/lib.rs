//! optcore's numerical core.
//!
//! Pure Rust, no Python: slices in, owned vectors out, an error enum ([`OptError`]) and an
//! argmin-style split between a solver's state, an [`solver::Observer`] called every
//! `check_every` iterations, and a [`solver::Termination`] reason that ends the run.
//! Everything numerical is generic over [`Real`] (`f32` and `f64`).
//!
//! Families live in their own modules: [`ot`] (entropic optimal transport), [`fixed_point`]
//! (fixed points of nonexpansive maps by Halpern iterations), [`monotone`] (finite-sum monotone
//! inclusions by variance-reduced Halpern), [`lp`] (LPs by restarted Halpern PDHG), [`bilevel`]
//! (bilevel optimisation: F2SA, penalty, AID, ITD, SOBA, BO-REP), [`zo`] (zeroth-order
//! optimisation); [`linalg`], [`operators`], [`parallel`] and [`rng`] are shared.

pub mod alloc;
pub mod bilevel;
pub mod error;
pub mod fixed_point;
pub mod linalg;
pub mod lp;
pub mod monotone;
pub mod operators;
pub mod ot;
pub mod parallel;
pub mod real;
pub mod rng;
pub mod solver;
pub mod zo;

pub use error::OptError;
pub use real::Real;
pub use solver::{Cadence, Control, Due, NoObserver, Observer, Report, Termination};
