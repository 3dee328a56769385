//! The embedding phase end to end: faults over real wire traffic, kill-and-resume,
//! incremental runs, model switches and removed packages.
mod common;
#[path = "support/bedrock_standin.rs"]
mod standin;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use fdnix::config::Mode;
use fdnix::error::EmbedError;
use fdnix::providers::embed_bedrock::{BedrockEmbedder, BedrockOptions};
use fdnix::providers::embed_fake::{cosine, HashEmbedder, LexicalEmbedder};
use fdnix::providers::source_file::FileSource;
use fdnix::traits::{EmbedStats, Embedder, Purpose};

/// Fails fatally after `limit` calls: a run "killed" part-way through the embedding phase.
struct DiesAfter {
    inner: HashEmbedder,
    calls: AtomicU64,
    limit: u64,
}

#[async_trait]
impl Embedder for DiesAfter {
    fn model_id(&self) -> String {
        self.inner.model_id()
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    fn max_batch(&self) -> usize {
        16
    }
    async fn embed(&self, texts: &[String], p: Purpose) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.limit {
            return Err(EmbedError::Fatal("simulated crash".into()));
        }
        self.inner.embed(texts, p).await
    }
    fn stats(&self) -> EmbedStats {
        EmbedStats { calls: self.calls.load(Ordering::SeqCst), ..Default::default() }
    }
}

async fn metadata(out: &std::path::Path, dump: &std::path::Path) {
    index(Mode::Metadata, out, Some(&FileSource::new(dump)), None, None).await;
}

fn vectors(path: &std::path::Path) -> Vec<(String, Vec<f32>, String, String)> {
    let c = conn(path);
    let mut st = c.prepare("SELECT package_id, vector::FLOAT[]::VARCHAR, model, text_hash FROM embeddings ORDER BY package_id").unwrap();
    st.query_map([], |r| {
        let s: String = r.get(1)?;
        let v: Vec<f32> = s.trim_matches(|c| c == '[' || c == ']').split(',').map(|x| x.trim().parse().unwrap()).collect();
        Ok((r.get(0)?, v, r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_faults_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.duckdb");
    metadata(&out, &demo()).await;
    let server = standin::StandIn::start().await.unwrap();
    aws_test_env();
    let opts = BedrockOptions {
        endpoint_url: Some(server.url()),
        concurrency: 4,
        sdk_attempts: 1,
        base_backoff: std::time::Duration::from_millis(5),
        max_backoff: std::time::Duration::from_millis(40),
        ..Default::default()
    };
    let e = BedrockEmbedder::from_env("us-east-1", opts).await.unwrap();
    // one package's text is rejected by the service; the batch must be split to isolate it
    let poisoned = "lazygit";
    let poison_text = {
        let c = conn(&out);
        let d: String = c.query_row("SELECT description FROM packages WHERE package_id = ?", [poisoned], |r| r.get(0)).unwrap();
        d
    };
    *server.state.poison.lock().unwrap() = Some(poison_text.clone());
    server.state.throttle_every.store(4, Ordering::SeqCst);
    use standin::Fault::*;
    server.push_faults(&[Internal500, Unavailable503, Timeout408, Malformed, Throttle, Throttle, Throttle]);
    let s = index(Mode::Embedding, &out, None, Some(&e), None).await;
    let emb = s.embedding.unwrap();
    assert_eq!(emb.failed, 1, "{:?}", emb.failures);
    assert_eq!(emb.failures[0].0, poisoned);
    assert_eq!(emb.embedded, emb.candidates - 1);
    assert!(emb.throttles >= 3, "{emb:?}");
    assert!(emb.retries >= 7, "{emb:?}");
    let c = conn(&out);
    assert_eq!(count(&c, "SELECT count(*) FROM embeddings") as u64, emb.candidates - 1);
    assert_eq!(count(&c, "SELECT count(DISTINCT package_id) FROM embeddings") as u64, emb.candidates - 1);
    assert_eq!(count(&c, "SELECT count(*) FROM embeddings WHERE package_id = 'lazygit'"), 0, "no empty vector for the bad text");
    // every stored vector is the one the service returned for that package's own text
    let by_id: std::collections::HashMap<String, Vec<f32>> = vectors(&out).into_iter().map(|(id, v, _, _)| (id, v)).collect();
    drop(c);
    let docs = {
        let mut st = fdnix::traits::StoreFactory::open(&store(), &out).unwrap();
        let d = st.embedding_inputs(&Default::default()).await.unwrap();
        st.close().await.unwrap();
        d
    };
    let mut checked = 0;
    let mut wrong = Vec::new();
    for d in &docs {
        if d.package_id == poisoned {
            continue;
        }
        let text = fdnix::doctext::embedding_text(d, 2048);
        let want = standin::vector_for(&text, 1024);
        match by_id.get(&d.package_id) {
            Some(v) if cosine(v, &want) > 0.9999 => checked += 1,
            _ => wrong.push(d.package_id.clone()),
        }
    }
    assert!(wrong.is_empty(), "vectors not matching their package's text: {wrong:?}");
    assert_eq!(checked as u64, emb.candidates - 1);
    let c = conn(&out);
    // HNSW index exists and is used
    assert_eq!(count(&c, "SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'embeddings_hnsw_idx'"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_embedding_run_resumes_with_only_the_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.duckdb");
    metadata(&out, &demo()).await;
    let dying = DiesAfter { inner: HashEmbedder::new(32), calls: AtomicU64::new(0), limit: 5 };
    let err = try_index(Mode::Embedding, &out, None, Some(&dying), None).await.unwrap_err();
    assert!(err.to_string().contains("simulated crash"), "{err}");
    // the artifact has no vectors yet; the work file holds the committed batches
    assert_eq!(count(&conn(&out), "SELECT count(*) FROM information_schema.tables WHERE table_name = 'embeddings'"), 0);
    let partial = fdnix::artifact::work_path(&out);
    assert!(partial.exists());
    let committed = count(&conn(&partial), "SELECT count(*) FROM embeddings") as u64;
    assert_eq!(committed, 5 * 16);
    let e = HashEmbedder::new(32);
    let s = index(Mode::Embedding, &out, None, Some(&e), None).await;
    let emb = s.embedding.unwrap();
    assert_eq!(emb.reused, committed);
    assert_eq!(emb.embedded + emb.reused, emb.candidates);
    let c = conn(&out);
    assert_eq!(count(&c, "SELECT count(*) FROM embeddings") as u64, emb.candidates);
    assert_eq!(count(&c, "SELECT count(DISTINCT package_id) FROM embeddings") as u64, emb.candidates);
    assert!(!partial.exists());
}

/// Rewrites the demo dump with the descriptions of every 50th package changed and
/// `drop` packages removed. Returns (path, changed ids).
fn mutated_dump(dir: &std::path::Path, drop: &[&str]) -> (std::path::PathBuf, Vec<String>) {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    let mut changed = Vec::new();
    for (i, (k, p)) in v.iter_mut().enumerate() {
        if i % 50 == 7 {
            let d = p["meta"]["description"].as_str().unwrap_or("").to_string();
            p["meta"]["description"] = serde_json::Value::String(format!("{d} (now with more features)"));
            changed.push(k.clone());
        }
    }
    for d in drop {
        v.remove(*d);
    }
    let path = dir.join("mutated.json");
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    (path, changed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_run_embeds_exactly_the_changed_packages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("i.duckdb");
    let e = LexicalEmbedder::new(64);
    let s1 = index(Mode::Both, &out, Some(&FileSource::new(demo())), Some(&e), None).await;
    let full = s1.embedding.unwrap();
    assert_eq!(full.embedded, full.candidates);
    let before = vectors(&out);
    let (dump, changed) = mutated_dump(dir.path(), &["wget"]);
    let eligible: Vec<&String> = changed.iter().filter(|id| before.iter().any(|(b, ..)| b == *id)).collect();
    assert!(eligible.len() >= 5, "{changed:?}");
    let e2 = LexicalEmbedder::new(64);
    let s2 = index(Mode::Both, &out, Some(&FileSource::new(&dump)), Some(&e2), None).await;
    let inc = s2.embedding.unwrap();
    assert_eq!(inc.embedded as usize, eligible.len(), "{inc:?}");
    assert_eq!(inc.reused + inc.embedded, inc.candidates);
    assert_eq!(inc.candidates, full.candidates - 1, "wget was removed");
    let after = vectors(&out);
    assert!(!after.iter().any(|(id, ..)| id == "wget"));
    for (id, v, _, h) in &after {
        let old = before.iter().find(|(b, ..)| b == id).unwrap();
        if eligible.contains(&id) {
            assert_ne!(&old.3, h, "{id}: hash should change");
        } else {
            assert_eq!(&old.1, v, "{id}: vector should be reused");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_switch_rebuilds_every_vector() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.duckdb");
    metadata(&out, &demo()).await;
    let a = HashEmbedder::new(48);
    let s = index(Mode::Embedding, &out, None, Some(&a), None).await;
    let n = s.embedding.unwrap().candidates;
    let b = Arc::new(LexicalEmbedder::new(96));
    let s = index(Mode::Embedding, &out, None, Some(b.as_ref()), None).await;
    let emb = s.embedding.unwrap();
    assert_eq!(emb.reused, 0);
    assert_eq!(emb.embedded, n);
    let c = conn(&out);
    assert_eq!(count(&c, "SELECT count(*) FROM embeddings WHERE model = 'fake-lexical-96'") as u64, n);
    assert_eq!(count(&c, "SELECT count(*) FROM embeddings WHERE model <> 'fake-lexical-96'"), 0);
    assert_eq!(count(&c, "SELECT count(*) FROM embeddings WHERE len(vector) = 96") as u64, n);
    let dim: String = c.query_row("SELECT value FROM fdnix_metadata WHERE key = 'embedding_dimensions'", [], |r| r.get(0)).unwrap();
    assert_eq!(dim, "96");
    // same model again: everything reused, no calls
    let b2 = LexicalEmbedder::new(96);
    let s = index(Mode::Embedding, &out, None, Some(&b2), None).await;
    assert_eq!(s.embedding.unwrap().reused, n);
    assert_eq!(b2.stats().calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_mode_without_an_artifact_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = HashEmbedder::new(8);
    let err = try_index(Mode::Embedding, &dir.path().join("none.duckdb"), None, Some(&e), None).await.unwrap_err();
    assert!(err.to_string().contains("needs an existing artifact"), "{err}");
}
