//! Command engines: one external benchmark program per point. Each adapter
//! maps threads, batch and the measurement rules to the program's flags, and
//! a parser reads latency back from what it prints. The caller's power source
//! and counters run around the program through [`WindowHooks`].

use super::{PeerConfig, PeerFailure, ToolSummary};
use crate::harness::suite::Measurement;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// The onnxruntime driver, embedded so that the binary works from anywhere.
pub const ONNXRUNTIME_SCRIPT: &str = include_str!("../../../scripts/peers/onnxruntime_bench.py");

/// Starts and stops the measured window (power source, counters) around the
/// program; `start` gets the child's process id.
pub trait WindowHooks {
    fn start(&mut self, pid: u32) -> Result<(), String>;
    fn stop(&mut self) -> Result<(), String>;
}

/// What a program printed.
#[derive(Clone, Debug, Default)]
pub struct ProgramOutput {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

/// The last `n` lines of `text`, for error messages.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn spawn_failure(program: &str, e: &std::io::Error, hint: &str) -> PeerFailure {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            PeerFailure::Unavailable(format!("program `{program}` not found; {hint}"))
        }
        std::io::ErrorKind::PermissionDenied => {
            PeerFailure::Unavailable(format!("program `{program}` is not executable; {hint}"))
        }
        _ => PeerFailure::Failed(format!("could not start `{program}`: {e}")),
    }
}

/// Runs `program args`. With `handshake`, the window starts when the program
/// prints a line containing `"event": "ready"` and is told to go by a line on
/// its stdin; otherwise the window is the whole run of the program.
pub fn run_program(
    program: &str,
    args: &[String],
    handshake: bool,
    hint: &str,
    hooks: &mut dyn WindowHooks,
) -> Result<ProgramOutput, PeerFailure> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if handshake {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_failure(program, &e, hint))?;
    let pid = child.id();
    let mut err_pipe = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let mut stdout = String::new();
    let mut started = false;
    let mut hook_err = None;
    if !handshake {
        match hooks.start(pid) {
            Ok(()) => started = true,
            Err(e) => hook_err = Some(e),
        }
    }
    let mut stdin = child.stdin.take();
    if let Some(out) = child.stdout.take() {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            stdout.push_str(&line);
            if handshake && !started && hook_err.is_none() && is_ready(&line) {
                match hooks.start(pid) {
                    Ok(()) => started = true,
                    Err(e) => hook_err = Some(e),
                }
                if let Some(mut w) = stdin.take() {
                    // A program that died meanwhile shows up in its exit status.
                    let _ = w.write_all(b"go\n").and_then(|_| w.flush());
                }
            }
        }
    }
    drop(stdin);
    let status = child.wait();
    let stop = if started { hooks.stop() } else { Ok(()) };
    let stderr = err_reader.join().unwrap_or_default();
    if let Some(e) = hook_err {
        return Err(PeerFailure::Failed(e));
    }
    stop.map_err(PeerFailure::Failed)?;
    let status =
        status.map_err(|e| PeerFailure::Failed(format!("waiting for `{program}`: {e}")))?;
    Ok(ProgramOutput {
        stdout,
        stderr,
        code: status.code(),
    })
}

fn is_ready(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line.trim()).is_ok_and(|v| v["event"] == "ready")
}

fn secs(x: f64) -> String {
    format!("{x}")
}

/// Arguments of `python -c SCRIPT ...` for onnxruntime.
pub fn onnxruntime_args(
    model: &Path,
    threads: usize,
    batch: usize,
    m: &Measurement,
) -> Vec<String> {
    vec![
        "-c".into(),
        ONNXRUNTIME_SCRIPT.into(),
        model.display().to_string(),
        "--threads".into(),
        threads.to_string(),
        "--batch".into(),
        batch.to_string(),
        "--warmup-iterations".into(),
        m.warmup_iterations.to_string(),
        "--warmup-seconds".into(),
        secs(m.warmup_seconds),
        "--min-seconds".into(),
        secs(m.min_seconds),
        "--min-batches".into(),
        m.min_batches.to_string(),
        "--max-seconds".into(),
        secs(m.max_seconds.unwrap_or(0.0)),
        "--handshake".into(),
    ]
}

/// What the onnxruntime driver reported.
#[derive(Clone, Debug, PartialEq)]
pub struct OrtReport {
    pub latencies_s: Vec<f64>,
    pub duration_s: f64,
    pub version: String,
}

/// Reads the driver's JSON lines: the `done` event, or the failure it
/// reported (a missing onnxruntime module makes the point `skipped`).
pub fn parse_onnxruntime(out: &ProgramOutput) -> Result<OrtReport, PeerFailure> {
    for line in out.stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            continue;
        };
        match v["event"].as_str() {
            Some("done") => {
                let lat: Option<Vec<f64>> = v["latencies_s"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_f64()).collect());
                let lat = lat.filter(|l| !l.is_empty()).ok_or_else(|| {
                    PeerFailure::Failed("onnxruntime driver reported no latencies".into())
                })?;
                return Ok(OrtReport {
                    duration_s: v["duration_s"].as_f64().unwrap_or_else(|| lat.iter().sum()),
                    latencies_s: lat,
                    version: v["onnxruntime"].as_str().unwrap_or("?").to_string(),
                });
            }
            Some("error") => {
                let msg = v["message"].as_str().unwrap_or("unknown error").to_string();
                return Err(if v["kind"] == "missing-module" {
                    PeerFailure::Unavailable(format!("onnxruntime is not importable: {msg}"))
                } else {
                    PeerFailure::Failed(format!("onnxruntime: {msg}"))
                });
            }
            _ => {}
        }
    }
    Err(PeerFailure::Failed(format!(
        "onnxruntime driver exited with {} without results: {}",
        out.code
            .map_or("a signal".to_string(), |c| format!("code {c}")),
        tail(&out.stderr, 3)
    )))
}

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
    fn onnxruntime_reports_and_errors_parse() {
        let out = ProgramOutput {
            stdout: "{\"event\": \"ready\"}\n{\"event\": \"done\", \"latencies_s\": [0.5, 0.25], \"duration_s\": 0.8, \"onnxruntime\": \"1.20.0\"}\n".into(),
            ..Default::default()
        };
        let r = parse_onnxruntime(&out).unwrap();
        assert_eq!(r.latencies_s, vec![0.5, 0.25]);
        assert_eq!(r.version, "1.20.0");
        let missing = ProgramOutput {
            stdout: "{\"event\": \"error\", \"kind\": \"missing-module\", \"message\": \"No module named 'onnxruntime'\"}\n".into(),
            code: Some(3),
            ..Default::default()
        };
        assert!(matches!(
            parse_onnxruntime(&missing),
            Err(PeerFailure::Unavailable(_))
        ));
        let crashed = ProgramOutput {
            stderr: "Traceback\nMemoryError\n".into(),
            code: Some(1),
            ..Default::default()
        };
        let e = parse_onnxruntime(&crashed).unwrap_err();
        assert!(e.reason().contains("MemoryError"), "{e}");
    }

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
