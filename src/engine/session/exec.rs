//! Running one step: its inputs and output buffer, the batch put in front of
//! the value's dims (`Nd::batched`), and the operator.

use super::super::gemm::{Axis, BOperand, Epilogue, MatMut, MatRef};
use super::super::ops::binary::binary;
use super::super::ops::nd::{Nd, RANK};
use super::super::ops::{self, layout, norm, par_rows, reduce, resize};
use super::super::simd;
use super::super::EngineError;
use super::compile::Kind;
use super::conv::{run_conv, run_conv_transpose};
use super::Session;

/// Axes of an item's value shifted past the batch axis.
fn shifted<const N: usize>(axes: &[usize]) -> ([usize; N], usize) {
    let mut a = [0; N];
    for (o, &x) in a.iter_mut().zip(axes) {
        *o = x + 1;
    }
    (a, axes.len())
}

impl Session {
    pub(super) fn exec(&mut self, s: usize) -> Result<(), EngineError> {
        let step = &self.steps[s];
        let repeat = self.repeat;
        let ob = self.buf_of[step.output];
        let out_len = self.sizes[step.output] * repeat;
        let mut out = std::mem::take(&mut self.bufs[ob]);
        let res = {
            let bufs = &self.bufs;
            let sizes = &self.sizes;
            let buf_of = &self.buf_of;
            let input = |i: usize| -> &[f32] {
                let v = step.inputs[i];
                &bufs[buf_of[v]].as_slice()[..sizes[v] * repeat]
            };
            let nd = |i: usize| Nd::batched(repeat, &step.in_dims[i]);
            let od = Nd::batched(repeat, &step.out_dims);
            let o = &mut out.as_mut_slice()[..out_len];
            let pool = self.gemm.pool();
            let isa = self.isa;
            // Image operators see `[n * repeat, h, w, c]`.
            let image = |i: usize| {
                let d = &step.in_dims[i];
                (d[0] * repeat, d[1], d[2], d[3])
            };
            match &step.kind {
                Kind::Conv(c) => self.gemm.set_cache(c.cache).and_then(|()| {
                    run_conv(
                        &mut self.gemm,
                        &mut self.scratch,
                        &self.wino,
                        c,
                        input(0),
                        image(0),
                        c.residual.then(|| input(1)),
                        (step.out_dims[1], step.out_dims[2]),
                        o,
                    )
                }),
                Kind::ConvT(c) => {
                    self.gemm.set_cache(self.cache)?;
                    run_conv_transpose(
                        &mut self.gemm,
                        &mut self.scratch,
                        c,
                        input(0),
                        image(0),
                        (step.out_dims[1], step.out_dims[2]),
                        o,
                    )
                }
                Kind::Dense(d) => {
                    self.gemm.set_cache(self.cache)?;
                    let k = step.in_dims[0].last().copied().unwrap_or(1);
                    let n = step.out_dims.last().copied().unwrap_or(1);
                    let rows = out_len / n.max(1);
                    let a = MatRef::row_major(input(0), rows, k)?;
                    let epi = Epilogue {
                        axis: Axis::Col,
                        bias: d.bias.as_deref(),
                        activation: d.act,
                        ..Epilogue::none()
                    };
                    self.gemm.run(
                        1.0,
                        &a,
                        BOperand::Packed(&d.packed),
                        0.0,
                        &mut MatMut::row_major(o, rows, n)?,
                        &epi,
                    )
                }
                Kind::Affine { scale, shift, act } => {
                    let c = scale.len();
                    par_rows(pool, o, c * 64, |r, dst| {
                        let x = &input(0)[r * c * 64..][..dst.len()];
                        ops::affine(x, scale, shift, dst);
                        ops::act_in_place(isa, *act, dst);
                    });
                    Ok(())
                }
                Kind::Act(a) => {
                    par_rows(pool, o, 4096, |r, dst| {
                        simd::activation(isa, *a, &input(0)[r * 4096..][..dst.len()], dst)
                    });
                    Ok(())
                }
                Kind::Unary(u) => {
                    par_rows(pool, o, 4096, |r, dst| {
                        let x = &input(0)[r * 4096..][..dst.len()];
                        dst.iter_mut().zip(x).for_each(|(y, &v)| *y = u.apply(v));
                    });
                    Ok(())
                }
                Kind::Binary { op, act } => {
                    binary(
                        isa,
                        pool,
                        *op,
                        *act,
                        (input(0), &nd(0)),
                        (input(1), &nd(1)),
                        o,
                        &od,
                    );
                    Ok(())
                }
                Kind::BinaryConst {
                    op,
                    value,
                    dims,
                    value_first,
                    act,
                } => {
                    let vd = Nd::batched(1, dims);
                    let x = (input(0), &nd(0));
                    let v = (&value[..], &vd);
                    let (a, b) = if *value_first { (v, x) } else { (x, v) };
                    binary(isa, pool, *op, *act, a, b, o, &od);
                    Ok(())
                }
                Kind::Pool { kind, win } => {
                    let (n, h, w, c) = image(0);
                    let (oh, ow) = (step.out_dims[1], step.out_dims[2]);
                    let _ = n;
                    par_rows(pool, o, ow * c, |r, dst| {
                        ops::pool_row(input(0), (h, w, c), *kind, win, ow, r / oh, r % oh, dst)
                    });
                    Ok(())
                }
                Kind::Gap => {
                    let (_, h, w, c) = image(0);
                    let per = h * w * c;
                    par_rows(pool, o, c, |img, dst| {
                        ops::global_avg(&input(0)[img * per..][..per], c, dst)
                    });
                    Ok(())
                }
                Kind::Lrn(l) => {
                    let c = step.out_dims.last().copied().unwrap_or(1);
                    par_rows(pool, o, c * 16, |r, dst| {
                        norm::lrn(&input(0)[r * c * 16..][..dst.len()], c, l, dst)
                    });
                    Ok(())
                }
                Kind::Resize(rz) => {
                    let (_, h, w, c) = image(0);
                    par_rows(pool, o, rz.out_w * c, |r, dst| {
                        resize::resize_row(input(0), (h, w, c), rz, r / rz.out_h, r % rz.out_h, dst)
                    });
                    Ok(())
                }
                Kind::Concat { axis } => {
                    let mut xs = [(&[][..], Nd::new(&[])); 64];
                    let k = step.inputs.len();
                    if k > xs.len() {
                        return Err(EngineError::Shape(format!(
                            "`{}` concatenates {k} values; at most 64 are supported",
                            step.name
                        )));
                    }
                    for (i, x) in xs.iter_mut().take(k).enumerate() {
                        *x = (input(i), nd(i));
                    }
                    layout::concat(pool, &xs[..k], axis + 1, o, &od);
                    Ok(())
                }
                Kind::Flatten => {
                    layout::transpose(pool, input(0), &nd(0), &[0, 1, 4, 2, 3], o);
                    Ok(())
                }
                Kind::Transpose { perm } => {
                    let (mut p, r) = shifted::<RANK>(perm);
                    p.copy_within(0..r, 1);
                    p[0] = 0;
                    layout::transpose(pool, input(0), &nd(0), &p[..=r], o);
                    Ok(())
                }
                Kind::Slice { axes } => {
                    let mut sh = [super::super::graph::SliceAxis {
                        axis: 0,
                        start: 0,
                        step: 1,
                        len: 0,
                    }; RANK];
                    for (d, a) in sh.iter_mut().zip(axes) {
                        *d = super::super::graph::SliceAxis {
                            axis: a.axis + 1,
                            ..*a
                        };
                    }
                    layout::slice(pool, input(0), &nd(0), &sh[..axes.len()], o, &od);
                    Ok(())
                }
                Kind::Pad { pads, mode } => {
                    let mut p = [(0, 0); RANK];
                    p[1..=pads.len()].copy_from_slice(pads);
                    layout::pad(pool, input(0), &nd(0), &p[..=pads.len()], *mode, o, &od);
                    Ok(())
                }
                Kind::Reduce { op, axes } => {
                    let (a, r) = shifted::<RANK>(axes);
                    reduce::reduce(pool, *op, input(0), &nd(0), &a[..r], o);
                    Ok(())
                }
                Kind::Softmax { axis, log } => {
                    reduce::softmax(pool, input(0), &nd(0), axis + 1, *log, o);
                    Ok(())
                }
            }
        };
        self.bufs[ob] = out;
        res
    }
}
