//! Appending: intents are validated, stamped on top of the replica's head
//! into a [`Draft`], and committed with one compare-and-swap of the space's
//! ref; an id the log already holds is an idempotent resend.

use std::collections::HashMap;

use super::ctx::Ctx;
use super::replica::Replica;
use super::{Appended, Log, RawIntent, Stored, storage};
use crate::error::{Error, Head};
use crate::fold::{State, Undo};
use crate::gitobj::{self, EncodedEvent};
use crate::host::{Host, ObjectKind, Swap};
use crate::json;
use crate::model::{self, Body, Event, Intent};

/// Events stamped but not yet committed. They are already applied to the
/// replica's state; `undo` takes them back if the commit fails.
#[derive(Debug, Default)]
pub(super) struct Draft {
    /// The head the draft builds on (none: an empty space).
    pub(super) base: Option<Head>,
    pub(super) undo: Vec<Undo>,
    pub(super) objects: Vec<EncodedEvent>,
    pub(super) results: Vec<Appended>,
    /// Where each id stamped so far sits in `results`: a batch that
    /// repeats an id gets the first one back.
    pub(super) batch_ids: HashMap<String, usize>,
}

impl Draft {
    pub(super) fn take_back(&mut self, state: &mut State) {
        while let Some(undo) = self.undo.pop() {
            state.undo(undo);
        }
    }
}

impl<H: Host> Log<H> {
    /// Append one intent.
    pub fn append(&mut self, space: &str, raw: &RawIntent) -> Result<Appended, Error> {
        let mut results = self.append_batch(space, std::slice::from_ref(raw))?;
        results.pop().ok_or_else(|| Error::Storage("empty batch result".into()))
    }

    /// Append intents as one unit (one ref update).
    pub fn append_batch(&mut self, space: &str, raws: &[RawIntent]) -> Result<Vec<Appended>, Error> {
        self.paged(space, |log| log.append_checked(space, raws))
    }

    fn append_checked(&mut self, space: &str, raws: &[RawIntent]) -> Result<Vec<Appended>, Error> {
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
        let (ctx, replica) = self.sync(space)?;
        // Which ids the log holds already: the tail in memory, older ones
        // through the checkpoint's id index.
        let stored = ctx.indexed(replica, |ctx, replica| {
            intents.iter().map(|intent| ctx.find_id(replica, &intent.id)).collect::<Result<Vec<_>, _>>()
        })?;
        let draft = ctx.draft(space, replica, &intents, stored)?;
        if draft.objects.is_empty() {
            return Ok(draft.results);
        }
        ctx.commit_draft(space, replica, draft)
    }
}

impl<H: Host> Ctx<H> {
    /// The epoch this host may write `space` with, or why it may not.
    pub(super) fn writer_epoch(&self, space: &str, head_epoch: u64) -> Result<u64, Error> {
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

    /// Stamp intents on top of the replica's head, checking every rule. The
    /// new events are applied to the replica's state right away (with undo
    /// records): [`Ctx::commit_draft`] keeps them or takes them back.
    fn draft(
        &self,
        space: &str,
        replica: &mut Replica,
        intents: &[Intent],
        stored: Vec<Option<Stored>>,
    ) -> Result<Draft, Error> {
        let mut draft = Draft::default();
        let outcome = self.stamp(replica, space, intents, stored, &mut draft);
        if outcome.is_err() {
            draft.take_back(&mut replica.state);
        }
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
            if let Some(key) = intent.body.key() {
                self.load_key(replica, key)?;
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
            let at_ms = self.host.now_ms().max(state.at_ms);
            // A stored event is strict I-JSON, whose integers stop at
            // 2^53 - 1: an event stamped past that could never be read back,
            // so a host that gives such a clock or epoch is refused first.
            if at_ms > json::MAX_SAFE_INTEGER || epoch > json::MAX_SAFE_INTEGER {
                return Err(Error::Storage(format!(
                    "the host's clock ({at_ms} ms) or lease epoch ({epoch}) is beyond 2^53 - 1, \
                     which an event cannot store; nothing was written"
                )));
            }
            let event = Event {
                space: space.to_owned(),
                seq: state.seq + 1,
                epoch,
                id: intent.id.clone(),
                actor: intent.actor.clone(),
                at_ms,
                kind: intent.kind,
                body: intent.body.clone(),
                body_json: intent.body_json.clone(),
            };
            let encoded = gitobj::encode_event(&event, state.head.as_deref());
            d.undo.push(replica.state.apply_undoable(&event, &encoded.commit_id)?);
            if let Some(key) = event.body.key() {
                replica.dirty.insert(key.to_owned());
            }
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
    pub(super) fn commit_draft(
        &mut self,
        space: &str,
        replica: &mut Replica,
        mut draft: Draft,
    ) -> Result<Vec<Appended>, Error> {
        let base = draft.base.as_ref().map(|h| h.commit.clone());
        let base_seq = draft.base.as_ref().map_or(0, |h| h.seq);
        let outcome = self.write_draft(space, base.as_deref(), &draft);
        if !matches!(outcome, Ok(Swap::Swapped)) {
            draft.take_back(&mut replica.state);
        }
        match outcome? {
            Swap::Swapped => {
                for a in draft.results.iter().filter(|a| a.created) {
                    replica.remember(&a.stored.event.id, a.stored.event.seq, &a.stored.commit)?;
                }
                let (seq, last, every) =
                    (replica.state.seq, replica.checkpoint_seq(), self.settings.checkpoint_every);
                let mut due = every > 0 && seq / every > last / every;
                if due
                    && !replica.histories
                    && let Err(e) = self.replay(replica)
                {
                    // It started from an older dlog's checkpoint, whose
                    // records hold no histories: the replay makes the
                    // checkpoint written now a current one. The append is
                    // durable already, so a failed replay is only a warning,
                    // and the next call starts afresh.
                    self.warn(format!("could not replay space {space:?} for its checkpoint: {e}"));
                    *replica = Replica::cold(space);
                    due = false;
                }
                if due && let Err(e) = self.write_checkpoint(space, replica) {
                    // The append is durable already; a missing checkpoint only costs a replay.
                    self.warn(format!("could not write a checkpoint of space {space:?}: {e}"));
                    if let Error::Corrupt(_) = e {
                        // The previous checkpoint's index is damaged: the next
                        // call replays the log, and the next checkpoint starts
                        // a new chain from it.
                        *replica = Replica::new(space, replica.checkpoint_tip.clone());
                    }
                }
                Ok(draft.results)
            }
            Swap::Mismatch(_) => {
                self.refresh(replica)?;
                Err(Error::HeadConflict { expected_seq: base_seq, actual: replica.head() })
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
}
