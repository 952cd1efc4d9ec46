//! Refs: read exactly as they are on disk now (see *Freshness* in [the
//! backend's docs](super)), and moved by git's lock-file protocol, written
//! here rather than through gix's ref transaction so that every step goes
//! through the backend's `Fs` (the crash tests see them): `<ref>.lock`
//! created exclusively, the value checked under it, the new one written
//! and fsynced, the lock renamed onto the ref, then the directories the
//! rename changed fsynced (steps 4 and 5).
//!
//! Every update first takes the ref's guard (`dlog/guards/<ref>.guard`;
//! `crate::guard`), so a `<ref>.lock` that a killed or powered-off dlog
//! process left behind is removed by the next writer at once, while a lock
//! a live process holds (another dlog, or `git` itself) is never broken.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;
use gix::refs::{FullName, Target};

use super::fs::{fsync_dirs, fsync_file, remove_if_present};
use super::write_set::Swap;
use super::{GitBackend, ObjectId, StorageError, SwapOutcome, from_gix, gix_error, to_gix};
use crate::durable::DurableFile;
use crate::guard::{self, Guard};

/// How long a ref update waits for a ref lock (or `packed-refs.lock`) held by
/// another writer before giving up with [`StorageError::Locked`], retrying
/// with a quadratic backoff (1 ms, 4 ms, 9 ms, …) within this time.
const LOCK_WAIT: Duration = Duration::from_secs(2);

impl GitBackend {
    /// A fresh ref store: no `packed-refs` snapshot carried over from earlier calls.
    pub(super) fn ref_store(&self) -> gix::refs::file::Store {
        if self.common_dir == self.git_dir {
            gix::refs::file::Store::at_opts(self.git_dir.clone(), gix::hash::Kind::Sha1, self.ref_options)
        } else {
            gix::refs::file::Store::for_linked_worktree_opts(
                self.git_dir.clone(),
                self.common_dir.clone(),
                gix::hash::Kind::Sha1,
                self.ref_options,
            )
        }
    }

    /// Where the loose file of ref `name` lives.
    pub(super) fn ref_path(&self, name: &FullName) -> PathBuf {
        let private = name.as_ref().category().is_some_and(|category| category.is_worktree_private());
        let base = if private { &self.git_dir } else { &self.common_dir };
        base.join(name.as_bstr().to_str_lossy().as_ref())
    }

    fn packed_refs_path(&self) -> PathBuf {
        self.common_dir.join("packed-refs")
    }

    /// The ref's value exactly as on disk now: the loose file if there is one,
    /// else its `packed-refs` entry. Symbolic refs are an error.
    pub(super) fn read_ref_now(
        &self,
        store: &gix::refs::file::Store,
        name: &FullName,
    ) -> Result<Option<gix::ObjectId>, StorageError> {
        let path = self.ref_path(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let loose = gix::refs::file::loose::Reference::try_from_path(
                    name.clone(),
                    &bytes,
                    gix::hash::Kind::Sha1,
                )
                .map_err(|e| gix_error(format!("cannot parse ref file {}", path.display()), e))?;
                return direct_target(name, loose.target).map(Some);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
                ) => {}
            Err(e) => {
                return Err(StorageError::io(format!("cannot read ref file {}", path.display()), e));
            }
        }
        let packed = store
            .open_packed_buffer()
            .map_err(|e| gix_error(format!("cannot read {}", self.packed_refs_path().display()), e))?;
        let Some(packed) = packed else {
            return Ok(None);
        };
        let found = packed
            .try_find(name.as_ref())
            .map_err(|e| gix_error(format!("cannot read {}", self.packed_refs_path().display()), e))?;
        Ok(found.map(|r| r.target()))
    }

    /// The ref's value after checking that it names a commit in the repository.
    pub(super) fn commit_target(&self, name: &str, id: gix::ObjectId) -> Result<ObjectId, StorageError> {
        match self.object_kind(&id)? {
            Some(gix::objs::Kind::Commit) => Ok(from_gix(&id)),
            Some(kind) => Err(StorageError::io(
                format!("ref {name} is unusable"),
                format!("it points at {id}, a {kind}, not a commit"),
            )),
            None => Err(StorageError::io(
                format!("ref {name} is unusable"),
                format!("it points at {id}, which is not in the repository"),
            )),
        }
    }

    /// The mismatch to report if the ref does not hold `expected` now; the
    /// objects `new` reaches are then marked lost (see *Lost races* in [the
    /// backend's docs](super)).
    pub(super) fn lost_race(
        &self,
        store: &gix::refs::file::Store,
        full: &FullName,
        expected: Option<&ObjectId>,
        new: &ObjectId,
    ) -> Result<Option<SwapOutcome>, StorageError> {
        let current = self.read_ref_now(store, full)?;
        if current == expected.map(to_gix) {
            return Ok(None);
        }
        self.lock_pending().mark_lost(new);
        Ok(Some(SwapOutcome::Mismatch(current.map(|id| from_gix(&id)))))
    }

    /// Steps 4 and 5 of a swap whose write set is durable, by git's own
    /// lock-file protocol (through the backend's [`Fs`](crate::durable::Fs),
    /// which gix's ref transaction would bypass): create `<ref>.lock`
    /// exclusively, check the value under it, write the new one into it,
    /// fsync it, rename it onto the ref, then make the rename durable.
    pub(super) fn update_ref(
        &self,
        store: &gix::refs::file::Store,
        full: &FullName,
        swap: &Swap<'_>,
    ) -> Result<SwapOutcome, StorageError> {
        let &Swap { name, new, expected } = swap;
        let ref_path = self.ref_path(full);
        let lock_path = lock_path_of(&ref_path);
        let guard = self.guard_ref(name, &lock_path)?;
        let dirs = self.ref_dirs(&ref_path);
        let update_failed = |e: io::Error| StorageError::io(format!("cannot update ref {name}"), e);
        for (dir, existed) in dirs.iter().rev() {
            if !existed {
                match self.fs.create_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(update_failed(e)),
                }
            }
        }
        let mut lock = match self.take_ref_lock(&lock_path) {
            Ok(lock) => lock,
            // A file where the ref needs a directory: another ref's name.
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Ok(SwapOutcome::Mismatch(self.read_ref_now(store, full)?.map(|id| from_gix(&id))));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists || e.kind() == io::ErrorKind::TimedOut => {
                return Err(StorageError::Locked {
                    name: name.to_owned(),
                    lock: self.blocking_lock(&ref_path).display().to_string(),
                });
            }
            Err(e) => return Err(update_failed(e)),
        };
        guard.lock_taken(&lock_path);
        let outcome = (|| {
            let current = self.read_ref_now(store, full)?;
            if current != expected.map(to_gix) {
                return Ok(Some(SwapOutcome::Mismatch(current.map(|id| from_gix(&id)))));
            }
            if expected == Some(new) {
                return Ok(None); // nothing to write; the value is made durable below
            }
            lock.write_all(format!("{new}\n").as_bytes()).map_err(update_failed)?;
            // The new value is durable before it becomes the ref.
            lock.sync().map_err(|e| StorageError::io(format!("cannot fsync {}", lock_path.display()), e))?;
            match self.fs.rename(&lock_path, &ref_path) {
                Ok(()) => {
                    guard.lock_gone();
                    Ok(Some(SwapOutcome::Swapped))
                }
                // A directory where the ref would go: other refs below its name.
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::IsADirectory | io::ErrorKind::DirectoryNotEmpty) =>
                {
                    Ok(Some(SwapOutcome::Mismatch(current.map(|id| from_gix(&id)))))
                }
                Err(e) => Err(update_failed(e)),
            }
        })();
        drop(lock);
        if !matches!(outcome, Ok(Some(SwapOutcome::Swapped))) {
            // Not renamed: the lock file is ours to remove.
            let _ = self.fs.remove_file(&lock_path);
            guard.lock_gone();
        }
        match outcome? {
            Some(SwapOutcome::Swapped) => {
                self.sync_ref(&ref_path, true, &dirs)?;
                Ok(SwapOutcome::Swapped)
            }
            Some(mismatch) => Ok(mismatch),
            None => {
                self.sync_ref(&ref_path, false, &dirs)?;
                Ok(SwapOutcome::Swapped)
            }
        }
    }

    /// Create `<ref>.lock` exclusively, waiting for another writer's (or for
    /// `packed-refs.lock`, so that `packed-refs` is not read mid-rewrite) up
    /// to [`LOCK_WAIT`] with a quadratic backoff (1 ms, 4 ms, 9 ms, …);
    /// `AlreadyExists` or `TimedOut` when the wait ran out.
    fn take_ref_lock(&self, lock_path: &Path) -> io::Result<Box<dyn DurableFile>> {
        let started = Instant::now();
        let packed_lock = self.common_dir.join("packed-refs.lock");
        let mut attempt: u64 = 0;
        let mut backoff = || {
            attempt += 1;
            let left = LOCK_WAIT.saturating_sub(started.elapsed());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(attempt * attempt).min(left));
            true
        };
        let lock = loop {
            match self.fs.create_new(lock_path, 0o666) {
                Ok(lock) => break lock,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !backoff() {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        while packed_lock.exists() {
            if !backoff() {
                drop(lock);
                let _ = self.fs.remove_file(lock_path);
                return Err(io::Error::new(io::ErrorKind::TimedOut, "packed-refs.lock is held"));
            }
        }
        Ok(lock)
    }

    /// Take ref `name`'s guard, waiting a bounded time for a live dlog
    /// holder; then remove its lock file if a dead one left it: the guard's
    /// previous holder died holding it after creating that very file, or the
    /// file predates the boot. A
    /// lock file with neither mark belongs to a live process outside dlog
    /// (`git` itself) and is waited for by the update, as before.
    fn guard_ref(&self, name: &str, lock_path: &Path) -> Result<Guard, StorageError> {
        let path = self.common_dir.join("dlog/guards").join(format!("{name}.guard"));
        let failed =
            |what: &str, e: io::Error| StorageError::io(format!("cannot {what} {}", path.display()), e);
        // Guards carry no durable state (a lost one is recreated empty), so
        // their directories need no fsync.
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed("create the directory of", e))?;
        }
        let open =
            || std::fs::File::options().read(true).write(true).create(true).truncate(false).open(&path);
        let file = open().map_err(|e| failed("open", e))?;
        let held = guard::acquire(file, LOCK_WAIT).map_err(|e| failed("lock", e))?.ok_or_else(|| {
            StorageError::Busy {
                name: name.to_owned(),
                holder: guard::describe(open().ok().as_ref().and_then(guard::holder)),
            }
        })?;
        // Only the very lock file a dead holder created is its own: one
        // another process made since (git itself) has another inode.
        if lock_path.exists() && (held.previous_holder().owns(lock_path) || guard::predates_boot(lock_path)) {
            remove_if_present(&*self.fs, lock_path)?;
        }
        Ok(held)
    }

    /// Directories between the ref file and `refs/` (exclusive), innermost
    /// first, each with whether it exists now.
    fn ref_dirs(&self, ref_path: &Path) -> Vec<(PathBuf, bool)> {
        let mut dirs = Vec::new();
        let mut dir = ref_path.parent();
        while let Some(d) = dir {
            if d.parent().is_none_or(|p| p == self.git_dir || p == self.common_dir) {
                break; // `d` is `refs/` itself
            }
            dirs.push((d.to_owned(), d.is_dir()));
            dir = d.parent();
        }
        dirs
    }

    /// Make a just-committed ref update durable (its new value was synced in
    /// the lock file before the rename): the ref's directory, and the parent
    /// of every directory that was created for it (or is not yet known to be
    /// durable). For a no-op update (`changed` false), whatever holds the
    /// value now: the loose ref file, or `packed-refs`.
    fn sync_ref(&self, ref_path: &Path, changed: bool, dirs: &[(PathBuf, bool)]) -> Result<(), StorageError> {
        if !changed {
            let (file, dir) = if ref_path.is_file() {
                (ref_path, ref_path.parent().unwrap_or(ref_path))
            } else {
                (&*self.packed_refs_path(), &*self.common_dir)
            };
            fsync_file(&*self.fs, file)?;
            return fsync_dirs(&*self.fs, &[dir]);
        }
        let mut paths: Vec<PathBuf> = ref_path.parent().map(Path::to_owned).into_iter().collect();
        let mut newly_durable = Vec::new();
        {
            let durable = self.lock_durable_dirs();
            for (dir, existed) in dirs {
                if !(*existed && durable.contains(dir)) {
                    paths.extend(dir.parent().map(Path::to_owned));
                    newly_durable.push(dir.clone());
                }
            }
        }
        let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        fsync_dirs(&*self.fs, &paths)?;
        self.lock_durable_dirs().extend(newly_durable);
        Ok(())
    }

    /// Which lock file blocks an update of `ref_path`: its own `.lock`, or
    /// `packed-refs.lock` (which gix also waits for when it exists).
    fn blocking_lock(&self, ref_path: &Path) -> PathBuf {
        let ref_lock = lock_path_of(ref_path);
        let packed_lock = self.common_dir.join("packed-refs.lock");
        if !ref_lock.exists() && packed_lock.exists() { packed_lock } else { ref_lock }
    }

    /// The refs whose names start with `prefix`, by name, each checked to
    /// name a commit.
    pub(super) fn refs_with_prefix(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError> {
        let store = self.ref_store();
        let context = || format!("cannot list refs under {prefix:?}");
        let platform = store.iter().map_err(|e| gix_error(context(), e))?;
        let iter = if prefix.is_empty() {
            platform.all()
        } else {
            let relative = <&gix::path::RelativePath>::try_from(prefix)
                .map_err(|_| StorageError::InvalidRef(prefix.to_owned()))?;
            platform.prefixed(relative)
        }
        .map_err(|e| StorageError::io(context(), e))?;
        let mut refs = Vec::new();
        for reference in iter {
            let reference = reference.map_err(|e| gix_error(context(), e))?;
            let Ok(name) = reference.name.as_bstr().to_str() else {
                return Err(StorageError::io(
                    context(),
                    format!("ref name {:?} is not UTF-8", reference.name.as_bstr()),
                ));
            };
            if !name.starts_with(prefix) {
                continue;
            }
            let id = direct_target(&reference.name, reference.target)?;
            refs.push((name.to_owned(), self.commit_target(name, id)?));
        }
        refs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(refs)
    }
}

/// The lock file git and gix use for `path`.
fn lock_path_of(path: &Path) -> PathBuf {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    PathBuf::from(lock)
}

/// A ref name this backend accepts: a full name under `refs/` that git
/// accepts (as gix validates it).
pub(super) fn full_name(name: &str) -> Result<FullName, StorageError> {
    if !name.starts_with("refs/") {
        return Err(StorageError::InvalidRef(name.to_owned()));
    }
    FullName::try_from(name).map_err(|_| StorageError::InvalidRef(name.to_owned()))
}

fn direct_target(name: &FullName, target: Target) -> Result<gix::ObjectId, StorageError> {
    match target {
        Target::Object(id) => Ok(id),
        Target::Symbolic(to) => Err(StorageError::io(
            format!("ref {} is unusable", name.as_bstr()),
            format!("it is a symbolic ref to {}, not a commit id", to.as_bstr()),
        )),
    }
}
