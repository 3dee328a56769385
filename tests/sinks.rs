//! One conformance suite for every ArtifactSink: local directory, object_store (memory and
//! file) and S3 (the real aws-sdk-s3 client against moto_server on 127.0.0.1).
mod common;
#[path = "support/moto.rs"]
mod moto;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use common::*;
use fdnix::error::SinkError;
use fdnix::manifest::{file_digest, Manifest, MANIFEST_FORMAT};
use fdnix::providers::sink_local::DirBlobs;
use fdnix::providers::sink_objstore::ObjectStoreBlobs;
use fdnix::providers::sink_s3::S3Blobs;
use fdnix::publish::{BlobStore, ManifestSink};
use fdnix::traits::ArtifactSink;

/// Wraps any BlobStore and fails chosen steps: an interrupted publish.
struct Interrupting<B> {
    inner: B,
    fail_manifest: AtomicBool,
    fail_copy: AtomicBool,
}

#[async_trait]
impl<B: BlobStore> BlobStore for Interrupting<B> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put_file(&self, key: &str, src: &Path) -> Result<(), SinkError> {
        self.inner.put_file(key, src).await
    }
    async fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<(), SinkError> {
        if key.ends_with(".manifest.json") && self.fail_manifest.load(Ordering::SeqCst) {
            return Err(SinkError::Remote("interrupted before the manifest".into()));
        }
        self.inner.put_bytes(key, data).await
    }
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.inner.get_bytes(key).await
    }
    async fn get_file(&self, key: &str, dest: &Path) -> Result<bool, SinkError> {
        self.inner.get_file(key, dest).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<(), SinkError> {
        if self.fail_copy.load(Ordering::SeqCst) {
            return Err(SinkError::Remote("interrupted before the copy".into()));
        }
        self.inner.copy(from, to).await
    }
    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        self.inner.delete(key).await
    }
}

fn manifest_for(p: &Path) -> Manifest {
    let (sha256, size) = file_digest(p).unwrap();
    Manifest {
        format: MANIFEST_FORMAT,
        sha256,
        size,
        schema_version: 1,
        package_count: 3,
        embedding_count: 2,
        model: Some("m".into()),
        dimensions: Some(8),
        created_at: "2026-12-03T00:00:00Z".into(),
        tool_version: "test".into(),
    }
}

/// Pseudo-random content of `len` bytes (deterministic per seed).
fn write_file(p: &Path, len: usize, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(p).unwrap());
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for b in block.chunks_mut(8) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let bytes = s.to_le_bytes();
            b.copy_from_slice(&bytes[..b.len()]);
        }
        let n = left.min(block.len());
        f.write_all(&block[..n]).unwrap();
        left -= n;
    }
}

async fn conformance<B: BlobStore>(blobs: B, large: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sink = ManifestSink::new(Interrupting { inner: blobs, fail_manifest: AtomicBool::new(false), fail_copy: AtomicBool::new(false) }, "art/fdnix.duckdb");
    let dest = dir.path().join("fetched.duckdb");

    // missing: nothing published yet
    assert!(sink.manifest().await.unwrap().is_none());
    assert!(sink.fetch(&dest).await.unwrap().is_none());
    assert!(!dest.exists());

    // round trip
    let a = dir.path().join("a.duckdb");
    write_file(&a, 300_000, 1);
    let ma = manifest_for(&a);
    sink.publish(&a, &ma).await.unwrap();
    assert_eq!(sink.manifest().await.unwrap().unwrap(), ma);
    let got = sink.fetch(&dest).await.unwrap().unwrap();
    assert_eq!(got, ma);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&a).unwrap());
    // the plain key holds the artifact too, for readers that ignore manifests
    assert_eq!(sink.blobs().get_bytes("art/fdnix.duckdb").await.unwrap().unwrap(), std::fs::read(&a).unwrap());

    // overwrite; the previous content-addressed object is cleaned up
    let b = dir.path().join("b.duckdb");
    write_file(&b, 200_000, 2);
    let mb = manifest_for(&b);
    sink.publish(&b, &mb).await.unwrap();
    assert_eq!(sink.fetch(&dest).await.unwrap().unwrap(), mb);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&b).unwrap());
    assert!(sink.blobs().get_bytes(&format!("art/fdnix.duckdb.v/{}", &ma.sha256[..16])).await.unwrap().is_none());

    // interrupted publish, before the manifest and before the copy: readers still get B, whole
    let c = dir.path().join("c.duckdb");
    write_file(&c, 100_000, 3);
    let mc = manifest_for(&c);
    sink.blobs().fail_manifest.store(true, Ordering::SeqCst);
    assert!(sink.publish(&c, &mc).await.is_err());
    sink.blobs().fail_manifest.store(false, Ordering::SeqCst);
    assert_eq!(sink.fetch(&dest).await.unwrap().unwrap(), mb);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&b).unwrap());
    sink.blobs().fail_copy.store(true, Ordering::SeqCst);
    assert!(sink.publish(&c, &mc).await.is_err());
    sink.blobs().fail_copy.store(false, Ordering::SeqCst);
    assert_eq!(sink.fetch(&dest).await.unwrap().unwrap(), mc, "the manifest is the commit point");
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&c).unwrap());

    // checksum mismatch: a corrupted object is refused and nothing is left at dest
    std::fs::remove_file(&dest).unwrap();
    let obj = format!("art/fdnix.duckdb.v/{}", &mc.sha256[..16]);
    let mut bad = std::fs::read(&c).unwrap();
    bad[1000] ^= 0xff;
    sink.blobs().inner.put_bytes(&obj, bad).await.unwrap();
    let err = sink.fetch(&dest).await.unwrap_err();
    assert!(matches!(err, SinkError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&mc.sha256), "{err}");
    assert!(!dest.exists());
    sink.blobs().inner.put_bytes(&obj, b"short".to_vec()).await.unwrap();
    assert!(matches!(sink.fetch(&dest).await.unwrap_err(), SinkError::SizeMismatch { .. }));
    // a garbled manifest is a clear error
    sink.blobs().inner.put_bytes("art/fdnix.duckdb.manifest.json", b"{not json".to_vec()).await.unwrap();
    assert!(matches!(sink.fetch(&dest).await.unwrap_err(), SinkError::BadManifest { .. }));

    if large {
        let big = dir.path().join("big.duckdb");
        write_file(&big, 210 * 1024 * 1024, 4);
        let mbig = manifest_for(&big);
        sink.publish(&big, &mbig).await.unwrap();
        std::fs::remove_file(&big).unwrap();
        assert_eq!(sink.fetch(&dest).await.unwrap().unwrap(), mbig);
        assert_eq!(file_digest(&dest).unwrap(), (mbig.sha256.clone(), mbig.size));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_dir_sink_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(DirBlobs { root: dir.path().join("published") }, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_memory_and_file_conform() {
    let (mem, key) = ObjectStoreBlobs::from_url("memory:///", "fdnix.duckdb").unwrap();
    assert_eq!(key, "fdnix.duckdb");
    conformance(mem, true).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("os");
    std::fs::create_dir_all(&root).unwrap();
    let (file, _) = ObjectStoreBlobs::from_url(&format!("file://{}/", root.display()), "fdnix.duckdb").unwrap();
    conformance(file, false).await;
}

async fn s3_client(m: &moto::Moto) -> aws_sdk_s3::Client {
    aws_test_env();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(m.url())
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_sink_conforms_against_a_real_server() {
    let m = moto::Moto::start();
    let client = s3_client(&m).await;
    client.create_bucket().bucket("fdnix-test").send().await.unwrap();
    conformance(S3Blobs::with_client(client.clone(), "fdnix-test"), true).await;
    // object_store's S3 backend against the same server, sharing the manifest format
    client.create_bucket().bucket("fdnix-os").send().await.unwrap();
    std::env::set_var("AWS_ENDPOINT", m.url());
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    std::env::set_var("AWS_REGION", "us-east-1");
    let (os3, key) = ObjectStoreBlobs::from_url("s3://fdnix-os/nightly/fdnix.duckdb", "x").unwrap();
    assert_eq!(key, "fdnix.duckdb");
    conformance(os3, false).await;
}

/// Throughput benchmark (BENCHMARKS.md): a 500 MB artifact up and down through the S3 sink
/// against moto_server on 127.0.0.1. Ignored by default; run with
/// `cargo test --release --test sinks -- --ignored s3_throughput --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn s3_throughput() {
    let m = moto::Moto::start();
    let client = s3_client(&m).await;
    client.create_bucket().bucket("fdnix-bench").send().await.unwrap();
    let sink = ManifestSink::new(S3Blobs::with_client(client, "fdnix-bench"), "nightly/fdnix.duckdb");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.duckdb");
    write_file(&src, 500 * 1000 * 1000, 9);
    let mf = manifest_for(&src);
    let t = std::time::Instant::now();
    sink.publish(&src, &mf).await.unwrap();
    let up = t.elapsed().as_secs_f64();
    let dest = dir.path().join("down.duckdb");
    let t = std::time::Instant::now();
    sink.fetch(&dest).await.unwrap().unwrap();
    let down = t.elapsed().as_secs_f64();
    println!("s3 500 MB: publish {up:.1} s ({:.0} MB/s, includes the server-side copy), fetch+verify {down:.1} s ({:.0} MB/s)", 500.0 / up, 500.0 / down);
}

/// `fdnix index` configured with the seed's S3 variables against `m`, writing `dir/fdnix.duckdb`.
fn fdnix_s3(m: &moto::Moto, dir: &Path, mode: &str, embedder: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_fdnix"));
    c.args(["index", "--mode", mode, "--embedder", embedder, "--output"])
        .arg(dir.join("fdnix.duckdb"))
        .env("ARTIFACTS_BUCKET", "fdnix-cli")
        .env("DUCKDB_KEY", "nightly/fdnix.duckdb")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_S3", m.url())
        .env("FDNIX_S3_FORCE_PATH_STYLE", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FDNIX_EXTENSION_DIR", ext_dir())
        .env_remove("AWS_BEARER_TOKEN_BEDROCK");
    c
}

/// The published manifest of the CLI test, as JSON.
async fn manifest_json(client: &aws_sdk_s3::Client) -> serde_json::Value {
    let o = client.get_object().bucket("fdnix-cli").key("nightly/fdnix.duckdb.manifest.json").send().await.unwrap();
    serde_json::from_slice(&o.body.collect().await.unwrap().into_bytes()).unwrap()
}

/// The seed's contract end to end: `fdnix index --mode both` with ARTIFACTS_BUCKET / DUCKDB_KEY /
/// AWS_REGION publishes artifact and manifest to S3; an embedding-mode run in an empty folder
/// fetches, verifies and updates them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_publishes_to_s3_and_embedding_mode_fetches() {
    let m = moto::Moto::start();
    let client = s3_client(&m).await;
    client.create_bucket().bucket("fdnix-cli").send().await.unwrap();
    let run = |dir: &Path, mode: &str, embedder: &str| {
        let o = fdnix_s3(&m, dir, mode, embedder).arg("--json").arg("--source").arg(format!("file:{}", demo().display())).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let a = tempfile::tempdir().unwrap();
    let s1 = run(a.path(), "both", "fake");
    assert_eq!(s1["metadata"]["packages_written"], 315);
    let sha1 = s1["published"]["sha256"].as_str().unwrap().to_string();
    let mf = manifest_json(&client).await;
    assert_eq!(mf["sha256"], sha1.as_str());
    assert_eq!(mf["package_count"], 315);
    assert_eq!(mf["model"], "fake-hash-256");
    let obj = client.get_object().bucket("fdnix-cli").key("nightly/fdnix.duckdb").send().await.unwrap();
    assert_eq!(obj.content_length().unwrap() as u64, mf["size"].as_u64().unwrap());
    // embedding mode in an empty folder: fetch (verified), switch model, publish the update
    let b = tempfile::tempdir().unwrap();
    let s2 = run(b.path(), "embedding", "fake-lexical");
    assert_eq!(s2["fetched"]["sha256"], sha1.as_str());
    assert_eq!(s2["embedding"]["reused"], 0);
    let sha2 = s2["published"]["sha256"].as_str().unwrap();
    assert_ne!(sha2, sha1);
    let mf = manifest_json(&client).await;
    assert_eq!(mf["sha256"], sha2);
    assert_eq!(mf["model"], "fake-lexical-256");
    // a corrupted published object is refused by the next run
    let c = tempfile::tempdir().unwrap();
    let object = format!("nightly/fdnix.duckdb.v/{}", &sha2[..16]);
    client.put_object().bucket("fdnix-cli").key(&object).body(aws_sdk_s3::primitives::ByteStream::from(b"garbage".to_vec())).send().await.unwrap();
    let o = fdnix_s3(&m, c.path(), "embedding", "fake").output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("mismatch"), "{err}");
    assert!(!c.path().join("fdnix.duckdb").exists());
}
