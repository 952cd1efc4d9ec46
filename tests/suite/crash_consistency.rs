//! Crash at every step, in the manner of redb's `crash_consistency` tests
//! and LazyFS: each operation runs once over a disk that records every
//! durable file operation (`CrashFs`), then for every k the directory a
//! power loss right after the k-th operation would leave (files as of
//! their last fsync, directory entries as of their directory's last fsync)
//! is built and checked: every ref holds its old value or its new one, `git
//! fsck --strict` is clean, every event acknowledged before is there, and
//! the next append succeeds with nobody's help.
//!
//! Each test prints how many crash points it checked (docs/RELIABILITY.md).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use decision_log::authority::SoleWriter;
use decision_log::backend::{GitBackend, MemoryBackend, ObjectId};
use decision_log::clock::SystemClock;
use decision_log::durable::crash::CrashFs;
use decision_log::durable::{Fs, RealFs};
use decision_log::lease::{FileLeases, Leases};
use decision_log::{Log, Options};

use crate::support::decide;

const SPACE: &str = "team";

/// A log over the repository at `path`, its durable operations through `fs`.
fn log_at(path: &Path, fs: Arc<dyn Fs>) -> (Log, Arc<GitBackend>) {
    let backend = Arc::new(GitBackend::open_with_fs(path, fs.clone()).unwrap());
    let leases = Arc::new(FileLeases::open_with_fs(path, fs).unwrap());
    let options = Options::default().sole_writer(Arc::new(SoleWriter::new("x", 1)));
    (Log::with_leases(backend.clone(), leases, options).unwrap(), backend)
}

/// What an operation may change: every ref, the space's events, its lease.
#[derive(Clone, Debug, PartialEq)]
struct State {
    refs: Vec<(String, ObjectId)>,
    events: Vec<String>,
    lease: Option<String>,
}

impl State {
    fn of(path: &Path, log: &Log) -> State {
        let events = log.space(SPACE).events(1, u32::MAX).unwrap().into_iter().map(|e| e.canonical).collect();
        State {
            refs: log.backend().list_refs("refs/").unwrap(),
            events,
            lease: std::fs::read_to_string(path.join("dlog/leases").join(format!("{SPACE}.json"))).ok(),
        }
    }

    fn get(&self, name: &str) -> Option<ObjectId> {
        self.refs.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

/// One run of an operation over a recording disk.
struct Run {
    _dir: tempfile::TempDir,
    path: PathBuf,
    fs: CrashFs,
    log: Log,
    backend: Arc<GitBackend>,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.git");
        GitBackend::init_bare(&path).unwrap();
        let fs = CrashFs::new(&path).unwrap();
        let (log, backend) = log_at(&path, Arc::new(fs.clone()));
        Run { _dir: dir, path, fs, log, backend }
    }

    /// Run `operation` recorded, then check every crash point; how many.
    fn crash_at_every_step(&self, operation: impl FnOnce(&Run)) -> usize {
        let before = State::of(&self.path, &self.log);
        self.fs.start().unwrap();
        operation(self);
        let after = State::of(&self.path, &self.log);
        let ops = self.fs.ops();
        assert!(!ops.is_empty(), "the operation wrote nothing");
        let points = self.fs.points();
        for k in 0..points {
            let dest = self.path.with_file_name(format!("crash-{k}"));
            self.fs.materialize(k, &dest).unwrap();
            let trail: Vec<String> = ops[..k].iter().map(ToString::to_string).collect();
            let at = format!("power loss after {k} of {} operations:\n  {}", ops.len(), trail.join("\n  "));
            check_crash_state(&dest, &before, &after, &at);
            std::fs::remove_dir_all(&dest).unwrap();
        }
        points
    }
}

/// What a power loss must leave, checked on the directory it left.
fn check_crash_state(dest: &Path, before: &State, after: &State, at: &str) {
    fsck_is_clean(dest, at);
    let (log, _) = log_at(dest, Arc::new(RealFs));
    let now = State::of(dest, &log);
    let names: BTreeSet<&String> = before.refs.iter().chain(&after.refs).map(|(n, _)| n).collect();
    assert_eq!(now.refs.len(), now.refs.iter().filter(|(n, _)| names.contains(n)).count(), "{at}");
    for name in names {
        let value = now.get(name);
        assert!(value == before.get(name) || value == after.get(name), "{name} is {value:?}; {at}");
    }
    assert!(now.events == before.events || now.events == after.events, "events {:?}; {at}", now.events);
    assert!(now.lease == before.lease || now.lease == after.lease, "lease {:?}; {at}", now.lease);
    let seq = now.events.len() as u64 + 1;
    let appended = log.space(SPACE).append(decide("after-the-crash", "next", "works")).unwrap();
    assert_eq!(appended.event.seq, seq, "{at}");
    fsck_is_clean(dest, at);
}

fn fsck_is_clean(dest: &Path, at: &str) {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dest)
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .output()
        .expect("git");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("notice: ")).collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "git fsck: {}{}; {at}",
        String::from_utf8_lossy(&out.stdout),
        complaints.join("\n")
    );
}

fn intents(prefix: &str, n: usize) -> Vec<decision_log::Intent> {
    (0..n).map(|i| decide(&format!("{prefix}-{i}"), &format!("{prefix}{i}"), "yes")).collect()
}

/// Loose objects older than the minute after which merges pack them.
fn age_loose_objects(path: &Path) {
    let old = SystemTime::now() - Duration::from_secs(600);
    for fan_out in std::fs::read_dir(path.join("objects")).unwrap() {
        let fan_out = fan_out.unwrap().path();
        if fan_out.file_name().is_some_and(|n| n.len() == 2) {
            for file in std::fs::read_dir(&fan_out).unwrap() {
                std::fs::File::open(file.unwrap().path()).unwrap().set_modified(old).unwrap();
            }
        }
    }
}

#[test]
fn a_power_loss_at_any_step_of_a_single_append_leaves_the_old_head_or_the_new_one() {
    let run = Run::new();
    run.log.space(SPACE).append(decide("d1", "db", "postgres")).unwrap();
    run.log.space(SPACE).append(decide("d2", "queue", "none")).unwrap();
    let points = run.crash_at_every_step(|run| {
        run.log.space(SPACE).append(decide("d3", "cache", "redis")).unwrap();
    });
    println!("single append: {points} crash points");
}

#[test]
fn a_power_loss_at_any_step_of_a_batch_written_as_a_pack_leaves_the_old_head_or_the_new_one() {
    let run = Run::new();
    run.log.space(SPACE).append(decide("d1", "db", "postgres")).unwrap();
    let points = run.crash_at_every_step(|run| {
        run.log.space(SPACE).append_batch(intents("batch", 6)).unwrap();
        assert!(std::fs::read_dir(run.path.join("objects/pack")).unwrap().count() > 0, "a pack");
    });
    println!("batch as a pack: {points} crash points");
}

#[test]
fn a_power_loss_at_any_step_of_a_checkpoint_leaves_the_old_checkpoint_or_the_new_one() {
    let run = Run::new();
    for i in 0..3 {
        run.log.space(SPACE).append(decide(&format!("d{i}"), &format!("k{i}"), "yes")).unwrap();
    }
    let points = run.crash_at_every_step(|run| {
        run.log.space(SPACE).checkpoint().unwrap().expect("a checkpoint");
    });
    println!("checkpoint: {points} crash points");
}

#[test]
fn a_power_loss_at_any_step_of_gc_loses_no_object() {
    let run = Run::new();
    run.log.space(SPACE).append_batch(intents("first", 6)).unwrap();
    run.log.space(SPACE).append_batch(intents("second", 6)).unwrap();
    run.log.space(SPACE).append(decide("loose1", "l1", "yes")).unwrap();
    run.log.space(SPACE).append(decide("loose2", "l2", "yes")).unwrap();
    age_loose_objects(&run.path);
    let points = run.crash_at_every_step(|run| {
        let report = run.backend.gc(&mut |_| {}).unwrap();
        assert!(report.loose_packed > 0 && report.packs_merged > 0, "{report:?}");
    });
    println!("gc: {points} crash points");
}

#[test]
fn a_power_loss_at_any_step_of_a_lease_grant_leaves_the_old_lease_or_the_new_one() {
    let run = Run::new();
    run.log.space(SPACE).append(decide("d1", "db", "postgres")).unwrap();
    let leases = Leases::new(
        Arc::new(FileLeases::open_with_fs(&run.path, Arc::new(run.fs.clone())).unwrap()),
        Arc::new(SystemClock),
    );
    leases.acquire(SPACE, "first", Duration::from_secs(60), None, 1).unwrap();
    leases.release(SPACE, "first").unwrap();
    let points = run.crash_at_every_step(|_| {
        leases.acquire(SPACE, "holder", Duration::from_secs(60), None, 1).unwrap();
    });
    println!("lease grant: {points} crash points");
}

#[test]
fn a_power_loss_at_any_step_of_a_lease_release_leaves_the_old_lease_or_the_new_one() {
    let run = Run::new();
    run.log.space(SPACE).append(decide("d1", "db", "postgres")).unwrap();
    let leases = Leases::new(
        Arc::new(FileLeases::open_with_fs(&run.path, Arc::new(run.fs.clone())).unwrap()),
        Arc::new(SystemClock),
    );
    leases.acquire(SPACE, "holder", Duration::from_secs(60), None, 1).unwrap();
    let points = run.crash_at_every_step(|_| {
        leases.release(SPACE, "holder").unwrap();
    });
    println!("lease release: {points} crash points");
}

#[test]
fn a_power_loss_at_any_step_of_an_import_leaves_the_old_head_or_the_new_one() {
    let run = Run::new();
    let options = Options::default().sole_writer(Arc::new(SoleWriter::new("x", 1)));
    let elsewhere = Log::with_backend(Arc::new(MemoryBackend::new()), options).unwrap();
    let source = elsewhere.space(SPACE);
    source.append_batch(intents("imported", 6)).unwrap();
    let mut out = Vec::new();
    source.export(&mut out).unwrap();
    let lines: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
    let points = run.crash_at_every_step(|run| {
        let report = run.log.space(SPACE).import(&lines).unwrap();
        assert_eq!(report.written, 6);
    });
    println!("import: {points} crash points");
}
