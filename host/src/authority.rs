//! Who may append: the view of each space's lease that the guest consults
//! through the `authority` import.

use std::fmt;

pub use crate::types::Lease;

/// The lease view a host gives its guest.
pub trait Authority: Send + Sync + fmt::Debug {
    /// The identity this host appends as.
    fn identity(&self) -> String;
    /// The current lease on `space`, if any was ever granted.
    fn current(&self, space: &str) -> Option<Lease>;
}

/// A single writer that holds every space forever at one epoch: the
/// in-memory host and tests that are not about leases.
#[derive(Debug, Clone)]
pub struct SoleWriter {
    identity: String,
    epoch: u64,
}

impl SoleWriter {
    /// A sole writer with this identity and epoch.
    pub fn new(identity: impl Into<String>, epoch: u64) -> SoleWriter {
        SoleWriter { identity: identity.into(), epoch }
    }
}

impl Authority for SoleWriter {
    fn identity(&self) -> String {
        self.identity.clone()
    }
    fn current(&self, _space: &str) -> Option<Lease> {
        Some(Lease {
            holder: self.identity.clone(),
            epoch: self.epoch,
            expires_at_ms: u64::MAX,
            endpoint: None,
        })
    }
}

/// The lease view backed by a real lease store: what a process that takes
/// part in the lease protocol (one-shot writers, `dlog serve`) tells its guest.
#[derive(Debug, Clone)]
pub struct LeaseAuthority {
    identity: String,
    leases: crate::lease::Leases,
}

impl LeaseAuthority {
    /// The view of `leases` for a host appending as `identity`.
    pub fn new(identity: impl Into<String>, leases: crate::lease::Leases) -> LeaseAuthority {
        LeaseAuthority { identity: identity.into(), leases }
    }
}

impl Authority for LeaseAuthority {
    fn identity(&self) -> String {
        self.identity.clone()
    }
    fn current(&self, space: &str) -> Option<Lease> {
        // A lease that cannot be read is no lease: the guest then refuses the
        // append as not-holder, which is the safe answer.
        self.leases.status(space).ok().flatten()
    }
}

/// A readable, unique identity for this process: `<role>@<host>:<pid>#<tag>`.
pub fn process_identity(role: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    // Holders become git author names in `authority` events (at most 64 characters).
    let host: String = host.chars().filter(|c| !c.is_control() && !matches!(c, '<' | '>')).take(32).collect();
    let tag = &uuid::Uuid::now_v7().simple().to_string()[24..];
    format!("{role}@{host}:{}#{tag}", std::process::id())
}
