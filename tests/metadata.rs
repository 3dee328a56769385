//! The metadata phase on real nixpkgs data, against the real DuckDB with FTS.
mod common;

use std::collections::BTreeMap;

use common::*;
use fdnix::config::Mode;
use fdnix::providers::source_file::FileSource;
use serde_json::Value;

/// License forms counted straight from the JSON, independently of the normaliser.
fn license_forms(path: &std::path::Path) -> BTreeMap<String, i64> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut m = BTreeMap::new();
    for (_, p) in v.as_object().unwrap() {
        let f = match p["meta"].get("license") {
            None | Some(Value::Null) => "absent",
            Some(Value::Object(_)) => "object",
            Some(Value::String(_)) => "string",
            Some(Value::Array(a)) if a.is_empty() => "empty_list",
            Some(Value::Array(a)) if a.iter().all(Value::is_object) => "object_list",
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => "string_list",
            Some(Value::Array(_)) => "mixed_list",
            _ => "other",
        };
        *m.entry(f.to_string()).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_dump_loads_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.duckdb");
    let src = FileSource::new(sample());
    let s = index(Mode::Metadata, &out, Some(&src), None, None).await;
    let m = s.metadata.unwrap();
    assert_eq!(m.entries_read, 2000);
    assert_eq!(m.packages_written + m.skipped, 2000);
    assert_eq!(m.skipped, 0, "sample entries skipped: {:?}", m.skipped_packages);
    assert_eq!(m.fts_rows, m.packages_written);

    let c = conn(&out);
    assert_eq!(count(&c, "SELECT count(*) FROM packages"), 2000);
    assert_eq!(count(&c, "SELECT count(*) FROM packages_fts_source"), 2000);
    // every license form survives, with the counts of the source
    let want = license_forms(&sample());
    let mut st = c.prepare("SELECT license_form, count(*) FROM packages GROUP BY 1").unwrap();
    let got: BTreeMap<String, i64> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, want);
    for form in ["object", "object_list", "string", "string_list", "mixed_list", "empty_list", "absent"] {
        assert!(got.get(form).copied().unwrap_or(0) > 0, "sample lacks license form {form}");
    }
    // nested types are queryable
    assert!(count(&c, "SELECT count(*) FROM packages WHERE list_contains(list_transform(license, lambda l: l.spdx_id), 'MIT')") > 0);
    assert!(count(&c, "SELECT count(*) FROM packages, unnest(maintainers) m WHERE m.unnest.github IS NULL") > 0, "maintainers without github");
    assert!(count(&c, "SELECT count(*) FROM packages WHERE len(platform_patterns) > 0") > 0, "platform patterns");
    assert!(count(&c, "SELECT count(*) FROM packages WHERE version = ''") > 0);
    assert!(count(&c, "SELECT count(*) FROM packages WHERE position IS NULL") > 0);
    assert!(count(&c, "SELECT count(*) FROM packages WHERE system = 'i686-linux'") > 0);
    assert!(count(&c, "SELECT count(*) FROM packages WHERE output_name <> 'out'") > 0);
    assert!(count(&c, "SELECT count(*) FROM packages WHERE broken") > 0);
    assert!(count(&c, "SELECT count(*) FROM packages WHERE meta_extra LIKE '%changelog%'") > 0);
    // the longest longDescription is whole
    let longest: i64 = count(&c, "SELECT max(length(long_description)) FROM packages");
    assert!(longest > 3000, "{longest}");
    // string licenses keep their text
    assert!(count(&c, "SELECT count(*) FROM packages, unnest(license) l WHERE license_form = 'string' AND l.unnest.text IS NOT NULL") > 0);
    // metadata table
    let info: String = c.query_row("SELECT value FROM fdnix_metadata WHERE key = 'package_count'", [], |r| r.get(0)).unwrap();
    assert_eq!(info, "2000");
    for k in ["schema_version", "source", "tool_version", "build_time", "fts_rows"] {
        assert_eq!(count(&c, &format!("SELECT count(*) FROM fdnix_metadata WHERE key = '{k}'")), 1, "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bm25_finds_wireshark_and_the_index_name_macro_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.duckdb");
    let src = FileSource::new(demo());
    index(Mode::Metadata, &out, Some(&src), None, None).await;
    let c = conn(&out);
    let mut st = c
        .prepare(
            "SELECT p.attribute_path FROM (SELECT package_id, fts_main_packages_fts_source.match_bm25(package_id, 'wireshark') AS s FROM packages_fts_source) f
             JOIN packages p USING (package_id) WHERE s IS NOT NULL ORDER BY s DESC LIMIT 3",
        )
        .unwrap();
    let top: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert!(top.iter().any(|t| t == "wireshark"), "{top:?}");
    let n = count(&c, "SELECT count(*) FROM packages_fts_idx('inkscape')");
    assert!(n >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_and_entries() {
    let dir = tempfile::tempdir().unwrap();
    // not an object: a clear error, and no artifact
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1, 2, 3]").unwrap();
    let out = dir.path().join("x.duckdb");
    let err = try_index(Mode::Metadata, &out, Some(&FileSource::new(&bad)), None, None).await.unwrap_err();
    assert!(err.to_string().contains("not a JSON object"), "{err}");
    assert!(!out.exists());
    // a missing file names the path
    let err = try_index(Mode::Metadata, &out, Some(&FileSource::new(dir.path().join("nope.json"))), None, None).await.unwrap_err();
    assert!(err.to_string().contains("nope.json"), "{err}");
    // bad entries are skipped and counted with reasons; good ones are kept
    let mixed = dir.path().join("mixed.json");
    std::fs::write(
        &mixed,
        r#"{"good":{"pname":"good","version":"1","meta":{"description":"fine"}},
            "badbool":{"pname":"b","meta":{"broken":"yes"}},
            "notobj":[1],
            "badlic":{"pname":"l","meta":{"license":42}}}"#,
    )
    .unwrap();
    let s = index(Mode::Metadata, &out, Some(&FileSource::new(&mixed)), None, None).await;
    let m = s.metadata.unwrap();
    assert_eq!(m.packages_written, 1);
    assert_eq!(m.skipped, 3);
    let reasons: Vec<String> = m.skipped_packages.iter().map(|s| format!("{}: {}", s.attr_path, s.reason)).collect();
    assert!(reasons.iter().any(|r| r.starts_with("badbool: meta.broken")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("notobj: entry is a JSON array")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("badlic: meta.license")), "{reasons:?}");
    assert_eq!(count(&conn(&out), "SELECT count(*) FROM packages"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fts_settings_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.duckdb");
    let st = store();
    for (stemmer, stop, name, var) in [
        ("klingon", "english", "packages_fts_idx", "FTS_STEMMER"),
        ("english", "x'; DROP TABLE packages; --", "packages_fts_idx", "FTS_STOPWORDS"),
        ("english", "english", "bad name; --", "FTS_INDEX_NAME"),
    ] {
        let mut opts = fdnix::driver::RunOptions::new(Mode::Metadata, &out);
        opts.fts = fdnix::traits::FtsParams { stemmer: stemmer.into(), stopwords: stop.into(), index_name: name.into() };
        let src = FileSource::new(demo());
        let err = fdnix::driver::run(&opts, &fdnix::driver::Components { source: Some(&src), embedder: None, store: &st, sink: None }).await.unwrap_err();
        assert!(err.to_string().contains(var), "{err}");
    }
    // an empty stemmer disables stemming
    let mut opts = fdnix::driver::RunOptions::new(Mode::Metadata, &out);
    opts.fts.stemmer = String::new();
    let src = FileSource::new(demo());
    fdnix::driver::run(&opts, &fdnix::driver::Components { source: Some(&src), embedder: None, store: &st, sink: None }).await.unwrap();
    let v: String = conn(&out).query_row("SELECT value FROM fdnix_metadata WHERE key = 'fts_stemmer'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, "none");
}

#[test]
fn killed_run_leaves_the_previous_artifact_untouched_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.duckdb");
    let bin = env!("CARGO_BIN_EXE_fdnix");
    let run = |src: &str| {
        let mut c = std::process::Command::new(bin);
        c.args(["index", "--mode", "metadata", "--source", src, "--output"])
            .arg(&out)
            .env("FDNIX_EXTENSION_DIR", ext_dir())
            .env("FDNIX_LOG_FORMAT", "json")
            .env_remove("ARTIFACTS_BUCKET")
            .env_remove("DUCKDB_KEY");
        c
    };
    let status = run(&format!("file:{}", demo().display())).status().unwrap();
    assert!(status.success());
    let before = std::fs::read(&out).unwrap();
    // A run over the full dump, killed part-way.
    let full = shared("data/nixpkgs-packages.json.zst");
    let mut child = run(&format!("file:{}", full.display())).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(std::fs::read(&out).unwrap(), before, "the earlier artifact changed");
    // The next run resumes and completes.
    let status = run(&format!("file:{}", demo().display())).status().unwrap();
    assert!(status.success());
    assert!(!fdnix::artifact::work_path(&out).exists());
    assert_eq!(count(&conn(&out), "SELECT count(*) FROM packages"), 315);
}

#[test]
fn artifact_opens_in_stock_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("py.duckdb");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        index(Mode::Metadata, &out, Some(&FileSource::new(demo())), None, None).await;
    });
    let script = r#"
import sys, duckdb
assert duckdb.__version__ == "1.5.5", duckdb.__version__
c = duckdb.connect(sys.argv[1], read_only=True, config={"extension_directory": sys.argv[2], "autoinstall_known_extensions": False})
c.execute("LOAD fts")
rows = c.execute("SELECT p.attribute_path FROM (SELECT package_id, fts_main_packages_fts_source.match_bm25(package_id, 'wireshark') s FROM packages_fts_source) f JOIN packages p USING (package_id) WHERE s IS NOT NULL ORDER BY s DESC LIMIT 3").fetchall()
print([r[0] for r in rows])
assert "wireshark" in [r[0] for r in rows], rows
print(c.execute("SELECT count(*) FROM packages").fetchone()[0])
"#;
    let o = std::process::Command::new("python3").arg("-c").arg(script).arg(&out).arg(ext_dir()).output().expect("python3");
    assert!(o.status.success(), "stock DuckDB failed: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("315"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_bm25_matches_match_bm25() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.duckdb");
    index(Mode::Metadata, &out, Some(&FileSource::new(sample())), None, None).await;
    let sdb = fdnix::providers::search::SearchDb::open(&out, &ext_dir()).unwrap();
    let c = sdb.connection();
    let mut nonempty = 0;
    // the fts extension's defaults, and the length normalisation search ranks with
    for (k1, b) in [(1.2, 0.75), (1.2, 0.5)] {
        let p = fdnix::providers::bm25::Bm25Params { k1, b };
        for q in ["pdf viewer", "python library", "rust command line tool", "gnome", "x'; --", "the", "Ünïcode ½ ünknown"] {
            let mut a = c
                .prepare("SELECT package_id, s FROM (SELECT package_id, fts_main_packages_fts_source.match_bm25(package_id, ?, k := ?, b := ?) s FROM packages_fts_source) WHERE s IS NOT NULL ORDER BY s DESC, package_id LIMIT 20")
                .unwrap();
            let want: Vec<(String, f64)> = a.query_map(duckdb::params![q, k1, b], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
            let got = sdb.bm25(q, 20, p).unwrap();
            assert_eq!(want.len(), got.len(), "{q}");
            nonempty += usize::from(!got.is_empty());
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(w.0, g.0, "{q} b={b}");
                assert!((w.1 - g.1).abs() < 1e-6, "{q} b={b}: {} vs {}", w.1, g.1);
            }
        }
    }
    assert!(nonempty >= 8, "the comparison must cover queries with hits");
}
