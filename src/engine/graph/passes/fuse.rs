//! Fusion: what follows a layer folded into the layer, so a GEMM's output is
//! written once, finished.
//!
//! - Convolution: a BatchNorm that is its only reader is folded into its
//!   weights and bias; then an Add of another value of the same dims (the
//!   residual, added in the epilogue); then an activation.
//! - Dense, Add, element-wise binaries and a BatchNorm left standing take the
//!   activation that follows them.
//! - Activations are recognised in exporters' spellings too: `x * sigmoid(x)`
//!   is Swish; `clip(x*a + b, lo, hi) * s + t` with `s*lo + t = 0` and
//!   `s*hi + t = 1` (Keras's `relu6(x + 3) / 6`) is HardSigmoid, and `x` times
//!   its HardSigmoid with alpha 1/6, beta 1/2 is HardSwish.

use super::{readers, rebuild};
use crate::engine::gemm::Activation;
use crate::engine::graph::{BatchNorm, BinOp, Graph, Node, Op, ValueId};
use crate::engine::EngineError;

struct Cx<'g> {
    g: &'g Graph,
    dims: Vec<Vec<usize>>,
    readers: Vec<Vec<usize>>,
    outputs: Vec<ValueId>,
    absorbed: Vec<bool>,
    /// Nodes absorbed since the last `take_all`.
    taken: Vec<usize>,
}

/// The tail of a chain folded into a node.
#[derive(Default)]
struct Tail {
    bn: Option<usize>,
    residual: Option<ValueId>,
    act: Activation,
    end: usize,
}

impl Cx<'_> {
    fn take(&mut self, j: usize) {
        self.absorbed[j] = true;
        self.taken.push(j);
    }

    /// The only reader of `v`, when `v` is not a graph output and that reader
    /// is not yet absorbed.
    fn sole(&self, v: usize) -> Option<usize> {
        match self.readers[v][..] {
            [j] if !self.outputs.contains(&v) && !self.absorbed[j] => Some(j),
            _ => None,
        }
    }

    fn op(&self, j: usize) -> &Op {
        &self.g.nodes[j].op
    }

    fn is_act(&self, j: usize) -> bool {
        matches!(self.op(j), Op::Activation(_)) && self.g.nodes[j].act == Activation::None
    }

    /// A BatchNorm that is the same affine map on every channel, as `(s, b)`.
    fn uniform_affine(&self, j: usize) -> Option<(f32, f32)> {
        match self.op(j) {
            Op::BatchNorm(bn) if self.g.nodes[j].act == Activation::None => bn.uniform(),
            _ => None,
        }
    }

    /// The hard sigmoid computed by the chain that starts at `v`'s only
    /// reader: the activation, and the chain's last node.
    fn hard_sigmoid(&self, v: usize) -> Option<(Activation, Vec<usize>)> {
        self.hard_sigmoid_from(self.sole(v)?)
    }

    /// The hard sigmoid computed by the chain starting at node `j`.
    fn hard_sigmoid_from(&self, j: usize) -> Option<(Activation, Vec<usize>)> {
        if self.absorbed[j] {
            return None;
        }
        if let Op::Activation(a @ Activation::HardSigmoid { .. }) = self.op(j) {
            return self.is_act(j).then_some((*a, vec![j]));
        }
        let (s1, b1) = self.uniform_affine(j)?;
        let k = self.sole(j)?;
        let (lo, hi) = match self.op(k) {
            Op::Activation(Activation::Relu6) => (0.0, 6.0),
            Op::Activation(Activation::Clip { min, max }) => (*min, *max),
            _ => return None,
        };
        if !self.is_act(k) {
            return None;
        }
        let close = |x: f32, y: f32| (x - y).abs() <= 1e-6;
        // clip(s1 x + b1, 0, 1) is already a hard sigmoid.
        if close(lo, 0.0) && close(hi, 1.0) {
            let a = Activation::HardSigmoid {
                alpha: s1,
                beta: b1,
            };
            return Some((a, vec![j, k]));
        }
        let l = self.sole(k)?;
        let (s2, b2) = self.uniform_affine(l)?;
        if s2 > 0.0 && close(s2 * lo + b2, 0.0) && close(s2 * hi + b2, 1.0) {
            let a = Activation::HardSigmoid {
                alpha: s2 * s1,
                beta: s2 * b1 + b2,
            };
            return Some((a, vec![j, k, l]));
        }
        None
    }

    /// `Mul(v, f(v))` where `f` is the chain `nodes` ending in a node whose
    /// only reader is that Mul: the Mul.
    fn times_self(&self, v: usize, nodes: &[usize]) -> Option<usize> {
        let end = *nodes.last()?;
        let m = self.sole(end)?;
        let ins = &self.g.nodes[m].inputs;
        let is_mul = matches!(self.op(m), Op::Binary(BinOp::Mul));
        let pair = (ins[0] == v && ins[1] == end) || (ins[1] == v && ins[0] == end);
        // v is read by the chain and the Mul only.
        let others = self.readers[v].iter().all(|&r| r == nodes[0] || r == m);
        (is_mul && pair && others && !self.outputs.contains(&v) && self.dims[v] == self.dims[m])
            .then_some(m)
    }

    /// The activation that follows `v` and the node that ends it, marking
    /// what it absorbs.
    fn activation(&mut self, v: usize) -> (Activation, usize) {
        // x * sigmoid(x).
        for &s in &self.readers[v] {
            if matches!(self.op(s), Op::Activation(Activation::Sigmoid)) && self.is_act(s) {
                if let Some(m) = self.times_self(v, &[s]) {
                    self.take(s);
                    self.take(m);
                    return (Activation::Swish, m);
                }
            }
        }
        if let Some((hs, chain)) = self.hard_sigmoid_any(v) {
            if let Activation::HardSigmoid { alpha, beta } = hs {
                let is_swish = (alpha - 1.0 / 6.0).abs() <= 1e-6 && (beta - 0.5).abs() <= 1e-6;
                if is_swish {
                    if let Some(m) = self.times_self(v, &chain) {
                        chain.iter().for_each(|&j| self.take(j));
                        self.take(m);
                        return (Activation::HardSwish, m);
                    }
                }
            }
            if self.sole(v) == Some(chain[0]) {
                chain.iter().for_each(|&j| self.take(j));
                return (hs, *chain.last().unwrap_or(&v));
            }
        }
        if let Some(j) = self.sole(v) {
            if let (Op::Activation(a), true) = (self.op(j), self.is_act(j)) {
                let a = *a;
                self.take(j);
                return (a, j);
            }
        }
        (Activation::None, v)
    }

    /// A hard sigmoid chain starting at any reader of `v` (for hard swish,
    /// where `v` has two readers).
    fn hard_sigmoid_any(&self, v: usize) -> Option<(Activation, Vec<usize>)> {
        if self.outputs.contains(&v) {
            return None;
        }
        self.readers[v]
            .iter()
            .find_map(|&r| self.hard_sigmoid_from(r))
    }

    /// Conv: BN, residual, activation.
    fn conv_tail(&mut self, v: usize) -> Tail {
        let mut t = Tail {
            end: v,
            ..Tail::default()
        };
        if let Some(j) = self.sole(v) {
            let bn =
                matches!(self.op(j), Op::BatchNorm(_)) && self.g.nodes[j].act == Activation::None;
            // A uniform affine map that starts a hard sigmoid stays in it.
            if bn && self.hard_sigmoid(v).is_none() {
                self.take(j);
                t.bn = Some(j);
                t.end = j;
            }
        }
        if let Some(j) = self.sole(t.end) {
            let n = &self.g.nodes[j];
            if matches!(n.op, Op::Add) && n.act == Activation::None {
                let other = if n.inputs[0] == t.end {
                    n.inputs[1]
                } else {
                    n.inputs[0]
                };
                if other != t.end && self.dims[other] == self.dims[j] {
                    self.take(j);
                    t.residual = Some(other);
                    t.end = j;
                }
            }
        }
        let (act, end) = self.activation(t.end);
        t.act = act;
        t.end = end;
        t
    }
}

/// Folds a BatchNorm into the convolution's weights and bias.
fn fold_bn(conv: &mut crate::engine::graph::Conv, bn: &BatchNorm) {
    let (s, sh) = bn.scale_shift();
    let per = conv.weights.len() / conv.cout.max(1);
    for (o, w) in conv.weights.chunks_exact_mut(per.max(1)).enumerate() {
        w.iter_mut().for_each(|v| *v *= s[o]);
    }
    let bias = sh
        .iter()
        .enumerate()
        .map(|(o, &t)| t + s[o] * conv.bias.as_ref().map_or(0.0, |b| b[o]))
        .collect();
    conv.bias = Some(bias);
}

/// The fusion pass.
pub fn fuse(g: &Graph) -> Result<Graph, EngineError> {
    let dims = g.dims()?;
    let n = g.nodes.len();
    let mut cx = Cx {
        g,
        dims,
        readers: readers(g),
        outputs: g.output_ids(),
        absorbed: vec![false; n],
        taken: Vec::new(),
    };
    let mut nodes: Vec<Option<Node>> = g.nodes.iter().cloned().map(Some).collect();
    let alias: Vec<ValueId> = (0..n).collect();
    for idx in 0..n {
        if cx.absorbed[idx] {
            continue;
        }
        let node = &g.nodes[idx];
        if node.act != Activation::None || !node.op.takes_activation() {
            continue;
        }
        cx.taken.clear();
        let mut fused = node.clone();
        let end = if let Op::Conv(cv) = &node.op {
            let t = cx.conv_tail(idx);
            let mut cv = cv.clone();
            if let Some(j) = t.bn {
                if let Op::BatchNorm(bn) = &g.nodes[j].op {
                    fold_bn(&mut cv, bn);
                }
            }
            fused.op = Op::Conv(cv);
            fused.inputs.extend(t.residual);
            fused.act = t.act;
            t.end
        } else {
            let (act, end) = cx.activation(idx);
            fused.act = act;
            end
        };
        // Runs where the chain ends: a residual may be computed after the head.
        for &j in &cx.taken {
            nodes[j] = None;
        }
        nodes[idx] = None;
        nodes[end] = Some(fused);
    }
    let out = rebuild(g, nodes, &alias);
    out.dims()?;
    Ok(out)
}
