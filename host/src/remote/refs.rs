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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{NOT_A_RACE_TRIES, Pushed, Remote, SPACES, is_ancestor};
use crate::backend::{Backend, GitBackend, ObjectId, ObjectKind, StorageError, SwapOutcome};
use crate::error::Error;

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
    /// Warnings not yet taken (`Log::take_warnings`), and every held-back
    /// mirror already warned about, so each is said once per process.
    warnings: Mutex<(Vec<String>, HashSet<HeldBack>)>,
}

/// A space whose local `refs/dlog/spaces/<space>` has events the remote's
/// head lacks, so a fetch did not move it: a writer that opened this
/// repository before it was bound appended there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HeldBack {
    /// The space.
    pub space: String,
    /// The local head.
    pub here: ObjectId,
    /// The remote's head.
    pub there: ObjectId,
    /// Whether the local head descends from the remote's (a push would
    /// fast-forward it) rather than diverging from it.
    pub ahead: bool,
}

impl RemoteBackend {
    /// The storage of `local` with its space heads on `remote`.
    pub fn new(local: Arc<GitBackend>, remote: Remote) -> RemoteBackend {
        RemoteBackend {
            local,
            remote,
            seen: Mutex::new(HashMap::new()),
            warnings: Mutex::new((Vec::new(), HashSet::new())),
        }
    }

    /// The remote.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetch every space head from the remote, and bring the local
    /// `refs/dlog/spaces/*` up to them where that is a fast-forward. A local
    /// head with events the remote lacks is left where it is, with a
    /// warning (`take_warnings`) naming the space and both heads.
    pub fn fetch(&self) -> Result<(), StorageError> {
        let held = self.fetch_heads()?;
        let mut warnings = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
        for h in held {
            if warnings.1.insert(h.clone()) {
                warnings.0.push(self.held_back_warning(&h));
            }
        }
        Ok(())
    }

    /// Warnings since the last call: local heads a fetch left alone.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.lock().unwrap_or_else(|e| e.into_inner()).0)
    }

    fn held_back_warning(&self, h: &HeldBack) -> String {
        let (space, name) = (&h.space, self.remote.name());
        if h.ahead {
            format!(
                "space {space:?}: this repository's refs/dlog/spaces/{space} is at {}, with events remote \
                 {name:?} lacks (its head is {}), probably appended by a process that opened this \
                 repository before it was bound; it was left there, not moved back. `dlog sync` pushes them",
                h.here, h.there
            )
        } else {
            format!(
                "space {space:?}: this repository's refs/dlog/spaces/{space} is at {}, which has diverged \
                 from remote {name:?}'s head {}: each has events the other lacks. It was left there, not \
                 moved; appends go to the remote's log. Its own events stay readable with \
                 `git log refs/dlog/spaces/{space}`; append again the decisions among them to keep",
                h.here, h.there
            )
        }
    }

    /// Fetch, mirror by fast-forward, and say which mirrors were held back.
    fn fetch_heads(&self) -> Result<Vec<HeldBack>, StorageError> {
        self.remote.fetch_spaces()?;
        let now = Instant::now();
        let prefix = format!("refs/remotes/{}/dlog/spaces/", self.remote.name());
        let heads = self.local.list_refs(&prefix)?;
        self.seen().extend(heads.iter().map(|(name, _)| (name[prefix.len()..].to_owned(), now)));
        let mut held = Vec::new();
        for (name, theirs) in heads {
            let space = &name[prefix.len()..];
            if let Some(h) = fast_forward(&self.local, space, &theirs)? {
                held.push(h);
            }
        }
        Ok(held)
    }

    /// Fetch, then push every space whose local head has events the remote
    /// lacks and descends from the remote's head (`dlog sync`); the spaces
    /// pushed. A space that diverged is a conflict.
    pub fn sync(&self) -> Result<Vec<String>, Error> {
        self.fetch_heads()?;
        let pushed = publish(&self.local, &self.remote)?;
        let now = Instant::now();
        self.seen().extend(pushed.iter().map(|space| (space.clone(), now)));
        Ok(pushed)
    }

    fn space_of<'n>(&self, name: &'n str) -> Option<&'n str> {
        name.strip_prefix(SPACES).filter(|s| !s.is_empty() && !s.contains('/'))
    }
}

/// Move the local `refs/dlog/spaces/<space>` to the remote's head `theirs`
/// if that is a fast-forward (or it does not exist); otherwise leave it,
/// and say so. Each move is a compare-and-swap from the value judged, so a
/// local writer appending meanwhile is never cut off.
pub(crate) fn fast_forward(
    local: &GitBackend,
    space: &str,
    theirs: &ObjectId,
) -> Result<Option<HeldBack>, StorageError> {
    let name = format!("{SPACES}{space}");
    for _ in 0..20 {
        let here = local.read_ref(&name)?;
        if let Some(here) = here {
            if here == *theirs {
                return Ok(None);
            }
            if !is_ancestor(local.git_dir(), &here, theirs)? {
                let ahead = is_ancestor(local.git_dir(), theirs, &here)?;
                return Ok(Some(HeldBack { space: space.to_owned(), here, there: *theirs, ahead }));
            }
        }
        if local.compare_and_swap(&name, here.as_ref(), theirs)? == SwapOutcome::Swapped {
            return Ok(None);
        }
    }
    // A local writer keeps appending: its head is newer than what we judged,
    // so it is not ours to move; the next fetch looks again.
    Ok(None)
}

/// Push every local space head the remote lacks, where the push is a
/// fast-forward there (or the remote has no such space); the spaces pushed.
/// Local heads behind the remote's are fast-forwarded; a space whose heads
/// diverged is [`Error::Diverged`]. The remote-tracking refs must be fresh.
pub(crate) fn publish(git: &GitBackend, remote: &Remote) -> Result<Vec<String>, Error> {
    let mut pushed = Vec::new();
    for (name, here) in git.list_refs(SPACES)? {
        let space = name[SPACES.len()..].to_owned();
        let tracking = remote.tracking("spaces", &space);
        let theirs = git.read_ref(&tracking)?;
        if let Some(theirs) = theirs {
            if theirs == here {
                continue;
            }
            if remote.is_ancestor(&here, &theirs)? {
                fast_forward(git, &space, &theirs)?;
                continue;
            }
            if !remote.is_ancestor(&theirs, &here)? {
                return Err(Error::Diverged {
                    space,
                    remote: remote.name().to_owned(),
                    here: here.to_hex(),
                    there: theirs.to_hex(),
                });
            }
        }
        match remote.push(&name, theirs.as_ref(), &here)? {
            Pushed::Accepted => {
                // From the value pushed over only: never backwards.
                let _ = git.compare_and_swap(&tracking, theirs.as_ref(), &here);
                pushed.push(space);
            }
            Pushed::Refused(why) => {
                return Err(Error::Storage(format!(
                    "remote {:?} refused the push of space {space:?} ({why}); another writer may have \
                     moved it meanwhile. Nothing was lost: run it again",
                    remote.name()
                )));
            }
        }
    }
    Ok(pushed)
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
        let mut tries = 0;
        loop {
            match self.remote.push(name, expected, new)? {
                Pushed::Accepted => {
                    self.seen().insert(space.to_owned(), Instant::now());
                    // Both from `expected` only: another local process may
                    // have fetched a newer head meanwhile, and the mirror may
                    // hold a pre-binding writer's events; neither is moved
                    // back. A mismatch is theirs to keep (the push itself
                    // already moved the tracking ref, or a fetch will).
                    let tracking = self.remote.tracking("spaces", space);
                    let _ = self.local.compare_and_swap(&tracking, expected, new);
                    let _ = self.local.compare_and_swap(name, expected, new);
                    return Ok(SwapOutcome::Swapped);
                }
                Pushed::Refused(why) => {
                    self.seen().remove(space);
                    self.fetch()?;
                    let head = self.read_ref(name)?;
                    if head.as_ref() != expected {
                        return Ok(SwapOutcome::Mismatch(head));
                    }
                    tries += 1;
                    if tries >= NOT_A_RACE_TRIES {
                        return Err(self.remote.not_a_race(name, head.as_ref(), &why));
                    }
                    std::thread::sleep(Duration::from_millis(50 * u64::from(tries)));
                }
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
