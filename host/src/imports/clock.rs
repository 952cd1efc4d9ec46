//! `clock`: wall time.

use super::HostState;
use crate::bindings::dlog::decision_log::clock::Host;

impl Host for HostState {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_ms())
    }
}
