//! F(2x2, 3x3): 4x4 input tiles, 16 transformed points, 2x2 output tiles.
//! The filter transform (once, at build time) and the scalar transforms,
//! per channel: the whole layer on CPUs without SIMD code here, and the
//! channels left over by the vector code in `avx2` and `neon`.

use super::{gather, out_pixels, OutPtr, Tail};
use crate::engine::conv::ConvGeom;
use crate::engine::graph::Conv;
use std::ops::Range;

/// The 16 transformed filters `U[xi] = (G g G^T)[xi]` as row-major `C x K`
/// matrices, computed in f64, each output channel scaled by `scale[k]` first.
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

/// Input transform of tiles `start..start + n` into the block's `v`.
pub fn input_block(x: &[f32], g: &ConvGeom, start: usize, n: usize, zero: &[f32], v: &mut [f32]) {
    let c = g.c;
    for t in 0..n {
        let d = gather::<4, 16>(x, g, start + t, zero);
        input_tile(&d, &mut v[t * c..], n * c, 0..c);
    }
}

/// `V = B^T d B` for channels `chs`, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]];
/// V[xi] of channel `ch` is written at `v[xi * stride + ch]`.
#[inline(always)]
pub fn input_tile(d: &[&[f32]; 16], v: &mut [f32], stride: usize, chs: Range<usize>) {
    for ch in chs {
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

/// Output transform of tiles `start..start + n` of the block's `m`, output
/// channels `ks` (of `k`).
///
/// # Safety
/// Those tiles' output pixels must be written by no other thread, and `out`
/// must hold the whole output.
pub unsafe fn output_block(
    m: &[f32],
    g: &ConvGeom,
    k: usize,
    ks: Range<usize>,
    start: usize,
    n: usize,
    tail: &Tail<'_>,
    out: OutPtr,
) {
    for t in 0..n {
        let (dst, rows, cols) = out_pixels::<2, 4>(g, k, start + t);
        // SAFETY: `dst` holds this tile's own pixels, per the caller's contract.
        unsafe { output_tile(m, t * k, n * k, ks.clone(), rows, cols, &dst, tail, out) }
    }
}

/// `Y = A^T M A` for channels `ks` of one tile (products at
/// `m[xi * stride + base + o]`), with the tail, stored to the output pixels
/// inside the image.
///
/// # Safety
/// `out.ptr + dst[p] .. + ks.end` must be valid, writable and written by no
/// other thread.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn output_tile(
    m: &[f32],
    base: usize,
    stride: usize,
    ks: Range<usize>,
    rows: usize,
    cols: usize,
    dst: &[usize; 4],
    tail: &Tail<'_>,
    out: OutPtr,
) {
    let k = ks.end;
    // SAFETY: the caller guarantees these ranges are this tile's own pixels.
    let px: [&mut [f32]; 4] = unsafe {
        [
            std::slice::from_raw_parts_mut(out.ptr.add(dst[0]), k),
            std::slice::from_raw_parts_mut(out.ptr.add(dst[1]), if cols > 1 { k } else { 0 }),
            std::slice::from_raw_parts_mut(out.ptr.add(dst[2]), if rows > 1 { k } else { 0 }),
            std::slice::from_raw_parts_mut(
                out.ptr.add(dst[3]),
                if rows > 1 && cols > 1 { k } else { 0 },
            ),
        ]
    };
    let [p0, p1, p2, p3] = px;
    let mv = |xi: usize, o: usize| m[xi * stride + base + o];
    for o in ks {
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
