//! The channel source: a real packages.json (made from the dump) served over HTTP on
//! 127.0.0.1, brotli and zstd, gives the same normalised packages as the dump file.
mod common;

use std::collections::HashMap;

use common::*;
use fdnix::config::Mode;
use fdnix::providers::source_channel::ChannelSource;
use fdnix::providers::source_file::FileSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `files` (path → bytes) with HTTP/1.1 GET; anything else is 404.
async fn serve(files: HashMap<String, Vec<u8>>) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let files = files.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    got.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&got).to_string();
                let mut parts = head.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, body) = match files.get(path) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let body = if method == "HEAD" { Vec::new() } else { body };
                let h = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n", files.get(path).map(|b| b.len()).unwrap_or(9));
                let _ = s.write_all(h.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    addr
}

fn rows(path: &std::path::Path) -> Vec<(String, String, Option<String>, String, i64)> {
    let c = conn(path);
    let mut st = c
        .prepare("SELECT package_id, version, description, license_form, len(maintainers) FROM packages ORDER BY package_id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_packages_json_over_http_matches_the_dump() {
    let br = std::fs::read(repo().join("fixtures/channel-packages.json.br")).unwrap();
    let plain = std::fs::read(demo()).unwrap();
    let wrapped = format!("{{\"version\":2,\"packages\":{}}}", String::from_utf8(plain).unwrap());
    let zst = zstd::encode_all(wrapped.as_bytes(), 3).unwrap();
    let addr = serve(HashMap::from([("/packages.json.br".to_string(), br), ("/packages.json.zst".to_string(), zst), ("/packages.json".to_string(), wrapped.into_bytes())])).await;
    let dir = tempfile::tempdir().unwrap();
    let want_path = dir.path().join("file.duckdb");
    index(Mode::Metadata, &want_path, Some(&FileSource::new(demo())), None, None).await;
    let want = rows(&want_path);
    assert_eq!(want.len(), 315);
    for name in ["packages.json.br", "packages.json.zst", "packages.json"] {
        let out = dir.path().join(format!("{name}.duckdb"));
        let src = ChannelSource::new(format!("http://{addr}/{name}"));
        let s = index(Mode::Metadata, &out, Some(&src), None, None).await;
        assert_eq!(s.metadata.unwrap().skipped, 0);
        assert_eq!(rows(&out), want, "{name}");
    }
    // a local path works too
    let out = dir.path().join("local.duckdb");
    index(Mode::Metadata, &out, Some(&ChannelSource::new(repo().join("fixtures/channel-packages.json.br").display().to_string())), None, None).await;
    assert_eq!(rows(&out), want);
    // a missing URL is a clear error
    let err = try_index(Mode::Metadata, &dir.path().join("x.duckdb"), Some(&ChannelSource::new(format!("http://{addr}/nope.json"))), None, None).await.unwrap_err();
    assert!(err.to_string().contains("nope.json"), "{err}");
}
