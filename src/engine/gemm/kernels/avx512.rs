//! x86-64 AVX-512F micro-kernel, 12x32: twenty-four zmm accumulators (of the
//! 32), two B vectors and twelve A values per k step, each A value broadcast
//! straight from memory into its FMAs (`{1to16}`), so a step is 24
//! independent FMAs against 14 loads: enough to keep both 512-bit FMA ports
//! of Sapphire Rapids / Ice Lake server busy through the 4-cycle latency.
//!
//! A is read as twelve rows at stride `lda`, as the AVX2 kernel reads six,
//! so a row-major A (a 1x1 convolution's NHWC input) is used in place and
//! im2col patches are packed by rows, in contiguous copies. Column-packed A
//! measured slower: its strided packing cost DenseNet-121's 3x3 convolutions
//! (32 output channels, so each packed A value feeds only 64 FLOPs) a quarter
//! of their speed (DenseNet-121 t1 b1 11.1 -> 17.9 img/s with rows), and GEMM
//! 2048^3 went 127-135 -> 138-142 GFLOP/s. Tiles whose valid part is at most
//! 16 columns wide (the right edge of C, e.g. 48 or 80 channels) compute one
//! vector per row instead of two.

use super::store::store_tile;
use super::{Kernel, KernelKind};
use crate::engine::gemm::epilogue::{store_tile_generic, TileCtx};
use crate::engine::simd::Avx512;
use std::arch::x86_64::*;

const MR: usize = 12;
const NR: usize = 32;
const LANES: usize = 16;

pub(super) const KERNEL: Kernel = Kernel {
    kind: KernelKind::Avx512,
    mr: MR,
    nr: NR,
    lanes: LANES,
    a_rows: true,
    // As for AVX2: the A micro-panel (12 x kc) stays in L1 while B's
    // micro-panels stream past it in order, each A panel finishing whole
    // rows of C.
    ir_outer: true,
    micro: micro_12x32,
    micro_row: Some(row_12x32),
    fma_chains,
    chain_flops_per_iter: 2 * LANES * CHAINS,
};

/// # Safety
/// The CPU supports AVX-512F, AVX2 and FMA (checked by kernel selection);
/// `a` points at 12 rows of `kc` readable floats at stride `lda` (the
/// driver packs and zero-pads a block's last, partial panel); `b` holds
/// `kc * 32` floats; `c` is valid for the `m x n` tile at strides `(rs, cs)`;
/// `ctx` pointers as in [`TileCtx::finish`].
#[allow(clippy::too_many_arguments)]
unsafe fn micro_12x32(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    rs: usize,
    cs: usize,
    m: usize,
    n: usize,
    ctx: &TileCtx,
) {
    // SAFETY: forwarded; selection guarantees AVX-512F.
    unsafe {
        if n <= LANES {
            micro_tile::<1>(kc, a, lda, b, c, rs, cs, m, n, ctx)
        } else {
            micro_tile::<2>(kc, a, lda, b, c, rs, cs, m, n, ctx)
        }
    }
}

/// `panels` full 12x32 tiles side by side, in one call (the driver's per-tile
/// set-up and indirect call paid once per row of tiles).
///
/// # Safety
/// As [`micro_12x32`] for every tile `p < panels`: `b` holds `panels`
/// micro-panels of `kc*32` floats one after another, C's `12 x 32*panels`
/// block (unit column stride) is valid, and `ctx`'s pointers are those of
/// the first tile.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn row_12x32(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    panels: usize,
    c: *mut f32,
    rs: usize,
    ctx: &TileCtx,
) {
    for p in 0..panels {
        let col = p * NR;
        // SAFETY: tile p lies inside C, B and the epilogue data (caller's
        // guarantee), so every offset below stays in bounds.
        unsafe {
            let t = ctx.right(col);
            micro_tile::<2>(
                kc,
                a,
                lda,
                b.add(p * kc * NR),
                c.add(col),
                rs,
                1,
                MR,
                NR,
                &t,
            );
        }
    }
}

/// The 12 x `16*NV` product of the tile (`NV` = 1 or 2 vectors per row),
/// finished into C's `m x n` part; see [`micro_12x32`].
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_tile<const NV: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    mut b: *const f32,
    c: *mut f32,
    rs: usize,
    cs: usize,
    m: usize,
    n: usize,
    ctx: &TileCtx,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    // SAFETY: the 12 row starts lie inside A (caller's guarantee).
    let rows: [*const f32; MR] = std::array::from_fn(|i| unsafe { a.add(i * lda) });
    let mut p = 0usize;
    macro_rules! step {
        () => {{
            // SAFETY: each step reads one k of the B panel (NV of its two
            // vectors, within kc*NR) and the 12 values of step k of the A
            // panel (within kc*MR).
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = unsafe { _mm512_loadu_ps(b.add(v * LANES)) };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(unsafe { *rows[i].add(p) });
                for (r, &x) in row.iter_mut().zip(&bv) {
                    *r = _mm512_fmadd_ps(ai, x, *r);
                }
            }
            p += 1;
            b = unsafe { b.add(NR) };
        }};
    }
    // Start pulling the C tile (read when beta != 0, written in any case) and
    // the residual towards L1 while the product is computed (see avx2.rs).
    let res = ctx.last && !ctx.residual.is_null();
    for i in 0..m {
        // SAFETY: prefetch is a hint and never faults; row i < m of the tile
        // and of the residual tile exist (caller's guarantee).
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(c.add(i * rs) as *const i8);
            if res {
                _mm_prefetch::<_MM_HINT_T0>(ctx.residual.add(i * ctx.res_rs) as *const i8);
            }
        }
    }
    let mut k = kc;
    while k >= 4 {
        step!();
        step!();
        step!();
        step!();
        k -= 4;
    }
    while k > 0 {
        step!();
        k -= 1;
    }

    let res_ok = ctx.residual.is_null() || ctx.res_cs == 1 || !ctx.last;
    if cs == 1 && res_ok {
        // SAFETY: the token is sound (this function requires AVX-512F, AVX2
        // and FMA); C's m x n tile has unit column stride, as has the
        // residual.
        unsafe { store_tile::<Avx512, MR, NV>(Avx512::new_unchecked(), &acc, m, n, c, rs, ctx) };
    } else {
        let mut tile = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                // SAFETY: tile has room for MR rows of NR floats.
                unsafe { _mm512_storeu_ps(tile.as_mut_ptr().add(i * NR + v * LANES), x) };
            }
        }
        // SAFETY: forwarded caller guarantees on c and ctx.
        unsafe { store_tile_generic(&tile, NR, m, n, c, rs, cs, ctx) };
    }
}

/// Independent FMA chains: two ports of 4-cycle latency need 8; 16 leaves
/// margin for cores with longer latency.
const CHAINS: usize = 16;

/// # Safety
/// The CPU supports AVX-512F.
unsafe fn fma_chains(iters: u64) -> f32 {
    // SAFETY: forwarded.
    unsafe { fma_chains_impl(iters) }
}

#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn fma_chains_impl(iters: u64) -> f32 {
    let x = _mm512_set1_ps(std::hint::black_box(0.999_999));
    let y = _mm512_set1_ps(std::hint::black_box(1e-7));
    let mut acc = [_mm512_setzero_ps(); CHAINS];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, x, y);
        }
    }
    let mut s = _mm512_setzero_ps();
    for v in acc {
        s = _mm512_add_ps(s, v);
    }
    _mm512_reduce_add_ps(s)
}
