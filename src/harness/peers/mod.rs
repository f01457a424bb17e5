//! Peer engines measured in the same suite as joulebench's own: tract
//! (in-process, cargo feature `tract`) and command engines that run an
//! external program per point and parse what it prints: onnxruntime,
//! OpenVINO, LiteRT (TFLite + XNNPACK) and ncnn through embedded Python
//! drivers (python.rs; ncnn and LiteRT on models convert.rs makes from the
//! suite's ONNX file), TFLite's `benchmark_model` and ArmNN's `ExecuteNetwork`.

pub mod command;
pub mod convert;
pub mod model_file;
pub mod process;
pub mod python;
pub mod tract_engine;

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Which engine runs a point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[default]
    Joulebench,
    Tract,
    Onnxruntime,
    Openvino,
    Litert,
    Ncnn,
    Tflite,
    Armnn,
}

impl Engine {
    pub const ALL: [Engine; 8] = [
        Engine::Joulebench,
        Engine::Tract,
        Engine::Onnxruntime,
        Engine::Openvino,
        Engine::Litert,
        Engine::Ncnn,
        Engine::Tflite,
        Engine::Armnn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Joulebench => "joulebench",
            Engine::Tract => "tract",
            Engine::Onnxruntime => "onnxruntime",
            Engine::Openvino => "openvino",
            Engine::Litert => "litert",
            Engine::Ncnn => "ncnn",
            Engine::Tflite => "tflite",
            Engine::Armnn => "armnn",
        }
    }

    /// Whether joulebench's own knobs (cache, loop, conv, fusion) apply.
    pub fn is_joulebench(self) -> bool {
        self == Engine::Joulebench
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Engine::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                format!(
                    "engine `{s}` is not known; use {}",
                    Engine::ALL.map(Engine::name).join(", ")
                )
            })
    }
}

/// Where the peer programs and their model files are (suite keys).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PeerConfig {
    /// Python for onnxruntime, OpenVINO, LiteRT, ncnn and the model conversions
    /// (`python`); default `JOULEBENCH_PYTHON`, else `python3`.
    pub python: Option<String>,
    /// TFLite's benchmark program (`benchmark_model`); default `benchmark_model` on PATH.
    pub benchmark_model: Option<String>,
    /// ArmNN's program (`execute_network`); default `ExecuteNetwork` on PATH.
    pub execute_network: Option<String>,
    /// A ready .tflite file for LiteRT and TFLite (`tflite_model`), resolved
    /// against the suite's directory; without it LiteRT runs the suite's ONNX
    /// file converted by onnx2tf.
    pub tflite_model: Option<PathBuf>,
    /// A ready ncnn .param file (`ncnn_model`, its .bin beside it); without it
    /// ncnn runs the suite's ONNX file converted by pnnx.
    pub ncnn_model: Option<PathBuf>,
    /// The file ArmNN runs (`armnn_model`, .tflite or .onnx); default `tflite_model`.
    pub armnn_model: Option<PathBuf>,
    /// Input tensor name for TFLite and ArmNN (`peer_input`): with it the batch
    /// is set through the tools' input-shape flags; without it only batch 1 runs.
    pub peer_input: Option<String>,
    /// ArmNN backend (`armnn_backend`), default `CpuAcc`.
    pub armnn_backend: Option<String>,
    /// Time a peer program may take beyond the measurement's own seconds
    /// (`peer_timeout_seconds`, default 900); a model conversion gets four times as long.
    pub peer_timeout_seconds: Option<f64>,
}

impl PeerConfig {
    /// The Python interpreter for onnxruntime.
    pub fn python(&self) -> String {
        self.python
            .clone()
            .or_else(|| {
                std::env::var("JOULEBENCH_PYTHON")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "python3".into())
    }

    pub fn benchmark_model(&self) -> String {
        self.benchmark_model
            .clone()
            .unwrap_or_else(|| "benchmark_model".into())
    }

    pub fn execute_network(&self) -> String {
        self.execute_network
            .clone()
            .unwrap_or_else(|| "ExecuteNetwork".into())
    }

    pub fn armnn_model(&self) -> Option<&PathBuf> {
        self.armnn_model.as_ref().or(self.tflite_model.as_ref())
    }

    pub fn peer_timeout_seconds(&self) -> f64 {
        self.peer_timeout_seconds.unwrap_or(900.0)
    }

    pub fn armnn_backend(&self) -> String {
        self.armnn_backend
            .clone()
            .unwrap_or_else(|| "CpuAcc".into())
    }
}

/// Why a peer point has no measurement.
#[derive(Clone, Debug, PartialEq)]
pub enum PeerFailure {
    /// The engine is not available here (program missing, feature not
    /// compiled in, model file for it not named): the row is `skipped`.
    Unavailable(String),
    /// The engine ran and failed, or printed what could not be parsed: the
    /// row is `failed`.
    Failed(String),
}

impl PeerFailure {
    pub fn status(&self) -> &'static str {
        match self {
            PeerFailure::Unavailable(_) => "skipped",
            PeerFailure::Failed(_) => "failed",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            PeerFailure::Unavailable(r) | PeerFailure::Failed(r) => r,
        }
    }
}

impl fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status(), self.reason())
    }
}

/// Latency figures a tool reports without per-batch samples (seconds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolSummary {
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub stdev: f64,
    pub median: Option<f64>,
}
