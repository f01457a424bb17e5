//! Running the joulebench binary from integration tests, and scratch
//! directories and fixture copies for it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary, with the kernel left to detection.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_joulebench"));
    c.env_remove("JOULEBENCH_KERNEL");
    c
}

/// Runs `joulebench args...` to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("running joulebench")
}

/// A fresh, empty directory for this test binary and `name`.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "joulebench-{}-{name}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a scratch directory");
    d
}

/// Copies the tree `from` to `to` (fixtures that a test writes into).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
