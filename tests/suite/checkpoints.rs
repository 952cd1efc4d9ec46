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

/// A backend that counts object reads, to see how much a reader replays.
#[derive(Debug)]
struct Counting(Arc<dyn Backend>, AtomicUsize);

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
        self.0.compare_and_swap(n, e, new)
    }
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError> {
        self.0.list_refs(prefix)
    }
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
            let counting = Arc::new(Counting(h.log.backend().clone(), AtomicUsize::new(0)));
            let options = decision_log::Options { checkpoint_every: 0, ..Default::default() }
                .sole_writer(h.authority.clone());
            let cold = decision_log::Log::with_backend(counting.clone(), options).unwrap();
            cold.space("team").fold().unwrap();
            counting.1.load(Ordering::SeqCst)
        };
        let replay = reads(false);
        let from_checkpoint = reads(true);
        assert_eq!(replay, 3 * 12, "{}: a full replay reads every event", h.name);
        assert!(from_checkpoint <= 6, "{}: {from_checkpoint} reads from a checkpoint at the head", h.name);
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
