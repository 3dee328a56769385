//! The publish protocol shared by every sink. A sink only has to store blobs
//! ([`BlobStore`]); [`ManifestSink`] turns that into an [`ArtifactSink`]:
//!
//! 1. the artifact is uploaded under a content-addressed key `KEY.v/<sha256[..16]>`;
//! 2. the manifest `KEY.manifest.json` (naming that object) is written: the commit point;
//! 3. the artifact is copied to `KEY` itself for readers that ignore manifests;
//! 4. the previous content-addressed object is deleted.
//!
//! A publish interrupted anywhere leaves a manifest whose object exists and matches it.
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::SinkError;
use crate::manifest::{verify_file, Manifest};
use crate::traits::ArtifactSink;

/// Minimal object storage: what a backend must do for [`ManifestSink`].
#[async_trait]
pub trait BlobStore: Send + Sync {
    fn describe(&self) -> String;
    /// Uploads a file (atomically visible: readers see the old object or the whole new one).
    async fn put_file(&self, key: &str, src: &Path) -> Result<(), SinkError>;
    async fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<(), SinkError>;
    /// `Ok(None)` when the key does not exist.
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError>;
    /// Downloads to `dest`; `Ok(false)` when the key does not exist.
    async fn get_file(&self, key: &str, dest: &Path) -> Result<bool, SinkError>;
    async fn copy(&self, from: &str, to: &str) -> Result<(), SinkError>;
    async fn delete(&self, key: &str) -> Result<(), SinkError>;
}

/// The manifest as stored: the shared [`Manifest`] plus the object that holds the artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    manifest: Manifest,
    object: String,
}

pub struct ManifestSink<B> {
    blobs: B,
    key: String,
}

impl<B: BlobStore> ManifestSink<B> {
    pub fn new(blobs: B, key: impl Into<String>) -> Self {
        ManifestSink { blobs, key: key.into() }
    }

    pub fn manifest_key(&self) -> String {
        format!("{}.manifest.json", self.key)
    }

    pub fn blobs(&self) -> &B {
        &self.blobs
    }

    async fn stored(&self) -> Result<Option<Stored>, SinkError> {
        let mk = self.manifest_key();
        match self.blobs.get_bytes(&mk).await? {
            None => Ok(None),
            Some(b) => {
                let what = format!("{} {mk}", self.blobs.describe());
                let manifest = Manifest::from_json(&b, &what)?;
                let object = serde_json::from_slice::<serde_json::Value>(&b)
                    .ok()
                    .and_then(|v| v.get("object").and_then(|o| o.as_str()).map(str::to_string))
                    .unwrap_or_else(|| self.key.clone());
                Ok(Some(Stored { manifest, object }))
            }
        }
    }
}

fn tmp_beside(dest: &Path) -> PathBuf {
    let mut n = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    n.push(".download");
    dest.with_file_name(n)
}

#[async_trait]
impl<B: BlobStore> ArtifactSink for ManifestSink<B> {
    fn describe(&self) -> String {
        format!("{} key {}", self.blobs.describe(), self.key)
    }

    async fn fetch(&self, dest: &Path) -> Result<Option<Manifest>, SinkError> {
        let Some(st) = self.stored().await? else { return Ok(None) };
        let tmp = tmp_beside(dest);
        if !self.blobs.get_file(&st.object, &tmp).await? {
            return Err(SinkError::BadManifest {
                what: format!("{} {}", self.blobs.describe(), self.manifest_key()),
                reason: format!("it names object {} which does not exist", st.object),
            });
        }
        let what = format!("{} {}", self.blobs.describe(), st.object);
        if let Err(e) = verify_file(&tmp, &st.manifest, &what) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, dest).map_err(|e| SinkError::Io { path: dest.to_path_buf(), source: e })?;
        Ok(Some(st.manifest))
    }

    async fn publish(&self, src: &Path, manifest: &Manifest) -> Result<(), SinkError> {
        let previous = self.stored().await.ok().flatten();
        let object = format!("{}.v/{}", self.key, &manifest.sha256[..16.min(manifest.sha256.len())]);
        self.blobs.put_file(&object, src).await?;
        let stored = Stored { manifest: manifest.clone(), object: object.clone() };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| SinkError::BadManifest { what: "new manifest".into(), reason: e.to_string() })?;
        self.blobs.put_bytes(&self.manifest_key(), bytes).await?;
        self.blobs.copy(&object, &self.key).await?;
        if let Some(prev) = previous {
            if prev.object != object && prev.object != self.key {
                if let Err(e) = self.blobs.delete(&prev.object).await {
                    tracing::warn!(object = %prev.object, error = %e, "could not delete the previous artifact object");
                }
            }
        }
        Ok(())
    }

    async fn manifest(&self) -> Result<Option<Manifest>, SinkError> {
        Ok(self.stored().await?.map(|s| s.manifest))
    }
}
