//! Hosts under test and helpers shared by the scenarios.

use std::sync::{Arc, Mutex};

use decision_log::authority::{Authority, Lease};
use decision_log::backend::{GitBackend, MemoryBackend};
use decision_log::clock::ManualClock;
use decision_log::{Event, Intent, Log, Options, Space};

/// The identity the test hosts append as.
pub const WRITER: &str = "test-writer";
/// Where test clocks start: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000;

/// A lease view a test can change while the log runs.
#[derive(Debug)]
pub struct TestAuthority {
    identity: String,
    lease: Mutex<Option<Lease>>,
}

impl TestAuthority {
    pub fn new(identity: &str, epoch: u64) -> TestAuthority {
        let lease = Lease { holder: identity.into(), epoch, expires_at_ms: u64::MAX, endpoint: None };
        TestAuthority { identity: identity.into(), lease: Mutex::new(Some(lease)) }
    }
    pub fn set(&self, lease: Option<Lease>) {
        *self.lease.lock().unwrap() = lease;
    }
}

impl Authority for TestAuthority {
    fn identity(&self) -> String {
        self.identity.clone()
    }
    fn current(&self, _space: &str) -> Option<Lease> {
        self.lease.lock().unwrap().clone()
    }
}

/// One host, fresh and empty, with its clock and lease under test control.
pub struct TestHost {
    pub name: &'static str,
    pub log: Log,
    pub clock: Arc<ManualClock>,
    pub authority: Arc<TestAuthority>,
    /// The repository of a git host (removed when the host is dropped).
    pub _dir: Option<tempfile::TempDir>,
}

impl TestHost {
    pub fn space(&self, name: &str) -> Space {
        self.log.space(name)
    }
}

fn options(clock: &Arc<ManualClock>, authority: &Arc<TestAuthority>) -> Options {
    Options { clock: clock.clone(), ..Options::default() }.sole_writer(authority.clone())
}

/// A fresh in-memory host.
pub fn memory_host() -> TestHost {
    let clock = Arc::new(ManualClock::new(T0));
    let authority = Arc::new(TestAuthority::new(WRITER, 1));
    let log = Log::with_backend(Arc::new(MemoryBackend::new()), options(&clock, &authority)).unwrap();
    TestHost { name: "memory", log, clock, authority, _dir: None }
}

/// A fresh git host: an empty bare repository in a temporary directory.
pub fn git_host() -> TestHost {
    let clock = Arc::new(ManualClock::new(T0));
    let authority = Arc::new(TestAuthority::new(WRITER, 1));
    let dir = tempfile::tempdir().unwrap();
    let backend = GitBackend::init_bare(&dir.path().join("log.git")).unwrap();
    let log = Log::with_backend(Arc::new(backend), options(&clock, &authority)).unwrap();
    TestHost { name: "git", log, clock, authority, _dir: Some(dir) }
}

/// Every kind of host, each fresh.
pub fn hosts() -> Vec<TestHost> {
    vec![memory_host(), git_host()]
}

/// Run `scenario` once per host, each on a fresh, empty host.
pub fn each_host(mut scenario: impl FnMut(&TestHost)) {
    for host in hosts() {
        scenario(&host);
    }
}

/// A `decide` intent with an explicit id.
pub fn decide(id: &str, key: &str, choice: &str) -> Intent {
    let body = serde_json::json!({"key": key, "choice": choice, "rationale": format!("because {choice}")});
    Intent::new("alice", "decide", body.to_string()).with_id(id)
}

/// A `decide` intent that supersedes `previous`.
pub fn supersede(id: &str, key: &str, choice: &str, previous: &str) -> Intent {
    let body =
        serde_json::json!({"key": key, "choice": choice, "rationale": "changed", "supersedes": previous});
    Intent::new("bob", "decide", body.to_string()).with_id(id)
}

/// A `retract` intent.
pub fn retract(id: &str, key: &str, supersedes: Option<&str>) -> Intent {
    let mut body = serde_json::json!({"key": key, "rationale": "withdrawn"});
    if let Some(s) = supersedes {
        body["supersedes"] = s.into();
    }
    Intent::new("carol", "retract", body.to_string()).with_id(id)
}

/// The space's whole log, as canonical lines, plus its head commit.
pub fn snapshot(space: &Space) -> (Option<String>, Vec<String>) {
    let head = space.head().unwrap().map(|h| h.commit);
    let events = space.events(1, u32::MAX).unwrap().into_iter().map(|e: Event| e.canonical).collect();
    (head, events)
}

/// The fold as a JSON value, for readable assertions.
pub fn fold(space: &Space) -> serde_json::Value {
    serde_json::from_str(&space.fold().unwrap()).unwrap()
}

/// Another log over the same storage as `host`, checkpointing every `every`
/// events (0: never by itself), as a fresh process would open it.
pub fn reopen(host: &TestHost, every: u64) -> Log {
    let options = Options { clock: host.clock.clone(), checkpoint_every: every, ..Options::default() };
    Log::with_backend(host.log.backend().clone(), options.sole_writer(host.authority.clone())).unwrap()
}
