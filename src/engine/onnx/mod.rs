//! ONNX import: a `.onnx` file (opsets 7 to 24 of the operators joulebench
//! runs) into an engine [`Graph`], which then goes through the same fusion
//! pass and algorithm choice as a built-in model.
//!
//! ONNX tensors are NCHW; the engine's activations are NHWC. A 4-D value is an
//! image, a 2-D `[N, C]` value a feature vector (the engine's `1x1xC`); the
//! batch dimension may be symbolic. Weights must be constants (initializers or
//! `Constant` nodes): they are packed when a session is built.

mod attrs;
mod convert;
mod layout;
mod nodes;
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto;
pub mod tensor;

pub use convert::{NodeReport, NodeStatus};
pub use layout::Layout;
pub use tensor::Tensor;

use super::graph::Graph;
use prost::Message;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use thiserror::Error;

/// The operator-set versions of the default domain that the importer implements.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=24;

/// The operators the importer converts.
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "MatMul",
    "MaxPool",
    "Mul",
    "Relu",
    "Reshape",
    "Softmax",
];

/// A node the importer cannot convert, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeProblem {
    /// Position of the node in the model's node list (0-based).
    pub index: usize,
    pub name: String,
    pub op_type: String,
    pub reason: String,
}

/// Why a model could not be imported. Every variant names the file.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OnnxError {
    #[error("{path}: cannot read the model: {reason}")]
    Io { path: String, reason: String },
    #[error(
        "{path}: not a valid ONNX model ({reason}); check that the file is complete \
         and was saved with onnx.save"
    )]
    Decode { path: String, reason: String },
    #[error("{path}: {reason}")]
    Model { path: String, reason: String },
    #[error("{}", nodes_message(path, problems))]
    Nodes {
        path: String,
        problems: Vec<NodeProblem>,
    },
}

fn nodes_message(path: &str, problems: &[NodeProblem]) -> String {
    let mut s = format!(
        "{path}: {} node(s) cannot be imported (`joulebench inspect {path}` lists them all):",
        problems.len()
    );
    for p in problems.iter().take(20) {
        let _ = write!(
            s,
            "\n  node {} `{}` ({}): {}",
            p.index, p.name, p.op_type, p.reason
        );
    }
    if problems.len() > 20 {
        let _ = write!(s, "\n  ... and {} more", problems.len() - 20);
    }
    s
}

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Constants for graph inputs other than the data input: ONNX's node tests
    /// pass weights as inputs, and the engine needs them at build time.
    pub bind: HashMap<String, Tensor>,
    /// Convert what can be converted and report the rest (for `inspect`)
    /// instead of failing on the first unsupported node.
    pub lenient: bool,
}

/// One end of the model: its ONNX name, layout and batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Io {
    pub name: String,
    pub layout: Layout,
    /// The batch size the model fixes, `None` when the dimension is symbolic.
    pub batch: Option<usize>,
}

/// An imported model.
#[derive(Clone, Debug)]
pub struct Model {
    pub graph: Graph,
    pub input: Io,
    pub output: Io,
    pub opset: i64,
    pub producer: String,
    /// Every ONNX node with its output shapes, work and status.
    pub nodes: Vec<NodeReport>,
    /// Unsupported nodes (only ever non-empty with [`ImportOptions::lenient`]).
    pub problems: Vec<NodeProblem>,
}

/// Imports the model at `path`; external data is read relative to its directory.
pub fn load(path: &Path, opts: &ImportOptions) -> Result<Model, OnnxError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| OnnxError::Io {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    import_bytes(&bytes, &shown, &name, Some(base), opts)
}

/// Imports a model held in memory. `path` is only used in messages; `base` is
/// the directory external data is read from (`None` refuses external data).
pub fn import_bytes(
    bytes: &[u8],
    path: &str,
    name: &str,
    base: Option<&Path>,
    opts: &ImportOptions,
) -> Result<Model, OnnxError> {
    let model = proto::ModelProto::decode(bytes).map_err(|e| OnnxError::Decode {
        path: path.into(),
        reason: e.to_string(),
    })?;
    convert::convert(&model, path, name, base, opts)
}

/// Reads a `TensorProto` file (ONNX's test data `input_0.pb`, `output_0.pb`).
pub fn load_tensor(path: &Path) -> Result<(String, Tensor), OnnxError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| OnnxError::Io {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let t = proto::TensorProto::decode(bytes.as_slice()).map_err(|e| OnnxError::Decode {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let decoded = tensor::decode(&t, path.parent()).map_err(|reason| OnnxError::Model {
        path: shown,
        reason: format!("tensor `{}`: {reason}", t.name),
    })?;
    Ok((t.name, decoded))
}
