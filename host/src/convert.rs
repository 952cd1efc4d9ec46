//! Between the generated WIT bindings and the crate's own types.
//!
//! The bindings are private, so this is the one place a WIT change touches
//! besides the import adapters; everything else speaks [`crate::types`].

use crate::bindings::dlog::decision_log::types as wit;
use crate::error::Error;
use crate::types::{
    Appended, CheckpointInfo, Event, Head, ImportReport, Intent, Lease, Position, VerifyReport,
};

impl From<wit::Lease> for Lease {
    fn from(l: wit::Lease) -> Lease {
        Lease { holder: l.holder, epoch: l.epoch, expires_at_ms: l.expires_at_ms, endpoint: l.endpoint }
    }
}

impl From<Lease> for wit::Lease {
    fn from(l: Lease) -> wit::Lease {
        wit::Lease { holder: l.holder, epoch: l.epoch, expires_at_ms: l.expires_at_ms, endpoint: l.endpoint }
    }
}

impl From<wit::Head> for Head {
    fn from(h: wit::Head) -> Head {
        Head { commit: h.commit, seq: h.seq, epoch: h.epoch, at_ms: h.at_ms }
    }
}

impl From<wit::Event> for Event {
    fn from(e: wit::Event) -> Event {
        Event {
            space: e.space,
            seq: e.seq,
            epoch: e.epoch,
            id: e.id,
            actor: e.actor,
            at_ms: e.at_ms,
            kind: e.kind,
            body: e.body,
            canonical: e.canonical,
            commit: e.commit,
        }
    }
}

impl From<wit::Appended> for Appended {
    fn from(a: wit::Appended) -> Appended {
        Appended { event: a.event.into(), created: a.created }
    }
}

impl From<wit::VerifyReport> for VerifyReport {
    fn from(r: wit::VerifyReport) -> VerifyReport {
        VerifyReport { space: r.space, events: r.events, head: r.head, problems: r.problems }
    }
}

impl From<wit::ImportReport> for ImportReport {
    fn from(r: wit::ImportReport) -> ImportReport {
        ImportReport { total: r.total, skipped: r.skipped, written: r.written, head: r.head.map(Head::from) }
    }
}

impl From<wit::CheckpointInfo> for CheckpointInfo {
    fn from(c: wit::CheckpointInfo) -> CheckpointInfo {
        CheckpointInfo { seq: c.seq, commit: c.commit, event: c.event }
    }
}

impl From<&Position> for wit::Position {
    fn from(p: &Position) -> wit::Position {
        match p {
            Position::Seq(seq) => wit::Position::Seq(*seq),
            Position::Commit(commit) => wit::Position::Commit(commit.clone()),
        }
    }
}

/// The intent as the guest takes it. Every intent reaching the guest has an
/// id: routing assigns one before the first attempt so retries keep it.
pub(crate) fn intent_to_wit(intent: &Intent) -> wit::Intent {
    wit::Intent {
        id: intent.id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        actor: intent.actor.clone(),
        kind: intent.kind.clone(),
        body: intent.body.clone(),
        expect_seq: intent.expect_seq,
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Error {
        match e {
            wit::Error::Invalid(m) => Error::Invalid(m),
            wit::Error::HeadConflict(c) => {
                Error::HeadConflict { expected_seq: c.expected_seq, actual: c.actual.map(Head::from) }
            }
            wit::Error::DecisionConflict(c) => {
                Error::DecisionConflict { key: c.key, expected: c.expected, in_force: c.in_force }
            }
            wit::Error::IdConflict(id) => Error::IdConflict(id),
            wit::Error::NotHolder(n) => {
                Error::NotHolder { space: n.space, holder: n.holder.map(Lease::from) }
            }
            wit::Error::StaleEpoch(s) => Error::StaleEpoch { epoch: s.epoch, head_epoch: s.head_epoch },
            wit::Error::NotFound(m) => Error::NotFound(m),
            wit::Error::Corrupt(m) => Error::Corrupt(m),
            wit::Error::Storage(m) => Error::Storage(m),
        }
    }
}
