//! Ranking rules on real data (the committed demo cut), asserted as behaviour, not snapshots.
mod common;

use common::*;
use fdnix::config::Mode;
use fdnix::providers::embed_fake::LexicalEmbedder;
use fdnix::providers::search::{Filters, SearchDb};
use fdnix::providers::source_file::FileSource;

async fn artifact() -> (tempfile::TempDir, SearchDb, LexicalEmbedder) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.duckdb");
    let e = LexicalEmbedder::new(128);
    index(Mode::Both, &out, Some(&FileSource::new(demo())), Some(&e), None).await;
    let db = SearchDb::open(&out, &ext_dir()).unwrap();
    (dir, db, e)
}

async fn top(db: &SearchDb, e: &LexicalEmbedder, q: &str, f: &Filters) -> Vec<String> {
    db.search(q, 10, f, Some(e)).await.unwrap().into_iter().map(|h| h.attribute_path).collect()
}

fn pos(v: &[String], a: &str) -> usize {
    v.iter().position(|x| x == a).unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranking_rules() {
    let (_d, db, e) = artifact().await;
    let f = Filters::default();
    // exact beats substring and namesakes deep in package sets
    for q in ["curl", "ffmpeg", "blender", "rsync"] {
        let t = top(&db, &e, q, &f).await;
        assert_eq!(t.first().map(String::as_str), Some(q), "{q}: {t:?}");
    }
    // case does not matter
    assert_eq!(top(&db, &e, "CURL", &f).await[0], "curl");
    // program names
    for (q, want) in [("rg", "ripgrep"), ("nvim", "neovim"), ("btm", "bottom"), ("magick", "imagemagick")] {
        let t = top(&db, &e, q, &f).await;
        assert!(pos(&t, want) < 3, "{q}: {t:?}");
    }
    // prefix and typos
    for (q, want) in [("wiresh", "wireshark"), ("lazyg", "lazygit"), ("blnder", "blender"), ("wireshrak", "wireshark"), ("inkscpae", "inkscape")] {
        let t = top(&db, &e, q, &f).await;
        assert!(pos(&t, want) < 3, "{q}: {t:?}");
    }
    // the why says so
    let hits = db.search("rg", 3, &f, Some(&e)).await.unwrap();
    let rip = hits.iter().find(|h| h.attribute_path == "ripgrep").unwrap();
    assert!(rip.why.iter().any(|w| w.contains("program")), "{:?}", rip.why);
    // a top-level package beats its python namesake
    let t = top(&db, &e, "zstd", &f).await;
    if let Some(p) = t.iter().position(|x| x.starts_with("python") && x.ends_with(".zstd")) {
        assert!(pos(&t, "zstd") < p, "{t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters() {
    let (_d, db, e) = artifact().await;
    let conn = db.connection();
    // a broken package is hidden by default and shown on request
    let broken: String = conn.query_row("SELECT package_name FROM packages WHERE broken ORDER BY attr_depth, package_id LIMIT 1", [], |r| r.get(0)).unwrap();
    let id: String = conn.query_row("SELECT package_id FROM packages WHERE broken ORDER BY attr_depth, package_id LIMIT 1", [], |r| r.get(0)).unwrap();
    let def = db.search(&broken, 50, &Filters::default(), Some(&e)).await.unwrap();
    assert!(!def.iter().any(|h| h.attribute_path == id), "broken {id} shown by default");
    let inc = db.search(&broken, 50, &Filters { include_broken: true, ..Default::default() }, Some(&e)).await.unwrap();
    assert!(inc.iter().any(|h| h.attribute_path == id), "broken {id} missing with include_broken");
    // free-only hides unfree packages
    let unfree: String = conn.query_row("SELECT package_name FROM packages WHERE unfree AND NOT broken AND NOT insecure ORDER BY attr_depth, package_id LIMIT 1", [], |r| r.get(0)).unwrap();
    let all = db.search(&unfree, 50, &Filters::default(), Some(&e)).await.unwrap();
    assert!(!all.is_empty());
    let free = db.search(&unfree, 50, &Filters { free_only: true, ..Default::default() }, Some(&e)).await.unwrap();
    for h in &free {
        let n: i64 = conn.query_row("SELECT count(*) FROM packages WHERE package_id = ? AND unfree", [&h.attribute_path], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{} is unfree", h.attribute_path);
    }
    // platform
    let linux = db.search("curl", 10, &Filters { platform: Some("x86_64-linux".into()), ..Default::default() }, Some(&e)).await.unwrap();
    assert_eq!(linux[0].attribute_path, "curl");
    let none = db.search("curl", 10, &Filters { platform: Some("no-such-platform".into()), ..Default::default() }, Some(&e)).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_input_is_safe() {
    let (_d, db, e) = artifact().await;
    let f = Filters::default();
    let long = "a".repeat(10_000);
    for q in ["", "   ", "'", "\"", "'; DROP TABLE packages; --", "% _ \\", "?1 ?2", "\0\u{1}", "ñandú 漢字 🦀", long.as_str(), "curl' OR '1'='1"] {
        let r = db.search(q, 10, &f, Some(&e)).await;
        assert!(r.is_ok(), "{q:?}: {r:?}");
    }
    assert!(db.search("", 10, &f, Some(&e)).await.unwrap().is_empty());
    let n: i64 = db.connection().query_row("SELECT count(*) FROM packages", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 315);
    // an embedder of another model is refused
    let other = LexicalEmbedder::new(64);
    assert!(db.search("curl", 10, &f, Some(&other)).await.is_err());
    // without vectors it still answers
    assert_eq!(db.search("curl", 10, &f, None).await.unwrap()[0].attribute_path, "curl");
}

#[test]
fn cli_search_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli.duckdb");
    let bin = env!("CARGO_BIN_EXE_fdnix");
    let st = std::process::Command::new(bin)
        .args(["index", "--mode", "both", "--embedder", "fake-lexical", "--source"])
        .arg(format!("file:{}", demo().display()))
        .arg("--output")
        .arg(&out)
        .env("FDNIX_EXTENSION_DIR", ext_dir())
        .env_remove("ARTIFACTS_BUCKET")
        .status()
        .unwrap();
    assert!(st.success());
    let o = std::process::Command::new(bin).args(["search", "--json", "--limit", "5", "--db"]).arg(&out).arg("wireshark").env("FDNIX_EXTENSION_DIR", ext_dir()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert!(!arr.is_empty() && arr.len() <= 5);
    assert_eq!(arr[0]["attribute_path"], "wireshark");
    for k in ["attribute_path", "version", "description", "score"] {
        assert!(arr[0].get(k).is_some(), "{k}");
    }
}
