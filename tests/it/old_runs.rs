//! Results directories written by earlier versions of joulebench still load:
//! results.csv and manifest.json as those versions wrote them (see
//! tests/fixtures/old-runs/README.md) are read into today's `ResultRow` and
//! `Manifest`, drawn, reported and compared.

use crate::common::cli::{copy_tree, run, tmpdir};
use joulebench::harness::record::dataset;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/old-runs")
        .join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copies the fixture (plot and report write beside it), loads it and runs
/// plot, report and compare on it; returns the copy.
fn draw_report_compare(name: &str) -> PathBuf {
    let d = tmpdir(&format!("old-runs-{name}"));
    let run_dir = d.join("run");
    copy_tree(&fixture(name), &run_dir);
    let out = run(&[
        "plot",
        run_dir.to_str().unwrap(),
        "--out",
        d.join("f").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("wrote "), "{stdout}");
    let pngs = std::fs::read_dir(d.join("f"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert!(pngs >= 2, "{pngs} figure(s): {stdout}");
    let out = run(&["report", run_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&[
        "compare",
        run_dir.to_str().unwrap(),
        run_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    run_dir
}

#[test]
fn a_run_of_the_first_version_before_power_and_conditions_draws_reports_and_compares() {
    let dir = draw_report_compare("v0.1-2026-11-23-smoke");
    let data = dataset::load(&dir, true).unwrap();
    assert_eq!(data.rows.len(), 10);
    assert!(!data.columns.iter().any(|c| c == "power_source"));
    let r = &data.rows[0];
    assert_eq!((r.suite.as_str(), r.model.as_str()), ("smoke", "tiny"));
    assert_eq!((r.threads, r.batch), (1, 1));
    assert!(r.images_per_s > 0.0 && r.latency_ms_p50 > 0.0);
    // Columns the file lacks read back as "not measured".
    assert_eq!((r.status.as_str(), r.power_source.as_str()), ("ok", ""));
    assert_eq!(
        (r.energy_j, r.window_start_s, r.throttled),
        (None, None, None)
    );
    let m = data.manifest.as_ref().unwrap();
    assert_eq!(m.suite, "smoke");
    assert!(m.clock.is_none() && m.power.is_empty());
    assert!(m.machine.as_ref().unwrap().logical_cores >= 1);
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("joulebench report: suite smoke"),
        "{report}"
    );
    assert!(report.contains("threads-batch"), "{report}");
}

#[test]
fn a_run_with_peer_engines_from_before_the_typed_schema_draws_reports_and_compares() {
    let dir = draw_report_compare("peers-2026-12-05");
    let data = dataset::load(&dir, true).unwrap();
    assert_eq!(data.rows.len(), 24);
    let engines = data.distinct(|r| &r.engine);
    assert_eq!(engines[0], "joulebench");
    assert!(engines.len() >= 4, "{engines:?}");
    assert!(data.rows.iter().all(|r| r.measured()));
    let m = data.manifest.as_ref().unwrap();
    assert_eq!(m.suite, "peers-resnet50");
    assert_eq!(m.suite_hash, data.rows[0].suite_hash);
    assert_eq!(m.machine.as_ref().unwrap().host, "vm");
    assert!(m.run_start_unix_s().is_some());
    assert_eq!(m.points_recorded, Some(24));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("Intel(R) Xeon(R) Processor"), "{report}");
    assert!(report.contains("onnxruntime"), "{report}");
}
