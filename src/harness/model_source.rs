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
    /// Every output, in the graph's order (at least one).
    pub outputs: Vec<Layout>,
    /// The batch an ONNX model fixes (`None` when free).
    pub fixed_batch: Option<usize>,
}

/// Whether `spec` names an ONNX file rather than a built-in model.
pub fn is_onnx(spec: &str) -> bool {
    spec.to_ascii_lowercase().ends_with(".onnx") || spec.contains('/')
}

/// Loads a built-in model (seed 0) or imports an ONNX file.
pub fn load(spec: &str) -> Result<LoadedModel, EngineError> {
    load_for(spec, None)
}

/// [`load`], with the ONNX dims of the data the model will run on (they fix
/// an ONNX input's symbolic dims other than the batch).
pub fn load_for(spec: &str, data_dims: Option<&[usize]>) -> Result<LoadedModel, EngineError> {
    if is_onnx(spec) {
        let opts = ImportOptions {
            input_dims: data_dims.map(<[usize]>::to_vec),
            ..ImportOptions::default()
        };
        let m = onnx::load(Path::new(spec), &opts)?;
        return Ok(LoadedModel {
            graph: m.graph,
            input: m.input.layout,
            outputs: m.outputs.into_iter().map(|o| o.layout).collect(),
            fixed_batch: m.input.batch,
        });
    }
    let graph = models::build(spec, 0)?;
    let dims = graph.dims()?;
    let Some((h, w, c)) = graph.image_input() else {
        return Err(EngineError::Shape(format!(
            "built-in model {spec} does not take an NHWC image"
        )));
    };
    let outputs = graph
        .output_ids()
        .into_iter()
        .map(|o| match dims[o][..] {
            [1, 1, 1, c] => Layout::plain(vec![1, c], true),
            [1, h, w, c] => Layout::image(c, h, w),
            ref d => Layout::plain(d.to_vec(), true),
        })
        .collect();
    Ok(LoadedModel {
        graph,
        input: Layout::image(c, h, w),
        outputs,
        fixed_batch: None,
    })
}

impl LoadedModel {
    /// The first output.
    pub fn output(&self) -> &Layout {
        &self.outputs[0]
    }

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
