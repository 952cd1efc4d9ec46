//! Filesystem plumbing for durability. gix renames its files into place but
//! never fsyncs them, so everything the backend promises to be durable goes
//! through these, and through the backend's [`Fs`] (`crate::durable`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::StorageError;
use super::write_set::FlushStats;
use crate::durable::{Fs, RealFs};

/// Remove a file; one already gone is fine.
pub(super) fn remove_if_present(fs: &dyn Fs, file: &Path) -> Result<(), StorageError> {
    match fs.remove_file(file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(format!("cannot remove {}", file.display()), e)),
    }
}

pub(super) fn fsync_file(fs: &dyn Fs, path: &Path) -> Result<(), StorageError> {
    fs.sync_file(path).map_err(|e| StorageError::io(format!("cannot fsync {}", path.display()), e))
}

/// Fsync a directory, making the entries created, renamed or removed in it
/// durable.
pub(super) fn fsync_dir(fs: &dyn Fs, path: &Path) -> Result<(), StorageError> {
    fs.sync_dir(path).map_err(|e| StorageError::io(format!("cannot fsync {}", path.display()), e))
}

/// Fsync directories, in order.
pub(super) fn fsync_dirs(fs: &dyn Fs, paths: &[&Path]) -> Result<(), StorageError> {
    paths.iter().try_for_each(|path| fsync_dir(fs, path))
}

/// Fsync a newly created directory tree: every file and directory below and
/// including `path`, then `path`'s parent (which got the new entry).
pub(super) fn sync_new_tree(path: &Path) -> Result<(), StorageError> {
    fn walk(dir: &Path) -> Result<(), StorageError> {
        let listing_failed = |e| StorageError::io(format!("cannot list {}", dir.display()), e);
        for entry in std::fs::read_dir(dir).map_err(listing_failed)? {
            let entry = entry.map_err(listing_failed)?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| StorageError::io(format!("cannot stat {}", path.display()), e))?;
            if file_type.is_dir() {
                walk(&path)?;
            } else if file_type.is_file() {
                fsync_file(&RealFs, &path)?;
            }
        }
        fsync_dir(&RealFs, dir)
    }
    walk(path)?;
    sync_new_tree_parent(path)
}

/// Fsync the directory that holds `path`.
pub(super) fn sync_new_tree_parent(path: &Path) -> Result<(), StorageError> {
    let absolute =
        path.canonicalize().map_err(|e| StorageError::io(format!("cannot resolve {}", path.display()), e))?;
    match absolute.parent() {
        Some(parent) => fsync_dir(&RealFs, parent),
        None => Ok(()),
    }
}

/// Temporary files of a pack being written: removed when dropped, unless
/// forgotten (once renamed into place).
#[derive(Debug)]
pub(super) struct TempFiles {
    fs: Arc<dyn Fs>,
    paths: Vec<PathBuf>,
}

impl TempFiles {
    pub(super) fn new(fs: &Arc<dyn Fs>) -> TempFiles {
        TempFiles { fs: fs.clone(), paths: Vec::new() }
    }

    /// Create a new file named `prefix…` in `dir` holding `bytes`, fsynced
    /// (read-only, as git makes pack files).
    pub(super) fn create(
        &mut self,
        dir: &Path,
        prefix: &str,
        bytes: &[u8],
        stats: &mut FlushStats,
    ) -> Result<PathBuf, StorageError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let (path, mut file) = loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{prefix}{}_{unique}_{nanos:09}", std::process::id()));
            match self.fs.create_new(&path, 0o444) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StorageError::io(format!("cannot create {}", path.display()), e)),
            }
        };
        self.paths.push(path.clone());
        let failed = |e| StorageError::io(format!("cannot write {}", path.display()), e);
        file.write_all(bytes).map_err(failed)?;
        let syncing = Instant::now();
        file.sync().map_err(|e| StorageError::io(format!("cannot fsync {}", path.display()), e))?;
        stats.sync += syncing.elapsed();
        Ok(path)
    }

    pub(super) fn forget(&mut self) {
        self.paths.clear();
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = self.fs.remove_file(path);
        }
    }
}
