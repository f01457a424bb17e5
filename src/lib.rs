//! joulebench: how fast, and at what energy cost, a CPU runs CNN inference.
//!
//! [`engine`] is the inference engine being measured (usable on its own);
//! [`harness`] drives it and records what it measures; [`power`] reads
//! power sensors and hardware counters.

pub mod engine;
pub mod guard;
pub mod harness;
pub mod power;
