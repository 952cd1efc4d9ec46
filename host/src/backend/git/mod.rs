//! The gix-backed [`Backend`]: objects and refs in a real git repository.
//!
//! # Durability: group commit
//!
//! gix never fsyncs (its writes are atomic, temp file + rename, but not
//! durable), so this backend does, and it makes everything an append needs
//! durable at one point, in an order a crash cannot undo:
//!
//! 1. [`Backend::write_object`] validates the object and *buffers* it in
//!    memory (kind, bytes, id), without touching the disk at all. Reads of
//!    this instance see buffered objects at once; other instances and
//!    processes see them once a swap has written them. Writing an object
//!    twice buffers it once. An object already on disk is buffered and
//!    written again all the same (looking costs a `stat` per object, a
//!    third of the write path): each write set carries its own copy instead
//!    of trusting a file another writer may not have synced, rewrites a
//!    loose file torn by a crash, and an identical batch makes the identical
//!    pack. Duplicates are harmless and `git gc` drops them.
//! 2. [`Backend::compare_and_swap`] checks that `new` is a commit, then
//!    reads the ref (without a lock), before and again after waiting for a
//!    write set in progress. If it does not hold `expected`, the swap
//!    reports the mismatch and writes nothing (see *Lost races*).
//! 3. Under a mutex (so a swap never overtakes a write set in progress) it
//!    writes one **write set**: the buffered objects `new` reaches (through
//!    buffered commits and trees), plus every other buffered object not
//!    marked lost. What they name outside the buffer must already be in the
//!    repository, or the swap is refused and nothing is written; and unless
//!    it is `expected` (durable since its own swap; for a log, the parent
//!    of the batch, the only such object) it is fsynced with the write set:
//!    its loose file and fan-out directory, or `objects/pack/`.
//!    - at least [`PACK_THRESHOLD`] objects: **one pack**. The
//!      `objects/pack/pack-<checksum>.pack` and its version-2 `.idx` are
//!      written to temporary files (`tmp_pack_*`, `tmp_idx_*`, which `git gc`
//!      cleans up) and each is fsynced; then they are renamed into place,
//!      the `.pack` first and the `.idx` last (git ignores a pack without
//!      its index, while an index without its pack would be an error); then
//!      `objects/pack/` is fsynced, and `objects/` if `pack/` may be new;
//!    - fewer: loose objects, written through gix; then the object files,
//!      their fan-out directories (`objects/xx/`) and, if one may be new,
//!      `objects/` are fsynced. Single appends (3 objects) stay loose: a pack
//!      each would leave thousands of tiny packs, which slow every read.
//! 4. It prepares the gix ref transaction (no reflog): under the ref's lock,
//!    gix checks the expected value and writes the new one into
//!    `<ref>.lock`. The backend fsyncs that lock file, then commits (gix
//!    renames the lock onto the ref).
//! 5. It fsyncs the ref's directory, and the parent of every directory that
//!    was created for the ref (e.g. `refs/dlog/` for a new
//!    `refs/dlog/spaces/`) or that this instance has not synced before.
//! 6. If the write set became a pack and a size tier now holds
//!    [`repack::TIER_WIDTH`] packs, it merges them into one; if it wrote
//!    loose objects and about [`repack::LOOSE_LIMIT`] exist, it packs those
//!    older than a minute (see [`repack`]). The swap is already durable; a
//!    failed merge leaves every object where it was.
//!
//! `Swapped` is returned only after all of that succeeded: the ref, the
//! objects it reaches and every object written before (but those of lost
//! races, below) are durable. A batch of N events thus costs one pack (two
//! file fsyncs, one directory fsync) for its 3N objects, plus the ref's two
//! fsyncs, instead of 3N+ fsyncs.
//!
//! A crash at any point leaves the old ref or the new one, never a torn ref
//! file, and the ref never names an object that is not durable: the ref
//! moves only after the write set is. A crash before step 3 loses only
//! buffered objects that nothing refers to. A crash within step 3, or
//! between steps 3 and 4, leaves temporary files (which `git prune` removes
//! once old), or a `.pack` without its index (ignored by git and gix, as git
//! itself leaves it in the same case; `git count-objects -v` lists it), or a
//! complete, valid pack that nothing refers to yet (`git gc` drops its
//! objects as unreachable). A loose object torn by a
//! crash (gix renames it before anyone syncs it) is not reachable; it is
//! replaced when the object is written again loose, and shadowed (git and
//! gix look in packs first) when it is written again into a pack.
//!
//! # Lost races
//!
//! A swap that finds another value in the ref writes nothing and marks the
//! buffered objects `new` reaches as *lost*: they stay buffered (readable,
//! and a swap that reaches them, e.g. a retry building on them, writes them
//! as usual), but a swap that does not reach them leaves them out. So the
//! write set of an append that lost its race is never written: the guest's
//! retry re-derives its events on the new head, and what it writes again
//! (the same blob, say) is wanted again. Lost objects are dropped with the
//! instance. A race lost under the ref's lock, after the write set was
//! written (another process won between the checks; rare), leaves that
//! write set durable and unreferenced. So do, with several threads on one
//! instance, objects of an append still in progress that another thread's
//! write set took along (not lost yet, so written) before that append lost.
//!
//! The buffer is bounded: past [`MAX_BUFFERED_BYTES`] a write writes all of
//! it out (lost objects included, as a pack unless there are few) before
//! any swap, so a caller that writes without swapping costs disk, not
//! unbounded memory.
//!
//! # Freshness
//!
//! Nothing about refs is cached across calls: every call builds a fresh gix
//! ref store (gix caches `packed-refs` and revalidates it only by mtime), and
//! reads a ref by its exact name (loose file first, then `packed-refs`).
//! Objects are looked up in the buffer, then through a per-call handle on
//! the shared object store, which sees new loose objects at once and rescans
//! `objects/pack/` on a miss, so a pack written by this or another instance
//! is found as soon as it is in place. gix's store has a fixed number of
//! slots for pack indices, chosen when it is opened; when packs added since
//! then exhaust them, every rescan fails, so a failed lookup opens a fresh
//! store, sized for the packs on disk then, and is retried once.

mod buffer;
mod fs;
mod fsck;
mod odb;
mod pack;
mod repack;
mod write_set;

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use self::buffer::Pending;
use self::fs::{fsync_all, fsync_file, sync_new_tree, sync_new_tree_parent};
use self::fsck::validate;
use self::odb::{HandlePool, open_repo};
pub use self::repack::GcReport;
use self::write_set::{FlushStats, PACK_THRESHOLD, Swap};
use super::{Backend, ObjectId, ObjectKind, StorageError, SwapOutcome};

/// How long a ref update waits for a ref lock (or `packed-refs.lock`) held by
/// another writer before giving up with [`StorageError::Locked`]. gix retries
/// with a randomised quadratic backoff (1 ms, 4 ms, 9 ms, …) within this time.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// A git repository on disk as a [`Backend`].
///
/// Cheap to share across threads (`Send + Sync`); several instances, in one
/// process or several, may use the same repository at once.
pub struct GitBackend {
    /// The shared object store that each call takes a light handle of;
    /// replaced by a fresh one when its index slots run out.
    store: RwLock<Arc<gix::odb::Store>>,
    /// Handles on `store` kept between calls (see [`GitBackend::odb`]).
    handles: Mutex<HandlePool>,
    /// The repository's own `.git` directory (private refs live here).
    git_dir: PathBuf,
    /// Where shared refs and `packed-refs` live (the `.git` directory, or the
    /// main one for a linked work tree).
    common_dir: PathBuf,
    /// The object directory new objects are written to.
    objects_dir: PathBuf,
    /// How to build the per-call ref store: never writes a reflog.
    ref_options: gix::refs::store::init::Options,
    /// Objects written but not yet in a write set.
    pending: Mutex<Pending>,
    /// Held while a write set is written and synced, so that a swap that
    /// finds nothing left to write knows it is durable.
    flushing: Mutex<()>,
    /// Directories whose own entry in their parent is known to be durable.
    durable_dirs: Mutex<HashSet<PathBuf>>,
    /// Whether a write set became a pack since the last merge check.
    packs_written: AtomicBool,
    /// When this instance last packed loose objects.
    last_loose_pack: Mutex<Option<Instant>>,
    /// When a merge of packs last failed (retried a minute later).
    merge_failed: Mutex<Option<Instant>>,
    /// What the last write set cost (shown by `Debug`).
    last_flush: Mutex<FlushStats>,
    /// Objects at or above which a write set becomes a pack.
    pack_threshold: usize,
}

impl fmt::Debug for GitBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitBackend")
            .field("git_dir", &self.git_dir)
            .field("common_dir", &self.common_dir)
            .field("objects_dir", &self.objects_dir)
            .field("last_flush", &*self.last_flush.lock().unwrap_or_else(PoisonError::into_inner))
            .finish_non_exhaustive()
    }
}

impl GitBackend {
    /// Open the repository at exactly `path`: a bare repository, a `.git`
    /// directory, or a work tree containing `.git`. Never searches upwards.
    /// Only the repository's own configuration is read (no global or system
    /// config, no `GIT_*` environment variables).
    pub fn open(path: &Path) -> Result<GitBackend, StorageError> {
        GitBackend::from_repo(open_repo(path)?)
    }

    /// Create a bare repository at `path` (which may exist if it is empty)
    /// and open it. Everything created is fsynced before returning.
    pub fn init_bare(path: &Path) -> Result<GitBackend, StorageError> {
        gix::init_bare(path)
            .map_err(|e| gix_error(format!("cannot create bare repository {}", path.display()), e))?;
        sync_new_tree(path)?;
        GitBackend::open(path)
    }

    /// Create a repository with a work tree at `path` (refused if
    /// `path/.git` exists; other files may) and open it. The new `.git` is
    /// fsynced before returning (`path` too, if it was created).
    pub fn init(path: &Path) -> Result<GitBackend, StorageError> {
        gix::init(path).map_err(|e| gix_error(format!("cannot create repository {}", path.display()), e))?;
        sync_new_tree(&path.join(".git"))?;
        sync_new_tree_parent(path)?;
        GitBackend::open(path)
    }

    /// Open the repository that contains `start`, searching upwards like
    /// git does.
    pub fn discover(start: &Path) -> Result<GitBackend, StorageError> {
        let repo = gix::discover(start).map_err(|e| {
            gix_error(
                format!(
                    "no git repository at or above {} (create one with `dlog init`, or pass --repo PATH)",
                    start.display()
                ),
                e,
            )
        })?;
        GitBackend::open(repo.git_dir())
    }

    /// git's `user.name` for this repository (its own, the user's or the
    /// system's configuration), the default actor of the CLI.
    pub fn configured_user_name(&self) -> Option<String> {
        let repo = gix::open(&self.git_dir).ok()?;
        let name = repo.config_snapshot().string("user.name")?.to_string();
        (!name.trim().is_empty()).then_some(name)
    }

    /// The repository's `.git` directory (the repository itself when bare).
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    fn from_repo(repo: gix::Repository) -> Result<GitBackend, StorageError> {
        if repo.object_hash() != gix::hash::Kind::Sha1 {
            return Err(StorageError::io(
                format!("cannot use git repository {}", repo.git_dir().display()),
                format!("it uses {} object ids; only SHA-1 is supported", repo.object_hash()),
            ));
        }
        let git_dir = repo.git_dir().to_owned();
        let common_dir = repo.common_dir().to_owned();
        let ref_options = gix::refs::store::init::Options {
            write_reflog: gix::refs::store::WriteReflog::Disable,
            precompose_unicode: repo.refs.precompose_unicode,
            prohibit_windows_device_names: repo.refs.prohibit_windows_device_names,
        };
        let store = repo.into_sync().objects;
        let objects_dir = store.path().to_owned();
        Ok(GitBackend {
            store: RwLock::new(store),
            handles: Mutex::new(HandlePool::default()),
            packs_written: AtomicBool::new(false),
            merge_failed: Mutex::new(None),
            last_loose_pack: Mutex::new(None),
            git_dir,
            common_dir,
            objects_dir,
            ref_options,
            pending: Mutex::new(Pending::default()),
            flushing: Mutex::new(()),
            durable_dirs: Mutex::new(HashSet::new()),
            last_flush: Mutex::new(FlushStats::default()),
            pack_threshold: PACK_THRESHOLD,
        })
    }

    /// The same backend with another pack threshold (measurements).
    #[cfg(test)]
    #[allow(dead_code)] // used by the measurements, which are not part of every test build
    pub(crate) fn with_pack_threshold(mut self, objects: usize) -> GitBackend {
        self.pack_threshold = objects;
        self
    }

    /// What the last write set cost (measurements).
    #[cfg(test)]
    #[allow(dead_code)] // used by the measurements, which are not part of every test build
    pub(crate) fn last_flush(&self) -> FlushStats {
        *self.last_flush.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh ref store: no `packed-refs` snapshot carried over from earlier calls.
    fn ref_store(&self) -> gix::refs::file::Store {
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
    fn ref_path(&self, name: &FullName) -> PathBuf {
        let private = name.as_ref().category().is_some_and(|category| category.is_worktree_private());
        let base = if private { &self.git_dir } else { &self.common_dir };
        base.join(name.as_bstr().to_str_lossy().as_ref())
    }

    fn packed_refs_path(&self) -> PathBuf {
        self.common_dir.join("packed-refs")
    }

    /// The ref's value exactly as on disk now: the loose file if there is one,
    /// else its `packed-refs` entry. Symbolic refs are an error.
    fn read_ref_now(
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
    fn commit_target(&self, name: &str, id: gix::ObjectId) -> Result<ObjectId, StorageError> {
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
    /// objects `new` reaches are then marked lost (see *Lost races*).
    fn lost_race(
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
            return if ref_path.is_file() {
                fsync_all(&[ref_path, ref_path.parent().unwrap_or(ref_path)])
            } else {
                fsync_all(&[&self.packed_refs_path(), &self.common_dir])
            };
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
        fsync_all(&paths)?;
        self.lock_durable_dirs().extend(newly_durable);
        Ok(())
    }

    /// Turn a failed `prepare` into the swap's outcome: a lost race is a
    /// mismatch with the value seen, a busy lock is `Locked`.
    fn failed_swap(
        &self,
        store: &gix::refs::file::Store,
        full: &FullName,
        expected: Option<&ObjectId>,
        ref_path: &Path,
        err: gix::Error,
    ) -> Result<SwapOutcome, StorageError> {
        use gix::refs::file::transaction::prepare::{MustNotExist, ReferenceOutOfDate};
        let name = full.as_bstr().to_str_lossy();
        // The value gix saw under the lock, when it reports one.
        let seen = err
            .downcast_any_ref::<ReferenceOutOfDate>()
            .map(|e| e.actual.clone())
            .or_else(|| err.downcast_any_ref::<MustNotExist>().map(|e| e.actual.clone()));
        if let Some(actual) = seen {
            let id = direct_target(full, actual)?;
            return Ok(SwapOutcome::Mismatch(Some(from_gix(&id))));
        }
        if err.is_conflict() || (expected.is_some() && err.is_not_found()) {
            // A conflict without a reported value, or an expected ref that
            // does not exist: report what is there now.
            let actual = self.read_ref_now(store, full)?;
            return Ok(SwapOutcome::Mismatch(actual.map(|id| from_gix(&id))));
        }
        if is_lock_busy(&err) {
            return Err(StorageError::Locked {
                name: name.into_owned(),
                lock: self.blocking_lock(ref_path).display().to_string(),
            });
        }
        Err(gix_error(format!("cannot update ref {name}"), err))
    }

    /// Which lock file blocks an update of `ref_path`: its own `.lock`, or
    /// `packed-refs.lock` (which gix also waits for when it exists).
    fn blocking_lock(&self, ref_path: &Path) -> PathBuf {
        let ref_lock = lock_path_of(ref_path);
        let packed_lock = self.common_dir.join("packed-refs.lock");
        if !ref_lock.exists() && packed_lock.exists() { packed_lock } else { ref_lock }
    }
}

/// The lock file git and gix use for `path`.
fn lock_path_of(path: &Path) -> PathBuf {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    PathBuf::from(lock)
}

impl Backend for GitBackend {
    fn write_object(&self, kind: ObjectKind, data: &[u8]) -> Result<ObjectId, StorageError> {
        validate(kind, data)
            .map_err(|reason| StorageError::MalformedObject { kind: kind.as_str(), reason })?;
        let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, to_gix_kind(kind), data)
            .map_err(|e| gix_error(format!("cannot hash a {}", kind.as_str()), e))?;
        let id = from_gix(&id);
        self.buffer(id, kind, data)?;
        Ok(id)
    }

    fn read_object(&self, id: &ObjectId) -> Result<Option<(ObjectKind, Vec<u8>)>, StorageError> {
        self.find_object(id)
    }

    fn read_ref(&self, name: &str) -> Result<Option<ObjectId>, StorageError> {
        let full = full_name(name)?;
        match self.read_ref_now(&self.ref_store(), &full)? {
            Some(id) => self.commit_target(name, id).map(Some),
            None => Ok(None),
        }
    }

    fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: &ObjectId,
    ) -> Result<SwapOutcome, StorageError> {
        let full = full_name(name)?;
        let new_id = to_gix(new);
        match self.object_kind(&new_id)? {
            Some(gix::objs::Kind::Commit) => {}
            found => {
                let what = found.map_or("not in the repository".to_owned(), |k| format!("a {k}"));
                return Err(StorageError::io(
                    format!("refusing to point ref {name} at {new}"),
                    format!("it is {what}, not a commit"),
                ));
            }
        }
        let store = self.ref_store();
        // A race already lost is reported before anything is written: now,
        // and again once any write set in progress (often the winner's) is
        // done. The ref's lock below has the last word.
        if let Some(lost) = self.lost_race(&store, &full, expected, new)? {
            return Ok(lost);
        }
        let flushing = self.lock_flushing();
        if let Some(lost) = self.lost_race(&store, &full, expected, new)? {
            return Ok(lost);
        }
        self.flush_locked(&flushing, Some(&Swap { name, new, expected }))?;
        drop(flushing);

        let ref_path = self.ref_path(&full);
        let lock_path = lock_path_of(&ref_path);
        let dirs = self.ref_dirs(&ref_path);
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: Default::default(),
                },
                expected: match expected {
                    None => PreviousValue::MustNotExist,
                    Some(id) => PreviousValue::MustExistAndMatch(Target::Object(to_gix(id))),
                },
                new: Target::Object(new_id),
            },
            name: full.clone(),
            deref: false,
        };
        // Prepare: take the ref lock (waiting for another writer up to
        // LOCK_WAIT), check the expectation under it and write the new value
        // into the lock file. Nothing is visible to readers yet.
        let wait = gix::lock::acquire::Fail::AfterDurationWithBackoff(LOCK_WAIT);
        let transaction = match store.transaction().prepare(Some(edit), wait, wait) {
            Ok(transaction) => transaction,
            Err(err) => return self.failed_swap(&store, &full, expected, &ref_path, err),
        };
        // gix writes (and keeps) the lock file only when the value changes:
        // not for `expected == new`, nor for a create of a ref that already
        // holds `new` (told apart after the commit, below).
        let changes = expected != Some(new);
        if changes && lock_path.is_file() {
            // The new value is durable before it becomes the ref (dropping
            // the transaction on error rolls back: the lock goes away).
            fsync_file(&lock_path)?;
        }
        let edits =
            transaction.commit(None).map_err(|e| gix_error(format!("cannot update ref {name}"), e))?;

        // gix lets `MustNotExist` pass when the ref already holds the new
        // value (and then writes nothing). It records what it found under the
        // lock, so that case is told apart exactly: the ref existed, so the
        // create did not happen.
        if expected.is_none() {
            let found = edits.iter().find_map(|edit| match &edit.change {
                Change::Update { expected: PreviousValue::MustExistAndMatch(target), .. } => {
                    Some(target.clone())
                }
                _ => None,
            });
            if let Some(target) = found {
                let id = direct_target(&full, target)?;
                return Ok(SwapOutcome::Mismatch(Some(from_gix(&id))));
            }
        }
        self.sync_ref(&ref_path, changes, &dirs)?;
        self.repack_after_swap();
        Ok(SwapOutcome::Swapped)
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError> {
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

/// A gix error shown with its whole chain, `outer: inner: …` (gix's own
/// `Display` shows only the outermost context unless gix-error's
/// `auto-chain-error` feature is on).
#[derive(Debug)]
struct GixError(gix::Error);

impl fmt::Display for GixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = self.0.iter_errors().filter(|e| !e.is::<gix::Error>());
        match parts.next() {
            Some(first) => write!(f, "{first}")?,
            None => return write!(f, "{}", self.0),
        }
        parts.try_for_each(|e| write!(f, ": {e}"))
    }
}

impl std::error::Error for GixError {}

fn gix_error(context: String, error: gix::Error) -> StorageError {
    StorageError::io(context, GixError(error))
}

/// A lock held by someone else: gix reports the `AlreadyExists` of its
/// failed lock-file creation, classified as retryable.
fn is_lock_busy(err: &gix::Error) -> bool {
    err.iter_errors()
        .any(|e| e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::AlreadyExists))
}

/// A ref name this backend accepts: a full name under `refs/` that git
/// accepts (as gix validates it).
fn full_name(name: &str) -> Result<FullName, StorageError> {
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

fn to_gix(id: &ObjectId) -> gix::ObjectId {
    gix::ObjectId::Sha1(id.0)
}

fn from_gix(id: &gix::ObjectId) -> ObjectId {
    let mut bytes = [0u8; 20];
    bytes.copy_from_slice(id.as_slice());
    ObjectId(bytes)
}

fn to_gix_kind(kind: ObjectKind) -> gix::objs::Kind {
    match kind {
        ObjectKind::Blob => gix::objs::Kind::Blob,
        ObjectKind::Tree => gix::objs::Kind::Tree,
        ObjectKind::Commit => gix::objs::Kind::Commit,
    }
}
