//! Winograd convolutions for 3x3 stride-1 layers (Lavin and Gray, 2016), in
//! two tile sizes:
//!
//! - F(2x2, 3x3) ([`f23`]): 4x4 input tiles, 16 transformed values per
//!   channel, 2x2 output tiles; 2.25x fewer multiplications than direct.
//! - F(4x4, 3x3) ([`f43`]): 6x6 input tiles, 36 values, 4x4 output tiles;
//!   4x fewer multiplications, at a somewhat larger loss of precision.
//!
//! Per block of tiles, the input transform writes `V[xi]` (tiles x C) for
//! every transformed point `xi`, the "element-wise" products over channels are
//! GEMMs `V[xi] * U[xi]` (C x K) on the engine's micro-kernels, and the output
//! transform turns each tile's products into output pixels, with the fused
//! epilogue (bias, residual, activation) applied as they are stored.
//!
//! Tiles are processed in blocks sized so that a block's transformed input
//! and products stay near the L2 cache; each thread takes a contiguous range
//! of tiles with its own single-threaded GEMM and scratch (in a layer with
//! only a few tiles per thread, each takes a range of output channels of all
//! tiles instead, so it reads only its share of the filters). The
//! input and output transforms of both sizes are vectorized over channels,
//! written once over the engine's SIMD layer ([`transform`]: AVX-512, AVX2,
//! NEON, scalar; the instruction set is the GEMM kernel's), the last vector
//! of channels partial. Filters are transformed once, in f64, when the model
//! is built.

mod f23;
mod f43;
#[cfg(all(test, target_arch = "aarch64"))]
mod mca_probe;
mod transform;

use super::ConvGeom;
use crate::engine::gemm::{Activation, BOperand, Epilogue, Gemm, MatMut, MatRef, PackedB};
use crate::engine::graph::Conv;
use crate::engine::simd::Isa;
use crate::engine::EngineError;

/// Output tile size: which Winograd algorithm a layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// F(2x2, 3x3).
    F23,
    /// F(4x4, 3x3).
    F43,
}

impl Variant {
    /// Output tile side.
    pub const fn m(self) -> usize {
        match self {
            Variant::F23 => 2,
            Variant::F43 => 4,
        }
    }

    /// Input tile side.
    pub const fn alpha(self) -> usize {
        self.m() + 2
    }

    /// Transformed points per channel: the number of GEMMs per block.
    pub const fn points(self) -> usize {
        self.alpha() * self.alpha()
    }
}

/// Whether Winograd (either tile size) applies: 3x3 window, stride 1, no
/// dilation, one group.
pub fn supports(conv: &Conv) -> bool {
    let w = &conv.window;
    w.kh == 3
        && w.kw == 3
        && w.stride_h == 1
        && w.stride_w == 1
        && w.dilation_h == 1
        && w.dilation_w == 1
        && conv.groups == 1
}

/// The transformed filters `U[xi] = (G g G^T)[xi]` as row-major `C x K`
/// matrices, each output channel's weights scaled by `scale[k]` first.
pub fn filter_transform(v: Variant, conv: &Conv, scale: Option<&[f32]>) -> Vec<Vec<f32>> {
    match v {
        Variant::F23 => f23::filter_transform(conv, scale),
        Variant::F43 => f43::filter_transform(conv, scale),
    }
}

/// Tiles per block, a multiple of the kernel's row count and at least four
/// row panels so the GEMM's packed filter panel is reused.
///
/// F(2x2, 3x3): the block's `16 x (C + K)` transformed values near 256 KiB
/// (measured on ResNet-50 when it went in). F(4x4, 3x3): the same budget for
/// its 36 points, but at least `C K / (C + K)` tiles, so a block's own data
/// is as large as the `36 C K` filters every block streams again: wide
/// layers (ResNet-50 layer3, 256 channels) measured ~10% faster with the
/// larger blocks, narrow ones (layer1, 64) ~5% slower with more than ~30.
pub fn block_tiles(v: Variant, c_in: usize, k_out: usize, mr: usize) -> usize {
    let per_tile = v.points() * (c_in + k_out);
    let cache = 64 * 1024 / per_tile.max(1);
    let tiles = match v {
        Variant::F23 => cache,
        Variant::F43 => cache.max(c_in * k_out / (c_in + k_out).max(1)),
    };
    (tiles / mr).clamp(4, 40) * mr
}

/// Scratch floats one worker needs for a layer.
pub fn scratch_len(v: Variant, c_in: usize, k_out: usize, mr: usize) -> usize {
    v.points() * block_tiles(v, c_in, k_out, mr) * (c_in + k_out) + c_in
}

/// A thread's single-threaded GEMM and scratch.
pub struct Worker {
    pub gemm: Gemm,
    pub buf: Vec<f32>,
}

/// Output buffer shared by the workers, each writing only its own tiles.
#[derive(Clone, Copy)]
pub struct OutPtr {
    ptr: *mut f32,
    len: usize,
}

impl OutPtr {
    /// Shares `out` with the workers; the borrow must outlive their loop.
    pub fn new(out: &mut [f32]) -> Self {
        OutPtr {
            ptr: out.as_mut_ptr(),
            len: out.len(),
        }
    }
}

// SAFETY: workers write disjoint parts of the output (disjoint tile ranges or
// disjoint channel ranges), so no two threads touch the same element; the
// buffer outlives the parallel loop.
unsafe impl Send for OutPtr {}
// SAFETY: see Send.
unsafe impl Sync for OutPtr {}

/// The fused tail applied in the output transform.
pub struct Tail<'a> {
    pub bias: Option<&'a [f32]>,
    pub residual: Option<&'a [f32]>,
    pub act: Activation,
}

/// Tiles of the whole batch: `(tiles_h, tiles_w, total)`.
pub fn tiles(v: Variant, g: &ConvGeom) -> (usize, usize, usize) {
    let m = v.m();
    let (th, tw) = (g.oh.div_ceil(m), g.ow.div_ceil(m));
    (th, tw, g.n * th * tw)
}

/// Computes output tiles `range`, output channels `cols`, of the layer: input
/// transform, one GEMM per transformed point, and output transform, block by
/// block, with `gemm` and `buf`, scratch of [`scratch_len`] floats. Threads
/// split a layer by tiles (each with all channels) or, when it has only a few
/// tiles, by output channels (each with all tiles, so each reads only its
/// share of the filters; `cols` then starts at a multiple of the kernel's nr).
#[allow(clippy::too_many_arguments)]
pub fn run_tiles(
    v: Variant,
    gemm: &mut Gemm,
    buf: &mut [f32],
    x: &[f32],
    g: &ConvGeom,
    packed: &[PackedB],
    k_out: usize,
    tail: &Tail<'_>,
    out: OutPtr,
    range: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Result<(), EngineError> {
    run_tiles_on(
        Isa::of(gemm.kernel()),
        v,
        gemm,
        buf,
        x,
        g,
        packed,
        k_out,
        tail,
        out,
        range,
        cols,
    )
}

/// [`run_tiles`] with the transform code given (tests run every one there is).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_tiles_on(
    isa: Isa,
    v: Variant,
    gemm: &mut Gemm,
    buf: &mut [f32],
    x: &[f32],
    g: &ConvGeom,
    packed: &[PackedB],
    k_out: usize,
    tail: &Tail<'_>,
    out: OutPtr,
    range: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Result<(), EngineError> {
    let c_in = g.c;
    let out_len = g.n * g.oh * g.ow * k_out;
    let (_, _, total) = tiles(v, g);
    // The transforms index without bounds checks; everything they touch is
    // checked here once.
    let short = |what: &str, have: usize, need: usize| {
        EngineError::Shape(format!("winograd {what} holds {have} values, needs {need}"))
    };
    if out.len < out_len {
        return Err(short("output", out.len, out_len));
    }
    if let Some(r) = tail.residual {
        if r.len() < out_len {
            return Err(short("residual", r.len(), out_len));
        }
    }
    if let Some(b) = tail.bias {
        if b.len() < k_out {
            return Err(short("bias", b.len(), k_out));
        }
    }
    let in_len = g.n * g.h * g.w * c_in;
    if x.len() < in_len || g.cg != c_in {
        return Err(short("input", x.len(), in_len));
    }
    if cols.end > k_out {
        return Err(short("output channels", k_out, cols.end));
    }
    if packed.len() != v.points() || range.end > total {
        return Err(EngineError::Shape(format!(
            "winograd {v:?}: {} filter matrices for {} points, tiles {range:?} of {total}",
            packed.len(),
            v.points()
        )));
    }
    let mr = gemm.kernel().mr;
    let tb = block_tiles(v, c_in, k_out, mr);
    let p = v.points();
    let (v_len, m_len) = (p * tb * c_in, p * tb * k_out);
    if buf.len() < v_len + m_len + c_in {
        return Err(short("scratch", buf.len(), v_len + m_len + c_in));
    }
    let (vb, rest) = buf.split_at_mut(v_len);
    let (mb, zero) = rest.split_at_mut(m_len);
    let zero = &mut zero[..c_in];
    zero.fill(0.0);
    let mut start = range.start;
    while start < range.end {
        let n = tb.min(range.end - start);
        transform::input_block(isa, v, x, g, start, n, zero, vb);
        for (xi, b) in packed.iter().enumerate() {
            let a = MatRef::row_major(&vb[xi * n * c_in..][..n * c_in], n, c_in)?;
            let mut cm = MatMut::row_major(&mut mb[xi * n * k_out..][..n * k_out], n, k_out)?;
            gemm.run_cols(
                1.0,
                &a,
                BOperand::Packed(b),
                0.0,
                &mut cm,
                &Epilogue::none(),
                cols.clone(),
            )?;
        }
        // SAFETY: this worker owns output channels `cols` of tiles `range`
        // (see OutPtr), and the output, residual and bias lengths and `cols`
        // were checked above.
        unsafe { transform::output_block(isa, v, mb, g, k_out, cols.clone(), start, n, tail, out) };
        start += n;
    }
    Ok(())
}

/// The `A x A` input pixels (each `c` channels) of tile `tile`, the shared
/// zero pixel where the tile reaches into the padding.
#[inline(always)]
fn gather<'a, const A: usize, const N: usize>(
    x: &'a [f32],
    g: &ConvGeom,
    tile: usize,
    zero: &'a [f32],
) -> [&'a [f32]; N] {
    let m = A - 2;
    let (th, tw) = (g.oh.div_ceil(m), g.ow.div_ceil(m));
    let img = tile / (th * tw);
    let (ty, tx) = ((tile / tw) % th, tile % tw);
    let c = g.c;
    let y0 = (m * ty) as isize - g.win.pad_top as isize;
    let x0 = (m * tx) as isize - g.win.pad_left as isize;
    let mut d: [&[f32]; N] = [zero; N];
    for i in 0..A {
        let yy = y0 + i as isize;
        if yy < 0 || yy >= g.h as isize {
            continue;
        }
        for j in 0..A {
            let xx = x0 + j as isize;
            if xx < 0 || xx >= g.w as isize {
                continue;
            }
            d[i * A + j] = &x[((img * g.h + yy as usize) * g.w + xx as usize) * c..][..c];
        }
    }
    d
}

/// Where tile `tile`'s `M x M` output pixels start (`NM = M * M` offsets,
/// row-major, those outside the image left 0), and how many rows and columns
/// are inside the image.
#[inline(always)]
fn out_pixels<const M: usize, const NM: usize>(
    g: &ConvGeom,
    k: usize,
    tile: usize,
) -> ([usize; NM], usize, usize) {
    let (th, tw) = (g.oh.div_ceil(M), g.ow.div_ceil(M));
    let img = tile / (th * tw);
    let (ty, tx) = ((tile / tw) % th, tile % tw);
    let rows = (g.oh - M * ty).min(M);
    let cols = (g.ow - M * tx).min(M);
    let mut dst = [0usize; NM];
    for a in 0..rows {
        for b in 0..cols {
            dst[a * M + b] = ((img * g.oh + M * ty + a) * g.ow + M * tx + b) * k;
        }
    }
    (dst, rows, cols)
}

#[cfg(test)]
mod tests;
