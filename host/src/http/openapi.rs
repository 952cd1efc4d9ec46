//! The OpenAPI 3.1 document: the paths come from the handlers' annotations
//! (`routes.rs`); the schemas below describe the JSON they write. The API's
//! bodies are built as JSON values (they pass the guest's canonical JSON
//! through), so these types exist for the document only.
#![allow(dead_code)]

use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

/// An RFC 9457 problem (`application/problem+json`).
#[derive(ToSchema)]
pub(crate) struct ProblemDoc {
    /// `urn:decision-log:problem:<kind>`.
    r#type: String,
    /// The same for every problem of this kind.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What went wrong this time.
    detail: String,
    /// The kind, as `dlog --json` names errors: invalid, head-conflict,
    /// decision-conflict, id-conflict, not-holder, stale-epoch, timeout,
    /// not-found, corrupt, storage, guest; and HTTP's own: unauthorized,
    /// forbidden, too-large, method-not-allowed, unsupported-media-type,
    /// busy, request-timeout.
    kind: String,
    /// head-conflict: the head now.
    head: Option<HeadDoc>,
    /// decision-conflict: the id of the decision in force.
    in_force: Option<String>,
    /// not-holder, timeout: the lease holder.
    holder: Option<Object>,
}

/// A space's newest event.
#[derive(ToSchema)]
pub(crate) struct HeadDoc {
    /// Its commit.
    commit: String,
    /// Its seq: the number of events.
    seq: u64,
    /// The highest epoch written.
    epoch: u64,
    /// Its time, milliseconds since 1970.
    at_ms: u64,
}

/// Free-form JSON.
#[derive(ToSchema)]
pub(crate) struct Object {}

/// One space.
#[derive(ToSchema)]
pub(crate) struct SpaceDoc {
    /// The space.
    space: String,
    /// How many events it holds.
    events: u64,
    /// Its newest event.
    head: Option<HeadDoc>,
}

/// The spaces.
#[derive(ToSchema)]
pub(crate) struct SpacesList {
    /// Every space with at least one event.
    spaces: Vec<SpaceDoc>,
}

/// A fold or view, as `dlog fold --json` prints it: `space`, `seq`, `head`,
/// `decisions` (by key), `retracted`, `authority`, `counts`.
#[derive(ToSchema)]
pub(crate) struct FoldDoc {
    /// The space (a view has `view` and `spaces` instead).
    space: Option<String>,
    /// The decisions in force, by key.
    decisions: Object,
}

/// An event: its canonical JSON plus `commit`.
#[derive(ToSchema)]
pub(crate) struct EventDoc {
    /// The space.
    space: String,
    /// Position from 1.
    seq: u64,
    /// The lease epoch it was written under.
    epoch: u64,
    /// The intent id.
    id: String,
    /// Who decided.
    actor: String,
    /// Milliseconds since 1970.
    at_ms: u64,
    /// decide, retract or authority.
    kind: String,
    /// The body.
    body: Object,
    /// Format version.
    v: u32,
    /// The commit storing it.
    commit: String,
}

/// A page of events.
#[derive(ToSchema)]
pub(crate) struct EventsPage {
    /// The space.
    space: String,
    /// Oldest first.
    events: Vec<EventDoc>,
    /// The `from` of the next page when this one was full.
    next: Option<u64>,
}

/// An intent, as `dlog append --intent` reads it.
#[derive(ToSchema)]
pub(crate) struct IntentDoc {
    /// Idempotency key (1–128 visible ASCII); assigned when absent.
    id: Option<String>,
    /// Who decides.
    actor: String,
    /// decide or retract.
    kind: String,
    /// decide: {key, choice, rationale, rejected?: [{option, why}], supersedes?};
    /// retract: {key, rationale, supersedes?}.
    body: Object,
    /// Append only if the head is at this seq (0: empty space).
    expect_seq: Option<u64>,
}

/// The outcome of an append.
#[derive(ToSchema)]
pub(crate) struct AppendedDoc {
    /// False when the id was already in the log (the original event is returned).
    created: bool,
    /// The commit storing the event.
    commit: String,
    /// The event.
    event: EventDoc,
}

/// One decision with its history.
#[derive(ToSchema)]
pub(crate) struct ShownDoc {
    /// The space.
    space: String,
    /// The key.
    key: String,
    /// In force, as the fold shows it.
    decision: Option<Object>,
    /// Withdrawn, when the key's latest event withdrew it.
    retracted: Option<Object>,
    /// Proposals for the key not accepted (open or rejected), oldest first.
    proposals: Vec<Object>,
    /// Every event about the key, oldest first.
    history: Vec<EventDoc>,
}

/// A search's answer, as `dlog find --json` prints each record.
#[derive(ToSchema)]
pub(crate) struct SearchDoc {
    /// How many records match (before `limit`).
    total: u64,
    /// The records: `space`, `key`, `status`, `id`, `seq`, `at_ms` and `record` (as the fold shows it).
    hits: Vec<Object>,
}

/// The document with its title, description and security schemes.
pub(crate) fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info.title = "decision-log HTTP API".into();
    // The router starts from utoipa's own package metadata; this API is ours.
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.contact = None;
    doc.info.license = Some(utoipa::openapi::License::new(env!("CARGO_PKG_LICENSE")));
    doc.info.description = Some(
        "The decisions of a git-backed, append-only decision log, served by `dlog serve --http`. \
         Errors are RFC 9457 problem details. On a non-loopback bind every request needs a token \
         (read or write) as a bearer token or the password of HTTP Basic."
            .into(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    doc
}
