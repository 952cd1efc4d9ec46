//! `serve` under abuse: many clients at once, and clients that connect and
//! say nothing, stop halfway, hang up, or send a line far too long. It stays
//! up, answers the others, keeps its memory bounded, and never writes a
//! partial event.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use decision_log::Intent;

use crate::cli::Repo;

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `serve` on `team` and return it with its socket's path.
fn serve(repo: &Repo) -> (Serve, String) {
    let child = Command::new(DLOG)
        .arg("--repo")
        .arg(&repo.path)
        .args(["serve", "team", "--ttl", "5s"])
        .env_remove("DLOG_IDENTITY")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serve = Serve(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lease = repo.json(&["lease", "status", "team"]);
        if let Some(endpoint) = lease["lease"]["endpoint"].as_str() {
            return (serve, endpoint.to_owned());
        }
        assert!(Instant::now() < deadline, "serve never took the space");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Peak resident memory of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

#[test]
fn serve_answers_two_hundred_clients_at_once_while_others_stall_stop_halfway_or_flood_it() {
    let repo = Repo::new();
    let (serve, endpoint) = serve(&repo);
    let socket = endpoint.trim_start_matches("unix:").to_owned();

    // Clients that connect and say nothing, or stop halfway and stay.
    let mut stalled: Vec<UnixStream> = (0..20).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    for _ in 0..10 {
        let mut half = UnixStream::connect(&socket).unwrap();
        half.write_all(br#"{"op":"append","space":"team","intents":[{"id":"half","#).unwrap();
        stalled.push(half);
    }
    // Clients that stop halfway and hang up.
    for _ in 0..5 {
        let mut gone = UnixStream::connect(&socket).unwrap();
        gone.write_all(br#"{"op":"append","space":"team","intents":[{"id":"gone","actor":"a","#).unwrap();
    }
    // A client that sends a 100 MB line.
    let flood_socket = socket.clone();
    let flood = std::thread::spawn(move || {
        let mut stream = UnixStream::connect(&flood_socket).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        let mut sent = 0;
        for _ in 0..100 {
            if stream.write_all(&chunk).is_err() {
                break; // refused and closed: the server stopped reading
            }
            sent += chunk.len();
        }
        let _ = stream.write_all(b"\n");
        let mut answer = String::new();
        let _ = BufReader::new(stream).read_line(&mut answer);
        (sent, answer)
    });

    // Meanwhile, 200 clients at once, each with one intent.
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let endpoint = endpoint.clone();
            std::thread::spawn(move || {
                let body = format!(r#"{{"key":"k{}","choice":"c{i}","rationale":"r"}}"#, i % 13);
                let intent = Intent::new("client", "decide", body).with_id(format!("c{i}"));
                decision_log::wire::forward(&endpoint, "team", &[intent], false)
            })
        })
        .collect();
    for client in clients {
        let answer = client.join().unwrap().expect("the holder answered");
        let appended = answer.expect("the append succeeded");
        assert!(appended[0].created);
    }

    let (sent, answer) = flood.join().unwrap();
    assert!(
        sent < 100 << 20 || answer.contains("longer than"),
        "the flood was refused: sent {sent}, {answer}"
    );
    let peak = peak_rss_mib(serve.0.id());
    eprintln!("serve peak RSS after 200 clients, 35 stalled and a 100 MB line: {peak} MiB");
    assert!(peak < 256, "serve's memory stayed bounded: peak {peak} MiB");

    // Still answering, and the log holds exactly the fence and the 200.
    let late =
        Intent::new("client", "decide", r#"{"key":"late","choice":"c","rationale":"r"}"#).with_id("late");
    assert!(decision_log::wire::forward(&endpoint, "team", &[late], false).unwrap().is_ok());
    let events = repo.ok(&["--json", "events", "team"]);
    let ids: Vec<String> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 202, "the fence, the 200 and the late one");
    assert!(!ids.iter().any(|id| id == "half" || id == "gone"), "no partial request was ever acted on");
    repo.ok(&["verify"]);

    // A bad request gets an answer naming what was wrong, on the same socket.
    let mut bad = UnixStream::connect(&socket).unwrap();
    bad.write_all(b"{\"op\":\"append\",\"space\":\"team\"}\n").unwrap();
    let mut answer = String::new();
    BufReader::new(&bad).read_line(&mut answer).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["error"]["kind"], "invalid", "{answer}");
    drop(stalled);
}
