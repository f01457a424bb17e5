//! aarch64 NEON micro-kernel, 8x12 (the BLIS shape the paper uses on Carmel and
//! Cortex-A cores): 24 q-register accumulators, A loaded as two q registers and
//! used by lane (`fmla v.4s, v.4s, v.s[lane]`), B as three q registers.

use super::{Kernel, KernelKind};
use crate::engine::gemm::epilogue::{store_tile_generic, Activation, Axis, TileCtx};
use std::arch::aarch64::*;

const MR: usize = 8;
const NR: usize = 12;

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

    let res_ok = ctx.residual.is_null() || ctx.res_cs == 1 || !ctx.last;
    if m == MR && n == NR && cs == 1 && res_ok {
        // SAFETY: full tile, unit column stride: every vector store is inside C.
        unsafe { store_full(&acc, c, rs, ctx) };
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

/// Finishes a full 8x12 tile with vector loads and stores.
#[target_feature(enable = "neon")]
unsafe fn store_full(acc: &[[float32x4_t; 3]; MR], c: *mut f32, rs: usize, ctx: &TileCtx) {
    // Each choice (beta, fused parts, activation) is made once per tile, not
    // per vector, as in the AVX2 kernel.
    let mut t = *acc;
    let each = |t: &mut [[float32x4_t; 3]; MR],
                f: &dyn Fn(usize, usize, float32x4_t) -> float32x4_t| {
        for (i, row) in t.iter_mut().enumerate() {
            for (q, v) in row.iter_mut().enumerate() {
                *v = f(i, q, *v);
            }
        }
    };
    if ctx.alpha != 1.0 {
        each(&mut t, &|_, _, v| vmulq_n_f32(v, ctx.alpha));
    }
    if ctx.beta != 0.0 {
        // SAFETY: (i, 4q..4q+4) lies in the full tile of C.
        each(&mut t, &|i, q, v| unsafe {
            vfmaq_n_f32(v, vld1q_f32(c.add(i * rs + q * 4)), ctx.beta)
        });
    }
    if ctx.last {
        // SAFETY (for the loads below): the epilogue vectors hold a value for
        // every row (Axis::Row) or column (Axis::Col) of the tile, and the
        // residual tile has MR rows of 12 values at stride res_rs.
        let chan = |p: *const f32, i: usize, q: usize| unsafe {
            match ctx.axis {
                Axis::Col => vld1q_f32(p.add(q * 4)),
                Axis::Row => vld1q_dup_f32(p.add(i)),
            }
        };
        if !ctx.scale.is_null() {
            each(&mut t, &|i, q, v| vmulq_f32(v, chan(ctx.scale, i, q)));
        }
        if !ctx.bias.is_null() {
            each(&mut t, &|i, q, v| vaddq_f32(v, chan(ctx.bias, i, q)));
        }
        if !ctx.residual.is_null() {
            // SAFETY: see above.
            each(&mut t, &|i, q, v| unsafe {
                vaddq_f32(v, vld1q_f32(ctx.residual.add(i * ctx.res_rs + q * 4)))
            });
        }
        let zero = vdupq_n_f32(0.0);
        match ctx.act {
            Activation::None => {}
            Activation::Relu => each(&mut t, &|_, _, v| vmaxq_f32(v, zero)),
            Activation::Relu6 => {
                let six = vdupq_n_f32(6.0);
                each(&mut t, &|_, _, v| vminq_f32(vmaxq_f32(v, zero), six))
            }
            Activation::Clip { min, max } => {
                let (lo, hi) = (vdupq_n_f32(min), vdupq_n_f32(max));
                each(&mut t, &|_, _, v| vminq_f32(vmaxq_f32(v, lo), hi))
            }
            // Applied to the stored tile below.
            _ => {}
        }
    }
    for (i, row) in t.iter().enumerate() {
        for (q, &v) in row.iter().enumerate() {
            // SAFETY: (i, 4q..4q+4) lies in the full tile of C.
            unsafe { vst1q_f32(c.add(i * rs + q * 4), v) };
        }
    }
    if ctx.last && ctx.act != Activation::None && ctx.act.clamp_bounds().is_none() {
        for i in 0..t.len() {
            // SAFETY: row i of the full tile of C, just stored.
            unsafe { ctx.act.apply_in_place(c.add(i * rs), NR) };
        }
    }
}

const CHAINS: usize = 16;

/// # Safety
/// The CPU supports NEON.
unsafe fn fma_chains(iters: u64) -> f32 {
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
