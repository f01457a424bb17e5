//! The import walk: model checks, the graph's input, every node in order (the
//! per-operator rules are in `nodes.rs`), then the output and dead-node pruning.

use super::layout::Layout;
use super::proto::{self, tensor_proto::DataType, ModelProto};
use super::tensor::{self, Tensor};
use super::{ImportOptions, Io, Model, NodeProblem, OnnxError, OPSETS};
use crate::engine::graph::{Graph, Node, Op, Shape, ValueId};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

/// How the engine holds an activation (see [`Layout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lay {
    Img,
    /// `[N, C, L]`, engine shape `1 x L x C`.
    Seq,
    Vec,
    /// `[N]`, engine shape `1 x 1 x 1`.
    Scalar,
    /// Flattened from an `h x w x c` image, NHWC-ordered.
    Flat {
        h: usize,
        w: usize,
        c: usize,
    },
}

impl Lay {
    /// ONNX rank of a value held this way.
    pub fn rank(self) -> i64 {
        match self {
            Lay::Img => 4,
            Lay::Seq => 3,
            Lay::Vec | Lay::Flat { .. } => 2,
            Lay::Scalar => 1,
        }
    }
}

/// What an ONNX value name stands for during the walk.
#[derive(Clone, Debug)]
pub(super) enum Val {
    Const(Rc<Tensor>),
    Act {
        id: ValueId,
        lay: Lay,
    },
    /// Produced by a node that could not be imported (lenient mode).
    Unknown,
}

/// Outcome of one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum NodeStatus {
    Ok,
    /// Computed at import time from constants.
    Folded,
    Unsupported(String),
    /// Reads a value of an unsupported node.
    Skipped(String),
}

/// One ONNX node as imported, for `inspect`.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub index: usize,
    pub name: String,
    pub op_type: String,
    /// Output dims, ONNX order, batch as `N` (constants: their dims).
    pub outputs: Vec<String>,
    pub gflop_per_image: f64,
    #[serde(flatten)]
    pub status: NodeStatus,
}

pub(super) struct Importer<'m> {
    pub graph: Graph,
    pub shapes: Vec<Shape>,
    pub vals: HashMap<String, Val>,
    pub opset: i64,
    pub base: Option<&'m Path>,
    /// The batch the input fixes, if any (Reshape may name it literally).
    pub fixed_batch: Option<usize>,
}

impl Importer<'_> {
    /// Appends an engine node; returns its value.
    pub fn push(&mut self, name: &str, op: Op, inputs: &[ValueId], shape: Shape) -> ValueId {
        let id = self.graph.push(name, op, inputs);
        self.shapes.push(shape);
        id
    }

    pub fn val(&self, name: &str) -> Result<&Val, String> {
        if name.is_empty() {
            return Err("a required input is missing".into());
        }
        self.vals
            .get(name)
            .ok_or_else(|| format!("reads `{name}`, which no earlier node or initializer defines"))
    }

    /// An activation input: its value, layout and per-image shape.
    pub fn act(&self, name: &str) -> Result<(ValueId, Lay, Shape), String> {
        match self.val(name)? {
            Val::Act { id, lay } => Ok((*id, *lay, self.shapes[*id])),
            Val::Const(_) => Err(format!(
                "input `{name}` is a constant where the engine needs a computed value \
                 (constant folding covers only shape arithmetic)"
            )),
            Val::Unknown => Err(format!("input `{name}` comes from an unsupported node")),
        }
    }

    /// A constant input (weights, shapes).
    pub fn constant(&self, name: &str) -> Result<Rc<Tensor>, String> {
        match self.val(name)? {
            Val::Const(t) => Ok(t.clone()),
            _ => Err(format!(
                "input `{name}` must be a constant (an initializer or a Constant node): \
                 joulebench packs weights when it compiles a model"
            )),
        }
    }

    /// An optional constant input (`""` or absent means none).
    pub fn opt_constant(
        &self,
        node: &proto::NodeProto,
        i: usize,
    ) -> Result<Option<Rc<Tensor>>, String> {
        match node.input.get(i) {
            Some(n) if !n.is_empty() => self.constant(n).map(Some),
            _ => Ok(None),
        }
    }

    /// The logical layout of an engine value.
    pub fn layout(&self, id: ValueId, lay: Lay) -> Layout {
        let s = self.shapes[id];
        match lay {
            Lay::Img => Layout::Image {
                c: s.c,
                h: s.h,
                w: s.w,
            },
            Lay::Seq => Layout::Sequence { c: s.c, l: s.w },
            Lay::Vec => Layout::Vector { c: s.c },
            Lay::Scalar => Layout::Scalar,
            Lay::Flat { h, w, c } => Layout::Flattened { c, h, w },
        }
    }

    fn describe(&self, v: &Val) -> String {
        match v {
            Val::Const(t) => format!("{:?} (constant)", t.dims),
            Val::Act { id, lay } => self.layout(*id, *lay).describe(),
            Val::Unknown => "?".into(),
        }
    }
}

fn model_err(path: &str, reason: impl Into<String>) -> OnnxError {
    OnnxError::Model {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The data input: the first graph input that no initializer or binding supplies.
fn data_input<'a>(
    g: &'a proto::GraphProto,
    consts: &HashSet<&str>,
    path: &str,
) -> Result<&'a proto::ValueInfoProto, OnnxError> {
    let runtime: Vec<&proto::ValueInfoProto> = g
        .input
        .iter()
        .filter(|i| !consts.contains(i.name.as_str()))
        .collect();
    match runtime.as_slice() {
        [one] => Ok(one),
        [] => Err(model_err(
            path,
            "the graph has no input that is not an initializer",
        )),
        many => Err(model_err(
            path,
            format!(
                "the graph has {} inputs ({}); joulebench feeds one tensor, so the others \
                 must be initializers",
                many.len(),
                many.iter()
                    .map(|i| format!("`{}`", i.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `(batch, layout)` of the data input from its declared type.
fn input_layout(
    vi: &proto::ValueInfoProto,
    path: &str,
) -> Result<(Option<usize>, Layout), OnnxError> {
    use proto::tensor_shape_proto::dimension::Value as Dim;
    use proto::type_proto::Value as T;
    let bad = |why: String| model_err(path, format!("input `{}`: {why}", vi.name));
    let tt = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(T::TensorType(tt)) => tt,
        _ => return Err(bad("is not a tensor".into())),
    };
    if tt.elem_type != DataType::Float as i32 {
        let name = DataType::try_from(tt.elem_type).map_or("unknown", |d| d.as_str_name());
        return Err(bad(format!(
            "has element type {name}; joulebench runs FLOAT models"
        )));
    }
    let dims: Vec<Option<usize>> = tt
        .shape
        .as_ref()
        .ok_or_else(|| bad("declares no shape; give the input a shape when exporting".into()))?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Dim::DimValue(v)) if v > 0 && v <= 1 << 24 => Some(v as usize),
            _ => None,
        })
        .collect();
    let known = |i: usize, what: &str| {
        dims[i].ok_or_else(|| {
            bad(format!(
                "its {what} dimension is symbolic; only the batch dimension may be"
            ))
        })
    };
    let layout = match dims.len() {
        4 => Layout::Image {
            c: known(1, "channel")?,
            h: known(2, "height")?,
            w: known(3, "width")?,
        },
        3 => Layout::Sequence {
            c: known(1, "channel")?,
            l: known(2, "length")?,
        },
        2 => Layout::Vector {
            c: known(1, "feature")?,
        },
        1 => Layout::Scalar,
        r => {
            return Err(bad(format!(
                "has rank {r}; joulebench takes images [N, C, H, W], sequences [N, C, L], \
                 vectors [N, C] or [N]"
            )))
        }
    };
    Ok((dims[0], layout))
}

pub(super) fn convert(
    m: &ModelProto,
    path: &str,
    name: &str,
    base: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Model, OnnxError> {
    let opset = m
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| model_err(path, "imports no version of the default ONNX operator set"))?;
    if !OPSETS.contains(&opset) {
        return Err(model_err(
            path,
            format!(
                "uses operator set {opset}; joulebench implements {} to {} \
                 (convert it with onnx.version_converter.convert_version)",
                OPSETS.start(),
                OPSETS.end()
            ),
        ));
    }
    let g = m
        .graph
        .as_ref()
        .ok_or_else(|| model_err(path, "holds no graph"))?;

    let mut vals: HashMap<String, Val> = HashMap::new();
    for init in &g.initializer {
        let t = tensor::decode(init, base)
            .map_err(|e| model_err(path, format!("initializer `{}`: {e}", init.name)))?;
        vals.insert(init.name.clone(), Val::Const(Rc::new(t)));
    }
    for (k, t) in &opts.bind {
        vals.insert(k.clone(), Val::Const(Rc::new(t.clone())));
    }
    let consts: HashSet<&str> = vals.keys().map(String::as_str).collect();
    let input = data_input(g, &consts, path)?;
    let (fixed_batch, in_layout) = input_layout(input, path)?;
    let (h, w, c) = match in_layout {
        Layout::Image { c, h, w } => (h, w, c),
        Layout::Sequence { c, l } => (1, l, c),
        Layout::Vector { c } | Layout::Flattened { c, .. } => (1, 1, c),
        Layout::Scalar => (1, 1, 1),
    };
    let graph_name = if g.name.is_empty() { name } else { &g.name };
    let mut imp = Importer {
        graph: Graph::new(graph_name, h, w, c),
        shapes: vec![Shape { h, w, c }],
        vals,
        opset,
        base,
        fixed_batch,
    };
    let in_lay = match in_layout {
        Layout::Image { .. } => Lay::Img,
        Layout::Sequence { .. } => Lay::Seq,
        Layout::Scalar => Lay::Scalar,
        _ => Lay::Vec,
    };
    imp.vals
        .insert(input.name.clone(), Val::Act { id: 0, lay: in_lay });

    let mut reports = Vec::with_capacity(g.node.len());
    let mut problems = Vec::new();
    for (index, node) in g.node.iter().enumerate() {
        let node_name = if node.name.is_empty() {
            format!("{}_{index}", node.op_type)
        } else {
            node.name.clone()
        };
        let before = imp.graph.nodes.len();
        let upstream_unknown = node
            .input
            .iter()
            .any(|i| matches!(imp.vals.get(i), Some(Val::Unknown)));
        let status = if upstream_unknown {
            NodeStatus::Skipped("reads the output of an unsupported node".into())
        } else {
            match imp.node(node, &node_name) {
                Ok(folded) if folded => NodeStatus::Folded,
                Ok(_) => NodeStatus::Ok,
                Err(reason) => NodeStatus::Unsupported(reason),
            }
        };
        if !matches!(status, NodeStatus::Ok | NodeStatus::Folded) {
            // Drop what a half-converted node pushed; its outputs are unknown.
            imp.graph.nodes.truncate(before);
            imp.shapes.truncate(before);
            for o in &node.output {
                imp.vals.insert(o.clone(), Val::Unknown);
            }
        }
        if let NodeStatus::Unsupported(reason) = &status {
            problems.push(NodeProblem {
                index,
                name: node_name.clone(),
                op_type: node.op_type.clone(),
                reason: reason.clone(),
            });
            if !opts.lenient {
                return Err(OnnxError::Nodes {
                    path: path.into(),
                    problems,
                });
            }
        }
        let gflop = imp.graph.nodes[before..]
            .iter()
            .zip(&imp.shapes[before..])
            .map(|(n, s)| flops(&n.op, *s) / 1e9)
            .fold(0.0, |a, b| a + b);
        reports.push(NodeReport {
            index,
            name: node_name,
            op_type: node.op_type.clone(),
            outputs: node
                .output
                .iter()
                .filter(|o| !o.is_empty())
                .map(|o| imp.vals.get(o).map_or("?".into(), |v| imp.describe(v)))
                .collect(),
            gflop_per_image: gflop,
            status,
        });
    }

    let out_vi = match g.output.as_slice() {
        [one] => one,
        [] => return Err(model_err(path, "the graph declares no output")),
        many => {
            return Err(model_err(
                path,
                format!(
                    "the graph has {} outputs; joulebench computes one (remove the others \
                     with onnx.utils.extract_model)",
                    many.len()
                ),
            ))
        }
    };
    let (out_id, out_lay) = match imp.vals.get(&out_vi.name) {
        Some(Val::Act { id, lay }) => (*id, *lay),
        Some(Val::Const(_)) => {
            return Err(model_err(
                path,
                format!(
                    "output `{}` is a constant; there is nothing to run",
                    out_vi.name
                ),
            ))
        }
        Some(Val::Unknown) if opts.lenient => (0, in_lay),
        _ => {
            return Err(model_err(
                path,
                format!("output `{}` is not produced by any node", out_vi.name),
            ))
        }
    };
    let out_layout = imp.layout(out_id, out_lay);
    let graph = prune(imp.graph, out_id);
    if problems.is_empty() {
        graph
            .shapes()
            .map_err(|e| model_err(path, format!("imported graph is inconsistent: {e}")))?;
    }
    Ok(Model {
        graph,
        input: Io {
            name: input.name.clone(),
            layout: in_layout,
            batch: fixed_batch,
        },
        output: Io {
            name: out_vi.name.clone(),
            layout: out_layout,
            batch: fixed_batch,
        },
        opset,
        producer: match format!("{} {}", m.producer_name, m.producer_version).trim() {
            "" => "producer not recorded".to_string(),
            p => p.to_string(),
        },
        nodes: reports,
        problems,
    })
}

/// Work of one engine node per image (multiply-add = 2).
fn flops(op: &Op, out: Shape) -> f64 {
    match op {
        Op::Conv(c) => {
            2.0 * (out.h * out.w * c.cout * (c.cin / c.groups) * c.window.kh * c.window.kw) as f64
        }
        Op::Dense(d) => 2.0 * (d.inputs * d.outputs) as f64,
        _ => 0.0,
    }
}

/// Keeps only the nodes `out` depends on (and the input), so `out` is last.
fn prune(g: Graph, out: ValueId) -> Graph {
    let mut live = vec![false; g.nodes.len()];
    live[0] = true;
    live[out] = true;
    for i in (0..=out).rev() {
        if live[i] {
            for &j in &g.nodes[i].inputs {
                live[j] = true;
            }
        }
    }
    let mut new_id = vec![usize::MAX; g.nodes.len()];
    let mut nodes: Vec<Node> = Vec::new();
    for (i, n) in g.nodes.into_iter().enumerate().take(out + 1) {
        if live[i] {
            new_id[i] = nodes.len();
            let inputs = n.inputs.iter().map(|&j| new_id[j]).collect();
            nodes.push(Node { inputs, ..n });
        }
    }
    Graph { nodes, ..g }
}
