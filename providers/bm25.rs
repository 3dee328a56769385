//! BM25 in memory over the fts extension's own index tables.
//!
//! `PRAGMA create_fts_index` writes `dict`, `docs`, `stats`, `stopwords` and the term list;
//! `match_bm25` scores every document of the table for every query. This loads the same
//! index once (postings ordered by term, as `fts_postings` stores them) and scores only the
//! documents that hold a query term: the same Okapi BM25 (log10 idf; k1 = 1.2, b = 0.75 unless told
//! otherwise), the same scores, in well under a millisecond. The query's tokens and stems come from the
//! extension itself (`tokenize`, `stem`), so the two can never tokenise differently.
use std::collections::{HashMap, HashSet};

use arrow::array::{Array, Float64Array, StringArray, UInt32Array};
use arrow::record_batch::RecordBatch;
use duckdb::Connection;

use crate::error::StoreError;

use super::duckdb_store::{FTS_SCHEMA, STEMMERS};

/// Okapi BM25 parameters. The default is the fts extension's own (`match_bm25`'s `k` and `b`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bm25Params {
    pub k1: f64,
    pub b: f64,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

fn db(e: duckdb::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

fn batches(conn: &Connection, sql: &str) -> Result<Vec<RecordBatch>, StoreError> {
    let mut st = conn.prepare(sql).map_err(db)?;
    let out: Vec<RecordBatch> = st.query_arrow([]).map_err(db)?.collect();
    Ok(out)
}

fn col<'a, T: 'static>(b: &'a RecordBatch, i: usize, what: &str) -> Result<&'a T, StoreError> {
    b.column(i).as_any().downcast_ref::<T>().ok_or_else(|| StoreError::Db(format!("unexpected column type for {what}")))
}

/// The loaded index.
pub struct Bm25Index {
    /// term → position in `df` / `offsets`
    terms: HashMap<String, usize>,
    df: Vec<u32>,
    /// CSR: postings of term t are `post_doc[offsets[t]..offsets[t + 1]]`
    offsets: Vec<usize>,
    post_doc: Vec<u32>,
    post_tf: Vec<u32>,
    /// document position → package_id, length in terms
    doc_name: Vec<String>,
    doc_len: Vec<f64>,
    num_docs: f64,
    avgdl: f64,
    stopwords: HashSet<String>,
    /// SQL that turns `$1` into the distinct stemmed query terms.
    terms_sql: String,
}

impl Bm25Index {
    /// Loads the index of an artifact. `stemmer` must be one of [`STEMMERS`].
    pub fn load(conn: &Connection, stemmer: &str) -> Result<Self, StoreError> {
        if !STEMMERS.contains(&stemmer) {
            return Err(StoreError::Setting { name: "FTS_STEMMER", reason: format!("`{stemmer}` is not a known stemmer") });
        }
        // documents, densely numbered in docid order
        let mut doc_pos: HashMap<u32, u32> = HashMap::new();
        let mut doc_name = Vec::new();
        let mut doc_len = Vec::new();
        for b in batches(conn, &format!("SELECT docid::UINTEGER, name::VARCHAR, len::UINTEGER FROM {FTS_SCHEMA}.docs ORDER BY docid"))? {
            let (ids, names, lens) = (col::<UInt32Array>(&b, 0, "docid")?, col::<StringArray>(&b, 1, "name")?, col::<UInt32Array>(&b, 2, "len")?);
            for i in 0..b.num_rows() {
                doc_pos.insert(ids.value(i), doc_name.len() as u32);
                doc_name.push(names.value(i).to_string());
                doc_len.push(f64::from(lens.value(i)));
            }
        }
        let mut terms = HashMap::new();
        let mut df = Vec::new();
        let mut term_pos: HashMap<u32, usize> = HashMap::new();
        for b in batches(conn, &format!("SELECT termid::UINTEGER, term::VARCHAR, df::UINTEGER FROM {FTS_SCHEMA}.dict ORDER BY termid"))? {
            let (ids, ts, dfs) = (col::<UInt32Array>(&b, 0, "termid")?, col::<StringArray>(&b, 1, "term")?, col::<UInt32Array>(&b, 2, "df")?);
            for i in 0..b.num_rows() {
                term_pos.insert(ids.value(i), df.len());
                terms.insert(ts.value(i).to_string(), df.len());
                df.push(dfs.value(i));
            }
        }
        // postings grouped by term (the table is stored in termid order; sort anyway)
        let mut rows: Vec<(u32, u32, u32)> = Vec::new();
        for b in batches(conn, "SELECT termid::UINTEGER, docid::UINTEGER, tf::UINTEGER FROM fts_postings")? {
            let (t, d, f) = (col::<UInt32Array>(&b, 0, "termid")?, col::<UInt32Array>(&b, 1, "docid")?, col::<UInt32Array>(&b, 2, "tf")?);
            rows.reserve(b.num_rows());
            for i in 0..b.num_rows() {
                let (Some(&tp), Some(&dp)) = (term_pos.get(&t.value(i)), doc_pos.get(&d.value(i))) else {
                    return Err(StoreError::Db("fts_postings names a term or document missing from the FTS index; rebuild the artifact".into()));
                };
                rows.push((tp as u32, dp, f.value(i)));
            }
        }
        rows.sort_unstable();
        let mut offsets = vec![0usize; df.len() + 1];
        for r in &rows {
            offsets[r.0 as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let post_doc = rows.iter().map(|r| r.1).collect();
        let post_tf = rows.iter().map(|r| r.2).collect();
        drop(rows);
        let stats = batches(conn, &format!("SELECT num_docs::DOUBLE, avgdl::DOUBLE FROM {FTS_SCHEMA}.stats"))?;
        let (num_docs, avgdl) = match stats.iter().find(|b| b.num_rows() > 0) {
            Some(b) => (col::<Float64Array>(b, 0, "num_docs")?.value(0), col::<Float64Array>(b, 1, "avgdl")?.value(0)),
            None => return Err(StoreError::Db("the FTS index has no stats row".into())),
        };
        let mut stopwords = HashSet::new();
        for b in batches(conn, &format!("SELECT sw::VARCHAR FROM {FTS_SCHEMA}.stopwords"))? {
            let s = col::<StringArray>(&b, 0, "sw")?;
            for i in 0..b.num_rows() {
                if s.is_valid(i) {
                    stopwords.insert(s.value(i).to_string());
                }
            }
        }
        // `stemmer` was checked against the fixed list above.
        let terms_sql = format!("SELECT DISTINCT stem(unnest({FTS_SCHEMA}.tokenize($1)), '{stemmer}')");
        Ok(Bm25Index { terms, df, offsets, post_doc, post_tf, doc_name, doc_len, num_docs, avgdl, stopwords, terms_sql })
    }

    pub fn documents(&self) -> usize {
        self.doc_name.len()
    }

    /// The distinct index terms of a query, as the extension tokenises and stems it.
    pub fn query_terms(&self, conn: &Connection, q: &str) -> Result<Vec<String>, StoreError> {
        let mut st = conn.prepare_cached(&self.terms_sql).map_err(db)?;
        let rows = st.query_map([q], |r| r.get::<_, Option<String>>(0)).map_err(db)?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(t) = r.map_err(db)? {
                if !self.stopwords.contains(&t) {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// All documents holding a query term with their scores, best first (ties by package_id).
    /// `keep` decides which documents may be returned; at most `limit` are.
    pub fn search(&self, conn: &Connection, q: &str, limit: usize, p: Bm25Params, keep: impl Fn(&str) -> bool) -> Result<Vec<(String, f64)>, StoreError> {
        let terms = self.query_terms(conn, q)?;
        Ok(self.score_terms(&terms, limit, p, keep))
    }

    /// Scores already extracted terms (see [`Self::query_terms`]).
    pub fn score_terms(&self, terms: &[String], limit: usize, p: Bm25Params, keep: impl Fn(&str) -> bool) -> Vec<(String, f64)> {
        let mut acc = vec![0.0f64; self.doc_name.len()];
        let mut touched: Vec<u32> = Vec::new();
        for t in terms {
            let Some(&tp) = self.terms.get(t) else { continue };
            let df = f64::from(self.df[tp]);
            let idf = ((self.num_docs - df + 0.5) / (df + 0.5) + 1.0).log10();
            for i in self.offsets[tp]..self.offsets[tp + 1] {
                let d = self.post_doc[i];
                let tf = f64::from(self.post_tf[i]);
                let len = self.doc_len[d as usize];
                let slot = &mut acc[d as usize];
                if *slot == 0.0 {
                    touched.push(d);
                }
                *slot += idf * tf * (p.k1 + 1.0) / (tf + p.k1 * (1.0 - p.b + p.b * len / self.avgdl));
            }
        }
        let mut scored: Vec<(u32, f64)> = touched.into_iter().map(|d| (d, acc[d as usize])).collect();
        scored.sort_unstable_by(|a, b| {
            b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| self.doc_name[a.0 as usize].cmp(&self.doc_name[b.0 as usize]))
        });
        scored
            .into_iter()
            .filter(|(d, _)| keep(&self.doc_name[*d as usize]))
            .take(limit)
            .map(|(d, s)| (self.doc_name[d as usize].clone(), s))
            .collect()
    }
}
