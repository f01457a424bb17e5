//! convGemm: the im2col matrix is never built; its rows (output pixels) are
//! gathered from the NHWC input straight into the GEMM's packed A micro-panels.

use super::ConvGeom;
use crate::engine::gemm::ASource;

/// The virtual im2col matrix of one convolution group, as a GEMM A operand.
pub struct PatchSource<'a> {
    pub x: &'a [f32],
    pub geom: ConvGeom,
    /// First input channel of this group.
    pub c_off: usize,
}

impl PatchSource<'_> {
    /// Input offset of pixel (img, hi, wi) channel `c_off`, or `None` in the padding.
    #[inline(always)]
    fn origin(&self, row: usize) -> (usize, isize, isize) {
        let g = &self.geom;
        let wo = row % g.ow;
        let t = row / g.ow;
        let ho = t % g.oh;
        let img = t / g.oh;
        (
            img * g.h * g.w * g.c + self.c_off,
            (ho * g.win.stride_h) as isize - g.win.pad_top as isize,
            (wo * g.win.stride_w) as isize - g.win.pad_left as isize,
        )
    }

    /// Writes columns `p0..p0+len` of im2col row `row` to `dst[t * step]`.
    #[inline(always)]
    pub fn gather_row(&self, row: usize, p0: usize, len: usize, dst: &mut [f32], step: usize) {
        let g = &self.geom;
        let (base, h0, w0) = self.origin(row);
        let end = p0 + len;
        // Divide once; afterwards walk taps (ky, kx) and channels incrementally.
        let tap = p0 / g.cg;
        let mut ci = p0 % g.cg;
        let (mut ky, mut kx) = (tap / g.win.kw, tap % g.win.kw);
        let mut p = p0;
        let mut t = 0;
        // A whole window row (kw taps x all channels) is contiguous in NHWC when
        // the group spans every channel and there is no horizontal dilation.
        let row_len = g.win.kw * g.cg;
        let rows_contiguous = g.c == g.cg && g.win.dilation_w == 1;
        while p < end {
            if rows_contiguous && ci == 0 && kx == 0 && end - p >= row_len {
                let hi = h0 + (ky * g.win.dilation_h) as isize;
                if hi >= 0 && (hi as usize) < g.h && w0 >= 0 && w0 as usize + g.win.kw <= g.w {
                    let src = &self.x[base + (hi as usize * g.w + w0 as usize) * g.c..][..row_len];
                    let out = &mut dst[t * step..];
                    if step == 1 {
                        out[..row_len].copy_from_slice(src);
                    } else {
                        for (o, &v) in out.iter_mut().step_by(step).zip(src) {
                            *o = v;
                        }
                    }
                    p += row_len;
                    t += row_len;
                    ky += 1;
                    continue;
                }
            }
            let seg = (g.cg - ci).min(end - p);
            let hi = h0 + (ky * g.win.dilation_h) as isize;
            let wi = w0 + (kx * g.win.dilation_w) as isize;
            let out = &mut dst[t * step..];
            if hi >= 0 && wi >= 0 && (hi as usize) < g.h && (wi as usize) < g.w {
                let src = &self.x[base + (hi as usize * g.w + wi as usize) * g.c + ci..][..seg];
                if step == 1 {
                    out[..seg].copy_from_slice(src);
                } else {
                    for (o, &v) in out.iter_mut().step_by(step).zip(src) {
                        *o = v;
                    }
                }
            } else {
                for o in out.iter_mut().step_by(step).take(seg) {
                    *o = 0.0;
                }
            }
            p += seg;
            t += seg;
            ci = 0;
            kx += 1;
            if kx == g.win.kw {
                kx = 0;
                ky += 1;
            }
        }
    }
}

impl ASource for PatchSource<'_> {
    fn rows(&self) -> usize {
        self.geom.rows()
    }
    fn depth(&self) -> usize {
        self.geom.depth()
    }
    fn pack_row(&self, row: usize, p0: usize, len: usize, dst: &mut [f32], step: usize) {
        self.gather_row(row, p0, len, dst, step);
    }
}
