//! Reading: events, the head, the fold at the head or at a position, several
//! spaces overlaid or side by side, and which spaces exist.

use std::collections::HashSet;

use super::{Log, Position, Stored, storage};
use crate::error::{Error, Head};
use crate::fold::{self, State};
use crate::host::Host;
use crate::model;

impl<H: Host> Log<H> {
    /// Events with `seq >= from`, at most `limit`.
    pub fn events(&mut self, space: &str, from: u64, limit: u32) -> Result<Vec<Stored>, Error> {
        model::validate_space(space)?;
        // A catch-up reads the pages of the keys it meets: `paged` recovers
        // from a damaged one.
        self.paged(space, |log| {
            let (ctx, replica) = log.sync(space)?;
            let first = from.max(1);
            ctx.indexed(replica, |ctx, replica| {
                let last = replica.state.seq.min(first.saturating_add(u64::from(limit)).saturating_sub(1));
                (first..=last).map(|seq| ctx.stored_at(replica, seq)).collect()
            })
        })
    }

    /// The newest event's position.
    pub fn head(&mut self, space: &str) -> Result<Option<Head>, Error> {
        model::validate_space(space)?;
        self.paged(space, |log| Ok(log.sync(space)?.1.head()))
    }

    /// The fold of a space, at its head or at a position.
    pub fn fold_state(&mut self, space: &str, at: Option<&Position>) -> Result<State, Error> {
        self.paged(space, |log| log.fold_state_at(space, at))
    }

    fn fold_state_at(&mut self, space: &str, at: Option<&Position>) -> Result<State, Error> {
        model::validate_space(space)?;
        let (ctx, replica) = self.sync(space)?;
        let head_seq = replica.state.seq;
        let upto = match at {
            None => {
                ctx.load_all(replica)?;
                return Ok(replica.state.clone());
            }
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
                let seq = match ctx.load(commit) {
                    Ok((event, _)) if event.space == space && event.seq <= head_seq => event.seq,
                    _ => return Err(not_found()),
                };
                if ctx.indexed(replica, |ctx, replica| ctx.seq_commit(replica, seq))? != *commit {
                    return Err(not_found());
                }
                seq
            }
        };
        ctx.indexed(replica, |ctx, replica| {
            let mut state = State::new(space);
            for seq in 1..=upto {
                let stored = ctx.stored_at(replica, seq)?;
                state.apply(&stored.event, &stored.commit)?;
            }
            Ok(state)
        })
    }

    /// One key of a space: its record as canonical JSON (`decision`,
    /// `retracted` and `proposals`, each only when present) and the events
    /// that touched it, oldest first; none when no event ever did. Reads
    /// the key's page and its events, not the whole fold or log.
    pub fn show(&mut self, space: &str, key: &str) -> Result<Option<(String, Vec<Stored>)>, Error> {
        self.paged(space, |log| log.show_key(space, key))
    }

    fn show_key(&mut self, space: &str, key: &str) -> Result<Option<(String, Vec<Stored>)>, Error> {
        model::validate_space(space)?;
        let (ctx, replica) = self.sync(space)?;
        ctx.load_key(replica, key)?;
        let seqs = if replica.histories {
            replica.state.history.get(key).cloned().unwrap_or_default()
        } else {
            // Started from an older dlog's checkpoint, which keeps no
            // histories: find the key's events the slow way.
            let last = replica.state.seq;
            ctx.indexed(replica, |ctx, replica| {
                let mut seqs = Vec::new();
                for seq in 1..=last {
                    if ctx.stored_at(replica, seq)?.event.body.key() == Some(key) {
                        seqs.push(seq);
                    }
                }
                Ok(seqs)
            })?
        };
        if seqs.is_empty() {
            return Ok(None);
        }
        let state = &replica.state;
        let mut record = serde_json::Map::new();
        if let Some(d) = state.decisions.get(key) {
            record.insert("decision".into(), fold::json::decision_value(d));
        }
        if let Some(r) = state.retracted.get(key) {
            record.insert("retracted".into(), fold::json::retraction_value(r));
        }
        if let Some(by_id) = state.proposals.get(key) {
            let by_id = by_id.iter().map(|(id, p)| (id.clone(), fold::json::proposal_value(p))).collect();
            record.insert("proposals".into(), serde_json::Value::Object(by_id));
        }
        let record = crate::canonical::to_canonical_string(&serde_json::Value::Object(record));
        let history = ctx
            .indexed(replica, |ctx, replica| seqs.iter().map(|&seq| ctx.stored_at(replica, seq)).collect())?;
        Ok(Some((record, history)))
    }

    /// The fold of a space as canonical JSON.
    pub fn fold(&mut self, space: &str, at: Option<&Position>) -> Result<String, Error> {
        if at.is_some() {
            return Ok(self.fold_state(space, at)?.canonical());
        }
        // At the head the replica's own state is the fold: serialize it in
        // place rather than a copy (at 60,000 records a copy is ~100 MB).
        self.paged(space, |log| {
            model::validate_space(space)?;
            let (ctx, replica) = log.sync(space)?;
            ctx.load_all(replica)?;
            Ok(replica.state.canonical())
        })
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
        let refs = self.ctx.host.list_refs(model::SPACE_REF_PREFIX).map_err(storage)?;
        let mut names: Vec<String> = refs
            .into_iter()
            .filter_map(|(name, _)| name.strip_prefix(model::SPACE_REF_PREFIX).map(str::to_owned))
            .filter(|name| model::validate_space(name).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }
}
