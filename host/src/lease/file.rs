//! Leases in files inside the repository, one per space:
//! `<git-dir>/dlog/leases/<space>.json`, canonical JSON
//! `{"endpoint":…,"epoch":…,"expires_at_ms":…,"holder":…}`.
//!
//! Compare-and-swap uses git's own lock-file protocol: create
//! `<space>.json.lock` exclusively (only one process can), read and compare
//! the current file, write the new lease into the lock file, fsync it, rename
//! it over the lease file and fsync the directory. A crash leaves the old or
//! the new lease. Every file touched is directly in `dlog/leases/`, named
//! after a space name `check_space` accepted (no `/`, no `..`), so nothing
//! outside it can be. The durable steps go through the store's `Fs`
//! (`crate::durable`), which the crash tests replace.
//!
//! **No stale lock needs a person.** Before it takes the lock file, a process
//! takes the space's guard, `<space>.guard` (an OS advisory lock the kernel
//! drops when its process dies; `crate::guard`). So a lock file found by the
//! holder of the guard was left by a process that died inside its swap: it
//! is removed and the swap goes on, at once, whatever its age. A guard held
//! by a live process is waited for (it is held for about a millisecond),
//! never broken. (Processes of a dlog from before guards take lock files
//! without them; they must not share a repository with this one while
//! running.)
//!
//! Leases are local coordination state, not history: they live outside
//! `refs/`, so `git push`/`clone` of `refs/dlog/*` does not carry them.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Lease, LeaseCell, same_lease};
use crate::durable::{DurableFile, Fs, RealFs};
use crate::error::Error;
use crate::guard::{self, Guard};

/// How long to wait for another process's lock on a lease file. Locks are
/// held for about a millisecond; one older than this is left by a crash.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Leases stored as files under `<git-dir>/dlog/leases/`.
#[derive(Debug)]
pub struct FileLeases {
    /// `<git-dir>/dlog/leases/`; every file touched is directly in it,
    /// named after a space that `check_space` accepted (no `/`, no `..`).
    path: PathBuf,
    /// Every durable file operation goes through this (`crate::durable`).
    fs: Arc<dyn Fs>,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}

impl FileLeases {
    /// The lease store of the repository whose git directory is `git_dir`
    /// (created on first use).
    pub fn open(git_dir: &Path) -> Result<FileLeases, Error> {
        FileLeases::open_with_fs(git_dir, Arc::new(RealFs))
    }

    /// [`FileLeases::open`], its durable file operations going through `fs`
    /// (the crash tests' recording disk).
    #[doc(hidden)]
    pub fn open_with_fs(git_dir: &Path, fs: Arc<dyn Fs>) -> Result<FileLeases, Error> {
        if !git_dir.is_dir() {
            let e = std::fs::metadata(git_dir)
                .err()
                .unwrap_or_else(|| std::io::Error::new(ErrorKind::NotADirectory, "not a directory"));
            return Err(io("cannot open", git_dir, e));
        }
        // Each directory made here is durable before it is used: its parent
        // is fsynced after the mkdir, or a power loss could drop the entry
        // and, with it, every lease written below.
        let mut at = git_dir.to_path_buf();
        for component in ["dlog", "leases"] {
            let parent = at.clone();
            at.push(component);
            match fs.create_dir(&at) {
                Ok(()) => fs.sync_dir(&parent).map_err(|e| io("cannot sync", &parent, e))?,
                Err(e) if e.kind() == ErrorKind::AlreadyExists && at.is_dir() => {}
                Err(e) => return Err(io("cannot create", &at, e)),
            }
        }
        Ok(FileLeases { path: at, fs })
    }
    fn file(space: &str) -> String {
        format!("{space}.json")
    }

    fn parse(&self, space: &str, text: &str) -> Result<Lease, Error> {
        serde_json::from_str(text).map_err(|e| {
            Error::Storage(format!(
                "lease file {} is damaged ({e}); remove it to reset the lease",
                self.path.join(Self::file(space)).display()
            ))
        })
    }

    fn encode(lease: &Lease) -> Result<String, Error> {
        // Through a Value: serde_json sorts its keys (no preserve_order), so
        // the file is canonical JSON, as it always was.
        serde_json::to_value(lease)
            .map(|v| v.to_string())
            .map_err(|e| Error::Storage(format!("cannot encode a lease: {e}")))
    }

    /// Take `space`'s guard (see `crate::guard`), waiting a bounded time
    /// for a live holder, whom the error then names.
    fn guard(&self, space: &str) -> Result<Guard, Error> {
        let path = self.path.join(format!("{space}.guard"));
        // Guards carry no durable state: plain std, not the seam.
        let open =
            || std::fs::File::options().read(true).write(true).create(true).truncate(false).open(&path);
        let file = open().map_err(|e| io("cannot open", &path, e))?;
        match guard::acquire(file, LOCK_WAIT).map_err(|e| io("cannot lock", &path, e))? {
            Some(held) => Ok(held),
            None => Err(Error::Storage(format!(
                "the lease of space {space:?} is being changed by a live process ({}) that held it \
                 for over {}s; it is never broken while that process lives",
                guard::describe(open().ok().as_ref().and_then(guard::holder)),
                LOCK_WAIT.as_secs()
            ))),
        }
    }

    /// Take the lock file of `space`. The caller holds the guard, so a lock
    /// file that exists was left by a process that died holding it.
    fn lock(&self, space: &str) -> Result<(Box<dyn DurableFile>, PathBuf), Error> {
        let path = self.path.join(format!("{space}.json.lock"));
        match self.fs.create_new(&path, 0o666) {
            Ok(file) => Ok((file, path)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.fs.remove_file(&path).map_err(|e| io("cannot remove stale", &path, e))?;
                let file = self.fs.create_new(&path, 0o666).map_err(|e| io("cannot lock", &path, e))?;
                Ok((file, path))
            }
            Err(e) => Err(io("cannot lock", &path, e)),
        }
    }
}

impl LeaseCell for FileLeases {
    fn read(&self, space: &str) -> Result<Option<Lease>, Error> {
        super::check_space(space)?;
        let path = self.path.join(Self::file(space));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot read", &path, e)),
        };
        self.parse(space, &text).map(Some)
    }

    fn compare_and_swap(&self, space: &str, expected: Option<&Lease>, new: &Lease) -> Result<bool, Error> {
        super::check_space(space)?;
        let guard = self.guard(space)?;
        let (mut lock, lock_path) = self.lock(space)?;
        // So that `dlog doctor` can tell this very file from any other.
        guard.lock_taken(&lock_path);
        let result = (|| {
            let current = self.read(space)?;
            let matches = match (&current, expected) {
                (None, None) => true,
                (Some(have), Some(want)) => same_lease(have, want),
                _ => false,
            };
            if !matches {
                return Ok(false);
            }
            lock.write_all(Self::encode(new)?.as_bytes()).map_err(|e| io("cannot write", &lock_path, e))?;
            lock.sync().map_err(|e| io("cannot sync", &lock_path, e))?;
            self.fs
                .rename(&lock_path, &self.path.join(Self::file(space)))
                .map_err(|e| io("cannot replace", &lock_path, e))?;
            guard.lock_gone();
            // The rename is durable once the directory is.
            self.fs.sync_dir(&self.path).map_err(|e| io("cannot sync", &self.path, e))?;
            Ok(true)
        })();
        if !matches!(result, Ok(true)) {
            // Not renamed: the lock file is ours to remove.
            let _ = self.fs.remove_file(&lock_path);
            guard.lock_gone();
        }
        result
    }
}
