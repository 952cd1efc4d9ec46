//! Real git servers on loopback for the remote tests: `git daemon
//! --enable=receive-pack`, and smart HTTP (`git http-backend` run as a CGI
//! per request by a small server here), each over one bare repository; and a
//! TCP relay that can cut one "machine" off. Every process and thread started
//! here is stopped when its guard is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The kinds of server every remote scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Daemon,
    Http,
}

pub const KINDS: [Kind; 2] = [Kind::Daemon, Kind::Http];

/// A bare repository served on a loopback port; stoppable and restartable
/// on the same port.
pub struct Server {
    pub kind: Kind,
    _dir: tempfile::TempDir,
    /// The served bare repository.
    pub repo: PathBuf,
    root: PathBuf,
    port: u16,
    running: Option<Running>,
    /// While set, the HTTP server holds every push request unanswered, and
    /// then drops it unapplied: a push whose answer never comes.
    stall_pushes: Arc<AtomicBool>,
}

enum Running {
    Daemon(Child),
    Http(Arc<AtomicBool>, JoinHandle<()>),
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn git(args: &[&str]) {
    let out = Command::new("git").args(args).output().expect("git is required for the remote tests");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Wait until `port` accepts connections; `daemon` is the process that
/// should be listening, if one is (a daemon that exited, e.g. because the
/// port was taken, fails at once rather than after the deadline).
fn wait_listening(port: u16, mut daemon: Option<&mut Child>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(child) = daemon.as_deref_mut() {
            let exited = child.try_wait().unwrap();
            assert!(exited.is_none(), "git daemon exited before it listened on port {port}: {exited:?}");
        }
        assert!(Instant::now() < deadline, "the git server never listened on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Server {
    pub fn start(kind: Kind) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let repo = root.join("log.git");
        git(&["init", "-q", "--bare", repo.to_str().unwrap()]);
        git(&["--git-dir", repo.to_str().unwrap(), "config", "http.receivepack", "true"]);
        let mut server = Server {
            kind,
            _dir: dir,
            repo,
            root,
            port: free_port(),
            running: None,
            stall_pushes: Arc::new(AtomicBool::new(false)),
        };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        match self.kind {
            Kind::Daemon => format!("git://127.0.0.1:{}/log.git", self.port),
            Kind::Http => format!("http://127.0.0.1:{}/log.git", self.port),
        }
    }

    /// The URL through a relay on `port` instead of the server's own.
    pub fn url_via(&self, port: u16) -> String {
        self.url().replace(&format!(":{}/", self.port), &format!(":{port}/"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Hold every push unanswered (smart HTTP only), until called with
    /// false: each held push is then dropped, never applied.
    pub fn stall_pushes(&self, stall: bool) {
        assert_eq!(self.kind, Kind::Http, "only the HTTP server can stall pushes");
        self.stall_pushes.store(stall, Ordering::SeqCst);
    }

    /// Stop serving (the port refuses connections).
    pub fn stop(&mut self) {
        match self.running.take() {
            Some(Running::Daemon(mut child)) => {
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
                let _ = child.wait();
            }
            Some(Running::Http(stop, thread)) => {
                stop.store(true, Ordering::SeqCst);
                let _ = TcpStream::connect(("127.0.0.1", self.port));
                let _ = thread.join();
            }
            None => {}
        }
    }

    /// Serve again, on the same port.
    pub fn resume(&mut self) {
        assert!(self.running.is_none());
        let mut running = match self.kind {
            Kind::Daemon => {
                let child = Command::new("git")
                    .args([
                        "daemon",
                        "--reuseaddr",
                        "--listen=127.0.0.1",
                        "--export-all",
                        "--enable=receive-pack",
                    ])
                    .arg(format!("--port={}", self.port))
                    .arg(format!("--base-path={}", self.root.display()))
                    .arg(&self.root)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .expect("git daemon is required for the remote tests");
                Running::Daemon(child)
            }
            Kind::Http => {
                // The port was just released by the previous server (or
                // taken by `free_port`'s probe): it frees within moments, or
                // something else took it and the test cannot go on.
                let deadline = Instant::now() + Duration::from_secs(20);
                let listener = loop {
                    match TcpListener::bind(("127.0.0.1", self.port)) {
                        Ok(l) => break l,
                        Err(e) => {
                            assert!(
                                Instant::now() < deadline,
                                "cannot listen on port {} again: {e}",
                                self.port
                            );
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                };
                let stop = Arc::new(AtomicBool::new(false));
                let (flag, root, stall) = (stop.clone(), self.root.clone(), self.stall_pushes.clone());
                let thread = std::thread::spawn(move || {
                    for stream in listener.incoming() {
                        if flag.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Ok(stream) = stream {
                            let (root, stall) = (root.clone(), stall.clone());
                            std::thread::spawn(move || {
                                let _ = cgi(stream, &root, &stall);
                            });
                        }
                    }
                });
                Running::Http(stop, thread)
            }
        };
        match &mut running {
            Running::Daemon(child) => wait_listening(self.port, Some(child)),
            Running::Http(..) => wait_listening(self.port, None),
        }
        self.running = Some(running);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Answer one HTTP/1.1 request by running `git http-backend` as a CGI.
fn cgi(stream: TcpStream, root: &Path, stall_pushes: &AtomicBool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("GET").to_owned(), parts.next().unwrap_or("/").to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end().to_owned();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if stall_pushes.load(Ordering::SeqCst) && target.contains("git-receive-pack") {
        // Held, then dropped unapplied: the client never learns an outcome.
        let deadline = Instant::now() + Duration::from_secs(120);
        while stall_pushes.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        return Ok(());
    }
    let mut command = Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, var) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(v) = header(name) {
            command.env(var, v);
        }
    }
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let mut out = Vec::new();
    child.stdout.take().expect("piped").read_to_end(&mut out)?;
    let _ = writer.join();
    child.wait()?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, rest) = match split {
        Some((i, n)) => (String::from_utf8_lossy(&out[..i]).into_owned(), &out[i + n..]),
        None => (String::new(), &out[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut response = Vec::new();
    let mut lines = Vec::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            _ => lines.push(h.to_owned()),
        }
    }
    response.extend_from_slice(format!("HTTP/1.1 {status}\r\nConnection: close\r\n").as_bytes());
    for h in lines {
        response.extend_from_slice(format!("{h}\r\n").as_bytes());
    }
    response.extend_from_slice(format!("Content-Length: {}\r\n\r\n", rest.len()).as_bytes());
    response.extend_from_slice(rest);
    let mut stream = stream;
    stream.write_all(&response)?;
    stream.shutdown(Shutdown::Both)
}

/// A TCP relay to a port, which can cut every connection (a partition).
pub struct Relay {
    pub port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn to(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (c, s) = (cut.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    // Cut off: the connection is dropped at once.
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Relay { port, cut, stop, thread: Some(thread) }
    }

    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
