//! The crate's error type.
//!
//! Every variant names the record or file it is about, so a corrupted database, a flipped byte in a
//! blob or an edited manifest is reported as "which thing, where, what was wrong" rather than as a
//! bare SQLite or IO message. Nothing in this crate panics on bad files or bad data.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong when reading or writing a registry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation; `context` says which database and which record.
    #[error("registry database error ({context}): {source}")]
    Db {
        /// Which database file and which record or operation.
        context: String,
        /// The underlying SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being attempted ("read", "create", "rename", ...).
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: std::io::Error,
    },
    /// A stored record could not be parsed or is inconsistent with the rest of the registry.
    #[error("corrupt record {record}: {detail}")]
    Corrupt {
        /// The record ("run 2026…-ab12", "blob sha256:…", "manifest file …").
        record: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A blob file's content does not hash to its name: it was modified or damaged.
    #[error("blob {hash} at {} is corrupted: its content hashes to {actual}", path.display())]
    BlobMismatch {
        /// The expected SHA-256 (hex).
        hash: String,
        /// Where the blob lives.
        path: PathBuf,
        /// The SHA-256 the file actually has.
        actual: String,
    },
    /// A blob the database references is not on disk.
    #[error("blob {hash} is missing: expected at {}", path.display())]
    BlobMissing {
        /// The SHA-256 (hex).
        hash: String,
        /// Where it should be.
        path: PathBuf,
    },
    /// A signature does not match the signed content: the record was edited after signing.
    #[error("signature check failed for {record}: {detail}")]
    BadSignature {
        /// The record whose signature failed.
        record: String,
        /// Why.
        detail: String,
    },
    /// A record is signed by a key the registry does not trust.
    #[error(
        "{record} is signed by key {key}, which is not trusted by this registry (see `adjoint keys trust`)"
    )]
    UntrustedKey {
        /// The record.
        record: String,
        /// The signing key's id (hex public key).
        key: String,
    },
    /// A key tried to do something that the registry's policy reserves for writer keys.
    #[error("key {key} may not {action}: only keys listed as writers in the registry policy may (see `adjoint keys trust --writer`)")]
    NotWriter {
        /// The key that tried.
        key: String,
        /// What it tried to do.
        action: String,
    },
    /// An operation that writes signed records was attempted without a signing key.
    #[error("{action} requires a signing key: pass --key PATH or set ADJOINT_KEY")]
    NoKey {
        /// What needed the key.
        action: String,
    },
    /// A key file is unreadable, malformed or has unsafe permissions.
    #[error("key file {}: {detail}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A run, checkpoint, model, version or alias does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// An id prefix matches several records.
    #[error("{what} {prefix:?} is ambiguous: matches {matches}")]
    Ambiguous {
        /// What was being looked up.
        what: &'static str,
        /// The prefix given.
        prefix: String,
        /// Some of the matches.
        matches: String,
    },
    /// An argument (a model name, alias spec, metric value, ...) is malformed.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// A key tried to record or export data whose label the policy does not open to it.
    #[error("key {key} may not {action} data {data} (label {label}, owner {owner}): the registry policy's data_access does not list this key for {label:?}")]
    AccessDenied {
        /// The key that tried.
        key: String,
        /// What it tried.
        action: String,
        /// The data hash.
        data: String,
        /// The data's label.
        label: String,
        /// The data's owner.
        owner: String,
    },
    /// The release gate refused a promotion; each failed check is named.
    #[error("promotion to {target} refused by the release policy (recorded as gate decision #{record}); failed checks: {}; pass --override \"<reason>\" to promote anyway", failed.join("; "))]
    GateRefused {
        /// `model@alias`.
        target: String,
        /// The failed checks, each with its detail.
        failed: Vec<String>,
        /// The id of the signed refusal record.
        record: i64,
    },
    /// Reproducing a run failed before any comparison could be made.
    #[error("reproduce {run}: {detail}")]
    Reproduce {
        /// The run being reproduced.
        run: String,
        /// What went wrong.
        detail: String,
    },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io { action, path: path.into(), source }
    }

    pub(crate) fn corrupt(record: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt { record: record.into(), detail: detail.to_string() }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError::Invalid { what, detail: detail.to_string() }
    }
}
