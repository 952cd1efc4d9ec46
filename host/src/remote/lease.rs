//! [`RemoteLeases`]: each space's lease as a ref on the remote,
//! `refs/dlog/leases/<space>`, pointing at a commit whose tree holds one
//! file, `lease.json` (the canonical JSON of the lease, as `FileLeases`
//! writes it). A commit rather than a bare blob, so that any git server
//! (hosted ones included) accepts the ref.
//!
//! Compare-and-swap is a push with `--force-with-lease=<ref>:<expected
//! commit>`: the server's `receive-pack` checks the old value under its ref
//! lock, so two machines can never both be granted. The lease rules
//! (`crate::lease::Leases`) are unchanged; only the cell is remote.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::refs::set;
use super::{LEASES, NOT_A_RACE_TRIES, Pushed, Remote};
use crate::backend::{Backend, GitBackend, ObjectId, ObjectKind, StorageError};
use crate::error::Error;
use crate::lease::{Lease, LeaseCell, check_space, same_lease};

/// A lease read (or written) this recently is answered from memory: the
/// lease is checked several times per append, each a network round trip
/// otherwise. Safety never rests on it: a stale view can only cost a
/// refused push (ARCHITECTURE.md §9c).
const FRESH: Duration = Duration::from_millis(200);

/// Leases stored as refs on a git remote.
#[derive(Debug)]
pub struct RemoteLeases {
    local: Arc<GitBackend>,
    remote: Remote,
    /// Per space: the lease commit last seen, its lease, and when.
    seen: Mutex<HashMap<String, (ObjectId, Lease, Instant)>>,
}

fn storage(e: StorageError) -> Error {
    Error::Storage(e.to_string())
}

impl RemoteLeases {
    /// The leases of the spaces of `local`, kept on `remote`.
    pub fn new(local: Arc<GitBackend>, remote: Remote) -> RemoteLeases {
        RemoteLeases { local, remote, seen: Mutex::new(HashMap::new()) }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ObjectId, Lease, Instant)>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The remote's lease of `space` and its commit, read now.
    fn read_now(&self, space: &str) -> Result<Option<(ObjectId, Lease)>, Error> {
        // The lease may move between the listing and the fetch, which then
        // brings the newer commit, not the listed one: list again.
        for _ in 0..20 {
            if let Some(found) = self.try_read_now(space)? {
                return Ok(found);
            }
        }
        Err(Error::Storage(format!(
            "the lease of space {space:?} on remote {:?} ({}) kept changing while it was read; try again",
            self.remote.name(),
            self.remote.url()
        )))
    }

    /// The remote's lease now; the outer none when it moved while read.
    #[allow(clippy::option_option)]
    fn try_read_now(&self, space: &str) -> Result<Option<Option<(ObjectId, Lease)>>, Error> {
        let name = format!("{LEASES}{space}");
        let Some(id) = self.remote.ls_remote_one(&name).map_err(storage)? else {
            self.seen().remove(space);
            return Ok(Some(None));
        };
        let known = self.seen().get(space).cloned();
        if let Some((seen_id, lease, _)) = known
            && seen_id == id
        {
            self.seen().insert(space.to_owned(), (id, lease.clone(), Instant::now()));
            return Ok(Some(Some((id, lease))));
        }
        if self.local.read_object(&id).map_err(storage)?.is_none() {
            self.remote.fetch_objects(&name).map_err(storage)?;
            if self.local.read_object(&id).map_err(storage)?.is_none() {
                return Ok(None);
            }
        }
        let lease = match self.decode(space, &id) {
            Ok(lease) => lease,
            // Another local fetch may be writing these very objects one by
            // one (the commit before its tree): fetch them ourselves.
            Err(_) => {
                self.remote.fetch_objects(&name).map_err(storage)?;
                self.decode(space, &id)?
            }
        };
        self.seen().insert(space.to_owned(), (id, lease.clone(), Instant::now()));
        Ok(Some(Some((id, lease))))
    }

    fn decode(&self, space: &str, commit: &ObjectId) -> Result<Lease, Error> {
        let damaged = |why: &str| {
            Error::Storage(format!(
                "the lease of space {space:?} on remote {:?} ({}) is damaged: {why}",
                self.remote.name(),
                self.remote.url()
            ))
        };
        let read = |id: &ObjectId, kind: ObjectKind| -> Result<Vec<u8>, Error> {
            match self.local.read_object(id).map_err(storage)? {
                Some((k, data)) if k == kind => Ok(data),
                _ => Err(damaged(&format!("{} {id} is missing or not a {}", kind.as_str(), kind.as_str()))),
            }
        };
        let commit_data = read(commit, ObjectKind::Commit)?;
        let tree_hex = commit_data
            .strip_prefix(b"tree ")
            .and_then(|rest| rest.get(..40))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .ok_or_else(|| damaged("its commit names no tree"))?;
        let tree = read(&ObjectId::from_hex(tree_hex).map_err(storage)?, ObjectKind::Tree)?;
        let entry = b"100644 lease.json\0";
        let blob = tree
            .strip_prefix(entry.as_slice())
            .filter(|rest| rest.len() == 20)
            .ok_or_else(|| damaged("its tree holds no lease.json"))?;
        let mut id = [0u8; 20];
        id.copy_from_slice(blob);
        let json = read(&ObjectId(id), ObjectKind::Blob)?;
        serde_json::from_slice(&json).map_err(|e| damaged(&e.to_string()))
    }

    /// Write the commit holding `lease` (durable under a local ref, so that
    /// the push can send it).
    fn encode(&self, space: &str, lease: &Lease) -> Result<ObjectId, Error> {
        let json = serde_json::to_value(lease)
            .map(|v| v.to_string())
            .map_err(|e| Error::Storage(format!("cannot encode a lease: {e}")))?;
        let blob = self.local.write_object(ObjectKind::Blob, json.as_bytes()).map_err(storage)?;
        let mut tree = b"100644 lease.json\0".to_vec();
        tree.extend_from_slice(&blob.0);
        let tree = self.local.write_object(ObjectKind::Tree, &tree).map_err(storage)?;
        // The summary's holder is sanitized like an author name; the
        // commit's time is the grant's expiry, so equal leases give equal
        // commits on every machine.
        let holder: String = lease.holder.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let when = lease.expires_at_ms / 1000;
        let commit = format!(
            "tree {tree}\nauthor dlog <> {when} +0000\ncommitter dlog <> {when} +0000\n\n\
             lease {space}: {holder} (epoch {})\n",
            lease.epoch
        );
        let commit = self.local.write_object(ObjectKind::Commit, commit.as_bytes()).map_err(storage)?;
        set(&self.local, &self.remote.staged("leases", space), &commit).map_err(storage)?;
        Ok(commit)
    }
}

impl LeaseCell for RemoteLeases {
    fn read(&self, space: &str) -> Result<Option<Lease>, Error> {
        check_space(space)?;
        let known = self.seen().get(space).cloned();
        if let Some((_, lease, at)) = known
            && at.elapsed() < FRESH
        {
            return Ok(Some(lease));
        }
        Ok(self.read_now(space)?.map(|(_, lease)| lease))
    }

    fn compare_and_swap(&self, space: &str, expected: Option<&Lease>, new: &Lease) -> Result<bool, Error> {
        check_space(space)?;
        // The commit the expectation stands for: the one last seen, when it
        // is that lease; else whatever the remote holds now, if it is.
        let known = self.seen().get(space).cloned();
        let expected_id = match (expected, known) {
            (None, _) => None,
            (Some(want), Some((id, have, _))) if same_lease(want, &have) => Some(id),
            (Some(want), _) => match self.read_now(space)? {
                Some((id, have)) if same_lease(want, &have) => Some(id),
                _ => return Ok(false),
            },
        };
        let commit = self.encode(space, new)?;
        let name = format!("{LEASES}{space}");
        let mut tries = 0;
        loop {
            match self.remote.push(&name, expected_id.as_ref(), &commit).map_err(storage)? {
                Pushed::Accepted => {
                    self.seen().insert(space.to_owned(), (commit, new.clone(), Instant::now()));
                    // From the value replaced only: a newer lease another
                    // local process has seen is not moved back.
                    let tracking = self.remote.tracking("leases", space);
                    let _ = self.local.compare_and_swap(&tracking, expected_id.as_ref(), &commit);
                    return Ok(true);
                }
                Pushed::Refused(why) => {
                    self.seen().remove(space);
                    // Someone else changed the lease first: the rules
                    // (`Leases`) read it again and decide. A lease still at
                    // the expected commit was refused for another reason,
                    // which no retry of theirs would cure.
                    let now = self.read_now(space)?.map(|(id, _)| id);
                    if now != expected_id {
                        return Ok(false);
                    }
                    tries += 1;
                    if tries >= NOT_A_RACE_TRIES {
                        return Err(storage(self.remote.not_a_race(&name, now.as_ref(), &why)));
                    }
                    std::thread::sleep(Duration::from_millis(50 * u64::from(tries)));
                }
            }
        }
    }

    fn poll_interval(&self) -> Duration {
        // Each look is a round trip to the server: a waiting writer asks a
        // few times a second, not a hundred.
        Duration::from_millis(100)
    }
}
