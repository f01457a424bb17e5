//! Direct depthwise convolution on NHWC: each output pixel is a weighted sum of
//! its window, vectorised across channels (weights stored `[kh][kw][c]`).

use super::ConvGeom;
use crate::engine::graph::Conv;

/// Weights of a depthwise `conv` as `[kh][kw][c]`, scaled per channel.
pub fn weights(conv: &Conv, scale: Option<&[f32]>) -> Vec<f32> {
    let (kh, kw, c) = (conv.window.kh, conv.window.kw, conv.cout);
    let mut w = vec![0.0; kh * kw * c];
    for ch in 0..c {
        let s = scale.map_or(1.0, |s| s[ch]);
        for t in 0..kh * kw {
            w[t * c + ch] = conv.weights[ch * kh * kw + t] * s;
        }
    }
    w
}

/// Computes output row `(img, oy)` (all `ow x c` values) into `out`.
pub fn row(x: &[f32], w: &[f32], geom: &ConvGeom, img: usize, oy: usize, out: &mut [f32]) {
    let g = geom;
    let c = g.c;
    out.fill(0.0);
    let h0 = (oy * g.win.stride_h) as isize - g.win.pad_top as isize;
    for ky in 0..g.win.kh {
        let hi = h0 + (ky * g.win.dilation_h) as isize;
        if hi < 0 || hi as usize >= g.h {
            continue;
        }
        let xrow = &x[(img * g.h + hi as usize) * g.w * c..][..g.w * c];
        for kx in 0..g.win.kw {
            let wt = &w[(ky * g.win.kw + kx) * c..][..c];
            for ox in 0..g.ow {
                let wi = (ox * g.win.stride_w + kx * g.win.dilation_w) as isize
                    - g.win.pad_left as isize;
                if wi < 0 || wi as usize >= g.w {
                    continue;
                }
                let xs = &xrow[wi as usize * c..][..c];
                let o = &mut out[ox * c..][..c];
                for ((o, &xv), &wv) in o.iter_mut().zip(xs).zip(wt) {
                    *o += xv * wv;
                }
            }
        }
    }
}
