//! Where an append (or an import) goes under the lease protocol:
//!
//! - this log holds the live lease → append here;
//! - another live holder with an endpoint (`dlog serve`) → forward the
//!   intents there and return its answer;
//! - a live holder without an endpoint (another one-shot writer) → wait for
//!   it, bounded by [`Routing::wait`];
//! - no live holder → take a short one-shot lease, append here, release.
//!
//! A holder that has lost its lease refuses the intents (the guest checks the
//! lease on every append), so every `not holder` answer sends the intents
//! round this loop again; they are never queued and applied later.

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::lease::Leases;
use crate::types::{Appended, Intent};
use crate::wire;

/// The lease protocol of a log that is not a fixed sole writer.
#[derive(Clone, Debug)]
pub struct Routing {
    /// The lease store and its rules.
    pub leases: Leases,
    /// Who this log appends as.
    pub identity: String,
    /// How long a one-shot lease lasts.
    pub one_shot_ttl: Duration,
    /// How long to wait for a one-shot holder.
    pub wait: Duration,
}

/// What routing needs of a space: its name, its log's epoch, and a way to
/// append on this process's own guest. (A trait rather than the library's
/// `Space`, so routing does not depend on the library it serves.)
pub(crate) trait LocalSpace {
    /// The space's name.
    fn name(&self) -> &str;
    /// The highest epoch in the space's log (0 when empty).
    fn log_epoch(&self) -> Result<u64, Error>;
    /// Append on this process's guest, whatever the lease says (the guest checks it).
    fn append_here(&self, intents: &[Intent], batch: bool) -> Result<Vec<Appended>, Error>;
}

/// Append `intents` to `space` by the lease protocol. Every intent must
/// already carry its id, so that going round the loop resends the same ones.
pub(crate) fn submit(
    space: &dyn LocalSpace,
    routing: &Routing,
    intents: &[Intent],
    batch: bool,
) -> Result<Vec<Appended>, Error> {
    run(space, routing, &|| space.append_here(intents, batch), &|endpoint| {
        wire::forward(endpoint, space.name(), intents, batch)
    })
}

/// Do a write to `space` where the lease protocol says: `here` on this
/// process's guest (under our lease or a one-shot one), or `forward` to the
/// live holder's endpoint. `forward`'s outer error is a transport failure.
pub(crate) fn run<T>(
    space: &dyn LocalSpace,
    routing: &Routing,
    here: &dyn Fn() -> Result<T, Error>,
    forward: &dyn Fn(&str) -> std::io::Result<Result<T, Error>>,
) -> Result<T, Error> {
    let deadline = Instant::now() + routing.wait;
    loop {
        let outcome = match routing.leases.live(space.name())? {
            Some(lease) if lease.holder == routing.identity => here(),
            Some(lease) => match &lease.endpoint {
                Some(endpoint) => match forward(endpoint) {
                    Ok(answer) => answer,
                    Err(_) if Instant::now() < deadline => {
                        sleep(routing.leases.poll_interval());
                        continue;
                    }
                    Err(unreachable) => {
                        let on = holder_host(&lease.holder).map(|h| format!(" on {h}")).unwrap_or_default();
                        return Err(Error::Storage(format!(
                            "space {:?} is held by {}{on} (epoch {}); its endpoint {endpoint} is not reachable \
                             from here ({unreachable}). A `dlog serve` answers only on its own machine: wait \
                             until it stops or its lease expires, or append on that machine",
                            space.name(),
                            lease.holder,
                            lease.epoch
                        )));
                    }
                },
                None => Err(Error::NotHolder { space: space.name().into(), holder: Some(lease) }),
            },
            None => with_one_shot_lease(space, routing, here),
        };
        match outcome {
            Err(Error::NotHolder { .. }) if Instant::now() < deadline => {
                sleep(routing.leases.poll_interval())
            }
            Err(Error::NotHolder { holder: Some(holder), .. }) => {
                return Err(Error::Timeout { space: space.name().into(), holder, waited: routing.wait });
            }
            other => return other,
        }
    }
}

/// The machine in a holder identity of the default shape,
/// `<role>@<host>:<pid>#<tag>` (`authority::process_identity`); none for an
/// identity the user chose (`DLOG_IDENTITY`).
fn holder_host(holder: &str) -> Option<&str> {
    let (_, rest) = holder.split_once('@')?;
    let (host, pid_tag) = rest.rsplit_once(':')?;
    let (pid, tag) = pid_tag.split_once('#')?;
    let shaped = !host.is_empty()
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !tag.is_empty()
        && tag.bytes().all(|b| b.is_ascii_hexdigit());
    shaped.then_some(host)
}

/// Take a one-shot lease on `space` (no endpoint), run `f`, release it.
/// When someone else holds the lease, answers `not holder` with that lease.
pub(crate) fn with_one_shot_lease<T>(
    space: &dyn LocalSpace,
    routing: &Routing,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let log_epoch = space.log_epoch()?;
    routing.leases.acquire(space.name(), &routing.identity, routing.one_shot_ttl, None, log_epoch)?;
    let result = f();
    // Releasing fails only if the lease expired and was taken meanwhile;
    // the append itself was fenced by the guest, so there is nothing to undo.
    let _ = routing.leases.release(space.name(), &routing.identity);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_read_from_a_default_holder_identity_and_only_from_one() {
        assert_eq!(holder_host("serve@build-7:4711#1a2b3c4d"), Some("build-7"));
        assert_eq!(holder_host("dlog@laptop.example.com:12#ab"), Some("laptop.example.com"));
        assert_eq!(holder_host("release-bot"), None);
        assert_eq!(holder_host("alice@example.com"), None);
        assert_eq!(holder_host("x@:1#ab"), None);
        assert_eq!(holder_host("x@h:pid#ab"), None);
    }
}
