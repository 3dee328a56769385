//! Swap the ArtifactSink: an in-memory sink implementing the public trait directly, used by
//! the standard pipeline to publish, then to fetch for an embedding-only run.
//!
//!   cargo run --release --example custom_sink
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use fdnix::config::Mode;
use fdnix::driver::{run, Components, RunOptions};
use fdnix::error::SinkError;
use fdnix::manifest::{verify_file, Manifest};
use fdnix::providers::{duckdb_store::DuckDbStoreFactory, embed_fake::HashEmbedder, source_file::FileSource};
use fdnix::traits::ArtifactSink;

#[derive(Default)]
struct InMemory {
    current: Mutex<Option<(Vec<u8>, Manifest)>>,
    publishes: Mutex<u32>,
}

#[async_trait]
impl ArtifactSink for InMemory {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn fetch(&self, dest: &Path) -> Result<Option<Manifest>, SinkError> {
        let cur = self.current.lock().map_err(|_| SinkError::Remote("poisoned".into()))?.clone();
        let Some((bytes, m)) = cur else { return Ok(None) };
        std::fs::write(dest, bytes).map_err(|e| SinkError::Io { path: dest.into(), source: e })?;
        verify_file(dest, &m, "memory")?;
        Ok(Some(m))
    }
    async fn publish(&self, src: &Path, m: &Manifest) -> Result<(), SinkError> {
        let bytes = std::fs::read(src).map_err(|e| SinkError::Io { path: src.into(), source: e })?;
        *self.current.lock().map_err(|_| SinkError::Remote("poisoned".into()))? = Some((bytes, m.clone()));
        *self.publishes.lock().map_err(|_| SinkError::Remote("poisoned".into()))? += 1;
        Ok(())
    }
    async fn manifest(&self) -> Result<Option<Manifest>, SinkError> {
        Ok(self.current.lock().map_err(|_| SinkError::Remote("poisoned".into()))?.as_ref().map(|(_, m)| m.clone()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let store = DuckDbStoreFactory { ext_dir: std::env::var_os("FDNIX_EXTENSION_DIR").map(Into::into).unwrap_or_else(|| root.join(".fdnix/extensions")) };
    let sink = InMemory::default();
    let a = tempfile::tempdir()?;
    let source = FileSource::new(root.join("fixtures/nixpkgs-demo.json"));
    run(&RunOptions::new(Mode::Metadata, a.path().join("fdnix.duckdb")), &Components { source: Some(&source), embedder: None, store: &store, sink: Some(&sink) }).await?;
    // A fresh folder: the embedding phase fetches the published artifact, then republishes it.
    let b = tempfile::tempdir()?;
    let e = HashEmbedder::new(16);
    let s = run(&RunOptions::new(Mode::Embedding, b.path().join("fdnix.duckdb")), &Components { source: None, embedder: Some(&e), store: &store, sink: Some(&sink) }).await?;
    let m = sink.manifest().await?.expect("published");
    println!("custom sink: fetched {:?}, published {} times, manifest has {} packages and {} embeddings", s.fetched.is_some(), sink.publishes.lock().map(|p| *p).unwrap_or(0), m.package_count, m.embedding_count);
    anyhow::ensure!(s.fetched.is_some() && m.embedding_count > 200 && m.package_count == 315);
    Ok(())
}
