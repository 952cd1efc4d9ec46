//! Checkpoints: the fold stored at some seq, so that reading a space need
//! not replay its whole log, plus an index of every event (seq, commit, id)
//! so that idempotency lookups and `events --from` need not walk it.
//!
//! A checkpoint is a commit on `refs/dlog/checkpoints/<space>` whose parent
//! is the previous checkpoint and whose tree is
//!
//! ```text
//! state.json                 the canonical fold at seq S (as `fold` returns it)
//! index/<G:012>/<S:012>.txt  segments of "<seq> <commit> <id>\n" lines, one per
//!                            checkpoint (split at 1024 events), for the events
//!                            after the previous segment up to S, in groups of
//!                            at most 256 segments named by their first seq G
//! ids/…                      the id index: see [`crate::idindex`]
//! ```
//!
//! Segments never change once written, so each checkpoint's tree reuses the
//! previous ones (git stores each blob once) and rewrites only the last group. The message names the space,
//! the seq, the event commit it covers and the SHA-1 of `state.json`'s bytes.
//! A checkpoint is only ever trusted after checking that its event commit is
//! on the space's chain at its seq; `verify` re-folds and checks them all.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fold::{Authority, Closing, Counts, Decision, Proposal, Retraction, State};
use crate::gitobj::{self, is_object_id, to_hex};
use crate::host::ObjectKind;
use crate::json::parse_strict;
use crate::model::Rejected;
use crate::record::{DETAIL_FIELDS, Details};

/// Where a space's checkpoints live.
pub fn checkpoint_ref(space: &str) -> String {
    format!("refs/dlog/checkpoints/{space}")
}

/// Largest `state.json` a checkpoint may hold.
pub const MAX_STATE_BYTES: usize = 1 << 30;

/// One line of an index segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The event's seq.
    pub seq: u64,
    /// Its commit.
    pub commit: String,
    /// Its intent id.
    pub id: String,
}

/// A segment's text.
pub fn encode_segment(entries: &[IndexEntry]) -> Vec<u8> {
    entries.iter().map(|e| format!("{} {} {}\n", e.seq, e.commit, e.id)).collect::<String>().into_bytes()
}

/// A segment's entries, checked line by line.
pub fn decode_segment(bytes: &[u8]) -> Result<Vec<IndexEntry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "index segment is not UTF-8".to_string())?;
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (Some(seq), Some(commit), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("index line {line:?} is not \"<seq> <commit> <id>\""));
            };
            let seq = seq.parse().map_err(|_| format!("index line {line:?} has no seq"))?;
            if !is_object_id(commit) {
                return Err(format!("index line {line:?} has no commit id"));
            }
            Ok(IndexEntry { seq, commit: commit.to_owned(), id: id.to_owned() })
        })
        .collect()
}

/// The name of the segment that ends at `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("{seq:012}.txt")
}

/// The seq a segment name ends at.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".txt")?;
    (digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// Most events one index segment holds, so that finding one seq's commit
/// reads at most this many lines.
pub const SEGMENT_MAX: u64 = 1024;

/// Most segments one index group (`index/<first seq>/`) holds, so that a
/// checkpoint rewrites one small group tree, not a tree of every segment.
pub const GROUP_MAX: usize = 256;

/// The name of the group whose first segment starts at `seq`.
pub fn group_name(seq: u64) -> String {
    format!("{seq:012}")
}

/// The seq a group name starts at.
pub fn parse_group_name(name: &str) -> Option<u64> {
    (name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())).then(|| name.parse().ok())?
}

/// The segments (first seq, last seq) that index the events `after+1..=upto`:
/// consecutive, at most [`SEGMENT_MAX`] each.
pub fn segment_ranges(after: u64, upto: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut first = after + 1;
    while first <= upto {
        let last = upto.min(first + SEGMENT_MAX - 1);
        out.push((first, last));
        first = last + 1;
    }
    out
}

/// A git tree: entries sorted as git sorts them (a directory sorts as if its
/// name ended in `/`).
pub fn encode_tree(entries: &[(String, ObjectKind, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, ObjectKind, String)> = entries.iter().collect();
    let key = |(name, kind, _): &&(String, ObjectKind, String)| {
        let mut k = name.clone().into_bytes();
        if *kind == ObjectKind::Tree {
            k.push(b'/');
        }
        k
    };
    sorted.sort_by_key(key);
    let mut out = Vec::new();
    for (name, kind, id) in sorted {
        let mode = if *kind == ObjectKind::Tree { "40000" } else { "100644" };
        out.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        out.extend_from_slice(&hex_bytes(id));
    }
    out
}

fn hex_bytes(id: &str) -> Vec<u8> {
    id.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            digit(pair[0]) * 16 + digit(pair[1])
        })
        .collect()
}

/// The entries of a git tree: (name, is a directory, id).
pub fn decode_tree(bytes: &[u8]) -> Result<Vec<(String, bool, String)>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').ok_or("tree entry without a mode")?;
        let nul = rest.iter().position(|&b| b == 0).ok_or("tree entry without a name")?;
        if nul < space || rest.len() < nul + 21 {
            return Err("truncated tree entry".into());
        }
        let mode = &rest[..space];
        let name = std::str::from_utf8(&rest[space + 1..nul]).map_err(|_| "tree entry name is not UTF-8")?;
        let id: String = to_hex(&rest[nul + 1..nul + 21]);
        out.push((name.to_owned(), mode == b"40000", id));
        rest = &rest[nul + 21..];
    }
    Ok(out)
}

/// The id of the entry `name` of a decoded tree, a directory or not.
pub fn find_entry(entries: &[(String, bool, String)], name: &str, dir: bool) -> Option<String> {
    entries.iter().find(|(n, d, _)| n == name && *d == dir).map(|(_, _, id)| id.clone())
}

/// What a checkpoint commit says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Its tree.
    pub tree: String,
    /// The previous checkpoint.
    pub parent: Option<String>,
    /// The space.
    pub space: String,
    /// The seq it covers.
    pub seq: u64,
    /// The event commit at that seq.
    pub event: String,
    /// SHA-1 of `state.json`'s bytes.
    pub state_sha1: String,
}

/// The checkpoint commit for `header` (author time: the covered event's).
pub fn encode_commit(header: &Header, at_ms: u64) -> Vec<u8> {
    let ident = format!("dlog <> {} +0000", at_ms / 1000);
    let mut text = format!("tree {}\n", header.tree);
    if let Some(parent) = &header.parent {
        text.push_str(&format!("parent {parent}\n"));
    }
    text.push_str(&format!(
        "author {ident}\ncommitter {ident}\n\ncheckpoint {} at seq {}\n\nDlog-Space: {}\nDlog-Checkpoint-Seq: {}\nDlog-Event: {}\nDlog-State-Sha1: {}\n",
        header.space, header.seq, header.space, header.seq, header.event, header.state_sha1
    ));
    text.into_bytes()
}

/// Read a checkpoint commit's header.
pub fn decode_commit(bytes: &[u8]) -> Result<Header, String> {
    let links = gitobj::decode_commit(bytes)?;
    let text = std::str::from_utf8(bytes).map_err(|_| "checkpoint commit is not UTF-8")?;
    let trailer = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(": ")))
            .map(str::to_owned)
            .ok_or_else(|| format!("checkpoint commit has no {key} trailer"))
    };
    Ok(Header {
        tree: links.tree,
        parent: links.parent,
        space: trailer("Dlog-Space")?,
        seq: trailer("Dlog-Checkpoint-Seq")?.parse().map_err(|_| "bad Dlog-Checkpoint-Seq")?,
        event: trailer("Dlog-Event")?,
        state_sha1: trailer("Dlog-State-Sha1")?,
    })
}

/// SHA-1 of bytes, hex.
pub fn sha1_hex(bytes: &[u8]) -> String {
    to_hex(&sha1_smol::Sha1::from(bytes).digest().bytes())
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("state has no {key:?}"))
}

pub(crate) fn text(v: &Value, key: &str) -> Result<String, String> {
    field(v, key)?.as_str().map(str::to_owned).ok_or_else(|| format!("state field {key:?} is not a string"))
}

pub(crate) fn number(v: &Value, key: &str) -> Result<u64, String> {
    field(v, key)?.as_u64().ok_or_else(|| format!("state field {key:?} is not an integer"))
}

fn object<'a>(v: &'a Value, key: &str) -> Result<&'a serde_json::Map<String, Value>, String> {
    field(v, key)?.as_object().ok_or_else(|| format!("state field {key:?} is not an object"))
}

fn optional_number(v: &Value, key: &str) -> Result<u64, String> {
    match v.get(key) {
        None => Ok(0),
        Some(_) => number(v, key),
    }
}

fn rejected_options(v: &Value) -> Result<Vec<Rejected>, String> {
    field(v, "rejected")?
        .as_array()
        .ok_or("rejected is not an array")?
        .iter()
        .map(|r| Ok(Rejected { option: text(r, "option")?, why: text(r, "why")? }))
        .collect()
}

/// The v2 details among a record's fields.
fn details(v: &Value) -> Details {
    DETAIL_FIELDS.iter().filter_map(|name| v.get(*name).map(|d| ((*name).to_owned(), d.clone()))).collect()
}

fn closing(v: Option<&Value>) -> Result<Option<Closing>, String> {
    let Some(c) = v else { return Ok(None) };
    Ok(Some(Closing {
        id: text(c, "id")?,
        actor: text(c, "actor")?,
        seq: number(c, "seq")?,
        at_ms: number(c, "at_ms")?,
        rationale: c.get("rationale").map(|_| text(c, "rationale")).transpose()?,
    }))
}

/// The three record maps of a fold-shaped JSON object (a whole state, or
/// one page of a paged checkpoint).
#[allow(clippy::type_complexity)]
pub(crate) fn parse_records(
    v: &Value,
) -> Result<
    (BTreeMap<String, Decision>, BTreeMap<String, Retraction>, BTreeMap<String, BTreeMap<String, Proposal>>),
    String,
> {
    let mut decisions = BTreeMap::new();
    for (key, d) in object(v, "decisions")? {
        decisions.insert(
            key.clone(),
            Decision {
                choice: text(d, "choice")?,
                rationale: text(d, "rationale")?,
                rejected: rejected_options(d)?,
                id: text(d, "id")?,
                actor: text(d, "actor")?,
                seq: number(d, "seq")?,
                at_ms: number(d, "at_ms")?,
                revision: number(d, "revision")?,
                details: details(d),
                accepted: closing(d.get("accepted"))?,
            },
        );
    }
    let mut retracted = BTreeMap::new();
    for (key, r) in object(v, "retracted")? {
        retracted.insert(
            key.clone(),
            Retraction {
                rationale: text(r, "rationale")?,
                choice: text(r, "choice")?,
                decision: text(r, "decision")?,
                id: text(r, "id")?,
                actor: text(r, "actor")?,
                seq: number(r, "seq")?,
                at_ms: number(r, "at_ms")?,
                revision: number(r, "revision")?,
                status: r.get("status").map(|_| text(r, "status")).transpose()?,
            },
        );
    }
    let mut proposals: BTreeMap<String, BTreeMap<String, Proposal>> = BTreeMap::new();
    if v.get("proposals").is_some() {
        for (key, by_id) in object(v, "proposals")? {
            let by_id = by_id.as_object().ok_or("proposals of a key are not an object")?;
            for (id, p) in by_id {
                let proposal = Proposal {
                    choice: text(p, "choice")?,
                    rationale: text(p, "rationale")?,
                    rejected: rejected_options(p)?,
                    supersedes: p.get("supersedes").map(|_| text(p, "supersedes")).transpose()?,
                    details: details(p),
                    status: text(p, "status")?,
                    id: text(p, "id")?,
                    actor: text(p, "actor")?,
                    seq: number(p, "seq")?,
                    at_ms: number(p, "at_ms")?,
                    rejection: closing(p.get("rejection"))?,
                };
                proposals.entry(key.clone()).or_default().insert(id.clone(), proposal);
            }
        }
    }
    Ok((decisions, retracted, proposals))
}

/// A stored state back into a [`State`] (its `epoch` and `at_ms`, which the
/// state JSON does not carry, are filled in by the caller from the event).
/// Whatever it holds, it must re-serialize to the very same bytes, so a
/// state with anything this reader does not know is refused, not misread.
pub fn parse_state(bytes: &[u8]) -> Result<State, String> {
    let json = std::str::from_utf8(bytes).map_err(|_| "state is not UTF-8")?;
    let v = parse_strict(json, MAX_STATE_BYTES).map_err(|e| format!("state is not valid JSON: {e}"))?;
    let (decisions, retracted, proposals) = parse_records(&v)?;
    let authority = match field(&v, "authority")? {
        Value::Null => None,
        a => Some(Authority {
            holder: text(a, "holder")?,
            epoch: number(a, "epoch")?,
            seq: number(a, "seq")?,
            at_ms: number(a, "at_ms")?,
        }),
    };
    let counts = field(&v, "counts")?;
    let state = State {
        space: text(&v, "space")?,
        seq: number(&v, "seq")?,
        head: field(&v, "head")?.as_str().map(str::to_owned),
        epoch: 0,
        at_ms: 0,
        authority,
        decisions,
        retracted,
        proposals,
        history: BTreeMap::new(),
        counts: Counts {
            decide: number(counts, "decide")?,
            retract: number(counts, "retract")?,
            authority: number(counts, "authority")?,
            propose: optional_number(counts, "propose")?,
            accept: optional_number(counts, "accept")?,
            reject: optional_number(counts, "reject")?,
        },
    };
    if state.canonical().as_bytes() != bytes {
        return Err("state is not the canonical form of a fold".into());
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Intent};

    #[test]
    fn a_state_round_trips_through_its_stored_form() {
        let mut state = State::new("s");
        for (seq, (kind, body)) in [
            ("decide", r#"{"key":"db","choice":"pg","rationale":"r","rejected":[{"option":"m","why":"w"}]}"#),
            ("decide", r#"{"key":"ui","choice":"web","rationale":"r"}"#),
            ("retract", r#"{"key":"ui","rationale":"gone"}"#),
            ("authority", r#"{"holder":"h","epoch":1}"#),
        ]
        .into_iter()
        .enumerate()
        {
            let i = Intent::validate(&format!("i{seq}"), "a", kind, body, None).unwrap();
            let e = Event {
                space: "s".into(),
                seq: seq as u64 + 1,
                epoch: 1,
                id: i.id,
                actor: i.actor,
                at_ms: 10,
                kind: i.kind,
                body: i.body,
                body_json: i.body_json,
            };
            state.apply(&e, &"c".repeat(40)).unwrap();
        }
        let bytes = state.canonical().into_bytes();
        let back = parse_state(&bytes).unwrap();
        assert_eq!(back.canonical().into_bytes(), bytes);
        assert_eq!(back.decisions, state.decisions);
        assert!(parse_state(b"{}").is_err());
    }

    #[test]
    fn a_state_with_every_v2_part_round_trips_and_one_with_an_unknown_field_is_refused() {
        let mut state = State::new("s");
        for (seq, (id, kind, body)) in [
            ("d1", "decide", r#"{"key":"db","choice":"pg","rationale":"r","title":"Use PG","tags":["db"],"meta":{"b":[1,2],"a":null}}"#),
            ("p1", "propose", r#"{"key":"db","choice":"mysql","rationale":"r","supersedes":"d1","status":"draft","deciders":["x"]}"#),
            ("p2", "propose", r#"{"key":"ui","choice":"web","rationale":"r","links":[{"url":"https://e.x/a"}]}"#),
            ("r1", "reject", r#"{"key":"ui","proposal":"p2","rationale":"no"}"#),
            ("a1", "accept", r#"{"key":"db","proposal":"p1","rationale":"ok"}"#),
            ("x1", "retract", r#"{"key":"db","rationale":"old","status":"deprecated"}"#),
        ]
        .into_iter()
        .enumerate()
        {
            let i = Intent::validate(id, "a", kind, body, None).unwrap();
            let e = Event {
                space: "s".into(),
                seq: seq as u64 + 1,
                epoch: 1,
                id: i.id,
                actor: i.actor,
                at_ms: 10,
                kind: i.kind,
                body: i.body,
                body_json: i.body_json,
            };
            state.apply(&e, &"c".repeat(40)).unwrap();
        }
        let bytes = state.canonical().into_bytes();
        let general = crate::canonical::to_canonical_string(&state.to_value());
        assert_eq!(bytes, general.into_bytes(), "the direct writer is canonical");
        let back = parse_state(&bytes).unwrap();
        assert_eq!(back.canonical().into_bytes(), bytes);
        assert_eq!(
            (back.retracted.clone(), back.proposals.clone()),
            (state.retracted.clone(), state.proposals.clone())
        );
        // A newer fold's field this reader does not know is not dropped:
        // the state is refused, and the reader replays the log instead.
        let text = String::from_utf8(bytes).unwrap().replacen("\"choice\"", "\"zz\":1,\"choice\"", 1);
        assert!(parse_state(text.as_bytes()).unwrap_err().contains("canonical"));
    }

    #[test]
    fn trees_sort_directories_as_git_does_and_round_trip() {
        let id = "ce013625030ba8dba906f756967f9e9ca394464a".to_string();
        let tree = encode_tree(&[
            ("state.json".into(), ObjectKind::Blob, id.clone()),
            ("index".into(), ObjectKind::Tree, id.clone()),
            ("index.txt".into(), ObjectKind::Blob, id.clone()),
        ]);
        let names: Vec<String> = decode_tree(&tree).unwrap().into_iter().map(|(n, _, _)| n).collect();
        // "index.txt" < "index/" because '.' (0x2e) < '/' (0x2f).
        assert_eq!(names, ["index.txt", "index", "state.json"]);
    }

    #[test]
    fn segments_and_headers_round_trip() {
        let entries =
            vec![IndexEntry { seq: 7, commit: "a".repeat(40), id: "id with spaces? no".replace(' ', "-") }];
        assert_eq!(decode_segment(&encode_segment(&entries)).unwrap(), entries);
        assert!(decode_segment(b"7 zz id\n").is_err());
        let header = Header {
            tree: "b".repeat(40),
            parent: Some("c".repeat(40)),
            space: "s".into(),
            seq: 1000,
            event: "d".repeat(40),
            state_sha1: "e".repeat(40),
        };
        assert_eq!(decode_commit(&encode_commit(&header, 5000)).unwrap(), header);
    }
}
