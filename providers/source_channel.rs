//! A nixpkgs channel's `packages.json` (as search.nixos.org reads it): plain, `.br` or `.zst`,
//! from a path or an http(s) URL. The `{"version": 2, "packages": {…}}` wrapper is unwrapped by
//! the shared streaming parser, so the output is the same normalised packages as nix-env's.
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::error::SourceError;
use crate::traits::{RawStream, Source};

use super::source_file::spawn_parser;

#[derive(Debug, Clone)]
pub struct ChannelSource {
    /// A path or an http(s) URL.
    pub location: String,
}

impl ChannelSource {
    pub fn new(location: impl Into<String>) -> Self {
        ChannelSource { location: location.into() }
    }

    fn is_url(&self) -> bool {
        self.location.starts_with("http://") || self.location.starts_with("https://")
    }
}

/// Opens a channel file, decompressing by its name (`.br`, `.zst`, else plain).
pub fn open_channel_file(path: &Path, name: &str) -> Result<Box<dyn Read + Send>, SourceError> {
    let io = |e| SourceError::Io { path: path.to_path_buf(), source: e };
    let f = std::fs::File::open(path).map_err(io)?;
    if name.ends_with(".br") {
        Ok(Box::new(BufReader::with_capacity(1 << 20, brotli_decompressor::Decompressor::new(f, 1 << 16))))
    } else if name.ends_with(".zst") {
        Ok(Box::new(BufReader::with_capacity(1 << 20, zstd::stream::read::Decoder::new(f).map_err(io)?)))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
    }
}

#[cfg(feature = "objstore")]
async fn download(url: &str, dest: &Path) -> Result<(), SourceError> {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    use tokio::io::AsyncWriteExt;
    let u = url::Url::parse(url).map_err(|e| SourceError::Other(format!("FDNIX_SOURCE: invalid channel URL {url}: {e}")))?;
    // Plain http is allowed on purpose: channels are verified by their content, and tests serve on loopback.
    let (store, path) = object_store::parse_url_opts(&u, [("allow_http", "true")]).map_err(|e| SourceError::Other(format!("channel URL {url}: {e}")))?;
    let res = store.get(&path).await.map_err(|e| SourceError::Other(format!("downloading {url}: {e}")))?;
    let mut f = tokio::fs::File::create(dest).await.map_err(|e| SourceError::Io { path: dest.to_path_buf(), source: e })?;
    let mut s = res.into_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| SourceError::Other(format!("downloading {url}: {e}")))?;
        f.write_all(&chunk).await.map_err(|e| SourceError::Io { path: dest.to_path_buf(), source: e })?;
    }
    f.flush().await.map_err(|e| SourceError::Io { path: dest.to_path_buf(), source: e })?;
    Ok(())
}

#[cfg(not(feature = "objstore"))]
async fn download(url: &str, _dest: &Path) -> Result<(), SourceError> {
    Err(SourceError::Other(format!("channel URL {url}: this build has no HTTP client (feature objstore)")))
}

#[async_trait]
impl Source for ChannelSource {
    fn describe(&self) -> String {
        format!("channel:{}", self.location)
    }

    async fn open(&self) -> Result<RawStream, SourceError> {
        let name = self.location.split(['?', '#']).next().unwrap_or(&self.location).to_string();
        if self.is_url() {
            let tmp = tempfile::NamedTempFile::new().map_err(|e| SourceError::Other(format!("temporary file: {e}")))?;
            download(&self.location, tmp.path()).await?;
            let reader = open_channel_file(tmp.path(), &name)?;
            // The open file stays readable after the name is removed.
            drop(tmp);
            return Ok(spawn_parser(reader));
        }
        let path = PathBuf::from(&self.location);
        Ok(spawn_parser(open_channel_file(&path, &name)?))
    }
}
