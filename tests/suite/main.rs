//! The integration suite: one binary. Every scenario runs against every host
//! (`support::each_host`), so adding a host adds it to every scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adr;
mod authority;
mod checkpoints;
mod cli;
mod component;
mod crash_consistency;
mod crash_trials;
mod git_backend;
mod git_cli;
mod git_interop;
mod git_objects;
mod git_packs;
mod git_servers;
mod golden;
mod host_rules;
mod http;
mod mcp;
mod parity;
mod recovery;
mod remote;
mod remote_bind;
mod scenarios;
mod serve_abuse;
mod support;
