//! The JSON API under `/v1`. Each route is one handler annotated with its
//! OpenAPI operation and one `.routes(routes!(…))` line in [`api`]; the
//! document at `/v1/openapi.json` is generated from exactly these.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{
    AppendedDoc, EventsPage, FoldDoc, IntentDoc, ProblemDoc, SearchDoc, ShownDoc, SpacesList,
};
use super::problem::{Problem, from_body_rejection};
use crate::error::Error;
use crate::serve::Appending;
use crate::types::{Appended, Event, Intent, Position};

/// The most events one page lists.
const MAX_PAGE: u32 = 1000;

/// Every API route. Adding one is a handler below and one line here.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_spaces))
        .routes(routes!(fold))
        .routes(routes!(overlay))
        .routes(routes!(union))
        .routes(routes!(list_events, append))
        .routes(routes!(stream))
        .routes(routes!(show))
        .routes(routes!(search))
        .routes(routes!(openapi_doc))
}

/// Run a blocking library call (every call into the guest) off the async
/// workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::from(Error::Guest(format!("a task serving the request failed: {e}"))))?
        .map_err(Problem::from)
}

/// An event as the API shows it: its canonical JSON, plus the commit that stores it.
pub(crate) fn event_json(e: &Event) -> Value {
    let mut v: Value = serde_json::from_str(&e.canonical).unwrap_or(Value::Null);
    v["commit"] = json!(e.commit);
    v
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Canonical JSON from the guest, passed through as it is.
fn raw_json(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// The query's parameters, refusing any this route does not know.
fn params(
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    known: &[&str],
) -> Result<BTreeMap<String, String>, Problem> {
    let Query(params) = query.map_err(|e| Problem::invalid(format!("the query string is not valid: {e}")))?;
    if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
        let expected = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
        return Err(Problem::invalid(format!("unknown query parameter {unknown:?} (expected: {expected})")));
    }
    Ok(params)
}

fn number(params: &BTreeMap<String, String>, name: &str) -> Result<Option<u64>, Problem> {
    params
        .get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| Problem::invalid(format!("{name}={v:?} is not a whole number")))
        })
        .transpose()
}

fn space_list(params: &BTreeMap<String, String>) -> Result<Vec<String>, Problem> {
    let list: Vec<String> = params
        .get("spaces")
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    if list.is_empty() {
        return Err(Problem::invalid("name the spaces: ?spaces=a,b"));
    }
    Ok(list)
}

/// The spaces with at least one event, each with its head.
#[utoipa::path(get, path = "/v1/spaces", tag = "spaces",
    responses(
        (status = 200, description = "Every space with its head and event count", body = SpacesList),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list_spaces(State(state): State<AppState>) -> Result<Response, Problem> {
    let log = state.log.clone();
    let spaces = blocking(move || {
        let mut out = Vec::new();
        for name in log.spaces()? {
            let head = log.space(&name).head()?;
            out.push(json!({"space": name, "events": head.as_ref().map_or(0, |h| h.seq), "head": head}));
        }
        Ok(out)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &json!({"spaces": spaces})))
}

/// A space's fold: the decisions in force, as `dlog fold --json`.
#[utoipa::path(get, path = "/v1/spaces/{space}", tag = "spaces",
    params(
        ("space" = String, Path, description = "The space"),
        ("at" = Option<String>, Query, description = "Fold up to this seq or commit instead of the head"),
    ),
    responses(
        (status = 200, description = "The fold (canonical JSON)", body = FoldDoc),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn fold(
    State(state): State<AppState>,
    Path(space): Path<String>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, Problem> {
    let params = params(query, &["at"])?;
    let handle = state.log.space(&space);
    let at = params.get("at").map(|at| match at.parse::<u64>() {
        Ok(seq) => Position::Seq(seq),
        Err(_) => Position::Commit(at.to_ascii_lowercase()),
    });
    match at {
        Some(at) => Ok(raw_json(blocking(move || handle.fold_at(&at)).await?)),
        None => stream_fold(handle).await,
    }
}

/// The fold at the head as a streamed body, piece by piece from the guest
/// (`Space::fold_each`), so that a large space's fold is never held whole.
/// A problem before the first piece is an error response; one after it
/// (the head moved while the guest instance was replaced) can only cut the
/// body short, which the client sees as an incomplete response.
async fn stream_fold(handle: crate::Space) -> Result<Response, Problem> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, Error>>(2);
    tokio::task::spawn_blocking(move || {
        // A send fails only when the client has gone: stop reading then.
        let result = handle.fold_each(|piece| Ok(tx.blocking_send(Ok(piece.to_owned())).is_ok()));
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let first = match rx.recv().await {
        Some(Ok(piece)) => piece,
        Some(Err(e)) => return Err(Problem::from(e)),
        None => return Err(Problem::from(Error::Guest("the fold ended before its first piece".into()))),
    };
    let rest =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let body = futures_util::StreamExt::chain(futures_util::stream::once(async move { Ok(first) }), rest);
    Ok(([(header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(body)).into_response())
}

/// Several spaces as one view: for each key, the first listed space that decides it wins.
#[utoipa::path(get, path = "/v1/overlay", tag = "views",
    params(("spaces" = String, Query, description = "Comma-separated spaces, first wins: a,b")),
    responses(
        (status = 200, description = "The overlay view, as `dlog fold --overlay --json`", body = FoldDoc),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn overlay(
    State(state): State<AppState>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, Problem> {
    let spaces = space_list(&params(query, &["spaces"])?)?;
    let log = state.log.clone();
    Ok(raw_json(blocking(move || log.overlay(&spaces)).await?))
}

/// Several spaces side by side, with the keys where they disagree.
#[utoipa::path(get, path = "/v1/union", tag = "views",
    params(("spaces" = String, Query, description = "Comma-separated spaces: a,b")),
    responses(
        (status = 200, description = "The union view, as `dlog fold --union --json`", body = FoldDoc),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn union(
    State(state): State<AppState>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, Problem> {
    let spaces = space_list(&params(query, &["spaces"])?)?;
    let log = state.log.clone();
    Ok(raw_json(blocking(move || log.union(&spaces)).await?))
}

/// A page of a space's events, oldest first.
#[utoipa::path(get, path = "/v1/spaces/{space}/events", tag = "events",
    params(
        ("space" = String, Path, description = "The space"),
        ("from" = Option<u64>, Query, description = "The first seq to list (default 1)"),
        ("limit" = Option<u32>, Query, description = "How many at most (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "The events, and the seq to ask for next when the page was full", body = EventsPage),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn list_events(
    State(state): State<AppState>,
    Path(space): Path<String>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, Problem> {
    let params = params(query, &["from", "limit"])?;
    let from = number(&params, "from")?.unwrap_or(1).max(1);
    let limit = number(&params, "limit")?.unwrap_or(100);
    if limit == 0 || limit > u64::from(MAX_PAGE) {
        return Err(Problem::invalid(format!("limit={limit}: give 1 to {MAX_PAGE}")));
    }
    let handle = state.log.space(&space);
    let page = blocking(move || handle.events(from, limit as u32)).await?;
    let next = (page.len() as u64 == limit).then(|| page.last().map(|e| e.seq + 1)).flatten();
    let events: Vec<Value> = page.iter().map(event_json).collect();
    Ok(json_response(StatusCode::OK, &json!({"space": space, "events": events, "next": next})))
}

/// An intent as `dlog append --intent` reads it. The body stays raw so the
/// guest's strict intake sees exactly what the client sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentBody {
    id: Option<String>,
    actor: String,
    kind: String,
    body: Box<RawValue>,
    expect_seq: Option<u64>,
}

/// Append one intent. Idempotent by intent id: a resend answers 200 with the original event.
#[utoipa::path(post, path = "/v1/spaces/{space}/events", tag = "events",
    params(("space" = String, Path, description = "The space")),
    request_body(content = IntentDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Appended", body = AppendedDoc),
        (status = 200, description = "The intent id was already in the log: the original event", body = AppendedDoc),
        (status = 409, description = "expect_seq or supersedes does not match, the id was used for another intent, or the lease moved", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn append(
    State(state): State<AppState>,
    Path(space): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("");
        let essence = kind.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!("the body is {kind:?}; send an intent as application/json"),
            ));
        }
    }
    let bytes = body.map_err(|r| from_body_rejection(&r))?;
    let parsed: IntentBody = serde_json::from_slice(&bytes)
        .map_err(|e| Problem::invalid(format!("the intent is not valid: {e}")))?;
    let intent = Intent {
        id: parsed.id,
        actor: parsed.actor,
        kind: parsed.kind,
        body: parsed.body.get().to_owned(),
        expect_seq: parsed.expect_seq,
    }
    .with_assigned_id();
    let appended = append_intent(&state, &space, intent).await?;
    let status = if appended.created { StatusCode::CREATED } else { StatusCode::OK };
    let body = json!({"created": appended.created, "commit": appended.event.commit, "event": event_json(&appended.event)});
    let mut response = json_response(status, &body);
    let location = format!("/v1/spaces/{space}/events?from={}&limit=1", appended.event.seq);
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Through the socket's group commit when this serve holds the space; else
/// by the lease protocol, as `dlog append` would (forward, or one-shot).
async fn append_intent(state: &AppState, space: &str, intent: Intent) -> Result<Appended, Problem> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let routed = match state.appender.append(
        space,
        intent.clone(),
        Box::new(move |result| {
            let _ = reply.send(result);
        }),
    ) {
        Appending::Queued => match answer.await {
            // The lease moved between the look and the append: go round
            // the lease protocol like any other writer.
            Ok(Err(Error::NotHolder { .. })) => state.log.space(space),
            Ok(result) => return result.map_err(Problem::from),
            Err(_) => return Err(Error::Guest("the committing thread stopped".into()).into()),
        },
        Appending::Route(handle) => handle,
    };
    blocking(move || routed.append(intent)).await
}

/// A stream (Server-Sent Events) of the space's new events, whoever appends them.
#[utoipa::path(get, path = "/v1/spaces/{space}/events/stream", tag = "events",
    params(
        ("space" = String, Path, description = "The space"),
        ("from" = Option<u64>, Query, description = "Send events from this seq on (default: only new ones)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this seq (what EventSource sends on reconnect)"),
    ),
    responses(
        (status = 200, description = "text/event-stream: one message per event, its id the seq, its data the event as JSON", content_type = "text/event-stream", body = String),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn stream(
    State(state): State<AppState>,
    Path(space): Path<String>,
    headers: HeaderMap,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, Problem> {
    let params = params(query, &["from"])?;
    crate::lease::check_space(&space)?;
    let resume =
        match headers.get("last-event-id") {
            Some(v) => Some(v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).ok_or_else(|| {
                Problem::invalid(format!("Last-Event-ID {v:?} is not a seq (a whole number)"))
            })?),
            None => None,
        };
    let after = match (resume, number(&params, "from")?) {
        (Some(seq), _) => Some(seq),
        (None, Some(from)) => Some(from.saturating_sub(1)),
        (None, None) => None,
    };
    Ok(state.streams.stream(space, after).await?.into_response())
}

/// One decision: what is in force (or was withdrawn), why, why not, and its history.
#[utoipa::path(get, path = "/v1/spaces/{space}/decisions/{key}", tag = "spaces",
    params(
        ("space" = String, Path, description = "The space"),
        ("key" = String, Path, description = "The decision key (percent-encoded)"),
    ),
    responses(
        (status = 200, description = "The decision and every event about its key", body = ShownDoc),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn show(
    State(state): State<AppState>,
    Path((space, key)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let handle = state.log.space(&space);
    let shown = blocking(move || handle.show(&key)).await?;
    Ok(json_response(StatusCode::OK, &shown_json(&shown)))
}

/// A [`crate::Shown`] with its history as API events.
pub(crate) fn shown_json(shown: &crate::Shown) -> Value {
    json!({
        "space": shown.space,
        "key": shown.key,
        "decision": shown.decision,
        "retracted": shown.retracted,
        "proposals": shown.proposals,
        "history": shown.history.iter().map(event_json).collect::<Vec<_>>(),
    })
}

/// The most records one search returns.
const MAX_HITS: usize = 1000;

/// A time for `since`/`until`: ms since the epoch, or an RFC 3339 time or
/// date (`2024-01-31`, midnight UTC).
fn time_param(params: &BTreeMap<String, String>, name: &str) -> Result<Option<u64>, Problem> {
    let Some(v) = params.get(name) else { return Ok(None) };
    if let Ok(ms) = v.parse::<u64>() {
        return Ok(Some(ms));
    }
    crate::find::parse_time(v)
        .map(Some)
        .map_err(|e| Problem::invalid(format!("{name}={v:?} is not a time: {e}")))
}

/// Search the records of every space (or `spaces`), as `dlog find --json`.
#[utoipa::path(get, path = "/v1/search", tag = "views",
    params(
        ("q" = Option<String>, Query, description = "Words that must all occur in the title, choice, rationale, context, consequences or a why-not"),
        ("spaces" = Option<String>, Query, description = "Comma-separated spaces (default: all)"),
        ("key" = Option<String>, Query, description = "A key, or a key prefix ending in *"),
        ("tag" = Option<String>, Query, description = "Comma-separated tags the record must all carry"),
        ("actor" = Option<String>, Query, description = "Who decided, proposed, accepted or withdrew it, or one of its deciders"),
        ("status" = Option<String>, Query, description = "accepted, retracted, deprecated, proposed, draft, rejected, or a team's own"),
        ("since" = Option<String>, Query, description = "From this time on: ms since the epoch, RFC 3339, or a date"),
        ("until" = Option<String>, Query, description = "Before this time: ms since the epoch, RFC 3339, or a date"),
        ("limit" = Option<u64>, Query, description = "Most records to return (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "The matching records and how many there are", body = SearchDoc),
        (status = "default", description = "A problem", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
async fn search(
    State(state): State<AppState>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, Problem> {
    let params = params(query, &["q", "spaces", "key", "tag", "actor", "status", "since", "until", "limit"])?;
    let limit = number(&params, "limit")?.unwrap_or(100) as usize;
    if limit == 0 || limit > MAX_HITS {
        return Err(Problem::invalid(format!("limit={limit} must be from 1 to {MAX_HITS}")));
    }
    let list = |name: &str| -> Vec<String> {
        params
            .get(name)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let query = crate::find::Query {
        key: params.get("key").cloned(),
        tags: list("tag"),
        actor: params.get("actor").cloned(),
        status: params.get("status").cloned(),
        text: params.get("q").filter(|q| !q.trim().is_empty()).cloned(),
        since_ms: time_param(&params, "since")?,
        until_ms: time_param(&params, "until")?,
    };
    let spaces = list("spaces");
    let log = state.log.clone();
    let found = blocking(move || log.search(&spaces, &query, limit)).await?;
    Ok(json_response(StatusCode::OK, &json!({"total": found.total, "hits": found.hits})))
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
async fn openapi_doc() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    raw_json(DOC.get_or_init(super::openapi_json).clone())
}

/// Middleware: bound how many requests are answered at once and how long
/// each may take. Event streams are long by design; they have their own bound.
pub(crate) async fn bounded(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.uri().path().ends_with("/events/stream") {
        return next.run(request).await;
    }
    let limits = state.limits;
    // A body declared too large is refused at once, before a byte of it is
    // read: waiting for it would hold a connection for nothing.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&len| len > limits.body_bytes as u64) {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the request body is {len} bytes; the limit is {} bytes", limits.body_bytes),
        )
        .into_response();
    }
    let permit =
        match tokio::time::timeout(limits.request_timeout / 6, state.in_flight.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                return Problem::busy(format!(
                    "the server is answering {} requests already; try again",
                    limits.max_in_flight
                ))
                .into_response();
            }
        };
    let answer = tokio::time::timeout(limits.request_timeout, next.run(request)).await;
    drop(permit);
    answer.unwrap_or_else(|_| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request-timeout",
            format!(
                "the request took longer than {} s; an append may still land: resend it with the same id to find out",
                limits.request_timeout.as_secs()
            ),
        )
        .into_response()
    })
}
