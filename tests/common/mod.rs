//! Shared test helpers.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

use fdnix::config::Mode;
use fdnix::driver::{run, Components, RunOptions, RunSummary};
use fdnix::providers;
use fdnix::traits::{ArtifactSink, Embedder, Source};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn ext_dir() -> PathBuf {
    std::env::var_os("FDNIX_EXTENSION_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join(".fdnix/extensions"))
}

pub fn model_dir() -> PathBuf {
    std::env::var_os("FDNIX_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join(".fdnix/models/all-MiniLM-L6-v2"))
}

/// `../shared/data/<name>` (CI lays shared/ beside the clone).
pub fn shared(name: &str) -> PathBuf {
    let p = repo().join("..").join("shared").join(name);
    assert!(p.exists(), "{} is missing: the tests need the shared data folder beside the repository", p.display());
    p
}

pub fn sample() -> PathBuf {
    shared("data/nixpkgs-sample.json")
}

pub fn demo() -> PathBuf {
    repo().join("fixtures/nixpkgs-demo.json")
}

pub fn store() -> providers::duckdb_store::DuckDbStoreFactory {
    providers::duckdb_store::DuckDbStoreFactory { ext_dir: ext_dir() }
}

pub async fn index(mode: Mode, out: &Path, source: Option<&dyn Source>, embedder: Option<&dyn Embedder>, sink: Option<&dyn ArtifactSink>) -> RunSummary {
    try_index(mode, out, source, embedder, sink).await.expect("index run")
}

pub async fn try_index(
    mode: Mode,
    out: &Path,
    source: Option<&dyn Source>,
    embedder: Option<&dyn Embedder>,
    sink: Option<&dyn ArtifactSink>,
) -> Result<RunSummary, fdnix::error::RunError> {
    let st = store();
    let opts = RunOptions::new(mode, out);
    run(&opts, &Components { source, embedder, store: &st, sink }).await
}

pub fn conn(path: &Path) -> duckdb::Connection {
    providers::duckdb_store::open_connection(Some(path), &ext_dir(), true).expect("open artifact")
}

pub fn count(c: &duckdb::Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Sets the offline AWS environment the SDK tests need.
pub fn aws_test_env() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDTEST");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test-secret");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::remove_var("AWS_BEARER_TOKEN_BEDROCK");
    std::env::remove_var("AWS_PROFILE");
}
