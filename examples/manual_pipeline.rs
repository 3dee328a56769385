//! The whole pipeline wired by hand: a dump source, the lexical fake embedder, the DuckDB
//! store and a local directory sink, then a search over the published artifact.
//!
//!   cargo run --release --example manual_pipeline
use fdnix::config::Mode;
use fdnix::driver::{run, Components, RunOptions};
use fdnix::providers::{
    duckdb_store::DuckDbStoreFactory,
    embed_fake::LexicalEmbedder,
    search::{Filters, SearchDb},
    sink_local::dir_sink,
    source_file::FileSource,
};
use fdnix::traits::ArtifactSink;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ext = std::env::var_os("FDNIX_EXTENSION_DIR").map(Into::into).unwrap_or_else(|| root.join(".fdnix/extensions"));
    let dir = tempfile::tempdir()?;
    let source = FileSource::new(root.join("fixtures/nixpkgs-demo.json"));
    let embedder = LexicalEmbedder::new(128);
    let store = DuckDbStoreFactory { ext_dir: ext.clone() };
    let sink = dir_sink(dir.path().join("published"), "fdnix.duckdb");
    let mut opts = RunOptions::new(Mode::Both, dir.path().join("work/fdnix.duckdb"));
    opts.hnsw.m = 12;
    let summary = run(&opts, &Components { source: Some(&source), embedder: Some(&embedder), store: &store, sink: Some(&sink) }).await?;
    println!("indexed {} packages, {} vectors", summary.metadata.as_ref().map(|m| m.packages_written).unwrap_or(0), summary.embedding.as_ref().map(|e| e.embedded).unwrap_or(0));
    // Fetch what was published into a third place and search it.
    let fetched = dir.path().join("reader/fdnix.duckdb");
    std::fs::create_dir_all(fetched.parent().unwrap_or(dir.path()))?;
    let m = sink.fetch(&fetched).await?.expect("published");
    let db = SearchDb::open(&fetched, &ext)?;
    let hits = db.search("command line json processor", 5, &Filters::default(), Some(&embedder)).await?;
    for h in &hits {
        println!("  {} {} — {}", h.attribute_path, h.version, h.description.as_deref().unwrap_or(""));
    }
    anyhow::ensure!(m.package_count == 315 && hits.iter().take(5).any(|h| h.attribute_path == "jq"), "jq should be found");
    Ok(())
}
