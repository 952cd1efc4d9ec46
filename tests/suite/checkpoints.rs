//! Checkpoints: a reader that starts from one gets exactly the bytes a full
//! replay gives; a damaged one is replaced by a replay, with a warning.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use decision_log::Position;
use decision_log::backend::{Backend, ObjectId, ObjectKind, StorageError, SwapOutcome};

use crate::support::*;

fn history(log: &decision_log::Log) {
    let s = log.space("team");
    s.append(decide("d1", "db", "postgres")).unwrap();
    s.append(decide("d2", "ui", "web")).unwrap();
    s.append_batch(vec![
        supersede("d3", "db", "sqlite", "d1"),
        decide("d4", "os", "linux"),
        retract("r1", "ui", Some("d2")),
    ])
    .unwrap();
    for i in 5..=10 {
        s.append(decide(&format!("d{i}"), &format!("k{i}"), "v")).unwrap();
    }
}

/// A backend that counts object reads, to see how much a reader replays,
/// and, when told, refuses to move checkpoint refs (a repository this
/// process may read but not write).
#[derive(Debug)]
struct Counting(Arc<dyn Backend>, AtomicUsize, bool);

impl Backend for Counting {
    fn write_object(&self, kind: ObjectKind, data: &[u8]) -> Result<ObjectId, StorageError> {
        self.0.write_object(kind, data)
    }
    fn read_object(&self, id: &ObjectId) -> Result<Option<(ObjectKind, Vec<u8>)>, StorageError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.read_object(id)
    }
    fn read_ref(&self, name: &str) -> Result<Option<ObjectId>, StorageError> {
        self.0.read_ref(name)
    }
    fn compare_and_swap(
        &self,
        n: &str,
        e: Option<&ObjectId>,
        new: &ObjectId,
    ) -> Result<SwapOutcome, StorageError> {
        if self.2 && n.starts_with("refs/dlog/checkpoints/") {
            return Err(StorageError::io(format!("cannot update {n}"), "permission denied"));
        }
        self.0.compare_and_swap(n, e, new)
    }
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError> {
        self.0.list_refs(prefix)
    }
}

/// A log over `h`'s storage that counts its object reads, checkpointing
/// every `every` events, as a fresh process would open it.
fn counted(h: &TestHost, every: u64) -> (decision_log::Log, Arc<Counting>) {
    counted_with(h, every, false)
}

/// [`counted`], refusing to move checkpoint refs when `read_only`.
fn counted_with(h: &TestHost, every: u64, read_only: bool) -> (decision_log::Log, Arc<Counting>) {
    let counting = Arc::new(Counting(h.log.backend().clone(), AtomicUsize::new(0), read_only));
    let options =
        decision_log::Options { checkpoint_every: every, clock: h.clock.clone(), ..Default::default() }
            .sole_writer(h.authority.clone());
    (decision_log::Log::with_backend(counting.clone(), options).unwrap(), counting)
}

#[test]
fn a_reader_starting_from_a_checkpoint_reads_a_few_objects_not_the_log() {
    each_host(|h| {
        let writer = reopen(h, 0);
        history(&writer);
        writer.space("team").append(decide("d11", "k11", "v")).unwrap();
        let reads = |checkpoint: bool| {
            if checkpoint {
                writer.space("team").checkpoint().unwrap();
            }
            let (cold, counting) = counted(h, 0);
            cold.space("team").fold().unwrap();
            counting.1.load(Ordering::SeqCst)
        };
        let replay = reads(false);
        let from_checkpoint = reads(true);
        assert_eq!(replay, 3 * 12, "{}: a full replay reads every event", h.name);
        // The checkpoint commit, its root and pages trees, head.json, the
        // fences, the one page these keys fit on, and the event it names.
        assert!(from_checkpoint <= 10, "{}: {from_checkpoint} reads from a checkpoint at the head", h.name);
    });
}

#[test]
fn a_reader_starting_from_a_checkpoint_gets_the_bytes_of_a_full_replay() {
    let mut checkpoints = Vec::new();
    for host in hosts() {
        let writer = reopen(&host, 3);
        history(&writer);
        let info = writer.space("team").checkpoint().unwrap().unwrap();
        assert_eq!(info.seq, 11, "{}: on demand, at the head", host.name);
        let checkpointed = writer.space("team").fold().unwrap();

        let cold = reopen(&host, 0);
        let s = cold.space("team");
        assert_eq!(s.fold().unwrap(), checkpointed, "{}", host.name);
        assert!(cold.take_warnings().is_empty(), "{}", host.name);
        assert_eq!(snapshot(&s), snapshot(&writer.space("team")));
        assert_eq!(
            s.fold_at(&Position::Seq(2)).unwrap(),
            writer.space("team").fold_at(&Position::Seq(2)).unwrap()
        );
        let resent = reopen(&host, 0).space("team").append(decide("d2", "ui", "web")).unwrap();
        assert!(!resent.created, "{}: ids before the checkpoint are still found", host.name);
        let report = s.verify().unwrap();
        assert!(report.problems.is_empty(), "{}: {:?}", host.name, report.problems);
        checkpoints.push(info.commit);
    }
    assert_eq!(checkpoints[0], checkpoints[1], "both hosts write the same checkpoint commit");
}

#[test]
fn a_checkpoint_is_written_each_time_the_head_crosses_the_interval() {
    each_host(|h| {
        let writer = reopen(h, 4);
        history(&writer);
        let refs = h.log.backend().list_refs("refs/dlog/checkpoints/").unwrap();
        assert_eq!(refs.len(), 1);
        let mut seqs = Vec::new();
        let mut cursor = Some(refs[0].1);
        while let Some(id) = cursor {
            let (_, bytes) = h.log.backend().read_object(&id).unwrap().unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let seq = text
                .lines()
                .find_map(|l| l.strip_prefix("Dlog-Checkpoint-Seq: "))
                .unwrap()
                .parse::<u64>()
                .unwrap();
            seqs.push(seq);
            cursor =
                text.lines().find_map(|l| l.strip_prefix("parent ")).map(|p| ObjectId::from_hex(p).unwrap());
        }
        // Singles at 1, 2; a batch to 5 (crosses 4); singles to 10 (crosses 8).
        assert_eq!(seqs, [8, 5], "{}", h.name);
    });
}

#[test]
fn a_damaged_checkpoint_is_ignored_with_a_warning_and_verify_reports_it() {
    each_host(|h| {
        let writer = reopen(h, 0);
        history(&writer);
        let good = writer.space("team").fold().unwrap();
        let info = writer.space("team").checkpoint().unwrap().unwrap();
        let backend = h.log.backend();
        let old = ObjectId::from_hex(&info.commit).unwrap();
        let (_, bytes) = backend.read_object(&old).unwrap().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let sha = text.lines().find_map(|l| l.strip_prefix("Dlog-State-Sha1: ")).unwrap().to_owned();
        let damaged = text.replace(&sha, &"0".repeat(40));
        let new = backend.write_object(ObjectKind::Commit, damaged.as_bytes()).unwrap();
        backend.compare_and_swap("refs/dlog/checkpoints/team", Some(&old), &new).unwrap();

        let cold = reopen(h, 0);
        assert_eq!(cold.space("team").fold().unwrap(), good, "{}: never a wrong state", h.name);
        let warnings = cold.take_warnings();
        assert!(warnings.iter().any(|w| w.contains("unusable")), "{}: {warnings:?}", h.name);
        let report = cold.space("team").verify().unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("checkpoint")),
            "{}: {:?}",
            h.name,
            report.problems
        );
    });
}

/// `n` decisions, appended one by one and in batches of five.
fn long_history(space: &decision_log::Space, n: usize) -> Vec<String> {
    let mut commits = Vec::new();
    let mut i = 0;
    while i < n {
        if i % 10 == 5 && i + 5 <= n {
            let batch = (i..i + 5).map(|j| decide(&format!("id-{j}"), &format!("k{}", j % 7), "v")).collect();
            commits.extend(space.append_batch(batch).unwrap().into_iter().map(|a| a.event.commit));
            i += 5;
        } else {
            commits.push(
                space.append(decide(&format!("id-{i}"), &format!("k{}", i % 7), "v")).unwrap().event.commit,
            );
            i += 1;
        }
    }
    commits
}

/// A raw tree entry: name, mode, id.
type Entry = (String, Vec<u8>, ObjectId);

/// The checkpoint ref's commit, its text and its tree's entries.
fn checkpoint_tree(h: &TestHost, space: &str) -> (ObjectId, String, Vec<Entry>) {
    let backend = h.log.backend();
    let refs = backend.list_refs(&format!("refs/dlog/checkpoints/{space}")).unwrap();
    let commit = refs[0].1;
    let (_, bytes) = backend.read_object(&commit).unwrap().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let tree = ObjectId::from_hex(text.lines().next().unwrap().strip_prefix("tree ").unwrap()).unwrap();
    let (_, mut rest) = backend.read_object(&tree).map(|o| o.unwrap()).unwrap();
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let nul = rest.iter().position(|&b| b == 0).unwrap();
        let (head, tail) = rest.split_at(nul);
        let space = head.iter().position(|&b| b == b' ').unwrap();
        let id = ObjectId(tail[1..21].try_into().unwrap());
        entries.push((String::from_utf8(head[space + 1..].to_vec()).unwrap(), head[..space].to_vec(), id));
        rest = tail[21..].to_vec();
    }
    (commit, text, entries)
}

/// `entries` with the entry `name` pointing at `id` instead.
fn with_entry(entries: &[Entry], name: &str, id: ObjectId) -> Vec<Entry> {
    entries.iter().map(|(n, m, old)| (n.clone(), m.clone(), if n == name { id } else { *old })).collect()
}

/// Replace the space's checkpoint by one whose tree has `entries`.
fn replace_checkpoint(h: &TestHost, space: &str, entries: &[Entry]) {
    let backend = h.log.backend();
    let (old, text, _) = checkpoint_tree(h, space);
    let mut tree = Vec::new();
    for (name, mode, id) in entries {
        tree.extend_from_slice(mode);
        tree.push(b' ');
        tree.extend_from_slice(name.as_bytes());
        tree.push(0);
        tree.extend_from_slice(&id.0);
    }
    let new_tree = backend.write_object(ObjectKind::Tree, &tree).unwrap();
    let old_tree = text.lines().next().unwrap().strip_prefix("tree ").unwrap().to_owned();
    let commit = text.replace(&old_tree, &new_tree.to_hex());
    let new = backend.write_object(ObjectKind::Commit, commit.as_bytes()).unwrap();
    backend.compare_and_swap(&format!("refs/dlog/checkpoints/{space}"), Some(&old), &new).unwrap();
}

#[test]
fn ids_from_before_many_checkpoints_and_merges_are_found_by_a_fresh_process() {
    let mut checkpoint_commits = Vec::new();
    for host in hosts() {
        // Every 4 events: 37 checkpoints, so runs merge into levels 1 and 2.
        let writer = reopen(&host, 4);
        let commits = long_history(&writer.space("team"), 150);
        let cold = reopen(&host, 0);
        let s = cold.space("team");
        for (i, commit) in commits.iter().enumerate() {
            let again = s.append(decide(&format!("id-{i}"), &format!("k{}", i % 7), "v")).unwrap();
            assert!(!again.created, "{}: id-{i} is found", host.name);
            assert_eq!(&again.event.commit, commit, "{}: id-{i} answers its original event", host.name);
        }
        let conflict = s.append(decide("id-3", "k3", "something else")).unwrap_err();
        assert!(conflict.to_string().contains("id-3"), "{}: {conflict}", host.name);
        assert!(s.append(decide("id-150", "k0", "v")).unwrap().created, "{}", host.name);
        assert!(cold.take_warnings().is_empty(), "{}", host.name);
        // A fold at a commit long before the checkpoint, from a fresh process.
        let at = reopen(&host, 0).space("team").fold_at(&Position::Commit(commits[9].clone())).unwrap();
        assert_eq!(at, writer.space("team").fold_at(&Position::Seq(10)).unwrap(), "{}", host.name);
        let report = s.verify().unwrap();
        assert!(report.problems.is_empty(), "{}: {:?}", host.name, report.problems);
        let (commit, _, entries) = checkpoint_tree(&host, "team");
        let names: Vec<&str> = entries.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["head.json", "ids", "index", "pages"], "{}", host.name);
        checkpoint_commits.push(commit);
    }
    assert_eq!(checkpoint_commits[0], checkpoint_commits[1], "both hosts write the same checkpoints");
}

#[test]
fn a_fresh_process_appends_to_a_long_checkpointed_log_reading_as_few_objects_as_to_a_short_one() {
    each_host(|h| {
        let reads_for_first_append = |space: &str, n: usize| {
            long_history(&reopen(h, 8).space(space), n);
            let (cold, counting) = counted(h, 0);
            assert!(cold.space(space).append(decide("new", "k", "v")).unwrap().created);
            counting.1.load(Ordering::SeqCst)
        };
        let short = reads_for_first_append("short", 64);
        let long = reads_for_first_append("long", 1024);
        // 16x the events: the old index was read whole (one segment per
        // checkpoint: 8 vs 128 blobs); now a run more per level, each two
        // objects (its tree and meta): at most 2 levels more here.
        assert!(long <= short + 12, "{}: {short} reads for 64 events, {long} for 1024", h.name);
    });
}

#[test]
fn a_damaged_id_index_is_replaced_by_a_replay_with_a_warning_and_verify_reports_it() {
    each_host(|h| {
        let writer = reopen(h, 4);
        long_history(&writer.space("team"), 40);
        let good = writer.space("team").fold().unwrap();
        let (_, _, entries) = checkpoint_tree(h, "team");
        // Point `ids` at the index tree: not a list of runs.
        let index = entries.iter().find(|(n, _, _)| n == "index").unwrap().2;
        let damaged = with_entry(&entries, "ids", index);
        replace_checkpoint(h, "team", &damaged);

        let cold = reopen(h, 4);
        let s = cold.space("team");
        assert_eq!(s.fold().unwrap(), good, "{}: the fold does not need the id index", h.name);
        let again = s.append(decide("id-7", "k0", "v")).unwrap();
        assert!(!again.created, "{}: still found, by a replay", h.name);
        let warnings = cold.take_warnings();
        assert!(
            warnings.iter().any(|w| w.contains("index") && w.contains("replayed")),
            "{}: {warnings:?}",
            h.name
        );
        let report = s.verify().unwrap();
        assert!(report.problems.iter().any(|p| p.contains("id index")), "{}: {:?}", h.name, report.problems);

        // The next checkpoint replaces the damaged one with a new chain.
        for i in 40..44 {
            s.append(decide(&format!("id-{i}"), "k1", "w")).unwrap();
        }
        let report = s.verify().unwrap();
        assert!(report.problems.is_empty(), "{}: {:?}", h.name, report.problems);
        let fresh = reopen(h, 0);
        assert!(!fresh.space("team").append(decide("id-7", "k0", "v")).unwrap().created);
        assert!(fresh.take_warnings().is_empty(), "{}", h.name);
    });
}

#[test]
fn a_checkpoint_from_before_the_id_index_is_replayed_over_with_a_warning_and_is_not_a_problem() {
    each_host(|h| {
        let writer = reopen(h, 0);
        history(&writer);
        writer.space("team").checkpoint().unwrap();
        let good = writer.space("team").fold().unwrap();
        let (_, _, entries) = checkpoint_tree(h, "team");
        let legacy: Vec<_> = entries.into_iter().filter(|(n, _, _)| n != "ids").collect();
        replace_checkpoint(h, "team", &legacy);

        let cold = reopen(h, 0);
        assert_eq!(cold.space("team").fold().unwrap(), good, "{}", h.name);
        let warnings = cold.take_warnings();
        assert!(warnings.iter().any(|w| w.contains("older dlog")), "{}: {warnings:?}", h.name);
        let report = cold.space("team").verify().unwrap();
        assert!(report.problems.is_empty(), "{}: {:?}", h.name, report.problems);
        cold.space("team").checkpoint().unwrap().unwrap();
        let fresh = reopen(h, 0);
        assert_eq!(fresh.space("team").fold().unwrap(), good, "{}", h.name);
        assert!(fresh.take_warnings().is_empty(), "{}: `dlog checkpoint` wrote a current one", h.name);
    });
}

#[test]
fn writers_racing_to_checkpoint_share_one_chain_that_a_fresh_process_can_use() {
    each_host(|h| {
        // Two processes, alternating appends: each crosses every other
        // multiple of 4 and finds the other's checkpoint in its way.
        let (a, b) = (reopen(h, 4), reopen(h, 4));
        for i in 0..60 {
            let writer = if (i / 3) % 2 == 0 { &a } else { &b };
            writer.space("team").append(decide(&format!("id-{i}"), &format!("k{}", i % 5), "v")).unwrap();
        }
        let fresh = reopen(h, 0);
        let s = fresh.space("team");
        for i in 0..60 {
            let again = s.append(decide(&format!("id-{i}"), &format!("k{}", i % 5), "v")).unwrap();
            assert!(!again.created, "{}: id-{i}", h.name);
        }
        assert!(fresh.take_warnings().is_empty(), "{}", h.name);
        assert!(a.take_warnings().is_empty() && b.take_warnings().is_empty(), "{}", h.name);
        let report = s.verify().unwrap();
        assert!(report.problems.is_empty(), "{}: {:?}", h.name, report.problems);
        let (_, text, _) = checkpoint_tree(h, "team");
        assert!(text.contains("Dlog-Checkpoint-Seq: 60"), "{}: {text}", h.name);
    });
}

#[test]
fn a_reader_that_falls_far_behind_follows_the_writers_checkpoints_and_still_finds_every_id() {
    each_host(|h| {
        let writer = reopen(h, 64);
        let reader = reopen(h, 0);
        writer.space("team").append(decide("first", "k", "v")).unwrap();
        assert_eq!(reader.space("team").head().unwrap().unwrap().seq, 1);
        // More than 4 x 512 events behind: the reader adopts the writer's
        // latest checkpoint instead of keeping every event since seq 1.
        for start in (1..2200).step_by(100) {
            let batch = (start..start + 100)
                .map(|i| decide(&format!("id-{i}"), &format!("k{}", i % 9), "v"))
                .collect();
            writer.space("team").append_batch(batch).unwrap();
        }
        let s = reader.space("team");
        assert_eq!(s.fold().unwrap(), writer.space("team").fold().unwrap(), "{}", h.name);
        for id in ["first", "id-1", "id-1234", "id-2199"] {
            let n: usize = id.strip_prefix("id-").map_or(0, |n| n.parse().unwrap());
            let key = if id == "first" { "k".to_owned() } else { format!("k{}", n % 9) };
            assert!(!s.append(decide(id, &key, "v")).unwrap().created, "{}: {id}", h.name);
        }
        assert!(s.append(decide("id-new", "k0", "w")).unwrap().created);
        assert_eq!(s.events(1, 2).unwrap()[0].id, "first", "{}: events before the checkpoint", h.name);
        assert!(reader.take_warnings().is_empty(), "{}", h.name);
    });
}

/// Spaces "team" and "other", 40 events each, checkpointed every 8: the
/// same ids, one seq later in "other", so their indexes and runs differ.
fn team_and_other(h: &TestHost) -> decision_log::Log {
    let writer = reopen(h, 8);
    long_history(&writer.space("team"), 40);
    writer.space("other").append(decide("x", "k", "v")).unwrap();
    long_history(&writer.space("other"), 39);
    writer
}

#[test]
fn verify_finds_an_index_or_id_runs_that_belong_to_other_events() {
    each_host(|h| {
        let writer = team_and_other(h);
        let (_, _, other) = checkpoint_tree(h, "other");
        for part in ["index", "ids"] {
            let (_, _, mine) = checkpoint_tree(h, "team");
            let theirs = other.iter().find(|(n, _, _)| n == part).unwrap().2;
            let swapped = with_entry(&mine, part, theirs);
            replace_checkpoint(h, "team", &swapped);
            let report = writer.space("team").verify().unwrap();
            let expected =
                if part == "index" { "its index does not match" } else { "do not match the events" };
            assert!(
                report.problems.iter().any(|p| p.contains(expected)),
                "{} {part}: {:?}",
                h.name,
                report.problems
            );
            replace_checkpoint(h, "team", &mine);
            assert!(writer.space("team").verify().unwrap().problems.is_empty(), "{} {part}", h.name);
        }
    });
}

#[test]
fn an_index_that_points_at_other_events_never_makes_an_old_id_look_new() {
    each_host(|h| {
        team_and_other(h);
        let (_, _, mine) = checkpoint_tree(h, "team");
        let (_, _, other) = checkpoint_tree(h, "other");
        let theirs = other.iter().find(|(n, _, _)| n == "index").unwrap().2;
        let swapped = with_entry(&mine, "index", theirs);
        replace_checkpoint(h, "team", &swapped);

        let cold = reopen(h, 0);
        let s = cold.space("team");
        let again = s.append(decide("id-7", "k0", "v")).unwrap();
        assert!(!again.created, "{}: found by a replay, not appended twice", h.name);
        assert_eq!(again.event.seq, 8, "{}", h.name);
        let warnings = cold.take_warnings();
        assert!(warnings.iter().any(|w| w.contains("replayed")), "{}: {warnings:?}", h.name);
        assert_eq!(s.head().unwrap().unwrap().seq, 40, "{}: nothing appended", h.name);
    });
}

#[test]
fn a_writer_replaces_a_checkpoint_it_cannot_use_that_appeared_under_it() {
    each_host(|h| {
        let writer = reopen(h, 4);
        let s = writer.space("team");
        long_history(&s, 12);
        // Someone puts a checkpoint without an id index in place (an older
        // dlog, say) while the writer runs.
        let (_, _, entries) = checkpoint_tree(h, "team");
        let legacy: Vec<_> = entries.into_iter().filter(|(n, _, _)| n != "ids").collect();
        replace_checkpoint(h, "team", &legacy);
        for i in 12..24 {
            s.append(decide(&format!("id-{i}"), "k", "v")).unwrap();
        }
        let (_, text, entries) = checkpoint_tree(h, "team");
        assert!(text.contains("Dlog-Checkpoint-Seq: 24"), "{}: {text}", h.name);
        assert!(entries.iter().any(|(n, _, _)| n == "ids"), "{}", h.name);
        let fresh = reopen(h, 0);
        assert!(!fresh.space("team").append(decide("id-3", "k3", "v")).unwrap().created);
        assert!(fresh.take_warnings().is_empty(), "{}", h.name);
        assert!(fresh.space("team").verify().unwrap().problems.is_empty(), "{}", h.name);
    });
}

#[test]
fn checkpoint_on_demand_replaces_a_checkpoint_whose_id_index_is_damaged() {
    each_host(|h| {
        let writer = reopen(h, 0);
        for space in ["first", "second"] {
            long_history(&writer.space(space), 20);
            writer.space(space).checkpoint().unwrap().unwrap();
            let (_, _, entries) = checkpoint_tree(h, space);
            let index = entries.iter().find(|(n, _, _)| n == "index").unwrap().2;
            let damaged = with_entry(&entries, "ids", index);
            replace_checkpoint(h, space, &damaged);
            // The writer still knows the good checkpoint it wrote.
            writer.space(space).append(decide("id-20", "k", "v")).unwrap();
        }
        // The writer's own checkpoint loses the race to the damaged one,
        // then replaces it.
        let info = writer.space("first").checkpoint().unwrap();
        assert_eq!(info.map(|c| c.seq), Some(21), "{}", h.name);
        // A fresh process meets the damage while writing: it replays, then
        // starts a new chain.
        let fresh = reopen(h, 0);
        let info = fresh.space("second").checkpoint().unwrap();
        assert_eq!(info.map(|c| c.seq), Some(21), "{}", h.name);
        let warnings = fresh.take_warnings();
        assert!(warnings.iter().any(|w| w.contains("replayed")), "{}: {warnings:?}", h.name);
        for space in ["first", "second"] {
            let reader = reopen(h, 0);
            assert!(!reader.space(space).append(decide("id-5", "k5", "v")).unwrap().created);
            assert!(reader.take_warnings().is_empty(), "{} {space}", h.name);
            assert!(reader.space(space).verify().unwrap().problems.is_empty(), "{} {space}", h.name);
        }
    });
}

/// `n` decisions in batches of 100, ids `id-0`…
fn batched_history(space: &decision_log::Space, n: usize) {
    for start in (0..n).step_by(100) {
        let batch = (start..(start + 100).min(n))
            .map(|i| decide(&format!("id-{i}"), &format!("k{}", i % 9), "v"))
            .collect();
        space.append_batch(batch).unwrap();
    }
}

#[test]
fn a_replay_of_a_long_log_without_checkpoints_writes_them_as_it_goes() {
    each_host(|h| {
        batched_history(&reopen(h, 0).space("team"), 1100);
        assert!(h.log.backend().list_refs("refs/dlog/checkpoints/").unwrap().is_empty());
        // Checkpointing every 4 events, a catch-up checkpoints every 4 x 128.
        let reader = reopen(h, 4);
        let s = reader.space("team");
        assert_eq!(s.fold().unwrap(), reopen(h, 0).space("team").fold().unwrap(), "{}", h.name);
        assert!(reader.take_warnings().is_empty(), "{}", h.name);
        let (_, text, _) = checkpoint_tree(h, "team");
        assert!(text.contains("Dlog-Checkpoint-Seq: 1024"), "{}: {text}", h.name);
        let fresh = reopen(h, 0);
        assert!(!fresh.space("team").append(decide("id-3", "k3", "v")).unwrap().created, "{}", h.name);
        assert!(fresh.take_warnings().is_empty(), "{}", h.name);
        assert!(fresh.space("team").verify().unwrap().problems.is_empty(), "{}", h.name);
    });
}

#[test]
fn a_reader_far_behind_starts_from_the_writers_checkpoint_instead_of_replaying() {
    each_host(|h| {
        let (reader, counting) = counted(h, 0);
        let writer = reopen(h, 64);
        writer.space("team").append(decide("first", "k", "v")).unwrap();
        assert_eq!(reader.space("team").head().unwrap().unwrap().seq, 1);
        batched_history(&writer.space("team"), 2200);
        counting.1.store(0, Ordering::SeqCst);
        assert_eq!(reader.space("team").fold().unwrap(), writer.space("team").fold().unwrap(), "{}", h.name);
        let reads = counting.1.load(Ordering::SeqCst);
        // Walking back reads one commit per event (2201); replaying them
        // would read two more objects each.
        assert!(reads < 2201 + 300, "{}: {reads} object reads", h.name);
        assert!(!reader.space("team").append(decide("id-5", "k5", "v")).unwrap().created, "{}", h.name);
        assert!(reader.take_warnings().is_empty(), "{}", h.name);
    });
}

#[test]
fn verify_still_checks_every_event_when_the_checkpoint_chain_is_broken() {
    each_host(|h| {
        let writer = reopen(h, 0);
        long_history(&writer.space("team"), 6);
        writer.space("team").checkpoint().unwrap().unwrap();
        let backend = h.log.backend();
        // The checkpoint ref names an event commit (no checkpoint trailers),
        // and another tool rewrites the head's message.
        let head = ObjectId::from_hex(&writer.space("team").head().unwrap().unwrap().commit).unwrap();
        let old_checkpoint = backend.list_refs("refs/dlog/checkpoints/team").unwrap()[0].1;
        backend.compare_and_swap("refs/dlog/checkpoints/team", Some(&old_checkpoint), &head).unwrap();
        let (_, bytes) = backend.read_object(&head).unwrap().unwrap();
        let forged = String::from_utf8(bytes).unwrap().replace("decide k5: v", "decide k5: w");
        let new = backend.write_object(ObjectKind::Commit, forged.as_bytes()).unwrap();
        backend.compare_and_swap("refs/dlog/spaces/team", Some(&head), &new).unwrap();
        let report = reopen(h, 0).space("team").verify().unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("checkpoint commit")),
            "{}: {:?}",
            h.name,
            report.problems
        );
        assert!(
            report.problems.iter().any(|p| p.contains("is not the encoding of its event")),
            "{}: {:?}",
            h.name,
            report.problems
        );
    });
}

#[test]
fn a_replay_that_loses_a_checkpoint_race_starts_from_the_winners_checkpoint() {
    each_host(|h| {
        let (late, counting) = counted(h, 4);
        let writer = reopen(h, 0);
        writer.space("team").append(decide("first", "k", "v")).unwrap();
        assert_eq!(late.space("team").head().unwrap().unwrap().seq, 1);
        batched_history(&writer.space("team"), 1099);
        // Another reader replays first and checkpoints at 512 and 1024.
        reopen(h, 4).space("team").fold().unwrap();
        counting.1.store(0, Ordering::SeqCst);
        // The late one checkpoints at 512 too, loses, and jumps to 1024.
        assert_eq!(late.space("team").fold().unwrap(), writer.space("team").fold().unwrap(), "{}", h.name);
        let reads = counting.1.load(Ordering::SeqCst);
        // 1,099 commits walked back; a replay of all of them would read
        // 2,198 more objects, the jump skips 512 events (1,024 reads).
        assert!(reads < 1099 + 2198 - 800, "{}: {reads} object reads", h.name);
        assert!(late.take_warnings().is_empty(), "{}", h.name);
        assert!(!late.space("team").append(decide("id-3", "k3", "v")).unwrap().created, "{}", h.name);
    });
}

#[test]
fn a_replay_that_cannot_write_checkpoints_still_answers_and_warns_once() {
    each_host(|h| {
        batched_history(&reopen(h, 0).space("team"), 1100);
        let (reader, _) = counted_with(h, 4, true);
        // Passing 512 and 1024, both writes fail: the fold is still right.
        assert_eq!(
            reader.space("team").fold().unwrap(),
            reopen(h, 0).space("team").fold().unwrap(),
            "{}",
            h.name
        );
        let warnings = reader.take_warnings();
        assert_eq!(warnings.len(), 1, "{}: {warnings:?}", h.name);
        assert!(warnings[0].contains("could not write a checkpoint"), "{}: {warnings:?}", h.name);
        assert!(h.log.backend().list_refs("refs/dlog/checkpoints/").unwrap().is_empty(), "{}", h.name);
    });
}

#[test]
fn one_key_and_one_key_prefix_are_read_from_their_checkpoint_pages_and_match_a_full_search() {
    each_host(|h| {
        let writer = reopen(h, 0);
        let s = writer.space("team");
        let intents: Vec<_> =
            (0..600).map(|i| decide(&format!("d{i}"), &format!("area-{}/k{i:03}", i % 6), "v")).collect();
        for batch in intents.chunks(100) {
            s.append_batch(batch.to_vec()).unwrap();
        }
        s.checkpoint().unwrap();
        // After the checkpoint: one key under the prefix changed, one added.
        s.append(supersede("again", "area-3/k003", "w", "d3")).unwrap();
        s.append(decide("new", "area-3/zzz", "z")).unwrap();

        let every = writer.find(&["team".into()], &decision_log::find::Query::default()).unwrap();
        let mut prefix = decision_log::find::Query::default();
        prefix.key = Some("area-3/*".into());
        let (cold, counting) = counted(h, 0);
        let hits = cold.find(&["team".into()], &prefix).unwrap();
        let prefix_reads = counting.1.load(Ordering::SeqCst);
        let expected: Vec<_> = every.iter().filter(|hit| hit.key.starts_with("area-3/")).cloned().collect();
        assert_eq!(hits, expected, "{}", h.name);
        assert_eq!(hits.len(), 101, "{}", h.name);

        let mut one = decision_log::find::Query::default();
        one.key = Some("area-3/k003".into());
        let (cold, counting) = counted(h, 0);
        let hit = cold.find(&["team".into()], &one).unwrap();
        assert_eq!(hit.len(), 1, "{}", h.name);
        assert_eq!(hit[0].record["choice"], "w", "{}", h.name);
        let one_reads = counting.1.load(Ordering::SeqCst);
        let shown = cold.space("team").show("area-3/k003").unwrap();
        assert_eq!(shown.history.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["d3", "again"]);

        let (cold, counting) = counted(h, 0);
        cold.space("team").fold().unwrap();
        let fold_reads = counting.1.load(Ordering::SeqCst);
        // 600 keys are about 19 pages; the hundred under `area-3/` sort
        // together onto a few, and one key is on one.
        assert!(one_reads + 10 < fold_reads, "{}: one key {one_reads}, fold {fold_reads}", h.name);
        assert!(prefix_reads + 10 < fold_reads, "{}: prefix {prefix_reads}, fold {fold_reads}", h.name);
        assert!(cold.take_warnings().is_empty(), "{}", h.name);
    });
}
