//! The import walk: model checks, the graph's input, every node in order (the
//! per-operator rules are in `nodes/`, constant folding in `fold.rs`), then
//! the outputs and dead-node pruning.

use super::layout::Layout;
use super::proto::{self, tensor_proto::DataType, ModelProto};
use super::tensor::{self, Tensor};
use super::view;
use super::{ImportOptions, Io, Model, NodeProblem, OnnxError, OPSETS};
use crate::engine::graph::{self, passes, Graph, Op, ValueId, MAX_RANK};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

/// An ONNX tensor held by an engine value: logical axis `i` is physical axis
/// `perm[i]` of value `id` (see `view.rs`).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct View {
    pub id: ValueId,
    pub perm: Vec<usize>,
}

/// One element of a shape vector computed from a tensor with a free batch.
pub(super) type Sym = Option<i64>;

/// What an ONNX value name stands for during the walk.
#[derive(Clone, Debug)]
pub(super) enum Val {
    Const(Rc<Tensor>),
    Act(View),
    /// A shape (or part of one) in which `None` is the free batch size; a
    /// scalar when `scalar`.
    Shape {
        dims: Rc<Vec<Sym>>,
        scalar: bool,
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
    /// Physical dims of every engine value (one item).
    pub dims: Vec<Vec<usize>>,
    pub vals: HashMap<String, Val>,
    pub opset: i64,
    pub base: Option<&'m Path>,
    /// Whether axis 0 is a free batch (else the graph fixes it).
    pub batched: bool,
    /// Names some node or the graph's outputs read.
    pub read: HashSet<String>,
}

impl Importer<'_> {
    /// Appends an engine node (its dims inferred and checked); returns its value.
    pub fn push(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId, String> {
        let ins: Vec<&[usize]> = inputs.iter().map(|&i| &self.dims[i][..]).collect();
        let d = graph::infer_node(&self.graph, &op, &ins)?;
        if d.len() > MAX_RANK {
            return Err(format!("rank {} is above {MAX_RANK}", d.len()));
        }
        let id = self.graph.push(name, op, inputs);
        self.dims.push(d);
        Ok(id)
    }

    pub fn val(&self, name: &str) -> Result<&Val, String> {
        if name.is_empty() {
            return Err("a required input is missing".into());
        }
        self.vals
            .get(name)
            .ok_or_else(|| format!("reads `{name}`, which no earlier node or initializer defines"))
    }

    /// A computed input.
    pub fn act(&self, name: &str) -> Result<View, String> {
        match self.val(name)? {
            Val::Act(v) => Ok(v.clone()),
            Val::Const(_) | Val::Shape { .. } => Err(format!(
                "input `{name}` is a constant where the engine needs a computed value"
            )),
            Val::Unknown => Err(format!("input `{name}` comes from an unsupported node")),
        }
    }

    /// A constant input (weights, shapes).
    pub fn constant(&self, name: &str) -> Result<Rc<Tensor>, String> {
        match self.val(name)? {
            Val::Const(t) => Ok(t.clone()),
            Val::Shape { .. } => Err(format!(
                "input `{name}` depends on the free batch size; export the model with a fixed \
                 batch or without shape arithmetic on it"
            )),
            _ => Err(format!(
                "input `{name}` must be a constant (an initializer or computed from constants): \
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

    /// Logical dims of a view.
    pub fn ldims(&self, v: &View) -> Vec<usize> {
        let p = &self.dims[v.id];
        v.perm.iter().map(|&a| p[a]).collect()
    }

    /// Logical dims with a free batch shown as `N`.
    pub fn describe(&self, v: &Val) -> String {
        match v {
            Val::Const(t) => format!("{:?} (constant)", t.dims),
            Val::Act(v) => self.layout_of(v).describe(),
            Val::Shape { dims, .. } => format!("[{}] (shape)", dims.len()),
            Val::Unknown => "?".into(),
        }
    }

    /// The edge layout of a view.
    pub fn layout_of(&self, v: &View) -> Layout {
        Layout {
            dims: self.ldims(v),
            batched: self.batched,
            perm: v.perm.clone(),
        }
    }

    /// The value of view `v` stored with arrangement `want` (a permutation
    /// of its logical axes): the same data renamed if it already is (a
    /// Reshape, free), else a Transpose.
    pub fn arrange(&mut self, v: &View, want: &[usize], name: &str) -> Result<ValueId, String> {
        let l = self.ldims(v);
        let target = view::physical(&l, want);
        if view::same_data(&l, &v.perm, want) {
            if self.dims[v.id] == target {
                return Ok(v.id);
            }
            return self.push(name, Op::Reshape { dims: target }, &[v.id]);
        }
        // An NHWC image to NCHW order: the engine's Flatten, which a dense
        // layer reading it turns into a weight permutation.
        if v.perm == [0, 3, 1, 2] && want == [0, 1, 2, 3] {
            let f = self.push(&format!("{name}.flatten"), Op::Flatten, &[v.id])?;
            return self.push(name, Op::Reshape { dims: target }, &[f]);
        }
        let perm = view::transpose_between(&v.perm, want);
        self.push(name, Op::Transpose { perm }, &[v.id])
    }

    /// The engine value of `v` in row-major logical order.
    pub fn row_major(&mut self, v: &View, name: &str) -> Result<ValueId, String> {
        let id: Vec<usize> = (0..v.perm.len()).collect();
        self.arrange(v, &id, name)
    }

    /// The view of `v` as logical dims `to` (a Reshape), moving data only
    /// where the merge needs it.
    pub fn reshape(&mut self, v: &View, to: &[usize], name: &str) -> Result<View, String> {
        let l = self.ldims(v);
        let ord = view::order(&l, &v.perm);
        let new_order = match view::reshape_order(&l, &ord, to)? {
            Ok(o) => o,
            Err(target) => {
                let want = view::perm_from_order(&l, &target);
                let id = self.arrange(v, &want, &format!("{name}.reorder"))?;
                let moved = View { id, perm: want };
                return self.reshape(&moved, to, name);
            }
        };
        let perm = view::perm_from_order(to, &new_order);
        let phys = view::physical(to, &perm);
        let id = if phys == self.dims[v.id] {
            v.id
        } else {
            self.push(name, Op::Reshape { dims: phys }, &[v.id])?
        };
        Ok(View { id, perm })
    }

    /// A new view of the same arrangement on value `id`.
    pub fn like(v: &View, id: ValueId) -> View {
        View {
            id,
            perm: v.perm.clone(),
        }
    }

    /// The physical axis of logical axis `a` (negative counts from the end),
    /// refusing the free batch axis.
    pub fn axis(&self, v: &View, a: i64, what: &str) -> Result<usize, String> {
        let r = v.perm.len() as i64;
        let ax = if a < 0 { a + r } else { a };
        if !(0..r).contains(&ax) {
            return Err(format!("{what} {a} is outside rank {r}"));
        }
        if ax == 0 && self.batched {
            return Err(format!(
                "{what} {a} is the batch dimension, which the engine keeps; export with a \
                 fixed batch to operate on it"
            ));
        }
        Ok(ax as usize)
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

/// Declared dims of a value (`None` where symbolic), if it has a tensor type.
fn declared_dims(vi: &proto::ValueInfoProto) -> Option<(i32, Option<Vec<Option<usize>>>)> {
    use proto::tensor_shape_proto::dimension::Value as Dim;
    use proto::type_proto::Value as T;
    let tt = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(T::TensorType(tt)) => tt,
        _ => return None,
    };
    let dims = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(Dim::DimValue(v)) if v > 0 && v <= 1 << 24 => Some(v as usize),
                _ => None,
            })
            .collect()
    });
    Some((tt.elem_type, dims))
}

/// The data input's ONNX dims (batch placeholder 1 when free), whether the
/// batch is free, and notes on assumptions made.
fn input_dims(
    vi: &proto::ValueInfoProto,
    path: &str,
    opts: &ImportOptions,
    notes: &mut Vec<String>,
) -> Result<(Vec<usize>, bool), OnnxError> {
    let bad = |why: String| model_err(path, format!("input `{}`: {why}", vi.name));
    let (elem, dims) = declared_dims(vi).ok_or_else(|| bad("is not a tensor".into()))?;
    if elem != DataType::Float as i32 {
        let name = DataType::try_from(elem).map_or("unknown", |d| d.as_str_name());
        return Err(bad(format!(
            "has element type {name}; joulebench runs FLOAT models"
        )));
    }
    let dims =
        dims.ok_or_else(|| bad("declares no shape; give the input a shape when exporting".into()))?;
    if dims.len() > MAX_RANK {
        return Err(bad(format!("has rank {}, above {MAX_RANK}", dims.len())));
    }
    if let Some(given) = &opts.input_dims {
        let fits = given.len() == dims.len()
            && given
                .iter()
                .zip(&dims)
                .enumerate()
                .all(|(i, (g, d))| d.is_none_or(|d| d == *g) || i == 0 && d.is_none());
        if !fits || given.contains(&0) {
            return Err(bad(format!(
                "the data's dims {given:?} do not fit the declared {}",
                show_declared(&dims)
            )));
        }
    }
    let batched = dims.first().is_some_and(|d| d.is_none());
    let mut out = Vec::with_capacity(dims.len());
    let mut assumed = Vec::new();
    for (i, d) in dims.iter().enumerate() {
        let v = match (d, i) {
            (Some(v), _) => *v,
            (None, 0) => 1,
            (None, _) => match &opts.input_dims {
                Some(g) => g[i],
                None if opts.lenient => {
                    assumed.push(i);
                    224
                }
                None => {
                    return Err(bad(format!(
                        "its dims {} are symbolic beyond the batch; give the data \
                         (`infer --input x.npy`) to fix them",
                        show_declared(&dims)
                    )))
                }
            },
        };
        out.push(v);
    }
    if !assumed.is_empty() {
        notes.push(format!(
            "input `{}` has symbolic dims {assumed:?}; shapes and GFLOP below take them as 224",
            vi.name
        ));
    }
    Ok((out, batched))
}

fn show_declared(dims: &[Option<usize>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".into(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// How to store the input: NCHW images NHWC, unless the model's first step
/// is a Transpose to NCHW (an NHWC model input), which then is free.
fn input_perm(g: &proto::GraphProto, name: &str, rank: usize) -> Vec<usize> {
    let ident: Vec<usize> = (0..rank).collect();
    if rank != 4 {
        return ident;
    }
    let readers: Vec<&proto::NodeProto> = g
        .node
        .iter()
        .filter(|n| n.input.iter().any(|i| i == name))
        .collect();
    let nhwc_model = !readers.is_empty()
        && readers.iter().all(|n| {
            n.op_type == "Transpose"
                && n.attribute
                    .iter()
                    .any(|a| a.name == "perm" && a.ints == [0, 3, 1, 2])
        });
    if nhwc_model {
        ident
    } else {
        vec![0, 3, 1, 2]
    }
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
    let mut notes = Vec::new();
    let (in_dims, batched) = input_dims(input, path, opts, &mut notes)?;
    let perm = input_perm(g, &input.name, in_dims.len());
    let phys = view::physical(&in_dims, &perm);
    let graph_name = if g.name.is_empty() { name } else { &g.name };
    // A graph with a free batch holds one item; a fixed batch (or a rank-0
    // input) is part of the dims.
    let fixed_batch = if batched {
        None
    } else {
        Some(in_dims.first().copied().unwrap_or(1))
    };
    let (gin, gperm) = if in_dims.is_empty() {
        (vec![1], vec![])
    } else {
        (phys.clone(), perm.clone())
    };
    let mut imp = Importer {
        graph: Graph::with_input(graph_name, gin.clone(), fixed_batch),
        dims: vec![gin],
        vals,
        opset,
        base,
        batched,
        read: g
            .node
            .iter()
            .flat_map(|n| n.input.iter())
            .chain(g.output.iter().map(|o| &o.name))
            .cloned()
            .collect(),
    };
    let in_view = if in_dims.is_empty() {
        // A scalar input: stored as one value, viewed as rank 0 after a Reshape.
        let id = imp
            .push("input.scalar", Op::Reshape { dims: vec![] }, &[0])
            .map_err(|e| model_err(path, e))?;
        View { id, perm: vec![] }
    } else {
        View { id: 0, perm: gperm }
    };
    let in_layout = Layout {
        dims: in_dims,
        batched,
        perm,
    };
    imp.vals.insert(input.name.clone(), Val::Act(in_view));
    let value_info: HashMap<&str, &proto::ValueInfoProto> = g
        .value_info
        .iter()
        .chain(&g.output)
        .map(|v| (v.name.as_str(), v))
        .collect();

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
            if super::SUPPORTED_OPS.contains(&node.op_type.as_str()) {
                NodeStatus::Skipped("reads the output of an unsupported node".into())
            } else {
                NodeStatus::Unsupported(super::nodes::unsupported_op(&node.op_type))
            }
        } else {
            match imp.node(node, &node_name) {
                Ok(true) => NodeStatus::Folded,
                Ok(false) => NodeStatus::Ok,
                Err(reason) => NodeStatus::Unsupported(reason),
            }
        };
        if !matches!(status, NodeStatus::Ok | NodeStatus::Folded) {
            // Drop what a half-converted node pushed; its outputs are unknown
            // unless the model declares their shapes (then a stand-in keeps
            // the walk going, so every later node is checked too).
            imp.graph.nodes.truncate(before);
            imp.dims.truncate(before);
            for o in &node.output {
                let stand_in = opts
                    .lenient
                    .then(|| {
                        value_info
                            .get(o.as_str())
                            .and_then(|vi| stand_in(&mut imp, vi, o))
                    })
                    .flatten();
                imp.vals
                    .insert(o.clone(), stand_in.map_or(Val::Unknown, Val::Act));
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
        let gflop = (before..imp.graph.nodes.len())
            .map(|i| {
                let n = &imp.graph.nodes[i];
                let x = n.inputs.first().map_or(&[][..], |&j| &imp.dims[j][..]);
                graph::node_flops(&n.op, x, &imp.dims[i]) / 1e9
            })
            .sum::<f64>()
            / imp.graph.fixed_batch.unwrap_or(1) as f64;
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

    if g.output.is_empty() {
        return Err(model_err(path, "the graph declares no output"));
    }
    let mut outputs = Vec::new();
    let mut out_ids = Vec::new();
    for out_vi in &g.output {
        let v = match imp.vals.get(&out_vi.name) {
            Some(Val::Act(v)) => v.clone(),
            Some(Val::Const(_) | Val::Shape { .. }) => {
                return Err(model_err(
                    path,
                    format!(
                        "output `{}` is a constant; there is nothing to run",
                        out_vi.name
                    ),
                ))
            }
            Some(Val::Unknown) if opts.lenient => View {
                id: 0,
                perm: (0..imp.dims[0].len()).collect(),
            },
            _ => {
                return Err(model_err(
                    path,
                    format!("output `{}` is not produced by any node", out_vi.name),
                ))
            }
        };
        outputs.push(Io {
            name: out_vi.name.clone(),
            layout: imp.layout_of(&v),
            batch: fixed_batch,
        });
        out_ids.push(v.id);
    }
    let mut graph = imp.graph;
    graph.outputs = out_ids;
    let graph = passes::prune(graph);
    if problems.is_empty() {
        graph
            .dims()
            .map_err(|e| model_err(path, format!("imported graph is inconsistent: {e}")))?;
    }
    Ok(Model {
        graph,
        input: Io {
            name: input.name.clone(),
            layout: in_layout,
            batch: fixed_batch,
        },
        outputs,
        opset,
        producer: match format!("{} {}", m.producer_name, m.producer_version).trim() {
            "" => "producer not recorded".to_string(),
            p => p.to_string(),
        },
        nodes: reports,
        problems,
        notes,
    })
}

/// A zero constant of a value's declared shape, standing in for the output
/// of an unsupported node so `inspect` can check the nodes after it.
fn stand_in(imp: &mut Importer, vi: &proto::ValueInfoProto, name: &str) -> Option<View> {
    let (elem, dims) = declared_dims(vi)?;
    if elem != DataType::Float as i32 {
        return None;
    }
    let dims = dims?;
    let mut d: Vec<usize> = Vec::with_capacity(dims.len());
    for (i, x) in dims.iter().enumerate() {
        match (x, i) {
            (Some(v), _) => d.push(*v),
            (None, 0) if imp.batched => d.push(1),
            _ => return None,
        }
    }
    if d.is_empty() || d.iter().product::<usize>() > 1 << 24 {
        return None;
    }
    // Images as the engine holds them; other ranks row-major.
    let perm: Vec<usize> = if d.len() == 4 {
        vec![0, 3, 1, 2]
    } else {
        (0..d.len()).collect()
    };
    let phys = view::physical(&d, &perm);
    let c = graph::Constant {
        data: vec![0.0; phys.iter().product()],
        dims: phys,
    };
    let id = imp
        .push(&format!("{name}.stand_in"), Op::Constant(Box::new(c)), &[])
        .ok()?;
    Some(View { id, perm })
}
