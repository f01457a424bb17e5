//! One rule per ONNX operator: how a node becomes engine nodes (or a new view
//! of a value, or constants folded at import time), with ONNX's semantics per
//! opset. `image.rs`: convolutions, pooling, normalization, resize;
//! `elementwise.rs`: activations and arithmetic; `shape.rs`: reshaping,
//! slicing, joining and padding; `reduce.rs`: reductions and softmax;
//! `dense.rs`: Gemm and MatMul.

mod dense;
mod elementwise;
mod image;
mod reduce;
mod shape;

use super::attrs::Attrs;
use super::convert::{Importer, Sym, Val};
use super::fold;
use super::proto::NodeProto;
use super::tensor::Tensor;
use super::SUPPORTED_OPS;
use std::rc::Rc;

pub(super) type R<T> = Result<T, String>;

/// Why an operator is not imported.
pub fn unsupported_op(op: &str) -> String {
    format!(
        "operator `{op}` is not supported (joulebench imports {})",
        SUPPORTED_OPS.join(", ")
    )
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
        if node.output.first().is_none_or(|o| o.is_empty()) {
            return Err("the node has no output".into());
        }
        let a = Attrs::of(node);
        let op = node.op_type.as_str();
        if op == "Constant" {
            let t = self.constant_node(&a)?;
            self.vals
                .insert(node.output[0].clone(), Val::Const(Rc::new(t)));
            return Ok(true);
        }
        let vals: Vec<Option<Val>> = node
            .input
            .iter()
            .map(|i| {
                if i.is_empty() {
                    Ok(None)
                } else {
                    self.val(i).cloned().map(Some)
                }
            })
            .collect::<R<_>>()?;
        let all_const = vals.iter().flatten().all(|v| matches!(v, Val::Const(_)));
        if all_const && (SUPPORTED_OPS.contains(&op) || fold_only(op)) {
            let ins: Vec<Option<Rc<Tensor>>> = vals
                .iter()
                .map(|v| match v {
                    Some(Val::Const(t)) => Some(t.clone()),
                    _ => None,
                })
                .collect();
            if let Some(outs) = fold::fold(node, &a, &ins, self.opset)? {
                self.set_outputs(
                    node,
                    outs.into_iter().map(|t| Val::Const(Rc::new(t))).collect(),
                )?;
                return Ok(true);
            }
        }
        if vals
            .iter()
            .flatten()
            .any(|v| matches!(v, Val::Shape { .. }))
            && op != "Reshape"
        {
            let out = self.shape_arith(node, &a, &vals)?;
            self.set_outputs(node, vec![out])?;
            return Ok(true);
        }
        if node.input.first().is_none_or(|i| i.is_empty()) {
            return Err("the node has no (first) input".into());
        }
        let input = |i: usize| node.input.get(i).map(String::as_str).unwrap_or("");
        let outs: Vec<Val> = match op {
            "Conv" => vec![self.conv(node, name, &a)?],
            "ConvTranspose" => vec![self.conv_transpose(node, name, &a)?],
            "MaxPool" | "AveragePool" => vec![self.pool(node, name, &a)?],
            "GlobalAveragePool" | "GlobalMaxPool" => vec![self.global_pool(node, name)?],
            "BatchNormalization" => vec![self.batchnorm(node, name, &a)?],
            "LRN" => vec![self.lrn(node, name, &a)?],
            "Resize" | "Upsample" => vec![self.resize(node, name, &a)?],
            "Gemm" => vec![self.gemm(node, name, &a)?],
            "MatMul" => vec![self.matmul(node, name)?],
            "Reshape" => vec![self.reshape_node(node, name, &a)?],
            "Flatten" => vec![self.flatten(input(0), name, a.int("axis", 1)?)?],
            "Squeeze" | "Unsqueeze" => vec![self.squeeze(node, name, &a)?],
            "Transpose" => vec![self.transpose(node, &a)?],
            "Slice" => vec![self.slice(node, name, &a)?],
            "Split" => self.split(node, name, &a)?,
            "Concat" => vec![self.concat(node, name, &a)?],
            "Pad" => vec![self.pad(node, name, &a)?],
            "Shape" | "Size" => vec![self.shape_of(node, &a)?],
            "Softmax" | "LogSoftmax" => vec![self.softmax(node, name, &a)?],
            r if r.starts_with("Reduce") => vec![self.reduce(node, name, &a)?],
            "Identity" => vec![self.val(input(0))?.clone()],
            "Dropout" => {
                // In inference the mask is all ones; models that declare it
                // and never read it (the zoo's AlexNet, VGG) run as they are.
                if node.output.get(1).is_some_and(|m| self.read.contains(m)) {
                    return Err("Dropout's mask output is read, a training feature".into());
                }
                if let Some(t) = self.opt_constant(node, 2)? {
                    if t.scalar().is_some_and(|v| v != 0.0) {
                        return Err("Dropout with training_mode = true is not inference".into());
                    }
                }
                let x = self.val(input(0))?.clone();
                if let Some(o) = node.output.first().filter(|o| !o.is_empty()) {
                    self.vals.insert(o.clone(), x);
                }
                return Ok(false);
            }
            _ => vec![self.elementwise(node, name, &a)?],
        };
        self.set_outputs(node, outs)?;
        Ok(false)
    }

    /// Binds the node's outputs, refusing outputs the rule does not produce.
    fn set_outputs(&mut self, node: &NodeProto, outs: Vec<Val>) -> R<()> {
        if let Some((i, extra)) = node
            .output
            .iter()
            .enumerate()
            .skip(outs.len())
            .find(|(_, o)| !o.is_empty())
        {
            return Err(format!(
                "its output {i} `{extra}` is not supported (only the first {})",
                outs.len()
            ));
        }
        for (o, v) in node.output.iter().zip(outs) {
            if !o.is_empty() {
                self.vals.insert(o.clone(), v);
            }
        }
        Ok(())
    }

    fn constant_node(&self, a: &Attrs) -> R<Tensor> {
        if let Some(t) = a.tensor("value", self.base)? {
            return Ok(t);
        }
        if a.has("value_float") {
            return Ok(Tensor::f32s(vec![], vec![a.float("value_float", 0.0)?]));
        }
        if let Some(v) = a.floats("value_floats")? {
            return Ok(Tensor::f32s(vec![v.len()], v));
        }
        if a.has("value_int") {
            return Ok(Tensor::i64s(vec![], vec![a.int("value_int", 0)?]));
        }
        if let Some(v) = a.ints("value_ints")? {
            return Ok(Tensor::i64s(vec![v.len()], v));
        }
        Err("only value, value_float(s) and value_int(s) constants are supported".into())
    }

    /// Shape vectors with the free batch in them: the exporters' `Shape` →
    /// `Gather`/`Slice` → `Unsqueeze` → `Concat` chains that end in a Reshape.
    fn shape_arith(&mut self, node: &NodeProto, a: &Attrs, vals: &[Option<Val>]) -> R<Val> {
        let op = node.op_type.as_str();
        // A shape value or an integer constant as symbolic elements.
        let sym = |v: &Option<Val>| -> R<(Vec<Sym>, bool)> {
            match v {
                Some(Val::Shape { dims, scalar }) => Ok((dims.to_vec(), *scalar)),
                Some(Val::Const(t)) if t.is_int() && t.dims.len() <= 1 => Ok((
                    t.int_values().into_iter().map(Some).collect(),
                    t.dims.is_empty(),
                )),
                _ => Err(format!(
                    "{op} mixes the free batch size with values the importer cannot follow"
                )),
            }
        };
        let (x, scalar) = sym(&vals[0])?;
        let (dims, scalar) = match op {
            "Identity" | "Cast" => (x, scalar),
            "Gather" if a.int("axis", 0)? == 0 && !scalar => {
                let idx = match &vals.get(1) {
                    Some(Some(Val::Const(t))) => t.clone(),
                    _ => return Err("Gather indices must be constant".into()),
                };
                let n = x.len() as i64;
                let picked = idx
                    .int_values()
                    .iter()
                    .map(|&i| {
                        let j = if i < 0 { i + n } else { i };
                        x.get(j as usize)
                            .copied()
                            .ok_or_else(|| format!("index {i} outside {n}"))
                    })
                    .collect::<R<Vec<_>>>()?;
                (picked, idx.dims.is_empty())
            }
            "Slice" if !scalar => {
                let get = |i: usize| match vals.get(i) {
                    Some(Some(Val::Const(t))) => Ok(Some(t.int_values())),
                    Some(None) | None => Ok(None),
                    _ => Err("Slice bounds must be constant".to_string()),
                };
                let (starts, ends) = if self.opset < 10 {
                    (
                        a.ints("starts")?.unwrap_or_default(),
                        a.ints("ends")?.unwrap_or_default(),
                    )
                } else {
                    (get(1)?.unwrap_or_default(), get(2)?.unwrap_or_default())
                };
                let steps = if self.opset < 10 { None } else { get(4)? };
                let ax = fold::slice_axes(&[x.len()], &starts, &ends, None, steps.as_deref())?;
                let (_, s, len, st) = ax.first().copied().unwrap_or((0, 0, x.len(), 1));
                (
                    (0..len)
                        .map(|i| x[(s as isize + i as isize * st) as usize])
                        .collect(),
                    false,
                )
            }
            "Unsqueeze" if scalar => (x, false),
            "Squeeze" if !scalar && x.len() == 1 => (x, true),
            "Concat" => {
                let mut all = Vec::new();
                for v in vals.iter() {
                    all.extend(sym(v)?.0);
                }
                (all, false)
            }
            _ => {
                return Err(format!(
                    "{op} of a shape that holds the free batch size is not supported; export \
                     with a fixed batch, or reshape with 0 or -1 for the batch"
                ))
            }
        };
        if dims.iter().all(Option::is_some) {
            let v: Vec<i64> = dims.iter().flatten().copied().collect();
            let d = if scalar { vec![] } else { vec![v.len()] };
            return Ok(Val::Const(Rc::new(Tensor::i64s(d, v))));
        }
        Ok(Val::Shape {
            dims: Rc::new(dims),
            scalar,
        })
    }
}

/// Operators that only ever run on constants here (shape arithmetic and
/// weight generation), folded at import.
fn fold_only(op: &str) -> bool {
    matches!(
        op,
        "ConstantOfShape"
            | "Range"
            | "Gather"
            | "Cast"
            | "CastLike"
            | "Expand"
            | "Tile"
            | "Where"
            | "Equal"
            | "Less"
            | "Greater"
            | "LessOrEqual"
            | "GreaterOrEqual"
            | "Not"
            | "And"
            | "Or"
            | "Xor"
            | "Mod"
    )
}
