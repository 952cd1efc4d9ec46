//! Per-space leases: who may append to a space now.
//!
//! A lease is `{holder, epoch, expires_at_ms, endpoint}`, stored per space in
//! a [`LeaseCell`] that can only be changed by compare-and-swap, so two
//! contenders can never both be granted. The rules live here, once, over
//! either cell ([`MemoryLeases`], [`FileLeases`]):
//!
//! - **acquire**: only when the lease is free or expired; the new epoch is
//!   one above both the stored epoch and the log's highest epoch, so epochs
//!   strictly increase with every grant and survive restarts;
//! - **renew**: only by the holder; keeps the epoch;
//! - **release**: only by the holder; keeps the epoch (expires now), so the
//!   next grant still increases it.

mod file;
mod memory;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use file::FileLeases;
pub use memory::MemoryLeases;

use crate::clock::Clock;
use crate::error::Error;
pub use crate::types::Lease;

/// Where leases are stored: one value per space, changed only by
/// compare-and-swap, durable once a swap returns true.
pub trait LeaseCell: Send + Sync + fmt::Debug {
    /// The stored lease of `space`, if one was ever granted.
    fn read(&self, space: &str) -> Result<Option<Lease>, Error>;
    /// Store `new` iff the stored lease equals `expected` (none: never
    /// granted). False when it did not, and nothing changed.
    fn compare_and_swap(&self, space: &str, expected: Option<&Lease>, new: &Lease) -> Result<bool, Error>;
    /// How often a writer waiting for a busy lease looks again: local cells
    /// are cheap to read, a remote one costs a round trip per look.
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(10)
    }
}

/// A space name, checked before it becomes a lease file's name. The guest
/// owns the rule (every append checks it there); this is the same rule with
/// the same messages, so the published crate needs no native copy of the
/// guest. The suite checks that both agree, name by name.
pub fn check_space(name: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Invalid(format!("space name {name:?} {why}")));
    if name.is_empty() {
        return Err(Error::Invalid("space name is empty".into()));
    }
    if name.len() > 64 {
        return bad("is longer than 64 characters");
    }
    let first = name.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return bad("must start with a lowercase letter or a digit");
    }
    if let Some(c) =
        name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!("contains {c:?}; only a-z, 0-9, '.', '_' and '-' are allowed"));
    }
    if name.contains("..") {
        return bad("contains \"..\"");
    }
    if name.ends_with('.') || name.ends_with(".lock") {
        return bad("must not end in \".\" or \".lock\"");
    }
    Ok(())
}

/// Two leases are the same grant in the same state.
pub(crate) fn same_lease(a: &Lease, b: &Lease) -> bool {
    a.holder == b.holder
        && a.epoch == b.epoch
        && a.expires_at_ms == b.expires_at_ms
        && a.endpoint == b.endpoint
}

/// The lease rules over a cell and a clock.
#[derive(Clone, Debug)]
pub struct Leases {
    cell: Arc<dyn LeaseCell>,
    clock: Arc<dyn Clock>,
}

/// How long to keep retrying a compare-and-swap lost to a concurrent change
/// that still leaves the operation possible (e.g. two renewals).
const MAX_ATTEMPTS: usize = 100;

impl Leases {
    /// Lease rules over `cell`, with time from `clock`.
    pub fn new(cell: Arc<dyn LeaseCell>, clock: Arc<dyn Clock>) -> Leases {
        Leases { cell, clock }
    }

    /// The current time, as the leases see it.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// How often a writer waiting for this store's busy lease looks again.
    pub fn poll_interval(&self) -> Duration {
        self.cell.poll_interval()
    }

    /// Whether `lease` is in force now.
    pub fn is_live(&self, lease: &Lease) -> bool {
        lease.expires_at_ms > self.clock.now_ms()
    }

    /// The stored lease of `space` (live or not).
    pub fn status(&self, space: &str) -> Result<Option<Lease>, Error> {
        check_space(space)?;
        self.cell.read(space)
    }

    /// The live lease of `space`, if any.
    pub fn live(&self, space: &str) -> Result<Option<Lease>, Error> {
        Ok(self.status(space)?.filter(|l| self.is_live(l)))
    }

    fn expiry(&self, ttl: Duration) -> u64 {
        self.clock.now_ms().saturating_add(ttl.as_millis() as u64)
    }

    /// Grant `space` to `holder` if it is free or expired. `log_epoch` is the
    /// highest epoch already in the log; the grant's epoch is above it. A
    /// holder that already holds the live lease gets it renewed instead.
    pub fn acquire(
        &self,
        space: &str,
        holder: &str,
        ttl: Duration,
        endpoint: Option<String>,
        log_epoch: u64,
    ) -> Result<Lease, Error> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.status(space)?;
            if let Some(live) = current.as_ref().filter(|l| self.is_live(l)) {
                if live.holder != holder {
                    return Err(Error::NotHolder { space: space.into(), holder: Some(live.clone()) });
                }
                let renewed =
                    Lease { expires_at_ms: self.expiry(ttl), endpoint: endpoint.clone(), ..live.clone() };
                if self.cell.compare_and_swap(space, current.as_ref(), &renewed)? {
                    return Ok(renewed);
                }
                continue;
            }
            let stored_epoch = current.as_ref().map_or(0, |l| l.epoch);
            let granted = Lease {
                holder: holder.to_owned(),
                epoch: stored_epoch.max(log_epoch) + 1,
                expires_at_ms: self.expiry(ttl),
                endpoint: endpoint.clone(),
            };
            if self.cell.compare_and_swap(space, current.as_ref(), &granted)? {
                return Ok(granted);
            }
        }
        Err(Error::Storage(format!(
            "the lease of space {space:?} kept changing; gave up after {MAX_ATTEMPTS} attempts"
        )))
    }

    /// Extend `holder`'s lease on `space` by `ttl` from now, keeping its
    /// epoch. Refused if another holder has been granted it since.
    pub fn renew(&self, space: &str, holder: &str, ttl: Duration) -> Result<Lease, Error> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.status(space)?;
            let Some(mine) = current.as_ref().filter(|l| l.holder == holder && l.expires_at_ms > 0) else {
                let holder = current.filter(|l| self.is_live(l));
                return Err(Error::NotHolder { space: space.into(), holder });
            };
            let renewed = Lease { expires_at_ms: self.expiry(ttl), ..mine.clone() };
            if self.cell.compare_and_swap(space, current.as_ref(), &renewed)? {
                return Ok(renewed);
            }
        }
        Err(Error::Storage(format!(
            "the lease of space {space:?} kept changing; gave up after {MAX_ATTEMPTS} attempts"
        )))
    }

    /// Give up `holder`'s lease on `space` now. Releasing a lease one does
    /// not hold is refused.
    pub fn release(&self, space: &str, holder: &str) -> Result<Lease, Error> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.status(space)?;
            let Some(mine) = current.as_ref().filter(|l| l.holder == holder && l.expires_at_ms > 0) else {
                let holder = current.filter(|l| self.is_live(l));
                return Err(Error::NotHolder { space: space.into(), holder });
            };
            let released = Lease { expires_at_ms: 0, endpoint: None, ..mine.clone() };
            if self.cell.compare_and_swap(space, current.as_ref(), &released)? {
                return Ok(released);
            }
        }
        Err(Error::Storage(format!(
            "the lease of space {space:?} kept changing; gave up after {MAX_ATTEMPTS} attempts"
        )))
    }
}
