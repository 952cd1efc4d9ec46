//! Errors as RFC 9457 problem details (`application/problem+json`): `type`,
//! `title`, `status`, `detail`, and `kind` — the same kind names as
//! `dlog --json` errors — plus what a client needs to act on a conflict (the
//! head, the decision in force) or on a lease (the holder).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::Error;

/// One failed request.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) detail: String,
    extra: Map<String, Value>,
    headers: Vec<(header::HeaderName, String)>,
}

impl Problem {
    /// A problem of `kind` with `status`, explained by `detail`.
    pub(crate) fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Problem {
        Problem { status, kind, detail: detail.into(), extra: Map::new(), headers: Vec::new() }
    }

    /// Malformed input (400).
    pub(crate) fn invalid(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid", detail)
    }

    /// The server is at one of its limits (503); try again shortly.
    pub(crate) fn busy(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", detail).header(header::RETRY_AFTER, "1")
    }

    /// The same problem with one more member.
    pub(crate) fn with(mut self, name: &str, value: Value) -> Problem {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// The same problem with a response header.
    pub(crate) fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Problem {
        self.headers.push((name, value.into()));
        self
    }

    fn body(&self) -> Value {
        let mut v = json!({
            "type": format!("urn:decision-log:problem:{}", self.kind),
            "title": title(self.kind),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "kind": self.kind,
        });
        if let Value::Object(map) = &mut v {
            map.extend(self.extra.clone());
        }
        v
    }
}

/// One short sentence per kind: the same for every occurrence, as RFC 9457
/// asks of a title; `detail` says what happened this time.
fn title(kind: &str) -> &'static str {
    match kind {
        "invalid" => "The request is not valid",
        "head-conflict" => "The space's head is not where the request expected it",
        "decision-conflict" => "The decision in force is not the one the intent supersedes",
        "id-conflict" => "The intent id is already in the log with a different intent",
        "diverged" => "The space's history here and on its git remote have diverged",
        "not-holder" => "Another process holds the space's lease",
        "stale-epoch" => "A newer lease holder has fenced this writer out",
        "timeout" => "The space's lease holder kept it longer than the server waits",
        "not-found" => "Not found",
        "corrupt" => "The stored log breaks its invariants",
        "storage" => "Storage failed",
        "unauthorized" => "A token is required",
        "forbidden" => "The token does not allow this",
        "too-large" => "The request body is too large",
        "method-not-allowed" => "The method is not allowed here",
        "unsupported-media-type" => "The request body must be JSON",
        "busy" => "The server is busy",
        "request-timeout" => "The request took too long",
        "guest" => "The decision-log component failed",
        _ => "The request failed",
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        let detail = e.to_string();
        let status = match &e {
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::HeadConflict { .. }
            | Error::DecisionConflict { .. }
            | Error::IdConflict(_)
            | Error::Diverged { .. }
            | Error::NotHolder { .. }
            | Error::StaleEpoch { .. } => StatusCode::CONFLICT,
            Error::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Corrupt(_) | Error::Storage(_) | Error::Guest(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut problem = Problem::new(status, e.kind(), detail);
        match e {
            Error::HeadConflict { expected_seq, actual } => {
                problem = problem.with("expected_seq", json!(expected_seq)).with(
                    "head",
                    json!(actual.map(|h| json!({"commit": h.commit, "seq": h.seq, "epoch": h.epoch}))),
                );
            }
            Error::DecisionConflict { key, expected, in_force } => {
                problem = problem
                    .with("key", json!(key))
                    .with("supersedes", json!(expected))
                    .with("in_force", json!(in_force));
            }
            Error::NotHolder { holder: Some(l), .. } | Error::Timeout { holder: l, .. } => {
                problem = problem
                    .with(
                        "holder",
                        json!({"holder": l.holder, "epoch": l.epoch, "expires_at_ms": l.expires_at_ms, "endpoint": l.endpoint}),
                    )
                    .header(header::RETRY_AFTER, "1");
            }
            Error::StaleEpoch { epoch, head_epoch } => {
                problem = problem.with("epoch", json!(epoch)).with("head_epoch", json!(head_epoch));
            }
            _ => {}
        }
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// The body of a 503 written by hand (before any HTTP machinery runs).
pub(crate) fn busy_body(detail: &str) -> String {
    Problem::busy(detail).body().to_string()
}

/// Any path no route serves.
pub(crate) async fn no_route(uri: axum::http::Uri) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", format!("nothing is served at {}", uri.path()))
}

/// A route asked with a method it does not take.
pub(crate) async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// A body the server would not read whole.
pub(crate) fn from_body_rejection(r: &axum::extract::rejection::BytesRejection) -> Problem {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the request body is too large: {r}"),
        )
    } else {
        Problem::invalid(format!("the request body could not be read: {r}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Head, Lease};

    #[test]
    fn every_error_kind_has_its_status_and_the_fields_a_client_acts_on() {
        let lease = Lease { holder: "serve@h:1#a".into(), epoch: 3, expires_at_ms: 9, endpoint: None };
        let head = Head { commit: "c".repeat(40), seq: 7, epoch: 3, at_ms: 1 };
        let cases = [
            (Error::Invalid("x".into()), 400),
            (Error::HeadConflict { expected_seq: 1, actual: Some(head) }, 409),
            (Error::DecisionConflict { key: "k".into(), expected: None, in_force: Some("d1".into()) }, 409),
            (Error::IdConflict("i".into()), 409),
            (
                Error::Diverged {
                    space: "s".into(),
                    remote: "o".into(),
                    here: "a".into(),
                    there: "b".into(),
                },
                409,
            ),
            (Error::NotHolder { space: "s".into(), holder: Some(lease.clone()) }, 409),
            (Error::StaleEpoch { epoch: 1, head_epoch: 2 }, 409),
            (Error::NotFound("n".into()), 404),
            (Error::Corrupt("c".into()), 500),
            (Error::Storage("s".into()), 500),
            (
                Error::Timeout {
                    space: "s".into(),
                    holder: lease,
                    waited: std::time::Duration::from_secs(1),
                },
                503,
            ),
            (Error::Guest("g".into()), 500),
        ];
        for (error, status) in cases {
            let kind = error.kind();
            let problem = Problem::from(error);
            assert_eq!(problem.status.as_u16(), status, "{kind}");
            let body = problem.body();
            assert_eq!(body["kind"], kind);
            assert_eq!(body["status"], status);
            assert_ne!(title(kind), title("no such kind"), "{kind} has its own title");
            match kind {
                "head-conflict" => assert_eq!(body["head"]["seq"], 7),
                "decision-conflict" => assert_eq!(body["in_force"], "d1"),
                "not-holder" | "timeout" => assert_eq!(body["holder"]["holder"], "serve@h:1#a"),
                _ => {}
            }
        }
    }
}
