//! `joulebench tune` and `infer --tuning`: the file records every conv layer
//! with the fastest measured algorithm among those tried, infer applies it
//! (its profile shows the chosen algorithms), and a file made for another
//! batch or a malformed file is refused with exit code 2.

mod common;

use common::cli::{run as jb, tmpdir};

#[test]
fn tune_writes_the_fastest_algorithm_per_layer_and_infer_uses_it() {
    let d = tmpdir("tune");
    let file = d.join("tiny.json");
    let f = file.to_str().unwrap();
    let out = jb(&[
        "tune",
        "--model",
        "tiny",
        "--batch",
        "2",
        "--rounds",
        "2",
        "--iterations",
        "2",
        "--out",
        f,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(t["model"], "tiny");
    assert_eq!(t["batch"], 2);
    let layers = t["layers"].as_object().unwrap();
    assert!(!layers.is_empty());
    let (mut winograd_tried, mut winograd4_tried) = (false, false);
    for (name, l) in layers {
        let ms = l["ms"].as_object().unwrap();
        let chosen = l["algorithm"].as_str().unwrap();
        let best = ms
            .iter()
            .min_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
            .unwrap()
            .0;
        assert_eq!(chosen, best, "{name}: {ms:?}");
        winograd_tried |= ms.contains_key("winograd");
        winograd4_tried |= ms.contains_key("winograd4");
    }
    assert!(winograd_tried, "tiny has a 3x3 stride-1 conv: {layers:?}");
    assert!(winograd4_tried, "F(4x4,3x3) is a candidate too: {layers:?}");

    // infer applies the file: each tuned layer runs the chosen algorithm.
    let out = jb(&[
        "infer",
        "--model",
        "tiny",
        "--batch",
        "2",
        "--tuning",
        f,
        "--iterations",
        "2",
        "--no-peak",
        "--profile",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for l in r["layers"].as_array().unwrap() {
        if let Some(t) = layers.get(l["name"].as_str().unwrap()) {
            assert_eq!(l["algorithm"], t["algorithm"], "{l}");
        }
    }

    // Another batch than the file's is refused, naming the file.
    let out = jb(&[
        "infer",
        "--model",
        "tiny",
        "--tuning",
        f,
        "--iterations",
        "1",
        "--no-peak",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tiny.json"));

    std::fs::write(&file, "{ not json").unwrap();
    let out = jb(&[
        "infer",
        "--model",
        "tiny",
        "--batch",
        "2",
        "--tuning",
        f,
        "--iterations",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("joulebench tune"));
}
