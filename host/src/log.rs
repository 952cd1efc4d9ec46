//! The library API: a [`Log`] over some storage, and [`Space`] handles.
//!
//! A `Log` owns one sandboxed guest instance (created on first use, replaced
//! after a trap) and serializes calls into it; clones share it. A `Space` is
//! a name plus a `Log`: cheap to clone and safe to share across threads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::authority::{Authority, LeaseAuthority, process_identity};
use crate::backend::{Backend, GitBackend, MemoryBackend};
use crate::bindings::dlog::decision_log::types as wit;
use crate::clock::{Clock, SystemClock};
use crate::convert::intent_to_wit;
use crate::error::Error;
use crate::imports::HostState;
use crate::lease::{FileLeases, LeaseCell, Leases, MemoryLeases};
use crate::route::{LocalSpace, Routing};
use crate::runtime::{Limits, Runtime, Session};
use crate::types::{Appended, CheckpointInfo, Event, Head, ImportReport, Intent, Position, VerifyReport};

/// How many times an append without `expect_seq` is retried after another
/// writer moved the head between our read and our compare-and-swap.
const MAX_RACE_RETRIES: u32 = 200;

/// How a [`Log`] is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Bounds on the guest.
    pub limits: Limits,
    /// A fixed lease view for the guest (tests, single-writer embeddings).
    /// None: take part in the lease protocol — forward to the live holder,
    /// or take a short one-shot lease (see [`Routing`]).
    pub authority: Option<Arc<dyn Authority>>,
    /// The identity this log appends as under the lease protocol
    /// (default: `$DLOG_IDENTITY`, else `dlog@<host>:<pid>#<tag>`).
    pub identity: Option<String>,
    /// How long a one-shot writer's lease lasts.
    pub one_shot_ttl: Duration,
    /// How long an append waits for another one-shot writer before failing.
    pub wait: Duration,
    /// Store a checkpoint every this many events (0: only on demand).
    pub checkpoint_every: u64,
}

impl Options {
    /// The same options with a fixed lease view: this log is the sole writer.
    pub fn sole_writer(mut self, authority: Arc<dyn Authority>) -> Options {
        self.authority = Some(authority);
        self
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            clock: Arc::new(SystemClock),
            limits: Limits::default(),
            authority: None,
            identity: std::env::var("DLOG_IDENTITY").ok().filter(|s| !s.is_empty()),
            one_shot_ttl: Duration::from_secs(5),
            wait: Duration::from_secs(10),
            checkpoint_every: 512,
        }
    }
}

struct Inner {
    runtime: Arc<Runtime>,
    backend: Arc<dyn Backend>,
    options: Options,
    authority: Arc<dyn Authority>,
    routing: Option<Routing>,
    user_name: Option<String>,
    git_dir: Option<PathBuf>,
    remote: Option<Arc<crate::remote::RemoteBackend>>,
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

    /// A log over any backend, with its leases (if it uses the lease
    /// protocol) in memory: a lease store shared only within this process.
    pub fn with_backend(backend: Arc<dyn Backend>, options: Options) -> Result<Log, Error> {
        Log::with_leases(backend, Arc::new(MemoryLeases::new()), options)
    }

    /// A log over any backend and lease store.
    pub fn with_leases(
        backend: Arc<dyn Backend>,
        cell: Arc<dyn LeaseCell>,
        options: Options,
    ) -> Result<Log, Error> {
        Log::build(backend, cell, options, None, None)
    }

    /// The log in the git repository containing `start` (found upwards, like
    /// git), with its leases in the repository, shared by every process.
    pub fn open(start: &Path, options: Options) -> Result<Log, Error> {
        let git = Arc::new(GitBackend::discover(start)?);
        let user_name = git.configured_user_name();
        let git_dir = git.git_dir().to_path_buf();
        // Bound to a git remote (`dlog remote add`): the remote holds the
        // heads and the leases; this repository holds the objects.
        if let Some(remote) = crate::remote::Remote::bound(&git)? {
            let cell = Arc::new(crate::remote::RemoteLeases::new(git.clone(), remote.clone()));
            let backend = Arc::new(crate::remote::RemoteBackend::new(git, remote));
            let mut log = Log::build(backend.clone(), cell, options, user_name, Some(git_dir))?;
            if let Some(inner) = Arc::get_mut(&mut log.inner) {
                inner.remote = Some(backend);
            }
            return Ok(log);
        }
        let cell = Arc::new(FileLeases::open(&git_dir)?);
        Log::build(git, cell, options, user_name, Some(git_dir))
    }

    fn build(
        backend: Arc<dyn Backend>,
        cell: Arc<dyn LeaseCell>,
        options: Options,
        user_name: Option<String>,
        git_dir: Option<PathBuf>,
    ) -> Result<Log, Error> {
        let runtime = Runtime::shared().map_err(|e| Error::Guest(format!("{e:#}")))?;
        let (authority, routing): (Arc<dyn Authority>, _) = match &options.authority {
            Some(fixed) => (fixed.clone(), None),
            None => {
                let identity = options.identity.clone().unwrap_or_else(|| process_identity("dlog"));
                let leases = Leases::new(cell, options.clock.clone());
                let routing = Routing {
                    leases: leases.clone(),
                    identity: identity.clone(),
                    one_shot_ttl: options.one_shot_ttl,
                    wait: options.wait,
                };
                (Arc::new(LeaseAuthority::new(identity, leases)), Some(routing))
            }
        };
        let session = Mutex::new(None);
        let inner = Inner {
            runtime,
            backend,
            options,
            authority,
            routing,
            user_name,
            git_dir,
            remote: None,
            session,
        };
        Ok(Log { inner: Arc::new(inner) })
    }

    /// The lease protocol this log follows; none for a fixed sole writer.
    pub fn routing(&self) -> Option<&Routing> {
        self.inner.routing.as_ref()
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

    /// The git remote this log's spaces are bound to (`dlog remote add`), if any.
    pub fn remote(&self) -> Option<&crate::remote::Remote> {
        self.inner.remote.as_deref().map(crate::remote::RemoteBackend::remote)
    }

    /// Fetch every space's head from the bound remote, so that reads see
    /// what other machines appended; false when the log has no remote.
    pub fn fetch(&self) -> Result<bool, Error> {
        match &self.inner.remote {
            Some(remote) => remote.fetch().map(|()| true).map_err(Error::from),
            None => Ok(false),
        }
    }

    /// Fetch every space's head from the bound remote, then push the spaces
    /// whose local head has events the remote lacks and extends the
    /// remote's (appended by a writer that opened this repository before it
    /// was bound); the spaces pushed. None when the log has no remote; a
    /// space whose history diverged is [`Error::Diverged`].
    pub fn sync(&self) -> Result<Option<Vec<String>>, Error> {
        match &self.inner.remote {
            Some(remote) => remote.sync().map(Some),
            None => Ok(None),
        }
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

    /// Warnings since the last call (e.g. a damaged checkpoint was ignored).
    pub fn take_warnings(&self) -> Vec<String> {
        let mut warnings =
            self.call(|b, s| b.dlog_decision_log_log().call_take_warnings(s).map(Ok)).unwrap_or_default();
        if let Some(remote) = &self.inner.remote {
            warnings.extend(remote.take_warnings());
        }
        warnings
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
                authority: self.inner.authority.clone(),
                clock: self.inner.options.clock.clone(),
                limits: Default::default(),
            };
            let session = self
                .inner
                .runtime
                .instantiate(state, self.inner.options.limits)
                .map_err(|e| Error::Guest(format!("{e:#}")))?;
            let mut session = session;
            let settings = wit::Settings { checkpoint_every: self.inner.options.checkpoint_every };
            session
                .bindings
                .dlog_decision_log_log()
                .call_configure(&mut session.store, settings)
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
                let refused = session.store.data().limits.refused;
                *guard = None;
                Err(Error::Guest(match refused {
                    Some(bytes) => format!(
                        "it ran out of memory (it asked for {} MiB; its limit, Limits::memory_bytes, is {} \
                         MiB): this operation holds the whole state of a space too large for that; `dlog \
                         fold --json` and GET /v1/spaces/{{space}} read a fold in pieces instead",
                        bytes >> 20,
                        self.inner.options.limits.memory_bytes >> 20,
                    ),
                    None => format!("{trap:#}"),
                }))
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
    /// Under the lease protocol the intent goes to the live holder, or this
    /// log takes a one-shot lease for it.
    pub fn append(&self, intent: Intent) -> Result<Appended, Error> {
        let mut results = self.submit(vec![intent.with_assigned_id()], false)?;
        results.pop().ok_or_else(|| Error::Guest("an append returned no event".into()))
    }

    /// Append intents as one unit: all become visible with one ref update, or none.
    pub fn append_batch(&self, intents: Vec<Intent>) -> Result<Vec<Appended>, Error> {
        self.submit(intents.into_iter().map(Intent::with_assigned_id).collect(), true)
    }

    fn submit(&self, intents: Vec<Intent>, batch: bool) -> Result<Vec<Appended>, Error> {
        match &self.log.inner.routing {
            Some(routing) => crate::route::submit(self, routing, &intents, batch),
            None => self.append_here(&intents, batch),
        }
    }

    /// Append on this log's own guest, whatever the lease says (the guest
    /// still checks it): what a lease holder does with forwarded intents.
    /// An intent without an id gets a fresh one.
    pub fn append_here(&self, intents: &[Intent], batch: bool) -> Result<Vec<Appended>, Error> {
        self.log.inner.backend.refresh(&self.name)?;
        let intents: Vec<wit::Intent> = intents.iter().map(intent_to_wit).collect();
        let retry = intents.iter().all(|i| i.expect_seq.is_none());
        let appended = with_race_retries(retry, || {
            self.log.call(|b, s| {
                let log = b.dlog_decision_log_log();
                match (batch, intents.as_slice()) {
                    (false, [one]) => Ok(log.call_append(s, &self.name, one)?.map(|a| vec![a])),
                    _ => log.call_append_batch(s, &self.name, &intents),
                }
            })
        })?;
        Ok(appended.into_iter().map(Appended::from).collect())
    }

    /// Up to `limit` events from `from_seq` on.
    pub fn events(&self, from_seq: u64, limit: u32) -> Result<Vec<Event>, Error> {
        let events =
            self.log.call(|b, s| b.dlog_decision_log_log().call_events(s, &self.name, from_seq, limit))?;
        Ok(events.into_iter().map(Event::from).collect())
    }

    /// The newest event's position, none for an empty space.
    pub fn head(&self) -> Result<Option<Head>, Error> {
        Ok(self.log.call(|b, s| b.dlog_decision_log_log().call_head(s, &self.name))?.map(Head::from))
    }

    /// The coordination state at the head, as canonical JSON.
    pub fn fold(&self) -> Result<String, Error> {
        self.log.call(|b, s| b.dlog_decision_log_log().call_fold(s, &self.name, None))
    }

    /// [`Space::fold`] in pieces of about 1 MiB, handed to `each` in order:
    /// together they are the fold's bytes. The guest reads the records
    /// from the checkpoint's pages one at a time, so neither side ever
    /// holds the whole fold, and a space whose fold is larger than the
    /// guest's memory limit can still be read. `each` returns false to stop
    /// early. All pieces are of one head; a head conflict means the head
    /// moved while the guest instance was replaced (after a trap): read
    /// again.
    pub fn fold_each(&self, mut each: impl FnMut(&str) -> Result<bool, Error>) -> Result<(), Error> {
        const PIECE_BYTES: u32 = 1 << 20;
        let mut after: Option<wit::FoldCursor> = None;
        loop {
            let piece = self.log.call(|b, s| {
                b.dlog_decision_log_log().call_fold_piece(s, &self.name, after.as_ref(), PIECE_BYTES)
            })?;
            if !each(&piece.text)? {
                return Ok(());
            }
            match piece.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// One key: what the fold holds of it (canonical JSON with `decision`,
    /// `retracted` and `proposals`, each only when present) and the events
    /// that touched it, oldest first; none when no event ever did.
    pub fn show_key(&self, key: &str) -> Result<Option<(String, Vec<Event>)>, Error> {
        let shown = self.log.call(|b, s| b.dlog_decision_log_log().call_show(s, &self.name, key))?;
        Ok(shown.map(|s| (s.record, s.history.into_iter().map(Event::from).collect())))
    }

    /// One page of [`Log::find`]'s hits in this space, after `after` (the
    /// last hit's key and seq), at most `limit`, with how many match after
    /// `after` in all when `count` is set.
    pub(crate) fn search_page(
        &self,
        query: &crate::find::Query,
        after: Option<(&str, u64)>,
        limit: u32,
        count: bool,
    ) -> Result<wit::Found, Error> {
        let query = wit::SearchQuery {
            key: query.key.clone(),
            tags: query.tags.clone(),
            actor: query.actor.clone(),
            status: query.status.clone(),
            text: query.text.clone(),
            since_ms: query.since_ms,
            until_ms: query.until_ms,
        };
        let after = after.map(|(key, seq)| wit::SearchCursor { key: key.to_owned(), seq });
        self.log.call(|b, s| {
            b.dlog_decision_log_log().call_search(s, &self.name, &query, after.as_ref(), limit, count)
        })
    }

    /// The coordination state up to a seq or commit, as canonical JSON.
    pub fn fold_at(&self, at: &Position) -> Result<String, Error> {
        let at = wit::Position::from(at);
        self.log.call(|b, s| b.dlog_decision_log_log().call_fold(s, &self.name, Some(&at)))
    }

    /// Store the fold at the head now; the latest checkpoint.
    pub fn checkpoint(&self) -> Result<Option<CheckpointInfo>, Error> {
        let info = self.log.call(|b, s| b.dlog_decision_log_log().call_checkpoint(s, &self.name))?;
        Ok(info.map(CheckpointInfo::from))
    }

    /// Check the whole chain.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        Ok(self.log.call(|b, s| b.dlog_decision_log_log().call_verify(s, &self.name))?.into())
    }

    /// Replay exported events (one canonical event per element). Under the
    /// lease protocol it goes where an append would: this process's guest
    /// when it holds the space (or under a one-shot lease when nobody
    /// does), else forwarded whole to the holder (`dlog serve`).
    pub fn import(&self, events: &[String]) -> Result<ImportReport, Error> {
        match &self.log.inner.routing {
            Some(routing) => crate::route::run(self, routing, &|| self.import_here(events), &|endpoint| {
                crate::wire::forward_import(endpoint, &self.name, events)
            }),
            None => self.import_here(events),
        }
    }

    /// Import on this log's own guest, whatever the lease says (the guest
    /// still checks it): what a lease holder does with a forwarded import.
    pub fn import_here(&self, events: &[String]) -> Result<ImportReport, Error> {
        self.log.inner.backend.refresh(&self.name)?;
        Ok(self.log.call(|b, s| b.dlog_decision_log_log().call_import(s, &self.name, events))?.into())
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

impl LocalSpace for Space {
    fn name(&self) -> &str {
        &self.name
    }

    fn log_epoch(&self) -> Result<u64, Error> {
        // A grant's epoch must be above the log's, as the remote has it.
        self.log.inner.backend.refresh(&self.name)?;
        Ok(self.head()?.map_or(0, |h| h.epoch))
    }

    fn append_here(&self, intents: &[Intent], batch: bool) -> Result<Vec<Appended>, Error> {
        Space::append_here(self, intents, batch)
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
                // The random tail of a UUIDv7 is a good enough jitter source;
                // it spares a dependency on a random number crate.
                let jitter = u64::from(uuid::Uuid::now_v7().as_bytes()[15] % 8);
                std::thread::sleep(Duration::from_millis(u64::from(tries.min(10)) + jitter));
            }
            other => return other,
        }
    }
}
