//! The real nix-env subprocess path: Debian's nix-bin evaluates the shipped expression set.
mod common;

use std::time::Duration;

use common::*;
use fdnix::config::Mode;
use fdnix::providers::source_nixenv::NixEnvSource;

fn source(file: &std::path::Path, state: &std::path::Path) -> NixEnvSource {
    let mut s = NixEnvSource::new(Some(file.display().to_string()));
    s.extra_args = vec!["--option".into(), "sandbox".into(), "false".into()];
    s.env = vec![("NIX_PATH".into(), String::new()), ("NIX_STATE_DIR".into(), state.display().to_string())];
    s.timeout = Duration::from_secs(120);
    s.retry_delay = Duration::from_millis(10);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nix_env_evaluates_the_fixture_set() {
    assert!(std::process::Command::new("nix-env").arg("--version").output().is_ok(), "nix-env is not installed: run scripts/setup.sh nix");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.duckdb");
    let src = source(&repo().join("fixtures/nix/default.nix"), dir.path());
    let s = index(Mode::Metadata, &out, Some(&src), None, None).await;
    let m = s.metadata.unwrap();
    assert_eq!(m.packages_written, 12, "{m:?}");
    assert_eq!(m.skipped, 0);
    let c = conn(&out);
    let forms = |f: &str| count(&c, &format!("SELECT count(*) FROM packages WHERE license_form = '{f}'"));
    assert_eq!(forms("object"), 6); // hello, brokenpkg, unfreepkg, insecurepkg, zfsish, requests
    assert_eq!(forms("object_list"), 1);
    assert_eq!(forms("string"), 1);
    assert_eq!(forms("string_list"), 1);
    assert_eq!(forms("mixed_list"), 1);
    assert_eq!(forms("empty_list"), 1);
    assert_eq!(forms("absent"), 1);
    assert_eq!(count(&c, "SELECT count(*) FROM packages WHERE package_id = 'ripgrep' AND main_program = 'rg' AND len(maintainers) = 2"), 1);
    assert_eq!(count(&c, "SELECT count(*) FROM packages, unnest(maintainers) m WHERE m.unnest.github IS NULL"), 2);
    assert_eq!(count(&c, "SELECT count(*) FROM packages WHERE package_id = 'brokenpkg' AND broken"), 1);
    assert_eq!(count(&c, "SELECT count(*) FROM packages WHERE package_id = 'zfsish' AND len(platform_patterns) = 1 AND len(outputs) = 3"), 1);
    assert_eq!(count(&c, "SELECT count(*) FROM packages WHERE package_id = 'pythonPackages.requests' AND attr_depth = 1"), 1);
    assert_eq!(count(&c, "SELECT count(*) FROM packages WHERE package_id = 'unfreepkg' AND NOT list_bool_and(list_transform(license, lambda l: l.free))"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nix_env_failure_reports_status_and_stderr_after_three_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.nix");
    std::fs::write(&bad, "{ x = throw \"fdnix-test-evaluation-error\"; y = builtins.abort \"boom\"; }").unwrap();
    let mut src = source(&bad, dir.path());
    src.extra_args.push("--show-trace".into());
    // nix-env skips attributes that throw, but abort is fatal
    let err = fdnix::traits::Source::open(&src).await.err().expect("nix-env must fail");
    let msg = err.to_string();
    assert!(msg.contains("3 attempt"), "{msg}");
    assert!(msg.contains("exit status"), "{msg}");
    assert!(msg.contains("boom"), "stderr tail missing: {msg}");

    let mut missing = source(&bad, dir.path());
    missing.program = "/nonexistent/nix-env".into();
    missing.attempts = 2;
    let msg = fdnix::traits::Source::open(&missing).await.err().unwrap().to_string();
    assert!(msg.contains("cannot start") && msg.contains("2 attempt"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nix_env_timeout_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow.sh");
    std::fs::write(&slow, "#!/bin/sh\nsleep 30\n").unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&slow).status().unwrap();
    let mut src = source(&slow, dir.path());
    src.program = slow.clone();
    src.timeout = Duration::from_millis(300);
    src.attempts = 1;
    let msg = fdnix::traits::Source::open(&src).await.err().unwrap().to_string();
    assert!(msg.contains("timed out"), "{msg}");
}
