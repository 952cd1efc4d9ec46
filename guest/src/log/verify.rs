//! `verify`: walk a space's whole chain trusting nothing cached, then check
//! every checkpoint against it — its state, its index segments and its id
//! runs (rebuilt from the chain and compared by tree id). Segments and runs
//! that several checkpoints share are checked once.

use std::collections::{BTreeSet, HashMap};

use super::index::mismatched_runs;
use super::{Log, Replica, VerifyReport, storage};
use crate::checkpoint;
use crate::error::Error;
use crate::gitobj;
use crate::host::{Host, ObjectKind};
use crate::model::{self, Event};

/// A segment as checked: the seqs it covers, or what is wrong with it.
type SegmentCheck = Result<(u64, u64), String>;

impl<H: Host> Log<H> {
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
        let checkpoints = self.checkpoint_chain(space, &mut problems);
        let wanted: BTreeSet<u64> = checkpoints.iter().map(|h| h.seq).collect();
        let mut states = HashMap::new();
        let mut replica = Replica::new(space, None);
        if problems.is_empty() {
            for (event, commit) in &chain {
                if let Err(e) = replica.push(event, commit) {
                    problems.push(format!("seq {}: {e}", event.seq));
                    break;
                }
                if wanted.contains(&event.seq) {
                    states.insert(event.seq, replica.state.canonical());
                }
            }
        }
        let ids: Vec<String> = chain.iter().map(|(e, _)| e.id.clone()).collect();
        let mut segments = HashMap::new();
        let mut runs = HashMap::new();
        for header in &checkpoints {
            let at = format!("checkpoint at seq {}", header.seq);
            let Some((event, commit)) = chain.get(header.seq.wrapping_sub(1) as usize) else {
                problems.push(format!("{at}: the space has only {} events", chain.len()));
                continue;
            };
            if *commit != header.event {
                problems
                    .push(format!("{at}: names event {} but seq {} is {commit}", header.event, event.seq));
            }
            let entries = match self.checkpoint_entries(header) {
                Ok(entries) => entries,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let find = |name: &str, dir: bool| {
                entries.iter().find(|(n, d, _)| n == name && *d == dir).map(|(_, _, id)| id.clone())
            };
            match self.checkpoint_state(header, find("state.json", false)) {
                Ok(bytes) if states.get(&header.seq).is_some_and(|s| s.as_bytes() == bytes) => {}
                Ok(_) => {
                    problems.push(format!("{at}: its state.json differs from the fold at seq {}", header.seq))
                }
                Err(e) => problems.push(format!("{at}: {e}")),
            }
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
                        let bad = mismatched_runs(&listed, &ids, &mut runs);
                        if !bad.is_empty() {
                            problems.push(format!(
                                "{at}: its id runs {} do not match the events",
                                bad.join(", ")
                            ));
                        }
                    }
                    Err(super::index::IndexError::Damaged(e)) => {
                        problems.push(format!("{at}: its id index: {e}"))
                    }
                    Err(super::index::IndexError::Log(e)) => {
                        problems.push(format!("{at}: its id index: {e}"))
                    }
                }
            }
        }
        Ok(VerifyReport { space: space.to_owned(), events: chain.len() as u64, head, problems })
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

    fn checkpoint_entries(&self, header: &checkpoint::Header) -> Result<Vec<(String, bool, String)>, String> {
        checkpoint::decode_tree(&self.read(&header.tree, ObjectKind::Tree).map_err(|e| e.to_string())?)
    }

    /// A checkpoint's `state.json`, checked against its hash.
    fn checkpoint_state(&self, header: &checkpoint::Header, id: Option<String>) -> Result<Vec<u8>, String> {
        let id = id.ok_or("no state.json")?;
        let bytes = self.read(&id, ObjectKind::Blob).map_err(|e| e.to_string())?;
        if checkpoint::sha1_hex(&bytes) != header.state_sha1 {
            return Err("state.json does not match its Dlog-State-Sha1".into());
        }
        Ok(bytes)
    }

    /// Check that an `index/` tree's segments hold exactly (seq, commit, id)
    /// of seqs 1..=`seq` of the chain. Accepts both layouts: segments in
    /// groups, and the flat one of checkpoints written before groups.
    fn verify_index(
        &self,
        index: &str,
        seq: u64,
        chain: &[(Event, String)],
        checked: &mut HashMap<String, SegmentCheck>,
    ) -> Result<(), String> {
        let tree =
            |id: &str| checkpoint::decode_tree(&self.read(id, ObjectKind::Tree).map_err(|e| e.to_string())?);
        let mut segments = Vec::new();
        for (name, is_dir, id) in tree(index)? {
            if is_dir {
                for (name, is_dir, id) in tree(&id)? {
                    segments.push((name, is_dir, id));
                }
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
        for (last, blob) in named {
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
        Ok(())
    }

    /// The seqs a segment covers, if its lines match the chain.
    fn verify_segment(&self, blob: &str, chain: &[(Event, String)]) -> SegmentCheck {
        let bytes = self.read(blob, ObjectKind::Blob).map_err(|e| e.to_string())?;
        let entries = checkpoint::decode_segment(&bytes)?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(format!("segment {blob} is empty"));
        };
        for (i, entry) in entries.iter().enumerate() {
            let matches = entry.seq == first.seq + i as u64
                && chain
                    .get((entry.seq as usize).wrapping_sub(1))
                    .is_some_and(|(e, c)| e.seq == entry.seq && *c == entry.commit && e.id == entry.id);
            if !matches {
                return Err(format!("segment {blob}'s line for seq {} differs from the event", entry.seq));
            }
        }
        Ok((first.seq, last.seq))
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
}
