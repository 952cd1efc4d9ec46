//! A state as JSON: the general value (views, tests, and the reference the
//! direct writer is checked against), and the direct canonical writer that
//! checkpoints and folds at head use.

use serde_json::{Map, Value, json};

use super::{Closing, Decision, Proposal, Retraction, State};
use crate::canonical::{to_canonical_string, write_canonical, write_string};
use crate::model::Rejected;
use crate::record::Details;

impl State {
    /// The state as JSON. What format v2 added (details, acceptances,
    /// withdrawal statuses, proposals and their counts) appears only when
    /// present, so a log of v1 events folds to the same bytes it always did.
    pub fn to_value(&self) -> Value {
        let decisions: Map<String, Value> =
            self.decisions.iter().map(|(k, d)| (k.clone(), decision_value(d))).collect();
        let retracted: Map<String, Value> =
            self.retracted.iter().map(|(k, r)| (k.clone(), retraction_value(r))).collect();
        let mut counts = json!({
            "events": self.seq,
            "decide": self.counts.decide,
            "retract": self.counts.retract,
            "authority": self.counts.authority,
        });
        for (name, n) in
            [("propose", self.counts.propose), ("accept", self.counts.accept), ("reject", self.counts.reject)]
        {
            if n > 0 {
                counts[name] = n.into();
            }
        }
        let mut v = json!({
            "space": self.space,
            "seq": self.seq,
            "head": self.head,
            "authority": self.authority.as_ref().map(|a| json!({
                "holder": a.holder, "epoch": a.epoch, "seq": a.seq, "at_ms": a.at_ms,
            })),
            "decisions": decisions,
            "retracted": retracted,
            "counts": counts,
        });
        if !self.proposals.is_empty() {
            let proposals: Map<String, Value> = self
                .proposals
                .iter()
                .map(|(k, by_id)| {
                    (
                        k.clone(),
                        Value::Object(by_id.iter().map(|(id, p)| (id.clone(), proposal_value(p))).collect()),
                    )
                })
                .collect();
            v["proposals"] = Value::Object(proposals);
        }
        v
    }

    /// The state as canonical JSON: equal states are equal bytes.
    ///
    /// Written straight from the structs (building a `Value` first made each
    /// checkpoint and each fold at head cost several microseconds per
    /// record, and a search over a large v2 fold most of its time). Every
    /// object's member names are ASCII, so sorting them by bytes is RFC
    /// 8785's UTF-16 order; a map *key* (a decision key) from U+E000 up
    /// sorts differently in UTF-16, so such states take the general path.
    pub fn canonical(&self) -> String {
        let high = |k: &String| k.bytes().any(|b| b >= 0xEE);
        if self.decisions.keys().any(high)
            || self.retracted.keys().any(high)
            || self.proposals.keys().any(high)
        {
            return to_canonical_string(&self.to_value());
        }
        let records = self.decisions.len() + self.retracted.len() + self.proposals.len();
        let mut out = String::with_capacity(256 + 320 * records);
        let w = &mut out;
        self.write_opening(w);
        map(w, &self.decisions, write_decision);
        self.write_middle(w);
        if !self.proposals.is_empty() {
            w.push_str(",\"proposals\":");
            map(w, &self.proposals, write_proposals);
        }
        w.push_str(",\"retracted\":");
        map(w, &self.retracted, write_retraction);
        self.write_closing(w);
        out
    }

    // The parts of `canonical` around the three maps, so that
    // `Log::fold_piece` can write the maps from checkpoint pages and still
    // produce the same bytes.

    /// `{"authority":…,"counts":…,"decisions":`
    pub(crate) fn write_opening(&self, w: &mut String) {
        w.push_str("{\"authority\":");
        match &self.authority {
            None => w.push_str("null"),
            Some(a) => object(
                w,
                vec![
                    ("at_ms", F::N(a.at_ms)),
                    ("epoch", F::N(a.epoch)),
                    ("holder", F::S(&a.holder)),
                    ("seq", F::N(a.seq)),
                ],
            ),
        }
        w.push_str(",\"counts\":");
        let c = &self.counts;
        let mut counts = vec![
            ("authority", F::N(c.authority)),
            ("decide", F::N(c.decide)),
            ("events", F::N(self.seq)),
            ("retract", F::N(c.retract)),
        ];
        for (name, n) in [("accept", c.accept), ("propose", c.propose), ("reject", c.reject)] {
            if n > 0 {
                counts.push((name, F::N(n)));
            }
        }
        object(w, counts);
        w.push_str(",\"decisions\":");
    }

    /// `,"head":…`, between the decisions and the proposals.
    pub(crate) fn write_middle(&self, w: &mut String) {
        w.push_str(",\"head\":");
        match &self.head {
            None => w.push_str("null"),
            Some(head) => write_string(head, w),
        }
    }

    /// `,"seq":…,"space":…}`, after the retracted decisions.
    pub(crate) fn write_closing(&self, w: &mut String) {
        w.push_str(",\"seq\":");
        w.push_str(&self.seq.to_string());
        w.push_str(",\"space\":");
        write_string(&self.space, w);
        w.push('}');
    }
}

/// A decision in force, as the `decisions` map holds it.
pub(crate) fn write_decision(w: &mut String, d: &Decision) {
    object(w, decision_fields(d));
}

/// A withdrawn decision, as the `retracted` map holds it.
pub(crate) fn write_retraction(w: &mut String, r: &Retraction) {
    object(w, retraction_fields(r));
}

/// One key's proposals by id, as the `proposals` map holds them.
pub(crate) fn write_proposals(w: &mut String, by_id: &std::collections::BTreeMap<String, Proposal>) {
    map(w, by_id, |w, p| object(w, proposal_fields(p)));
}

/// A member's value, written canonically.
enum F<'a> {
    S(&'a str),
    N(u64),
    V(&'a Value),
    Rejected(&'a [Rejected]),
    Closing(&'a Closing),
}

/// An object of ASCII-named members, in RFC 8785 order.
fn object(w: &mut String, mut fields: Vec<(&str, F<'_>)>) {
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
    w.push('{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            w.push(',');
        }
        write_string(name, w);
        w.push(':');
        match value {
            F::S(s) => write_string(s, w),
            F::N(n) => w.push_str(&n.to_string()),
            F::V(v) => write_canonical(v, w),
            F::Rejected(rejected) => {
                w.push('[');
                for (j, r) in rejected.iter().enumerate() {
                    if j > 0 {
                        w.push(',');
                    }
                    object(w, vec![("option", F::S(&r.option)), ("why", F::S(&r.why))]);
                }
                w.push(']');
            }
            F::Closing(c) => object(w, closing_fields(c)),
        }
    }
    w.push('}');
}

/// A map whose keys sort the same in bytes and UTF-16 (checked by the caller).
fn map<T>(
    w: &mut String,
    entries: &std::collections::BTreeMap<String, T>,
    mut value: impl FnMut(&mut String, &T),
) {
    w.push('{');
    for (i, (key, v)) in entries.iter().enumerate() {
        if i > 0 {
            w.push(',');
        }
        write_string(key, w);
        w.push(':');
        value(w, v);
    }
    w.push('}');
}

fn details<'a>(fields: &mut Vec<(&'a str, F<'a>)>, details: &'a Details) {
    fields.extend(details.iter().map(|(name, v)| (name.as_str(), F::V(v))));
}

fn closing_fields(c: &Closing) -> Vec<(&str, F<'_>)> {
    let mut f =
        vec![("actor", F::S(&c.actor)), ("at_ms", F::N(c.at_ms)), ("id", F::S(&c.id)), ("seq", F::N(c.seq))];
    if let Some(why) = &c.rationale {
        f.push(("rationale", F::S(why)));
    }
    f
}

fn decision_fields(d: &Decision) -> Vec<(&str, F<'_>)> {
    let mut f = vec![
        ("actor", F::S(&d.actor)),
        ("at_ms", F::N(d.at_ms)),
        ("choice", F::S(&d.choice)),
        ("id", F::S(&d.id)),
        ("rationale", F::S(&d.rationale)),
        ("rejected", F::Rejected(&d.rejected)),
        ("revision", F::N(d.revision)),
        ("seq", F::N(d.seq)),
    ];
    if let Some(a) = &d.accepted {
        f.push(("accepted", F::Closing(a)));
    }
    details(&mut f, &d.details);
    f
}

fn retraction_fields(r: &Retraction) -> Vec<(&str, F<'_>)> {
    let mut f = vec![
        ("actor", F::S(&r.actor)),
        ("at_ms", F::N(r.at_ms)),
        ("choice", F::S(&r.choice)),
        ("decision", F::S(&r.decision)),
        ("id", F::S(&r.id)),
        ("rationale", F::S(&r.rationale)),
        ("revision", F::N(r.revision)),
        ("seq", F::N(r.seq)),
    ];
    if let Some(status) = &r.status {
        f.push(("status", F::S(status)));
    }
    f
}

fn proposal_fields(p: &Proposal) -> Vec<(&str, F<'_>)> {
    let mut f = vec![
        ("actor", F::S(&p.actor)),
        ("at_ms", F::N(p.at_ms)),
        ("choice", F::S(&p.choice)),
        ("id", F::S(&p.id)),
        ("rationale", F::S(&p.rationale)),
        ("rejected", F::Rejected(&p.rejected)),
        ("seq", F::N(p.seq)),
        ("status", F::S(&p.status)),
    ];
    if let Some(s) = &p.supersedes {
        f.push(("supersedes", F::S(s)));
    }
    if let Some(r) = &p.rejection {
        f.push(("rejection", F::Closing(r)));
    }
    details(&mut f, &p.details);
    f
}

fn rejected_value(rejected: &[Rejected]) -> Value {
    rejected.iter().map(|r| json!({"option": r.option, "why": r.why})).collect()
}

fn closing_value(c: &Closing) -> Value {
    let mut v = json!({"id": c.id, "actor": c.actor, "seq": c.seq, "at_ms": c.at_ms});
    if let Some(why) = &c.rationale {
        v["rationale"] = why.clone().into();
    }
    v
}

/// Copy the details into a record's JSON (they never share a name with
/// the fixed fields).
fn with_details(mut v: Value, details: &Details) -> Value {
    if let Value::Object(m) = &mut v {
        m.extend(details.iter().map(|(k, d)| (k.clone(), d.clone())));
    }
    v
}

pub(crate) fn decision_value(d: &Decision) -> Value {
    let mut v = json!({
        "choice": d.choice, "rationale": d.rationale, "rejected": rejected_value(&d.rejected), "id": d.id,
        "actor": d.actor, "seq": d.seq, "at_ms": d.at_ms, "revision": d.revision,
    });
    if let Some(a) = &d.accepted {
        v["accepted"] = closing_value(a);
    }
    with_details(v, &d.details)
}

pub(crate) fn proposal_value(p: &Proposal) -> Value {
    let mut v = json!({
        "choice": p.choice, "rationale": p.rationale, "rejected": rejected_value(&p.rejected), "id": p.id,
        "actor": p.actor, "seq": p.seq, "at_ms": p.at_ms, "status": p.status,
    });
    if let Some(s) = &p.supersedes {
        v["supersedes"] = s.clone().into();
    }
    if let Some(r) = &p.rejection {
        v["rejection"] = closing_value(r);
    }
    with_details(v, &p.details)
}

pub(crate) fn retraction_value(r: &Retraction) -> Value {
    let mut v = json!({
        "rationale": r.rationale, "choice": r.choice, "decision": r.decision,
        "id": r.id, "actor": r.actor, "seq": r.seq, "at_ms": r.at_ms,
        "revision": r.revision,
    });
    if let Some(status) = &r.status {
        v["status"] = status.clone().into();
    }
    v
}
