//! `dlog serve --http ADDR`: a JSON API under `/v1` and a web page at `/`,
//! served beside `serve`'s socket by the same process.
//!
//! One small tokio runtime runs hyper (HTTP/1.1, optionally over rustls) and
//! an axum router. Calls into the guest block, so they run on the runtime's
//! blocking pool; appends to a space this serve holds join the socket's group
//! commit (`serve::Appender`) and wait for it without holding a thread.
//!
//! Safe by default: a loopback bind needs nothing; any other bind refuses to
//! start without tokens ([`auth`]). Bodies are capped, slow clients time out,
//! and requests in flight, connections and event streams are each bounded
//! ([`Limits`]) so no client can starve the others.

pub mod auth;
mod openapi;
mod pages;
mod problem;
mod routes;
mod sse;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::log::Log;
use crate::serve::{Appender, Reporter};

pub use auth::{Access, Tokens};

/// What `--http` was asked to do.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// Who may call; empty: nobody needs a token (loopback binds only).
    pub tokens: Tokens,
    /// A certificate chain and its private key (PEM files) to speak HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bounds on what clients can hold.
    pub limits: Limits,
}

/// Bounds on what HTTP clients can hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest request body; a larger one is answered 413.
    pub body_bytes: usize,
    /// How long a request (reading its body included) may take; a stream of
    /// events is not bounded.
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers (and a TLS
    /// handshake), or stay idle between requests.
    pub header_timeout: Duration,
    /// Connections open at once; one more is told the server is busy.
    pub max_connections: usize,
    /// Requests being answered at once (event streams not counted).
    pub max_in_flight: usize,
    /// Event streams open at once.
    pub max_streams: usize,
    /// How often a stream's space is checked for events other processes appended.
    pub poll: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_in_flight: 256,
            max_streams: 2048,
            poll: Duration::from_millis(200),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) appender: Appender,
    pub(crate) log: Log,
    pub(crate) streams: sse::Streams,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) limits: Limits,
}

/// The whole application: the API (with its OpenAPI document) and the pages.
pub(crate) fn app(state: AppState) -> Router {
    let (api, _) = routes::api().split_for_parts();
    api.merge(pages::routes())
        .fallback(problem::no_route)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), routes::bounded))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::check))
        .layer(axum::extract::DefaultBodyLimit::max(state.limits.body_bytes))
        .with_state(state)
}

/// The OpenAPI document of the API, as served at `/v1/openapi.json`.
pub fn openapi_json() -> String {
    let (_, doc) = routes::api().split_for_parts();
    openapi::finish(doc).to_pretty_json().unwrap_or_default()
}

/// Start serving HTTP in its own threads; returns the bound address. It
/// stops accepting once `stop` is set.
pub fn start(
    appender: Appender,
    config: HttpConfig,
    stop: Arc<AtomicBool>,
    say: Reporter,
) -> Result<SocketAddr, Error> {
    if !config.addr.ip().is_loopback() && config.tokens.is_empty() {
        return Err(Error::Invalid(format!(
            "--http {}: not a loopback address, so every client must show a token; give them with \
             --http-tokens FILE or DLOG_HTTP_TOKENS (see dlog serve --help)",
            config.addr
        )));
    }
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let listener = std::net::TcpListener::bind(config.addr)
        .map_err(|e| Error::Storage(format!("cannot listen on {} for HTTP: {e}", config.addr)))?;
    let local = listener.local_addr().map_err(|e| Error::Storage(format!("no local address: {e}")))?;
    listener.set_nonblocking(true).map_err(|e| Error::Storage(format!("cannot set up {local}: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_name("dlog-http")
        .enable_all()
        .build()
        .map_err(|e| Error::Storage(format!("cannot start the HTTP runtime: {e}")))?;
    let log = appender.log().clone();
    let limits = config.limits;
    let state = AppState {
        appender,
        streams: sse::Streams::new(log.clone(), limits),
        log,
        tokens: Arc::new(config.tokens),
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        limits,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    say(&format!("http listening on {scheme}://{local}"));
    let accept_say = say.clone();
    let app = app(state);
    std::thread::Builder::new()
        .name("dlog-http".into())
        .spawn(move || runtime.block_on(accept(listener, tls, app, limits, stop, accept_say)))
        .map_err(|e| Error::Storage(format!("cannot start the HTTP thread: {e}")))?;
    Ok(local)
}

async fn accept(
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limits: Limits,
    stop: Arc<AtomicBool>,
    say: Reporter,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            say(&format!("HTTP listener failed: {e}"));
            return;
        }
    };
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut stop_check = tokio::time::interval(Duration::from_millis(50));
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    say(&format!("HTTP accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop_check.tick() => {
                if stop.load(Ordering::SeqCst) { return; }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp, tls.is_some()));
            continue;
        };
        let (app, tls) = (app.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await
                    {
                        connection(stream, app, limits).await;
                    }
                }
                None => connection(tcp, app, limits).await,
            }
        });
    }
}

/// Answer one connection's requests (HTTP/1.1 keep-alive) until it closes.
async fn connection<I>(io: I, app: Router, limits: Limits)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// A connection over the limit: a plain-HTTP client is told why; a TLS one
/// is closed (there is no session to answer in).
async fn refuse(mut tcp: tokio::net::TcpStream, tls: bool) {
    use tokio::io::AsyncWriteExt;
    if !tls {
        let body = problem::busy_body("the server has as many connections as it takes; try again");
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = tcp.write_all(head.as_bytes()).await;
        let _ = tcp.write_all(body.as_bytes()).await;
    }
    let _ = tcp.shutdown().await;
}
