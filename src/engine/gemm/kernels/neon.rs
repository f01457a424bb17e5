//! aarch64 NEON micro-kernel, 8x12 (the BLIS shape the paper uses on Carmel and
//! Cortex-A cores): 24 q-register accumulators, A loaded as two q registers and
//! used by lane (`fmla v.4s, v.4s, v.s[lane]`), B as three q registers.

use super::store::store_tile;
use super::{Kernel, KernelKind};
use crate::engine::gemm::epilogue::{store_tile_generic, TileCtx};
use crate::engine::simd::Neon;
use std::arch::aarch64::*;

pub(super) const MR: usize = 8;
pub(super) const NR: usize = 12;

pub(super) const KERNEL: Kernel = Kernel {
    kind: KernelKind::Neon,
    mr: MR,
    nr: NR,
    lanes: 4,
    a_rows: false,
    // BLIS's order until it is measured on an aarch64 board.
    ir_outer: false,
    micro: micro_8x12,
    micro_row: None,
    fma_chains,
    chain_flops_per_iter: 2 * 4 * CHAINS,
};

/// # Safety
/// The CPU supports NEON (checked by kernel selection); `a` holds `kc*8` and
/// `b` `kc*12` readable floats; `c` is valid for the `m x n` tile at strides
/// `(rs, cs)`; `ctx` pointers as in [`TileCtx::finish`].
#[allow(clippy::too_many_arguments)]
unsafe fn micro_8x12(
    kc: usize,
    a: *const f32,
    _lda: usize,
    b: *const f32,
    c: *mut f32,
    rs: usize,
    cs: usize,
    m: usize,
    n: usize,
    ctx: &TileCtx,
) {
    // SAFETY: forwarded; selection guarantees NEON.
    unsafe { micro_8x12_impl(kc, a, b, c, rs, cs, m, n, ctx) }
}

#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_8x12_impl(
    kc: usize,
    mut a: *const f32,
    mut b: *const f32,
    c: *mut f32,
    rs: usize,
    cs: usize,
    m: usize,
    n: usize,
    ctx: &TileCtx,
) {
    let z = vdupq_n_f32(0.0);
    let mut acc = [[z; 3]; MR];
    for _ in 0..kc {
        // SAFETY: one k step of each packed panel, within kc*MR / kc*NR.
        let (a0, a1, b0, b1, b2) = unsafe {
            (
                vld1q_f32(a),
                vld1q_f32(a.add(4)),
                vld1q_f32(b),
                vld1q_f32(b.add(4)),
                vld1q_f32(b.add(8)),
            )
        };
        macro_rules! row {
            ($i:expr, $av:ident, $lane:expr) => {
                acc[$i][0] = vfmaq_laneq_f32::<$lane>(acc[$i][0], b0, $av);
                acc[$i][1] = vfmaq_laneq_f32::<$lane>(acc[$i][1], b1, $av);
                acc[$i][2] = vfmaq_laneq_f32::<$lane>(acc[$i][2], b2, $av);
            };
        }
        row!(0, a0, 0);
        row!(1, a0, 1);
        row!(2, a0, 2);
        row!(3, a0, 3);
        row!(4, a1, 0);
        row!(5, a1, 1);
        row!(6, a1, 2);
        row!(7, a1, 3);
        // SAFETY: advancing within the panels (one past the end at most).
        unsafe {
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    // SAFETY: forwarded caller guarantees on c and ctx.
    unsafe { finish(&acc, c, rs, cs, m, n, ctx) }
}

/// Stores an 8x12 register tile through the fused epilogue: the vector store
/// when C (and a residual read now) have unit column stride, else through a
/// buffer. Shared by every NEON schedule.
///
/// # Safety
/// `c` is valid for the `m x n` tile at strides `(rs, cs)`; `ctx` pointers as
/// in [`TileCtx::finish`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn finish(
    acc: &[[float32x4_t; 3]; MR],
    c: *mut f32,
    rs: usize,
    cs: usize,
    m: usize,
    n: usize,
    ctx: &TileCtx,
) {
    let res_ok = ctx.residual.is_null() || ctx.res_cs == 1 || !ctx.last;
    if cs == 1 && res_ok {
        // SAFETY: NEON is in the aarch64 baseline; C's m x n tile has unit
        // column stride, as has the residual.
        unsafe { store_tile::<Neon, MR, 3>(Neon::new(), acc, m, n, c, rs, ctx) };
    } else {
        let mut tile = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            for (q, &v) in row.iter().enumerate() {
                // SAFETY: tile has room for MR rows of NR floats.
                unsafe { vst1q_f32(tile.as_mut_ptr().add(i * NR + q * 4), v) };
            }
        }
        // SAFETY: forwarded caller guarantees on c and ctx.
        unsafe { store_tile_generic(&tile, NR, m, n, c, rs, cs, ctx) };
    }
}

pub(super) const CHAINS: usize = 16;

/// # Safety
/// The CPU supports NEON.
pub(super) unsafe fn fma_chains(iters: u64) -> f32 {
    // SAFETY: forwarded.
    unsafe { fma_chains_impl(iters) }
}

#[target_feature(enable = "neon")]
unsafe fn fma_chains_impl(iters: u64) -> f32 {
    let x = vdupq_n_f32(std::hint::black_box(0.999_999));
    let y = vdupq_n_f32(std::hint::black_box(1e-7));
    let mut acc = [vdupq_n_f32(0.0); CHAINS];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = vfmaq_f32(y, *v, x);
        }
    }
    let mut s = vdupq_n_f32(0.0);
    for v in acc {
        s = vaddq_f32(s, v);
    }
    vaddvq_f32(s)
}
