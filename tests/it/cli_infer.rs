//! The command-line contract of `joulebench models` and `joulebench infer`.

use serde_json::Value;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_joulebench"))
        .args(args)
        .env_remove("JOULEBENCH_KERNEL")
        .output()
        .expect("running joulebench")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON value on stdout")
}

#[test]
fn models_lists_the_zoo_with_costs() {
    let v = json(&run(&["models", "--format", "json"]));
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 9);
    let r50 = list
        .iter()
        .find(|m| m["name"] == "resnet50")
        .expect("resnet50");
    assert_eq!(r50["parameters"], 25_557_032);
    let g = r50["gflops_per_image"].as_f64().unwrap();
    assert!((g - 8.178).abs() < 0.01, "{g}");
}

#[test]
fn infer_reports_every_contract_key_and_a_profile() {
    let v = json(&run(&[
        "infer",
        "--model",
        "tiny",
        "--batch",
        "2",
        "--threads",
        "2",
        "--iterations",
        "5",
        "--warmup",
        "1",
        "--no-peak",
        "--profile",
        "--conv-layer",
        "block.conv1=im2col",
        "--format",
        "json",
    ]));
    for key in [
        "model",
        "batch",
        "threads",
        "images_per_s",
        "latency_ms_p50",
        "latency_ms_p90",
        "latency_ms_p99",
        "gflops",
        "iterations",
    ] {
        assert!(!v[key].is_null(), "missing {key}");
    }
    assert_eq!(v["iterations"], 5);
    assert_eq!(v["batch"], 2);
    assert!(v["images_per_s"].as_f64().unwrap() > 0.0);
    let p50 = v["latency_ms_p50"].as_f64().unwrap();
    let p99 = v["latency_ms_p99"].as_f64().unwrap();
    assert!(p50 > 0.0 && p99 >= p50);
    let layers = v["layers"].as_array().expect("profile");
    let conv1 = layers
        .iter()
        .find(|l| l["name"] == "block.conv1")
        .expect("block.conv1 in profile");
    assert_eq!(conv1["algorithm"], "im2col", "the per-layer override shows");
    let share: f64 = layers.iter().map(|l| l["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-6, "{share}");
}

#[test]
fn bad_infer_input_exits_2_with_a_message() {
    for args in [
        vec!["infer", "--model", "nosuchnet"],
        vec!["infer", "--model", "tiny", "--batch", "0"],
        vec!["infer", "--model", "tiny", "--threads", "0"],
        vec!["infer", "--model", "tiny", "--iterations", "0"],
        vec!["infer", "--model", "tiny", "--conv", "fft"],
        vec!["infer", "--model", "tiny", "--conv-layer", "conv1"],
        vec!["infer", "--model", "tiny", "--conv-layer", "nope=im2col"],
        vec![
            "infer",
            "--model",
            "tiny",
            "--conv-layer",
            "conv1=depthwise",
        ],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
}
