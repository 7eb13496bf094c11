//! Errors from files, data and the environment (caller bugs panic instead; see DESIGN.md §4).

use std::path::PathBuf;

/// Everything in adjoint-nn that can fail because of a file, the data or the environment.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file is malformed.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (field number for CSV).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint does not match the model or is corrupt.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Training hit a non-finite loss or gradient under the "stop" policy.
    #[error("non-finite {what} at step {step}: {detail}")]
    NonFinite {
        /// "loss" or "gradient".
        what: String,
        /// Global step.
        step: usize,
        /// Diagnostic (e.g. the parameter with the largest gradient).
        detail: String,
    },
    /// Anything else, with a message that says what and where.
    #[error("{0}")]
    Other(String),
}

/// Result with [`NnError`].
pub type Result<T> = std::result::Result<T, NnError>;
