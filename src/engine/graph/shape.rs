//! Shape inference: the per-image `(h, w, c)` of every value, with an error that
//! names the node when a layer cannot apply to its input.

use super::{Graph, Op};
use crate::engine::EngineError;
use serde::Serialize;

/// Per-image shape of a value (NHWC without the batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shape {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Shape {
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.h, self.w, self.c)
    }
}

impl Graph {
    /// Shapes of every value, in node order.
    pub fn shapes(&self) -> Result<Vec<Shape>, EngineError> {
        let (h, w, c) = self.input;
        let mut out: Vec<Shape> = Vec::with_capacity(self.nodes.len());
        for (idx, node) in self.nodes.iter().enumerate() {
            let bad = |why: String| {
                EngineError::Shape(format!(
                    "node {idx} `{}` ({}): {why}",
                    node.name,
                    node.op.kind()
                ))
            };
            for &i in &node.inputs {
                if i >= idx {
                    return Err(bad(format!(
                        "reads value {i}, which is not computed before it"
                    )));
                }
            }
            let arity = match node.op {
                Op::Input => 0,
                Op::Add => 2,
                Op::Concat => node.inputs.len().max(1),
                _ => 1,
            };
            if node.inputs.len() != arity {
                return Err(bad(format!(
                    "takes {arity} inputs, has {}",
                    node.inputs.len()
                )));
            }
            let x = node.inputs.first().map(|&i| out[i]);
            let s = match (&node.op, x) {
                (Op::Input, _) => Shape { h, w, c },
                (_, None) => return Err(bad("missing input".into())),
                (Op::Conv(cv), Some(x)) => {
                    if cv.groups == 0 || cv.cin % cv.groups != 0 || cv.cout % cv.groups != 0 {
                        return Err(bad(format!(
                            "groups {} must divide input channels {} and output channels {}",
                            cv.groups, cv.cin, cv.cout
                        )));
                    }
                    if x.c != cv.cin {
                        return Err(bad(format!(
                            "expects {} input channels, gets {}",
                            cv.cin, x.c
                        )));
                    }
                    let wl = cv.cout * (cv.cin / cv.groups) * cv.window.kh * cv.window.kw;
                    if cv.weights.len() != wl {
                        return Err(bad(format!("has {} weights, needs {wl}", cv.weights.len())));
                    }
                    if cv.bias.as_ref().is_some_and(|b| b.len() != cv.cout) {
                        return Err(bad("bias length differs from output channels".into()));
                    }
                    let (oh, ow) = cv
                        .window
                        .output(x.h, x.w)
                        .ok_or_else(|| bad(format!("window does not fit a {x} input")))?;
                    Shape {
                        h: oh,
                        w: ow,
                        c: cv.cout,
                    }
                }
                (Op::BatchNorm(bn), Some(x)) => {
                    if [bn.gamma.len(), bn.beta.len(), bn.mean.len(), bn.var.len()]
                        .iter()
                        .any(|&l| l != x.c)
                    {
                        return Err(bad(format!("parameters must have {} values", x.c)));
                    }
                    x
                }
                (Op::Activation(_) | Op::Softmax, Some(x)) => x,
                (Op::Pool { window, .. }, Some(x)) => {
                    let (oh, ow) = window
                        .output(x.h, x.w)
                        .ok_or_else(|| bad(format!("window does not fit a {x} input")))?;
                    Shape {
                        h: oh,
                        w: ow,
                        c: x.c,
                    }
                }
                (Op::GlobalAvgPool, Some(x)) => Shape { h: 1, w: 1, c: x.c },
                (Op::Flatten, Some(x)) => Shape {
                    h: 1,
                    w: 1,
                    c: x.len(),
                },
                (Op::Dense(d), Some(x)) => {
                    if x.len() != d.inputs {
                        return Err(bad(format!("expects {} inputs, gets {x}", d.inputs)));
                    }
                    if d.weights.len() != d.inputs * d.outputs
                        || d.bias.as_ref().is_some_and(|b| b.len() != d.outputs)
                    {
                        return Err(bad(
                            "weight or bias size differs from inputs x outputs".into()
                        ));
                    }
                    Shape {
                        h: 1,
                        w: 1,
                        c: d.outputs,
                    }
                }
                (Op::Add, Some(x)) => {
                    let y = out[node.inputs[1]];
                    if x != y {
                        return Err(bad(format!("adds {x} to {y}")));
                    }
                    x
                }
                (Op::Concat, Some(x)) => {
                    let mut c = 0;
                    for &i in &node.inputs {
                        let y = out[i];
                        if (y.h, y.w) != (x.h, x.w) {
                            return Err(bad(format!("concatenates {x} with {y}")));
                        }
                        c += y.c;
                    }
                    Shape { h: x.h, w: x.w, c }
                }
            };
            out.push(s);
        }
        Ok(out)
    }

    /// Floating-point operations per image (multiply-adds count two), over
    /// convolutions and dense layers.
    pub fn flops_per_image(&self) -> Result<f64, EngineError> {
        let shapes = self.shapes()?;
        Ok(self
            .nodes
            .iter()
            .zip(&shapes)
            .map(|(n, s)| match &n.op {
                Op::Conv(c) => {
                    2.0 * (s.h * s.w * c.cout * (c.cin / c.groups) * c.window.kh * c.window.kw)
                        as f64
                }
                Op::Dense(d) => 2.0 * (d.inputs * d.outputs) as f64,
                _ => 0.0,
            })
            .sum())
    }
}
