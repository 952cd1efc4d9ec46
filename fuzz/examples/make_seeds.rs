//! Writes the seed corpora under `fuzz/corpus/<target>/`: real events,
//! exported lines, git objects, checkpoint states and id runs, made by the
//! guest's own encoders so that they stay what the product writes.
//!
//! `cargo +nightly run --example make_seeds` (from `fuzz/`). Files named
//! `crash-*` or `regression-*` there are kept inputs, not written here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dlog_guest::checkpoint::{self, Header, IndexEntry};
use dlog_guest::fold::State;
use dlog_guest::gitobj::{encode_event, object_id};
use dlog_guest::host::ObjectKind;
use dlog_guest::idindex::{ObjectSink, Record, RunError, RunName, build_run, id_hash};
use dlog_guest::model::{Event, Intent};

struct Seeds {
    dir: PathBuf,
}

impl Seeds {
    fn new(target: &str) -> Seeds {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        Seeds { dir }
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.join(name), bytes).expect("seed written");
    }
}

/// (id, actor, kind, body) of a small history with every kind of event,
/// supersedes, rejected options and non-ASCII text.
const INTENTS: &[(&str, &str, &str, &str)] = &[
    ("i-1", "alice", "authority", r#"{"holder":"host-a","epoch":1}"#),
    (
        "i-2",
        "alice",
        "decide",
        r#"{"key":"db","choice":"postgres","rationale":"we know it","rejected":[{"option":"mongo","why":"no joins"}]}"#,
    ),
    ("i-3", "Bob Økland", "decide", r#"{"key":"ui","choice":"web","rationale":"reach\nand \"speed\""}"#),
    ("i-4", "alice", "retract", r#"{"key":"ui","rationale":"scope cut"}"#),
    ("i-5", "carol", "decide", r#"{"key":"ui","choice":"tui","rationale":"fast","supersedes":null}"#),
    ("i-6", "alice", "decide", r#"{"key":"db","choice":"sqlite","rationale":"embedded","supersedes":"i-2"}"#),
    ("i-7", "dave", "decide", r#"{"key":"😀 emoji \ue000 key","choice":"ja","rationale":"\u00e9t\u00e9"}"#),
    ("i-8", "alice", "authority", r#"{"holder":"host-b","epoch":2}"#),
];

fn events() -> Vec<Event> {
    let mut out = Vec::new();
    let mut epoch = 1;
    for (i, (id, actor, kind, body)) in INTENTS.iter().enumerate() {
        // "supersedes":null is no string, so i-5 is refused: a seed of a refusal.
        let Ok(intent) = Intent::validate(id, actor, kind, body, None) else {
            continue;
        };
        if *kind == "authority" {
            epoch += 1;
        }
        out.push(Event {
            space: "team".into(),
            seq: out.len() as u64 + 1,
            epoch,
            id: intent.id,
            actor: intent.actor,
            at_ms: 1_700_000_000_000 + i as u64 * 1234,
            kind: intent.kind,
            body: intent.body,
            body_json: intent.body_json,
        });
    }
    out
}

#[derive(Default)]
struct Store {
    objects: HashMap<String, (ObjectKind, Vec<u8>)>,
}

impl ObjectSink for Store {
    fn put(&mut self, kind: ObjectKind, data: Vec<u8>) -> Result<String, RunError> {
        let id = object_id(kind, &data);
        self.objects.insert(id.clone(), (kind, data));
        Ok(id)
    }
}

fn main() {
    let events = events();
    let mut state = State::new("team");
    let mut commits = Vec::new();
    let mut encoded_events = Vec::new();
    for event in &events {
        let encoded = encode_event(event, state.head.as_deref());
        state.apply(event, &encoded.commit_id).expect("the seed history folds");
        commits.push(encoded.commit_id.clone());
        encoded_events.push(encoded);
    }
    let lines: Vec<String> = events.iter().map(Event::canonical).collect();

    let json = Seeds::new("json_intake");
    for (i, line) in lines.iter().enumerate() {
        json.write(&format!("event-{}", i + 1), line.as_bytes());
    }
    json.write("state", state.canonical().as_bytes());
    for (name, doc) in [
        (
            "numbers",
            "[0, -0, 1, -1, 9007199254740991, -9007199254740991, 0.1, -0.0, 1e21, 1E-7, 2.5e+3, 5e-324]",
        ),
        ("escapes", r#"["\"\\\/\b\f\n\r\t", "\u0000\u001f\u007f", "\ud83d\ude00", "\u00e9\u20ac"]"#),
        ("unicode", "{\"\u{e9}\": 1, \"e\u{301}\": 2, \"\u{1f600}\": 3, \"\u{e000}\": 4, \"\": null}"),
        ("nested", r#"{"a": [{"b": [[], {}]}, true, false, null], "c": {"d": {"e": "f"}}}"#),
        ("whitespace", " \t\r\n[ 1 ,\t2 ]\r\n"),
        ("scalars", "\"just a string\""),
        ("duplicate", r#"{"a": 1, "a": 2}"#),
        ("big-integer", "[9007199254740992, 18446744073709551616]"),
        ("whole-double", "[1e20, 9007199254740993.0]"),
        ("noncharacter", "[\"\\uffff\", \"\u{fdd0}\"]"),
        ("lone-surrogate", r#"["\ud800", "\udc00x"]"#),
        ("deep", &format!("{}{}", "[".repeat(64), "]".repeat(64))),
        ("too-deep", &format!("{}{}", "[".repeat(65), "]".repeat(65))),
        ("grammar", "[1,]"),
    ] {
        json.write(name, doc.as_bytes());
    }

    let intents = Seeds::new("intent_validation");
    for (id, actor, kind, body) in INTENTS {
        intents.write(id, format!("{id}\n{actor}\n{kind}\nteam\n0 3 2 1700000000000\n{body}").as_bytes());
    }
    intents.write("no-numbers", b"x\na\ndecide\n\n\n{\"key\":\"k\",\"choice\":\"c\",\"rationale\":\"r\"}");

    let import = Seeds::new("import_lines");
    import.write("history", format!("{}\n", lines.join("\n")).as_bytes());
    import.write("one-line", lines[0].as_bytes());
    import.write("out-of-order", format!("{}\n{}\n", lines[1], lines[0]).as_bytes());

    let objects = Seeds::new("git_objects");
    let seed = |selector: u8, name: &str, bytes: &[u8]| {
        let mut data = vec![selector];
        data.extend_from_slice(bytes);
        objects.write(name, &data);
    };
    for (i, encoded) in encoded_events.iter().enumerate().take(3) {
        seed(0, &format!("event-tree-{}", i + 1), &encoded.tree);
        seed(1, &format!("event-commit-{}", i + 1), &encoded.commit);
    }

    let mut store = Store::default();
    let records: Vec<Record> = events.iter().map(|e| Record { hash: id_hash(&e.id), seq: e.seq }).collect();
    let run = RunName { level: 0, first: 1, last: events.len() as u64 };
    let run_tree = build_run(run, records, &mut store).expect("the seed run builds");
    let state_bytes = state.canonical().into_bytes();
    let segment = checkpoint::encode_segment(
        &events
            .iter()
            .zip(&commits)
            .map(|(e, c)| IndexEntry { seq: e.seq, commit: c.clone(), id: e.id.clone() })
            .collect::<Vec<_>>(),
    );
    let state_id = object_id(ObjectKind::Blob, &state_bytes);
    let segment_id = object_id(ObjectKind::Blob, &segment);
    let group = checkpoint::encode_tree(&[(
        checkpoint::segment_name(events.len() as u64),
        ObjectKind::Blob,
        segment_id,
    )]);
    let index = checkpoint::encode_tree(&[(
        checkpoint::group_name(1),
        ObjectKind::Tree,
        object_id(ObjectKind::Tree, &group),
    )]);
    let ids = checkpoint::encode_tree(&[(run.encode(), ObjectKind::Tree, run_tree.clone())]);
    let top = checkpoint::encode_tree(&[
        ("state.json".into(), ObjectKind::Blob, state_id),
        ("index".into(), ObjectKind::Tree, object_id(ObjectKind::Tree, &index)),
        ("ids".into(), ObjectKind::Tree, object_id(ObjectKind::Tree, &ids)),
    ]);
    let header = Header {
        tree: object_id(ObjectKind::Tree, &top),
        parent: Some(object_id(ObjectKind::Commit, b"previous checkpoint")),
        space: "team".into(),
        seq: events.len() as u64,
        event: commits.last().cloned().unwrap_or_default(),
        state_sha1: checkpoint::sha1_hex(&state_bytes),
    };
    seed(2, "checkpoint-tree", &top);
    seed(2, "checkpoint-group", &group);
    seed(3, "checkpoint-commit", &checkpoint::encode_commit(&header, 1_700_000_009_000));
    seed(3, "checkpoint-commit-first", &checkpoint::encode_commit(&Header { parent: None, ..header }, 0));
    seed(4, "segment", &segment);
    seed(5, "state", &state_bytes);
    seed(5, "state-empty", State::new("team").canonical().as_bytes());
    seed(6, "segment-name", checkpoint::segment_name(1024).as_bytes());
    seed(6, "group-name", checkpoint::group_name(1).as_bytes());
    seed(6, "run-name", RunName { level: 3, first: 1, last: 65536 }.encode().as_bytes());

    // A stored run: its name, its tree, then its blobs in the tree's order.
    let (_, tree_bytes) = &store.objects[&run_tree];
    let mut stored = run.encode().into_bytes();
    stored.extend_from_slice(b"\n--\n");
    stored.extend_from_slice(tree_bytes);
    for (_, _, id) in checkpoint::decode_tree(tree_bytes).expect("own tree") {
        stored.extend_from_slice(b"\n--\n");
        stored.extend_from_slice(&store.objects[&id].1);
    }
    seed(7, "stored-run", &stored);
    // Built runs take arbitrary bytes; these give a few records, one with
    // many equal hashes.
    seed(8, "built-run-small", &[3, 1, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5, 1]);
    let mut many = vec![0u8, 1, 0, 0, 0, 0, 0, 0, 0];
    many.extend(std::iter::repeat_n(7u8, 2100));
    seed(9, "built-run-equal-hashes", &many);
}
