//! `joulebench inspect MODEL.onnx`: the model's operators, every node's output
//! shape and work, and what joulebench cannot run, without running anything.

use crate::engine::onnx::{self, ImportOptions, Layout, NodeReport, NodeStatus};
use crate::engine::EngineError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    pub file: String,
    pub producer: String,
    pub opset: i64,
    pub input: String,
    pub input_shape: String,
    pub output: String,
    pub output_shape: String,
    /// Whether every node can be imported.
    pub supported: bool,
    /// Convolution and dense work per image (of the supported nodes).
    pub gflop_per_image: f64,
    pub parameters: usize,
    /// Node count per operator type.
    pub ops: BTreeMap<String, usize>,
    /// `op_type: reason` of each unsupported node, in order.
    pub unsupported: Vec<String>,
    /// Whether the totals (GFLOP, parameters, output shape) leave nodes out:
    /// unsupported ones and those that read their outputs.
    pub totals_partial: bool,
    /// Why the model as a whole cannot be imported (its nodes are then only
    /// counted, not checked), when it cannot.
    pub error: Option<String>,
    pub nodes: Vec<NodeReport>,
}

pub fn inspect(path: &Path) -> Result<InspectReport, EngineError> {
    let opts = ImportOptions {
        lenient: true,
        ..ImportOptions::default()
    };
    let m = match onnx::load(path, &opts) {
        Ok(m) => m,
        Err(e @ onnx::OnnxError::Model { .. }) => return model_level(path, e.to_string()),
        Err(e) => return Err(e.into()),
    };
    let mut ops = BTreeMap::new();
    for n in &m.nodes {
        *ops.entry(n.op_type.clone()).or_insert(0) += 1;
    }
    let shape = |l: &Layout| l.describe();
    Ok(InspectReport {
        file: path.display().to_string(),
        producer: m.producer.clone(),
        opset: m.opset,
        input: m.input.name.clone(),
        input_shape: shape(&m.input.layout),
        output: m.output().name.clone(),
        output_shape: if m.problems.is_empty() {
            shape(&m.output().layout)
        } else {
            "?".into()
        },
        supported: m.problems.is_empty(),
        gflop_per_image: m
            .nodes
            .iter()
            .map(|n| n.gflop_per_image)
            .fold(0.0, |a, b| a + b),
        parameters: m.graph.parameters(),
        ops,
        unsupported: m
            .problems
            .iter()
            .map(|p| {
                format!(
                    "node {} `{}` ({}): {}",
                    p.index, p.name, p.op_type, p.reason
                )
            })
            .collect(),
        totals_partial: m.nodes.iter().any(|n| {
            matches!(
                n.status,
                NodeStatus::Unsupported(_) | NodeStatus::Skipped(_)
            )
        }),
        error: None,
        nodes: m.nodes,
    })
}

/// The report on a file that decodes but cannot be imported as a whole (an
/// integer input, a constant output, several data inputs): what the file
/// declares, and why.
fn model_level(path: &Path, error: String) -> Result<InspectReport, EngineError> {
    use prost::Message;
    let bytes = std::fs::read(path).map_err(|e| onnx::OnnxError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let m =
        onnx::proto::ModelProto::decode(bytes.as_slice()).map_err(|e| onnx::OnnxError::Decode {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let g = m.graph.unwrap_or_default();
    let mut ops = BTreeMap::new();
    for n in &g.node {
        *ops.entry(n.op_type.clone()).or_insert(0) += 1;
    }
    let names = |v: &[onnx::proto::ValueInfoProto]| {
        v.iter()
            .map(|i| i.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(InspectReport {
        file: path.display().to_string(),
        producer: format!("{} {}", m.producer_name, m.producer_version)
            .trim()
            .to_string(),
        opset: m
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(0, |o| o.version),
        input: names(&g.input),
        input_shape: "?".into(),
        output: names(&g.output),
        output_shape: "?".into(),
        supported: false,
        gflop_per_image: 0.0,
        parameters: 0,
        ops,
        unsupported: Vec::new(),
        totals_partial: true,
        error: Some(error),
        nodes: Vec::new(),
    })
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} (opset {}, {})", self.file, self.opset, self.producer)?;
        writeln!(f, "  input   {}: {}", self.input, self.input_shape)?;
        writeln!(f, "  output  {}: {}", self.output, self.output_shape)?;
        if let Some(e) = &self.error {
            writeln!(f, "  cannot be imported: {e}")?;
        }
        writeln!(
            f,
            "  {:.3} GFLOP/image, {} parameters, {} nodes{}",
            self.gflop_per_image,
            self.parameters,
            self.nodes.len(),
            if self.totals_partial {
                " (partial: unsupported nodes and what reads them are not counted)"
            } else {
                ""
            }
        )?;
        let ops: Vec<String> = self.ops.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(f, "  ops     {}", ops.join(", "))?;
        writeln!(
            f,
            "\n  {:>4}  {:<32} {:<20} {:<24} {:>8}  status",
            "#", "node", "op", "output", "GFLOP"
        )?;
        for n in &self.nodes {
            let status = match &n.status {
                NodeStatus::Ok => "ok".to_string(),
                NodeStatus::Folded => "folded (constant)".to_string(),
                NodeStatus::Unsupported(r) => format!("UNSUPPORTED: {r}"),
                NodeStatus::Skipped(r) => format!("skipped: {r}"),
            };
            writeln!(
                f,
                "  {:>4}  {:<32} {:<20} {:<24} {:>8.3}  {}",
                n.index,
                n.name,
                n.op_type,
                n.outputs.join(", "),
                n.gflop_per_image,
                status
            )?;
        }
        if self.supported {
            writeln!(f, "\nevery node is supported")
        } else if self.error.is_some() {
            Ok(())
        } else {
            writeln!(f, "\n{} unsupported node(s):", self.unsupported.len())?;
            for u in &self.unsupported {
                writeln!(f, "  {u}")?;
            }
            Ok(())
        }
    }
}
