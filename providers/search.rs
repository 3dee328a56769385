//! Searching an artifact: candidate generators in SQL (every query text is a bound
//! parameter), fused by [`crate::rank`].
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use duckdb::Connection;
use serde::Serialize;

use crate::error::{EmbedError, StoreError};
use crate::rank::{fuse, typo_budget, Candidate, Signals, Weights};
use crate::traits::{Embedder, Purpose};

use super::bm25::{Bm25Index, Bm25Params};
use super::duckdb_store::{open_connection, FTS_SCHEMA};

/// Longest query text used (characters); the rest is ignored.
pub const MAX_QUERY_CHARS: usize = 256;
/// Candidates taken from each generator.
const PER_GENERATOR: usize = 60;

#[derive(Debug, Clone, Serialize)]
pub struct Filters {
    /// Only packages whose every license is free.
    pub free_only: bool,
    /// Only packages that list this platform (e.g. `aarch64-darwin`).
    pub platform: Option<String>,
    pub include_broken: bool,
    pub include_insecure: bool,
}

impl Default for Filters {
    fn default() -> Self {
        Filters { free_only: false, platform: None, include_broken: false, include_insecure: false }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub attribute_path: String,
    pub package_name: String,
    pub version: String,
    pub description: Option<String>,
    pub main_program: Option<String>,
    pub score: f64,
    pub why: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedding the query: {0}")]
    Embed(#[from] EmbedError),
    #[error("the artifact's vectors come from {artifact} ({artifact_dim}-d) but the query embedder is {embedder} ({embedder_dim}-d)")]
    ModelMismatch { artifact: String, artifact_dim: usize, embedder: String, embedder_dim: usize },
}

fn db(e: duckdb::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// One row of `search_names` (plus flags), held in memory for the name generators.
struct NameRow {
    id: String,
    package_name: String,
    main_program: Option<String>,
    maintainers: u32,
    name: String,
    last: String,
    attr: String,
    program: Option<String>,
    depth: i32,
    broken: bool,
    insecure: bool,
    free: bool,
    version: String,
    description: Option<String>,
    /// Other packages naming this one in their descriptions (see [`crate::rank::mention_counts`]).
    mentions: u32,
    /// Platforms the package is built for and outputs it is split into (see [`crate::rank::prior`]).
    platforms: u32,
    outputs: u32,
}

/// An artifact opened read-only for searching.
pub struct SearchDb {
    conn: Connection,
    pub info: BTreeMap<String, String>,
    has_vectors: bool,
    names: Vec<NameRow>,
    by_id: HashMap<String, usize>,
    bm25: Bm25Index,
    pub weights: Weights,
}


/// Optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions),
/// giving up early once it must exceed `max`.
pub fn osa_distance(a: &[char], b: &[char], max: usize) -> Option<usize> {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > max {
        return None;
    }
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[m]).filter(|d| *d <= max)
}

impl SearchDb {
    pub fn open(path: &Path, ext_dir: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(format!("artifact {} does not exist", path.display())));
        }
        let conn = open_connection(Some(path), ext_dir, true)?;
        let mut info = BTreeMap::new();
        {
            let mut st = conn.prepare("SELECT key, value FROM fdnix_metadata").map_err(db)?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default()))).map_err(db)?;
            for r in rows {
                let (k, v) = r.map_err(db)?;
                info.insert(k, v);
            }
        }
        let count = |sql: &str| -> Result<i64, StoreError> { conn.query_row(sql, [], |r| r.get(0)).map_err(db) };
        let has_vectors = count("SELECT count(*) FROM information_schema.tables WHERE table_name = 'embeddings'")? > 0
            && count("SELECT count(*) FROM embeddings")? > 0;
        if count(&format!("SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{FTS_SCHEMA}'"))? == 0
            || count("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('search_names', 'fts_postings')")? < 2
        {
            return Err(StoreError::Missing(format!("{} has no FTS index or search_names table: rebuild it with `fdnix index --mode metadata`", path.display())));
        }
        if let Some(ef) = info.get("hnsw_ef_search").and_then(|v| v.parse::<u32>().ok()) {
            // a parsed integer, not text
            conn.execute_batch(&format!("SET hnsw_ef_search = {ef};")).map_err(db)?;
        }
        let stemmer = info.get("fts_stemmer").cloned().unwrap_or_else(|| "english".into());
        if !super::duckdb_store::STEMMERS.contains(&stemmer.as_str()) {
            return Err(StoreError::Setting { name: "FTS_STEMMER", reason: format!("the artifact records an unknown stemmer `{stemmer}`") });
        }
        let mut names = Vec::new();
        {
            let mut st = conn
                .prepare(
                    "SELECT n.package_id, n.name, n.last, n.attr, n.program, p.attr_depth, p.broken, p.insecure, coalesce(n.free, false),
                            p.package_name, p.main_program, len(p.maintainers), p.version, p.description, len(p.platforms), len(p.outputs)
                     FROM search_names n JOIN packages p ON p.package_id = n.package_id",
                )
                .map_err(db)?;
            let rows = st
                .query_map([], |r| {
                    Ok(NameRow {
                        id: r.get(0)?,
                        name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        last: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        attr: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        program: r.get(4)?,
                        depth: r.get::<_, Option<i32>>(5)?.unwrap_or(0),
                        broken: r.get::<_, Option<bool>>(6)?.unwrap_or(false),
                        insecure: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
                        free: r.get(8)?,
                        package_name: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                        main_program: r.get(10)?,
                        maintainers: r.get::<_, Option<i64>>(11)?.unwrap_or(0) as u32,
                        version: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                        description: r.get(13)?,
                        mentions: 0,
                        platforms: r.get::<_, Option<i64>>(14)?.unwrap_or(0) as u32,
                        outputs: r.get::<_, Option<i64>>(15)?.unwrap_or(0) as u32,
                    })
                })
                .map_err(db)?;
            for r in rows {
                names.push(r.map_err(db)?);
            }
        }
        {
            let pnames: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
            let descs: Vec<Option<&str>> = names.iter().map(|n| n.description.as_deref()).collect();
            let counts = crate::rank::mention_counts(&pnames, &descs);
            for n in names.iter_mut() {
                let get = |k: &str| counts.get(k).copied().unwrap_or(0);
                n.mentions = get(&n.name).max(get(&n.last));
            }
        }
        let by_id = names.iter().enumerate().map(|(i, n)| (n.id.clone(), i)).collect();
        let bm25 = Bm25Index::load(&conn, &stemmer)?;
        Ok(SearchDb { conn, info, has_vectors, names, by_id, bm25, weights: Weights::default() })
    }

    /// The model the artifact's vectors were made with, if any.
    pub fn model(&self) -> Option<(String, usize)> {
        if !self.has_vectors {
            return None;
        }
        let m = self.info.get("embedding_model")?.clone();
        let d = self.info.get("embedding_dimensions")?.parse().ok()?;
        Some((m, d))
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// BM25 alone: the best `limit` packages for `q` with their scores (the same scores as
    /// the fts extension's `match_bm25` with the same `k` and `b`).
    pub fn bm25(&self, q: &str, limit: usize, p: Bm25Params) -> Result<Vec<(String, f64)>, StoreError> {
        self.bm25.search(&self.conn, q, limit, p, |_| true)
    }

    fn allowed(&self, id: &str, f: &Filters) -> bool {
        match self.by_id.get(id).map(|&i| &self.names[i]) {
            Some(n) => (f.include_broken || !n.broken) && (f.include_insecure || !n.insecure) && (!f.free_only || n.free),
            None => false,
        }
    }

    /// Top `limit` packages for `query`. The query embedder (if any) must match the artifact's
    /// recorded model; without one, vector search is skipped.
    pub async fn search(&self, query: &str, limit: usize, filters: &Filters, embedder: Option<&dyn Embedder>) -> Result<Vec<Hit>, SearchError> {
        let q: String = query.chars().filter(|c| !c.is_control()).take(MAX_QUERY_CHARS).collect::<String>().trim().to_lowercase();
        if q.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let qvec = match (embedder, self.model()) {
            (Some(e), Some((model, dim))) => {
                if e.model_id() != model || e.dimensions() != dim {
                    return Err(SearchError::ModelMismatch { artifact: model, artifact_dim: dim, embedder: e.model_id(), embedder_dim: e.dimensions() });
                }
                let t = std::time::Instant::now();
                let v = e.embed(&[q.clone()], Purpose::Query).await?.into_iter().next();
                tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "query embedded");
                v
            }
            _ => None,
        };
        Ok(self.search_with_vector(&q, limit, filters, qvec.as_deref())?)
    }

    /// Search with an already embedded query (or none).
    pub fn search_with_vector(&self, q: &str, limit: usize, f: &Filters, qvec: Option<&[f32]>) -> Result<Vec<Hit>, StoreError> {
        let t0 = std::time::Instant::now();
        let mut sig: HashMap<String, Signals> = HashMap::new();
        let single_word = !q.contains(char::is_whitespace);
        let qc: Vec<char> = q.chars().collect();

        // 1-3. names in memory: exact, prefix, typo
        let mut prefix: Vec<(usize, usize)> = Vec::new();
        let mut typo: Vec<(usize, usize)> = Vec::new();
        let budget = typo_budget(qc.len()) as usize;
        for (i, n) in self.names.iter().enumerate() {
            let ea = n.attr == q;
            let en = n.name == q || n.last == q;
            let ep = n.program.as_deref() == Some(q);
            if ea || en || ep {
                if self.allowed(&n.id, f) {
                    let s = sig.entry(n.id.clone()).or_default();
                    s.exact_attr |= ea;
                    s.exact_name |= en;
                    s.exact_program |= ep;
                }
                continue;
            }
            if !single_word {
                continue;
            }
            if qc.len() >= 2 && (n.name.starts_with(q) || n.last.starts_with(q)) {
                prefix.push((i, n.name.len().min(n.last.len())));
            }
            if budget > 0 {
                let mut best: Option<usize> = None;
                for cand in [&n.name, &n.last] {
                    if cand.len().abs_diff(q.len()) > budget * 4 || cand.chars().count().abs_diff(qc.len()) > budget {
                        continue;
                    }
                    let cc: Vec<char> = cand.chars().collect();
                    if let Some(d) = osa_distance(&cc, &qc, budget) {
                        best = Some(best.map_or(d, |b| b.min(d)));
                    }
                }
                if let Some(d) = best.filter(|d| *d > 0) {
                    typo.push((i, d));
                }
            }
        }
        prefix.retain(|(i, _)| self.allowed(&self.names[*i].id, f));
        prefix.sort_by(|a, b| (self.names[a.0].depth, a.1, &self.names[a.0].attr).cmp(&(self.names[b.0].depth, b.1, &self.names[b.0].attr)));
        for (i, _) in prefix.into_iter().take(PER_GENERATOR) {
            sig.entry(self.names[i].id.clone()).or_default().prefix = true;
        }
        typo.retain(|(i, _)| self.allowed(&self.names[*i].id, f));
        typo.sort_by(|a, b| (a.1, self.names[a.0].depth, &self.names[a.0].attr).cmp(&(b.1, self.names[b.0].depth, &self.names[b.0].attr)));
        for (i, d) in typo.into_iter().take(PER_GENERATOR) {
            sig.entry(self.names[i].id.clone()).or_default().typo = Some(d as u32);
        }

        let t_names = t0.elapsed();
        // 4. BM25 over the FTS index, scored in memory
        {
            let p = Bm25Params { k1: self.weights.bm25_k1, b: self.weights.bm25_b };
            let kept = self.bm25.search(&self.conn, q, PER_GENERATOR, p, |id| self.allowed(id, f))?;
            let top = kept.first().map(|k| k.1).unwrap_or(1.0).max(1e-9);
            for (i, (id, score)) in kept.into_iter().enumerate() {
                let s = sig.entry(id).or_default();
                s.bm25_rank = Some(i + 1);
                s.bm25_norm = Some((score / top).clamp(0.0, 1.0));
            }
        }

        let t_bm25 = t0.elapsed();
        // 5. vector kNN through the HNSW index
        if let (Some(v), Some((_, dim))) = (qvec, self.model()) {
            if v.len() == dim && v.iter().all(|x| x.is_finite()) {
                // The literal holds numbers the embedder produced, never user text.
                let lit = v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(",");
                let sql = format!(
                    "SELECT package_id, array_cosine_distance(vector, [{lit}]::FLOAT[{dim}]) AS dist FROM embeddings ORDER BY dist LIMIT {}",
                    PER_GENERATOR * 3
                );
                let mut st = self.conn.prepare(&sql).map_err(db)?;
                let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f32>(1)?))).map_err(db)?;
                let mut kept = Vec::new();
                for r in rows {
                    let (id, d) = r.map_err(db)?;
                    if self.allowed(&id, f) {
                        kept.push((id, 1.0 - d));
                        if kept.len() == PER_GENERATOR {
                            break;
                        }
                    }
                }
                let top = kept.first().map(|k| k.1).unwrap_or(1.0);
                for (i, (id, sim)) in kept.into_iter().enumerate() {
                    let s = sig.entry(id).or_default();
                    s.vector_rank = Some(i + 1);
                    s.vector_similarity = Some(sim);
                    s.vector_norm = Some((((sim - (top - VECTOR_BAND)) / VECTOR_BAND) as f64).clamp(0.0, 1.0));
                }
            }
        }

        let t_vec = t0.elapsed();
        // fuse in memory
        let list: Vec<Candidate> = sig
            .into_iter()
            .filter_map(|(id, signals)| {
                let n = &self.names[*self.by_id.get(&id)?];
                Some(Candidate {
                    attribute_path: id,
                    package_name: n.package_name.clone(),
                    version: String::new(),
                    description: None,
                    main_program: n.main_program.clone(),
                    attr_depth: n.depth,
                    broken: n.broken,
                    insecure: n.insecure,
                    maintainers: n.maintainers,
                    mentions: n.mentions,
                    platforms: n.platforms,
                    outputs: n.outputs,
                    signals,
                })
            })
            .collect();
        // Shown fields come from memory; only a platform filter needs the table.
        let mut on_platform = match &f.platform {
            Some(_) => Some(self.conn.prepare_cached("SELECT list_contains(platforms, CAST($2 AS VARCHAR)) FROM packages WHERE package_id = $1").map_err(db)?),
            None => None,
        };
        let mut hits = Vec::with_capacity(limit);
        for (c, score, why) in fuse(q, list, &self.weights) {
            if hits.len() == limit {
                break;
            }
            if let Some(st) = on_platform.as_mut() {
                let ok: Option<bool> = st.query_row(duckdb::params![c.attribute_path, f.platform], |r| r.get(0)).map_err(db)?;
                if ok != Some(true) {
                    continue;
                }
            }
            let Some(n) = self.by_id.get(&c.attribute_path).map(|&i| &self.names[i]) else { continue };
            hits.push(Hit {
                version: n.version.clone(),
                description: n.description.clone(),
                attribute_path: c.attribute_path,
                package_name: c.package_name,
                main_program: c.main_program,
                score,
                why,
            });
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(names_ms = ms(t_names), bm25_ms = ms(t_bm25 - t_names), vector_ms = ms(t_vec - t_bm25), fuse_ms = ms(t0.elapsed() - t_vec), "search stages");
        Ok(hits)
    }
}

/// Similarity band below the best vector hit that still contributes.
const VECTOR_BAND: f32 = 0.12;
