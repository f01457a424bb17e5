use thiserror::Error;

/// Errors the engine reports to its callers. Every variant says what was wrong
/// and, where it helps, what to do instead.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    /// A parameter is out of its valid range (zero sizes, zero threads, ...).
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// Operand shapes or strides do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A micro-kernel was requested that this CPU cannot run.
    #[error("kernel `{requested}` is not available on this CPU: {reason}")]
    KernelUnavailable { requested: String, reason: String },
    /// An ONNX model could not be imported.
    #[error(transparent)]
    Onnx(#[from] super::onnx::OnnxError),
    /// Buffers that do not fit in the machine's memory.
    #[error(transparent)]
    TooLarge(Box<crate::guard::SizeError>),
    /// The thread pool could not be created.
    #[error("could not start a pool of {threads} threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
}

impl From<crate::guard::SizeError> for EngineError {
    fn from(e: crate::guard::SizeError) -> Self {
        EngineError::TooLarge(Box::new(e))
    }
}

impl EngineError {
    /// Whether the caller's input is at fault (exit code 2) rather than the run.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, EngineError::ThreadPool { .. })
    }

    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        EngineError::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}
