//! Experiment harness: runs the engine, times it, records results.

pub mod gemm_cmd;
pub mod infer_cmd;
pub mod models_cmd;
pub mod stats;

use crate::engine::EngineError;

/// Exit codes of the command-line contract.
pub mod exit {
    pub const RUNTIME: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const REGRESSION: i32 = 3;
}

/// The exit code for an error: 2 when the user's input is at fault, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
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
