//! `joulebench tune` and `infer --tuning`: the file records every conv layer
//! with the fastest measured algorithm among those tried, infer applies it
//! (its profile shows the chosen algorithms), and a file made for another
//! batch or a malformed file is refused with exit code 2.

use crate::common::cli::{run as jb, tmpdir};

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
    let tuning: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let t = &tuning;
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

    // Each GEMM layer's chosen algorithm ran under three blockings, the
    // session's first; a layer keeps its own only when that was >1% faster.
    for (name, l) in layers {
        if l["algorithm"] == "depthwise" {
            assert!(l.get("cache_ms").is_none(), "{name}: {l}");
            continue;
        }
        let ms = l["cache_ms"].as_object().unwrap();
        assert_eq!(ms.len(), 3, "{name}: {ms:?}");
        let t = |c: &serde_json::Value| {
            let key = format!("mc{}-nc{}-kc{}", c["mc"], c["nc"], c["kc"]);
            ms[&key].as_f64().unwrap()
        };
        let fastest = ms
            .values()
            .map(|v| v.as_f64().unwrap())
            .fold(f64::MAX, f64::min);
        let session = t(&tuning["session_blocking"]);
        match l.get("cache") {
            Some(c) => {
                assert_eq!(t(c), fastest, "{name}: {l}");
                assert!(fastest < session * 0.99, "{name}: {l}");
            }
            None => assert!(fastest >= session * 0.99, "{name}: {l}"),
        }
    }

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

    // A layer's blocking in the file is what infer runs it with, unless the
    // command line sets the blocking of every layer.
    let mut t = t.clone();
    t["layers"]["pw.conv"]["cache"] = serde_json::json!({"mc": 12, "nc": 96, "kc": 32});
    let own = d.join("own-blocking.json");
    std::fs::write(&own, t.to_string()).unwrap();
    for (extra, want) in [(None, "mc=12 nc=96 kc=32"), (Some("48"), "")] {
        let mut args = vec![
            "infer",
            "--model",
            "tiny",
            "--batch",
            "2",
            "--tuning",
            own.to_str().unwrap(),
            "--iterations",
            "1",
            "--no-peak",
            "--profile",
            "--format",
            "json",
        ];
        if let Some(kc) = extra {
            args.extend(["--kc", kc]);
        }
        let out = jb(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for l in r["layers"].as_array().unwrap() {
            let c = &t["layers"][l["name"].as_str().unwrap()]["cache"];
            let expect = match (l["name"] == "pw.conv", c.is_null() || extra.is_some()) {
                (true, _) => want.to_string(),
                (false, true) => String::new(),
                (false, false) => format!("mc={} nc={} kc={}", c["mc"], c["nc"], c["kc"]),
            };
            assert_eq!(l["blocking"], expect, "--kc {extra:?}: {l}");
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
