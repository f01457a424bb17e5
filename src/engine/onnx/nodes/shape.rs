//! Reshaping, transposing, slicing, joining and padding. Transposes are free
//! (a new view); reshapes too unless the data must be reordered; the rest
//! move data with the engine's layout operators.

use super::super::attrs::Attrs;
use super::super::convert::{Importer, Sym, Val, View};
use super::super::fold::{self, norm_axis, resolve_shape, slice_axes, split_sizes, squeeze_dims};
use super::super::proto::NodeProto;
use super::super::tensor::Tensor;
use super::R;
use crate::engine::graph::{Constant, Op, PadMode, SliceAxis};
use std::rc::Rc;

impl Importer<'_> {
    /// Reshape of a computed value to logical dims `to` (one item), keeping
    /// the batch outermost.
    pub(super) fn reshape_to(&mut self, v: &View, to: &[usize], name: &str) -> R<View> {
        let out = self.reshape(v, to, name)?;
        if self.batched && out.perm.first().is_some_and(|&p| p != 0) {
            // The batch must stay the outermost data axis: reorder first.
            let id = self.row_major(v, &format!("{name}.row_major"))?;
            let rm = View {
                id,
                perm: (0..v.perm.len()).collect(),
            };
            return self.reshape(&rm, to, name);
        }
        Ok(out)
    }

    pub(super) fn reshape_node(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let target: Vec<Sym> = if self.opset < 5 {
            a.ints("shape")?
                .ok_or("the shape attribute is required")?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            match self.val(node.input.get(1).map_or("", String::as_str))? {
                Val::Const(t) if t.is_int() => t.int_values().into_iter().map(Some).collect(),
                Val::Shape { dims, .. } => dims.to_vec(),
                _ => return Err("the shape must be an INT64 constant".into()),
            }
        };
        let allowzero = a.int("allowzero", 0)? != 0;
        let v = self.act(&node.input[0])?;
        let l = self.ldims(&v);
        if target.iter().skip(1).any(Option::is_none) {
            return Err("the batch size appears past the first dimension of the shape".into());
        }
        let batchlike = |d: Sym| matches!(d, None | Some(0) | Some(-1));
        if self.batched
            && target
                .first()
                .is_none_or(|&d| !batchlike(d) || d == Some(0) && allowzero)
        {
            return Err(format!(
                "shape {target:?} must keep the batch as its first dimension (0, -1 or the \
                 batch size)"
            ));
        }
        let t: Vec<i64> = target.iter().map(|d| d.unwrap_or(1)).collect();
        let to = resolve_shape(&l, &t, allowzero)?;
        Ok(Val::Act(self.reshape_to(&v, &to, name)?))
    }

    pub(super) fn flatten(&mut self, x: &str, name: &str, axis: i64) -> R<Val> {
        let v = self.act(x)?;
        let l = self.ldims(&v);
        let r = l.len() as i64;
        let ax = if axis < 0 { axis + r } else { axis };
        if !(0..=r).contains(&ax) {
            return Err(format!("axis {axis} is outside rank {r}"));
        }
        if self.batched && ax == 0 {
            return Err("axis 0 would move the batch into the features".into());
        }
        let outer: usize = l[..ax as usize].iter().product();
        let to = vec![outer, l.iter().product::<usize>() / outer.max(1)];
        Ok(Val::Act(self.reshape_to(&v, &to, name)?))
    }

    pub(super) fn squeeze(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let un = node.op_type == "Unsqueeze";
        let axes: Option<Vec<i64>> = if self.opset < 13 {
            a.ints("axes")?
        } else {
            self.opt_constant(node, 1)?.map(|t| t.int_values())
        };
        let v = self.act(&node.input[0])?;
        let l = self.ldims(&v);
        if self.batched {
            let r = if un {
                l.len() + axes.as_ref().map_or(0, Vec::len)
            } else {
                l.len()
            };
            let touches = match &axes {
                Some(ax) => ax.iter().any(|&x| norm_axis(x, r) == Ok(0)),
                None => !un,
            };
            if touches {
                return Err(format!(
                    "{} axis 0 would move the batch dimension{}",
                    node.op_type,
                    if axes.is_none() {
                        " (give the axes)"
                    } else {
                        ""
                    }
                ));
            }
        }
        let to = squeeze_dims(&l, axes.as_deref(), un)?;
        Ok(Val::Act(self.reshape_to(&v, &to, name)?))
    }

    pub(super) fn transpose(&mut self, node: &NodeProto, a: &Attrs) -> R<Val> {
        let v = self.act(&node.input[0])?;
        let r = v.perm.len();
        let perm: Vec<usize> = match a.ints("perm")? {
            Some(p) => p.iter().map(|&x| norm_axis(x, r)).collect::<R<_>>()?,
            None => (0..r).rev().collect(),
        };
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
            return Err(format!("perm {perm:?} does not permute rank {r}"));
        }
        if self.batched && perm.first().is_some_and(|&p| p != 0) {
            return Err(format!(
                "perm {perm:?} moves the batch dimension; export with a fixed batch"
            ));
        }
        Ok(Val::Act(View {
            id: v.id,
            perm: perm.iter().map(|&p| v.perm[p]).collect(),
        }))
    }

    pub(super) fn slice(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let v = self.act(&node.input[0])?;
        let l = self.ldims(&v);
        let ints = |i: usize| -> R<Option<Vec<i64>>> {
            Ok(self.opt_constant(node, i)?.map(|t| t.int_values()))
        };
        let (starts, ends, axes, steps) = if self.opset < 10 {
            (
                a.ints("starts")?.ok_or("starts is required")?,
                a.ints("ends")?.ok_or("ends is required")?,
                a.ints("axes")?,
                None,
            )
        } else {
            (
                ints(1)?.ok_or("starts is required")?,
                ints(2)?.ok_or("ends is required")?,
                ints(3)?,
                ints(4)?,
            )
        };
        let ax = slice_axes(&l, &starts, &ends, axes.as_deref(), steps.as_deref())?;
        let mut out = Vec::new();
        for (i, &(axis, start, len, step)) in ax.iter().enumerate() {
            if axis == 0 && self.batched {
                let whole = starts[i] <= 0 && ends[i] >= i32::MAX as i64 && step == 1;
                if !whole {
                    return Err("slicing the batch dimension is not supported".into());
                }
                continue;
            }
            if start == 0 && len == l[axis] && step == 1 {
                continue;
            }
            out.push(SliceAxis {
                axis: v.perm[axis],
                start,
                step,
                len,
            });
        }
        self.slice_view(&v, out, name)
    }

    fn slice_view(&mut self, v: &View, axes: Vec<SliceAxis>, name: &str) -> R<Val> {
        if axes.is_empty() {
            return Ok(Val::Act(v.clone()));
        }
        let id = self.push(name, Op::Slice { axes }, &[v.id])?;
        Ok(Val::Act(Importer::like(v, id)))
    }

    pub(super) fn split(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Vec<Val>> {
        let v = self.act(&node.input[0])?;
        let l = self.ldims(&v);
        let axis = self.axis(&v, a.int("axis", 0)?, "axis")?;
        let sizes = split_sizes(node, a, self.opt_constant(node, 1)?, l[axis], self.opset)?;
        let mut start = 0;
        let mut outs = Vec::new();
        for (i, len) in sizes.into_iter().enumerate() {
            let s = SliceAxis {
                axis: v.perm[axis],
                start,
                step: 1,
                len,
            };
            start += len;
            outs.push(self.slice_view(&v, vec![s], &format!("{name}.{i}"))?);
        }
        Ok(outs)
    }

    pub(super) fn concat(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        if !a.has("axis") && self.opset >= 4 {
            return Err("axis is required".into());
        }
        let vals: Vec<Val> = node
            .input
            .iter()
            .filter(|i| !i.is_empty())
            .map(|i| self.val(i).cloned())
            .collect::<R<_>>()?;
        let first = vals
            .iter()
            .find_map(|v| match v {
                Val::Act(v) => Some(v.clone()),
                _ => None,
            })
            .ok_or("has no computed input")?;
        let axis = self.axis(&first, a.int("axis", 1)?, "axis")?;
        let frame = first.perm.clone();
        let mut ids = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            let id = match v {
                Val::Act(v) => {
                    if v.perm.len() != frame.len() {
                        return Err("inputs differ in rank".into());
                    }
                    self.arrange(v, &frame, &format!("{name}.in{i}"))?
                }
                Val::Const(t) => self.constant_value(t, &frame, &format!("{name}.const{i}"))?,
                _ => return Err("reads the output of an unsupported node".into()),
            };
            ids.push(id);
        }
        let id = self.push(name, Op::Concat { axis: frame[axis] }, &ids)?;
        Ok(Val::Act(View { id, perm: frame }))
    }

    /// A constant as a computed value stored in arrangement `perm`.
    pub(super) fn constant_value(&mut self, t: &Tensor, perm: &[usize], name: &str) -> R<usize> {
        if t.dims.len() != perm.len() {
            return Err(format!("the constant {:?} differs in rank", t.dims));
        }
        let mut inv = vec![0; perm.len()];
        for (l, &p) in perm.iter().enumerate() {
            inv[p] = l;
        }
        let phys = fold::transpose(&Tensor::f32s(t.dims.clone(), t.floats()), &inv);
        let c = Constant {
            dims: phys.dims.clone(),
            data: phys.floats(),
        };
        self.push(name, Op::Constant(Box::new(c)), &[])
    }

    pub(super) fn pad(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let v = self.act(&node.input[0])?;
        let l = self.ldims(&v);
        let r = l.len();
        let mode = a.string("mode", "constant")?;
        let (pads, value, axes): (Vec<i64>, f32, Option<Vec<i64>>) = if self.opset < 11 {
            (
                a.ints("pads")?.ok_or("pads is required")?,
                a.float("value", 0.0)?,
                None,
            )
        } else {
            let p = self
                .opt_constant(node, 1)?
                .ok_or("pads is required")?
                .int_values();
            let value = match self.opt_constant(node, 2)? {
                Some(t) => t.scalar().ok_or("constant_value must be a scalar")?,
                None => 0.0,
            };
            let axes = self.opt_constant(node, 3)?.map(|t| t.int_values());
            (p, value, axes)
        };
        let axes: Vec<usize> = match axes {
            Some(ax) => ax.iter().map(|&x| norm_axis(x, r)).collect::<R<_>>()?,
            None => (0..r).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(format!("has {} pads for {} axes", pads.len(), axes.len()));
        }
        let mode = match mode.as_str() {
            "constant" => PadMode::Constant(value),
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            "wrap" => PadMode::Wrap,
            other => return Err(format!("mode `{other}` is not an ONNX value")),
        };
        let k = axes.len();
        // Negative pads crop first.
        let mut crop = Vec::new();
        let mut phys = vec![(0usize, 0usize); r];
        for (i, &ax) in axes.iter().enumerate() {
            let (b, e) = (pads[i], pads[i + k]);
            if self.batched && ax == 0 && (b != 0 || e != 0) {
                return Err("padding the batch dimension is not supported".into());
            }
            if b < 0 || e < 0 {
                let (cb, ce) = ((-b).max(0) as usize, (-e).max(0) as usize);
                let len = l[ax]
                    .checked_sub(cb + ce)
                    .ok_or_else(|| format!("pads {pads:?} crop more than axis {ax} holds"))?;
                crop.push(SliceAxis {
                    axis: v.perm[ax],
                    start: cb,
                    step: 1,
                    len,
                });
            }
            phys[v.perm[ax]] = (b.max(0) as usize, e.max(0) as usize);
        }
        let cropped = match self.slice_view(&v, crop, &format!("{name}.crop"))? {
            Val::Act(c) => c,
            _ => unreachable!("slice_view returns a computed value"),
        };
        if phys.iter().all(|&(b, e)| b == 0 && e == 0) {
            return Ok(Val::Act(cropped));
        }
        let id = self.push(name, Op::Pad { pads: phys, mode }, &[cropped.id])?;
        Ok(Val::Act(Importer::like(&cropped, id)))
    }

    pub(super) fn shape_of(&mut self, node: &NodeProto, a: &Attrs) -> R<Val> {
        let v = self.act(&node.input[0])?;
        let l = self.ldims(&v);
        if node.op_type == "Size" {
            if self.batched {
                return Err("Size of a value with a free batch is not a constant".into());
            }
            let n = l.iter().product::<usize>() as i64;
            return Ok(Val::Const(Rc::new(Tensor::i64s(vec![], vec![n]))));
        }
        let r = l.len() as i64;
        let clampi = |x: i64| (if x < 0 { x + r } else { x }).clamp(0, r) as usize;
        let s = clampi(a.int("start", 0)?);
        let e = clampi(a.int("end", r)?).max(s);
        let dims: Vec<Sym> = (s..e)
            .map(|i| {
                if i == 0 && self.batched {
                    None
                } else {
                    Some(l[i] as i64)
                }
            })
            .collect();
        if dims.iter().all(Option::is_some) {
            let v: Vec<i64> = dims.into_iter().flatten().collect();
            return Ok(Val::Const(Rc::new(Tensor::i64s(vec![v.len()], v))));
        }
        Ok(Val::Shape {
            dims: Rc::new(dims),
            scalar: false,
        })
    }
}
