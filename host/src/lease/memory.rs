//! Leases in memory: the in-memory host's lease store.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Lease, LeaseCell, same_lease};
use crate::error::Error;

/// A lease per space in a map behind a lock.
#[derive(Debug, Default)]
pub struct MemoryLeases {
    leases: Mutex<HashMap<String, Lease>>,
}

impl MemoryLeases {
    /// No lease granted yet.
    pub fn new() -> MemoryLeases {
        MemoryLeases::default()
    }
}

impl LeaseCell for MemoryLeases {
    fn read(&self, space: &str) -> Result<Option<Lease>, Error> {
        Ok(self.leases.lock().unwrap_or_else(|e| e.into_inner()).get(space).cloned())
    }

    fn compare_and_swap(&self, space: &str, expected: Option<&Lease>, new: &Lease) -> Result<bool, Error> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let matches = match (leases.get(space), expected) {
            (None, None) => true,
            (Some(have), Some(want)) => same_lease(have, want),
            _ => false,
        };
        if matches {
            leases.insert(space.to_owned(), new.clone());
        }
        Ok(matches)
    }
}
