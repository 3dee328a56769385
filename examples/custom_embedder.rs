//! Swap the Embedder: a custom character-histogram embedder, written against the public
//! trait only, drives the standard pipeline on the committed demo data.
//!
//!   cargo run --release --example custom_embedder
use async_trait::async_trait;
use fdnix::config::Mode;
use fdnix::driver::{run, Components, RunOptions};
use fdnix::error::EmbedError;
use fdnix::providers::{duckdb_store::DuckDbStoreFactory, source_file::FileSource};
use fdnix::traits::{Embedder, Purpose};

/// 26 letter frequencies plus a length feature, L2-normalised.
struct LetterHistogram;

#[async_trait]
impl Embedder for LetterHistogram {
    fn model_id(&self) -> String {
        "example-letter-histogram-27".into()
    }
    fn dimensions(&self) -> usize {
        27
    }
    fn max_batch(&self) -> usize {
        64
    }
    async fn embed(&self, texts: &[String], _p: Purpose) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 27];
                for c in t.to_lowercase().chars().filter(char::is_ascii_lowercase) {
                    v[(c as u8 - b'a') as usize] += 1.0;
                }
                v[26] = (t.len() as f32).ln_1p();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / n).collect()
            })
            .collect())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("custom-embedder.duckdb");
    let source = FileSource::new(root.join("fixtures/nixpkgs-demo.json"));
    let store = DuckDbStoreFactory { ext_dir: std::env::var_os("FDNIX_EXTENSION_DIR").map(Into::into).unwrap_or_else(|| root.join(".fdnix/extensions")) };
    let embedder = LetterHistogram;
    let s = run(&RunOptions::new(Mode::Both, &out), &Components { source: Some(&source), embedder: Some(&embedder), store: &store, sink: None }).await?;
    let e = s.embedding.expect("embedding phase ran");
    println!("custom embedder: {} vectors of {} dimensions from model {}", e.embedded, e.dimensions, e.model);
    anyhow::ensure!(e.embedded > 200 && e.failed == 0 && e.model == "example-letter-histogram-27");
    Ok(())
}
