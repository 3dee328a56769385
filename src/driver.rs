//! The indexing run: metadata phase, embedding phase, publish. Works only against the traits.
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::{future::BoxFuture, FutureExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tracing::{info, warn};

use crate::artifact::{StartedFrom, WorkFile};
use crate::config::Mode;
use crate::doctext::{embedding_text, fts_text, text_hash};
use crate::error::{EmbedError, RunError};
use crate::manifest::{file_digest, Manifest, MANIFEST_FORMAT};
use crate::model::{Package, Skip};
use crate::normalize::normalize;
use crate::traits::{ArtifactSink, EmbedFilter, Embedder, FtsParams, HnswParams, Purpose, Source, Store, StoreFactory, VectorRow, VectorSpace};

/// Version of the artifact's table layout.
pub const SCHEMA_VERSION: u32 = 1;
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How many skipped packages are listed by name in the summary.
const SKIP_LIST_CAP: usize = 1000;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: Mode,
    pub output: PathBuf,
    /// An earlier artifact to start from (DUCKDB_PATH); defaults to `output`.
    pub seed_from: Option<PathBuf>,
    pub fts: FtsParams,
    pub hnsw: HnswParams,
    pub filter: EmbedFilter,
    /// Packages per store write.
    pub write_batch: usize,
    /// Texts per embed call; None: the embedder's largest batch.
    pub embed_batch: Option<usize>,
    /// Show progress bars (a terminal is attached).
    pub progress: bool,
    /// Build the HNSW index after embedding (on by default).
    pub vector_index: bool,
}

impl RunOptions {
    pub fn new(mode: Mode, output: impl Into<PathBuf>) -> Self {
        RunOptions {
            mode,
            output: output.into(),
            seed_from: None,
            fts: FtsParams { stemmer: "english".into(), stopwords: "english".into(), index_name: "packages_fts_idx".into() },
            hnsw: HnswParams { m: 16, ef_construction: 128, ef_search: 64 },
            filter: EmbedFilter::default(),
            write_batch: 2048,
            embed_batch: None,
            progress: false,
            vector_index: true,
        }
    }
}

/// The providers a run uses.
pub struct Components<'a> {
    pub source: Option<&'a dyn Source>,
    pub embedder: Option<&'a dyn Embedder>,
    pub store: &'a dyn StoreFactory,
    pub sink: Option<&'a dyn ArtifactSink>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MetadataSummary {
    pub source: String,
    pub entries_read: u64,
    pub packages_written: u64,
    pub fts_rows: u64,
    pub skipped: u64,
    /// reason → count
    pub skip_reasons: BTreeMap<String, u64>,
    /// The skipped packages by attribute path (first 1,000).
    pub skipped_packages: Vec<Skip>,
    pub warnings: Vec<String>,
    /// Time spent in store writes, and building the FTS index.
    pub write_seconds: f64,
    pub fts_seconds: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EmbeddingSummary {
    pub model: String,
    pub dimensions: usize,
    pub candidates: u64,
    pub embedded: u64,
    pub reused: u64,
    pub removed: u64,
    pub failed: u64,
    /// (package_id, reason) of texts that could not be embedded.
    pub failures: Vec<(String, String)>,
    pub calls: u64,
    pub retries: u64,
    pub throttles: u64,
    pub index_seconds: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub mode: Mode,
    pub output: PathBuf,
    pub started_from: StartedFrom,
    pub fetched: Option<Manifest>,
    pub metadata: Option<MetadataSummary>,
    pub embedding: Option<EmbeddingSummary>,
    pub published: Option<Manifest>,
    pub seconds: f64,
}

fn bar(progress: bool, len: Option<u64>, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let pb = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let tmpl = if len.is_some() {
        "{msg:12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})"
    } else {
        "{msg:12} [{elapsed_precise}] {spinner} {pos} ({per_sec})"
    };
    if let Ok(style) = ProgressStyle::with_template(tmpl) {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb
}

/// Runs the phases `opts.mode` asks for, then publishes when a sink is given.
pub async fn run(opts: &RunOptions, c: &Components<'_>) -> Result<RunSummary, RunError> {
    let t0 = Instant::now();
    let seed = opts.seed_from.clone().unwrap_or_else(|| opts.output.clone());
    let mut fetched = None;
    // With no local artifact, start from the published one: the embedding phase needs it,
    // and `both` reuses its vectors.
    if !crate::artifact::work_path(&opts.output).exists() && !seed.exists() {
        if let Some(sink) = c.sink {
            info!(sink = %sink.describe(), "no local artifact; fetching the published one");
            if let Some(parent) = seed.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| RunError::Io { path: parent.to_path_buf(), source })?;
            }
            fetched = sink.fetch(&seed).await?;
            if fetched.is_none() {
                info!("nothing published yet");
            }
        }
    }
    if opts.mode == Mode::Embedding && !seed.exists() && !crate::artifact::work_path(&opts.output).exists() {
        return Err(RunError::Precondition(format!(
            "embedding mode needs an existing artifact, but {} does not exist and no sink had one; run --mode metadata (or both) first",
            seed.display()
        )));
    }
    let (work, started_from) = WorkFile::prepare(&opts.output, Some(&seed))?;
    info!(work = %work.path().display(), ?started_from, "work file ready");
    let mut store = c.store.open(work.path())?;

    let metadata = if opts.mode.metadata() {
        let source = c.source.ok_or_else(|| RunError::Precondition("the metadata phase needs a source".into()))?;
        Some(metadata_phase(opts, source, store.as_mut()).await?)
    } else {
        None
    };
    let embedding = if opts.mode.embedding() {
        let embedder = c.embedder.ok_or_else(|| RunError::Precondition("the embedding phase needs an embedder".into()))?;
        Some(embedding_phase(opts, embedder, store.as_mut()).await?)
    } else {
        None
    };
    let counts = store.counts().await?;
    let info_map = store.info().await?;
    store.close().await?;
    let artifact = work.commit()?;
    info!(artifact = %artifact.display(), packages = counts.packages, embeddings = counts.embeddings, "artifact written");

    let published = match c.sink {
        Some(sink) => {
            let m = build_manifest(&artifact, &info_map, counts.packages, counts.embeddings)?;
            sink.publish(&artifact, &m).await?;
            info!(sink = %sink.describe(), sha256 = %m.sha256, size = m.size, "published");
            Some(m)
        }
        None => None,
    };
    Ok(RunSummary {
        mode: opts.mode,
        output: artifact,
        started_from,
        fetched,
        metadata,
        embedding,
        published,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The manifest for an artifact file.
pub fn build_manifest(path: &Path, info: &BTreeMap<String, String>, packages: u64, embeddings: u64) -> Result<Manifest, RunError> {
    let (sha256, size) = file_digest(path)?;
    Ok(Manifest {
        format: MANIFEST_FORMAT,
        sha256,
        size,
        schema_version: SCHEMA_VERSION,
        package_count: packages,
        embedding_count: embeddings,
        model: info.get("embedding_model").cloned().filter(|_| embeddings > 0),
        dimensions: info.get("embedding_dimensions").and_then(|d| d.parse().ok()).filter(|_| embeddings > 0),
        created_at: now_rfc3339(),
        tool_version: TOOL_VERSION.to_string(),
    })
}

/// UTC now as RFC 3339, without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Extract, normalise, write `packages` and `packages_fts_source`, build FTS.
pub async fn metadata_phase(opts: &RunOptions, source: &dyn Source, store: &mut dyn Store) -> Result<MetadataSummary, RunError> {
    let t0 = Instant::now();
    let mut s = MetadataSummary { source: source.describe(), ..Default::default() };
    info!(source = %s.source, "metadata phase: reading packages");
    let stream = source.open().await?;
    store.begin_packages().await?;
    let pb = bar(opts.progress, None, "packages");
    let cap = opts.write_batch.max(1);
    // Normalisation (and the FTS text) runs in its own task, so it overlaps with the store's
    // writes; batches cross a small bounded channel.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Normalized, RunError>>(4);
    let normalizer = tokio::spawn(normalize_batches(stream, cap, tx));
    while let Some(batch) = rx.recv().await {
        let b = batch?;
        s.entries_read += b.entries;
        for sk in b.skips {
            s.skipped += 1;
            *s.skip_reasons.entry(sk.reason.clone()).or_default() += 1;
            if s.skipped_packages.len() < SKIP_LIST_CAP {
                s.skipped_packages.push(sk);
            }
        }
        s.warnings.extend(b.warnings);
        if !b.packages.is_empty() {
            let t = Instant::now();
            store.write_packages(&b.packages, &b.texts).await?;
            s.write_seconds += t.elapsed().as_secs_f64();
            s.packages_written += b.packages.len() as u64;
        }
        pb.set_position(s.packages_written);
    }
    normalizer.await.map_err(|e| RunError::Precondition(format!("normaliser task failed: {e}")))?;
    pb.finish_and_clear();
    info!(packages = s.packages_written, skipped = s.skipped, "packages written; building the FTS index");
    let t_fts = Instant::now();
    s.fts_rows = store.finish_packages(&opts.fts).await?;
    s.fts_seconds = t_fts.elapsed().as_secs_f64();
    let mut info_rows = vec![
        ("source".to_string(), s.source.clone()),
        ("package_count".to_string(), s.packages_written.to_string()),
        ("fts_rows".to_string(), s.fts_rows.to_string()),
        ("skipped_count".to_string(), s.skipped.to_string()),
        ("metadata_built_at".to_string(), now_rfc3339()),
    ];
    if !s.skip_reasons.is_empty() {
        info_rows.push(("skip_reasons".to_string(), serde_json::to_string(&s.skip_reasons).unwrap_or_default()));
    }
    store.set_info(&info_rows).await?;
    s.seconds = t0.elapsed().as_secs_f64();
    info!(packages = s.packages_written, fts_rows = s.fts_rows, skipped = s.skipped, seconds = s.seconds, "metadata phase done");
    Ok(s)
}

/// A batch of normalised packages with their FTS texts, and what was skipped on the way.
#[derive(Default)]
struct Normalized {
    entries: u64,
    packages: Vec<Package>,
    texts: Vec<String>,
    skips: Vec<Skip>,
    warnings: Vec<String>,
}

async fn normalize_batches(mut stream: crate::traits::RawStream, cap: usize, tx: tokio::sync::mpsc::Sender<Result<Normalized, RunError>>) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut b = Normalized::default();
    while let Some(item) = stream.next().await {
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        b.entries += 1;
        let attr = entry.attr_path.clone();
        match normalize(entry) {
            Ok(n) => {
                if !seen.insert(n.package.package_id.clone()) {
                    b.skips.push(Skip { attr_path: attr, reason: "duplicate attribute path".into() });
                    continue;
                }
                for w in n.warnings {
                    b.warnings.push(format!("{}: {w}", n.package.package_id));
                }
                b.texts.push(fts_text(&n.package));
                b.packages.push(n.package);
            }
            Err(sk) => {
                warn!(attr_path = %sk.attr_path, reason = %sk.reason, "skipped package");
                b.skips.push(sk);
            }
        }
        if b.packages.len() >= cap {
            if tx.send(Ok(std::mem::take(&mut b))).await.is_err() {
                return;
            }
        }
    }
    let _ = tx.send(Ok(b)).await;
}

struct Item {
    id: String,
    text: String,
    hash: String,
}

/// Embeds `items`; a failing batch is split to isolate the texts that fail. Returns the
/// vectors and the (id, reason) of each text that could not be embedded. A fatal error
/// (credentials, configuration) stops the run.
fn embed_split<'a>(e: &'a dyn Embedder, items: Vec<Item>) -> BoxFuture<'a, Result<(Vec<VectorRow>, Vec<(String, String)>), EmbedError>> {
    async move {
        let texts: Vec<String> = items.iter().map(|i| i.text.clone()).collect();
        let dim = e.dimensions();
        let result = e.embed(&texts, Purpose::Document).await.and_then(|vs| {
            if vs.len() != items.len() {
                return Err(EmbedError::CountMismatch { got: vs.len(), want: items.len() });
            }
            if let Some(bad) = vs.iter().find(|v| v.len() != dim) {
                return Err(EmbedError::DimensionMismatch { got: bad.len(), want: dim });
            }
            Ok(vs)
        });
        match result {
            Ok(vectors) => {
                let mut rows = Vec::with_capacity(items.len());
                let mut failed = Vec::new();
                for (it, v) in items.into_iter().zip(vectors) {
                    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>();
                    if !norm.is_finite() || norm == 0.0 {
                        failed.push((it.id, "embedder returned a zero or non-finite vector".to_string()));
                    } else {
                        rows.push(VectorRow { package_id: it.id, vector: v, text_hash: it.hash });
                    }
                }
                Ok((rows, failed))
            }
            Err(err @ EmbedError::Fatal(_)) => Err(err),
            Err(err) if items.len() == 1 => {
                let id = items.into_iter().next().map(|i| i.id).unwrap_or_default();
                warn!(package_id = %id, error = %err, "text could not be embedded");
                Ok((Vec::new(), vec![(id, err.to_string())]))
            }
            Err(err) => {
                warn!(batch = items.len(), error = %err, "batch failed; splitting it to isolate the bad text");
                let mut items = items;
                let right = items.split_off(items.len() / 2);
                let (mut r1, mut f1) = embed_split(e, items).await?;
                let (r2, f2) = embed_split(e, right).await?;
                r1.extend(r2);
                f1.extend(f2);
                Ok((r1, f1))
            }
        }
    }
    .boxed()
}

/// Embeds what is missing, writes `embeddings`, builds HNSW.
pub async fn embedding_phase(opts: &RunOptions, embedder: &dyn Embedder, store: &mut dyn Store) -> Result<EmbeddingSummary, RunError> {
    let t0 = Instant::now();
    let info_map = store.info().await?;
    if info_map.get("packages_complete").map(String::as_str) != Some("true") {
        return Err(RunError::Precondition(
            "the artifact's package tables are missing or incomplete (an interrupted metadata run?); run --mode metadata or both first".into(),
        ));
    }
    let space = VectorSpace { model: embedder.model_id(), dimensions: embedder.dimensions() };
    let stats0 = embedder.stats();
    let mut s = EmbeddingSummary { model: space.model.clone(), dimensions: space.dimensions, ..Default::default() };
    let existing = store.prepare_vectors(&space).await?;
    let inputs = store.embedding_inputs(&opts.filter).await?;
    let max_chars = embedder.max_text_chars();
    s.candidates = inputs.len() as u64;
    let wanted: HashSet<&str> = inputs.iter().map(|d| d.package_id.as_str()).collect();
    let stale: Vec<String> = existing.keys().filter(|id| !wanted.contains(id.as_str())).cloned().collect();
    if !stale.is_empty() {
        s.removed = store.delete_vectors(&stale).await?;
    }
    let mut todo: Vec<Item> = Vec::new();
    for d in &inputs {
        let text = embedding_text(d, max_chars);
        let hash = text_hash(&text);
        if existing.get(&d.package_id) == Some(&hash) {
            s.reused += 1;
        } else {
            todo.push(Item { id: d.package_id.clone(), text, hash });
        }
    }
    drop(inputs);
    // Similar lengths in one batch waste less padding (local model) and cost nothing remotely.
    todo.sort_by_key(|i| i.text.len());
    info!(model = %space.model, dimensions = space.dimensions, candidates = s.candidates, reused = s.reused, removed = s.removed, to_embed = todo.len(), "embedding phase");
    let batch = opts.embed_batch.unwrap_or(embedder.max_batch()).clamp(1, embedder.max_batch().max(1));
    let mut chunks: Vec<Vec<Item>> = Vec::new();
    let mut it = todo.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(batch).collect());
    }
    let pb = bar(opts.progress, Some(chunks.iter().map(|c| c.len() as u64).sum()), "embedding");
    let mut results = futures::stream::iter(chunks.into_iter().map(|c| embed_split(embedder, c))).buffer_unordered(embedder.concurrency().max(1));
    let mut last_log = Instant::now();
    while let Some(r) = results.next().await {
        let (rows, failed) = r?;
        if !rows.is_empty() {
            store.write_vectors(&rows).await?;
        }
        s.embedded += rows.len() as u64;
        s.failed += failed.len() as u64;
        pb.inc((rows.len() + failed.len()) as u64);
        s.failures.extend(failed);
        if last_log.elapsed().as_secs() >= 10 {
            info!(embedded = s.embedded, failed = s.failed, "embedding progress");
            last_log = Instant::now();
        }
    }
    drop(results);
    pb.finish_and_clear();
    let t_index = Instant::now();
    if opts.vector_index {
        store.build_vector_index(&opts.hnsw).await?;
    }
    s.index_seconds = t_index.elapsed().as_secs_f64();
    let st = embedder.stats();
    s.calls = st.calls.saturating_sub(stats0.calls);
    s.retries = st.retries.saturating_sub(stats0.retries);
    s.throttles = st.throttles.saturating_sub(stats0.throttles);
    let counts = store.counts().await?;
    store
        .set_info(&[
            ("embedding_model".into(), space.model.clone()),
            ("embedding_dimensions".into(), space.dimensions.to_string()),
            ("embedding_count".into(), counts.embeddings.to_string()),
            ("embedding_failed".into(), s.failed.to_string()),
            ("embedded_at".into(), now_rfc3339()),
        ])
        .await?;
    s.seconds = t0.elapsed().as_secs_f64();
    info!(embedded = s.embedded, reused = s.reused, removed = s.removed, failed = s.failed, calls = s.calls, retries = s.retries, throttles = s.throttles, seconds = s.seconds, "embedding phase done");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::error::StoreError;
    use crate::raw::{RawEntry, RawPackage};
    use crate::traits::{Counts, DocFields, EmbedStats, MockEmbedder, MockSource};

    /// An in-memory Store double, recording what the driver asks of it.
    #[derive(Default, Clone)]
    struct Mem {
        packages: Arc<Mutex<Vec<Package>>>,
        vectors: Arc<Mutex<HashMap<String, VectorRow>>>,
        info: Arc<Mutex<BTreeMap<String, String>>>,
        index_builds: Arc<Mutex<u32>>,
    }

    #[async_trait]
    impl Store for Mem {
        async fn begin_packages(&mut self) -> Result<(), StoreError> {
            self.packages.lock().unwrap().clear();
            Ok(())
        }
        async fn write_packages(&mut self, p: &[Package], t: &[String]) -> Result<(), StoreError> {
            assert_eq!(p.len(), t.len());
            self.packages.lock().unwrap().extend_from_slice(p);
            Ok(())
        }
        async fn finish_packages(&mut self, _f: &FtsParams) -> Result<u64, StoreError> {
            self.info.lock().unwrap().insert("packages_complete".into(), "true".into());
            Ok(self.packages.lock().unwrap().len() as u64)
        }
        async fn embedding_inputs(&mut self, _f: &EmbedFilter) -> Result<Vec<DocFields>, StoreError> {
            Ok(self.packages.lock().unwrap().iter().filter(|p| !p.broken).map(DocFields::from).collect())
        }
        async fn prepare_vectors(&mut self, _s: &VectorSpace) -> Result<HashMap<String, String>, StoreError> {
            Ok(self.vectors.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.text_hash.clone())).collect())
        }
        async fn delete_vectors(&mut self, ids: &[String]) -> Result<u64, StoreError> {
            let mut v = self.vectors.lock().unwrap();
            Ok(ids.iter().filter(|i| v.remove(*i).is_some()).count() as u64)
        }
        async fn write_vectors(&mut self, rows: &[VectorRow]) -> Result<(), StoreError> {
            let mut v = self.vectors.lock().unwrap();
            for r in rows {
                v.insert(r.package_id.clone(), r.clone());
            }
            Ok(())
        }
        async fn build_vector_index(&mut self, _p: &HnswParams) -> Result<(), StoreError> {
            *self.index_builds.lock().unwrap() += 1;
            Ok(())
        }
        async fn set_info(&mut self, e: &[(String, String)]) -> Result<(), StoreError> {
            self.info.lock().unwrap().extend(e.iter().cloned());
            Ok(())
        }
        async fn info(&mut self) -> Result<BTreeMap<String, String>, StoreError> {
            Ok(self.info.lock().unwrap().clone())
        }
        async fn counts(&mut self) -> Result<Counts, StoreError> {
            Ok(Counts { packages: self.packages.lock().unwrap().len() as u64, fts_rows: 0, embeddings: self.vectors.lock().unwrap().len() as u64 })
        }
        async fn close(self: Box<Self>) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn entries() -> Vec<RawEntry> {
        let mk = |name: &str, broken: bool| {
            let p: RawPackage = serde_json::from_value(serde_json::json!({"pname": name, "version": "1", "meta": {"description": format!("{name} tool"), "broken": broken}})).unwrap();
            RawEntry::ok(name, p)
        };
        vec![mk("alpha", false), mk("beta", false), mk("gamma", true), mk("delta", false), RawEntry { attr_path: "junk".into(), package: Err("entry is a JSON number, not a package object".into()) }]
    }

    fn source() -> MockSource {
        let mut s = MockSource::new();
        s.expect_describe().return_const("mock".to_string());
        s.expect_open().returning(|| Ok(Box::pin(futures::stream::iter(entries().into_iter().map(Ok)))));
        s
    }

    #[tokio::test]
    async fn metadata_phase_counts_skips_and_writes_the_rest() {
        let mut store = Mem::default();
        let opts = RunOptions::new(Mode::Metadata, "/unused");
        let s = metadata_phase(&opts, &source(), &mut store).await.unwrap();
        assert_eq!(s.entries_read, 5);
        assert_eq!(s.packages_written, 4);
        assert_eq!(s.skipped, 1);
        assert_eq!(s.skipped_packages[0].attr_path, "junk");
        assert_eq!(s.skip_reasons.values().sum::<u64>(), 1);
        assert_eq!(store.packages.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn embedding_phase_isolates_a_bad_text_by_splitting() {
        let mut store = Mem::default();
        let opts = RunOptions::new(Mode::Both, "/unused");
        metadata_phase(&opts, &source(), &mut store).await.unwrap();
        let mut e = MockEmbedder::new();
        e.expect_model_id().return_const("mock-model".to_string());
        e.expect_dimensions().return_const(3usize);
        e.expect_max_batch().return_const(8usize);
        e.expect_max_text_chars().return_const(100usize);
        e.expect_concurrency().return_const(1usize);
        e.expect_stats().returning(EmbedStats::default);
        e.expect_embed().returning(|texts, purpose| {
            assert_eq!(purpose, Purpose::Document);
            if texts.iter().any(|t| t.starts_with("beta")) {
                return Err(EmbedError::Invalid("beta is rejected".into()));
            }
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0, 0.0]).collect())
        });
        let s = embedding_phase(&opts, &e, &mut store).await.unwrap();
        assert_eq!(s.candidates, 3, "broken gamma is not embedded");
        assert_eq!(s.embedded, 2);
        assert_eq!(s.failed, 1);
        assert_eq!(s.failures[0].0, "beta");
        let v = store.vectors.lock().unwrap();
        assert!(v.contains_key("alpha") && v.contains_key("delta") && !v.contains_key("beta"));
        assert_eq!(*store.index_builds.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn fatal_embedder_error_stops_the_phase() {
        let mut store = Mem::default();
        let opts = RunOptions::new(Mode::Both, "/unused");
        metadata_phase(&opts, &source(), &mut store).await.unwrap();
        let mut e = MockEmbedder::new();
        e.expect_model_id().return_const("m".to_string());
        e.expect_dimensions().return_const(3usize);
        e.expect_max_batch().return_const(8usize);
        e.expect_max_text_chars().return_const(100usize);
        e.expect_concurrency().return_const(1usize);
        e.expect_stats().returning(EmbedStats::default);
        e.expect_embed().times(1).returning(|_, _| Err(EmbedError::Fatal("no credentials".into())));
        let err = embedding_phase(&opts, &e, &mut store).await.unwrap_err();
        assert!(err.to_string().contains("no credentials"));
        assert!(store.vectors.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn wrong_vector_counts_and_dimensions_are_not_stored() {
        let mut store = Mem::default();
        let opts = RunOptions::new(Mode::Both, "/unused");
        metadata_phase(&opts, &source(), &mut store).await.unwrap();
        let mut e = MockEmbedder::new();
        e.expect_model_id().return_const("m".to_string());
        e.expect_dimensions().return_const(3usize);
        e.expect_max_batch().return_const(8usize);
        e.expect_max_text_chars().return_const(100usize);
        e.expect_concurrency().return_const(1usize);
        e.expect_stats().returning(EmbedStats::default);
        e.expect_embed().returning(|texts, _| Ok(texts.iter().map(|_| vec![1.0, 2.0]).collect()));
        let s = embedding_phase(&opts, &e, &mut store).await.unwrap();
        assert_eq!(s.embedded, 0);
        assert_eq!(s.failed, 3);
        assert!(s.failures.iter().all(|(_, why)| why.contains("dimensions")));
    }

    #[test]
    fn rfc3339_is_well_formed() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
