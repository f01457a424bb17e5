//! The fused epilogue's store, written once over [`Simd`] for every kernel:
//! `C = act(scale * (alpha*AB + beta*C) + bias + residual)` on a register
//! tile, vector by vector, partial vectors at a tile's right edge.
//!
//! Every choice the epilogue makes (alpha, beta, which parts are fused, the
//! activation) is made once per tile, outside the loops over its vectors:
//! decided per vector, the branches and the activation's jump table cost
//! about 100 cycles a tile, an eighth of a tile's time at k = 64 (AVX2, Zen).

use crate::engine::gemm::epilogue::{Activation, Axis, TileCtx};
use crate::engine::simd::{with_act, ActMap, Simd, VecFn};

/// Finishes rows `0..m` and columns `0..n` (`m <= M`, `n <= NV * LANES`) of
/// a register tile of `M` rows of `NV` vectors into C.
///
/// # Safety
/// C must be valid for the `m x n` tile at row stride `rs` and unit column
/// stride; `ctx`'s pointers as in [`TileCtx::finish`], and when `ctx.last`
/// with a residual, the residual has unit column stride.
#[inline(always)]
pub(crate) unsafe fn store_tile<S: Simd, const M: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; M],
    m: usize,
    n: usize,
    c: *mut f32,
    rs: usize,
    ctx: &TileCtx,
) {
    debug_assert!(m <= M && n <= NV * S::LANES);
    debug_assert!(!ctx.last || ctx.residual.is_null() || ctx.res_cs == 1);
    // SAFETY (both): the caller's guarantees.
    if m == M && n == NV * S::LANES {
        unsafe { finish::<S, M, NV, true>(s, *acc, M, n, c, rs, ctx) }
    } else {
        unsafe { finish::<S, M, NV, false>(s, *acc, m, n, c, rs, ctx) }
    }
}

/// Lanes of vector `h` inside the tile's `n` columns (all of them when FULL).
#[inline(always)]
fn width<S: Simd, const FULL: bool>(n: usize, h: usize) -> usize {
    if FULL {
        S::LANES
    } else {
        n.saturating_sub(h * S::LANES).min(S::LANES)
    }
}

/// # Safety
/// `p` valid for `w` floats.
#[inline(always)]
unsafe fn load<S: Simd, const FULL: bool>(s: S, p: *const f32, w: usize) -> S::V {
    // SAFETY: the caller's guarantee.
    unsafe {
        if FULL || w == S::LANES {
            s.load(p)
        } else {
            s.load_part(p, w)
        }
    }
}

/// A per-channel vector's values for vector `h` of row `i`: a broadcast
/// along rows, a load along columns.
///
/// # Safety
/// `p` holds the tile's channel values (its rows or its columns).
#[inline(always)]
unsafe fn chan<S: Simd, const FULL: bool>(
    s: S,
    ctx: &TileCtx,
    p: *const f32,
    i: usize,
    h: usize,
    w: usize,
) -> S::V {
    // SAFETY: the caller's guarantee.
    unsafe {
        match ctx.axis {
            Axis::Col => load::<S, FULL>(s, p.add(h * S::LANES), w),
            Axis::Row => s.splat(*p.add(i)),
        }
    }
}

/// [`store_tile`] for a tile known to be full (`FULL`: m = M, n = NV*LANES)
/// or not, so the full tile's loops have no width tests.
///
/// # Safety
/// As [`store_tile`].
#[inline(always)]
unsafe fn finish<S: Simd, const M: usize, const NV: usize, const FULL: bool>(
    s: S,
    mut t: [[S::V; NV]; M],
    m: usize,
    n: usize,
    c: *mut f32,
    rs: usize,
    ctx: &TileCtx,
) {
    let rows = if FULL { M } else { m };
    // `$e` (of the vector `$v`, its row `$i`, vector index `$h` and lanes
    // `$w`) replaces each vector of the tile inside C. A macro, not a
    // closure: a closure LLVM left out of line would lose the kernel's
    // target features.
    macro_rules! each {
        (|$i:ident, $h:ident, $w:ident, $v:ident| $e:expr) => {
            for ($i, row) in t.iter_mut().enumerate().take(rows) {
                for ($h, slot) in row.iter_mut().enumerate() {
                    let $w = width::<S, FULL>(n, $h);
                    if $w > 0 {
                        let $v = *slot;
                        *slot = $e;
                    }
                }
            }
        };
    }
    let l = S::LANES;
    if ctx.alpha != 1.0 {
        let alpha = s.splat(ctx.alpha);
        each!(|_i, _h, _w, v| s.mul(alpha, v));
    }
    if ctx.beta != 0.0 {
        let beta = s.splat(ctx.beta);
        // SAFETY: (i, h*l .. h*l + w) lies in the tile of C.
        each!(|i, h, w, v| unsafe { s.fma(beta, load::<S, FULL>(s, c.add(i * rs + h * l), w), v) });
    }
    if ctx.last {
        // SAFETY (the three below): the epilogue vectors hold a value for
        // every row (Axis::Row) or column (Axis::Col) of the tile, and the
        // residual tile has its rows of n values at stride res_rs.
        if !ctx.scale.is_null() {
            each!(|i, h, w, v| s.mul(v, unsafe { chan::<S, FULL>(s, ctx, ctx.scale, i, h, w) }));
        }
        if !ctx.bias.is_null() {
            each!(|i, h, w, v| s.add(v, unsafe { chan::<S, FULL>(s, ctx, ctx.bias, i, h, w) }));
        }
        if !ctx.residual.is_null() {
            each!(|i, h, w, v| unsafe {
                s.add(
                    v,
                    load::<S, FULL>(s, ctx.residual.add(i * ctx.res_rs + h * l), w),
                )
            });
        }
    }
    let act = if ctx.last { ctx.act } else { Activation::None };
    with_act(s, act, Store::<S, M, NV, FULL> { t, rows, n, c, rs })
}

/// The tile's last step: activation and store, compiled per activation.
struct Store<S: Simd, const M: usize, const NV: usize, const FULL: bool> {
    t: [[S::V; NV]; M],
    rows: usize,
    n: usize,
    /// Valid for the tile (the contract of [`store_tile`]).
    c: *mut f32,
    rs: usize,
}

impl<S: Simd, const M: usize, const NV: usize, const FULL: bool> ActMap<S>
    for Store<S, M, NV, FULL>
{
    type Out = ();
    #[inline(always)]
    fn run<F: VecFn<S>>(self, s: S, f: F) {
        for (i, row) in self.t.iter().enumerate().take(self.rows) {
            for (h, &v) in row.iter().enumerate() {
                let w = width::<S, FULL>(self.n, h);
                // SAFETY: (i, h*LANES .. + w) lies in the tile of C, which
                // `store_tile`'s caller guarantees valid.
                unsafe {
                    let p = self.c.add(i * self.rs + h * S::LANES);
                    if FULL || w == S::LANES {
                        s.store(p, f.apply(s, v));
                    } else if w > 0 {
                        s.store_part(p, f.apply(s, v), w);
                    }
                }
            }
        }
    }
}
