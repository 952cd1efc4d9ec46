//! `objects`: git object storage.

use super::{HostState, backend_kind, wit_kind};
use crate::backend::ObjectId;
use crate::bindings::dlog::decision_log::objects::Host;
use crate::bindings::dlog::decision_log::types::ObjectKind;

impl Host for HostState {
    fn write(&mut self, kind: ObjectKind, data: Vec<u8>) -> wasmtime::Result<Result<String, String>> {
        Ok(self
            .backend
            .write_object(backend_kind(kind), &data)
            .map(|id| id.to_hex())
            .map_err(|e| e.to_string()))
    }

    fn read(&mut self, id: String) -> wasmtime::Result<Result<Option<(ObjectKind, Vec<u8>)>, String>> {
        let id = match ObjectId::from_hex(&id) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(self
            .backend
            .read_object(&id)
            .map(|found| found.map(|(kind, data)| (wit_kind(kind), data)))
            .map_err(|e| e.to_string()))
    }
}
