//! Where a model comes from: a built-in name or an ONNX file, and the layouts
//! of its input and output (NCHW at the edges, NHWC inside the engine).

use crate::engine::graph::Graph;
use crate::engine::models;
use crate::engine::onnx::{self, ImportOptions, Layout};
use crate::engine::EngineError;
use std::path::Path;

/// A model ready to compile.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    pub graph: Graph,
    pub input: Layout,
    pub output: Layout,
    /// The batch an ONNX model fixes (`None` when free).
    pub fixed_batch: Option<usize>,
}

/// Whether `spec` names an ONNX file rather than a built-in model.
pub fn is_onnx(spec: &str) -> bool {
    spec.to_ascii_lowercase().ends_with(".onnx") || spec.contains('/')
}

/// Loads a built-in model (seed 0) or imports an ONNX file.
pub fn load(spec: &str) -> Result<LoadedModel, EngineError> {
    if is_onnx(spec) {
        let m = onnx::load(Path::new(spec), &ImportOptions::default())?;
        return Ok(LoadedModel {
            graph: m.graph,
            input: m.input.layout,
            output: m.output.layout,
            fixed_batch: m.input.batch,
        });
    }
    let graph = models::build(spec, 0)?;
    let shapes = graph.shapes()?;
    let (h, w, c) = graph.input;
    let out = shapes[graph.output()];
    let output = if out.h * out.w == 1 {
        Layout::Vector { c: out.c }
    } else {
        Layout::Image {
            c: out.c,
            h: out.h,
            w: out.w,
        }
    };
    Ok(LoadedModel {
        graph,
        input: Layout::Image { c, h, w },
        output,
        fixed_batch: None,
    })
}

impl LoadedModel {
    /// Checks a batch size against the model's fixed batch.
    pub fn check_batch(&self, batch: usize) -> Result<(), EngineError> {
        match self.fixed_batch {
            Some(b) if b != batch => Err(EngineError::param(
                "batch",
                format!(
                    "the model fixes its batch dimension to {b}, asked for {batch}; \
                     export it with a symbolic batch (dynamic_axes) to vary it"
                ),
            )),
            _ => Ok(()),
        }
    }
}
