//! Local filesystem sink: a directory holds the artifact, its content-addressed copy and the
//! manifest. Writes go to a temporary file and are renamed into place.
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::error::SinkError;
use crate::publish::{BlobStore, ManifestSink};

#[derive(Debug, Clone)]
pub struct DirBlobs {
    pub root: PathBuf,
}

/// An [`crate::traits::ArtifactSink`] over a directory; `name` is the artifact's file name.
pub fn dir_sink(root: impl Into<PathBuf>, name: &str) -> ManifestSink<DirBlobs> {
    ManifestSink::new(DirBlobs { root: root.into() }, name)
}

impl DirBlobs {
    fn path(&self, key: &str) -> Result<PathBuf, SinkError> {
        if key.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(SinkError::Remote(format!("invalid key {key}")));
        }
        Ok(self.root.join(key))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io { path: path.to_path_buf(), source }
}

fn tmp_of(p: &Path) -> PathBuf {
    let mut n = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    n.push(format!(".tmp-{}", std::process::id()));
    p.with_file_name(n)
}

fn atomic_write(dest: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<(), SinkError> {
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let tmp = tmp_of(dest);
    write(&tmp).map_err(io(&tmp))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, dest).map_err(io(dest))
}

#[async_trait]
impl BlobStore for DirBlobs {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }
    async fn put_file(&self, key: &str, src: &Path) -> Result<(), SinkError> {
        let dest = self.path(key)?;
        atomic_write(&dest, |tmp| std::fs::copy(src, tmp).map(|_| ()))
    }
    async fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<(), SinkError> {
        let dest = self.path(key)?;
        atomic_write(&dest, |tmp| std::fs::write(tmp, &data))
    }
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        let p = self.path(key)?;
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SinkError::Io { path: p, source: e }),
        }
    }
    async fn get_file(&self, key: &str, dest: &Path) -> Result<bool, SinkError> {
        let p = self.path(key)?;
        match std::fs::copy(&p, dest) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SinkError::Io { path: p, source: e }),
        }
    }
    async fn copy(&self, from: &str, to: &str) -> Result<(), SinkError> {
        let src = self.path(from)?;
        let dest = self.path(to)?;
        atomic_write(&dest, |tmp| std::fs::copy(&src, tmp).map(|_| ()))
    }
    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        let p = self.path(key)?;
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SinkError::Io { path: p, source: e }),
        }
    }
}
