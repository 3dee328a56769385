//! A sink over any `object_store` backend (`s3://`, `file://`, `memory://`, …), sharing the
//! manifest protocol of [`crate::publish`].
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use object_store::path::Path as OsPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::SinkError;
use crate::publish::BlobStore;

const CHUNK: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ObjectStoreBlobs {
    store: Arc<dyn ObjectStore>,
    /// Key prefix inside the store (the URL's path without the artifact name).
    prefix: String,
    label: String,
}

fn remote(e: object_store::Error) -> SinkError {
    SinkError::Remote(e.to_string())
}

impl ObjectStoreBlobs {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, label: &str) -> Self {
        ObjectStoreBlobs { store, prefix: prefix.trim_matches('/').to_string(), label: label.to_string() }
    }

    /// From a URL whose path names the artifact (`s3://bucket/dir/fdnix.duckdb`) or a folder
    /// (`memory:///`, then `default_name` is used). `AWS_*` variables configure S3.
    /// Returns the blobs and the artifact key.
    pub fn from_url(url: &str, default_name: &str) -> Result<(Self, String), SinkError> {
        let u = url::Url::parse(url).map_err(|e| SinkError::Remote(format!("FDNIX_SINK: invalid URL {url}: {e}")))?;
        let opts: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        let (store, path) = object_store::parse_url_opts(&u, opts).map_err(|e| SinkError::Remote(format!("FDNIX_SINK {url}: {e}")))?;
        let p = path.to_string();
        let (prefix, key) = if p.is_empty() || url.ends_with('/') {
            (p, default_name.to_string())
        } else {
            match p.rsplit_once('/') {
                Some((dir, name)) => (dir.to_string(), name.to_string()),
                None => (String::new(), p),
            }
        };
        Ok((ObjectStoreBlobs::new(Arc::from(store), &prefix, url), key))
    }

    fn path(&self, key: &str) -> OsPath {
        if self.prefix.is_empty() { OsPath::from(key) } else { OsPath::from(format!("{}/{key}", self.prefix)) }
    }
}

#[async_trait]
impl BlobStore for ObjectStoreBlobs {
    fn describe(&self) -> String {
        format!("object_store {}", self.label)
    }

    async fn put_file(&self, key: &str, src: &Path) -> Result<(), SinkError> {
        let io = |e| SinkError::Io { path: src.to_path_buf(), source: e };
        let mut f = tokio::fs::File::open(src).await.map_err(io)?;
        let len = f.metadata().await.map_err(io)?.len();
        if len as usize <= CHUNK {
            let mut buf = Vec::with_capacity(len as usize);
            f.read_to_end(&mut buf).await.map_err(io)?;
            self.store.put(&self.path(key), PutPayload::from(buf)).await.map_err(remote)?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&self.path(key)).await.map_err(remote)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4).await.map_err(remote)?;
            w.write(&buf[..n]);
        }
        w.finish().await.map_err(remote)?;
        Ok(())
    }

    async fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<(), SinkError> {
        self.store.put(&self.path(key), PutPayload::from(data)).await.map_err(remote)?;
        Ok(())
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(remote)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    async fn get_file(&self, key: &str, dest: &Path) -> Result<bool, SinkError> {
        let r = match self.store.get(&self.path(key)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(remote(e)),
        };
        let io = |e| SinkError::Io { path: dest.to_path_buf(), source: e };
        let mut f = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut s = r.into_stream();
        while let Some(chunk) = s.next().await {
            f.write_all(&chunk.map_err(remote)?).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        f.sync_all().await.map_err(io)?;
        Ok(true)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), SinkError> {
        self.store.copy(&self.path(from), &self.path(to)).await.map_err(remote)
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(e)),
        }
    }
}
