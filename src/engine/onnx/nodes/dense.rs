//! Gemm and MatMul with a constant right operand: dense layers over the last
//! axis.

use super::super::attrs::Attrs;
use super::super::convert::{Importer, Val, View};
use super::super::proto::NodeProto;
use super::super::tensor::Tensor;
use super::R;
use crate::engine::graph::{BinOp, Dense, Op};
use std::rc::Rc;

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

impl Importer<'_> {
    /// A dense layer over the last axis of `v` (`k` features).
    fn dense(
        &mut self,
        v: &View,
        k: usize,
        weights: Vec<f32>,
        bias: Option<Vec<f32>>,
        name: &str,
    ) -> R<Val> {
        let id = self.row_major(v, &format!("{name}.rows"))?;
        let d = Dense {
            inputs: k,
            outputs: weights.len() / k.max(1),
            weights,
            bias,
        };
        let out = self.push(name, Op::Dense(Box::new(d)), &[id])?;
        Ok(Val::Act(View {
            id: out,
            perm: (0..v.perm.len()).collect(),
        }))
    }

    pub(super) fn gemm(&mut self, node: &NodeProto, name: &str, a: &Attrs) -> R<Val> {
        let mut v = self.act(&node.input[0])?;
        if v.perm.len() != 2 {
            return Err(format!(
                "A must be 2-D [M, K], is {}; add a Flatten",
                self.layout_of(&v).describe()
            ));
        }
        if a.int("transA", 0)? != 0 {
            if self.batched {
                return Err("transA = 1 would transpose the batch; only transA = 0 is supported with a free batch".into());
            }
            v = View {
                id: v.id,
                perm: vec![v.perm[1], v.perm[0]],
            };
        }
        let l = self.ldims(&v);
        let k = l[1];
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
        let (bias, extra) = match node.input.get(2).filter(|s| !s.is_empty()) {
            None => (None, None),
            Some(cn) => match self.val(cn)?.clone() {
                Val::Const(cst) if cst.numel() == 1 => {
                    (Some(vec![beta * cst.floats()[0]; n]), None)
                }
                Val::Const(cst) if cst.numel() == n && cst.dims.last() == Some(&n) => {
                    (Some(cst.floats().iter().map(|v| beta * v).collect()), None)
                }
                Val::Const(cst) => {
                    let scaled = Tensor::f32s(
                        cst.dims.clone(),
                        cst.floats().iter().map(|v| beta * v).collect(),
                    );
                    (None, Some(Val::Const(Rc::new(scaled))))
                }
                other if beta == 1.0 => (None, Some(other)),
                _ => return Err("a computed C with beta != 1 is not supported".into()),
            },
        };
        let y = self.dense(
            &v,
            k,
            wts,
            bias,
            &if extra.is_some() {
                format!("{name}.matmul")
            } else {
                name.to_string()
            },
        )?;
        match extra {
            Some(c) => self.binary(BinOp::Add, y, c, name),
            None => Ok(y),
        }
    }

    pub(super) fn matmul(&mut self, node: &NodeProto, name: &str) -> R<Val> {
        let v = match self.val(&node.input[0])? {
            Val::Act(v) => v.clone(),
            _ => return Err("only a computed A times a constant B is supported".into()),
        };
        let b = match self.val(node.input.get(1).map_or("", String::as_str))? {
            Val::Const(t) => t.clone(),
            _ => {
                return Err(
                    "MatMul of two computed values is not supported (B must be a constant)".into(),
                )
            }
        };
        let l = self.ldims(&v);
        let k = *l.last().ok_or("A is a scalar")?;
        let (bk, n, vector) = match b.dims[..] {
            [bk, n] => (bk, n, false),
            [bk] => (bk, 1, true),
            _ => {
                return Err(format!(
                    "B has dims {:?}; only a 2-D (or 1-D) constant B is supported",
                    b.dims
                ))
            }
        };
        if bk != k {
            return Err(format!(
                "B has dims {:?}, which does not fit {k} input features",
                b.dims
            ));
        }
        let wts = dense_weights(&b.floats(), k, n, false, 1.0);
        let y = self.dense(&v, k, wts, None, name)?;
        match (vector, y) {
            (true, Val::Act(y)) => {
                let to = &l[..l.len() - 1];
                Ok(Val::Act(self.reshape_to(
                    &y,
                    to,
                    &format!("{name}.vector"),
                )?))
            }
            (_, y) => Ok(y),
        }
    }
}
