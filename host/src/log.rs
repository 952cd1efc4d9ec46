//! The library API: a [`Log`] over some storage, and [`Space`] handles.
//!
//! A `Log` owns one sandboxed guest instance (created on first use, replaced
//! after a trap) and serializes calls into it; clones share it. A `Space` is
//! a name plus a `Log`: cheap to clone and safe to share across threads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::authority::{Authority, SoleWriter};
use crate::backend::{Backend, GitBackend, MemoryBackend};
use crate::bindings::dlog::decision_log::types as wit;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::imports::HostState;
use crate::runtime::{Limits, Runtime, Session};

pub use wit::{Appended, Event, Head, ImportReport, Position, VerifyReport};

/// How many times an append without `expect_seq` is retried after another
/// writer moved the head between our read and our compare-and-swap.
const MAX_RACE_RETRIES: u32 = 200;

/// What a client asks to append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Intent {
    /// Idempotency key; the host assigns a UUIDv7 when none is given.
    pub id: Option<String>,
    /// Who decides.
    pub actor: String,
    /// `decide`, `retract` or `authority`.
    pub kind: String,
    /// The body as JSON text.
    pub body: String,
    /// The head seq the client saw; the append fails if it moved.
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

    fn into_wit(self) -> wit::Intent {
        wit::Intent {
            id: self.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            actor: self.actor,
            kind: self.kind,
            body: self.body,
            expect_seq: self.expect_seq,
        }
    }
}

/// How a [`Log`] is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Who may append, as the guest will be told.
    pub authority: Arc<dyn Authority>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Bounds on the guest.
    pub limits: Limits,
}

impl Options {
    /// Options for a CLI process: the system clock, and this process as the
    /// sole writer. (Leases between processes arrive with `dlog serve`.)
    pub fn for_this_process() -> Options {
        Options::default()
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            authority: Arc::new(SoleWriter::new("dlog", 1)),
            clock: Arc::new(SystemClock),
            limits: Limits::default(),
        }
    }
}

struct Inner {
    runtime: Arc<Runtime>,
    backend: Arc<dyn Backend>,
    options: Options,
    user_name: Option<String>,
    git_dir: Option<PathBuf>,
    session: Mutex<Option<Session>>,
}

/// A decision log over some storage.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("backend", &self.inner.backend).finish_non_exhaustive()
    }
}

type GuestResult<T> = wasmtime::Result<Result<T, wit::Error>>;

impl Log {
    /// A log held in memory, with default options.
    pub fn in_memory() -> Result<Log, Error> {
        Log::with_backend(Arc::new(MemoryBackend::new()), Options::default())
    }

    /// A log over any backend.
    pub fn with_backend(backend: Arc<dyn Backend>, options: Options) -> Result<Log, Error> {
        let runtime = Runtime::shared().map_err(|e| Error::Guest(format!("{e:#}")))?;
        Ok(Log {
            inner: Arc::new(Inner {
                runtime,
                backend,
                options,
                user_name: None,
                git_dir: None,
                session: Mutex::new(None),
            }),
        })
    }

    /// The log in the git repository containing `start` (found upwards, like
    /// git). For a repository at exactly a path, `with_backend(GitBackend::open(..))`.
    pub fn open(start: &Path, options: Options) -> Result<Log, Error> {
        let git = GitBackend::discover(start)?;
        let user_name = git.configured_user_name();
        let git_dir = git.git_dir().to_path_buf();
        let mut log = Log::with_backend(Arc::new(git), options)?;
        if let Some(inner) = Arc::get_mut(&mut log.inner) {
            inner.user_name = user_name;
            inner.git_dir = Some(git_dir);
        }
        Ok(log)
    }

    /// Create a git repository for decision logs at `path` (bare or with a
    /// work tree); returns its git directory.
    pub fn init(path: &Path, bare: bool) -> Result<PathBuf, Error> {
        let git = if bare { GitBackend::init_bare(path)? } else { GitBackend::init(path)? };
        Ok(git.git_dir().to_path_buf())
    }

    /// The git directory of the repository, if the log is in one.
    pub fn git_dir(&self) -> Option<&Path> {
        self.inner.git_dir.as_deref()
    }

    /// git's `user.name` for the repository, if the log is in one.
    pub fn configured_user_name(&self) -> Option<String> {
        self.inner.user_name.clone()
    }

    /// The storage under this log.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// A handle on one space. The name is checked on first use.
    pub fn space(&self, name: &str) -> Space {
        Space { log: self.clone(), name: name.to_owned() }
    }

    /// Every space with at least one event.
    pub fn spaces(&self) -> Result<Vec<String>, Error> {
        self.call(|b, s| b.dlog_decision_log_log().call_spaces(s))
    }

    /// Several spaces as one view; the first to decide a key wins.
    pub fn overlay(&self, spaces: &[String]) -> Result<String, Error> {
        self.call(|b, s| b.dlog_decision_log_log().call_overlay(s, spaces))
    }

    /// Several spaces side by side, with the keys they disagree on.
    pub fn union(&self, spaces: &[String]) -> Result<String, Error> {
        self.call(|b, s| b.dlog_decision_log_log().call_union(s, spaces))
    }

    fn session(&self) -> MutexGuard<'_, Option<Session>> {
        // A panic while holding the lock cannot leave the session half-updated
        // in a way that matters: a poisoned session is replaced below anyway.
        self.inner.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Call into the guest. A trap discards the instance (its memory may be
    /// inconsistent) so the next call starts from a fresh one.
    fn call<T>(
        &self,
        f: impl FnOnce(&crate::bindings::DecisionLog, &mut wasmtime::Store<HostState>) -> GuestResult<T>,
    ) -> Result<T, Error> {
        let mut guard = self.session();
        if guard.is_none() {
            let state = HostState {
                backend: self.inner.backend.clone(),
                authority: self.inner.options.authority.clone(),
                clock: self.inner.options.clock.clone(),
                limits: Default::default(),
            };
            let session = self
                .inner
                .runtime
                .instantiate(state, self.inner.options.limits)
                .map_err(|e| Error::Guest(format!("{e:#}")))?;
            *guard = Some(session);
        }
        let Some(session) = guard.as_mut() else {
            return Err(Error::Guest("no guest instance".into()));
        };
        session.store.set_epoch_deadline(self.inner.options.limits.deadline_ticks());
        match f(&session.bindings, &mut session.store) {
            Ok(result) => result.map_err(Error::from),
            Err(trap) => {
                *guard = None;
                Err(Error::Guest(format!("{trap:#}")))
            }
        }
    }
}

/// One space of a log.
#[derive(Clone, Debug)]
pub struct Space {
    log: Log,
    name: String,
}

impl Space {
    /// The space's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log this space belongs to.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Append one intent. Without `expect_seq`, a lost race with another
    /// writer is retried on the new head; with it, the race is a conflict.
    pub fn append(&self, intent: Intent) -> Result<Appended, Error> {
        let retry = intent.expect_seq.is_none();
        let intent = intent.into_wit();
        with_race_retries(retry, || {
            self.log.call(|b, s| b.dlog_decision_log_log().call_append(s, &self.name, &intent))
        })
    }

    /// Append intents as one unit: all become visible with one ref update, or none.
    pub fn append_batch(&self, intents: Vec<Intent>) -> Result<Vec<Appended>, Error> {
        let retry = intents.iter().all(|i| i.expect_seq.is_none());
        let intents: Vec<wit::Intent> = intents.into_iter().map(Intent::into_wit).collect();
        with_race_retries(retry, || {
            self.log.call(|b, s| b.dlog_decision_log_log().call_append_batch(s, &self.name, &intents))
        })
    }

    /// Up to `limit` events from `from_seq` on.
    pub fn events(&self, from_seq: u64, limit: u32) -> Result<Vec<Event>, Error> {
        self.log.call(|b, s| b.dlog_decision_log_log().call_events(s, &self.name, from_seq, limit))
    }

    /// The newest event's position, none for an empty space.
    pub fn head(&self) -> Result<Option<Head>, Error> {
        self.log.call(|b, s| b.dlog_decision_log_log().call_head(s, &self.name))
    }

    /// The coordination state at the head, as canonical JSON.
    pub fn fold(&self) -> Result<String, Error> {
        self.log.call(|b, s| b.dlog_decision_log_log().call_fold(s, &self.name, None))
    }

    /// The coordination state up to a seq or commit, as canonical JSON.
    pub fn fold_at(&self, at: &Position) -> Result<String, Error> {
        self.log.call(|b, s| b.dlog_decision_log_log().call_fold(s, &self.name, Some(at)))
    }

    /// Check the whole chain.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        self.log.call(|b, s| b.dlog_decision_log_log().call_verify(s, &self.name))
    }

    /// Replay exported events (one canonical event per element).
    pub fn import(&self, events: &[String]) -> Result<ImportReport, Error> {
        self.log.call(|b, s| b.dlog_decision_log_log().call_import(s, &self.name, events))
    }

    /// Write every event as JSON Lines (one canonical event per line);
    /// returns how many were written.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, Error> {
        const PAGE: u32 = 1000;
        let mut next = 1;
        loop {
            let page = self.events(next, PAGE)?;
            for event in &page {
                writeln!(out, "{}", event.canonical)
                    .map_err(|e| Error::Storage(format!("writing the export: {e}")))?;
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => next = last.seq + 1,
                Some(last) => return Ok(last.seq),
                None => return Ok(next - 1),
            }
        }
    }
}

/// Run `attempt`, retrying (with a short, growing, jittered pause) while it
/// loses compare-and-swap races, if `retry` allows it.
fn with_race_retries<T>(retry: bool, mut attempt: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut tries = 0;
    loop {
        match attempt() {
            Err(Error::HeadConflict { .. }) if retry && tries < MAX_RACE_RETRIES => {
                tries += 1;
                let jitter = u64::from(uuid::Uuid::now_v7().as_bytes()[15] % 8);
                std::thread::sleep(Duration::from_millis(u64::from(tries.min(10)) + jitter));
            }
            other => return other,
        }
    }
}
