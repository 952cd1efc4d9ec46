//! What one guest instance knows of a space: the fold at some head, the
//! latest checkpoint, and the events since that checkpoint.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::index::Cache;
use crate::error::{Error, Head};
use crate::fold::State;
use crate::gitobj;
use crate::model::Event;

/// The latest checkpoint a replica knows of.
#[derive(Clone, Debug)]
pub(super) struct KnownCheckpoint {
    /// The checkpoint commit.
    pub(super) commit: String,
    /// The seq it covers.
    pub(super) seq: u64,
    /// Its `index/` tree.
    pub(super) index_tree: String,
    /// Its `ids/` tree.
    pub(super) ids_tree: String,
    /// The event commit it covers.
    pub(super) event: String,
    /// Its pages, when it is paged (an older dlog wrote one `state.json`).
    pub(super) pages: Option<Paged>,
}

/// A paged checkpoint's records: see [`crate::pages`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Paged {
    /// The `pages/` tree.
    pub(super) tree: String,
    /// The last key of every page.
    pub(super) lasts: Vec<String>,
    /// Every page's blob id, in key order.
    pub(super) pages: Vec<String>,
}

/// A space as one guest instance knows it. Memory: the fold, plus the
/// events since the checkpoint (a commit and an id each), plus the bloom
/// filters of the checkpoint's id runs (~1.3 bytes per event) once an append
/// needs them; never the whole log.
#[derive(Debug)]
pub(super) struct Replica {
    pub(super) state: State,
    /// The seq of `commits[0]`: one past the checkpoint's.
    pub(super) first_seq: u64,
    /// The commit of every seq after the checkpoint, as bytes (a replay
    /// without a checkpoint holds one per event).
    pub(super) commits: Vec<[u8; 20]>,
    /// The seq of every id after the checkpoint.
    pub(super) ids: HashMap<String, u64>,
    /// The latest usable checkpoint (none: `commits` start at seq 1).
    pub(super) checkpoint: Option<KnownCheckpoint>,
    /// The checkpoint ref as last read or written, usable or not: what the
    /// next checkpoint must replace.
    pub(super) checkpoint_tip: Option<String>,
    /// What has been read of the checkpoint's index.
    pub(super) index: Cache,
    /// Nothing is known yet, or what was known is in doubt (a catch-up
    /// failed half way): the next sync starts afresh from the space's
    /// latest checkpoint, as for a space never seen.
    pub(super) cold: bool,
    /// The pages `state` is relative to: a replica started from a paged
    /// checkpoint reads a key's record from them only when it needs it.
    pub(super) base: Option<Paged>,
    /// Every record is in `state`, not only those read from `base`.
    pub(super) complete: bool,
    /// The keys read from `base` into `state` (or found absent there).
    pub(super) loaded: HashSet<String>,
    /// The keys events changed since `base`: what the next checkpoint rewrites.
    pub(super) dirty: BTreeSet<String>,
    /// `state` knows every key's history (false when it started from a
    /// checkpoint an older dlog wrote, whose state has none).
    pub(super) histories: bool,
}

impl Replica {
    /// A replica that knows nothing and has not looked at the checkpoint
    /// ref yet.
    pub(super) fn cold(space: &str) -> Replica {
        Replica { cold: true, ..Replica::new(space, None) }
    }

    /// An empty replica, to be replayed from seq 1; `checkpoint_tip` is
    /// the checkpoint ref it will have to replace.
    pub(super) fn new(space: &str, checkpoint_tip: Option<String>) -> Replica {
        Replica {
            state: State::new(space),
            first_seq: 1,
            commits: Vec::new(),
            ids: HashMap::new(),
            checkpoint: None,
            checkpoint_tip,
            index: Cache::default(),
            cold: false,
            base: None,
            complete: true,
            loaded: HashSet::new(),
            dirty: BTreeSet::new(),
            histories: true,
        }
    }

    pub(super) fn from_checkpoint(state: State, checkpoint: KnownCheckpoint) -> Replica {
        let base = checkpoint.pages.clone();
        let histories = base.is_some() || state.keys().is_empty();
        Replica {
            complete: base.is_none(),
            base,
            loaded: HashSet::new(),
            dirty: BTreeSet::new(),
            histories,
            first_seq: state.seq + 1,
            state,
            commits: Vec::new(),
            ids: HashMap::new(),
            checkpoint_tip: Some(checkpoint.commit.clone()),
            checkpoint: Some(checkpoint),
            index: Cache::default(),
            cold: false,
        }
    }

    /// Start from `checkpoint` (at a seq this replica has reached): forget
    /// the events it covers.
    pub(super) fn adopt(&mut self, checkpoint: KnownCheckpoint) {
        if checkpoint.seq + 1 < self.first_seq {
            return;
        }
        let covered = (checkpoint.seq + 1).saturating_sub(self.first_seq) as usize;
        let covered = covered.min(self.commits.len());
        self.commits.drain(..covered);
        self.ids.retain(|_, seq| *seq > checkpoint.seq);
        self.first_seq = checkpoint.seq + 1;
        self.checkpoint_tip = Some(checkpoint.commit.clone());
        self.checkpoint = Some(checkpoint);
        self.index.get_mut().reset();
        self.commits.shrink_to_fit();
        self.ids.shrink_to_fit();
    }

    /// Record a stored event as the new head of the tail.
    pub(super) fn remember(&mut self, id: &str, seq: u64, commit: &str) -> Result<(), Error> {
        let bytes = gitobj::hex_to_bytes(commit)
            .ok_or_else(|| Error::corrupt(format!("{commit:?} is not a commit id")))?;
        self.ids.insert(id.to_owned(), seq);
        self.commits.push(bytes);
        Ok(())
    }

    pub(super) fn commit_of(&self, seq: u64) -> Option<String> {
        seq.checked_sub(self.first_seq).and_then(|i| self.commits.get(i as usize)).map(|c| gitobj::to_hex(c))
    }

    /// The ids of the events after the checkpoint, in seq order.
    pub(super) fn tail_ids(&self) -> Vec<&String> {
        let mut ids: Vec<(u64, &String)> = self.ids.iter().map(|(id, seq)| (*seq, id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    pub(super) fn checkpoint_seq(&self) -> u64 {
        self.checkpoint.as_ref().map_or(0, |c| c.seq)
    }

    pub(super) fn head(&self) -> Option<Head> {
        let s = &self.state;
        s.head.as_ref().map(|commit| Head {
            commit: commit.clone(),
            seq: s.seq,
            epoch: s.epoch,
            at_ms: s.at_ms,
        })
    }

    /// Whether `key`'s record is in `state` (or known to be nowhere).
    pub(super) fn has_key(&self, key: &str) -> bool {
        self.complete || self.loaded.contains(key)
    }

    /// Check and apply a stored event; a stored log that breaks a rule is
    /// corrupt. The event's key must be loaded ([`Replica::has_key`]).
    pub(super) fn push(&mut self, event: &Event, commit: &str) -> Result<(), Error> {
        if event.space != self.state.space {
            return Err(Error::corrupt(format!("commit {commit} holds an event of space {:?}", event.space)));
        }
        if let Some(seq) = self.ids.get(&event.id) {
            return Err(Error::corrupt(format!(
                "event seq {} repeats the id {:?} of seq {seq}",
                event.seq, event.id
            )));
        }
        if let Some(key) = event.body.key() {
            self.dirty.insert(key.to_owned());
        }
        self.state.apply(event, commit).map_err(|e| match e {
            Error::Corrupt(m) => Error::Corrupt(m),
            other => Error::corrupt(format!("event seq {} does not apply: {other}", event.seq)),
        })?;
        self.remember(&event.id, event.seq, commit)
    }
}
