//! `joulebench infer`: times a model's inference and reports throughput,
//! latency percentiles, GFLOP/s against the measured peak, and optionally a
//! per-layer profile.

use super::analyze::stats::quantile_sorted;
use super::gemm_cmd::fill_uniform;
use super::model_source::{self, LoadedModel};
use super::run::time_batches;
use super::tune_cmd::Tuning;
use super::{npy, HarnessError};
use crate::engine::conv::{ConvAlgo, ConvChoice};
use crate::engine::gemm::{measure_peak, CacheConfig, Kernel, ParallelLoop};
use crate::engine::session::{Session, SessionOptions};
use crate::engine::EngineError;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What `joulebench infer` was asked to run.
#[derive(Clone, Debug)]
pub struct InferSpec {
    /// Built-in model name or ONNX file.
    pub model: String,
    /// Images per batch; default 1, or the batch of `input`.
    pub batch: Option<usize>,
    /// NCHW float32 .npy input (random data when absent).
    pub input: Option<PathBuf>,
    /// Where to write the output of one inference on the input, as .npy.
    pub output: Option<PathBuf>,
    /// Per-layer algorithms from `joulebench tune` (`conv_layers` win).
    pub tuning: Option<PathBuf>,
    pub threads: usize,
    /// Measure for at least this long (ignored when `iterations` is set).
    pub seconds: f64,
    pub iterations: Option<usize>,
    pub warmup: usize,
    pub conv: ConvChoice,
    /// Per-layer algorithm overrides by node name.
    pub conv_layers: HashMap<String, ConvAlgo>,
    /// Per-layer GEMM blocking by node name (from `tuning`).
    pub layer_cache: HashMap<String, CacheConfig>,
    pub fusion: bool,
    pub mc: Option<usize>,
    pub nc: Option<usize>,
    pub kc: Option<usize>,
    pub parallel: ParallelLoop,
    pub profile: bool,
    pub skip_peak: bool,
}

/// One row of the per-layer profile.
#[derive(Clone, Debug, Serialize)]
pub struct LayerProfile {
    pub name: String,
    pub op: String,
    pub algorithm: String,
    pub output: String,
    pub ms_per_batch: f64,
    pub share: f64,
    pub gflops: f64,
    /// The layer's own blocking from `--tuning`; empty when it uses the session's.
    pub blocking: String,
}

/// What `joulebench infer` measured.
#[derive(Clone, Debug, Serialize)]
pub struct InferReport {
    pub model: String,
    pub batch: usize,
    pub threads: usize,
    pub kernel: &'static str,
    pub conv: String,
    pub fusion: bool,
    pub mc: usize,
    pub nc: usize,
    pub kc: usize,
    #[serde(rename = "loop")]
    pub parallel: ParallelLoop,
    pub iterations: usize,
    pub duration_s: f64,
    pub images_per_s: f64,
    pub latency_ms_mean: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub gflop_per_image: f64,
    pub gflops: f64,
    pub peak_gflops: Option<f64>,
    pub fraction_of_peak: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerProfile>>,
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Parses `NAME=ALGO` per-layer overrides.
pub fn parse_conv_layers(items: &[String]) -> Result<HashMap<String, ConvAlgo>, EngineError> {
    items
        .iter()
        .map(|item| {
            let (name, algo) = item.split_once('=').ok_or_else(|| {
                EngineError::param(
                    "conv-layer",
                    format!("`{item}` is not NAME=ALGO (for example layer1.0.conv2=im2col)"),
                )
            })?;
            Ok((name.trim().to_string(), algo.parse()?))
        })
        .collect()
}

/// Builds the session for `spec` at `batch`.
pub fn build_session(
    spec: &InferSpec,
    model: &LoadedModel,
    batch: usize,
) -> Result<Session, EngineError> {
    model.check_batch(batch)?;
    let opts = SessionOptions {
        batch,
        threads: spec.threads,
        mc: spec.mc,
        nc: spec.nc,
        kc: spec.kc,
        parallel: spec.parallel,
        fusion: spec.fusion,
        conv: spec.conv,
        conv_overrides: spec.conv_layers.clone(),
        layer_cache: spec.layer_cache.clone(),
        ..SessionOptions::default()
    };
    Session::new(&model.graph, &opts)
}

/// The batch and the engine-layout input: from `spec.input` (read into
/// `npy`), or random.
fn input_batch(
    spec: &InferSpec,
    model: &LoadedModel,
    npy: Option<(Vec<usize>, Vec<f32>)>,
) -> Result<(usize, Option<Vec<f32>>), HarnessError> {
    let (Some(path), Some((dims, data))) = (&spec.input, npy) else {
        return Ok((spec.batch.unwrap_or(1), None));
    };
    let want = model.input.dims(0);
    if dims.len() != want.len() || dims[1..] != want[1..] || dims[0] == 0 {
        return Err(HarnessError::Records {
            path: path.clone(),
            reason: format!(
                "has shape {dims:?}; the model takes {} (NCHW float32, any batch N >= 1)",
                model.input.describe()
            ),
        });
    }
    let n = dims[0];
    if let Some(b) = spec.batch.filter(|&b| b != n) {
        return Err(HarnessError::Usage {
            name: "batch",
            reason: format!(
                "--batch {b} differs from the {n} images in {}; leave --batch out",
                path.display()
            ),
        });
    }
    let mut x = vec![0.0f32; data.len()];
    model.input.to_engine(&data, &mut x);
    Ok((n, Some(x)))
}

/// Runs the benchmark.
pub fn run_infer(spec: &InferSpec) -> Result<InferReport, HarnessError> {
    let engine = |source: EngineError| HarnessError::Engine {
        context: spec.model.clone(),
        source,
    };
    if !(spec.seconds.is_finite() && spec.seconds >= 0.0) {
        return Err(engine(EngineError::param(
            "seconds",
            "must be a non-negative number",
        )));
    }
    if spec.iterations == Some(0) {
        return Err(engine(EngineError::param(
            "iterations",
            "must be at least 1",
        )));
    }
    if let Some(path) = &spec.output {
        crate::guard::check_output(path, "output file").map_err(|e| HarnessError::Usage {
            name: "output",
            reason: e.to_string(),
        })?;
    }
    let npy = spec.input.as_ref().map(|p| npy::read(p)).transpose()?;
    // A model whose input dims are all declared is checked against the data
    // below (naming the .npy); only one with symbolic dims needs them now.
    let model = match (model_source::load(&spec.model), &npy) {
        (Err(_), Some((dims, _))) => model_source::load_for(&spec.model, Some(dims)),
        (loaded, _) => loaded,
    }
    .map_err(engine)?;
    let (batch, data) = input_batch(spec, &model, npy)?;
    let mut spec = spec.clone();
    if let Some(path) = &spec.tuning {
        let kernel = Kernel::from_env().map_err(engine)?;
        let tuned =
            Tuning::load(path)?.overrides(path, &spec.model, kernel.name(), spec.threads, batch)?;
        let mut layers = tuned.conv;
        layers.extend(spec.conv_layers.drain());
        spec.conv_layers = layers;
        // Blocking given on the command line applies to every layer.
        if spec.mc.is_none() && spec.nc.is_none() && spec.kc.is_none() {
            spec.layer_cache = tuned.cache;
        }
    }
    let spec = &spec;
    let mut sess = build_session(spec, &model, batch).map_err(engine)?;
    let input = match data {
        Some(x) => x,
        None => {
            let mut x = vec![0.0f32; sess.input_len()];
            fill_uniform(&mut x, 42);
            x
        }
    };
    for _ in 0..spec.warmup {
        sess.run(&input).map_err(engine)?;
    }
    if let Some(path) = &spec.output {
        let y = sess.run(&input).map_err(engine)?;
        let mut out = vec![0.0f32; y.len()];
        model.output().from_engine(y, &mut out);
        npy::write(path, &model.output().dims(batch), &out)?;
    }
    sess.set_profiling(spec.profile);
    let (mut lat, duration) = time_batches(&mut sess, &input, |n, elapsed| match spec.iterations {
        Some(k) => n >= k,
        None => n >= 3 && elapsed >= spec.seconds,
    })
    .map_err(engine)?;
    let total: f64 = lat.iter().sum();
    let iters = lat.len();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| quantile_sorted(&lat, p).unwrap_or(f64::NAN) * 1e3;
    let images_per_s = (iters * batch) as f64 / total;
    let gflop = sess.flops_per_image() / 1e9;
    let gflops = gflop * images_per_s;
    let peak = if spec.skip_peak {
        None
    } else {
        Some(
            measure_peak(sess.kernel(), spec.threads, Duration::from_millis(900))
                .map_err(engine)?
                .total_gflops,
        )
    };
    let layers = sess.profile().map(|p| {
        let sum: f64 = p.iter().map(|(_, t)| t).sum();
        p.into_iter()
            .map(|(l, t)| LayerProfile {
                ms_per_batch: t / iters as f64 * 1e3,
                share: if sum > 0.0 { t / sum } else { 0.0 },
                gflops: if t > 0.0 {
                    l.gflop_per_image * (batch * iters) as f64 / t
                } else {
                    0.0
                },
                name: l.name,
                op: l.op,
                algorithm: l.algorithm,
                output: l.output,
                blocking: l.blocking,
            })
            .collect()
    });
    let cache = sess.cache();
    Ok(InferReport {
        model: spec.model.clone(),
        batch,
        threads: spec.threads,
        kernel: sess.kernel().name(),
        conv: spec.conv.to_string(),
        fusion: spec.fusion,
        mc: cache.mc,
        nc: cache.nc,
        kc: cache.kc,
        parallel: spec.parallel,
        iterations: iters,
        duration_s: duration,
        images_per_s,
        latency_ms_mean: total / iters as f64 * 1e3,
        latency_ms_p50: q(0.5),
        latency_ms_p90: q(0.9),
        latency_ms_p99: q(0.99),
        gflop_per_image: gflop,
        gflops,
        peak_gflops: peak,
        fraction_of_peak: peak.map(|p| gflops / p),
        peak_rss_mb: peak_rss_mb(),
        output_file: spec.output.as_ref().map(|p| p.display().to_string()),
        layers,
    })
}

impl fmt::Display for InferReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: batch {}, {} thread(s), {} kernel, conv {}, fusion {}",
            self.model,
            self.batch,
            self.threads,
            self.kernel,
            self.conv,
            if self.fusion { "on" } else { "off" }
        )?;
        writeln!(
            f,
            "  blocking     mc={} nc={} kc={}, loop {}",
            self.mc, self.nc, self.kc, self.parallel
        )?;
        writeln!(
            f,
            "  iterations   {} in {:.2} s",
            self.iterations, self.duration_s
        )?;
        writeln!(f, "  images/s     {:.2}", self.images_per_s)?;
        writeln!(
            f,
            "  latency ms   p50 {:.2}  p90 {:.2}  p99 {:.2}  mean {:.2}",
            self.latency_ms_p50, self.latency_ms_p90, self.latency_ms_p99, self.latency_ms_mean
        )?;
        write!(
            f,
            "  GFLOP/s      {:.1} ({:.2} GFLOP/image)",
            self.gflops, self.gflop_per_image
        )?;
        match self.fraction_of_peak {
            Some(fr) => writeln!(f, ", {:.1}% of the measured peak", fr * 100.0)?,
            None => writeln!(f)?,
        }
        if let Some(rss) = self.peak_rss_mb {
            writeln!(f, "  peak RSS     {rss:.0} MiB")?;
        }
        if let Some(out) = &self.output_file {
            writeln!(f, "  output       {out}")?;
        }
        if let Some(layers) = &self.layers {
            writeln!(
                f,
                "\n  {:<28} {:<18} {:<10} {:>12} {:>9} {:>7} {:>8}  blocking (if the layer's own)",
                "layer", "op", "algorithm", "output", "ms/batch", "share", "GFLOP/s"
            )?;
            for l in layers {
                writeln!(
                    f,
                    "  {:<28} {:<18} {:<10} {:>12} {:>9.3} {:>6.1}% {:>8.1}  {}",
                    l.name,
                    l.op,
                    l.algorithm,
                    l.output,
                    l.ms_per_batch,
                    l.share * 100.0,
                    l.gflops,
                    l.blocking
                )?;
            }
        }
        Ok(())
    }
}
