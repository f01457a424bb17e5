//! Shape inference: the dims of every value for one batch item, with an error
//! that names the node when an operator cannot apply to its inputs.

use super::{Graph, Op, MAX_RANK};
use crate::engine::EngineError;
use serde::Serialize;

/// A value seen as an NHWC image of one item: `c` the last axis, `w` the one
/// before, `h` the product of the others (the batch axis included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shape {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Shape {
    pub fn of(dims: &[usize]) -> Shape {
        let r = dims.len();
        Shape {
            h: dims[..r.saturating_sub(2)].iter().product(),
            w: if r >= 2 { dims[r - 2] } else { 1 },
            c: dims.last().copied().unwrap_or(1),
        }
    }
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

/// `a` and `b` broadcast NumPy-style (equal ranks).
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    if a.len() != b.len() {
        return None;
    }
    a.iter()
        .zip(b)
        .map(|(&x, &y)| match (x, y) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Dims written `2x3x4`.
pub fn show(dims: &[usize]) -> String {
    if dims.is_empty() {
        return "scalar".into();
    }
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

impl Graph {
    /// Dims of every value for one batch item, in node order.
    pub fn dims(&self) -> Result<Vec<Vec<usize>>, EngineError> {
        let mut out: Vec<Vec<usize>> = Vec::with_capacity(self.nodes.len());
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
            let ins: Vec<&[usize]> = node.inputs.iter().map(|&i| &out[i][..]).collect();
            let d = infer_node(self, &node.op, &ins).map_err(bad)?;
            if d.len() > MAX_RANK {
                return Err(bad(format!("rank {} is above {MAX_RANK}", d.len())));
            }
            out.push(d);
        }
        for o in self.output_ids() {
            if o >= out.len() {
                return Err(EngineError::Shape(format!(
                    "output value {o} does not exist"
                )));
            }
        }
        Ok(out)
    }

    /// Every value as an NHWC image of one item (see [`Shape`]).
    pub fn shapes(&self) -> Result<Vec<Shape>, EngineError> {
        Ok(self.dims()?.iter().map(|d| Shape::of(d)).collect())
    }

    /// Floating-point operations per image (multiply-adds count two), over
    /// convolutions and dense layers.
    pub fn flops_per_image(&self) -> Result<f64, EngineError> {
        let dims = self.dims()?;
        let total: f64 = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let x = n.inputs.first().map_or(&[][..], |&j| &dims[j][..]);
                node_flops(&n.op, x, &dims[i])
            })
            .sum();
        Ok(total / self.fixed_batch.unwrap_or(1) as f64)
    }
}

/// Work of one node for one item (multiply-add = 2), from its input and
/// output dims.
pub fn node_flops(op: &Op, x: &[usize], y: &[usize]) -> f64 {
    let numel = |d: &[usize]| d.iter().product::<usize>() as f64;
    match op {
        Op::Conv(c) => {
            2.0 * numel(y) * (c.cin / c.groups.max(1)) as f64 * (c.window.kh * c.window.kw) as f64
        }
        Op::ConvTranspose(c) => {
            2.0 * numel(x) * (c.cout / c.groups.max(1)) as f64 * (c.window.kh * c.window.kw) as f64
        }
        Op::Dense(d) => 2.0 * numel(y) * d.inputs as f64,
        _ => 0.0,
    }
}

fn numel(d: &[usize]) -> usize {
    d.iter().product()
}

/// The output dims of `op` in graph `g` on inputs of dims `ins` (one item),
/// or why it cannot apply.
pub fn infer_node(g: &Graph, op: &Op, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
    let arity = match op {
        Op::Input | Op::Constant(_) => 0,
        Op::Add | Op::Binary(_) => 2,
        Op::Conv(_) => ins.len().clamp(1, 2),
        Op::Concat { .. } => ins.len().max(1),
        _ => 1,
    };
    if ins.len() != arity {
        return Err(format!("takes {arity} inputs, has {}", ins.len()));
    }
    let x = ins.first().copied().unwrap_or(&[]);
    let image = |what: &str| -> Result<(usize, usize, usize, usize), String> {
        match *x {
            [n, h, w, c] => Ok((n, h, w, c)),
            _ => Err(format!("{what} needs an NHWC image, gets {}", show(x))),
        }
    };
    let rank = x.len();
    let axis_ok = |a: usize| -> Result<(), String> {
        if a < rank {
            Ok(())
        } else {
            Err(format!("axis {a} is outside rank {rank}"))
        }
    };
    Ok(match op {
        Op::Input => {
            if let Some(b) = g.fixed_batch {
                if g.input.first() != Some(&b) {
                    return Err(format!(
                        "the input {} does not hold the fixed batch {b} in axis 0",
                        show(&g.input)
                    ));
                }
            } else if g.input.first() != Some(&1) {
                return Err(format!(
                    "the input {} must have extent 1 in its batch axis",
                    show(&g.input)
                ));
            }
            g.input.clone()
        }
        Op::Constant(c) => {
            if numel(&c.dims) != c.data.len() {
                return Err(format!(
                    "holds {} values for {}",
                    c.data.len(),
                    show(&c.dims)
                ));
            }
            c.dims.clone()
        }
        Op::Conv(cv) => {
            let (n, h, w, c) = image("Conv")?;
            if cv.groups == 0 || cv.cin % cv.groups != 0 || cv.cout % cv.groups != 0 {
                return Err(format!(
                    "groups {} must divide input channels {} and output channels {}",
                    cv.groups, cv.cin, cv.cout
                ));
            }
            if c != cv.cin {
                return Err(format!("expects {} input channels, gets {c}", cv.cin));
            }
            let wl = cv.cout * (cv.cin / cv.groups) * cv.window.kh * cv.window.kw;
            if cv.weights.len() != wl {
                return Err(format!("has {} weights, needs {wl}", cv.weights.len()));
            }
            if cv.bias.as_ref().is_some_and(|b| b.len() != cv.cout) {
                return Err("bias length differs from output channels".into());
            }
            let (oh, ow) = cv
                .window
                .output(h, w)
                .ok_or_else(|| format!("window does not fit a {}", show(x)))?;
            let y = vec![n, oh, ow, cv.cout];
            if let Some(r) = ins.get(1) {
                if *r != &y[..] {
                    return Err(format!("adds a residual {} to {}", show(r), show(&y)));
                }
            }
            y
        }
        Op::ConvTranspose(ct) => {
            let (n, h, w, c) = image("ConvTranspose")?;
            if ct.groups == 0 || ct.cin % ct.groups != 0 || ct.cout % ct.groups != 0 {
                return Err(format!(
                    "groups {} must divide input channels {} and output channels {}",
                    ct.groups, ct.cin, ct.cout
                ));
            }
            if c != ct.cin {
                return Err(format!("expects {} input channels, gets {c}", ct.cin));
            }
            let wl = ct.cin * (ct.cout / ct.groups) * ct.window.kh * ct.window.kw;
            if ct.weights.len() != wl {
                return Err(format!("has {} weights, needs {wl}", ct.weights.len()));
            }
            if ct.bias.as_ref().is_some_and(|b| b.len() != ct.cout) {
                return Err("bias length differs from output channels".into());
            }
            let (oh, ow) = ct
                .output(h, w)
                .ok_or_else(|| format!("the pads leave no output of a {}", show(x)))?;
            vec![n, oh, ow, ct.cout]
        }
        Op::BatchNorm(bn) => {
            let c = x.last().copied().unwrap_or(1);
            if [bn.gamma.len(), bn.beta.len(), bn.mean.len(), bn.var.len()]
                .iter()
                .any(|&l| l != c)
            {
                return Err(format!("parameters must have {c} values"));
            }
            x.to_vec()
        }
        Op::Activation(_) | Op::Unary(_) => x.to_vec(),
        Op::Pool { window, .. } => {
            let (n, h, w, c) = image("pooling")?;
            let (oh, ow) = window
                .output(h, w)
                .ok_or_else(|| format!("window does not fit a {}", show(x)))?;
            vec![n, oh, ow, c]
        }
        Op::GlobalAvgPool => {
            let (n, _, _, c) = image("GlobalAveragePool")?;
            vec![n, 1, 1, c]
        }
        Op::Lrn(l) => {
            if rank == 0 || l.size == 0 {
                return Err("needs channels and a size of at least 1".into());
            }
            x.to_vec()
        }
        Op::Resize(r) => {
            let (n, h, w, c) = image("Resize")?;
            if h == 0 || w == 0 || r.out_h == 0 || r.out_w == 0 {
                return Err("resizes to or from an empty image".into());
            }
            vec![n, r.out_h, r.out_w, c]
        }
        Op::Dense(d) => {
            if x.last() != Some(&d.inputs) {
                return Err(format!(
                    "expects {} features in the last axis, gets {}",
                    d.inputs,
                    show(x)
                ));
            }
            if d.weights.len() != d.inputs * d.outputs
                || d.bias.as_ref().is_some_and(|b| b.len() != d.outputs)
            {
                return Err("weight or bias size differs from inputs x outputs".into());
            }
            let mut y = x.to_vec();
            *y.last_mut().unwrap_or(&mut 0) = d.outputs;
            y
        }
        Op::Add | Op::Binary(_) => broadcast(x, ins[1])
            .ok_or_else(|| format!("cannot broadcast {} with {}", show(x), show(ins[1])))?,
        Op::BinaryConst { value, .. } => {
            if numel(&value.dims) != value.data.len() {
                return Err("the constant's data does not fill its dims".into());
            }
            broadcast(x, &value.dims).ok_or_else(|| {
                format!(
                    "cannot broadcast {} with the constant {}",
                    show(x),
                    show(&value.dims)
                )
            })?
        }
        Op::Concat { axis } => {
            axis_ok(*axis)?;
            let mut y = x.to_vec();
            y[*axis] = 0;
            for d in ins {
                let same = d.len() == rank
                    && d.iter()
                        .zip(x)
                        .enumerate()
                        .all(|(i, (a, b))| i == *axis || a == b);
                if !same {
                    return Err(format!("concatenates {} with {}", show(x), show(d)));
                }
                y[*axis] += d[*axis];
            }
            y
        }
        Op::Flatten => {
            let (n, h, w, c) = image("Flatten")?;
            vec![n, 1, 1, h * w * c]
        }
        Op::Reshape { dims } => {
            if numel(dims) != numel(x) {
                return Err(format!("cannot reshape {} to {}", show(x), show(dims)));
            }
            dims.clone()
        }
        Op::Transpose { perm } => {
            let mut seen = vec![false; rank];
            if perm.len() != rank
                || !perm
                    .iter()
                    .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true))
            {
                return Err(format!("{perm:?} does not permute rank {rank}"));
            }
            perm.iter().map(|&p| x[p]).collect()
        }
        Op::Slice { axes } => {
            let mut y = x.to_vec();
            for a in axes {
                axis_ok(a.axis)?;
                let d = x[a.axis];
                let last = a.start as isize + (a.len as isize - 1) * a.step;
                let fits = a.step != 0
                    && (a.len == 0 || (a.start < d && last >= 0 && (last as usize) < d));
                if !fits {
                    return Err(format!(
                        "{} elements from {} by {} do not fit axis {} of {}",
                        a.len,
                        a.start,
                        a.step,
                        a.axis,
                        show(x)
                    ));
                }
                y[a.axis] = a.len;
            }
            y
        }
        Op::Pad { pads, mode } => {
            if pads.len() != rank {
                return Err(format!("has {} pads for rank {rank}", pads.len()));
            }
            let mut y = Vec::with_capacity(rank);
            for (&d, &(b, a)) in x.iter().zip(pads) {
                let ok = match mode {
                    super::PadMode::Constant(_) => true,
                    super::PadMode::Reflect => (b == 0 && a == 0) || (b < d && a < d),
                    super::PadMode::Edge => (b == 0 && a == 0) || d > 0,
                    super::PadMode::Wrap => b <= d && a <= d,
                };
                if !ok {
                    return Err(format!(
                        "{mode:?} padding of ({b}, {a}) does not fit an axis of {d}"
                    ));
                }
                y.push(d + b + a);
            }
            y
        }
        Op::Reduce { axes, .. } => {
            let mut y = x.to_vec();
            for &a in axes {
                axis_ok(a)?;
                y[a] = 1;
            }
            y
        }
        Op::Softmax { axis, .. } => {
            axis_ok(*axis)?;
            x.to_vec()
        }
    })
}
