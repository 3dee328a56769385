//! Swap the Source: packages from a JSON Lines file (`{"attr": …, "package": {…}}` per line),
//! through the public Source trait, into the standard metadata phase.
//!
//!   cargo run --release --example custom_source
use std::io::BufRead;

use async_trait::async_trait;
use fdnix::config::Mode;
use fdnix::driver::{run, Components, RunOptions};
use fdnix::error::SourceError;
use fdnix::providers::duckdb_store::DuckDbStoreFactory;
use fdnix::raw::{RawEntry, RawPackage};
use fdnix::traits::{RawStream, Source};

struct JsonLines(std::path::PathBuf);

#[async_trait]
impl Source for JsonLines {
    fn describe(&self) -> String {
        format!("jsonl:{}", self.0.display())
    }
    async fn open(&self) -> Result<RawStream, SourceError> {
        let f = std::fs::File::open(&self.0).map_err(|e| SourceError::Io { path: self.0.clone(), source: e })?;
        let mut items = Vec::new();
        for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| SourceError::Io { path: self.0.clone(), source: e })?;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| SourceError::Json(format!("line {}: {e}", n + 1)))?;
            let attr = v["attr"].as_str().ok_or_else(|| SourceError::Json(format!("line {}: no attr", n + 1)))?.to_string();
            let package = serde_json::from_value::<RawPackage>(v["package"].clone()).map_err(|e| e.to_string());
            items.push(Ok(RawEntry { attr_path: attr, package }));
        }
        Ok(Box::pin(futures::stream::iter(items)))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir()?;
    // Make a JSON Lines file from the committed demo dump.
    let dump: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(root.join("fixtures/nixpkgs-demo.json"))?)?;
    let jsonl = dir.path().join("packages.jsonl");
    let mut text = String::new();
    for (k, v) in &dump {
        text.push_str(&serde_json::json!({"attr": k, "package": v}).to_string());
        text.push('\n');
    }
    std::fs::write(&jsonl, text)?;
    let out = dir.path().join("custom-source.duckdb");
    let store = DuckDbStoreFactory { ext_dir: std::env::var_os("FDNIX_EXTENSION_DIR").map(Into::into).unwrap_or_else(|| root.join(".fdnix/extensions")) };
    let s = run(&RunOptions::new(Mode::Metadata, &out), &Components { source: Some(&JsonLines(jsonl)), embedder: None, store: &store, sink: None }).await?;
    let m = s.metadata.expect("metadata phase ran");
    println!("custom source {}: {} packages, {} FTS rows", m.source, m.packages_written, m.fts_rows);
    anyhow::ensure!(m.packages_written as usize == dump.len() && m.fts_rows == m.packages_written);
    Ok(())
}
