//! The durability seam: every file operation whose order a crash could
//! observe (the git backend's objects, packs and refs, and the lease store)
//! goes through [`Fs`], so that a test can replace the disk with one that
//! records what was made durable and when ([`crash::CrashFs`]), and compute
//! what a power loss after any operation would leave.
//!
//! Reads are not part of it: a crash cannot reorder them. Nor are guards
//! (`crate::guard`), which carry no durable state, nor `git init`'s files,
//! written before a backend exists.
//!
//! Production uses [`RealFs`], plain `std::fs`.

#[doc(hidden)]
pub mod crash;

use std::fmt;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::Path;

/// The file operations that must be durable, and nothing more. Paths are
/// absolute or relative to the process; implementations need no root.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Create a file that must not exist yet (`O_EXCL`: the lock-file
    /// protocol relies on only one creator winning), with permissions `mode`
    /// (before the umask), open for writing.
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn DurableFile>>;
    /// Make a file's contents durable, by name.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Make a directory's entries durable: files created, renamed into or
    /// removed from it since its last sync.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Rename a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Remove a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Create one directory (its parent must exist).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
}

/// A file made by [`Fs::create_new`].
pub trait DurableFile: Send {
    /// Append `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Make what was written durable (`fsync`).
    fn sync(&mut self) -> io::Result<()>;
}

/// The real disk.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl Fs for RealFs {
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn DurableFile>> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        Ok(Box::new(options.open(path)?))
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        // Only Unix lets a directory be opened and synced as a file.
        if cfg!(unix) { File::open(path)?.sync_all() } else { Ok(()) }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }
}

impl DurableFile for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, bytes)?;
        self.flush()
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}
