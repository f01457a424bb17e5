//! Running a convolution step with its algorithm, and a transposed
//! convolution as GEMMs to columns followed by a gather into the output.

use super::super::conv::{self, convgemm::PatchSource, winograd, ConvAlgo, ConvGeom};
use super::super::gemm::{Axis, BOperand, Epilogue, Gemm, MatMut, MatRef};
use super::super::ops::par_rows;
use super::super::EngineError;
use super::compile::{ConvStep, ConvTStep};
use rayon::prelude::*;
use std::sync::Mutex;

/// `x` is `[n, h, w, c]` (`xs`), the output `[n, oh, ow, cout]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_conv(
    gemm: &mut Gemm,
    im2col_buf: &mut [f32],
    wino: &[Mutex<winograd::Worker>],
    c: &ConvStep,
    x: &[f32],
    (n, h, w, cin): (usize, usize, usize, usize),
    residual: Option<&[f32]>,
    (oh, ow): (usize, usize),
    out: &mut [f32],
) -> Result<(), EngineError> {
    let cg = cin / c.groups;
    let og = c.cout / c.groups;
    let geom = ConvGeom {
        n,
        h,
        w,
        c: cin,
        cg,
        oh,
        ow,
        win: c.win,
    };
    if c.algo == ConvAlgo::Depthwise {
        let pool = gemm.pool();
        let row = ow * c.cout;
        let isa = crate::engine::simd::Isa::of(gemm.kernel());
        par_rows(pool, out, row, |r, dst| {
            let tail = conv::depthwise::Tail {
                bias: c.bias.as_deref(),
                residual: residual.map(|rv| &rv[r * row..(r + 1) * row]),
                act: c.act,
            };
            conv::depthwise::row(isa, x, &c.dw, &geom, r / oh, r % oh, &tail, dst);
        });
        return Ok(());
    }
    if let Some(v) = c.algo.winograd() {
        let (_, _, total) = winograd::tiles(v, &geom);
        let tail = winograd::Tail {
            bias: c.bias.as_deref(),
            residual,
            act: c.act,
        };
        let lock = |j: usize| {
            wino[j].lock().map_err(|_| EngineError::ThreadPool {
                threads: wino.len(),
                reason: "a Winograd worker panicked earlier".into(),
            })
        };
        let outp = winograd::OutPtr::new(out);
        let nr = gemm.kernel().nr;
        let panels = c.cout.div_ceil(nr);
        // Fewer than two row panels of tiles per thread (ResNet-50's layer4
        // at batch 1 has 4): split by tiles, every thread would stream all
        // the filters for a handful of tiles. Split by output channels
        // instead: each thread transforms all tiles' input (a few tiles:
        // cheap), multiplies with its share of the filters and transforms
        // its channels' output, so a layer forks once and each thread reads
        // only its share of the filters.
        let by_chans = gemm.threads() > 1 && total < 2 * gemm.threads() * gemm.kernel().mr;
        let jobs = if by_chans {
            wino.len().min(panels)
        } else {
            wino.len().min(total)
        }
        .max(1);
        let per = total.div_ceil(jobs);
        let job = |j: usize| -> Result<(), EngineError> {
            let mut w = lock(j)?;
            let w = &mut *w;
            w.gemm.set_cache(c.cache)?;
            let (range, cols) = if by_chans {
                let (p0, p1) = (j * panels / jobs, (j + 1) * panels / jobs);
                (0..total, p0 * nr..(p1 * nr).min(c.cout))
            } else {
                (j * per..((j + 1) * per).min(total), 0..c.cout)
            };
            winograd::run_tiles(
                v,
                &mut w.gemm,
                &mut w.buf,
                x,
                &geom,
                &c.packed,
                c.cout,
                &tail,
                outp,
                range,
                cols,
            )
        };
        return match gemm.pool() {
            Some(p) if jobs > 1 => p.install(|| (0..jobs).into_par_iter().try_for_each(job)),
            _ => (0..jobs).try_for_each(job),
        };
    }
    let m = geom.rows();
    for (g, packed) in c.packed.iter().enumerate() {
        let col = g * og;
        let mut cm = MatMut::new(&mut out[col..], m, og, c.cout, 1)?;
        let res = match residual {
            Some(r) => Some(MatRef::new(&r[col..], m, og, c.cout, 1)?),
            None => None,
        };
        let epi = Epilogue {
            axis: Axis::Col,
            scale: None,
            bias: c.bias.as_ref().map(|b| &b[col..col + og]),
            residual: res,
            activation: c.act,
        };
        let src = PatchSource {
            x,
            geom,
            c_off: g * cg,
        };
        let b = BOperand::Packed(packed);
        match c.algo {
            ConvAlgo::Pointwise if conv::pointwise::is_direct(&geom) => {
                let a = conv::pointwise::input_matrix(x, &geom, g * cg)?;
                gemm.run(1.0, &a, b, 0.0, &mut cm, &epi)?;
            }
            ConvAlgo::Im2col => {
                let depth = geom.depth();
                let buf = &mut im2col_buf[..m * depth];
                conv::im2col::im2col(&src, buf);
                let a = MatRef::row_major(buf, m, depth)?;
                gemm.run(1.0, &a, b, 0.0, &mut cm, &epi)?;
            }
            _ => gemm.run(1.0, &src, b, 0.0, &mut cm, &epi)?,
        }
    }
    Ok(())
}

/// Transposed convolution of `x` (`[n, h, w, cin]`) into `out`
/// (`[n, oh, ow, cout]`): per group, the GEMM `cols = x * W` gives every
/// input pixel's contribution to each kernel tap, then each output pixel
/// gathers the taps that land on it (so threads write disjoint rows).
pub(super) fn run_conv_transpose(
    gemm: &mut Gemm,
    cols: &mut [f32],
    c: &ConvTStep,
    x: &[f32],
    (n, h, w, cin): (usize, usize, usize, usize),
    (oh, ow): (usize, usize),
    out: &mut [f32],
) -> Result<(), EngineError> {
    let win = &c.win;
    let (cg, og) = (cin / c.groups, c.cout / c.groups);
    let taps = win.kh * win.kw;
    let m = n * h * w;
    for (g, packed) in c.packed.iter().enumerate() {
        let a = MatRef::new(&x[g * cg..], m, cg, cin, 1)?;
        let cbuf = &mut cols[..m * taps * og];
        gemm.run(
            1.0,
            &a,
            BOperand::Packed(packed),
            0.0,
            &mut MatMut::row_major(cbuf, m, taps * og)?,
            &Epilogue::none(),
        )?;
        let cbuf = &*cbuf;
        let row = ow * c.cout;
        par_rows(gemm.pool(), out, row, |r, dst| {
            let (img, oy) = (r / oh, r % oh);
            for ox in 0..ow {
                let o = &mut dst[ox * c.cout + g * og..][..og];
                o.fill(0.0);
                for ky in 0..win.kh {
                    let ty = (oy + win.pad_top) as isize - (ky * win.dilation_h) as isize;
                    if ty < 0 || !(ty as usize).is_multiple_of(win.stride_h) {
                        continue;
                    }
                    let iy = ty as usize / win.stride_h;
                    if iy >= h {
                        continue;
                    }
                    for kx in 0..win.kw {
                        let tx = (ox + win.pad_left) as isize - (kx * win.dilation_w) as isize;
                        if tx < 0 || !(tx as usize).is_multiple_of(win.stride_w) {
                            continue;
                        }
                        let ix = tx as usize / win.stride_w;
                        if ix >= w {
                            continue;
                        }
                        let src = &cbuf
                            [((img * h + iy) * w + ix) * taps * og + (ky * win.kw + kx) * og..]
                            [..og];
                        o.iter_mut().zip(src).for_each(|(a, &b)| *a += b);
                    }
                }
                for (ch, v) in o.iter_mut().enumerate() {
                    let b = c.bias.as_ref().map_or(0.0, |b| b[g * og + ch]);
                    *v = c.act.apply(*v + b);
                }
            }
        });
    }
    Ok(())
}
