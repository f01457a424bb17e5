//! `joulebench models`.

use super::{emit, Format};
use anyhow::Result;
use joulebench::harness::models_cmd;

#[derive(clap::Args)]
pub struct ModelsArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl ModelsArgs {
    pub fn run(self) -> Result<()> {
        let list = models_cmd::list()?;
        emit(self.format, &list, || models_cmd::table(&list))
    }
}
