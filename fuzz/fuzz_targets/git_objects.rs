//! The decoders of stored objects on arbitrary bytes: event trees and
//! commits, checkpoint trees, commits, index segments, states and names, and
//! the id index's runs. The first byte picks the decoder; the rest is its
//! input (seeds are real objects behind their selector byte).
//!
//! - No decoder panics or hangs; a refusal always says why.
//! - What a decoder accepts is consistent: encoding it again gives the same
//!   bytes where the format has one spelling.
//! - An id run built from fuzzed records finds every record it holds, and a
//!   damaged copy of it is refused or read, never a panic.

#![no_main]

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use dlog_guest::checkpoint;
use dlog_guest::gitobj::{self, is_object_id, object_id};
use dlog_guest::host::ObjectKind;
use dlog_guest::idindex::{
    ObjectSink, ObjectSource, PAGE_RECORDS, Record, RunError, RunName, RunReader, build_run,
};
use dlog_guest::model::validate_id;
use libfuzzer_sys::fuzz_target;

/// Separates the parts of a stored run: its name, its tree, then the blobs
/// in the order the tree names them.
const PART: &[u8] = b"\n--\n";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 10 {
        0 => event_tree(rest),
        1 => event_commit(rest),
        2 => checkpoint_tree(rest),
        3 => checkpoint_commit(rest),
        4 => segment(rest),
        5 => state(rest),
        6 => names(rest),
        7 => stored_run(rest),
        _ => built_run(rest),
    }
});

fn reason(e: &str) {
    assert!(!e.trim().is_empty(), "a refusal without a reason");
}

fn event_tree(bytes: &[u8]) {
    match gitobj::decode_tree(bytes) {
        Ok(blob) => assert_eq!(gitobj::encode_tree(&blob), bytes),
        Err(e) => reason(&e),
    }
}

fn event_commit(bytes: &[u8]) {
    match gitobj::decode_commit(bytes) {
        Ok(links) => {
            assert!(is_object_id(&links.tree));
            assert!(links.parent.as_deref().is_none_or(is_object_id));
        }
        Err(e) => reason(&e),
    }
}

fn checkpoint_tree(bytes: &[u8]) {
    match checkpoint::decode_tree(bytes) {
        Ok(entries) => {
            assert!(entries.iter().all(|(_, _, id)| is_object_id(id)));
            let kinds: Vec<(String, ObjectKind, String)> = entries
                .iter()
                .map(|(name, dir, id)| {
                    (name.clone(), if *dir { ObjectKind::Tree } else { ObjectKind::Blob }, id.clone())
                })
                .collect();
            // Every decoded tree encodes again, and that encoding (sorted, with
            // canonical modes) is read back as the same entries.
            let again = checkpoint::decode_tree(&checkpoint::encode_tree(&kinds))
                .unwrap_or_else(|e| panic!("re-encoded tree is refused: {e}"));
            let mut sorted = entries.clone();
            sorted.sort();
            let mut again_sorted = again;
            again_sorted.sort();
            assert_eq!(sorted, again_sorted);
        }
        Err(e) => reason(&e),
    }
}

fn checkpoint_commit(bytes: &[u8]) {
    match checkpoint::decode_commit(bytes) {
        Ok(header) => assert!(is_object_id(&header.tree)),
        Err(e) => reason(&e),
    }
}

fn segment(bytes: &[u8]) {
    match checkpoint::decode_segment(bytes) {
        Ok(entries) => {
            assert!(entries.iter().all(|e| is_object_id(&e.commit)));
            // The writer only ever writes valid ids; for those the format has
            // one spelling.
            if entries.iter().all(|e| validate_id(&e.id, "id").is_ok()) {
                let again = checkpoint::decode_segment(&checkpoint::encode_segment(&entries));
                assert_eq!(again.as_ref(), Ok(&entries));
            }
        }
        Err(e) => reason(&e),
    }
}

fn state(bytes: &[u8]) {
    match checkpoint::parse_state(bytes) {
        Ok(state) => assert_eq!(state.canonical().as_bytes(), bytes),
        Err(e) => reason(&e),
    }
}

fn names(bytes: &[u8]) {
    let Ok(name) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some(seq) = checkpoint::parse_segment_name(name) {
        assert_eq!(checkpoint::segment_name(seq), name);
    }
    if let Some(seq) = checkpoint::parse_group_name(name) {
        assert_eq!(checkpoint::group_name(seq), name);
    }
    match RunName::parse(name) {
        Ok(run) => {
            assert_eq!(run.encode(), name);
            assert!(run.count() >= 1);
        }
        Err(e) => reason(&e),
    }
}

/// Objects by id, as a host stores them.
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

impl ObjectSource for Store {
    fn get(&self, id: &str, kind: ObjectKind) -> Result<Vec<u8>, RunError> {
        match self.objects.get(id) {
            Some((k, data)) if *k == kind => Ok(data.clone()),
            _ => Err(RunError::Storage(format!("no {} {id}", kind.as_str()))),
        }
    }
}

fn split_parts(bytes: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while let Some(at) = rest.windows(PART.len()).position(|w| w == PART) {
        parts.push(&rest[..at]);
        rest = &rest[at + PART.len()..];
    }
    parts.push(rest);
    parts
}

/// A run as stored: name, tree and blobs all arbitrary. The blobs are stored
/// under the ids the tree names, in its order, so a real run reads back.
fn stored_run(bytes: &[u8]) {
    let parts = split_parts(bytes);
    let (Some(name), Some(tree)) = (parts.first(), parts.get(1)) else {
        return;
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    let Ok(name) = RunName::parse(name) else {
        return;
    };
    let mut store = Store::default();
    let tree_id = object_id(ObjectKind::Tree, tree);
    store.objects.insert(tree_id.clone(), (ObjectKind::Tree, tree.to_vec()));
    if let Ok(entries) = checkpoint::decode_tree(tree) {
        for ((_, _, id), blob) in entries.iter().zip(parts.iter().skip(2)) {
            store.objects.insert(id.clone(), (ObjectKind::Blob, blob.to_vec()));
        }
    }
    let reader = match RunReader::open(name, &tree_id, &store) {
        Ok(reader) => reader,
        Err(e) => return reason(&e.to_string()),
    };
    // Probe with the hashes the blobs hold where records would be, and a few
    // that are likely absent.
    let mut probes: Vec<u64> = vec![0, 1, u64::MAX];
    for blob in parts.iter().skip(2) {
        probes.extend(
            blob.chunks_exact(16).take(64).map(|r| u64::from_be_bytes(r[..8].try_into().unwrap_or_default())),
        );
    }
    for hash in probes {
        match reader.seqs_of(hash, &store) {
            Ok(seqs) => assert!(seqs.iter().all(|s| (name.first..=name.last).contains(s))),
            Err(e) => reason(&e.to_string()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct BuiltRun {
    level: u8,
    first: u64,
    /// Hash of each seq's id, from a small set so that equal hashes (and
    /// equal hashes across a page boundary) are common.
    hashes: Vec<u8>,
    spread: bool,
    /// Blob bytes to overwrite after building: (which object, where, what).
    damage: Vec<(u8, u16, u8)>,
    probes: Vec<u64>,
}

/// A run built from fuzzed records must find each of them; damaged, it is
/// refused or read, never a panic.
fn built_run(bytes: &[u8]) {
    let Ok(input) = BuiltRun::arbitrary_take_rest(Unstructured::new(bytes)) else {
        return;
    };
    // Up to three pages, and a range that may end at the largest seq.
    let count = input.hashes.len().min(3 * PAGE_RECORDS) as u64;
    if count == 0 {
        return;
    }
    let first = input.first.clamp(1, u64::MAX - (count - 1));
    let name = RunName { level: u32::from(input.level % 100), first, last: first + (count - 1) };
    let hash_of =
        |h: u8| if input.spread { u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15) } else { u64::from(h) };
    let records: Vec<Record> = input
        .hashes
        .iter()
        .take(count as usize)
        .enumerate()
        .map(|(i, &h)| Record { hash: hash_of(h), seq: first + i as u64 })
        .collect();
    let mut store = Store::default();
    let tree =
        build_run(name, records.clone(), &mut store).unwrap_or_else(|e| panic!("build_run failed: {e}"));
    let reader = RunReader::open(name, &tree, &store).unwrap_or_else(|e| panic!("own run is refused: {e}"));
    let mut by_hash: HashMap<u64, Vec<u64>> = HashMap::new();
    for record in &records {
        by_hash.entry(record.hash).or_default().push(record.seq);
    }
    for (&hash, expected) in &by_hash {
        let mut seqs = reader.seqs_of(hash, &store).unwrap_or_else(|e| panic!("lookup failed: {e}"));
        seqs.sort_unstable();
        assert_eq!(&seqs, expected, "hash {hash}");
    }
    for &hash in &input.probes {
        let seqs = reader.seqs_of(hash, &store).unwrap_or_else(|e| panic!("lookup failed: {e}"));
        assert_eq!(seqs.len(), by_hash.get(&hash).map_or(0, Vec::len), "hash {hash}");
    }

    if input.damage.is_empty() {
        return;
    }
    let mut ids: Vec<String> = store.objects.keys().cloned().collect();
    ids.sort();
    for &(which, at, byte) in &input.damage {
        let id = &ids[usize::from(which) % ids.len()];
        if let Some((_, data)) = store.objects.get_mut(id) {
            if data.is_empty() {
                data.push(byte);
            } else {
                let at = usize::from(at) % data.len();
                data[at] = byte;
            }
        }
    }
    match RunReader::open(name, &tree, &store) {
        Ok(reader) => {
            for hash in by_hash.keys().copied().chain(input.probes.iter().copied()) {
                if let Err(e) = reader.seqs_of(hash, &store) {
                    reason(&e.to_string());
                }
            }
        }
        Err(e) => reason(&e.to_string()),
    }
}
