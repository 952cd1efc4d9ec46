//! Leases in files inside the repository, one per space:
//! `<git-dir>/dlog/leases/<space>.json`, canonical JSON
//! `{"endpoint":…,"epoch":…,"expires_at_ms":…,"holder":…}`.
//!
//! Compare-and-swap uses git's own lock-file protocol: create
//! `<space>.json.lock` exclusively (only one process can), read and compare
//! the current file, write the new lease into the lock file, fsync it, rename
//! it over the lease file and fsync the directory. A crash leaves the old or
//! the new lease. Files are reached through a cap-std directory handle, so
//! nothing outside `dlog/leases/` can be touched.
//!
//! Leases are local coordination state, not history: they live outside
//! `refs/`, so `git push`/`clone` of `refs/dlog/*` does not carry them.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use serde_json::json;

use super::{Lease, LeaseCell, same_lease};
use crate::error::Error;

/// How long to wait for another process's lock on a lease file. Locks are
/// held for about a millisecond; one older than this is left by a crash.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Leases stored as files under `<git-dir>/dlog/leases/`.
#[derive(Debug)]
pub struct FileLeases {
    dir: Dir,
    path: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}

impl FileLeases {
    /// The lease store of the repository whose git directory is `git_dir`
    /// (created on first use).
    pub fn open(git_dir: &Path) -> Result<FileLeases, Error> {
        let path = git_dir.join("dlog").join("leases");
        let repo =
            Dir::open_ambient_dir(git_dir, ambient_authority()).map_err(|e| io("cannot open", git_dir, e))?;
        repo.create_dir_all("dlog/leases").map_err(|e| io("cannot create", &path, e))?;
        let dir = repo.open_dir("dlog/leases").map_err(|e| io("cannot open", &path, e))?;
        Ok(FileLeases { dir, path })
    }

    fn file(space: &str) -> String {
        format!("{space}.json")
    }

    fn parse(&self, space: &str, text: &str) -> Result<Lease, Error> {
        let corrupt = |why: String| {
            Error::Storage(format!(
                "lease file {} is damaged ({why}); remove it to reset the lease",
                self.path.join(Self::file(space)).display()
            ))
        };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        let number = |k: &str| v[k].as_u64().ok_or_else(|| corrupt(format!("no {k}")));
        Ok(Lease {
            holder: v["holder"].as_str().ok_or_else(|| corrupt("no holder".into()))?.to_owned(),
            epoch: number("epoch")?,
            expires_at_ms: number("expires_at_ms")?,
            endpoint: v["endpoint"].as_str().map(str::to_owned),
        })
    }

    fn encode(lease: &Lease) -> String {
        // serde_json sorts keys (no preserve_order), so this is canonical.
        json!({"holder": lease.holder, "epoch": lease.epoch, "expires_at_ms": lease.expires_at_ms, "endpoint": lease.endpoint})
            .to_string()
    }

    /// Take the lock file of `space`, waiting a bounded time for another writer.
    fn lock(&self, space: &str) -> Result<(cap_std::fs::File, String), Error> {
        let name = format!("{space}.json.lock");
        let started = Instant::now();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        loop {
            match self.dir.open_with(&name, &options) {
                Ok(file) => return Ok((file, name)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(Error::Storage(format!(
                        "the lease of space {space:?} is locked by another process ({}); if no dlog process is running, see `dlog doctor`",
                        self.path.join(&name).display()
                    )));
                }
                Err(e) => return Err(io("cannot lock", &self.path.join(&name), e)),
            }
        }
    }
}

impl LeaseCell for FileLeases {
    fn read(&self, space: &str) -> Result<Option<Lease>, Error> {
        super::check_space(space)?;
        let name = Self::file(space);
        let mut text = String::new();
        match self.dir.open(&name) {
            Ok(mut f) => {
                f.read_to_string(&mut text).map_err(|e| io("cannot read", &self.path.join(&name), e))?
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot read", &self.path.join(&name), e)),
        };
        self.parse(space, &text).map(Some)
    }

    fn compare_and_swap(&self, space: &str, expected: Option<&Lease>, new: &Lease) -> Result<bool, Error> {
        super::check_space(space)?;
        let (mut lock, lock_name) = self.lock(space)?;
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
            let lock_path = self.path.join(&lock_name);
            lock.write_all(Self::encode(new).as_bytes()).map_err(|e| io("cannot write", &lock_path, e))?;
            lock.sync_all().map_err(|e| io("cannot sync", &lock_path, e))?;
            self.dir
                .rename(&lock_name, &self.dir, Self::file(space))
                .map_err(|e| io("cannot replace", &lock_path, e))?;
            // The rename is durable once the directory is.
            let dir = self.dir.open(".").map_err(|e| io("cannot open", &self.path, e))?;
            dir.sync_all().map_err(|e| io("cannot sync", &self.path, e))?;
            Ok(true)
        })();
        if !matches!(result, Ok(true)) {
            // Not renamed: the lock file is ours to remove.
            let _ = self.dir.remove_file(&lock_name);
        }
        result
    }
}
