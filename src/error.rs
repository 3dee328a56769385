//! Typed errors of the library. The binary edge wraps them in `anyhow`.
use std::path::PathBuf;

/// Errors raised by a [`crate::traits::Source`].
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },
    #[error("the package document is not a JSON object mapping attribute paths to packages: {0}")]
    NotAnObject(String),
    #[error("invalid JSON in package document: {0}")]
    Json(String),
    #[error("nix-env failed after {attempts} attempt(s): {status}; stderr tail:\n{stderr_tail}")]
    NixEnv { attempts: u32, status: String, stderr_tail: String },
    #[error("nix-env timed out after {secs} s (attempt {attempt})")]
    Timeout { secs: u64, attempt: u32 },
    #[error("source: {0}")]
    Other(String),
}

/// Errors raised by an [`crate::traits::Embedder`].
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum EmbedError {
    /// The request was rejected as invalid: retrying the same input cannot help.
    #[error("embedding request rejected: {0}")]
    Invalid(String),
    /// Throttled, timed out or failed on the server side; worth retrying later.
    #[error("transient embedding failure: {0}")]
    Transient(String),
    /// Misconfiguration or credentials: stop the run.
    #[error("embedder unusable: {0}")]
    Fatal(String),
    #[error("embedder returned {got} vectors for {want} texts")]
    CountMismatch { got: usize, want: usize },
    #[error("embedder returned a vector of {got} dimensions, expected {want}")]
    DimensionMismatch { got: usize, want: usize },
}

/// Errors raised by a [`crate::traits::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(String),
    #[error("{0}")]
    Missing(String),
    #[error("invalid store setting {name}: {reason}")]
    Setting { name: &'static str, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },
}

/// Errors raised by an [`crate::traits::ArtifactSink`].
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },
    #[error("checksum mismatch for {what}: manifest says sha256 {expected}, downloaded data has {actual}")]
    ChecksumMismatch { what: String, expected: String, actual: String },
    #[error("size mismatch for {what}: manifest says {expected} bytes, downloaded {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("invalid manifest {what}: {reason}")]
    BadManifest { what: String, reason: String },
    #[error("remote store error: {0}")]
    Remote(String),
}

/// Configuration errors always name the setting (and its environment variable).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(String),
    #[error("invalid {var}: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error("incomplete S3 settings: {missing} must be set together with {present} (set all of ARTIFACTS_BUCKET, DUCKDB_KEY and AWS_REGION, or none)")]
    PartialS3 { missing: String, present: String },
}

/// Errors of a whole indexing run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },
    #[error("{0}")]
    Precondition(String),
}
