//! The log's operations over a [`Host`]: append, read, fold, verify, import.
//!
//! A [`Log`] keeps, per space, a *replica*: the fold at some head commit, the
//! latest checkpoint it knows, and the commit and id of every seq after that
//! checkpoint; older seqs and ids are found through the checkpoint's index
//! (`index`). It is a cache in the strict sense: keyed by the head's
//! content-addressed id, refreshed from the ref on every call (walking back
//! only to the commit it already knows), and dropped whenever anything about
//! it is in doubt (left *cold*: the next call starts over from the latest
//! checkpoint). The log in storage is always the authority.
//!
//! One job per file: `replica` (what a replica holds), `ctx` (objects in and out),
//! `sync` (catching up with the ref), `checkpointing`, `index`, `append`,
//! `read`, `search`, `paging` (checkpoint pages), `import` and `verify`.

mod append;
mod checkpointing;
mod ctx;
mod import;
mod index;
mod paging;
mod read;
mod replica;
mod search;
mod stream;
mod sync;
mod verify;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::error::{Error, Head};
use crate::host::Host;
use crate::model::Event;

use ctx::Ctx;
use replica::Replica;
pub use search::{Found, Hit, Query};
pub use stream::{FoldCursor, FoldPiece};

/// An intent as it arrives through the WIT, not yet validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawIntent {
    /// Idempotency key.
    pub id: String,
    /// Who decides.
    pub actor: String,
    /// The kind name.
    pub kind: String,
    /// The body as JSON text.
    pub body: String,
    /// The head seq the client saw.
    pub expect_seq: Option<u64>,
}

/// An event together with the commit that stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    /// The event.
    pub event: Event,
    /// Its commit id.
    pub commit: String,
}

/// The outcome of an append.
#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    /// The stored event.
    pub stored: Stored,
    /// False for an idempotent resend (the original is returned).
    pub created: bool,
}

/// Where to fold up to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// Up to this seq.
    Seq(u64),
    /// Up to the event in this commit.
    Commit(String),
}

/// The outcome of verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The space.
    pub space: String,
    /// Events walked.
    pub events: u64,
    /// The head commit.
    pub head: Option<String>,
    /// Broken invariants.
    pub problems: Vec<String>,
}

/// The outcome of import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// Events in the input.
    pub total: u64,
    /// Events already present.
    pub skipped: u64,
    /// Events written.
    pub written: u64,
    /// The head afterwards.
    pub head: Option<Head>,
}

/// How often a checkpoint is written unless configured otherwise.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 512;

/// A catch-up of more than this many checkpoint intervals writes
/// checkpoints as it goes (every 65,536 events by default).
pub const REPLAY_CHECKPOINT_FACTOR: u64 = 128;

/// Tuning of a [`Log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Write a checkpoint whenever the head crosses a multiple of this many
    /// events (0: only on demand).
    pub checkpoint_every: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { checkpoint_every: DEFAULT_CHECKPOINT_EVERY }
    }
}

/// A checkpoint as reported to callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The seq it covers.
    pub seq: u64,
    /// The checkpoint commit.
    pub commit: String,
    /// The event commit at that seq.
    pub event: String,
}

/// The decision log over a host.
#[derive(Debug)]
pub struct Log<H> {
    /// Apart from the replicas, so that an operation can hold its replica
    /// and reach the host at the same time.
    ctx: Ctx<H>,
    /// One per space read or written so far.
    replicas: BTreeMap<String, Replica>,
}

impl<H: Host> Log<H> {
    /// A log over `host`, with nothing cached yet.
    pub fn new(host: H) -> Log<H> {
        Log { ctx: Ctx::new(host), replicas: BTreeMap::new() }
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.ctx.host
    }

    /// Change the settings of this log.
    pub fn configure(&mut self, settings: Settings) {
        self.ctx.settings = settings;
    }

    /// Warnings since the last call: things that were wrong but did not stop
    /// the operation (e.g. a damaged checkpoint that was replaced by a replay).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ctx.warnings)
    }
}

fn storage(e: String) -> Error {
    Error::Storage(e)
}
