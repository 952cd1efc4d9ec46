//! Checkpoints: reading one (trusting it only once it agrees with itself and
//! with the event it names), writing one at a replica's head, and adopting
//! one another writer wrote so that a replica's tail stays short.

use super::ctx::Ctx;
use super::index::IndexError;
use super::paging;
use super::replica::{KnownCheckpoint, Paged, Replica};
use super::{CheckpointInfo, Log, storage};
use crate::checkpoint;
use crate::error::Error;
use crate::fold::State;
use crate::gitobj;
use crate::host::{Host, ObjectKind, Swap};
use crate::model;

impl<H: Host> Log<H> {
    /// Write a checkpoint of `space` at its head now (if it has events that
    /// no checkpoint covers); report the latest checkpoint.
    pub fn checkpoint(&mut self, space: &str) -> Result<Option<CheckpointInfo>, Error> {
        model::validate_space(space)?;
        // The catch-up reads the pages of the keys it meets: a damaged one
        // costs a replay, and the checkpoint written after it is whole.
        self.paged(space, |log| log.checkpoint_checked(space))
    }

    fn checkpoint_checked(&mut self, space: &str) -> Result<Option<CheckpointInfo>, Error> {
        let (ctx, replica) = self.sync(space)?;
        if !replica.histories {
            // Started from an older dlog's checkpoint, whose records hold no
            // histories: one replay, and the checkpoint written is current.
            ctx.replay(replica)?;
        }
        let written = match ctx.write_checkpoint(space, replica) {
            Err(Error::Corrupt(problem)) => {
                // The previous checkpoint's index is damaged: replay the log
                // and write a checkpoint that starts a new chain.
                ctx.warn(format!(
                    "the checkpoint of space {space:?} cannot be extended ({problem}); replayed the whole log"
                ));
                ctx.replay(replica)?;
                ctx.write_checkpoint(space, replica)?
            }
            other => other?,
        };
        if written.is_some() || replica.state.head.is_none() {
            return Ok(written);
        }
        // Lost a race on the checkpoint ref: the replica has now adopted the
        // winner's checkpoint, or knows the ref holds one to replace.
        ctx.refresh(replica)?;
        if let Some(info) = ctx.write_checkpoint(space, replica)? {
            return Ok(Some(info));
        }
        Ok(replica.checkpoint.as_ref().map(|c| CheckpointInfo {
            seq: c.seq,
            commit: c.commit.clone(),
            event: c.event.clone(),
        }))
    }
}

impl<H: Host> Ctx<H> {
    /// The space's latest checkpoint as a replica, if it is newer than
    /// `replica`'s and its event is one of `tail` (commit and tree ids,
    /// newest first); with the number of `tail` entries newer than it.
    pub(super) fn checkpoint_within(
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
    pub(super) fn adopt_latest_checkpoint(&self, replica: &mut Replica) {
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
    pub(super) fn read_checkpoint(
        &self,
        space: &str,
        commit: &str,
    ) -> Result<(State, KnownCheckpoint), Error> {
        let commit = commit.to_owned();
        let header =
            checkpoint::decode_commit(&self.read(&commit, ObjectKind::Commit)?).map_err(Error::Corrupt)?;
        if header.space != space {
            return Err(Error::corrupt(format!("it belongs to space {:?}", header.space)));
        }
        let entries = self.tree(&header.tree)?;
        let find = |name: &str, dir: bool| checkpoint::find_entry(&entries, name, dir);
        let index_tree = find("index", true).ok_or_else(|| Error::corrupt("no index"))?;
        let ids_tree = find("ids", true).ok_or_else(|| {
            Error::corrupt(
                "it has no id index: an older dlog wrote it; `dlog checkpoint` writes a current one",
            )
        })?;
        // A paged checkpoint keeps its records in pages, read a key at a
        // time; an older dlog's holds the whole fold in `state.json`.
        let (state_id, pages) = match find("head.json", false) {
            Some(head) => {
                let tree = find("pages", true).ok_or_else(|| Error::corrupt("no pages"))?;
                (head, Some(self.read_paged(&tree)?))
            }
            None => (find("state.json", false).ok_or_else(|| Error::corrupt("no state.json"))?, None),
        };
        let bytes = self.read(&state_id, ObjectKind::Blob)?;
        if checkpoint::sha1_hex(&bytes) != header.state_sha1 {
            return Err(Error::corrupt("its state does not match its Dlog-State-Sha1"));
        }
        let mut state = checkpoint::parse_state(&bytes).map_err(Error::Corrupt)?;
        if pages.is_some() && !state.keys().is_empty() {
            return Err(Error::corrupt("head.json holds records"));
        }
        if state.space != space
            || state.seq != header.seq
            || state.head.as_deref() != Some(header.event.as_str())
        {
            return Err(Error::corrupt("its state does not describe the event the checkpoint names"));
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
        Ok((
            state,
            KnownCheckpoint { commit, seq: header.seq, index_tree, ids_tree, event: header.event, pages },
        ))
    }

    /// Write a checkpoint of `space` at `replica`'s head, unless one covers
    /// it already; none when another writer's checkpoint got there first.
    pub(super) fn write_checkpoint(
        &self,
        space: &str,
        replica: &mut Replica,
    ) -> Result<Option<CheckpointInfo>, Error> {
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
        if !replica.histories {
            // Its state came from an older dlog's checkpoint, which holds no
            // key histories: the caller replays the log to write a paged one.
            return Err(Error::corrupt(
                "the checkpoint it started from was written by an older dlog and holds no key histories",
            ));
        }
        let head = replica.state.head_only().canonical().into_bytes();
        let paging::Pages { lasts, ids: page_ids, blobs } = self.next_pages(replica)?;
        let (pages_tree, fences) = paging::pages_tree(&lasts, &page_ids);
        let pages_id = gitobj::object_id(ObjectKind::Tree, &pages_tree);
        let at_ms = replica.state.at_ms;
        // An unusable previous checkpoint is replaced by a new chain.
        let previous = replica.checkpoint.clone();
        let expected = replica.checkpoint_tip.clone();
        let index_id = self.write_index(previous.as_ref(), &entries).map_err(IndexError::into_error)?;
        let ids_id = self.write_runs(previous.as_ref(), last + 1, &hashes).map_err(IndexError::into_error)?;
        let head_id = gitobj::object_id(ObjectKind::Blob, &head);
        let root = checkpoint::encode_tree(&[
            ("head.json".into(), ObjectKind::Blob, head_id.clone()),
            ("ids".into(), ObjectKind::Tree, ids_id.clone()),
            ("index".into(), ObjectKind::Tree, index_id.clone()),
            ("pages".into(), ObjectKind::Tree, pages_id.clone()),
        ]);
        let root_id = gitobj::object_id(ObjectKind::Tree, &root);
        let header = checkpoint::Header {
            tree: root_id.clone(),
            parent: previous.as_ref().map(|p| p.commit.clone()),
            space: space.to_owned(),
            seq,
            event: event.clone(),
            state_sha1: checkpoint::sha1_hex(&head),
        };
        let commit = checkpoint::encode_commit(&header, at_ms);
        let commit_id = gitobj::object_id(ObjectKind::Commit, &commit);
        for (bytes, id) in blobs.iter().chain([&fences]) {
            self.write(ObjectKind::Blob, bytes, id)?;
        }
        self.write(ObjectKind::Tree, &pages_tree, &pages_id)?;
        self.write(ObjectKind::Blob, &head, &head_id)?;
        self.write(ObjectKind::Tree, &root, &root_id)?;
        self.write(ObjectKind::Commit, &commit, &commit_id)?;
        let name = checkpoint::checkpoint_ref(space);
        match self.host.compare_and_swap(&name, expected.as_deref(), &commit_id).map_err(storage)? {
            Swap::Swapped => {
                let pages = Paged { tree: pages_id, lasts, pages: page_ids };
                replica.base = Some(pages.clone());
                replica.dirty.clear();
                replica.adopt(KnownCheckpoint {
                    commit: commit_id.clone(),
                    seq,
                    index_tree: index_id,
                    ids_tree: ids_id,
                    event: event.clone(),
                    pages: Some(pages),
                });
                Ok(Some(CheckpointInfo { seq, commit: commit_id, event }))
            }
            // Another writer checkpointed first; its checkpoint is as good.
            // Start from it if it is within what this replica has reached.
            Swap::Mismatch(_) => {
                self.adopt_latest_checkpoint(replica);
                Ok(None)
            }
        }
    }
}
