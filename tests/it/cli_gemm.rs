//! The command-line contract of `joulebench gemm` and `joulebench peak`: the
//! JSON they print for scripts, and exit code 2 with a message on stderr for
//! bad input.

use serde_json::Value;
use std::process::{Command, Output};

const KERNEL_ENV: &str = "JOULEBENCH_KERNEL";

/// A small GEMM that finishes at once: three timed runs, no peak measurement.
const SMALL: [&str; 12] = [
    "gemm",
    "--m",
    "64",
    "--n",
    "48",
    "--k",
    "32",
    "--seconds",
    "0",
    "--no-peak",
    "--format",
    "json",
];

/// Runs the binary with `args`; `kernel` sets `JOULEBENCH_KERNEL`, else it is
/// removed so the caller's environment cannot change the result.
fn run(args: &[&str], kernel: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_joulebench"));
    cmd.args(args);
    match kernel {
        Some(k) => cmd.env(KERNEL_ENV, k),
        None => cmd.env_remove(KERNEL_ENV),
    };
    cmd.output().expect("running joulebench")
}

/// `SMALL` with the value of `flag` replaced, or `flag value` appended.
fn small_with(flag: &str, value: &str) -> Vec<String> {
    let mut args: Vec<String> = SMALL.iter().map(|s| s.to_string()).collect();
    match args.iter().position(|a| a == flag) {
        Some(i) => args[i + 1] = value.to_string(),
        None => args.extend([flag.to_string(), value.to_string()]),
    }
    args
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit 0 and exactly one JSON object on stdout.
fn json_object(out: &Output) -> serde_json::Map<String, Value> {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line of JSON, got: {stdout}");
    match serde_json::from_str::<Value>(lines[0]) {
        Ok(Value::Object(map)) => map,
        other => panic!("expected a JSON object, got {other:?} from: {stdout}"),
    }
}

fn positive_int(obj: &serde_json::Map<String, Value>, key: &str) -> u64 {
    match obj.get(key).and_then(Value::as_u64) {
        Some(v) if v > 0 => v,
        _ => panic!("`{key}` should be a positive integer in {obj:?}"),
    }
}

/// Exit code 2 (bad input) with something on stderr and nothing on stdout.
fn assert_bad_input(out: &Output, what: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, stdout: {} stderr: {stderr}",
        text(&out.stdout)
    );
    assert!(!stderr.trim().is_empty(), "{what}: stderr is empty");
    assert!(
        out.stdout.is_empty(),
        "{what}: stdout should be empty, got {}",
        text(&out.stdout)
    );
    stderr
}

#[test]
fn gemm_json_has_the_documented_keys() {
    let obj = json_object(&run(&SMALL, None));
    let gflops = obj["gflops"].as_f64().expect("gflops is a number");
    assert!(gflops > 0.0 && gflops.is_finite(), "gflops = {gflops}");
    let kernel = obj["kernel"].as_str().expect("kernel is a string");
    assert!(
        ["scalar", "avx2", "avx512", "neon", "neon-inorder"].contains(&kernel),
        "kernel = {kernel}"
    );
    for key in ["mc", "nc", "kc"] {
        positive_int(&obj, key);
    }
    assert_eq!(positive_int(&obj, "threads"), 1);
    let lp = obj["loop"].as_str().expect("loop is a string");
    assert!(["jc", "ic", "jr"].contains(&lp), "loop = {lp}");
    assert!(
        obj.get("peak_gflops").is_some_and(Value::is_null),
        "peak_gflops should be null with --no-peak: {obj:?}"
    );
    assert_eq!(obj["m"], 64);
    assert_eq!(obj["n"], 48);
    assert_eq!(obj["k"], 32);
}

#[test]
fn gemm_reports_the_blocking_it_was_given() {
    let mut args = small_with("--kc", "16");
    args.extend(["--mc", "24", "--loop", "jr"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let obj = json_object(&run(&args, None));
    assert_eq!(obj["kc"], 16);
    assert_eq!(obj["mc"], 24);
    // With one thread nothing is spread: the report says the loop that ran.
    assert!(obj["loop"].is_string());
    assert!(obj["gflops"].as_f64().unwrap() > 0.0);
}

#[test]
fn gemm_table_is_the_default_format() {
    let args = &SMALL[..SMALL.len() - 2];
    let out = run(args, None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("GEMM 64x48x32"), "{stdout}");
    assert!(stdout.contains("GFLOP/s"), "{stdout}");
}

#[test]
fn peak_json_reports_per_core_gflops() {
    let obj = json_object(&run(&["peak", "--threads", "1", "--format", "json"], None));
    let per_core = obj["per_core_gflops"]
        .as_f64()
        .expect("per_core_gflops is a number");
    assert!(per_core > 0.0 && per_core.is_finite(), "{per_core}");
    assert!(obj["total_gflops"].as_f64().is_some_and(|t| t > 0.0));
    assert_eq!(obj["threads"], 1);
    assert!(obj["kernel"].is_string());
}

#[test]
fn bad_sizes_and_knobs_exit_2() {
    for (flag, value) in [
        ("--m", "0"),
        ("--n", "0"),
        ("--k", "0"),
        ("--threads", "0"),
        ("--mc", "0"),
        ("--nc", "0"),
        ("--kc", "0"),
        ("--loop", "xx"),
        ("--m", "abc"),
    ] {
        let args = small_with(flag, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = assert_bad_input(&run(&args, None), &format!("{flag} {value}"));
        let name = flag.trim_start_matches('-');
        assert!(
            stderr.contains(name),
            "{flag} {value}: the message should name `{name}`: {stderr}"
        );
    }
}

#[test]
fn missing_argument_and_unknown_command_exit_2() {
    assert_bad_input(&run(&["gemm", "--m", "8", "--n", "8"], None), "no --k");
    assert_bad_input(&run(&["frobnicate"], None), "unknown command");
    assert_bad_input(&run(&["peak", "--threads", "0"], None), "peak --threads 0");
}

#[test]
fn kernel_env_scalar_is_honoured() {
    let obj = json_object(&run(&SMALL, Some("scalar")));
    assert_eq!(obj["kernel"], "scalar");
    assert!(obj["gflops"].as_f64().unwrap() > 0.0);
}

#[test]
fn kernel_env_unavailable_kernel_exits_2() {
    #[cfg(target_arch = "aarch64")]
    let foreign = "avx2";
    #[cfg(not(target_arch = "aarch64"))]
    let foreign = "neon";
    let stderr = assert_bad_input(&run(&SMALL, Some(foreign)), foreign);
    assert!(stderr.contains(foreign), "{stderr}");
    assert!(stderr.contains("not available"), "{stderr}");
}

#[test]
fn kernel_env_unknown_name_exits_2() {
    let stderr = assert_bad_input(&run(&SMALL, Some("sse9")), "sse9");
    assert!(stderr.contains("sse9"), "{stderr}");
}
