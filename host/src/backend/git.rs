//! The gix-backed [`Backend`]: objects and refs in a real git repository.
//!
//! # Durability
//!
//! gix never fsyncs (its writes are atomic, temp file + rename, but not
//! durable), so this backend does, in an order a crash cannot undo:
//!
//! 1. [`Backend::write_object`] writes a loose object through gix and only
//!    *remembers* the object file, its fan-out directory (`objects/xx/`) and
//!    whether that directory is new (or not yet known to be durable).
//! 2. [`Backend::compare_and_swap`] first fsyncs everything remembered: the
//!    object files, then their fan-out directories, then `objects/` if a
//!    fan-out directory may be new.
//! 3. It prepares the gix ref transaction (no reflog): under the ref's lock,
//!    gix checks the expected value and writes the new one into
//!    `<ref>.lock`. The backend fsyncs that lock file, then commits (gix
//!    renames the lock onto the ref).
//! 4. It fsyncs the ref's directory, and the parent of every directory that
//!    was created for the ref (e.g. `refs/dlog/` for a new
//!    `refs/dlog/spaces/`) or that this instance has not synced before.
//!
//! `Swapped` is returned only after all of that succeeded. A crash at any
//! point leaves the old ref or the new one, never a torn ref file; a loose
//! object torn by a crash (gix renames it before anyone syncs it) is not
//! reachable, and is detected and rewritten when the object is written again.
//!
//! # Freshness
//!
//! Nothing about refs is cached across calls: every call builds a fresh gix
//! ref store (gix caches `packed-refs` and revalidates it only by mtime), and
//! reads a ref by its exact name (loose file first, then `packed-refs`).
//! Objects are looked up through a per-call handle on the shared object
//! store, which sees new loose objects at once and rescans packs on a miss.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use gix::bstr::{BStr, ByteSlice};
use gix::objs::{Find as _, FindHeader as _, Write as _};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

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
    /// The repository; `objects` is the shared object store that each call
    /// takes a light handle of.
    repo: gix::ThreadSafeRepository,
    /// The repository's own `.git` directory (private refs live here).
    git_dir: PathBuf,
    /// Where shared refs and `packed-refs` live (the `.git` directory, or the
    /// main one for a linked work tree).
    common_dir: PathBuf,
    /// The object directory new loose objects are written to.
    objects_dir: PathBuf,
    /// How to build the per-call ref store: never writes a reflog.
    ref_options: gix::refs::store::init::Options,
    /// Loose objects written (or found loose) since the last successful sync.
    /// Held while syncing, so a swap never overtakes a sync in progress.
    unsynced: Mutex<Unsynced>,
    /// Directories whose own entry in their parent is known to be durable.
    durable_dirs: Mutex<HashSet<PathBuf>>,
}

/// What [`GitBackend::sync_objects`] still has to fsync.
#[derive(Debug, Default)]
struct Unsynced {
    /// Loose object files.
    files: BTreeSet<PathBuf>,
    /// Their fan-out directories (`objects/xx/`).
    fan_outs: BTreeSet<PathBuf>,
    /// Fan-out directories whose entry in `objects/` may not be durable yet.
    new_fan_outs: BTreeSet<PathBuf>,
}

impl fmt::Debug for GitBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitBackend")
            .field("git_dir", &self.git_dir)
            .field("common_dir", &self.common_dir)
            .field("objects_dir", &self.objects_dir)
            .finish_non_exhaustive()
    }
}

impl GitBackend {
    /// Open the repository at exactly `path`: a bare repository, a `.git`
    /// directory, or a work tree containing `.git`. Never searches upwards.
    /// Only the repository's own configuration is read (no global or system
    /// config, no `GIT_*` environment variables).
    pub fn open(path: &Path) -> Result<GitBackend, StorageError> {
        let repo = gix::open_opts(path, gix::open::Options::isolated())
            .map_err(|e| gix_error(format!("cannot open git repository {}", path.display()), e))?;
        GitBackend::from_repo(repo)
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
        let repo = repo.into_sync();
        let objects_dir = repo.objects.path().to_owned();
        Ok(GitBackend {
            repo,
            git_dir,
            common_dir,
            objects_dir,
            ref_options,
            unsynced: Mutex::new(Unsynced::default()),
            durable_dirs: Mutex::new(HashSet::new()),
        })
    }

    /// A handle on the shared object store, for one call.
    fn odb(&self) -> gix::odb::Handle {
        self.repo.objects.to_handle().into()
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

    /// The kind of object `id`, none when it is not in the repository.
    fn object_kind(&self, id: &gix::ObjectId) -> Result<Option<gix::objs::Kind>, StorageError> {
        let header =
            self.odb().try_header(id).map_err(|e| gix_error(format!("cannot read object {id}"), e))?;
        Ok(header.map(|h| h.kind))
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

    fn lock_unsynced(&self) -> MutexGuard<'_, Unsynced> {
        // The set is only cleared after a complete sync, so it stays correct
        // (at worst too large) even if a holder panicked.
        self.unsynced.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_durable_dirs(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.durable_dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fsync every loose object written since the last sync: files, then
    /// their fan-out directories, then `objects/` if a fan-out directory may
    /// be new. Holds the lock throughout, so that a concurrent caller that
    /// finds nothing left to sync knows the sync has completed.
    fn sync_objects(&self) -> Result<(), StorageError> {
        let mut unsynced = self.lock_unsynced();
        if unsynced.files.is_empty() && unsynced.fan_outs.is_empty() {
            return Ok(());
        }
        let mut paths: Vec<&Path> = unsynced.files.iter().map(PathBuf::as_path).collect();
        paths.extend(unsynced.fan_outs.iter().map(PathBuf::as_path));
        if !unsynced.new_fan_outs.is_empty() {
            paths.push(&self.objects_dir);
        }
        fsync_all(&paths)?;
        if !unsynced.new_fan_outs.is_empty() {
            self.lock_durable_dirs().extend(unsynced.new_fan_outs.iter().cloned());
        }
        *unsynced = Unsynced::default();
        Ok(())
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
        let id = ObjectId::for_object(kind, data);
        let hex = id.to_hex();
        let fan_out = self.objects_dir.join(&hex[..2]);
        let path = fan_out.join(&hex[2..]);
        let gix_id = to_gix(&id);
        let fan_out_existed = fan_out.is_dir();
        let odb = self.odb();
        let intact_loose_copy = || {
            // An existing loose file may be a torn write from before a
            // crash (gix renames before anyone fsyncs): keep it only if it
            // decodes to exactly these bytes.
            let mut buf = Vec::new();
            let loose = gix::odb::loose::Store::at(&self.objects_dir, gix::hash::Kind::Sha1);
            matches!(
                loose.try_find(&gix_id, &mut buf),
                Ok(Some(found)) if found.kind == to_gix_kind(kind) && found.data == data
            )
        };
        if !path.is_file() && odb.exists_without_refresh(&gix_id) {
            return Ok(id); // packed (or in an alternate): git wrote it durably
        }
        if !(path.is_file() && intact_loose_copy()) {
            odb.write_buf_with_known_id(to_gix_kind(kind), data, gix_id)
                .map_err(|e| gix_error(format!("cannot write {} {id}", kind.as_str()), e))?;
        }
        // Also when the file was already there: its writer may not have
        // synced it yet.
        let new_fan_out = !fan_out_existed || !self.lock_durable_dirs().contains(&fan_out);
        let mut unsynced = self.lock_unsynced();
        unsynced.files.insert(path);
        if new_fan_out {
            unsynced.new_fan_outs.insert(fan_out.clone());
        }
        unsynced.fan_outs.insert(fan_out);
        Ok(id)
    }

    fn read_object(&self, id: &ObjectId) -> Result<Option<(ObjectKind, Vec<u8>)>, StorageError> {
        let mut buf = Vec::new();
        let found = self
            .odb()
            .try_find(&to_gix(id), &mut buf)
            .map_err(|e| gix_error(format!("cannot read object {id}"), e))?;
        let Some(object) = found else {
            return Ok(None);
        };
        let kind = match object.kind {
            gix::objs::Kind::Blob => ObjectKind::Blob,
            gix::objs::Kind::Tree => ObjectKind::Tree,
            gix::objs::Kind::Commit => ObjectKind::Commit,
            gix::objs::Kind::Tag => {
                return Err(StorageError::io(
                    format!("cannot read object {id}"),
                    "it is a tag, which a decision log never stores",
                ));
            }
        };
        Ok(Some((kind, object.data.to_vec())))
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
        self.sync_objects()?;

        let store = self.ref_store();
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

fn fsync_file(path: &Path) -> Result<(), StorageError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(format!("cannot fsync {}", path.display()), e))
}

/// Fsync a file, or a directory (making the entries created in it durable);
/// directories are skipped where they cannot be opened as files.
fn fsync_path(path: &Path) -> Result<(), StorageError> {
    if cfg!(unix) || path.is_file() { fsync_file(path) } else { Ok(()) }
}

/// Fsync files and directories, in order.
fn fsync_all(paths: &[&Path]) -> Result<(), StorageError> {
    paths.iter().try_for_each(|path| fsync_path(path))
}

/// Fsync a newly created directory tree: every file and directory below and
/// including `path`, then `path`'s parent (which got the new entry).
fn sync_new_tree(path: &Path) -> Result<(), StorageError> {
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
fn sync_new_tree_parent(path: &Path) -> Result<(), StorageError> {
    let absolute =
        path.canonicalize().map_err(|e| StorageError::io(format!("cannot resolve {}", path.display()), e))?;
    match absolute.parent() {
        Some(parent) => fsync_path(parent),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Validation of untrusted object bytes.

/// Check that `data` is a well-formed object of `kind`: it parses (gix), and
/// it passes what `git fsck --strict` checks of a single object.
fn validate(kind: ObjectKind, data: &[u8]) -> Result<(), String> {
    match kind {
        ObjectKind::Blob => Ok(()),
        ObjectKind::Tree => {
            gix::objs::TreeRef::from_bytes(data, gix::hash::Kind::Sha1).map_err(|e| format!("{e:#}"))?;
            check_tree(data)
        }
        ObjectKind::Commit => {
            let commit = gix::objs::CommitRef::from_bytes(data, gix::hash::Kind::Sha1)
                .map_err(|e| format!("{e:#}"))?;
            check_commit(data, &commit)
        }
    }
}

/// `git fsck --strict` rules for trees: canonical modes, safe names, no null
/// ids, entries in git's order without duplicates.
fn check_tree(data: &[u8]) -> Result<(), String> {
    let mut rest = data;
    let mut previous: Option<(&[u8], bool)> = None;
    let mut names = HashSet::new();
    while !rest.is_empty() {
        let space = rest.find_byte(b' ').ok_or("entry without a mode")?;
        let (mode, tail) = (&rest[..space], &rest[space + 1..]);
        let nul = tail.find_byte(0).ok_or("entry without a name terminator")?;
        let (name, tail) = (&tail[..nul], &tail[nul + 1..]);
        if tail.len() < 20 {
            return Err("truncated entry id".into());
        }
        let (id, tail) = tail.split_at(20);
        rest = tail;

        let shown = name.as_bstr();
        let (is_dir, is_link) = match mode {
            b"100644" | b"100755" | b"160000" => (false, false),
            b"120000" => (false, true),
            b"40000" => (true, false),
            _ => return Err(format!("entry {shown:?} has mode {:?}", mode.as_bstr())),
        };
        check_entry_name(name, is_link).map_err(|why| format!("entry {shown:?} {why}"))?;
        if id.iter().all(|&b| b == 0) {
            return Err(format!("entry {shown:?} has the null id"));
        }
        if let Some((before, before_is_dir)) = previous
            && tree_order(before, before_is_dir, name, is_dir) != std::cmp::Ordering::Less
        {
            return Err(format!("entries are not in git's order at {shown:?}"));
        }
        if !names.insert(name) {
            return Err(format!("entry {shown:?} appears twice"));
        }
        previous = Some((name, is_dir));
    }
    Ok(())
}

/// Git's tree order: names compared bytewise, a directory as if followed by `/`.
fn tree_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> std::cmp::Ordering {
    let a_key = a.iter().copied().chain(a_dir.then_some(b'/'));
    let b_key = b.iter().copied().chain(b_dir.then_some(b'/'));
    a_key.cmp(b_key)
}

fn check_entry_name(name: &[u8], is_link: bool) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("has an empty name");
    }
    if name.contains(&b'/') {
        return Err("has a '/' in its name");
    }
    if name == b"." || name == b".." {
        return Err("is named '.' or '..'");
    }
    let folded = fold_name(name);
    if folded == b".git" || folded == b"git~1" {
        return Err("is (a disguise of) .git");
    }
    if folded == b".gitmodules" || folded == b"gitmod~1" {
        return Err("is .gitmodules, which git checks specially");
    }
    if is_link && [&b".gitattributes"[..], b".gitignore", b".mailmap"].contains(&folded.as_slice()) {
        return Err("is a symlink git refuses");
    }
    Ok(())
}

/// The name as NTFS and HFS+ would compare it: ASCII case folded, the
/// code points HFS+ ignores removed, and (NTFS) anything from a `:` on and
/// trailing dots and spaces dropped.
fn fold_name(name: &[u8]) -> Vec<u8> {
    let mut folded: Vec<u8> = match std::str::from_utf8(name) {
        Ok(text) => text
            .chars()
            .filter(|c| !matches!(*c as u32, 0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff))
            .collect::<String>()
            .into_bytes(),
        Err(_) => name.to_vec(),
    };
    folded.make_ascii_lowercase();
    if let Some(colon) = folded.find_byte(b':') {
        folded.truncate(colon);
    }
    while folded.last().is_some_and(|&b| b == b'.' || b == b' ') {
        folded.pop();
    }
    folded
}

/// `git fsck --strict` rules for commits beyond parsing: well-formed author
/// and committer, no NUL in the header.
fn check_commit(data: &[u8], commit: &gix::objs::CommitRef<'_>) -> Result<(), String> {
    check_ident(commit.author).map_err(|why| format!("author {:?}: {why}", commit.author))?;
    check_ident(commit.committer).map_err(|why| format!("committer {:?}: {why}", commit.committer))?;
    let header_end = data.find(b"\n\n").unwrap_or(data.len());
    if data[..header_end].contains(&0) {
        return Err("NUL byte in the header".into());
    }
    Ok(())
}

/// Git's `fsck_ident`: `name <email> seconds +hhmm`.
fn check_ident(ident: &BStr) -> Result<(), &'static str> {
    let s: &[u8] = ident;
    if s.first() == Some(&b'<') {
        return Err("no name before the email");
    }
    let lt = s.find_byteset(b"<>").ok_or("no email")?;
    if s[lt] == b'>' {
        return Err("bad name");
    }
    if lt == 0 || s[lt - 1] != b' ' {
        return Err("no space before the email");
    }
    let after = &s[lt + 1..];
    let gt = after.find_byteset(b"<>").ok_or("bad email")?;
    if after[gt] != b'>' {
        return Err("bad email");
    }
    let rest = after[gt + 1..].strip_prefix(b" ").ok_or("no space before the date")?;
    let space = rest.find_byte(b' ').ok_or("bad date")?;
    let (date, zone) = (&rest[..space], &rest[space + 1..]);
    if date.is_empty() || !date.iter().all(u8::is_ascii_digit) {
        return Err("bad date");
    }
    if date.len() > 1 && date[0] == b'0' {
        return Err("zero-padded date");
    }
    let seconds: u64 = std::str::from_utf8(date).ok().and_then(|d| d.parse().ok()).ok_or("date overflows")?;
    if seconds > i64::MAX as u64 {
        return Err("date overflows");
    }
    let zone_ok =
        zone.len() == 5 && matches!(zone[0], b'+' | b'-') && zone[1..].iter().all(u8::is_ascii_digit);
    if !zone_ok {
        return Err("bad time zone");
    }
    Ok(())
}
