//! The gix-backed [`Backend`]: objects and refs in a real git repository.
//!
//! # Durability: group commit
//!
//! gix never fsyncs (its writes are atomic, temp file + rename, but not
//! durable), so this backend does, and it makes everything an append needs
//! durable at one point, in an order a crash cannot undo:
//!
//! 1. [`Backend::write_object`] validates the object ([`fsck`]) and
//!    *buffers* it in memory ([`buffer`]: kind, bytes, id), without touching
//!    the disk at all. Reads of this instance see buffered objects at once;
//!    other instances and processes see them once a swap has written them.
//!    Writing an object twice buffers it once. An object already on disk is
//!    buffered and written again all the same (looking costs a `stat` per
//!    object, a third of the write path): each write set carries its own copy
//!    instead of trusting a file another writer may not have synced, rewrites
//!    a loose file torn by a crash, and an identical batch makes the
//!    identical pack. Duplicates are harmless and `git gc` drops them.
//! 2. [`Backend::compare_and_swap`] checks that `new` is a commit, then
//!    reads the ref ([`refs`], without a lock), before and again after
//!    waiting for a write set in progress. If it does not hold `expected`,
//!    the swap reports the mismatch and writes nothing (see *Lost races*).
//! 3. Under a mutex (so a swap never overtakes a write set in progress) it
//!    writes one **write set** ([`write_set`]): the buffered objects `new`
//!    reaches (through buffered commits and trees), plus every other buffered
//!    object not marked lost. What they name outside the buffer must already
//!    be in the repository, or the swap is refused and nothing is written;
//!    and unless it is `expected` (durable since its own swap; for a log, the
//!    parent of the batch, the only such object) it is fsynced with the write
//!    set: its loose file and fan-out directory, or `objects/pack/`.
//!    - at least [`PACK_THRESHOLD`] objects: **one pack** (encoded by
//!      [`pack`]). The `objects/pack/pack-<checksum>.pack` and its version-2
//!      `.idx` are written to temporary files (`tmp_pack_*`, `tmp_idx_*`,
//!      which `git gc` cleans up) and each is fsynced; then they are renamed
//!      into place, the `.pack` first and the `.idx` last (git ignores a pack
//!      without its index, while an index without its pack would be an
//!      error); then `objects/pack/` is fsynced, and `objects/` if `pack/`
//!      may be new;
//!    - fewer: loose objects, each written as git does (a `tmp_obj_*` file,
//!      fsynced, renamed into place); then their fan-out directories
//!      (`objects/xx/`) and, if one may be new, `objects/` are fsynced. Single appends (3 objects) stay loose: a pack
//!      each would leave thousands of tiny packs, which slow every read.
//! 4. It moves the ref by git's lock-file protocol ([`refs`], no reflog;
//!    written here, not through gix's transaction, so that every step goes
//!    through the backend's `Fs`): under the ref's guard it creates
//!    `<ref>.lock` exclusively, checks the expected value under it, writes
//!    the new one, fsyncs it and renames it onto the ref.
//! 5. It fsyncs the ref's directory, and the parent of every directory that
//!    was created for the ref (e.g. `refs/dlog/` for a new
//!    `refs/dlog/spaces/`) or that this instance has not synced before.
//! 6. If the write set became a pack and a size tier now holds
//!    [`repack::TIER_WIDTH`] packs, it merges them into one ([`repack`],
//!    which also holds `dlog gc`); if it wrote loose objects and about
//!    [`repack::LOOSE_LIMIT`] exist, it packs those older than a minute. The
//!    swap is already durable; a failed merge leaves every object where it
//!    was.
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
//! objects as unreachable). No loose object is ever torn: each is synced
//! before its rename. One torn by an older dlog (which renamed first) is
//! replaced when the object is written again loose, shadowed (git and gix
//! look in packs first) when it is written again into a pack, and listed by
//! `dlog doctor`, whose `--fix` removes it.
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
//! The buffer is bounded: past `MAX_BUFFERED_BYTES` ([`buffer`]) a write
//! writes all of it out (lost objects included, as a pack unless there are
//! few) before any swap, so a caller that writes without swapping costs
//! disk, not unbounded memory.
//!
//! # Freshness
//!
//! Nothing about refs is cached across calls ([`refs`]): every call builds a
//! fresh gix ref store (gix caches `packed-refs` and revalidates it only by
//! mtime), and reads a ref by its exact name (loose file first, then
//! `packed-refs`). Objects are looked up ([`odb`]) in the buffer, then
//! through a per-call handle on the shared object store, which sees new loose
//! objects at once and rescans `objects/pack/` on a miss, so a pack written
//! by this or another instance is found as soon as it is in place. gix's
//! store has a fixed number of slots for pack indices, chosen when it is
//! opened; when packs added since then exhaust them, every rescan fails, so a
//! failed lookup opens a fresh store, sized for the packs on disk then, and
//! is retried once.
//!
//! # Files
//!
//! One job each: this file holds [`GitBackend`], its constructors and the
//! [`Backend`] impl, whose `compare_and_swap` runs the steps above in order.
//! - [`fsck`]: what `write_object` refuses (`git fsck --strict`'s rules);
//! - [`buffer`]: step 1, the buffer and its lost marks, and the walk from a
//!   commit through buffered commits and trees;
//! - [`write_set`]: step 3, loose or packed, and its fsyncs;
//! - [`pack`]: the pack and index encoder step 3 uses;
//! - [`refs`]: reading refs, and steps 4 and 5;
//! - [`repack`]: step 6 and `dlog gc`, merging packs and packing loose
//!   objects;
//! - [`odb`]: reading objects, and the object store's handles;
//! - [`fs`]: fsyncs and temporary files.
//!
//! Every durable file operation (create, write, fsync, rename, remove,
//! mkdir) goes through the backend's `Fs` (`crate::durable`): `RealFs` in
//! production, a recording disk in the crash tests (`tests/suite/
//! crash_consistency.rs`), which check every crash point of every write.

mod buffer;
mod fs;
mod fsck;
mod odb;
mod pack;
mod refs;
mod repack;
mod write_set;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use self::buffer::Pending;
use self::fs::{sync_new_tree, sync_new_tree_parent};
use self::fsck::validate;
use self::odb::{HandlePool, open_repo};
use self::refs::full_name;
pub use self::repack::GcReport;
use self::write_set::{FlushStats, PACK_THRESHOLD, Swap};
use super::{Backend, ObjectId, ObjectKind, StorageError, SwapOutcome};
use crate::durable::{Fs, RealFs};

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
    /// Every durable file operation goes through this (`crate::durable`).
    fs: Arc<dyn Fs>,
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
        GitBackend::open_with_fs(path, Arc::new(RealFs))
    }

    /// [`GitBackend::open`], its durable file operations going through
    /// `fs` (the crash tests' recording disk).
    #[doc(hidden)]
    pub fn open_with_fs(path: &Path, fs: Arc<dyn Fs>) -> Result<GitBackend, StorageError> {
        GitBackend::from_repo(open_repo(path)?, fs)
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

    /// A value of the repository's git configuration (its own, the user's
    /// or the system's), e.g. `dlog.remote`; none when unset or empty.
    pub fn config_string(&self, key: &str) -> Option<String> {
        let repo = gix::open(&self.git_dir).ok()?;
        let value = repo.config_snapshot().string(key)?.to_string();
        (!value.trim().is_empty()).then_some(value)
    }

    /// The repository's `.git` directory (the repository itself when bare).
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    fn from_repo(repo: gix::Repository, fs: Arc<dyn Fs>) -> Result<GitBackend, StorageError> {
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
            fs,
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
        match self.object_kind(&to_gix(new))? {
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
        // done. The ref's lock, taken by `update_ref`, has the last word.
        if let Some(lost) = self.lost_race(&store, &full, expected, new)? {
            return Ok(lost);
        }
        let flushing = self.lock_flushing();
        if let Some(lost) = self.lost_race(&store, &full, expected, new)? {
            return Ok(lost);
        }
        let swap = Swap { name, new, expected };
        self.flush_locked(&flushing, Some(&swap))?;
        drop(flushing);
        let outcome = self.update_ref(&store, &full, &swap)?;
        if outcome == SwapOutcome::Swapped {
            self.repack_after_swap();
        }
        Ok(outcome)
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError> {
        self.refs_with_prefix(prefix)
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
