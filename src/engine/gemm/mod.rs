//! GEMM: `C = epilogue(alpha*A*B + beta*C)` for strided f32 matrices, BLIS-style
//! (five loops, packed micro-panels, register-blocked micro-kernels per ISA),
//! with the next layer fused into the micro-kernel's store.

pub mod arm_cores;
#[cfg(test)]
mod board_fixtures;
mod cache_config;
mod driver;
mod epilogue;
pub mod kernels;
mod matrix;
mod pack;
mod peak;
pub mod threads;

pub use arm_cores::ArmCore;
pub use cache_config::{CacheConfig, CacheDetection, CacheInfo, CacheLevel, CacheSource};
pub use driver::{BOperand, Gemm, ParallelLoop};
pub use epilogue::{Activation, Axis, Epilogue};
pub use kernels::{Kernel, KernelKind, KERNEL_ENV};
pub use matrix::{MatMut, MatRef};
pub(crate) use pack::AlignedBuf;
pub use pack::{ASource, PackedB};
pub use peak::{measure_peak, ExpectedPeak, Peak};

/// FLOPs of an m x n x k GEMM (one multiply and one add per term).
pub fn gemm_flops(m: usize, n: usize, k: usize) -> f64 {
    2.0 * m as f64 * n as f64 * k as f64
}
