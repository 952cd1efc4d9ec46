//! `dlog serve --http`: a real serve process, spoken to over real HTTP
//! (ureq): every route, errors as problem+json, idempotency, conflicts,
//! forwarding to another holder, event streams fed by other processes,
//! tokens on a non-loopback bind, and the limits.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ureq::Agent;

use crate::cli::Repo;

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");
const READ: &str = "read-token-0123456789abcdef";
const WRITE: &str = "write-token-0123456789abcdef";

/// A running `dlog serve --http`, killed when dropped.
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `dlog serve SPACES --http ADDR` (plus `extra`) and wait until it
/// listens and holds its spaces.
fn serve(repo: &Repo, spaces: &[&str], addr: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(DLOG);
    command.arg("--repo").arg(&repo.path).arg("serve").args(spaces).args(["--ttl", "5s", "--http", addr]);
    command.args(extra).env_remove("DLOG_IDENTITY").env_remove("DLOG_HTTP_TOKENS");
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut base, mut serving) = (None, 0);
    while base.is_none() || serving < spaces.len() {
        let line = seen
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("serve never got ready");
        if let Some(url) = line.split("http listening on ").nth(1) {
            base = Some(url.trim().to_owned());
        }
        if line.contains("dlog serve: serving ") {
            serving += 1;
        }
    }
    let port = base.unwrap().rsplit(':').next().unwrap().to_owned();
    Server { child, base: format!("http://127.0.0.1:{port}") }
}

fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// One answer: status, content type, body.
struct Answer {
    status: u16,
    kind: String,
    headers: ureq::http::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    /// The body as a problem: checks the RFC 9457 members and the kind.
    fn problem(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.kind, "application/problem+json", "{}", self.text);
        let p = self.json();
        assert_eq!(p["status"], status);
        assert_eq!(p["kind"], kind, "{p}");
        assert_eq!(p["type"], format!("urn:decision-log:problem:{kind}"));
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        p
    }
}

fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let status = response.status().as_u16();
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let headers = response.headers().clone();
    let text = response.body_mut().read_to_string().unwrap();
    Answer { status, kind, headers, text }
}

fn get(base: &str, path: &str, token: Option<&str>) -> Answer {
    let mut request = agent().get(format!("{base}{path}"));
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    answer(request.call().unwrap())
}

fn post(base: &str, path: &str, body: &str, token: Option<&str>) -> Answer {
    let mut request = agent().post(format!("{base}{path}")).header("content-type", "application/json");
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    answer(request.send(body).unwrap())
}

fn intent(id: &str, key: &str, choice: &str) -> String {
    json!({"id": id, "actor": "web", "kind": "decide",
           "body": {"key": key, "choice": choice, "rationale": format!("because {choice}")}})
    .to_string()
}

#[test]
fn every_route_answers_as_documented_and_errors_are_problem_details() {
    let repo = Repo::new();
    repo.ok(&["append", "team", "--key", "db", "--choice", "pg", "--why", "known", "--id", "d1"]);
    repo.ok(&["append", "org", "--key", "db", "--choice", "mysql", "--why", "org-wide", "--id", "o1"]);
    let server = serve(&repo, &["team"], "127.0.0.1:0", &[], &[]);
    let base = &server.base;

    // Spaces, with heads and counts.
    let spaces = get(base, "/v1/spaces", None);
    assert_eq!(spaces.status, 200, "{}", spaces.text);
    let spaces = spaces.json();
    let team = spaces["spaces"].as_array().unwrap().iter().find(|s| s["space"] == "team").unwrap().clone();
    assert_eq!(team["events"], 2, "the seed and serve's authority event: {team}");
    assert_eq!(team["head"]["seq"], 2);

    // The fold is exactly `dlog fold --json`.
    let fold = get(base, "/v1/spaces/team", None);
    assert_eq!(fold.status, 200);
    assert_eq!(fold.json(), repo.json(&["fold", "team"]));
    assert_eq!(get(base, "/v1/spaces/team?at=1", None).json()["seq"], 1);
    assert_eq!(
        get(base, "/v1/overlay?spaces=team,org", None).json(),
        repo.json(&["fold", "--overlay", "team,org"])
    );
    assert_eq!(
        get(base, "/v1/union?spaces=team,org", None).json(),
        repo.json(&["fold", "--union", "team,org"])
    );

    // Append: 201, then the same id again: 200 with the original event.
    let first = post(base, "/v1/spaces/team/events", &intent("h1", "cache", "redis"), None);
    assert_eq!(first.status, 201, "{}", first.text);
    let event = first.json()["event"].clone();
    assert_eq!(event["seq"], 3);
    assert!(first.headers.get("location").is_some());
    let again = post(base, "/v1/spaces/team/events", &intent("h1", "cache", "redis"), None);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["created"], false);
    assert_eq!(again.json()["event"], event);
    // The same id with another intent is a conflict.
    post(base, "/v1/spaces/team/events", &intent("h1", "cache", "memcached"), None)
        .problem(409, "id-conflict");

    // expect_seq is honoured: a stale one is a conflict naming the head.
    let stale = json!({"actor": "web", "kind": "decide", "expect_seq": 1,
                       "body": {"key": "q", "choice": "c", "rationale": "r"}});
    let p = post(base, "/v1/spaces/team/events", &stale.to_string(), None).problem(409, "head-conflict");
    assert_eq!(p["head"]["seq"], 3, "{p}");
    let fresh = json!({"actor": "web", "kind": "decide", "expect_seq": 3,
                       "body": {"key": "q", "choice": "c", "rationale": "r"}});
    assert_eq!(post(base, "/v1/spaces/team/events", &fresh.to_string(), None).status, 201);
    // A stale supersedes names the decision in force.
    let wrong = json!({"actor": "web", "kind": "decide",
                       "body": {"key": "db", "choice": "x", "rationale": "r", "supersedes": "nope"}});
    let p = post(base, "/v1/spaces/team/events", &wrong.to_string(), None).problem(409, "decision-conflict");
    assert_eq!(p["in_force"], "d1");

    // Events, paged.
    let page = get(base, "/v1/spaces/team/events?from=2&limit=2", None).json();
    let seqs: Vec<u64> =
        page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(page["next"], 4);
    assert_eq!(page["events"][1]["commit"].as_str().unwrap().len(), 40);

    // One decision with its history.
    let shown = get(base, "/v1/spaces/team/decisions/db", None).json();
    assert_eq!(shown["decision"]["choice"], "pg");
    assert_eq!(shown["history"][0]["id"], "d1");
    get(base, "/v1/spaces/team/decisions/never", None).problem(404, "not-found");

    // Search, as `dlog find`: by key, text, status and time, across spaces.
    let found = get(base, "/v1/search?key=db&spaces=team", None).json();
    assert_eq!(found["total"], 1);
    assert_eq!(found["hits"][0]["space"], "team");
    assert_eq!(found["hits"][0]["status"], "accepted");
    let everywhere = get(base, "/v1/search?since=2000-01-01", None).json();
    assert!(everywhere["total"].as_u64().unwrap() >= 2, "{everywhere}");
    assert_eq!(get(base, "/v1/search?spaces=org&limit=1", None).json()["hits"].as_array().unwrap().len(), 1);
    assert_eq!(get(base, "/v1/search?q=no-such-words-anywhere", None).json()["total"], 0);
    get(base, "/v1/search?since=yesterday", None).problem(400, "invalid");
    get(base, "/v1/search?limit=0", None).problem(400, "invalid");
    get(base, "/v1/search?colour=red", None).problem(400, "invalid");

    // Bad input, each named.
    let p = post(base, "/v1/spaces/team/events", "{\"kind\":\"decide\"}", None).problem(400, "invalid");
    assert!(p["detail"].as_str().unwrap().contains("actor"), "{p}");
    let body = json!({"actor": "web", "kind": "decide", "body": {"key": "k"}}).to_string();
    post(base, "/v1/spaces/team/events", &body, None).problem(400, "invalid");
    post(base, "/v1/spaces/Bad%20Name/events", &intent("x", "k", "c"), None).problem(400, "invalid");
    let p = get(base, "/v1/spaces/team/events?limit=0", None).problem(400, "invalid");
    assert!(p["detail"].as_str().unwrap().contains("limit"), "{p}");
    let p = get(base, "/v1/spaces/team/events?frm=1", None).problem(400, "invalid");
    assert!(p["detail"].as_str().unwrap().contains("frm"), "{p}");
    get(base, "/v1/overlay", None).problem(400, "invalid");
    get(base, "/v1/nothing-here", None).problem(404, "not-found");
    let r = answer(agent().delete(format!("{base}/v1/spaces/team")).call().unwrap());
    r.problem(405, "method-not-allowed");
    let text = answer(
        agent()
            .post(format!("{base}/v1/spaces/team/events"))
            .header("content-type", "text/plain")
            .send("hi")
            .unwrap(),
    );
    text.problem(415, "unsupported-media-type");
    // More than 1 MiB of body: 413, answered from the declared length before
    // any of the body is read (sent by hand: a client still writing a body
    // the server has refused may see the connection close under it).
    let mut raw = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    write!(
        raw,
        "POST /v1/spaces/team/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        2 << 20
    )
    .unwrap();
    let mut status = String::new();
    BufReader::new(&raw).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    // The web pages render the same decisions.
    let page = get(base, "/", None);
    assert!(
        page.kind.starts_with("text/html") && page.text.contains("spaces/team/index.html"),
        "{}",
        page.text
    );
    let page = get(base, "/spaces/team/", None);
    assert!(page.text.contains("data-key=\"cache\"") && page.text.contains("<main"), "{}", page.text);
    let page = get(base, "/spaces/team/decisions/db.html", None);
    assert!(page.text.contains("id=\"timeline\""), "{}", page.text);
    assert!(get(base, "/assets/app.js", None).kind.starts_with("text/javascript"));
}

#[test]
fn the_openapi_document_parses_and_covers_every_route() {
    let repo = Repo::new();
    let server = serve(&repo, &["team"], "127.0.0.1:0", &[], &[]);
    let doc = get(&server.base, "/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let routes = [
        ("get", "/v1/spaces"),
        ("get", "/v1/spaces/{space}"),
        ("get", "/v1/overlay"),
        ("get", "/v1/union"),
        ("get", "/v1/spaces/{space}/events"),
        ("post", "/v1/spaces/{space}/events"),
        ("get", "/v1/spaces/{space}/events/stream"),
        ("get", "/v1/spaces/{space}/decisions/{key}"),
        ("get", "/v1/search"),
        ("get", "/v1/openapi.json"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in routes {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not documented");
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, routes.len(), "a route is documented but not tested here: {paths:?}");
    // Every documented route is served: none answers "nothing is served here".
    for (method, path) in routes {
        let path = path.replace("{space}", "team").replace("{key}", "k");
        if method == "get" && !path.ends_with("/stream") {
            let r = get(&server.base, &path, None);
            assert!(
                r.status != 404 || r.json()["detail"].as_str().unwrap().contains("never decided"),
                "{path}: {}",
                r.text
            );
        }
    }
}

#[test]
fn an_append_to_a_space_held_by_another_serve_is_forwarded_to_it() {
    let repo = Repo::new();
    let _holder = {
        // A plain serve (no HTTP) holds `other`.
        let child = Command::new(DLOG)
            .arg("--repo")
            .arg(&repo.path)
            .args(["serve", "other", "--ttl", "5s"])
            .env_remove("DLOG_IDENTITY")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while repo.json(&["lease", "status", "other"])["lease"]["endpoint"].as_str().is_none() {
            assert!(Instant::now() < deadline, "the holder never took its space");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, base: String::new() }
    };
    let server = serve(&repo, &["team"], "127.0.0.1:0", &[], &[]);
    let holder = repo.json(&["lease", "status", "other"])["lease"]["holder"].as_str().unwrap().to_owned();
    let r = post(&server.base, "/v1/spaces/other/events", &intent("f1", "k", "v"), None);
    assert_eq!(r.status, 201, "{}", r.text);
    // The holder wrote it: the event carries the holder's epoch, after its fence.
    let events = repo.json(&["events", "other", "--limit", "1"]);
    assert_eq!(events["kind"], "authority");
    assert_eq!(events["body"]["holder"], holder);
    assert_eq!(r.json()["event"]["epoch"], events["epoch"]);
    // A space nobody holds is appended by a one-shot writer.
    assert_eq!(post(&server.base, "/v1/spaces/free/events", &intent("f2", "k", "v"), None).status, 201);
    assert_eq!(repo.json(&["fold", "free"])["decisions"]["k"]["choice"], "v");
}

/// Read Server-Sent Events from `url` on a thread; each event's (id, data).
fn subscribe(url: String, last_event_id: Option<&str>) -> mpsc::Receiver<(String, Value)> {
    let (tx, rx) = mpsc::channel();
    let last = last_event_id.map(str::to_owned);
    std::thread::spawn(move || {
        let agent: Agent = Agent::config_builder().http_status_as_error(false).build().into();
        let mut request = agent.get(&url).header("accept", "text/event-stream");
        if let Some(id) = last {
            request = request.header("last-event-id", id);
        }
        let response = request.call().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let reader = BufReader::new(response.into_body().into_reader());
        let (mut id, mut data) = (String::new(), String::new());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                let event = serde_json::from_str(&data).unwrap();
                if tx.send((std::mem::take(&mut id), event)).is_err() {
                    return;
                }
                data.clear();
            }
        }
    });
    rx
}

#[test]
fn the_event_stream_delivers_appends_from_other_processes_and_resumes_from_last_event_id() {
    let repo = Repo::new();
    let server = serve(&repo, &["team"], "127.0.0.1:0", &[], &[]);
    let url = format!("{}/v1/spaces/team/events/stream", server.base);
    let events = subscribe(url.clone(), None);
    std::thread::sleep(Duration::from_millis(300));
    // Another process appends (forwarded to the serve, which holds the space).
    repo.ok(&["append", "team", "--key", "db", "--choice", "pg", "--why", "w", "--id", "s1"]);
    let (id, event) = events.recv_timeout(Duration::from_secs(20)).expect("no event arrived");
    assert_eq!(event["id"], "s1");
    assert_eq!(id, event["seq"].to_string());
    repo.ok(&["append", "team", "--key", "db2", "--choice", "x", "--why", "w", "--id", "s2"]);
    let (_, second) = events.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(second["id"], "s2");

    // A reconnect with Last-Event-ID gets exactly what came after it.
    let resumed = subscribe(url.clone(), Some(&id));
    let (_, replayed) = resumed.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(replayed["id"], "s2");
    // And it goes on live, with appends made while nobody is serving HTTP for the space either.
    repo.ok(&["append", "team", "--key", "db3", "--choice", "y", "--why", "w", "--id", "s3"]);
    assert_eq!(resumed.recv_timeout(Duration::from_secs(20)).unwrap().1["id"], "s3");
    assert_eq!(events.recv_timeout(Duration::from_secs(20)).unwrap().1["id"], "s3");
    let p = get(&server.base, "/v1/spaces/team/events/stream?from=x", None);
    p.problem(400, "invalid");
}

#[test]
fn a_non_loopback_bind_needs_tokens_and_read_tokens_cannot_append() {
    let repo = Repo::new();
    // Without tokens it refuses to start, saying why.
    let out = Command::new(DLOG)
        .arg("--repo")
        .arg(&repo.path)
        .args(["serve", "team", "--http", "0.0.0.0:0"])
        .env_remove("DLOG_HTTP_TOKENS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));

    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("# who may call\nread:{READ}\nwrite:{WRITE}\n")).unwrap();
    let server = serve(&repo, &["team"], "0.0.0.0:0", &["--http-tokens", tokens.to_str().unwrap()], &[]);
    let base = &server.base;
    let p = get(base, "/v1/spaces", None).problem(401, "unauthorized");
    assert!(p["detail"].as_str().unwrap().contains("token"));
    get(base, "/v1/spaces", Some("wrong-token-0123456789")).problem(401, "unauthorized");
    get(base, "/", None).problem(401, "unauthorized");
    assert_eq!(get(base, "/v1/spaces", Some(READ)).status, 200);
    post(base, "/v1/spaces/team/events", &intent("t1", "k", "v"), Some(READ)).problem(403, "forbidden");
    assert_eq!(post(base, "/v1/spaces/team/events", &intent("t1", "k", "v"), Some(WRITE)).status, 201);
    // HTTP Basic with the token as password, as a browser sends it.
    let basic = answer(
        agent()
            .get(format!("{base}/v1/spaces/team"))
            .header("authorization", "Basic dXNlcjpyZWFkLXRva2VuLTAxMjM0NTY3ODlhYmNkZWY=")
            .call()
            .unwrap(),
    );
    assert_eq!(basic.status, 200, "{}", basic.text);

    // Tokens from the environment work the same; a bad entry stops serve naming it.
    let out = Command::new(DLOG)
        .arg("--repo")
        .arg(&repo.path)
        .args(["serve", "team", "--http", "0.0.0.0:0"])
        .env("DLOG_HTTP_TOKENS", "admin:whatever-long-enough-123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DLOG_HTTP_TOKENS, line 1"));
}

#[test]
fn sixty_four_clients_appending_at_once_all_land_once_each() {
    let repo = Repo::new();
    let server = serve(&repo, &["team"], "127.0.0.1:0", &[], &[]);
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let base = server.base.clone();
            std::thread::spawn(move || {
                for j in 0..4 {
                    let r = post(
                        &base,
                        "/v1/spaces/team/events",
                        &intent(&format!("c{i}-{j}"), &format!("k{i}"), "v"),
                        None,
                    );
                    assert!(r.status == 201, "{}", r.text);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let fold = get(&server.base, "/v1/spaces/team", None).json();
    assert_eq!(fold["seq"], 1 + 64 * 4);
    let mut body = String::new();
    let mut r = agent().get(format!("{}/v1/spaces/team/events?limit=1000", server.base)).call().unwrap();
    r.body_mut().as_reader().read_to_string(&mut body).unwrap();
    let events: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(events["events"].as_array().unwrap().len(), 1 + 64 * 4);
}

#[test]
fn dlog_site_writes_static_pages_with_relative_links() {
    let repo = Repo::new();
    repo.ok(&["append", "team", "--key", "db", "--choice", "pg", "--why", "known", "--id", "d1"]);
    repo.ok(&[
        "append",
        "team",
        "--key",
        "db",
        "--choice",
        "sqlite",
        "--why",
        "smaller",
        "--supersedes",
        "d1",
    ]);
    repo.ok(&["append", "team", "--key", "a/b c", "--choice", "x", "--why", "odd key"]);
    let out = tempfile::tempdir().unwrap();
    let report = repo.json(&["site", "team", "--out", out.path().to_str().unwrap()]);
    assert_eq!(report["decisions"], 2);
    let index = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(index.contains("href=\"spaces/team/index.html\""));
    assert!(!index.contains("href=\"/"), "every link is relative");
    let space = std::fs::read_to_string(out.path().join("spaces/team/index.html")).unwrap();
    assert!(space.contains("href=\"decisions/a~2Fb~20c.html\""), "{space}");
    assert!(space.contains("data-live=\"false\""));
    let history = std::fs::read_to_string(out.path().join("spaces/team/decisions/db.html")).unwrap();
    assert!(history.contains("Supersedes <a href=\"#ev-1\">"), "{history}");
    assert!(out.path().join("assets/app.css").exists());
    let missing = repo.run(&["site", "nothing", "--out", out.path().to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(4));
}

#[test]
fn https_serves_with_the_certificate_given_and_a_bad_one_stops_serve() {
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed to make a test certificate");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let tls = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let server = serve(&repo, &["team"], "127.0.0.1:0", &tls, &[]);
    let url = server.base.replace("http://", "https://") + "/v1/spaces";
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert", cert.to_str().unwrap(), &url])
        .output()
        .expect("curl is needed to speak TLS to serve");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spaces: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spaces["spaces"][0]["space"], "team");
    // Plain HTTP on the TLS port gets nowhere.
    assert!(agent().get(&server.base).call().is_err());

    std::fs::write(&cert, "not a certificate").unwrap();
    let out = Command::new(DLOG)
        .arg("--repo")
        .arg(&repo.path)
        .args(["serve", "team", "--http", "127.0.0.1:0"])
        .args(tls)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tls-cert"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_fold_larger_than_a_piece_is_streamed_and_is_the_bytes_dlog_fold_json_prints() {
    let repo = Repo::new();
    // 1,500 records of ~1 KB: the body takes two pieces.
    let why = "a long reason ".repeat(70);
    let lines: Vec<String> = (0..1500)
        .map(|i| {
            json!({"id": format!("d{i}"), "actor": "web", "kind": "decide",
                   "body": {"key": format!("k{i:04}"), "choice": "x", "rationale": why}})
            .to_string()
        })
        .collect();
    let file = repo.path.with_file_name("intents.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    repo.ok(&["append", "team", "--intent", file.to_str().unwrap()]);
    repo.ok(&["checkpoint", "team"]);
    let server = serve(&repo, &["team"], "127.0.0.1:0", &[], &[]);
    let fold = get(&server.base, "/v1/spaces/team", None);
    assert_eq!((fold.status, fold.kind.as_str()), (200, "application/json"));
    assert!(fold.text.len() > 1 << 20, "{} bytes", fold.text.len());
    let printed = repo.ok(&["--json", "fold", "team"]);
    assert!(fold.text == printed.trim_end(), "the body differs from `dlog fold --json`");
    assert_eq!(fold.json()["decisions"].as_object().map(|d| d.len()), Some(1500));
}
