//! The log's behaviour over [`FakeHost`], natively: appends and resends,
//! several writers on one store, catch-up, checkpoints and their races and
//! damage, import. The golden transcripts run the same logic through the
//! real component; these reach the corners a transcript cannot set up.

mod append;
mod catch_up;
mod checkpoints;
mod import;
mod paging;
mod search;
mod stream;

use super::fake::FakeHost;
use super::{Log, RawIntent, Settings};
use crate::checkpoint::{self, Header};
use crate::host::{Host, ObjectKind};
use crate::model;

const SPACE: &str = "team";

/// An empty store whose host, "alice", holds the lease on [`SPACE`].
fn store() -> FakeHost {
    let host = FakeHost::new("alice");
    host.grant_lease(SPACE, 1);
    host
}

/// A log over `host` with nothing cached, as a new guest instance opens it.
fn open(host: &FakeHost, checkpoint_every: u64) -> Log<FakeHost> {
    let mut log = Log::new(host.clone());
    log.configure(Settings { checkpoint_every });
    log
}

fn intent(id: &str, kind: &str, body: String) -> RawIntent {
    RawIntent { id: id.into(), actor: "alice".into(), kind: kind.into(), body, expect_seq: None }
}

fn decide(id: &str, key: &str, choice: &str) -> RawIntent {
    intent(id, "decide", format!(r#"{{"key":"{key}","choice":"{choice}","rationale":"because {choice}"}}"#))
}

fn supersede(id: &str, key: &str, choice: &str, previous: &str) -> RawIntent {
    let body =
        format!(r#"{{"key":"{key}","choice":"{choice}","rationale":"changed","supersedes":"{previous}"}}"#);
    intent(id, "decide", body)
}

fn retract(id: &str, key: &str, previous: &str) -> RawIntent {
    intent(id, "retract", format!(r#"{{"key":"{key}","rationale":"withdrawn","supersedes":"{previous}"}}"#))
}

/// The intent `decisions` appends as `id-{i}`.
fn numbered(i: u64) -> RawIntent {
    decide(&format!("id-{i}"), &format!("k{}", i % 7), &format!("v{i}"))
}

/// Append `id-{from}` to `id-{to}`, a hundred per batch.
fn decisions(log: &mut Log<FakeHost>, from: u64, to: u64) {
    let mut start = from;
    while start <= to {
        let end = to.min(start + 99);
        let batch: Vec<RawIntent> = (start..=end).map(numbered).collect();
        let appended = log.append_batch(SPACE, &batch).expect("append");
        assert_eq!(appended.last().map(|a| a.stored.event.seq), Some(end), "seqs follow the ids");
        start = end + 1;
    }
}

/// A short history touching every kind of change to the fold.
fn history(log: &mut Log<FakeHost>) {
    log.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    log.append(SPACE, &decide("d2", "ui", "web")).expect("d2");
    let batch =
        [supersede("d3", "db", "sqlite", "d1"), decide("d4", "os", "linux"), retract("r1", "ui", "d2")];
    log.append_batch(SPACE, &batch).expect("batch");
    for i in 5..=10 {
        log.append(SPACE, &decide(&format!("d{i}"), &format!("k{i}"), "v")).expect("decide");
    }
}

fn checkpoint_header(host: &FakeHost, commit: &str) -> Header {
    let (kind, bytes) = host.object(commit).expect("checkpoint commit stored");
    assert_eq!(kind, ObjectKind::Commit);
    checkpoint::decode_commit(&bytes).expect("checkpoint commit decodes")
}

/// The seqs of the space's checkpoint chain, newest first.
fn checkpoint_seqs(host: &FakeHost) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut cursor = host.read_ref(&checkpoint::checkpoint_ref(SPACE)).expect("ref");
    while let Some(commit) = cursor {
        let header = checkpoint_header(host, &commit);
        seqs.push(header.seq);
        cursor = header.parent;
    }
    seqs
}

fn space_head(host: &FakeHost) -> Option<String> {
    host.read_ref(&model::space_ref(SPACE)).expect("ref")
}
