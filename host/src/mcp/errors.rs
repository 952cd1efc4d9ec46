//! How failures reach an agent: always as a tool result with `isError: true`,
//! a sentence to read and structured content to act on — never as a
//! JSON-RPC error, which MCP clients show only as an opaque failure.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

use crate::{Error, Space};

/// What an agent should do next, by error kind.
fn advice(e: &Error) -> &'static str {
    match e {
        Error::Invalid(_) => "Fix the argument named in the message and call the tool again.",
        Error::HeadConflict { .. } => {
            "The space moved on since the seq you expected: read it again (fold or events), then retry with the new head seq, or without expect_seq."
        }
        Error::DecisionConflict { .. } => {
            "Another decision is in force for this key (see in_force). Read it with show, then decide whether to supersede it: call decide again with supersedes set to in_force.id."
        }
        Error::IdConflict(_) => {
            "This id is already used by a different intent. A retry must resend exactly the same arguments; a new decision needs a new id."
        }
        Error::Diverged { .. } => {
            "This space's history here and on the git remote have diverged; a person must reconcile them (dlog export, then dlog import)."
        }
        Error::NotHolder { .. } | Error::StaleEpoch { .. } | Error::Timeout { .. } => {
            "Another writer holds the space's append lease. Wait a moment and retry with the same id (a retry with the same id is safe)."
        }
        Error::NotFound(_) => "Check the space and key names with spaces and fold.",
        Error::Storage(_) | Error::Corrupt(_) | Error::Guest(_) => {
            "The log itself failed; retrying with the same id is safe, but tell a person if it persists."
        }
    }
}

/// The structured description of an error. `space` is where the call
/// went, so a decision conflict can name the decision in force in full.
pub(crate) fn describe(e: &Error, space: Option<&Space>) -> Value {
    let mut v = json!({"error": e.kind(), "message": e.to_string(), "advice": advice(e)});
    match e {
        Error::HeadConflict { expected_seq, actual } => {
            v["expected_seq"] = json!(expected_seq);
            v["head"] = match actual {
                Some(h) => json!({"seq": h.seq, "commit": h.commit, "epoch": h.epoch}),
                None => json!({"seq": 0, "commit": null, "epoch": 0}),
            };
        }
        Error::DecisionConflict { key, expected, in_force } => {
            v["key"] = json!(key);
            v["supersedes"] = json!(expected);
            v["in_force"] = match space.and_then(|s| s.show(key).ok()).and_then(|shown| shown.decision) {
                Some(d) => json!({
                    "id": d["id"], "choice": d["choice"], "rationale": d["rationale"],
                    "actor": d["actor"], "seq": d["seq"], "at_ms": d["at_ms"],
                }),
                // The decision could not be read back (e.g. it was retracted
                // meanwhile): give what the error itself knows.
                None => json!(in_force.as_ref().map(|id| json!({"id": id}))),
            };
        }
        Error::IdConflict(id) => v["id"] = json!(id),
        Error::Diverged { space, remote, here, there } => {
            v["space"] = json!(space);
            v["remote"] = json!(remote);
            v["here"] = json!(here);
            v["there"] = json!(there);
        }
        Error::NotHolder { space, holder } => {
            v["space"] = json!(space);
            v["holder"] = json!(holder);
        }
        Error::StaleEpoch { epoch, head_epoch } => {
            v["epoch"] = json!(epoch);
            v["head_epoch"] = json!(head_epoch);
        }
        Error::Timeout { space, holder, waited } => {
            v["space"] = json!(space);
            v["holder"] = json!(holder);
            v["waited_ms"] = json!(u64::try_from(waited.as_millis()).unwrap_or(u64::MAX));
        }
        _ => {}
    }
    v
}

/// A failed call as a tool error result.
pub(crate) fn tool_error(e: &Error, space: Option<&Space>) -> CallToolResult {
    let v = describe(e, space);
    let mut text = e.to_string();
    if let Some(d) = v.get("in_force").filter(|d| d.get("choice").is_some()) {
        text.push_str(&format!(
            " (in force: {} = {:?}, {:?})",
            d["id"].as_str().unwrap_or(""),
            d["choice"].as_str().unwrap_or(""),
            d["rationale"].as_str().unwrap_or("")
        ));
    }
    text.push_str(". ");
    text.push_str(advice(e));
    let mut result = CallToolResult::error(vec![ContentBlock::text(text), ContentBlock::text(v.to_string())]);
    result.structured_content = Some(v);
    result
}
