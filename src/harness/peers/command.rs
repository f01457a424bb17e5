//! Command engines that are not Python drivers: TFLite's `benchmark_model`
//! and ArmNN's `ExecuteNetwork`. Each adapter maps threads, batch and the
//! measurement rules to the program's flags, and a parser reads latency back
//! from what it prints. Running the program (time limit, the measured
//! window's hooks) is process.rs's.

use super::process::tail;
use super::{PeerConfig, PeerFailure, ToolSummary};
use crate::harness::suite::Measurement;
use std::path::Path;

/// NHWC input shape flag value for a batch (TFLite and ArmNN take NHWC).
fn nhwc(batch: usize, chw: (usize, usize, usize)) -> String {
    format!("{batch},{},{},{}", chw.1, chw.2, chw.0)
}

/// How TFLite and ArmNN get the batch: through the input-shape flags when the
/// input tensor is named, else only batch 1 (the file's own shape).
fn batch_flags(
    cfg: &PeerConfig,
    batch: usize,
    chw: Option<(usize, usize, usize)>,
    name_flag: &str,
    shape_flag: &str,
    sep_eq: bool,
) -> Result<Vec<String>, PeerFailure> {
    let flag = |f: &str, v: String| -> Vec<String> {
        if sep_eq {
            vec![format!("{f}={v}")]
        } else {
            vec![f.to_string(), v]
        }
    };
    match (&cfg.peer_input, chw) {
        (Some(name), Some(chw)) => {
            let mut v = flag(name_flag, name.clone());
            v.extend(flag(shape_flag, nhwc(batch, chw)));
            Ok(v)
        }
        (Some(_), None) => Err(PeerFailure::Failed(
            "the suite's model has no image input to take the input shape from".into(),
        )),
        (None, _) if batch == 1 => Ok(Vec::new()),
        (None, _) => Err(PeerFailure::Unavailable(format!(
            "batch {batch} needs the input tensor's name to resize it: set peer_input = \"NAME\" in the suite (or use batch = 1)"
        ))),
    }
}

/// TFLite `benchmark_model` flags: threads, warm-up, minimum runs and time.
pub fn tflite_args(
    cfg: &PeerConfig,
    model: &Path,
    threads: usize,
    batch: usize,
    chw: Option<(usize, usize, usize)>,
    m: &Measurement,
) -> Result<Vec<String>, PeerFailure> {
    let mut v = vec![
        format!("--graph={}", model.display()),
        format!("--num_threads={threads}"),
        format!("--warmup_runs={}", m.warmup_iterations),
        format!("--warmup_min_secs={}", m.warmup_seconds),
        format!("--num_runs={}", m.min_batches),
        format!("--min_secs={}", m.min_seconds),
        format!("--max_secs={}", m.max_seconds.unwrap_or(1e9)),
    ];
    v.extend(batch_flags(
        cfg,
        batch,
        chw,
        "--input_layer",
        "--input_layer_shape",
        true,
    )?);
    Ok(v)
}

/// ArmNN `ExecuteNetwork` flags: it has no time limit, so it runs
/// `warmup_iterations + min_batches` inferences and the warm-up ones are
/// dropped when parsing.
pub fn armnn_args(
    cfg: &PeerConfig,
    model: &Path,
    threads: usize,
    batch: usize,
    chw: Option<(usize, usize, usize)>,
    m: &Measurement,
) -> Result<Vec<String>, PeerFailure> {
    let mut v = vec![
        "-m".into(),
        model.display().to_string(),
        "-c".into(),
        cfg.armnn_backend(),
        "--iterations".into(),
        (m.warmup_iterations + m.min_batches).to_string(),
        "--number-of-threads".into(),
        threads.to_string(),
    ];
    v.extend(batch_flags(
        cfg,
        batch,
        chw,
        "-i",
        "--input-tensor-shape",
        false,
    )?);
    Ok(v)
}

/// `key=value` pairs of a `count=... first=... avg=...` line.
fn key_values(line: &str) -> Vec<(&str, f64)> {
    line.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k, v.parse::<f64>().ok()?))
        })
        .collect()
}

/// Parses `benchmark_model`'s output: the statistics line of the measured
/// run (the last `count=N first=.. curr=.. min=.. max=.. avg=.. std=..`
/// line, possibly after a log prefix; the first is the warm-up's),
/// microseconds per inference.
pub fn parse_benchmark_model(text: &str) -> Result<ToolSummary, PeerFailure> {
    // Lines may carry a log prefix (`INFO: ` in TFLite 2.x).
    let stats = text
        .lines()
        .filter_map(|l| l.find("count=").map(|at| l[at..].trim()))
        .next_back();
    if let Some(line) = stats {
        let kv = key_values(line);
        let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let us = 1e-6;
        let (Some(count), Some(avg)) = (get("count"), get("avg")) else {
            return Err(PeerFailure::Failed(format!(
                "benchmark_model statistics line without count/avg: `{line}`"
            )));
        };
        if count < 1.0 || !avg.is_finite() || avg <= 0.0 {
            return Err(PeerFailure::Failed(format!(
                "benchmark_model measured nothing: `{line}`"
            )));
        }
        return Ok(ToolSummary {
            count: count as usize,
            mean: avg * us,
            min: get("min").unwrap_or(avg) * us,
            max: get("max").unwrap_or(avg) * us,
            stdev: get("std").unwrap_or(0.0) * us,
            median: get("median").or(get("p50")).map(|x| x * us),
        });
    }
    Err(PeerFailure::Failed(format!(
        "no `count=... avg=...` statistics in benchmark_model's output: {}",
        tail(text, 3)
    )))
}

/// Parses `ExecuteNetwork`'s per-inference `Inference time: X ms` lines
/// (seconds, in order; `Overall Inference time` of the asynchronous mode is
/// not a per-inference time and is skipped).
pub fn parse_execute_network(text: &str) -> Result<Vec<f64>, PeerFailure> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.contains("Overall Inference time") {
            continue;
        }
        let Some(at) = line.find("Inference time:") else {
            continue;
        };
        let rest = line[at + "Inference time:".len()..].trim();
        let num = rest.split_whitespace().next().unwrap_or("");
        match num.parse::<f64>() {
            Ok(ms) if ms.is_finite() && ms >= 0.0 => out.push(ms * 1e-3),
            _ => {
                return Err(PeerFailure::Failed(format!(
                    "unreadable ExecuteNetwork line `{}`",
                    line.trim()
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(PeerFailure::Failed(format!(
            "no `Inference time: X ms` lines in ExecuteNetwork's output: {}",
            tail(text, 3)
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_above_one_needs_the_input_name() {
        let m = Measurement::default();
        let cfg = PeerConfig::default();
        let p = Path::new("m.tflite");
        assert!(tflite_args(&cfg, p, 2, 1, Some((3, 224, 224)), &m).is_ok());
        assert!(matches!(
            tflite_args(&cfg, p, 2, 8, Some((3, 224, 224)), &m),
            Err(PeerFailure::Unavailable(_))
        ));
        let cfg = PeerConfig {
            peer_input: Some("input".into()),
            ..PeerConfig::default()
        };
        let a = tflite_args(&cfg, p, 2, 8, Some((3, 224, 224)), &m).unwrap();
        assert!(
            a.contains(&"--input_layer_shape=8,224,224,3".to_string()),
            "{a:?}"
        );
        assert!(a.contains(&"--num_threads=2".to_string()), "{a:?}");
        let a = armnn_args(&cfg, p, 4, 8, Some((3, 224, 224)), &m).unwrap();
        let s = a.join(" ");
        assert!(s.contains("--number-of-threads 4"), "{s}");
        assert!(s.contains("--input-tensor-shape 8,224,224,3"), "{s}");
        assert!(s.contains("-c CpuAcc"), "{s}");
        assert!(s.contains(&format!(
            "--iterations {}",
            m.warmup_iterations + m.min_batches
        )));
    }
}
