//! Activations, one-operand functions and arithmetic with NumPy broadcasting.
//!
//! Two computed operands are brought into one arrangement (the full-size
//! operand's; the other is renamed for free when its data already fits, as
//! squeeze-and-excite's `[N, C, 1, 1]` scale does against an NHWC image).
//! A constant operand is permuted into the computed one's arrangement at
//! import: per channel (or scalar) Add, Sub, Mul and Div become BatchNorms,
//! which the fusion pass folds into the convolution before them.

use super::super::attrs::Attrs;
use super::super::convert::{Importer, Val, View};
use super::super::fold::{self, broadcast_all};
use super::super::proto::{tensor_proto::DataType, NodeProto};
use super::super::tensor::Tensor;
use super::{unsupported_op, R};
use crate::engine::gemm::Activation;
use crate::engine::graph::{BatchNorm, BinOp, Constant, Op, UnaryOp};
use std::rc::Rc;

impl Importer<'_> {
    pub(super) fn elementwise(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let op = node.op_type.as_str();
        let act = match op {
            "Relu" => Some(Activation::Relu),
            "Sigmoid" => Some(Activation::Sigmoid),
            "Tanh" => Some(Activation::Tanh),
            "HardSwish" => Some(Activation::HardSwish),
            "HardSigmoid" => Some(Activation::HardSigmoid {
                alpha: a.float("alpha", 0.2)?,
                beta: a.float("beta", 0.5)?,
            }),
            "LeakyRelu" => Some(Activation::LeakyRelu {
                alpha: a.float("alpha", 0.01)?,
            }),
            "Elu" => Some(Activation::Elu {
                alpha: a.float("alpha", 1.0)?,
            }),
            "Gelu" => match a.string("approximate", "none")?.as_str() {
                "none" => Some(Activation::Gelu),
                "tanh" => None,
                other => return Err(format!("approximate `{other}` is not an ONNX value")),
            },
            "Clip" => Some(self.clip(node, a)?),
            _ => None,
        };
        if let Some(act) = act {
            return self.unary(&node.input[0], name, Op::Activation(act));
        }
        let unary = match op {
            "Abs" => Some(UnaryOp::Abs),
            "Neg" => Some(UnaryOp::Neg),
            "Exp" => Some(UnaryOp::Exp),
            "Log" => Some(UnaryOp::Log),
            "Sqrt" => Some(UnaryOp::Sqrt),
            "Reciprocal" => Some(UnaryOp::Reciprocal),
            "Erf" => Some(UnaryOp::Erf),
            "Floor" => Some(UnaryOp::Floor),
            "Ceil" => Some(UnaryOp::Ceil),
            "Round" => Some(UnaryOp::Round),
            "Sign" => Some(UnaryOp::Sign),
            "Sin" => Some(UnaryOp::Sin),
            "Cos" => Some(UnaryOp::Cos),
            "Softplus" => Some(UnaryOp::Softplus),
            "Softsign" => Some(UnaryOp::Softsign),
            "Mish" => Some(UnaryOp::Mish),
            "Gelu" => Some(UnaryOp::GeluTanh),
            "Selu" => Some(UnaryOp::Selu {
                alpha: a.float("alpha", 1.673_263_2)?,
                gamma: a.float("gamma", 1.050_701)?,
            }),
            "Celu" => Some(UnaryOp::Celu {
                alpha: a.float("alpha", 1.0)?,
            }),
            "ThresholdedRelu" => Some(UnaryOp::ThresholdedRelu {
                alpha: a.float("alpha", 1.0)?,
            }),
            _ => None,
        };
        if let Some(u) = unary {
            return self.unary(&node.input[0], name, Op::Unary(u));
        }
        let bin = match op {
            "Add" => Some(BinOp::Add),
            "Sub" => Some(BinOp::Sub),
            "Mul" => Some(BinOp::Mul),
            "Div" => Some(BinOp::Div),
            "Pow" => Some(BinOp::Pow),
            "PRelu" => Some(BinOp::PRelu),
            _ => None,
        };
        if let Some(b) = bin {
            if node.input.len() != 2 {
                return Err("needs exactly two inputs".into());
            }
            let (x, y) = (
                self.val(&node.input[0])?.clone(),
                self.val(&node.input[1])?.clone(),
            );
            if b == BinOp::PRelu {
                self.unidirectional(&x, &y)?;
            }
            return self.binary(b, x, y, name);
        }
        match op {
            "Sum" | "Max" | "Min" | "Mean" => self.variadic(node, name),
            "Cast" | "CastLike" => {
                let to = if op == "Cast" {
                    a.int("to", 0)?
                } else {
                    match self.val(node.input.get(1).map_or("", String::as_str))? {
                        Val::Const(t) if t.is_int() => DataType::Int64 as i64,
                        _ => DataType::Float as i64,
                    }
                };
                if to == DataType::Float as i64 || to == DataType::Double as i64 {
                    Ok(Val::Act(self.act(&node.input[0])?))
                } else {
                    Err(format!(
                        "Cast of a computed value to {} (the engine computes in FLOAT)",
                        DataType::try_from(to as i32)
                            .map_or("an unknown type", |d| d.as_str_name())
                    ))
                }
            }
            other => Err(unsupported_op(other)),
        }
    }

    fn unary(&mut self, x: &str, name: &str, op: Op) -> R<Val> {
        let v = self.act(x)?;
        if matches!(op, Op::Activation(Activation::None)) {
            return Ok(Val::Act(v));
        }
        let id = self.push(name, op, &[v.id])?;
        Ok(Val::Act(Importer::like(&v, id)))
    }

    fn clip(&self, node: &NodeProto, a: &Attrs) -> R<Activation> {
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
        Ok(match (lo, hi) {
            (l, h) if l <= f32::MIN && h >= f32::MAX => Activation::None,
            (l, h) if l == 0.0 && h >= f32::MAX => Activation::Relu,
            (l, h) if l == 0.0 && h == 6.0 => Activation::Relu6,
            (min, max) => Activation::Clip { min, max },
        })
    }

    /// PRelu's slope broadcasts to the input, never the other way.
    fn unidirectional(&self, x: &Val, y: &Val) -> R<()> {
        let (Val::Act(v), d) = (x, self.dims_of_val(y)) else {
            return Err("PRelu needs a computed input".into());
        };
        let l = self.ldims(v);
        match broadcast_all(&[&l, &d]) {
            Ok(out) if out == l => Ok(()),
            _ => Err(format!("slope {d:?} does not broadcast to the input {l:?}")),
        }
    }

    fn dims_of_val(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Const(t) => t.dims.clone(),
            Val::Act(v) => self.ldims(v),
            _ => vec![],
        }
    }

    /// Prepends unit axes so the view has rank `r`.
    fn extend_rank(&mut self, v: &View, r: usize, name: &str) -> R<View> {
        let l = self.ldims(v);
        if l.len() >= r {
            return Ok(v.clone());
        }
        if self.batched {
            return Err(format!(
                "broadcasting a rank-{} value against rank {r} moves its batch dimension; \
                 export with a fixed batch",
                l.len()
            ));
        }
        let mut to = vec![1; r - l.len()];
        to.extend_from_slice(&l);
        self.reshape(v, &to, name)
    }

    /// `x op y` where at least one operand is computed.
    pub(super) fn binary(&mut self, op: BinOp, x: Val, y: Val, name: &str) -> R<Val> {
        match (x, y) {
            (Val::Act(a), Val::Act(b)) => self.binary_computed(op, &a, &b, name),
            (Val::Act(a), Val::Const(t)) => self.binary_const(op, &a, &t, false, name),
            (Val::Const(t), Val::Act(b)) => self.binary_const(op, &b, &t, true, name),
            (Val::Const(p), Val::Const(q)) => {
                let n = NodeProto {
                    op_type: op.name().into(),
                    output: vec![String::new()],
                    ..Default::default()
                };
                let outs = fold::fold(&n, &Attrs::of(&n), &[Some(p), Some(q)], self.opset)?
                    .ok_or("cannot fold")?;
                Ok(Val::Const(Rc::new(
                    outs.into_iter().next().ok_or("no output")?,
                )))
            }
            _ => Err("reads the output of an unsupported node".into()),
        }
    }

    fn binary_computed(&mut self, op: BinOp, a: &View, b: &View, name: &str) -> R<Val> {
        let r = a.perm.len().max(b.perm.len());
        let a = self.extend_rank(a, r, &format!("{name}.a_rank"))?;
        let b = self.extend_rank(b, r, &format!("{name}.b_rank"))?;
        let (la, lb) = (self.ldims(&a), self.ldims(&b));
        let out = broadcast_all(&[&la, &lb])?;
        let frame: Vec<usize> = if la == out {
            a.perm.clone()
        } else if lb == out {
            b.perm.clone()
        } else {
            (0..r).collect()
        };
        let ia = self.arrange(&a, &frame, &format!("{name}.a"))?;
        let ib = self.arrange(&b, &frame, &format!("{name}.b"))?;
        let o = if op == BinOp::Add {
            Op::Add
        } else {
            Op::Binary(op)
        };
        let id = self.push(name, o, &[ia, ib])?;
        Ok(Val::Act(View { id, perm: frame }))
    }

    fn binary_const(
        &mut self,
        op: BinOp,
        x: &View,
        t: &Tensor,
        value_first: bool,
        name: &str,
    ) -> R<Val> {
        let r = x.perm.len().max(t.dims.len());
        let x = self.extend_rank(x, r, &format!("{name}.rank"))?;
        let mut td = vec![1; r - t.dims.len()];
        td.extend_from_slice(&t.dims);
        let lx = self.ldims(&x);
        let out = broadcast_all(&[&lx, &td])?;
        if self.batched && out.first() != lx.first() {
            return Err(format!(
                "the constant {:?} varies along the batch dimension",
                t.dims
            ));
        }
        if op == BinOp::PRelu && out != lx {
            return Err("PRelu's slope is larger than its input".into());
        }
        // The constant in x's arrangement: physical axis p holds logical inv[p].
        let mut inv = vec![0; r];
        for (l, &p) in x.perm.iter().enumerate() {
            inv[p] = l;
        }
        let shaped = Tensor::f32s(td, t.floats());
        let phys = fold::transpose(&shaped, &inv);
        let xd = &self.dims[x.id];
        let c = xd.last().copied().unwrap_or(1);
        let per_channel =
            out == lx && (phys.numel() == 1 || (phys.dims.last() == Some(&c) && phys.numel() == c));
        if per_channel {
            let v = phys.floats();
            let vals: Vec<f32> = if v.len() == 1 { vec![v[0]; c] } else { v };
            let scale_shift = match (op, value_first) {
                (BinOp::Add, _) => Some((vec![1.0; c], vals)),
                (BinOp::Sub, false) => Some((vec![1.0; c], vals.iter().map(|v| -v).collect())),
                (BinOp::Sub, true) => Some((vec![-1.0; c], vals)),
                (BinOp::Mul, _) => Some((vals, vec![0.0; c])),
                (BinOp::Div, false) => Some((vals.iter().map(|v| 1.0 / v).collect(), vec![0.0; c])),
                _ => None,
            };
            if let Some((scale, shift)) = scale_shift {
                let bn = BatchNorm::affine(scale, shift);
                let id = self.push(name, Op::BatchNorm(bn), &[x.id])?;
                return Ok(Val::Act(Importer::like(&x, id)));
            }
        }
        let value = Constant {
            dims: phys.dims.clone(),
            data: phys.floats(),
        };
        let id = self.push(
            name,
            Op::BinaryConst {
                op,
                value: Box::new(value),
                value_first,
            },
            &[x.id],
        )?;
        Ok(Val::Act(Importer::like(&x, id)))
    }

    /// Sum, Max, Min and Mean of any number of operands, pairwise.
    fn variadic(&mut self, node: &NodeProto, name: &str) -> R<Val> {
        let op = match node.op_type.as_str() {
            "Max" => BinOp::Max,
            "Min" => BinOp::Min,
            _ => BinOp::Add,
        };
        let vals: Vec<Val> = node
            .input
            .iter()
            .filter(|i| !i.is_empty())
            .map(|i| self.val(i).cloned())
            .collect::<R<_>>()?;
        let k = vals.len();
        let mut it = vals.into_iter();
        let mut acc = it.next().ok_or("has no inputs")?;
        for (i, v) in it.enumerate() {
            let n = if i + 2 == k && node.op_type != "Mean" {
                name.to_string()
            } else {
                format!("{name}.{i}")
            };
            acc = self.binary(op, acc, v, &n)?;
        }
        if node.op_type == "Mean" && k > 1 {
            let inv = Val::Const(Rc::new(Tensor::f32s(vec![], vec![1.0 / k as f32])));
            acc = self.binary(BinOp::Mul, acc, inv, name)?;
        }
        Ok(acc)
    }
}
