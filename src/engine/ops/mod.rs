//! The layers that are not GEMMs. Image operators work on NHWC batches one
//! output row at a time so the session can spread rows over its threads; the
//! others on row-major tensors of any rank (`nd`), split into rows the same way.

pub mod binary;
pub mod layout;
pub mod nd;
pub mod norm;
pub mod reduce;
pub mod resize;

use super::gemm::Activation;
use super::graph::{PoolKind, Window};
use super::simd::{dispatch, with_act, ActMap, Isa, Simd, SimdFn, VecFn};
use rayon::prelude::*;
use rayon::ThreadPool;

/// Runs `f(row, chunk)` over `row_len`-sized chunks of `out`, on the pool if any.
pub fn par_rows<F>(pool: Option<&ThreadPool>, out: &mut [f32], row_len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let row_len = row_len.max(1);
    match pool {
        // One contiguous run of rows per thread: few, large jobs (hundreds of
        // tiny ones made rayon's deques grow and shrink, allocating).
        Some(p) if out.len() > row_len => p.install(|| {
            let rows = out.len().div_ceil(row_len);
            let per = rows.div_ceil(p.current_num_threads()).max(1);
            out.par_chunks_mut(per * row_len)
                .enumerate()
                .for_each(|(i, run)| {
                    for (r, c) in run.chunks_mut(row_len).enumerate() {
                        f(i * per + r, c);
                    }
                });
        }),
        _ => out
            .chunks_mut(row_len)
            .enumerate()
            .for_each(|(r, c)| f(r, c)),
    }
}

/// `x = act(x)` in place, vectorized on `isa`.
pub fn act_in_place(isa: Isa, act: Activation, x: &mut [f32]) {
    struct Run<'a> {
        act: Activation,
        x: &'a mut [f32],
    }
    impl<S: Simd> ActMap<S> for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn run<F: VecFn<S>>(self, s: S, f: F) {
            let n = self.x.len();
            let p = self.x.as_mut_ptr();
            let mut i = 0;
            while i + S::LANES <= n {
                // SAFETY: i + LANES <= n.
                unsafe { s.store(p.add(i), f.apply(s, s.load(p.add(i)))) };
                i += S::LANES;
            }
            if i < n {
                // SAFETY: n - i values remain from i.
                unsafe { s.store_part(p.add(i), f.apply(s, s.load_part(p.add(i), n - i)), n - i) };
            }
        }
    }
    impl SimdFn for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn call<S: Simd>(self, s: S) {
            with_act(s, self.act, self)
        }
    }
    if act != Activation::None {
        dispatch(isa, Run { act, x })
    }
}

/// Pooling of output row `(img, oy)` (`ow * c` values) from an `h x w x c` input.
#[allow(clippy::too_many_arguments)]
pub fn pool_row(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    kind: PoolKind,
    win: &Window,
    ow: usize,
    img: usize,
    oy: usize,
    out: &mut [f32],
) {
    let h0 = (oy * win.stride_h) as isize - win.pad_top as isize;
    for ox in 0..ow {
        let w0 = (ox * win.stride_w) as isize - win.pad_left as isize;
        let o = &mut out[ox * c..][..c];
        o.fill(if kind == PoolKind::Max {
            f32::NEG_INFINITY
        } else {
            0.0
        });
        let mut valid = 0usize;
        for ky in 0..win.kh {
            let hi = h0 + (ky * win.dilation_h) as isize;
            if hi < 0 || hi as usize >= h {
                continue;
            }
            for kx in 0..win.kw {
                let wi = w0 + (kx * win.dilation_w) as isize;
                if wi < 0 || wi as usize >= w {
                    continue;
                }
                valid += 1;
                let xs = &x[((img * h + hi as usize) * w + wi as usize) * c..][..c];
                match kind {
                    // `f32::max` keeps NaN handling LLVM will not vectorize; this
                    // select is one vmaxps and, like it, ignores a NaN input.
                    PoolKind::Max => o
                        .iter_mut()
                        .zip(xs)
                        .for_each(|(o, &v)| *o = if v > *o { v } else { *o }),
                    PoolKind::Avg { .. } => o.iter_mut().zip(xs).for_each(|(o, &v)| *o += v),
                }
            }
        }
        if let PoolKind::Avg { count_include_pad } = kind {
            let count = if count_include_pad {
                // The window clipped to the padded input (never past the pads).
                let hs = h0.max(-(win.pad_top as isize));
                let he = (h0 + (win.dilation_h * (win.kh - 1)) as isize + 1)
                    .min((h + win.pad_bottom) as isize);
                let ws = w0.max(-(win.pad_left as isize));
                let we = (w0 + (win.dilation_w * (win.kw - 1)) as isize + 1)
                    .min((w + win.pad_right) as isize);
                let ch = (he - hs + win.dilation_h as isize - 1) / win.dilation_h as isize;
                let cw = (we - ws + win.dilation_w as isize - 1) / win.dilation_w as isize;
                (ch * cw).max(1) as usize
            } else {
                valid.max(1)
            };
            let inv = 1.0 / count as f32;
            o.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// Global average over `hw` pixels of one image: `x` is `hw x c`, `out` is `c`.
pub fn global_avg(x: &[f32], c: usize, out: &mut [f32]) {
    out.fill(0.0);
    let n = x.len() / c;
    for px in x.chunks_exact(c) {
        out.iter_mut().zip(px).for_each(|(o, &v)| *o += v);
    }
    let inv = 1.0 / n as f32;
    out.iter_mut().for_each(|v| *v *= inv);
}

/// `out = act(x * scale + shift)` per channel (a standalone BatchNorm).
pub fn affine(x: &[f32], scale: &[f32], shift: &[f32], out: &mut [f32]) {
    let c = scale.len();
    for (o, xs) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for (((o, &v), &s), &b) in o.iter_mut().zip(xs).zip(scale).zip(shift) {
            *o = v * s + b;
        }
    }
}
