//! The log's operations over a [`Host`]: append, read, fold, verify, import.
//!
//! A [`Log`] keeps, per space, a *replica*: the fold at some head commit plus
//! the commit of every seq and the seq of every id. It is a cache in the
//! strict sense: keyed by the head's content-addressed id, refreshed from the
//! ref on every call (walking back only to the commit it already knows), and
//! dropped whenever anything about it is in doubt. The log in storage is
//! always the authority.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::{Error, Head};
use crate::fold::{self, State};
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

#[derive(Debug)]
struct Replica {
    state: State,
    commits: Vec<String>,
    ids: HashMap<String, u64>,
}

impl Replica {
    fn new(space: &str) -> Replica {
        Replica { state: State::new(space), commits: Vec::new(), ids: HashMap::new() }
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
        self.ids.insert(event.id.clone(), event.seq);
        self.commits.push(commit.to_owned());
        Ok(())
    }
}

/// Events being stamped on top of a head, not yet stored.
struct Draft {
    state: State,
    objects: Vec<EncodedEvent>,
    results: Vec<Appended>,
    batch_ids: HashMap<String, usize>,
}

/// The decision log over a host.
#[derive(Debug)]
pub struct Log<H> {
    host: H,
    replicas: BTreeMap<String, Replica>,
}

fn storage(e: String) -> Error {
    Error::Storage(e)
}

impl<H: Host> Log<H> {
    /// A log over `host`, with nothing cached yet.
    pub fn new(host: H) -> Log<H> {
        Log { host, replicas: BTreeMap::new() }
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.host
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

    /// Load the event stored in `commit`, and the commit's parent.
    fn load(&self, commit: &str) -> Result<(Event, Option<String>), Error> {
        let bytes = self.read(commit, ObjectKind::Commit)?;
        let links =
            gitobj::decode_commit(&bytes).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))?;
        let tree = self.read(&links.tree, ObjectKind::Tree)?;
        let blob_id =
            gitobj::decode_tree(&tree).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))?;
        let blob = self.read(&blob_id, ObjectKind::Blob)?;
        let text =
            String::from_utf8(blob).map_err(|_| Error::corrupt(format!("blob {blob_id} is not UTF-8")))?;
        let event = Event::parse(&text).map_err(|e| Error::corrupt(format!("commit {commit}: {e}")))?;
        Ok((event, links.parent))
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
        let mut replica = self.replicas.remove(space).unwrap_or_else(|| Replica::new(space));
        if replica.state.head != head {
            let mut tail = Vec::new();
            let mut cursor = head;
            let mut reached_known = false;
            while let Some(commit) = cursor {
                if replica.state.head.as_ref() == Some(&commit) {
                    reached_known = true;
                    break;
                }
                let (event, parent) = self.load(&commit)?;
                tail.push((event, commit));
                cursor = parent;
            }
            if !reached_known {
                // Not a descendant of what we knew (or nothing known): start over.
                replica = Replica::new(space);
            }
            for (event, commit) in tail.iter().rev() {
                replica.push(event, commit)?;
            }
        }
        Ok(self.replicas.entry(space.to_owned()).or_insert(replica))
    }

    fn stored(&self, replica: &Replica, seq: u64) -> Result<Stored, Error> {
        let commit = &replica.commits[(seq - 1) as usize];
        let (event, _) = self.load(commit)?;
        Ok(Stored { event, commit: commit.clone() })
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
        let draft = self.draft(space, &intents)?;
        if draft.objects.is_empty() {
            return Ok(draft.results);
        }
        self.commit_draft(space, draft)
    }

    /// Stamp intents on top of the replica's head, checking every rule.
    fn draft(&self, space: &str, intents: &[Intent]) -> Result<Draft, Error> {
        let replica = &self.replicas[space];
        let mut draft: Option<Draft> = None;
        let mut results = Vec::new();
        let mut epoch = None;
        for intent in intents {
            if let Some(&seq) = replica.ids.get(&intent.id) {
                let stored = self.stored(replica, seq)?;
                if !intent.matches(&stored.event) {
                    return Err(Error::IdConflict(intent.id.clone()));
                }
                results.push(Appended { stored, created: false });
                continue;
            }
            let d = draft.get_or_insert_with(|| Draft {
                state: replica.state.clone(),
                objects: Vec::new(),
                results: Vec::new(),
                batch_ids: HashMap::new(),
            });
            if let Some(&at) = d.batch_ids.get(&intent.id) {
                let earlier: &Appended = &d.results[at];
                if !intent.matches(&earlier.stored.event) {
                    return Err(Error::IdConflict(intent.id.clone()));
                }
                let again = Appended { stored: earlier.stored.clone(), created: false };
                results.push(again);
                continue;
            }
            if let Some(expected) = intent.expect_seq
                && expected != d.state.seq
            {
                return Err(Error::HeadConflict { expected_seq: expected, actual: replica.head() });
            }
            let epoch = match epoch {
                Some(e) => e,
                None => *epoch.insert(self.writer_epoch(space, replica.state.epoch)?),
            };
            if let Body::Authority { holder, epoch: claimed } = &intent.body
                && (holder != &self.host.identity() || *claimed != epoch)
            {
                return Err(Error::invalid(format!(
                    "an authority event must name this writer's lease ({:?}, epoch {epoch}), not ({holder:?}, epoch {claimed})",
                    self.host.identity()
                )));
            }
            d.state.check(&intent.body)?;
            let event = Event {
                space: space.to_owned(),
                seq: d.state.seq + 1,
                epoch,
                id: intent.id.clone(),
                actor: intent.actor.clone(),
                at_ms: self.host.now_ms().max(d.state.at_ms),
                kind: intent.kind,
                body: intent.body.clone(),
                body_json: intent.body_json.clone(),
            };
            let encoded = gitobj::encode_event(&event, d.state.head.as_deref());
            d.state.apply(&event, &encoded.commit_id)?;
            let appended =
                Appended { stored: Stored { event, commit: encoded.commit_id.clone() }, created: true };
            d.batch_ids.insert(intent.id.clone(), d.results.len());
            d.results.push(appended.clone());
            d.objects.push(encoded);
            results.push(appended);
        }
        Ok(match draft {
            Some(mut d) => {
                d.results = results;
                d
            }
            None => Draft {
                state: replica.state.clone(),
                objects: Vec::new(),
                results,
                batch_ids: HashMap::new(),
            },
        })
    }

    /// Write a draft's objects and move the ref with one compare-and-swap.
    fn commit_draft(&mut self, space: &str, draft: Draft) -> Result<Vec<Appended>, Error> {
        let base = self.replicas[space].state.head.clone();
        let base_seq = self.replicas[space].state.seq;
        for o in &draft.objects {
            self.write(ObjectKind::Blob, &o.blob, &o.blob_id)?;
            self.write(ObjectKind::Tree, &o.tree, &o.tree_id)?;
            self.write(ObjectKind::Commit, &o.commit, &o.commit_id)?;
        }
        let new_head = draft.objects.last().map(|o| o.commit_id.clone()).unwrap_or_default();
        match self
            .host
            .compare_and_swap(&model::space_ref(space), base.as_deref(), &new_head)
            .map_err(storage)?
        {
            Swap::Swapped => {
                let replica =
                    self.replicas.get_mut(space).ok_or_else(|| Error::Storage("replica vanished".into()))?;
                for a in draft.results.iter().filter(|a| a.created) {
                    replica.ids.insert(a.stored.event.id.clone(), a.stored.event.seq);
                    replica.commits.push(a.stored.commit.clone());
                }
                replica.state = draft.state;
                Ok(draft.results)
            }
            Swap::Mismatch(_) => {
                let actual = self.sync(space)?.head();
                Err(Error::HeadConflict { expected_seq: base_seq, actual })
            }
        }
    }

    /// Events with `seq >= from`, at most `limit`.
    pub fn events(&mut self, space: &str, from: u64, limit: u32) -> Result<Vec<Stored>, Error> {
        model::validate_space(space)?;
        self.sync(space)?;
        let replica = &self.replicas[space];
        let first = from.max(1);
        let last = replica.state.seq.min(first.saturating_add(u64::from(limit)).saturating_sub(1));
        (first..=last).map(|seq| self.stored(replica, seq)).collect()
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
        let upto = match at {
            None => return Ok(replica.state.clone()),
            Some(Position::Seq(seq)) if *seq <= replica.state.seq => *seq,
            Some(Position::Seq(seq)) => {
                return Err(Error::NotFound(format!(
                    "space {space:?} has {} events; there is no seq {seq}",
                    replica.state.seq
                )));
            }
            Some(Position::Commit(commit)) => match replica.commits.iter().position(|c| c == commit) {
                Some(index) => index as u64 + 1,
                None => {
                    return Err(Error::NotFound(format!(
                        "commit {commit} is not an event of space {space:?}"
                    )));
                }
            },
        };
        let mut state = State::new(space);
        for seq in 1..=upto {
            let stored = self.stored(replica, seq)?;
            state.apply(&stored.event, &stored.commit)?;
        }
        Ok(state)
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

    /// Walk the whole chain, trusting nothing cached, and report every
    /// broken invariant.
    pub fn verify(&mut self, space: &str) -> Result<VerifyReport, Error> {
        model::validate_space(space)?;
        let head = self.host.read_ref(&model::space_ref(space)).map_err(storage)?;
        let mut problems = Vec::new();
        let mut chain = Vec::new();
        let mut cursor = head.clone();
        while let Some(commit) = cursor.take() {
            match self.verify_commit(&commit) {
                Ok((event, parent)) => {
                    chain.push((event, commit));
                    cursor = parent;
                }
                Err(problem) => {
                    problems.push(problem);
                    break;
                }
            }
        }
        chain.reverse();
        let mut replica = Replica::new(space);
        if problems.is_empty() {
            for (event, commit) in &chain {
                if let Err(e) = replica.push(event, commit) {
                    problems.push(format!("seq {}: {e}", event.seq));
                    break;
                }
            }
        }
        Ok(VerifyReport { space: space.to_owned(), events: chain.len() as u64, head, problems })
    }

    /// Check one commit down to its bytes: ids, encoding, canonical JSON.
    fn verify_commit(&self, commit: &str) -> Result<(Event, Option<String>), String> {
        let fetch = |id: &str, kind: ObjectKind| -> Result<Vec<u8>, String> {
            let data = self.read(id, kind).map_err(|e| e.to_string())?;
            let actual = gitobj::object_id(kind, &data);
            if actual != id {
                return Err(format!("{} {id} hashes to {actual}", kind.as_str()));
            }
            Ok(data)
        };
        let bytes = fetch(commit, ObjectKind::Commit)?;
        let links = gitobj::decode_commit(&bytes).map_err(|e| format!("commit {commit}: {e}"))?;
        let tree = fetch(&links.tree, ObjectKind::Tree)?;
        let blob_id = gitobj::decode_tree(&tree).map_err(|e| format!("commit {commit}: {e}"))?;
        let blob = fetch(&blob_id, ObjectKind::Blob)?;
        let text = String::from_utf8(blob).map_err(|_| format!("blob {blob_id} is not UTF-8"))?;
        let event = Event::parse(&text).map_err(|e| format!("commit {commit}: {e}"))?;
        let encoded = gitobj::encode_event(&event, links.parent.as_deref());
        if encoded.commit != bytes {
            return Err(format!(
                "commit {commit} (seq {}) is not the encoding of its event; it was altered or written by another tool",
                event.seq
            ));
        }
        Ok((event, links.parent))
    }

    /// Replay exported events into `space`; see the WIT `import`.
    pub fn import(&mut self, space: &str, lines: &[String]) -> Result<ImportReport, Error> {
        model::validate_space(space)?;
        let line_error = |n: usize, m: String| Error::Invalid(format!("line {n}: {m}"));
        let mut check = Replica::new(space);
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
        for (i, (_, encoded)) in events.iter().enumerate().take(existing) {
            if self.replicas[space].commits[i] != encoded.commit_id {
                return Err(line_error(
                    i + 1,
                    format!(
                        "space {space:?} already holds a different event at seq {}; import only extends an identical history",
                        i + 1
                    ),
                ));
            }
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
        let mut state = self.replicas[space].state.clone();
        let mut results = Vec::with_capacity(fresh.len());
        let mut objects = Vec::with_capacity(fresh.len());
        for (event, encoded) in fresh {
            state.apply(&event, &encoded.commit_id)?;
            results.push(Appended {
                stored: Stored { event, commit: encoded.commit_id.clone() },
                created: true,
            });
            objects.push(encoded);
        }
        let written = results.len() as u64;
        let draft = Draft { state, objects, results, batch_ids: HashMap::new() };
        self.commit_draft(space, draft)?;
        let head = self.replicas[space].head();
        Ok(ImportReport { total, skipped: total - written, written, head })
    }
}
