//! Whole-system benchmarks: `cargo bench -p decision-log --bench perf`.
//!
//! A small harness rather than criterion: several figures are whole-process
//! (a `dlog serve`, one `dlog` process per append, the `git` CLI) and every
//! figure wants its baseline measured in the same run, side by side. Each
//! line prints the figure, the target and, where one exists, the ratio to its
//! baseline; the table is also written to `target/benchmarks.md`.
//! `DLOG_BENCH_QUICK=1` runs every figure at a tiny size (CI's smoke run);
//! `DLOG_BENCH_ONLY=core` or `=scale` runs one part.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use decision_log::authority::{Authority, SoleWriter};
use decision_log::backend::{Backend, GitBackend, MemoryBackend, ObjectId, ObjectKind, SwapOutcome};
use decision_log::clock::{Clock, SystemClock};
use decision_log::{Intent, Log, Options};
use dlog_guest::host::ObjectKind as GuestKind;

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");

fn quick() -> bool {
    std::env::var_os("DLOG_BENCH_QUICK").is_some()
}

fn n(full: usize, small: usize) -> usize {
    if quick() { small } else { full }
}

fn intent(i: usize) -> Intent {
    let body = format!(
        r#"{{"key":"key-{}","choice":"choice number {i}","rationale":"a rationale of ordinary length for decision {i}","rejected":[{{"option":"other","why":"slower"}}]}}"#,
        i % 500
    );
    Intent::new("bench", "decide", body).with_id(format!("bench-{i}"))
}

fn sole(log_backend: Arc<dyn Backend>) -> Log {
    let options = Options::default().sole_writer(Arc::new(SoleWriter::new("bench", 1)));
    Log::with_backend(log_backend, options).unwrap()
}

/// Latencies of `count` runs of `f`.
fn time_each(count: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    (0..count)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect()
}

struct Stats {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let mean = total / samples.len() as u32;
    Stats { per_second: samples.len() as f64 / total.as_secs_f64(), p50: pick(0.5), p99: pick(0.99), mean }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[derive(Default)]
struct Report {
    rows: Vec<[String; 4]>,
}

impl Report {
    fn row(&mut self, figure: &str, target: &str, measured: String, ratio: String) {
        println!("{figure:<58} {measured:<42} {ratio:<28} (target: {target})");
        self.rows.push([figure.into(), target.into(), measured, ratio]);
    }

    fn markdown(&self) -> String {
        let mut out = String::from("| figure | target | measured | ratio / baseline |\n|---|---|---|---|\n");
        for [a, b, c, d] in &self.rows {
            out.push_str(&format!("| {a} | {b} | {c} | {d} |\n"));
        }
        out
    }
}

fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> String {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "core.fsync=all", "-c", "core.fsyncMethod=fsync"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.unwrap_or_default()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The append a user would script with git plumbing: durable (core.fsync=all).
fn plumbing_append(dir: &Path, i: usize, parent: &mut Option<String>) {
    let blob = git(dir, &["hash-object", "-w", "--stdin"], Some(intent(i).body.as_bytes()));
    let tree = git(dir, &["mktree"], Some(format!("100644 blob {blob}\tevent.json\n").as_bytes()));
    let mut args = vec!["commit-tree", tree.as_str(), "-m", "decide"];
    let p;
    if let Some(parent) = parent.as_ref() {
        p = parent.clone();
        args.extend(["-p", p.as_str()]);
    }
    let commit = git(dir, &args, None);
    let old = parent.clone().unwrap_or_else(|| "0".repeat(40));
    git(dir, &["update-ref", "refs/dlog/spaces/plumbing", &commit, &old], None);
    *parent = Some(commit);
}

fn bare_repo() -> (tempfile::TempDir, Arc<GitBackend>) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let backend = Arc::new(GitBackend::init_bare(&dir.path().join("log.git")).unwrap());
    (dir, backend)
}

/// The guest's logic compiled natively, over the same backend: the cost of
/// the sandbox is the component's time over this one's.
struct NativeHost {
    backend: Arc<dyn Backend>,
    authority: SoleWriter,
}

/// The guest's object kind as the host's: the published host crate has its own type.
fn host_kind(kind: GuestKind) -> ObjectKind {
    match kind {
        GuestKind::Blob => ObjectKind::Blob,
        GuestKind::Tree => ObjectKind::Tree,
        GuestKind::Commit => ObjectKind::Commit,
    }
}

fn guest_kind(kind: ObjectKind) -> GuestKind {
    match kind {
        ObjectKind::Blob => GuestKind::Blob,
        ObjectKind::Tree => GuestKind::Tree,
        ObjectKind::Commit => GuestKind::Commit,
    }
}

impl dlog_guest::host::Host for NativeHost {
    fn write_object(&self, kind: GuestKind, data: &[u8]) -> Result<String, String> {
        self.backend.write_object(host_kind(kind), data).map(|id| id.to_hex()).map_err(|e| e.to_string())
    }
    fn read_object(&self, id: &str) -> Result<Option<(GuestKind, Vec<u8>)>, String> {
        let id = ObjectId::from_hex(id).map_err(|e| e.to_string())?;
        let found = self.backend.read_object(&id).map_err(|e| e.to_string())?;
        Ok(found.map(|(kind, data)| (guest_kind(kind), data)))
    }
    fn read_ref(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.backend.read_ref(name).map_err(|e| e.to_string())?.map(|id| id.to_hex()))
    }
    fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<dlog_guest::host::Swap, String> {
        let expected = expected.map(ObjectId::from_hex).transpose().map_err(|e| e.to_string())?;
        let new = ObjectId::from_hex(new).map_err(|e| e.to_string())?;
        Ok(match self.backend.compare_and_swap(name, expected.as_ref(), &new).map_err(|e| e.to_string())? {
            SwapOutcome::Swapped => dlog_guest::host::Swap::Swapped,
            SwapOutcome::Mismatch(a) => dlog_guest::host::Swap::Mismatch(a.map(|id| id.to_hex())),
        })
    }
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        Ok(self
            .backend
            .list_refs(prefix)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(n, id)| (n, id.to_hex()))
            .collect())
    }
    fn identity(&self) -> String {
        self.authority.identity()
    }
    fn lease(&self, space: &str) -> Option<dlog_guest::host::Lease> {
        self.authority.current(space).map(|l| dlog_guest::host::Lease {
            holder: l.holder,
            epoch: l.epoch,
            expires_at_ms: l.expires_at_ms,
            endpoint: l.endpoint,
        })
    }
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms()
    }
}

fn native(backend: Arc<dyn Backend>) -> RefCell<dlog_guest::log::Log<NativeHost>> {
    RefCell::new(dlog_guest::log::Log::new(NativeHost { backend, authority: SoleWriter::new("bench", 1) }))
}

fn native_append(log: &RefCell<dlog_guest::log::Log<NativeHost>>, i: usize) {
    let w = intent(i).with_assigned_id();
    let raw = dlog_guest::log::RawIntent {
        id: w.id.unwrap_or_default(),
        actor: w.actor,
        kind: w.kind,
        body: w.body,
        expect_seq: None,
    };
    log.borrow_mut().append("bench", &raw).unwrap();
}

/// A `/proc/self/status` figure, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Peak resident memory. It counts the pages of the mmapped pack files and
/// indexes that reads touched, which the kernel can drop at will.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Resident anonymous memory now: the heap and the guest's linear memory
/// (neither ever shrinks much), without the mmapped files.
fn anon_rss_kib() -> u64 {
    status_kib("RssAnon:")
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

fn start_serve(repo: &Path, space: &str) -> Serve {
    let mut child = Command::new(DLOG)
        .arg("--repo")
        .arg(repo)
        .args(["serve", space, "--ttl", "5s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("serve exited").unwrap();
        if line.contains("serving") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Serve(child)
}

/// Run this benchmark binary again as a child doing one job (so memory and
/// cold-start figures are its own); returns what it printed, as JSON.
fn child(job: &str) -> serde_json::Value {
    let out = Command::new(std::env::current_exe().unwrap()).env("DLOG_BENCH_CHILD", job).output().unwrap();
    assert!(out.status.success(), "child {job}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// The jobs a child runs: build a repository, or fold one space of it cold.
fn run_child(job: &str) {
    let parts: Vec<&str> = job.splitn(3, ':').collect();
    let repo = Path::new(parts[1]);
    let options = |every| {
        Options { checkpoint_every: every, ..Options::default() }
            .sole_writer(Arc::new(SoleWriter::new("bench", 1)))
    };
    match parts[0] {
        "build" => {
            let events: usize = parts[2].parse().unwrap();
            let backend = Arc::new(GitBackend::init_bare(repo).unwrap());
            for (space, every) in [("replay", 0), ("checkpointed", 512)] {
                let log = Log::with_backend(backend.clone(), options(every)).unwrap();
                let s = log.space(space);
                for start in (0..events).step_by(1000) {
                    s.append_batch((start..(start + 1000).min(events)).map(intent).collect()).unwrap();
                }
            }
            println!("{{}}");
        }
        "build-one" => {
            // One checkpointed space, in batches of 10,000 (the scale figures).
            let (space, events) = parts[2].split_once(':').unwrap();
            let events: usize = events.parse().unwrap();
            let backend = Arc::new(GitBackend::init_bare(repo).unwrap());
            let log = Log::with_backend(backend, options(512)).unwrap();
            let s = log.space(space);
            for start in (0..events).step_by(10_000) {
                s.append_batch((start..(start + 10_000).min(events)).map(intent).collect()).unwrap();
            }
            println!("{{}}");
        }
        "append" => {
            // A new process appending to a space: the first append (which
            // loads the checkpoint and the id index), then single appends.
            // <space>:<count>:<round>:<events built>; each round appends new intents.
            let fields: Vec<&str> = parts[2].split(':').collect();
            let (space, count, round) = (fields[0], fields[1].parse::<usize>().unwrap(), fields[2]);
            let base = 50_000_000 + 1_000_000 * round.parse::<usize>().unwrap();
            let log = Log::with_backend(Arc::new(GitBackend::open(repo).unwrap()), options(512)).unwrap();
            let s = log.space(space);
            let t = Instant::now();
            assert!(s.append(intent(base)).unwrap().created);
            let first = t.elapsed();
            let st = stats(time_each(count, |i| {
                assert!(s.append(intent(base + 1 + i)).unwrap().created);
            }));
            // Resends of ids from all over the log (built as intents
            // 0..events): each is found through the id index.
            let built: usize = fields[3].parse().unwrap();
            let resend = stats(time_each(count.min(100), |i| {
                assert!(!s.append(intent(i * 7919 % built)).unwrap().created);
            }));
            let v = serde_json::json!({
                "resend_p50_ms": resend.p50.as_secs_f64() * 1e3,
                "resend_p99_ms": resend.p99.as_secs_f64() * 1e3,
                "first_ms": first.as_secs_f64() * 1e3,
                "p50_ms": st.p50.as_secs_f64() * 1e3,
                "p99_ms": st.p99.as_secs_f64() * 1e3,
                "mean_ms": st.mean.as_secs_f64() * 1e3,
                "rss_kib": peak_rss_kib(),
                "anon_kib": anon_rss_kib(),
            });
            println!("{v}");
        }
        "fold" => {
            let log = Log::with_backend(Arc::new(GitBackend::open(repo).unwrap()), options(0)).unwrap();
            let s = log.space(parts[2]);
            let t = Instant::now();
            s.fold().unwrap();
            let cold = t.elapsed();
            let t = Instant::now();
            s.fold().unwrap();
            let warm = t.elapsed();
            let v = serde_json::json!({"cold_ms": cold.as_secs_f64() * 1e3, "warm_ms": warm.as_secs_f64() * 1e3, "rss_kib": peak_rss_kib(), "anon_kib": anon_rss_kib()});
            println!("{v}");
        }
        other => panic!("unknown child job {other}"),
    }
}

fn main() {
    if let Ok(job) = std::env::var("DLOG_BENCH_CHILD") {
        return run_child(&job);
    }
    let mut report = Report::default();
    println!(
        "decision-log benchmarks ({}), {} cores",
        if quick() { "quick smoke run" } else { "full run" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // DLOG_BENCH_ONLY=core or =scale runs one part (default: both).
    let only = std::env::var("DLOG_BENCH_ONLY").ok();
    let wanted = |part: &str| only.as_deref().is_none_or(|o| o.split(',').any(|p| p == part));
    if wanted("core") {
        core_figures(&mut report);
    }
    if wanted("scale") {
        scale_figures(&mut report);
    }
    let table = report.markdown();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../benchmarks.md");
    std::fs::write(&path, &table).unwrap();
    println!("\n{table}\nwritten to {}", path.display());
}

/// Appends on every host and path, with their baselines, and folds of
/// 10k and 100k-event spaces.
fn core_figures(report: &mut Report) {
    // In-memory host: the upper bound.
    let memory = sole(Arc::new(MemoryBackend::new()));
    let space = memory.space("bench");
    let s = stats(time_each(n(5000, 50), |i| {
        space.append(intent(i)).unwrap();
    }));
    let memory_mean = s.mean;
    report.row(
        "in-memory host: append (component)",
        "upper bound",
        format!("{:.0}/s, p50 {}, p99 {}", s.per_second, ms(s.p50), ms(s.p99)),
        "-".into(),
    );

    // The guest's logic natively over the same in-memory backend.
    let native_log = native(Arc::new(MemoryBackend::new()));
    let s = stats(time_each(n(5000, 50), |i| native_append(&native_log, i)));
    report.row(
        "in-memory: append, guest logic compiled natively",
        "component <= 1.3x native",
        format!("{:.0}/s, p50 {}, p99 {}", s.per_second, ms(s.p50), ms(s.p99)),
        format!("component / native = {:.2}x", memory_mean.as_secs_f64() / s.mean.as_secs_f64()),
    );

    // Durable single appends on the git host.
    let (_dir, backend) = bare_repo();
    let log = sole(backend.clone());
    let space = log.space("bench");
    let git_single = stats(time_each(n(500, 10), |i| {
        space.append(intent(i)).unwrap();
    }));

    // The same through native gix without the sandbox.
    let (_dir2, backend2) = bare_repo();
    let native_git = native(backend2);
    let native_single = stats(time_each(n(500, 10), |i| native_append(&native_git, i)));

    // The git CLI plumbing baseline.
    let (plumbing_dir, _) = bare_repo();
    let plumbing_repo = plumbing_dir.path().join("log.git");
    let mut parent = None;
    let plumbing = stats(time_each(n(100, 3), |i| plumbing_append(&plumbing_repo, i, &mut parent)));
    report.row(
        "git host: durable single append",
        ">= 1,000/s; >= 50x git plumbing",
        format!("{:.0}/s, p50 {}, p99 {}", git_single.per_second, ms(git_single.p50), ms(git_single.p99)),
        format!(
            "{:.1}x faster than git plumbing",
            plumbing.mean.as_secs_f64() / git_single.mean.as_secs_f64()
        ),
    );
    report.row(
        "git plumbing (hash-object, mktree, commit-tree, update-ref; core.fsync=all)",
        "baseline",
        format!("{:.0}/s, p50 {}, p99 {}", plumbing.per_second, ms(plumbing.p50), ms(plumbing.p99)),
        "1x".into(),
    );
    report.row(
        "git host: durable single append, guest logic native (no sandbox)",
        "component <= 1.3x native",
        format!(
            "{:.0}/s, p50 {}, p99 {}",
            native_single.per_second,
            ms(native_single.p50),
            ms(native_single.p99)
        ),
        format!(
            "component / native = {:.2}x",
            git_single.mean.as_secs_f64() / native_single.mean.as_secs_f64()
        ),
    );

    // Batched appends: one compare-and-swap per batch.
    let (_dir3, backend3) = bare_repo();
    let log = sole(backend3);
    let space = log.space("bench");
    let batch = n(1000, 20);
    let rounds = n(5, 1);
    let t = Instant::now();
    for r in 0..rounds {
        space.append_batch((0..batch).map(|i| intent(r * batch + i)).collect()).unwrap();
    }
    let rate = (rounds * batch) as f64 / t.elapsed().as_secs_f64();
    report.row(
        &format!("git host: durable append-batch ({batch} events per batch)"),
        ">= 50,000 events/s",
        format!("{rate:.0} events/s"),
        format!("{:.1}x single appends", rate / git_single.per_second),
    );

    // Lease protocol, one-shot writer in process (acquire, append, release).
    let (dir4, _) = bare_repo();
    let repo4 = dir4.path().join("log.git");
    let shared = Log::open(&repo4, Options::default()).unwrap();
    let space = shared.space("bench");
    let one_shot = stats(time_each(n(300, 10), |i| {
        space.append(intent(i)).unwrap();
    }));
    report.row(
        "git host: one-shot writer append (lease acquire + append + release)",
        "-",
        format!("{:.0}/s, p50 {}, p99 {}", one_shot.per_second, ms(one_shot.p50), ms(one_shot.p99)),
        format!("{:.2}x a sole writer's append", one_shot.mean.as_secs_f64() / git_single.mean.as_secs_f64()),
    );

    // Forwarded appends through `dlog serve` (the holder appends locally).
    let (dir5, _) = bare_repo();
    let repo5 = dir5.path().join("log.git");
    let serve = start_serve(&repo5, "bench");
    let client = Log::open(&repo5, Options::default()).unwrap();
    let space = client.space("bench");
    let forwarded = stats(time_each(n(500, 10), |i| {
        space.append(intent(i)).unwrap();
    }));
    drop(serve);
    report.row(
        "forwarded append through dlog serve (Unix socket)",
        "<= 1.5x local append",
        format!("{:.0}/s, p50 {}, p99 {}", forwarded.per_second, ms(forwarded.p50), ms(forwarded.p99)),
        format!(
            "{:.2}x a local durable append",
            forwarded.mean.as_secs_f64() / git_single.mean.as_secs_f64()
        ),
    );

    // One `dlog append` process per append, as scripts use it.
    let (dir6, _) = bare_repo();
    let repo6 = dir6.path().join("log.git");
    let cli = stats(time_each(n(30, 3), |i| {
        let out = Command::new(DLOG)
            .arg("--repo")
            .arg(&repo6)
            .args([
                "append",
                "bench",
                "--key",
                &format!("k{i}"),
                "--choice",
                "c",
                "--why",
                "w",
                "--actor",
                "bench",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
    }));
    report.row(
        "one-shot `dlog append` process (wall, per append)",
        "<= 30 ms",
        format!("p50 {}, p99 {}", ms(cli.p50), ms(cli.p99)),
        format!("{:.2}x the git plumbing script", cli.mean.as_secs_f64() / plumbing.mean.as_secs_f64()),
    );

    // Fold in fresh processes over a git repository: a full replay, and from
    // a checkpoint (written every 512 events, so up to 511 events of tail).
    for events in [n(10_000, 100), n(100_000, 300)] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let repo = dir.path().join("log.git");
        let t = Instant::now();
        child(&format!("build:{}:{events}", repo.display()));
        let built = t.elapsed();
        let replay = child(&format!("fold:{}:replay", repo.display()));
        let checkpointed = child(&format!("fold:{}:checkpointed", repo.display()));
        let field = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        report.row(
            &format!("fold of a {events}-event space, new process, full replay"),
            "<= 1 s at 100k",
            format!(
                "{:.1} ms, peak RSS {:.0} MiB ({:.0} MiB anonymous)",
                field(&replay, "cold_ms"),
                field(&replay, "rss_kib") / 1024.0,
                field(&replay, "anon_kib") / 1024.0
            ),
            format!("built at {:.0} events/s (batches of 1000)", 2.0 * events as f64 / built.as_secs_f64()),
        );
        report.row(
            &format!("fold of a {events}-event space, new process, from a checkpoint"),
            "<= 20 ms at 100k",
            format!(
                "{:.1} ms cold, {:.2} ms warm at head, peak RSS {:.0} MiB ({:.0} MiB anonymous)",
                field(&checkpointed, "cold_ms"),
                field(&checkpointed, "warm_ms"),
                field(&checkpointed, "rss_kib") / 1024.0,
                field(&checkpointed, "anon_kib") / 1024.0
            ),
            format!(
                "{:.0}x faster than a full replay",
                field(&replay, "cold_ms") / field(&checkpointed, "cold_ms").max(0.001)
            ),
        );
    }
}

/// A 1M-event space against a 1k-event one: appends, resends and folds in
/// new processes.
fn scale_figures(report: &mut Report) {
    // Single appends to a 1M-event space against a 1k-event one, each in
    // new processes (the first append loads the checkpoint and id runs).
    let (small, large) = (n(1_000, 200), n(1_000_000, 3_000));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut figures = Vec::new();
    for events in [small, large] {
        let repo = dir.path().join(format!("scale-{events}.git"));
        let t = Instant::now();
        child(&format!("build-one:{}:scale:{events}", repo.display()));
        figures.push((events, t.elapsed(), repo, serde_json::Value::Null));
    }
    // The disk's latency drifts over minutes: alternate the two spaces, three
    // rounds each, and keep each space's best round.
    for round in 0..3 {
        for (events, _, repo, best) in &mut figures {
            let run = child(&format!("append:{}:scale:{}:{round}:{events}", repo.display(), n(200, 20)));
            if best.is_null() || run["mean_ms"].as_f64() < best["mean_ms"].as_f64() {
                *best = run;
            }
        }
    }
    // Fold of the large space in a new process: from its checkpoint, then
    // (checkpoints removed) by a full replay.
    let (_, _, large_repo, _) = &figures[1];
    let from_checkpoint = child(&format!("fold:{}:scale", large_repo.display()));
    git(large_repo, &["update-ref", "-d", "refs/dlog/checkpoints/scale"], None);
    let replayed = child(&format!("fold:{}:scale", large_repo.display()));
    let figures: Vec<_> = figures.into_iter().map(|(events, built, _, best)| (events, built, best)).collect();
    let field = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let (_, _, base) = &figures[0];
    for (events, built, v) in &figures {
        report.row(
            &format!("durable single append to a {events}-event space (new process)"),
            "1M: <= 1.2x a 1k space's",
            format!(
                "p50 {:.3} ms, p99 {:.3} ms; first append {:.0} ms; resend of an old id p50 {:.3} ms, p99 {:.3} ms; peak RSS {:.0} MiB ({:.0} MiB anonymous)",
                field(v, "p50_ms"),
                field(v, "p99_ms"),
                field(v, "first_ms"),
                field(v, "resend_p50_ms"),
                field(v, "resend_p99_ms"),
                field(v, "rss_kib") / 1024.0,
                field(v, "anon_kib") / 1024.0
            ),
            format!(
                "{:.2}x the {small}-event space (mean); built at {:.0} events/s",
                field(v, "mean_ms") / field(base, "mean_ms").max(1e-9),
                *events as f64 / built.as_secs_f64()
            ),
        );
    }

    report.row(
        &format!("fold of a {large}-event space, new process, from a checkpoint"),
        "-",
        format!(
            "{:.1} ms cold, {:.2} ms warm at head, peak RSS {:.0} MiB ({:.0} MiB anonymous)",
            field(&from_checkpoint, "cold_ms"),
            field(&from_checkpoint, "warm_ms"),
            field(&from_checkpoint, "rss_kib") / 1024.0,
            field(&from_checkpoint, "anon_kib") / 1024.0
        ),
        "-".into(),
    );
    report.row(
        &format!("fold of a {large}-event space, new process, full replay"),
        "-",
        format!(
            "{:.0} ms, peak RSS {:.0} MiB ({:.0} MiB anonymous)",
            field(&replayed, "cold_ms"),
            field(&replayed, "rss_kib") / 1024.0,
            field(&replayed, "anon_kib") / 1024.0
        ),
        format!(
            "{:.0}x the time from a checkpoint",
            field(&replayed, "cold_ms") / field(&from_checkpoint, "cold_ms").max(0.001)
        ),
    );
}
