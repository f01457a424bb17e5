//! Power modes as a sweep axis, on a fixture cpufreq/thermal tree and
//! stand-in nvpmodel, jetson_clocks and vcgencmd scripts
//! (tests/fixtures/cpufreq): apply and restore, point order, the condition
//! columns, dry-run, the permission error and restore after SIGKILL.

use crate::common::cli::{as_nobody, bin, copy_tree, is_root, run, tmpdir};

use joulebench::harness::record::io::read_rows;
use joulebench::harness::record::rows::ResultRow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh copy of the fixture tree (it gets written).
fn fixture(d: &Path) -> PathBuf {
    let root = d.join("root");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cpufreq"),
        &root,
    );
    root
}

fn policy(root: &Path, n: usize, file: &str) -> String {
    std::fs::read_to_string(root.join(format!("sys/devices/system/cpu/cpufreq/policy{n}/{file}")))
        .unwrap()
        .trim()
        .to_string()
}

fn state(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for n in [0, 2] {
        for f in ["scaling_governor", "scaling_min_freq", "scaling_max_freq"] {
            v.push(policy(root, n, f));
        }
    }
    for f in ["nvpmodel.mode", "jetson_clocks.state"] {
        v.push(
            std::fs::read_to_string(root.join("bin").join(f))
                .unwrap()
                .trim()
                .to_string(),
        );
    }
    v
}

fn suite(d: &Path, root: &Path, modes: &str, axis: &str, measure: &str) -> PathBuf {
    let b = root.join("bin");
    let text = format!(
        r#"name = "modes"
[power_modes]
settle_seconds = 0
nvpmodel_command = "{nv}"
jetson_clocks_command = "{jc}"
vcgencmd_command = "{vc}"
{modes}
[defaults]
warmup_iterations = 1
warmup_seconds = 0
{measure}
[[experiment]]
models = ["tiny"]
batch = [1, 2]
{axis}
"#,
        nv = b.join("nvpmodel").display(),
        jc = b.join("jetson_clocks").display(),
        vc = b.join("vcgencmd").display(),
    );
    let p = d.join("suite.toml");
    std::fs::write(&p, text).unwrap();
    p
}

const MODES: &str = r#"slow = { governor = "userspace", min_freq_khz = 1200000, max_freq_khz = 1200000 }
little = { governor = "powersave", policies = [2] }
maxn = { nvpmodel = 0, jetson_clocks = true }"#;
const AXIS: &str = r#"power_mode = ["slow", "none", "maxn", "little"]"#;
const SHORT: &str = "min_seconds = 0\nmin_batches = 2";

/// `joulebench run SUITE --out OUT --sysfs-root ROOT --quiet`.
fn run_suite(suite: &Path, out: &Path, root: &Path) -> std::process::Output {
    run(&[
        "run",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sysfs-root",
        root.to_str().unwrap(),
        "--quiet",
    ])
}

fn run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("modes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

#[test]
fn modes_are_applied_recorded_grouped_and_restored() {
    let d = tmpdir("apply");
    let root = fixture(&d);
    let before = state(&root);
    let s = suite(&d, &root, MODES, AXIS, SHORT);
    let out = d.join("out");
    let o = run_suite(&s, &out, &root);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Everything is back as found.
    assert_eq!(state(&root), before);
    let dir = run_dir(&out);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("power_state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["cpufreq"][0]["governor"], "schedutil");
    assert_eq!(saved["nvpmodel"]["value"], "2");
    assert!(saved["restored_utc"].is_string());
    // One switch per mode: nvpmodel -m 0 once, then back to 2 once.
    let calls = std::fs::read_to_string(root.join("bin/calls.log")).unwrap();
    let nv: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("nvpmodel"))
        .collect();
    assert_eq!(nv, vec!["nvpmodel -m 0", "nvpmodel -m 2"], "{calls}");
    assert!(calls.contains("jetson_clocks --store"), "{calls}");
    assert!(calls.contains("jetson_clocks --restore"), "{calls}");

    let rows: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
    let order: Vec<&str> = rows.iter().map(|r| r.power_mode.as_str()).collect();
    assert_eq!(
        order,
        vec!["none", "none", "slow", "slow", "maxn", "maxn", "little", "little"],
        "grouped by mode, none first"
    );
    for r in &rows {
        // The hottest of cpu-thermal (52.3) and soc-thermal (54.8); not gpu.
        assert_eq!(r.temp_start_c, Some(54.8), "{}", r.point);
        assert_eq!(r.temp_end_c, Some(54.8));
        // cur freq: policy0 1500 MHz, policy2 1000 MHz, two cpus each.
        assert_eq!(r.freq_mean_mhz, Some(1250.0));
        match r.power_mode.as_str() {
            "slow" => {
                assert_eq!(r.governor, "userspace");
                assert_eq!(
                    (r.freq_min_khz, r.freq_max_khz),
                    (Some(1200000), Some(1200000))
                );
                // policy2 runs at 1000000 kHz, below the 1200000 minimum.
                assert_eq!(r.throttled, Some(true));
                assert!(r.warnings.contains("throttled"), "{}", r.warnings);
                assert!(r.point.contains("-mslow-"), "{}", r.point);
            }
            "little" => {
                assert_eq!(r.governor, "schedutil/powersave");
                assert_eq!(r.throttled, Some(false));
            }
            _ => {
                assert_eq!(r.governor, "schedutil");
                assert_eq!(
                    (r.freq_min_khz, r.freq_max_khz),
                    (Some(600000), Some(2400000))
                );
                assert_eq!(r.throttled, Some(false));
            }
        }
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["conditions"]["temperature"]["available"], true);
    assert_eq!(m["power_modes"]["saved_state"], "power_state.json");
}

#[test]
fn every_run_records_conditions_or_says_why_not() {
    // No power_mode axis; vcgencmd reports "currently throttled".
    let d = tmpdir("cond");
    let root = fixture(&d);
    std::fs::write(root.join("bin/throttled"), "0x50004\n").unwrap();
    let s = suite(&d, &root, "", "", SHORT);
    let out = d.join("out");
    let o = run_suite(&s, &out, &root);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<ResultRow> = read_rows(&run_dir(&out).join("results.csv")).unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.power_mode, "none");
        assert_eq!(r.governor, "schedutil");
        assert_eq!(r.throttled, Some(true), "vcgencmd bit 2");
        assert!(
            !r.point.contains("-mnone"),
            "ids without modes are unchanged"
        );
    }
    assert!(!run_dir(&out).join("power_state.json").exists());

    // An empty tree: empty cells, and the reasons in the manifest.
    let d = tmpdir("cond-empty");
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let s = d.join("suite.toml");
    std::fs::write(
        &s,
        "name = \"modes\"\n[power_modes]\nvcgencmd_command = \"/nonexistent/vcgencmd\"\n[[experiment]]\nmodels = [\"tiny\"]\nmin_seconds = 0\nmin_batches = 2\n",
    )
    .unwrap();
    let out = d.join("out");
    let o = run_suite(&s, &out, &empty);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = run_dir(&out);
    let rows: Vec<ResultRow> = read_rows(&dir.join("results.csv")).unwrap();
    let r = &rows[0];
    assert_eq!(r.governor, "");
    assert_eq!(
        (r.freq_mean_mhz, r.temp_start_c, r.throttled),
        (None, None, None)
    );
    let text = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert!(
        // peer_settings, the last column, is empty for joulebench rows.
        text.lines().nth(1).unwrap().ends_with(",none,,,,,,,,ok,"),
        "{text}"
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let c = &m["conditions"];
    assert!(c["frequency"]["reason"]
        .as_str()
        .unwrap()
        .contains("no cpufreq policies"));
    assert!(c["temperature"]["reason"]
        .as_str()
        .unwrap()
        .contains("no thermal zone"));
    assert!(c["throttled"]["vcgencmd"]
        .as_str()
        .unwrap()
        .contains("unavailable"));
}

#[test]
fn dry_run_lists_every_change_and_changes_nothing() {
    let d = tmpdir("dry");
    let root = fixture(&d);
    let before = state(&root);
    let s = suite(&d, &root, MODES, AXIS, SHORT);
    let o = run(&[
        "run",
        s.to_str().unwrap(),
        "--dry-run",
        "--sysfs-root",
        root.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let p0 = root.join("sys/devices/system/cpu/cpufreq/policy0");
    let p2 = root.join("sys/devices/system/cpu/cpufreq/policy2");
    for want in [
        format!(
            "write userspace to {}",
            p0.join("scaling_governor").display()
        ),
        format!("write 1200000 to {}", p0.join("scaling_min_freq").display()),
        format!("write 1200000 to {}", p2.join("scaling_max_freq").display()),
        format!(
            "write schedutil to {}",
            p0.join("scaling_governor").display()
        ),
        format!("run {} -m 0", root.join("bin/nvpmodel").display()),
        format!("run {}", root.join("bin/jetson_clocks").display()),
        format!(
            "write powersave to {}",
            p2.join("scaling_governor").display()
        ),
        "restore the state found at start".to_string(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    // Points are listed in run order: none first.
    let first = text.lines().nth(1).unwrap();
    assert!(first.contains("-r0") && !first.contains("-m"), "{text}");
    // Lowering min before max: 1200000 min is written before the max.
    let i_min = text.find(&format!(
        "write 1200000 to {}",
        p0.join("scaling_min_freq").display()
    ));
    let i_max = text.find(&format!(
        "write 1200000 to {}",
        p0.join("scaling_max_freq").display()
    ));
    assert!(i_min < i_max, "{text}");
    assert_eq!(state(&root), before, "a dry run writes nothing");
}

#[test]
fn no_write_permission_is_a_clear_error_before_the_suite_starts() {
    let d = tmpdir("perm");
    let root = fixture(&d);
    let s = suite(&d, &root, MODES, r#"power_mode = ["slow"]"#, SHORT);
    // Everything but the cpufreq files is open to an unprivileged user.
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let chmod = Command::new("chmod")
        .args(["-R", "a+rwX", d.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chmod.success());
    for n in [0, 2] {
        for f in ["scaling_governor", "scaling_min_freq", "scaling_max_freq"] {
            let p = root.join(format!("sys/devices/system/cpu/cpufreq/policy{n}/{f}"));
            Command::new("chmod")
                .args(["644", p.to_str().unwrap()])
                .status()
                .unwrap();
        }
    }
    let args = [
        "run",
        s.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sysfs-root",
        root.to_str().unwrap(),
    ];
    let mut cmd = bin();
    if is_root() {
        // Root ignores permission bits: run as nobody.
        as_nobody(&mut cmd);
    }
    let o = cmd.args(args).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no permission to write cpufreq"), "{err}");
    assert!(err.contains("policy0/scaling_governor"), "{err}");
    assert!(err.contains("sudo"), "{err}");
    assert!(!out.join("modes").exists(), "nothing started: {err}");
}

#[test]
fn restore_puts_the_state_back_after_sigkill() {
    let d = tmpdir("kill");
    let root = fixture(&d);
    let before = state(&root);
    let modes = r#"hot = { nvpmodel = 0, jetson_clocks = true, governor = "performance", min_freq_khz = 1800000 }"#;
    let s = suite(
        &d,
        &root,
        modes,
        r#"power_mode = ["hot"]"#,
        "min_seconds = 30\nmin_batches = 2",
    );
    let out = d.join("out");
    let mut child = bin()
        .args([
            "run",
            s.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--sysfs-root",
            root.to_str().unwrap(),
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while policy(&root, 0, "scaling_min_freq") != "1800000" {
        assert!(Instant::now() < deadline, "the mode was never applied");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let changed = state(&root);
    assert_ne!(changed, before);
    assert_eq!(changed[0], "performance");
    assert_eq!(changed[6], "0");
    assert_eq!(changed[7], "on");
    let dir = run_dir(&out);
    let o = run(&["restore", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("policy0: schedutil 600000..2400000 kHz"),
        "{text}"
    );
    assert_eq!(state(&root), before);
    // Twice is harmless.
    let o = run(&["restore", dir.to_str().unwrap()]);
    assert!(o.status.success());
    // A directory without a saved state is bad input.
    let o = run(&["restore", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_mode_the_machine_lacks_is_refused_before_the_suite_starts() {
    let d = tmpdir("lacks");
    let root = fixture(&d);
    let s = suite(
        &d,
        &root,
        r#"big = { governor = "performance", policies = [4] }"#,
        r#"power_mode = ["big"]"#,
        SHORT,
    );
    let out = d.join("out");
    let o = run(&[
        "run",
        s.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sysfs-root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("policy4") && err.contains("policy0, policy2"),
        "{err}"
    );
    assert!(!out.join("modes").exists());
}

fn spawn_run(suite: &Path, out: &Path, root: &Path) -> std::process::Child {
    bin()
        .args([
            "run",
            suite.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--sysfs-root",
            root.to_str().unwrap(),
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn ctrl_c_restores_the_state_found_at_start() {
    let d = tmpdir("int");
    let root = fixture(&d);
    let before = state(&root);
    let s = suite(
        &d,
        &root,
        r#"fast = { governor = "performance", min_freq_khz = 1800000 }"#,
        r#"power_mode = ["fast"]"#,
        "min_seconds = 30\nmin_batches = 2",
    );
    let out = d.join("out");
    let child = spawn_run(&s, &out, &root);
    let deadline = Instant::now() + Duration::from_secs(60);
    while policy(&root, 0, "scaling_min_freq") != "1800000" {
        assert!(Instant::now() < deadline, "the mode was never applied");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(state(&root), before);
}

#[test]
fn an_error_mid_suite_restores_and_a_bad_value_is_refused_up_front() {
    let d = tmpdir("err");
    let root = fixture(&d);
    let before = state(&root);
    // `fast` applies, then nvpmodel refuses mode 7 (the stand-in knows 0-3).
    let s = suite(
        &d,
        &root,
        "fast = { governor = \"performance\" }\nbad = { nvpmodel = 7 }",
        r#"power_mode = ["fast", "bad"]"#,
        SHORT,
    );
    let out = d.join("out");
    let o = run_suite(&s, &out, &root);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("invalid mode 7"), "{err}");
    let rows: Vec<ResultRow> = read_rows(&run_dir(&out).join("results.csv")).unwrap();
    assert!(rows
        .iter()
        .all(|r| r.power_mode == "fast" && r.governor == "performance"));
    assert_eq!(rows.len(), 2);
    assert_eq!(state(&root), before, "restored on the error path");

    // Out of the hardware range: refused before anything runs.
    let d = tmpdir("range");
    let root = fixture(&d);
    let s = suite(
        &d,
        &root,
        r#"over = { max_freq_khz = 3000000 }"#,
        r#"power_mode = ["over"]"#,
        SHORT,
    );
    let out = d.join("out");
    let o = run(&[
        "run",
        s.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sysfs-root",
        root.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("3000000 kHz is outside policy0's hardware range 600000..2400000"),
        "{err}"
    );
    assert!(!out.join("modes").exists());
}

/// A stand-in for TFLite's benchmark_model that records the governor of
/// policy0 in force while it runs, then prints a captured TFLite 2.x output.
#[cfg(unix)]
fn governor_recording_tool(d: &Path, root: &Path) -> PathBuf {
    let cap =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/peers/benchmark_model_tf2.txt");
    let p = d.join("benchmark_model");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\ncat '{gov}' >> '{log}'\ncat '{cap}' >&2\n",
            gov = root
                .join("sys/devices/system/cpu/cpufreq/policy0/scaling_governor")
                .display(),
            log = d.join("seen.log").display(),
            cap = cap.display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[cfg(unix)]
#[test]
fn peer_engine_points_sweep_power_modes_too() {
    let d = tmpdir("peer-modes");
    let root = fixture(&d);
    let before = state(&root);
    std::fs::write(d.join("m.tflite"), b"stand-in").unwrap();
    let tool = governor_recording_tool(&d, &root);
    let axis = format!(
        "power_mode = [\"none\", \"slow\"]\nengine = [\"joulebench\", \"tflite\"]\n\
         tflite_model = \"m.tflite\"\npeer_input = \"input\"\nbenchmark_model = \"{}\"",
        tool.display()
    );
    let s = suite(&d, &root, MODES, &axis, SHORT);
    let out = d.join("out");
    let o = run_suite(&s, &out, &root);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(state(&root), before);
    let rows: Vec<ResultRow> = read_rows(&run_dir(&out).join("results.csv")).unwrap();
    // 2 engines x 2 batches x 2 modes; the peer's ids carry the mode.
    assert_eq!(rows.len(), 8);
    let peer: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|r| r.engine == "tflite")
        .map(|r| (r.power_mode.as_str(), r.point.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        peer,
        vec![
            ("none", "exp1/tiny/tflite-t1-b1-r0", "ok"),
            ("none", "exp1/tiny/tflite-t1-b2-r0", "ok"),
            ("slow", "exp1/tiny/tflite-t1-b1-mslow-r0", "ok"),
            ("slow", "exp1/tiny/tflite-t1-b2-mslow-r0", "ok"),
        ]
    );
    // The program ran under each mode: the fixture's governor, then userspace.
    let seen = std::fs::read_to_string(d.join("seen.log")).unwrap();
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        vec!["schedutil", "schedutil", "userspace", "userspace"]
    );
    for r in rows.iter().filter(|r| r.engine == "tflite") {
        assert_eq!(r.temp_start_c, Some(54.8), "{}", r.point);
        assert_eq!(
            r.governor,
            if r.power_mode == "slow" {
                "userspace"
            } else {
                "schedutil"
            }
        );
    }
}
