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

/// A fresh, empty directory for the running test and `name`: libtest runs each test on a
/// thread named after it (`module::test`), so tests of one binary never share a directory,
/// and the process id keeps concurrent runs of the binary apart.
pub fn tmpdir(name: &str) -> PathBuf {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("main").replace("::", "-");
    // Under the target directory and without the process id, so that each run
    // replaces the last one's scratch data (the shared ONNX models are 100 MB)
    // instead of piling it up in /tmp.
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{name}"));
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

/// The unprivileged user and group `nobody` (65534 on Debian and most Linux systems).
const NOBODY: u32 = 65534;

/// Whether this process runs as root, which reads and writes files whatever their mode
/// bits say (CAP_DAC_OVERRIDE); CI runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Makes `cmd` run as nobody: std drops root's supplementary groups, then sets the group
/// and the user, so the child has none of root's privileges. The tests that need a
/// permission error use it when they run as root instead of skipping.
pub fn as_nobody(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    cmd.gid(NOBODY).uid(NOBODY)
}

/// Set in the copy of a test that [`rerun_as_nobody`] starts.
const RERUN: &str = "JOULEBENCH_TEST_AS_NOBODY";

/// Runs the calling test again, alone, in a copy of this test binary running as nobody with
/// `env` set, and panics unless that run passed: a root-run test that needs a permission
/// error does its assertions there. libtest names each test's thread after the test.
pub fn rerun_as_nobody(env: &[(&str, &Path)]) {
    // The copy runs as nobody; were it root again it would start another copy.
    assert!(
        std::env::var_os(RERUN).is_none(),
        "running as root in the copy meant to run as nobody: dropping privileges failed"
    );
    let test = std::thread::current()
        .name()
        .expect("a libtest thread named after the test")
        .to_string();
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = as_nobody(Command::new(exe).args([test.as_str(), "--exact", "--nocapture"]))
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .env(RERUN, "1")
        .output()
        .expect("running the test binary as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} as nobody:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
