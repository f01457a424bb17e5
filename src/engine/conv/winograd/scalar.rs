//! F(4x4, 3x3) transforms one channel at a time: the fallback where there is
//! no vector code, and the channel tail (count not a multiple of the vector
//! width) of the vector code.

use super::{gather, out_pixels, OutPtr, Tail};
use crate::engine::conv::ConvGeom;
use std::ops::Range;

/// One column (or row) of `B^T d`; see `f43` for the matrix.
#[inline(always)]
fn bt(d: [f32; 6]) -> [f32; 6] {
    let t0 = d[4] - 4.0 * d[2];
    let t1 = d[3] - 4.0 * d[1];
    let t2 = d[4] - d[2];
    let t3 = 2.0 * (d[3] - d[1]);
    [
        4.0 * d[0] - 5.0 * d[2] + d[4],
        t0 + t1,
        t0 - t1,
        t2 + t3,
        t2 - t3,
        4.0 * d[1] - 5.0 * d[3] + d[5],
    ]
}

/// One column (or row) of `A^T M`.
#[inline(always)]
fn at(m: [f32; 6]) -> [f32; 4] {
    let (s1, s2) = (m[1] + m[2], m[3] + m[4]);
    let (d1, d2) = (m[1] - m[2], m[3] - m[4]);
    [
        m[0] + s1 + s2,
        d1 + 2.0 * d2,
        s1 + 4.0 * s2,
        d1 + 8.0 * d2 + m[5],
    ]
}

/// Input transform of tiles `start..start + n` into the block's `v`.
pub fn input_block_f43(
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    let c = g.c;
    for t in 0..n {
        let d = gather::<6, 36>(x, g, start + t, zero);
        input_tile(&d, &mut v[t * c..], n * c, 0..c);
    }
}

/// `V = B^T d B` for channels `chs` of one tile; V[xi] goes to
/// `v[xi * stride + ch]`.
#[inline(always)]
pub fn input_tile(d: &[&[f32]; 36], v: &mut [f32], stride: usize, chs: Range<usize>) {
    for ch in chs {
        let mut r = [[0.0f32; 6]; 6];
        for j in 0..6 {
            let col = bt(std::array::from_fn(|i| d[i * 6 + j][ch]));
            for (i, ri) in r.iter_mut().enumerate() {
                ri[j] = col[i];
            }
        }
        for (i, ri) in r.iter().enumerate() {
            for (j, val) in bt(*ri).into_iter().enumerate() {
                v[(i * 6 + j) * stride + ch] = val;
            }
        }
    }
}

/// Output transform of tiles `start..start + n` of the block's `m`, output
/// channels `ks` (of `k`).
///
/// # Safety
/// Those tiles' output pixels must be written by no other thread, and `out`
/// must hold the whole output.
pub unsafe fn output_block_f43(
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
        let (dst, rows, cols) = out_pixels::<4, 16>(g, k, start + t);
        // SAFETY: `dst` holds this tile's own pixels, per the caller's contract.
        unsafe { output_tile(m, t * k, n * k, ks.clone(), rows, cols, &dst, tail, out) }
    }
}

/// `Y = A^T M A` for channels `ks` of one tile (products at
/// `m[xi * stride + base + o]`), plus bias and residual, through the
/// activation, stored to the `rows x cols` pixels inside the image.
///
/// # Safety
/// `out.ptr + dst[p] + o` for those pixels and `o` in `ks` must be valid and
/// written by no other thread.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn output_tile(
    m: &[f32],
    base: usize,
    stride: usize,
    ks: Range<usize>,
    rows: usize,
    cols: usize,
    dst: &[usize; 16],
    tail: &Tail<'_>,
    out: OutPtr,
) {
    for o in ks {
        let mut s = [[0.0f32; 6]; 4];
        for j in 0..6 {
            let col = at(std::array::from_fn(|i| m[(i * 6 + j) * stride + base + o]));
            for (a, sa) in s.iter_mut().enumerate() {
                sa[j] = col[a];
            }
        }
        let b = tail.bias.map_or(0.0, |b| b[o]);
        for (a, sa) in s.iter().enumerate().take(rows) {
            let y = at(*sa);
            for (c, yc) in y.into_iter().enumerate().take(cols) {
                let p = dst[a * 4 + c] + o;
                let r = tail.residual.map_or(0.0, |r| r[p]);
                // SAFETY: pixel `p` is this tile's own, per the caller's contract.
                unsafe { *out.ptr.add(p) = tail.act.apply(yc + b + r) };
            }
        }
    }
}
