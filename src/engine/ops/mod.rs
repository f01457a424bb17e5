//! The layers that are not GEMMs, on NHWC batches, one output row at a time so
//! the session can spread rows over its threads.

use super::gemm::Activation;
use super::graph::{PoolKind, Window};

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

/// `out = act(x)`.
pub fn activation(x: &[f32], act: Activation, out: &mut [f32]) {
    out.iter_mut().zip(x).for_each(|(o, &v)| *o = act.apply(v));
}

/// `out = act(a + b)`.
pub fn add(a: &[f32], b: &[f32], act: Activation, out: &mut [f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = act.apply(x + y);
    }
}

/// Softmax over each run of `c` values (channels of a pixel).
pub fn softmax(x: &[f32], c: usize, out: &mut [f32]) {
    for (o, xs) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        let m = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (o, &v) in o.iter_mut().zip(xs) {
            *o = (v - m).exp();
            sum += *o;
        }
        let inv = 1.0 / sum;
        o.iter_mut().for_each(|v| *v *= inv);
    }
}
