//! [`RemoteBackend`]: the storage of a log bound to a git remote.
//!
//! Objects are the local repository's, written as always (buffered, then
//! made durable by a local compare-and-swap). Space refs are different:
//!
//! - **read** from the remote-tracking ref (`refs/remotes/<name>/dlog/spaces/…`),
//!   the remote's head as last fetched or pushed;
//! - **compare-and-swap** first stages the new commit under a local ref (so
//!   its objects are durable here before they travel), then pushes it with
//!   `--force-with-lease=<ref>:<expected>`. Only once the server accepted does
//!   the swap report `Swapped` (the guest then acknowledges the append); a
//!   refusal fetches the heads again and reports `Mismatch`, so the guest
//!   re-reads, re-checks every intent id against the fetched log and
//!   re-stamps on the new head (the library's race retries).
//!
//! Every other ref (checkpoints) stays local: checkpoints are a cache any
//! process can rebuild, not history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Pushed, Remote, SPACES};
use crate::backend::{Backend, GitBackend, ObjectId, ObjectKind, StorageError, SwapOutcome};

/// A fetch this recent is fresh enough to build on: a stale base costs one
/// refused push and a fetch, never a wrong append.
const FRESH: Duration = Duration::from_millis(250);

/// A log's storage when its repository is bound to a remote.
#[derive(Debug)]
pub struct RemoteBackend {
    local: Arc<GitBackend>,
    remote: Remote,
    /// Per space: when this process last learned the remote's head (by a
    /// fetch, or by its own accepted push), so an append right after skips
    /// the fetch. A `serve` holding the lease thus pushes without fetching.
    seen: Mutex<HashMap<String, Instant>>,
}

impl RemoteBackend {
    /// The storage of `local` with its space heads on `remote`.
    pub fn new(local: Arc<GitBackend>, remote: Remote) -> RemoteBackend {
        RemoteBackend { local, remote, seen: Mutex::new(HashMap::new()) }
    }

    /// The remote.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetch every space head from the remote, and mirror them into the
    /// local `refs/dlog/spaces/*`.
    pub fn fetch(&self) -> Result<(), StorageError> {
        self.remote.fetch_spaces()?;
        let now = Instant::now();
        let prefix = format!("refs/remotes/{}/dlog/spaces/", self.remote.name());
        let heads = self.local.list_refs(&prefix)?;
        let mut seen = self.seen();
        for (name, id) in heads {
            let space = &name[prefix.len()..];
            seen.insert(space.to_owned(), now);
            // The mirror is a convenience for plain `git log`; the tracking
            // ref is what appends build on, so a failed mirror is no failure.
            let _ = set(&self.local, &format!("{SPACES}{space}"), &id);
        }
        Ok(())
    }

    fn space_of<'n>(&self, name: &'n str) -> Option<&'n str> {
        name.strip_prefix(SPACES).filter(|s| !s.is_empty() && !s.contains('/'))
    }
}

/// Set local ref `name` to `id` whatever it holds (our own bookkeeping refs).
pub(crate) fn set(local: &GitBackend, name: &str, id: &ObjectId) -> Result<(), StorageError> {
    for _ in 0..100 {
        let current = local.read_ref(name)?;
        if current.as_ref() == Some(id) {
            return Ok(());
        }
        if local.compare_and_swap(name, current.as_ref(), id)? == SwapOutcome::Swapped {
            return Ok(());
        }
    }
    Err(StorageError::io(format!("cannot set {name}"), "it kept changing under us"))
}

impl Backend for RemoteBackend {
    fn write_object(&self, kind: ObjectKind, data: &[u8]) -> Result<ObjectId, StorageError> {
        self.local.write_object(kind, data)
    }

    fn read_object(&self, id: &ObjectId) -> Result<Option<(ObjectKind, Vec<u8>)>, StorageError> {
        self.local.read_object(id)
    }

    fn read_ref(&self, name: &str) -> Result<Option<ObjectId>, StorageError> {
        match self.space_of(name) {
            Some(space) => self.local.read_ref(&self.remote.tracking("spaces", space)),
            None => self.local.read_ref(name),
        }
    }

    fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: &ObjectId,
    ) -> Result<SwapOutcome, StorageError> {
        let Some(space) = self.space_of(name) else {
            return self.local.compare_and_swap(name, expected, new);
        };
        // Durable here first: a push is acknowledged by the server, and what
        // it acknowledged must not be missing from this repository after a
        // crash (the mirror and the tracking ref may point at it).
        set(&self.local, &self.remote.staged("spaces", space), new)?;
        match self.remote.push(name, expected, new)? {
            Pushed::Accepted => {
                self.seen().insert(space.to_owned(), Instant::now());
                let _ = set(&self.local, &self.remote.tracking("spaces", space), new);
                let _ = set(&self.local, name, new);
                Ok(SwapOutcome::Swapped)
            }
            Pushed::Refused(_) => {
                self.seen().remove(space);
                self.fetch()?;
                Ok(SwapOutcome::Mismatch(self.read_ref(name)?))
            }
        }
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError> {
        let mut refs: Vec<(String, ObjectId)> =
            self.local.list_refs(prefix)?.into_iter().filter(|(n, _)| self.space_of(n).is_none()).collect();
        let tracking = format!("refs/remotes/{}/dlog/spaces/", self.remote.name());
        for (name, id) in self.local.list_refs(&tracking)? {
            let name = format!("{SPACES}{}", &name[tracking.len()..]);
            if name.starts_with(prefix) {
                refs.push((name, id));
            }
        }
        refs.sort();
        Ok(refs)
    }

    fn refresh(&self, space: &str) -> Result<(), StorageError> {
        let fresh = self.seen().get(space).is_some_and(|at| at.elapsed() < FRESH);
        if fresh { Ok(()) } else { self.fetch() }
    }
}
