//! `dlog mcp`.

use clap::Args;

use super::{Context, exit};
use crate::Error;

#[derive(Debug, Args)]
#[command(after_help = "\
An MCP client starts it as a subprocess and speaks JSON-RPC on its stdin and
stdout, e.g. with this in the client's configuration:

  {\"mcpServers\": {\"decision-log\": {\"command\": \"dlog\",
     \"args\": [\"mcp\", \"--repo\", \"/path/to/decisions.git\"],
     \"env\": {\"DLOG_ACTOR\": \"agent-name\"}}}}

Tools: spaces, fold, show, events, decide, retract. Resources:
dlog://spaces/{space} (a space's fold), with subscriptions. Appends are
routed like `dlog append`'s: to a running `dlog serve`, or under a one-shot
lease. Diagnostics go to stderr.")]
pub(crate) struct McpArgs {
    /// Who appends when a tool call names no actor; with neither, such a call fails asking for one.
    #[arg(long, env = "DLOG_ACTOR")]
    actor: Option<String>,
}

pub(crate) fn run(context: &Context, args: McpArgs) -> Result<u8, Error> {
    let log = context.open()?;
    crate::mcp::serve_stdio(log, args.actor.filter(|a| !a.is_empty()))?;
    Ok(exit::OK)
}
