//! Convolutions, pooling, normalization and resize: the operators that run
//! on NHWC images. A 1-D signal `[N, C, L]` runs as an image of height 1.

use super::super::attrs::Attrs;
use super::super::convert::{Importer, Val, View};
use super::super::proto::NodeProto;
use super::R;
use crate::engine::graph::{
    BatchNorm, Conv, ConvTranspose, Lrn, Nearest, Op, PoolKind, ReduceOp, Resize, ResizeCoord,
    ResizeMode, ValueId, Window,
};

/// Padding `(begin, end)` of one axis for `auto_pad` SAME_UPPER/SAME_LOWER.
fn same_pads(size: usize, eff_k: usize, stride: usize, upper: bool) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + eff_k).saturating_sub(size);
    let small = total / 2;
    if upper {
        (small, total - small)
    } else {
        (total - small, small)
    }
}

/// An image operator's input: the engine value (NHWC), its dims, and whether
/// it was a 1-D signal.
pub(super) struct Image {
    pub id: ValueId,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub one_d: bool,
}

/// A list attribute of a 2-D (or 1-D, widened) window.
fn window_list(a: &Attrs, name: &str, one_d: bool, default: usize) -> R<[usize; 2]> {
    if one_d {
        Ok(match a.usizes(name, 1)? {
            Some(v) => [default, v[0]],
            None => [default; 2],
        })
    } else {
        Ok(match a.usizes(name, 2)? {
            Some(v) => [v[0], v[1]],
            None => [default; 2],
        })
    }
}

impl Importer<'_> {
    /// The value named `x` as an NHWC image (`[N, C, H, W]` or `[N, C, L]`).
    pub(super) fn image(&mut self, x: &str, name: &str) -> R<Image> {
        let v = self.act(x)?;
        let l = self.ldims(&v);
        let (v, one_d) = match l.len() {
            4 => (v, false),
            3 => (
                self.reshape(&v, &[l[0], l[1], 1, l[2]], &format!("{name}.as_2d"))?,
                true,
            ),
            r => {
                return Err(format!(
                    "needs an image [N, C, H, W] or a signal [N, C, L], gets rank {r} (3-D \
                     convolution and pooling are not supported)"
                ))
            }
        };
        let id = self.arrange(&v, &[0, 3, 1, 2], &format!("{name}.nhwc"))?;
        let d = self.dims[id].clone();
        Ok(Image {
            id,
            n: d[0],
            h: d[1],
            w: d[2],
            c: d[3],
            one_d,
        })
    }

    /// The image operator's output value as the ONNX view (back to 1-D if
    /// the input was).
    pub(super) fn image_out(&mut self, id: ValueId, one_d: bool, name: &str) -> R<Val> {
        let v = View {
            id,
            perm: vec![0, 3, 1, 2],
        };
        if !one_d {
            return Ok(Val::Act(v));
        }
        let l = self.ldims(&v);
        Ok(Val::Act(self.reshape(
            &v,
            &[l[0], l[1], l[3]],
            &format!("{name}.as_1d"),
        )?))
    }

    /// Kernel, strides, dilations and pads (with `auto_pad`) of a window.
    fn window(&self, a: &Attrs, k: (usize, usize), x: &Image, dilations: bool) -> R<Window> {
        let strides = window_list(a, "strides", x.one_d, 1)?;
        let dil = if dilations {
            window_list(a, "dilations", x.one_d, 1)?
        } else {
            [1, 1]
        };
        if strides.contains(&0) || dil.contains(&0) {
            return Err("strides and dilations must be at least 1".into());
        }
        let (eh, ew) = (dil[0] * (k.0 - 1) + 1, dil[1] * (k.1 - 1) + 1);
        let auto = a.string("auto_pad", "NOTSET")?;
        let pads = match auto.as_str() {
            "NOTSET" if x.one_d => match a.usizes("pads", 2)? {
                Some(p) => vec![0, p[0], 0, p[1]],
                None => vec![0; 4],
            },
            "NOTSET" => a.usizes("pads", 4)?.unwrap_or(vec![0; 4]),
            "VALID" => vec![0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let up = auto == "SAME_UPPER";
                let (t, b) = same_pads(x.h, eh, strides[0], up);
                let (l, r) = same_pads(x.w, ew, strides[1], up);
                vec![t, l, b, r]
            }
            other => return Err(format!("auto_pad `{other}` is not an ONNX value")),
        };
        Ok(Window {
            kh: k.0,
            kw: k.1,
            stride_h: strides[0],
            stride_w: strides[1],
            pad_top: pads[0],
            pad_left: pads[1],
            pad_bottom: pads[2],
            pad_right: pads[3],
            dilation_h: dil[0],
            dilation_w: dil[1],
        })
    }

    /// Weights `[M, C/g, kH, kW]` (or `[M, C/g, kL]` for 1-D) and the kernel.
    fn kernel(&self, node: &NodeProto, a: &Attrs, x: &Image) -> R<(Vec<f32>, [usize; 4])> {
        let w = self.constant(node.input.get(1).map_or("", String::as_str))?;
        let d = match (&w.dims[..], x.one_d) {
            (&[m, cg, kh, kw], false) => [m, cg, kh, kw],
            (&[m, cg, kl], true) => [m, cg, 1, kl],
            (d, _) => {
                return Err(format!(
                    "weights have dims {d:?}; expected [M, C/group, kH, kW] (or [M, C/group, kL])"
                ))
            }
        };
        if d[2] == 0 || d[3] == 0 {
            return Err("kernel extent is 0".into());
        }
        let ks = window_list(a, "kernel_shape", x.one_d, 0)?;
        if a.has("kernel_shape") && ks != [d[2], d[3]] {
            return Err(format!(
                "kernel_shape {ks:?} differs from the weights' {}x{}",
                d[2], d[3]
            ));
        }
        Ok((w.floats(), d))
    }

    pub(super) fn conv(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let x = self.image(&node.input[0], name)?;
        let (weights, [m, cg, kh, kw]) = self.kernel(node, a, &x)?;
        let group = a.int("group", 1)?;
        let groups = usize::try_from(group)
            .ok()
            .filter(|&g| g >= 1 && cg * g == x.c && m % g == 0)
            .ok_or_else(|| {
                format!(
                    "group {group} with weights of {cg} channels per group does not fit {} \
                     input channels and {m} outputs",
                    x.c
                )
            })?;
        let window = self.window(a, (kh, kw), &x, true)?;
        let bias = match self.opt_constant(node, 2)? {
            Some(b) if b.numel() == m => Some(b.floats()),
            Some(b) => return Err(format!("bias has dims {:?}; expected [{m}]", b.dims)),
            None => None,
        };
        let conv = Conv {
            cin: x.c,
            cout: m,
            groups,
            window,
            weights,
            bias,
        };
        let id = self.push(name, Op::Conv(Box::new(conv)), &[x.id])?;
        self.image_out(id, x.one_d, name)
    }

    pub(super) fn conv_transpose(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let x = self.image(&node.input[0], name)?;
        // Weights are [C, M/g, kH, kW].
        let (weights, [c, og, kh, kw]) = self.kernel(node, a, &x)?;
        let group = a.int("group", 1)?;
        let groups = usize::try_from(group)
            .ok()
            .filter(|&g| g >= 1 && c == x.c && c % g == 0)
            .ok_or_else(|| format!("group {group} does not fit {} input channels", x.c))?;
        let cout = og * groups;
        let strides = window_list(a, "strides", x.one_d, 1)?;
        let dil = window_list(a, "dilations", x.one_d, 1)?;
        let mut opad = window_list(a, "output_padding", x.one_d, 0)?;
        if strides.contains(&0) || dil.contains(&0) {
            return Err("strides and dilations must be at least 1".into());
        }
        let full =
            |i: usize, s: usize, k: usize, d: usize, op: usize| s * (i - 1) + op + d * (k - 1) + 1;
        let auto = a.string("auto_pad", "NOTSET")?;
        let out_shape = if x.one_d {
            a.usizes("output_shape", 1)?.map(|v| [1, v[0]])
        } else {
            a.usizes("output_shape", 2)?.map(|v| [v[0], v[1]])
        };
        let pads: [usize; 4] = if out_shape.is_some() || auto.starts_with("SAME") {
            let want = out_shape.unwrap_or([x.h * strides[0], x.w * strides[1]]);
            let mut p = [0; 4];
            for (i, (&inp, &k)) in [x.h, x.w].iter().zip(&[kh, kw]).enumerate() {
                let f = full(inp, strides[i], k, dil[i], opad[i]);
                let total = f.checked_sub(want[i]).ok_or_else(|| {
                    format!("output_shape {want:?} is larger than the full output")
                })?;
                let (b, e) = if auto == "SAME_LOWER" {
                    (total - total / 2, total / 2)
                } else {
                    (total / 2, total - total / 2)
                };
                p[i] = b;
                p[i + 2] = e;
            }
            p
        } else if auto == "VALID" || auto == "NOTSET" {
            match (a.usizes("pads", if x.one_d { 2 } else { 4 })?, x.one_d) {
                (Some(p), true) => [0, p[0], 0, p[1]],
                (Some(p), false) => [p[0], p[1], p[2], p[3]],
                (None, _) => [0; 4],
            }
        } else {
            return Err(format!("auto_pad `{auto}` is not an ONNX value"));
        };
        if x.one_d {
            opad[0] = 0;
        }
        let bias = match self.opt_constant(node, 2)? {
            Some(b) if b.numel() == cout => Some(b.floats()),
            Some(b) => return Err(format!("bias has dims {:?}; expected [{cout}]", b.dims)),
            None => None,
        };
        let ct = ConvTranspose {
            cin: x.c,
            cout,
            groups,
            window: Window {
                kh,
                kw,
                stride_h: strides[0],
                stride_w: strides[1],
                pad_top: pads[0],
                pad_left: pads[1],
                pad_bottom: pads[2],
                pad_right: pads[3],
                dilation_h: dil[0],
                dilation_w: dil[1],
            },
            output_padding: (opad[0], opad[1]),
            weights,
            bias,
        };
        let id = self.push(name, Op::ConvTranspose(Box::new(ct)), &[x.id])?;
        self.image_out(id, x.one_d, name)
    }

    pub(super) fn pool(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let max = node.op_type == "MaxPool";
        let x = self.image(&node.input[0], name)?;
        if a.int("storage_order", 0)? != 0 {
            return Err(
                "storage_order = 1 only affects the Indices output, which is not supported".into(),
            );
        }
        let n = if x.one_d { 1 } else { 2 };
        if a.usizes("kernel_shape", n)?.is_none() {
            return Err(format!(
                "kernel_shape is required (and must have {n} values)"
            ));
        }
        let k = window_list(a, "kernel_shape", x.one_d, 1)?;
        if k.contains(&0) {
            return Err("kernel extent is 0".into());
        }
        // Dilated pooling came with opset 10 (MaxPool) and 19 (AveragePool).
        let dil_ok = if max {
            self.opset >= 10
        } else {
            self.opset >= 19
        };
        let mut win = self.window(a, (k[0], k[1]), &x, dil_ok)?;
        let count_include_pad = a.int("count_include_pad", 0)? != 0;
        if a.int("ceil_mode", 0)? != 0 {
            // Grow the end padding until the floor formula gives ceil's extent;
            // a window must still start inside the input or its front padding.
            let grow = |size: usize, k: usize, d: usize, st: usize, pb: usize, pe: &mut usize| {
                let ek = d * (k - 1) + 1;
                let span = size + pb + *pe;
                if span < ek {
                    return 0;
                }
                let mut out = (span - ek).div_ceil(st) + 1;
                if (out - 1) * st >= size + pb {
                    out -= 1;
                }
                let need = ((out - 1) * st + ek).saturating_sub(span);
                *pe += need;
                need
            };
            let eh = grow(
                x.h,
                win.kh,
                win.dilation_h,
                win.stride_h,
                win.pad_top,
                &mut win.pad_bottom,
            );
            let ew = grow(
                x.w,
                win.kw,
                win.dilation_w,
                win.stride_w,
                win.pad_left,
                &mut win.pad_right,
            );
            if !max && count_include_pad && eh + ew > 0 {
                return Err(
                    "AveragePool with ceil_mode and count_include_pad is not supported".into(),
                );
            }
        }
        let kind = if max {
            PoolKind::Max
        } else {
            PoolKind::Avg { count_include_pad }
        };
        let id = self.push(name, Op::Pool { kind, window: win }, &[x.id])?;
        self.image_out(id, x.one_d, name)
    }

    /// The permutation that stores logical axis 1 (channels) last.
    fn channels_last(rank: usize) -> Vec<usize> {
        (0..rank)
            .map(|i| match i {
                0 => 0,
                1 => rank - 1,
                i => i - 1,
            })
            .collect()
    }

    /// The value named `x` with its channels (axis 1) stored last.
    fn channels_last_view(&mut self, x: &str, name: &str) -> R<View> {
        let v = self.act(x)?;
        let r = v.perm.len();
        if r < 2 {
            return Err(format!("needs channels in axis 1, gets rank {r}"));
        }
        let want = Self::channels_last(r);
        let id = self.arrange(&v, &want, &format!("{name}.channels_last"))?;
        Ok(View { id, perm: want })
    }

    pub(super) fn global_pool(&mut self, node: &NodeProto, name: &str) -> R<Val> {
        let v = self.channels_last_view(&node.input[0], name)?;
        let r = v.perm.len();
        if r < 3 {
            return Err("needs spatial axes after the channels".into());
        }
        let id = if r == 4 && node.op_type == "GlobalAveragePool" {
            self.push(name, Op::GlobalAvgPool, &[v.id])?
        } else {
            let op = if node.op_type == "GlobalMaxPool" {
                ReduceOp::Max
            } else {
                ReduceOp::Mean
            };
            let axes = (1..r - 1).collect();
            self.push(name, Op::Reduce { op, axes }, &[v.id])?
        };
        Ok(Val::Act(Importer::like(&v, id)))
    }

    pub(super) fn batchnorm(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        if a.int("training_mode", 0)? != 0 {
            return Err("training_mode = 1 is training, not inference".into());
        }
        if self.opset < 9 && a.int("spatial", 1)? == 0 {
            return Err("spatial = 0 (per-activation statistics) is not supported".into());
        }
        let v = self.channels_last_view(&node.input[0], name)?;
        let c = *self.dims[v.id].last().unwrap_or(&1);
        let p = |i: usize| -> R<Vec<f32>> {
            let t = self.constant(node.input.get(i).map_or("", String::as_str))?;
            if t.numel() != c {
                return Err(format!(
                    "parameter {i} has dims {:?}; expected [{c}]",
                    t.dims
                ));
            }
            Ok(t.floats())
        };
        let bn = BatchNorm {
            gamma: p(1)?,
            beta: p(2)?,
            mean: p(3)?,
            var: p(4)?,
            eps: a.float("epsilon", 1e-5)?,
        };
        let id = self.push(name, Op::BatchNorm(bn), &[v.id])?;
        Ok(Val::Act(Importer::like(&v, id)))
    }

    pub(super) fn lrn(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let size = a.int("size", 0)?;
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s >= 1)
            .ok_or("size is required and must be at least 1")?;
        let v = self.channels_last_view(&node.input[0], name)?;
        let l = Lrn {
            size,
            alpha: a.float("alpha", 1e-4)?,
            beta: a.float("beta", 0.75)?,
            bias: a.float("bias", 1.0)?,
        };
        let id = self.push(name, Op::Lrn(l), &[v.id])?;
        Ok(Val::Act(Importer::like(&v, id)))
    }

    pub(super) fn resize(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let upsample = node.op_type == "Upsample";
        let x = self.image(&node.input[0], name)?;
        if x.one_d {
            return Err("resizing a 1-D signal is not supported".into());
        }
        let mode = a.string("mode", "nearest")?;
        let old = upsample || self.opset < 11;
        let coord = if old {
            ResizeCoord::Asymmetric
        } else {
            match a
                .string("coordinate_transformation_mode", "half_pixel")?
                .as_str()
            {
                "half_pixel" => ResizeCoord::HalfPixel,
                "pytorch_half_pixel" => ResizeCoord::PytorchHalfPixel,
                "align_corners" => ResizeCoord::AlignCorners,
                "asymmetric" => ResizeCoord::Asymmetric,
                "half_pixel_symmetric" => ResizeCoord::HalfPixelSymmetric,
                "tf_half_pixel_for_nn" => ResizeCoord::TfHalfPixelForNn,
                other => {
                    return Err(format!(
                        "coordinate_transformation_mode `{other}` is not supported"
                    ))
                }
            }
        };
        let mode = match mode.as_str() {
            "nearest" => {
                let nm = if old {
                    "floor".to_string()
                } else {
                    a.string("nearest_mode", "round_prefer_floor")?
                };
                ResizeMode::Nearest(match nm.as_str() {
                    "round_prefer_floor" => Nearest::RoundPreferFloor,
                    "round_prefer_ceil" => Nearest::RoundPreferCeil,
                    "floor" => Nearest::Floor,
                    "ceil" => Nearest::Ceil,
                    other => return Err(format!("nearest_mode `{other}` is not an ONNX value")),
                })
            }
            "linear" | "bilinear" => ResizeMode::Linear,
            other => {
                return Err(format!(
                    "mode `{other}` is not supported (nearest and linear are)"
                ))
            }
        };
        if a.int("antialias", 0)? != 0 {
            return Err("antialias = 1 is not supported".into());
        }
        let in_dims = [x.n, x.c, x.h, x.w];
        let axes: Vec<usize> = match a.ints("axes")? {
            Some(ax) => ax
                .iter()
                .map(|&v| super::super::fold::norm_axis(v, 4))
                .collect::<R<_>>()?,
            None => (0..4).collect(),
        };
        // Scales and sizes per logical axis (NCHW).
        let scales: Option<Vec<f32>> = if upsample && self.opset < 9 {
            a.floats("scales")?
        } else {
            let i = if old { 1 } else { 2 };
            self.opt_constant(node, i)?
                .filter(|t| t.numel() > 0)
                .map(|t| t.floats())
        };
        let sizes: Option<Vec<i64>> = if old {
            None
        } else {
            self.opt_constant(node, 3)?
                .filter(|t| t.numel() > 0)
                .map(|t| t.int_values())
        };
        let mut scale = [1.0f32; 4];
        let mut out = in_dims;
        match (scales, sizes) {
            (Some(s), None) if s.len() == axes.len() => {
                for (&ax, &v) in axes.iter().zip(&s) {
                    if v <= 0.0 {
                        return Err(format!("scale {v} is not positive"));
                    }
                    scale[ax] = v;
                    out[ax] = (in_dims[ax] as f32 * v).floor() as usize;
                }
            }
            (None, Some(s)) if s.len() == axes.len() => {
                let policy = a.string("keep_aspect_ratio_policy", "stretch")?;
                let ratios: Vec<f32> = axes
                    .iter()
                    .zip(&s)
                    .map(|(&ax, &v)| v as f32 / in_dims[ax] as f32)
                    .collect();
                let pick = match policy.as_str() {
                    "stretch" => None,
                    "not_larger" => ratios.iter().copied().reduce(f32::min),
                    "not_smaller" => ratios.iter().copied().reduce(f32::max),
                    other => return Err(format!("keep_aspect_ratio_policy `{other}`")),
                };
                for (i, &ax) in axes.iter().enumerate() {
                    let r = pick.unwrap_or(ratios[i]);
                    scale[ax] = r;
                    out[ax] = match pick {
                        Some(p) => (in_dims[ax] as f32 * p).round() as usize,
                        None => usize::try_from(s[i]).map_err(|_| "negative size")?,
                    };
                }
            }
            _ => return Err("needs either scales or sizes, one value per axis".into()),
        }
        if out[0] != in_dims[0] || out[1] != in_dims[1] {
            return Err("resizing the batch or channel axes is not supported".into());
        }
        let r = Resize {
            mode,
            coord,
            out_h: out[2],
            out_w: out[3],
            scale_h: scale[2],
            scale_w: scale[3],
        };
        let id = self.push(name, Op::Resize(Box::new(r)), &[x.id])?;
        self.image_out(id, false, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pixel_where_onnx_says() {
        // 5 wide, kernel 2, stride 1: one pixel of padding in total.
        assert_eq!(same_pads(5, 2, 1, true), (0, 1));
        assert_eq!(same_pads(5, 2, 1, false), (1, 0));
        // 7 wide, kernel 3, stride 2: out 4, total (4-1)*2+3-7 = 2.
        assert_eq!(same_pads(7, 3, 2, true), (1, 1));
        // Stride larger than the input needs no padding.
        assert_eq!(same_pads(2, 1, 3, true), (0, 0));
    }
}
