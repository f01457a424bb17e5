//! F(4x4, 3x3) and F(2x2, 3x3) transforms with AVX2 and FMA intrinsics, 8
//! channels per `__m256`; the remaining channels go through the scalar code.

use super::{f23, gather, out_pixels, scalar, OutPtr, Tail};
use crate::engine::conv::ConvGeom;
use std::arch::x86_64::*;
use std::ops::Range;

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

/// The input and output transforms of one tile size, around its column
/// transforms `$bt` (`B^T d`) and `$at` (`A^T M`): `$a x $a` input tiles
/// (`$n` points), `$m x $m` output tiles (`$nm` pixels). Written once for both
/// F(4x4, 3x3) and F(2x2, 3x3); channels past the last full vector go to the
/// scalar `$in_tail` and `$out_tail`.
macro_rules! transforms {
    (
        $input_block:ident, $output_block:ident, $bt:ident, $at:ident,
        $a:literal, $n:literal, $m:literal, $nm:literal, $in_tail:path, $out_tail:path
    ) => {
        /// Input transform of tiles `start..start + n` into the block's `v`
        /// (`V[xi]` of tile `t` at `v[(xi * n + t) * c ..]`).
        ///
        /// # Safety
        /// The CPU must support AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn $input_block(
            x: &[f32],
            g: &ConvGeom,
            start: usize,
            n: usize,
            zero: &[f32],
            v: &mut [f32],
        ) {
            /// `V = B^T d B` for channels `0..cv` (a multiple of 8) of one tile.
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            fn tile(d: &[&[f32]; $n], v: &mut [f32], stride: usize, cv: usize) {
                // The loads and stores below stay inside these bounds.
                assert!(
                    d.iter().all(|s| s.len() >= cv)
                        && (cv == 0 || v.len() >= ($n - 1) * stride + cv)
                );
                let vp = v.as_mut_ptr();
                for ch in (0..cv).step_by(8) {
                    let mut r = [[_mm256_setzero_ps(); $a]; $a];
                    for j in 0..$a {
                        let mut col = [_mm256_setzero_ps(); $a];
                        for (i, ci) in col.iter_mut().enumerate() {
                            // SAFETY: `ch + 8 <= cv <= d[_].len()`, asserted above.
                            *ci = unsafe { _mm256_loadu_ps(d[i * $a + j].as_ptr().add(ch)) };
                        }
                        for (ri, ti) in r.iter_mut().zip($bt(col)) {
                            ri[j] = ti;
                        }
                    }
                    for (i, ri) in r.iter().enumerate() {
                        for (j, val) in $bt(*ri).into_iter().enumerate() {
                            // SAFETY: `(i * $a + j) * stride + ch + 8 <= ($n - 1) * stride + cv <= v.len()`.
                            unsafe { _mm256_storeu_ps(vp.add((i * $a + j) * stride + ch), val) };
                        }
                    }
                }
            }

            let c = g.c;
            let cv = c - c % 8;
            for t in 0..n {
                let d = gather::<$a, $n>(x, g, start + t, zero);
                let vt = &mut v[t * c..];
                tile(&d, vt, n * c, cv);
                $in_tail(&d, vt, n * c, cv..c);
            }
        }

        /// Output transform of tiles `start..start + n` of the block's products,
        /// output channels `ks` (of `k`).
        ///
        /// # Safety
        /// The CPU must support AVX2 and FMA; those tiles' output pixels must be
        /// written by no other thread; `out` and the tail's residual must hold the
        /// whole output and its bias `k` values.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn $output_block(
            m: &[f32],
            g: &ConvGeom,
            k: usize,
            ks: Range<usize>,
            start: usize,
            n: usize,
            tail: &Tail<'_>,
            out: OutPtr,
        ) {
            /// `Y = A^T M A` for channels `kv` (a multiple of 8 long) of one
            /// tile, plus bias and residual, through the activation, stored to
            /// the pixels inside the image.
            ///
            /// # Safety
            /// `m` must hold `($n - 1) * stride + base + kv.end` values;
            /// `out.ptr + dst[p] + o` (and the residual there, and the bias at
            /// `o`) for `o` in `kv` must be valid and the pixels written by no
            /// other thread.
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn tile(
                m: &[f32],
                base: usize,
                stride: usize,
                kv: Range<usize>,
                rows: usize,
                cols: usize,
                dst: &[usize; $nm],
                tail: &Tail<'_>,
                out: OutPtr,
            ) {
                let bounds = tail
                    .bounds()
                    .map(|(lo, hi)| (_mm256_set1_ps(lo), _mm256_set1_ps(hi)));
                let scalar_act = tail.scalar_act();
                let mp = m.as_ptr();
                for o in kv.step_by(8) {
                    let mut s = [[_mm256_setzero_ps(); $a]; $m];
                    for j in 0..$a {
                        let mut col = [_mm256_setzero_ps(); $a];
                        for (i, ci) in col.iter_mut().enumerate() {
                            // SAFETY: inside `m`, per the caller's contract.
                            *ci = unsafe {
                                _mm256_loadu_ps(mp.add((i * $a + j) * stride + base + o))
                            };
                        }
                        for (sa, ya) in s.iter_mut().zip($at(col)) {
                            sa[j] = ya;
                        }
                    }
                    let b = match tail.bias {
                        // SAFETY: the bias holds `k >= o + 8` values (caller's contract).
                        Some(b) => unsafe { _mm256_loadu_ps(b.as_ptr().add(o)) },
                        None => _mm256_setzero_ps(),
                    };
                    for (a, sa) in s.iter().enumerate().take(rows) {
                        for (c, yc) in $at(*sa).into_iter().enumerate().take(cols) {
                            let p = dst[a * $m + c] + o;
                            let mut val = _mm256_add_ps(yc, b);
                            if let Some(r) = tail.residual {
                                // SAFETY: the residual has the output's shape (caller's contract).
                                val = _mm256_add_ps(val, unsafe {
                                    _mm256_loadu_ps(r.as_ptr().add(p))
                                });
                            }
                            if let Some((lo, hi)) = bounds {
                                // max first, then min: `Activation::apply`'s order.
                                val = _mm256_min_ps(_mm256_max_ps(val, lo), hi);
                            }
                            // SAFETY: pixel `p` is this tile's own (caller's contract).
                            unsafe { _mm256_storeu_ps(out.ptr.add(p), val) };
                            if scalar_act {
                                // SAFETY: as for the store.
                                unsafe { tail.act.apply_in_place(out.ptr.add(p), 8) };
                            }
                        }
                    }
                }
            }

            // The vector loads of `m` stay inside this bound.
            assert!(m.len() >= $n * n * k && ks.end <= k);
            let kv = ks.end - ks.len() % 8;
            for t in 0..n {
                let (dst, rows, cols) = out_pixels::<$m, $nm>(g, k, start + t);
                // SAFETY: `dst` holds this tile's own pixels, per the caller's
                // contract; products of tile `t` end at `($n - 1) * n * k + (t + 1) * k`.
                unsafe {
                    tile(m, t * k, n * k, ks.start..kv, rows, cols, &dst, tail, out);
                    $out_tail(m, t * k, n * k, kv..ks.end, rows, cols, &dst, tail, out);
                }
            }
        }
    };
}

transforms!(
    input_block_f43,
    output_block_f43,
    bt,
    at,
    6,
    36,
    4,
    16,
    scalar::input_tile,
    scalar::output_tile
);
transforms!(
    input_block_f23,
    output_block_f23,
    bt2,
    at2,
    4,
    16,
    2,
    4,
    f23::input_tile,
    f23::output_tile
);
