//! Experiment suites: the TOML file, its validation and the sweep expansion.
//!
//! The file is parsed with `toml`'s spanned document model so that every
//! problem (unknown key, wrong type, impossible value, unknown model) is
//! collected with its file, line and column and reported together.

use super::model_source;
use super::modes::{CpufreqMode, ModeDef, ModeSettings, NONE};
use super::peers::{Engine, PeerConfig};
use super::suite_tuning::TuningChoice;
use super::HarnessError;
use crate::engine::conv::ConvChoice;
use crate::engine::gemm::ParallelLoop;
use crate::engine::models;
use crate::engine::onnx;
use crate::power::config::COMMON_KEYS;
use crate::power::external::{Column, MeterFormat, TimeFormat, PRESETS};
use crate::power::{PowerConfig, SourceKind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem found in a suite file, with its place.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem of one suite file.
#[derive(Clone, Debug, PartialEq)]
pub struct SuiteProblems {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for SuiteProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} problem(s) in suite {}:",
            self.problems.len(),
            self.file.display()
        )?;
        for p in &self.problems {
            write!(
                f,
                "\n  {}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.column,
                p.message
            )?;
        }
        Ok(())
    }
}

/// A cache blocking choice: the analytical model, or explicit sizes (a size
/// left out stays analytical).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CacheSpec {
    Auto,
    Explicit {
        mc: Option<usize>,
        nc: Option<usize>,
        kc: Option<usize>,
    },
}

impl CacheSpec {
    /// Short label used in point ids.
    pub fn label(&self) -> String {
        match self {
            CacheSpec::Auto => "auto".into(),
            CacheSpec::Explicit { mc, nc, kc } => {
                let f = |v: &Option<usize>| v.map_or("auto".to_string(), |v| v.to_string());
                format!("mc{}_nc{}_kc{}", f(mc), f(nc), f(kc))
            }
        }
    }

    /// The (mc, nc, kc) overrides to hand to the session.
    pub fn overrides(&self) -> (Option<usize>, Option<usize>, Option<usize>) {
        match *self {
            CacheSpec::Auto => (None, None, None),
            CacheSpec::Explicit { mc, nc, kc } => (mc, nc, kc),
        }
    }
}

/// Measurement rules of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// Untimed batches before timing.
    pub warmup_iterations: usize,
    /// Keep warming up at least this long.
    pub warmup_seconds: f64,
    /// Time at least this long ...
    pub min_seconds: f64,
    /// ... and at least this many batches.
    pub min_batches: usize,
    /// Stop after this long even when `min_batches` is not reached.
    pub max_seconds: Option<f64>,
    /// Each configuration is measured this many times (one row each).
    pub repetitions: usize,
    /// Idle time before each point.
    pub cooldown_seconds: f64,
    /// Pin the run to these logical CPUs.
    pub cpus: Option<Vec<usize>>,
    /// Power source and its settings.
    pub power: PowerConfig,
    /// Read perf counters for each measured window.
    pub counters: bool,
    /// Warn when the coefficient of variation exceeds this.
    pub cv_warn: f64,
    pub allow_oversubscribe: bool,
    /// After the timed batches, time a few more per layer into profile.csv.
    pub profile: bool,
}

impl Default for Measurement {
    /// MLPerf-like: warm up, then at least 1 s and at least 64 batches.
    fn default() -> Self {
        Measurement {
            warmup_iterations: 2,
            warmup_seconds: 0.5,
            min_seconds: 1.0,
            min_batches: 64,
            max_seconds: Some(60.0),
            repetitions: 1,
            cooldown_seconds: 0.0,
            cpus: None,
            power: PowerConfig::default(),
            counters: true,
            cv_warn: 0.10,
            allow_oversubscribe: false,
            profile: false,
        }
    }
}

/// A rule dropping points: a point is dropped when it matches every key given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exclude {
    pub model: Option<Vec<String>>,
    pub engine: Option<Vec<Engine>>,
    pub threads: Option<Vec<usize>>,
    pub batch: Option<Vec<usize>>,
    pub cache: Option<Vec<CacheSpec>>,
    pub parallel: Option<Vec<ParallelLoop>>,
    pub conv: Option<Vec<ConvChoice>>,
    pub fusion: Option<Vec<bool>>,
    pub power_mode: Option<Vec<String>>,
}

impl Exclude {
    /// The first key whose values the experiment never takes.
    fn never_matches(&self, e: &Experiment) -> Option<&'static str> {
        fn none<T: PartialEq>(rule: &Option<Vec<T>>, have: &[T]) -> bool {
            rule.as_ref()
                .is_some_and(|r| !r.iter().any(|v| have.contains(v)))
        }
        [
            ("model", none(&self.model, &e.models)),
            ("engine", none(&self.engine, &e.engines)),
            ("threads", none(&self.threads, &e.threads)),
            ("batch", none(&self.batch, &e.batch)),
            ("cache", none(&self.cache, &e.cache)),
            ("loop", none(&self.parallel, &e.parallel)),
            ("conv", none(&self.conv, &e.conv)),
            ("fusion", none(&self.fusion, &e.fusion)),
            ("power_mode", none(&self.power_mode, &e.power_mode)),
        ]
        .into_iter()
        .find_map(|(k, never)| never.then_some(k))
    }

    fn matches(&self, p: &Point) -> bool {
        fn m<T: PartialEq>(rule: &Option<Vec<T>>, v: &T) -> bool {
            rule.as_ref().is_none_or(|r| r.contains(v))
        }
        m(&self.model, &p.model)
            && m(&self.engine, &p.engine)
            && m(&self.threads, &p.threads)
            && m(&self.batch, &p.batch)
            && m(&self.cache, &p.cache)
            && m(&self.parallel, &p.parallel)
            && m(&self.conv, &p.conv)
            && m(&self.fusion, &p.fusion)
            && m(&self.power_mode, &p.power_mode)
    }
}

/// One experiment after defaults were applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    pub name: String,
    pub models: Vec<String>,
    /// Engines measured (default joulebench only).
    pub engines: Vec<Engine>,
    /// Where the peer engines' programs and model files are.
    pub peers: PeerConfig,
    pub threads: Vec<usize>,
    pub batch: Vec<usize>,
    pub cache: Vec<CacheSpec>,
    pub parallel: Vec<ParallelLoop>,
    pub conv: Vec<ConvChoice>,
    pub fusion: Vec<bool>,
    /// Names of `[power_modes]` entries, or `none`.
    pub power_mode: Vec<String>,
    pub exclude: Vec<Exclude>,
    pub measurement: Measurement,
    /// Per-layer algorithms for joulebench points (`tuning`).
    pub tuning: TuningChoice,
}

/// A validated suite.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    pub path: PathBuf,
    /// The file's text, as recorded in the manifest.
    pub text: String,
    /// sha256 of `text`, hex.
    pub hash: String,
    pub experiments: Vec<Experiment>,
    /// The `[power_modes]` table.
    pub modes: ModeSettings,
}

/// One measured configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Position in the full expansion (before sharding).
    pub index: usize,
    /// Stable id: experiment, model and every swept value.
    pub id: String,
    pub experiment: String,
    /// Index into [`Suite::experiments`].
    #[serde(skip)]
    pub experiment_index: usize,
    pub model: String,
    pub engine: Engine,
    pub threads: usize,
    pub batch: usize,
    pub cache: CacheSpec,
    pub parallel: ParallelLoop,
    pub conv: ConvChoice,
    pub fusion: bool,
    /// `none`, or a `[power_modes]` name.
    pub power_mode: String,
    pub repetition: usize,
}

impl Suite {
    /// Reads and validates a suite file.
    pub fn load(path: &Path) -> Result<Suite, HarnessError> {
        let text = std::fs::read_to_string(path).map_err(|e| HarnessError::Usage {
            name: "suite",
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        Suite::parse(&text, path)
    }

    /// Validates suite `text` read from `path` (used for messages and to
    /// resolve model files).
    pub fn parse(text: &str, path: &Path) -> Result<Suite, HarnessError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Suite::parse_with_cores(text, path, cores)
    }

    /// [`Suite::parse`] with the core count given (for tests).
    pub fn parse_with_cores(text: &str, path: &Path, cores: usize) -> Result<Suite, HarnessError> {
        let mut cx = Cx {
            src: text,
            problems: Vec::new(),
            modes: ModeSettings::default(),
            cores,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let (doc, errors) = DeTable::parse_recoverable(text);
        if !errors.is_empty() {
            for e in errors {
                let at = e.span().map_or(0, |s| s.start);
                cx.problem(at..at, format!("TOML syntax: {}", e.message().trim()));
            }
            return Err(cx.into_error(path));
        }
        let suite = cx.suite(doc.get_ref());
        if !cx.problems.is_empty() {
            return Err(cx.into_error(path));
        }
        let (name, experiments) = suite.expect("no problems means a suite");
        let modes = std::mem::take(&mut cx.modes);
        let hash = hex(&Sha256::digest(text.as_bytes()));
        Ok(Suite {
            name,
            path: path.to_path_buf(),
            text: text.to_string(),
            hash,
            experiments,
            modes,
        })
    }

    /// What to load for `model` as named in the suite: the ONNX file resolved
    /// against the suite's directory, or the built-in name.
    pub fn model_spec(&self, model: &str) -> String {
        if model_source::is_onnx(model) {
            let dir = self.path.parent().unwrap_or(Path::new(""));
            dir.join(model).display().to_string()
        } else {
            model.to_string()
        }
    }

    /// The sweep: for each experiment in file order, the cartesian product of
    /// models × engine × (joulebench only: cache × conv × fusion × loop) ×
    /// threads × batch × repetition,
    /// minus excluded points. Order and ids are deterministic.
    pub fn points(&self) -> Vec<Point> {
        let mut out = Vec::new();
        for (ei, e) in self.experiments.iter().enumerate() {
            e.expand(ei, &mut out);
        }
        out
    }
}

impl Experiment {
    /// This experiment's points (see [`Suite::points`]), appended to `out`.
    fn expand(&self, ei: usize, out: &mut Vec<Point>) {
        let e = self;
        for model in &e.models {
            for &engine in &e.engines {
                // joulebench's own knobs sweep joulebench only; a peer
                // engine gets one point per threads x batch x power mode.
                let knobs: Vec<(CacheSpec, ConvChoice, bool, ParallelLoop)> =
                    if engine.is_joulebench() {
                        let mut v = Vec::new();
                        for &cache in &e.cache {
                            for &conv in &e.conv {
                                for &fusion in &e.fusion {
                                    for &parallel in &e.parallel {
                                        v.push((cache, conv, fusion, parallel));
                                    }
                                }
                            }
                        }
                        v
                    } else {
                        vec![(CacheSpec::Auto, ConvChoice::Auto, true, ParallelLoop::Auto)]
                    };
                for (cache, conv, fusion, parallel) in knobs {
                    for &threads in &e.threads {
                        for &batch in &e.batch {
                            for mode in &e.power_mode {
                                for rep in 0..e.measurement.repetitions {
                                    let mut p = Point {
                                        index: 0,
                                        id: String::new(),
                                        experiment: e.name.clone(),
                                        experiment_index: ei,
                                        model: model.clone(),
                                        engine,
                                        threads,
                                        batch,
                                        cache,
                                        parallel,
                                        conv,
                                        fusion,
                                        power_mode: mode.clone(),
                                        repetition: rep,
                                    };
                                    if e.exclude.iter().any(|x| x.matches(&p)) {
                                        continue;
                                    }
                                    p.index = out.len();
                                    p.id = point_id(&p);
                                    out.push(p);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn point_id(p: &Point) -> String {
    // Without a power mode the id is the one of earlier versions (resume).
    let mode = if p.power_mode == NONE {
        String::new()
    } else {
        format!("-m{}", p.power_mode)
    };
    if !p.engine.is_joulebench() {
        return format!(
            "{}/{}/{}-t{}-b{}{mode}-r{}",
            p.experiment, p.model, p.engine, p.threads, p.batch, p.repetition
        );
    }
    format!(
        "{}/{}/t{}-b{}-{}-{}-{}-{}{mode}-r{}",
        p.experiment,
        p.model,
        p.threads,
        p.batch,
        p.cache.label(),
        p.parallel,
        p.conv,
        if p.fusion { "fused" } else { "unfused" },
        p.repetition
    )
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Line and column (1-based, in characters) of byte offset `at` in `src`.
pub fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

type V<'i> = Spanned<DeValue<'i>>;

/// Values every table may set, with the place each came from.
#[derive(Default)]
struct Partial {
    engine: Option<Vec<Engine>>,
    peers: PeerConfig,
    threads: Option<Vec<(usize, Range<usize>)>>,
    batch: Option<Vec<usize>>,
    cache: Option<Vec<CacheSpec>>,
    parallel: Option<Vec<ParallelLoop>>,
    conv: Option<Vec<ConvChoice>>,
    fusion: Option<Vec<bool>>,
    power_mode: Option<Vec<String>>,
    warmup_iterations: Option<usize>,
    warmup_seconds: Option<f64>,
    min_seconds: Option<f64>,
    min_batches: Option<usize>,
    max_seconds: Option<Option<f64>>,
    repetitions: Option<usize>,
    cooldown_seconds: Option<f64>,
    cpus: Option<Vec<(usize, Range<usize>)>>,
    power: Option<PowerConfig>,
    counters: Option<bool>,
    cv_warn: Option<f64>,
    allow_oversubscribe: Option<bool>,
    profile: Option<bool>,
    tuning: Option<(TuningChoice, Range<usize>)>,
    /// Where `max_seconds` / `min_seconds` were set, for cross-checks.
    max_span: Option<Range<usize>>,
}

/// Largest batch a suite may ask for (the engine allocates activations for
/// the whole batch up front).
pub const MAX_BATCH: usize = 4096;

/// Most threads a suite may ask for, even oversubscribed.
pub const MAX_THREADS: usize = 1024;

const SWEEP_KEYS: &[&str] = &[
    "engine",
    "threads",
    "batch",
    "cache",
    "loop",
    "conv",
    "fusion",
    "power_mode",
];

/// Settings of `[power_modes]`; every other key there defines a mode.
const MODE_SETTING_KEYS: &[&str] = &[
    "settle_seconds",
    "nvpmodel_command",
    "jetson_clocks_command",
    "vcgencmd_command",
];
const MODE_KEYS: &[&str] = &[
    "governor",
    "min_freq_khz",
    "max_freq_khz",
    "policies",
    "nvpmodel",
    "jetson_clocks",
];
/// Where the peer engines' programs and model files are.
const PEER_KEYS: &[&str] = &[
    "python",
    "benchmark_model",
    "execute_network",
    "tflite_model",
    "armnn_model",
    "ncnn_model",
    "peer_input",
    "armnn_backend",
    "peer_timeout_seconds",
];
const MEASURE_KEYS: &[&str] = &[
    "warmup_iterations",
    "warmup_seconds",
    "min_seconds",
    "min_batches",
    "max_seconds",
    "repetitions",
    "cooldown_seconds",
    "cpus",
    "power",
    "counters",
    "cv_warn",
    "allow_oversubscribe",
    "profile",
    "tuning",
];

struct Cx<'s> {
    src: &'s str,
    problems: Vec<(usize, Problem)>,
    modes: ModeSettings,
    cores: usize,
    dir: PathBuf,
}

impl Cx<'_> {
    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.src, span.start);
        self.problems.push((
            span.start,
            Problem {
                line,
                column,
                message: message.into(),
            },
        ));
    }

    fn into_error(mut self, path: &Path) -> HarnessError {
        self.problems.sort_by_key(|(at, _)| *at);
        HarnessError::Suite(SuiteProblems {
            file: path.to_path_buf(),
            problems: self.problems.into_iter().map(|(_, p)| p).collect(),
        })
    }

    fn suite(&mut self, doc: &DeTable<'_>) -> Option<(String, Vec<Experiment>)> {
        let mut name = None;
        let mut defaults = Partial::default();
        let mut experiments = Vec::new();
        let mut saw_experiment = false;
        if let Some(v) = doc.get("power_modes") {
            self.power_modes(v);
        }
        for (k, v) in doc.iter() {
            match k.get_ref().as_ref() {
                "name" => name = self.name(v, "suite name"),
                "power_modes" => {}
                "defaults" => {
                    if let Some(t) = self.table(v, "defaults") {
                        defaults = self.partial(t, &[]);
                    }
                }
                "experiment" => {
                    saw_experiment = true;
                    match v.get_ref() {
                        DeValue::Array(a) => experiments.extend(a.iter()),
                        _ => self.problem(
                            v.span(),
                            "`experiment` must be an array of tables: write each as [[experiment]]",
                        ),
                    }
                }
                other => self.problem(
                    k.span(),
                    format!("unknown key `{other}` at the top level; expected name, defaults, [power_modes] or [[experiment]]"),
                ),
            }
        }
        if name.is_none() && !doc.contains_key("name") {
            self.problem(
                0..0,
                "missing `name = \"...\"` (the suite's name, used for the results directory)",
            );
        }
        if !saw_experiment {
            self.problem(
                0..0,
                "no [[experiment]] tables: add at least one with `models = [\"tiny\"]`",
            );
        }
        let mut out = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (i, v) in experiments.into_iter().enumerate() {
            if let Some(e) = self.experiment(v, i, &defaults) {
                if names.contains(&e.name) {
                    self.problem(
                        v.span(),
                        format!(
                            "experiment name `{}` is used twice; names must be unique",
                            e.name
                        ),
                    );
                }
                names.push(e.name.clone());
                out.push(e);
            }
        }
        Some((name?, out))
    }

    fn experiment(&mut self, v: &V<'_>, index: usize, defaults: &Partial) -> Option<Experiment> {
        let t = self.table(v, "[[experiment]]")?;
        let mut name = format!("exp{}", index + 1);
        let mut models: Option<Vec<String>> = None;
        let mut excludes = Vec::new();
        if let Some(nv) = t.get("name") {
            if let Some(n) = self.name(nv, "experiment name") {
                name = n;
            }
        }
        // Only joulebench needs to import the ONNX files (peers read them themselves).
        let joulebench_runs = t
            .get("engine")
            .map(|v| v.get_ref())
            .map(|v| match v {
                DeValue::String(s) => s.as_ref() == "joulebench",
                DeValue::Array(a) => a.iter().any(
                    |x| matches!(x.get_ref(), DeValue::String(s) if s.as_ref() == "joulebench"),
                ),
                _ => true,
            })
            .or(defaults
                .engine
                .as_ref()
                .map(|e| e.contains(&Engine::Joulebench)))
            .unwrap_or(true);
        match t.get("models") {
            Some(mv) => models = self.models(mv, joulebench_runs),
            None => self.problem(
                v.span(),
                format!("experiment `{name}` has no `models`; add for example models = [\"tiny\"]"),
            ),
        }
        if let Some(xv) = t.get("exclude") {
            match xv.get_ref() {
                DeValue::Array(a) => {
                    for rule in a.iter() {
                        if let Some(r) = self.exclude(rule) {
                            excludes.push((r, rule.span()));
                        }
                    }
                }
                _ => self.problem(
                    xv.span(),
                    "`exclude` must be a list of tables, e.g. exclude = [{ threads = 2, batch = 1 }]",
                ),
            }
        }
        let p = self.partial(t, &["name", "models", "exclude"]);
        let engines = pick(&p.engine, &defaults.engine).unwrap_or_else(|| vec![Engine::Joulebench]);
        let peers = merge_peers(&p.peers, &defaults.peers);
        let d = Measurement::default();
        let allow_over = p
            .allow_oversubscribe
            .or(defaults.allow_oversubscribe)
            .unwrap_or(d.allow_oversubscribe);
        let threads = pick(&p.threads, &defaults.threads).unwrap_or_else(|| vec![(1, 0..0)]);
        for (n, span) in &threads {
            if *n > MAX_THREADS {
                self.problem(
                    span.clone(),
                    format!("threads = {n} is above {MAX_THREADS}, even with allow_oversubscribe"),
                );
            }
        }
        if !allow_over {
            for (n, span) in &threads {
                if *n > self.cores {
                    self.problem(
                        span.clone(),
                        format!(
                            "threads = {n} is more than the {} cores available; lower it or set allow_oversubscribe = true",
                            self.cores
                        ),
                    );
                }
            }
        }
        let cpus = pick(&p.cpus, &defaults.cpus);
        if let Some(cpus) = &cpus {
            for (c, span) in cpus {
                if *c >= self.cores {
                    self.problem(
                        span.clone(),
                        format!(
                            "cpu {c} does not exist: this machine has cpus 0..{}",
                            self.cores.saturating_sub(1)
                        ),
                    );
                }
            }
        }
        if let Some(cpus) = &cpus {
            let most = threads.iter().map(|(n, _)| *n).max().unwrap_or(1);
            if most > cpus.len() && !allow_over {
                self.problem(
                    cpus.first().map_or(v.span(), |(_, s)| s.clone()),
                    format!(
                        "threads = {most} on {} pinned cpu(s) would oversubscribe them; list more cpus or set allow_oversubscribe = true",
                        cpus.len()
                    ),
                );
            }
        }
        let min_seconds = p
            .min_seconds
            .or(defaults.min_seconds)
            .unwrap_or(d.min_seconds);
        let max_seconds = p
            .max_seconds
            .or(defaults.max_seconds)
            .unwrap_or(d.max_seconds);
        if let Some(max) = max_seconds {
            if max < min_seconds {
                let span = p
                    .max_span
                    .clone()
                    .or(defaults.max_span.clone())
                    .unwrap_or(v.span());
                self.problem(
                    span,
                    format!("max_seconds = {max} is below min_seconds = {min_seconds}; raise it or remove it"),
                );
            }
        }
        let measurement = Measurement {
            warmup_iterations: p
                .warmup_iterations
                .or(defaults.warmup_iterations)
                .unwrap_or(d.warmup_iterations),
            warmup_seconds: p
                .warmup_seconds
                .or(defaults.warmup_seconds)
                .unwrap_or(d.warmup_seconds),
            min_seconds,
            min_batches: p
                .min_batches
                .or(defaults.min_batches)
                .unwrap_or(d.min_batches),
            max_seconds,
            repetitions: p
                .repetitions
                .or(defaults.repetitions)
                .unwrap_or(d.repetitions),
            cooldown_seconds: p
                .cooldown_seconds
                .or(defaults.cooldown_seconds)
                .unwrap_or(d.cooldown_seconds),
            cpus: cpus.map(|c| c.into_iter().map(|(c, _)| c).collect()),
            power: pick(&p.power, &defaults.power).unwrap_or(d.power),
            counters: p.counters.or(defaults.counters).unwrap_or(d.counters),
            cv_warn: p.cv_warn.or(defaults.cv_warn).unwrap_or(d.cv_warn),
            allow_oversubscribe: allow_over,
            profile: p.profile.or(defaults.profile).unwrap_or(d.profile),
        };
        let mut e = Experiment {
            name,
            models: models?,
            engines,
            peers,
            threads: threads.into_iter().map(|(n, _)| n).collect(),
            batch: pick(&p.batch, &defaults.batch).unwrap_or_else(|| vec![1]),
            cache: pick(&p.cache, &defaults.cache).unwrap_or_else(|| vec![CacheSpec::Auto]),
            parallel: pick(&p.parallel, &defaults.parallel)
                .unwrap_or_else(|| vec![ParallelLoop::Auto]),
            conv: pick(&p.conv, &defaults.conv).unwrap_or_else(|| vec![ConvChoice::Auto]),
            fusion: pick(&p.fusion, &defaults.fusion).unwrap_or_else(|| vec![true]),
            power_mode: pick(&p.power_mode, &defaults.power_mode)
                .unwrap_or_else(|| vec![NONE.to_string()]),
            exclude: Vec::new(),
            measurement,
            tuning: TuningChoice::None,
        };
        let tuning = pick(&p.tuning, &defaults.tuning);
        if let Some((t, _)) = &tuning {
            e.tuning = t.clone();
        }
        for (rule, span) in excludes {
            if let Some(key) = rule.never_matches(&e) {
                self.problem(
                    span,
                    format!(
                        "this exclude rule's `{key}` matches none of the experiment's values, so it drops nothing (a typo?)"
                    ),
                );
            }
            e.exclude.push(rule);
        }
        if let Some((t @ TuningChoice::Files { .. }, span)) = &tuning {
            // Every joulebench point needs its file before anything runs.
            let mut pts = Vec::new();
            e.expand(0, &mut pts);
            let mut missing: Vec<(&str, usize, usize)> = pts
                .iter()
                .filter(|p| p.engine.is_joulebench())
                .filter(|p| t.find(&p.model, p.threads, p.batch).is_none())
                .map(|p| (p.model.as_str(), p.threads, p.batch))
                .collect();
            missing.sort();
            missing.dedup();
            for (m, th, b) in missing {
                self.problem(
                    span.clone(),
                    format!(
                        "tuning = \"{}\" has no file for model {m}, {th} thread(s), batch {b}; run `joulebench tune --model {m} --threads {th} --batch {b}` into it, or use tuning = \"auto\"",
                        t.label()
                    ),
                );
            }
        }
        Some(e)
    }

    /// Sweep and measurement keys of a table; `extra` keys are handled by the caller.
    fn partial(&mut self, t: &DeTable<'_>, extra: &[&str]) -> Partial {
        let mut p = Partial::default();
        for (k, v) in t.iter() {
            let key: &str = k.get_ref().as_ref();
            match key {
                "engine" => {
                    p.engine = self
                        .list(v, key, |cx, x| {
                            let s = cx.string(x, key)?;
                            match s.parse::<Engine>() {
                                Ok(e) => Some((e, x.span())),
                                Err(msg) => {
                                    cx.problem(x.span(), msg);
                                    None
                                }
                            }
                        })
                        .map(strip)
                }
                "python" | "benchmark_model" | "execute_network" | "peer_input"
                | "armnn_backend" => match self.string(v, key) {
                    Some(s) if !s.trim().is_empty() => {
                        let slot = match key {
                            "python" => &mut p.peers.python,
                            "benchmark_model" => &mut p.peers.benchmark_model,
                            "execute_network" => &mut p.peers.execute_network,
                            "peer_input" => &mut p.peers.peer_input,
                            _ => &mut p.peers.armnn_backend,
                        };
                        *slot = Some(s);
                    }
                    Some(_) => self.problem(v.span(), format!("`{key}` is empty")),
                    None => {}
                },
                "peer_timeout_seconds" => {
                    p.peers.peer_timeout_seconds = self.seconds(v, key);
                    if let Some(t) = p.peers.peer_timeout_seconds {
                        if !(1.0..=604_800.0).contains(&t) {
                            self.problem(
                                v.span(),
                                format!("`{key}` = {t} must be between 1 and 604800 (a week)"),
                            );
                        }
                    }
                }
                "tflite_model" | "armnn_model" | "ncnn_model" => {
                    if let Some(s) = self.string(v, key) {
                        let file = self.dir.join(&s);
                        if s.is_empty() || !file.is_file() {
                            self.problem(
                                v.span(),
                                format!(
                                    "`{key}` file `{}` does not exist (paths are relative to the suite file)",
                                    file.display()
                                ),
                            );
                        } else {
                            *match key {
                                "tflite_model" => &mut p.peers.tflite_model,
                                "ncnn_model" => &mut p.peers.ncnn_model,
                                _ => &mut p.peers.armnn_model,
                            } = Some(file);
                        }
                    }
                }
                "threads" => p.threads = self.list(v, key, |cx, x| cx.count(x, key)),
                "batch" => {
                    p.batch = self
                        .list(v, key, |cx, x| {
                            let (n, span) = cx.count(x, key)?;
                            if n > MAX_BATCH {
                                cx.problem(
                                    span,
                                    format!("batch = {n} is above {MAX_BATCH}; the activations would not fit in memory"),
                                );
                                return None;
                            }
                            Some((n, span))
                        })
                        .map(strip)
                }
                "cache" => {
                    p.cache = self
                        .list(v, key, |cx, x| cx.cache(x).map(|c| (c, x.span())))
                        .map(strip)
                }
                "loop" => {
                    p.parallel = self
                        .list(v, key, |cx, x| {
                            cx.parse_str::<ParallelLoop>(x, key, "auto, jc, ic or jr")
                        })
                        .map(strip)
                }
                "conv" => {
                    p.conv = self
                        .list(v, key, |cx, x| {
                            cx.parse_str::<ConvChoice>(x, key, ConvChoice::CHOICES)
                        })
                        .map(strip)
                }
                "fusion" => {
                    p.fusion = self
                        .list(v, key, |cx, x| cx.boolean(x, key).map(|b| (b, x.span())))
                        .map(strip)
                }
                "power_mode" => {
                    p.power_mode = self
                        .list(v, key, |cx, x| {
                            let name = cx.string(x, key)?;
                            if name != NONE && cx.modes.get(&name).is_none() {
                                let mut known: Vec<String> =
                                    cx.modes.modes.iter().map(|m| m.name.clone()).collect();
                                known.push(NONE.into());
                                cx.problem(
                                    x.span(),
                                    format!(
                                        "power_mode `{name}` is not defined; define it in [power_modes] (for example {name} = {{ governor = \"performance\" }}) or use one of: {}",
                                        known.join(", ")
                                    ),
                                );
                                return None;
                            }
                            Some((name, x.span()))
                        })
                        .map(strip)
                }
                "warmup_iterations" => p.warmup_iterations = self.uint(v, key),
                "warmup_seconds" => p.warmup_seconds = self.seconds(v, key),
                "min_seconds" => p.min_seconds = self.seconds(v, key),
                "min_batches" => p.min_batches = self.count(v, key).map(|(n, _)| n),
                "max_seconds" => {
                    p.max_span = Some(v.span());
                    p.max_seconds = match v.get_ref() {
                        DeValue::Boolean(false) => Some(None),
                        _ => self.seconds(v, key).map(Some),
                    }
                }
                "repetitions" => p.repetitions = self.count(v, key).map(|(n, _)| n),
                "cooldown_seconds" => p.cooldown_seconds = self.seconds(v, key),
                "cpus" => {
                    p.cpus = self.list(v, key, |cx, x| cx.uint(x, key).map(|n| (n, x.span())))
                }
                "power" => p.power = self.power(v),
                "counters" => p.counters = self.boolean(v, key),
                "cv_warn" => p.cv_warn = self.seconds(v, key),
                "allow_oversubscribe" => p.allow_oversubscribe = self.boolean(v, key),
                "profile" => p.profile = self.boolean(v, key),
                "tuning" => {
                    p.tuning = self.string(v, key).and_then(|s| {
                        match TuningChoice::parse(&s, &self.dir.clone()) {
                            Ok(t) => Some((t, v.span())),
                            Err(msg) => {
                                self.problem(v.span(), msg);
                                None
                            }
                        }
                    })
                }
                _ if extra.contains(&key) => {}
                _ => {
                    let mut known: Vec<&str> = SWEEP_KEYS.to_vec();
                    known.extend_from_slice(MEASURE_KEYS);
                    known.extend_from_slice(PEER_KEYS);
                    known.extend_from_slice(extra);
                    self.problem(
                        k.span(),
                        format!("unknown key `{key}`; known keys here: {}", known.join(", ")),
                    )
                }
            }
        }
        p
    }

    /// `[power_modes]`: settings, and one table per named mode.
    fn power_modes(&mut self, v: &V<'_>) {
        let Some(t) = self.table(v, "[power_modes]") else {
            return;
        };
        for (k, val) in t.iter() {
            let key: &str = k.get_ref().as_ref();
            match key {
                "settle_seconds" => {
                    if let Some(x) = self.seconds(val, key) {
                        self.modes.settle_seconds = x;
                    }
                }
                "nvpmodel_command" | "jetson_clocks_command" | "vcgencmd_command" => {
                    match self.string(val, key) {
                        Some(s) if !s.trim().is_empty() => {
                            let p = PathBuf::from(&s);
                            // A relative path with a directory is the suite's.
                            let s = if !p.is_absolute() && s.contains('/') {
                                self.dir.join(p).display().to_string()
                            } else {
                                s
                            };
                            match key {
                                "nvpmodel_command" => self.modes.nvpmodel_command = s,
                                "jetson_clocks_command" => self.modes.jetson_clocks_command = s,
                                _ => self.modes.vcgencmd_command = s,
                            }
                        }
                        Some(_) => self.problem(
                            val.span(),
                            format!("`{key}` is empty; give the command's path"),
                        ),
                        None => {}
                    }
                }
                _ => {
                    if key == NONE {
                        self.problem(k.span(), "`none` is the built-in mode that changes nothing; give this mode another name");
                        continue;
                    }
                    if self
                        .name(
                            &Spanned::new(k.span(), DeValue::String(key.into())),
                            "power_mode name",
                        )
                        .is_none()
                    {
                        continue;
                    }
                    if let Some(m) = self.mode_def(key, val) {
                        self.modes.modes.push(m);
                    }
                }
            }
        }
    }

    /// One mode: `{ governor, min_freq_khz, max_freq_khz, policies }` and/or
    /// `{ nvpmodel = N, jetson_clocks = true }`.
    fn mode_def(&mut self, name: &str, v: &V<'_>) -> Option<ModeDef> {
        let DeValue::Table(t) = v.get_ref() else {
            self.problem(
                v.span(),
                format!(
                    "power mode `{name}` must be a table such as {{ governor = \"performance\" }} or {{ nvpmodel = 0 }}; settings here are {}",
                    MODE_SETTING_KEYS.join(", ")
                ),
            );
            return None;
        };
        let mut m = ModeDef {
            name: name.to_string(),
            ..ModeDef::default()
        };
        let mut c = CpufreqMode::default();
        let mut any_cpufreq = false;
        let mut ok = true;
        for (k, val) in t.iter() {
            let key: &str = k.get_ref().as_ref();
            match key {
                "governor" => match self.string(val, key) {
                    Some(g)
                        if !g.is_empty()
                            && g.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                    {
                        c.setting.governor = Some(g);
                        any_cpufreq = true;
                    }
                    Some(g) => {
                        self.problem(val.span(), format!("governor {g:?} is not a governor name (performance, powersave, userspace, ondemand, schedutil, ...)"));
                        ok = false;
                    }
                    None => ok = false,
                },
                "min_freq_khz" | "max_freq_khz" => match self.count(val, key) {
                    Some((n, _)) => {
                        if key == "min_freq_khz" {
                            c.setting.min_khz = Some(n as u64);
                        } else {
                            c.setting.max_khz = Some(n as u64);
                        }
                        any_cpufreq = true;
                    }
                    None => ok = false,
                },
                "policies" => {
                    match self.list(val, key, |cx, x| cx.uint(x, key).map(|n| (n, x.span()))) {
                        Some(l) => c.policies = Some(strip(l)),
                        None => ok = false,
                    }
                }
                "nvpmodel" => match self.uint(val, key) {
                    Some(n) => m.nvpmodel = Some(n as u32),
                    None => ok = false,
                },
                "jetson_clocks" => match self.boolean(val, key) {
                    Some(b) => m.jetson_clocks = b,
                    None => ok = false,
                },
                _ => {
                    self.problem(
                        k.span(),
                        format!(
                            "unknown key `{key}` in power mode `{name}`; known: {}",
                            MODE_KEYS.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        if let (Some(lo), Some(hi)) = (c.setting.min_khz, c.setting.max_khz) {
            if lo > hi {
                self.problem(
                    v.span(),
                    format!(
                        "power mode `{name}`: min_freq_khz = {lo} is above max_freq_khz = {hi}"
                    ),
                );
                ok = false;
            }
        }
        if c.policies.is_some() && !any_cpufreq {
            self.problem(
                v.span(),
                format!("power mode `{name}` lists `policies` but sets no governor, min_freq_khz or max_freq_khz"),
            );
            ok = false;
        }
        if ok && !any_cpufreq && m.nvpmodel.is_none() && !m.jetson_clocks {
            self.problem(
                v.span(),
                format!("power mode `{name}` changes nothing; set governor, min_freq_khz, max_freq_khz, nvpmodel or jetson_clocks (or use the built-in `none`)"),
            );
            ok = false;
        }
        if any_cpufreq {
            m.cpufreq = Some(c);
        }
        ok.then_some(m)
    }

    /// `power = "rapl"` or a table `{ source = "...", settings... }`.
    fn power(&mut self, v: &V<'_>) -> Option<PowerConfig> {
        let kinds = SourceKind::ALL.map(|k| k.name()).join(", ");
        let kind_of = |cx: &mut Self, v: &V<'_>| -> Option<SourceKind> {
            let s = cx.string(v, "power")?;
            match s.parse::<SourceKind>() {
                Ok(k) => Some(k),
                Err(e) => {
                    cx.problem(v.span(), e);
                    None
                }
            }
        };
        let t = match v.get_ref() {
            DeValue::String(_) => return kind_of(self, v).map(PowerConfig::named),
            DeValue::Table(t) => t,
            other => {
                self.problem(
                    v.span(),
                    format!(
                        "`power` must be a source name ({kinds}) or a table {{ source = \"...\", ... }}, found {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        let Some(sv) = t.get("source") else {
            self.problem(
                v.span(),
                format!("the power table has no `source`; add source = \"...\" ({kinds})"),
            );
            return None;
        };
        let kind = kind_of(self, sv)?;
        let mut c = PowerConfig::named(kind);
        let mut ok = true;
        if let Some(pv) = t.get("preset") {
            if let Some(name) = self.string(pv, "preset") {
                match MeterFormat::preset(&name) {
                    Some(m) => c.meter = m,
                    None => {
                        self.problem(
                            pv.span(),
                            format!(
                                "meter preset `{name}` is not known; use {}",
                                PRESETS.join(", ")
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
        for (k, val) in t.iter() {
            let key: &str = k.get_ref().as_ref();
            if !COMMON_KEYS.contains(&key) && !kind.keys().contains(&key) {
                let owner = SourceKind::ALL
                    .into_iter()
                    .find(|o| o.keys().contains(&key));
                let mut known: Vec<&str> = COMMON_KEYS.to_vec();
                known.extend_from_slice(kind.keys());
                self.problem(
                    k.span(),
                    match owner {
                        Some(o) => format!("`{key}` applies to source = \"{o}\", not \"{kind}\""),
                        None => format!(
                            "unknown power setting `{key}`; for source = \"{kind}\" use {}",
                            known.join(", ")
                        ),
                    },
                );
                ok = false;
                continue;
            }
            let good = match key {
                "source" | "preset" => true,
                "rate_hz" => match self.seconds(val, key) {
                    Some(r) if r <= 10_000.0 => {
                        c.rate_hz = Some(r);
                        true
                    }
                    Some(r) => {
                        self.problem(
                            val.span(),
                            format!(
                                "rate_hz = {r} is above 10000; sensors do not update that fast"
                            ),
                        );
                        false
                    }
                    None => false,
                },
                "idle_seconds" => match self.seconds(val, key) {
                    Some(x) if x <= 3600.0 => {
                        c.idle_seconds = x;
                        true
                    }
                    Some(x) => {
                        self.problem(
                            val.span(),
                            format!("idle_seconds = {x} is above an hour; a few seconds suffice"),
                        );
                        false
                    }
                    None => false,
                },
                "min_samples" => self
                    .count(val, key)
                    .map(|(n, _)| c.min_samples = n)
                    .is_some(),
                "zones" | "rails" | "input_rails" => {
                    let list = self
                        .list(val, key, |cx, e| cx.string(e, key).map(|s| (s, e.span())))
                        .map(strip);
                    match (key, list) {
                        ("zones", Some(l)) => c.zones = l,
                        ("rails", Some(l)) => c.rails = l,
                        (_, Some(l)) => c.input_rails = l,
                        (_, None) => ok = false,
                    }
                    true
                }
                "device" => self.string(val, key).map(|s| c.device = Some(s)).is_some(),
                "command" => match self.string(val, key) {
                    Some(s) if !s.trim().is_empty() => {
                        c.command = s;
                        true
                    }
                    Some(_) => {
                        self.problem(val.span(), "`command` is empty; give the path of vcgencmd");
                        false
                    }
                    None => false,
                },
                "log" => match self.string(val, key) {
                    Some(s) if !s.is_empty() => {
                        let p = PathBuf::from(&s);
                        c.log = Some(if p.is_absolute() { p } else { self.dir.join(p) });
                        true
                    }
                    Some(_) => {
                        self.problem(val.span(), "`log` is empty; give the meter log's path, or leave `log` out to attach it afterwards");
                        false
                    }
                    None => false,
                },
                "delimiter" => {
                    match self.string(val, key) {
                        Some(s) if s.chars().count() == 1 && s.is_ascii() => {
                            c.meter.delimiter = s.chars().next().unwrap_or(',');
                            true
                        }
                        Some(s) => {
                            self.problem(val.span(), format!("delimiter {s:?} must be one ASCII character (\"\\t\" for tabs)"));
                            false
                        }
                        None => false,
                    }
                }
                "header" => self.boolean(val, key).map(|b| c.meter.header = b).is_some(),
                "time_column" | "watts_column" | "volts_column" | "amps_column" => {
                    let col = match val.get_ref() {
                        DeValue::String(s) => Some(Column::Name(s.to_string())),
                        DeValue::Integer(_) => self.uint(val, key).map(Column::Index),
                        other => {
                            self.problem(
                                val.span(),
                                format!("`{key}` must be a column name or a 0-based column number, found {}", other.type_str()),
                            );
                            None
                        }
                    };
                    match (key, col) {
                        ("time_column", Some(x)) => c.meter.time_column = x,
                        ("watts_column", Some(x)) => c.meter.watts_column = Some(x),
                        ("volts_column", Some(x)) => {
                            c.meter.volts_column = Some(x);
                            if t.get("watts_column").is_none() {
                                c.meter.watts_column = None;
                            }
                        }
                        ("amps_column", Some(x)) => {
                            c.meter.amps_column = Some(x);
                            if t.get("watts_column").is_none() {
                                c.meter.watts_column = None;
                            }
                        }
                        _ => ok = false,
                    }
                    true
                }
                "time_format" => match self.string(val, key).map(|s| (TimeFormat::parse(&s), s)) {
                    Some((Some(f), _)) => {
                        c.meter.time_format = f;
                        true
                    }
                    Some((None, s)) => {
                        self.problem(
                            val.span(),
                            format!("time_format `{s}` is not known; use unix, unix_ms, iso, elapsed, elapsed_ms or a strftime pattern such as \"%Y-%m-%d %H:%M:%S%.f\""),
                        );
                        false
                    }
                    None => false,
                },
                "amps_scale" => match self.seconds(val, key) {
                    Some(x) if x > 0.0 => {
                        c.meter.amps_scale = x;
                        true
                    }
                    Some(_) => {
                        self.problem(
                            val.span(),
                            "amps_scale must be above 0 (0.001 for a column in mA)",
                        );
                        false
                    }
                    None => false,
                },
                "clock_offset_s" => self
                    .signed(val, key)
                    .map(|x| c.meter.clock_offset_s = x)
                    .is_some(),
                "follow_timeout_s" => self
                    .seconds(val, key)
                    .map(|x| c.follow_timeout_s = x)
                    .is_some(),
                "idle_watts" => self
                    .seconds(val, key)
                    .map(|x| c.idle_watts = Some(x))
                    .is_some(),
                "core_watts" => self.seconds(val, key).map(|x| c.core_watts = x).is_some(),
                _ => true,
            };
            ok &= good;
        }
        if ok && kind == SourceKind::External {
            if let Err(e) = c.meter.validate() {
                self.problem(v.span(), e);
                ok = false;
            }
        }
        ok.then_some(c)
    }

    /// A finite number, negative allowed.
    fn signed(&mut self, v: &V<'_>, key: &str) -> Option<f64> {
        let x = match v.get_ref() {
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                i64::from_str_radix(&digits, i.radix())
                    .ok()
                    .map(|n| n as f64)
            }
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            other => {
                self.problem(
                    v.span(),
                    format!("`{key}` must be a number, found {}", other.type_str()),
                );
                return None;
            }
        };
        match x {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                self.problem(v.span(), format!("`{key}` is not a valid finite number"));
                None
            }
        }
    }

    fn exclude(&mut self, v: &V<'_>) -> Option<Exclude> {
        let t = self.table(v, "an exclude rule")?;
        let mut x = Exclude::default();
        if t.is_empty() {
            self.problem(
                v.span(),
                "an empty exclude rule would drop every point; name at least one key",
            );
            return None;
        }
        for (k, val) in t.iter() {
            let key: &str = k.get_ref().as_ref();
            match key {
                "engine" => {
                    x.engine = self
                        .list(val, key, |cx, e| {
                            let s = cx.string(e, key)?;
                            match s.parse::<Engine>() {
                                Ok(en) => Some((en, e.span())),
                                Err(msg) => {
                                    cx.problem(e.span(), msg);
                                    None
                                }
                            }
                        })
                        .map(strip)
                }
                "model" | "models" => {
                    x.model = self
                        .list(val, key, |cx, e| cx.string(e, key).map(|s| (s, e.span())))
                        .map(strip)
                }
                "threads" => {
                    x.threads = self
                        .list(val, key, |cx, e| cx.count(e, key).map(|(n, _)| (n, e.span())))
                        .map(strip)
                }
                "batch" => {
                    x.batch = self
                        .list(val, key, |cx, e| cx.count(e, key).map(|(n, _)| (n, e.span())))
                        .map(strip)
                }
                "cache" => {
                    x.cache = self
                        .list(val, key, |cx, e| cx.cache(e).map(|c| (c, e.span())))
                        .map(strip)
                }
                "loop" => {
                    x.parallel = self
                        .list(val, key, |cx, e| {
                            cx.parse_str::<ParallelLoop>(e, key, "auto, jc, ic or jr")
                        })
                        .map(strip)
                }
                "conv" => {
                    x.conv = self
                        .list(val, key, |cx, e| {
                            cx.parse_str::<ConvChoice>(e, key, ConvChoice::CHOICES)
                        })
                        .map(strip)
                }
                "fusion" => {
                    x.fusion = self
                        .list(val, key, |cx, e| cx.boolean(e, key).map(|b| (b, e.span())))
                        .map(strip)
                }
                "power_mode" => {
                    x.power_mode = self
                        .list(val, key, |cx, e| cx.string(e, key).map(|s| (s, e.span())))
                        .map(strip)
                }
                other => self.problem(
                    k.span(),
                    format!("unknown key `{other}` in an exclude rule; use model, engine, threads, batch, cache, loop, conv, fusion or power_mode"),
                ),
            }
        }
        Some(x)
    }

    fn models(&mut self, v: &V<'_>, import: bool) -> Option<Vec<String>> {
        let list = self.list(v, "models", |cx, e| {
            let s = cx.string(e, "models")?;
            if models::names().contains(&s.as_str()) {
                return Some((s, e.span()));
            }
            if model_source::is_onnx(&s) {
                let file = cx.dir.join(&s);
                if !file.is_file() {
                    cx.problem(
                        e.span(),
                        format!(
                            "model file `{}` does not exist (ONNX paths are relative to the suite file)",
                            file.display()
                        ),
                    );
                    return None;
                }
                if !import {
                    return Some((s, e.span()));
                }
                // Import now, so an unsupported operator stops the suite before any work.
                return match onnx::load(&file, &onnx::ImportOptions::default()) {
                    Ok(_) => Some((s, e.span())),
                    Err(err) => {
                        cx.problem(e.span(), err.to_string());
                        None
                    }
                };
            } else {
                cx.problem(
                    e.span(),
                    format!(
                        "unknown model `{s}`; built-in models: {}",
                        models::names().join(", ")
                    ),
                );
            }
            None
        })?;
        Some(strip(list))
    }

    /// A scalar or a non-empty list of distinct values, each read by `item`.
    fn list<T: PartialEq + fmt::Debug>(
        &mut self,
        v: &V<'_>,
        key: &str,
        mut item: impl FnMut(&mut Self, &V<'_>) -> Option<(T, Range<usize>)>,
    ) -> Option<Vec<(T, Range<usize>)>> {
        let elems: Vec<&V<'_>> = match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![v],
        };
        if elems.is_empty() {
            self.problem(
                v.span(),
                format!("`{key}` is an empty list; give at least one value"),
            );
            return None;
        }
        let mut out: Vec<(T, Range<usize>)> = Vec::new();
        let mut ok = true;
        for e in elems {
            match item(self, e) {
                Some((x, span)) => {
                    if out.iter().any(|(y, _)| *y == x) {
                        self.problem(
                            e.span(),
                            format!("`{key}` lists {x:?} twice; remove the duplicate"),
                        );
                        ok = false;
                    } else {
                        out.push((x, span));
                    }
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn table<'a, 'i>(&mut self, v: &'a V<'i>, what: &str) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.problem(
                    v.span(),
                    format!("{what} must be a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn string(&mut self, v: &V<'_>, key: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.problem(
                    v.span(),
                    format!("`{key}` must be a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn name(&mut self, v: &V<'_>, what: &str) -> Option<String> {
        let s = self.string(v, what)?;
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !s.starts_with('.');
        if !ok {
            self.problem(
                v.span(),
                format!("{what} `{s}` must be non-empty and use only letters, digits, '-', '_' and '.' (it names directories and point ids)"),
            );
            return None;
        }
        Some(s)
    }

    fn boolean(&mut self, v: &V<'_>, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.problem(
                    v.span(),
                    format!("`{key}` must be true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn uint(&mut self, v: &V<'_>, key: &str) -> Option<usize> {
        match v.get_ref() {
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                match i64::from_str_radix(&digits, i.radix()) {
                    Ok(n) if n >= 0 => Some(n as usize),
                    Ok(n) => {
                        self.problem(
                            v.span(),
                            format!("`{key}` = {n} is negative; it must be 0 or more"),
                        );
                        None
                    }
                    Err(_) => {
                        self.problem(v.span(), format!("`{key}` is not a valid integer"));
                        None
                    }
                }
            }
            other => {
                self.problem(
                    v.span(),
                    format!("`{key}` must be an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An integer of at least 1.
    fn count(&mut self, v: &V<'_>, key: &str) -> Option<(usize, Range<usize>)> {
        let n = self.uint(v, key)?;
        if n == 0 {
            self.problem(v.span(), format!("`{key}` must be at least 1"));
            return None;
        }
        Some((n, v.span()))
    }

    /// A finite, non-negative number (integer or float).
    fn seconds(&mut self, v: &V<'_>, key: &str) -> Option<f64> {
        let x = match v.get_ref() {
            DeValue::Integer(_) => self.uint(v, key)? as f64,
            DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
                Ok(x) => x,
                Err(_) => {
                    self.problem(v.span(), format!("`{key}` is not a valid number"));
                    return None;
                }
            },
            other => {
                self.problem(
                    v.span(),
                    format!("`{key}` must be a number, found {}", other.type_str()),
                );
                return None;
            }
        };
        if !(x.is_finite() && x >= 0.0) {
            self.problem(
                v.span(),
                format!("`{key}` = {x} must be a finite number of 0 or more"),
            );
            return None;
        }
        Some(x)
    }

    fn parse_str<T: std::str::FromStr>(
        &mut self,
        v: &V<'_>,
        key: &str,
        choices: &str,
    ) -> Option<(T, Range<usize>)> {
        let s = self.string(v, key)?;
        match s.parse::<T>() {
            Ok(x) => Some((x, v.span())),
            Err(_) => {
                self.problem(
                    v.span(),
                    format!("`{key}` = \"{s}\" is not known; use {choices}"),
                );
                None
            }
        }
    }

    fn cache(&mut self, v: &V<'_>) -> Option<CacheSpec> {
        match v.get_ref() {
            DeValue::String(s) if s.as_ref() == "auto" => Some(CacheSpec::Auto),
            DeValue::String(s) => {
                self.problem(
                    v.span(),
                    format!("cache preset `{s}` is not known; use \"auto\" or {{ mc = 96, nc = 4032, kc = 256 }}"),
                );
                None
            }
            DeValue::Table(t) => {
                let (mut mc, mut nc, mut kc) = (None, None, None);
                let mut ok = true;
                for (k, val) in t.iter() {
                    let key: &str = k.get_ref().as_ref();
                    let slot = match key {
                        "mc" => &mut mc,
                        "nc" => &mut nc,
                        "kc" => &mut kc,
                        other => {
                            self.problem(
                                k.span(),
                                format!(
                                    "unknown key `{other}` in a cache config; use mc, nc and kc"
                                ),
                            );
                            ok = false;
                            continue;
                        }
                    };
                    match self.count(val, key) {
                        Some((n, _)) => *slot = Some(n),
                        None => ok = false,
                    }
                }
                if ok && mc.is_none() && nc.is_none() && kc.is_none() {
                    self.problem(
                        v.span(),
                        "an empty cache config; give mc, nc and/or kc, or use \"auto\"",
                    );
                    ok = false;
                }
                ok.then_some(CacheSpec::Explicit { mc, nc, kc })
            }
            other => {
                self.problem(
                    v.span(),
                    format!(
                        "a cache config must be \"auto\" or a table {{ mc, nc, kc }}, found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }
}

/// The experiment's peer settings over the defaults', key by key.
fn merge_peers(e: &PeerConfig, d: &PeerConfig) -> PeerConfig {
    PeerConfig {
        python: e.python.clone().or(d.python.clone()),
        benchmark_model: e.benchmark_model.clone().or(d.benchmark_model.clone()),
        execute_network: e.execute_network.clone().or(d.execute_network.clone()),
        tflite_model: e.tflite_model.clone().or(d.tflite_model.clone()),
        armnn_model: e.armnn_model.clone().or(d.armnn_model.clone()),
        ncnn_model: e.ncnn_model.clone().or(d.ncnn_model.clone()),
        peer_input: e.peer_input.clone().or(d.peer_input.clone()),
        armnn_backend: e.armnn_backend.clone().or(d.armnn_backend.clone()),
        peer_timeout_seconds: e.peer_timeout_seconds.or(d.peer_timeout_seconds),
    }
}

fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
    a.clone().or_else(|| b.clone())
}

fn strip<T>(v: Vec<(T, Range<usize>)>) -> Vec<T> {
    v.into_iter().map(|(x, _)| x).collect()
}

/// A rough time estimate for `points` (seconds), assuming `gflops_per_thread`
/// sustained per thread: warm-up + measurement + cool-down.
pub fn estimate_seconds(suite: &Suite, points: &[Point], gflops_per_thread: f64) -> f64 {
    points
        .iter()
        .map(|p| {
            let m = &suite.experiments[p.experiment_index].measurement;
            let gflop = models::info(&p.model).map_or(1.0, |i| i.gflops_per_image);
            let batch_s = gflop * p.batch as f64 / (gflops_per_thread * p.threads as f64);
            let warm = (m.warmup_iterations as f64 * batch_s).max(m.warmup_seconds);
            let mut meas = (m.min_batches as f64 * batch_s).max(m.min_seconds);
            if let Some(max) = m.max_seconds {
                meas = meas.min(max.max(batch_s));
            }
            warm + meas + m.cooldown_seconds
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Suite, HarnessError> {
        Suite::parse_with_cores(text, Path::new("t.toml"), 4)
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text) {
            Err(HarnessError::Suite(p)) => p.problems,
            other => panic!("expected suite problems, got {other:?}"),
        }
    }

    const GOOD: &str = r#"name = "s"
[defaults]
min_batches = 3
min_seconds = 0.1
threads = [1, 2]

[[experiment]]
name = "a"
models = ["tiny"]
batch = [1, 4]
cache = ["auto", { mc = 48, nc = 256, kc = 64 }]
exclude = [{ threads = 2, batch = 1 }]

[[experiment]]
name = "b"
models = "tiny"
threads = 1
fusion = [true, false]
repetitions = 2
"#;

    #[test]
    fn parses_defaults_and_overrides() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.name, "s");
        assert_eq!(s.hash.len(), 64);
        let a = &s.experiments[0];
        assert_eq!(a.threads, vec![1, 2]);
        assert_eq!(a.batch, vec![1, 4]);
        assert_eq!(a.measurement.min_batches, 3);
        assert_eq!(a.measurement.min_seconds, 0.1);
        assert_eq!(
            a.cache[1],
            CacheSpec::Explicit {
                mc: Some(48),
                nc: Some(256),
                kc: Some(64)
            }
        );
        let b = &s.experiments[1];
        assert_eq!(b.threads, vec![1]);
        assert_eq!(b.fusion, vec![true, false]);
        assert_eq!(b.measurement.repetitions, 2);
    }

    #[test]
    fn expansion_is_the_product_minus_excludes_in_a_fixed_order() {
        let s = parse(GOOD).unwrap();
        let pts = s.points();
        // a: 2 caches x 2 threads x 2 batches = 8, minus threads=2,batch=1 (2) = 6
        // b: 2 fusion x 2 repetitions = 4
        assert_eq!(pts.len(), 10);
        assert!(pts
            .iter()
            .all(|p| !(p.experiment == "a" && p.threads == 2 && p.batch == 1)));
        let ids: Vec<&str> = pts.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids[0], "a/tiny/t1-b1-auto-auto-auto-fused-r0");
        assert_eq!(ids[1], "a/tiny/t1-b4-auto-auto-auto-fused-r0");
        assert_eq!(ids[2], "a/tiny/t2-b4-auto-auto-auto-fused-r0");
        assert_eq!(ids[3], "a/tiny/t1-b1-mc48_nc256_kc64-auto-auto-fused-r0");
        assert_eq!(ids[9], "b/tiny/t1-b1-auto-auto-auto-unfused-r1");
        let mut uniq = ids.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), ids.len());
        assert!(pts.iter().enumerate().all(|(i, p)| p.index == i));
        assert_eq!(s.points(), pts);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = r#"name = "s"
colour = "red"
[defaults]
threads = [1, 64]
min_batches = "many"

[[experiment]]
models = ["tiny", "resnet9000", "nets/x.onnx"]
batch = [0, 100000]
loop = ["kc"]
cache = [{ mc = 8, zz = 1 }]
power = "rapi"
exclude = [{ colour = 1 }]
"#;
        let ps = problems(text);
        let at = |line: usize, needle: &str| {
            assert!(
                ps.iter()
                    .any(|p| p.line == line && p.message.contains(needle)),
                "no problem on line {line} containing `{needle}` in {ps:#?}"
            )
        };
        at(2, "unknown key `colour`");
        at(4, "threads = 64 is more than the 4 cores");
        at(5, "`min_batches` must be an integer, found string");
        at(8, "unknown model `resnet9000`");
        at(8, "nets/x.onnx` does not exist");
        at(9, "`batch` must be at least 1");
        at(9, "batch = 100000 is above 4096");
        at(10, "\"kc\" is not known");
        at(11, "unknown key `zz` in a cache config");
        at(12, "power source `rapi` is not known");
        at(13, "unknown key `colour` in an exclude rule");
        assert_eq!(ps.len(), 11, "{ps:#?}");
        // Column of `colour` on line 2 is 1; of 64 on line 4 is 15.
        assert!(ps.iter().any(|p| p.line == 4 && p.column == 15));
    }

    #[test]
    fn an_exclude_rule_that_can_never_match_is_reported() {
        let text = "name = \"s\"\n[[experiment]]\nmodels = \"tiny\"\nbatch = [1, 2]\nexclude = [\n  { batch = 2 },\n  { batch = 3, conv = \"im2col\" },\n]\n";
        let ps = problems(text);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(ps[0].line, 7);
        assert!(ps[0].message.contains("`batch` matches none"), "{ps:?}");
    }

    #[test]
    fn profile_is_a_measurement_key_with_defaults_and_overrides() {
        let text = "name = \"s\"\n[defaults]\nprofile = true\n[[experiment]]\nmodels = [\"tiny\"]\n[[experiment]]\nname = \"b\"\nmodels = [\"tiny\"]\nprofile = false\n";
        let s = parse(text).unwrap();
        assert!(s.experiments[0].measurement.profile);
        assert!(!s.experiments[1].measurement.profile);
        let ps = problems(&text.replace("profile = false", "profile = \"yes\""));
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(ps[0].line, 9);
    }

    #[test]
    fn oversubscription_can_be_allowed() {
        let text = "name = \"s\"\n[[experiment]]\nmodels = [\"tiny\"]\nthreads = [8]\nallow_oversubscribe = true\n";
        assert_eq!(parse(text).unwrap().experiments[0].threads, vec![8]);
        let ps = problems(&text.replace("[8]", "[8, 5000]"));
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert!(ps[0].message.contains("threads = 5000 is above 1024"));
    }

    #[test]
    fn syntax_errors_carry_a_place_and_render_file_line_col() {
        let text = "name = \"s\"\n[[experiment]]\nmodels = [\"tiny\"\n";
        let ps = problems(text);
        assert!(ps[0].message.starts_with("TOML syntax"));
        assert!(ps[0].line >= 3, "{ps:?}");
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("t.toml:"), "{err}");
    }

    #[test]
    fn missing_name_models_and_bad_values() {
        let text =
            "[[experiment]]\nthreads = [1, 1]\nmax_seconds = 0.5\nmin_seconds = 2\ncpus = [7]\n";
        let ps = problems(text);
        let msgs: Vec<&str> = ps.iter().map(|p| p.message.as_str()).collect();
        assert!(msgs.iter().any(|m| m.contains("missing `name")), "{msgs:?}");
        assert!(
            msgs.iter().any(|m| m.contains("has no `models`")),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|m| m.contains("twice")), "{msgs:?}");
        assert!(
            msgs.iter().any(|m| m.contains("below min_seconds")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("cpu 7 does not exist")),
            "{msgs:?}"
        );
        let text =
            "name = \"s\"\n[[experiment]]\nmodels = \"tiny\"\nthreads = [1, 2]\ncpus = [3]\n";
        let ps = problems(text);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!((ps[0].line, ps[0].column), (5, 9));
        assert!(ps[0].message.contains("threads = 2 on 1 pinned cpu(s)"));
    }

    #[test]
    fn power_settings_parse_and_are_validated_per_source() {
        let text = "name = \"s\"\n[defaults]\ncounters = false\n[defaults.power]\nsource = \"rapl\"\nzones = [\"package-0\"]\nrate_hz = 20\nidle_seconds = 1.5\n[[experiment]]\nmodels = \"tiny\"\n[[experiment]]\nname = \"b\"\nmodels = \"tiny\"\npower = { source = \"external\", preset = \"ptdaemon\", log = \"m/spl.txt\", clock_offset_s = -7200 }\n";
        let s = parse(text).unwrap();
        let m = &s.experiments[0].measurement;
        assert!(!m.counters);
        assert_eq!(m.power.source, SourceKind::Rapl);
        assert_eq!(m.power.zones, vec!["package-0".to_string()]);
        assert_eq!(m.power.rate_hz, Some(20.0));
        assert_eq!(m.power.idle_seconds, 1.5);
        let e = &s.experiments[1].measurement.power;
        assert_eq!(e.source, SourceKind::External);
        assert_eq!(e.meter.preset, "ptdaemon");
        assert_eq!(e.meter.clock_offset_s, -7200.0);
        assert_eq!(e.log.as_deref(), Some(Path::new("m/spl.txt")));
        assert_eq!(
            parse("name = \"s\"\n[[experiment]]\nmodels = \"tiny\"\npower = \"pi5\"\n")
                .unwrap()
                .experiments[0]
                .measurement
                .power,
            PowerConfig::named(SourceKind::Pi5)
        );

        let text = r#"name = "s"
[[experiment]]
models = "tiny"
power = { source = "pi5", zones = ["x"], rate_hz = -1 }
[[experiment]]
name = "b"
models = "tiny"
power = { source = "external", preset = "nope" }
[[experiment]]
name = "c"
models = "tiny"
power = { source = "external", header = false, time_column = "Date" }
[[experiment]]
name = "d"
models = "tiny"
power = { rate_hz = 5 }
counters = "yes"
[[experiment]]
name = "e"
models = "tiny"
power = { source = "hwmon", colour = 1, delimiter = ";;" }
"#;
        let ps = problems(text);
        let at = |line: usize, needle: &str| {
            assert!(
                ps.iter()
                    .any(|p| p.line == line && p.message.contains(needle)),
                "no problem on line {line} containing `{needle}` in {ps:#?}"
            )
        };
        at(4, "`zones` applies to source = \"rapl\", not \"pi5\"");
        at(4, "`rate_hz` = -1 is negative");
        at(
            8,
            "meter preset `nope` is not known; use unix-watts, pyummeter, ptdaemon",
        );
        at(12, "column `Date` is a name but the log has no header");
        at(16, "the power table has no `source`");
        at(17, "`counters` must be true or false");
        at(21, "unknown power setting `colour`");
        at(21, "`delimiter` applies to source = \"external\"");
        assert_eq!(ps.len(), 8, "{ps:#?}");
    }

    #[test]
    fn engines_sweep_with_joulebench_knobs_applying_to_joulebench_only() {
        let s = parse(
            r#"name = "s"
[defaults]
engine = ["joulebench", "tract"]
python = "/opt/py/bin/python"
[[experiment]]
name = "e"
models = ["tiny"]
engine = ["joulebench", "onnxruntime", "tract"]
conv = ["convgemm", "im2col"]
batch = [1, 2]
exclude = [{ engine = "tract", batch = 2 }]
[[experiment]]
name = "d"
models = "tiny"
"#,
        )
        .unwrap();
        let ids: Vec<String> = s.points().into_iter().map(|p| p.id).collect();
        // joulebench: 2 conv x 2 batch; onnxruntime: 2 batch; tract: batch 1;
        // then experiment d takes the default engines.
        assert_eq!(
            ids,
            [
                "e/tiny/t1-b1-auto-auto-convgemm-fused-r0",
                "e/tiny/t1-b2-auto-auto-convgemm-fused-r0",
                "e/tiny/t1-b1-auto-auto-im2col-fused-r0",
                "e/tiny/t1-b2-auto-auto-im2col-fused-r0",
                "e/tiny/onnxruntime-t1-b1-r0",
                "e/tiny/onnxruntime-t1-b2-r0",
                "e/tiny/tract-t1-b1-r0",
                "d/tiny/t1-b1-auto-auto-auto-fused-r0",
                "d/tiny/tract-t1-b1-r0",
            ]
        );
        assert_eq!(
            s.experiments[0].peers.python.as_deref(),
            Some("/opt/py/bin/python")
        );
        let p = problems(
            "name = \"s\"\n[[experiment]]\nmodels = [\"tiny\"]\nengine = [\"tflite\"]\nexclude = [{ engine = \"armnn\" }]\n[[experiment]]\nmodels = [\"tiny\"]\nengine = \"onnx\"\n",
        );
        let msgs: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("engine `onnx` is not known")),
            "{msgs:?}"
        );
        // A tflite experiment without tflite_model is valid: it runs the converted model.
        assert!(!msgs.iter().any(|m| m.contains("tflite_model")), "{msgs:?}");
        assert!(
            msgs.iter().any(|m| m.contains("`engine` matches none")),
            "{msgs:?}"
        );
        assert_eq!(p[0].line, 5);
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé\nf", 0), (1, 1));
        assert_eq!(line_col("ab\ncdé\nf", 3), (2, 1));
        assert_eq!(line_col("ab\ncdé\nf", 8), (3, 1));
    }

    #[test]
    fn power_modes_are_defined_validated_and_swept() {
        let text = r#"name = "m"
[power_modes]
settle_seconds = 5
nvpmodel_command = "bin/nvpmodel"
f1200 = { governor = "userspace", min_freq_khz = 1200000, max_freq_khz = 1200000, policies = [0, 4] }
maxn = { nvpmodel = 0, jetson_clocks = true }
[defaults]
power_mode = ["none", "f1200"]
[[experiment]]
name = "a"
models = ["tiny"]
[[experiment]]
name = "b"
models = ["tiny"]
power_mode = "maxn"
[[experiment]]
name = "c"
models = ["tiny"]
threads = [1, 2]
power_mode = ["maxn", "f1200"]
exclude = [{ power_mode = "f1200", threads = 2 }]
"#;
        let s = parse(text).unwrap();
        assert_eq!(s.modes.settle_seconds, 5.0);
        assert_eq!(
            s.modes.nvpmodel_command, "bin/nvpmodel",
            "relative to the suite's directory (here none)"
        );
        let f = s.modes.get("f1200").unwrap();
        let c = f.cpufreq.as_ref().unwrap();
        assert_eq!(c.policies, Some(vec![0, 4]));
        assert_eq!(c.setting.governor.as_deref(), Some("userspace"));
        assert_eq!(s.modes.get("maxn").unwrap().nvpmodel, Some(0));
        let ids: Vec<String> = s.points().into_iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            vec![
                "a/tiny/t1-b1-auto-auto-auto-fused-r0",
                "a/tiny/t1-b1-auto-auto-auto-fused-mf1200-r0",
                "b/tiny/t1-b1-auto-auto-auto-fused-mmaxn-r0",
                "c/tiny/t1-b1-auto-auto-auto-fused-mmaxn-r0",
                "c/tiny/t1-b1-auto-auto-auto-fused-mf1200-r0",
                "c/tiny/t2-b1-auto-auto-auto-fused-mmaxn-r0",
            ]
        );
        // No [power_modes]: the axis is `none` and ids are unchanged.
        let s = parse("name = \"s\"\n[[experiment]]\nmodels = [\"tiny\"]\n").unwrap();
        assert_eq!(s.points()[0].power_mode, "none");
    }

    #[test]
    fn bad_power_modes_are_reported_with_places() {
        let text = r#"name = "m"
[power_modes]
none = { governor = "performance" }
fast = { governor = "perf mode", turbo = true }
low = { min_freq_khz = 2000000, max_freq_khz = 1000000 }
idle = {}
only = { policies = [1] }
settle = 3
[[experiment]]
models = ["tiny"]
power_mode = ["fast", "slow"]
"#;
        let p = problems(text);
        let msgs: Vec<String> = p
            .iter()
            .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
            .collect();
        let all = msgs.join("\n");
        assert!(all.contains("3:1: `none` is the built-in mode"), "{all}");
        assert!(all.contains("4:21: governor \"perf mode\""), "{all}");
        assert!(
            all.contains("4:34: unknown key `turbo` in power mode `fast`"),
            "{all}"
        );
        assert!(
            all.contains("min_freq_khz = 2000000 is above max_freq_khz = 1000000"),
            "{all}"
        );
        assert!(all.contains("power mode `idle` changes nothing"), "{all}");
        assert!(
            all.contains("`only` lists `policies` but sets no governor"),
            "{all}"
        );
        assert!(
            all.contains("8:10: power mode `settle` must be a table"),
            "{all}"
        );
        assert!(
            all.contains("11:23: power_mode `slow` is not defined"),
            "{all}"
        );
    }
}
