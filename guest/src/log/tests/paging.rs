//! Paged checkpoints: a reader answers for one key from its page, a writer
//! rewrites only the pages it changed, older checkpoints still read, and a
//! damaged page costs a replay and a warning, never a wrong answer.

use super::*;
use crate::pages;

/// Append `id-{i}` deciding `key-{i}` (zero-padded) for each `i` in `from..=to`.
fn distinct_keys(log: &mut Log<FakeHost>, from: u64, to: u64) {
    let mut start = from;
    while start <= to {
        let end = to.min(start + 99);
        let batch: Vec<RawIntent> =
            (start..=end).map(|i| decide(&format!("id-{i}"), &key(i), &format!("v{i}"))).collect();
        log.append_batch(SPACE, &batch).expect("append");
        start = end + 1;
    }
}

fn key(i: u64) -> String {
    format!("key-{i:05}")
}

/// The entries of a checkpoint's root tree, as `encode_tree` takes them.
fn root_entries(host: &FakeHost, commit: &str) -> Vec<(String, ObjectKind, String)> {
    let header = checkpoint_header(host, commit);
    let (_, root) = host.object(&header.tree).expect("stored");
    let kind = |dir: bool| if dir { ObjectKind::Tree } else { ObjectKind::Blob };
    checkpoint::decode_tree(&root).expect("tree").into_iter().map(|(n, dir, id)| (n, kind(dir), id)).collect()
}

/// The blob ids of a checkpoint's pages, in order.
fn page_ids(host: &FakeHost, commit: &str) -> Vec<String> {
    let pages = root_entries(host, commit).into_iter().find(|(n, _, _)| n == "pages").expect("pages").2;
    let (_, tree) = host.object(&pages).expect("stored");
    let entries = checkpoint::decode_tree(&tree).expect("tree");
    entries.into_iter().filter(|(n, _, _)| n != pages::FENCES).map(|(_, _, id)| id).collect()
}

/// Point the checkpoint ref at a copy of checkpoint `commit` with root
/// tree `entries` and, if given, another Dlog-State-Sha1.
fn copy_checkpoint(
    host: &FakeHost,
    commit: &str,
    mut entries: Vec<(String, ObjectKind, String)>,
    state_sha1: Option<String>,
) -> String {
    let header = checkpoint_header(host, commit);
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let root = host.write_object(ObjectKind::Tree, &checkpoint::encode_tree(&entries)).expect("write");
    let (_, text) = host.object(commit).expect("stored");
    let mut text = String::from_utf8(text).expect("UTF-8").replace(&header.tree, &root);
    if let Some(sha) = state_sha1 {
        text = text.replace(&header.state_sha1, &sha);
    }
    let id = host.write_object(ObjectKind::Commit, text.as_bytes()).expect("write");
    host.force_ref(&checkpoint::checkpoint_ref(SPACE), &id);
    id
}

/// Objects read by a fresh reader to show key 7 and then to append to
/// another key, on a checkpointed space of `n` keys.
fn one_key_reads(n: u64) -> (usize, usize) {
    let host = store();
    let mut writer = open(&host, 0);
    distinct_keys(&mut writer, 1, n);
    writer.append(SPACE, &supersede("again", &key(7), "w", "id-7")).expect("supersede");
    writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    let expected = writer.show(SPACE, &key(7)).expect("show").expect("a record");

    let mut cold = open(&host, 0);
    let before = host.reads();
    let shown = cold.show(SPACE, &key(7)).expect("show").expect("a record");
    let show_reads = host.reads() - before;
    assert_eq!(shown, expected, "n = {n}");
    let ids: Vec<&str> = shown.1.iter().map(|s| s.event.id.as_str()).collect();
    assert_eq!(ids, ["id-7", "again"], "the key's history, oldest first");
    assert!(shown.0.contains("\"choice\":\"w\""), "{}", shown.0);

    let before = host.reads();
    let appended = cold.append(SPACE, &supersede("later", &key(n / 2), "x", &format!("id-{}", n / 2)));
    assert!(appended.expect("append").created);
    let append_reads = host.reads() - before;
    assert!(cold.take_warnings().is_empty());
    (show_reads, append_reads)
}

#[test]
fn a_fresh_reader_shows_and_appends_to_one_key_reading_as_much_at_3000_keys_as_at_100() {
    let (small_show, small_append) = one_key_reads(100);
    let (large_show, large_append) = one_key_reads(3000);
    // 100 keys fit a few pages and 3000 take about a hundred; a reader of one
    // key reads its page alone either way (the id index may add a level).
    assert!(large_show <= small_show + 2, "show: {small_show} reads at 100 keys, {large_show} at 3000");
    assert!(large_append <= small_append + 4, "append: {small_append} reads at 100, {large_append} at 3000");
    assert!(large_show < 25 && large_append < 25, "show {large_show}, append {large_append}");
}

#[test]
fn a_checkpoint_after_a_few_appends_rewrites_only_their_pages_and_equals_one_built_from_scratch() {
    let host = store();
    let mut writer = open(&host, 0);
    distinct_keys(&mut writer, 1, 3000);
    let first = writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    let before = page_ids(&host, &first.commit);
    assert!(before.len() > 30, "3000 keys take many pages: {}", before.len());

    let mut cold = open(&host, 0);
    cold.append(SPACE, &supersede("s1", &key(10), "w", "id-10")).expect("s1");
    cold.append(SPACE, &retract("r1", &key(2990), "id-2990")).expect("r1");
    let second = cold.checkpoint(SPACE).expect("checkpoint").expect("written");
    let after = page_ids(&host, &second.commit);
    let rewritten: Vec<&String> = after.iter().filter(|id| !before.contains(id)).collect();
    assert_eq!(rewritten.len(), 2, "the two changed keys' pages alone: {rewritten:?}");
    assert_eq!(after.len(), before.len());

    // Verify rebuilds every page from a replay of the log and compares.
    let report = open(&host, 0).verify(SPACE).expect("verify");
    assert_eq!((report.events, report.problems), (3002, Vec::<String>::new()));
    let mut replayed = open(&host, 0);
    assert_eq!(replayed.fold(SPACE, None).expect("fold"), writer.fold(SPACE, None).expect("fold"));
    assert!(replayed.take_warnings().is_empty() && cold.take_warnings().is_empty());
}

#[test]
fn a_checkpoint_an_older_dlog_wrote_still_reads_and_the_next_one_is_paged() {
    let host = store();
    let mut writer = open(&host, 0);
    history(&mut writer);
    let fold = writer.fold(SPACE, None).expect("fold");
    let info = writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    // An older dlog kept the whole fold, as `fold` prints it, in state.json.
    let state = host.write_object(ObjectKind::Blob, fold.as_bytes()).expect("write");
    let mut entries: Vec<_> = root_entries(&host, &info.commit)
        .into_iter()
        .filter(|(n, _, _)| n == "ids" || n == "index")
        .collect();
    entries.push(("state.json".into(), ObjectKind::Blob, state));
    let old = copy_checkpoint(&host, &info.commit, entries, Some(checkpoint::sha1_hex(fold.as_bytes())));
    let names: Vec<String> = root_entries(&host, &old).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["ids", "index", "state.json"]);

    let mut reader = open(&host, 0);
    assert_eq!(reader.fold(SPACE, None).expect("fold"), fold);
    let shown = reader.show(SPACE, "db").expect("show").expect("a record");
    assert_eq!(shown, writer.show(SPACE, "db").expect("show").expect("a record"));
    reader.append(SPACE, &decide("d12", "k12", "v")).expect("append");
    let next = reader.checkpoint(SPACE).expect("checkpoint").expect("written");
    assert!(reader.take_warnings().is_empty(), "reading an older checkpoint is no problem");
    let names: Vec<String> = root_entries(&host, &next.commit).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["head.json", "ids", "index", "pages"]);
    let report = open(&host, 0).verify(SPACE).expect("verify");
    assert_eq!(report.problems, Vec::<String>::new());
}

#[test]
fn a_damaged_page_costs_a_warning_and_a_replay_and_verify_names_it() {
    let host = store();
    let mut writer = open(&host, 0);
    distinct_keys(&mut writer, 1, 500);
    let info = writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    let expected = writer.show(SPACE, &key(1)).expect("show").expect("a record");
    // Page 0 replaced by page 1: a well-formed page with the wrong keys.
    let ids = page_ids(&host, &info.commit);
    let pages_tree =
        root_entries(&host, &info.commit).into_iter().find(|(n, _, _)| n == "pages").expect("pages");
    let (_, tree) = host.object(&pages_tree.2).expect("stored");
    let kind = |dir: bool| if dir { ObjectKind::Tree } else { ObjectKind::Blob };
    let entries: Vec<_> = checkpoint::decode_tree(&tree)
        .expect("tree")
        .into_iter()
        .map(|(n, dir, id)| {
            let id = if n == pages::page_name(0) { ids[1].clone() } else { id };
            (n, kind(dir), id)
        })
        .collect();
    let damaged = host.write_object(ObjectKind::Tree, &checkpoint::encode_tree(&entries)).expect("write");
    let root = root_entries(&host, &info.commit)
        .into_iter()
        .map(|(n, k, id)| if n == "pages" { (n, k, damaged.clone()) } else { (n, k, id) })
        .collect();
    copy_checkpoint(&host, &info.commit, root, None);

    let mut reader = open(&host, 0);
    assert_eq!(reader.show(SPACE, &key(1)).expect("show").expect("a record"), expected);
    let warnings = reader.take_warnings();
    assert!(
        warnings.len() == 1 && warnings[0].contains("checkpoint page 0") && warnings[0].contains("replayed"),
        "{warnings:?}"
    );
    // A key on an undamaged page is read from it without complaint.
    let mut other = open(&host, 0);
    let last = key(500);
    assert_eq!(other.show(SPACE, &last).expect("show"), writer.show(SPACE, &last).expect("show"));
    assert!(other.take_warnings().is_empty());

    let report = open(&host, 0).verify(SPACE).expect("verify");
    assert!(
        report.problems.len() == 1
            && report.problems[0].contains("its pages differ from the fold at seq 500"),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_lost_page_met_by_a_catch_up_costs_a_warning_and_the_next_checkpoint_writes_it_again() {
    let host = store();
    let mut writer = open(&host, 0);
    distinct_keys(&mut writer, 1, 500);
    let info = writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    // An event after the checkpoint on a key of page 0: every reader's
    // catch-up needs that page.
    writer.append(SPACE, &supersede("after", &key(1), "w", "id-1")).expect("append");
    let lost = page_ids(&host, &info.commit)[0].clone();
    host.remove_object(&lost);

    for read in ["head", "events"] {
        let mut reader = open(&host, 0);
        match read {
            "head" => assert_eq!(reader.head(SPACE).expect("head"), writer.head(SPACE).expect("head")),
            _ => assert_eq!(
                reader.events(SPACE, 500, 5).expect("events"),
                writer.events(SPACE, 500, 5).expect("events")
            ),
        }
        let warnings = reader.take_warnings();
        assert!(warnings.len() == 1 && warnings[0].contains("checkpoint page 0"), "{read}: {warnings:?}");
    }

    let report = open(&host, 0).verify(SPACE).expect("verify");
    assert!(
        report.problems.len() == 1 && report.problems[0].contains("its pages cannot be read"),
        "{:?}",
        report.problems
    );

    // The next checkpoint is built from the replay, not from the lost page.
    let mut reader = open(&host, 0);
    let next = reader.checkpoint(SPACE).expect("checkpoint").expect("written");
    for id in page_ids(&host, &next.commit) {
        assert!(host.object(&id).is_some(), "page {id} of the new checkpoint is stored");
    }
    let mut fresh = open(&host, 0);
    assert_eq!(fresh.show(SPACE, &key(2)).expect("show"), writer.show(SPACE, &key(2)).expect("show"));
    assert!(fresh.take_warnings().is_empty());
}
