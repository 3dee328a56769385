//! Atomic artifact files. Work happens in `<output>.partial` beside the target; the target is
//! replaced by a rename only when the run succeeds. A killed run leaves the earlier artifact
//! untouched, and its `.partial` (with every committed batch) is resumed by the next run.
use std::path::{Path, PathBuf};

use crate::error::RunError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartedFrom {
    /// An interrupted run's work file.
    Resumed,
    /// A copy of an earlier artifact.
    Existing,
    /// Nothing: a new file.
    Fresh,
}

#[derive(Debug)]
pub struct WorkFile {
    target: PathBuf,
    work: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io { path: path.to_path_buf(), source }
}

/// The work file used for `target`.
pub fn work_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "fdnix.duckdb".into());
    name.push(".partial");
    target.with_file_name(name)
}

fn wal_of(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(".wal");
    PathBuf::from(s)
}

impl WorkFile {
    /// Prepares the work file: resumes an interrupted one, else copies `seed` (an earlier
    /// artifact) when it exists, else starts fresh.
    pub fn prepare(target: &Path, seed: Option<&Path>) -> Result<(WorkFile, StartedFrom), RunError> {
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let work = work_path(target);
        let wf = WorkFile { target: target.to_path_buf(), work: work.clone() };
        if work.exists() {
            return Ok((wf, StartedFrom::Resumed));
        }
        let _ = std::fs::remove_file(wal_of(&work));
        if let Some(seed) = seed.filter(|s| s.exists()) {
            let tmp = work.with_extension("partial.copying");
            std::fs::copy(seed, &tmp).map_err(io(seed))?;
            let seed_wal = wal_of(seed);
            if seed_wal.exists() {
                std::fs::copy(&seed_wal, wal_of(&work)).map_err(io(&seed_wal))?;
            }
            std::fs::rename(&tmp, &work).map_err(io(&work))?;
            return Ok((wf, StartedFrom::Existing));
        }
        Ok((wf, StartedFrom::Fresh))
    }

    pub fn path(&self) -> &Path {
        &self.work
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Makes the work file the artifact: fsync, then rename over the target.
    pub fn commit(self) -> Result<PathBuf, RunError> {
        let f = std::fs::File::open(&self.work).map_err(io(&self.work))?;
        f.sync_all().map_err(io(&self.work))?;
        drop(f);
        if wal_of(&self.work).exists() {
            return Err(RunError::Precondition(format!(
                "{} still has a write-ahead log after close; refusing to publish a file without it",
                self.work.display()
            )));
        }
        std::fs::rename(&self.work, &self.target).map_err(io(&self.target))?;
        let _ = std::fs::remove_file(wal_of(&self.target));
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_existing_and_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.duckdb");
        let (w, s) = WorkFile::prepare(&target, Some(&target)).unwrap();
        assert_eq!(s, StartedFrom::Fresh);
        std::fs::write(w.path(), b"new").unwrap();
        let out = w.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");

        let (w, s) = WorkFile::prepare(&target, Some(&target)).unwrap();
        assert_eq!(s, StartedFrom::Existing);
        assert_eq!(std::fs::read(w.path()).unwrap(), b"new");
        std::fs::write(w.path(), b"half").unwrap();
        drop(w); // killed: the target is untouched
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let (w, s) = WorkFile::prepare(&target, Some(&target)).unwrap();
        assert_eq!(s, StartedFrom::Resumed);
        assert_eq!(std::fs::read(w.path()).unwrap(), b"half");
    }
}
