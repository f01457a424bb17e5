//! joulebench against onnxruntime on the same ONNX files and inputs:
//! scripts/make_onnx_models.py builds ResNet-50 v1.5, a MobileNet-v2-style
//! net (depthwise and grouped convs), a net of biased convs without BN (with
//! external weights) and an opset-9 net, with onnxruntime's outputs; the CLI
//! (`infer --input --output`) must match every element within
//! 1e-4 * max(1, |reference|).

use crate::common;
use joulebench::harness::npy;
use std::path::{Path, PathBuf};

const MODELS: &[&str] = &["resnet50", "mobilenet", "biased", "legacy"];

fn models() -> &'static PathBuf {
    common::python::onnx_models()
}

fn infer(model: &Path, input: &Path, output: &Path, extra: &[&str]) {
    let out = common::cli::bin()
        .args(["infer", "--model"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args([
            "--iterations",
            "1",
            "--warmup",
            "0",
            "--no-peak",
            "--format",
            "json",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "infer {} failed: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Largest |got - want| / max(1, |want|), after checking dims.
fn worst(got: &Path, want: &Path) -> f32 {
    let (gd, g) = npy::read(got).unwrap();
    let (wd, w) = npy::read(want).unwrap();
    assert_eq!(gd, wd, "{} dims", got.display());
    g.iter()
        .zip(&w)
        .map(|(a, b)| {
            assert!(a.is_finite(), "{} holds {a}", got.display());
            (a - b).abs() / b.abs().max(1.0)
        })
        .fold(0.0, f32::max)
}

#[test]
fn every_model_matches_onnxruntime_within_1e4() {
    let dir = models();
    for (name, extra) in MODELS.iter().map(|m| (*m, &["--threads", "2"][..])).chain([
        ("resnet50", &["--no-fusion", "--conv", "im2col"][..]),
        ("resnet50", &["--conv", "winograd", "--threads", "2"][..]),
        ("resnet50", &["--conv", "winograd4", "--threads", "2"][..]),
    ]) {
        let ours = dir.join(format!("{name}.ours-{}.npy", extra.join("")));
        infer(
            &dir.join(format!("{name}.onnx")),
            &dir.join(format!("{name}.input.npy")),
            &ours,
            extra,
        );
        let err = worst(&ours, &dir.join(format!("{name}.output.npy")));
        println!("{name} {extra:?}: max relative difference {err:.2e}");
        assert!(err <= 1e-4, "{name} {extra:?}: {err}");
    }
}

#[test]
fn a_batch_of_one_gives_the_first_image_of_the_batch_of_two() {
    let dir = models();
    // Slice image 0 of mobilenet's input into its own file.
    let (dims, x) = npy::read(&dir.join("mobilenet.input.npy")).unwrap();
    let per: usize = dims[1..].iter().product();
    let one = dir.join("mobilenet.one.npy");
    let mut d1 = dims.clone();
    d1[0] = 1;
    npy::write(&one, &d1, &x[..per]).unwrap();
    let out1 = dir.join("mobilenet.one.out.npy");
    infer(&dir.join("mobilenet.onnx"), &one, &out1, &[]);
    let (od, y1) = npy::read(&out1).unwrap();
    let (_, want) = npy::read(&dir.join("mobilenet.output.npy")).unwrap();
    assert_eq!(od, vec![1, 10]);
    for (a, b) in y1.iter().zip(&want[..10]) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn inspect_reports_the_models_work_and_shapes() {
    let dir = models();
    let out = common::cli::bin()
        .arg("inspect")
        .arg(dir.join("resnet50.onnx"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["supported"], true);
    assert_eq!(v["input_shape"], "N x 3 x 224 x 224");
    assert_eq!(v["output_shape"], "N x 1000");
    assert_eq!(v["ops"]["Conv"], 53);
    // 4.089 GMAC, as the built-in ResNet-50 and published figures have it.
    let g = v["gflop_per_image"].as_f64().unwrap();
    assert!((g - 8.178).abs() < 0.01, "{g}");
}

#[test]
fn an_input_of_the_wrong_shape_is_a_clear_error() {
    let dir = models();
    let bad = dir.join("wrong.npy");
    npy::write(&bad, &[1, 3, 32, 32], &vec![0.0; 3 * 32 * 32]).unwrap();
    let out = common::cli::bin()
        .args(["infer", "--model"])
        .arg(dir.join("mobilenet.onnx"))
        .arg("--input")
        .arg(&bad)
        .args(["--iterations", "1", "--no-peak"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong.npy") && err.contains("N x 3 x 64 x 64"),
        "{err}"
    );
}

#[test]
fn a_suite_runs_onnx_files_named_relative_to_it() {
    let dir = models();
    let sub = dir.join("suites");
    std::fs::create_dir_all(&sub).unwrap();
    let suite = sub.join("onnx.toml");
    std::fs::write(
        &suite,
        r#"name = "onnx"
[defaults]
warmup_iterations = 1
min_seconds = 0
min_batches = 3
power = "none"
[[experiment]]
name = "files"
models = ["../mobilenet.onnx", "../legacy.onnx", "tiny"]
batch = [1, 2]
"#,
    )
    .unwrap();
    let out = common::cli::bin()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(dir.join("results"))
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = walk_find(&dir.join("results"), "results.csv").expect("results.csv");
    let mut r = csv::Reader::from_path(&csv).unwrap();
    let h = r.headers().unwrap().clone();
    let col = h.iter().position(|c| c == "model").unwrap();
    let gcol = h.iter().position(|c| c == "gflop_per_image").unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6);
    let mob: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[col] == "../mobilenet.onnx")
        .collect();
    assert_eq!(mob.len(), 2);
    assert!(mob[0][gcol].parse::<f64>().unwrap() > 0.0);

    // A file with an unsupported operator stops the suite before it runs.
    // Op names are length-prefixed protobuf strings: patch in a same-length name.
    let (bytes, name) = (
        std::fs::read(dir.join("legacy.onnx")).unwrap(),
        "broken.onnx",
    );
    let patched: Vec<u8> = replace_bytes(&bytes, b"Softmax", b"Sofxmax");
    std::fs::write(dir.join(name), patched).unwrap();
    std::fs::write(
        &suite,
        std::fs::read_to_string(&suite)
            .unwrap()
            .replace("../legacy.onnx", "../broken.onnx"),
    )
    .unwrap();
    let out = common::cli::bin()
        .arg("run")
        .arg(&suite)
        .arg("--out")
        .arg(dir.join("results2"))
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("onnx.toml:") && err.contains("Sofxmax"),
        "{err}"
    );
    assert!(!dir.join("results2").exists(), "nothing may run");
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = hay.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
    out
}

fn walk_find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = walk_find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}
