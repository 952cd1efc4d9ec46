//! What every operation reads and writes through: the host, the settings and
//! the warnings so far, with the checks that make any object the host hands
//! back trustworthy (its kind, its encoding, the id it was stored under).
//! Kept apart from the replicas so that an operation can hold a replica and
//! reach storage at the same time.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Settings, storage};
use crate::checkpoint;
use crate::error::Error;
use crate::gitobj;
use crate::host::{Host, ObjectKind};
use crate::model::Event;

/// Warnings kept between two `take_warnings` calls; more are dropped, so
/// that a caller that never asks cannot make the guest grow without bound.
const MAX_WARNINGS: usize = 100;

/// The host, the settings and the warnings of a [`super::Log`].
#[derive(Debug)]
pub(super) struct Ctx<H> {
    pub(super) host: H,
    pub(super) settings: Settings,
    pub(super) warnings: Vec<String>,
    /// Events read by commit id, with their parents. A commit id names its
    /// bytes, so an entry can never go stale; bounded, and emptied when
    /// full. It lets a long-lived instance (a server) answer `show` and
    /// `events` for keys it was asked about before without three object
    /// reads and a parse per event.
    events: RefCell<EventCache>,
}

/// How many events [`Ctx`] keeps parsed, and how many bytes of their stored
/// JSON: whichever fills first empties it. Events are small (a few hundred
/// bytes) but may be up to the size limit each, so a count alone could let
/// a few thousand large ones hold hundreds of MB.
const CACHED_EVENTS: usize = 4096;
const CACHED_BYTES: usize = 4 << 20;

#[derive(Debug, Default)]
struct EventCache {
    by_commit: HashMap<String, (Event, Option<String>)>,
    bytes: usize,
}

impl<H: Host> Ctx<H> {
    pub(super) fn new(host: H) -> Ctx<H> {
        Ctx { host, settings: Settings::default(), warnings: Vec::new(), events: RefCell::default() }
    }

    pub(super) fn warn(&mut self, warning: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(warning);
        }
    }

    pub(super) fn read(&self, id: &str, want: ObjectKind) -> Result<Vec<u8>, Error> {
        match self.host.read_object(id).map_err(storage)? {
            Some((kind, data)) if kind == want => Ok(data),
            Some((kind, _)) => Err(Error::corrupt(format!(
                "object {id} is a {}, expected a {}",
                kind.as_str(),
                want.as_str()
            ))),
            None => Err(Error::corrupt(format!("{} {id} is missing", want.as_str()))),
        }
    }

    /// A checkpoint tree's entries (name, is a directory, id); one that
    /// does not decode is corrupt.
    pub(super) fn tree(&self, id: &str) -> Result<Vec<(String, bool, String)>, Error> {
        checkpoint::decode_tree(&self.read(id, ObjectKind::Tree)?).map_err(Error::Corrupt)
    }

    /// Load the event stored in `commit`, and the commit's parent.
    pub(super) fn load(&self, commit: &str) -> Result<(Event, Option<String>), Error> {
        if let Some(known) = self.events.borrow().by_commit.get(commit) {
            return Ok(known.clone());
        }
        let links = self.links(commit)?;
        let (event, size) = self.load_sized(commit, &links.tree)?;
        let loaded = (event, links.parent);
        let mut events = self.events.borrow_mut();
        if events.by_commit.len() >= CACHED_EVENTS || events.bytes + size > CACHED_BYTES {
            *events = EventCache::default();
        }
        events.bytes += size;
        events.by_commit.insert(commit.to_owned(), loaded.clone());
        Ok(loaded)
    }

    /// The tree and parent of an event commit.
    pub(super) fn links(&self, commit: &str) -> Result<gitobj::CommitLinks, Error> {
        let bytes = self.read(commit, ObjectKind::Commit)?;
        gitobj::decode_commit(&bytes).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))
    }

    /// The event in an event commit's tree.
    pub(super) fn load_tree(&self, commit: &str, tree: &str) -> Result<Event, Error> {
        self.load_sized(commit, tree).map(|(event, _)| event)
    }

    /// [`Ctx::load_tree`], with the size of the event's stored JSON.
    fn load_sized(&self, commit: &str, tree: &str) -> Result<(Event, usize), Error> {
        let tree = self.read(tree, ObjectKind::Tree)?;
        let blob_id =
            gitobj::decode_tree(&tree).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))?;
        let blob = self.read(&blob_id, ObjectKind::Blob)?;
        let text =
            String::from_utf8(blob).map_err(|_| Error::corrupt(format!("blob {blob_id} is not UTF-8")))?;
        let event = Event::parse(&text).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))?;
        Ok((event, text.len()))
    }

    /// Store an object whose id the guest computed: a host that files it
    /// under another id would leave refs pointing at nothing.
    pub(super) fn write(&self, kind: ObjectKind, data: &[u8], id: &str) -> Result<(), Error> {
        let stored = self.host.write_object(kind, data).map_err(storage)?;
        if stored != id {
            return Err(Error::Storage(format!(
                "the host stored a {} as {stored}, but its git id is {id}",
                kind.as_str()
            )));
        }
        Ok(())
    }
}
