//! The host side of the guest's imports: one file per WIT interface, each a
//! thin adapter from the generated trait to [`HostState`]'s parts.

mod authority;
mod clock;
mod objects;
mod refs;

use std::sync::Arc;

use crate::authority::Authority;
use crate::backend::Backend;
use crate::bindings::dlog::decision_log::types;
use crate::clock::Clock;

/// What a guest instance's imports reach: the store's data.
#[derive(Debug)]
pub struct HostState {
    /// Objects and refs.
    pub backend: Arc<dyn Backend>,
    /// The lease view.
    pub authority: Arc<dyn Authority>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Memory bounds for the guest.
    pub(crate) limits: crate::runtime::GuestLimits,
}

impl types::Host for HostState {}

/// The generated object kind as the backend's.
fn backend_kind(kind: types::ObjectKind) -> crate::backend::ObjectKind {
    match kind {
        types::ObjectKind::Blob => crate::backend::ObjectKind::Blob,
        types::ObjectKind::Tree => crate::backend::ObjectKind::Tree,
        types::ObjectKind::Commit => crate::backend::ObjectKind::Commit,
    }
}

/// The backend's object kind as the generated one.
fn wit_kind(kind: crate::backend::ObjectKind) -> types::ObjectKind {
    match kind {
        crate::backend::ObjectKind::Blob => types::ObjectKind::Blob,
        crate::backend::ObjectKind::Tree => types::ObjectKind::Tree,
        crate::backend::ObjectKind::Commit => types::ObjectKind::Commit,
    }
}
