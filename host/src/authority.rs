//! Who may append: the view of each space's lease that the guest consults
//! through the `authority` import.

use std::fmt;

pub use crate::bindings::dlog::decision_log::types::Lease;

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
