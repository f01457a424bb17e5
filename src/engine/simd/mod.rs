//! One vector abstraction for the hand-vectorized loops around the GEMM
//! micro-kernels (epilogues, activations, Winograd transforms, depthwise
//! convolution): the [`Simd`] trait over each instruction set's vector type —
//! AVX2 `__m256`, AVX-512 `__m512`, NEON `float32x4_t`, and a one-lane scalar
//! — so each of those loops is written once. The micro-kernels' inner loops
//! stay in their own files per instruction set.
//!
//! How it stays fast: every method is `#[inline(always)]`, and generic code is
//! entered through [`dispatch`], which calls it from a function compiled with
//! the instruction set's target features. Inlined there (generic code over
//! `Simd` must be `#[inline(always)]` all the way down), each method becomes
//! one or two instructions.
//!
//! Safety: a value of an instruction set's token type ([`Avx2`], ...) exists
//! only once run-time detection has found the CPU runs it, so the methods may
//! execute its instructions; pointer arguments are the callers' to check.

mod act;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod math;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;

pub use act::activation;
pub(crate) use act::{with_act, ActMap, VecFn};
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) use neon::Neon;
pub(crate) use scalar::Scalar;

use crate::engine::gemm::{Kernel, KernelKind};

/// Operations on a vector of `LANES` f32 values. `self` is the instruction
/// set's zero-sized token, proof that the CPU runs it.
pub(crate) trait Simd: Copy {
    type V: Copy;
    const LANES: usize;

    fn splat(self, x: f32) -> Self::V;
    /// # Safety
    /// `p` must be valid for reading `LANES` floats (no alignment needed).
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// # Safety
    /// `p` must be valid for writing `LANES` floats (no alignment needed).
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// The first `n` lanes from `p` (`n <= LANES`), the others 0; reads
    /// only those `n` floats.
    ///
    /// # Safety
    /// `p` must be valid for reading `n` floats.
    unsafe fn load_part(self, p: *const f32, n: usize) -> Self::V;
    /// Writes the first `n` lanes of `v` (`n <= LANES`) and nothing else.
    ///
    /// # Safety
    /// `p` must be valid for writing `n` floats.
    unsafe fn store_part(self, p: *mut f32, v: Self::V, n: usize);

    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c` (fused where the instruction set has FMA).
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `c - a * b` (fused where the instruction set has FMA).
    fn fnma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise maximum; which operand a NaN yields differs between
    /// instruction sets, so code that must keep NaN does not rely on it.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise minimum; NaN as for [`Simd::max`].
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    fn abs(self, a: Self::V) -> Self::V;
    /// `|mag|` with the sign bit of `sign`.
    fn copysign(self, mag: Self::V, sign: Self::V) -> Self::V;
    /// Rounds to the nearest integer (ties to even), for `|a| < 2^22`.
    fn round(self, a: Self::V) -> Self::V;
    /// `2^n` for lanes holding whole numbers in `[-126, 127]`.
    fn pow2i(self, n: Self::V) -> Self::V;
    /// Lane-wise `if a < b { x } else { y }` (false where either is NaN).
    fn select_lt(self, a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;

    /// `n` lanes from `p` (`n <= LANES`): a whole vector when `n == LANES`
    /// (which callers make a constant where they can, so the test folds).
    ///
    /// # Safety
    /// `p` must be valid for reading `n` floats.
    #[inline(always)]
    unsafe fn load_n(self, p: *const f32, n: usize) -> Self::V {
        // SAFETY: the caller's guarantee.
        unsafe {
            if n == Self::LANES {
                self.load(p)
            } else {
                self.load_part(p, n)
            }
        }
    }

    /// Writes the first `n` lanes of `v` (`n <= LANES`), as [`Simd::load_n`].
    ///
    /// # Safety
    /// `p` must be valid for writing `n` floats.
    #[inline(always)]
    unsafe fn store_n(self, p: *mut f32, v: Self::V, n: usize) {
        // SAFETY: the caller's guarantee.
        unsafe {
            if n == Self::LANES {
                self.store(p, v)
            } else {
                self.store_part(p, v, n)
            }
        }
    }

    /// `f` on each lane: for what has no vector form.
    #[inline(always)]
    fn map_lanes(self, v: Self::V, f: impl Fn(f32) -> f32) -> Self::V {
        let mut buf = [0.0f32; MAX_LANES];
        // SAFETY: `buf` holds MAX_LANES >= LANES floats.
        unsafe { self.store(buf.as_mut_ptr(), v) };
        for x in &mut buf[..Self::LANES] {
            *x = f(*x);
        }
        // SAFETY: as above.
        unsafe { self.load(buf.as_ptr()) }
    }
}

/// The widest vector, in lanes.
pub(crate) const MAX_LANES: usize = 16;

/// Code generic over [`Simd`], run by [`dispatch`] with the instruction set
/// chosen at run time.
pub(crate) trait SimdFn {
    type Out;
    /// Must be `#[inline(always)]` (as everything it calls that is generic
    /// over `S`), so it compiles with the dispatcher's target features.
    fn call<S: Simd>(self, s: S) -> Self::Out;
}

/// An instruction set the vector code can run here: only built by run-time
/// detection (or from a kernel, which was), so [`dispatch`] may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isa(IsaKind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IsaKind {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "aarch64")]
    Neon,
}

impl Isa {
    /// The vector code matching a kernel (which `Kernel::get` checked the
    /// CPU runs): a run forced to AVX2 uses AVX2 everywhere.
    pub fn of(kernel: &Kernel) -> Isa {
        Isa(match kernel.kind {
            KernelKind::Scalar => IsaKind::Scalar,
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => IsaKind::Avx2,
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => IsaKind::Avx512,
            #[cfg(target_arch = "aarch64")]
            KernelKind::Neon | KernelKind::NeonInOrder => IsaKind::Neon,
            #[allow(unreachable_patterns)]
            _ => IsaKind::Scalar,
        })
    }

    /// Every instruction set this CPU runs (for tests).
    pub fn all_available() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut v = vec![Isa(IsaKind::Scalar)];
        #[cfg(target_arch = "x86_64")]
        {
            if Avx2::detect().is_some() {
                v.push(Isa(IsaKind::Avx2));
            }
            if Avx512::detect().is_some() {
                v.push(Isa(IsaKind::Avx512));
            }
        }
        #[cfg(target_arch = "aarch64")]
        v.push(Isa(IsaKind::Neon));
        v
    }

    /// Lanes per vector.
    pub fn lanes(self) -> usize {
        match self.0 {
            IsaKind::Scalar => Scalar::LANES,
            #[cfg(target_arch = "x86_64")]
            IsaKind::Avx2 => Avx2::LANES,
            #[cfg(target_arch = "x86_64")]
            IsaKind::Avx512 => Avx512::LANES,
            #[cfg(target_arch = "aarch64")]
            IsaKind::Neon => Neon::LANES,
        }
    }
}

/// Runs `f` with the vector type of `isa`, compiled for its features.
#[inline]
pub(crate) fn dispatch<F: SimdFn>(isa: Isa, f: F) -> F::Out {
    match isa.0 {
        IsaKind::Scalar => f.call(Scalar),
        // SAFETY (each arm): an `Isa` of this kind exists only where
        // detection found the instruction set.
        #[cfg(target_arch = "x86_64")]
        IsaKind::Avx2 => unsafe { with_avx2(f) },
        #[cfg(target_arch = "x86_64")]
        IsaKind::Avx512 => unsafe { with_avx512(f) },
        #[cfg(target_arch = "aarch64")]
        IsaKind::Neon => unsafe { with_neon(f) },
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<F: SimdFn>(f: F) -> F::Out {
    // SAFETY: the caller's guarantee.
    f.call(unsafe { Avx2::new_unchecked() })
}

/// # Safety
/// The CPU must support AVX-512F (and AVX2 and FMA, which all such CPUs have).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn with_avx512<F: SimdFn>(f: F) -> F::Out {
    // SAFETY: the caller's guarantee.
    f.call(unsafe { Avx512::new_unchecked() })
}

/// # Safety
/// The CPU must support NEON (every aarch64 CPU does).
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn with_neon<F: SimdFn>(f: F) -> F::Out {
    f.call(Neon::new())
}

#[cfg(test)]
mod tests;
