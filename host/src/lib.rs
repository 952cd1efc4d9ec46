//! decision-log: a git-backed, append-only log of decisions — what was
//! chosen, why, and what was rejected and why not — per space, totally
//! ordered by a single append authority, whose logic runs in a sandboxed
//! WebAssembly component.
//!
//! - [`Log`] / [`Space`]: the library API; [`Intent`] in, [`Appended`],
//!   [`Event`], [`Head`] and folds (canonical JSON) out; [`Error`] names
//!   every failure.
//! - [`backend`]: where objects and refs live ([`backend::MemoryBackend`],
//!   [`backend::GitBackend`]).
//! - [`lease`], [`authority`]: who may append to a space now.
//! - [`serve`] and [`wire`]: holding spaces and taking forwarded appends.
//! - `http` and `web` (feature `http`, on with `cli`): the HTTP API and web
//!   page of `dlog serve --http`, and the static site of `dlog site`.
//! - [`runtime`]: the embedded component and its sandbox; [`COMPONENT`] and
//!   [`WIT_FILES`] for other hosts.
//!
//! ```no_run
//! use decision_log::{Intent, Log, Options};
//!
//! # fn main() -> Result<(), decision_log::Error> {
//! let log = Log::open(std::path::Path::new("decisions.git"), Options::default())?;
//! let team = log.space("team");
//! let body = r#"{"key":"db","choice":"postgres","rationale":"we know it"}"#;
//! let appended = team.append(Intent::new("alice", "decide", body).with_id("d1"))?;
//! println!("#{} {}", appended.event.seq, team.fold()?);
//! # Ok(()) }
//! ```
//!
//! The `cli` feature (on by default) adds the `dlog` command line; without
//! it the crate has no argument parser, signal handling or time formatting.
//! The `mcp` feature (part of `cli`) adds the `mcp` module, the Model Context Protocol
//! server behind `dlog mcp`, and with it an async runtime.

#[cfg(feature = "adr")]
pub mod adr;
pub mod authority;
pub mod backend;
mod bindings;
#[cfg(feature = "cli")]
pub mod cli;
pub mod clock;
mod component_cache;
mod convert;
pub mod doctor;
#[doc(hidden)]
pub mod durable;
mod error;
pub mod find;
pub mod guard;
#[cfg(feature = "http")]
pub mod http;
mod imports;
pub mod lease;
mod log;
#[cfg(feature = "mcp")]
pub mod mcp;
mod query;
pub mod remote;
mod route;
pub mod runtime;
pub mod serve;
mod types;
#[cfg(feature = "http")]
pub mod web;
pub mod wire;

pub use error::Error;
pub use log::{Log, Options, Space};
pub use query::Shown;
pub use route::Routing;
pub use runtime::COMPONENT;
pub use types::{Appended, CheckpointInfo, Event, Head, ImportReport, Intent, Lease, Position, VerifyReport};

/// The WIT package the component implements, file by file, as published.
pub const WIT_FILES: &[(&str, &str)] = &[
    ("world.wit", include_str!("../wit/world.wit")),
    ("types.wit", include_str!("../wit/types.wit")),
    ("objects.wit", include_str!("../wit/objects.wit")),
    ("refs.wit", include_str!("../wit/refs.wit")),
    ("authority.wit", include_str!("../wit/authority.wit")),
    ("clock.wit", include_str!("../wit/clock.wit")),
    ("log.wit", include_str!("../wit/log.wit")),
];

/// The README's Rust examples, compiled and run by `cargo test` as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
