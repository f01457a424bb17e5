//! The one-lane "vector": the fallback on every CPU, and what the generic
//! code compiles to where there is no vector unit.

use super::Simd;

/// One f32 per vector; every CPU runs it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scalar;

/// 1.5 * 2^23: adding and subtracting it rounds an f32 below 2^22 in
/// magnitude to an integer, ties to even (the baseline x86-64 target has no
/// rounding instruction, and `round_ties_even` would be a libm call).
const ROUNDER: f32 = 12_582_912.0;

impl Simd for Scalar {
    type V = f32;
    const LANES: usize = 1;

    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32 {
        // SAFETY: the caller's guarantee.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32) {
        // SAFETY: the caller's guarantee.
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn load_part(self, p: *const f32, n: usize) -> f32 {
        // SAFETY: with n == 1 the caller guarantees one float.
        if n == 0 {
            0.0
        } else {
            unsafe { *p }
        }
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, v: f32, n: usize) {
        if n != 0 {
            // SAFETY: with n == 1 the caller guarantees one float.
            unsafe { *p = v }
        }
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn div(self, a: f32, b: f32) -> f32 {
        a / b
    }
    // In f64, where the product is exact: fused up to a second rounding
    // (without FMA in the baseline target, `mul_add` is a libm call).
    #[inline(always)]
    fn fma(self, a: f32, b: f32, c: f32) -> f32 {
        (f64::from(a) * f64::from(b) + f64::from(c)) as f32
    }
    #[inline(always)]
    fn fnma(self, a: f32, b: f32, c: f32) -> f32 {
        (f64::from(c) - f64::from(a) * f64::from(b)) as f32
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        // A select, which compiles to maxss (f32::max's NaN rule does not).
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn min(self, a: f32, b: f32) -> f32 {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn abs(self, a: f32) -> f32 {
        a.abs()
    }
    #[inline(always)]
    fn copysign(self, mag: f32, sign: f32) -> f32 {
        mag.copysign(sign)
    }
    #[inline(always)]
    fn round(self, a: f32) -> f32 {
        // `ROUNDER` takes the sign of `a` so negative values round alike.
        let r = ROUNDER.copysign(a);
        (a + r) - r
    }
    #[inline(always)]
    fn pow2i(self, n: f32) -> f32 {
        f32::from_bits(((n as i32 + 127) as u32) << 23)
    }
    #[inline(always)]
    fn select_lt(self, a: f32, b: f32, x: f32, y: f32) -> f32 {
        if a < b {
            x
        } else {
            y
        }
    }
}
