//! The MCP server handler: capabilities, instructions, and the dispatch of
//! tool calls and resource requests. It is transport-independent: `dlog mcp`
//! serves it over stdio, and an HTTP front end can mount the same type.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, SubscribeRequestParams, Tool,
    UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::resources::Watch;
use crate::{Error, Log};

/// What an agent is told when it connects.
pub const INSTRUCTIONS: &str = "\
decision-log: a shared, append-only log of decisions (what was chosen, why, what was rejected and why not), \
kept per space in one total order that every agent and person sees alike. Use it as shared memory: \
before deciding something, read what is in force (fold, or show for one key); record each decision \
you make with decide (key, choice, rationale, rejected options). One decision per key is in force: \
to change it, call decide with supersedes = the id of the decision in force you read, so the change \
fails instead of overwriting a decision someone made meanwhile. A decision-conflict error means \
exactly that: its structured content shows the decision in force; read it with show and decide \
whether to supersede it. Pass an id you keep for each decision and reuse it when you retry: a resend \
returns the original event (created=false), never a duplicate. Resources dlog://spaces/{space} hold \
each space's fold; subscribe to be told when a space changes.";

/// The decision log as an MCP server: tools, resources and subscriptions
/// over one [`Log`], opened with the lease protocol like every `dlog`
/// command, so appends are routed exactly as the CLI's.
#[derive(Clone)]
pub struct DecisionLogServer {
    log: Log,
    /// The actor of appends that name none.
    pub(crate) actor: Option<String>,
    tools: ToolRouter<DecisionLogServer>,
    pub(crate) watch: Arc<Watch>,
}

impl std::fmt::Debug for DecisionLogServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLogServer")
            .field("log", &self.log)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl DecisionLogServer {
    /// A server over `log`; appends without an actor argument are made as
    /// `actor`, or fail asking for one when it is none.
    pub fn new(log: Log, actor: Option<String>) -> DecisionLogServer {
        DecisionLogServer { log, actor, tools: DecisionLogServer::tools(), watch: Arc::new(Watch::default()) }
    }

    /// A server for another connection over the same log: its own
    /// subscriptions and watcher. (Clones share them: the watcher of a
    /// connection is a clone.) A transport serving several connections
    /// makes each one's handler with this.
    pub fn new_session(&self) -> DecisionLogServer {
        DecisionLogServer { watch: Arc::new(Watch::default()), ..self.clone() }
    }

    /// The log served.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Run `f` on the log on a blocking thread: guest calls block, and a
    /// forwarded or one-shot append may wait for a lease. Fails only if the
    /// thread did (a panic): a bug.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Log) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || {
            let result = f(&log);
            // stdout is the protocol: warnings go to stderr, as the CLI's do.
            for warning in log.take_warnings() {
                eprintln!("dlog mcp: warning: {warning}");
            }
            result
        })
        .await
        .map_err(|e| Error::Guest(format!("a log call failed: {e}")))
    }

    /// This server changed the log: look for changes now rather than at the next poll.
    pub(crate) fn touched(&self) {
        self.watch.wake();
    }
}

impl ServerHandler for DecisionLogServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("decision-log", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    // Subscriptions are resources/subscribe, which the 2026 revision
    // replaced: offer the revisions this server implements.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.tools.call(ToolCallContext::new(self, request, context)).await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.list_all()))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // One watcher per connection, whatever the transport.
        tokio::spawn(self.clone().watch(context.peer));
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.get(name).cloned()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.resources().await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![super::resources::template()]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.read_space(&request.uri).await.map(Into::into)
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscribe_space(&request.uri).await
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.unsubscribe_space(&request.uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_subscriptions_and_a_new_session_has_its_own() -> Result<(), Error> {
        let server = DecisionLogServer::new(Log::in_memory()?, Some("agent".into()));
        assert!(Arc::ptr_eq(&server.watch, &server.clone().watch));
        let other = server.new_session();
        assert!(!Arc::ptr_eq(&server.watch, &other.watch));
        assert_eq!(other.actor.as_deref(), Some("agent"));
        Ok(())
    }

    #[test]
    fn the_server_offers_tools_and_subscribable_resources() -> Result<(), Error> {
        let info = DecisionLogServer::new(Log::in_memory()?, None).get_info();
        assert!(info.capabilities.tools.is_some());
        let resources = info.capabilities.resources.unwrap_or_default();
        assert_eq!((resources.subscribe, resources.list_changed), (Some(true), Some(true)));
        assert_eq!(info.instructions.as_deref(), Some(INSTRUCTIONS));
        Ok(())
    }
}
