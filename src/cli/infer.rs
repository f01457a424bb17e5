//! `joulebench infer`.

use super::{emit, Blocking, Format};
use anyhow::Result;
use joulebench::engine::conv::ConvChoice;
use joulebench::harness::infer_cmd::{self, InferSpec};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct InferArgs {
    /// Built-in model name (see `joulebench models`) or an ONNX file.
    #[arg(long)]
    model: String,
    /// Images per batch [default: 1, or the batch of --input].
    #[arg(long)]
    batch: Option<usize>,
    /// Input tensor: NCHW float32 .npy (random data when absent).
    #[arg(long, value_name = "X.npy")]
    input: Option<PathBuf>,
    /// Write the output of one inference on the input as .npy.
    #[arg(long, value_name = "Y.npy")]
    output: Option<PathBuf>,
    /// Per-layer algorithms and blockings from `joulebench tune` (--conv-layer wins; --mc/--nc/--kc apply to every layer)
    #[arg(long, value_name = "FILE")]
    tuning: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Minimum measuring time in seconds.
    #[arg(long, default_value_t = 5.0, conflicts_with = "iterations")]
    seconds: f64,
    /// Exact number of timed batches.
    #[arg(long)]
    iterations: Option<usize>,
    /// Untimed batches first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Convolution lowering: auto, convgemm, im2col, winograd (F(2x2,3x3))
    /// or winograd4 (F(4x4,3x3)); Winograd applies to 3x3 stride-1 layers.
    #[arg(long, value_enum, ignore_case = true, default_value_t = ConvChoice::Auto)]
    conv: ConvChoice,
    /// Per-layer algorithm, NAME=ALGO (convgemm, im2col, pointwise,
    /// depthwise, winograd, winograd4); repeatable, overrides --conv for
    /// that layer.
    #[arg(long = "conv-layer", value_name = "NAME=ALGO")]
    conv_layer: Vec<String>,
    /// Run BatchNorm, Add and ReLU as separate layers.
    #[arg(long)]
    no_fusion: bool,
    #[command(flatten)]
    blocking: Blocking,
    /// Per-layer time table.
    #[arg(long)]
    profile: bool,
    /// Do not measure the FMA peak.
    #[arg(long)]
    no_peak: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl InferArgs {
    pub fn run(self) -> Result<()> {
        let spec = InferSpec {
            conv_layers: infer_cmd::parse_conv_layers(&self.conv_layer)?,
            model: self.model,
            batch: self.batch,
            input: self.input,
            output: self.output,
            tuning: self.tuning,
            threads: self.threads,
            seconds: self.seconds,
            iterations: self.iterations,
            warmup: self.warmup,
            conv: self.conv,
            layer_cache: Default::default(),
            fusion: !self.no_fusion,
            mc: self.blocking.mc,
            nc: self.blocking.nc,
            kc: self.blocking.kc,
            parallel: self.blocking.parallel,
            profile: self.profile,
            skip_peak: self.no_peak,
        };
        let r = infer_cmd::run_infer(&spec)?;
        emit(self.format, &r, || r.to_string())
    }
}
