//! The Python interpreter with onnx, onnxruntime and numpy that the ONNX tests
//! use for reference models and outputs. `.ci/run` creates it as `.venv`.

use std::path::PathBuf;
use std::process::Command;

/// `$JOULEBENCH_PYTHON`, else the repository's `.venv/bin/python`. Panics with
/// the set-up command when neither exists: these tests must not pass vacuously.
pub fn python() -> PathBuf {
    let p = match std::env::var_os("JOULEBENCH_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    };
    assert!(
        p.exists(),
        "{} not found: create it with `python3 -m venv .venv && .venv/bin/pip install -r \
         scripts/requirements-test.txt` (bash .ci/run does this), or set JOULEBENCH_PYTHON",
        p.display()
    );
    p
}

/// Runs `python args...`, panicking with its stderr on failure; returns stdout.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(python())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cannot start python");
    assert!(
        out.status.success(),
        "python {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
