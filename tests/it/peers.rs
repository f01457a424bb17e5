//! Peer engines in suites: the output parsers of TFLite's benchmark_model and
//! ArmNN's ExecuteNetwork on captured text (tests/fixtures/peers/), the
//! command adapters end to end with stand-in programs that print those
//! captures, missing programs (skipped rows, the rest of the suite runs),
//! onnxruntime for real through the Python venv, and tract (with
//! `--features tract`) against joulebench's output on the same ONNX model.

use crate::common;
use joulebench::harness::peers::command::{parse_benchmark_model, parse_execute_network};
use joulebench::harness::peers::PeerFailure;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/peers")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn benchmark_model_statistics_are_read_from_the_measured_run() {
    // TFLite 2.x: log-prefixed lines; the second count= line is the measured run.
    let t = parse_benchmark_model(&fixture("benchmark_model_tf2.txt")).unwrap();
    assert_eq!(t.count, 64);
    assert!(close(t.mean, 0.844245), "{t:?}");
    assert!(close(t.min, 0.839604) && close(t.max, 0.860487), "{t:?}");
    assert!(close(t.stdev, 0.003541), "{t:?}");
    assert_eq!(t.median, None);
    // TFLite 1.x: no prefix.
    let t = parse_benchmark_model(&fixture("benchmark_model_tf1.txt")).unwrap();
    assert_eq!(t.count, 63);
    assert!(close(t.mean, 0.0159466), "{t:?}");
    // Anything else is a failure that quotes the output.
    let e = parse_benchmark_model("ERROR: Could not open 'x.tflite'.\n").unwrap_err();
    assert!(matches!(e, PeerFailure::Failed(_)));
    assert!(e.reason().contains("Could not open"), "{e}");
}

#[test]
fn execute_network_inference_times_are_read_per_inference() {
    let lat = parse_execute_network(&fixture("execute_network_tflite.txt")).unwrap();
    let want = [131.40, 96.15, 95.84, 95.55, 96.07];
    assert_eq!(lat.len(), want.len());
    for (a, b) in lat.iter().zip(want) {
        assert!(close(*a, b * 1e-3), "{lat:?}");
    }
    let e = parse_execute_network(&fixture("execute_network_error.txt")).unwrap_err();
    assert!(e.reason().contains("Failed to load network"), "{e}");
}

/// Runs `joulebench run SUITE --out OUT --quiet`; returns (exit code, stderr).
fn run_suite(suite: &Path, out: &Path) -> (Option<i32>, String) {
    let o = common::cli::bin()
        .arg("run")
        .arg(suite)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// results.csv as maps of column name to value.
fn rows(out: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let csv = find(out, "results.csv").expect("results.csv");
    let mut r = csv::Reader::from_path(&csv).unwrap();
    let h = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            h.iter()
                .zip(rec.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn f(row: &std::collections::HashMap<String, String>, k: &str) -> f64 {
    row[k]
        .parse()
        .unwrap_or_else(|_| panic!("{k} = {:?}", row[k]))
}

const MEASURE: &str = "[defaults]\nwarmup_iterations = 1\nwarmup_seconds = 0\nmin_seconds = 0\nmin_batches = 3\npower = \"none\"\n";

#[test]
fn missing_programs_skip_their_points_and_the_rest_of_the_suite_runs() {
    let dir = common::cli::tmpdir("peers-missing");
    std::fs::write(dir.join("m.tflite"), b"not a real model").unwrap();
    let suite = dir.join("s.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"missing\"\n{MEASURE}\n[[experiment]]\nname = \"e\"\nmodels = [\"tiny\"]\n\
             engine = [\"joulebench\", \"tflite\", \"armnn\", \"onnxruntime\", \"tract\"]\n\
             tflite_model = \"m.tflite\"\n\
             benchmark_model = \"/nonexistent/benchmark_model\"\n\
             execute_network = \"no-such-ExecuteNetwork-here\"\n\
             python = \"/nonexistent/python3\"\n"
        ),
    )
    .unwrap();
    let (code, err) = run_suite(&suite, &dir.join("out"));
    assert_eq!(code, Some(0), "{err}");
    let rows = rows(&dir.join("out"));
    assert_eq!(rows.len(), 5);
    let by = |e: &str| {
        rows.iter()
            .find(|r| r["engine"] == e)
            .unwrap_or_else(|| panic!("no {e} row"))
    };
    let jb = by("joulebench");
    assert_eq!(jb["status"], "ok");
    assert!(f(jb, "images_per_s") > 0.0);
    for e in ["tflite", "armnn", "onnxruntime"] {
        let r = by(e);
        assert_eq!(r["status"], "skipped", "{r:?}");
        let why = if e == "onnxruntime" {
            "ONNX files"
        } else {
            "not found"
        };
        assert!(r["warnings"].contains(why), "{r:?}");
        assert_eq!(f(r, "iterations"), 0.0);
        assert!(
            err.contains(&format!("e/tiny/{e}-t1-b1-r0: skipped")),
            "{err}"
        );
    }
    assert!(by("tflite")["warnings"].contains("benchmark_model"));
    // tract: not compiled in, or (with the feature) not an ONNX file.
    let t = by("tract");
    assert_eq!(t["status"], "skipped", "{t:?}");
    if cfg!(feature = "tract") {
        assert!(t["warnings"].contains("ONNX"), "{t:?}");
    } else {
        assert!(t["warnings"].contains("--features tract"), "{t:?}");
    }
    // The ids of peer points leave out joulebench's knobs.
    assert_eq!(jb["point"], "e/tiny/t1-b1-auto-auto-auto-fused-r0");
    assert_eq!(by("armnn")["point"], "e/tiny/armnn-t1-b1-r0");

    // --resume runs the skipped points again and keeps the measured one.
    let run_dir = find(&dir.join("out"), "results.csv")
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let o = common::cli::bin()
        .arg("run")
        .arg(&suite)
        .arg("--resume")
        .arg(&run_dir)
        .arg("--quiet")
        .output()
        .unwrap();
    let err2 = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err2}");
    assert!(err2.contains("e/tiny/tflite-t1-b1-r0: skipped"), "{err2}");
    let again = self::rows(&dir.join("out"));
    assert_eq!(again.len(), 5);
    let jb2 = again.iter().find(|r| r["engine"] == "joulebench").unwrap();
    assert_eq!(jb2["timestamp_utc"], jb["timestamp_utc"]);
}

/// A stand-in for a benchmark program: logs its arguments, prints a capture.
fn fake_tool(dir: &Path, name: &str, capture: &str, to_stderr: bool) -> PathBuf {
    let cap = dir.join(format!("{name}.out"));
    std::fs::write(&cap, fixture(capture)).unwrap();
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\ncat '{}'{}\n",
            dir.join(format!("{name}.args")).display(),
            cap.display(),
            if to_stderr { " >&2" } else { "" }
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

#[cfg(unix)]
#[test]
fn command_engines_map_threads_and_batch_to_flags_and_read_their_output() {
    let dir = common::cli::tmpdir("peers-fake");
    std::fs::write(dir.join("m.tflite"), b"stand-in").unwrap();
    let bm = fake_tool(&dir, "benchmark_model", "benchmark_model_tf2.txt", true);
    let en = fake_tool(&dir, "ExecuteNetwork", "execute_network_tflite.txt", false);
    let suite = dir.join("s.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"fake\"\n{MEASURE}\n[[experiment]]\nname = \"e\"\nmodels = [\"tiny\"]\n\
             engine = [\"tflite\", \"armnn\"]\nthreads = 2\nbatch = 8\nallow_oversubscribe = true\n\
             tflite_model = \"m.tflite\"\npeer_input = \"input\"\n\
             benchmark_model = \"{}\"\nexecute_network = \"{}\"\n",
            bm.display(),
            en.display()
        ),
    )
    .unwrap();
    let (code, err) = run_suite(&suite, &dir.join("out"));
    assert_eq!(code, Some(0), "{err}");
    let rows = rows(&dir.join("out"));
    assert_eq!(rows.len(), 2);
    let tfl = rows.iter().find(|r| r["engine"] == "tflite").unwrap();
    assert_eq!(tfl["status"], "ok", "{tfl:?}");
    assert_eq!(f(tfl, "iterations"), 64.0);
    assert!(close(f(tfl, "images_per_s"), 8.0 / 0.844245), "{tfl:?}");
    assert!(close(f(tfl, "latency_ms_mean"), 844.245), "{tfl:?}");
    assert!(tfl["latency_ms_p90"].eq_ignore_ascii_case("nan"), "{tfl:?}");
    assert!(tfl["warnings"].contains("whole program run"), "{tfl:?}");
    let args = std::fs::read_to_string(dir.join("benchmark_model.args")).unwrap();
    assert!(args.contains("--num_threads=2"), "{args}");
    assert!(args.contains("--num_runs=3"), "{args}");
    assert!(args.contains("--input_layer=input"), "{args}");
    assert!(args.contains("--input_layer_shape=8,"), "{args}");
    assert!(args.contains("m.tflite"), "{args}");

    let arm = rows.iter().find(|r| r["engine"] == "armnn").unwrap();
    assert_eq!(arm["status"], "ok", "{arm:?}");
    // Five inferences printed, the one warm-up dropped.
    assert_eq!(f(arm, "iterations"), 4.0);
    let mean = (96.15 + 95.84 + 95.55 + 96.07) / 4.0;
    assert!(close(f(arm, "latency_ms_mean"), mean), "{arm:?}");
    assert!(
        close(f(arm, "images_per_s"), 8.0 / (mean * 1e-3)),
        "{arm:?}"
    );
    let args = std::fs::read_to_string(dir.join("ExecuteNetwork.args")).unwrap();
    assert!(args.contains("--number-of-threads 2"), "{args}");
    assert!(args.contains("-c CpuAcc"), "{args}");
    assert!(args.contains("--iterations 4"), "{args}");
    assert!(args.contains("--input-tensor-shape 8,"), "{args}");

    // A tool that fails: a failed row, and the suite still exits 0.
    let bad = fake_tool(&dir, "bad_en", "execute_network_error.txt", true);
    std::fs::write(
        &suite,
        std::fs::read_to_string(&suite)
            .unwrap()
            .replace(&en.display().to_string(), &bad.display().to_string()),
    )
    .unwrap();
    let (code, err) = run_suite(&suite, &dir.join("out2"));
    assert_eq!(code, Some(0), "{err}");
    let rows = self::rows(&dir.join("out2"));
    let arm = rows.iter().find(|r| r["engine"] == "armnn").unwrap();
    assert_eq!(arm["status"], "failed", "{arm:?}");
    assert!(
        arm["warnings"].contains("Failed to load network"),
        "{arm:?}"
    );
}

#[test]
fn a_suite_without_the_model_file_a_peer_needs_is_invalid() {
    let dir = common::cli::tmpdir("peers-invalid");
    let suite = dir.join("s.toml");
    std::fs::write(
        &suite,
        "name = \"bad\"\n[[experiment]]\nmodels = [\"tiny\"]\nengine = [\"tflite\", \"tfl1te\"]\ntflite_model = \"nope.tflite\"\n",
    )
    .unwrap();
    let (code, err) = run_suite(&suite, &dir.join("out"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("s.toml:4:"), "{err}");
    assert!(err.contains("engine `tfl1te` is not known"), "{err}");
    assert!(
        err.contains("nope.tflite") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!dir.join("out").exists());
}

/// MobileNet (depthwise, grouped convs) from scripts/make_onnx_models.py.
fn mobilenet() -> &'static PathBuf {
    common::python::onnx_models()
}

#[test]
fn onnxruntime_and_tract_measure_the_same_onnx_file_as_joulebench() {
    let models = mobilenet();
    let dir = common::cli::tmpdir("peers-ort");
    let suite = dir.join("s.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"ort\"\n{MEASURE}\n[[experiment]]\nname = \"e\"\nmodels = [\"{}\"]\n\
             engine = [\"joulebench\", \"onnxruntime\", \"tract\"]\nbatch = [1, 2]\n\
             python = \"{}\"\n",
            models.join("mobilenet.onnx").display(),
            common::python::python().display()
        ),
    )
    .unwrap();
    let (code, err) = run_suite(&suite, &dir.join("out"));
    assert_eq!(code, Some(0), "{err}");
    let rows = rows(&dir.join("out"));
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let engine = r["engine"].as_str();
        if engine == "tract" && !cfg!(feature = "tract") {
            assert_eq!(r["status"], "skipped", "{r:?}");
            continue;
        }
        assert_eq!(r["status"], "ok", "{r:?}");
        assert!(f(r, "iterations") >= 3.0, "{r:?}");
        assert!(f(r, "images_per_s") > 0.0, "{r:?}");
        assert!(f(r, "gflop_per_image") > 0.0, "{r:?}");
        assert!(f(r, "latency_ms_p50") > 0.0, "{r:?}");
        assert!(f(r, "window_end_s") > f(r, "window_start_s"), "{r:?}");
        match engine {
            "onnxruntime" => {
                assert!(r["kernel"].starts_with("onnxruntime "), "{r:?}");
                assert!(r["point"].contains("/onnxruntime-t1-b"), "{r:?}");
            }
            "tract" => assert!(r["kernel"].starts_with("tract-onnx"), "{r:?}"),
            _ => assert_eq!(engine, "joulebench"),
        }
    }
    // Every timed batch of the onnxruntime points is in samples.csv.
    let samples = std::fs::read_to_string(find(&dir.join("out"), "samples.csv").unwrap()).unwrap();
    for r in rows.iter().filter(|r| r["engine"] == "onnxruntime") {
        let n = samples
            .lines()
            .filter(|l| l.starts_with(&r["point"]))
            .count();
        assert_eq!(n as f64, f(r, "iterations"), "{}", r["point"]);
    }
}

#[cfg(feature = "tract")]
#[test]
fn tract_output_matches_joulebench_within_1e4() {
    use joulebench::engine::session::{Session, SessionOptions};
    use joulebench::harness::model_source;
    use joulebench::harness::peers::tract_engine::TractModel;
    let path = mobilenet().join("mobilenet.onnx");
    let model = model_source::load(path.to_str().unwrap()).unwrap();
    let batch = 2;
    let dims = model.input.dims(batch);
    let x = common::Rng::new(7).signed_vec(dims.iter().product());
    let mut sess = Session::new(
        &model.graph,
        &SessionOptions {
            batch,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let mut xe = vec![0.0; x.len()];
    model.input.to_engine(&x, &mut xe);
    let y = sess.run(&xe).unwrap();
    let mut want = vec![0.0; y.len()];
    model.output().from_engine(y, &mut want);
    for threads in [1, 2] {
        let mut t = TractModel::load(&path, &dims, threads).unwrap();
        let got = t.run(&x).unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "threads {threads}, element {i}: tract {a}, joulebench {b}"
            );
        }
    }
}

#[test]
fn the_shipped_peers_suite_is_valid_with_its_model_made() {
    let dir = common::cli::tmpdir("peers-shipped");
    let models = dir.join("models");
    common::python::run(&[
        "scripts/make_onnx_models.py",
        models.to_str().unwrap(),
        "--only",
        "resnet50",
        "--batch",
        "1",
    ]);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/peers-resnet50.toml"),
    )
    .unwrap();
    let path = dir.join("peers-resnet50.toml");
    let s = joulebench::harness::suite::Suite::parse_with_cores(&text, &path, 2)
        .unwrap_or_else(|e| panic!("{e}"));
    let pts = s.points();
    // 6 engines x 2 threads x 2 batches
    assert_eq!(pts.len(), 24);
    let ids: Vec<&str> = pts.iter().map(|p| p.id.as_str()).collect();
    assert!(
        ids.contains(&"engines/models/resnet50.onnx/onnxruntime-t2-b8-r0"),
        "{ids:?}"
    );
    for e in ["tract", "openvino", "litert", "ncnn"] {
        let id = format!("engines/models/resnet50.onnx/{e}-t1-b1-r0");
        assert!(ids.contains(&id.as_str()), "{ids:?}");
    }
}
