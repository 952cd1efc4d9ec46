//! The tools: one method per tool, named like the `dlog` command it mirrors,
//! with arguments named like the intent JSON. Adding a tool is one argument
//! struct and one `#[tool]` method here.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::args::Args;
use super::errors::tool_error;
use super::server::DecisionLogServer;
use crate::{Appended, Error, Event, Intent, Log, Position};

/// Most events one `events` call returns.
const MAX_EVENTS: u32 = 1000;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

/// Which state to fold: one space, or several as an overlay or a union.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FoldArgs {
    /// The space to fold (give exactly one of space, overlay, union).
    space: Option<String>,
    /// Spaces layered in order: for each key, the first listed space that decides it wins (e.g. ["team", "org"]).
    overlay: Option<Vec<String>>,
    /// Spaces side by side: every space's decisions, and the keys on which their choices disagree.
    union: Option<Vec<String>>,
    /// With space: fold only up to and including this seq (the state as it was then).
    at: Option<u64>,
}

/// One decision of one space.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShowArgs {
    /// The space.
    space: String,
    /// The decision key (e.g. "storage").
    key: String,
}

/// A page of a space's events.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsArgs {
    /// The space.
    space: String,
    /// The first seq to return (default 1: the oldest event).
    from: Option<u64>,
    /// Most events to return (default 100, at most 1000).
    limit: Option<u32>,
}

/// An alternative that was not chosen.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Inline, not a `$ref`: some agents' schema readers do not follow references.
#[schemars(inline)]
pub(crate) struct Rejected {
    /// The option considered.
    pub(super) option: String,
    /// Why it was not chosen.
    pub(super) why: String,
}

/// A decision to append.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecideArgs {
    /// The space (lowercase letters, digits, '.', '_', '-'; e.g. "platform").
    space: String,
    /// What is being decided (e.g. "storage"). One decision per key is in force at a time.
    key: String,
    /// What was chosen.
    choice: String,
    /// Why it was chosen.
    rationale: String,
    /// Alternatives considered and why each was not chosen.
    rejected: Option<Vec<Rejected>>,
    /// The id of the decision in force for this key, when this one replaces it (read it with show or fold). The append then succeeds only while that decision is still in force; otherwise it fails with a decision-conflict naming the decision in force.
    supersedes: Option<String>,
    /// Idempotency key (1-128 visible ASCII characters, no spaces). Reuse the same id when you retry: a resend returns the original event with created=false instead of appending twice. Default: a fresh UUIDv7.
    id: Option<String>,
    /// Append only if the space's newest event has this seq (0 for an empty space); otherwise a head-conflict error.
    expect_seq: Option<u64>,
    /// Who decides (default: the server's DLOG_ACTOR).
    actor: Option<String>,
    /// A one-line title (e.g. "Use PostgreSQL for persistence").
    title: Option<String>,
    /// The problem this decision answers.
    context: Option<String>,
    /// What follows from the decision, good and bad.
    consequences: Option<String>,
    /// Who made the decision (names, each once).
    deciders: Option<Vec<String>>,
    /// Who was consulted.
    consulted: Option<Vec<String>>,
    /// Who was informed.
    informed: Option<Vec<String>>,
    /// Tags, each one word (e.g. ["storage", "security"]); search filters on them.
    tags: Option<Vec<String>>,
    /// Links to other decisions or pages: each names exactly one of id (an event id), key (a decision key) or url.
    links: Option<Vec<super::records::Link>>,
    /// Anything else worth keeping, as any JSON value (stored in RFC 8785 canonical form).
    meta: Option<Value>,
}

/// A retraction to append.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetractArgs {
    /// The space.
    space: String,
    /// The key whose decision is withdrawn.
    key: String,
    /// Why it is withdrawn.
    rationale: String,
    /// The id of the decision in force (read it with show); when given, the retraction fails if another decision is in force.
    supersedes: Option<String>,
    /// Idempotency key: reuse the same id when you retry (see decide).
    id: Option<String>,
    /// Append only if the space's newest event has this seq; otherwise a head-conflict error.
    expect_seq: Option<u64>,
    /// Who retracts (default: the server's DLOG_ACTOR).
    actor: Option<String>,
    /// How it is withdrawn, when not plainly retracted: e.g. "deprecated" (lowercase).
    status: Option<String>,
}

/// An event as agents see it: the stored canonical JSON, with its commit.
pub(crate) fn event_json(e: &Event) -> Value {
    let mut v: Value = serde_json::from_str(&e.canonical).unwrap_or(Value::Null);
    v["commit"] = json!(e.commit);
    v
}

/// A result: a short text, then the structured content again as JSON text,
/// for clients that hand a model only the `content` blocks (the spec asks
/// for the serialized JSON there too).
pub(super) fn ok(text: String, structured: Value) -> CallToolResult {
    let mut result =
        CallToolResult::success(vec![ContentBlock::text(text), ContentBlock::text(structured.to_string())]);
    result.structured_content = Some(structured);
    result
}

fn parse(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Guest(format!("the component returned invalid JSON: {e}")))
}

/// The decisions of a fold as `key = choice` lines.
fn decision_lines(decisions: &Value) -> String {
    let lines: Vec<String> = decisions
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, d)| match d["choice"].as_str() {
            Some(choice) => format!("{key} = {choice} (id {})", d["id"].as_str().unwrap_or("")),
            // A union: one decision per space.
            None => {
                let by_space: Vec<String> = d
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(space, d)| format!("{space}: {}", d["choice"].as_str().unwrap_or("")))
                    .collect();
                format!("{key} = {}", by_space.join(" | "))
            }
        })
        .collect();
    if lines.is_empty() { "no decisions in force".into() } else { lines.join("\n") }
}

fn appended_result(a: &Appended) -> CallToolResult {
    let e = &a.event;
    let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    let what = match (e.kind.as_str(), body["choice"].as_str()) {
        ("decide", Some(choice)) => format!("decide {} = {choice}", body["key"].as_str().unwrap_or("")),
        (kind, _) => format!("{kind} {}", body["key"].as_str().unwrap_or("")),
    };
    let verb = if a.created { "appended" } else { "already in the log (a resend):" };
    ok(
        format!("{verb} {} #{} {what} (id {}, epoch {})", e.space, e.seq, e.id, e.epoch),
        json!({"created": a.created, "event": event_json(e)}),
    )
}

impl DecisionLogServer {
    /// The actor of an append: the argument, else `DLOG_ACTOR`.
    pub(super) fn actor(&self, given: Option<String>) -> Result<String, Error> {
        given.or_else(|| self.actor.clone()).ok_or_else(|| {
            Error::Invalid(
                "actor: no actor given; pass the actor argument (your agent's name), or start the server with DLOG_ACTOR set"
                    .into(),
            )
        })
    }

    /// Append one intent as the CLI does (same lease routing), on a blocking thread.
    pub(super) async fn append(&self, space: String, intent: Intent) -> CallToolResult {
        let result = self
            .blocking(move |log| {
                let space = log.space(&space);
                match space.append(intent) {
                    Ok(a) => (appended_result(&a), a.created),
                    // Described here, on the blocking thread: a decision
                    // conflict reads the decision in force back.
                    Err(e) => (tool_error(&e, Some(&space)), false),
                }
            })
            .await;
        match result {
            Ok((result, created)) => {
                if created {
                    self.touched();
                }
                result
            }
            Err(e) => tool_error(&e, None),
        }
    }

    /// A read on a blocking thread, its failure as a tool error.
    pub(super) async fn read(
        &self,
        f: impl FnOnce(&Log) -> Result<CallToolResult, Error> + Send + 'static,
    ) -> CallToolResult {
        self.blocking(move |log| f(log).unwrap_or_else(|e| tool_error(&e, None)))
            .await
            .unwrap_or_else(|e| tool_error(&e, None))
    }
}

pub(super) fn invalid(message: String) -> CallToolResult {
    tool_error(&Error::Invalid(message), None)
}

#[tool_router(vis = "pub(crate)")]
impl DecisionLogServer {
    /// The tool table, built once per server.
    pub(crate) fn tools() -> ToolRouter<Self> {
        Self::tool_router() + Self::records_router()
    }

    #[tool(
        description = "List the spaces of the decision log (a space is one team's or topic's ordered log of decisions) with each one's newest seq. Start here to learn what exists.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn spaces(&self, Parameters(args): Parameters<Args<NoArgs>>) -> CallToolResult {
        if let Err(e) = args.0 {
            return invalid(e);
        }
        self.read(|log| {
            let mut spaces = Vec::new();
            for name in log.spaces()? {
                let head = log.space(&name).head()?;
                spaces.push(json!({
                    "space": name,
                    "seq": head.as_ref().map_or(0, |h| h.seq),
                    "at_ms": head.as_ref().map(|h| h.at_ms),
                }));
            }
            let text = if spaces.is_empty() {
                "no spaces yet: the first decide creates one".to_owned()
            } else {
                spaces
                    .iter()
                    .map(|s| format!("{} ({} events)", s["space"].as_str().unwrap_or(""), s["seq"]))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            Ok(ok(text, json!({"spaces": spaces})))
        })
        .await
    }

    #[tool(
        description = "The decisions in force: a space's fold (every key's current choice, rationale, rejected options, id, actor and seq, plus retracted keys), or several spaces as an overlay (first listed space wins per key) or a union (all, with the keys they disagree on). Read this before deciding, to see what is already decided.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn fold(&self, Parameters(args): Parameters<Args<FoldArgs>>) -> CallToolResult {
        let args = match args.0 {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        self.read(move |log| {
            let (text, view) = match (args.space, args.overlay, args.union, args.at) {
                (Some(space), None, None, at) => {
                    let space = log.space(&space);
                    let text = match at {
                        Some(seq) => space.fold_at(&Position::Seq(seq))?,
                        None => space.fold()?,
                    };
                    (text, None)
                }
                (None, Some(spaces), None, None) => (log.overlay(&spaces)?, Some("overlay")),
                (None, None, Some(spaces), None) => (log.union(&spaces)?, Some("union")),
                (None, _, _, Some(_)) => {
                    return Err(Error::Invalid("at: only applies to a single space".into()));
                }
                _ => return Err(Error::Invalid("space, overlay, union: give exactly one of them".into())),
            };
            let state = parse(&text)?;
            let head = match view {
                None => format!("{} at seq {}", state["space"].as_str().unwrap_or(""), state["seq"]),
                Some(view) => format!("{view} of {}", state["spaces"]),
            };
            let mut text = format!("{head}\n{}", decision_lines(&state["decisions"]));
            if let Some(conflicts) = state["conflicts"].as_array().filter(|c| !c.is_empty()) {
                let keys: Vec<&str> = conflicts.iter().filter_map(|c| c["key"].as_str()).collect();
                text.push_str(&format!("\nthe spaces disagree on: {}", keys.join(", ")));
            }
            Ok(ok(text, state))
        })
        .await
    }

    #[tool(
        description = "One decision: the choice in force and its id (needed to supersede it), why, why not (rejected options), and every event that ever touched the key, oldest first. Use it before superseding a decision and after a decision-conflict.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn show(&self, Parameters(args): Parameters<Args<ShowArgs>>) -> CallToolResult {
        let args = match args.0 {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        self.read(move |log| {
            let shown = log.space(&args.space).show(&args.key)?;
            let text = match (&shown.decision, &shown.retracted) {
                (Some(d), _) => format!(
                    "{} / {} = {} (id {}, by {}, seq {})\nwhy: {}",
                    shown.space,
                    shown.key,
                    d["choice"].as_str().unwrap_or(""),
                    d["id"].as_str().unwrap_or(""),
                    d["actor"].as_str().unwrap_or(""),
                    d["seq"],
                    d["rationale"].as_str().unwrap_or("")
                ),
                (None, Some(r)) => format!(
                    "{} / {}: retracted (was {}): {}",
                    shown.space,
                    shown.key,
                    r["choice"].as_str().unwrap_or(""),
                    r["rationale"].as_str().unwrap_or("")
                ),
                (None, None) => format!("{} / {}: nothing in force", shown.space, shown.key),
            } + &format!("\n{} events in its history", shown.history.len());
            let history: Vec<Value> = shown.history.iter().map(event_json).collect();
            Ok(ok(
                text,
                json!({"space": shown.space, "key": shown.key, "decision": shown.decision,
                       "retracted": shown.retracted, "history": history}),
            ))
        })
        .await
    }

    #[tool(
        description = "A page of a space's events (decide, retract, authority), oldest first, from seq `from`. Every event has a seq (its place in the space's one total order), an id, an actor and an epoch. To page, call again with from = next.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn events(&self, Parameters(args): Parameters<Args<EventsArgs>>) -> CallToolResult {
        let args = match args.0 {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        let limit = args.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_EVENTS {
            return invalid(format!("limit: must be between 1 and {MAX_EVENTS}, not {limit}"));
        }
        self.read(move |log| {
            let from = args.from.unwrap_or(1).max(1);
            let events = log.space(&args.space).events(from, limit)?;
            let next = events.last().map_or(from, |e| e.seq + 1);
            let text = match (events.first(), events.last()) {
                (Some(first), Some(last)) => {
                    format!(
                        "{} events of {}: #{}..#{}; next from {next}",
                        events.len(),
                        args.space,
                        first.seq,
                        last.seq
                    )
                }
                _ => format!("no events in {} from #{from}", args.space),
            };
            let events: Vec<Value> = events.iter().map(event_json).collect();
            Ok(ok(text, json!({"space": args.space, "events": events, "next": next})))
        })
        .await
    }

    #[tool(
        description = "Record a decision: for `key` in `space`, what was chosen (`choice`), why (`rationale`) and what was rejected and why not (`rejected`). Read the space first (fold, or show for the key). A key with no decision in force: decide without `supersedes`. To change a decision in force: set `supersedes` to its id; the append succeeds only if that decision is still the one in force, so you never overwrite a decision you have not read. If someone decided the key meanwhile, the call fails with a decision-conflict error whose structured content gives the decision now in force (in_force: id, choice, rationale): read it with show, then decide whether to supersede it. (Without `supersedes`, a decide replaces whatever is in force unchecked: do that only deliberately.) Pass an `id` to make retries safe: resending the same id returns the original event with created=false.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn decide(&self, Parameters(args): Parameters<Args<DecideArgs>>) -> CallToolResult {
        let args = match args.0 {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        let actor = match self.actor(args.actor) {
            Ok(a) => a,
            Err(e) => return tool_error(&e, None),
        };
        let details = super::records::Details {
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
        let body = super::records::record_body(
            args.key,
            args.choice,
            args.rationale,
            args.rejected,
            args.supersedes,
            details,
        );
        let intent = Intent {
            id: args.id,
            actor,
            kind: "decide".into(),
            body: body.to_string(),
            expect_seq: args.expect_seq,
        };
        self.append(args.space, intent).await
    }

    #[tool(
        description = "Withdraw the decision in force for `key` in `space`, with a `rationale`. Give `supersedes` (the id of the decision in force, from show) to make sure you withdraw the decision you read, not a newer one. Pass an `id` to make retries safe, as for decide.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn retract(&self, Parameters(args): Parameters<Args<RetractArgs>>) -> CallToolResult {
        let args = match args.0 {
            Ok(a) => a,
            Err(e) => return invalid(e),
        };
        let actor = match self.actor(args.actor) {
            Ok(a) => a,
            Err(e) => return tool_error(&e, None),
        };
        let mut body = json!({"key": args.key, "rationale": args.rationale});
        if let Some(s) = args.supersedes {
            body["supersedes"] = json!(s);
        }
        if let Some(status) = args.status {
            body["status"] = json!(status);
        }
        let intent = Intent {
            id: args.id,
            actor,
            kind: "retract".into(),
            body: body.to_string(),
            expect_seq: args.expect_seq,
        };
        self.append(args.space, intent).await
    }
}
