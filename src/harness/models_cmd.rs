//! `joulebench models`: the built-in zoo.

use crate::engine::models::{self, ModelInfo};
use crate::engine::EngineError;

/// Every built-in model's size and cost.
pub fn list() -> Result<Vec<ModelInfo>, EngineError> {
    models::names().iter().map(|n| models::info(n)).collect()
}

/// Human table of [`list`].
pub fn table(list: &[ModelInfo]) -> String {
    let mut s = format!(
        "{:<14} {:>14} {:>14} {:>8} {:>12}\n",
        "model", "parameters", "GFLOP/image", "layers", "input"
    );
    for m in list {
        s.push_str(&format!(
            "{:<14} {:>14} {:>14.3} {:>8} {:>12}\n",
            m.name,
            m.parameters,
            m.gflops_per_image,
            m.weighted_layers,
            format!("{}x{}x{}", m.input.0, m.input.1, m.input.2)
        ));
    }
    s
}
