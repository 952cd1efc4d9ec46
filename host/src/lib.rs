//! decision-log: a git-backed, append-only log of decisions per space, whose
//! logic runs in a sandboxed WebAssembly component.
//!
//! - [`Log`] / [`Space`]: the library API.
//! - [`backend`]: where objects and refs live ([`backend::MemoryBackend`], git).
//! - [`runtime`]: the embedded component and its sandbox.
//! - [`authority`], [`clock`]: the other two imports the host provides.

pub mod authority;
pub mod backend;
mod bindings;
pub mod cli;
pub mod clock;
mod component_cache;
pub mod doctor;
mod error;
mod imports;
pub mod lease;
mod log;
mod route;
pub mod runtime;
pub mod serve;

pub use error::Error;
pub use log::{
    Appended, CheckpointInfo, Event, Head, ImportReport, Intent, Log, Options, Position, Routing, Space,
    VerifyReport, WireIntent,
};
pub use runtime::COMPONENT;

/// The WIT package the component implements, file by file, as published.
pub const WIT_FILES: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../wit/world.wit")),
    ("types.wit", include_str!("../../wit/types.wit")),
    ("objects.wit", include_str!("../../wit/objects.wit")),
    ("refs.wit", include_str!("../../wit/refs.wit")),
    ("authority.wit", include_str!("../../wit/authority.wit")),
    ("clock.wit", include_str!("../../wit/clock.wit")),
    ("log.wit", include_str!("../../wit/log.wit")),
];
