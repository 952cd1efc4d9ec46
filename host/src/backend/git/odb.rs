//! Reading objects: the buffer first, then a pooled handle on gix's shared
//! object store, replaced when it can no longer see what is on disk (see
//! *Freshness* in [the backend's docs](super)).

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use gix::objs::{Find as _, FindHeader as _};

use super::{GitBackend, ObjectId, ObjectKind, StorageError, from_gix, gix_error, to_gix, to_gix_kind};

/// Index slots of gix's object store (one per pack index): at least this
/// many, and twice what is on disk when the store is opened, so that a
/// long-lived instance rarely has to reopen its store.
const STORE_SLOTS: gix::odb::store::init::Slots =
    gix::odb::store::init::Slots::AsNeededByDiskState { multiplier: 2.0, minimum: 64 };

/// Idle object-store handles, and which store they belong to.
#[derive(Default)]
pub(super) struct HandlePool {
    /// Bumped whenever the store is replaced: older handles are dropped.
    generation: u64,
    idle: Vec<gix::odb::Handle>,
}

impl fmt::Debug for HandlePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandlePool {{ generation: {}, idle: {} }}", self.generation, self.idle.len())
    }
}

/// A handle lent out of the pool for one call; it goes back on drop.
pub(super) struct PooledHandle<'a> {
    handle: Option<gix::odb::Handle>,
    generation: u64,
    pool: &'a Mutex<HandlePool>,
}

impl std::ops::Deref for PooledHandle<'_> {
    type Target = gix::odb::Handle;
    fn deref(&self) -> &gix::odb::Handle {
        // Only `drop` takes the handle out.
        self.handle.as_ref().unwrap_or_else(|| unreachable!("a pooled handle is present until dropped"))
    }
}

impl Drop for PooledHandle<'_> {
    fn drop(&mut self) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = self.handle.take()
            && pool.generation == self.generation
            && pool.idle.len() < MAX_IDLE_HANDLES
        {
            pool.idle.push(handle);
        }
    }
}

/// Idle handles kept: one per thread that reads at the same time, roughly.
const MAX_IDLE_HANDLES: usize = 4;

impl GitBackend {
    /// A handle on the shared object store, for one call. Handles are reused:
    /// each owns gix's inflate state and its view of the pack indexes, and
    /// making a fresh one per read was a fifth of a full replay's time.
    pub(super) fn odb(&self) -> PooledHandle<'_> {
        let mut pool = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = pool.generation;
        let handle = match pool.idle.pop() {
            Some(handle) => handle,
            None => {
                drop(pool);
                self.store.read().unwrap_or_else(PoisonError::into_inner).to_handle().into()
            }
        };
        PooledHandle { handle: Some(handle), generation, pool: &self.handles }
    }

    /// Run a lookup on a handle; if it fails or finds nothing, once more on
    /// a fresh store.
    ///
    /// gix's store knows a fixed number of pack indices (slots, chosen when
    /// it is opened). Once packs written since, by this instance or others,
    /// exhaust them, every rescan of `objects/pack/` fails, and with it
    /// every lookup that misses the packs already loaded. And when packs are
    /// merged away (by this backend or `git gc`), gix reloads its indexes
    /// for a find, but a header lookup was seen to miss an object that had
    /// only moved to the merged pack. A fresh store sees the disk as it is
    /// now; misses are rare on the paths that use this (every object a log
    /// asks for exists), so the retry costs little.
    pub(super) fn with_odb<T>(
        &self,
        mut lookup: impl FnMut(&gix::odb::Handle) -> Result<Option<T>, gix::Error>,
    ) -> Result<Option<T>, gix::Error> {
        let first = match lookup(&self.odb()) {
            Ok(Some(found)) => return Ok(Some(found)),
            other => other,
        };
        match self.refresh_store() {
            Ok(()) => lookup(&self.odb()),
            Err(_) => first,
        }
    }

    /// Replace the object store by a fresh one, sized and loaded for the
    /// packs on disk now; drop the handles on the old one.
    pub(super) fn refresh_store(&self) -> Result<(), StorageError> {
        let repo = open_repo(&self.git_dir)?;
        *self.store.write().unwrap_or_else(PoisonError::into_inner) = repo.into_sync().objects;
        let mut pool = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
        pool.generation += 1;
        pool.idle.clear();
        Ok(())
    }

    /// The kind of object `id` (buffered or in the repository), none when
    /// there is no such object.
    pub(super) fn object_kind(&self, id: &gix::ObjectId) -> Result<Option<gix::objs::Kind>, StorageError> {
        if let Some(buffered) = self.lock_pending().objects.get(&from_gix(id)) {
            return Ok(Some(to_gix_kind(buffered.kind)));
        }
        let header = self
            .with_odb(|odb| odb.try_header(id))
            .map_err(|e| gix_error(format!("cannot read object {id}"), e))?;
        Ok(header.map(|h| h.kind))
    }

    /// The object `id`, buffered or in the repository; a tag is an error.
    pub(super) fn find_object(&self, id: &ObjectId) -> Result<Option<(ObjectKind, Vec<u8>)>, StorageError> {
        let buffered = self.lock_pending().objects.get(id).map(|b| (b.kind, b.data.clone()));
        if let Some((kind, data)) = buffered {
            return Ok(Some((kind, data.to_vec())));
        }
        let mut buf = Vec::new();
        let found = self
            .with_odb(|odb| {
                odb.try_find(&to_gix(id), &mut buf).map(|found| found.map(|o| (o.kind, o.data.to_vec())))
            })
            .map_err(|e| gix_error(format!("cannot read object {id}"), e))?;
        let Some((kind, data)) = found else {
            return Ok(None);
        };
        let kind = match kind {
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
        Ok(Some((kind, data)))
    }
}

/// Open the repository at exactly `path`, with only its own configuration.
pub(super) fn open_repo(path: &Path) -> Result<gix::Repository, StorageError> {
    gix::open_opts(path, gix::open::Options::isolated().object_store_slots(STORE_SLOTS))
        .map_err(|e| gix_error(format!("cannot open git repository {}", path.display()), e))
}
