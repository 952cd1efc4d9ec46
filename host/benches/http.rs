//! HTTP benchmarks of `dlog serve --http` (release build, real processes,
//! real sockets): GET of a fold at 100,000 events (p50/p99), POST appends
//! with 1, 16 and 64 concurrent clients beside the same load on serve's
//! socket, and 1,000 event-stream subscribers held open (serve's RSS, and
//! how long one event takes to reach all of them).
//!
//! `cargo bench -p decision-log --bench http`; `DLOG_BENCH_QUICK=1` runs
//! every figure at a tiny size (CI's smoke run). Figures go to stdout and
//! `target/benchmarks-http.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use decision_log::authority::SoleWriter;
use decision_log::{Intent, Log, Options};

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");

fn quick() -> bool {
    std::env::var_os("DLOG_BENCH_QUICK").is_some()
}

struct Serve {
    child: Child,
    base: String,
    endpoint: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(repo: &std::path::Path) -> Serve {
    let mut child = Command::new(DLOG)
        .arg("--repo")
        .arg(repo)
        .args(["serve", "team", "--ttl", "10s", "--http", "127.0.0.1:0"])
        .env_remove("DLOG_IDENTITY")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut base, mut endpoint) = (None, None);
    while base.is_none() || endpoint.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(300)).expect("serve did not start");
        if let Some(url) = line.split("http listening on ").nth(1) {
            base = Some(url.trim().to_owned());
        }
        if line.contains("dlog serve: serving team") {
            endpoint = line.rsplit(" on ").next().map(|s| s.trim().to_owned());
        }
    }
    Serve { child, base: base.unwrap(), endpoint: endpoint.unwrap() }
}

fn body(i: usize) -> String {
    format!(r#"{{"key":"k{i}","choice":"choice {i}","rationale":"because {i}"}}"#)
}

/// A repository whose `team` space holds `events` events over `keys` keys.
fn repo_with(events: usize, keys: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = Log::init(&dir.path().join("log.git"), true).unwrap();
    let options = Options::default().sole_writer(Arc::new(SoleWriter::new("bench", 1)));
    let log = Log::open(&path, options).unwrap();
    let space = log.space("team");
    for start in (0..events).step_by(1000) {
        let batch = (start..(start + 1000).min(events))
            .map(|i| Intent::new("bench", "decide", body(i % keys)))
            .collect();
        space.append_batch(batch).unwrap();
    }
    (dir, path)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(120))).build().into()
}

fn rss_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

fn fold_latency(out: &mut Vec<String>) {
    let (events, keys) = if quick() { (300, 30) } else { (100_000, 1_000) };
    let (_dir, path) = repo_with(events, keys);
    let server = serve(&path);
    let agent = agent();
    let url = format!("{}/v1/spaces/team", server.base);
    let mut bytes = 0;
    for _ in 0..3 {
        bytes = agent.get(&url).call().unwrap().body_mut().read_to_string().unwrap().len();
    }
    let runs = if quick() { 5 } else { 200 };
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            agent.get(&url).call().unwrap().body_mut().read_to_string().unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    out.push(format!(
        "| GET /v1/spaces/team (fold) at {events} events, {keys} keys in force ({:.0} KiB of JSON) | p50 {:.2} ms, p99 {:.2} ms |",
        bytes as f64 / 1024.0,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    ));
}

/// Appends per second with `clients` threads each appending `each` intents.
fn throughput(clients: usize, each: usize, append: Arc<dyn Fn(usize, usize) + Send + Sync>) -> f64 {
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let append = append.clone();
            std::thread::spawn(move || {
                for i in 0..each {
                    append(c, i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (clients * each) as f64 / start.elapsed().as_secs_f64()
}

fn append_throughput(out: &mut Vec<String>) {
    let (_dir, path) = repo_with(0, 1);
    let server = serve(&path);
    let total = if quick() { 64 } else { 1280 };
    for clients in [1, 16, 64] {
        let each = (total / clients).max(1);
        let base = server.base.clone();
        let tag = format!("h{clients}");
        let agent = agent();
        let http = throughput(
            clients,
            each,
            Arc::new(move |c, i| {
                let intent = format!(
                    r#"{{"id":"{tag}-{c}-{i}","actor":"bench","kind":"decide","body":{}}}"#,
                    body(c * 100_000 + i)
                );
                let r = agent
                    .post(format!("{base}/v1/spaces/team/events"))
                    .header("content-type", "application/json")
                    .send(intent.as_str())
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
            }),
        );
        let endpoint = server.endpoint.clone();
        let tag = format!("s{clients}");
        let socket = throughput(
            clients,
            each,
            Arc::new(move |c, i| {
                let intent =
                    Intent::new("bench", "decide", body(c * 100_000 + i)).with_id(format!("{tag}-{c}-{i}"));
                decision_log::wire::forward(&endpoint, "team", &[intent], false).unwrap().unwrap();
            }),
        );
        out.push(format!(
            "| POST append, {clients} concurrent client(s), {} appends | HTTP {http:.0}/s; socket {socket:.0}/s (HTTP / socket = {:.2}) |",
            clients * each,
            http / socket
        ));
    }
}

fn subscribers(out: &mut Vec<String>) {
    let (_dir, path) = repo_with(10, 10);
    let server = serve(&path);
    let pid = server.child.id();
    let before = rss_mib(pid, "VmRSS:");
    let count = if quick() { 20 } else { 1000 };
    let addr = server.base.trim_start_matches("http://").to_owned();
    let (tx, rx) = mpsc::channel::<Instant>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    for _ in 0..count {
        let (addr, tx, ready) = (addr.clone(), tx.clone(), ready_tx.clone());
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                write!(s, "GET /v1/spaces/team/events/stream HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n")
                    .unwrap();
                let mut reader = BufReader::new(s);
                let mut line = String::new();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                }
                ready.send(()).unwrap();
                let mut buf = [0u8; 4096];
                loop {
                    let n = reader.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    if buf[..n].windows(5).any(|w| w == b"data:") {
                        let _ = tx.send(Instant::now());
                        return;
                    }
                }
            })
            .unwrap();
    }
    for _ in 0..count {
        ready_rx.recv_timeout(Duration::from_secs(60)).expect("a subscriber never connected");
    }
    std::thread::sleep(Duration::from_millis(500));
    let held = rss_mib(pid, "VmRSS:");
    let sent = Instant::now();
    let intent = format!(r#"{{"actor":"bench","kind":"decide","body":{}}}"#, body(999_999));
    agent()
        .post(format!("{}/v1/spaces/team/events", server.base))
        .header("content-type", "application/json")
        .send(intent.as_str())
        .unwrap();
    let mut last = sent;
    for _ in 0..count {
        last = last.max(rx.recv_timeout(Duration::from_secs(60)).expect("a subscriber never got the event"));
    }
    out.push(format!(
        "| {count} event-stream subscribers held open | serve RSS {before:.0} MiB before, {held:.0} MiB with them ({:.1} KiB each); one append reached all in {:.0} ms (poll interval 200 ms) |",
        (held - before) * 1024.0 / count as f64,
        last.duration_since(sent).as_secs_f64() * 1000.0
    ));
}

fn main() {
    let mut out = vec!["| figure | measured |".to_owned(), "|---|---|".to_owned()];
    fold_latency(&mut out);
    append_throughput(&mut out);
    subscribers(&mut out);
    let table = out.join("\n");
    println!("{table}");
    let _ = std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/benchmarks-http.md"), &table);
}
