//! `fdnix`: the command-line edge. Errors are `anyhow` here; the library's are typed.
mod compose;

/// mimalloc: the metadata phase makes millions of small allocations (platform lists, JSON values).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use fdnix::config::{Config, FlagOverrides, Mode};
use fdnix::driver::{run, Components, RunOptions};

#[derive(Parser, Debug)]
#[command(name = "fdnix", version, about = "Index nixpkgs into one DuckDB search artifact, and search it")]
struct Cli {
    /// TOML configuration file (also FDNIX_CONFIG). Precedence: defaults < file < environment < flags.
    #[arg(long, global = true, env = "FDNIX_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: auto (JSON when stderr is not a terminal), json or text.
    #[arg(long, global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Build (or update) the artifact: metadata, embeddings, publish.
    Index(IndexArgs),
    /// Search an artifact.
    Search(SearchArgs),
    /// Relevance benchmark: Success@10 and MRR@10 over a query set, per kind and overall.
    Relevance {
        /// The artifact (default: OUTPUT_PATH).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The query set (JSON: id, q, kind, expect).
        #[arg(long, default_value = "../shared/queries/queries.json")]
        queries: PathBuf,
        /// Skip vector search (BM25 and name matching only).
        #[arg(long)]
        no_vectors: bool,
        /// Print the whole report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an artifact's metadata and counts.
    Info {
        /// The artifact (default: OUTPUT_PATH).
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct SearchArgs {
    /// The artifact (default: OUTPUT_PATH).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Number of results.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Print one JSON array of results.
    #[arg(long)]
    json: bool,
    /// Only packages whose licenses are all free.
    #[arg(long)]
    free_only: bool,
    /// Only packages available on this platform (e.g. aarch64-darwin).
    #[arg(long)]
    platform: Option<String>,
    /// Include packages marked broken.
    #[arg(long)]
    include_broken: bool,
    /// Include packages marked insecure.
    #[arg(long)]
    include_insecure: bool,
    /// Skip vector search.
    #[arg(long)]
    no_vectors: bool,
    /// The query (words are joined with spaces).
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
    query: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct IndexArgs {
    /// Phases to run (PROCESSING_MODE).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// nix-env (default), file:PATH (a .json or .json.zst dump) or channel:PATH_OR_URL.
    #[arg(long)]
    source: Option<String>,
    /// Where to write the artifact (OUTPUT_PATH).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Earlier artifact to reuse vectors from (DUCKDB_PATH; default OUTPUT_PATH).
    #[arg(long)]
    duckdb_path: Option<PathBuf>,
    /// bedrock | local | fake | fake-lexical (EMBEDDER).
    #[arg(long)]
    embedder: Option<String>,
    /// s3 | dir:PATH | object_store URL (FDNIX_SINK); default s3 when ARTIFACTS_BUCKET is set.
    #[arg(long)]
    sink: Option<String>,
    /// nix-env expression file (-f).
    #[arg(long)]
    nix_file: Option<String>,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fdnix: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(real_main(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fdnix failed");
            eprintln!("fdnix: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn real_main(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Index(a) => {
            let flags = FlagOverrides {
                processing_mode: a.mode,
                output_path: a.output,
                duckdb_path: a.duckdb_path,
                source: a.source,
                embedder: a.embedder,
                sink: a.sink,
                nix_file: a.nix_file,
                log_format: cli.log_format,
            };
            let cfg = Config::from_process(cli.config.as_deref(), &flags)?;
            fdnix::telemetry::init(&cfg.log_format);
            index(&cfg, a.json).await
        }
        Cmd::Search(a) => {
            let flags = FlagOverrides { log_format: cli.log_format, ..Default::default() };
            let cfg = Config::from_process(cli.config.as_deref(), &flags)?;
            fdnix::telemetry::init_quiet(&cfg.log_format);
            search(&cfg, a).await
        }
        Cmd::Relevance { db, queries, no_vectors, json } => {
            let flags = FlagOverrides { log_format: cli.log_format, ..Default::default() };
            let cfg = Config::from_process(cli.config.as_deref(), &flags)?;
            fdnix::telemetry::init_quiet(&cfg.log_format);
            relevance(&cfg, db.unwrap_or_else(|| cfg.output_path.clone()), &queries, no_vectors, json).await
        }
        Cmd::Info { db } => {
            let flags = FlagOverrides { log_format: cli.log_format, ..Default::default() };
            let cfg = Config::from_process(cli.config.as_deref(), &flags)?;
            fdnix::telemetry::init(&cfg.log_format);
            info(&cfg, db.unwrap_or_else(|| cfg.output_path.clone()))
        }
    }
}

async fn index(cfg: &Config, json: bool) -> Result<()> {
    let mode = cfg.processing_mode;
    let source = if mode.metadata() { Some(compose::source(cfg)?) } else { None };
    let embedder = if mode.embedding() { Some(compose::embedder(cfg).await?) } else { None };
    let store = compose::store(cfg)?;
    let sink = compose::sink(cfg).await?;
    let opts = RunOptions {
        mode,
        output: cfg.output_path.clone(),
        seed_from: cfg.duckdb_path.clone(),
        fts: cfg.fts_params(),
        hnsw: cfg.hnsw_params(),
        filter: cfg.embed_filter(),
        write_batch: 2048,
        embed_batch: None,
        progress: fdnix::telemetry::interactive(),
        vector_index: true,
    };
    let components = Components { source: source.as_deref(), embedder: embedder.as_deref(), store: store.as_ref(), sink: sink.as_deref() };
    let summary = run(&opts, &components).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary).context("serialising the summary")?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &fdnix::RunSummary) {
    println!("artifact: {} ({:?}, started from {:?}, {:.1} s)", s.output.display(), s.mode, s.started_from, s.seconds);
    if let Some(m) = &s.metadata {
        println!("metadata: {} packages written, {} FTS rows, {} skipped, from {} ({:.1} s)", m.packages_written, m.fts_rows, m.skipped, m.source, m.seconds);
        for (reason, n) in &m.skip_reasons {
            println!("  skipped {n}: {reason}");
        }
        for sk in m.skipped_packages.iter().take(20) {
            println!("    {}: {}", sk.attr_path, sk.reason);
        }
        for w in m.warnings.iter().take(20) {
            println!("  warning: {w}");
        }
    }
    if let Some(e) = &s.embedding {
        println!(
            "embedding: model {} ({}-d): {} candidates, {} embedded, {} reused, {} removed, {} failed; {} calls, {} retries, {} throttles; index {:.1} s ({:.1} s)",
            e.model, e.dimensions, e.candidates, e.embedded, e.reused, e.removed, e.failed, e.calls, e.retries, e.throttles, e.index_seconds, e.seconds
        );
        for (id, why) in e.failures.iter().take(20) {
            println!("  failed {id}: {why}");
        }
    }
    if let Some(m) = &s.published {
        println!("published: sha256 {} ({} bytes)", m.sha256, m.size);
    }
}

#[cfg(feature = "duckdb-store")]
fn info(cfg: &Config, db: PathBuf) -> Result<()> {
    if !db.exists() {
        anyhow::bail!("artifact {} does not exist", db.display());
    }
    let conn = fdnix::providers::duckdb_store::open_connection(Some(&db), &cfg.extension_dir(), true)?;
    let mut st = conn.prepare("SELECT key, value FROM fdnix_metadata ORDER BY key")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))?;
    for r in rows {
        let (k, v) = r?;
        println!("{k}: {}", v.unwrap_or_default());
    }
    Ok(())
}

#[cfg(not(feature = "duckdb-store"))]
fn info(_cfg: &Config, _db: PathBuf) -> Result<()> {
    anyhow::bail!("this build has no DuckDB store")
}

#[cfg(feature = "duckdb-store")]
async fn open_search(cfg: &Config, db: &std::path::Path, no_vectors: bool) -> Result<(fdnix::providers::search::SearchDb, Option<Box<dyn fdnix::traits::Embedder>>)> {
    let sdb = fdnix::providers::search::SearchDb::open(db, &cfg.extension_dir())?;
    let embedder = match (no_vectors, sdb.model()) {
        (false, Some((model, _))) => match compose::embedder_for_model(cfg, &model).await {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "vector search disabled");
                None
            }
        },
        _ => None,
    };
    Ok((sdb, embedder))
}

#[cfg(feature = "duckdb-store")]
async fn search(cfg: &Config, a: SearchArgs) -> Result<()> {
    let db = a.db.clone().unwrap_or_else(|| cfg.output_path.clone());
    let (sdb, embedder) = open_search(cfg, &db, a.no_vectors).await?;
    let filters = fdnix::providers::search::Filters {
        free_only: a.free_only,
        platform: a.platform.clone(),
        include_broken: a.include_broken,
        include_insecure: a.include_insecure,
    };
    let q = a.query.join(" ");
    let hits = sdb.search(&q, a.limit, &filters, embedder.as_deref()).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&hits)?);
        return Ok(());
    }
    if hits.is_empty() {
        println!("no results for {q:?}");
    }
    for (i, h) in hits.iter().enumerate() {
        println!("{:>2}. {} {}  [{:.1}]", i + 1, h.attribute_path, h.version, h.score);
        if let Some(d) = &h.description {
            println!("    {d}");
        }
        println!("    why: {}", h.why.join("; "));
    }
    Ok(())
}

#[cfg(feature = "duckdb-store")]
async fn relevance(cfg: &Config, db: PathBuf, queries: &std::path::Path, no_vectors: bool, json: bool) -> Result<()> {
    use fdnix::eval::{first_hit, report, Query, QueryResult};
    let text = std::fs::read_to_string(queries).with_context(|| format!("reading {}", queries.display()))?;
    let qs: Vec<Query> = serde_json::from_str(&text).with_context(|| format!("parsing {}", queries.display()))?;
    let (sdb, embedder) = open_search(cfg, &db, no_vectors).await?;
    let filters = fdnix::providers::search::Filters::default();
    // Warm-up: load the model and the database pages once.
    let _ = sdb.search("warm up", 10, &filters, embedder.as_deref()).await?;
    let mut results = Vec::new();
    for q in &qs {
        let t = std::time::Instant::now();
        let hits = sdb.search(&q.q, 10, &filters, embedder.as_deref()).await?;
        let millis = t.elapsed().as_secs_f64() * 1000.0;
        let top: Vec<String> = hits.iter().map(|h| h.attribute_path.clone()).collect();
        results.push(QueryResult { id: q.id.clone(), q: q.q.clone(), kind: q.kind.clone(), rank: first_hit(&top, &q.expect), top, millis });
    }
    let rep = report(results);
    if json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
        return Ok(());
    }
    println!("artifact: {} | vectors: {}", db.display(), embedder.as_ref().map(|e| e.model_id()).unwrap_or_else(|| "off".into()));
    println!("{:<10} {:>7} {:>11} {:>8}", "kind", "queries", "Success@10", "MRR@10");
    for (k, s) in &rep.per_kind {
        println!("{:<10} {:>7} {:>11.3} {:>8.3}", k, s.queries, s.success_at_10, s.mrr_at_10);
    }
    println!("{:<10} {:>7} {:>11.3} {:>8.3}", "overall", rep.overall.queries, rep.overall.success_at_10, rep.overall.mrr_at_10);
    println!("latency: p50 {:.1} ms, p95 {:.1} ms", rep.p50_ms, rep.p95_ms);
    for r in &rep.results {
        if r.rank != Some(1) {
            println!("  {} {:?} ({}): rank {:?}; top: {}", r.id, r.q, r.kind, r.rank, r.top.iter().take(5).cloned().collect::<Vec<_>>().join(", "));
        }
    }
    Ok(())
}

#[cfg(not(feature = "duckdb-store"))]
async fn search(_cfg: &Config, _a: SearchArgs) -> Result<()> {
    anyhow::bail!("this build has no DuckDB store")
}

#[cfg(not(feature = "duckdb-store"))]
async fn relevance(_cfg: &Config, _db: PathBuf, _q: &std::path::Path, _n: bool, _j: bool) -> Result<()> {
    anyhow::bail!("this build has no DuckDB store")
}
