//! `joulebench inspect`.

use super::{emit, Format};
use anyhow::Result;
use joulebench::harness::inspect_cmd;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The .onnx file.
    model: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl InspectArgs {
    pub fn run(self) -> Result<()> {
        let r = inspect_cmd::inspect(&self.model)?;
        emit(self.format, &r, || r.to_string())
    }
}
