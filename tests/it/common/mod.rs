//! Helpers shared by the integration tests: a seeded generator and naive
//! f64 references the engine is checked against.
#![allow(dead_code)]

pub mod cli;
pub mod python;
pub mod reference;

/// The library's seeded generator (splitmix64): `signed_vec(n)` gives values
/// in [-1, 1).
pub use joulebench::engine::rng::SplitMix64 as Rng;
