//! Experiment harness: runs the engine, times it, records results.

// The data flow, one folder per stage: suite -> run -> record -> analyze / present.
pub mod analyze;
pub mod gemm_cmd;
pub mod infer_cmd;
pub mod inspect_cmd;
pub mod machine;
pub mod model_source;
pub mod models_cmd;
pub mod modes;
pub mod npy;
pub mod peers;
pub mod present;
pub mod record;
pub mod run;
pub mod suite;
pub mod tune_cmd;

use crate::engine::EngineError;
use crate::power::PowerError;
use std::path::PathBuf;
use thiserror::Error;

/// Errors of suites, runs and records.
#[derive(Debug, Error)]
pub enum HarnessError {
    /// Every problem found in a suite file.
    #[error("{0}")]
    Suite(suite::SuiteProblems),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// A results CSV is malformed or does not fit the operation.
    #[error("{path}: {reason}")]
    Records { path: PathBuf, reason: String },
    /// A command-line value is invalid.
    #[error("invalid `{name}`: {reason}")]
    Usage { name: &'static str, reason: String },
    /// The engine failed on a point.
    #[error("{context}: {source}")]
    Engine {
        context: String,
        #[source]
        source: EngineError,
    },
    /// A power source or counter failed.
    #[error("{context}: {source}")]
    Power {
        context: String,
        #[source]
        source: PowerError,
    },
    /// A power mode that cannot be set: no permission, a command missing, a
    /// setting the kernel clamps.
    #[error("{0}")]
    Mode(String),
    /// A peer engine failed during a measurement (recorded as a failed row).
    #[error("peer engine: {0}")]
    PeerEngine(String),
    /// Ctrl-C: the run stopped between points.
    #[error("interrupted; {0}")]
    Interrupted(String),
}

impl HarnessError {
    /// Whether the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            HarnessError::Suite(_)
            | HarnessError::Records { .. }
            | HarnessError::Usage { .. }
            | HarnessError::Mode(_) => true,
            HarnessError::Engine { source, .. } => source.is_bad_input(),
            HarnessError::Power { source, .. } => source.is_bad_input(),
            HarnessError::Io { .. }
            | HarnessError::Interrupted(_)
            | HarnessError::PeerEngine(_) => false,
        }
    }
}

/// Exit codes of the command-line contract.
pub mod exit {
    pub const RUNTIME: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const REGRESSION: i32 = 3;
}

/// The exit code for an error: 2 when the user's input is at fault, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<HarnessError>() {
            return if e.is_bad_input() {
                exit::BAD_INPUT
            } else {
                exit::RUNTIME
            };
        }
        if let Some(e) = cause.downcast_ref::<PowerError>() {
            return if e.is_bad_input() {
                exit::BAD_INPUT
            } else {
                exit::RUNTIME
            };
        }
        if let Some(e) = cause.downcast_ref::<EngineError>() {
            return if e.is_bad_input() {
                exit::BAD_INPUT
            } else {
                exit::RUNTIME
            };
        }
    }
    exit::RUNTIME
}
