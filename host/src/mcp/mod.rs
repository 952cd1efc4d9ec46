//! `dlog mcp`: the decision log as shared memory for AI agents, over the
//! Model Context Protocol (the official Rust SDK, `rmcp`).
//!
//! - tools (`tools.rs`): `spaces`, `fold`, `show`, `events`, `decide`,
//!   `retract`, named like the `dlog` commands, arguments named like the
//!   intent JSON;
//! - resources (`resources.rs`): `dlog://spaces/{space}`, each space's fold,
//!   with subscriptions fed by a watcher that polls heads, so changes made
//!   by other processes are reported too;
//! - errors (`errors.rs`): every failure is a tool error with structured
//!   content an agent can act on (the decision in force, the head, the holder).
//!
//! The server opens its [`Log`] with the lease protocol, as every `dlog`
//! command does, so its appends are routed as the CLI's: to a live
//! `dlog serve`, or under a one-shot lease.

mod args;
mod errors;
mod records;
mod resources;
mod server;
mod tools;

use rmcp::ServiceExt;

pub use server::{DecisionLogServer, INSTRUCTIONS};

use crate::{Error, Log};

/// Serve `log` over stdin and stdout until the client closes stdin.
/// Blocking calls into the log run on a small thread pool; the protocol
/// on one thread.
pub fn serve_stdio(log: Log, actor: Option<String>) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .map_err(|e| Error::Storage(format!("starting the MCP server: {e}")))?;
    let result = runtime.block_on(async {
        let service = DecisionLogServer::new(log, actor)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Error::Invalid(format!("the MCP client did not initialize: {e}")))?;
        service.waiting().await.map_err(|e| Error::Guest(format!("the MCP server stopped: {e}")))?;
        Ok(())
    });
    // An append in flight when the client left finishes (or not) on its
    // own thread; it is atomic either way, so do not wait long for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}
