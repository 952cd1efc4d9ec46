//! The optional parts of a decision record that format v2 added: title,
//! context, consequences, the people involved, tags, links, `meta`, and the
//! status labels of proposals and withdrawals.
//!
//! A v1 decision is `{key, choice, rationale, rejected?, supersedes?}`. The
//! fields here ride beside those in the same body; an event that uses any of
//! them is written as format v2 (see [`required_version`]), so a reader that
//! only knows v1 refuses it by its version instead of folding it wrongly.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::model::{Kind, validate_id};

/// The format version of events that use nothing beyond v1.
pub const V1: u64 = 1;
/// The format version of events that use a v2 field or kind.
pub const V2: u64 = 2;
/// The newest event format this guest reads and writes.
pub const NEWEST_VERSION: u64 = V2;

/// The optional fields a `decide` or `propose` body may carry since v2,
/// sorted by name.
pub const DETAIL_FIELDS: &[&str] =
    &["consequences", "consulted", "context", "deciders", "informed", "links", "meta", "tags", "title"];

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 512;
/// Longest name in `deciders`, `consulted` or `informed`, and longest tag.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest status label, in characters.
pub const MAX_STATUS_CHARS: usize = 64;

/// Statuses reached through events rather than named by a `propose`: a
/// proposal becomes `accepted` by an `accept`, `rejected` by a `reject`; a
/// decision is `superseded` by a newer one and withdrawn (`retracted`, or
/// e.g. `deprecated`) by a `retract`.
pub const RESERVED_PROPOSAL_STATUSES: &[&str] = &["accepted", "rejected", "superseded", "retracted"];

/// The validated v2 fields of a record, by name, as given (already I-JSON).
/// Kept as JSON values so the fold writes them back exactly as stored.
pub type Details = BTreeMap<String, Value>;

/// The lowest event format that can hold a `kind` event with this body:
/// v1 unless the kind or one of the body's fields is new in v2. Writers
/// stamp it and readers insist on it, so one intent has one stored form.
pub fn required_version(kind: Kind, body: &Value) -> u64 {
    let has = |name: &str| body.get(name).is_some();
    match kind {
        Kind::Propose | Kind::Accept | Kind::Reject => V2,
        Kind::Decide if DETAIL_FIELDS.iter().any(|f| has(f)) => V2,
        Kind::Retract if has("status") => V2,
        Kind::Decide | Kind::Retract | Kind::Authority => V1,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A one-line label (a name, a tag, a title): not blank, no control
/// characters, no surrounding whitespace, at most `max` characters.
fn label(value: &Value, what: &str, max: usize) -> Result<String, String> {
    let Value::String(s) = value else {
        return Err(format!("{what} must be a string, not {}", type_name(value)));
    };
    let chars = s.chars().count();
    if s.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if chars > max {
        return Err(format!("{what} is {chars} characters; the limit is {max}"));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!("{what} {s:?} contains the control character {c:?}"));
    }
    if s.trim() != s {
        return Err(format!("{what} {s:?} starts or ends with whitespace"));
    }
    Ok(s.clone())
}

/// Free text (context, consequences): a string with something in it.
fn prose(value: &Value, what: &str) -> Result<(), String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(()),
        Value::String(_) => Err(format!("{what} is empty")),
        other => Err(format!("{what} must be a string, not {}", type_name(other))),
    }
}

/// A list of distinct labels (people, tags).
fn labels(value: &Value, what: &str) -> Result<(), String> {
    let Value::Array(items) = value else {
        return Err(format!("{what} must be an array of strings, not {}", type_name(value)));
    };
    let mut seen = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let s = label(item, &format!("{what}[{i}]"), MAX_NAME_CHARS)?;
        if seen.contains(&s) {
            return Err(format!("{what} lists {s:?} twice"));
        }
        seen.push(s);
    }
    Ok(())
}

/// A tag is a label without whitespace, so `tag:x` filters stay unambiguous.
fn tags(value: &Value, what: &str) -> Result<(), String> {
    labels(value, what)?;
    for (i, tag) in value.as_array().into_iter().flatten().filter_map(Value::as_str).enumerate() {
        if let Some(c) = tag.chars().find(|c| c.is_whitespace()) {
            return Err(format!(
                "{what}[{i}] {tag:?} contains the space character {c:?}; tags are single words"
            ));
        }
    }
    Ok(())
}

/// A URL as far as a decision log needs to know: an absolute URI with a
/// scheme (RFC 3986 §3.1) and no whitespace or control characters. Links
/// are not fetched, so nothing more is checked.
fn url(s: &str, what: &str) -> Result<(), String> {
    let scheme_ok = s.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok {
        return Err(format!("{what} {s:?} is not an absolute URL (scheme:rest, e.g. https://…)"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} {s:?} contains whitespace or a control character"));
    }
    Ok(())
}

/// `links`: `[{rel?, title?, id | key | url}]`, each naming exactly one
/// target: another decision's event id, a decision key, or a URL.
fn links(value: &Value, what: &str) -> Result<(), String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "{what} must be an array of {{rel?, title?, id | key | url}}, not {}",
            type_name(value)
        ));
    };
    for (i, item) in items.iter().enumerate() {
        let what = format!("{what}[{i}]");
        let Value::Object(map) = item else {
            return Err(format!("{what} must be an object, not {}", type_name(item)));
        };
        const ALLOWED: &[&str] = &["id", "key", "rel", "title", "url"];
        if let Some(unknown) = map.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
            return Err(format!(
                "{what} has an unknown field {unknown:?}; allowed fields are {}",
                ALLOWED.join(", ")
            ));
        }
        let targets: Vec<&str> = ["id", "key", "url"].into_iter().filter(|t| map.contains_key(*t)).collect();
        if targets.len() != 1 {
            return Err(format!(
                "{what} must name exactly one of \"id\", \"key\" or \"url\", not {}",
                targets.len()
            ));
        }
        for (name, v) in map {
            let field = format!("{what}: field {name:?}");
            match name.as_str() {
                "id" => validate_id(v.as_str().ok_or_else(|| format!("{field} must be a string"))?, &field)?,
                "key" => {
                    label(v, &field, crate::model::MAX_KEY_CHARS)?;
                }
                "url" => url(v.as_str().ok_or_else(|| format!("{field} must be a string"))?, &field)?,
                "rel" => {
                    label(v, &field, MAX_NAME_CHARS)?;
                }
                _ => {
                    label(v, &field, MAX_TITLE_CHARS)?;
                }
            }
        }
    }
    Ok(())
}

/// Check and collect the v2 fields present in a body object.
pub fn details(map: &Map<String, Value>, context: &str) -> Result<Details, String> {
    let mut out = Details::new();
    for name in DETAIL_FIELDS {
        let Some(value) = map.get(*name) else { continue };
        let what = format!("{context}: field {name:?}");
        match *name {
            "title" => {
                label(value, &what, MAX_TITLE_CHARS)?;
            }
            "context" | "consequences" => prose(value, &what)?,
            "deciders" | "consulted" | "informed" => labels(value, &what)?,
            "tags" => tags(value, &what)?,
            "links" => links(value, &what)?,
            // Any I-JSON value: intake already refused what I-JSON forbids,
            // and the event's canonical form makes its bytes RFC 8785.
            _ => {}
        }
        out.insert((*name).to_owned(), value.clone());
    }
    Ok(out)
}

/// A status label: lowercase, one line, 1–64 characters (e.g. `proposed`,
/// `draft`, `on hold`, `deprecated`). Lowercase so that one status is
/// spelled one way in every fold and every search.
pub fn status(value: &Value, what: &str) -> Result<String, String> {
    let s = label(value, what, MAX_STATUS_CHARS)?;
    if s.chars().any(char::is_uppercase) {
        return Err(format!("{what} {s:?} has uppercase letters; statuses are lowercase"));
    }
    Ok(s)
}

/// The status of a `propose` body: `proposed` when absent; never one that
/// only an event can reach.
pub fn proposal_status(value: Option<&Value>, what: &str) -> Result<String, String> {
    let Some(value) = value else { return Ok("proposed".to_owned()) };
    let s = status(value, what)?;
    if RESERVED_PROPOSAL_STATUSES.contains(&s.as_str()) {
        return Err(format!(
            "{what} {s:?} is reached through an event, not proposed: decide or accept to put a decision in force, reject to decline a proposal, retract to withdraw a decision"
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value) -> Result<Details, String> {
        details(body.as_object().unwrap(), "body")
    }

    #[test]
    fn every_detail_field_is_checked_and_kept_as_given() {
        let body = json!({
            "title": "Use Postgres", "context": "We need a database.", "consequences": "Ops learns it.",
            "deciders": ["alice", "bob"], "consulted": ["carol"], "informed": ["team"],
            "tags": ["storage", "db"],
            "links": [{"rel": "refines", "key": "adr-0001"}, {"url": "https://example.com/x", "title": "RFC"}, {"id": "d-1"}],
            "meta": {"z": [1, 2.5, null], "a": "b"},
        });
        let d = check(body.clone()).unwrap();
        assert_eq!(d.len(), DETAIL_FIELDS.len());
        for (k, v) in &d {
            assert_eq!(&body[k], v);
        }
    }

    #[test]
    fn each_bad_detail_names_its_field_and_what_is_wrong() {
        for (body, want) in [
            (json!({"title": ""}), "\"title\" is empty"),
            (json!({"title": "a\nb"}), "control character"),
            (json!({"title": 3}), "must be a string, not a number"),
            (json!({"context": " "}), "\"context\" is empty"),
            (json!({"deciders": "alice"}), "must be an array of strings"),
            (json!({"deciders": ["a", "a"]}), "lists \"a\" twice"),
            (json!({"informed": [""]}), "informed\"[0] is empty"),
            (json!({"tags": ["two words"]}), "tags are single words"),
            (json!({"links": [{"key": "a", "url": "https://x"}]}), "exactly one of"),
            (json!({"links": [{"rel": "x"}]}), "exactly one of"),
            (json!({"links": [{"url": "not a url"}]}), "not an absolute URL"),
            (json!({"links": [{"id": "has space"}]}), "visible ASCII"),
            (json!({"links": [{"key": "k", "why": 1}]}), "unknown field \"why\""),
            (json!({"links": {}}), "must be an array"),
        ] {
            let err = check(body.clone()).unwrap_err();
            assert!(err.contains(want), "{body}: expected {want:?} in {err:?}");
        }
    }

    #[test]
    fn proposal_statuses_are_lowercase_labels_and_never_ones_events_reach() {
        assert_eq!(proposal_status(None, "s").unwrap(), "proposed");
        assert_eq!(proposal_status(Some(&json!("on hold")), "s").unwrap(), "on hold");
        assert_eq!(proposal_status(Some(&json!("draft")), "s").unwrap(), "draft");
        assert!(proposal_status(Some(&json!("Draft")), "s").unwrap_err().contains("lowercase"));
        for reserved in RESERVED_PROPOSAL_STATUSES {
            assert!(proposal_status(Some(&json!(reserved)), "s").unwrap_err().contains("through an event"));
        }
    }

    #[test]
    fn only_what_v2_added_makes_an_event_v2() {
        let v1 = json!({"key": "k", "choice": "c", "rationale": "r", "rejected": [], "supersedes": "x"});
        assert_eq!(required_version(Kind::Decide, &v1), V1);
        assert_eq!(required_version(Kind::Decide, &json!({"key": "k", "meta": null})), V2);
        assert_eq!(required_version(Kind::Retract, &json!({"key": "k", "rationale": "r"})), V1);
        assert_eq!(required_version(Kind::Retract, &json!({"key": "k", "status": "deprecated"})), V2);
        assert_eq!(required_version(Kind::Authority, &json!({"holder": "h", "epoch": 1})), V1);
        for kind in [Kind::Propose, Kind::Accept, Kind::Reject] {
            assert_eq!(required_version(kind, &json!({})), V2);
        }
    }
}
