//! Filesystem plumbing for durability. gix renames its files into place but
//! never fsyncs them, so everything the backend promises to be durable goes
//! through these.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::StorageError;
use super::write_set::FlushStats;

/// Remove a file; one already gone is fine.
pub(super) fn remove_if_present(file: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(format!("cannot remove {}", file.display()), e)),
    }
}

pub(super) fn fsync_file(path: &Path) -> Result<(), StorageError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(format!("cannot fsync {}", path.display()), e))
}

/// Fsync a file, or a directory (making the entries created in it durable);
/// directories are skipped where they cannot be opened as files.
pub(super) fn fsync_path(path: &Path) -> Result<(), StorageError> {
    if cfg!(unix) || path.is_file() { fsync_file(path) } else { Ok(()) }
}

/// Fsync files and directories, in order.
pub(super) fn fsync_all(paths: &[&Path]) -> Result<(), StorageError> {
    paths.iter().try_for_each(|path| fsync_path(path))
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
                fsync_file(&path)?;
            }
        }
        fsync_path(dir)
    }
    walk(path)?;
    sync_new_tree_parent(path)
}

/// Fsync the directory that holds `path`.
pub(super) fn sync_new_tree_parent(path: &Path) -> Result<(), StorageError> {
    let absolute =
        path.canonicalize().map_err(|e| StorageError::io(format!("cannot resolve {}", path.display()), e))?;
    match absolute.parent() {
        Some(parent) => fsync_path(parent),
        None => Ok(()),
    }
}

/// Temporary files of a pack being written: removed when dropped, unless
/// forgotten (once renamed into place).
#[derive(Debug, Default)]
pub(super) struct TempFiles(Vec<PathBuf>);

impl TempFiles {
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
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o444);
        let (path, mut file) = loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{prefix}{}_{unique}_{nanos:09}", std::process::id()));
            match options.open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StorageError::io(format!("cannot create {}", path.display()), e)),
            }
        };
        self.0.push(path.clone());
        let failed = |e| StorageError::io(format!("cannot write {}", path.display()), e);
        file.write_all(bytes).map_err(failed)?;
        let syncing = Instant::now();
        file.sync_all().map_err(|e| StorageError::io(format!("cannot fsync {}", path.display()), e))?;
        stats.sync += syncing.elapsed();
        Ok(path)
    }

    pub(super) fn forget(&mut self) {
        self.0.clear();
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
