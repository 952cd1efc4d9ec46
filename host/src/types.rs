//! The values the library takes and hands out.
//!
//! They are decision-log's own types, not the WIT bindings' (those stay
//! private to the crate, converted in `convert.rs`), so the component's
//! interface can change without breaking embedders. They derive serde: the
//! forwarding protocol ([`crate::wire`]) and `--json` output are these
//! types, serialized.

use serde::{Deserialize, Serialize};

/// A per-space lease: who may append to the space now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The identity of the holder (e.g. `serve@host:4711#1a2b3c4d`).
    pub holder: String,
    /// The fencing token: strictly increases with every grant to a new holder.
    pub epoch: u64,
    /// Wall-clock milliseconds after which the lease is void unless renewed.
    pub expires_at_ms: u64,
    /// Where the holder accepts forwarded intents (`unix:<path>` or
    /// `tcp:<ip>:<port>`); none for one-shot writers.
    pub endpoint: Option<String>,
}

/// The newest event of a space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The commit of the newest event (40 lowercase hex digits).
    pub commit: String,
    /// Its seq: the number of events in the space.
    pub seq: u64,
    /// The highest epoch written so far (the newest event's).
    pub epoch: u64,
    /// Its timestamp in milliseconds; the next event is stamped no earlier.
    pub at_ms: u64,
}

/// What a client asks to append.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Idempotency key: resending an intent with the same id returns the
    /// original event. The library assigns a UUIDv7 when none is given.
    pub id: Option<String>,
    /// Who decides.
    pub actor: String,
    /// `decide`, `propose`, `accept`, `reject`, `retract` or `authority`
    /// (the bodies are described in the WIT package's `intent` record and in
    /// ARCHITECTURE.md).
    pub kind: String,
    /// The body as JSON text (strict I-JSON), e.g.
    /// `{"key":"db","choice":"postgres","rationale":"we know it"}`.
    pub body: String,
    /// The head seq the client saw (0 for an empty space); the append fails
    /// with [`Error::HeadConflict`](crate::Error::HeadConflict) if it moved.
    pub expect_seq: Option<u64>,
}

impl Intent {
    /// An intent of `kind` by `actor` with a JSON body.
    pub fn new(actor: impl Into<String>, kind: impl Into<String>, body: impl Into<String>) -> Intent {
        Intent { actor: actor.into(), kind: kind.into(), body: body.into(), ..Intent::default() }
    }

    /// The same intent with an explicit idempotency key.
    pub fn with_id(mut self, id: impl Into<String>) -> Intent {
        self.id = Some(id.into());
        self
    }

    /// The same intent, valid only if the head is at `seq`.
    pub fn expecting(mut self, seq: u64) -> Intent {
        self.expect_seq = Some(seq);
        self
    }

    /// The same intent with a fresh UUIDv7 id if it had none. An intent keeps
    /// the id it is given here through every retry and forward, which is
    /// what makes a resend safe.
    pub fn with_assigned_id(mut self) -> Intent {
        if self.id.is_none() {
            self.id = Some(uuid::Uuid::now_v7().to_string());
        }
        self
    }
}

/// An accepted intent, stamped by the append authority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The space the event belongs to.
    pub space: String,
    /// Position in the space, from 1, contiguous.
    pub seq: u64,
    /// Epoch of the lease it was written under.
    pub epoch: u64,
    /// The intent id (idempotency key).
    pub id: String,
    /// Who decided.
    pub actor: String,
    /// The writer's clock in milliseconds; never decreases along the log.
    pub at_ms: u64,
    /// The event kind.
    pub kind: String,
    /// The body, as canonical JSON.
    pub body: String,
    /// The whole event as canonical (RFC 8785) JSON: the stored blob.
    pub canonical: String,
    /// The commit that stores the event.
    pub commit: String,
}

/// The result of an append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    /// The stored event.
    pub event: Event,
    /// False when the intent id was already in the log and the original event
    /// is returned unchanged (an idempotent resend).
    pub created: bool,
}

/// Where in a space to fold up to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Position {
    /// Up to and including this seq.
    Seq(u64),
    /// Up to and including the event stored by this commit.
    Commit(String),
}

/// The outcome of [`Space::verify`](crate::Space::verify).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The space checked.
    pub space: String,
    /// Number of events walked.
    pub events: u64,
    /// The head commit, none for an empty space.
    pub head: Option<String>,
    /// Every broken invariant found, in log order; empty when the chain is sound.
    pub problems: Vec<String>,
}

/// The outcome of [`Space::import`](crate::Space::import).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Events in the file.
    pub total: u64,
    /// Events that were already in the space (a re-import is a no-op).
    pub skipped: u64,
    /// Events written.
    pub written: u64,
    /// The head after the import.
    pub head: Option<Head>,
}

/// A stored fold: the latest commit of `refs/dlog/checkpoints/<space>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The seq it covers.
    pub seq: u64,
    /// The checkpoint commit.
    pub commit: String,
    /// The event commit at that seq.
    pub event: String,
}
