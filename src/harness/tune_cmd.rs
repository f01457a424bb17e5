//! `joulebench tune`: best-of algorithm choice per convolution layer, as in
//! the seed's framework. Every applicable lowering (convGemm, explicit im2col,
//! Winograd F(2x2, 3x3) and F(4x4, 3x3)) runs the whole model with per-layer profiling, in interleaved
//! rounds so machine noise hits all candidates alike; each layer keeps the
//! algorithm with the lowest per-round time. The result is a tuning file keyed
//! by machine, kernel, threads and batch, which `infer --tuning` and suites use.

use super::model_source::{self, LoadedModel};
use super::{machine, HarnessError};
use crate::engine::conv::{ConvAlgo, ConvChoice};
use crate::engine::session::{Session, SessionOptions};
use crate::engine::EngineError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

/// The candidates, in a fixed order: what tuning compares never depends on timing.
const CANDIDATES: [ConvChoice; 4] = [
    ConvChoice::ConvGemm,
    ConvChoice::Im2col,
    ConvChoice::Winograd,
    ConvChoice::Winograd4,
];

#[derive(Clone, Debug)]
pub struct TuneSpec {
    pub model: String,
    pub threads: usize,
    pub batch: usize,
    /// Interleaved rounds over the candidates.
    pub rounds: usize,
    /// Timed inferences per candidate and round.
    pub iterations: usize,
}

/// One layer's decision and the evidence for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerTuning {
    pub algorithm: ConvAlgo,
    /// Best per-round milliseconds per batch of each algorithm tried.
    pub ms: BTreeMap<String, f64>,
}

/// A tuning file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    pub model: String,
    pub host: String,
    pub cpu_model: Option<String>,
    pub kernel: String,
    pub threads: usize,
    pub batch: usize,
    pub created_utc: String,
    pub layers: BTreeMap<String, LayerTuning>,
    /// Summed best times of the chosen algorithms, and of convGemm alone.
    pub tuned_ms: f64,
    pub convgemm_ms: f64,
}

fn engine(model: &str) -> impl Fn(EngineError) -> HarnessError + '_ {
    move |source| HarnessError::Engine {
        context: model.to_string(),
        source,
    }
}

fn session(m: &LoadedModel, spec: &TuneSpec, conv: ConvChoice) -> Result<Session, EngineError> {
    m.check_batch(spec.batch)?;
    Session::new(
        &m.graph,
        &SessionOptions {
            batch: spec.batch,
            threads: spec.threads,
            conv,
            ..SessionOptions::default()
        },
    )
}

pub fn tune(spec: &TuneSpec) -> Result<Tuning, HarnessError> {
    let err = engine(&spec.model);
    if spec.rounds == 0 || spec.iterations == 0 {
        return Err(HarnessError::Usage {
            name: "rounds/iterations",
            reason: "must be at least 1".into(),
        });
    }
    let model = model_source::load(&spec.model).map_err(&err)?;
    let mut sessions = Vec::new();
    for c in CANDIDATES {
        let mut s = session(&model, spec, c).map_err(&err)?;
        let x = vec![0.5f32; s.input_len()];
        s.run(&x).map_err(&err)?;
        s.set_profiling(true);
        sessions.push((c, s, x));
    }
    let kernel = sessions[0].1.kernel().name().to_string();
    // best[layer][algo] = lowest per-round ms per batch.
    let mut best: HashMap<String, BTreeMap<String, f64>> = HashMap::new();
    for _ in 0..spec.rounds {
        for (_, s, x) in sessions.iter_mut() {
            s.set_profiling(true); // a fresh profile per round
            for _ in 0..spec.iterations {
                s.run(x).map_err(&err)?;
            }
            for (layer, secs) in s.profile().unwrap_or_default() {
                if !layer.op.starts_with("Conv") {
                    continue;
                }
                let ms = secs / spec.iterations as f64 * 1e3;
                let e = best.entry(layer.name).or_default();
                let v = e.entry(layer.algorithm).or_insert(f64::INFINITY);
                *v = v.min(ms);
            }
        }
    }
    let mut layers = BTreeMap::new();
    let (mut tuned_ms, mut convgemm_ms) = (0.0, 0.0);
    for (name, ms) in best {
        let (algo, t) = ms
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(a, t)| (a.clone(), *t))
            .unwrap_or_default();
        tuned_ms += t;
        // Layers convGemm does not run (1x1, depthwise) count with their own algorithm.
        convgemm_ms += ms.get("convgemm").copied().unwrap_or(t);
        let algorithm: ConvAlgo = algo.parse().map_err(&err)?;
        layers.insert(name, LayerTuning { algorithm, ms });
    }
    let info = machine::collect();
    Ok(Tuning {
        model: spec.model.clone(),
        host: info.host,
        cpu_model: info.cpu_model,
        kernel,
        threads: spec.threads,
        batch: spec.batch,
        created_utc: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        layers,
        tuned_ms,
        convgemm_ms,
    })
}

/// `tuning-<model stem>-t<threads>-b<batch>.json` in the current directory.
pub fn default_file(t: &Tuning) -> std::path::PathBuf {
    let stem = Path::new(&t.model)
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    format!("tuning-{stem}-t{}-b{}.json", t.threads, t.batch).into()
}

impl Tuning {
    /// Reads a tuning file.
    pub fn load(path: &Path) -> Result<Tuning, HarnessError> {
        let bad = |reason: String| HarnessError::Records {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| HarnessError::Io {
            path: path.to_path_buf(),
            reason: format!("cannot read: {e}"),
        })?;
        serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not a joulebench tuning file ({e}); make one with `joulebench tune`"
            ))
        })
    }

    /// Writes it as pretty JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<(), HarnessError> {
        let io = |e: std::io::Error| HarnessError::Io {
            path: path.to_path_buf(),
            reason: format!("cannot write: {e}"),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| HarnessError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The per-layer overrides for a session of `model` with `kernel`,
    /// `threads` and `batch`; a file made for something else is an error.
    pub fn overrides(
        &self,
        path: &Path,
        model: &str,
        kernel: &str,
        threads: usize,
        batch: usize,
    ) -> Result<HashMap<String, ConvAlgo>, HarnessError> {
        let mine = (
            self.model.as_str(),
            self.kernel.as_str(),
            self.threads,
            self.batch,
        );
        if mine != (model, kernel, threads, batch) {
            return Err(HarnessError::Records {
                path: path.to_path_buf(),
                reason: format!(
                    "was tuned for model {}, kernel {}, {} thread(s), batch {}; this run is {model}, \
                     {kernel}, {threads} thread(s), batch {batch}: run `joulebench tune --model {model} \
                     --threads {threads} --batch {batch}`",
                    self.model, self.kernel, self.threads, self.batch
                ),
            });
        }
        Ok(self
            .layers
            .iter()
            .map(|(k, v)| (k.clone(), v.algorithm))
            .collect())
    }
}

impl fmt::Display for Tuning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} kernel, {} thread(s), batch {} on {}",
            self.model, self.kernel, self.threads, self.batch, self.host
        )?;
        writeln!(
            f,
            "  {:<28} {:<10} {:>10} {:>10} {:>10} {:>10}",
            "layer", "chosen", "convgemm", "im2col", "winograd", "winograd4"
        )?;
        for (name, l) in &self.layers {
            let ms = |a: &str| l.ms.get(a).map_or("-".to_string(), |v| format!("{v:.3}"));
            writeln!(
                f,
                "  {:<28} {:<10} {:>10} {:>10} {:>10} {:>10}",
                name,
                l.algorithm.name(),
                ms("convgemm"),
                ms("im2col"),
                ms("winograd"),
                ms("winograd4")
            )?;
        }
        write!(
            f,
            "  convolutions: {:.2} ms per batch tuned, {:.2} ms with convGemm ({:.2}x)",
            self.tuned_ms,
            self.convgemm_ms,
            self.convgemm_ms / self.tuned_ms.max(1e-9)
        )
    }
}
