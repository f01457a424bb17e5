//! F(4x4, 3x3) and F(2x2, 3x3) transforms with NEON intrinsics, 4 channels per
//! `float32x4_t`; the remaining channels go through the scalar code. NEON is
//! part of the aarch64 baseline, so no run-time detection is needed; the
//! functions still name it in `#[target_feature]`, which Rust requires for
//! the intrinsics to be callable.

use super::{f23, gather, out_pixels, scalar, OutPtr, Tail};
use crate::engine::conv::ConvGeom;
use std::arch::aarch64::*;
use std::ops::Range;

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
        #[target_feature(enable = "neon")]
        pub fn $input_block(
            x: &[f32],
            g: &ConvGeom,
            start: usize,
            n: usize,
            zero: &[f32],
            v: &mut [f32],
        ) {
            /// `V = B^T d B` for channels `0..cv` (a multiple of 4) of one tile.
            #[inline]
            #[target_feature(enable = "neon")]
            fn tile(d: &[&[f32]; $n], v: &mut [f32], stride: usize, cv: usize) {
                // The loads and stores below stay inside these bounds.
                assert!(
                    d.iter().all(|s| s.len() >= cv)
                        && (cv == 0 || v.len() >= ($n - 1) * stride + cv)
                );
                let vp = v.as_mut_ptr();
                for ch in (0..cv).step_by(4) {
                    let mut r = [[vdupq_n_f32(0.0); $a]; $a];
                    for j in 0..$a {
                        let mut col = [vdupq_n_f32(0.0); $a];
                        for (i, ci) in col.iter_mut().enumerate() {
                            // SAFETY: `ch + 4 <= cv <= d[_].len()`, asserted above.
                            *ci = unsafe { vld1q_f32(d[i * $a + j].as_ptr().add(ch)) };
                        }
                        for (ri, ti) in r.iter_mut().zip($bt(col)) {
                            ri[j] = ti;
                        }
                    }
                    for (i, ri) in r.iter().enumerate() {
                        for (j, val) in $bt(*ri).into_iter().enumerate() {
                            // SAFETY: `(i * $a + j) * stride + ch + 4 <= ($n - 1) * stride + cv <= v.len()`.
                            unsafe { vst1q_f32(vp.add((i * $a + j) * stride + ch), val) };
                        }
                    }
                }
            }

            let c = g.c;
            let cv = c - c % 4;
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
        /// Those tiles' output pixels must be
        /// written by no other thread; `out` and the tail's residual must hold the
        /// whole output and its bias `k` values.
        #[target_feature(enable = "neon")]
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
            /// `Y = A^T M A` for channels `kv` (a multiple of 4 long) of one
            /// tile, plus bias and residual, through the activation, stored to
            /// the pixels inside the image.
            ///
            /// # Safety
            /// `m` must hold `($n - 1) * stride + base + kv.end` values;
            /// `out.ptr + dst[p] + o` (and the residual there, and the bias at
            /// `o`) for `o` in `kv` must be valid and the pixels written by no
            /// other thread.
            #[inline]
            #[target_feature(enable = "neon")]
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
                    .map(|(lo, hi)| (vdupq_n_f32(lo), vdupq_n_f32(hi)));
                let scalar_act = tail.scalar_act();
                let mp = m.as_ptr();
                for o in kv.step_by(4) {
                    let mut s = [[vdupq_n_f32(0.0); $a]; $m];
                    for j in 0..$a {
                        let mut col = [vdupq_n_f32(0.0); $a];
                        for (i, ci) in col.iter_mut().enumerate() {
                            // SAFETY: inside `m`, per the caller's contract.
                            *ci = unsafe { vld1q_f32(mp.add((i * $a + j) * stride + base + o)) };
                        }
                        for (sa, ya) in s.iter_mut().zip($at(col)) {
                            sa[j] = ya;
                        }
                    }
                    let b = match tail.bias {
                        // SAFETY: the bias holds `k >= o + 4` values (caller's contract).
                        Some(b) => unsafe { vld1q_f32(b.as_ptr().add(o)) },
                        None => vdupq_n_f32(0.0),
                    };
                    for (a, sa) in s.iter().enumerate().take(rows) {
                        for (c, yc) in $at(*sa).into_iter().enumerate().take(cols) {
                            let p = dst[a * $m + c] + o;
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
                            if scalar_act {
                                // SAFETY: as for the store.
                                unsafe { tail.act.apply_in_place(out.ptr.add(p), 4) };
                            }
                        }
                    }
                }
            }

            // The vector loads of `m` stay inside this bound.
            assert!(m.len() >= $n * n * k && ks.end <= k);
            let kv = ks.end - ks.len() % 4;
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
