//! The tools of a record's lifecycle and of search: `propose`, `accept`,
//! `reject` and `search`, beside `decide` and `retract` in `tools.rs`.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::args::Args;
use super::errors::tool_error;
use super::server::DecisionLogServer;
use super::tools::{Rejected, invalid, ok};
use crate::Intent;
use crate::find::Query;

/// Most records one `search` call returns.
const MAX_HITS: usize = 500;

/// A link from a record to another decision or a page.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub(crate) struct Link {
    /// How it relates (e.g. "refines", "see also").
    rel: Option<String>,
    /// A title for the link.
    title: Option<String>,
    /// Another decision's event id.
    id: Option<String>,
    /// A decision key.
    key: Option<String>,
    /// An absolute URL.
    url: Option<String>,
}

/// The optional details a decide or a propose may carry.
#[derive(Debug, Default)]
pub(crate) struct Details {
    pub title: Option<String>,
    pub context: Option<String>,
    pub consequences: Option<String>,
    pub deciders: Option<Vec<String>>,
    pub consulted: Option<Vec<String>>,
    pub informed: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub links: Option<Vec<Link>>,
    pub meta: Option<Value>,
}

/// The body of a `decide` or a `propose`: the record's own fields, then
/// whichever details were given (the guest checks them all).
pub(crate) fn record_body(
    key: String,
    choice: String,
    rationale: String,
    rejected: Option<Vec<Rejected>>,
    supersedes: Option<String>,
    details: Details,
) -> Value {
    let mut body = json!({"key": key, "choice": choice, "rationale": rationale});
    if let Some(rejected) = rejected.filter(|r| !r.is_empty()) {
        body["rejected"] = rejected.iter().map(|r| json!({"option": r.option, "why": r.why})).collect();
    }
    if let Some(s) = supersedes {
        body["supersedes"] = json!(s);
    }
    details.write(&mut body);
    body
}

impl Details {
    /// Add the details given to an intent body (the guest checks them).
    pub(crate) fn write(self, body: &mut Value) {
        for (name, v) in
            [("title", self.title), ("context", self.context), ("consequences", self.consequences)]
        {
            if let Some(v) = v {
                body[name] = json!(v);
            }
        }
        for (name, v) in [
            ("deciders", self.deciders),
            ("consulted", self.consulted),
            ("informed", self.informed),
            ("tags", self.tags),
        ] {
            if let Some(v) = v {
                body[name] = json!(v);
            }
        }
        if let Some(links) = self.links {
            body["links"] = links
                .into_iter()
                .map(|l| {
                    let mut v = json!({});
                    for (name, field) in
                        [("rel", l.rel), ("title", l.title), ("id", l.id), ("key", l.key), ("url", l.url)]
                    {
                        if let Some(f) = field {
                            v[name] = json!(f);
                        }
                    }
                    v
                })
                .collect();
        }
        if let Some(meta) = self.meta {
            body["meta"] = meta;
        }
    }
}

/// A proposal to append.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposeArgs {
    /// The space.
    space: String,
    /// What is being decided (e.g. "storage").
    key: String,
    /// What is proposed.
    choice: String,
    /// Why.
    rationale: String,
    /// Alternatives considered and why each would not be chosen.
    rejected: Option<Vec<Rejected>>,
    /// The id of the decision in force this proposal would replace, if any (checked now, and again when it is accepted).
    supersedes: Option<String>,
    /// "proposed" (default), "draft", or your team's own lowercase label such as "on hold".
    status: Option<String>,
    /// A one-line title.
    title: Option<String>,
    /// The problem the proposal answers.
    context: Option<String>,
    /// What would follow from it.
    consequences: Option<String>,
    /// Who would decide.
    deciders: Option<Vec<String>>,
    /// Who was consulted.
    consulted: Option<Vec<String>>,
    /// Who was informed.
    informed: Option<Vec<String>>,
    /// Tags, each one word.
    tags: Option<Vec<String>>,
    /// Links to other decisions or pages (exactly one of id, key or url each).
    links: Option<Vec<Link>>,
    /// Anything else, as any JSON value.
    meta: Option<Value>,
    /// Idempotency key: reuse it when you retry. Keep it: accept and reject name the proposal by this id.
    id: Option<String>,
    /// Append only if the space's newest event has this seq.
    expect_seq: Option<u64>,
    /// Who proposes (default: the server's DLOG_ACTOR).
    actor: Option<String>,
}

/// Accepting or rejecting a proposal.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseArgs {
    /// The space.
    space: String,
    /// The key the proposal is for.
    key: String,
    /// The proposal's event id (from propose's result, fold's `proposals`, or search).
    proposal: String,
    /// Why (required to reject).
    rationale: Option<String>,
    /// Accept only: the id of the decision in force it replaces (defaults to the proposal's own supersedes).
    supersedes: Option<String>,
    /// Idempotency key: reuse it when you retry.
    id: Option<String>,
    /// Append only if the space's newest event has this seq.
    expect_seq: Option<u64>,
    /// Who accepts or rejects (default: the server's DLOG_ACTOR).
    actor: Option<String>,
}

/// What to search for.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchArgs {
    /// Words that must all occur in the title, choice, rationale, context, consequences or a rejected option's why-not (case-insensitive).
    text: Option<String>,
    /// Spaces to search (default: all).
    spaces: Option<Vec<String>>,
    /// A key, or a key prefix ending in "*".
    key: Option<String>,
    /// Tags the record must all carry.
    tags: Option<Vec<String>>,
    /// Who decided, proposed, accepted or withdrew it, or one of its deciders.
    actor: Option<String>,
    /// accepted, retracted, deprecated, proposed, draft, rejected, or a team's own status.
    status: Option<String>,
    /// Only records at or after this time, in ms since the Unix epoch.
    since_ms: Option<u64>,
    /// Only records before this time, in ms since the Unix epoch.
    until_ms: Option<u64>,
    /// Most records to return (default 50, at most 500).
    limit: Option<usize>,
}

#[tool_router(router = records_router, vis = "pub(crate)")]
impl DecisionLogServer {
    #[tool(
        description = "Propose a decision without putting it in force: for `key` in `space`, a `choice` with its `rationale` (and rejected options, details, a status such as \"draft\"). Others see it in fold's `proposals` and can accept or reject it. Use this instead of decide when a decision needs review. Pass an `id` and keep it: accept and reject name the proposal by it, and resending the same id is safe.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn propose(&self, Parameters(args): Parameters<Args<ProposeArgs>>) -> CallToolResult {
        let args = match args.0 {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        let actor = match self.actor(args.actor) {
            Ok(a) => a,
            Err(e) => return tool_error(&e, None),
        };
        let details = Details {
            title: args.title,
            context: args.context,
            consequences: args.consequences,
            deciders: args.deciders,
            consulted: args.consulted,
            informed: args.informed,
            tags: args.tags,
            links: args.links,
            meta: args.meta,
        };
        let mut body =
            record_body(args.key, args.choice, args.rationale, args.rejected, args.supersedes, details);
        if let Some(status) = args.status {
            body["status"] = json!(status);
        }
        let intent = Intent {
            id: args.id,
            actor,
            kind: "propose".into(),
            body: body.to_string(),
            expect_seq: args.expect_seq,
        };
        self.append(args.space, intent).await
    }

    #[tool(
        description = "Accept an open proposal: it becomes the decision in force for its key, keeping the proposal's id (supersede it later by that id). If a decision is in force, the proposal's `supersedes` (or the one you give) must name it; otherwise a decision-conflict error gives the decision now in force: read it with show and decide whether to accept anyway by naming it in `supersedes`.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn accept(&self, Parameters(args): Parameters<Args<CloseArgs>>) -> CallToolResult {
        self.close("accept", args).await
    }

    #[tool(
        description = "Reject an open proposal, with a `rationale` (required). It stays in fold's `proposals` with status \"rejected\" and can no longer be accepted; propose again to reopen the question.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn reject(&self, Parameters(args): Parameters<Args<CloseArgs>>) -> CallToolResult {
        self.close("reject", args).await
    }

    #[tool(
        description = "Search decisions in one space or all: by words (text), key or key prefix (\"adr/*\"), tags, actor, status (accepted, retracted, deprecated, proposed, draft, rejected…) and time range. Searches the decisions in force, withdrawn ones and proposals; earlier revisions of a key are in show's history. Use it to find whether something was already decided or rejected, and why.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn search(&self, Parameters(args): Parameters<Args<SearchArgs>>) -> CallToolResult {
        let args = match args.0 {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        let limit = args.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_HITS {
            return invalid(format!("limit: must be between 1 and {MAX_HITS}, not {limit}"));
        }
        let query = Query {
            key: args.key,
            tags: args.tags.unwrap_or_default(),
            actor: args.actor,
            status: args.status,
            text: args.text.filter(|t| !t.trim().is_empty()),
            since_ms: args.since_ms,
            until_ms: args.until_ms,
        };
        let spaces = args.spaces.unwrap_or_default();
        self.read(move |log| {
            let found = log.search(&spaces, &query, limit)?;
            let (total, hits) = (found.total as usize, found.hits);
            let lines: Vec<String> = hits
                .iter()
                .map(|h| {
                    format!(
                        "{}/{} [{}] {} (id {})",
                        h.space,
                        h.key,
                        h.status,
                        h.record["choice"].as_str().unwrap_or(""),
                        h.id
                    )
                })
                .collect();
            let text = if hits.is_empty() {
                "no decision matches".to_owned()
            } else {
                format!(
                    "{total} match(es){}\n{}",
                    if total > limit { format!(", first {limit}") } else { String::new() },
                    lines.join("\n")
                )
            };
            Ok(ok(text, json!({"hits": hits, "total": total})))
        })
        .await
    }
}

impl DecisionLogServer {
    async fn close(&self, kind: &str, args: Args<CloseArgs>) -> CallToolResult {
        let args = match args.0 {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        if kind == "reject" && args.rationale.is_none() {
            return invalid("rationale: required to reject a proposal".into());
        }
        if kind == "reject" && args.supersedes.is_some() {
            return invalid("supersedes: only accept takes it".into());
        }
        let actor = match self.actor(args.actor) {
            Ok(a) => a,
            Err(e) => return tool_error(&e, None),
        };
        let mut body = json!({"key": args.key, "proposal": args.proposal});
        for (name, v) in [("rationale", args.rationale), ("supersedes", args.supersedes)] {
            if let Some(v) = v {
                body[name] = json!(v);
            }
        }
        let intent = Intent {
            id: args.id,
            actor,
            kind: kind.into(),
            body: body.to_string(),
            expect_seq: args.expect_seq,
        };
        self.append(args.space, intent).await
    }
}
