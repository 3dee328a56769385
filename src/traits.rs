//! The four traits the core works against. Providers implement them; the core never names a
//! provider.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::{EmbedError, SinkError, SourceError, StoreError};
use crate::manifest::Manifest;
use crate::model::Package;
use crate::raw::RawEntry;

/// A stream of raw entries, produced as the source reads them.
pub type RawStream = Pin<Box<dyn Stream<Item = Result<RawEntry, SourceError>> + Send>>;

/// Gives raw packages (nix-env, a dump file, a channel's packages.json, …).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Source: Send + Sync {
    /// A short human description, recorded in the artifact's metadata.
    fn describe(&self) -> String;
    /// Starts reading; entries arrive on the stream as they are parsed.
    async fn open(&self) -> Result<RawStream, SourceError>;
}

/// What a text is embedded for (Cohere's `input_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    Document,
    Query,
}

/// Counters an embedder keeps about its own traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedStats {
    pub calls: u64,
    pub retries: u64,
    pub throttles: u64,
}

/// Turns texts into vectors.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model id recorded in the artifact (a change rebuilds every vector).
    fn model_id(&self) -> String;
    fn dimensions(&self) -> usize;
    /// Largest number of texts in one `embed` call.
    fn max_batch(&self) -> usize;
    /// Longest text (in characters) the model reads; longer text is cut by the caller.
    fn max_text_chars(&self) -> usize {
        2048
    }
    /// How many `embed` calls the driver should keep in flight.
    fn concurrency(&self) -> usize {
        1
    }
    /// Embeds a batch: one vector of `dimensions()` per text, in order.
    async fn embed(&self, texts: &[String], purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbedError>;
    fn stats(&self) -> EmbedStats {
        EmbedStats::default()
    }
}

/// FTS build settings (validated by the store before any SQL is built).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtsParams {
    pub stemmer: String,
    pub stopwords: String,
    pub index_name: String,
}

/// HNSW settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    pub m: u32,
    pub ef_construction: u32,
    pub ef_search: u32,
}

/// Which packages get vectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedFilter {
    pub include_broken: bool,
    pub include_insecure: bool,
    pub include_unsupported: bool,
    pub include_unavailable: bool,
}

/// The fields an embedding text is built from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocFields {
    pub package_id: String,
    pub package_name: String,
    pub main_program: Option<String>,
    pub description: Option<String>,
    pub long_description: Option<String>,
    pub homepage: Vec<String>,
    pub licenses: Vec<String>,
}

/// The vector space an artifact's embeddings live in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorSpace {
    pub model: String,
    pub dimensions: usize,
}

/// One vector to write.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorRow {
    pub package_id: String,
    pub vector: Vec<f32>,
    pub text_hash: String,
}

/// Row counts of an artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub packages: u64,
    pub fts_rows: u64,
    pub embeddings: u64,
}

/// Persists and indexes packages and vectors. One store works on one file.
#[async_trait]
pub trait Store: Send {
    /// Drops and recreates the package tables for a fresh metadata load.
    async fn begin_packages(&mut self) -> Result<(), StoreError>;
    /// Appends packages and their FTS documents (`fts_texts[i]` belongs to `packages[i]`).
    async fn write_packages(&mut self, packages: &[Package], fts_texts: &[String]) -> Result<(), StoreError>;
    /// Builds the FTS index; returns the number of indexed documents.
    async fn finish_packages(&mut self, fts: &FtsParams) -> Result<u64, StoreError>;
    /// The packages that should have a vector under `filter`.
    async fn embedding_inputs(&mut self, filter: &EmbedFilter) -> Result<Vec<DocFields>, StoreError>;
    /// Gets the vector table ready for `space`: drops the vector index, and drops every vector
    /// when the space differs from the recorded one (never mixes models). Removes vectors of
    /// packages that no longer exist. Returns package_id → text_hash of the vectors kept.
    async fn prepare_vectors(&mut self, space: &VectorSpace) -> Result<HashMap<String, String>, StoreError>;
    /// Deletes the vectors of these packages.
    async fn delete_vectors(&mut self, ids: &[String]) -> Result<u64, StoreError>;
    /// Inserts or replaces vectors, durably (committed when this returns).
    async fn write_vectors(&mut self, rows: &[VectorRow]) -> Result<(), StoreError>;
    /// Builds the vector index over all vectors.
    async fn build_vector_index(&mut self, params: &HnswParams) -> Result<(), StoreError>;
    /// Sets metadata entries.
    async fn set_info(&mut self, entries: &[(String, String)]) -> Result<(), StoreError>;
    /// All metadata entries.
    async fn info(&mut self) -> Result<BTreeMap<String, String>, StoreError>;
    async fn counts(&mut self) -> Result<Counts, StoreError>;
    /// Flushes and closes the file.
    async fn close(self: Box<Self>) -> Result<(), StoreError>;
}

/// Opens a [`Store`] on a file.
pub trait StoreFactory: Send + Sync {
    fn open(&self, path: &Path) -> Result<Box<dyn Store>, StoreError>;
}

/// Fetches and publishes the artifact.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ArtifactSink: Send + Sync {
    fn describe(&self) -> String;
    /// Downloads the current artifact to `dest` and verifies it against its manifest.
    /// `Ok(None)` when nothing has been published yet.
    async fn fetch(&self, dest: &Path) -> Result<Option<Manifest>, SinkError>;
    /// Publishes the artifact at `src`; the manifest becomes visible only after the artifact.
    async fn publish(&self, src: &Path, manifest: &Manifest) -> Result<(), SinkError>;
    /// The current manifest, if any.
    async fn manifest(&self) -> Result<Option<Manifest>, SinkError>;
}
