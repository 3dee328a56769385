//! Benchmarks with documented commands (figures go to BENCHMARKS.md):
//!
//!   cargo run --release --bin fdnix-bench -- metadata [DUMP]
//!   cargo run --release --bin fdnix-bench -- local-embed [DUMP] [N]
//!   cargo run --release --bin fdnix-bench -- bedrock [DUMP] [LATENCY_MS]
//!   cargo run --release --bin fdnix-bench -- hnsw [DUMP] [DIM]
//!
//! Each prints wall time, throughput and peak RSS (VmHWM) of this process.
#[path = "../../tests/support/bedrock_standin.rs"]
#[allow(dead_code)]
mod standin;

/// mimalloc: the metadata phase makes millions of small allocations (platform lists, JSON values).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use fdnix::config::Mode;
use fdnix::driver::{run, Components, RunOptions};
use fdnix::providers;
use fdnix::traits::Embedder;

const DEFAULT_DUMP: &str = "../shared/data/nixpkgs-packages.json.zst";

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn ext_dir() -> PathBuf {
    std::env::var_os("FDNIX_EXTENSION_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".fdnix/extensions"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("");
    let dump = PathBuf::from(args.get(1).cloned().unwrap_or_else(|| DEFAULT_DUMP.into()));
    match what {
        "metadata" => metadata(dump).await,
        "parse" => parse(dump).await,
        "local-embed" => local_embed(dump, args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2000)).await,
        "bedrock" => bedrock(dump, args.get(2).and_then(|n| n.parse().ok()).unwrap_or(200)).await,
        "hnsw" => hnsw(dump, args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1024)).await,
        "similarity" => similarity(&args[1..]).await,
        _ => bail!("usage: fdnix-bench metadata|parse|local-embed|bedrock|hnsw [DUMP] [ARG] | similarity QUERY TEXT..."),
    }
}

/// Parse (and normalise) only: where the metadata phase's time goes.
async fn parse(dump: PathBuf) -> Result<()> {
    use futures::StreamExt;
    let source = providers::source_file::FileSource::new(&dump);
    let t = Instant::now();
    let mut s = fdnix::traits::Source::open(&source).await?;
    let mut entries = Vec::new();
    while let Some(e) = s.next().await {
        entries.push(e?);
    }
    let parse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let n = entries.into_iter().filter_map(|e| fdnix::normalize::normalize(e).ok()).map(|p| fdnix::doctext::fts_text(&p.package).len()).count();
    println!("parse: {parse:.2} s to stream-parse; normalise + FTS text of {n} packages {:.2} s; peak RSS {:.0} MiB", t.elapsed().as_secs_f64(), peak_rss_mib());
    Ok(())
}

async fn metadata(dump: PathBuf) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("bench.duckdb");
    let source = providers::source_file::FileSource::new(&dump);
    let store = providers::duckdb_store::DuckDbStoreFactory { ext_dir: ext_dir() };
    let opts = RunOptions::new(Mode::Metadata, &out);
    let t = Instant::now();
    let s = run(&opts, &Components { source: Some(&source), embedder: None, store: &store, sink: None }).await?;
    let wall = t.elapsed().as_secs_f64();
    let m = s.metadata.context("no metadata summary")?;
    println!(
        "metadata: {} packages, {} FTS rows, {} skipped in {wall:.2} s ({:.0} packages/s; writes {:.1} s, FTS {:.1} s); peak RSS {:.0} MiB; artifact {:.1} MiB",
        m.packages_written,
        m.fts_rows,
        m.skipped,
        m.packages_written as f64 / wall,
        m.write_seconds,
        m.fts_seconds,
        peak_rss_mib(),
        std::fs::metadata(&out)?.len() as f64 / 1048576.0
    );
    Ok(())
}

/// Document texts of the dump's embeddable packages, via a metadata run.
async fn texts_of(dump: &PathBuf) -> Result<(tempfile::TempDir, PathBuf, Vec<String>)> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("texts.duckdb");
    let source = providers::source_file::FileSource::new(dump);
    let store = providers::duckdb_store::DuckDbStoreFactory { ext_dir: ext_dir() };
    run(&RunOptions::new(Mode::Metadata, &out), &Components { source: Some(&source), embedder: None, store: &store, sink: None }).await?;
    let mut st = fdnix::traits::StoreFactory::open(&store, &out)?;
    let docs = st.embedding_inputs(&Default::default()).await?;
    st.close().await?;
    let texts = docs.iter().map(|d| fdnix::doctext::embedding_text(d, 600)).collect();
    Ok((dir, out, texts))
}

async fn local_embed(dump: PathBuf, n: usize) -> Result<()> {
    let (_dir, _out, mut texts) = texts_of(&dump).await?;
    let total = texts.len();
    texts.truncate(n);
    texts.sort_by_key(|t| t.len());
    let model_dir = std::env::var_os("FDNIX_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".fdnix/models/all-MiniLM-L6-v2"));
    let e = providers::embed_local::LocalEmbedder::load(&model_dir, 0)?;
    let t = Instant::now();
    let batch = e.max_batch();
    let chunks: Vec<Vec<String>> = texts.chunks(batch).map(|c| c.to_vec()).collect();
    use futures::StreamExt;
    let mut s = futures::stream::iter(chunks.iter().map(|c| e.embed(c, fdnix::traits::Purpose::Document))).buffer_unordered(e.concurrency());
    let mut done = 0;
    while let Some(r) = s.next().await {
        done += r?.len();
    }
    let wall = t.elapsed().as_secs_f64();
    let rate = done as f64 / wall;
    println!(
        "local-embed: {done} texts (of {total} embeddable) in {wall:.1} s = {rate:.1} texts/s with {} workers; full dump estimate {:.1} min; peak RSS {:.0} MiB",
        e.concurrency(),
        total as f64 / rate / 60.0,
        peak_rss_mib()
    );
    Ok(())
}

async fn bedrock(dump: PathBuf, latency_ms: u64) -> Result<()> {
    let (_dir, out, texts) = texts_of(&dump).await?;
    let n = texts.len();
    let server = standin::StandIn::start().await?;
    server.state.latency_ms.store(latency_ms, std::sync::atomic::Ordering::Relaxed);
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDBENCH");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench-secret");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::remove_var("AWS_BEARER_TOKEN_BEDROCK");
    let conc: usize = std::env::var("BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let opts = providers::embed_bedrock::BedrockOptions { endpoint_url: Some(server.url()), concurrency: conc, ..Default::default() };
    let e = providers::embed_bedrock::BedrockEmbedder::from_env("us-east-1", opts).await?;
    let store = providers::duckdb_store::DuckDbStoreFactory { ext_dir: ext_dir() };
    let mut ro = RunOptions::new(Mode::Embedding, &out);
    // The index is measured by `hnsw`; here only the embedding traffic counts.
    ro.vector_index = false;
    let t = Instant::now();
    let s = run(&ro, &Components { source: None, embedder: Some(&e), store: &store, sink: None }).await?;
    let emb = s.embedding.context("no embedding summary")?;
    let wall = t.elapsed().as_secs_f64();
    let embed_wall = emb.seconds - emb.index_seconds;
    let rate = emb.embedded as f64 / embed_wall;
    let seed_rate = 1000.0 / latency_ms as f64; // one text per call, in sequence
    println!(
        "bedrock: {} of {n} texts embedded in {embed_wall:.1} s ({rate:.0} texts/s; {} calls, concurrency {conc}, {latency_ms} ms per call); seed (1 text/call, sequential) {seed_rate:.1} texts/s -> {:.0}x; {} retries, {} throttles; total {wall:.1} s; peak RSS {:.0} MiB",
        emb.embedded,
        emb.calls,
        rate / seed_rate,
        emb.retries,
        emb.throttles,
        peak_rss_mib()
    );
    // Incremental: change 2 % of descriptions, re-run, count calls.
    let changed = {
        let c = duckdb::Connection::open(&out)?;
        c.execute_batch("UPDATE packages SET description = coalesce(description, '') || ' (changed)' WHERE hash(package_id) % 50 = 0;")?;
        c.query_row("SELECT count(*) FROM packages WHERE description LIKE '% (changed)'", [], |r| r.get::<_, i64>(0))?
    };
    let before = e.stats().calls;
    let s2 = run(&ro, &Components { source: None, embedder: Some(&e), store: &store, sink: None }).await?;
    let emb2 = s2.embedding.context("no embedding summary")?;
    println!(
        "incremental: {changed} packages changed -> {} embedded, {} reused, {} calls ({:.1} % of the full run's {} calls)",
        emb2.embedded,
        emb2.reused,
        e.stats().calls - before,
        100.0 * (e.stats().calls - before) as f64 / emb.calls.max(1) as f64,
        emb.calls
    );
    Ok(())
}

async fn hnsw(dump: PathBuf, dim: usize) -> Result<()> {
    let (_dir, out, _texts) = texts_of(&dump).await?;
    let e = providers::embed_fake::HashEmbedder::new(dim);
    let store = providers::duckdb_store::DuckDbStoreFactory { ext_dir: ext_dir() };
    let mut ro = RunOptions::new(Mode::Embedding, &out);
    ro.hnsw.ef_construction = std::env::var("BENCH_EF_CONSTRUCTION").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    let s = run(&ro, &Components { source: None, embedder: Some(&e), store: &store, sink: None }).await?;
    let emb = s.embedding.context("no embedding summary")?;
    println!(
        "hnsw: {} vectors of {dim}-d, M=16, ef_construction={}: index built in {:.1} s; file {:.0} MiB; peak RSS {:.0} MiB",
        emb.embedded,
        ro.hnsw.ef_construction,
        emb.index_seconds,
        std::fs::metadata(&out)?.len() as f64 / 1048576.0,
        peak_rss_mib()
    );
    let conn = providers::duckdb_store::open_connection(Some(&out), &ext_dir(), true)?;
    let mut lat = Vec::new();
    for i in 0..50 {
        let q = e.vector(&format!("query {i}"));
        let lit = q.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(",");
        let sql = format!("SELECT package_id FROM embeddings ORDER BY array_cosine_distance(vector, [{lit}]::FLOAT[{dim}]) LIMIT 10");
        let t = Instant::now();
        let mut st = conn.prepare(&sql)?;
        let n = st.query_map([], |r| r.get::<_, String>(0))?.count();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(n, 10);
    }
    let plan: String = conn.query_row(
        &format!("EXPLAIN SELECT package_id FROM embeddings ORDER BY array_cosine_distance(vector, [{}]::FLOAT[{dim}]) LIMIT 10", vec!["0.1"; dim].join(",")),
        [],
        |r| r.get(1),
    )?;
    println!(
        "hnsw query k=10: p50 {:.1} ms, p95 {:.1} ms over 50 queries (plan uses HNSW_INDEX_SCAN: {})",
        fdnix::eval::percentile(&lat, 50.0),
        fdnix::eval::percentile(&lat, 95.0),
        plan.contains("HNSW")
    );
    Ok(())
}

/// `similarity QUERY TEXT...`: cosine of the local model's query vector to each text's
/// document vector (a probe for ranking experiments).
async fn similarity(args: &[String]) -> Result<()> {
    let Some((q, texts)) = args.split_first() else { bail!("usage: fdnix-bench similarity QUERY TEXT...") };
    let model_dir = std::env::var_os("FDNIX_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".fdnix/models/all-MiniLM-L6-v2"));
    let e = providers::embed_local::LocalEmbedder::load(&model_dir, 1)?;
    let qv = e.embed(&[q.clone()], fdnix::traits::Purpose::Query).await?;
    let dv = e.embed(texts, fdnix::traits::Purpose::Document).await?;
    for (t, v) in texts.iter().zip(&dv) {
        let c: f32 = qv[0].iter().zip(v).map(|(a, b)| a * b).sum();
        println!("{c:.4}  {t}");
    }
    Ok(())
}
