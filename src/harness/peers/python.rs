//! Peer engines driven by small Python scripts embedded in the binary
//! (scripts/peers/): onnxruntime, OpenVINO, LiteRT with XNNPACK and ncnn.
//! Each runs as `python -c "<peer_common.py><driver>" ARGS`, measures by the
//! suite's rules behind the `ready` handshake and prints JSON lines
//! (peer_common.py's docstring has the protocol), read back here defensively:
//! everything a script prints is untrusted.

use super::process::{tail, ProgramOutput};
use super::{Engine, PeerFailure};
use crate::harness::suite::Measurement;
use std::path::Path;

/// Shared by every driver; embedded ahead of the driver's own file.
pub const COMMON: &str = include_str!("../../../scripts/peers/peer_common.py");
pub const ONNXRUNTIME: &str = include_str!("../../../scripts/peers/onnxruntime_bench.py");
pub const OPENVINO: &str = include_str!("../../../scripts/peers/openvino_bench.py");
pub const LITERT: &str = include_str!("../../../scripts/peers/litert_bench.py");
pub const NCNN: &str = include_str!("../../../scripts/peers/ncnn_bench.py");
/// ONNX -> ncnn / LiteRT conversion and its check (convert.rs runs it).
pub const CONVERT: &str = include_str!("../../../scripts/peers/convert_model.py");

/// The program text given to `python -c`.
pub fn program(script: &str) -> String {
    format!("{COMMON}\n{script}")
}

/// A Python-driven engine: its driver, its pip package, its row label.
#[derive(Clone, Copy, Debug)]
pub struct Driver {
    pub engine: Engine,
    pub script: &'static str,
    pub install: &'static str,
}

impl Driver {
    pub fn of(engine: Engine) -> Option<Driver> {
        let (script, install) = match engine {
            Engine::Onnxruntime => (ONNXRUNTIME, "pip install onnxruntime numpy"),
            Engine::Openvino => (OPENVINO, "pip install openvino numpy"),
            Engine::Litert => (LITERT, "pip install ai-edge-litert numpy"),
            Engine::Ncnn => (NCNN, "pip install ncnn numpy"),
            _ => return None,
        };
        Some(Driver {
            engine,
            script,
            install,
        })
    }

    /// What to do when Python or its module is missing, for the skipped row.
    pub fn hint(&self) -> String {
        format!(
            "install Python 3 with `{}` (scripts/requirements-peers.txt), and set python = \"/path/to/python\" in the suite or JOULEBENCH_PYTHON",
            self.install
        )
    }

    /// `python -c PROGRAM` arguments for one point.
    pub fn args(
        &self,
        model: &Path,
        threads: usize,
        batch: usize,
        chw: Option<(usize, usize, usize)>,
        m: &Measurement,
    ) -> Vec<String> {
        let mut v = vec![
            "-c".into(),
            program(self.script),
            model.display().to_string(),
            "--threads".into(),
            threads.to_string(),
            "--batch".into(),
            batch.to_string(),
            "--warmup-iterations".into(),
            m.warmup_iterations.to_string(),
            "--warmup-seconds".into(),
            format!("{}", m.warmup_seconds),
            "--min-seconds".into(),
            format!("{}", m.min_seconds),
            "--min-batches".into(),
            m.min_batches.to_string(),
            "--max-seconds".into(),
            format!("{}", m.max_seconds.unwrap_or(0.0)),
            "--handshake".into(),
        ];
        if let Some((c, h, w)) = chw {
            v.push("--chw".into());
            v.push(format!("{c},{h},{w}"));
        }
        v
    }

    /// The row's `kernel`: engine, version and the backend it ran.
    pub fn kernel(&self, version: &str) -> String {
        match self.engine {
            Engine::Onnxruntime => format!("onnxruntime {version} CPUExecutionProvider"),
            Engine::Openvino => format!("openvino {version} CPU"),
            Engine::Litert => format!("litert {version} XNNPACK"),
            _ => format!("ncnn {version}"),
        }
    }
}

/// What a driver reported for a measured point.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub latencies_s: Vec<f64>,
    pub duration_s: f64,
    pub version: String,
    /// The engine's settings as it reported them after loading, in its order.
    pub settings: Vec<(String, String)>,
    /// Engine runs per batch (ncnn: one per image; others 1).
    pub runs_per_batch: usize,
}

/// Longest text kept of one setting or a version: a script's output is untrusted.
const MAX_FIELD: usize = 200;

/// `v` as one line of at most MAX_FIELD characters, without control characters.
fn clean(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "none".into(),
        other => other.to_string(),
    };
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FIELD)
        .collect()
}

fn settings_of(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|kv| {
                    let kv = kv.as_array()?;
                    match kv.as_slice() {
                        [k, v] => Some((clean(k), clean(v))),
                        _ => None,
                    }
                })
                .take(64)
                .collect()
        })
        .unwrap_or_default()
}

/// `key=value` pairs joined with `; `, as they go into the row.
pub fn settings_text(settings: &[(String, String)]) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The error event of a driver, if it printed one: a missing module makes
/// the point `skipped` (with the install command), anything else `failed`.
pub fn error_event(what: &str, v: &serde_json::Value) -> Option<PeerFailure> {
    if v["event"] != "error" {
        return None;
    }
    let msg = v["message"]
        .as_str()
        .map_or("unknown error".to_string(), |m| clean(&m.into()));
    Some(if v["kind"] == "missing-module" {
        PeerFailure::Unavailable(format!("{what}: a Python package is missing: {msg}"))
    } else {
        let kind = v["kind"].as_str().map(|k| clean(&k.into()));
        PeerFailure::Failed(format!(
            "{what} ({}): {msg}",
            kind.as_deref().unwrap_or("error")
        ))
    })
}

/// Reads a driver's `done` event (or its error).
pub fn parse_report(engine: Engine, out: &ProgramOutput) -> Result<Report, PeerFailure> {
    let what = engine.name();
    for line in out.stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            continue;
        };
        if let Some(f) = error_event(what, &v) {
            return Err(f);
        }
        if v["event"] != "done" {
            continue;
        }
        let lat: Vec<f64> = v["latencies_s"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        if lat.is_empty() {
            return Err(PeerFailure::Failed(format!(
                "{what} driver reported no latencies"
            )));
        }
        if let Some(bad) = lat.iter().find(|x| !x.is_finite() || **x <= 0.0) {
            return Err(PeerFailure::Failed(format!(
                "{what} driver reported a batch latency of {bad} s"
            )));
        }
        let sum: f64 = lat.iter().sum();
        let duration_s = v["duration_s"]
            .as_f64()
            .filter(|d| d.is_finite() && *d >= sum * 0.999)
            .unwrap_or(sum);
        let runs_per_batch = v["runs_per_batch"]
            .as_u64()
            .and_then(|r| usize::try_from(r).ok())
            .filter(|r| *r >= 1)
            .unwrap_or(1);
        return Ok(Report {
            latencies_s: lat,
            duration_s,
            version: v["version"]
                .as_str()
                .map_or("?".into(), |s| clean(&s.into())),
            settings: settings_of(&v["settings"]),
            runs_per_batch,
        });
    }
    Err(PeerFailure::Failed(format!(
        "{what} driver exited with {} without results: {}",
        out.code
            .map_or("a signal".to_string(), |c| format!("code {c}")),
        tail(&out.stderr, 3)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stdout: &str, code: i32) -> ProgramOutput {
        ProgramOutput {
            stdout: stdout.into(),
            code: Some(code),
            ..Default::default()
        }
    }

    #[test]
    fn a_done_event_gives_latencies_version_and_settings() {
        let r = parse_report(
            Engine::Ncnn,
            &out(
                "{\"event\": \"ready\"}\nnoise\n{\"event\": \"done\", \"latencies_s\": [0.5, 0.25], \"duration_s\": 0.8, \"version\": \"1.0.2\", \"settings\": [[\"num_threads\", 2], [\"use_fp16_storage\", false], [\"bad\"], [\"x\", \"a\\nb\"]], \"runs_per_batch\": 8}\n",
                0,
            ),
        )
        .unwrap();
        assert_eq!(r.latencies_s, vec![0.5, 0.25]);
        assert_eq!(r.duration_s, 0.8);
        assert_eq!(r.version, "1.0.2");
        assert_eq!(r.runs_per_batch, 8);
        assert_eq!(
            settings_text(&r.settings),
            "num_threads=2; use_fp16_storage=false; x=a b"
        );
    }

    #[test]
    fn hostile_or_broken_reports_fail_clearly() {
        let e = parse_report(
            Engine::Openvino,
            &out("{\"event\": \"done\", \"latencies_s\": []}\n", 0),
        )
        .unwrap_err();
        assert!(e.reason().contains("no latencies"), "{e}");
        let e = parse_report(
            Engine::Openvino,
            &out("{\"event\": \"done\", \"latencies_s\": [0.1, -1]}\n", 0),
        )
        .unwrap_err();
        assert!(e.reason().contains("-1"), "{e}");
        // A duration shorter than the batches it timed is not believed.
        let r = parse_report(
            Engine::Openvino,
            &out(
                "{\"event\": \"done\", \"latencies_s\": [0.1, 0.1], \"duration_s\": 0.01, \"settings\": 5}\n",
                0,
            ),
        )
        .unwrap();
        assert!((r.duration_s - 0.2).abs() < 1e-12);
        assert!(r.settings.is_empty());
        assert_eq!(r.version, "?");
        let e = parse_report(
            Engine::Litert,
            &ProgramOutput {
                stderr: "Traceback\nMemoryError\n".into(),
                code: Some(1),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.reason().contains("MemoryError"), "{e}");
    }

    #[test]
    fn a_missing_module_skips_and_other_errors_fail() {
        let e = parse_report(
            Engine::Openvino,
            &out("{\"event\": \"error\", \"kind\": \"missing-module\", \"message\": \"No module named 'openvino'; install with `pip install openvino numpy`\"}\n", 3),
        )
        .unwrap_err();
        assert!(matches!(e, PeerFailure::Unavailable(_)), "{e}");
        assert!(e.reason().contains("pip install openvino"), "{e}");
        let e = parse_report(
            Engine::Openvino,
            &out(
                "{\"event\": \"error\", \"kind\": \"precision\", \"message\": \"bf16 layers\"}\n",
                2,
            ),
        )
        .unwrap_err();
        assert!(matches!(e, PeerFailure::Failed(_)), "{e}");
        assert!(
            e.reason().contains("precision") && e.reason().contains("bf16"),
            "{e}"
        );
    }

    #[test]
    fn args_carry_the_measurement_rules_and_the_image_shape() {
        let m = Measurement::default();
        let d = Driver::of(Engine::Ncnn).unwrap();
        let a = d.args(Path::new("m.param"), 2, 8, Some((3, 224, 224)), &m);
        assert_eq!(a[0], "-c");
        assert!(a[1].starts_with(COMMON) && a[1].ends_with(NCNN));
        let s = a[2..].join(" ");
        assert!(s.starts_with("m.param --threads 2 --batch 8"), "{s}");
        assert!(
            s.contains(&format!("--min-batches {}", m.min_batches)),
            "{s}"
        );
        assert!(s.contains("--handshake --chw 3,224,224"), "{s}");
        assert!(Driver::of(Engine::Joulebench).is_none());
        assert_eq!(d.kernel("1.0"), "ncnn 1.0");
    }
}
