//! The Python interpreter with onnx, onnxruntime and numpy that the ONNX tests
//! use for reference models and outputs. `.ci/run` creates it as `.venv`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

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

/// scripts/make_onnx_models.py's models (ResNet-50 v1.5, a MobileNet-v2-style net, a net of
/// biased convolutions with external data, an opset-9 net) at batch 2 with seeded inputs
/// and onnxruntime's outputs, built once per test binary.
pub fn onnx_models() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = super::cli::tmpdir("onnx-models");
        run(&[
            "scripts/make_onnx_models.py",
            dir.to_str().unwrap(),
            "--batch",
            "2",
        ]);
        dir
    })
}
