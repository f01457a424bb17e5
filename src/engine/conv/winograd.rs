//! Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (Lavin and Gray, 2016):
//! each 4x4 input tile becomes 16 transformed values per channel, the 16
//! "element-wise" products over channels are 16 GEMMs `V[xi] (tiles x C) *
//! U[xi] (C x K)` on the engine's micro-kernels, and the output transform
//! turns 16 values per output channel into a 2x2 output tile, with the fused
//! epilogue (bias, residual, activation) applied as it is stored. 2.25x fewer
//! multiplications than direct convolution, at a small loss of precision.
//!
//! Tiles are processed in blocks sized so that a block's transformed input
//! and products stay near the L2 cache; each thread takes a contiguous range
//! of tiles with its own single-threaded GEMM and scratch.

use super::ConvGeom;
use crate::engine::gemm::{Activation, BOperand, Epilogue, Gemm, MatMut, MatRef, PackedB};
use crate::engine::graph::Conv;
use crate::engine::EngineError;

/// Whether F(2x2, 3x3) applies: 3x3 window, stride 1, no dilation, one group.
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

/// The 16 transformed filters `U[xi] = (G g G^T)[xi]` as row-major `C x K`
/// matrices, each output channel's weights scaled by `scale[k]` first.
pub fn filter_transform(conv: &Conv, scale: Option<&[f32]>) -> Vec<Vec<f32>> {
    let (c_in, k_out) = (conv.cin, conv.cout);
    let mut u = vec![vec![0.0f32; c_in * k_out]; 16];
    for k in 0..k_out {
        let s = scale.map_or(1.0, |s| s[k]) as f64;
        for c in 0..c_in {
            let g = |i: usize, j: usize| conv.weights[((k * c_in + c) * 3 + i) * 3 + j] as f64 * s;
            // G g: 4x3, with G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]].
            let col = |j: usize| {
                let (a, b, c) = (g(0, j), g(1, j), g(2, j));
                [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
            };
            let cols = [col(0), col(1), col(2)];
            let gg: [[f64; 3]; 4] = std::array::from_fn(|i| [cols[0][i], cols[1][i], cols[2][i]]);
            // (G g) G^T: 4x4.
            for (i, row) in gg.iter().enumerate() {
                let t = [
                    row[0],
                    0.5 * (row[0] + row[1] + row[2]),
                    0.5 * (row[0] - row[1] + row[2]),
                    row[2],
                ];
                for (j, v) in t.iter().enumerate() {
                    u[i * 4 + j][c * k_out + k] = *v as f32;
                }
            }
        }
    }
    u
}

/// Tiles per block: the block's 16 x (C + K) transformed values near 256 KiB,
/// a multiple of the kernel's row count, at least four row panels.
pub fn block_tiles(c_in: usize, k_out: usize, mr: usize) -> usize {
    let budget = 64 * 1024 / (16 * (c_in + k_out)).max(1);
    (budget / mr).clamp(4, 40) * mr
}

/// Scratch floats one worker needs for a layer.
pub fn scratch_len(c_in: usize, k_out: usize, mr: usize) -> usize {
    16 * block_tiles(c_in, k_out, mr) * (c_in + k_out) + c_in
}

/// A thread's single-threaded GEMM and scratch.
pub struct Worker {
    pub gemm: Gemm,
    pub buf: Vec<f32>,
}

/// Output pointer shared by the workers, each writing only its own tiles.
#[derive(Clone, Copy)]
pub struct OutPtr(pub *mut f32);
// SAFETY: workers write disjoint output tiles (disjoint tile ranges), so no
// two threads touch the same element; the buffer outlives the parallel loop.
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
pub fn tiles(g: &ConvGeom) -> (usize, usize, usize) {
    let (th, tw) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
    (th, tw, g.n * th * tw)
}

/// Computes output tiles `range` of the layer: input transform, 16 GEMMs and
/// output transform, block by block.
#[allow(clippy::too_many_arguments)]
pub fn run_tiles(
    w: &mut Worker,
    x: &[f32],
    g: &ConvGeom,
    packed: &[PackedB],
    k_out: usize,
    tail: &Tail<'_>,
    out: OutPtr,
    range: std::ops::Range<usize>,
) -> Result<(), EngineError> {
    let c_in = g.c;
    let mr = w.gemm.kernel().mr;
    let tb = block_tiles(c_in, k_out, mr);
    let (v_len, m_len) = (16 * tb * c_in, 16 * tb * k_out);
    if w.buf.len() < v_len + m_len + c_in {
        return Err(EngineError::Shape(format!(
            "winograd scratch holds {} values, needs {}",
            w.buf.len(),
            v_len + m_len + c_in
        )));
    }
    let (v, rest) = w.buf.split_at_mut(v_len);
    let (m, zero) = rest.split_at_mut(m_len);
    let zero = &mut zero[..c_in];
    zero.fill(0.0);
    // Detected once per call; the block loops are compiled twice.
    #[cfg(target_arch = "x86_64")]
    let avx2 =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    let mut start = range.start;
    while start < range.end {
        let n = tb.min(range.end - start);
        if avx2 {
            // SAFETY: AVX2 and FMA were detected at run time.
            unsafe { input_block_avx2(x, g, start, n, zero, v) };
        } else {
            input_block(x, g, start, n, zero, v);
        }
        for (xi, b) in packed.iter().enumerate() {
            let a = MatRef::row_major(&v[xi * n * c_in..][..n * c_in], n, c_in)?;
            let mut cm = MatMut::row_major(&mut m[xi * n * k_out..][..n * k_out], n, k_out)?;
            w.gemm.run(
                1.0,
                &a,
                BOperand::Packed(b),
                0.0,
                &mut cm,
                &Epilogue::none(),
            )?;
        }
        // SAFETY: this worker owns output tiles `range` (see OutPtr); AVX2
        // and FMA were detected at run time where they are used.
        unsafe {
            if avx2 {
                output_block_avx2(m, g, k_out, start, n, tail, out);
            } else {
                output_block(m, g, k_out, start, n, tail, out);
            }
        }
        start += n;
    }
    Ok(())
}

/// Input transform of tiles `start..start + n` into the block's `v`
/// (inlined so the AVX2 copy vectorizes with 8 lanes).
#[inline(always)]
fn input_block(x: &[f32], g: &ConvGeom, start: usize, n: usize, zero: &[f32], v: &mut [f32]) {
    for t in 0..n {
        input_tile(x, g, start + t, zero, v, n, t);
    }
}

/// [`input_block`] compiled for AVX2, so the channel loops use 8 lanes.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_block_avx2(
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    input_block(x, g, start, n, zero, v)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn input_block_avx2(
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    input_block(x, g, start, n, zero, v)
}

/// Transforms input tile `tile` into `v[xi][t][..c]` (block of `n` tiles).
#[inline(always)]
fn input_tile(
    x: &[f32],
    g: &ConvGeom,
    tile: usize,
    zero: &[f32],
    v: &mut [f32],
    n: usize,
    t: usize,
) {
    let (th, tw, _) = tiles(g);
    let img = tile / (th * tw);
    let (ty, tx) = ((tile / tw) % th, tile % tw);
    let c = g.c;
    let y0 = (2 * ty) as isize - g.win.pad_top as isize;
    let x0 = (2 * tx) as isize - g.win.pad_left as isize;
    let mut d: [&[f32]; 16] = [zero; 16];
    for i in 0..4 {
        let yy = y0 + i as isize;
        if yy < 0 || yy >= g.h as isize {
            continue;
        }
        for j in 0..4 {
            let xx = x0 + j as isize;
            if xx < 0 || xx >= g.w as isize {
                continue;
            }
            d[i * 4 + j] = &x[((img * g.h + yy as usize) * g.w + xx as usize) * c..][..c];
        }
    }
    transform_input_body(&d, &mut v[t * c..], n * c, c);
}

/// `V = B^T d B` per channel, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]];
/// V[xi] is written at `v[xi * stride ..][..c]`.
#[inline(always)]
fn transform_input_body(d: &[&[f32]; 16], v: &mut [f32], stride: usize, c: usize) {
    for ch in 0..c {
        let e = |i: usize| d[i][ch];
        // Rows: B^T d.
        let mut r = [0.0f32; 16];
        for j in 0..4 {
            let (d0, d1, d2, d3) = (e(j), e(4 + j), e(8 + j), e(12 + j));
            r[j] = d0 - d2;
            r[4 + j] = d1 + d2;
            r[8 + j] = d2 - d1;
            r[12 + j] = d1 - d3;
        }
        // Columns: (B^T d) B.
        for i in 0..4 {
            let (a0, a1, a2, a3) = (r[i * 4], r[i * 4 + 1], r[i * 4 + 2], r[i * 4 + 3]);
            v[(i * 4) * stride + ch] = a0 - a2;
            v[(i * 4 + 1) * stride + ch] = a1 + a2;
            v[(i * 4 + 2) * stride + ch] = a2 - a1;
            v[(i * 4 + 3) * stride + ch] = a1 - a3;
        }
    }
}

/// Output transform of tiles `start..start + n` of the block's `m`.
///
/// # Safety
/// Those tiles' output pixels must be written by no other thread.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn output_block(
    m: &[f32],
    g: &ConvGeom,
    k: usize,
    start: usize,
    n: usize,
    tail: &Tail<'_>,
    out: OutPtr,
) {
    for t in 0..n {
        // SAFETY: the caller's contract covers every tile of the block.
        unsafe { output_tile(m, g, k, start + t, n, t, tail, out) };
    }
}

/// [`output_block`] compiled for AVX2.
///
/// # Safety
/// As [`output_block`], and the CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn output_block_avx2(
    m: &[f32],
    g: &ConvGeom,
    k: usize,
    start: usize,
    n: usize,
    tail: &Tail<'_>,
    out: OutPtr,
) {
    // SAFETY: the caller's contract.
    unsafe { output_block(m, g, k, start, n, tail, out) }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn output_block_avx2(
    m: &[f32],
    g: &ConvGeom,
    k: usize,
    start: usize,
    n: usize,
    tail: &Tail<'_>,
    out: OutPtr,
) {
    // SAFETY: the caller's contract.
    unsafe { output_block(m, g, k, start, n, tail, out) }
}

/// `Y = A^T M A` for tile `tile` (row `t` of a block of `n`), with the tail,
/// stored to the output pixels inside the image.
///
/// # Safety
/// This tile's output pixels must be written by no other thread.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn output_tile(
    m: &[f32],
    g: &ConvGeom,
    k: usize,
    tile: usize,
    n: usize,
    t: usize,
    tail: &Tail<'_>,
    out: OutPtr,
) {
    let (th, tw, _) = tiles(g);
    let img = tile / (th * tw);
    let (ty, tx) = ((tile / tw) % th, tile % tw);
    let rows = (g.oh - 2 * ty).min(2);
    let cols = (g.ow - 2 * tx).min(2);
    let mut dst = [0usize; 4];
    for a in 0..rows {
        for b in 0..cols {
            dst[a * 2 + b] = ((img * g.oh + 2 * ty + a) * g.ow + 2 * tx + b) * k;
        }
    }
    // SAFETY: `dst` holds this tile's own pixels, per the caller's contract.
    unsafe { output_body(m, t * k, n * k, k, rows, cols, &dst, tail, out) }
}

/// # Safety
/// `out.0 + dst[p] .. + k` must be valid, writable and written by no other thread.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn output_body(
    m: &[f32],
    base: usize,
    stride: usize,
    k: usize,
    rows: usize,
    cols: usize,
    dst: &[usize; 4],
    tail: &Tail<'_>,
    out: OutPtr,
) {
    // SAFETY: the caller guarantees these ranges are this tile's own pixels.
    let px: [&mut [f32]; 4] = unsafe {
        [
            std::slice::from_raw_parts_mut(out.0.add(dst[0]), k),
            std::slice::from_raw_parts_mut(out.0.add(dst[1]), if cols > 1 { k } else { 0 }),
            std::slice::from_raw_parts_mut(out.0.add(dst[2]), if rows > 1 { k } else { 0 }),
            std::slice::from_raw_parts_mut(
                out.0.add(dst[3]),
                if rows > 1 && cols > 1 { k } else { 0 },
            ),
        ]
    };
    let [p0, p1, p2, p3] = px;
    let mv = |xi: usize, o: usize| m[xi * stride + base + o];
    for o in 0..k {
        // A^T = [[1,1,1,0],[0,1,-1,-1]]: rows then columns.
        let col = |j: usize| {
            let (a0, a1, a2, a3) = (mv(j, o), mv(4 + j, o), mv(8 + j, o), mv(12 + j, o));
            (a0 + a1 + a2, a1 - a2 - a3)
        };
        let t = [col(0), col(1), col(2), col(3)];
        let s = [t.map(|c| c.0), t.map(|c| c.1)];
        let b = tail.bias.map_or(0.0, |b| b[o]);
        let y = [
            s[0][0] + s[0][1] + s[0][2] + b,
            s[0][1] - s[0][2] - s[0][3] + b,
            s[1][0] + s[1][1] + s[1][2] + b,
            s[1][1] - s[1][2] - s[1][3] + b,
        ];
        let fin = |p: usize, v: f32| {
            let r = tail.residual.map_or(0.0, |r| r[dst[p] + o]);
            tail.act.apply(v + r)
        };
        p0[o] = fin(0, y[0]);
        if cols > 1 {
            p1[o] = fin(1, y[1]);
        }
        if rows > 1 {
            p2[o] = fin(2, y[2]);
            if cols > 1 {
                p3[o] = fin(3, y[3]);
            }
        }
    }
}
