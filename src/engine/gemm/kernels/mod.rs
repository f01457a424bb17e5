//! Register-blocked micro-kernels, one file per instruction set, chosen at run
//! time by CPU feature detection (or forced with `JOULEBENCH_KERNEL`).
//!
//! A micro-kernel multiplies an `mr x kc` packed A micro-panel by a `kc x nr`
//! packed B micro-panel, keeps the `mr x nr` tile in registers, and finishes it
//! with the fused epilogue in a single store.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(all(test, target_arch = "aarch64"))]
mod mca_probe;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "aarch64")]
mod neon_inorder;
mod scalar;
mod store;

use super::arm_cores::{self, ArmCore};
use super::epilogue::TileCtx;
use crate::engine::EngineError;
use std::fmt;
use std::str::FromStr;

/// `kernel(kc, a, lda, b, c, rs_c, cs_c, m, n, ctx)`: C tile (valid part
/// `m x n`, `m <= mr`, `n <= nr`) finished from an A micro-panel and a packed B
/// micro-panel `b` (kc*nr). Kernels with `a_rows` read A as `mr` rows of `kc`
/// values at stride `lda` (a packed panel or A itself); the others read a
/// column-packed panel (kc steps of `mr` values) and ignore `lda`.
pub(crate) type MicroKernel =
    unsafe fn(usize, *const f32, usize, *const f32, *mut f32, usize, usize, usize, usize, &TileCtx);

/// `row(kc, a, lda, b, panels, c, rs_c, ctx)`: `panels` full `mr x nr` tiles
/// side by side, from one A micro-panel and `panels` packed B micro-panels
/// stored one after another; C has unit column stride and `ctx` is the first
/// tile's. One call per row of tiles instead of one per tile.
pub(crate) type MicroRow =
    unsafe fn(usize, *const f32, usize, *const f32, usize, *mut f32, usize, &TileCtx);

/// Runs `iters` iterations of independent FMA chains; returns a value that
/// depends on every chain (so the loop cannot be optimised away).
pub(crate) type FmaChains = unsafe fn(u64) -> f32;

/// Instruction sets joulebench has micro-kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    Scalar,
    Avx2,
    /// AVX-512F (512-bit vectors, 32 registers).
    Avx512,
    Neon,
    /// NEON scheduled for in-order cores (Cortex-A53, A55).
    NeonInOrder,
}

impl KernelKind {
    pub const ALL: [KernelKind; 5] = [
        KernelKind::Scalar,
        KernelKind::Avx2,
        KernelKind::Avx512,
        KernelKind::Neon,
        KernelKind::NeonInOrder,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Scalar => "scalar",
            KernelKind::Avx2 => "avx2",
            KernelKind::Avx512 => "avx512",
            KernelKind::Neon => "neon",
            KernelKind::NeonInOrder => "neon-inorder",
        }
    }

    /// An aarch64 NEON kernel (whatever its schedule).
    pub fn is_neon(self) -> bool {
        matches!(self, KernelKind::Neon | KernelKind::NeonInOrder)
    }
}

impl fmt::Display for KernelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KernelKind {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Ok(KernelKind::Scalar),
            "avx2" => Ok(KernelKind::Avx2),
            "avx512" => Ok(KernelKind::Avx512),
            "neon" => Ok(KernelKind::Neon),
            "neon-inorder" => Ok(KernelKind::NeonInOrder),
            other => Err(EngineError::param(
                "kernel",
                format!("unknown kernel `{other}`; use scalar, avx2, avx512, neon or neon-inorder"),
            )),
        }
    }
}

/// A micro-kernel and what the GEMM driver must know about it.
#[derive(Clone, Copy)]
pub struct Kernel {
    pub kind: KernelKind,
    /// Rows of the register tile.
    pub mr: usize,
    /// Columns of the register tile.
    pub nr: usize,
    /// f32 lanes per vector register (1 for scalar).
    pub lanes: usize,
    /// A micro-panels are row-major (`mr` rows of `kc` at stride `lda`), so A
    /// can be read in place when it is row-major; else column-packed.
    pub a_rows: bool,
    /// The macro-kernel walks all of B's micro-panels for one A micro-panel
    /// (ir outer, jr inner) instead of BLIS's usual order: the A panel stays in
    /// L1, B streams in order, and each A panel writes whole rows of C.
    pub ir_outer: bool,
    pub(crate) micro: MicroKernel,
    /// A row of full tiles in one call, where the kernel has it (ir-outer
    /// kernels, whose macro-kernel walks rows of tiles).
    pub(crate) micro_row: Option<MicroRow>,
    pub(crate) fma_chains: FmaChains,
    /// Floating-point operations one iteration of `fma_chains` performs.
    pub(crate) chain_flops_per_iter: usize,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kernel({} {}x{})", self.kind, self.mr, self.nr)
    }
}

/// Environment variable that forces one kernel.
pub const KERNEL_ENV: &str = "JOULEBENCH_KERNEL";

impl Kernel {
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Whether this CPU can run `kind`.
    pub fn available(kind: KernelKind) -> bool {
        Self::unavailable_reason(kind).is_none()
    }

    fn unavailable_reason(kind: KernelKind) -> Option<String> {
        match kind {
            KernelKind::Scalar => None,
            KernelKind::Avx2 => {
                #[cfg(target_arch = "x86_64")]
                {
                    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                        None
                    } else {
                        Some("the CPU lacks AVX2 or FMA".into())
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    Some("AVX2 exists only on x86-64".into())
                }
            }
            KernelKind::Avx512 => {
                #[cfg(target_arch = "x86_64")]
                {
                    if crate::engine::simd::Avx512::detect().is_some() {
                        None
                    } else {
                        Some("the CPU lacks AVX-512F".into())
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    Some("AVX-512 exists only on x86-64".into())
                }
            }
            KernelKind::Neon | KernelKind::NeonInOrder => {
                #[cfg(target_arch = "aarch64")]
                {
                    if std::arch::is_aarch64_feature_detected!("neon") {
                        None
                    } else {
                        Some("the CPU lacks Advanced SIMD".into())
                    }
                }
                #[cfg(not(target_arch = "aarch64"))]
                {
                    Some("NEON kernels exist only on aarch64".into())
                }
            }
        }
    }

    /// The kernel for `kind`, or an error if this CPU cannot run it.
    pub fn get(kind: KernelKind) -> Result<Kernel, EngineError> {
        if let Some(reason) = Self::unavailable_reason(kind) {
            return Err(EngineError::KernelUnavailable {
                requested: kind.name().into(),
                reason,
            });
        }
        Ok(match kind {
            KernelKind::Scalar => scalar::KERNEL,
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => avx2::KERNEL,
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => avx512::KERNEL,
            #[cfg(target_arch = "aarch64")]
            KernelKind::Neon => neon::KERNEL,
            #[cfg(target_arch = "aarch64")]
            KernelKind::NeonInOrder => neon_inorder::KERNEL,
            #[allow(unreachable_patterns)]
            _ => unreachable!("availability was checked above"),
        })
    }

    /// The NEON schedule for the cores /proc/cpuinfo lists: the in-order one
    /// when every core issues in order, else the default.
    pub fn neon_for(cores: &[Option<ArmCore>]) -> KernelKind {
        if arm_cores::all_in_order(cores) {
            KernelKind::NeonInOrder
        } else {
            KernelKind::Neon
        }
    }

    /// The fastest kernel this CPU runs (on aarch64, the NEON schedule its
    /// cores want, by their part numbers in /proc/cpuinfo).
    pub fn detect() -> Kernel {
        let neon = Self::neon_for(&arm_cores::cores_at(std::path::Path::new("/")));
        [neon, KernelKind::Avx512, KernelKind::Avx2]
            .into_iter()
            .find_map(|k| Self::get(k).ok())
            .unwrap_or(scalar::KERNEL)
    }

    /// `JOULEBENCH_KERNEL` if set (an error if unknown or unavailable), else [`Kernel::detect`].
    pub fn from_env() -> Result<Kernel, EngineError> {
        match std::env::var(KERNEL_ENV) {
            Ok(v) if !v.trim().is_empty() => Self::get(v.parse()?),
            _ => Ok(Self::detect()),
        }
    }

    /// Every kernel this CPU can run (for tests and tuning).
    pub fn all_available() -> Vec<Kernel> {
        KernelKind::ALL
            .into_iter()
            .filter_map(|k| Self::get(k).ok())
            .collect()
    }
}
