//! External commands (vcgencmd, nvpmodel, ...) run with a time limit and a
//! bounded output: one that hangs or prints without end is killed, with its
//! process group, and reported instead of hanging or exhausting memory.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a command gave no usable output.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CommandError {
    #[error("`{program}` not found; install it or give its path")]
    NotFound { program: String },
    #[error("`{command}` could not run: {reason}")]
    Spawn { command: String, reason: String },
    #[error("`{command}` did not finish within {seconds} s and was killed; is it hanging?")]
    Timeout { command: String, seconds: f64 },
    #[error(
        "`{command}` printed more than {cap} bytes and was killed; this is not the output \
         expected from it"
    )]
    TooMuchOutput { command: String, cap: usize },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

/// What a successful command printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

fn reader(
    mut pipe: impl Read + Send + 'static,
    cap: usize,
    over: Arc<AtomicBool>,
) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf.len() + n > cap {
                        over.store(true, Ordering::SeqCst);
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        buf
    })
}

/// Whether `program` can be found, before spawning it: where fork and exec
/// are emulated (QEMU user mode) a program that is not there shows up as an
/// exit status of 127, not as NotFound. A file that is there but not
/// executable counts as found, so that spawning it says what is wrong.
pub fn program_exists(program: &str) -> bool {
    which::which(program).is_ok()
        || (program.contains('/') && std::path::Path::new(program).exists())
}

/// Runs `program args` with no input, kills it (and its process group) after
/// `timeout` or once stdout or stderr passes `cap` bytes, and returns what it
/// printed if it exited with status 0.
pub fn run_bounded(
    program: &str,
    args: &[&str],
    timeout: Duration,
    cap: usize,
) -> Result<Output, CommandError> {
    let command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    if !program_exists(program) {
        return Err(CommandError::NotFound {
            program: program.into(),
        });
    }
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CommandError::NotFound {
                    program: program.into(),
                }
            } else {
                CommandError::Spawn {
                    command: command.clone(),
                    reason: e.to_string(),
                }
            }
        })?;
    let over = Arc::new(AtomicBool::new(false));
    let out = child
        .stdout
        .take()
        .map(|p| reader(p, cap, Arc::clone(&over)));
    let err = child
        .stderr
        .take()
        .map(|p| reader(p, cap, Arc::clone(&over)));
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let kill = || {
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    };
    let start = Instant::now();
    let status = loop {
        if over.load(Ordering::SeqCst) {
            kill();
            let _ = child.wait();
            return Err(CommandError::TooMuchOutput { command, cap });
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= timeout => {
                kill();
                let _ = child.wait();
                return Err(CommandError::Timeout {
                    command,
                    seconds: timeout.as_secs_f64(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                kill();
                return Err(CommandError::Spawn {
                    command,
                    reason: e.to_string(),
                });
            }
        }
    };
    // A child that exited may have left a process in its group holding the pipes.
    kill();
    let text = |h: Option<JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let (stdout, stderr) = (text(out), text(err));
    if over.load(Ordering::SeqCst) {
        return Err(CommandError::TooMuchOutput { command, cap });
    }
    if !status.success() {
        return Err(CommandError::Failed {
            command,
            status: status.to_string(),
            stderr: stderr.trim().to_string(),
        });
    }
    Ok(Output { stdout, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn output_of_a_quick_command_is_returned() {
        let o = run_bounded("sh", &["-c", "echo hi; echo err >&2"], T, 100).unwrap();
        assert_eq!(o.stdout, "hi\n");
        assert_eq!(o.stderr, "err\n");
    }

    #[test]
    fn a_hanging_command_is_killed_at_its_time_limit() {
        let start = Instant::now();
        let e =
            run_bounded("sh", &["-c", "sleep 30"], Duration::from_millis(300), 100).unwrap_err();
        assert!(matches!(e, CommandError::Timeout { .. }), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn endless_output_is_cut_and_refused() {
        let e = run_bounded("sh", &["-c", "yes"], Duration::from_secs(20), 1 << 16).unwrap_err();
        assert!(
            matches!(e, CommandError::TooMuchOutput { cap: 65536, .. }),
            "{e}"
        );
    }

    #[test]
    fn missing_and_failing_commands_say_so() {
        let e = run_bounded("/nonexistent/vcgencmd", &[], T, 100).unwrap_err();
        assert!(matches!(e, CommandError::NotFound { .. }), "{e}");
        let e = run_bounded("sh", &["-c", "echo bad >&2; exit 3"], T, 100).unwrap_err();
        assert!(e.to_string().contains("bad"), "{e}");
    }
}
