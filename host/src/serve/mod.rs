//! `dlog serve`: hold the leases of some spaces, keep them renewed, fence
//! each grant with an `authority` event, and append the intents other
//! processes forward (protocol: [`crate::wire`]).
//!
//! The endpoint is a Unix socket in `<git-dir>/dlog/run/` (a directory only
//! the owner can enter; the socket is 0600) or, when asked, a loopback TCP
//! address. Nothing listens beyond this machine.

mod coalesce;
mod connection;

use coalesce::Coalescer;
use connection::Shared;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::error::Error;
use crate::log::Log;
use crate::route::Routing;
use crate::types::Intent;
use crate::wire;

/// Where `serve` reports what it does (grants, losses, stopping): one line
/// each, without a timestamp. The CLI prints them on stderr with the time.
pub type Reporter = Arc<dyn Fn(&str) + Send + Sync>;

/// Where `serve` listens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listen {
    /// A Unix socket at this path (default: in `<git-dir>/dlog/run/`).
    Unix(Option<PathBuf>),
    /// A loopback TCP address (port 0: any free port).
    Tcp(SocketAddr),
}

/// What `serve` was asked to do.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The spaces to hold.
    pub spaces: Vec<String>,
    /// Lease time-to-live; renewed every third of it.
    pub ttl: Duration,
    /// Where to listen.
    pub listen: Listen,
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

/// How often the serving threads look at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(20);

fn bind(log: &Log, listen: &Listen) -> Result<(Listener, String), Error> {
    let io = |what: String, e: std::io::Error| Error::Storage(format!("{what}: {e}"));
    match listen {
        Listen::Tcp(addr) => {
            if !addr.ip().is_loopback() {
                return Err(Error::Invalid(format!(
                    "--listen {addr}: serve listens on loopback addresses only"
                )));
            }
            let listener = TcpListener::bind(addr).map_err(|e| io(format!("cannot listen on {addr}"), e))?;
            let local = listener.local_addr().map_err(|e| io("no local address".into(), e))?;
            Ok((Listener::Tcp(listener), format!("tcp:{local}")))
        }
        Listen::Unix(path) => {
            let path = match path {
                Some(p) => p.clone(),
                None => {
                    let dir = log
                        .git_dir()
                        .ok_or_else(|| Error::Invalid("serve needs a git repository".into()))?
                        .join("dlog/run");
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| io(format!("cannot create {}", dir.display()), e))?;
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| io(format!("cannot restrict {}", dir.display()), e))?;
                    dir.join(format!("serve-{}.sock", std::process::id()))
                }
            };
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path)
                .map_err(|e| io(format!("cannot listen on {}", path.display()), e))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io(format!("cannot restrict {}", path.display()), e))?;
            let endpoint = format!("unix:{}", path.display());
            Ok((Listener::Unix(listener, path), endpoint))
        }
    }
}

/// Acquire (or renew) every configured space; fence each new grant.
fn maintain(
    log: &Log,
    routing: &Routing,
    config: &ServeConfig,
    endpoint: &str,
    held: &Mutex<BTreeMap<String, u64>>,
    say: &Reporter,
) {
    for space in &config.spaces {
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        let handle = log.space(space);
        if let Some(&epoch) = held.get(space) {
            match routing.leases.renew(space, &routing.identity, config.ttl) {
                Ok(_) => continue,
                Err(e) => {
                    say(&format!("lost the lease on {space} (epoch {epoch}): {e}"));
                    held.remove(space);
                }
            }
        }
        let log_epoch = match handle.head() {
            Ok(head) => head.map_or(0, |h| h.epoch),
            Err(e) => {
                say(&format!("cannot read the head of {space}: {e}"));
                continue;
            }
        };
        match routing.leases.acquire(
            space,
            &routing.identity,
            config.ttl,
            Some(endpoint.to_owned()),
            log_epoch,
        ) {
            Ok(lease) => {
                let body = json!({"holder": routing.identity, "epoch": lease.epoch}).to_string();
                let fence = Intent::new(routing.identity.clone(), "authority", body)
                    .with_id(format!("authority-{}", lease.epoch));
                match handle.append_here(&[fence], false) {
                    Ok(appended) => {
                        let seq = appended.first().map_or(0, |a| a.event.seq);
                        say(&format!(
                            "serving {space} at epoch {} (fenced at seq {seq}) on {endpoint}",
                            lease.epoch
                        ));
                        held.insert(space.clone(), lease.epoch);
                    }
                    Err(e) => {
                        say(&format!("could not fence {space} at epoch {}: {e}; releasing it", lease.epoch));
                        let _ = routing.leases.release(space, &routing.identity);
                    }
                }
            }
            Err(Error::NotHolder { holder: Some(other), .. }) => {
                if held.is_empty() {
                    let left = other.expires_at_ms.saturating_sub(routing.leases.now_ms());
                    say(&format!(
                        "waiting for {space}: held by {} (epoch {}) for up to {left} ms more",
                        other.holder, other.epoch
                    ));
                }
            }
            Err(e) => say(&format!("cannot acquire {space}: {e}")),
        }
    }
}

/// How another front end of a running `serve` (HTTP) appends: through the
/// same group commit as the socket for the spaces it holds, and by the lease
/// protocol (forward to the holder, or a one-shot writer) for the others.
#[derive(Clone)]
pub struct Appender {
    log: Log,
    coalescer: Coalescer,
    held: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").finish_non_exhaustive()
    }
}

/// How an [`Appender`] answers: at once, or later from the committing thread.
#[derive(Debug)]
pub enum Appending {
    /// The space is held here: the answer comes to the callback given.
    Queued,
    /// The space is held elsewhere or by nobody: append by the lease
    /// protocol (blocking; call it off any async executor).
    Route(crate::Space),
}

impl Appender {
    /// The log this serve appends to.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Whether this serve holds `space` now.
    pub fn holds(&self, space: &str) -> bool {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).contains_key(space)
    }

    /// Append one intent (it must carry its id). For a held space it joins
    /// the group commit and `reply` gets the answer; otherwise the caller
    /// is handed the space to append to by the lease protocol.
    pub fn append(
        &self,
        space: &str,
        intent: Intent,
        reply: Box<dyn FnOnce(Result<crate::Appended, Error>) + Send>,
    ) -> Appending {
        if !self.holds(space) {
            return Appending::Route(self.log.space(space));
        }
        let space_name = space.to_owned();
        self.coalescer.submit(
            space,
            vec![intent],
            false,
            Box::new(move |result| {
                let one = result.and_then(|mut all| {
                    all.pop()
                        .ok_or_else(|| Error::Guest(format!("an append to {space_name} returned no event")))
                });
                reply(one);
            }),
        );
        Appending::Queued
    }
}

/// A front end started beside the socket once it listens (e.g. HTTP).
pub type Front = Box<dyn FnOnce(Appender) -> Result<(), Error> + Send>;

/// Serve until `stop` is set (the CLI sets it on SIGTERM or SIGINT); then
/// release every lease and remove the socket.
pub fn serve(log: &Log, config: ServeConfig, stop: Arc<AtomicBool>, say: Reporter) -> Result<(), Error> {
    serve_with(log, config, stop, say, None)
}

/// [`serve`], with another front end started once the socket listens and
/// before the leases are taken; if it fails to start, serve stops.
pub fn serve_with(
    log: &Log,
    config: ServeConfig,
    stop: Arc<AtomicBool>,
    say: Reporter,
    front: Option<Front>,
) -> Result<(), Error> {
    let routing =
        log.routing().cloned().ok_or_else(|| Error::Invalid("serve needs the lease protocol".into()))?;
    if config.spaces.is_empty() {
        return Err(Error::Invalid("name the spaces to serve".into()));
    }
    for space in &config.spaces {
        crate::lease::check_space(space)?;
    }
    let (listener, endpoint) = bind(log, &config.listen)?;
    say(&format!("{} listening on {endpoint}", routing.identity));
    let held = Arc::new(Mutex::new(BTreeMap::new()));
    let coalescer = Coalescer::start(log.clone());
    let holder_for_accept = routing.identity.clone();
    if let Some(front) = front {
        let appender = Appender { log: log.clone(), coalescer: coalescer.clone(), held: held.clone() };
        if let Err(e) = front(appender) {
            if let Listener::Unix(_, path) = &listener {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    }
    maintain(log, &routing, &config, &endpoint, &held, &say);

    let maintainer = {
        let (log, routing, config, endpoint, held, stop, say) = (
            log.clone(),
            routing.clone(),
            config.clone(),
            endpoint.clone(),
            held.clone(),
            stop.clone(),
            say.clone(),
        );
        std::thread::spawn(move || {
            let period = (config.ttl / 3).max(Duration::from_millis(10));
            // Sleep in short steps so a stop is seen at once, not a third of
            // a TTL later.
            let mut next = std::time::Instant::now() + period;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(STOP_CHECK.min(next.saturating_duration_since(std::time::Instant::now())));
                if std::time::Instant::now() >= next {
                    maintain(&log, &routing, &config, &endpoint, &held, &say);
                    next = std::time::Instant::now() + period;
                }
            }
        })
    };

    let socket = match &listener {
        Listener::Unix(_, path) => Some(path.clone()),
        Listener::Tcp(_) => None,
    };
    // Accepting blocks in its own thread (no polling latency on the append
    // path); it ends with the process. Each client gets a thread, and
    // `connection` bounds what a client can hold: time, bytes, connections.
    let accept_say = say.clone();
    let shared = Shared {
        log: log.clone(),
        coalescer,
        holder: holder_for_accept,
        buffered: Default::default(),
        connections: Default::default(),
    };
    std::thread::spawn(move || {
        loop {
            let stream: std::io::Result<Box<dyn wire::ReadWrite>> = match &listener {
                Listener::Unix(l, _) => l.accept().and_then(|(s, _)| {
                    s.set_read_timeout(Some(connection::IDLE))?;
                    s.set_write_timeout(Some(connection::IDLE))?;
                    Ok(Box::new(s) as Box<dyn wire::ReadWrite>)
                }),
                Listener::Tcp(l) => l.accept().and_then(|(s, _)| {
                    s.set_nodelay(true)?;
                    s.set_read_timeout(Some(connection::IDLE))?;
                    s.set_write_timeout(Some(connection::IDLE))?;
                    Ok(Box::new(s) as Box<dyn wire::ReadWrite>)
                }),
            };
            match stream {
                Ok(stream) => match connection::admit(&shared) {
                    Some(counted) => {
                        let shared = shared.clone();
                        let spawned = std::thread::Builder::new().spawn(move || {
                            connection::handle(&shared, stream);
                            drop(counted);
                        });
                        if let Err(e) = spawned {
                            accept_say(&format!("cannot start a thread for a client: {e}"));
                        }
                    }
                    None => connection::refuse(stream),
                },
                Err(e) => accept_say(&format!("accept failed: {e}")),
            }
        }
    });
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(STOP_CHECK);
    }

    say("stopping: releasing leases");
    let _ = maintainer.join();
    let held = std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner()));
    for space in held.keys() {
        match routing.leases.release(space, &routing.identity) {
            Ok(_) => say(&format!("released {space}")),
            Err(e) => say(&format!("could not release {space}: {e}")),
        }
    }
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
    say("stopped");
    Ok(())
}
