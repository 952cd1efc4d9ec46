//! One log across machines through a git remote: real `dlog` processes on
//! separate repositories ("machines") bound to a real server on loopback,
//! every scenario against every server kind (`git daemon`, smart HTTP).
//! Results are checked with git itself and with `dlog verify` in a fresh
//! clone.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::Repo;
use crate::git_servers::{KINDS, Relay, Server};

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");

pub(crate) fn dlog(repo: &Path, identity: &str, args: &[&str]) -> Command {
    let mut c = Command::new(DLOG);
    c.arg("--repo")
        .arg(repo)
        .args(args)
        .env("DLOG_ACTOR", identity)
        .env("DLOG_IDENTITY", identity)
        .env("DLOG_REMOTE_TIMEOUT", "20s")
        .env_remove("DLOG_REPO");
    c
}

/// A new repository standing for a machine, bound to `url`.
pub(crate) fn machine(url: &str) -> Repo {
    let repo = Repo::new();
    repo.ok(&["remote", "add", "origin", url]);
    repo
}

pub(crate) fn git_out(git_dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("--git-dir").arg(git_dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The server's log of `space`, as a fresh clone reads it (after `dlog
/// verify` passed there), checked linear and sound by git on the server.
pub(crate) fn remote_events(server: &Server, space: &str) -> Vec<Value> {
    let head = format!("refs/dlog/spaces/{space}");
    git_out(&server.repo, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(git_out(&server.repo, &["rev-list", "--merges", &head]), "", "no merges on the remote");
    let fresh = tempfile::tempdir().unwrap();
    let clone = fresh.path().join("clone.git");
    let out = Command::new("git").args(["init", "-q", "--bare"]).arg(&clone).output().unwrap();
    assert!(out.status.success());
    git_out(&clone, &["fetch", "-q", &server.url(), "refs/dlog/spaces/*:refs/dlog/spaces/*"]);
    let verify = dlog(&clone, "reader", &["verify", space]).output().unwrap();
    assert!(
        verify.status.success(),
        "dlog verify in a fresh clone: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let out = dlog(&clone, "reader", &["--json", "events", space]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let count: usize = git_out(&server.repo, &["rev-list", "--count", &head]).trim().parse().unwrap();
    assert_eq!(count, events.len(), "one commit per event, one chain");
    events
}

pub(crate) fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

fn intent_file(dir: &Path, writer: &str, n: usize) -> std::path::PathBuf {
    let file = dir.join(format!("{writer}.jsonl"));
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"{writer}-{i}\",\"kind\":\"decide\",\"body\":{{\"key\":\"{writer}\",\"choice\":\"{i}\",\"rationale\":\"r\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    file
}

#[test]
fn four_writers_on_two_machines_append_exactly_400_events_as_one_linear_log() {
    for kind in KINDS {
        let server = Server::start(kind);
        let machines = [machine(&server.url()), machine(&server.url())];
        let scratch = tempfile::tempdir().unwrap();
        let writers: Vec<(String, Child)> = (0..4)
            .map(|w| {
                let name = format!("m{}w{}", w % 2, w);
                let file = intent_file(scratch.path(), &name, 100);
                let child = dlog(
                    &machines[w % 2].path,
                    &name,
                    &["--wait", "120s", "append", "team", "--each", "--intent", file.to_str().unwrap()],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
                (name, child)
            })
            .collect();
        for (name, child) in writers {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{kind:?} {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let events = remote_events(&server, "team");
        assert_eq!(events.len(), 400, "{kind:?}: exactly 400 events");
        let mut seen = ids(&events);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 400, "{kind:?}: no event twice");
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=400).collect::<Vec<_>>(), "{kind:?}");
        // Both machines see the same log.
        for m in &machines {
            let head = m.ok(&["--fetch", "--json", "events", "team", "--from", "400"]);
            assert!(head.contains("\"seq\":400"), "{kind:?}: {head}");
        }
    }
}

pub(crate) fn append_one(repo: &Path, id: &str) -> Output {
    dlog(repo, "writer", &["append", "team", "--id", id, "--key", "k", "--choice", id, "--why", "w"])
        .output()
        .unwrap()
}

/// Append and expect success, showing dlog's stderr otherwise.
pub(crate) fn append_ok(repo: &Path, id: &str, kind: crate::git_servers::Kind) {
    let out = append_one(repo, id);
    assert!(out.status.success(), "{kind:?}: append {id}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn with_the_server_stopped_appends_fail_clearly_and_resume_and_no_acknowledged_event_is_lost() {
    for kind in KINDS {
        let mut server = Server::start(kind);
        let a = machine(&server.url());
        let b = machine(&server.url());
        let mut acked = Vec::new();
        for i in 0..5 {
            let id = format!("before-{i}");
            let out = append_one(if i % 2 == 0 { &a.path } else { &b.path }, &id);
            assert!(out.status.success(), "{kind:?}: {}", String::from_utf8_lossy(&out.stderr));
            acked.push(id);
        }
        server.stop();
        let out = append_one(&a.path, "while-down");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{kind:?}: a network failure is a storage failure: {stderr}");
        assert!(stderr.contains("remote \"origin\""), "{kind:?}: the error names the remote: {stderr}");
        assert!(stderr.contains(&server.url()), "{kind:?}: and its URL: {stderr}");
        let sync = a.run(&["sync"]);
        assert_eq!(sync.status.code(), Some(5), "{kind:?}");
        // Reads without --fetch still answer from what was fetched.
        assert!(a.ok(&["events", "team"]).contains("before-4"), "{kind:?}");
        server.resume();
        for i in 0..5 {
            let id = format!("after-{i}");
            let out = append_one(if i % 2 == 0 { &b.path } else { &a.path }, &id);
            assert!(
                out.status.success(),
                "{kind:?}: appends resume: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            acked.push(id);
        }
        // The append that failed may be retried with its id: at most once.
        let retry = append_one(&a.path, "while-down");
        assert!(retry.status.success(), "{kind:?}");
        assert!(append_one(&b.path, "while-down").status.success(), "{kind:?}: a retry never appends twice");
        acked.push("while-down".into());
        let on_remote = ids(&remote_events(&server, "team"));
        assert_eq!(on_remote, acked, "{kind:?}: every acknowledged event, once, in order");
    }
}

/// A lease TTL for the serves here: renewed every third of it, each renewal
/// a few git round trips, which on a loaded two-core machine can take a
/// second or more. A lapse would add a fence the tests do not expect.
const TTL: &str = "6s";

/// A running `dlog serve`, killed when dropped.
pub(crate) struct Serve {
    child: Child,
    lines: Receiver<String>,
}

impl Serve {
    pub(crate) fn start(repo: &Path, ttl: &str) -> Serve {
        let mut child = Command::new(DLOG)
            .arg("--repo")
            .arg(repo)
            .args(["serve", "team", "--ttl", ttl])
            .env("DLOG_REMOTE_TIMEOUT", "5s")
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
        Serve { child, lines }
    }

    /// The epoch of the first grant logged (`serving team at epoch N`).
    fn serving_epoch(&self) -> u64 {
        self.serving().0
    }

    /// The epoch and endpoint of the first grant logged (`serving team at
    /// epoch N (fenced at seq S) on ENDPOINT`).
    pub(crate) fn serving(&self) -> (u64, String) {
        let line = self.wait_for("serving team at epoch");
        let after = line.split("at epoch ").nth(1).unwrap();
        let epoch = after.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
        let endpoint = line.rsplit(" on ").next().unwrap().trim().to_owned();
        (epoch, endpoint)
    }

    pub(crate) fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100))
                && line.contains(needle)
            {
                return line;
            }
        }
        let rest: Vec<String> = self.lines.try_iter().collect();
        panic!("serve never logged {needle:?}: {rest:?}");
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stop it as a person would (SIGTERM): it releases its leases.
    pub(crate) fn stop(&mut self) {
        let term = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(term.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exits cleanly on SIGTERM: {status:?}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

fn authority_epochs(events: &[Value]) -> Vec<u64> {
    events.iter().filter(|e| e["kind"] == "authority").map(|e| e["body"]["epoch"].as_u64().unwrap()).collect()
}

#[test]
fn when_the_serving_machine_dies_another_machine_takes_over_after_the_ttl_at_a_higher_epoch() {
    for kind in KINDS {
        let server = Server::start(kind);
        let a = machine(&server.url());
        let b = machine(&server.url());
        let mut first = Serve::start(&a.path, TTL);
        let first_epoch = first.serving_epoch();
        let lease = b.json(&["--fetch", "lease", "status", "team"])["lease"].clone();
        assert_eq!(lease["epoch"], first_epoch, "{kind:?}: machine b sees a's lease on the remote");
        // Machine b's append goes to the holder (its endpoint is reachable
        // here: both machines share this host's loopback).
        append_ok(&b.path, "via-holder", kind);
        first.kill();
        let second = Serve::start(&b.path, TTL);
        let second_epoch = second.serving_epoch();
        assert!(second_epoch > first_epoch, "{kind:?}: {second_epoch} > {first_epoch}");
        append_ok(&a.path, "after-takeover", kind);
        let events = remote_events(&server, "team");
        assert_eq!(authority_epochs(&events), [first_epoch, second_epoch], "{kind:?}: one fence per holder");
        let last = events.last().unwrap();
        assert_eq!(
            (last["id"].as_str(), last["epoch"].as_u64()),
            (Some("after-takeover"), Some(second_epoch))
        );
        drop(second);
    }
}

/// Send one append request straight to a serve's endpoint (`unix:PATH`)
/// and return its answer line.
fn send_to(endpoint: &str, id: &str) -> Value {
    use std::io::Write as _;
    let path = endpoint.strip_prefix("unix:").expect("serve listens on a Unix socket");
    let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = serde_json::json!({"key": "k", "choice": id, "rationale": "r"}).to_string();
    let request = serde_json::json!({"op": "append", "space": "team", "batch": false, "intents": [
        {"id": id, "actor": "writer", "kind": "decide", "body": body, "expect_seq": null}
    ]});
    writeln!(stream, "{request}").unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

#[test]
fn a_holder_cut_off_from_the_remote_cannot_append_after_the_new_holders_fence() {
    for kind in KINDS {
        let server = Server::start(kind);
        let relay = Relay::to(server.port());
        // Machine a reaches the server only through the relay: cutting it
        // is a partition between a and the server, not between b and it.
        let a = machine(&server.url_via(relay.port));
        let b = machine(&server.url());
        let mut old = Serve::start(&a.path, TTL);
        let (old_epoch, old_endpoint) = old.serving();
        append_ok(&a.path, "before-cut", kind);
        relay.cut(true);
        // Cut off, a's holder cannot append: its push never reaches the server.
        let out = dlog(
            &a.path,
            "writer",
            &["--wait", "1s", "append", "team", "--id", "cut", "--key", "k", "--choice", "x", "--why", "w"],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{kind:?}: a cut-off append is a network failure: {stderr}");
        assert!(stderr.contains("remote \"origin\""), "{kind:?}: the error names the remote: {stderr}");
        assert!(stderr.contains(&server.url_via(relay.port)), "{kind:?}: and its URL: {stderr}");
        let new = Serve::start(&b.path, TTL);
        let new_epoch = new.serving_epoch();
        assert!(new_epoch > old_epoch, "{kind:?}");
        relay.cut(false);
        // Healed, an intent sent to the old holder itself is refused: the
        // log it re-reads carries the new holder's fence.
        let answer = send_to(&old_endpoint, "to-old-holder");
        let refused = answer["error"]["kind"].as_str();
        assert!(
            matches!(refused, Some("not-holder" | "stale-epoch")),
            "{kind:?}: the old holder was fenced out: {answer}"
        );
        // Appends from a go by the lease to the new holder (reachable here:
        // both machines share this host's loopback).
        append_ok(&a.path, "after-heal", kind);
        old.kill();
        let events = remote_events(&server, "team");
        let fence = events.iter().position(|e| e["kind"] == "authority" && e["epoch"] == new_epoch).unwrap();
        assert!(
            events[fence..].iter().all(|e| e["epoch"].as_u64() == Some(new_epoch)),
            "{kind:?}: nothing at an older epoch after the fence: {events:?}"
        );
        let on_remote = ids(&events);
        assert!(!on_remote.contains(&"cut".to_owned()), "{kind:?}");
        assert!(!on_remote.contains(&"to-old-holder".to_owned()), "{kind:?}");
        assert!(on_remote.contains(&"after-heal".to_owned()), "{kind:?}");
        drop(new);
    }
}

#[test]
fn remote_add_pushes_what_a_repository_has_show_reports_it_and_remove_unbinds() {
    let server = Server::start(crate::git_servers::Kind::Daemon);
    let a = Repo::new();
    assert!(append_one(&a.path, "local-1").status.success());
    let bound = a.json(&["remote", "add", "origin", &server.url()]);
    assert_eq!(bound["pushed"], serde_json::json!(["team"]));
    let show = a.json(&["remote", "show"]);
    assert_eq!(show["url"], server.url());
    assert_eq!(show["spaces"][0]["remote"], show["spaces"][0]["fetched"]);
    // A second repository with its own history cannot be bound: diverged.
    let b = Repo::new();
    assert!(append_one(&b.path, "other").status.success());
    let out = b.run(&["remote", "add", "origin", &server.url()]);
    assert_eq!(out.status.code(), Some(3), "a diverged space is a conflict");
    assert!(String::from_utf8_lossy(&out.stderr).contains("diverged"));
    assert!(b.json(&["remote", "show"])["remote"].is_null(), "a refused binding leaves no config");
    a.ok(&["remote", "remove", "origin"]);
    assert!(append_one(&a.path, "local-2").status.success(), "unbound, the log is local again");
    assert_eq!(ids(&remote_events(&server, "team")), ["local-1"]);
}
