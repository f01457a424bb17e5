//! x86-64 AVX2+FMA micro-kernel, 6x16: twelve ymm accumulators, two B vectors
//! and one broadcast A value per step, so each k step issues 12 independent FMAs
//! (enough to cover FMA latency on Haswell and Zen). A is read as six rows at
//! stride `lda` (broadcasts need no particular layout), so a row-major A —
//! the NHWC input of a 1x1 convolution — is used in place, without packing.

use super::store::store_tile;
use super::{Kernel, KernelKind};
use crate::engine::gemm::epilogue::{store_tile_generic, TileCtx};
use crate::engine::simd::Avx2;
use std::arch::x86_64::*;

const MR: usize = 6;
const NR: usize = 16;

pub(super) const KERNEL: Kernel = Kernel {
    kind: KernelKind::Avx2,
    mr: MR,
    nr: NR,
    lanes: 8,
    a_rows: true,
    // Measured on Zen 1: equal or faster on every shape tried (1536^3 43.0 ->
    // 44.3 GFLOP/s; ResNet-50 t2 b8 about 1% faster).
    ir_outer: true,
    micro: micro_6x16,
    micro_row: Some(row_6x16),
    fma_chains,
    chain_flops_per_iter: 2 * 8 * CHAINS,
};

/// # Safety
/// The CPU supports AVX2 and FMA (checked by kernel selection); `a` points at
/// `m` rows of `kc` readable floats at stride `lda`; `b` holds `kc*16` floats; `c` is valid for the `m x n` tile at
/// strides `(rs, cs)`; `ctx` pointers as in [`TileCtx::finish`].
#[allow(clippy::too_many_arguments)]
unsafe fn micro_6x16(
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
    // Edge tiles with fewer rows compute only those rows (A is read by rows,
    // so the rest are simply not loaded): a 1-row edge costs a sixth of a tile.
    // SAFETY: forwarded; selection guarantees AVX2+FMA.
    unsafe {
        match m {
            1 => micro_rows::<1>(kc, a, lda, b, c, rs, cs, n, ctx),
            2 => micro_rows::<2>(kc, a, lda, b, c, rs, cs, n, ctx),
            3 => micro_rows::<3>(kc, a, lda, b, c, rs, cs, n, ctx),
            4 => micro_rows::<4>(kc, a, lda, b, c, rs, cs, n, ctx),
            5 => micro_rows::<5>(kc, a, lda, b, c, rs, cs, n, ctx),
            _ => micro_rows::<MR>(kc, a, lda, b, c, rs, cs, n, ctx),
        }
    }
}

/// `panels` full 6x16 tiles side by side, in one call: the driver's per-tile
/// set-up and the indirect call through [`micro_6x16`] took about 8% of a
/// tile's time at k = 64 (ResNet's first stage), the row pays them once.
///
/// # Safety
/// As [`micro_6x16`] for every tile `p < panels`: `b` holds `panels` micro-panels
/// of `kc*16` floats one after another, C's `6 x 16*panels` block (unit column
/// stride) is valid, and `ctx`'s pointers are those of the first tile.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn row_6x16(
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
            micro_rows::<MR>(kc, a, lda, b.add(p * kc * NR), c.add(col), rs, 1, NR, &t);
        }
    }
}

/// An `M x 16` tile (`M <= 6`); see [`micro_6x16`].
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_rows<const M: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    mut b: *const f32,
    c: *mut f32,
    rs: usize,
    cs: usize,
    n: usize,
    ctx: &TileCtx,
) {
    let m = M;
    let mut acc = [[_mm256_setzero_ps(); 2]; M];
    // SAFETY: the M row starts lie inside A (caller's guarantee).
    let rows: [*const f32; M] = std::array::from_fn(|i| unsafe { a.add(i * lda) });
    let mut p = 0usize;
    macro_rules! step {
        () => {{
            // SAFETY: each step reads one k of the B panel (within kc*NR) and
            // column p < kc of each A row.
            let b0 = unsafe { _mm256_loadu_ps(b) };
            let b1 = unsafe { _mm256_loadu_ps(b.add(8)) };
            for (row, r) in acc.iter_mut().zip(&rows) {
                let ai = unsafe { _mm256_broadcast_ss(&*r.add(p)) };
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
            p += 1;
            b = unsafe { b.add(NR) };
        }};
    }
    // Start pulling the C tile (read when beta != 0, written in any case) and
    // the residual towards L1 while the product is computed: with a short k
    // (64 in ResNet's first stage) their misses would otherwise stall the
    // epilogue for a sizeable share of the tile's time.
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
        // SAFETY: the token is sound (this function requires AVX2 and FMA);
        // C's m x n tile has unit column stride, as has the residual.
        unsafe {
            // Edge rows (M < MR) go through the full tile's partial store,
            // so the epilogue is compiled once per tile shape, not per M.
            let mut full = [[_mm256_setzero_ps(); 2]; MR];
            full[..M].copy_from_slice(&acc);
            store_tile::<Avx2, MR, 2>(Avx2::new_unchecked(), &full, m, n, c, rs, ctx);
        }
    } else {
        let mut tile = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: tile has room for MR rows of NR floats.
            unsafe {
                _mm256_storeu_ps(tile.as_mut_ptr().add(i * NR), row[0]);
                _mm256_storeu_ps(tile.as_mut_ptr().add(i * NR + 8), row[1]);
            }
        }
        // SAFETY: forwarded caller guarantees on c and ctx.
        unsafe { store_tile_generic(&tile, NR, m, n, c, rs, cs, ctx) };
    }
}

const CHAINS: usize = 12;

/// # Safety
/// The CPU supports AVX2 and FMA.
unsafe fn fma_chains(iters: u64) -> f32 {
    // SAFETY: forwarded.
    unsafe { fma_chains_impl(iters) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_impl(iters: u64) -> f32 {
    let x = _mm256_set1_ps(std::hint::black_box(0.999_999));
    let y = _mm256_set1_ps(std::hint::black_box(1e-7));
    let mut acc = [_mm256_setzero_ps(); CHAINS];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, x, y);
        }
    }
    let mut s = _mm256_setzero_ps();
    for v in acc {
        s = _mm256_add_ps(s, v);
    }
    let mut out = [0.0f32; 8];
    // SAFETY: out has 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}
