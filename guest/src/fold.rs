//! The fold: the pure function from a space's events to its coordination
//! state, and the overlay and union of several states.
//!
//! `State::apply` both checks an event against the state (the per-key
//! compare-and-set of `supersedes`) and applies it, so the rules that admit
//! an intent at append time are the very rules that replay the log.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::canonical::{to_canonical_string, write_string};
use crate::error::Error;
use crate::model::{Body, Event, Rejected};

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
}

/// What one [`State::apply_undoable`] changed, so that a draft whose commit
/// fails can be taken back out of the state in O(events) instead of cloning
/// the whole state up front (which made every append O(state)).
#[derive(Debug)]
pub struct Undo {
    /// The key the event touched, with its decision and retraction before.
    entry: Option<(String, Option<Decision>, Option<Retraction>)>,
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
    /// Events by kind.
    pub counts: Counts,
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
            counts: Counts::default(),
        }
    }

    /// Check that `body` may be applied now: `supersedes` must name the
    /// decision in force, and a retraction needs one in force.
    pub fn check(&self, body: &Body) -> Result<(), Error> {
        let (key, supersedes, needs_decision) = match body {
            Body::Decide { key, supersedes, .. } => (key, supersedes, supersedes.is_some()),
            Body::Retract { key, supersedes, .. } => (key, supersedes, true),
            Body::Authority { .. } => return Ok(()),
        };
        let in_force = self.decisions.get(key).map(|d| &d.id);
        let mismatch = match (supersedes, in_force) {
            (Some(want), Some(have)) => want != have,
            (Some(_), None) => true,
            (None, have) => needs_decision && have.is_none(),
        };
        if mismatch {
            return Err(Error::DecisionConflict {
                key: key.clone(),
                expected: supersedes.clone(),
                in_force: in_force.cloned(),
            });
        }
        Ok(())
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
        match &event.body {
            Body::Decide { key, choice, rationale, rejected, .. } => {
                let previous = self
                    .decisions
                    .get(key)
                    .map(|d| d.revision)
                    .or_else(|| self.retracted.get(key).map(|r| r.revision))
                    .unwrap_or(0);
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
                        revision: previous + 1,
                    },
                );
                self.counts.decide += 1;
            }
            Body::Retract { key, rationale, .. } => {
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
                    },
                );
                self.counts.retract += 1;
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
        self.seq = event.seq;
        self.epoch = event.epoch;
        self.at_ms = event.at_ms;
        self.head = Some(commit.to_owned());
        Ok(())
    }

    /// [`State::apply`], remembering how to undo it. On error nothing changed.
    pub fn apply_undoable(&mut self, event: &Event, commit: &str) -> Result<Undo, Error> {
        let key = match &event.body {
            Body::Decide { key, .. } | Body::Retract { key, .. } => Some(key),
            Body::Authority { .. } => None,
        };
        let undo = Undo {
            entry: key.map(|k| (k.clone(), self.decisions.get(k).cloned(), self.retracted.get(k).cloned())),
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
        if let Some((key, decision, retraction)) = undo.entry {
            match decision {
                Some(d) => self.decisions.insert(key.clone(), d),
                None => self.decisions.remove(&key),
            };
            match retraction {
                Some(r) => self.retracted.insert(key, r),
                None => self.retracted.remove(&key),
            };
        }
        self.authority = undo.authority;
        self.seq = undo.seq;
        self.head = undo.head;
        self.epoch = undo.epoch;
        self.at_ms = undo.at_ms;
        self.counts = undo.counts;
    }

    /// The state as JSON.
    pub fn to_value(&self) -> Value {
        let decisions: Map<String, Value> =
            self.decisions.iter().map(|(k, d)| (k.clone(), decision_value(d))).collect();
        let retracted: Map<String, Value> = self
            .retracted
            .iter()
            .map(|(k, r)| {
                let v = json!({
                    "rationale": r.rationale, "choice": r.choice, "decision": r.decision,
                    "id": r.id, "actor": r.actor, "seq": r.seq, "at_ms": r.at_ms,
                    "revision": r.revision,
                });
                (k.clone(), v)
            })
            .collect();
        json!({
            "space": self.space,
            "seq": self.seq,
            "head": self.head,
            "authority": self.authority.as_ref().map(|a| json!({
                "holder": a.holder, "epoch": a.epoch, "seq": a.seq, "at_ms": a.at_ms,
            })),
            "decisions": decisions,
            "retracted": retracted,
            "counts": {
                "events": self.seq,
                "decide": self.counts.decide,
                "retract": self.counts.retract,
                "authority": self.counts.authority,
            },
        })
    }

    /// The state as canonical JSON: equal states are equal bytes.
    ///
    /// Written straight from the structs (building a `Value` first made each
    /// checkpoint and each fold at head cost several microseconds per key);
    /// the keys below are in RFC 8785 order. A map key from U+E000 up sorts
    /// differently in UTF-16, so such states take the general path.
    pub fn canonical(&self) -> String {
        let high = |k: &String| k.bytes().any(|b| b >= 0xEE);
        if self.decisions.keys().any(high) || self.retracted.keys().any(high) {
            return to_canonical_string(&self.to_value());
        }
        let mut out = String::with_capacity(256 + 256 * (self.decisions.len() + self.retracted.len()));
        let w = &mut out;
        w.push_str("{\"authority\":");
        match &self.authority {
            None => w.push_str("null"),
            Some(a) => {
                num(w, "{\"at_ms\":", a.at_ms);
                num(w, ",\"epoch\":", a.epoch);
                text(w, ",\"holder\":", &a.holder);
                num(w, ",\"seq\":", a.seq);
                w.push('}');
            }
        }
        num(w, ",\"counts\":{\"authority\":", self.counts.authority);
        num(w, ",\"decide\":", self.counts.decide);
        num(w, ",\"events\":", self.seq);
        num(w, ",\"retract\":", self.counts.retract);
        w.push_str("},\"decisions\":{");
        for (i, (key, d)) in self.decisions.iter().enumerate() {
            text(w, if i == 0 { "" } else { "," }, key);
            text(w, ":{\"actor\":", &d.actor);
            num(w, ",\"at_ms\":", d.at_ms);
            text(w, ",\"choice\":", &d.choice);
            text(w, ",\"id\":", &d.id);
            text(w, ",\"rationale\":", &d.rationale);
            w.push_str(",\"rejected\":[");
            for (j, r) in d.rejected.iter().enumerate() {
                text(w, if j == 0 { "{\"option\":" } else { ",{\"option\":" }, &r.option);
                text(w, ",\"why\":", &r.why);
                w.push('}');
            }
            num(w, "],\"revision\":", d.revision);
            num(w, ",\"seq\":", d.seq);
            w.push('}');
        }
        w.push_str("},\"head\":");
        match &self.head {
            None => w.push_str("null"),
            Some(head) => text(w, "", head),
        }
        w.push_str(",\"retracted\":{");
        for (i, (key, r)) in self.retracted.iter().enumerate() {
            text(w, if i == 0 { "" } else { "," }, key);
            text(w, ":{\"actor\":", &r.actor);
            num(w, ",\"at_ms\":", r.at_ms);
            text(w, ",\"choice\":", &r.choice);
            text(w, ",\"decision\":", &r.decision);
            text(w, ",\"id\":", &r.id);
            text(w, ",\"rationale\":", &r.rationale);
            num(w, ",\"revision\":", r.revision);
            num(w, ",\"seq\":", r.seq);
            w.push('}');
        }
        num(w, "},\"seq\":", self.seq);
        text(w, ",\"space\":", &self.space);
        w.push('}');
        out
    }
}

/// `prefix` then a JSON number.
fn num(out: &mut String, prefix: &str, n: u64) {
    use std::fmt::Write as _;
    out.push_str(prefix);
    let _ = write!(out, "{n}"); // writing to a String cannot fail
}

/// `prefix` then a canonical JSON string.
fn text(out: &mut String, prefix: &str, s: &str) {
    out.push_str(prefix);
    write_string(s, out);
}

fn decision_value(d: &Decision) -> Value {
    let rejected: Vec<Value> = d.rejected.iter().map(|r| json!({"option": r.option, "why": r.why})).collect();
    json!({
        "choice": d.choice, "rationale": d.rationale, "rejected": rejected, "id": d.id,
        "actor": d.actor, "seq": d.seq, "at_ms": d.at_ms, "revision": d.revision,
    })
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
        assert_eq!(s.counts, Counts { decide: 2, retract: 1, authority: 0 });
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
