//! Portable micro-kernel: the fallback on every CPU and the reference the
//! vectorised kernels are tested against. Plain loops the compiler may vectorise.

use super::store::store_tile;
use super::Kernel;
use super::KernelKind;
use crate::engine::gemm::epilogue::{store_tile_generic, TileCtx};
use crate::engine::simd::Scalar;

const MR: usize = 4;
const NR: usize = 8;

pub(super) const KERNEL: Kernel = Kernel {
    kind: KernelKind::Scalar,
    mr: MR,
    nr: NR,
    lanes: 1,
    a_rows: false,
    ir_outer: false,
    micro: micro_4x8,
    micro_row: None,
    fma_chains,
    chain_flops_per_iter: 2 * CHAINS,
};

/// # Safety
/// `a` holds `kc*MR` and `b` `kc*NR` readable floats; `c` is valid for the
/// `m x n` tile at strides `(rs, cs)`; `ctx` pointers as in [`TileCtx::finish`].
#[allow(clippy::too_many_arguments)]
unsafe fn micro_4x8(
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
    // SAFETY: the caller guarantees kc*MR and kc*NR readable elements.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, kc * MR),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    let mut acc = [0.0f32; MR * NR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                // Separate multiply and add: without a hardware FMA in the baseline
                // target, mul_add would be a libm call.
                acc[i * NR + j] += ap[i] * bp[j];
            }
        }
    }
    let res_ok = ctx.residual.is_null() || ctx.res_cs == 1 || !ctx.last;
    if cs == 1 && res_ok {
        let tile: [[f32; NR]; MR] =
            std::array::from_fn(|i| std::array::from_fn(|j| acc[i * NR + j]));
        // SAFETY: forwarded caller guarantees; C and the residual have unit
        // column stride.
        unsafe { store_tile::<Scalar, MR, NR>(Scalar, &tile, m, n, c, rs, ctx) };
    } else {
        // SAFETY: forwarded caller guarantees on c and ctx.
        unsafe { store_tile_generic(&acc, NR, m, n, c, rs, cs, ctx) };
    }
}

const CHAINS: usize = 8;

/// # Safety
/// Always safe; `unsafe` only to share the signature of the vector versions.
unsafe fn fma_chains(iters: u64) -> f32 {
    let mut acc = [0.0f32; CHAINS];
    let x = std::hint::black_box(0.999_999f32);
    let y = std::hint::black_box(1e-7f32);
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = *v * x + y;
        }
    }
    acc.iter().sum()
}
