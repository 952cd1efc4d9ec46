//! `authority`: the lease view.

use super::HostState;
use crate::bindings::dlog::decision_log::authority::Host;
use crate::bindings::dlog::decision_log::types::Lease;

impl Host for HostState {
    fn identity(&mut self) -> wasmtime::Result<String> {
        Ok(self.authority.identity())
    }

    fn current(&mut self, space: String) -> wasmtime::Result<Option<Lease>> {
        Ok(self.authority.current(&space).map(Lease::from))
    }
}
