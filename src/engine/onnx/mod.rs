//! ONNX import: a `.onnx` file (opsets 7 to 24 of the operators joulebench
//! runs) into an engine [`Graph`], which then goes through the same passes
//! (padding and following layers fused) and algorithm choice as a built-in
//! model.
//!
//! Each ONNX tensor is a view of an engine value (`view.rs`): NCHW images are
//! held NHWC, transposes are free, reshapes move data only when they must.
//! Nodes whose inputs are all constants are evaluated at import (`fold.rs`),
//! so shape arithmetic and generated weights become constants. The batch
//! dimension may be symbolic (it stays so), or fixed (then part of the dims).
//! Weights must be constants: they are packed when a session is built.

mod attrs;
mod convert;
mod fold;
mod layout;
mod nodes;
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto;
pub mod tensor;
mod view;

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

/// The operators the importer converts (or folds, with constant inputs).
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Cos",
    "Div",
    "Dropout",
    "Elu",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LRN",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mish",
    "Mul",
    "Neg",
    "PRelu",
    "Pad",
    "Pow",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "Round",
    "Selu",
    "Shape",
    "Sigmoid",
    "Sign",
    "Sin",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "ThresholdedRelu",
    "Transpose",
    "Unsqueeze",
    "Upsample",
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
    /// The file is not one to read (a FIFO, a device, too large, missing).
    #[error(transparent)]
    File(Box<crate::guard::FileError>),
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
    /// The data's ONNX dims, which fix the input's symbolic dims (the batch
    /// stays free); from `infer --input x.npy`.
    pub input_dims: Option<Vec<usize>>,
}

/// One end of the model: its ONNX name, layout and fixed batch.
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
    /// The graph's outputs, in order (the engine graph's outputs).
    pub outputs: Vec<Io>,
    pub opset: i64,
    pub producer: String,
    /// Every ONNX node with its output shapes, work and status.
    pub nodes: Vec<NodeReport>,
    /// Unsupported nodes (only ever non-empty with [`ImportOptions::lenient`]).
    pub problems: Vec<NodeProblem>,
    /// Assumptions the import made (lenient mode), for `inspect`.
    pub notes: Vec<String>,
}

impl Model {
    /// The first output.
    pub fn output(&self) -> &Io {
        &self.outputs[0]
    }
}

/// Bytes a protobuf can hold (2 GiB): larger ONNX files do not exist.
const MAX_PROTOBUF: u64 = 2 << 30;

/// Reads an ONNX file: a regular file (no FIFO or device) of at most 2 GiB.
fn read_model_file(path: &Path, what: &str) -> Result<Vec<u8>, OnnxError> {
    crate::guard::read_capped(
        path,
        what,
        MAX_PROTOBUF,
        "a protobuf can hold (2 GiB); larger models keep their weights as external data \
         (onnx.save(..., save_as_external_data=True))",
    )
    .map_err(|e| OnnxError::File(Box::new(e)))
}

/// Imports the model at `path`; external data is read relative to its directory.
pub fn load(path: &Path, opts: &ImportOptions) -> Result<Model, OnnxError> {
    let shown = path.display().to_string();
    let bytes = read_model_file(path, "ONNX model")?;
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
    let bytes = read_model_file(path, "ONNX tensor")?;
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
