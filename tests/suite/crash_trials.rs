//! Process-crash trials: writers, `serve` holders and importers are killed
//! with SIGKILL at random moments, and after each kill the log must keep
//! every acknowledged event, stay linear, pass `git fsck --strict` and
//! `dlog verify`, and take the next append with no person doing anything.
//!
//! CI runs a few trials; `scripts/crash-trials.sh N` runs N and prints the
//! figures `docs/RELIABILITY.md` reports (`DLOG_CRASH_TRIALS=N`,
//! `DLOG_CRASH_SEED=S` to repeat a run).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::Repo;
use crate::git_cli::git;

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");

/// How long the next append may take after a kill before a person would
/// have to step in. A killed `serve` holds its lease until its TTL (1 s
/// here) runs out; nothing else should take more than moments.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

/// A small, seedable generator (xorshift): trials are random but repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug)]
enum Victim {
    Writer,
    Serve,
    Importer,
}

#[derive(Debug, Default)]
struct Outcome {
    acked: usize,
    lost: Vec<String>,
    broken: Vec<String>,
    manual: bool,
    recovery: Duration,
}

fn dlog(repo: &Path) -> Command {
    let mut command = Command::new(DLOG);
    command.arg("--repo").arg(repo).env("DLOG_ACTOR", "trial").env_remove("DLOG_IDENTITY");
    command
}

fn kill(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// Appends one at a time, each its own `dlog` process, until told to stop;
/// the pid of the one running is published so the killer can pick it.
fn writer(
    repo: &Path,
    name: &str,
    count: usize,
    running: &AtomicU32,
    stop: &AtomicBool,
    acked: &Mutex<Vec<String>>,
) {
    for i in 0..count {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let id = format!("{name}-{i}");
        let child = dlog(repo)
            .args(["append", "team", "--key", &format!("k{}", i % 7), "--choice", name, "--why", "w"])
            .args(["--id", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        running.store(child.id(), Ordering::SeqCst);
        let status = child.wait_with_output().unwrap().status;
        running.store(0, Ordering::SeqCst);
        if status.success() {
            acked.lock().unwrap().push(id);
        }
    }
}

fn start_serve(repo: &Path) -> Child {
    let mut child = dlog(repo).args(["serve", "team", "--ttl", "1s"]).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = dlog(repo).args(["--json", "lease", "status", "team"]).output().unwrap();
        let lease: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        if lease["lease"]["endpoint"].is_string() && lease["lease"]["live"] == true {
            return child;
        }
        assert!(Instant::now() < deadline, "serve never took the space");
        assert!(child.try_wait().unwrap().is_none(), "serve exited");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An export of `events` decisions, made once in its own repository.
fn export_of(events: usize, dir: &Path) -> std::path::PathBuf {
    let source = dir.join("source.git");
    assert!(Command::new(DLOG).args(["init", "--bare"]).arg(&source).status().unwrap().success());
    let intents: String = (0..events)
        .map(|i| {
            format!(
                "{{\"id\":\"imp-{i}\",\"actor\":\"importer\",\"kind\":\"decide\",\"body\":{{\"key\":\"i{i}\",\"choice\":\"c\",\"rationale\":\"r\"}}}}\n"
            )
        })
        .collect();
    let file = dir.join("intents.jsonl");
    std::fs::write(&file, intents).unwrap();
    let made = dlog(&source).args(["append", "team", "--intent"]).arg(&file).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let export = dlog(&source).args(["export", "team"]).output().unwrap();
    let path = dir.join("export.jsonl");
    std::fs::write(&path, export.stdout).unwrap();
    path
}

fn ids_in_log(repo: &Path) -> BTreeSet<String> {
    let out = dlog(repo).args(["--json", "events", "team"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect()
}

/// Check every invariant after a kill, and time the next append.
fn check(repo: &Path, acked: &[String], outcome: &mut Outcome) {
    let started = Instant::now();
    loop {
        let out = dlog(repo)
            .args(["append", "team", "--key", "after", "--choice", "c", "--why", "w", "--id", "after-crash"])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        if started.elapsed() > RECOVERY_LIMIT {
            outcome.manual = true;
            outcome
                .broken
                .push(format!("no append for {RECOVERY_LIMIT:?}: {}", String::from_utf8_lossy(&out.stderr)));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    outcome.recovery = started.elapsed();
    let present = ids_in_log(repo);
    outcome.acked = acked.len();
    outcome.lost = acked.iter().filter(|id| !present.contains(*id)).cloned().collect();
    let fsck =
        Command::new("git").arg("-C").arg(repo).args(["fsck", "--strict", "--no-dangling"]).output().unwrap();
    if !fsck.status.success() {
        outcome.broken.push(format!("git fsck: {}", String::from_utf8_lossy(&fsck.stderr)));
    }
    let verify = dlog(repo).args(["verify"]).output().unwrap();
    if !verify.status.success() {
        outcome.broken.push(format!("dlog verify: {}", String::from_utf8_lossy(&verify.stdout)));
    }
    if !git(repo, &["rev-list", "--min-parents=2", "refs/dlog/spaces/team"]).trim().is_empty() {
        outcome.broken.push("a merge commit: the log forked".into());
    }
}

fn trial(victim: Victim, rng: &mut Rng, export: &Path) -> Outcome {
    let repo = Repo::new();
    let path = repo.path.clone();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut outcome = Outcome::default();
    let delay = Duration::from_millis(30 + rng.below(400));
    match victim {
        Victim::Writer | Victim::Serve => {
            let serve = matches!(victim, Victim::Serve).then(|| start_serve(&path));
            let running: Vec<Arc<AtomicU32>> = (0..2).map(|_| Arc::new(AtomicU32::new(0))).collect();
            let threads: Vec<_> = (0..2)
                .map(|w| {
                    let (path, running, stop, acked) =
                        (path.clone(), running[w].clone(), stop.clone(), acked.clone());
                    std::thread::spawn(move || writer(&path, &format!("w{w}"), 25, &running, &stop, &acked))
                })
                .collect();
            std::thread::sleep(delay);
            match serve {
                Some(mut serve) => {
                    kill(serve.id());
                    let _ = serve.wait();
                }
                None => {
                    let victim = &running[rng.below(2) as usize];
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while victim.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                        std::thread::yield_now();
                    }
                    kill(victim.load(Ordering::SeqCst));
                }
            }
            // The writers go on after the kill, past a killed holder's TTL:
            // they must get through too.
            std::thread::sleep(Duration::from_millis(1500));
            stop.store(true, Ordering::SeqCst);
            for thread in threads {
                thread.join().unwrap();
            }
        }
        Victim::Importer => {
            let mut child =
                dlog(&path).arg("import").arg("team").arg(export).stdout(Stdio::null()).spawn().unwrap();
            std::thread::sleep(delay / 4);
            kill(child.id());
            let _ = child.wait();
            // Importing again after the kill finishes the job.
            let again = dlog(&path).arg("import").arg("team").arg(export).output().unwrap();
            if !again.status.success() {
                outcome.broken.push(format!("re-import: {}", String::from_utf8_lossy(&again.stderr)));
            }
        }
    }
    let acked = acked.lock().unwrap().clone();
    check(&path, &acked, &mut outcome);
    outcome
}

#[test]
fn killed_writers_holders_and_importers_lose_nothing_acknowledged_and_need_no_person() {
    let trials: usize = std::env::var("DLOG_CRASH_TRIALS").ok().and_then(|n| n.parse().ok()).unwrap_or(6);
    let seed: u64 = std::env::var("DLOG_CRASH_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let export = export_of(300, dir.path());
    let mut recoveries = Vec::new();
    let (mut acked, mut lost, mut broken, mut manual) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for n in 0..trials {
        let victim = [Victim::Writer, Victim::Serve, Victim::Importer][n % 3];
        let outcome = trial(victim, &mut rng, &export);
        acked += outcome.acked;
        lost += outcome.lost.len();
        broken += usize::from(!outcome.broken.is_empty());
        manual += usize::from(outcome.manual);
        recoveries.push(outcome.recovery);
        if !outcome.lost.is_empty() || !outcome.broken.is_empty() {
            failures.push(format!(
                "trial {n} ({victim:?}): lost {:?}, broken {:?}",
                outcome.lost, outcome.broken
            ));
        }
    }
    recoveries.sort();
    let median = recoveries[recoveries.len() / 2];
    let max = recoveries[recoveries.len() - 1];
    eprintln!(
        "crash trials (seed {seed}): {trials} trials, {acked} acknowledged events, {lost} lost, {broken} broken, \
         {manual} manual recoveries, recovery median {median:?} max {max:?}"
    );
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}
