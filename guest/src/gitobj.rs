//! Events as git objects, byte for byte as git itself writes them.
//!
//! One event is three objects: a blob (the canonical event JSON), a tree with
//! the single entry `event.json`, and a commit whose parent is the previous
//! event's commit. Every byte is derived from the event and the parent id, so
//! every host computes the same ids.

use crate::host::ObjectKind;
use crate::model::{Body, Event};

/// The file name of the event blob inside each commit's tree.
pub const EVENT_FILE: &str = "event.json";
/// Longest summary line, in characters, before it is shortened.
const SUMMARY_CHARS: usize = 100;

/// Git's object id: SHA-1 over `"<kind> <len>\0"` and the data, in hex.
pub fn object_id(kind: ObjectKind, data: &[u8]) -> String {
    to_hex(&object_id_bytes(kind, data))
}

/// Git's object id as its 20 bytes (the host's `ObjectId` uses this too).
pub fn object_id_bytes(kind: ObjectKind, data: &[u8]) -> [u8; 20] {
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(kind.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(decimal(data.len() as u64).as_bytes());
    hasher.update(b"\0");
    hasher.update(data);
    hasher.digest().bytes()
}

/// Bytes as lowercase hex. (`format!("{b:02x}")` per byte was a visible
/// share of a replay, which turns every tree's binary id into hex.)
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Whether `id` is 40 lowercase hex digits.
pub fn is_object_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 40 hex digits as the 20 bytes they spell.
pub fn hex_to_bytes(id: &str) -> Option<[u8; 20]> {
    if !is_object_id(id) {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in id.as_bytes().chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        out[i] = digit(pair[0])? * 16 + digit(pair[1])?;
    }
    Some(out)
}

/// The tree of one event: `100644 event.json` pointing at the blob.
pub fn encode_tree(blob_id: &str) -> Vec<u8> {
    let raw = hex_to_bytes(blob_id).unwrap_or([0; 20]);
    let mut tree = format!("100644 {EVENT_FILE}\0").into_bytes();
    tree.extend_from_slice(&raw);
    tree
}

/// The blob id named by an event tree, if the tree is exactly one event entry.
pub fn decode_tree(tree: &[u8]) -> Result<String, String> {
    let header = format!("100644 {EVENT_FILE}\0");
    let rest = tree
        .strip_prefix(header.as_bytes())
        .ok_or_else(|| format!("tree is not a single \"{EVENT_FILE}\" entry"))?;
    if rest.len() != 20 {
        return Err(format!("tree is not a single \"{EVENT_FILE}\" entry"));
    }
    Ok(to_hex(rest))
}

/// One line of plain text: control characters become spaces, long text is cut.
fn one_line(text: &str) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= SUMMARY_CHARS {
        flat
    } else {
        let mut cut: String = flat.chars().take(SUMMARY_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// The commit's first line: what happened, readable in `git log --oneline`.
pub fn summary(event: &Event) -> String {
    one_line(&match &event.body {
        Body::Decide { key, record } => format!("decide {key}: {}", record.choice),
        Body::Retract { key, status: None, .. } => format!("retract {key}"),
        Body::Retract { key, status: Some(status), .. } => format!("retract {key} ({status})"),
        Body::Propose { key, record, status } => format!("propose {key}: {} ({status})", record.choice),
        Body::Accept { key, proposal, .. } => format!("accept {key}: {proposal}"),
        Body::Reject { key, proposal, .. } => format!("reject {key}: {proposal}"),
        Body::Authority { holder, epoch } => format!("authority {holder} (epoch {epoch})"),
    })
}

/// The commit of an event whose tree is `tree_id`, on top of `parent`.
///
/// Author and committer are the actor with an empty e-mail (`<>`: the log
/// knows no addresses) at `at_ms` truncated to seconds, UTC. The message is
/// the summary line and trailers naming the space, seq, epoch and id.
pub fn encode_commit(event: &Event, tree_id: &str, parent: Option<&str>) -> Vec<u8> {
    // Pushed piece by piece: `format!` was a visible share of every append.
    let seconds = decimal(event.at_ms / 1000);
    let mut text = String::with_capacity(256 + event.actor.len() * 2);
    text.push_str("tree ");
    text.push_str(tree_id);
    if let Some(parent) = parent {
        text.push_str("\nparent ");
        text.push_str(parent);
    }
    for role in ["\nauthor ", "\ncommitter "] {
        text.push_str(role);
        text.push_str(&event.actor);
        text.push_str(" <> ");
        text.push_str(&seconds);
        text.push_str(" +0000");
    }
    text.push_str("\n\n");
    text.push_str(&summary(event));
    text.push_str("\n\nDlog-Space: ");
    text.push_str(&event.space);
    text.push_str("\nDlog-Seq: ");
    text.push_str(&decimal(event.seq));
    text.push_str("\nDlog-Epoch: ");
    text.push_str(&decimal(event.epoch));
    text.push_str("\nDlog-Id: ");
    text.push_str(&event.id);
    text.push('\n');
    text.into_bytes()
}

/// `n` in decimal.
fn decimal(n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    digits[at..].iter().map(|&d| char::from(d)).collect()
}

/// The links of a stored commit: its tree and its parent, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitLinks {
    /// The tree id.
    pub tree: String,
    /// The parent commit id.
    pub parent: Option<String>,
}

/// Read the tree and parent of a commit (the rest is checked by re-encoding).
pub fn decode_commit(commit: &[u8]) -> Result<CommitLinks, String> {
    let text = std::str::from_utf8(commit).map_err(|_| "commit is not UTF-8".to_string())?;
    let mut lines = text.lines();
    let tree = lines
        .next()
        .and_then(|l| l.strip_prefix("tree "))
        .filter(|id| is_object_id(id))
        .ok_or("commit does not start with a tree line")?;
    let mut parent = None;
    for line in lines {
        match line.strip_prefix("parent ") {
            Some(id) if parent.is_none() && is_object_id(id) => parent = Some(id.to_owned()),
            Some(_) => return Err("commit has more than one parent or a malformed parent line".into()),
            None => break,
        }
    }
    Ok(CommitLinks { tree: tree.to_owned(), parent })
}

/// The three objects of an event, with their ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The canonical event JSON.
    pub blob: Vec<u8>,
    /// The blob's id.
    pub blob_id: String,
    /// The one-entry tree.
    pub tree: Vec<u8>,
    /// The tree's id.
    pub tree_id: String,
    /// The commit.
    pub commit: Vec<u8>,
    /// The commit's id.
    pub commit_id: String,
}

/// Encode an event on top of `parent`.
pub fn encode_event(event: &Event, parent: Option<&str>) -> EncodedEvent {
    let blob = event.canonical().into_bytes();
    let blob_id = object_id(ObjectKind::Blob, &blob);
    let tree = encode_tree(&blob_id);
    let tree_id = object_id(ObjectKind::Tree, &tree);
    let commit = encode_commit(event, &tree_id, parent);
    let commit_id = object_id(ObjectKind::Commit, &commit);
    EncodedEvent { blob, blob_id, tree, tree_id, commit, commit_id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_spells_numbers_as_display_does() {
        for n in [0, 7, 10, 1_700_000_000, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }
    use crate::model::Intent;

    fn event() -> Event {
        let i = Intent::validate(
            "id-1",
            "Ada Lovelace",
            "decide",
            r#"{"key":"lang","choice":"rust\nfor real","rationale":"safety"}"#,
            None,
        )
        .unwrap();
        Event {
            space: "core".into(),
            seq: 2,
            epoch: 1,
            id: i.id,
            actor: i.actor,
            at_ms: 1_700_000_000_999,
            kind: i.kind,
            body: i.body,
            body_json: i.body_json,
        }
    }

    #[test]
    fn object_ids_are_git_ids() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(object_id(ObjectKind::Blob, b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
        // The empty tree every git knows.
        assert_eq!(object_id(ObjectKind::Tree, b""), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    }

    #[test]
    fn a_commit_carries_actor_time_summary_and_trailers() {
        let e = event();
        let parent = "ce013625030ba8dba906f756967f9e9ca394464a";
        let text =
            String::from_utf8(encode_commit(&e, "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Some(parent)))
                .unwrap();
        assert_eq!(
            text,
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
             parent ce013625030ba8dba906f756967f9e9ca394464a\n\
             author Ada Lovelace <> 1700000000 +0000\n\
             committer Ada Lovelace <> 1700000000 +0000\n\
             \n\
             decide lang: rust for real\n\
             \n\
             Dlog-Space: core\nDlog-Seq: 2\nDlog-Epoch: 1\nDlog-Id: id-1\n"
        );
        let links = decode_commit(text.as_bytes()).unwrap();
        assert_eq!(links.tree, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
        assert_eq!(links.parent.as_deref(), Some(parent));
    }

    #[test]
    fn a_tree_names_exactly_one_event_blob() {
        let blob = "ce013625030ba8dba906f756967f9e9ca394464a";
        let tree = encode_tree(blob);
        assert_eq!(decode_tree(&tree).unwrap(), blob);
        assert!(decode_tree(&tree[..tree.len() - 1]).is_err());
        assert!(decode_tree(b"100644 other\0aaaaaaaaaaaaaaaaaaaa").is_err());
    }

    #[test]
    fn long_summaries_are_cut_to_one_line() {
        let mut e = event();
        if let Body::Decide { record, .. } = &mut e.body {
            record.choice = "x".repeat(500);
        }
        let s = summary(&e);
        assert_eq!(s.chars().count(), SUMMARY_CHARS);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn malformed_commits_are_refused() {
        assert!(decode_commit(b"parent x\n").is_err());
        let two = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent ce013625030ba8dba906f756967f9e9ca394464a\nparent ce013625030ba8dba906f756967f9e9ca394464a\n";
        assert!(decode_commit(two.as_bytes()).is_err());
    }
}
