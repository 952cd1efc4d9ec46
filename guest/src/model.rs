//! Names, intents and events, and every intake rule: what a space name, an
//! id, an actor, a key and each kind's body may be, and the v1 event envelope.
//!
//! Every rule rejects with a sentence that names the field and what is wrong
//! with it; nothing here panics on any input.

use serde_json::{Map, Value};

use crate::canonical::{to_canonical_string, write_canonical, write_string};
use crate::error::Error;
use crate::json::{is_noncharacter, parse_strict};
use crate::record::{self, Details, NEWEST_VERSION, required_version};

/// The `v` field of events that use nothing newer than format v1 (every
/// event written before format v2 existed). An event is stamped with the
/// lowest version that can hold it: see [`record::required_version`].
pub const FORMAT_VERSION: u64 = record::V1;
/// Largest accepted intent body, in bytes of JSON text.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest accepted stored event (body plus the envelope), in bytes.
pub const MAX_EVENT_BYTES: usize = MAX_BODY_BYTES + 4 * 1024;
/// Longest decision key, in characters.
pub const MAX_KEY_CHARS: usize = 256;
/// Longest actor name, in characters.
pub const MAX_ACTOR_CHARS: usize = 64;
/// Longest intent id, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Largest integer a JSON number can carry without losing digits.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// Where a space's events live.
pub const SPACE_REF_PREFIX: &str = "refs/dlog/spaces/";

/// Check a space name: `^[a-z0-9][a-z0-9._-]{0,63}$`, no `..`, not ending in
/// `.` or `.lock` (so it is always a valid git ref component).
pub fn validate_space(name: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::invalid(format!("space name {name:?} {why}")));
    if name.is_empty() {
        return Err(Error::invalid("space name is empty"));
    }
    if name.len() > 64 {
        return bad("is longer than 64 characters");
    }
    let first = name.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return bad("must start with a lowercase letter or a digit");
    }
    if let Some(c) =
        name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!("contains {c:?}; only a-z, 0-9, '.', '_' and '-' are allowed"));
    }
    if name.contains("..") {
        return bad("contains \"..\"");
    }
    if name.ends_with('.') || name.ends_with(".lock") {
        return bad("must not end in \".\" or \".lock\"");
    }
    Ok(())
}

/// The ref that holds a space's newest event.
pub fn space_ref(space: &str) -> String {
    format!("{SPACE_REF_PREFIX}{space}")
}

/// Check an intent or event id: 1–128 visible ASCII characters (no spaces,
/// so an id survives a git trailer and a shell unquoted).
pub fn validate_id(id: &str, what: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if id.len() > MAX_ID_CHARS {
        return Err(format!("{what} is {} characters; the limit is {MAX_ID_CHARS}", id.len()));
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("{what} {id:?} contains {c:?}; ids are visible ASCII characters without spaces"));
    }
    Ok(())
}

/// Check an actor (it becomes the git author name): 1–64 characters, no
/// control characters, no `<` or `>`, no Unicode noncharacters, no
/// surrounding whitespace.
pub fn validate_actor(actor: &str, what: &str) -> Result<(), String> {
    let chars = actor.chars().count();
    if chars == 0 {
        return Err(format!("{what} is empty"));
    }
    if chars > MAX_ACTOR_CHARS {
        return Err(format!("{what} is {chars} characters; the limit is {MAX_ACTOR_CHARS}"));
    }
    if let Some(c) = actor.chars().find(|c| c.is_control() || matches!(c, '<' | '>')) {
        return Err(format!(
            "{what} {actor:?} contains {c:?}; control characters, '<' and '>' are not allowed"
        ));
    }
    // The actor is stored in the event's JSON, which is read back as strict
    // I-JSON: a noncharacter accepted here would make the event unreadable.
    if let Some(c) = actor.chars().find(|&c| is_noncharacter(u32::from(c))) {
        return Err(format!(
            "{what} {actor:?} contains the Unicode noncharacter U+{:04X}, which I-JSON does not allow",
            u32::from(c)
        ));
    }
    if actor.trim() != actor {
        return Err(format!("{what} {actor:?} starts or ends with whitespace"));
    }
    Ok(())
}

fn validate_key(key: &str) -> Result<(), String> {
    let chars = key.chars().count();
    if chars == 0 {
        return Err("field \"key\" is empty".into());
    }
    if chars > MAX_KEY_CHARS {
        return Err(format!("field \"key\" is {chars} characters; the limit is {MAX_KEY_CHARS}"));
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!("field \"key\" {key:?} contains the control character {c:?}"));
    }
    Ok(())
}

/// The event kinds: `decide`, `retract` and `authority` since format v1;
/// `propose`, `accept` and `reject` since v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Sets a decision.
    Decide,
    /// Withdraws a decision.
    Retract,
    /// Records a new lease holder.
    Authority,
    /// Records a proposal for a key, not in force until accepted.
    Propose,
    /// Puts a proposal in force.
    Accept,
    /// Declines a proposal.
    Reject,
}

impl Kind {
    /// Parse a kind name.
    pub fn parse(kind: &str) -> Result<Kind, Error> {
        match kind {
            "decide" => Ok(Kind::Decide),
            "retract" => Ok(Kind::Retract),
            "authority" => Ok(Kind::Authority),
            "propose" => Ok(Kind::Propose),
            "accept" => Ok(Kind::Accept),
            "reject" => Ok(Kind::Reject),
            other => Err(Error::invalid(format!(
                "unknown kind {other:?}; expected \"decide\", \"retract\", \"propose\", \"accept\", \"reject\" or \"authority\""
            ))),
        }
    }
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Decide => "decide",
            Kind::Retract => "retract",
            Kind::Authority => "authority",
            Kind::Propose => "propose",
            Kind::Accept => "accept",
            Kind::Reject => "reject",
        }
    }
}

/// An alternative that was considered and not chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The alternative.
    pub option: String,
    /// Why not.
    pub why: String,
}

/// What a `decide` or a `propose` records: the choice, why, why not, what
/// it replaces, and the optional v2 details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// What was chosen.
    pub choice: String,
    /// Why.
    pub rationale: String,
    /// What was not chosen, and why not.
    pub rejected: Vec<Rejected>,
    /// The event id of the decision this one replaces.
    pub supersedes: Option<String>,
    /// Title, context, consequences, people, tags, links and `meta`.
    pub details: Details,
}

/// A validated body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `{key, choice, rationale, rejected?, supersedes?, <details>?}`
    Decide {
        /// The decision key.
        key: String,
        /// The decision.
        record: Record,
    },
    /// `{key, rationale, supersedes?, status?}`
    Retract {
        /// The decision key.
        key: String,
        /// Why it is withdrawn.
        rationale: String,
        /// The event id of the decision withdrawn.
        supersedes: Option<String>,
        /// How it is withdrawn (e.g. `deprecated`); none: `retracted`.
        status: Option<String>,
    },
    /// `{holder, epoch}`
    Authority {
        /// The new lease holder.
        holder: String,
        /// Its epoch.
        epoch: u64,
    },
    /// `{key, choice, rationale, rejected?, supersedes?, status?, <details>?}`
    Propose {
        /// The decision key.
        key: String,
        /// What is proposed.
        record: Record,
        /// Its status: `proposed`, `draft` or a team's own (`on hold`).
        status: String,
    },
    /// `{key, proposal, rationale?, supersedes?}`
    Accept {
        /// The decision key.
        key: String,
        /// The event id of the proposal accepted.
        proposal: String,
        /// Why it was accepted, if said.
        rationale: Option<String>,
        /// The decision in force it replaces (defaults to the proposal's).
        supersedes: Option<String>,
    },
    /// `{key, proposal, rationale}`
    Reject {
        /// The decision key.
        key: String,
        /// The event id of the proposal declined.
        proposal: String,
        /// Why it was declined.
        rationale: String,
    },
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads the fields of one JSON object, rejecting unknown ones.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    context: &'a str,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, context: &'a str, allowed: &[&str]) -> Result<Fields<'a>, String> {
        let Value::Object(map) = value else {
            return Err(format!("{context} must be a JSON object, not {}", type_name(value)));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "{context} has an unknown field {unknown:?}; allowed fields are {}",
                allowed.join(", ")
            ));
        }
        Ok(Fields { map, context })
    }

    fn optional_str(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(format!("{}: field {name:?} must be a string, not {}", self.context, type_name(other)))
            }
        }
    }

    fn string(&self, name: &str) -> Result<&'a str, String> {
        self.optional_str(name)?.ok_or_else(|| format!("{}: field {name:?} is missing", self.context))
    }

    /// A required string with at least one non-whitespace character.
    fn text(&self, name: &str) -> Result<String, String> {
        let s = self.string(name)?;
        if s.trim().is_empty() {
            return Err(format!("{}: field {name:?} is empty", self.context));
        }
        Ok(s.to_owned())
    }

    fn integer(&self, name: &str, min: u64) -> Result<u64, String> {
        let value =
            self.map.get(name).ok_or_else(|| format!("{}: field {name:?} is missing", self.context))?;
        match value.as_u64() {
            Some(n) if n >= min && n <= MAX_SAFE_INTEGER => Ok(n),
            _ => Err(format!(
                "{}: field {name:?} must be an integer from {min} to 2^53-1, not {value}",
                self.context
            )),
        }
    }

    fn supersedes(&self) -> Result<Option<String>, String> {
        let Some(id) = self.optional_str("supersedes")? else {
            return Ok(None);
        };
        validate_id(id, &format!("{}: field \"supersedes\"", self.context))?;
        Ok(Some(id.to_owned()))
    }
}

impl Fields<'_> {
    /// A required event id (`proposal`).
    fn id(&self, name: &str) -> Result<String, String> {
        let id = self.string(name)?;
        validate_id(id, &format!("{}: field {name:?}", self.context))?;
        Ok(id.to_owned())
    }

    /// The key, checked.
    fn key(&self) -> Result<String, String> {
        let key = self.string("key")?;
        validate_key(key).map_err(|e| format!("{}: {e}", self.context))?;
        Ok(key.to_owned())
    }

    /// An optional non-blank string.
    fn optional_text(&self, name: &str) -> Result<Option<String>, String> {
        match self.map.contains_key(name) {
            true => self.text(name).map(Some),
            false => Ok(None),
        }
    }

    /// The fields a `decide` and a `propose` share.
    fn record(&self) -> Result<Record, String> {
        let context = self.context;
        let rejected = match self.map.get("rejected") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let what = format!("{context}: rejected[{i}]");
                    let r = Fields::new(item, &what, &["option", "why"])?;
                    Ok(Rejected { option: r.text("option")?, why: r.text("why")? })
                })
                .collect::<Result<_, String>>()?,
            Some(other) => {
                return Err(format!(
                    "{context}: field \"rejected\" must be an array of {{option, why}}, not {}",
                    type_name(other)
                ));
            }
        };
        Ok(Record {
            choice: self.text("choice")?,
            rationale: self.text("rationale")?,
            rejected,
            supersedes: self.supersedes()?,
            details: record::details(self.map, context)?,
        })
    }
}

/// `decide`'s fields, then the v2 details.
const DECIDE_FIELDS: &[&str] = &[
    "key",
    "choice",
    "rationale",
    "rejected",
    "supersedes",
    "title",
    "context",
    "consequences",
    "deciders",
    "consulted",
    "informed",
    "tags",
    "links",
    "meta",
];
/// `propose`'s fields: `decide`'s and a status.
const PROPOSE_FIELDS: &[&str] = &[
    "key",
    "choice",
    "rationale",
    "rejected",
    "supersedes",
    "status",
    "title",
    "context",
    "consequences",
    "deciders",
    "consulted",
    "informed",
    "tags",
    "links",
    "meta",
];

impl Body {
    /// Validate a parsed body for `kind`.
    pub fn from_value(kind: Kind, value: &Value) -> Result<Body, String> {
        let context = format!("body of a {:?} intent", kind.as_str());
        match kind {
            Kind::Decide => {
                let f = Fields::new(value, &context, DECIDE_FIELDS)?;
                let key = f.key()?;
                Ok(Body::Decide { key, record: f.record()? })
            }
            Kind::Propose => {
                let f = Fields::new(value, &context, PROPOSE_FIELDS)?;
                let key = f.key()?;
                let record = f.record()?;
                let status =
                    record::proposal_status(f.map.get("status"), &format!("{context}: field \"status\""))?;
                Ok(Body::Propose { key, record, status })
            }
            Kind::Retract => {
                let f = Fields::new(value, &context, &["key", "rationale", "supersedes", "status"])?;
                let key = f.key()?;
                let status = match f.map.get("status") {
                    None => None,
                    Some(v) => Some(record::status(v, &format!("{context}: field \"status\""))?),
                };
                Ok(Body::Retract {
                    key,
                    rationale: f.text("rationale")?,
                    supersedes: f.supersedes()?,
                    status,
                })
            }
            Kind::Accept => {
                let f = Fields::new(value, &context, &["key", "proposal", "rationale", "supersedes"])?;
                Ok(Body::Accept {
                    key: f.key()?,
                    proposal: f.id("proposal")?,
                    rationale: f.optional_text("rationale")?,
                    supersedes: f.supersedes()?,
                })
            }
            Kind::Reject => {
                let f = Fields::new(value, &context, &["key", "proposal", "rationale"])?;
                Ok(Body::Reject {
                    key: f.key()?,
                    proposal: f.id("proposal")?,
                    rationale: f.text("rationale")?,
                })
            }
            Kind::Authority => {
                let f = Fields::new(value, &context, &["holder", "epoch"])?;
                let holder = f.string("holder")?;
                validate_actor(holder, &format!("{context}: field \"holder\""))?;
                Ok(Body::Authority { holder: holder.to_owned(), epoch: f.integer("epoch", 1)? })
            }
        }
    }

    /// The decision key the body is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Body::Decide { key, .. }
            | Body::Retract { key, .. }
            | Body::Propose { key, .. }
            | Body::Accept { key, .. }
            | Body::Reject { key, .. } => Some(key),
            Body::Authority { .. } => None,
        }
    }
}

/// An intent that passed intake.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    /// Idempotency key.
    pub id: String,
    /// Who decides.
    pub actor: String,
    /// The kind.
    pub kind: Kind,
    /// The typed body.
    pub body: Body,
    /// The body as parsed (stored canonically).
    pub body_json: Value,
    /// Optimistic concurrency check.
    pub expect_seq: Option<u64>,
}

impl Intent {
    /// Validate raw intent fields (as they arrive through the WIT).
    pub fn validate(
        id: &str,
        actor: &str,
        kind: &str,
        body: &str,
        expect_seq: Option<u64>,
    ) -> Result<Intent, Error> {
        validate_id(id, "intent id").map_err(Error::Invalid)?;
        validate_actor(actor, "actor").map_err(Error::Invalid)?;
        let kind = Kind::parse(kind)?;
        let body_json = parse_strict(body, MAX_BODY_BYTES)
            .map_err(|e| Error::invalid(format!("body is not valid I-JSON: {e}")))?;
        let typed = Body::from_value(kind, &body_json).map_err(Error::Invalid)?;
        Ok(Intent { id: id.to_owned(), actor: actor.to_owned(), kind, body: typed, body_json, expect_seq })
    }

    /// Whether a stored event records this same intent (an idempotent resend).
    pub fn matches(&self, event: &Event) -> bool {
        self.actor == event.actor && self.kind == event.kind && self.body_json == event.body_json
    }
}

/// An accepted, stamped intent: one entry of the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Its space.
    pub space: String,
    /// Its position, from 1.
    pub seq: u64,
    /// The lease epoch it was written under.
    pub epoch: u64,
    /// The intent id.
    pub id: String,
    /// Who decided.
    pub actor: String,
    /// The holder's clock.
    pub at_ms: u64,
    /// The kind.
    pub kind: Kind,
    /// The typed body.
    pub body: Body,
    /// The body as stored.
    pub body_json: Value,
}

impl Event {
    /// The event as a JSON value (v1 envelope).
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("v".into(), self.version().into());
        map.insert("space".into(), self.space.clone().into());
        map.insert("seq".into(), self.seq.into());
        map.insert("epoch".into(), self.epoch.into());
        map.insert("id".into(), self.id.clone().into());
        map.insert("actor".into(), self.actor.clone().into());
        map.insert("at_ms".into(), self.at_ms.into());
        map.insert("kind".into(), self.kind.as_str().into());
        map.insert("body".into(), self.body_json.clone());
        Value::Object(map)
    }

    /// The stored form: RFC 8785 canonical JSON. Written directly, envelope
    /// keys in canonical order (equal to `to_canonical_string(&self.to_value())`,
    /// without copying the body into a new value for every append).
    pub fn canonical(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(192);
        out.push_str("{\"actor\":");
        write_string(&self.actor, &mut out);
        // Writing to a String cannot fail.
        let _ = write!(out, ",\"at_ms\":{},\"body\":", self.at_ms);
        write_canonical(&self.body_json, &mut out);
        let _ = write!(out, ",\"epoch\":{},\"id\":", self.epoch);
        write_string(&self.id, &mut out);
        out.push_str(",\"kind\":");
        write_string(self.kind.as_str(), &mut out);
        let _ = write!(out, ",\"seq\":{},\"space\":", self.seq);
        write_string(&self.space, &mut out);
        let _ = write!(out, ",\"v\":{}}}", self.version());
        out
    }

    /// The format version the event is stored in: the lowest that can hold it.
    pub fn version(&self) -> u64 {
        required_version(self.kind, &self.body_json)
    }

    /// The body as canonical JSON.
    pub fn body_canonical(&self) -> String {
        to_canonical_string(&self.body_json)
    }

    /// Parse a stored or exported event. It must be canonical JSON and pass
    /// every intake rule, so what is read back is exactly what was written.
    pub fn parse(text: &str) -> Result<Event, String> {
        let value = parse_strict(text, MAX_EVENT_BYTES).map_err(|e| format!("not valid I-JSON: {e}"))?;
        let f = Fields::new(
            &value,
            "event",
            &["v", "space", "seq", "epoch", "id", "actor", "at_ms", "kind", "body"],
        )?;
        let v = f.integer("v", 0)?;
        if v == 0 || v > NEWEST_VERSION {
            return Err(format!(
                "event format v{v} is not supported: this decision-log reads formats v1 to v{NEWEST_VERSION}; \
                 the log was written by a newer decision-log, so upgrade to one that reads v{v}"
            ));
        }
        let space = f.string("space")?;
        validate_space(space).map_err(|e| e.to_string())?;
        let id = f.string("id")?;
        validate_id(id, "event: field \"id\"")?;
        let actor = f.string("actor")?;
        validate_actor(actor, "event: field \"actor\"")?;
        let kind = Kind::parse(f.string("kind")?).map_err(|e| e.to_string())?;
        let body_json = f.map.get("body").cloned().ok_or("event: field \"body\" is missing")?;
        let event = Event {
            space: space.to_owned(),
            seq: f.integer("seq", 1)?,
            epoch: f.integer("epoch", 1)?,
            id: id.to_owned(),
            actor: actor.to_owned(),
            at_ms: f.integer("at_ms", 0)?,
            kind,
            body: Body::from_value(kind, &body_json)?,
            body_json,
        };
        // One intent has one stored form: the lowest version that holds it.
        if event.version() != v {
            return Err(format!(
                "event seq {} is stamped format v{v}, but its kind and fields are those of format v{}",
                event.seq,
                event.version()
            ));
        }
        // The parsed value holds exactly the event's fields, so its canonical
        // form is the event's (without building the event's value again).
        if to_canonical_string(&value) != text {
            return Err("event is not in canonical (RFC 8785) form".into());
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_body() -> &'static str {
        r#"{"key":"db","choice":"postgres","rationale":"we know it","rejected":[{"option":"mongo","why":"no joins"}]}"#
    }

    #[test]
    fn space_names_follow_the_documented_pattern() {
        for ok in ["a", "team-1", "x.y_z", "0", &"a".repeat(64)] {
            assert_eq!(validate_space(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("A", "must start"),
            ("-a", "must start"),
            (".a", "must start"),
            ("a/b", "contains '/'"),
            ("a..b", "\"..\""),
            ("a.", "must not end"),
            ("a.lock", "must not end"),
            ("a b", "contains ' '"),
        ] {
            let err = validate_space(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let long = "a".repeat(65);
        assert!(validate_space(&long).unwrap_err().to_string().contains("longer than 64"));
    }

    #[test]
    fn a_valid_decide_intent_keeps_its_body_and_rejected_options() {
        let intent = Intent::validate("i-1", "alice", "decide", decide_body(), Some(0)).unwrap();
        match intent.body {
            Body::Decide { key, record: Record { rejected, supersedes, .. } } => {
                assert_eq!(key, "db");
                assert_eq!(rejected, vec![Rejected { option: "mongo".into(), why: "no joins".into() }]);
                assert_eq!(supersedes, None);
            }
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn every_malformed_intent_is_rejected_with_its_reason() {
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            ("", "alice", "decide", decide_body(), "intent id is empty"),
            ("has space", "alice", "decide", decide_body(), "visible ASCII"),
            (&"x".repeat(129), "alice", "decide", decide_body(), "the limit is 128"),
            ("i", "", "decide", decide_body(), "actor is empty"),
            ("i", "a<b>", "decide", decide_body(), "'<'"),
            ("i", "a\nb", "decide", decide_body(), "control"),
            ("i", " alice", "decide", decide_body(), "whitespace"),
            ("i", &"a".repeat(65), "decide", decide_body(), "the limit is 64"),
            ("i", "alice", "vote", decide_body(), "unknown kind \"vote\""),
            ("i", "alice", "decide", "[1]", "must be a JSON object, not an array"),
            ("i", "alice", "decide", "{", "not valid I-JSON"),
            ("i", "alice", "decide", r#"{"key":"k","key":"k"}"#, "Duplicate key \"key\""),
            ("i", "alice", "decide", r#"{"choice":"c","rationale":"r"}"#, "field \"key\" is missing"),
            ("i", "alice", "decide", r#"{"key":"","choice":"c","rationale":"r"}"#, "field \"key\" is empty"),
            (
                "i",
                "alice",
                "decide",
                r#"{"key":1,"choice":"c","rationale":"r"}"#,
                "must be a string, not a number",
            ),
            ("i", "alice", "decide", r#"{"key":"k","choice":"c"}"#, "field \"rationale\" is missing"),
            (
                "i",
                "alice",
                "decide",
                r#"{"key":"k","choice":" ","rationale":"r"}"#,
                "field \"choice\" is empty",
            ),
            (
                "i",
                "alice",
                "decide",
                r#"{"key":"k","choice":"c","rationale":"r","x":1}"#,
                "unknown field \"x\"",
            ),
            (
                "i",
                "alice",
                "decide",
                r#"{"key":"k","choice":"c","rationale":"r","rejected":{}}"#,
                "must be an array",
            ),
            (
                "i",
                "alice",
                "decide",
                r#"{"key":"k","choice":"c","rationale":"r","rejected":[{"option":"o"}]}"#,
                "rejected[0]: field \"why\" is missing",
            ),
            (
                "i",
                "alice",
                "decide",
                r#"{"key":"k","choice":"c","rationale":"r","supersedes":""}"#,
                "\"supersedes\" is empty",
            ),
            ("i", "alice", "retract", r#"{"key":"k"}"#, "field \"rationale\" is missing"),
            ("i", "alice", "authority", r#"{"holder":"h","epoch":0}"#, "integer from 1"),
            ("i", "alice", "authority", r#"{"holder":"h","epoch":1.5}"#, "integer from 1"),
            (
                "i",
                "alice",
                "decide",
                r#"{"key":"k","choice":"c","rationale":"r","n":9007199254740993}"#,
                "not valid I-JSON",
            ),
        ];
        for (id, actor, kind, body, want) in cases {
            let err = Intent::validate(id, actor, kind, body, None).unwrap_err().to_string();
            assert!(err.contains(want), "{kind} {body}: expected {want:?} in {err:?}");
        }
        let long_key = format!(r#"{{"key":"{}","choice":"c","rationale":"r"}}"#, "k".repeat(257));
        let err = Intent::validate("i", "alice", "decide", &long_key, None).unwrap_err().to_string();
        assert!(err.contains("the limit is 256"), "{err}");
        let big = format!(r#"{{"key":"k","choice":"{}","rationale":"r"}}"#, "c".repeat(MAX_BODY_BYTES));
        let err = Intent::validate("i", "alice", "decide", &big, None).unwrap_err().to_string();
        assert!(err.contains("65536"), "{err}");
    }

    #[test]
    fn an_actor_with_a_unicode_noncharacter_is_refused_so_that_its_event_stays_readable() {
        // Found by the intent_validation fuzz target: the actor was accepted,
        // and the event it was stamped into was refused by `Event::parse`.
        for actor in ["\u{ffff}alice", "al\u{fdd0}ice", "alice\u{10fffe}"] {
            let err = Intent::validate("i-8", actor, "decide", decide_body(), None).unwrap_err().to_string();
            assert!(err.contains("noncharacter"), "{actor:?}: {err}");
        }
        let err = Intent::validate("i", "alice", "authority", r#"{"holder":"h\uffff","epoch":1}"#, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("noncharacter"), "{err}");
        // Their neighbours are ordinary characters.
        let intent =
            Intent::validate("i", "\u{fffd}\u{fdcf}\u{1fffd}", "decide", decide_body(), None).unwrap();
        let event = Event {
            space: "s".into(),
            seq: 1,
            epoch: 1,
            id: intent.id.clone(),
            actor: intent.actor.clone(),
            at_ms: 0,
            kind: intent.kind,
            body: intent.body.clone(),
            body_json: intent.body_json.clone(),
        };
        assert_eq!(Event::parse(&event.canonical()), Ok(event));
    }

    /// RFC 8785 §3.2.2's input, verbatim, and its canonical form.
    pub(crate) const RFC8785_INPUT: &str = "{\n  \"numbers\": [333333333.33333329, 1E30, 4.50,\n              2e-3, 0.000000000000000000000000001],\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}";
    pub(crate) const RFC8785_OUTPUT: &str = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    /// RFC 8785 §3.2.3's property-sorting input and its canonical form.
    pub(crate) const RFC8785_SORT_INPUT: &str = "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"\\r\": \"Carriage Return\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"1\": \"One\",\n  \"\\ud83d\\ude00\": \"Emoji: Grinning Face\",\n  \"\\u0080\": \"Control\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"\n}";
    pub(crate) const RFC8785_SORT_OUTPUT: &str = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";

    fn stamped(intent: &Intent) -> Event {
        Event {
            space: "s".into(),
            seq: 1,
            epoch: 1,
            id: intent.id.clone(),
            actor: intent.actor.clone(),
            at_ms: 0,
            kind: intent.kind,
            body: intent.body.clone(),
            body_json: intent.body_json.clone(),
        }
    }

    #[test]
    fn meta_holds_the_rfc_8785_examples_in_their_canonical_form() {
        for (input, output) in [(RFC8785_INPUT, RFC8785_OUTPUT), (RFC8785_SORT_INPUT, RFC8785_SORT_OUTPUT)] {
            let body = format!(r#"{{"key":"k","choice":"c","rationale":"r","meta":{input}}}"#);
            let intent = Intent::validate("i-1", "alice", "decide", &body, None).unwrap();
            let event = stamped(&intent);
            let text = event.canonical();
            assert!(text.contains(&format!("\"meta\":{output},")), "{text}");
            assert!(text.ends_with(",\"v\":2}"), "a body with meta is format v2: {text}");
            assert_eq!(Event::parse(&text).unwrap(), event);
        }
    }

    #[test]
    fn the_new_kinds_validate_their_bodies_and_are_format_v2() {
        for (kind, body) in [
            ("propose", r#"{"key":"k","choice":"c","rationale":"r","status":"on hold","title":"T"}"#),
            ("accept", r#"{"key":"k","proposal":"p-1"}"#),
            ("reject", r#"{"key":"k","proposal":"p-1","rationale":"no"}"#),
            ("retract", r#"{"key":"k","rationale":"old","status":"deprecated"}"#),
        ] {
            let event = stamped(&Intent::validate("i", "alice", kind, body, None).unwrap());
            assert_eq!(event.version(), 2, "{kind}");
            assert_eq!(Event::parse(&event.canonical()).unwrap(), event);
        }
        for (kind, body, want) in [
            (
                "propose",
                r#"{"key":"k","choice":"c","rationale":"r","status":"accepted"}"#,
                "reached through an event",
            ),
            ("propose", r#"{"key":"k","choice":"c","rationale":"r","status":"Draft"}"#, "lowercase"),
            ("accept", r#"{"key":"k"}"#, "field \"proposal\" is missing"),
            ("accept", r#"{"key":"k","proposal":"p","rationale":" "}"#, "\"rationale\" is empty"),
            ("reject", r#"{"key":"k","proposal":"p"}"#, "field \"rationale\" is missing"),
            (
                "decide",
                r#"{"key":"k","choice":"c","rationale":"r","status":"draft"}"#,
                "unknown field \"status\"",
            ),
            ("decide", r#"{"key":"k","choice":"c","rationale":"r","tags":"x"}"#, "\"tags\" must be an array"),
        ] {
            let err = Intent::validate("i", "alice", kind, body, None).unwrap_err().to_string();
            assert!(err.contains(want), "{kind} {body}: expected {want:?} in {err:?}");
        }
        // A v1 body stamped as v2 (or the reverse) is not the stored form.
        let v1 = stamped(&Intent::validate("i", "alice", "decide", decide_body(), None).unwrap()).canonical();
        assert!(Event::parse(&v1.replace("\"v\":1", "\"v\":2")).unwrap_err().contains("format v1"));
    }

    #[test]
    fn an_event_round_trips_through_its_canonical_form() {
        let intent = Intent::validate("i-1", "alice", "decide", decide_body(), None).unwrap();
        let event = Event {
            space: "s".into(),
            seq: 3,
            epoch: 2,
            id: intent.id.clone(),
            actor: intent.actor.clone(),
            at_ms: 1_700_000_000_123,
            kind: intent.kind,
            body: intent.body.clone(),
            body_json: intent.body_json.clone(),
        };
        let text = event.canonical();
        assert_eq!(text, to_canonical_string(&event.to_value()), "the direct writer is canonical");
        assert!(
            text.starts_with(r#"{"actor":"alice","at_ms":1700000000123,"body":{"choice":"postgres""#),
            "{text}"
        );
        assert_eq!(Event::parse(&text).unwrap(), event);
        let spaced = text.replacen(':', ": ", 1);
        assert!(Event::parse(&spaced).unwrap_err().contains("canonical"));
        let v2 = text.replace("\"v\":1", "\"v\":2");
        assert!(Event::parse(&v2).unwrap_err().contains("stamped format v2"));
        let v3 = text.replace("\"v\":1", "\"v\":3");
        let err = Event::parse(&v3).unwrap_err();
        assert!(err.contains("v3 is not supported") && err.contains("upgrade"), "{err}");
    }
}
