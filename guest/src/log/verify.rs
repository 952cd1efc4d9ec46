//! `verify`: walk a space's whole chain trusting nothing cached, then check
//! every checkpoint against it — its state, its index segments and its id
//! runs (rebuilt from the chain and compared by tree id). Segments and runs
//! that several checkpoints share are checked once.
//!
//! Memory stays small for any log length: a first pass walks back from the
//! head reading commits only; a second pass verifies the events oldest
//! first, folding as it goes and comparing each checkpoint's state when its
//! seq is reached. What is kept per event is its commit id and its id's
//! 64-bit hash (28 bytes) and an entry of the duplicate-id map (about 100
//! MiB per million events in all), never the events.

use std::collections::{BTreeMap, HashMap};

use super::ctx::Ctx;
use super::index::mismatched_runs;
use super::paging;
use super::{Log, VerifyReport, storage};
use crate::checkpoint;
use crate::error::Error;
use crate::fold::State;
use crate::gitobj;
use crate::host::{Host, ObjectKind};
use crate::idindex;
use crate::model::{self, Event};
use crate::pages;

/// A segment as checked: the seqs it covers, or what is wrong with it.
type SegmentCheck = Result<(u64, u64), String>;

/// What `verify` keeps of the chain: per seq (index seq - 1), the commit
/// and the hash of the event's id.
struct Chain {
    commits: Vec<[u8; 20]>,
    id_hashes: Vec<u64>,
}

impl Chain {
    fn commit(&self, seq: u64) -> Option<String> {
        seq.checked_sub(1).and_then(|i| self.commits.get(i as usize)).map(|c| gitobj::to_hex(c))
    }
}

/// The seqs seen per id hash: one inline, more only for colliding hashes.
#[derive(Default)]
struct Seen {
    first: HashMap<u64, u64>,
    more: HashMap<u64, Vec<u64>>,
}

impl Seen {
    fn seqs(&self, hash: u64) -> Vec<u64> {
        let mut out: Vec<u64> = self.first.get(&hash).copied().into_iter().collect();
        out.extend(self.more.get(&hash).into_iter().flatten());
        out
    }

    fn insert(&mut self, hash: u64, seq: u64) {
        match self.first.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => self.more.entry(hash).or_default().push(seq),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(seq);
            }
        }
    }
}

impl<H: Host> Log<H> {
    /// Walk the whole chain, trusting nothing cached, and report every
    /// broken invariant.
    pub fn verify(&mut self, space: &str) -> Result<VerifyReport, Error> {
        model::validate_space(space)?;
        self.ctx.verify(space)
    }
}

impl<H: Host> Ctx<H> {
    /// [`Log::verify`] needs no replica: it trusts nothing cached.
    fn verify(&self, space: &str) -> Result<VerifyReport, Error> {
        let head = self.host.read_ref(&model::space_ref(space)).map_err(storage)?;
        let mut problems = Vec::new();
        // Pass 1: the commits, newest first, each checked against its id.
        let mut commits = Vec::new();
        let mut cursor = head.clone();
        while let Some(commit) = cursor.take() {
            let links = self
                .fetch_checked(&commit, ObjectKind::Commit)
                .and_then(|bytes| gitobj::decode_commit(&bytes).map_err(|e| format!("commit {commit}: {e}")));
            match (links, gitobj::hex_to_bytes(&commit)) {
                (Ok(links), Some(id)) => {
                    commits.push(id);
                    cursor = links.parent;
                }
                (Err(problem), _) => {
                    problems.push(problem);
                    break;
                }
                (_, None) => {
                    problems.push(format!("{commit:?} is not an object id"));
                    break;
                }
            }
        }
        commits.reverse();
        let total = commits.len();
        let chain_walked = problems.is_empty();
        let checkpoints = self.checkpoint_chain(space, &mut problems);
        // Which checkpoints cover each seq, to compare states on the way.
        let mut due: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, header) in checkpoints.iter().enumerate() {
            due.entry(header.seq).or_default().push(i);
        }
        // Pass 2: every event, oldest first, checked and folded.
        // The commits walked, and the id hashes of those verified so far.
        let mut chain = Chain { commits, id_hashes: Vec::with_capacity(total) };
        if chain_walked {
            let mut state = State::new(space);
            let mut seen = Seen::default();
            for i in 0..total {
                let commit = gitobj::to_hex(&chain.commits[i]);
                let seq = i as u64 + 1;
                let event = match self.verify_event(&commit, &chain, &mut seen, &mut state) {
                    Ok(event) => event,
                    Err(problem) => {
                        problems.push(format!("seq {seq}: {problem}"));
                        break;
                    }
                };
                chain.id_hashes.push(idindex::id_hash(&event.id));
                for &c in due.get(&seq).into_iter().flatten() {
                    let header = &checkpoints[c];
                    let at = format!("checkpoint at seq {}", header.seq);
                    if let Err(e) = self.check_checkpoint_state(header, &state) {
                        problems.push(format!("{at}: {e}"));
                    }
                }
            }
        }
        let mut segments = HashMap::new();
        let mut runs = HashMap::new();
        if chain.id_hashes.len() < total {
            // The chain itself is broken: what the checkpoints say cannot
            // be compared with it.
            return Ok(VerifyReport { space: space.to_owned(), events: total as u64, head, problems });
        }
        for header in &checkpoints {
            let at = format!("checkpoint at seq {}", header.seq);
            let Some(commit) = chain.commit(header.seq) else {
                problems.push(format!("{at}: the space has only {total} events"));
                continue;
            };
            if commit != header.event {
                problems
                    .push(format!("{at}: names event {} but seq {} is {commit}", header.event, header.seq));
            }
            let entries = match self.tree(&header.tree) {
                Ok(entries) => entries,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let find = |name: &str, dir: bool| checkpoint::find_entry(&entries, name, dir);
            match find("index", true) {
                Some(index) => {
                    if let Err(e) = self.verify_index(&index, header.seq, &chain, &mut segments) {
                        problems.push(format!("{at}: its index does not match the events: {e}"));
                    }
                }
                None => problems.push(format!("{at}: it has no index")),
            }
            // Checkpoints written before the id index have no `ids/`; a
            // reader replays instead of using them, so they are not wrong.
            if let Some(ids_tree) = find("ids", true) {
                match self.run_list(&ids_tree, header.seq) {
                    Ok(listed) => {
                        let bad = mismatched_runs(&listed, &chain.id_hashes, &mut runs);
                        if !bad.is_empty() {
                            problems.push(format!(
                                "{at}: its id runs {} do not match the events",
                                bad.join(", ")
                            ));
                        }
                    }
                    Err(e) => problems.push(format!("{at}: its id index: {}", e.into_error())),
                }
            }
        }
        Ok(VerifyReport { space: space.to_owned(), events: total as u64, head, problems })
    }

    /// An object's bytes, checked to hash to its id.
    fn fetch_checked(&self, id: &str, kind: ObjectKind) -> Result<Vec<u8>, String> {
        let data = self.read(id, kind).map_err(|e| e.to_string())?;
        let actual = gitobj::object_id(kind, &data);
        if actual != id {
            return Err(format!("{} {id} hashes to {actual}", kind.as_str()));
        }
        Ok(data)
    }

    /// Check the event in `commit` down to its bytes and against the chain
    /// so far (its parent, a new id, the fold's rules), and fold it.
    fn verify_event(
        &self,
        commit: &str,
        chain: &Chain,
        seen: &mut Seen,
        state: &mut State,
    ) -> Result<Event, String> {
        let (event, parent) = self.verify_commit(commit)?;
        let seq = chain.id_hashes.len() as u64 + 1;
        if parent != chain.commit(seq - 1) {
            return Err(format!("commit {commit} does not follow seq {}", seq - 1));
        }
        if event.space != state.space {
            return Err(format!("commit {commit} holds an event of space {:?}", event.space));
        }
        let hash = idindex::id_hash(&event.id);
        for earlier in seen.seqs(hash) {
            // Equal 64-bit hashes: compare the ids themselves.
            let earlier_commit = chain.commit(earlier).unwrap_or_default();
            let (earlier_event, _) = self.load(&earlier_commit).map_err(|e| e.to_string())?;
            if earlier_event.id == event.id {
                return Err(format!(
                    "event seq {} repeats the id {:?} of seq {earlier}",
                    event.seq, event.id
                ));
            }
        }
        seen.insert(hash, seq);
        state.apply(&event, commit).map_err(|e| match e {
            Error::Corrupt(m) => m,
            other => format!("event seq {} does not apply: {other}", event.seq),
        })?;
        Ok(event)
    }

    /// Every checkpoint of `space`, newest first.
    fn checkpoint_chain(&self, space: &str, problems: &mut Vec<String>) -> Vec<checkpoint::Header> {
        let mut out = Vec::new();
        let mut cursor = match self.host.read_ref(&checkpoint::checkpoint_ref(space)) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("cannot read the checkpoint ref: {e}"));
                return out;
            }
        };
        while let Some(commit) = cursor.take() {
            let header = self
                .read(&commit, ObjectKind::Commit)
                .map_err(|e| e.to_string())
                .and_then(|bytes| checkpoint::decode_commit(&bytes));
            match header {
                Ok(header) => {
                    cursor = header.parent.clone();
                    out.push(header);
                }
                Err(e) => {
                    problems.push(format!("checkpoint commit {commit}: {e}"));
                    break;
                }
            }
        }
        out
    }

    /// Check a checkpoint's stored fold against `state`, the fold at its
    /// seq: its `head.json` and pages (rebuilt from `state` and compared by
    /// tree id: pages depend only on the records), or an older dlog's
    /// `state.json`.
    fn check_checkpoint_state(&self, header: &checkpoint::Header, state: &State) -> Result<(), String> {
        let entries = self.tree(&header.tree).map_err(|e| e.to_string())?;
        let find = |name: &str, dir: bool| checkpoint::find_entry(&entries, name, dir);
        let (name, expected) = match find("head.json", false) {
            Some(_) => ("head.json", state.head_only().canonical()),
            None => ("state.json", state.canonical()),
        };
        let id = find(name, false).ok_or(format!("no {name}"))?;
        let bytes = self.read(&id, ObjectKind::Blob).map_err(|e| e.to_string())?;
        if checkpoint::sha1_hex(&bytes) != header.state_sha1 {
            return Err(format!("{name} does not match its Dlog-State-Sha1"));
        }
        if bytes != expected.as_bytes() {
            return Err(format!("its {name} differs from the fold at seq {}", state.seq));
        }
        if name == "head.json" {
            let stored = find("pages", true).ok_or("no pages")?;
            let (mut lasts, mut blobs) = (Vec::new(), Vec::new());
            for page in pages::chunk(pages::records_of(state)) {
                lasts.push(page.keys().last().cloned().unwrap_or_default());
                let bytes = pages::encode_page(&page);
                blobs.push((gitobj::object_id(ObjectKind::Blob, &bytes), bytes));
            }
            let ids: Vec<String> = blobs.iter().map(|(id, _)| id.clone()).collect();
            let (tree, (fences, fences_id)) = paging::pages_tree(&lasts, &ids);
            if gitobj::object_id(ObjectKind::Tree, &tree) != stored {
                return Err(format!("its pages differ from the fold at seq {}", state.seq));
            }
            // Equal ids say what the pages should hold; reading them says the
            // repository still has them, as readers will need them.
            if self.read(&stored, ObjectKind::Tree).map_err(|e| format!("its pages cannot be read: {e}"))?
                != tree
            {
                return Err(format!("its pages tree {stored} does not hold what its id names"));
            }
            for (id, bytes) in std::iter::once((fences_id, fences)).chain(blobs) {
                match self.read(&id, ObjectKind::Blob) {
                    Ok(stored) if stored == bytes => {}
                    Ok(_) => return Err(format!("its page blob {id} does not hold what its id names")),
                    Err(e) => return Err(format!("its pages cannot be read: {e}")),
                }
            }
        }
        Ok(())
    }

    /// Check that an `index/` tree's segments hold exactly (seq, commit, id)
    /// of seqs 1..=`seq` of the chain. Accepts both layouts: segments in
    /// groups, and the flat one of checkpoints written before groups.
    fn verify_index(
        &self,
        index: &str,
        seq: u64,
        chain: &Chain,
        checked: &mut HashMap<String, SegmentCheck>,
    ) -> Result<(), String> {
        let tree = |id: &str| self.tree(id).map_err(|e| e.to_string());
        let mut segments = Vec::new();
        // Each group's name must be the first seq its segments cover: readers
        // find a seq's group by it.
        let mut group_starts = Vec::new();
        for (name, is_dir, id) in tree(index)? {
            if is_dir {
                let first = checkpoint::parse_group_name(&name).ok_or(format!("{name:?} is not a group"))?;
                let mut lowest = None;
                for (name, is_dir, id) in tree(&id)? {
                    let last = checkpoint::parse_segment_name(&name).unwrap_or(0);
                    lowest = lowest.min(Some(last)).or(Some(last));
                    segments.push((name, is_dir, id));
                }
                group_starts.push((name, first, lowest));
            } else {
                segments.push((name, is_dir, id));
            }
        }
        let mut named = Vec::new();
        for (name, is_dir, id) in segments {
            match checkpoint::parse_segment_name(&name) {
                Some(last) if !is_dir => named.push((last, id)),
                _ => return Err(format!("{name:?} is not a segment")),
            }
        }
        named.sort();
        let mut next = 1;
        // The first seq of each segment, by its last.
        let mut starts_at = HashMap::new();
        for (last, blob) in named {
            starts_at.insert(last, next);
            let range =
                checked.entry(blob.clone()).or_insert_with(|| self.verify_segment(&blob, chain)).clone()?;
            if range != (next, last) {
                return Err(format!(
                    "segment {} holds seqs {}..={}, expected {next}..={last}",
                    checkpoint::segment_name(last),
                    range.0,
                    range.1
                ));
            }
            next = last + 1;
        }
        if next != seq + 1 {
            return Err(format!("the segments end at seq {}", next - 1));
        }
        for (name, first, lowest) in group_starts {
            let starts = lowest.and_then(|last| starts_at.get(&last)).copied();
            if starts != Some(first) {
                return Err(format!("group {name} does not start at seq {first}"));
            }
        }
        Ok(())
    }

    /// The seqs a segment covers, if its lines match the chain (ids by
    /// their 64-bit hashes).
    fn verify_segment(&self, blob: &str, chain: &Chain) -> SegmentCheck {
        let bytes = self.read(blob, ObjectKind::Blob).map_err(|e| e.to_string())?;
        let entries = checkpoint::decode_segment(&bytes)?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(format!("segment {blob} is empty"));
        };
        for (i, entry) in entries.iter().enumerate() {
            let matches = entry.seq == first.seq + i as u64
                && chain.commit(entry.seq).as_deref() == Some(entry.commit.as_str())
                && entry.seq.checked_sub(1).and_then(|i| chain.id_hashes.get(i as usize))
                    == Some(&idindex::id_hash(&entry.id));
            if !matches {
                return Err(format!("segment {blob}'s line for seq {} differs from the event", entry.seq));
            }
        }
        Ok((first.seq, last.seq))
    }

    /// Check one commit down to its bytes: ids, encoding, canonical JSON.
    fn verify_commit(&self, commit: &str) -> Result<(Event, Option<String>), String> {
        let fetch = |id: &str, kind: ObjectKind| self.fetch_checked(id, kind);
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
}
