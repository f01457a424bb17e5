//! The inference engine: GEMM with fused epilogues and everything built on it.
//! It knows nothing of the harness.

pub mod conv;
pub mod error;
pub mod gemm;
pub mod simd;

pub use error::EngineError;
pub mod graph;
pub mod models;
pub mod onnx;
pub mod ops;
pub mod plan;
pub mod rng;
pub mod session;
