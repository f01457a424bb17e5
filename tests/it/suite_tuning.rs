//! Suites with `tuning`: a tuning file named in the suite (or a directory of
//! them) sets each joulebench point's per-layer algorithms, `auto` tunes once
//! per model, threads and batch into the run directory, and a missing file,
//! a point without one or a file for another kernel stop the suite with exit
//! code 2 before anything runs.

use crate::common::cli::{run as jb, tmpdir};
use joulebench::harness::record::io::read_rows;
use joulebench::harness::record::rows::{ProfileRow, ResultRow};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A layer's algorithm and its own blocking as profile.csv shows it.
type Layers = BTreeMap<String, (String, String)>;

/// `joulebench tune` on tiny into `file`, then every layer forced to `algo`
/// where it ran (so the choice is known and differs from the default) and to
/// blocking `mc=12 nc=96 kc=32` if `own_blocking`, else to the session's.
fn tuning_file(file: &Path, batch: usize, algo: &str, own_blocking: bool) -> Layers {
    ok(&jb(&[
        "tune",
        "--model",
        "tiny",
        "--batch",
        &batch.to_string(),
        "--rounds",
        "1",
        "--iterations",
        "1",
        "--out",
        file.to_str().unwrap(),
    ]));
    let mut t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut chosen = BTreeMap::new();
    for (name, l) in t["layers"].as_object_mut().unwrap() {
        let a = if l["ms"].get(algo).is_some() {
            algo.to_string()
        } else {
            l["algorithm"].as_str().unwrap().to_string()
        };
        l["algorithm"] = a.clone().into();
        let blocking = if own_blocking {
            l["cache"] = serde_json::json!({"mc": 12, "nc": 96, "kc": 32});
            "mc=12 nc=96 kc=32"
        } else {
            l.as_object_mut().unwrap().remove("cache");
            ""
        };
        chosen.insert(name.clone(), (a, blocking.to_string()));
    }
    std::fs::write(file, serde_json::to_string_pretty(&t).unwrap()).unwrap();
    chosen
}

fn suite(d: &Path, experiment: &str) -> PathBuf {
    let p = d.join("suite.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"tuned\"\n[defaults]\nwarmup_iterations = 1\nwarmup_seconds = 0\n\
             min_seconds = 0\nmin_batches = 2\nprofile = true\n\n[[experiment]]\nname = \"e\"\n\
             models = [\"tiny\"]\n{experiment}\n"
        ),
    )
    .unwrap();
    p
}

fn run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("tuned"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn run_suite(s: &Path, out: &Path) -> std::process::Output {
    jb(&[
        "run",
        s.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
}

/// Each profiled conv layer of `point` ran the algorithm and blocking `want` names.
fn check_profile(dir: &Path, point: &str, want: &Layers) {
    let prof: Vec<ProfileRow> = read_rows(&dir.join("profile.csv")).unwrap();
    let mut seen = 0;
    for r in prof.iter().filter(|r| r.point == point) {
        if let Some((a, b)) = want.get(&r.name) {
            assert_eq!(&r.algorithm, a, "{point} {}", r.name);
            assert_eq!(&r.blocking, b, "{point} {}", r.name);
            seen += 1;
        }
    }
    assert_eq!(seen, want.len(), "{point}: {prof:?}");
}

#[test]
fn a_directory_of_tuning_files_sets_each_points_layers() {
    let d = tmpdir("files");
    let tdir = d.join("tunings");
    std::fs::create_dir_all(&tdir).unwrap();
    // batch 1 forced to im2col, batch 2 to winograd with the layers' own
    // blocking: each point must get its own.
    let b1 = tuning_file(&tdir.join("b1.json"), 1, "im2col", false);
    let b2 = tuning_file(&tdir.join("b2.json"), 2, "winograd", true);
    assert!(b1.values().any(|(a, _)| a == "im2col"), "{b1:?}");
    assert!(b2.values().any(|(a, _)| a == "winograd"), "{b2:?}");
    let s = suite(&d, "batch = [1, 2]\ntuning = \"tunings\"");
    let out = d.join("out");
    ok(&run_suite(&s, &out));
    let dir = run_dir(&out);
    let rows: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.conv, "auto+tuned", "{}", r.point);
        check_profile(&dir, &r.point, if r.batch == 1 { &b1 } else { &b2 });
    }
}

#[test]
fn auto_tunes_once_per_model_threads_and_batch_into_the_run_directory() {
    let d = tmpdir("auto");
    let s = suite(&d, "batch = [1, 2]\nrepetitions = 2\ntuning = \"auto\"");
    let out = d.join("out");
    ok(&run_suite(&s, &out));
    let dir = run_dir(&out);
    let mut files: Vec<String> = std::fs::read_dir(dir.join("tuning"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["tuning-tiny-t1-b1.json", "tuning-tiny-t1-b2.json"]);
    let rows: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r.conv, "auto+tuned");
        let t: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("tuning/tuning-tiny-t1-b{}.json", r.batch)))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(t["batch"], r.batch);
        let blocking = |c: &serde_json::Value| match c.is_null() {
            true => String::new(),
            false => format!("mc={} nc={} kc={}", c["mc"], c["nc"], c["kc"]),
        };
        let want: Layers = t["layers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let a = v["algorithm"].as_str().unwrap().to_string();
                (k.clone(), (a, blocking(&v["cache"])))
            })
            .collect();
        check_profile(&dir, &r.point, &want);
    }
}

#[test]
fn bad_tuning_settings_exit_2_before_anything_runs() {
    let d = tmpdir("bad");
    let out = d.join("out");
    // A path that does not exist: the place and the fix.
    let s = suite(&d, "tuning = \"nope.json\"");
    let o = run_suite(&s, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("suite.toml:12:"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("joulebench tune"), "{err}");
    // A file for batch 1 only, while the suite also runs batch 4.
    let f = d.join("b1.json");
    tuning_file(&f, 1, "convgemm", false);
    let s = suite(&d, "batch = [1, 4]\ntuning = \"b1.json\"");
    let o = run_suite(&s, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no file for model tiny, 1 thread(s), batch 4"),
        "{err}"
    );
    assert!(!err.contains("batch 1;"), "{err}");
    // Not a tuning file.
    std::fs::write(d.join("x.json"), "{\"model\": 3}").unwrap();
    let s = suite(&d, "tuning = \"x.json\"");
    let o = run_suite(&s, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not a joulebench tuning file"), "{err}");
    // Made for another kernel: refused at the start of the run.
    let mut t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    t["kernel"] = "some-other-kernel".into();
    std::fs::write(&f, t.to_string()).unwrap();
    let s = suite(&d, "tuning = \"b1.json\"");
    let o = run_suite(&s, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kernel some-other-kernel"), "{err}");
    assert!(!out.exists(), "nothing may be written: {out:?}");
}
