//! One conformance suite for every `Embedder`: fake (hash, lexical), Bedrock (real SDK client
//! against the stand-in) and the local model.
mod common;
#[path = "support/bedrock_standin.rs"]
mod standin;

use common::*;
use fdnix::providers::embed_bedrock::{BedrockEmbedder, BedrockOptions};
use fdnix::providers::embed_fake::{cosine, HashEmbedder, LexicalEmbedder};
use fdnix::traits::{Embedder, Purpose};

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("package number {i}: a tool that does thing {}", i * 7)).collect()
}

/// The contract every embedder must keep.
async fn conformance(e: &dyn Embedder) {
    let dim = e.dimensions();
    assert!(dim > 0);
    assert!(!e.model_id().is_empty());
    assert!(e.max_batch() >= 1);
    assert!(e.embed(&[], Purpose::Document).await.unwrap().is_empty());
    let t = texts(e.max_batch().min(40));
    let a = e.embed(&t, Purpose::Document).await.unwrap();
    assert_eq!(a.len(), t.len());
    for v in &a {
        assert_eq!(v.len(), dim);
        assert!(v.iter().all(|x| x.is_finite()));
        let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-3, "not unit length: {n}");
    }
    // deterministic, and independent of batch composition
    let b = e.embed(&t[3..5].to_vec(), Purpose::Document).await.unwrap();
    assert!(cosine(&a[3], &b[0]) > 0.999);
    assert!(cosine(&a[4], &b[1]) > 0.999);
    // different texts differ
    assert!(cosine(&a[0], &a[1]) < 0.9999);
    // queries embed too
    let q = e.embed(&["text editor".to_string()], Purpose::Query).await.unwrap();
    assert_eq!(q[0].len(), dim);
}

#[tokio::test]
async fn hash_embedder_conforms() {
    conformance(&HashEmbedder::new(64)).await;
    assert_eq!(HashEmbedder::new(7).vector("x").len(), 7);
    assert_eq!(HashEmbedder::new(32).vector("x"), HashEmbedder::new(32).vector("x"));
}

#[tokio::test]
async fn lexical_embedder_conforms_and_is_lexical() {
    let e = LexicalEmbedder::new(256);
    conformance(&e).await;
    let q = e.vector("pdf viewer");
    assert!(cosine(&q, &e.vector("zathura: a highly customizable pdf viewer")) > cosine(&q, &e.vector("ripgrep: recursively search directories")));
}

pub async fn bedrock_on(server: &standin::StandIn, model: &str, dim: Option<u32>) -> BedrockEmbedder {
    aws_test_env();
    let opts = BedrockOptions {
        model_id: model.into(),
        output_dimension: dim,
        endpoint_url: Some(server.url()),
        base_backoff: std::time::Duration::from_millis(5),
        max_backoff: std::time::Duration::from_millis(50),
        sdk_attempts: 1,
        ..Default::default()
    };
    BedrockEmbedder::from_env("us-east-1", opts).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_conforms_over_the_wire() {
    let server = standin::StandIn::start().await.unwrap();
    let e = bedrock_on(&server, "cohere.embed-english-v3", None).await;
    assert_eq!(e.dimensions(), 1024);
    conformance(&e).await;
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(server.state.rejected_auth.load(SeqCst), 0, "SigV4 with signing name bedrock expected");
    assert_eq!(server.state.last_input_type.lock().unwrap().as_deref(), Some("search_query"));
    // the vectors are the server's, in order
    let t = texts(3);
    let v = e.embed(&t, Purpose::Document).await.unwrap();
    for (i, text) in t.iter().enumerate() {
        assert!(cosine(&v[i], &standin::vector_for(text, 1024)) > 0.9999);
    }
    // the other response shape
    server.state.by_type.store(true, SeqCst);
    let w = e.embed(&t, Purpose::Document).await.unwrap();
    assert_eq!(v, w);
    assert!(server.state.model_ids.lock().unwrap().iter().all(|m| m == "cohere.embed-english-v3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_v4_with_output_dimension() {
    let server = standin::StandIn::start().await.unwrap();
    let e = bedrock_on(&server, "cohere.embed-v4:0", Some(256)).await;
    assert_eq!(e.dimensions(), 256);
    assert_eq!(e.model_id(), "cohere.embed-v4:0@256");
    let v = e.embed(&texts(2), Purpose::Document).await.unwrap();
    assert_eq!(v[0].len(), 256);
    // the id is percent-encoded on the wire and decoded by the server
    assert!(server.state.model_ids.lock().unwrap().iter().all(|m| m == "cohere.embed-v4:0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_retries_transient_faults_and_fails_fast_on_validation() {
    use standin::Fault::*;
    use std::sync::atomic::Ordering::SeqCst;
    let server = standin::StandIn::start().await.unwrap();
    let e = bedrock_on(&server, "cohere.embed-english-v3", None).await;
    server.push_faults(&[Throttle, Throttle, Internal500, Unavailable503, Timeout408, ModelNotReady, Malformed]);
    let v = e.embed(&texts(5), Purpose::Document).await.unwrap();
    assert_eq!(v.len(), 5);
    let st = e.stats();
    assert_eq!(st.retries, 7, "{st:?}");
    assert_eq!(st.throttles, 3, "{st:?}");
    assert_eq!(st.calls, 8);
    // validation: no retry
    *server.state.poison.lock().unwrap() = Some("POISON".into());
    let before = e.stats().calls;
    let err = e.embed(&["fine".into(), "POISON text".into()], Purpose::Document).await.unwrap_err();
    assert!(matches!(err, fdnix::error::EmbedError::Invalid(_)), "{err}");
    assert_eq!(e.stats().calls, before + 1);
    // more than 96 texts is refused before any call
    assert!(e.embed(&texts(97), Purpose::Document).await.is_err());
    assert_eq!(e.stats().calls, before + 1);
    // access denied is fatal
    server.push_faults(&[AccessDenied]);
    let err = e.embed(&texts(1), Purpose::Document).await.unwrap_err();
    assert!(matches!(err, fdnix::error::EmbedError::Fatal(_)), "{err}");
    assert_eq!(server.state.rejected_auth.load(SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_model_conforms_and_matches_the_reference() {
    let dir = model_dir();
    assert!(dir.join("model.safetensors").exists(), "the local model is not installed: run scripts/setup.sh model");
    let e = fdnix::providers::embed_local::LocalEmbedder::load(&dir, 2).unwrap();
    assert_eq!(e.dimensions(), 384);
    conformance(&e).await;
    // reference vectors from sentence-transformers (see fixtures/minilm-reference.json)
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo().join("fixtures/minilm-reference.json")).unwrap()).unwrap();
    let items = r["items"].as_array().unwrap();
    assert!(items.len() >= 4);
    let t: Vec<String> = items.iter().map(|i| i["text"].as_str().unwrap().to_string()).collect();
    let got = e.embed(&t, Purpose::Document).await.unwrap();
    for (i, item) in items.iter().enumerate() {
        let want: Vec<f32> = item["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let c = cosine(&got[i], &want);
        assert!(c >= 0.999, "{:?}: cosine {c}", t[i]);
    }
    // meaning, not words
    let v = e.embed(&["text editor".into(), "vim is a text editor".into(), "network packet sniffer".into()], Purpose::Query).await.unwrap();
    let (near, far) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    assert!(near > far + 0.2, "near {near}, far {far}");
}

#[test]
fn missing_model_names_the_script() {
    let err = fdnix::providers::embed_local::LocalEmbedder::load(std::path::Path::new("/nonexistent/model"), 1).err().unwrap();
    assert!(err.to_string().contains("scripts/setup.sh model"), "{err}");
}
