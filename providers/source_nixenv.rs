//! The nix-env source: runs `nix-env -qaP --json --meta`, as the original container did, with
//! a timeout and 3 attempts. Output goes to a temporary file and is parsed only after a
//! successful exit, so a failed attempt never emits half a package set.
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::error::SourceError;
use crate::traits::{RawStream, Source};

use super::source_file::spawn_parser;

const STDERR_TAIL_LINES: usize = 40;

#[derive(Debug, Clone)]
pub struct NixEnvSource {
    /// The nix-env binary.
    pub program: PathBuf,
    /// `-f FILE`; None uses nix-env's default (`<nixpkgs>` via NIX_PATH / ~/.nix-defexpr).
    pub file: Option<String>,
    pub extra_args: Vec<String>,
    pub timeout: Duration,
    pub attempts: u32,
    /// Extra environment for the child (e.g. NIX_STATE_DIR for isolation).
    pub env: Vec<(String, String)>,
    /// Delay before the second attempt; doubles after each failure.
    pub retry_delay: Duration,
}

impl NixEnvSource {
    pub fn new(file: Option<String>) -> Self {
        NixEnvSource { program: "nix-env".into(), file, extra_args: Vec::new(), timeout: Duration::from_secs(1800), attempts: 3, env: Vec::new(), retry_delay: Duration::from_secs(2) }
    }

    fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        if let Some(f) = &self.file {
            a.push("-f".into());
            a.push(f.clone());
        }
        a.extend(["-qaP", "--json", "--meta"].map(String::from));
        a.extend(self.extra_args.iter().cloned());
        a
    }

    async fn attempt(&self, n: u32) -> Result<std::fs::File, SourceError> {
        let out = tempfile::tempfile().map_err(|e| SourceError::Other(format!("cannot create a temporary file for nix-env output: {e}")))?;
        let out_child = out.try_clone().map_err(|e| SourceError::Other(format!("temporary file: {e}")))?;
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(self.args()).stdout(Stdio::from(out_child)).stderr(Stdio::piped()).stdin(Stdio::null()).kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| SourceError::NixEnv {
            attempts: n,
            status: format!("cannot start {}: {e}", self.program.display()),
            stderr_tail: String::new(),
        })?;
        let stderr = child.stderr.take();
        let tail = tokio::spawn(async move {
            let mut tail: VecDeque<String> = VecDeque::new();
            if let Some(se) = stderr {
                let mut lines = BufReader::new(se).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(l);
                }
            }
            tail.into_iter().collect::<Vec<_>>().join("\n")
        });
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(s) => s.map_err(|e| SourceError::Other(format!("waiting for nix-env: {e}")))?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(SourceError::Timeout { secs: self.timeout.as_secs(), attempt: n });
            }
        };
        let stderr_tail = tail.await.unwrap_or_default();
        if !status.success() {
            return Err(SourceError::NixEnv { attempts: n, status: status.to_string(), stderr_tail });
        }
        Ok(out)
    }
}

#[async_trait]
impl Source for NixEnvSource {
    fn describe(&self) -> String {
        match &self.file {
            Some(f) => format!("nix-env -f {f}"),
            None => "nix-env".into(),
        }
    }

    async fn open(&self) -> Result<RawStream, SourceError> {
        let attempts = self.attempts.max(1);
        let mut last = None;
        for n in 1..=attempts {
            tracing::info!(attempt = n, args = ?self.args(), "running nix-env");
            match self.attempt(n).await {
                Ok(mut file) => {
                    use std::io::Seek;
                    file.seek(std::io::SeekFrom::Start(0)).map_err(|e| SourceError::Other(format!("rewinding nix-env output: {e}")))?;
                    let reader = std::io::BufReader::with_capacity(1 << 20, file);
                    return Ok(spawn_parser(reader));
                }
                Err(e) => {
                    tracing::warn!(attempt = n, error = %e, "nix-env attempt failed");
                    last = Some(e);
                    if n < attempts {
                        tokio::time::sleep(self.retry_delay * 2u32.pow(n - 1)).await;
                    }
                }
            }
        }
        Err(match last {
            Some(SourceError::NixEnv { status, stderr_tail, .. }) => SourceError::NixEnv { attempts, status, stderr_tail },
            Some(e) => e,
            None => SourceError::Other("nix-env was not run".into()),
        })
    }
}
