//! The decision-log guest: everything a decision log *means* lives here.
//!
//! The crate is plain Rust, unit-tested natively. Built for
//! `wasm32-unknown-unknown` (by `cargo xtask component`) it becomes the sandboxed
//! component: `component` is the thin wit-bindgen shell that maps the WIT
//! imports onto [`host::Host`] and the WIT exports onto [`log::Log`].
//!
//! - [`json`]: strict I-JSON intake; [`canonical`]: RFC 8785 output.
//! - [`model`]: names, intents, events and their validation rules;
//!   [`record`]: the optional fields and statuses format v2 added.
//! - [`gitobj`]: events as git blobs, trees and commits, and back.
//! - [`fold`]: the coordination state, overlay and union.
//! - [`idindex`]: the on-disk index of intent ids in checkpoints;
//!   [`pages`]: the fold in key-sorted pages, so one key costs one page.
//! - [`log`]: append, read, fold, verify and import over a [`host::Host`].

pub mod canonical;
pub mod checkpoint;
pub mod error;
pub mod fold;
pub mod gitobj;
pub mod host;
pub mod idindex;
pub mod json;
pub mod log;
pub mod model;
pub mod pages;
pub mod record;

#[cfg(target_arch = "wasm32")]
mod component;
