//! One rule per ONNX operator: how a node becomes engine nodes (or an alias,
//! or a constant folded at import time), with ONNX's semantics per opset.

use super::attrs::Attrs;
use super::convert::{Importer, Lay, Val};
use super::proto::NodeProto;
use super::tensor::{Data, Tensor};
use super::SUPPORTED_OPS;
use crate::engine::gemm::Activation;
use crate::engine::graph::{BatchNorm, Conv, Dense, Op, PoolKind, Shape, ValueId, Window};
use std::rc::Rc;

type R<T> = Result<T, String>;

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

impl Importer<'_> {
    /// Converts `node`; `Ok(true)` when it was folded into constants.
    pub fn node(&mut self, node: &NodeProto, name: &str) -> R<bool> {
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(format!(
                "operator `{}` of domain `{}` is not supported (only the default ONNX domain)",
                node.op_type, node.domain
            ));
        }
        let out = node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or("the node has no output")?
            .clone();
        if node.input.first().is_none_or(|i| i.is_empty()) && node.op_type != "Constant" {
            return Err("the node has no (first) input".into());
        }
        let a = Attrs::of(node);
        let input = |i: usize| node.input.get(i).map(String::as_str).unwrap_or("");
        let val = match node.op_type.as_str() {
            "Conv" => self.conv(node, name, &a)?,
            "BatchNormalization" => self.batchnorm(node, name, &a)?,
            "Relu" => self.activation(input(0), name, Activation::Relu)?,
            "Clip" => self.clip(node, name, &a)?,
            "MaxPool" | "AveragePool" => self.pool(node, name, &a)?,
            "GlobalAveragePool" => {
                let (x, lay, s) = self.act(input(0))?;
                if lay != Lay::Img {
                    return Err("GlobalAveragePool needs an image [N, C, H, W]".into());
                }
                let id = self.push(name, Op::GlobalAvgPool, &[x], Shape { h: 1, w: 1, c: s.c });
                Val::Act { id, lay: Lay::Img }
            }
            "Gemm" => self.gemm(node, name, &a)?,
            "MatMul" => self.matmul(node, name)?,
            "Add" | "Mul" => self.binary(node, name)?,
            "Concat" => self.concat(node, name, &a)?,
            "Flatten" => self.flatten(input(0), name, a.int("axis", 1)?)?,
            "Reshape" => self.reshape(node, name, &a)?,
            "Softmax" => self.softmax(input(0), name, &a)?,
            "Identity" => self.val(input(0))?.clone(),
            "Dropout" => {
                if node.output.get(1).is_some_and(|m| !m.is_empty()) {
                    return Err("Dropout's mask output is a training feature; remove it".into());
                }
                if let Some(t) = self.opt_constant(node, 2)? {
                    if t.scalar().is_some_and(|v| v != 0.0) {
                        return Err("Dropout with training_mode = true is not inference".into());
                    }
                }
                self.val(input(0))?.clone()
            }
            "Constant" => Val::Const(Rc::new(self.constant_node(&a)?)),
            other => {
                return Err(format!(
                    "operator `{other}` is not supported (joulebench imports {})",
                    SUPPORTED_OPS.join(", ")
                ))
            }
        };
        if let Some(extra) = node.output.iter().skip(1).find(|o| !o.is_empty()) {
            if !matches!(node.op_type.as_str(), "Dropout") {
                return Err(format!(
                    "its second output `{extra}` is not supported (only the first output)"
                ));
            }
        }
        let folded = matches!(val, Val::Const(_)) && node.op_type != "Identity";
        self.vals.insert(out, val);
        Ok(folded)
    }

    fn activation(&mut self, x: &str, name: &str, act: Activation) -> R<Val> {
        let (id, lay, s) = self.act(x)?;
        if act == Activation::None {
            return Ok(Val::Act { id, lay });
        }
        let id = self.push(name, Op::Activation(act), &[id], s);
        Ok(Val::Act { id, lay })
    }

    fn clip(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let (lo, hi) = if self.opset < 11 {
            (a.float("min", f32::MIN)?, a.float("max", f32::MAX)?)
        } else {
            let bound = |i: usize, d: f32| -> R<f32> {
                match self.opt_constant(node, i)? {
                    None => Ok(d),
                    Some(t) => t
                        .scalar()
                        .ok_or_else(|| format!("Clip bound {i} must be a scalar, is {:?}", t.dims)),
                }
            };
            (bound(1, f32::MIN)?, bound(2, f32::MAX)?)
        };
        let act = match (lo, hi) {
            (l, h) if l <= f32::MIN && h >= f32::MAX => Activation::None,
            (l, h) if l == 0.0 && h >= f32::MAX => Activation::Relu,
            (l, h) if l == 0.0 && h == 6.0 => Activation::Relu6,
            (min, max) => Activation::Clip { min, max },
        };
        self.activation(&node.input[0], name, act)
    }

    /// Kernel, strides, dilations and pads (with `auto_pad`) of a 2-D window.
    fn window(&self, a: &Attrs, k: (usize, usize), s: Shape, dilations: bool) -> R<Window> {
        let strides = a.usizes("strides", 2)?.unwrap_or(vec![1, 1]);
        let dil = if dilations {
            a.usizes("dilations", 2)?.unwrap_or(vec![1, 1])
        } else {
            vec![1, 1]
        };
        if strides.contains(&0) || dil.contains(&0) {
            return Err("strides and dilations must be at least 1".into());
        }
        let (eh, ew) = (dil[0] * (k.0 - 1) + 1, dil[1] * (k.1 - 1) + 1);
        let auto = a.string("auto_pad", "NOTSET")?;
        let pads = match auto.as_str() {
            "NOTSET" => a.usizes("pads", 4)?.unwrap_or(vec![0; 4]),
            "VALID" => vec![0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let up = auto == "SAME_UPPER";
                let (t, b) = same_pads(s.h, eh, strides[0], up);
                let (l, r) = same_pads(s.w, ew, strides[1], up);
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

    fn conv(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let (x, lay, s) = self.act(&node.input[0])?;
        if lay != Lay::Img {
            return Err(
                "Conv needs an image [N, C, H, W] (1-D and 3-D convolutions are not supported)"
                    .into(),
            );
        }
        let w = self.constant(node.input.get(1).map_or("", String::as_str))?;
        let [m, cg, kh, kw] = w.dims[..] else {
            return Err(format!(
                "weights have dims {:?}; expected [M, C/group, kH, kW]",
                w.dims
            ));
        };
        if let Some(ks) = a.usizes("kernel_shape", 2)? {
            if ks != [kh, kw] {
                return Err(format!(
                    "kernel_shape {ks:?} differs from the weights' {kh}x{kw}"
                ));
            }
        }
        let group = a.int("group", 1)?;
        let groups = usize::try_from(group)
            .ok()
            .filter(|&g| g >= 1 && cg * g == s.c && m % g == 0)
            .ok_or_else(|| {
                format!(
                    "group {group} with weights {:?} does not fit {} input channels",
                    w.dims, s.c
                )
            })?;
        if kh == 0 || kw == 0 {
            return Err("kernel extent is 0".into());
        }
        let window = self.window(a, (kh, kw), s, true)?;
        let (oh, ow) = window
            .output(s.h, s.w)
            .ok_or_else(|| format!("the window does not fit the {}x{} input", s.h, s.w))?;
        let bias = match self.opt_constant(node, 2)? {
            Some(b) if b.numel() == m => Some(b.floats()),
            Some(b) => return Err(format!("bias has dims {:?}; expected [{m}]", b.dims)),
            None => None,
        };
        let conv = Conv {
            cin: s.c,
            cout: m,
            groups,
            window,
            weights: w.floats(),
            bias,
        };
        let id = self.push(
            name,
            Op::Conv(Box::new(conv)),
            &[x],
            Shape { h: oh, w: ow, c: m },
        );
        Ok(Val::Act { id, lay: Lay::Img })
    }

    fn batchnorm(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        if a.int("training_mode", 0)? != 0 {
            return Err("training_mode = 1 is training, not inference".into());
        }
        if self.opset < 9 && a.int("spatial", 1)? == 0 {
            return Err("spatial = 0 (per-activation statistics) is not supported".into());
        }
        let (x, lay, s) = self.act(&node.input[0])?;
        if matches!(lay, Lay::Flat { .. }) {
            return Err("BatchNormalization of a flattened image is not supported".into());
        }
        let p = |i: usize| -> R<Vec<f32>> {
            let t = self.constant(node.input.get(i).map_or("", String::as_str))?;
            if t.numel() != s.c {
                return Err(format!(
                    "parameter {i} has dims {:?}; expected [{}]",
                    t.dims, s.c
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
        let id = self.push(name, Op::BatchNorm(bn), &[x], s);
        Ok(Val::Act { id, lay })
    }

    fn pool(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let max = node.op_type == "MaxPool";
        let (x, lay, s) = self.act(&node.input[0])?;
        if lay != Lay::Img {
            return Err(format!("{} needs an image [N, C, H, W]", node.op_type));
        }
        if a.int("storage_order", 0)? != 0 {
            return Err(
                "storage_order = 1 only affects the Indices output, which is not supported".into(),
            );
        }
        let k = a
            .usizes("kernel_shape", 2)?
            .ok_or("kernel_shape is required (and must have 2 values)")?;
        if k.contains(&0) {
            return Err("kernel extent is 0".into());
        }
        // Dilated pooling came with opset 10 (MaxPool) and 19 (AveragePool).
        let dil_ok = if max {
            self.opset >= 10
        } else {
            self.opset >= 19
        };
        let mut win = self.window(a, (k[0], k[1]), s, dil_ok)?;
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
                s.h,
                win.kh,
                win.dilation_h,
                win.stride_h,
                win.pad_top,
                &mut win.pad_bottom,
            );
            let ew = grow(
                s.w,
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
        let (oh, ow) = win
            .output(s.h, s.w)
            .ok_or_else(|| format!("the window does not fit the {}x{} input", s.h, s.w))?;
        let kind = if max {
            PoolKind::Max
        } else {
            PoolKind::Avg { count_include_pad }
        };
        let id = self.push(
            name,
            Op::Pool { kind, window: win },
            &[x],
            Shape {
                h: oh,
                w: ow,
                c: s.c,
            },
        );
        Ok(Val::Act { id, lay: Lay::Img })
    }

    /// A 2-D activation input of a fully connected layer: value and features.
    fn features(&self, x: &str) -> R<(ValueId, usize)> {
        let (id, lay, s) = self.act(x)?;
        match lay {
            Lay::Scalar => Err("needs a 2-D input [N, K], gets [N]".into()),
            Lay::Img | Lay::Seq if s.h * s.w != 1 => Err(format!(
                "needs a 2-D input [N, K], gets an image {}; add a Flatten",
                self.layout(id, lay).describe()
            )),
            // The engine's Dense reads weights in NCHW order only straight after a Flatten.
            Lay::Flat { .. } if !matches!(self.graph.nodes[id].op, Op::Flatten) => {
                Err("a flattened image must reach the fully connected layer directly".into())
            }
            _ => Ok((id, s.len())),
        }
    }

    fn dense(
        &mut self,
        name: &str,
        x: ValueId,
        k: usize,
        weights: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Val {
        let n = weights.len() / k;
        let d = Dense {
            inputs: k,
            outputs: n,
            weights,
            bias,
        };
        let id = self.push(
            name,
            Op::Dense(Box::new(d)),
            &[x],
            Shape { h: 1, w: 1, c: n },
        );
        Val::Act { id, lay: Lay::Vec }
    }

    fn gemm(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        if a.int("transA", 0)? != 0 {
            return Err(
                "transA = 1 would transpose the batch; only transA = 0 is supported".into(),
            );
        }
        let (x, k) = self.features(&node.input[0])?;
        let b = self.constant(node.input.get(1).map_or("", String::as_str))?;
        let trans_b = a.int("transB", 0)? != 0;
        let (alpha, beta) = (a.float("alpha", 1.0)?, a.float("beta", 1.0)?);
        let [r, c] = b.dims[..] else {
            return Err(format!("B has dims {:?}; expected 2-D", b.dims));
        };
        let (bk, n) = if trans_b { (c, r) } else { (r, c) };
        if bk != k {
            return Err(format!(
                "B has dims {:?}, which does not fit {k} input features",
                b.dims
            ));
        }
        let wts = dense_weights(&b.floats(), k, n, trans_b, alpha);
        let bias = match self.opt_constant(node, 2)? {
            None => None,
            Some(cst) if cst.numel() == 1 => Some(vec![beta * cst.floats()[0]; n]),
            Some(cst) if cst.numel() == n && cst.dims.last() == Some(&n) => {
                Some(cst.floats().iter().map(|v| beta * v).collect())
            }
            Some(cst) => {
                return Err(format!(
                    "C has dims {:?}; only a bias of [{n}], [1, {n}] or a scalar is supported",
                    cst.dims
                ))
            }
        };
        Ok(self.dense(name, x, k, wts, bias))
    }

    fn matmul(&mut self, node: &NodeProto, name: &str) -> R<Val> {
        let (x, k) = self.features(&node.input[0])?;
        let b = self.constant(node.input.get(1).map_or("", String::as_str))?;
        let [bk, n] = b.dims[..] else {
            return Err(format!(
                "B has dims {:?}; only a 2-D constant B is supported",
                b.dims
            ));
        };
        if bk != k {
            return Err(format!(
                "B has dims {:?}, which does not fit {k} input features",
                b.dims
            ));
        }
        let wts = dense_weights(&b.floats(), k, n, false, 1.0);
        Ok(self.dense(name, x, k, wts, None))
    }

    /// A constant broadcast over an activation, as one value per channel.
    fn per_channel(&self, t: &Tensor, id: ValueId, lay: Lay) -> R<Vec<f32>> {
        let s = self.shapes[id];
        if t.numel() == 1 {
            return Ok(vec![t.floats()[0]; s.c]);
        }
        // ONNX broadcasting aligns trailing dims; the channel is dim 1 of [N, C, ...].
        let rank = match lay {
            Lay::Flat { .. } => 0,
            l => l.rank() as usize,
        };
        let ok = rank >= 2 && t.dims.len() <= rank && {
            let mut d = vec![1usize; rank - t.dims.len()];
            d.extend_from_slice(&t.dims);
            d[1] == s.c && d.iter().enumerate().all(|(i, &v)| i == 1 || v == 1)
        };
        if !ok {
            return Err(format!(
                "broadcasts a constant of dims {:?} over {}; only per-channel or scalar \
                 constants are supported",
                t.dims,
                self.layout(id, lay).describe()
            ));
        }
        Ok(t.floats())
    }

    fn binary(&mut self, node: &NodeProto, name: &str) -> R<Val> {
        let add = node.op_type == "Add";
        if self.opset < 7 || node.input.len() != 2 {
            return Err("needs exactly two inputs".into());
        }
        let (va, vb) = (
            self.val(&node.input[0])?.clone(),
            self.val(&node.input[1])?.clone(),
        );
        match (va, vb) {
            (Val::Const(p), Val::Const(q)) => {
                fold_binary(&p, &q, add).map(|t| Val::Const(Rc::new(t)))
            }
            (Val::Act { id: x, lay: lx }, Val::Act { id: y, lay: ly }) => {
                if !add {
                    return Err(
                        "Mul of two computed values is not supported (only by a constant)".into(),
                    );
                }
                let (sx, sy) = (self.shapes[x], self.shapes[y]);
                let flat = |l: Lay| matches!(l, Lay::Flat { .. });
                if sx != sy || (flat(lx) || flat(ly)) && lx != ly {
                    return Err(format!(
                        "adds {} to {}; only equal shapes are supported",
                        self.layout(x, lx).describe(),
                        self.layout(y, ly).describe()
                    ));
                }
                let id = self.push(name, Op::Add, &[x, y], sx);
                Ok(Val::Act { id, lay: lx })
            }
            (Val::Act { id, lay }, Val::Const(t)) | (Val::Const(t), Val::Act { id, lay }) => {
                let v = self.per_channel(&t, id, lay)?;
                let c = v.len();
                let bn = if add {
                    BatchNorm::affine(vec![1.0; c], v)
                } else {
                    BatchNorm::affine(v, vec![0.0; c])
                };
                let s = self.shapes[id];
                let nid = self.push(name, Op::BatchNorm(bn), &[id], s);
                Ok(Val::Act { id: nid, lay })
            }
            _ => Err("reads the output of an unsupported node".into()),
        }
    }

    fn concat(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        if !a.has("axis") && self.opset >= 4 {
            return Err("axis is required".into());
        }
        let axis = a.int("axis", 1)?;
        let vals: Vec<Val> = node
            .input
            .iter()
            .map(|i| self.val(i).cloned())
            .collect::<R<_>>()?;
        if vals.iter().all(|v| matches!(v, Val::Const(_))) {
            let ts: Vec<&Tensor> = vals
                .iter()
                .filter_map(|v| match v {
                    Val::Const(t) => Some(t.as_ref()),
                    _ => None,
                })
                .collect();
            return fold_concat(&ts, axis).map(|t| Val::Const(Rc::new(t)));
        }
        let mut ids = Vec::new();
        let mut lay0 = None;
        for i in &node.input {
            let (id, lay, _) = self.act(i)?;
            if matches!(lay, Lay::Flat { .. }) {
                return Err("Concat of flattened images is not supported".into());
            }
            lay0.get_or_insert(lay);
            ids.push(id);
        }
        let lay = lay0.ok_or("has no inputs")?;
        let rank = lay.rank();
        if lay == Lay::Scalar {
            return Err("Concat of rank-1 values would concatenate along the batch".into());
        }
        if axis != 1 && axis != 1 - rank {
            return Err(format!(
                "axis {axis}: only concatenation along channels (axis 1) is supported"
            ));
        }
        let s0 = self.shapes[ids[0]];
        let mut c = 0;
        for &i in &ids {
            let s = self.shapes[i];
            if (s.h, s.w) != (s0.h, s0.w) {
                return Err("inputs differ in height or width".into());
            }
            c += s.c;
        }
        let id = self.push(
            name,
            Op::Concat,
            &ids,
            Shape {
                h: s0.h,
                w: s0.w,
                c,
            },
        );
        Ok(Val::Act { id, lay })
    }

    fn flatten(&mut self, x: &str, name: &str, axis: i64) -> R<Val> {
        if let Val::Const(t) = self.val(x)? {
            let r = t.dims.len() as i64;
            let ax = if axis < 0 { axis + r } else { axis };
            if !(0..=r).contains(&ax) {
                return Err(format!("axis {axis} is outside rank {r}"));
            }
            let outer: usize = t.dims[..ax as usize].iter().product();
            let dims = vec![outer, t.numel() / outer.max(1)];
            return Ok(Val::Const(Rc::new(Tensor {
                dims,
                data: t.data.clone(),
            })));
        }
        let (id, lay, s) = self.act(x)?;
        let rank = lay.rank();
        if lay == Lay::Scalar || (axis != 1 && axis != 1 - rank) {
            return Err(format!(
                "axis {axis} would mix the batch into the features; only axis 1 is supported"
            ));
        }
        self.flatten_value(id, lay, s, name)
    }

    /// `[N, C, H, W]` to `[N, C*H*W]`.
    fn flatten_value(&mut self, id: ValueId, lay: Lay, s: Shape, name: &str) -> R<Val> {
        Ok(match lay {
            Lay::Img | Lay::Seq if s.h * s.w == 1 => Val::Act { id, lay: Lay::Vec },
            Lay::Img | Lay::Seq => {
                let nid = self.push(
                    name,
                    Op::Flatten,
                    &[id],
                    Shape {
                        h: 1,
                        w: 1,
                        c: s.len(),
                    },
                );
                Val::Act {
                    id: nid,
                    lay: Lay::Flat {
                        h: s.h,
                        w: s.w,
                        c: s.c,
                    },
                }
            }
            _ => Val::Act { id, lay },
        })
    }

    fn reshape(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let target: Vec<i64> = if self.opset < 5 {
            a.ints("shape")?.ok_or("the shape attribute is required")?
        } else {
            let t = self.constant(node.input.get(1).map_or("", String::as_str))?;
            t.ints()
                .ok_or("the shape must be an INT64 constant")?
                .to_vec()
        };
        let allowzero = a.int("allowzero", 0)? != 0;
        let x = &node.input[0];
        if let Val::Const(t) = self.val(x)? {
            let dims = resolve_shape(&t.dims, &target, allowzero)?;
            return Ok(Val::Const(Rc::new(Tensor {
                dims,
                data: t.data.clone(),
            })));
        }
        let (id, lay, s) = self.act(x)?;
        let in_dims = self.layout(id, lay).dims(0);
        let batchlike =
            |d: i64| d == 0 || d == -1 || self.fixed_batch.is_some_and(|b| d == b as i64);
        let rest = &target[1.min(target.len())..];
        if target.is_empty() || !batchlike(target[0]) || rest.contains(&-1) && target[0] == -1 {
            return Err(format!(
                "shape {target:?} must keep the batch as its first dimension (0, -1 or the model's batch)"
            ));
        }
        // Per-image dims the target asks for (0 copies the input's dim).
        let mut want: Vec<i64> = rest
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if d == 0 && !allowzero {
                    in_dims.get(i + 1).map_or(-2, |&v| v as i64)
                } else {
                    d
                }
            })
            .collect();
        let known: i64 = want.iter().filter(|&&d| d > 0).product();
        let per = s.len() as i64;
        if let Some(p) = want.iter().position(|&d| d == -1) {
            if known == 0 || per % known != 0 {
                return Err(format!(
                    "cannot infer the -1 in {target:?} from {per} values per image"
                ));
            }
            want[p] = per / known;
        }
        if want.iter().any(|&d| d <= 0) || want.iter().product::<i64>() != per {
            return Err(format!(
                "shape {target:?} does not hold the {} input",
                self.layout(id, lay).describe()
            ));
        }
        let spatial_one = s.h * s.w == 1;
        match want.as_slice() {
            [_] => self.flatten_value(id, lay, s, name),
            [c, 1, 1] if *c as usize == s.c && spatial_one && !matches!(lay, Lay::Flat { .. }) => {
                Ok(Val::Act { id, lay: Lay::Img })
            }
            w if w
                .iter()
                .map(|&d| d as usize)
                .eq(in_dims[1..].iter().copied()) =>
            {
                Ok(Val::Act { id, lay })
            }
            _ => Err(format!(
                "reshaping {} to {target:?} is not supported (only flattening, [N, C] <-> \
                 [N, C, 1, 1] and identity)",
                self.layout(id, lay).describe()
            )),
        }
    }

    fn softmax(&mut self, x: &str, name: &str, a: &Attrs) -> R<Val> {
        let (id, lay, s) = self.act(x)?;
        let rank = lay.rank();
        let default = if self.opset < 13 { 1 } else { -1 };
        let mut axis = a.int("axis", default)?;
        if axis < 0 {
            axis += rank;
        }
        let over_channels = match lay {
            // Before opset 13 the input is flattened from `axis` on.
            Lay::Img | Lay::Seq if self.opset < 13 => axis == 1 && s.h * s.w == 1,
            Lay::Img | Lay::Seq => axis == 1,
            Lay::Scalar => false,
            _ => axis == 1,
        };
        if !over_channels {
            return Err(format!(
                "softmax over axis {axis} of {} is not supported (only over channels)",
                self.layout(id, lay).describe()
            ));
        }
        let id = self.push(name, Op::Softmax, &[id], s);
        Ok(Val::Act { id, lay })
    }

    fn constant_node(&self, a: &Attrs) -> R<Tensor> {
        if let Some(t) = a.tensor("value", self.base)? {
            return Ok(t);
        }
        if a.has("value_float") {
            return Ok(Tensor {
                dims: vec![],
                data: Data::F32(vec![a.float("value_float", 0.0)?]),
            });
        }
        if let Some(v) = a.floats("value_floats")? {
            return Ok(Tensor {
                dims: vec![v.len()],
                data: Data::F32(v),
            });
        }
        if a.has("value_int") {
            return Ok(Tensor {
                dims: vec![],
                data: Data::I64(vec![a.int("value_int", 0)?]),
            });
        }
        if let Some(v) = a.ints("value_ints")? {
            return Ok(Tensor {
                dims: vec![v.len()],
                data: Data::I64(v),
            });
        }
        Err("only value, value_float(s) and value_int(s) constants are supported".into())
    }
}

/// Dense weights `[n][k]` scaled by `alpha`, from B as `[k][n]`, or as
/// `[n][k]` already when `trans_b` (Gemm's transB).
fn dense_weights(b: &[f32], k: usize, n: usize, trans_b: bool, alpha: f32) -> Vec<f32> {
    let mut w = vec![0.0f32; n * k];
    for o in 0..n {
        for i in 0..k {
            w[o * k + i] = alpha * if trans_b { b[o * k + i] } else { b[i * n + o] };
        }
    }
    w
}

/// Reshape target dims for a constant (0 copies, -1 infers).
fn resolve_shape(dims: &[usize], target: &[i64], allowzero: bool) -> R<Vec<usize>> {
    let n: usize = dims.iter().product();
    let mut out: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 && !allowzero {
                dims.get(i).map_or(-2, |&v| v as i64)
            } else {
                d
            }
        })
        .collect();
    let known: i64 = out.iter().filter(|&&d| d >= 0).product();
    if let Some(p) = out.iter().position(|&d| d == -1) {
        if known == 0 || n as i64 % known != 0 {
            return Err(format!("cannot reshape {dims:?} to {target:?}"));
        }
        out[p] = n as i64 / known;
    }
    if out.iter().any(|&d| d < 0) || out.iter().product::<i64>() != n as i64 {
        return Err(format!("cannot reshape {dims:?} to {target:?}"));
    }
    Ok(out.iter().map(|&d| d as usize).collect())
}

/// `p + q` or `p * q` of constants with NumPy broadcasting.
fn fold_binary(p: &Tensor, q: &Tensor, add: bool) -> R<Tensor> {
    let r = p.dims.len().max(q.dims.len());
    let pad = |d: &[usize]| {
        let mut v = vec![1; r - d.len()];
        v.extend_from_slice(d);
        v
    };
    let (pd, qd) = (pad(&p.dims), pad(&q.dims));
    let mut dims = Vec::with_capacity(r);
    for (&a, &b) in pd.iter().zip(&qd) {
        dims.push(match (a, b) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => return Err(format!("cannot broadcast {:?} with {:?}", p.dims, q.dims)),
        });
    }
    let n: usize = dims.iter().product();
    let index = |d: &[usize], mut flat: usize| {
        let mut idx = 0;
        let mut stride = 1;
        for k in (0..r).rev() {
            let coord = flat % dims[k];
            flat /= dims[k];
            if d[k] != 1 {
                idx += coord * stride;
            }
            stride *= d[k];
        }
        idx
    };
    let data = match (&p.data, &q.data) {
        (Data::I64(a), Data::I64(b)) => Data::I64(
            (0..n)
                .map(|i| {
                    let (x, y) = (a[index(&pd, i)], b[index(&qd, i)]);
                    if add {
                        x.wrapping_add(y)
                    } else {
                        x.wrapping_mul(y)
                    }
                })
                .collect(),
        ),
        _ => {
            let (a, b) = (p.floats(), q.floats());
            Data::F32(
                (0..n)
                    .map(|i| {
                        let (x, y) = (a[index(&pd, i)], b[index(&qd, i)]);
                        if add {
                            x + y
                        } else {
                            x * y
                        }
                    })
                    .collect(),
            )
        }
    };
    Ok(Tensor { dims, data })
}

/// Concatenation of constants along `axis`.
fn fold_concat(ts: &[&Tensor], axis: i64) -> R<Tensor> {
    let first = ts.first().ok_or("has no inputs")?;
    let r = first.dims.len() as i64;
    let ax = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&ax) {
        return Err(format!("axis {axis} is outside rank {r}"));
    }
    let ax = ax as usize;
    for t in ts {
        if t.dims.len() != first.dims.len()
            || t.dims
                .iter()
                .zip(&first.dims)
                .enumerate()
                .any(|(i, (a, b))| i != ax && a != b)
        {
            return Err("inputs differ outside the concatenation axis".into());
        }
    }
    let outer: usize = first.dims[..ax].iter().product();
    let mut dims = first.dims.clone();
    dims[ax] = ts.iter().map(|t| t.dims[ax]).sum();
    let ints = ts.iter().all(|t| matches!(t.data, Data::I64(_)));
    let chunk = |t: &Tensor| t.numel() / outer.max(1);
    if ints {
        let mut out = Vec::new();
        for o in 0..outer {
            for t in ts {
                let c = chunk(t);
                out.extend_from_slice(&t.ints().unwrap_or(&[])[o * c..(o + 1) * c]);
            }
        }
        Ok(Tensor {
            dims,
            data: Data::I64(out),
        })
    } else {
        let fs: Vec<Vec<f32>> = ts.iter().map(|t| t.floats()).collect();
        let mut out = Vec::new();
        for o in 0..outer {
            for (t, f) in ts.iter().zip(&fs) {
                let c = chunk(t);
                out.extend_from_slice(&f[o * c..(o + 1) * c]);
            }
        }
        Ok(Tensor {
            dims,
            data: Data::F32(out),
        })
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

    #[test]
    fn constant_folding_broadcasts_like_numpy() {
        let p = Tensor {
            dims: vec![2, 1],
            data: Data::I64(vec![1, 2]),
        };
        let q = Tensor {
            dims: vec![3],
            data: Data::I64(vec![10, 20, 30]),
        };
        let s = fold_binary(&p, &q, true).unwrap();
        assert_eq!(s.dims, vec![2, 3]);
        assert_eq!(s.ints().unwrap(), &[11, 21, 31, 12, 22, 32]);
        let m = fold_binary(&p, &q, false).unwrap();
        assert_eq!(m.ints().unwrap(), &[10, 20, 30, 20, 40, 60]);
        let bad = Tensor {
            dims: vec![2],
            data: Data::I64(vec![1, 2]),
        };
        assert!(fold_binary(&bad, &q, true).is_err());
        let c = fold_concat(&[&p, &p], 1).unwrap();
        assert_eq!(
            (c.dims.clone(), c.ints().unwrap().to_vec()),
            (vec![2, 2], vec![1, 1, 2, 2])
        );
        assert_eq!(
            resolve_shape(&[2, 3, 4], &[0, -1], false).unwrap(),
            vec![2, 12]
        );
        assert!(resolve_shape(&[2, 3, 4], &[5, -1], false).is_err());
    }
}
