//! `dlog lease` and `dlog serve`: the append authority, by hand and as a service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{print, time};
use super::{Context, exit};
use crate::authority::Lease;
use crate::serve::{Listen, ServeConfig};
use crate::{Error, Options};

#[derive(Debug, Args)]
#[command(after_help = "\
A lease says who may append to a space now: {holder, epoch, expires_at_ms, endpoint}.
`dlog serve` holds leases as a service; one-shot writers (`dlog append`) take a
short lease per append when nobody holds one. These commands are for scripts that
want to hold a lease across several commands: run them all with the same
DLOG_IDENTITY, e.g.

  export DLOG_IDENTITY=release-bot
  dlog lease acquire team --ttl 1m
  dlog append team --key version --choice 2.0 --why 'release day'
  dlog lease release team")]
pub(crate) struct LeaseArgs {
    #[command(subcommand)]
    command: LeaseCommand,
}

#[derive(Debug, Subcommand)]
enum LeaseCommand {
    /// Who holds the space's lease, at which epoch, until when.
    Status {
        /// The space.
        space: String,
    },
    /// Take the lease if it is free or expired (a new, higher epoch).
    Acquire(HoldArgs),
    /// Extend the lease this identity holds (same epoch).
    Renew(HoldArgs),
    /// Give the lease up now.
    Release {
        /// The space.
        space: String,
    },
}

#[derive(Debug, Args)]
struct HoldArgs {
    /// The space.
    space: String,
    /// How long the lease lasts (e.g. 30s, 2m, 500ms).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

/// Identity for lease commands: `DLOG_IDENTITY`, else `$USER@lease`.
fn options(context: &Context) -> Options {
    let mut options = context.options();
    if options.identity.is_none() {
        let user = std::env::var("USER").unwrap_or_else(|_| "dlog".into());
        options.identity = Some(format!("{user}@lease"));
    }
    options
}

fn show(context: &Context, space: &str, lease: Option<&Lease>, now_ms: u64) -> Result<(), Error> {
    if context.json {
        let v = lease.map(|l| {
            json!({"holder": l.holder, "epoch": l.epoch, "expires_at_ms": l.expires_at_ms, "endpoint": l.endpoint, "live": l.expires_at_ms > now_ms})
        });
        return print(&json!({"space": space, "lease": v}).to_string());
    }
    match lease {
        None => print(&format!("{space}: free (never granted)")),
        Some(l) if l.expires_at_ms > now_ms => print(&format!(
            "{space}: held by {} at epoch {} until {} ({} left){}",
            l.holder,
            l.epoch,
            time(l.expires_at_ms),
            humantime::format_duration(Duration::from_millis((l.expires_at_ms - now_ms) / 100 * 100)),
            l.endpoint.as_ref().map(|e| format!(", forwarding at {e}")).unwrap_or_default()
        )),
        Some(l) => print(&format!("{space}: free (last epoch {}, held by {})", l.epoch, l.holder)),
    }
}

pub(crate) fn lease(context: &Context, args: LeaseArgs) -> Result<u8, Error> {
    let log = crate::Log::open(&context.start()?, options(context))?;
    let routing = log.routing().cloned().ok_or_else(|| Error::Invalid("no lease protocol".into()))?;
    let leases = &routing.leases;
    let (space, lease) = match args.command {
        LeaseCommand::Status { space } => {
            let lease = leases.status(&space)?;
            show(context, &space, lease.as_ref(), leases.now_ms())?;
            return Ok(exit::OK);
        }
        LeaseCommand::Acquire(a) => {
            let log_epoch = log.space(&a.space).head()?.map_or(0, |h| h.epoch);
            let lease = leases.acquire(&a.space, &routing.identity, a.ttl, None, log_epoch)?;
            (a.space, lease)
        }
        LeaseCommand::Renew(a) => {
            let lease = leases.renew(&a.space, &routing.identity, a.ttl)?;
            (a.space, lease)
        }
        LeaseCommand::Release { space } => {
            let lease = leases.release(&space, &routing.identity)?;
            (space, lease)
        }
    };
    show(context, &space, Some(&lease), leases.now_ms())?;
    Ok(exit::OK)
}

#[derive(Debug, Args)]
#[command(after_help = "\
Holds the leases of SPACES, renews them every third of --ttl, appends an
`authority` event on every grant (the fence), and appends the intents that
other `dlog append` processes forward to it. Stops cleanly on SIGTERM or
Ctrl-C: leases are released and the socket removed.

Terminal 1:  dlog serve team --ttl 5s
Terminal 2:  dlog append team --key db --choice postgres --why 'forwarded to the holder'
             dlog lease status team

With --http ADDR it also serves the JSON API under /v1 (OpenAPI at
/v1/openapi.json) and a live web page at /:

  dlog serve team --http 127.0.0.1:8080
  curl http://127.0.0.1:8080/v1/spaces/team
  DLOG_HTTP_TOKENS='write:…' dlog serve team --http 0.0.0.0:8443 --tls-cert c.pem --tls-key k.pem")]
pub(crate) struct ServeArgs {
    /// The spaces to hold.
    #[arg(required = true)]
    spaces: Vec<String>,
    /// Lease time-to-live: a serve that stops renewing loses its spaces this long after.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Listen on a loopback TCP address (e.g. 127.0.0.1:0) instead of a Unix socket.
    #[arg(long, value_name = "ADDR", conflicts_with = "socket")]
    listen: Option<SocketAddr>,
    /// The Unix socket to listen on (default: in <git-dir>/dlog/run/, owner-only).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also serve the HTTP API (/v1) and the web page (/) on ADDR, e.g. 127.0.0.1:8080.
    /// A non-loopback address needs tokens (--http-tokens or DLOG_HTTP_TOKENS).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// A file of HTTP tokens, one `read:TOKEN` or `write:TOKEN` per line.
    /// (Tokens are never taken on the command line; DLOG_HTTP_TOKENS may hold them instead.)
    #[arg(long, value_name = "FILE", requires = "http")]
    http_tokens: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires_all = ["http", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// The tokens `--http` asks for: from --http-tokens FILE, else DLOG_HTTP_TOKENS, else none.
fn http_tokens(file: Option<&PathBuf>) -> Result<crate::http::Tokens, Error> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("--http-tokens {}: {e}", path.display())))?;
        return crate::http::Tokens::parse(&text, &format!("--http-tokens {}", path.display()));
    }
    match std::env::var("DLOG_HTTP_TOKENS") {
        Ok(text) if !text.trim().is_empty() => crate::http::Tokens::parse(&text, "DLOG_HTTP_TOKENS"),
        _ => Ok(crate::http::Tokens::default()),
    }
}

pub(crate) fn serve(context: &Context, args: ServeArgs) -> Result<u8, Error> {
    if args.ttl < Duration::from_millis(100) {
        return Err(Error::Invalid("--ttl must be at least 100ms".into()));
    }
    let mut options = context.options();
    options.identity = options.identity.or_else(|| Some(crate::authority::process_identity("serve")));
    let log = crate::Log::open(&context.start()?, options)?;
    let listen = match args.listen {
        Some(addr) => Listen::Tcp(addr),
        None => Listen::Unix(args.socket),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| Error::Storage(format!("cannot handle signals: {e}")))?;
    }
    let say: crate::serve::Reporter = Arc::new(|message: &str| {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        eprintln!("{now} dlog serve: {message}");
    });
    let front: Option<crate::serve::Front> = match args.http {
        Some(addr) => {
            let config = crate::http::HttpConfig {
                addr,
                tokens: http_tokens(args.http_tokens.as_ref())?,
                tls: args.tls_cert.zip(args.tls_key),
                limits: crate::http::Limits::default(),
            };
            let (stop, say) = (stop.clone(), say.clone());
            Some(Box::new(move |appender| crate::http::start(appender, config, stop, say).map(|_| ())))
        }
        None => None,
    };
    let config = ServeConfig { spaces: args.spaces, ttl: args.ttl, listen };
    crate::serve::serve_with(&log, config, stop, say, front)?;
    Ok(exit::OK)
}
