//! The log's operations over a [`Host`]: append, read, fold, verify, import.
//!
//! A [`Log`] keeps, per space, a *replica*: the fold at some head commit, the
//! latest checkpoint it knows, and the commit and id of every seq after that
//! checkpoint; older seqs and ids are found through the checkpoint's index
//! (`index`). It is a cache in the strict sense: keyed by the head's
//! content-addressed id, refreshed from the ref on every call (walking back
//! only to the commit it already knows), and dropped whenever anything about
//! it is in doubt. The log in storage is always the authority.

mod index;
mod verify;

use std::collections::{BTreeMap, HashMap, HashSet};

use index::{Cache, IndexError};

use crate::checkpoint;
use crate::error::{Error, Head};
use crate::fold::{self, State, Undo};
use crate::gitobj::{self, EncodedEvent};
use crate::host::{Host, ObjectKind, Swap};
use crate::model::{self, Body, Event, Intent};

/// An intent as it arrives through the WIT, not yet validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawIntent {
    /// Idempotency key.
    pub id: String,
    /// Who decides.
    pub actor: String,
    /// The kind name.
    pub kind: String,
    /// The body as JSON text.
    pub body: String,
    /// The head seq the client saw.
    pub expect_seq: Option<u64>,
}

/// An event together with the commit that stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    /// The event.
    pub event: Event,
    /// Its commit id.
    pub commit: String,
}

/// The outcome of an append.
#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    /// The stored event.
    pub stored: Stored,
    /// False for an idempotent resend (the original is returned).
    pub created: bool,
}

/// Where to fold up to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// Up to this seq.
    Seq(u64),
    /// Up to the event in this commit.
    Commit(String),
}

/// The outcome of verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The space.
    pub space: String,
    /// Events walked.
    pub events: u64,
    /// The head commit.
    pub head: Option<String>,
    /// Broken invariants.
    pub problems: Vec<String>,
}

/// The outcome of import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// Events in the input.
    pub total: u64,
    /// Events already present.
    pub skipped: u64,
    /// Events written.
    pub written: u64,
    /// The head afterwards.
    pub head: Option<Head>,
}

/// The latest checkpoint a replica knows of.
#[derive(Clone, Debug)]
struct KnownCheckpoint {
    /// The checkpoint commit.
    commit: String,
    /// The seq it covers.
    seq: u64,
    /// Its `index/` tree.
    index_tree: String,
    /// Its `ids/` tree.
    ids_tree: String,
    /// The event commit it covers.
    event: String,
}

/// A space as one guest instance knows it. Memory: the fold, plus the
/// events since the checkpoint (a commit and an id each), plus the bloom
/// filters of the checkpoint's id runs (~1.3 bytes per event) once an append
/// needs them; never the whole log.
#[derive(Debug)]
struct Replica {
    state: State,
    /// The seq of `commits[0]`: one past the checkpoint's.
    first_seq: u64,
    /// The commit of every seq after the checkpoint, as bytes (a replay
    /// without a checkpoint holds one per event).
    commits: Vec<[u8; 20]>,
    /// The seq of every id after the checkpoint.
    ids: HashMap<String, u64>,
    /// The latest usable checkpoint (none: `commits` start at seq 1).
    checkpoint: Option<KnownCheckpoint>,
    /// The checkpoint ref as last read or written, usable or not: what the
    /// next checkpoint must replace.
    checkpoint_tip: Option<String>,
    /// What has been read of the checkpoint's index.
    index: Cache,
}

impl Replica {
    fn new(space: &str, checkpoint_tip: Option<String>) -> Replica {
        Replica {
            state: State::new(space),
            first_seq: 1,
            commits: Vec::new(),
            ids: HashMap::new(),
            checkpoint: None,
            checkpoint_tip,
            index: Cache::default(),
        }
    }

    fn from_checkpoint(state: State, checkpoint: KnownCheckpoint) -> Replica {
        Replica {
            first_seq: state.seq + 1,
            state,
            commits: Vec::new(),
            ids: HashMap::new(),
            checkpoint_tip: Some(checkpoint.commit.clone()),
            checkpoint: Some(checkpoint),
            index: Cache::default(),
        }
    }

    /// Start from `checkpoint` (at a seq this replica has reached): forget
    /// the events it covers.
    fn adopt(&mut self, checkpoint: KnownCheckpoint) {
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
    fn remember(&mut self, id: &str, seq: u64, commit: &str) -> Result<(), Error> {
        let bytes = gitobj::hex_to_bytes(commit)
            .ok_or_else(|| Error::corrupt(format!("{commit:?} is not a commit id")))?;
        self.ids.insert(id.to_owned(), seq);
        self.commits.push(bytes);
        Ok(())
    }

    fn commit_of(&self, seq: u64) -> Option<String> {
        seq.checked_sub(self.first_seq).and_then(|i| self.commits.get(i as usize)).map(|c| gitobj::to_hex(c))
    }

    /// The ids of the events after the checkpoint, in seq order.
    fn tail_ids(&self) -> Vec<&String> {
        let mut ids: Vec<(u64, &String)> = self.ids.iter().map(|(id, seq)| (*seq, id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    fn checkpoint_seq(&self) -> u64 {
        self.checkpoint.as_ref().map_or(0, |c| c.seq)
    }

    fn head(&self) -> Option<Head> {
        let s = &self.state;
        s.head.as_ref().map(|commit| Head {
            commit: commit.clone(),
            seq: s.seq,
            epoch: s.epoch,
            at_ms: s.at_ms,
        })
    }

    /// Check and apply a stored event; a stored log that breaks a rule is corrupt.
    fn push(&mut self, event: &Event, commit: &str) -> Result<(), Error> {
        if event.space != self.state.space {
            return Err(Error::corrupt(format!("commit {commit} holds an event of space {:?}", event.space)));
        }
        if let Some(seq) = self.ids.get(&event.id) {
            return Err(Error::corrupt(format!(
                "event seq {} repeats the id {:?} of seq {seq}",
                event.seq, event.id
            )));
        }
        self.state.apply(event, commit).map_err(|e| match e {
            Error::Corrupt(m) => Error::Corrupt(m),
            other => Error::corrupt(format!("event seq {} does not apply: {other}", event.seq)),
        })?;
        self.remember(&event.id, event.seq, commit)
    }
}

/// How often a checkpoint is written unless configured otherwise.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 512;

/// A catch-up of more than this many checkpoint intervals writes
/// checkpoints as it goes (every 65,536 events by default).
pub const REPLAY_CHECKPOINT_FACTOR: u64 = 128;

/// Tuning of a [`Log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Write a checkpoint whenever the head crosses a multiple of this many
    /// events (0: only on demand).
    pub checkpoint_every: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { checkpoint_every: DEFAULT_CHECKPOINT_EVERY }
    }
}

/// A checkpoint as reported to callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The seq it covers.
    pub seq: u64,
    /// The checkpoint commit.
    pub commit: String,
    /// The event commit at that seq.
    pub event: String,
}

/// Events stamped but not yet committed. They are already applied to the
/// replica's state; `undo` takes them back if the commit fails.
#[derive(Debug, Default)]
struct Draft {
    /// The head the draft builds on (none: an empty space).
    base: Option<Head>,
    undo: Vec<Undo>,
    objects: Vec<EncodedEvent>,
    results: Vec<Appended>,
    batch_ids: HashMap<String, usize>,
}

impl Draft {
    fn take_back(&mut self, state: &mut State) {
        while let Some(undo) = self.undo.pop() {
            state.undo(undo);
        }
    }
}

/// The decision log over a host.
#[derive(Debug)]
pub struct Log<H> {
    host: H,
    replicas: BTreeMap<String, Replica>,
    settings: Settings,
    warnings: Vec<String>,
}

fn storage(e: String) -> Error {
    Error::Storage(e)
}

impl<H: Host> Log<H> {
    /// A log over `host`, with nothing cached yet.
    pub fn new(host: H) -> Log<H> {
        Log { host, replicas: BTreeMap::new(), settings: Settings::default(), warnings: Vec::new() }
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// Change the settings of this log.
    pub fn configure(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// Warnings since the last call: things that were wrong but did not stop
    /// the operation (e.g. a damaged checkpoint that was replaced by a replay).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn warn(&mut self, warning: String) {
        if self.warnings.len() < 100 {
            self.warnings.push(warning);
        }
    }

    fn read(&self, id: &str, want: ObjectKind) -> Result<Vec<u8>, Error> {
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
    fn tree(&self, id: &str) -> Result<Vec<(String, bool, String)>, Error> {
        checkpoint::decode_tree(&self.read(id, ObjectKind::Tree)?).map_err(Error::Corrupt)
    }

    /// Load the event stored in `commit`, and the commit's parent.
    fn load(&self, commit: &str) -> Result<(Event, Option<String>), Error> {
        let links = self.links(commit)?;
        Ok((self.load_tree(commit, &links.tree)?, links.parent))
    }

    /// The tree and parent of an event commit.
    fn links(&self, commit: &str) -> Result<gitobj::CommitLinks, Error> {
        let bytes = self.read(commit, ObjectKind::Commit)?;
        gitobj::decode_commit(&bytes).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))
    }

    /// The event in an event commit's tree.
    fn load_tree(&self, commit: &str, tree: &str) -> Result<Event, Error> {
        let tree = self.read(tree, ObjectKind::Tree)?;
        let blob_id =
            gitobj::decode_tree(&tree).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))?;
        let blob = self.read(&blob_id, ObjectKind::Blob)?;
        let text =
            String::from_utf8(blob).map_err(|_| Error::corrupt(format!("blob {blob_id} is not UTF-8")))?;
        Event::parse(&text).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))
    }

    fn write(&self, kind: ObjectKind, data: &[u8], id: &str) -> Result<(), Error> {
        let stored = self.host.write_object(kind, data).map_err(storage)?;
        if stored != id {
            return Err(Error::Storage(format!(
                "the host stored a {} as {stored}, but its git id is {id}",
                kind.as_str()
            )));
        }
        Ok(())
    }

    /// Bring the space's replica up to the ref's current head.
    fn sync(&mut self, space: &str) -> Result<&Replica, Error> {
        let head = self.host.read_ref(&model::space_ref(space)).map_err(storage)?;
        let mut replica = match self.replicas.remove(space) {
            Some(replica) => replica,
            None => self.cold_replica(space)?,
        };
        if replica.state.head != head {
            // Walk back to what the replica knows, keeping only the ids of
            // each commit and tree (40 bytes per event, not the events),
            // then load and apply the events oldest first.
            let mut tail: Vec<([u8; 20], [u8; 20])> = Vec::new();
            let mut cursor = head;
            let mut reached_known = false;
            while let Some(commit) = cursor {
                if replica.state.head.as_ref() == Some(&commit) {
                    reached_known = true;
                    break;
                }
                let links = self.links(&commit)?;
                let as_bytes = |id: &str| {
                    gitobj::hex_to_bytes(id)
                        .ok_or_else(|| Error::corrupt(format!("{id:?} is not an object id")))
                };
                tail.push((as_bytes(&commit)?, as_bytes(&links.tree)?));
                cursor = links.parent;
            }
            if !reached_known {
                if replica.checkpoint.is_some() && replica.state.head.is_some() {
                    self.warn(format!(
                        "the checkpoint of space {space:?} at seq {} is not on its chain; replayed the whole log",
                        replica.checkpoint_seq()
                    ));
                }
                // Not a descendant of what we knew (or nothing known): start over.
                replica = Replica::new(space, replica.checkpoint_tip.clone());
            }
            replica = self.catch_up(space, replica, tail)?;
        }
        if replica.commits.len() as u64 > self.far_behind() {
            // Another process appends and checkpoints: follow its
            // checkpoints so that this replica's tail stays short.
            self.adopt_latest_checkpoint(&mut replica);
        }
        Ok(self.replicas.entry(space.to_owned()).or_insert(replica))
    }

    /// How many events behind a replica is far behind: a catch-up then
    /// looks for a checkpoint on its way, and a long tail follows other
    /// writers' checkpoints.
    fn far_behind(&self) -> u64 {
        self.settings.checkpoint_every.max(DEFAULT_CHECKPOINT_EVERY).saturating_mul(4)
    }

    /// Apply `tail` (commit and tree ids, newest first) to `replica`,
    /// starting from a newer checkpoint on the way when it is far behind,
    /// and checkpointing as it goes when the catch-up is long.
    fn catch_up(
        &mut self,
        space: &str,
        mut replica: Replica,
        mut tail: Vec<([u8; 20], [u8; 20])>,
    ) -> Result<Replica, Error> {
        if tail.len() as u64 > self.far_behind() {
            // A long way behind: start from the latest checkpoint if its
            // event is on the way, instead of replaying up to it.
            if let Some((from, at)) = self.checkpoint_within(space, &replica, &tail) {
                replica = from;
                tail.truncate(at);
            }
        }
        // A long catch-up (a replay with no usable checkpoint, or a
        // reader far behind) checkpoints at each multiple of `every` it
        // passes while it holds that many events, so that its memory
        // stays bounded whatever the log's length; the multiples make
        // where checkpoints fall independent of where it started.
        let every = self.settings.checkpoint_every.saturating_mul(REPLAY_CHECKPOINT_FACTOR);
        let mut retry_from = 0;
        let mut warned = false;
        let mut next = tail.len();
        while next > 0 {
            next -= 1;
            let (commit, tree) = &tail[next];
            let commit = gitobj::to_hex(commit);
            let event = self.load_tree(&commit, &gitobj::to_hex(tree))?;
            replica.push(&event, &commit)?;
            let seq = replica.state.seq;
            if every == 0
                || !seq.is_multiple_of(every)
                || (replica.commits.len() as u64) < every
                || seq < retry_from
            {
                continue;
            }
            self.replicas.insert(space.to_owned(), replica);
            let written = self.write_checkpoint(space);
            replica = self.replicas.remove(space).ok_or_else(|| Error::Storage("replica vanished".into()))?;
            match written {
                Ok(Some(_)) => {}
                // Lost a race: the winner was adopted (the tail is short
                // again), or is ahead on the way (start from it), or is
                // to be replaced by the next attempt.
                Ok(None) if (replica.commits.len() as u64) < every => {}
                Ok(None) => match self.checkpoint_within(space, &replica, &tail[..next]) {
                    Some((from, at)) => {
                        replica = from;
                        next = at;
                    }
                    None => retry_from = seq.saturating_add(every),
                },
                Err(e) => {
                    if !warned {
                        self.warn(format!(
                            "could not write a checkpoint of space {space:?} while reading it: {e}"
                        ));
                        warned = true;
                    }
                    retry_from = seq.saturating_add(every);
                }
            }
        }
        Ok(replica)
    }

    /// A replica for a space not seen yet: from its latest checkpoint when
    /// there is a sound one, else empty (to be replayed).
    fn cold_replica(&mut self, space: &str) -> Result<Replica, Error> {
        let tip = self.host.read_ref(&checkpoint::checkpoint_ref(space)).map_err(storage)?;
        let Some(tip) = tip else {
            return Ok(Replica::new(space, None));
        };
        Ok(match self.read_checkpoint(space, &tip) {
            Ok((state, checkpoint)) => Replica::from_checkpoint(state, checkpoint),
            // Reading failed: that says nothing about the checkpoint.
            Err(e @ Error::Storage(_)) => return Err(e),
            Err(e) => {
                let problem = match e {
                    Error::Corrupt(m) => m,
                    other => other.to_string(),
                };
                self.warn(format!(
                    "the checkpoint of space {space:?} is unusable ({problem}); replayed the whole log"
                ));
                Replica::new(space, Some(tip))
            }
        })
    }

    /// The space's latest checkpoint as a replica, if it is newer than
    /// `replica`'s and its event is one of `tail` (commit and tree ids,
    /// newest first); with the number of `tail` entries newer than it.
    fn checkpoint_within(
        &self,
        space: &str,
        replica: &Replica,
        tail: &[([u8; 20], [u8; 20])],
    ) -> Option<(Replica, usize)> {
        let tip = self.host.read_ref(&checkpoint::checkpoint_ref(space)).ok()??;
        if replica.checkpoint_tip.as_ref() == Some(&tip) {
            return None;
        }
        let (state, checkpoint) = self.read_checkpoint(space, &tip).ok()?;
        let event = gitobj::hex_to_bytes(&checkpoint.event)?;
        let at = tail.iter().position(|(commit, _)| *commit == event)?;
        Some((Replica::from_checkpoint(state, checkpoint), at))
    }

    /// Start from the space's latest checkpoint if it is usable and within
    /// what `replica` has reached (it then forgets the events it covers).
    fn adopt_latest_checkpoint(&mut self, replica: &mut Replica) {
        let space = replica.state.space.clone();
        let Ok(Some(tip)) = self.host.read_ref(&checkpoint::checkpoint_ref(&space)) else {
            return;
        };
        if replica.checkpoint_tip.as_ref() == Some(&tip) {
            return;
        }
        match self.read_checkpoint(&space, &tip) {
            // Written after our head was read: look again once we reach it.
            Ok((_, checkpoint)) if checkpoint.seq > replica.state.seq => {}
            Ok((_, checkpoint))
                if checkpoint.seq >= replica.first_seq
                    && replica.commit_of(checkpoint.seq).as_ref() == Some(&checkpoint.event) =>
            {
                replica.adopt(checkpoint);
            }
            // Could not be read now: look again later.
            Err(Error::Storage(_)) => {}
            // Unusable, older than ours, or not on our chain: the next
            // checkpoint replaces it (and it is not examined again).
            _ => replica.checkpoint_tip = Some(tip),
        }
    }

    /// The checkpoint `commit` of `space`, checked against itself and the event it names.
    /// A storage failure is returned as such; anything that makes the
    /// checkpoint unusable is [`Error::Corrupt`] with the reason.
    fn read_checkpoint(&self, space: &str, commit: &str) -> Result<(State, KnownCheckpoint), Error> {
        let commit = commit.to_owned();
        let header =
            checkpoint::decode_commit(&self.read(&commit, ObjectKind::Commit)?).map_err(Error::Corrupt)?;
        if header.space != space {
            return Err(Error::corrupt(format!("it belongs to space {:?}", header.space)));
        }
        let entries = self.tree(&header.tree)?;
        let find = |name: &str, dir: bool| checkpoint::find_entry(&entries, name, dir);
        let state_id = find("state.json", false).ok_or_else(|| Error::corrupt("no state.json"))?;
        let index_tree = find("index", true).ok_or_else(|| Error::corrupt("no index"))?;
        let ids_tree = find("ids", true).ok_or_else(|| {
            Error::corrupt(
                "it has no id index: an older dlog wrote it; `dlog checkpoint` writes a current one",
            )
        })?;
        let bytes = self.read(&state_id, ObjectKind::Blob)?;
        if checkpoint::sha1_hex(&bytes) != header.state_sha1 {
            return Err(Error::corrupt("state.json does not match its Dlog-State-Sha1"));
        }
        let mut state = checkpoint::parse_state(&bytes).map_err(Error::Corrupt)?;
        if state.space != space
            || state.seq != header.seq
            || state.head.as_deref() != Some(header.event.as_str())
        {
            return Err(Error::corrupt("state.json does not describe the event the checkpoint names"));
        }
        let (event, _) = self.load(&header.event)?;
        if event.seq != header.seq || event.space != space {
            return Err(Error::corrupt(format!(
                "its event {} is not seq {} of this space",
                header.event, header.seq
            )));
        }
        state.epoch = event.epoch;
        state.at_ms = event.at_ms;
        Ok((state, KnownCheckpoint { commit, seq: header.seq, index_tree, ids_tree, event: header.event }))
    }

    /// Write a checkpoint of `space` at its head, unless one covers it already.
    fn write_checkpoint(&mut self, space: &str) -> Result<Option<CheckpointInfo>, Error> {
        let replica = &self.replicas[space];
        let (last, seq) = (replica.checkpoint_seq(), replica.state.seq);
        let Some(event) = replica.state.head.clone() else {
            return Ok(None);
        };
        if seq <= last {
            return Ok(replica.checkpoint.as_ref().map(|c| CheckpointInfo {
                seq: c.seq,
                commit: c.commit.clone(),
                event,
            }));
        }
        if replica.first_seq != last + 1 || replica.commits.len() as u64 != seq - last {
            return Err(Error::Storage(format!(
                "the replica of space {space:?} does not hold the events since its checkpoint"
            )));
        }
        let tail_ids = replica.tail_ids();
        if tail_ids.len() != replica.commits.len() {
            return Err(Error::Storage(format!(
                "the replica of space {space:?} holds {} ids for {} events",
                tail_ids.len(),
                replica.commits.len()
            )));
        }
        let hashes: Vec<u64> = tail_ids.iter().map(|id| crate::idindex::id_hash(id)).collect();
        let entries: Vec<checkpoint::IndexEntry> = (last + 1..=seq)
            .zip(replica.commits.iter().zip(&tail_ids))
            .map(|(seq, (commit, id))| checkpoint::IndexEntry {
                seq,
                commit: gitobj::to_hex(commit),
                id: (*id).clone(),
            })
            .collect();
        let state = replica.state.canonical().into_bytes();
        let at_ms = replica.state.at_ms;
        // An unusable previous checkpoint is replaced by a new chain.
        let previous = replica.checkpoint.clone();
        let expected = replica.checkpoint_tip.clone();
        let index_id = self.write_index(previous.as_ref(), &entries).map_err(IndexError::into_error)?;
        let ids_id = self.write_runs(previous.as_ref(), last + 1, &hashes).map_err(IndexError::into_error)?;
        let state_id = gitobj::object_id(ObjectKind::Blob, &state);
        let root = checkpoint::encode_tree(&[
            ("ids".into(), ObjectKind::Tree, ids_id.clone()),
            ("index".into(), ObjectKind::Tree, index_id.clone()),
            ("state.json".into(), ObjectKind::Blob, state_id.clone()),
        ]);
        let root_id = gitobj::object_id(ObjectKind::Tree, &root);
        let header = checkpoint::Header {
            tree: root_id.clone(),
            parent: previous.as_ref().map(|p| p.commit.clone()),
            space: space.to_owned(),
            seq,
            event: event.clone(),
            state_sha1: checkpoint::sha1_hex(&state),
        };
        let commit = checkpoint::encode_commit(&header, at_ms);
        let commit_id = gitobj::object_id(ObjectKind::Commit, &commit);
        self.write(ObjectKind::Blob, &state, &state_id)?;
        self.write(ObjectKind::Tree, &root, &root_id)?;
        self.write(ObjectKind::Commit, &commit, &commit_id)?;
        let name = checkpoint::checkpoint_ref(space);
        let swap = self.host.compare_and_swap(&name, expected.as_deref(), &commit_id).map_err(storage)?;
        let mut replica =
            self.replicas.remove(space).ok_or_else(|| Error::Storage("replica vanished".into()))?;
        let outcome = match swap {
            Swap::Swapped => {
                replica.adopt(KnownCheckpoint {
                    commit: commit_id.clone(),
                    seq,
                    index_tree: index_id,
                    ids_tree: ids_id,
                    event: event.clone(),
                });
                Some(CheckpointInfo { seq, commit: commit_id, event })
            }
            // Another writer checkpointed first; its checkpoint is as good.
            // Start from it if it is within what this replica has reached.
            Swap::Mismatch(_) => {
                self.adopt_latest_checkpoint(&mut replica);
                None
            }
        };
        self.replicas.insert(space.to_owned(), replica);
        Ok(outcome)
    }

    /// Write a checkpoint of `space` at its head now (if it has events that
    /// no checkpoint covers); report the latest checkpoint.
    pub fn checkpoint(&mut self, space: &str) -> Result<Option<CheckpointInfo>, Error> {
        model::validate_space(space)?;
        self.sync(space)?;
        let written = match self.write_checkpoint(space) {
            Err(Error::Corrupt(problem)) => {
                // The previous checkpoint's index is damaged: replay the log
                // and write a checkpoint that starts a new chain.
                self.warn(format!(
                    "the index of the checkpoint of space {space:?} is unusable ({problem}); replayed the whole log"
                ));
                let tip = self.replicas.get(space).and_then(|r| r.checkpoint_tip.clone());
                self.replicas.insert(space.to_owned(), Replica::new(space, tip));
                self.sync(space)?;
                self.write_checkpoint(space)?
            }
            other => other?,
        };
        if written.is_some() || self.replicas[space].state.head.is_none() {
            return Ok(written);
        }
        // Lost a race on the checkpoint ref: the replica has now adopted the
        // winner's checkpoint, or knows the ref holds one to replace.
        self.sync(space)?;
        if let Some(info) = self.write_checkpoint(space)? {
            return Ok(Some(info));
        }
        let replica = &self.replicas[space];
        Ok(replica.checkpoint.as_ref().map(|c| CheckpointInfo {
            seq: c.seq,
            commit: c.commit.clone(),
            event: c.event.clone(),
        }))
    }

    /// The epoch this host may write `space` with, or why it may not.
    fn writer_epoch(&self, space: &str, head_epoch: u64) -> Result<u64, Error> {
        let now = self.host.now_ms();
        let live = self.host.lease(space).filter(|l| l.expires_at_ms > now);
        match live {
            Some(lease) if lease.holder == self.host.identity() => {
                if lease.epoch < head_epoch {
                    return Err(Error::StaleEpoch { epoch: lease.epoch, head_epoch });
                }
                Ok(lease.epoch)
            }
            holder => Err(Error::NotHolder { space: space.to_owned(), holder }),
        }
    }

    /// Append one intent.
    pub fn append(&mut self, space: &str, raw: &RawIntent) -> Result<Appended, Error> {
        let mut results = self.append_batch(space, std::slice::from_ref(raw))?;
        results.pop().ok_or_else(|| Error::Storage("empty batch result".into()))
    }

    /// Append intents as one unit (one ref update).
    pub fn append_batch(&mut self, space: &str, raws: &[RawIntent]) -> Result<Vec<Appended>, Error> {
        model::validate_space(space)?;
        let intents = raws
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Intent::validate(&r.id, &r.actor, &r.kind, &r.body, r.expect_seq).map_err(|e| match e {
                    Error::Invalid(m) if raws.len() > 1 => Error::Invalid(format!("intent {}: {m}", i + 1)),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if intents.is_empty() {
            return Ok(Vec::new());
        }
        self.sync(space)?;
        // Which ids the log holds already: the tail in memory, older ones
        // through the checkpoint's id index.
        let stored = self.indexed(space, |log, replica| {
            intents.iter().map(|intent| log.find_id(replica, &intent.id)).collect::<Result<Vec<_>, _>>()
        })?;
        let draft = self.draft(space, &intents, stored)?;
        if draft.objects.is_empty() {
            return Ok(draft.results);
        }
        self.commit_draft(space, draft)
    }

    /// Stamp intents on top of the replica's head, checking every rule. The
    /// new events are applied to the replica's state right away (with undo
    /// records): [`Log::commit_draft`] keeps them or takes them back.
    fn draft(
        &mut self,
        space: &str,
        intents: &[Intent],
        stored: Vec<Option<Stored>>,
    ) -> Result<Draft, Error> {
        let mut replica =
            self.replicas.remove(space).ok_or_else(|| Error::Storage("replica vanished".into()))?;
        let mut draft = Draft::default();
        let outcome = self.stamp(&mut replica, space, intents, stored, &mut draft);
        if outcome.is_err() {
            draft.take_back(&mut replica.state);
        }
        self.replicas.insert(space.to_owned(), replica);
        outcome.map(|()| draft)
    }

    fn stamp(
        &self,
        replica: &mut Replica,
        space: &str,
        intents: &[Intent],
        already: Vec<Option<Stored>>,
        d: &mut Draft,
    ) -> Result<(), Error> {
        let mut epoch = None;
        for (intent, already) in intents.iter().zip(already) {
            if let Some(stored) = already {
                if !intent.matches(&stored.event) {
                    return Err(Error::IdConflict(intent.id.clone()));
                }
                d.results.push(Appended { stored, created: false });
                continue;
            }
            if let Some(&at) = d.batch_ids.get(&intent.id) {
                let earlier: &Appended = &d.results[at];
                if !intent.matches(&earlier.stored.event) {
                    return Err(Error::IdConflict(intent.id.clone()));
                }
                let again = Appended { stored: earlier.stored.clone(), created: false };
                d.results.push(again);
                continue;
            }
            let state = &replica.state;
            if let Some(expected) = intent.expect_seq
                && expected != state.seq
            {
                let actual = state.head.as_ref().map(|commit| Head {
                    commit: commit.clone(),
                    seq: state.seq,
                    epoch: state.epoch,
                    at_ms: state.at_ms,
                });
                // Report the committed head, not the draft's.
                let actual = if d.undo.is_empty() { actual } else { d.base.clone() };
                return Err(Error::HeadConflict { expected_seq: expected, actual });
            }
            let epoch = match epoch {
                Some(e) => e,
                None => *epoch.insert(self.writer_epoch(space, state.epoch)?),
            };
            if let Body::Authority { holder, epoch: claimed } = &intent.body
                && (holder != &self.host.identity() || *claimed != epoch)
            {
                return Err(Error::invalid(format!(
                    "an authority event must name this writer's lease ({:?}, epoch {epoch}), not ({holder:?}, epoch {claimed})",
                    self.host.identity()
                )));
            }
            state.check(&intent.body)?;
            if d.undo.is_empty() {
                d.base = replica.head();
            }
            let event = Event {
                space: space.to_owned(),
                seq: state.seq + 1,
                epoch,
                id: intent.id.clone(),
                actor: intent.actor.clone(),
                at_ms: self.host.now_ms().max(state.at_ms),
                kind: intent.kind,
                body: intent.body.clone(),
                body_json: intent.body_json.clone(),
            };
            let encoded = gitobj::encode_event(&event, state.head.as_deref());
            d.undo.push(replica.state.apply_undoable(&event, &encoded.commit_id)?);
            let appended =
                Appended { stored: Stored { event, commit: encoded.commit_id.clone() }, created: true };
            d.batch_ids.insert(intent.id.clone(), d.results.len());
            d.results.push(appended);
            d.objects.push(encoded);
        }
        Ok(())
    }

    /// Write a draft's objects and move the ref with one compare-and-swap;
    /// on any failure take the draft's events back out of the replica.
    fn commit_draft(&mut self, space: &str, mut draft: Draft) -> Result<Vec<Appended>, Error> {
        let base = draft.base.as_ref().map(|h| h.commit.clone());
        let base_seq = draft.base.as_ref().map_or(0, |h| h.seq);
        let outcome = self.write_draft(space, base.as_deref(), &draft);
        if !matches!(outcome, Ok(Swap::Swapped))
            && let Some(replica) = self.replicas.get_mut(space)
        {
            draft.take_back(&mut replica.state);
        }
        match outcome? {
            Swap::Swapped => {
                let replica =
                    self.replicas.get_mut(space).ok_or_else(|| Error::Storage("replica vanished".into()))?;
                for a in draft.results.iter().filter(|a| a.created) {
                    replica.remember(&a.stored.event.id, a.stored.event.seq, &a.stored.commit)?;
                }
                let (seq, last, every) =
                    (replica.state.seq, replica.checkpoint_seq(), self.settings.checkpoint_every);
                if every > 0
                    && seq / every > last / every
                    && let Err(e) = self.write_checkpoint(space)
                {
                    // The append is durable already; a missing checkpoint only costs a replay.
                    self.warn(format!("could not write a checkpoint of space {space:?}: {e}"));
                    if let Error::Corrupt(_) = e {
                        // The previous checkpoint's index is damaged: the next
                        // call replays the log, and the next checkpoint starts
                        // a new chain from it.
                        let tip = self.replicas.get(space).and_then(|r| r.checkpoint_tip.clone());
                        self.replicas.insert(space.to_owned(), Replica::new(space, tip));
                    }
                }
                Ok(draft.results)
            }
            Swap::Mismatch(_) => {
                let actual = self.sync(space)?.head();
                Err(Error::HeadConflict { expected_seq: base_seq, actual })
            }
        }
    }

    fn write_draft(&self, space: &str, base: Option<&str>, draft: &Draft) -> Result<Swap, Error> {
        for o in &draft.objects {
            self.write(ObjectKind::Blob, &o.blob, &o.blob_id)?;
            self.write(ObjectKind::Tree, &o.tree, &o.tree_id)?;
            self.write(ObjectKind::Commit, &o.commit, &o.commit_id)?;
        }
        let new_head = draft.objects.last().map(|o| o.commit_id.clone()).unwrap_or_default();
        self.host.compare_and_swap(&model::space_ref(space), base, &new_head).map_err(storage)
    }

    /// Events with `seq >= from`, at most `limit`.
    pub fn events(&mut self, space: &str, from: u64, limit: u32) -> Result<Vec<Stored>, Error> {
        model::validate_space(space)?;
        self.sync(space)?;
        let first = from.max(1);
        self.indexed(space, |log, replica| {
            let last = replica.state.seq.min(first.saturating_add(u64::from(limit)).saturating_sub(1));
            (first..=last).map(|seq| log.stored_at(replica, seq)).collect()
        })
    }

    /// The newest event's position.
    pub fn head(&mut self, space: &str) -> Result<Option<Head>, Error> {
        model::validate_space(space)?;
        Ok(self.sync(space)?.head())
    }

    /// The fold of a space, at its head or at a position.
    pub fn fold_state(&mut self, space: &str, at: Option<&Position>) -> Result<State, Error> {
        model::validate_space(space)?;
        self.sync(space)?;
        let replica = &self.replicas[space];
        let head_seq = replica.state.seq;
        let upto = match at {
            None => return Ok(replica.state.clone()),
            Some(Position::Seq(seq)) if *seq <= head_seq => *seq,
            Some(Position::Seq(seq)) => {
                return Err(Error::NotFound(format!(
                    "space {space:?} has {head_seq} events; there is no seq {seq}"
                )));
            }
            Some(Position::Commit(commit)) => {
                let not_found =
                    || Error::NotFound(format!("commit {commit} is not an event of space {space:?}"));
                // The event in the commit names its seq; the commit is ours
                // if that seq's commit is this one.
                let seq = match self.load(commit) {
                    Ok((event, _)) if event.space == space && event.seq <= head_seq => event.seq,
                    _ => return Err(not_found()),
                };
                if self.indexed(space, |log, replica| log.seq_commit(replica, seq))? != *commit {
                    return Err(not_found());
                }
                seq
            }
        };
        self.indexed(space, |log, replica| {
            let mut state = State::new(space);
            for seq in 1..=upto {
                let stored = log.stored_at(replica, seq)?;
                state.apply(&stored.event, &stored.commit)?;
            }
            Ok(state)
        })
    }

    /// The fold of a space as canonical JSON.
    pub fn fold(&mut self, space: &str, at: Option<&Position>) -> Result<String, Error> {
        Ok(self.fold_state(space, at)?.canonical())
    }

    fn states(&mut self, spaces: &[String]) -> Result<Vec<State>, Error> {
        if spaces.is_empty() {
            return Err(Error::invalid("no spaces given; name at least one"));
        }
        let mut seen = HashSet::new();
        spaces
            .iter()
            .map(|s| {
                if !seen.insert(s) {
                    return Err(Error::invalid(format!("space {s:?} is listed twice")));
                }
                self.fold_state(s, None)
            })
            .collect()
    }

    /// Several spaces overlaid: the first to decide a key wins.
    pub fn overlay(&mut self, spaces: &[String]) -> Result<String, Error> {
        let states = self.states(spaces)?;
        Ok(crate::canonical::to_canonical_string(&fold::overlay(&states)))
    }

    /// Several spaces side by side, with their disagreements.
    pub fn union(&mut self, spaces: &[String]) -> Result<String, Error> {
        let states = self.states(spaces)?;
        Ok(crate::canonical::to_canonical_string(&fold::union(&states)))
    }

    /// Every space with at least one event.
    pub fn spaces(&self) -> Result<Vec<String>, Error> {
        let refs = self.host.list_refs(model::SPACE_REF_PREFIX).map_err(storage)?;
        let mut names: Vec<String> = refs
            .into_iter()
            .filter_map(|(name, _)| name.strip_prefix(model::SPACE_REF_PREFIX).map(str::to_owned))
            .filter(|name| model::validate_space(name).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Replay exported events into `space`; see the WIT `import`.
    pub fn import(&mut self, space: &str, lines: &[String]) -> Result<ImportReport, Error> {
        model::validate_space(space)?;
        let line_error = |n: usize, m: String| Error::Invalid(format!("line {n}: {m}"));
        let mut check = Replica::new(space, None);
        let mut events = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let n = i + 1;
            let event = Event::parse(line).map_err(|e| line_error(n, e))?;
            if event.space != space {
                return Err(line_error(
                    n,
                    format!("the event belongs to space {:?}, not {space:?}", event.space),
                ));
            }
            if event.seq != n as u64 {
                return Err(line_error(
                    n,
                    format!("seq is {}, expected {n}: lines must be seq 1, 2, 3, … in order", event.seq),
                ));
            }
            let encoded = gitobj::encode_event(&event, check.state.head.as_deref());
            check.push(&event, &encoded.commit_id).map_err(|e| match e {
                Error::Corrupt(m) => line_error(n, m),
                other => line_error(n, other.to_string()),
            })?;
            events.push((event, encoded));
        }
        self.sync(space)?;
        let existing = self.replicas[space].state.seq as usize;
        let differs = self.indexed(space, |log, replica| {
            for (i, (_, encoded)) in events.iter().enumerate().take(existing) {
                if log.seq_commit(replica, i as u64 + 1)? != encoded.commit_id {
                    return Ok(Some(i + 1));
                }
            }
            Ok(None)
        })?;
        if let Some(n) = differs {
            return Err(line_error(
                n,
                format!(
                    "space {space:?} already holds a different event at seq {n}; import only extends an identical history"
                ),
            ));
        }
        let total = events.len() as u64;
        let fresh: Vec<_> = events.into_iter().skip(existing).collect();
        if fresh.is_empty() {
            let head = self.replicas[space].head();
            return Ok(ImportReport { total, skipped: total, written: 0, head });
        }
        let head_epoch = self.replicas[space].state.epoch;
        match self.writer_epoch(space, head_epoch) {
            Ok(_) | Err(Error::StaleEpoch { .. }) => {}
            Err(e) => return Err(e),
        }
        let replica =
            self.replicas.get_mut(space).ok_or_else(|| Error::Storage("replica vanished".into()))?;
        let mut draft = Draft { base: replica.head(), ..Draft::default() };
        for (event, encoded) in fresh {
            match replica.state.apply_undoable(&event, &encoded.commit_id) {
                Ok(undo) => draft.undo.push(undo),
                Err(e) => {
                    draft.take_back(&mut replica.state);
                    return Err(e);
                }
            }
            draft.results.push(Appended {
                stored: Stored { event, commit: encoded.commit_id.clone() },
                created: true,
            });
            draft.objects.push(encoded);
        }
        let written = draft.results.len() as u64;
        self.commit_draft(space, draft)?;
        let head = self.replicas[space].head();
        Ok(ImportReport { total, skipped: total - written, written, head })
    }
}
