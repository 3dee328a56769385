//! Configuration layering (defaults < file < environment < flags) and named errors.
use std::path::PathBuf;

use fdnix::config::{Config, FlagOverrides, Mode};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_match_the_seed() {
    let c = Config::load(None, &[], &FlagOverrides::default()).unwrap();
    assert_eq!(c.processing_mode, Mode::Both);
    assert_eq!(c.bedrock_model_id, "cohere.embed-english-v3");
    assert_eq!(c.fts_stopwords, "english");
    assert_eq!(c.fts_stemmer, "english");
    assert_eq!(c.fts_index_name, "packages_fts_idx");
    assert_eq!(c.vss_hnsw_m, 16);
    assert!(c.s3_settings().unwrap().is_none());
}

#[test]
fn file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("fdnix.toml");
    std::fs::write(&f, "processing_mode = \"metadata\"\noutput_path = \"/file/out.duckdb\"\nvss_hnsw_m = 8\nfts_stemmer = \"porter\"\n").unwrap();
    // file over defaults
    let c = Config::load(Some(&f), &[], &FlagOverrides::default()).unwrap();
    assert_eq!(c.processing_mode, Mode::Metadata);
    assert_eq!(c.vss_hnsw_m, 8);
    assert_eq!(c.output_path, PathBuf::from("/file/out.duckdb"));
    // environment over file (seed names and FDNIX_ names)
    let e = env(&[("OUTPUT_PATH", "/env/out.duckdb"), ("VSS_HNSW_M", "24"), ("FDNIX_SOURCE", "file:/x.json"), ("EMBEDDER", "fake"), ("DUCKDB_KEY", "2024")]);
    let c = Config::load(Some(&f), &e, &FlagOverrides::default()).unwrap_err();
    // DUCKDB_KEY without ARTIFACTS_BUCKET / AWS_REGION is an error naming them
    let msg = c.to_string();
    assert!(msg.contains("ARTIFACTS_BUCKET") && msg.contains("AWS_REGION"), "{msg}");
    let e = env(&[("OUTPUT_PATH", "/env/out.duckdb"), ("VSS_HNSW_M", "24"), ("FDNIX_SOURCE", "file:/x.json"), ("EMBEDDER", "fake")]);
    let c = Config::load(Some(&f), &e, &FlagOverrides::default()).unwrap();
    assert_eq!(c.output_path, PathBuf::from("/env/out.duckdb"));
    assert_eq!(c.vss_hnsw_m, 24);
    assert_eq!(c.fts_stemmer, "porter");
    assert_eq!(c.source, "file:/x.json");
    assert_eq!(c.embedder.as_deref(), Some("fake"));
    // flags over environment
    let flags = FlagOverrides { output_path: Some("/flag/out.duckdb".into()), processing_mode: Some(Mode::Embedding), ..Default::default() };
    let c = Config::load(Some(&f), &e, &flags).unwrap();
    assert_eq!(c.output_path, PathBuf::from("/flag/out.duckdb"));
    assert_eq!(c.processing_mode, Mode::Embedding);
    assert_eq!(c.vss_hnsw_m, 24);
}

#[test]
fn bad_values_name_the_variable() {
    for (k, v) in [("VSS_HNSW_M", "lots"), ("PROCESSING_MODE", "everything"), ("VSS_EF_SEARCH", "0"), ("EMBEDDER", "openai"), ("FDNIX_SOURCE", "ftp://x")] {
        let err = Config::load(None, &env(&[(k, v)]), &FlagOverrides::default()).unwrap_err().to_string();
        assert!(err.contains(k), "{k}={v}: {err}");
    }
    let err = Config::load(Some(std::path::Path::new("/no/such.toml")), &[], &FlagOverrides::default()).unwrap_err().to_string();
    assert!(err.contains("/no/such.toml"), "{err}");
}

#[test]
fn s3_settings_all_or_nothing() {
    let ok = Config::load(None, &env(&[("ARTIFACTS_BUCKET", "b"), ("DUCKDB_KEY", "k/fdnix.duckdb"), ("AWS_REGION", "eu-west-1")]), &FlagOverrides::default()).unwrap();
    assert_eq!(ok.s3_settings().unwrap(), Some(("b".into(), "k/fdnix.duckdb".into(), "eu-west-1".into())));
    let err = Config::load(None, &env(&[("ARTIFACTS_BUCKET", "b")]), &FlagOverrides::default()).unwrap_err().to_string();
    assert!(err.contains("DUCKDB_KEY") && err.contains("AWS_REGION"), "{err}");
    // AWS_REGION alone (for Bedrock) is fine and means no upload
    let c = Config::load(None, &env(&[("AWS_REGION", "us-east-1")]), &FlagOverrides::default()).unwrap();
    assert!(c.s3_settings().unwrap().is_none());
    // an empty value counts as unset
    let c = Config::load(None, &env(&[("ARTIFACTS_BUCKET", ""), ("FTS_STEMMER", "")]), &FlagOverrides::default()).unwrap();
    assert!(c.artifacts_bucket.is_none());
    assert_eq!(c.fts_stemmer, "");
}
