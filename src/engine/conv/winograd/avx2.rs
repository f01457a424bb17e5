//! F(4x4, 3x3) and F(2x2, 3x3) transforms with AVX2 and FMA intrinsics, 8
//! channels per `__m256`; the remaining channels go through the scalar code.

use super::{f23, gather, out_pixels, scalar, OutPtr, Tail};
use crate::engine::conv::ConvGeom;
use std::arch::x86_64::*;

/// One column (or row) of `B^T d` for 8 channels; see `f43` for the matrix.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn bt(d: [__m256; 6]) -> [__m256; 6] {
    let (four, five) = (_mm256_set1_ps(4.0), _mm256_set1_ps(5.0));
    let t0 = _mm256_fnmadd_ps(four, d[2], d[4]);
    let t1 = _mm256_fnmadd_ps(four, d[1], d[3]);
    let t2 = _mm256_sub_ps(d[4], d[2]);
    let t3 = _mm256_mul_ps(_mm256_set1_ps(2.0), _mm256_sub_ps(d[3], d[1]));
    [
        _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4])),
        _mm256_add_ps(t0, t1),
        _mm256_sub_ps(t0, t1),
        _mm256_add_ps(t2, t3),
        _mm256_sub_ps(t2, t3),
        _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5])),
    ]
}

/// One column (or row) of `A^T M` for 8 channels.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn at(m: [__m256; 6]) -> [__m256; 4] {
    let (s1, s2) = (_mm256_add_ps(m[1], m[2]), _mm256_add_ps(m[3], m[4]));
    let (d1, d2) = (_mm256_sub_ps(m[1], m[2]), _mm256_sub_ps(m[3], m[4]));
    [
        _mm256_add_ps(_mm256_add_ps(m[0], s1), s2),
        _mm256_fmadd_ps(_mm256_set1_ps(2.0), d2, d1),
        _mm256_fmadd_ps(_mm256_set1_ps(4.0), s2, s1),
        _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0), d2, d1), m[5]),
    ]
}

/// Input transform of tiles `start..start + n` into the block's `v`
/// (`V[xi]` of tile `t` at `v[(xi * n + t) * c ..]`).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn input_block_f43(
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    let c = g.c;
    let c8 = c - c % 8;
    for t in 0..n {
        let d = gather::<6, 36>(x, g, start + t, zero);
        let vt = &mut v[t * c..];
        input_tile(&d, vt, n * c, c8);
        scalar::input_tile(&d, vt, n * c, c8..c);
    }
}

/// `V = B^T d B` for channels `0..c8` (a multiple of 8) of one tile.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn input_tile(d: &[&[f32]; 36], v: &mut [f32], stride: usize, c8: usize) {
    // The loads and stores below stay inside these bounds.
    assert!(d.iter().all(|s| s.len() >= c8) && (c8 == 0 || v.len() >= 35 * stride + c8));
    let vp = v.as_mut_ptr();
    for ch in (0..c8).step_by(8) {
        let mut r = [[_mm256_setzero_ps(); 6]; 6];
        for j in 0..6 {
            let mut col = [_mm256_setzero_ps(); 6];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: `ch + 8 <= c8 <= d[_].len()`, asserted above.
                *ci = unsafe { _mm256_loadu_ps(d[i * 6 + j].as_ptr().add(ch)) };
            }
            for (ri, ti) in r.iter_mut().zip(bt(col)) {
                ri[j] = ti;
            }
        }
        for (i, ri) in r.iter().enumerate() {
            for (j, val) in bt(*ri).into_iter().enumerate() {
                // SAFETY: `(i * 6 + j) * stride + ch + 8 <= 35 * stride + c8 <= v.len()`.
                unsafe { _mm256_storeu_ps(vp.add((i * 6 + j) * stride + ch), val) };
            }
        }
    }
}

/// Output transform of tiles `start..start + n` of the block's products.
///
/// # Safety
/// The CPU must support AVX2 and FMA; those tiles' output pixels must be
/// written by no other thread; `out` and the tail's residual must hold the
/// whole output and its bias `k` values.
#[target_feature(enable = "avx2,fma")]
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
    let k8 = k - k % 8;
    for t in 0..n {
        let (dst, rows, cols) = out_pixels::<4, 16>(g, k, start + t);
        // SAFETY: `dst` holds this tile's own pixels, per the caller's
        // contract; products of tile `t` end at `35 * n * k + (t + 1) * k`.
        unsafe {
            output_tile(m, t * k, n * k, k8, rows, cols, &dst, tail, out);
            scalar::output_tile(m, t * k, n * k, k8..k, rows, cols, &dst, tail, out);
        }
    }
}

/// `Y = A^T M A` for channels `0..k8` (a multiple of 8) of one tile, plus
/// bias and residual, through the activation, stored to the pixels inside
/// the image.
///
/// # Safety
/// `m` must hold `35 * stride + base + k8` values; `out.ptr + dst[p] + o`
/// (and the residual there, and the bias at `o`) for `o < k8` must be valid
/// and the pixels written by no other thread.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_tile(
    m: &[f32],
    base: usize,
    stride: usize,
    k8: usize,
    rows: usize,
    cols: usize,
    dst: &[usize; 16],
    tail: &Tail<'_>,
    out: OutPtr,
) {
    let bounds = tail
        .bounds()
        .map(|(lo, hi)| (_mm256_set1_ps(lo), _mm256_set1_ps(hi)));
    let mp = m.as_ptr();
    for o in (0..k8).step_by(8) {
        let mut s = [[_mm256_setzero_ps(); 6]; 4];
        for j in 0..6 {
            let mut col = [_mm256_setzero_ps(); 6];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: inside `m`, per the caller's contract.
                *ci = unsafe { _mm256_loadu_ps(mp.add((i * 6 + j) * stride + base + o)) };
            }
            for (sa, ya) in s.iter_mut().zip(at(col)) {
                sa[j] = ya;
            }
        }
        let b = match tail.bias {
            // SAFETY: the bias holds `k >= o + 8` values (caller's contract).
            Some(b) => unsafe { _mm256_loadu_ps(b.as_ptr().add(o)) },
            None => _mm256_setzero_ps(),
        };
        for (a, sa) in s.iter().enumerate().take(rows) {
            for (c, yc) in at(*sa).into_iter().enumerate().take(cols) {
                let p = dst[a * 4 + c] + o;
                let mut val = _mm256_add_ps(yc, b);
                if let Some(r) = tail.residual {
                    // SAFETY: the residual has the output's shape (caller's contract).
                    val = _mm256_add_ps(val, unsafe { _mm256_loadu_ps(r.as_ptr().add(p)) });
                }
                if let Some((lo, hi)) = bounds {
                    // max first, then min: `Activation::apply`'s order.
                    val = _mm256_min_ps(_mm256_max_ps(val, lo), hi);
                }
                // SAFETY: pixel `p` is this tile's own (caller's contract).
                unsafe { _mm256_storeu_ps(out.ptr.add(p), val) };
            }
        }
    }
}

/// One column (or row) of `B^T d` for F(2x2, 3x3), 8 channels; see `f23`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn bt2(d: [__m256; 4]) -> [__m256; 4] {
    [
        _mm256_sub_ps(d[0], d[2]),
        _mm256_add_ps(d[1], d[2]),
        _mm256_sub_ps(d[2], d[1]),
        _mm256_sub_ps(d[1], d[3]),
    ]
}

/// One column (or row) of `A^T M` for F(2x2, 3x3), 8 channels.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn at2(m: [__m256; 4]) -> [__m256; 2] {
    [
        _mm256_add_ps(_mm256_add_ps(m[0], m[1]), m[2]),
        _mm256_sub_ps(_mm256_sub_ps(m[1], m[2]), m[3]),
    ]
}

/// F(2x2, 3x3) input transform of tiles `start..start + n` into the block's
/// `v` (`V[xi]` of tile `t` at `v[(xi * n + t) * c ..]`).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn input_block_f23(
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    let c = g.c;
    let c8 = c - c % 8;
    for t in 0..n {
        let d = gather::<4, 16>(x, g, start + t, zero);
        let vt = &mut v[t * c..];
        input_tile_f23(&d, vt, n * c, c8);
        f23::input_tile(&d, vt, n * c, c8..c);
    }
}

/// F(2x2, 3x3) `V = B^T d B` for channels `0..c8` (a multiple of 8) of one tile.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn input_tile_f23(d: &[&[f32]; 16], v: &mut [f32], stride: usize, c8: usize) {
    // The loads and stores below stay inside these bounds.
    assert!(d.iter().all(|s| s.len() >= c8) && (c8 == 0 || v.len() >= 15 * stride + c8));
    let vp = v.as_mut_ptr();
    for ch in (0..c8).step_by(8) {
        let mut r = [[_mm256_setzero_ps(); 4]; 4];
        for j in 0..4 {
            let mut col = [_mm256_setzero_ps(); 4];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: `ch + 8 <= c8 <= d[_].len()`, asserted above.
                *ci = unsafe { _mm256_loadu_ps(d[i * 4 + j].as_ptr().add(ch)) };
            }
            for (ri, ti) in r.iter_mut().zip(bt2(col)) {
                ri[j] = ti;
            }
        }
        for (i, ri) in r.iter().enumerate() {
            for (j, val) in bt2(*ri).into_iter().enumerate() {
                // SAFETY: `(i * 4 + j) * stride + ch + 8 <= 15 * stride + c8 <= v.len()`.
                unsafe { _mm256_storeu_ps(vp.add((i * 4 + j) * stride + ch), val) };
            }
        }
    }
}

/// F(2x2, 3x3) output transform of tiles `start..start + n` of the block's products.
///
/// # Safety
/// The CPU must support AVX2 and FMA; those tiles' output pixels must be written by no other thread; `out`
/// and the tail's residual must hold the whole output and its bias `k` values.
#[target_feature(enable = "avx2,fma")]
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
    let k8 = k - k % 8;
    for t in 0..n {
        let (dst, rows, cols) = out_pixels::<2, 4>(g, k, start + t);
        // SAFETY: `dst` holds this tile's own pixels, per the caller's
        // contract; products of tile `t` end at `15 * n * k + (t + 1) * k`.
        unsafe {
            output_tile_f23(m, t * k, n * k, k8, rows, cols, &dst, tail, out);
            f23::output_tile(m, t * k, n * k, k8..k, rows, cols, &dst, tail, out);
        }
    }
}

/// F(2x2, 3x3) `Y = A^T M A` for channels `0..k8` (a multiple of 8) of one
/// tile, plus bias and residual, through the activation, stored to the
/// pixels inside the image.
///
/// # Safety
/// `m` must hold `15 * stride + base + k8` values; `out.ptr + dst[p] + o`
/// (and the residual there, and the bias at `o`) for `o < k8` must be valid
/// and the pixels written by no other thread.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_tile_f23(
    m: &[f32],
    base: usize,
    stride: usize,
    k8: usize,
    rows: usize,
    cols: usize,
    dst: &[usize; 4],
    tail: &Tail<'_>,
    out: OutPtr,
) {
    let bounds = tail
        .bounds()
        .map(|(lo, hi)| (_mm256_set1_ps(lo), _mm256_set1_ps(hi)));
    let mp = m.as_ptr();
    for o in (0..k8).step_by(8) {
        let mut s = [[_mm256_setzero_ps(); 4]; 2];
        for j in 0..4 {
            let mut col = [_mm256_setzero_ps(); 4];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: inside `m`, per the caller's contract.
                *ci = unsafe { _mm256_loadu_ps(mp.add((i * 4 + j) * stride + base + o)) };
            }
            for (sa, ya) in s.iter_mut().zip(at2(col)) {
                sa[j] = ya;
            }
        }
        let b = match tail.bias {
            // SAFETY: the bias holds `k >= o + 8` values (caller's contract).
            Some(b) => unsafe { _mm256_loadu_ps(b.as_ptr().add(o)) },
            None => _mm256_setzero_ps(),
        };
        for (a, sa) in s.iter().enumerate().take(rows) {
            for (c, yc) in at2(*sa).into_iter().enumerate().take(cols) {
                let p = dst[a * 2 + c] + o;
                let mut val = _mm256_add_ps(yc, b);
                if let Some(r) = tail.residual {
                    // SAFETY: the residual has the output's shape (caller's contract).
                    val = _mm256_add_ps(val, unsafe { _mm256_loadu_ps(r.as_ptr().add(p)) });
                }
                if let Some((lo, hi)) = bounds {
                    // max first, then min: `Activation::apply`'s order.
                    val = _mm256_min_ps(_mm256_max_ps(val, lo), hi);
                }
                // SAFETY: pixel `p` is this tile's own (caller's contract).
                unsafe { _mm256_storeu_ps(out.ptr.add(p), val) };
            }
        }
    }
}
