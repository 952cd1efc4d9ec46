//! The fold: the pure function from a space's events to its coordination
//! state, and the overlay and union of several states.
//!
//! `State::apply` both checks an event against the state (the per-key
//! compare-and-set of `supersedes`) and applies it, so the rules that admit
//! an intent at append time are the very rules that replay the log. How a
//! state is written as JSON is in `json.rs`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub(crate) mod json;

use json::decision_value;

use crate::error::Error;
use crate::model::{Body, Event, Record, Rejected};
use crate::record::Details;

/// The decision in force for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What was chosen.
    pub choice: String,
    /// Why.
    pub rationale: String,
    /// What was not chosen, and why not.
    pub rejected: Vec<Rejected>,
    /// The event id that decided it.
    pub id: String,
    /// Who decided.
    pub actor: String,
    /// The event's seq.
    pub seq: u64,
    /// The event's time.
    pub at_ms: u64,
    /// How many times the key has been decided, this one included.
    pub revision: u64,
    /// The v2 details it was decided with (title, context, tags, …).
    pub details: Details,
    /// For a decision that was proposed first: the `accept` that put it in
    /// force (`id`, `actor`, `seq` and `at_ms` above are the proposal's).
    pub accepted: Option<Closing>,
}

/// The event that closed a proposal (an `accept` or a `reject`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closing {
    /// Its event id.
    pub id: String,
    /// Who closed it.
    pub actor: String,
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub at_ms: u64,
    /// Why, if said (a `reject` always says).
    pub rationale: Option<String>,
}

/// A proposal for a key: not in force; open until accepted or rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// What is proposed.
    pub choice: String,
    /// Why.
    pub rationale: String,
    /// What it would not choose, and why not.
    pub rejected: Vec<Rejected>,
    /// The decision it would replace.
    pub supersedes: Option<String>,
    /// Its v2 details.
    pub details: Details,
    /// `proposed`, `draft`, a team's own label, or `rejected` once declined.
    pub status: String,
    /// The `propose` event's id.
    pub id: String,
    /// Who proposed it.
    pub actor: String,
    /// The `propose` event's seq.
    pub seq: u64,
    /// Its time.
    pub at_ms: u64,
    /// The `reject` that declined it.
    pub rejection: Option<Closing>,
}

/// A withdrawn decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retraction {
    /// Why it was withdrawn.
    pub rationale: String,
    /// The choice that was withdrawn.
    pub choice: String,
    /// The event id of the withdrawn decision.
    pub decision: String,
    /// The retract event's id.
    pub id: String,
    /// Who withdrew it.
    pub actor: String,
    /// The retract event's seq.
    pub seq: u64,
    /// The retract event's time.
    pub at_ms: u64,
    /// The revision of the withdrawn decision.
    pub revision: u64,
    /// How it was withdrawn (e.g. `deprecated`); none: plainly retracted.
    pub status: Option<String>,
}

/// The current holder as recorded in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// The holder.
    pub holder: String,
    /// Its epoch.
    pub epoch: u64,
    /// The seq of the `authority` event.
    pub seq: u64,
    /// Its time.
    pub at_ms: u64,
}

/// Events folded so far, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `decide` events.
    pub decide: u64,
    /// `retract` events.
    pub retract: u64,
    /// `authority` events.
    pub authority: u64,
    /// `propose` events.
    pub propose: u64,
    /// `accept` events.
    pub accept: u64,
    /// `reject` events.
    pub reject: u64,
}

/// A key with its decision, retraction and proposals, as they were.
type KeyEntry = (String, Option<Decision>, Option<Retraction>, Option<BTreeMap<String, Proposal>>);

/// What one [`State::apply_undoable`] changed, so that a draft whose commit
/// fails can be taken back out of the state in O(events) instead of cloning
/// the whole state up front (which made every append O(state)).
#[derive(Debug)]
pub struct Undo {
    /// The key the event touched, with its decision, retraction and
    /// proposals before.
    entry: Option<KeyEntry>,
    authority: Option<Authority>,
    seq: u64,
    head: Option<String>,
    epoch: u64,
    at_ms: u64,
    counts: Counts,
}

/// The coordination state of one space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The space.
    pub space: String,
    /// The seq of the last event folded (0: none).
    pub seq: u64,
    /// The commit of the last event folded.
    pub head: Option<String>,
    /// The highest epoch folded (not serialized: the head event carries it).
    pub epoch: u64,
    /// The last event's time (not serialized).
    pub at_ms: u64,
    /// The latest `authority` event.
    pub authority: Option<Authority>,
    /// Decisions in force, by key.
    pub decisions: BTreeMap<String, Decision>,
    /// Withdrawn decisions, by key (until decided again).
    pub retracted: BTreeMap<String, Retraction>,
    /// Proposals not accepted (open, or declined), by key, then by id.
    pub proposals: BTreeMap<String, BTreeMap<String, Proposal>>,
    /// Events by kind.
    pub counts: Counts,
    /// The seqs of every event that touched each key, oldest first: a
    /// key's history without scanning the log. Not part of the fold's
    /// JSON; checkpoints store it with each key's record.
    pub history: BTreeMap<String, Vec<u64>>,
}

impl State {
    /// The state of an empty space.
    pub fn new(space: &str) -> State {
        State {
            space: space.to_owned(),
            seq: 0,
            head: None,
            epoch: 0,
            at_ms: 0,
            authority: None,
            decisions: BTreeMap::new(),
            retracted: BTreeMap::new(),
            proposals: BTreeMap::new(),
            counts: Counts::default(),
            history: BTreeMap::new(),
        }
    }

    /// The state without its records: what a paged checkpoint's
    /// `head.json` holds.
    pub fn head_only(&self) -> State {
        State {
            space: self.space.clone(),
            seq: self.seq,
            head: self.head.clone(),
            epoch: self.epoch,
            at_ms: self.at_ms,
            authority: self.authority.clone(),
            counts: self.counts.clone(),
            ..State::new(&self.space)
        }
    }

    /// Every key with a record: decided, withdrawn or proposed.
    pub fn keys(&self) -> std::collections::BTreeSet<&String> {
        self.decisions.keys().chain(self.retracted.keys()).chain(self.proposals.keys()).collect()
    }

    /// The proposal `id` for `key`, if it is open (neither accepted nor
    /// declined); otherwise an error saying which.
    fn open_proposal(&self, key: &str, id: &str) -> Result<&Proposal, Error> {
        match self.proposals.get(key).and_then(|p| p.get(id)) {
            Some(p) => match &p.rejection {
                None => Ok(p),
                Some(r) => Err(Error::invalid(format!(
                    "proposal {id:?} for key {key:?} was rejected at seq {}; propose it again to reopen it",
                    r.seq
                ))),
            },
            None => Err(Error::NotFound(match self.decisions.get(key) {
                Some(d) if d.id == id => {
                    format!("proposal {id:?} for key {key:?} is already accepted and in force")
                }
                _ => format!("key {key:?} has no open proposal {id:?}"),
            })),
        }
    }

    /// Check that `body` may be applied now: `supersedes` must name the
    /// decision in force, a retraction needs one in force, and an accept or
    /// a reject needs the proposal open.
    pub fn check(&self, body: &Body) -> Result<(), Error> {
        let (key, supersedes, needs_decision) = match body {
            Body::Decide { key, record } | Body::Propose { key, record, .. } => {
                (key, &record.supersedes, record.supersedes.is_some())
            }
            Body::Retract { key, supersedes, .. } => (key, supersedes, true),
            Body::Accept { key, proposal, supersedes, .. } => {
                let proposed = self.open_proposal(key, proposal)?;
                let supersedes = supersedes.as_ref().or(proposed.supersedes.as_ref());
                return self.check_in_force(key, supersedes, supersedes.is_some());
            }
            Body::Reject { key, proposal, .. } => return self.open_proposal(key, proposal).map(|_| ()),
            Body::Authority { .. } => return Ok(()),
        };
        self.check_in_force(key, supersedes.as_ref(), needs_decision)
    }

    /// The per-key compare-and-set: `supersedes`, when given, must name the
    /// decision in force; `needs_decision` requires one to be in force.
    fn check_in_force(
        &self,
        key: &str,
        supersedes: Option<&String>,
        needs_decision: bool,
    ) -> Result<(), Error> {
        let in_force = self.decisions.get(key).map(|d| &d.id);
        let mismatch = match (supersedes, in_force) {
            (Some(want), Some(have)) => want != have,
            (Some(_), None) => true,
            (None, have) => needs_decision && have.is_none(),
        };
        if mismatch {
            return Err(Error::DecisionConflict {
                key: key.to_owned(),
                expected: supersedes.cloned(),
                in_force: in_force.cloned(),
            });
        }
        Ok(())
    }

    /// The revision the next decision of `key` gets.
    fn next_revision(&self, key: &str) -> u64 {
        self.decisions
            .get(key)
            .map(|d| d.revision)
            .or_else(|| self.retracted.get(key).map(|r| r.revision))
            .unwrap_or(0)
            + 1
    }

    /// Check and apply the next event (with the commit that stores it).
    pub fn apply(&mut self, event: &Event, commit: &str) -> Result<(), Error> {
        if event.seq != self.seq + 1 {
            return Err(Error::corrupt(format!(
                "event seq {} follows seq {}; seqs must be contiguous",
                event.seq, self.seq
            )));
        }
        if event.epoch < self.epoch {
            return Err(Error::corrupt(format!(
                "event seq {} has epoch {} below the earlier epoch {}",
                event.seq, event.epoch, self.epoch
            )));
        }
        if event.at_ms < self.at_ms {
            return Err(Error::corrupt(format!(
                "event seq {} is stamped {} ms, before the earlier {} ms",
                event.seq, event.at_ms, self.at_ms
            )));
        }
        self.check(&event.body)?;
        let closing = |rationale: Option<&String>| Closing {
            id: event.id.clone(),
            actor: event.actor.clone(),
            seq: event.seq,
            at_ms: event.at_ms,
            rationale: rationale.cloned(),
        };
        match &event.body {
            Body::Decide { key, record } => {
                let Record { choice, rationale, rejected, details, .. } = record;
                let revision = self.next_revision(key);
                self.retracted.remove(key);
                self.decisions.insert(
                    key.clone(),
                    Decision {
                        choice: choice.clone(),
                        rationale: rationale.clone(),
                        rejected: rejected.clone(),
                        id: event.id.clone(),
                        actor: event.actor.clone(),
                        seq: event.seq,
                        at_ms: event.at_ms,
                        revision,
                        details: details.clone(),
                        accepted: None,
                    },
                );
                self.counts.decide += 1;
            }
            Body::Retract { key, rationale, status, .. } => {
                let withdrawn = self
                    .decisions
                    .remove(key)
                    .ok_or_else(|| Error::corrupt(format!("retract of {key:?} with no decision in force")))?;
                self.retracted.insert(
                    key.clone(),
                    Retraction {
                        rationale: rationale.clone(),
                        choice: withdrawn.choice,
                        decision: withdrawn.id,
                        id: event.id.clone(),
                        actor: event.actor.clone(),
                        seq: event.seq,
                        at_ms: event.at_ms,
                        revision: withdrawn.revision,
                        status: status.clone(),
                    },
                );
                self.counts.retract += 1;
            }
            Body::Propose { key, record, status } => {
                let proposal = Proposal {
                    choice: record.choice.clone(),
                    rationale: record.rationale.clone(),
                    rejected: record.rejected.clone(),
                    supersedes: record.supersedes.clone(),
                    details: record.details.clone(),
                    status: status.clone(),
                    id: event.id.clone(),
                    actor: event.actor.clone(),
                    seq: event.seq,
                    at_ms: event.at_ms,
                    rejection: None,
                };
                self.proposals.entry(key.clone()).or_default().insert(event.id.clone(), proposal);
                self.counts.propose += 1;
            }
            Body::Accept { key, proposal, rationale, .. } => {
                let revision = self.next_revision(key);
                let open = self.proposals.get_mut(key);
                let p = open
                    .and_then(|p| p.remove(proposal))
                    .ok_or_else(|| Error::corrupt(format!("accept of {proposal:?} with no such proposal")))?;
                if self.proposals.get(key).is_some_and(BTreeMap::is_empty) {
                    self.proposals.remove(key);
                }
                self.retracted.remove(key);
                self.decisions.insert(
                    key.clone(),
                    Decision {
                        choice: p.choice,
                        rationale: p.rationale,
                        rejected: p.rejected,
                        id: p.id,
                        actor: p.actor,
                        seq: p.seq,
                        at_ms: p.at_ms,
                        revision,
                        details: p.details,
                        accepted: Some(closing(rationale.as_ref())),
                    },
                );
                self.counts.accept += 1;
            }
            Body::Reject { key, proposal, rationale } => {
                let p =
                    self.proposals.get_mut(key).and_then(|p| p.get_mut(proposal)).ok_or_else(|| {
                        Error::corrupt(format!("reject of {proposal:?} with no such proposal"))
                    })?;
                p.status = "rejected".to_owned();
                p.rejection = Some(closing(Some(rationale)));
                self.counts.reject += 1;
            }
            Body::Authority { holder, epoch } => {
                self.authority = Some(Authority {
                    holder: holder.clone(),
                    epoch: *epoch,
                    seq: event.seq,
                    at_ms: event.at_ms,
                });
                self.counts.authority += 1;
            }
        }
        if let Some(key) = event.body.key() {
            self.history.entry(key.to_owned()).or_default().push(event.seq);
        }
        self.seq = event.seq;
        self.epoch = event.epoch;
        self.at_ms = event.at_ms;
        self.head = Some(commit.to_owned());
        Ok(())
    }

    /// [`State::apply`], remembering how to undo it. On error nothing changed.
    pub fn apply_undoable(&mut self, event: &Event, commit: &str) -> Result<Undo, Error> {
        let undo = Undo {
            entry: event.body.key().map(|k| {
                (
                    k.to_owned(),
                    self.decisions.get(k).cloned(),
                    self.retracted.get(k).cloned(),
                    self.proposals.get(k).cloned(),
                )
            }),
            authority: self.authority.clone(),
            seq: self.seq,
            head: self.head.clone(),
            epoch: self.epoch,
            at_ms: self.at_ms,
            counts: self.counts.clone(),
        };
        self.apply(event, commit)?;
        Ok(undo)
    }

    /// Take back an [`Undo`]; undos must be taken back newest first.
    pub fn undo(&mut self, undo: Undo) {
        if let Some((key, decision, retraction, proposals)) = undo.entry {
            match decision {
                Some(d) => self.decisions.insert(key.clone(), d),
                None => self.decisions.remove(&key),
            };
            match retraction {
                Some(r) => self.retracted.insert(key.clone(), r),
                None => self.retracted.remove(&key),
            };
            match proposals {
                Some(p) => self.proposals.insert(key.clone(), p),
                None => self.proposals.remove(&key),
            };
            // The undone event was the newest to touch its key.
            if let Some(seqs) = self.history.get_mut(&key) {
                seqs.pop();
                if seqs.is_empty() {
                    self.history.remove(&key);
                }
            }
        }
        self.authority = undo.authority;
        self.seq = undo.seq;
        self.head = undo.head;
        self.epoch = undo.epoch;
        self.at_ms = undo.at_ms;
        self.counts = undo.counts;
    }
}

fn heads(states: &[State]) -> Value {
    Value::Object(states.iter().map(|s| (s.space.clone(), json!({"seq": s.seq, "head": s.head}))).collect())
}

/// Several spaces as one view: for each key, the first space (in the order
/// given) that decides it wins; the decision names its space.
pub fn overlay(states: &[State]) -> Value {
    let mut decisions = Map::new();
    for state in states {
        for (key, d) in &state.decisions {
            if !decisions.contains_key(key) {
                let mut v = decision_value(d);
                if let Value::Object(m) = &mut v {
                    m.insert("space".into(), state.space.clone().into());
                }
                decisions.insert(key.clone(), v);
            }
        }
    }
    let spaces: Vec<&str> = states.iter().map(|s| s.space.as_str()).collect();
    json!({"view": "overlay", "spaces": spaces, "heads": heads(states), "decisions": decisions})
}

/// Every key of every space, per space, and the keys on which the spaces'
/// choices disagree.
pub fn union(states: &[State]) -> Value {
    let mut per_key: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for state in states {
        for (key, d) in &state.decisions {
            per_key.entry(key).or_default().insert(state.space.clone(), decision_value(d));
        }
    }
    let mut conflicts = Vec::new();
    for (key, by_space) in &per_key {
        let choices: Map<String, Value> =
            by_space.iter().map(|(s, d)| (s.clone(), d["choice"].clone())).collect();
        let first = choices.values().next();
        if choices.values().any(|c| Some(c) != first) {
            conflicts.push(json!({"key": key, "choices": choices}));
        }
    }
    let decisions: Map<String, Value> =
        per_key.into_iter().map(|(k, v)| (k.to_owned(), Value::Object(v))).collect();
    let spaces: Vec<&str> = states.iter().map(|s| s.space.as_str()).collect();
    json!({
        "view": "union", "spaces": spaces, "heads": heads(states),
        "decisions": decisions, "conflicts": conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::to_canonical_string;
    use crate::model::Intent;

    fn ev(seq: u64, id: &str, kind: &str, body: &str) -> Event {
        let i = Intent::validate(id, "alice", kind, body, None).unwrap();
        Event {
            space: "s".into(),
            seq,
            epoch: 1,
            id: i.id,
            actor: i.actor,
            at_ms: 1000 * seq,
            kind: i.kind,
            body: i.body,
            body_json: i.body_json,
        }
    }

    fn decide(seq: u64, id: &str, key: &str, choice: &str, supersedes: Option<&str>) -> Event {
        let sup = supersedes.map(|s| format!(r#","supersedes":"{s}""#)).unwrap_or_default();
        ev(seq, id, "decide", &format!(r#"{{"key":"{key}","choice":"{choice}","rationale":"r"{sup}}}"#))
    }

    #[test]
    fn the_direct_canonical_form_is_the_canonical_form_of_the_value() {
        let mut s = State::new("s");
        assert_eq!(s.canonical(), to_canonical_string(&s.to_value()));
        s.apply(&decide(1, "a", "db", r#"pg \"quoted\"\n"#, None), "c1").unwrap();
        s.apply(&decide(2, "b", "é-key", "x", None), "c2").unwrap();
        s.apply(&ev(3, "c", "decide", r#"{"key":"k","choice":"c","rationale":"r","rejected":[{"option":"o","why":"w"},{"option":"p","why":"\u0001"}]}"#), "c3").unwrap();
        s.apply(&ev(4, "d", "retract", r#"{"key":"k","rationale":"gone","supersedes":"c"}"#), "c4").unwrap();
        s.apply(&ev(5, "e", "authority", r#"{"holder":"w","epoch":1}"#), "c5").unwrap();
        assert_eq!(s.canonical(), to_canonical_string(&s.to_value()));
        // Keys whose UTF-16 order differs from their code point order.
        s.apply(&decide(6, "f", "\u{e000}", "x", None), "c6").unwrap();
        s.apply(&decide(7, "g", "\u{1f600}", "x", None), "c7").unwrap();
        let text = s.canonical();
        assert_eq!(text, to_canonical_string(&s.to_value()));
        assert!(text.find('\u{1f600}') < text.find('\u{e000}'), "UTF-16 order puts surrogates first");
    }

    #[test]
    fn undoing_applied_events_newest_first_restores_the_state_exactly() {
        let mut s = State::new("s");
        s.apply(&decide(1, "a", "db", "pg", None), "c1").unwrap();
        s.apply(&decide(2, "b", "queue", "sqs", None), "c2").unwrap();
        let before = s.clone();
        let events = [
            decide(3, "c", "db", "mysql", Some("a")),
            ev(4, "d", "retract", r#"{"key":"queue","rationale":"gone","supersedes":"b"}"#),
            ev(5, "e", "authority", r#"{"holder":"w","epoch":1}"#),
            decide(6, "f", "cache", "redis", None),
        ];
        let mut undo = Vec::new();
        for (i, e) in events.iter().enumerate() {
            undo.push(s.apply_undoable(e, &format!("d{i}")).unwrap());
        }
        assert_ne!(s, before);
        while let Some(u) = undo.pop() {
            s.undo(u);
        }
        assert_eq!(s, before);
    }

    #[test]
    fn supersedes_must_name_the_decision_in_force() {
        let mut s = State::new("s");
        s.apply(&decide(1, "a", "db", "pg", None), "c1").unwrap();
        let err = s.apply(&decide(2, "b", "db", "mysql", Some("zzz")), "c2").unwrap_err();
        assert_eq!(
            err,
            Error::DecisionConflict {
                key: "db".into(),
                expected: Some("zzz".into()),
                in_force: Some("a".into())
            }
        );
        assert_eq!(s.seq, 1, "a refused event changes nothing");
        s.apply(&decide(2, "b", "db", "mysql", Some("a")), "c2").unwrap();
        assert_eq!(s.decisions["db"].revision, 2);
        assert_eq!(s.decisions["db"].choice, "mysql");
    }

    #[test]
    fn retract_moves_a_decision_to_retracted_and_a_new_decision_continues_its_revisions() {
        let mut s = State::new("s");
        s.apply(&decide(1, "a", "db", "pg", None), "c1").unwrap();
        let err = s.apply(&ev(2, "r0", "retract", r#"{"key":"nope","rationale":"x"}"#), "c2").unwrap_err();
        assert!(matches!(err, Error::DecisionConflict { in_force: None, .. }));
        s.apply(&ev(2, "r", "retract", r#"{"key":"db","rationale":"too costly","supersedes":"a"}"#), "c2")
            .unwrap();
        assert!(s.decisions.is_empty());
        assert_eq!(s.retracted["db"].choice, "pg");
        s.apply(&decide(3, "c", "db", "sqlite", None), "c3").unwrap();
        assert_eq!(s.decisions["db"].revision, 2);
        assert!(s.retracted.is_empty());
        assert_eq!(s.counts, Counts { decide: 2, retract: 1, ..Counts::default() });
    }

    #[test]
    fn a_proposal_is_not_in_force_until_accepted_and_then_carries_its_details() {
        let mut s = State::new("s");
        s.apply(&decide(1, "d1", "db", "pg", None), "c1").unwrap();
        let propose = r#"{"key":"db","choice":"mysql","rationale":"cheaper","supersedes":"d1","status":"draft","title":"Move to MySQL","tags":["db"]}"#;
        s.apply(&ev(2, "p1", "propose", propose), "c2").unwrap();
        assert_eq!(s.decisions["db"].choice, "pg", "a proposal changes nothing in force");
        assert_eq!(s.proposals["db"]["p1"].status, "draft");
        let accept = ev(3, "a1", "accept", r#"{"key":"db","proposal":"p1","rationale":"agreed"}"#);
        s.apply(&accept, "c3").unwrap();
        let d = &s.decisions["db"];
        assert_eq!((d.choice.as_str(), d.id.as_str(), d.revision), ("mysql", "p1", 2));
        assert_eq!(d.details["title"], "Move to MySQL");
        assert_eq!(d.accepted.as_ref().map(|a| (a.id.as_str(), a.seq)), Some(("a1", 3)));
        assert!(s.proposals.is_empty(), "an accepted proposal leaves the proposals");
        let v = s.to_value();
        assert_eq!(v["decisions"]["db"]["tags"], json!(["db"]));
        assert_eq!(v["decisions"]["db"]["accepted"]["rationale"], "agreed");
        assert_eq!(v["counts"]["accept"], 1);
        assert_eq!(s.canonical(), to_canonical_string(&v));
    }

    #[test]
    fn accepting_checks_what_is_in_force_and_a_rejected_proposal_stays_closed() {
        let mut s = State::new("s");
        s.apply(&decide(1, "d1", "db", "pg", None), "c1").unwrap();
        s.apply(
            &ev(2, "p1", "propose", r#"{"key":"db","choice":"a","rationale":"r","supersedes":"d1"}"#),
            "c2",
        )
        .unwrap();
        s.apply(&decide(3, "d2", "db", "sqlite", Some("d1")), "c3").unwrap();
        // The proposal was made against d1; d2 is in force now.
        let err = s.apply(&ev(4, "a1", "accept", r#"{"key":"db","proposal":"p1"}"#), "c4").unwrap_err();
        assert!(matches!(&err, Error::DecisionConflict { in_force: Some(id), .. } if id == "d2"), "{err}");
        // Naming what is in force now accepts it.
        s.apply(&ev(4, "a1", "accept", r#"{"key":"db","proposal":"p1","supersedes":"d2"}"#), "c4").unwrap();
        assert_eq!(s.decisions["db"].choice, "a");
        s.apply(&ev(5, "p2", "propose", r#"{"key":"ui","choice":"tui","rationale":"r"}"#), "c5").unwrap();
        s.apply(&ev(6, "r1", "reject", r#"{"key":"ui","proposal":"p2","rationale":"users want web"}"#), "c6")
            .unwrap();
        assert_eq!(s.proposals["ui"]["p2"].status, "rejected");
        assert!(!s.decisions.contains_key("ui"));
        let again = ev(7, "a2", "accept", r#"{"key":"ui","proposal":"p2"}"#);
        assert!(s.apply(&again, "c7").unwrap_err().to_string().contains("was rejected at seq 6"));
        let unknown = ev(7, "a2", "accept", r#"{"key":"ui","proposal":"nope"}"#);
        assert!(matches!(s.apply(&unknown, "c7").unwrap_err(), Error::NotFound(_)));
        let twice = ev(7, "a2", "accept", r#"{"key":"db","proposal":"p1"}"#);
        assert!(s.apply(&twice, "c7").unwrap_err().to_string().contains("already accepted"));
        assert_eq!(s.seq, 6, "refused events change nothing");
    }

    #[test]
    fn undo_restores_proposals_too() {
        let mut s = State::new("s");
        s.apply(&ev(1, "p1", "propose", r#"{"key":"db","choice":"a","rationale":"r"}"#), "c1").unwrap();
        let before = s.clone();
        let u1 = s
            .apply_undoable(&ev(2, "r1", "reject", r#"{"key":"db","proposal":"p1","rationale":"no"}"#), "c2")
            .unwrap();
        let u2 = s
            .apply_undoable(&ev(3, "p2", "propose", r#"{"key":"db","choice":"b","rationale":"r"}"#), "c3")
            .unwrap();
        let u3 = s.apply_undoable(&ev(4, "a2", "accept", r#"{"key":"db","proposal":"p2"}"#), "c4").unwrap();
        for u in [u3, u2, u1] {
            s.undo(u);
        }
        assert_eq!(s, before);
    }

    #[test]
    fn seq_epoch_and_time_may_not_go_backwards() {
        let mut s = State::new("s");
        s.apply(&decide(1, "a", "k", "v", None), "c1").unwrap();
        assert!(s.apply(&decide(3, "b", "k", "v", None), "c").is_err());
        let mut e = decide(2, "b", "k", "v", None);
        e.epoch = 0;
        assert!(s.apply(&e, "c").unwrap_err().to_string().contains("epoch 0"));
        let mut e = decide(2, "b", "k", "v", None);
        e.at_ms = 1;
        assert!(s.apply(&e, "c").unwrap_err().to_string().contains("before"));
    }

    #[test]
    fn overlay_takes_the_first_space_and_union_lists_disagreements() {
        let mut a = State::new("a");
        a.apply(&decide(1, "a1", "db", "pg", None), "x").unwrap();
        let mut b = State::new("b");
        b.apply(&decide(1, "b1", "db", "mysql", None), "y").unwrap();
        b.apply(&decide(2, "b2", "ui", "web", None), "z").unwrap();
        let o = overlay(&[a.clone(), b.clone()]);
        assert_eq!(o["decisions"]["db"]["space"], "a");
        assert_eq!(o["decisions"]["db"]["choice"], "pg");
        assert_eq!(o["decisions"]["ui"]["space"], "b");
        let u = union(&[a, b]);
        assert_eq!(u["conflicts"], json!([{"key": "db", "choices": {"a": "pg", "b": "mysql"}}]));
        assert_eq!(u["decisions"]["ui"]["b"]["choice"], "web");
    }
}
