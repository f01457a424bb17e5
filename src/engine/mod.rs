//! The inference engine: GEMM with fused epilogues and everything built on it.
//! It knows nothing of the harness.

pub mod error;
pub mod gemm;

pub use error::EngineError;
