//! The command-line contract of `joulebench run` and `joulebench merge`:
//! bad suites exit 2 with places, a SIGKILLed run keeps its rows and
//! `--resume` completes it, shards merged cover every point once.

use crate::common::cli::{bin, run, tmpdir};

use joulebench::harness::record::io::read_rows;
use joulebench::harness::record::rows::{ResultRow, SampleRow};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn write_suite(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("suite.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The single run directory under `<root>/<suite>/`.
fn run_dir(root: &Path, suite: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(suite))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn expected_ids(suite: &Path) -> BTreeSet<String> {
    let out = run(&["run", suite.to_str().unwrap(), "--dry-run"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let idx = it.next()?;
            idx.parse::<usize>().ok()?;
            it.next().map(str::to_string)
        })
        .collect()
}

#[test]
fn a_bad_suite_exits_2_listing_every_problem_with_its_place() {
    let d = tmpdir("bad");
    let s = write_suite(
        &d,
        "name = \"b\"\n[[experiment]]\nmodels = [\"tiny\", \"net.onnx\"]\nbatch = [\"big\"]\nspeed = 3\n",
    );
    let out = run(&["run", s.to_str().unwrap(), "--out", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = s.display().to_string();
    assert!(err.contains(&format!("{f}:3:19: model file")), "{err}");
    assert!(err.contains("net.onnx` does not exist"), "{err}");
    assert!(
        err.contains(&format!("{f}:4:10: `batch` must be an integer")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:5:1: unknown key `speed`")),
        "{err}"
    );
    assert!(!d.join("b").exists(), "nothing is written for a bad suite");
    // a bad shard is bad input too
    let good = write_suite(&d, "name = \"g\"\n[[experiment]]\nmodels = [\"tiny\"]\n");
    let out = run(&["run", good.to_str().unwrap(), "--shard", "3/2", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    // a missing suite or merge input is bad input, not a crash
    let missing = d.join("missing.toml");
    let out = run(&["run", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
    let m = d.join("m.csv");
    let out = run(&["merge", "nope.csv", "--out", m.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

const KILL_SUITE: &str = r#"name = "killme"
[defaults]
warmup_iterations = 1
warmup_seconds = 0
min_seconds = 0.15
min_batches = 3
[[experiment]]
models = ["tiny"]
batch = [1, 2, 3, 4, 5, 6]
fusion = [true, false]
"#;

#[test]
fn sigkill_keeps_finished_rows_and_resume_completes_the_rest() {
    let d = tmpdir("kill");
    let s = write_suite(&d, KILL_SUITE);
    let ids = expected_ids(&s);
    assert_eq!(ids.len(), 12);
    let root = d.join("out");
    let mut child = bin()
        .args([
            "run",
            s.to_str().unwrap(),
            "--out",
            root.to_str().unwrap(),
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for a few rows, then kill -9 mid-suite.
    let deadline = Instant::now() + Duration::from_secs(60);
    let results = loop {
        assert!(Instant::now() < deadline, "no rows appeared");
        if let Ok(entries) = std::fs::read_dir(root.join("killme")) {
            let dirs: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            if let Some(dir) = dirs.first() {
                let text = std::fs::read_to_string(dir.join("results.csv")).unwrap_or_default();
                if text.lines().count() >= 4 {
                    break dir.join("results.csv");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let dir = run_dir(&root, "killme");
    assert_eq!(results.parent().unwrap(), dir);
    let before: Vec<ResultRow> = read_rows(&results).expect("every completed row is intact");
    assert!(before.len() >= 3 && before.len() < 12, "{}", before.len());
    for r in &before {
        assert!(ids.contains(&r.point));
        assert!(r.images_per_s > 0.0 && r.iterations >= 3);
    }
    // Resume finishes the rest without re-running what is there.
    let out = run(&[
        "run",
        s.to_str().unwrap(),
        "--resume",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after: Vec<ResultRow> = read_rows(&results).unwrap();
    assert_eq!(after.len(), 12);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "earlier rows are untouched"
    );
    let got: BTreeSet<String> = after.iter().map(|r| r.point.clone()).collect();
    assert_eq!(got, ids);
    let samples: Vec<SampleRow> = read_rows(&dir.join("samples.csv")).unwrap();
    for r in &after {
        let n = samples.iter().filter(|s| s.point == r.point).count();
        assert_eq!(n, r.iterations, "samples of {}", r.point);
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["suite_text"], KILL_SUITE);
    assert_eq!(manifest["suite_hash"], after[0].suite_hash.as_str());
    assert_eq!(manifest["points_recorded"], 12);
    assert_eq!(manifest["resumed_utc"].as_array().unwrap().len(), 1);
    // Resuming with a different suite file is refused.
    let other = write_suite(&d, &KILL_SUITE.replace("0.15", "0.2"));
    let out = run(&[
        "run",
        other.to_str().unwrap(),
        "--resume",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn shards_merged_cover_every_point_exactly_once() {
    let d = tmpdir("shard");
    let s = write_suite(
        &d,
        "name = \"sh\"\n[defaults]\nwarmup_iterations = 0\nwarmup_seconds = 0\nmin_seconds = 0\nmin_batches = 2\n[[experiment]]\nmodels = [\"tiny\"]\nbatch = [1, 2, 3]\nconv = [\"convgemm\", \"im2col\"]\n",
    );
    let ids = expected_ids(&s);
    assert_eq!(ids.len(), 6);
    let mut csvs = Vec::new();
    for i in 1..=3 {
        let root = d.join(format!("o{i}"));
        let shard = format!("{i}/3");
        let out = run(&[
            "run",
            s.to_str().unwrap(),
            "--out",
            root.to_str().unwrap(),
            "--shard",
            &shard,
            "--quiet",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = run_dir(&root, "sh");
        assert!(dir.to_str().unwrap().ends_with(&format!("-shard{i}of3")));
        let rows: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
        assert_eq!(rows.len(), 2);
        csvs.push(dir.join("results.csv"));
    }
    let merged = d.join("merged.csv");
    let mut args = vec!["merge".to_string()];
    args.extend(csvs.iter().map(|p| p.display().to_string()));
    args.extend(["--out".into(), merged.display().to_string()]);
    let out = bin().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<ResultRow> = read_rows(&merged).unwrap();
    assert_eq!(rows.len(), 6);
    let got: BTreeSet<String> = rows.iter().map(|r| r.point.clone()).collect();
    assert_eq!(got, ids);
    // a results file of another suite version is refused with exit 2
    let mut foreign: Vec<ResultRow> = read_rows(&csvs[0]).unwrap();
    foreign[0].suite_hash = "0".repeat(64);
    foreign[0].point = "other/point".into();
    let fpath = d.join("foreign.csv");
    joulebench::harness::record::io::rewrite(&fpath, &foreign[..1]).unwrap();
    let out = run(&[
        "merge",
        csvs[1].to_str().unwrap(),
        fpath.to_str().unwrap(),
        "--out",
        d.join("m2.csv").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("suite hash"));
}
