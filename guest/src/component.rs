//! The wit-bindgen shell: WIT imports become a [`Host`], WIT exports call
//! [`Log`]. No logic lives here, only conversions.

// The canonical-ABI glue that `generate!` and `export!` emit is `unsafe`
// (raw pointers into linear memory); nothing hand-written here is.
#![allow(unsafe_code)]

use std::cell::RefCell;

use crate::error::{self, Error};
use crate::host::{Host, Lease, ObjectKind, Swap};
use crate::log::{self as oplog, Log, RawIntent};

wit_bindgen::generate!({
    world: "decision-log",
    path: "../host/wit",
});

use dlog::decision_log::{authority, clock, objects, refs, types as wit};
use exports::dlog::decision_log::log::Guest;

/// The host's imports as a [`Host`].
#[derive(Debug)]
struct Imports;

fn to_wit_kind(kind: ObjectKind) -> wit::ObjectKind {
    match kind {
        ObjectKind::Blob => wit::ObjectKind::Blob,
        ObjectKind::Tree => wit::ObjectKind::Tree,
        ObjectKind::Commit => wit::ObjectKind::Commit,
    }
}

fn from_wit_kind(kind: wit::ObjectKind) -> ObjectKind {
    match kind {
        wit::ObjectKind::Blob => ObjectKind::Blob,
        wit::ObjectKind::Tree => ObjectKind::Tree,
        wit::ObjectKind::Commit => ObjectKind::Commit,
    }
}

impl Host for Imports {
    fn write_object(&self, kind: ObjectKind, data: &[u8]) -> Result<String, String> {
        objects::write(to_wit_kind(kind), data)
    }
    fn read_object(&self, id: &str) -> Result<Option<(ObjectKind, Vec<u8>)>, String> {
        Ok(objects::read(id)?.map(|(kind, data)| (from_wit_kind(kind), data)))
    }
    fn read_ref(&self, name: &str) -> Result<Option<String>, String> {
        refs::read(name)
    }
    fn compare_and_swap(&self, name: &str, expected: Option<&str>, new: &str) -> Result<Swap, String> {
        Ok(match refs::compare_and_swap(name, expected, new)? {
            refs::SwapOutcome::Swapped => Swap::Swapped,
            refs::SwapOutcome::Mismatch(actual) => Swap::Mismatch(actual),
        })
    }
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        refs::list(prefix)
    }
    fn identity(&self) -> String {
        authority::identity()
    }
    fn lease(&self, space: &str) -> Option<Lease> {
        authority::current(space).map(|l| Lease {
            holder: l.holder,
            epoch: l.epoch,
            expires_at_ms: l.expires_at_ms,
            endpoint: l.endpoint,
        })
    }
    fn now_ms(&self) -> u64 {
        clock::now_ms()
    }
}

thread_local! {
    /// One log per instance: its replicas survive between calls, which is
    /// what makes an append cost O(1) instead of a replay.
    static LOG: RefCell<Log<Imports>> = RefCell::new(Log::new(Imports));
}

fn with_log<T>(f: impl FnOnce(&mut Log<Imports>) -> Result<T, Error>) -> Result<T, wit::Error> {
    LOG.with(|log| f(&mut log.borrow_mut())).map_err(to_wit_error)
}

fn to_wit_lease(l: Lease) -> wit::Lease {
    wit::Lease { holder: l.holder, epoch: l.epoch, expires_at_ms: l.expires_at_ms, endpoint: l.endpoint }
}

fn to_wit_head(h: error::Head) -> wit::Head {
    wit::Head { commit: h.commit, seq: h.seq, epoch: h.epoch, at_ms: h.at_ms }
}

fn to_wit_error(e: Error) -> wit::Error {
    match e {
        Error::Invalid(m) => wit::Error::Invalid(m),
        Error::HeadConflict { expected_seq, actual } => {
            wit::Error::HeadConflict(wit::HeadConflict { expected_seq, actual: actual.map(to_wit_head) })
        }
        Error::DecisionConflict { key, expected, in_force } => {
            wit::Error::DecisionConflict(wit::DecisionConflict { key, expected, in_force })
        }
        Error::IdConflict(id) => wit::Error::IdConflict(id),
        Error::NotHolder { space, holder } => {
            wit::Error::NotHolder(wit::NotHolder { space, holder: holder.map(to_wit_lease) })
        }
        Error::StaleEpoch { epoch, head_epoch } => {
            wit::Error::StaleEpoch(wit::StaleEpoch { epoch, head_epoch })
        }
        Error::NotFound(m) => wit::Error::NotFound(m),
        Error::Corrupt(m) => wit::Error::Corrupt(m),
        Error::Storage(m) => wit::Error::Storage(m),
    }
}

fn to_wit_event(s: oplog::Stored) -> wit::Event {
    let e = &s.event;
    wit::Event {
        space: e.space.clone(),
        seq: e.seq,
        epoch: e.epoch,
        id: e.id.clone(),
        actor: e.actor.clone(),
        at_ms: e.at_ms,
        kind: e.kind.as_str().to_owned(),
        body: e.body_canonical(),
        canonical: e.canonical(),
        commit: s.commit,
    }
}

fn to_wit_appended(a: oplog::Appended) -> wit::Appended {
    wit::Appended { event: to_wit_event(a.stored), created: a.created }
}

fn from_wit_intent(i: wit::Intent) -> RawIntent {
    RawIntent { id: i.id, actor: i.actor, kind: i.kind, body: i.body, expect_seq: i.expect_seq }
}

struct Component;

impl Guest for Component {
    fn configure(settings: wit::Settings) {
        LOG.with(|log| {
            log.borrow_mut().configure(oplog::Settings { checkpoint_every: settings.checkpoint_every });
        });
    }

    fn checkpoint(space: String) -> Result<Option<wit::CheckpointInfo>, wit::Error> {
        with_log(|log| log.checkpoint(&space))
            .map(|c| c.map(|c| wit::CheckpointInfo { seq: c.seq, commit: c.commit, event: c.event }))
    }

    fn take_warnings() -> Vec<String> {
        LOG.with(|log| log.borrow_mut().take_warnings())
    }

    fn append(space: String, intent: wit::Intent) -> Result<wit::Appended, wit::Error> {
        with_log(|log| log.append(&space, &from_wit_intent(intent))).map(to_wit_appended)
    }

    fn append_batch(space: String, intents: Vec<wit::Intent>) -> Result<Vec<wit::Appended>, wit::Error> {
        let raws: Vec<RawIntent> = intents.into_iter().map(from_wit_intent).collect();
        with_log(|log| log.append_batch(&space, &raws)).map(|v| v.into_iter().map(to_wit_appended).collect())
    }

    fn events(space: String, from_seq: u64, limit: u32) -> Result<Vec<wit::Event>, wit::Error> {
        with_log(|log| log.events(&space, from_seq, limit)).map(|v| v.into_iter().map(to_wit_event).collect())
    }

    fn head(space: String) -> Result<Option<wit::Head>, wit::Error> {
        with_log(|log| log.head(&space)).map(|h| h.map(to_wit_head))
    }

    fn fold(space: String, at: Option<wit::Position>) -> Result<String, wit::Error> {
        let at = at.map(|p| match p {
            wit::Position::Seq(seq) => oplog::Position::Seq(seq),
            wit::Position::Commit(c) => oplog::Position::Commit(c),
        });
        with_log(|log| log.fold(&space, at.as_ref()))
    }

    fn show(space: String, key: String) -> Result<Option<wit::Shown>, wit::Error> {
        with_log(|log| log.show(&space, &key)).map(|shown| {
            shown.map(|(record, history)| wit::Shown {
                record,
                history: history.into_iter().map(to_wit_event).collect(),
            })
        })
    }

    fn search(
        space: String,
        query: wit::SearchQuery,
        after: Option<wit::SearchCursor>,
        limit: u32,
        count: bool,
    ) -> Result<wit::Found, wit::Error> {
        let query = oplog::Query {
            key: query.key,
            tags: query.tags,
            actor: query.actor,
            status: query.status,
            text: query.text,
            since_ms: query.since_ms,
            until_ms: query.until_ms,
        };
        let after = after.as_ref().map(|c| (c.key.as_str(), c.seq));
        let found = with_log(|log| log.search(&space, &query, after, limit, count))?;
        Ok(wit::Found {
            hits: found
                .hits
                .into_iter()
                .map(|h| wit::Hit {
                    key: h.key,
                    status: h.status,
                    id: h.id,
                    seq: h.seq,
                    at_ms: h.at_ms,
                    record: h.record,
                })
                .collect(),
            total: found.total,
        })
    }

    fn fold_piece(
        space: String,
        after: Option<wit::FoldCursor>,
        size: u32,
    ) -> Result<wit::FoldedPiece, wit::Error> {
        let after = after.map(|c| oplog::FoldCursor { seq: c.seq, head: c.head, part: c.part, key: c.key });
        let piece = with_log(|log| log.fold_piece(&space, after.as_ref(), size))?;
        Ok(wit::FoldedPiece {
            text: piece.text,
            next: piece.next.map(|c| wit::FoldCursor { seq: c.seq, head: c.head, part: c.part, key: c.key }),
        })
    }

    fn overlay(spaces: Vec<String>) -> Result<String, wit::Error> {
        with_log(|log| log.overlay(&spaces))
    }

    fn union(spaces: Vec<String>) -> Result<String, wit::Error> {
        with_log(|log| log.union(&spaces))
    }

    fn verify(space: String) -> Result<wit::VerifyReport, wit::Error> {
        with_log(|log| log.verify(&space)).map(|r| wit::VerifyReport {
            space: r.space,
            events: r.events,
            head: r.head,
            problems: r.problems,
        })
    }

    fn spaces() -> Result<Vec<String>, wit::Error> {
        with_log(|log| log.spaces())
    }

    fn import(space: String, events: Vec<String>) -> Result<wit::ImportReport, wit::Error> {
        with_log(|log| log.import(&space, &events)).map(|r| wit::ImportReport {
            total: r.total,
            skipped: r.skipped,
            written: r.written,
            head: r.head.map(to_wit_head),
        })
    }
}

export!(Component);
