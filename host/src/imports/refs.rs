//! `refs`: git references with compare-and-swap.

use super::HostState;
use crate::backend::{ObjectId, StorageError, SwapOutcome as Outcome};
use crate::bindings::dlog::decision_log::refs::{Host, SwapOutcome};

fn parse(id: &str) -> Result<ObjectId, String> {
    ObjectId::from_hex(id).map_err(|e| e.to_string())
}

fn message(e: StorageError) -> String {
    e.to_string()
}

impl Host for HostState {
    fn read(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, String>> {
        Ok(self.backend.read_ref(&name).map(|id| id.map(|id| id.to_hex())).map_err(message))
    }

    fn compare_and_swap(
        &mut self,
        name: String,
        expected: Option<String>,
        new: String,
    ) -> wasmtime::Result<Result<SwapOutcome, String>> {
        let swap = || -> Result<SwapOutcome, String> {
            let expected = expected.as_deref().map(parse).transpose()?;
            let new = parse(&new)?;
            Ok(match self.backend.compare_and_swap(&name, expected.as_ref(), &new).map_err(message)? {
                Outcome::Swapped => SwapOutcome::Swapped,
                Outcome::Mismatch(actual) => SwapOutcome::Mismatch(actual.map(|id| id.to_hex())),
            })
        };
        Ok(swap())
    }

    fn list(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<(String, String)>, String>> {
        Ok(self
            .backend
            .list_refs(&prefix)
            .map(|refs| refs.into_iter().map(|(name, id)| (name, id.to_hex())).collect())
            .map_err(message))
    }
}
