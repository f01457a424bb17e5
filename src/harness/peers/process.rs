//! Running an external peer program under a time limit: its own process
//! group (so a converter's children go with it), stdout read line by line
//! for the driver's `ready` handshake, stdout and stderr kept up to a cap, and
//! the whole group killed when the limit passes or the run is interrupted.

use super::PeerFailure;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts and stops the measured window (power source, counters) around the
/// program; `start` gets the child's process id.
pub trait WindowHooks {
    fn start(&mut self, pid: u32) -> Result<(), String>;
    fn stop(&mut self) -> Result<(), String>;
}

/// Hooks for a program run outside any measured window (a model conversion).
pub struct NoWindow;

impl WindowHooks for NoWindow {
    fn start(&mut self, _pid: u32) -> Result<(), String> {
        Ok(())
    }
    fn stop(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// How long a program may run, and what else ends it early.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub timeout: Duration,
    /// Polled while the program runs (the run's Ctrl-C flag): true kills it.
    pub stop: fn() -> bool,
}

impl Limits {
    pub fn new(timeout: Duration, stop: fn() -> bool) -> Limits {
        Limits { timeout, stop }
    }
}

/// What a program printed.
#[derive(Clone, Debug, Default)]
pub struct ProgramOutput {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

/// Most of a stream kept (the latencies of a long run fit easily); beyond it
/// the rest is read and dropped so the program never blocks on a full pipe.
const KEEP_BYTES: usize = 64 << 20;
const POLL: Duration = Duration::from_millis(50);

/// The last `n` non-empty lines of `text`, for error messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn spawn_failure(program: &str, e: &std::io::Error, hint: &str) -> PeerFailure {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            PeerFailure::Unavailable(format!("program `{program}` not found; {hint}"))
        }
        std::io::ErrorKind::PermissionDenied => {
            PeerFailure::Unavailable(format!("program `{program}` is not executable; {hint}"))
        }
        _ => PeerFailure::Failed(format!("could not start `{program}`: {e}")),
    }
}

fn is_event(line: &str, event: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line.trim()).is_ok_and(|v| v["event"] == event)
}

/// Kills the child's whole process group. The child is not reaped yet (only
/// the caller waits for it), so its pid, which is the group id, is still its own.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
}

/// Reads lines of `r` into a channel, stopping at EOF or a read error.
fn line_reader(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

fn keep(into: &mut String, line: &str) {
    if into.len() + line.len() <= KEEP_BYTES {
        into.push_str(line);
    }
}

/// Why a program was ended before it finished.
enum Ended {
    TimedOut,
    Interrupted,
}

/// Runs `program args` under `limits`. With `handshake`, the window starts
/// when the program prints a line containing `"event": "ready"` and is told
/// to go by a line on its stdin, and ends at its `"event": "done"` line
/// (before the program tears down, while its CPU time is still readable);
/// otherwise the window is the whole run.
pub fn run_program(
    program: &str,
    args: &[String],
    handshake: bool,
    hint: &str,
    limits: Limits,
    hooks: &mut dyn WindowHooks,
) -> Result<ProgramOutput, PeerFailure> {
    if !crate::guard::program_exists(program) {
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        return Err(spawn_failure(program, &e, hint));
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if handshake {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| spawn_failure(program, &e, hint))?;
    let pid = child.id();
    let out_rx = child.stdout.take().map(line_reader);
    let err_rx = child.stderr.take().map(line_reader);
    let mut stdin = child.stdin.take();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut started = false;
    let mut stopped: Option<Result<(), String>> = None;
    let mut hook_err = None;
    if !handshake {
        match hooks.start(pid) {
            Ok(()) => started = true,
            Err(e) => hook_err = Some(e),
        }
    }
    let mut ended = None;
    let mut out_open = out_rx.is_some();
    let status = loop {
        if ended.is_none() {
            if t0.elapsed() > limits.timeout {
                ended = Some(Ended::TimedOut);
                kill_group(&mut child);
            } else if (limits.stop)() {
                ended = Some(Ended::Interrupted);
                kill_group(&mut child);
            }
        }
        if let Some(rx) = &err_rx {
            while let Ok(l) = rx.try_recv() {
                keep(&mut stderr, &l);
            }
        }
        if out_open {
            let rx = out_rx.as_ref().expect("out_open implies a reader");
            match rx.recv_timeout(POLL) {
                Ok(line) => {
                    keep(&mut stdout, &line);
                    if handshake && started && stopped.is_none() && is_event(&line, "done") {
                        stopped = Some(hooks.stop());
                    }
                    if handshake && !started && hook_err.is_none() && is_event(&line, "ready") {
                        match hooks.start(pid) {
                            Ok(()) => started = true,
                            Err(e) => hook_err = Some(e),
                        }
                        if let Some(mut w) = stdin.take() {
                            // A program that died meanwhile shows up in its exit status.
                            let _ = w.write_all(b"go\n").and_then(|_| w.flush());
                        }
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => out_open = false,
            }
        }
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => break Err(e),
        }
    };
    drop(stdin);
    let stop = match stopped {
        Some(s) => s,
        None if started => hooks.stop(),
        None => Ok(()),
    };
    if let Some(rx) = &err_rx {
        // The rest of stderr, for a second at most: a grandchild may still hold the pipe.
        let until = Instant::now() + Duration::from_secs(1);
        while let Ok(l) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            keep(&mut stderr, &l);
        }
    }
    match ended {
        Some(Ended::TimedOut) => {
            return Err(PeerFailure::Failed(format!(
                "`{program}` ran over its time limit of {:.1} s and was killed (raise peer_timeout_seconds in the suite); its last output: {}",
                limits.timeout.as_secs_f64(),
                tail(&format!("{stdout}\n{stderr}"), 3)
            )))
        }
        Some(Ended::Interrupted) => {
            return Err(PeerFailure::Failed(format!(
                "`{program}` was stopped by the interrupt"
            )))
        }
        None => {}
    }
    if let Some(e) = hook_err {
        return Err(PeerFailure::Failed(e));
    }
    stop.map_err(PeerFailure::Failed)?;
    let status =
        status.map_err(|e| PeerFailure::Failed(format!("waiting for `{program}`: {e}")))?;
    Ok(ProgramOutput {
        stdout,
        stderr,
        code: status.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    fn sh(script: &str, timeout_ms: u64) -> Result<ProgramOutput, PeerFailure> {
        run_program(
            "sh",
            &["-c".to_string(), script.to_string()],
            false,
            "",
            Limits::new(Duration::from_millis(timeout_ms), never),
            &mut NoWindow,
        )
    }

    #[test]
    fn output_and_exit_code_are_kept() {
        let o = sh("echo out; echo err >&2; exit 3", 10_000).unwrap();
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.stderr, "err\n");
        assert_eq!(o.code, Some(3));
    }

    #[test]
    fn a_program_over_its_limit_is_killed_with_its_children() {
        let dir = std::env::temp_dir().join(format!("jb-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let flag = dir.join("child-survived");
        let t = Instant::now();
        // A grandchild that would write the flag after 2 s, and a parent that waits for it.
        let e = sh(
            &format!("(sleep 2; touch '{}') & echo started; wait", flag.display()),
            300,
        )
        .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(matches!(e, PeerFailure::Failed(_)));
        assert!(e.reason().contains("time limit"), "{e}");
        assert!(e.reason().contains("started"), "{e}");
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!flag.exists(), "the grandchild outlived the kill");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_stop_flag_ends_a_program() {
        fn always() -> bool {
            true
        }
        let t = Instant::now();
        let e = run_program(
            "sleep",
            &["5".to_string()],
            false,
            "",
            Limits::new(Duration::from_secs(60), always),
            &mut NoWindow,
        )
        .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(4));
        assert!(e.reason().contains("interrupt"), "{e}");
    }

    #[test]
    fn a_missing_program_is_unavailable() {
        let e = run_program(
            "/nonexistent/peer-program",
            &[],
            false,
            "install it",
            Limits::new(Duration::from_secs(5), never),
            &mut NoWindow,
        )
        .unwrap_err();
        assert!(matches!(e, PeerFailure::Unavailable(_)), "{e}");
        assert!(e.reason().contains("install it"), "{e}");
    }

    #[test]
    fn the_window_opens_at_ready_and_the_program_is_told_to_go() {
        struct Rec(Vec<&'static str>);
        impl WindowHooks for Rec {
            fn start(&mut self, _pid: u32) -> Result<(), String> {
                self.0.push("start");
                Ok(())
            }
            fn stop(&mut self) -> Result<(), String> {
                self.0.push("stop");
                Ok(())
            }
        }
        let mut rec = Rec(Vec::new());
        let o = run_program(
            "sh",
            &[
                "-c".to_string(),
                "echo '{\"event\": \"ready\"}'; read go; echo \"got $go\"; echo '{\"event\": \"done\"}'; echo after"
                    .to_string(),
            ],
            true,
            "",
            Limits::new(Duration::from_secs(10), never),
            &mut rec,
        )
        .unwrap();
        assert!(o.stdout.contains("got go"), "{o:?}");
        assert_eq!(rec.0, ["start", "stop"]);
    }
}
