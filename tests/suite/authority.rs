//! The append authority: lease rules on both lease stores, fencing in the
//! guest on both hosts, and real processes contending, forwarding through
//! `dlog serve`, handing off after a crash, and surviving a partition.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use decision_log::authority::Lease;
use decision_log::backend::{GitBackend, MemoryBackend};
use decision_log::clock::ManualClock;
use decision_log::lease::{FileLeases, LeaseCell, Leases, MemoryLeases};
use decision_log::{Error, Intent, Log, Options};
use serde_json::Value;

use crate::cli::Repo;
use crate::git_cli::git;
use crate::support::{T0, decide, snapshot};

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");
const TTL: Duration = Duration::from_secs(10);

/// Each lease store, fresh, with the clock that drives it.
fn lease_stores() -> Vec<(&'static str, Leases, Arc<ManualClock>, Option<tempfile::TempDir>)> {
    let mut out = Vec::new();
    let clock = Arc::new(ManualClock::new(T0));
    out.push(("memory", Leases::new(Arc::new(MemoryLeases::new()), clock.clone()), clock, None));
    let dir = tempfile::tempdir().unwrap();
    GitBackend::init_bare(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let cell = Arc::new(FileLeases::open(dir.path()).unwrap());
    out.push(("file", Leases::new(cell, clock.clone()), clock, Some(dir)));
    out
}

#[test]
fn a_lease_is_granted_only_when_free_and_every_grant_raises_the_epoch() {
    for (name, leases, clock, _dir) in lease_stores() {
        let a = leases.acquire("team", "a", TTL, None, 0).unwrap();
        assert_eq!((a.holder.as_str(), a.epoch, a.expires_at_ms), ("a", 1, T0 + 10_000), "{name}");
        match leases.acquire("team", "b", TTL, None, 0) {
            Err(Error::NotHolder { holder: Some(h), .. }) => assert_eq!(h.holder, "a", "{name}"),
            other => panic!("{name}: a live lease was granted twice: {other:?}"),
        }
        clock.advance(5_000);
        let renewed = leases.renew("team", "a", TTL).unwrap();
        assert_eq!(
            (renewed.epoch, renewed.expires_at_ms),
            (1, T0 + 15_000),
            "{name}: renewing keeps the epoch"
        );
        assert!(matches!(leases.renew("team", "b", TTL), Err(Error::NotHolder { .. })), "{name}");
        assert!(matches!(leases.release("team", "b"), Err(Error::NotHolder { .. })), "{name}");
        clock.advance(10_001);
        let b = leases.acquire("team", "b", TTL, None, 0).unwrap();
        assert_eq!(b.epoch, 2, "{name}: an expired lease is re-granted at a higher epoch");
        assert!(
            matches!(leases.renew("team", "a", TTL), Err(Error::NotHolder { .. })),
            "{name}: the old holder cannot renew"
        );
        leases.release("team", "b").unwrap();
        assert!(leases.live("team").unwrap().is_none(), "{name}");
        let a = leases.acquire("team", "a", TTL, None, 7).unwrap();
        assert_eq!(a.epoch, 8, "{name}: a grant is above the log's highest epoch too");
        assert!(leases.acquire("../escape", "a", TTL, None, 0).is_err(), "{name}: space names are checked");
    }
}

#[test]
fn file_leases_survive_a_restart_with_their_epochs() {
    let dir = tempfile::tempdir().unwrap();
    GitBackend::init_bare(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let first = Leases::new(Arc::new(FileLeases::open(dir.path()).unwrap()), clock.clone());
    first.acquire("team", "a", TTL, Some("unix:/x".into()), 0).unwrap();
    first.release("team", "a").unwrap();
    let second = Leases::new(Arc::new(FileLeases::open(dir.path()).unwrap()), clock);
    assert_eq!(second.acquire("team", "b", TTL, None, 0).unwrap().epoch, 2);
    let stored = std::fs::read_to_string(dir.path().join("dlog/leases/team.json")).unwrap();
    assert_eq!(stored, r#"{"endpoint":null,"epoch":2,"expires_at_ms":1700000010000,"holder":"b"}"#);
}

#[test]
fn compare_and_swap_on_a_lease_cell_refuses_a_stale_expectation() {
    let dir = tempfile::tempdir().unwrap();
    GitBackend::init_bare(dir.path()).unwrap();
    let cells: Vec<Arc<dyn LeaseCell>> =
        vec![Arc::new(MemoryLeases::new()), Arc::new(FileLeases::open(dir.path()).unwrap())];
    for cell in cells {
        let one = Lease { holder: "a".into(), epoch: 1, expires_at_ms: 5, endpoint: None };
        let two = Lease { holder: "b".into(), epoch: 2, expires_at_ms: 9, endpoint: None };
        assert!(cell.compare_and_swap("s", None, &one).unwrap());
        assert!(!cell.compare_and_swap("s", None, &two).unwrap(), "{cell:?}");
        assert!(!cell.compare_and_swap("s", Some(&two), &two).unwrap());
        assert!(cell.compare_and_swap("s", Some(&one), &two).unwrap());
        assert_eq!(cell.read("s").unwrap().unwrap().holder, "b");
    }
}

/// Two writers on one storage and one lease store, as the memory and the
/// git host: a holder fenced out by a newer one is refused, and both hosts
/// end with identical bytes.
#[test]
fn a_fenced_holder_is_refused_and_both_hosts_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut finals = Vec::new();
    for host in ["memory", "git"] {
        let backend: Arc<dyn decision_log::backend::Backend> = match host {
            "memory" => Arc::new(MemoryBackend::new()),
            _ => Arc::new(GitBackend::init_bare(&dir.path().join("log.git")).unwrap()),
        };
        let cell: Arc<dyn LeaseCell> = Arc::new(MemoryLeases::new());
        let clock = Arc::new(ManualClock::new(T0));
        let writer = |identity: &str| {
            let options =
                Options { clock: clock.clone(), identity: Some(identity.into()), ..Options::default() };
            Log::with_leases(backend.clone(), cell.clone(), options).unwrap()
        };
        let (a, b) = (writer("a"), writer("b"));
        let leases = a.routing().unwrap().leases.clone();
        leases.acquire("team", "a", TTL, None, 0).unwrap();
        a.space("team").append(decide("a1", "db", "pg")).unwrap();
        clock.advance(TTL.as_millis() as u64 + 1);
        // b takes the expired lease and fences it with an authority event.
        let lease = leases.acquire("team", "b", TTL, None, 1).unwrap();
        assert_eq!(lease.epoch, 2);
        let fence = Intent::new("b", "authority", format!(r#"{{"holder":"b","epoch":{}}}"#, lease.epoch))
            .with_id("fence-2");
        b.space("team").append(fence).unwrap();
        // a, paused past its lease, still believes it holds it: the guest refuses.
        let stale = a.space("team").append_here(&[decide("a2", "db", "mysql")], false);
        match stale {
            Err(Error::NotHolder { holder: Some(h), .. }) => {
                assert_eq!((h.holder.as_str(), h.epoch), ("b", 2), "{host}")
            }
            other => panic!("{host}: a fenced holder appended: {other:?}"),
        }
        b.space("team").append(decide("b1", "db", "sqlite")).unwrap();
        let events = b.space("team").events(1, 10).unwrap();
        assert_eq!(
            events.iter().map(|e| (e.id.as_str(), e.epoch)).collect::<Vec<_>>(),
            [("a1", 1), ("fence-2", 2), ("b1", 2)],
            "{host}"
        );
        finals.push((snapshot(&b.space("team")), b.space("team").fold().unwrap()));
    }
    assert_eq!(finals[0], finals[1], "the memory and git hosts agree byte for byte");
}

fn dlog(repo: &Path, identity: &str, args: &[&str]) -> Command {
    let mut c = Command::new(DLOG);
    c.arg("--repo").arg(repo).args(args).env("DLOG_IDENTITY", identity).env("DLOG_ACTOR", identity);
    c
}

#[test]
fn of_many_contending_processes_exactly_one_wins_each_epoch() {
    let repo = Repo::new();
    let mut epochs = Vec::new();
    for round in 0..3 {
        let children: Vec<Child> = (0..6)
            .map(|i| {
                dlog(
                    &repo.path,
                    &format!("c{round}-{i}"),
                    &["--json", "lease", "acquire", "team", "--ttl", "30s"],
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
            })
            .collect();
        let outcomes: Vec<(i32, String)> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
            })
            .collect();
        let winners: Vec<&String> =
            outcomes.iter().filter(|(code, _)| *code == 0).map(|(_, out)| out).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        assert!(outcomes.iter().all(|(code, _)| *code == 0 || *code == 6), "{outcomes:?}");
        let lease: Value = serde_json::from_str(winners[0]).unwrap();
        let holder = lease["lease"]["holder"].as_str().unwrap().to_owned();
        epochs.push(lease["lease"]["epoch"].as_u64().unwrap());
        assert!(dlog(&repo.path, &holder, &["lease", "release", "team"]).output().unwrap().status.success());
    }
    assert_eq!(epochs, [1, 2, 3], "epochs strictly increase across hand-offs");
}

/// A running `dlog serve`, stopped when dropped.
struct Serve {
    child: Child,
    lines: Receiver<String>,
}

impl Serve {
    fn start(repo: &Path, space: &str, ttl: &str) -> Serve {
        let mut child = Command::new(DLOG)
            .arg("--repo")
            .arg(repo)
            .args(["serve", space, "--ttl", ttl])
            .env_remove("DLOG_IDENTITY")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve = Serve { child, lines };
        serve.wait_for(&format!("serving {space} at epoch"));
        serve
    }

    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100))
                && line.contains(needle)
            {
                return line;
            }
        }
        panic!("serve never logged {needle:?}");
    }

    fn signal(&self, signal: &str) {
        assert!(
            Command::new("kill")
                .args([signal, &self.child.id().to_string()])
                .output()
                .unwrap()
                .status
                .success()
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lease_of(repo: &Repo, space: &str) -> Value {
    repo.json(&["lease", "status", space])["lease"].clone()
}

fn events(repo: &Repo, space: &str) -> Vec<Value> {
    repo.ok(&["--json", "events", space]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn assert_linear(repo: &Repo, space: &str, count: usize) {
    let r = format!("refs/dlog/spaces/{space}");
    assert_eq!(git(&repo.path, &["rev-list", "--count", &r]).trim(), count.to_string());
    assert_eq!(git(&repo.path, &["rev-list", "--min-parents=2", &r]).trim(), "", "no fork, no merge");
    git(&repo.path, &["fsck", "--strict", "--no-dangling"]);
    assert!(repo.ok(&["verify", space]).contains(": ok,"));
}

#[test]
fn non_holders_forward_to_serve_and_get_one_total_order() {
    let repo = Repo::new();
    let serve = Serve::start(&repo.path, "team", "2s");
    let lease = lease_of(&repo, "team");
    assert!(lease["endpoint"].as_str().unwrap().starts_with("unix:"), "{lease}");
    let socket = lease["endpoint"].as_str().unwrap().trim_start_matches("unix:").to_owned();
    let mode = std::fs::metadata(&socket)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
        .unwrap();
    assert_eq!(mode & 0o777, 0o600, "the socket is owner-only");
    crate::cli::run_writers(&repo, "team", 4, 25);
    let all = events(&repo, "team");
    assert_eq!(all.len(), 101, "the fence plus 4 x 25 forwarded intents");
    assert_eq!(all[0]["kind"], "authority");
    let epoch = lease["epoch"].as_u64().unwrap();
    assert!(all.iter().all(|e| e["epoch"].as_u64() == Some(epoch)), "every event carries the holder's epoch");
    assert_eq!(
        all.iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        (1..=101).collect::<Vec<_>>()
    );

    // Idempotent resend and expect_seq, through the holder.
    let first =
        repo.json(&["append", "team", "--key", "x", "--choice", "1", "--why", "w", "--id", "resend-me"]);
    let again =
        repo.json(&["append", "team", "--key", "x", "--choice", "1", "--why", "w", "--id", "resend-me"]);
    assert_eq!((first["created"].as_bool(), again["created"].as_bool()), (Some(true), Some(false)));
    assert_eq!(first["commit"], again["commit"]);
    let stale =
        repo.run(&["append", "team", "--key", "y", "--choice", "1", "--why", "w", "--expect-seq", "5"]);
    assert_eq!(stale.status.code(), Some(3), "{}", String::from_utf8_lossy(&stale.stderr));
    assert_linear(&repo, "team", 102);
    drop(serve);
}

#[test]
fn an_import_into_a_space_that_serve_holds_is_forwarded_to_it() {
    let held = Repo::new();
    let serve = Serve::start(&held.path, "team", "5s");
    for key in ["a", "b"] {
        held.ok(&["append", "team", "--key", key, "--choice", "c", "--why", "w"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("team.jsonl");
    std::fs::write(&file, held.ok(&["export", "team"])).unwrap();
    let file = file.to_str().unwrap();

    // Re-importing the log's own export through the holder: nothing to write.
    let report = held.json(&["import", "team", file]);
    assert_eq!((report["total"].as_u64(), report["written"].as_u64()), (Some(3), Some(0)), "{report}");

    // An export that carries one event more (written elsewhere on the same
    // history) is imported by the holder: the suffix is written.
    let elsewhere = Repo::new();
    elsewhere.ok(&["import", "team", file]);
    elsewhere.ok(&["append", "team", "--key", "d", "--choice", "c", "--why", "w", "--id", "from-elsewhere"]);
    std::fs::write(file, elsewhere.ok(&["export", "team"])).unwrap();
    let report = held.json(&["import", "team", file]);
    assert_eq!((report["skipped"].as_u64(), report["written"].as_u64()), (Some(3), Some(1)), "{report}");
    assert_eq!(events(&held, "team")[3]["id"], "from-elsewhere");
    assert_eq!(held.head("team"), elsewhere.head("team"), "the same commits, so the same head");
    assert_eq!(lease_of(&held, "team")["live"], true, "serve still holds the space");
    assert_linear(&held, "team", 4);
    drop(serve);
}

#[test]
fn serve_releases_its_lease_and_removes_its_socket_on_sigterm_without_waiting_for_a_renewal() {
    let repo = Repo::new();
    // Renewals every 100 s: a stop that waited for the next one would miss
    // wait_for's deadline.
    let mut serve = Serve::start(&repo.path, "team", "300s");
    let socket = lease_of(&repo, "team")["endpoint"].as_str().unwrap().trim_start_matches("unix:").to_owned();
    serve.signal("-TERM");
    serve.wait_for("stopped");
    assert!(serve.child.wait().unwrap().success());
    assert_eq!(lease_of(&repo, "team")["live"], false);
    assert!(!Path::new(&socket).exists());
}

#[test]
fn after_a_crash_the_next_holder_fences_and_resumes_from_the_head() {
    let repo = Repo::new();
    let a = Serve::start(&repo.path, "team", "1s");
    for i in 0..3 {
        repo.ok(&[
            "append",
            "team",
            "--key",
            &format!("k{i}"),
            "--choice",
            "a",
            "--why",
            "w",
            "--id",
            &format!("a{i}"),
        ]);
    }
    let a_epoch = lease_of(&repo, "team")["epoch"].as_u64().unwrap();
    a.signal("-KILL");
    drop(a);
    let b = Serve::start(&repo.path, "team", "1s");
    let b_epoch = lease_of(&repo, "team")["epoch"].as_u64().unwrap();
    assert!(b_epoch > a_epoch);
    repo.ok(&["append", "team", "--key", "k9", "--choice", "b", "--why", "w", "--id", "b0"]);
    let all = events(&repo, "team");
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["authority-1", "a0", "a1", "a2", &format!("authority-{b_epoch}"), "b0"],
        "nothing A acknowledged is lost"
    );
    assert_eq!(all[4]["epoch"].as_u64(), Some(b_epoch));
    assert_linear(&repo, "team", 6);
    drop(b);
}

#[test]
fn a_partitioned_holder_cannot_append_after_the_new_holder_fenced_it() {
    let repo = Repo::new();
    let a = Serve::start(&repo.path, "team", "1s");
    let a_endpoint = lease_of(&repo, "team")["endpoint"].as_str().unwrap().to_owned();
    repo.ok(&["append", "team", "--key", "k", "--choice", "a", "--why", "w", "--id", "a0"]);
    a.signal("-STOP");
    std::thread::sleep(Duration::from_millis(1500));
    let b = Serve::start(&repo.path, "team", "5s");
    repo.ok(&["append", "team", "--key", "k", "--choice", "b", "--why", "w", "--id", "b0"]);
    let before = events(&repo, "team");
    a.signal("-CONT");
    // A client that still has A's endpoint sends it an intent: refused.
    let intent =
        Intent::new("late", "decide", r#"{"key":"k","choice":"stale","rationale":"r"}"#).with_id("a1");
    let answer = decision_log::wire::forward(&a_endpoint, "team", &[intent], false).unwrap();
    assert!(matches!(answer, Err(Error::NotHolder { .. }) | Err(Error::StaleEpoch { .. })), "{answer:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(events(&repo, "team"), before, "the stale holder changed nothing");
    repo.ok(&["append", "team", "--key", "k", "--choice", "b2", "--why", "w", "--id", "b1"]);
    let ids: Vec<String> =
        events(&repo, "team").iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(&ids[3..], ["b0", "b1"]);
    assert_linear(&repo, "team", 5);
    drop((a, b));
}

#[test]
fn a_one_shot_writer_waits_for_another_and_times_out_with_a_clear_error() {
    let repo = Repo::new();
    assert!(
        dlog(&repo.path, "holder", &["lease", "acquire", "team", "--ttl", "1s"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let started = Instant::now();
    let out = dlog(&repo.path, "writer", &["append", "team", "--key", "k", "--choice", "v", "--why", "w"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() >= Duration::from_millis(500), "it waited for the holder's lease to lapse");
    assert!(
        dlog(&repo.path, "holder", &["lease", "acquire", "team", "--ttl", "30s"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = dlog(
        &repo.path,
        "writer",
        &["--wait", "300ms", "append", "team", "--key", "k2", "--choice", "v", "--why", "w"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("timed out after 300ms waiting for holder"), "{message}");
}

#[test]
fn concurrent_forwarded_intents_each_get_their_own_answer_even_when_one_is_bad() {
    let repo = Repo::new();
    let serve = Serve::start(&repo.path, "team", "5s");
    let endpoint = lease_of(&repo, "team")["endpoint"].as_str().unwrap().to_owned();
    let answers: Vec<Result<Vec<decision_log::Appended>, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let endpoint = endpoint.clone();
                scope.spawn(move || {
                    let body = if i == 5 {
                        r#"{"key":"k5","choice":"c"}"#.to_owned()
                    } else {
                        format!(r#"{{"key":"k{i}","choice":"c","rationale":"r"}}"#)
                    };
                    let intent = Intent::new("w", "decide", body).with_id(format!("c{i}"));
                    decision_log::wire::forward(&endpoint, "team", &[intent], false).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, answer) in answers.iter().enumerate() {
        match (i, answer) {
            (5, Err(Error::Invalid(m))) => assert!(m.contains("rationale"), "{m}"),
            (5, other) => panic!("the bad intent got {other:?}"),
            (_, Ok(appended)) => assert!(appended[0].created && appended[0].event.id == format!("c{i}")),
            (_, Err(e)) => panic!("intent {i} failed because of another: {e}"),
        }
    }
    let all = events(&repo, "team");
    assert_eq!(all.len(), 8, "the fence and the seven good intents");
    assert_linear(&repo, "team", 8);
    drop(serve);
}
