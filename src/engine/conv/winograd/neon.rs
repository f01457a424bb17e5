//! F(4x4, 3x3) and F(2x2, 3x3) transforms with NEON intrinsics, 4 channels per
//! `float32x4_t`; the remaining channels go through the scalar code. NEON is
//! part of the aarch64 baseline, so no run-time detection is needed; the
//! functions still name it in `#[target_feature]`, which Rust requires for
//! the intrinsics to be callable.

use super::{f23, gather, out_pixels, scalar, OutPtr, Tail};
use crate::engine::conv::ConvGeom;
use std::arch::aarch64::*;

/// One column (or row) of `B^T d` for 4 channels; see `f43` for the matrix.
#[inline]
#[target_feature(enable = "neon")]
fn bt(d: [float32x4_t; 6]) -> [float32x4_t; 6] {
    let (four, five) = (vdupq_n_f32(4.0), vdupq_n_f32(5.0));
    let t0 = vfmsq_f32(d[4], four, d[2]);
    let t1 = vfmsq_f32(d[3], four, d[1]);
    let t2 = vsubq_f32(d[4], d[2]);
    let t3 = vmulq_f32(vdupq_n_f32(2.0), vsubq_f32(d[3], d[1]));
    [
        vfmaq_f32(vfmsq_f32(d[4], five, d[2]), four, d[0]),
        vaddq_f32(t0, t1),
        vsubq_f32(t0, t1),
        vaddq_f32(t2, t3),
        vsubq_f32(t2, t3),
        vfmaq_f32(vfmsq_f32(d[5], five, d[3]), four, d[1]),
    ]
}

/// One column (or row) of `A^T M` for 4 channels.
#[inline]
#[target_feature(enable = "neon")]
fn at(m: [float32x4_t; 6]) -> [float32x4_t; 4] {
    let (s1, s2) = (vaddq_f32(m[1], m[2]), vaddq_f32(m[3], m[4]));
    let (d1, d2) = (vsubq_f32(m[1], m[2]), vsubq_f32(m[3], m[4]));
    [
        vaddq_f32(vaddq_f32(m[0], s1), s2),
        vfmaq_f32(d1, vdupq_n_f32(2.0), d2),
        vfmaq_f32(s1, vdupq_n_f32(4.0), s2),
        vaddq_f32(vfmaq_f32(d1, vdupq_n_f32(8.0), d2), m[5]),
    ]
}

/// Input transform of tiles `start..start + n` into the block's `v`
/// (`V[xi]` of tile `t` at `v[(xi * n + t) * c ..]`).
#[target_feature(enable = "neon")]
pub fn input_block_f43(
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    let c = g.c;
    let c4 = c - c % 4;
    for t in 0..n {
        let d = gather::<6, 36>(x, g, start + t, zero);
        let vt = &mut v[t * c..];
        input_tile(&d, vt, n * c, c4);
        scalar::input_tile(&d, vt, n * c, c4..c);
    }
}

/// `V = B^T d B` for channels `0..c4` (a multiple of 4) of one tile.
#[inline]
#[target_feature(enable = "neon")]
fn input_tile(d: &[&[f32]; 36], v: &mut [f32], stride: usize, c4: usize) {
    // The loads and stores below stay inside these bounds.
    assert!(d.iter().all(|s| s.len() >= c4) && (c4 == 0 || v.len() >= 35 * stride + c4));
    let vp = v.as_mut_ptr();
    for ch in (0..c4).step_by(4) {
        let mut r = [[vdupq_n_f32(0.0); 6]; 6];
        for j in 0..6 {
            let mut col = [vdupq_n_f32(0.0); 6];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: `ch + 4 <= c4 <= d[_].len()`, asserted above.
                *ci = unsafe { vld1q_f32(d[i * 6 + j].as_ptr().add(ch)) };
            }
            for (ri, ti) in r.iter_mut().zip(bt(col)) {
                ri[j] = ti;
            }
        }
        for (i, ri) in r.iter().enumerate() {
            for (j, val) in bt(*ri).into_iter().enumerate() {
                // SAFETY: `(i * 6 + j) * stride + ch + 4 <= 35 * stride + c4 <= v.len()`.
                unsafe { vst1q_f32(vp.add((i * 6 + j) * stride + ch), val) };
            }
        }
    }
}

/// Output transform of tiles `start..start + n` of the block's products.
///
/// # Safety
/// Those tiles' output pixels must be written by no other thread; `out` and
/// the tail's residual must hold the whole output and its bias `k` values.
#[target_feature(enable = "neon")]
pub unsafe fn output_block_f43(
    m: &[f32],
    g: &ConvGeom,
    k: usize,
    start: usize,
    n: usize,
    tail: &Tail<'_>,
    out: OutPtr,
) {
    // The vector loads of `m` stay inside this bound.
    assert!(m.len() >= 36 * n * k);
    let k4 = k - k % 4;
    for t in 0..n {
        let (dst, rows, cols) = out_pixels::<4, 16>(g, k, start + t);
        // SAFETY: `dst` holds this tile's own pixels, per the caller's
        // contract; products of tile `t` end at `35 * n * k + (t + 1) * k`.
        unsafe {
            output_tile(m, t * k, n * k, k4, rows, cols, &dst, tail, out);
            scalar::output_tile(m, t * k, n * k, k4..k, rows, cols, &dst, tail, out);
        }
    }
}

/// `Y = A^T M A` for channels `0..k4` (a multiple of 4) of one tile, plus
/// bias and residual, through the activation, stored to the pixels inside
/// the image.
///
/// # Safety
/// `m` must hold `35 * stride + base + k4` values; `out.ptr + dst[p] + o`
/// (and the residual there, and the bias at `o`) for `o < k4` must be valid
/// and the pixels written by no other thread.
#[inline]
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_tile(
    m: &[f32],
    base: usize,
    stride: usize,
    k4: usize,
    rows: usize,
    cols: usize,
    dst: &[usize; 16],
    tail: &Tail<'_>,
    out: OutPtr,
) {
    let bounds = tail
        .bounds()
        .map(|(lo, hi)| (vdupq_n_f32(lo), vdupq_n_f32(hi)));
    let mp = m.as_ptr();
    for o in (0..k4).step_by(4) {
        let mut s = [[vdupq_n_f32(0.0); 6]; 4];
        for j in 0..6 {
            let mut col = [vdupq_n_f32(0.0); 6];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: inside `m`, per the caller's contract.
                *ci = unsafe { vld1q_f32(mp.add((i * 6 + j) * stride + base + o)) };
            }
            for (sa, ya) in s.iter_mut().zip(at(col)) {
                sa[j] = ya;
            }
        }
        let b = match tail.bias {
            // SAFETY: the bias holds `k >= o + 4` values (caller's contract).
            Some(b) => unsafe { vld1q_f32(b.as_ptr().add(o)) },
            None => vdupq_n_f32(0.0),
        };
        for (a, sa) in s.iter().enumerate().take(rows) {
            for (c, yc) in at(*sa).into_iter().enumerate().take(cols) {
                let p = dst[a * 4 + c] + o;
                let mut val = vaddq_f32(yc, b);
                if let Some(r) = tail.residual {
                    // SAFETY: the residual has the output's shape (caller's contract).
                    val = vaddq_f32(val, unsafe { vld1q_f32(r.as_ptr().add(p)) });
                }
                if let Some((lo, hi)) = bounds {
                    // The "nm" forms return the number when one side is NaN,
                    // like f32::max/min in `Activation::apply`.
                    val = vminnmq_f32(vmaxnmq_f32(val, lo), hi);
                }
                // SAFETY: pixel `p` is this tile's own (caller's contract).
                unsafe { vst1q_f32(out.ptr.add(p), val) };
            }
        }
    }
}

/// One column (or row) of `B^T d` for F(2x2, 3x3), 4 channels; see `f23`.
#[inline]
#[target_feature(enable = "neon")]
fn bt2(d: [float32x4_t; 4]) -> [float32x4_t; 4] {
    [
        vsubq_f32(d[0], d[2]),
        vaddq_f32(d[1], d[2]),
        vsubq_f32(d[2], d[1]),
        vsubq_f32(d[1], d[3]),
    ]
}

/// One column (or row) of `A^T M` for F(2x2, 3x3), 4 channels.
#[inline]
#[target_feature(enable = "neon")]
fn at2(m: [float32x4_t; 4]) -> [float32x4_t; 2] {
    [
        vaddq_f32(vaddq_f32(m[0], m[1]), m[2]),
        vsubq_f32(vsubq_f32(m[1], m[2]), m[3]),
    ]
}

/// F(2x2, 3x3) input transform of tiles `start..start + n` into the block's
/// `v` (`V[xi]` of tile `t` at `v[(xi * n + t) * c ..]`).
#[target_feature(enable = "neon")]
pub fn input_block_f23(
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    let c = g.c;
    let c4 = c - c % 4;
    for t in 0..n {
        let d = gather::<4, 16>(x, g, start + t, zero);
        let vt = &mut v[t * c..];
        input_tile_f23(&d, vt, n * c, c4);
        f23::input_tile(&d, vt, n * c, c4..c);
    }
}

/// F(2x2, 3x3) `V = B^T d B` for channels `0..c4` (a multiple of 4) of one tile.
#[inline]
#[target_feature(enable = "neon")]
fn input_tile_f23(d: &[&[f32]; 16], v: &mut [f32], stride: usize, c4: usize) {
    // The loads and stores below stay inside these bounds.
    assert!(d.iter().all(|s| s.len() >= c4) && (c4 == 0 || v.len() >= 15 * stride + c4));
    let vp = v.as_mut_ptr();
    for ch in (0..c4).step_by(4) {
        let mut r = [[vdupq_n_f32(0.0); 4]; 4];
        for j in 0..4 {
            let mut col = [vdupq_n_f32(0.0); 4];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: `ch + 4 <= c4 <= d[_].len()`, asserted above.
                *ci = unsafe { vld1q_f32(d[i * 4 + j].as_ptr().add(ch)) };
            }
            for (ri, ti) in r.iter_mut().zip(bt2(col)) {
                ri[j] = ti;
            }
        }
        for (i, ri) in r.iter().enumerate() {
            for (j, val) in bt2(*ri).into_iter().enumerate() {
                // SAFETY: `(i * 4 + j) * stride + ch + 4 <= 15 * stride + c4 <= v.len()`.
                unsafe { vst1q_f32(vp.add((i * 4 + j) * stride + ch), val) };
            }
        }
    }
}

/// F(2x2, 3x3) output transform of tiles `start..start + n` of the block's products.
///
/// # Safety
/// Those tiles' output pixels must be written by no other thread; `out`
/// and the tail's residual must hold the whole output and its bias `k` values.
#[target_feature(enable = "neon")]
pub unsafe fn output_block_f23(
    m: &[f32],
    g: &ConvGeom,
    k: usize,
    start: usize,
    n: usize,
    tail: &Tail<'_>,
    out: OutPtr,
) {
    // The vector loads of `m` stay inside this bound.
    assert!(m.len() >= 16 * n * k);
    let k4 = k - k % 4;
    for t in 0..n {
        let (dst, rows, cols) = out_pixels::<2, 4>(g, k, start + t);
        // SAFETY: `dst` holds this tile's own pixels, per the caller's
        // contract; products of tile `t` end at `15 * n * k + (t + 1) * k`.
        unsafe {
            output_tile_f23(m, t * k, n * k, k4, rows, cols, &dst, tail, out);
            f23::output_tile(m, t * k, n * k, k4..k, rows, cols, &dst, tail, out);
        }
    }
}

/// F(2x2, 3x3) `Y = A^T M A` for channels `0..k4` (a multiple of 4) of one
/// tile, plus bias and residual, through the activation, stored to the
/// pixels inside the image.
///
/// # Safety
/// `m` must hold `15 * stride + base + k4` values; `out.ptr + dst[p] + o`
/// (and the residual there, and the bias at `o`) for `o < k4` must be valid
/// and the pixels written by no other thread.
#[inline]
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_tile_f23(
    m: &[f32],
    base: usize,
    stride: usize,
    k4: usize,
    rows: usize,
    cols: usize,
    dst: &[usize; 4],
    tail: &Tail<'_>,
    out: OutPtr,
) {
    let bounds = tail
        .bounds()
        .map(|(lo, hi)| (vdupq_n_f32(lo), vdupq_n_f32(hi)));
    let mp = m.as_ptr();
    for o in (0..k4).step_by(4) {
        let mut s = [[vdupq_n_f32(0.0); 4]; 2];
        for j in 0..4 {
            let mut col = [vdupq_n_f32(0.0); 4];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: inside `m`, per the caller's contract.
                *ci = unsafe { vld1q_f32(mp.add((i * 4 + j) * stride + base + o)) };
            }
            for (sa, ya) in s.iter_mut().zip(at2(col)) {
                sa[j] = ya;
            }
        }
        let b = match tail.bias {
            // SAFETY: the bias holds `k >= o + 4` values (caller's contract).
            Some(b) => unsafe { vld1q_f32(b.as_ptr().add(o)) },
            None => vdupq_n_f32(0.0),
        };
        for (a, sa) in s.iter().enumerate().take(rows) {
            for (c, yc) in at2(*sa).into_iter().enumerate().take(cols) {
                let p = dst[a * 2 + c] + o;
                let mut val = vaddq_f32(yc, b);
                if let Some(r) = tail.residual {
                    // SAFETY: the residual has the output's shape (caller's contract).
                    val = vaddq_f32(val, unsafe { vld1q_f32(r.as_ptr().add(p)) });
                }
                if let Some((lo, hi)) = bounds {
                    // The "nm" forms return the number when one side is NaN,
                    // like f32::max/min in `Activation::apply`.
                    val = vminnmq_f32(vmaxnmq_f32(val, lo), hi);
                }
                // SAFETY: pixel `p` is this tile's own (caller's contract).
                unsafe { vst1q_f32(out.ptr.add(p), val) };
            }
        }
    }
}
