//! The manifest published beside an artifact, shared by every sink.
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::SinkError;

pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub sha256: String,
    pub size: u64,
    pub schema_version: u32,
    pub package_count: u64,
    pub embedding_count: u64,
    pub model: Option<String>,
    pub dimensions: Option<usize>,
    pub created_at: String,
    pub tool_version: String,
}

impl Manifest {
    pub fn from_json(bytes: &[u8], what: &str) -> Result<Self, SinkError> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| SinkError::BadManifest { what: what.to_string(), reason: e.to_string() })?;
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SinkError::BadManifest { what: what.to_string(), reason: "sha256 is not 64 hex digits".into() });
        }
        Ok(m)
    }
}

/// sha256 and size of a file, streamed.
pub fn file_digest(path: &Path) -> Result<(String, u64), SinkError> {
    let io = |e| SinkError::Io { path: path.to_path_buf(), source: e };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), size))
}

/// Checks a downloaded file against its manifest.
pub fn verify_file(path: &Path, m: &Manifest, what: &str) -> Result<(), SinkError> {
    let (sha, size) = file_digest(path)?;
    if size != m.size {
        return Err(SinkError::SizeMismatch { what: what.to_string(), expected: m.size, actual: size });
    }
    if sha != m.sha256 {
        return Err(SinkError::ChecksumMismatch { what: what.to_string(), expected: m.sha256.clone(), actual: sha });
    }
    Ok(())
}
