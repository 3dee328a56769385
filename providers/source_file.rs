//! A dump file source: `nix-env -qaP --json --meta` output saved as `.json` or `.json.zst`.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::error::SourceError;
use crate::raw::{parse_package_map_slice, RawEntry};
use crate::traits::{RawStream, Source};

/// Parses `reader` on its own thread and hands entries over a bounded channel. The text is
/// read into memory first (parsing a slice is about 3x faster than through `io::Read`);
/// entries are deserialised one at a time, so no DOM of the whole document is ever built.
pub fn spawn_parser<R: Read + Send + 'static>(mut reader: R) -> RawStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RawEntry, SourceError>>(4096);
    std::thread::spawn(move || {
        let mut text = Vec::with_capacity(1 << 24);
        if let Err(e) = reader.read_to_end(&mut text) {
            let _ = tx.blocking_send(Err(SourceError::Json(format!("read error: {e}"))));
            return;
        }
        let res = parse_package_map_slice(&text, |e| tx.blocking_send(Ok(e)).is_ok());
        if let Err(e) = res {
            let _ = tx.blocking_send(Err(e));
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }))
}

/// Opens a file, decompressing by extension (`.zst`; `.br` for channel files).
pub fn open_maybe_compressed(path: &Path) -> Result<Box<dyn Read + Send>, SourceError> {
    let io = |e| SourceError::Io { path: path.to_path_buf(), source: e };
    let f = File::open(path).map_err(io)?;
    let name = path.to_string_lossy();
    if name.ends_with(".zst") {
        let d = zstd::stream::read::Decoder::new(f).map_err(io)?;
        Ok(Box::new(BufReader::with_capacity(1 << 20, d)))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
    }
}

#[derive(Debug, Clone)]
pub struct FileSource {
    pub path: PathBuf,
}

impl FileSource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSource { path: path.into() }
    }
}

#[async_trait]
impl Source for FileSource {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    async fn open(&self) -> Result<RawStream, SourceError> {
        let reader = open_maybe_compressed(&self.path)?;
        Ok(spawn_parser(reader))
    }
}
