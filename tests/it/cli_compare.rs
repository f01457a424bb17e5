//! `joulebench compare`, the regression gate, on synthetic runs: a clear
//! regression exits 3, noise within the tolerance and improvements exit 0,
//! a change beyond the tolerance that is not significant is not a
//! regression, and missing points, other suites or malformed input exit 2.

use crate::common::cli::{run, tmpdir};
use crate::synthetic;

use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::synthetic::Point;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Three points of a CI suite, images/s scaled per point by `scale`.
fn points(scale: [f64; 3]) -> Vec<Point> {
    [(1, 1, 100.0), (1, 8, 120.0), (2, 8, 210.0)]
        .iter()
        .zip(scale)
        .map(|(&(t, b, ips), s)| {
            let mut p = Point::new("ci", t, b, ips * s);
            p.model = "tiny".into();
            p.power_w = Some(10.0 * s.recip());
            p
        })
        .collect()
}

/// A run directory with results (power columns included) and samples.
fn run_dir(root: &Path, name: &str, suite: &str, pts: &[Point], seed: u64) -> PathBuf {
    let d = root.join(name);
    synthetic::write_results(&d, suite, pts, true);
    synthetic::write_samples(&d, pts, 40, 0.02, seed);
    d
}

fn compare(base: &Path, cur: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["compare", base.to_str().unwrap(), cur.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run(&args);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn json(base: &Path, cur: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = compare(base, cur, &args);
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v)
}

#[test]
fn a_clear_regression_exits_3_and_names_the_point() {
    let d = tmpdir("regression");
    let base = run_dir(&d, "base", "ci", &points([1.0, 1.0, 1.0]), 1);
    let cur = run_dir(&d, "cur", "ci", &points([1.01, 0.8, 0.99]), 2);
    let (code, out, err) = compare(&base, &cur, &[]);
    assert_eq!(code, Some(3), "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("ci/tiny/t1-b8-"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("-20.0%") && line.contains("mann-whitney") && line.contains("REGRESSION"),
        "{line}"
    );
    assert!(
        out.contains("1 regression(s), 0 improvement(s), 2 within tolerance"),
        "{out}"
    );
    assert!(out.contains("result: REGRESSION"), "{out}");
    let (code, v) = json(&base, &cur, &[]);
    assert_eq!(code, Some(3));
    assert_eq!(v["metric"], "images_per_s");
    assert_eq!(v["higher_is_better"], true);
    assert_eq!(v["regressions"], 1);
    assert_eq!(v["exit_code"], 3);
    let pts = v["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3);
    let p = pts.iter().find(|p| p["verdict"] == "regression").unwrap();
    assert_eq!(p["params"]["batch"], "8");
    assert_eq!(p["params"]["threads"], "1");
    assert!((p["change"].as_f64().unwrap() + 0.2).abs() < 1e-9, "{p}");
    assert!(p["p_value"].as_f64().unwrap() < 1e-6, "{p}");
    assert_eq!(p["test"], "mann-whitney");
    // A tolerance above the drop lets it pass.
    let (code, out, _) = compare(&base, &cur, &["--tolerance", "25%"]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn noise_within_the_tolerance_passes_and_improvements_are_reported() {
    let d = tmpdir("noise");
    let base = run_dir(&d, "base", "ci", &points([1.0, 1.0, 1.0]), 1);
    let noisy = run_dir(&d, "noisy", "ci", &points([0.98, 1.03, 0.97]), 7);
    let (code, out, err) = compare(&base, &noisy, &["--tolerance", "5"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("0 regression(s), 0 improvement(s), 3 within tolerance"),
        "{out}"
    );
    assert!(out.contains("result: no regression"), "{out}");
    let faster = run_dir(&d, "faster", "ci", &points([1.0, 1.25, 1.0]), 3);
    let (code, v) = json(&base, &faster, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(v["improvements"], 1);
    assert_eq!(v["regressions"], 0);
    assert!(v["points"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["verdict"] == "improvement" && p["params"]["batch"] == "8"));
}

#[test]
fn a_change_beyond_the_tolerance_that_is_not_significant_is_not_a_regression() {
    let d = tmpdir("insignificant");
    // No samples.csv beside the files: the confidence intervals decide,
    // and these are wide (±20%).
    let wide = |s: [f64; 3]| {
        let mut p = points(s);
        for x in &mut p {
            x.ci_rel = 0.2;
        }
        p
    };
    let base = synthetic::write_results(&d.join("b"), "ci", &wide([1.0, 1.0, 1.0]), false);
    let cur = synthetic::write_results(&d.join("c"), "ci", &wide([1.0, 0.9, 1.0]), false);
    let (b2, c2) = (d.join("base.csv"), d.join("cur.csv"));
    std::fs::copy(&base, &b2).unwrap();
    std::fs::copy(&cur, &c2).unwrap();
    let (code, v) = json(&b2, &c2, &[]);
    assert_eq!(code, Some(0), "{v}");
    let p = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["params"]["batch"] == "8" && p["params"]["threads"] == "1")
        .unwrap()
        .clone();
    assert_eq!(p["test"], "ci-overlap");
    assert_eq!(p["verdict"], "not-significant");
    assert_eq!(p["significant"], false);
    // The same drop with narrow intervals is a regression.
    let narrow_b = synthetic::write_results(&d.join("nb"), "ci", &points([1.0, 1.0, 1.0]), false);
    let narrow_c = synthetic::write_results(&d.join("nc"), "ci", &points([1.0, 0.9, 1.0]), false);
    std::fs::copy(&narrow_b, &b2).unwrap();
    std::fs::copy(&narrow_c, &c2).unwrap();
    let (code, out, _) = compare(&b2, &c2, &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("ci-disjoint"), "{out}");
}

#[test]
fn energy_metrics_compare_lower_is_better() {
    let d = tmpdir("energy");
    let base = run_dir(&d, "base", "ci", &points([1.0, 1.0, 1.0]), 1);
    // 10% slower at the same power: 10% more joules per image.
    let mut slow = points([1.0, 1.0, 1.0]);
    slow[2].images_per_s *= 0.9;
    let cur = run_dir(&d, "cur", "ci", &slow, 1);
    let (code, v) = json(&base, &cur, &["--metric", "joules_per_image"]);
    assert_eq!(code, Some(3), "{v}");
    assert_eq!(v["higher_is_better"], false);
    let p = &v["points"][2];
    assert_eq!(p["verdict"], "regression");
    assert_eq!(p["test"], "none");
    assert!(p["change"].as_f64().unwrap() > 0.1);
    // Without power columns there is nothing to compare: exit 2.
    let plain = synthetic::write_results(&d.join("plain"), "ci", &points([1.0, 1.0, 1.0]), false);
    let (code, _, err) = compare(&plain, &plain, &["--metric", "joules_per_image"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no values of `joules_per_image`"), "{err}");
}

#[test]
fn missing_points_and_other_suites_exit_2() {
    let d = tmpdir("unmatched");
    let all = points([1.0, 1.0, 1.0]);
    let base = run_dir(&d, "base", "ci", &all, 1);
    let fewer = run_dir(&d, "fewer", "ci", &all[..2], 1);
    let (code, out, err) = compare(&base, &fewer, &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains("ci/tiny/t2-b8-") && out.contains("only in the baseline"),
        "{out}"
    );
    assert!(out.contains("result: inputs do not match"), "{out}");
    let (code, v) = json(&fewer, &base, &[]);
    assert_eq!(code, Some(2));
    assert_eq!(v["unmatched_current"].as_array().unwrap().len(), 1);
    // The same points from another host and at another time still match.
    let other = d.join("other");
    synthetic::write_results(&other, "ci", &all, false);
    let t = std::fs::read_to_string(other.join("results.csv")).unwrap();
    std::fs::write(
        other.join("results.csv"),
        t.replace(",xavier,", ",another-board,")
            .replace("2026-03-14", "2027-01-01"),
    )
    .unwrap();
    let (code, out, _) = compare(&base, &other, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("different machines"), "{out}");
    // A different suite is refused.
    let smoke = run_dir(&d, "smoke", "smoke", &all, 1);
    let (code, _, err) = compare(&base, &smoke, &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("suite `smoke`") && err.contains("compare runs of the same suite"),
        "{err}"
    );
}

#[test]
fn bad_options_and_malformed_files_exit_2() {
    let d = tmpdir("bad");
    let base = run_dir(&d, "base", "ci", &points([1.0, 1.0, 1.0]), 1);
    for (extra, needle) in [
        (&["--tolerance", "five"][..], "not a percentage"),
        (&["--tolerance=-3%"][..], "not a percentage"),
        (&["--metric", "speed"][..], "unknown metric `speed`"),
    ] {
        let (code, _, err) = compare(&base, &base, extra);
        assert_eq!(code, Some(2), "{extra:?}");
        assert!(err.contains(needle), "{err}");
    }
    let (code, _, _) = compare(&base, &d.join("missing"), &[]);
    assert_eq!(code, Some(2));
    // A torn last row is malformed for the gate (plots would skip it).
    let torn = run_dir(&d, "torn", "ci", &points([1.0, 1.0, 1.0]), 1);
    let mut t = std::fs::read_to_string(torn.join("results.csv")).unwrap();
    t.push_str("ci,abc,ci,ci/tiny/t9");
    std::fs::write(torn.join("results.csv"), t).unwrap();
    let (code, _, err) = compare(&base, &torn, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("line 5"), "{err}");
    // Comparing a run with itself is no regression.
    let (code, out, _) = compare(&base, &base, &[]);
    assert_eq!(code, Some(0), "{out}");
}
