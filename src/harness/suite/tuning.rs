//! A suite's `tuning` setting: joulebench points run with per-layer algorithm
//! choices from `joulebench tune`, either tuned by the run itself (`auto`,
//! once per model, threads, batch and power mode, kept in the run directory
//! so `--resume` reuses them) or read from tuning files named in the suite.

use crate::harness::tune_cmd::{self, LayerOverrides, TuneSpec, Tuning};
use crate::harness::HarnessError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What `tuning = ...` says.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum TuningChoice {
    /// No per-layer overrides (the default).
    #[default]
    None,
    /// Tune before the first point of each model, threads, batch and power mode.
    Auto,
    /// Tuning files: one file, or every `*.json` of a directory.
    Files {
        /// As written in the suite (for messages).
        spec: String,
        files: Vec<(PathBuf, Tuning)>,
    },
}

/// Tuning files name a model as given to `joulebench tune`; a suite names
/// ONNX files relative to itself, so files match by file name.
pub fn same_model(tuned: &str, suite_model: &str) -> bool {
    if tuned == suite_model {
        return true;
    }
    let name = |s: &str| Path::new(s).file_name().map(|n| n.to_owned());
    crate::harness::model_source::is_onnx(tuned)
        && crate::harness::model_source::is_onnx(suite_model)
        && name(tuned) == name(suite_model)
}

impl TuningChoice {
    /// Parses the value of `tuning`, resolving paths against `dir` (the
    /// suite's directory); the error is the message for the suite problem.
    pub fn parse(value: &str, dir: &Path) -> Result<TuningChoice, String> {
        match value {
            "none" => return Ok(TuningChoice::None),
            "auto" => return Ok(TuningChoice::Auto),
            _ => {}
        }
        let path = dir.join(value);
        let hint = "make one with `joulebench tune --model M --threads T --batch B --out FILE`, or use tuning = \"auto\"";
        let mut files = Vec::new();
        if path.is_dir() {
            let entries = std::fs::read_dir(&path)
                .map_err(|e| format!("cannot read the tuning directory {}: {e}", path.display()))?;
            let mut names: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            names.sort();
            for f in names {
                let t = Tuning::load(&f).map_err(|e| e.to_string())?;
                files.push((f, t));
            }
            if files.is_empty() {
                return Err(format!(
                    "the tuning directory {} holds no .json tuning files; {hint}",
                    path.display()
                ));
            }
        } else if path.is_file() {
            let t = Tuning::load(&path).map_err(|e| e.to_string())?;
            files.push((path, t));
        } else {
            return Err(format!(
                "tuning `{value}` is neither \"none\", \"auto\" nor an existing file or directory ({} does not exist; paths are relative to the suite file); {hint}",
                path.display()
            ));
        }
        Ok(TuningChoice::Files {
            spec: value.to_string(),
            files,
        })
    }

    /// The tuning file for `model`, `threads` and `batch`, any kernel.
    pub fn find(&self, model: &str, threads: usize, batch: usize) -> Option<&(PathBuf, Tuning)> {
        match self {
            TuningChoice::Files { files, .. } => files.iter().find(|(_, t)| {
                same_model(&t.model, model) && t.threads == threads && t.batch == batch
            }),
            _ => None,
        }
    }

    pub fn label(&self) -> String {
        match self {
            TuningChoice::None => "none".into(),
            TuningChoice::Auto => "auto".into(),
            TuningChoice::Files { spec, .. } => spec.clone(),
        }
    }
}

/// What a joulebench point runs with: where its overrides come from, and them.
#[derive(Clone, Debug, PartialEq)]
pub struct PointTuning {
    pub file: PathBuf,
    pub layers: LayerOverrides,
}

/// The overrides of a run, tuned or read once per key.
pub struct TuningCache {
    /// `<run dir>/tuning`, where `auto` keeps what it tunes.
    dir: PathBuf,
    kernel: String,
    done: HashMap<(String, usize, usize, String), PointTuning>,
}

/// How `auto` tunes: the defaults of `joulebench tune`.
const AUTO_ROUNDS: usize = 3;
const AUTO_ITERATIONS: usize = 3;

impl TuningCache {
    pub fn new(run_dir: &Path, kernel: &str) -> TuningCache {
        TuningCache {
            dir: run_dir.join("tuning"),
            kernel: kernel.to_string(),
            done: HashMap::new(),
        }
    }

    /// The file `auto` writes for a point.
    pub fn auto_file(&self, model: &str, threads: usize, batch: usize, mode: &str) -> PathBuf {
        let stem = Path::new(model)
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned());
        let mode = if mode == crate::harness::modes::NONE {
            String::new()
        } else {
            format!("-m{mode}")
        };
        self.dir
            .join(format!("tuning-{stem}-t{threads}-b{batch}{mode}.json"))
    }

    /// The overrides for a point of `model` (`spec` is what to load) under
    /// `choice`; `auto` tunes now (announced through `note`) unless this run
    /// already has the file.
    #[allow(clippy::too_many_arguments)]
    pub fn get(
        &mut self,
        choice: &TuningChoice,
        model: &str,
        spec: &str,
        threads: usize,
        batch: usize,
        mode: &str,
        note: impl FnOnce(&str),
    ) -> Result<Option<PointTuning>, HarnessError> {
        let key = (model.to_string(), threads, batch, mode.to_string());
        if let Some(t) = self.done.get(&key) {
            return Ok(Some(t.clone()));
        }
        let (file, tuning) = match choice {
            TuningChoice::None => return Ok(None),
            TuningChoice::Files { spec: written, .. } => {
                let (f, t) = choice.find(model, threads, batch).ok_or_else(|| {
                    HarnessError::Usage {
                        name: "tuning",
                        reason: format!(
                            "\"{written}\" has no file for model {model}, {threads} thread(s), batch {batch}: run `joulebench tune --model {spec} --threads {threads} --batch {batch}` into it"
                        ),
                    }
                })?;
                (f.clone(), t.clone())
            }
            TuningChoice::Auto => {
                let file = self.auto_file(model, threads, batch, mode);
                let reuse = file
                    .is_file()
                    .then(|| Tuning::load(&file).ok())
                    .flatten()
                    .filter(|t| t.kernel == self.kernel);
                let t = match reuse {
                    Some(t) => t,
                    None => {
                        note(&format!(
                            "tuning {model} for {threads} thread(s), batch {batch} (tuning = \"auto\")"
                        ));
                        let t = tune_cmd::tune(&TuneSpec {
                            model: spec.to_string(),
                            threads,
                            batch,
                            rounds: AUTO_ROUNDS,
                            iterations: AUTO_ITERATIONS,
                        })?;
                        std::fs::create_dir_all(&self.dir).map_err(|e| HarnessError::Io {
                            path: self.dir.clone(),
                            reason: format!("cannot create: {e}"),
                        })?;
                        t.save(&file)?;
                        t
                    }
                };
                (file, t)
            }
        };
        // The kernel is only known here (it depends on the CPU and JOULEBENCH_KERNEL).
        let kernel = self.kernel.clone();
        let layers = tuning.overrides(&file, &tuning.model, &kernel, threads, batch)?;
        let t = PointTuning { file, layers };
        self.done.insert(key, t.clone());
        Ok(Some(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_models_match_by_file_name_and_built_ins_exactly() {
        assert!(same_model("resnet50", "resnet50"));
        assert!(!same_model("resnet50", "resnet18"));
        assert!(same_model("../models/r50.onnx", "models/r50.onnx"));
        assert!(!same_model("../models/r50.onnx", "models/r18.onnx"));
        assert!(!same_model("r50", "r50.onnx"));
    }

    #[test]
    fn keywords_and_missing_paths() {
        let d = std::env::temp_dir();
        assert!(matches!(
            TuningChoice::parse("auto", &d),
            Ok(TuningChoice::Auto)
        ));
        assert!(matches!(
            TuningChoice::parse("none", &d),
            Ok(TuningChoice::None)
        ));
        let e = TuningChoice::parse("no-such-tuning-file.json", &d).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        assert!(e.contains("joulebench tune"), "{e}");
    }
}
