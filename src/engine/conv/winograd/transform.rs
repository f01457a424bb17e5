//! The input and output transforms of both tile sizes, written once over
//! [`Simd`] (AVX-512, AVX2, NEON and the one-lane scalar): channels go in
//! vectors of `LANES`, the last one partial, so there is no separate tail
//! code. [`Cols`] holds each tile size's column transforms; the loops
//! around them are shared.

use super::{gather, out_pixels, OutPtr, Tail, Variant};
use crate::engine::conv::ConvGeom;
use crate::engine::simd::{dispatch, with_act, ActMap, Isa, Simd, SimdFn, VecFn};
use std::ops::Range;

/// The column transforms of one tile size: `B^T d` over an `A`-point column
/// and `A^T M`, giving `M` outputs (applied to columns, then to rows).
trait Cols<S: Simd, const A: usize, const M: usize>: Copy {
    fn bt(self, s: S, d: [S::V; A]) -> [S::V; A];
    fn at(self, s: S, m: [S::V; A]) -> [S::V; M];
}

/// F(4x4, 3x3); see `f43` for the matrices.
#[derive(Clone, Copy)]
struct F43;

impl<S: Simd> Cols<S, 6, 4> for F43 {
    #[inline(always)]
    fn bt(self, s: S, d: [S::V; 6]) -> [S::V; 6] {
        let (four, five) = (s.splat(4.0), s.splat(5.0));
        let t0 = s.fnma(four, d[2], d[4]);
        let t1 = s.fnma(four, d[1], d[3]);
        let t2 = s.sub(d[4], d[2]);
        let t3 = s.mul(s.splat(2.0), s.sub(d[3], d[1]));
        [
            s.fma(four, d[0], s.fnma(five, d[2], d[4])),
            s.add(t0, t1),
            s.sub(t0, t1),
            s.add(t2, t3),
            s.sub(t2, t3),
            s.fma(four, d[1], s.fnma(five, d[3], d[5])),
        ]
    }

    #[inline(always)]
    fn at(self, s: S, m: [S::V; 6]) -> [S::V; 4] {
        let (s1, s2) = (s.add(m[1], m[2]), s.add(m[3], m[4]));
        let (d1, d2) = (s.sub(m[1], m[2]), s.sub(m[3], m[4]));
        [
            s.add(s.add(m[0], s1), s2),
            s.fma(s.splat(2.0), d2, d1),
            s.fma(s.splat(4.0), s2, s1),
            s.add(s.fma(s.splat(8.0), d2, d1), m[5]),
        ]
    }
}

/// F(2x2, 3x3): `B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`,
/// `A^T = [[1,1,1,0],[0,1,-1,-1]]`.
#[derive(Clone, Copy)]
struct F23;

impl<S: Simd> Cols<S, 4, 2> for F23 {
    #[inline(always)]
    fn bt(self, s: S, d: [S::V; 4]) -> [S::V; 4] {
        [
            s.sub(d[0], d[2]),
            s.add(d[1], d[2]),
            s.sub(d[2], d[1]),
            s.sub(d[1], d[3]),
        ]
    }

    #[inline(always)]
    fn at(self, s: S, m: [S::V; 4]) -> [S::V; 2] {
        [
            s.add(s.add(m[0], m[1]), m[2]),
            s.sub(s.sub(m[1], m[2]), m[3]),
        ]
    }
}

/// `w` lanes from `p`: a whole vector when `FULL`.
///
/// # Safety
/// `p` valid for `w` floats.
#[inline(always)]
unsafe fn load<S: Simd, const FULL: bool>(s: S, p: *const f32, w: usize) -> S::V {
    // SAFETY: the caller's guarantee.
    unsafe {
        if FULL {
            s.load(p)
        } else {
            s.load_part(p, w)
        }
    }
}

/// # Safety
/// `p` valid for writing `w` floats.
#[inline(always)]
unsafe fn store<S: Simd, const FULL: bool>(s: S, p: *mut f32, v: S::V, w: usize) {
    // SAFETY: the caller's guarantee.
    unsafe {
        if FULL {
            s.store(p, v)
        } else {
            s.store_part(p, v, w)
        }
    }
}

/// Input transform of tiles `start..start + n` into the block's `v`
/// (`V[xi]` of tile `t` at `v[(xi * n + t) * c ..]`), on `isa`.
pub(super) fn input_block(
    isa: Isa,
    variant: Variant,
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    struct Run<'a> {
        variant: Variant,
        x: &'a [f32],
        g: &'a ConvGeom,
        start: usize,
        n: usize,
        zero: &'a [f32],
        v: &'a mut [f32],
    }
    impl SimdFn for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn call<S: Simd>(self, s: S) {
            let r = self;
            match r.variant {
                Variant::F23 => {
                    input::<S, F23, 4, 2, 16>(s, F23, r.x, r.g, r.start, r.n, r.zero, r.v)
                }
                Variant::F43 => {
                    input::<S, F43, 6, 4, 36>(s, F43, r.x, r.g, r.start, r.n, r.zero, r.v)
                }
            }
        }
    }
    dispatch(
        isa,
        Run {
            variant,
            x,
            g,
            start,
            n,
            zero,
            v,
        },
    )
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn input<S: Simd, T: Cols<S, A, M>, const A: usize, const M: usize, const N: usize>(
    s: S,
    t: T,
    x: &[f32],
    g: &ConvGeom,
    start: usize,
    n: usize,
    zero: &[f32],
    v: &mut [f32],
) {
    let c = g.c;
    let stride = n * c;
    // The tile loads and stores below stay inside these bounds.
    assert!(zero.len() >= c && v.len() >= (N - 1) * stride + n * c);
    let full = c - c % S::LANES;
    for tile in 0..n {
        let d = gather::<A, N>(x, g, start + tile, zero);
        assert!(d.iter().all(|p| p.len() >= c));
        // SAFETY: tile < n, so `tile * c + (N - 1) * stride + c <= v.len()`
        // and every channel read is below `c <= d[_].len()` (asserted).
        let vp = unsafe { v.as_mut_ptr().add(tile * c) };
        for ch in (0..full).step_by(S::LANES) {
            // SAFETY: as above, with `ch + LANES <= c`.
            unsafe { input_tile::<S, T, A, M, N, true>(s, t, &d, vp, stride, ch, S::LANES) };
        }
        if full < c {
            // SAFETY: as above, with `c - full` lanes.
            unsafe { input_tile::<S, T, A, M, N, false>(s, t, &d, vp, stride, full, c - full) };
        }
    }
}

/// `V = B^T d B` for channels `ch..ch + w` of one tile; `V[xi]` goes to
/// `vp + xi * stride + ch`.
///
/// # Safety
/// Every `d[_]` holds `ch + w` floats; `vp` is valid for writing at
/// `xi * stride + ch .. + w` for each of the `N` points.
#[inline(always)]
unsafe fn input_tile<
    S: Simd,
    T: Cols<S, A, M>,
    const A: usize,
    const M: usize,
    const N: usize,
    const FULL: bool,
>(
    s: S,
    t: T,
    d: &[&[f32]; N],
    vp: *mut f32,
    stride: usize,
    ch: usize,
    w: usize,
) {
    let zero = s.splat(0.0);
    let mut r = [[zero; A]; A];
    for j in 0..A {
        let mut col = [zero; A];
        for (i, ci) in col.iter_mut().enumerate() {
            // SAFETY: the caller's guarantee on d.
            *ci = unsafe { load::<S, FULL>(s, d[i * A + j].as_ptr().add(ch), w) };
        }
        for (ri, ti) in r.iter_mut().zip(t.bt(s, col)) {
            ri[j] = ti;
        }
    }
    for (i, ri) in r.iter().enumerate() {
        for (j, val) in t.bt(s, *ri).into_iter().enumerate() {
            // SAFETY: the caller's guarantee on vp.
            unsafe { store::<S, FULL>(s, vp.add((i * A + j) * stride + ch), val, w) };
        }
    }
}

/// Output transform of tiles `start..start + n` of the block's products `m`,
/// output channels `ks` (of `k`), on `isa`: `Y = A^T M A`, plus bias and
/// residual, through the activation, stored to the pixels inside the image.
///
/// # Safety
/// Those tiles' output pixels must be written by no other thread; `out` and
/// the tail's residual must hold the whole output (`n x oh x ow x k`) and its
/// bias `k` values; `ks.end <= k`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn output_block(
    isa: Isa,
    variant: Variant,
    m: &[f32],
    g: &ConvGeom,
    k: usize,
    ks: Range<usize>,
    start: usize,
    n: usize,
    tail: &Tail<'_>,
    out: OutPtr,
) {
    let points = variant.points();
    // The vector loads of `m` stay inside this bound.
    assert!(m.len() >= points * n * k && ks.end <= k);
    let blk = OutBlock {
        variant,
        m,
        g,
        k,
        ks,
        start,
        n,
        bias: tail.bias.map_or(std::ptr::null(), |b| b.as_ptr()),
        residual: tail.residual.map_or(std::ptr::null(), |r| r.as_ptr()),
        out,
    };
    dispatch(isa, (blk, tail.act))
}

/// One output block, for the activation's loop.
struct OutBlock<'a> {
    variant: Variant,
    m: &'a [f32],
    g: &'a ConvGeom,
    k: usize,
    ks: Range<usize>,
    start: usize,
    n: usize,
    /// The bias (k values) or null.
    bias: *const f32,
    /// The residual (the output's shape) or null.
    residual: *const f32,
    out: OutPtr,
}

impl SimdFn for (OutBlock<'_>, crate::engine::gemm::Activation) {
    type Out = ();
    #[inline(always)]
    fn call<S: Simd>(self, s: S) {
        with_act(s, self.1, self.0)
    }
}

impl<S: Simd> ActMap<S> for OutBlock<'_> {
    type Out = ();
    #[inline(always)]
    fn run<F: VecFn<S>>(self, s: S, f: F) {
        match self.variant {
            Variant::F23 => self.tiles::<S, F, F23, 4, 2, 16, 4>(s, f, F23),
            Variant::F43 => self.tiles::<S, F, F43, 6, 4, 36, 16>(s, f, F43),
        }
    }
}

impl OutBlock<'_> {
    #[inline(always)]
    fn tiles<
        S: Simd,
        F: VecFn<S>,
        T: Cols<S, A, M>,
        const A: usize,
        const M: usize,
        const N: usize,
        const NM: usize,
    >(
        &self,
        s: S,
        f: F,
        t: T,
    ) {
        let (k, n) = (self.k, self.n);
        let kv = self.ks.end - self.ks.len() % S::LANES;
        for tile in 0..n {
            let (dst, rows, cols) = out_pixels::<M, NM>(self.g, k, self.start + tile);
            let px = Px {
                dst: &dst,
                rows,
                cols,
                base: tile * k,
                stride: n * k,
            };
            // SAFETY (both): `dst` holds this tile's own pixels (output_block's
            // contract); products of tile `tile` end at
            // `(N - 1) * n * k + (tile + 1) * k <= m.len()` (asserted there).
            for o in (self.ks.start..kv).step_by(S::LANES) {
                unsafe { self.tile::<S, F, T, A, M, NM, true>(s, f, t, &px, o, S::LANES) };
            }
            if kv < self.ks.end {
                unsafe {
                    self.tile::<S, F, T, A, M, NM, false>(s, f, t, &px, kv, self.ks.end - kv)
                };
            }
        }
    }

    /// Channels `o..o + w` of one tile.
    ///
    /// # Safety
    /// As [`output_block`], for the tile `px` describes.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<
        S: Simd,
        F: VecFn<S>,
        T: Cols<S, A, M>,
        const A: usize,
        const M: usize,
        const NM: usize,
        const FULL: bool,
    >(
        &self,
        s: S,
        f: F,
        t: T,
        px: &Px<'_, NM>,
        o: usize,
        w: usize,
    ) {
        let zero = s.splat(0.0);
        let mp = self.m.as_ptr();
        let mut sm = [[zero; A]; M];
        for j in 0..A {
            let mut col = [zero; A];
            for (i, ci) in col.iter_mut().enumerate() {
                // SAFETY: inside `m` (the caller's contract).
                *ci =
                    unsafe { load::<S, FULL>(s, mp.add((i * A + j) * px.stride + px.base + o), w) };
            }
            for (sa, ya) in sm.iter_mut().zip(t.at(s, col)) {
                sa[j] = ya;
            }
        }
        let b = if self.bias.is_null() {
            zero
        } else {
            // SAFETY: the bias holds `k >= o + w` values.
            unsafe { load::<S, FULL>(s, self.bias.add(o), w) }
        };
        for (a, sa) in sm.iter().enumerate().take(px.rows) {
            for (c, yc) in t.at(s, *sa).into_iter().enumerate().take(px.cols) {
                let p = px.dst[a * M + c] + o;
                let mut val = s.add(yc, b);
                if !self.residual.is_null() {
                    // SAFETY: the residual has the output's shape.
                    val = s.add(val, unsafe { load::<S, FULL>(s, self.residual.add(p), w) });
                }
                // SAFETY: pixel `p` is this tile's own.
                unsafe { store::<S, FULL>(s, self.out.ptr.add(p), f.apply(s, val), w) };
            }
        }
    }
}

/// Where one tile's products and output pixels are.
struct Px<'a, const NM: usize> {
    /// Offsets of its output pixels (row-major; those outside the image unused).
    dst: &'a [usize; NM],
    rows: usize,
    cols: usize,
    /// Offset of the tile's products in each point's matrix, and the stride
    /// between points.
    base: usize,
    stride: usize,
}
