//! Relevance evaluation over a query set (`shared/queries/queries.json`): Success@10 and MRR@10,
//! per kind and overall, plus latency percentiles.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Query {
    pub id: String,
    pub q: String,
    pub kind: String,
    pub expect: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub queries: usize,
    pub success_at_10: f64,
    pub mrr_at_10: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub id: String,
    pub q: String,
    pub kind: String,
    /// 1-based rank of the first expected attribute in the top 10.
    pub rank: Option<usize>,
    pub top: Vec<String>,
    pub millis: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub overall: Score,
    pub per_kind: BTreeMap<String, Score>,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub results: Vec<QueryResult>,
}

/// Rank (1-based, within the first 10) of the first result that is expected.
pub fn first_hit(results: &[String], expect: &[String]) -> Option<usize> {
    results.iter().take(10).position(|r| expect.iter().any(|e| e == r)).map(|i| i + 1)
}

fn score(rs: &[&QueryResult]) -> Score {
    let n = rs.len();
    if n == 0 {
        return Score::default();
    }
    let hits = rs.iter().filter(|r| r.rank.is_some()).count();
    let rr: f64 = rs.iter().map(|r| r.rank.map(|k| 1.0 / k as f64).unwrap_or(0.0)).sum();
    Score { queries: n, success_at_10: hits as f64 / n as f64, mrr_at_10: rr / n as f64 }
}

/// Nearest-rank percentile of `xs` (0..=100).
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

pub fn report(results: Vec<QueryResult>) -> Report {
    let all: Vec<&QueryResult> = results.iter().collect();
    let mut kinds: BTreeMap<String, Vec<&QueryResult>> = BTreeMap::new();
    for r in &results {
        kinds.entry(r.kind.clone()).or_default().push(r);
    }
    let lat: Vec<f64> = results.iter().map(|r| r.millis).collect();
    Report {
        overall: score(&all),
        per_kind: kinds.into_iter().map(|(k, v)| (k, score(&v))).collect(),
        p50_ms: percentile(&lat, 50.0),
        p95_ms: percentile(&lat, 95.0),
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: &str, rank: Option<usize>) -> QueryResult {
        QueryResult { id: "x".into(), q: "q".into(), kind: kind.into(), rank, top: vec![], millis: 1.0 }
    }

    #[test]
    fn metrics() {
        assert_eq!(first_hit(&["a".into(), "b".into()], &["b".into()]), Some(2));
        assert_eq!(first_hit(&["a".into()], &["z".into()]), None);
        let rep = report(vec![r("exact", Some(1)), r("exact", Some(2)), r("typo", None), r("typo", Some(4))]);
        assert_eq!(rep.overall.success_at_10, 0.75);
        assert!((rep.overall.mrr_at_10 - (1.0 + 0.5 + 0.25) / 4.0).abs() < 1e-9);
        assert_eq!(rep.per_kind["exact"].success_at_10, 1.0);
        assert_eq!(rep.per_kind["typo"].mrr_at_10, 0.125);
        assert_eq!(percentile(&[5.0, 1.0, 3.0, 2.0, 4.0], 50.0), 3.0);
    }
}
