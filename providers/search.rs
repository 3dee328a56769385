//! Searching an artifact: candidate generators in SQL (every query text is a bound
//! parameter), fused by [`crate::rank`].
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use duckdb::Connection;
use serde::Serialize;

use crate::error::{EmbedError, StoreError};
use crate::rank::{fuse, typo_budget, Candidate, Weights};
use crate::traits::{Embedder, Purpose};

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

/// An artifact opened read-only for searching.
pub struct SearchDb {
    conn: Connection,
    pub info: BTreeMap<String, String>,
    has_vectors: bool,
    has_fts: bool,
    /// The FTS stemmer the index was built with (validated against the fixed list).
    stemmer: String,
    pub weights: Weights,
}

const COLS: &str = "p.package_id, p.attribute_path, p.package_name, p.version, p.description, p.main_program, p.attr_depth, p.broken, p.insecure, len(p.maintainers)";

/// Filter predicate over `p`; parameters: include_broken, include_insecure, free_only, platform, platform.
const FILTER: &str = "(? OR NOT p.broken) AND (? OR NOT p.insecure)
    AND (NOT ? OR n.free)
    AND (CAST(? AS VARCHAR) IS NULL OR list_contains(p.platforms, CAST(? AS VARCHAR)))";

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
        let has_fts = count(&format!("SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{FTS_SCHEMA}'"))? > 0;
        if let Some(ef) = info.get("hnsw_ef_search").and_then(|v| v.parse::<u32>().ok()) {
            // a parsed integer, not text
            conn.execute_batch(&format!("SET hnsw_ef_search = {ef};")).map_err(db)?;
        }
        let stemmer = info.get("fts_stemmer").cloned().unwrap_or_else(|| "english".into());
        if !super::duckdb_store::STEMMERS.contains(&stemmer.as_str()) {
            return Err(StoreError::Setting { name: "FTS_STEMMER", reason: format!("the artifact records an unknown stemmer `{stemmer}`") });
        }
        if count("SELECT count(*) FROM information_schema.tables WHERE table_name = 'search_names'")? == 0 {
            return Err(StoreError::Missing(format!("{} has no search_names table: rebuild it with `fdnix index --mode metadata`", path.display())));
        }
        Ok(SearchDb { conn, info, has_vectors, has_fts, stemmer, weights: Weights::default() })
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

    /// Runs a generator query (its first 10 columns are [`COLS`]); merges new candidates into
    /// `out` and returns each row's id with the extra value `extra` reads from the row.
    fn collect<T>(
        &self,
        sql: &str,
        p: &[&dyn duckdb::ToSql],
        out: &mut HashMap<String, Candidate>,
        order: &mut Vec<String>,
        extra: impl Fn(&duckdb::Row<'_>) -> duckdb::Result<T>,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut st = self.conn.prepare(sql).map_err(db)?;
        let rows = st
            .query_map(p, |r| {
                let c = Candidate {
                    attribute_path: r.get(1)?,
                    package_name: r.get(2)?,
                    version: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    description: r.get(4)?,
                    main_program: r.get(5)?,
                    attr_depth: r.get::<_, Option<i32>>(6)?.unwrap_or(0),
                    broken: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
                    insecure: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                    maintainers: r.get::<_, Option<i64>>(9)?.unwrap_or(0) as u32,
                    signals: Default::default(),
                };
                Ok((r.get::<_, String>(0)?, c, extra(r)?))
            })
            .map_err(db)?;
        let mut ids = Vec::new();
        for r in rows {
            let (id, c, x) = r.map_err(db)?;
            if !out.contains_key(&id) {
                order.push(id.clone());
                out.insert(id.clone(), c);
            }
            ids.push((id, x));
        }
        Ok(ids)
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
                e.embed(&[q.clone()], Purpose::Query).await?.into_iter().next()
            }
            _ => None,
        };
        Ok(self.search_with_vector(&q, limit, filters, qvec.as_deref())?)
    }

    /// Search with an already embedded query (or none).
    pub fn search_with_vector(&self, q: &str, limit: usize, f: &Filters, qvec: Option<&[f32]>) -> Result<Vec<Hit>, StoreError> {
        let mut cands: HashMap<String, Candidate> = HashMap::new();
        let mut order = Vec::new();
        let plat = f.platform.clone();
        let single_word = !q.contains(char::is_whitespace);
        let fp: [&dyn duckdb::ToSql; 5] = [&f.include_broken, &f.include_insecure, &f.free_only, &plat, &plat];

        // 1. exact: attribute path, pname, last path segment, mainProgram
        let sql = format!(
            "SELECT {COLS}, n.attr = $1 AS ea, (n.name = $1 OR n.last = $1) AS en, coalesce(n.program = $1, false) AS ep
             FROM search_names n JOIN packages p ON p.package_id = n.package_id
             WHERE (n.attr = $1 OR n.name = $1 OR n.program = $1 OR n.last = $1) AND {} LIMIT 200",
            numbered(FILTER, 2)
        );
        {
            let mut p: Vec<&dyn duckdb::ToSql> = vec![&q];
            p.extend_from_slice(&fp);
            let rows = self.collect(&sql, &p, &mut cands, &mut order, |r| Ok((r.get::<_, bool>(10)?, r.get::<_, bool>(11)?, r.get::<_, bool>(12)?)))?;
            for (id, (ea, en, ep)) in rows {
                if let Some(c) = cands.get_mut(&id) {
                    c.signals.exact_attr |= ea;
                    c.signals.exact_name |= en;
                    c.signals.exact_program |= ep;
                }
            }
        }

        // 2. prefix of a name (single words of 2+ characters)
        if single_word && q.chars().count() >= 2 {
            let sql = format!(
                "SELECT {COLS} FROM search_names n JOIN packages p ON p.package_id = n.package_id
                 WHERE (starts_with(n.name, $1) OR starts_with(n.last, $1)) AND {}
                 ORDER BY p.attr_depth, least(length(n.name), length(n.last)), p.attribute_path LIMIT {PER_GENERATOR}",
                numbered(FILTER, 2)
            );
            let mut p: Vec<&dyn duckdb::ToSql> = vec![&q];
            p.extend_from_slice(&fp);
            for (id, ()) in self.collect(&sql, &p, &mut cands, &mut order, |_| Ok(()))? {
                if let Some(c) = cands.get_mut(&id) {
                    c.signals.prefix = true;
                }
            }
        }

        // 3. typo tolerance on names
        let qlen = q.chars().count();
        let budget = typo_budget(qlen);
        if single_word && budget > 0 {
            let sql = format!(
                "SELECT {COLS}, least(damerau_levenshtein(n.name, $1), damerau_levenshtein(n.last, $1)) AS d
                 FROM search_names n JOIN packages p ON p.package_id = n.package_id
                 WHERE (length(n.name) BETWEEN $2 AND $3 OR length(n.last) BETWEEN $2 AND $3)
                   AND least(damerau_levenshtein(n.name, $1), damerau_levenshtein(n.last, $1)) <= $4 AND {}
                 ORDER BY d, p.attr_depth, p.attribute_path LIMIT {PER_GENERATOR}",
                numbered(FILTER, 5)
            );
            let (lo, hi, b) = (qlen.saturating_sub(budget as usize) as i64, (qlen + budget as usize) as i64, budget as i64);
            let mut p: Vec<&dyn duckdb::ToSql> = vec![&q, &lo, &hi, &b];
            p.extend_from_slice(&fp);
            let dist = self.collect(&sql, &p, &mut cands, &mut order, |r| r.get::<_, i64>(10))?;
            for (id, d) in dist {
                if let Some(c) = cands.get_mut(&id) {
                    c.signals.typo = Some(d as u32);
                }
            }
        }

        // 4. BM25
        if self.has_fts {
            let bm25 = bm25_cte(&self.stemmer);
            let sql = format!(
                "{bm25} SELECT {COLS} FROM sc f JOIN packages p ON p.package_id = f.package_id JOIN search_names n ON n.package_id = p.package_id
                 WHERE {} ORDER BY f.score DESC, p.attribute_path LIMIT {PER_GENERATOR}",
                numbered(FILTER, 2)
            );
            let mut p: Vec<&dyn duckdb::ToSql> = vec![&q];
            p.extend_from_slice(&fp);
            for (i, (id, ())) in self.collect(&sql, &p, &mut cands, &mut order, |_| Ok(()))?.into_iter().enumerate() {
                if let Some(c) = cands.get_mut(&id) {
                    c.signals.bm25_rank = Some(i + 1);
                }
            }
        }

        // 5. vector kNN through the HNSW index
        if let (Some(v), Some((_, dim))) = (qvec, self.model()) {
            if v.len() == dim && v.iter().all(|x| x.is_finite()) {
                // The literal holds numbers the embedder produced, never user text.
                let lit = v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(",");
                let sql = format!(
                    "SELECT {COLS}, k.dist FROM (SELECT package_id, array_cosine_distance(vector, [{lit}]::FLOAT[{dim}]) AS dist FROM embeddings ORDER BY dist LIMIT {}) k
                     JOIN packages p ON p.package_id = k.package_id JOIN search_names n ON n.package_id = p.package_id
                     WHERE {} ORDER BY k.dist, p.attribute_path LIMIT {PER_GENERATOR}",
                    PER_GENERATOR * 2,
                    numbered(FILTER, 1)
                );
                let p: Vec<&dyn duckdb::ToSql> = fp.to_vec();
                let sims = self.collect(&sql, &p, &mut cands, &mut order, |r| r.get::<_, f32>(10))?;
                for (i, (id, d)) in sims.into_iter().enumerate() {
                    if let Some(c) = cands.get_mut(&id) {
                        c.signals.vector_rank = Some(i + 1);
                        c.signals.vector_similarity = Some(1.0 - d);
                    }
                }
            }
        }

        let list: Vec<Candidate> = order.into_iter().filter_map(|id| cands.remove(&id)).collect();
        Ok(fuse(q, list, &self.weights)
            .into_iter()
            .take(limit)
            .map(|(c, score, why)| Hit {
                attribute_path: c.attribute_path,
                package_name: c.package_name,
                version: c.version,
                description: c.description,
                main_program: c.main_program,
                score,
                why,
            })
            .collect())
    }
}

/// Okapi BM25 (k1 = 1.2, b = 0.75, log10 idf: the same scores as the fts extension's
/// `match_bm25`) over the index's own tables, touching only the postings of the query's
/// terms instead of scoring every document. Defines the CTE `sc(package_id, score)` for the
/// query text `$1`. `stemmer` must come from [`super::duckdb_store::STEMMERS`].
pub fn bm25_cte(stemmer: &str) -> String {
    let stem = if super::duckdb_store::STEMMERS.contains(&stemmer) { stemmer } else { "none" };
    format!(
        "WITH q AS (SELECT DISTINCT stem(unnest({FTS_SCHEMA}.tokenize($1)), '{stem}') AS term),
              qt AS (SELECT d.termid, d.df FROM {FTS_SCHEMA}.dict d JOIN q ON d.term = q.term
                     WHERE q.term NOT IN (SELECT sw FROM {FTS_SCHEMA}.stopwords)),
              tf AS (SELECT t.docid, t.termid, count(*) AS tf FROM {FTS_SCHEMA}.terms t JOIN qt USING (termid) GROUP BY ALL),
              sc AS (SELECT docs.name AS package_id,
                            sum(log((st.num_docs - qt.df + 0.5) / (qt.df + 0.5) + 1) * tf.tf * 2.2
                                / (tf.tf + 1.2 * (0.25 + 0.75 * docs.len / st.avgdl))) AS score
                     FROM tf JOIN qt USING (termid) JOIN {FTS_SCHEMA}.docs docs USING (docid), {FTS_SCHEMA}.stats st
                     GROUP BY docs.name)"
    )
}

/// Numbers the `?` placeholders of a fragment from `start` (`?` → `$5`, `$6`, …).
fn numbered(fragment: &str, start: usize) -> String {
    let mut out = String::with_capacity(fragment.len() + 16);
    let mut n = start;
    for ch in fragment.chars() {
        if ch == '?' {
            out.push_str(&format!("${n}"));
            n += 1;
        } else {
            out.push(ch);
        }
    }
    out
}
