//! `joulebench tune`: best-of algorithm choice per convolution layer, as in
//! the seed's framework. Every applicable lowering (convGemm, explicit im2col,
//! Winograd F(2x2, 3x3) and F(4x4, 3x3)) runs the whole model with per-layer profiling, in interleaved
//! rounds so machine noise hits all candidates alike; each layer keeps the
//! algorithm with the lowest per-round time. A second set of rounds runs the
//! chosen algorithms under a few GEMM blockings (the analytical one and two
//! with shallower and deeper k-blocks) and gives each layer its fastest. The
//! result is a tuning file keyed by machine, kernel, threads and batch, which
//! `infer --tuning` and suites use.

use super::model_source::{self, LoadedModel};
use super::{machine, HarnessError};
use crate::engine::conv::{ConvAlgo, ConvChoice};
use crate::engine::gemm::CacheConfig;
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
    /// The layer's own GEMM blocking, when one beat the session's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheConfig>,
    /// Best per-round milliseconds of the chosen algorithm under each blocking
    /// tried (`mc<mc>-nc<nc>-kc<kc>`); empty for layers without a GEMM.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cache_ms: BTreeMap<String, f64>,
}

/// What a tuning file sets for a session: algorithms and blockings by layer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerOverrides {
    pub conv: HashMap<String, ConvAlgo>,
    pub cache: HashMap<String, CacheConfig>,
}

/// A blocking's name in tuning files.
fn blocking_label(c: &CacheConfig) -> String {
    format!("mc{}-nc{}-kc{}", c.mc, c.nc, c.kc)
}

/// The blockings tuning tries: the session's (analytical) one first, then k
/// blocks two thirds and four thirds as deep, with mc scaled inversely so the
/// packed A block keeps its share of L2. A fixed list, so what tuning compares
/// never depends on timing.
pub fn blocking_candidates(base: CacheConfig, mr: usize) -> [CacheConfig; 3] {
    let scaled = |k_num: usize, k_den: usize| CacheConfig {
        mc: (base.mc * k_den / k_num / mr).max(1) * mr,
        nc: base.nc,
        kc: (base.kc * k_num / k_den).div_ceil(8).max(1) * 8,
    };
    [base, scaled(2, 3), scaled(4, 3)]
}

/// A layer keeps the session's blocking unless another is this much faster
/// (so noise alone does not scatter blockings over the file).
const BLOCKING_MARGIN: f64 = 0.99;

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
    /// The session's (analytical) blocking, which layers without their own use.
    #[serde(default)]
    pub session_blocking: Option<CacheConfig>,
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

fn session(m: &LoadedModel, spec: &TuneSpec, opts: SessionOptions) -> Result<Session, EngineError> {
    m.check_batch(spec.batch)?;
    Session::new(
        &m.graph,
        &SessionOptions {
            batch: spec.batch,
            threads: spec.threads,
            ..opts
        },
    )
}

/// Interleaved rounds over `sessions`: each layer's lowest per-round ms per
/// batch, by layer name and then by the label `key` gives the session's layer.
fn best_times(
    sessions: &mut [(String, Session, Vec<f32>)],
    spec: &TuneSpec,
    err: &impl Fn(EngineError) -> HarnessError,
    key: impl Fn(&str, &crate::engine::session::LayerInfo) -> String,
) -> Result<HashMap<String, BTreeMap<String, f64>>, HarnessError> {
    let mut best: HashMap<String, BTreeMap<String, f64>> = HashMap::new();
    for _ in 0..spec.rounds {
        for (label, s, x) in sessions.iter_mut() {
            s.set_profiling(true); // a fresh profile per round
            for _ in 0..spec.iterations {
                s.run(x).map_err(err)?;
            }
            for (layer, secs) in s.profile().unwrap_or_default() {
                if !layer.op.starts_with("Conv") {
                    continue;
                }
                let ms = secs / spec.iterations as f64 * 1e3;
                let k = key(label, &layer);
                let v = best
                    .entry(layer.name)
                    .or_default()
                    .entry(k)
                    .or_insert(f64::INFINITY);
                *v = v.min(ms);
            }
        }
    }
    Ok(best)
}

/// A session per label, warmed up with one inference and profiling.
fn warm(
    model: &LoadedModel,
    spec: &TuneSpec,
    err: &impl Fn(EngineError) -> HarnessError,
    opts: impl IntoIterator<Item = (String, SessionOptions)>,
) -> Result<Vec<(String, Session, Vec<f32>)>, HarnessError> {
    let mut sessions = Vec::new();
    for (label, o) in opts {
        let mut s = session(model, spec, o).map_err(err)?;
        let x = vec![0.5f32; s.input_len()];
        s.run(&x).map_err(err)?;
        s.set_profiling(true);
        sessions.push((label, s, x));
    }
    Ok(sessions)
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
    // Round 1: the algorithms, each session running one everywhere it applies.
    let opts = CANDIDATES.map(|c| {
        let o = SessionOptions {
            conv: c,
            ..SessionOptions::default()
        };
        (c.to_string(), o)
    });
    let mut sessions = warm(&model, spec, &err, opts)?;
    let kernel = sessions[0].1.kernel().name().to_string();
    let (mr, base) = (sessions[0].1.kernel().mr, sessions[0].1.cache());
    // best[layer][algo] = lowest per-round ms per batch.
    let best = best_times(&mut sessions, spec, &err, |_, l| l.algorithm.clone())?;
    drop(sessions);
    let mut layers = BTreeMap::new();
    let mut convgemm_ms = 0.0;
    for (name, ms) in best {
        let (algo, t) = ms
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(a, t)| (a.clone(), *t))
            .unwrap_or_default();
        // Layers convGemm does not run (1x1, depthwise) count with their own algorithm.
        convgemm_ms += ms.get("convgemm").copied().unwrap_or(t);
        let algorithm: ConvAlgo = algo.parse().map_err(&err)?;
        let layer = LayerTuning {
            algorithm,
            ms,
            cache: None,
            cache_ms: BTreeMap::new(),
        };
        layers.insert(name, layer);
    }
    // Round 2: the chosen algorithms under each blocking.
    let chosen: HashMap<String, ConvAlgo> = layers
        .iter()
        .map(|(n, l)| (n.clone(), l.algorithm))
        .collect();
    let candidates = blocking_candidates(base, mr);
    let opts = candidates.map(|c| {
        let o = SessionOptions {
            mc: Some(c.mc),
            nc: Some(c.nc),
            kc: Some(c.kc),
            conv_overrides: chosen.clone(),
            ..SessionOptions::default()
        };
        (blocking_label(&c), o)
    });
    let mut sessions = warm(&model, spec, &err, opts)?;
    let by_blocking = best_times(&mut sessions, spec, &err, |label, _| label.to_string())?;
    drop(sessions);
    let mut tuned_ms = 0.0;
    for (name, layer) in layers.iter_mut() {
        let Some(ms) = by_blocking.get(name) else {
            continue;
        };
        let base_ms = ms
            .get(&blocking_label(&base))
            .copied()
            .unwrap_or(f64::INFINITY);
        let (mut pick, mut t) = (None, base_ms);
        if layer.algorithm != ConvAlgo::Depthwise {
            // The fixed order breaks ties: the session's blocking, then the others.
            for c in &candidates[1..] {
                let v = ms.get(&blocking_label(c)).copied().unwrap_or(f64::INFINITY);
                if v < base_ms * BLOCKING_MARGIN && v < t {
                    (pick, t) = (Some(*c), v);
                }
            }
            layer.cache_ms = ms.clone();
        }
        layer.cache = pick;
        tuned_ms += t;
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
        session_blocking: Some(base),
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
        let t: Tuning = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not a joulebench tuning file ({e}); make one with `joulebench tune`"
            ))
        })?;
        for (name, l) in &t.layers {
            if let Some(c) = l.cache.filter(|c| c.validate().is_err()) {
                return Err(bad(format!(
                    "layer `{name}` has cache mc={} nc={} kc={}, but each must be at least 1: \
                     fix or delete its `cache`, or make the file again with `joulebench tune`",
                    c.mc, c.nc, c.kc
                )));
            }
        }
        Ok(t)
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

    /// The per-layer algorithms and blockings for a session of `model` with
    /// `kernel`, `threads` and `batch`; a file made for something else is an error.
    pub fn overrides(
        &self,
        path: &Path,
        model: &str,
        kernel: &str,
        threads: usize,
        batch: usize,
    ) -> Result<LayerOverrides, HarnessError> {
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
        Ok(LayerOverrides {
            conv: self
                .layers
                .iter()
                .map(|(k, v)| (k.clone(), v.algorithm))
                .collect(),
            cache: self
                .layers
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.cache?)))
                .collect(),
        })
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
            "  {:<28} {:<10} {:>10} {:>10} {:>10} {:>10} {:>10}  blocking",
            "layer", "chosen", "convgemm", "im2col", "winograd", "winograd4", "tuned"
        )?;
        for (name, l) in &self.layers {
            let ms = |a: &str| l.ms.get(a).map_or("-".to_string(), |v| format!("{v:.3}"));
            // The chosen algorithm under the chosen blocking (round 2), or
            // its round-1 time in files from before blockings were tuned.
            let tuned = l
                .cache
                .or(self.session_blocking)
                .and_then(|c| l.cache_ms.get(&blocking_label(&c)))
                .or_else(|| l.ms.get(l.algorithm.name()))
                .map_or("-".to_string(), |v| format!("{v:.3}"));
            let blocking = match &l.cache {
                Some(c) => format!(
                    "{} ({} blockings tried)",
                    blocking_label(c),
                    l.cache_ms.len()
                ),
                None if l.cache_ms.is_empty() => "-".into(),
                None => format!("session's ({} tried)", l.cache_ms.len()),
            };
            writeln!(
                f,
                "  {:<28} {:<10} {:>10} {:>10} {:>10} {:>10} {:>10}  {}",
                name,
                l.algorithm.name(),
                ms("convgemm"),
                ms("im2col"),
                ms("winograd"),
                ms("winograd4"),
                tuned,
                blocking
            )?;
        }
        write!(
            f,
            "  convolutions: {:.2} ms per batch tuned (algorithms, then blockings), {:.2} ms with convGemm ({:.2}x)",
            self.tuned_ms,
            self.convgemm_ms,
            self.convgemm_ms / self.tuned_ms.max(1e-9)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockings_tried_keep_the_a_block_size_and_round_to_the_kernel() {
        let base = CacheConfig {
            mc: 252,
            nc: 4768,
            kc: 384,
        };
        let [first, shallow, deep] = blocking_candidates(base, 6);
        assert_eq!(first, base);
        assert_eq!((shallow.mc, shallow.kc), (378, 256));
        assert_eq!((deep.mc, deep.kc), (186, 512));
        for c in [shallow, deep] {
            assert_eq!(c.nc, base.nc);
            assert_eq!(c.mc % 6, 0);
            let ratio = (c.mc * c.kc) as f64 / (base.mc * base.kc) as f64;
            assert!((0.95..=1.01).contains(&ratio), "{c:?}");
        }
        // Tiny blockings never reach zero.
        let tiny = CacheConfig {
            mc: 1,
            nc: 1,
            kc: 1,
        };
        for c in blocking_candidates(tiny, 4) {
            assert!(c.validate().is_ok(), "{c:?}");
        }
    }

    #[test]
    fn files_from_before_blocking_tuning_read_back_without_blockings() {
        let old = r#"{"model":"tiny","host":"h","cpu_model":null,"kernel":"avx2","threads":1,
            "batch":1,"created_utc":"2026-11-23T00:00:00Z","tuned_ms":1.0,"convgemm_ms":1.0,
            "layers":{"stem.conv":{"algorithm":"im2col","ms":{"im2col":0.5,"convgemm":0.6}}}}"#;
        let t: Tuning = serde_json::from_str(old).unwrap();
        assert_eq!(t.session_blocking, None);
        let o = t
            .overrides(Path::new("old.json"), "tiny", "avx2", 1, 1)
            .unwrap();
        assert_eq!(o.conv["stem.conv"], ConvAlgo::Im2col);
        assert!(o.cache.is_empty());
    }

    #[test]
    fn a_zero_blocking_in_a_file_is_refused_naming_the_file_and_layer() {
        let dir = std::env::temp_dir().join(format!("jb-tune-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.json");
        std::fs::write(
            &file,
            r#"{"model":"tiny","host":"h","cpu_model":null,"kernel":"avx2","threads":1,
            "batch":1,"created_utc":"2026-11-23T00:00:00Z","tuned_ms":1.0,"convgemm_ms":1.0,
            "layers":{"stem.conv":{"algorithm":"im2col","ms":{"im2col":0.5},
            "cache":{"mc":0,"nc":64,"kc":32}}}}"#,
        )
        .unwrap();
        let e = Tuning::load(&file).unwrap_err().to_string();
        assert!(
            e.contains("t.json") && e.contains("stem.conv") && e.contains("mc=0"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
