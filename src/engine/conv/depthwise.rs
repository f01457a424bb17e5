//! Direct depthwise convolution on NHWC with its epilogue fused: per output
//! row, vectors of channels (written once over the SIMD layer: AVX-512, AVX2,
//! NEON, scalar; the last vector partial), four output pixels at a time so
//! each weight vector loaded serves four FMAs, and bias (a folded BatchNorm's
//! shift; its scale is folded into the weights), residual and activation
//! applied before the single store. Weights are stored `[kh][kw][c]`.
//!
//! Pixels whose window lies inside the image take the unchecked path; the few
//! at the left and right edges go one at a time over their valid taps.

use super::ConvGeom;
use crate::engine::gemm::Activation;
use crate::engine::graph::Conv;
use crate::engine::simd::{dispatch, with_act, ActMap, Isa, Simd, SimdFn, VecFn};
use std::ops::Range;

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

/// What follows the convolution, fused: `act(conv + bias + residual)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tail<'a> {
    /// One value per channel.
    pub bias: Option<&'a [f32]>,
    /// The output row's shape (`ow x c`): the same row of the residual tensor.
    pub residual: Option<&'a [f32]>,
    pub act: Activation,
}

/// Output pixels computed together on the unchecked path.
const PIXELS: usize = 4;

/// Computes output row `(img, oy)` (all `ow x c` values) into `out`, with
/// `tail` fused, on the instruction set `isa`.
///
/// # Panics
/// If a buffer is shorter than the geometry says: `x` under `n h w c`, `w`
/// under `kh kw c`, `out` or the residual not `ow c`, the bias under `c`, or
/// `(img, oy)` outside the output.
#[allow(clippy::too_many_arguments)]
pub fn row(
    isa: Isa,
    x: &[f32],
    w: &[f32],
    g: &ConvGeom,
    img: usize,
    oy: usize,
    tail: &Tail<'_>,
    out: &mut [f32],
) {
    let (c, win) = (g.c, &g.win);
    // Everything the vector code touches is checked here once.
    assert!(
        img < g.n && oy < g.oh,
        "row ({img}, {oy}) outside the output"
    );
    assert!(x.len() >= g.n * g.h * g.w * c, "depthwise input too short");
    assert!(
        w.len() >= win.kh * win.kw * c,
        "depthwise weights too short"
    );
    assert_eq!(out.len(), g.ow * c, "depthwise output row");
    assert!(tail.bias.is_none_or(|b| b.len() >= c), "depthwise bias");
    assert!(
        tail.residual.is_none_or(|r| r.len() == g.ow * c),
        "depthwise residual row"
    );
    // Input rows the window reaches: hi = oy*sh - pt + ky*dh inside [0, h).
    let hi0 = (oy * win.stride_h) as isize - win.pad_top as isize;
    let ky_ok = |ky: usize| {
        let hi = hi0 + (ky * win.dilation_h) as isize;
        hi >= 0 && (hi as usize) < g.h
    };
    let ky_lo = (0..win.kh).find(|&ky| ky_ok(ky)).unwrap_or(win.kh);
    let ky_hi = (0..win.kh)
        .rev()
        .find(|&ky| ky_ok(ky))
        .map_or(ky_lo, |k| k + 1);
    let r = RowRun {
        x: x[img * g.h * g.w * c..].as_ptr(),
        w: w.as_ptr(),
        c,
        in_w: g.w,
        ow: g.ow,
        sw: win.stride_w,
        dw: win.dilation_w,
        dh: win.dilation_h,
        pl: win.pad_left,
        kw: win.kw,
        ky: ky_lo..ky_hi,
        hi0,
        bias: tail.bias.map_or(std::ptr::null(), |b| b.as_ptr()),
        res: tail.residual.map_or(std::ptr::null(), |r| r.as_ptr()),
        out: out.as_mut_ptr(),
    };
    dispatch(isa, (r, tail.act))
}

/// One output row's geometry and buffers, checked by [`row`]: `x` is the
/// image's first pixel, `res` and `out` the row's first value.
struct RowRun {
    x: *const f32,
    w: *const f32,
    c: usize,
    in_w: usize,
    ow: usize,
    sw: usize,
    dw: usize,
    dh: usize,
    pl: usize,
    kw: usize,
    /// Window rows that fall inside the image.
    ky: Range<usize>,
    /// Input row of window row 0 (may be negative: padding).
    hi0: isize,
    bias: *const f32,
    res: *const f32,
    out: *mut f32,
}

impl SimdFn for (RowRun, Activation) {
    type Out = ();
    #[inline(always)]
    fn call<S: Simd>(self, s: S) {
        with_act(s, self.1, self.0)
    }
}

impl<S: Simd> ActMap<S> for RowRun {
    type Out = ();
    #[inline(always)]
    fn run<F: VecFn<S>>(self, s: S, f: F) {
        let (sw, dw, pl, kw) = (self.sw, self.dw, self.pl, self.kw);
        // Output columns whose whole window is inside the row: ox*sw - pl >= 0
        // and ox*sw - pl + (kw-1)*dw < in_w.
        let lo = pl.div_ceil(sw).min(self.ow);
        let reach = (kw - 1) * dw;
        let hi = if self.in_w + pl > reach {
            ((self.in_w + pl - reach - 1) / sw + 1).clamp(lo, self.ow)
        } else {
            lo
        };
        // The taps of column ox inside the row.
        let taps = |ox: usize| {
            let left = (ox * sw) as isize - pl as isize;
            let ok = |kx: usize| {
                let wi = left + (kx * dw) as isize;
                wi >= 0 && (wi as usize) < self.in_w
            };
            let k0 = (0..kw).find(|&k| ok(k)).unwrap_or(kw);
            let k1 = (0..kw).rev().find(|&k| ok(k)).map_or(k0, |k| k + 1);
            k0..k1
        };
        for ox in (0..lo).chain(hi..self.ow) {
            self.channels::<S, F, 1>(s, f, ox, taps(ox));
        }
        let mut ox = lo;
        while ox + PIXELS <= hi {
            self.channels::<S, F, PIXELS>(s, f, ox, 0..kw);
            ox += PIXELS;
        }
        for ox in ox..hi {
            self.channels::<S, F, 1>(s, f, ox, 0..kw);
        }
    }
}

impl RowRun {
    /// Every channel of output pixels `ox..ox + P`, over window columns `taps`
    /// (inside the row for all P pixels): two vectors at a time, then one,
    /// then a partial one.
    #[inline(always)]
    fn channels<S: Simd, F: VecFn<S>, const P: usize>(
        &self,
        s: S,
        f: F,
        ox: usize,
        taps: Range<usize>,
    ) {
        let (c, l) = (self.c, S::LANES);
        let mut ch = 0;
        // SAFETY (all three): channels ch.. of the block stay below c, the
        // pixels below ow and the taps inside the image (what `row` checked
        // and `run` computed).
        while ch + 2 * l <= c {
            // SAFETY: see above.
            unsafe { self.block::<S, F, P, 2>(s, f, ox, &taps, ch, l) };
            ch += 2 * l;
        }
        if ch + l <= c {
            // SAFETY: see above.
            unsafe { self.block::<S, F, P, 1>(s, f, ox, &taps, ch, l) };
            ch += l;
        }
        if ch < c {
            // SAFETY: see above.
            unsafe { self.block::<S, F, P, 1>(s, f, ox, &taps, ch, c - ch) };
        }
    }

    /// `NV` vectors of channels from `ch` (the last `last` lanes wide) of
    /// pixels `ox..ox + P`.
    ///
    /// # Safety
    /// `ch + (NV - 1) * LANES + last <= c`, `ox + P <= ow`, and every tap in
    /// `taps` of those pixels inside the image row.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<S: Simd, F: VecFn<S>, const P: usize, const NV: usize>(
        &self,
        s: S,
        f: F,
        ox: usize,
        taps: &Range<usize>,
        ch: usize,
        last: usize,
    ) {
        let (c, l) = (self.c, S::LANES);
        // SAFETY (every pointer offset, load and store below): inside the
        // buffers `row` checked, by the bounds the caller guarantees; the
        // last vector reads and writes only its `last` lanes.
        let mut acc = [[s.splat(0.0); NV]; P];
        if !self.bias.is_null() {
            for v in 0..NV {
                let n = if v + 1 == NV { last } else { l };
                // SAFETY: see above.
                let b = unsafe { s.load_n(self.bias.add(ch + v * l), n) };
                for a in acc.iter_mut() {
                    a[v] = b;
                }
            }
        }
        for ky in self.ky.clone() {
            let hi = (self.hi0 + (ky * self.dh) as isize) as usize;
            // SAFETY: see above.
            let xrow = unsafe { self.x.add(hi * self.in_w * c) };
            for kx in taps.clone() {
                // SAFETY: see above.
                let wp = unsafe { self.w.add((ky * self.kw + kx) * c + ch) };
                let mut wv = [s.splat(0.0); NV];
                for (v, wvv) in wv.iter_mut().enumerate() {
                    let n = if v + 1 == NV { last } else { l };
                    // SAFETY: see above.
                    *wvv = unsafe { s.load_n(wp.add(v * l), n) };
                }
                for (p, a) in acc.iter_mut().enumerate() {
                    let wi = (ox + p) * self.sw + kx * self.dw - self.pl;
                    for v in 0..NV {
                        let n = if v + 1 == NV { last } else { l };
                        // SAFETY: see above.
                        let xv = unsafe { s.load_n(xrow.add(wi * c + ch + v * l), n) };
                        a[v] = s.fma(xv, wv[v], a[v]);
                    }
                }
            }
        }
        for (p, a) in acc.iter().enumerate() {
            let at = (ox + p) * c + ch;
            for (v, &val) in a.iter().enumerate() {
                let n = if v + 1 == NV { last } else { l };
                let mut val = val;
                if !self.res.is_null() {
                    // SAFETY: see above.
                    val = s.add(val, unsafe { s.load_n(self.res.add(at + v * l), n) });
                }
                // SAFETY: see above.
                unsafe { s.store_n(self.out.add(at + v * l), f.apply(s, val), n) };
            }
        }
    }
}

#[cfg(test)]
mod tests;
