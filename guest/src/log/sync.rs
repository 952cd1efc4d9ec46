//! Bringing a replica up to the ref's current head: from what it knows when
//! the head descends from that, from the latest checkpoint on the way when
//! it is far behind, and from seq 1 otherwise.

use super::ctx::Ctx;
use super::replica::Replica;
use super::{DEFAULT_CHECKPOINT_EVERY, Log, REPLAY_CHECKPOINT_FACTOR, storage};
use crate::checkpoint;
use crate::error::Error;
use crate::gitobj;
use crate::host::Host;
use crate::model;

/// Commit and tree ids of events still to apply, newest first: 40 bytes per
/// event however long the catch-up, never the events themselves.
type Tail = Vec<([u8; 20], [u8; 20])>;

impl<H: Host> Log<H> {
    /// The replica of `space` brought up to the ref's current head, with
    /// the context to use it through.
    pub(super) fn sync(&mut self, space: &str) -> Result<(&mut Ctx<H>, &mut Replica), Error> {
        let replica = self.replicas.entry(space.to_owned()).or_insert_with(|| Replica::cold(space));
        self.ctx.refresh(replica)?;
        Ok((&mut self.ctx, replica))
    }
}

impl<H: Host> Ctx<H> {
    /// Bring `replica` up to the ref's current head. A replica that fails
    /// to get there is left cold: what it holds is in doubt.
    pub(super) fn refresh(&mut self, replica: &mut Replica) -> Result<(), Error> {
        let space = replica.state.space.clone();
        let head = self.host.read_ref(&model::space_ref(&space)).map_err(storage)?;
        let known = std::mem::replace(replica, Replica::cold(&space));
        *replica = self.caught_up(&space, known, head)?;
        Ok(())
    }

    /// Forget what `replica` knows, except which checkpoint ref the next
    /// checkpoint must replace, and read the whole log again.
    pub(super) fn replay(&mut self, replica: &mut Replica) -> Result<(), Error> {
        *replica = Replica::new(&replica.state.space, replica.checkpoint_tip.clone());
        self.refresh(replica)
    }

    /// `replica` moved on to `head`.
    fn caught_up(&mut self, space: &str, replica: Replica, head: Option<String>) -> Result<Replica, Error> {
        let mut replica = if replica.cold { self.cold_replica(space)? } else { replica };
        if replica.state.head != head {
            // Walk back to what the replica knows, keeping only the ids of
            // each commit and tree, then load and apply the events oldest
            // first.
            let mut tail = Tail::new();
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
        Ok(replica)
    }

    /// How many events behind a replica is far behind: a catch-up then
    /// looks for a checkpoint on its way, and a long tail follows other
    /// writers' checkpoints.
    pub(super) fn far_behind(&self) -> u64 {
        self.settings.checkpoint_every.max(DEFAULT_CHECKPOINT_EVERY).saturating_mul(4)
    }

    /// Apply `tail` to `replica`, starting from a newer checkpoint on the
    /// way when it is far behind, and checkpointing as it goes when the
    /// catch-up is long.
    fn catch_up(&mut self, space: &str, mut replica: Replica, mut tail: Tail) -> Result<Replica, Error> {
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
            self.push(&mut replica, &event, &commit)?;
            let seq = replica.state.seq;
            if every == 0
                || !seq.is_multiple_of(every)
                || (replica.commits.len() as u64) < every
                || seq < retry_from
            {
                continue;
            }
            match self.write_checkpoint(space, &mut replica) {
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
}
