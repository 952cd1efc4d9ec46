//! The forwarding protocol: JSON Lines over a Unix socket or loopback TCP.
//!
//! Each request is one line, answered by one line:
//!
//! ```text
//! → {"op":"append","space":"team","batch":false,"intents":[{"id":"…","actor":"…","kind":"decide","body":"{…}","expect_seq":null}]}
//! ← {"ok":[{"created":true,"event":{"space":"team","seq":3,…,"canonical":"…","commit":"…"}}]}
//! ← {"error":{"kind":"not-holder","message":"…","space":"team","holder":{…}}}
//! → {"op":"ping"}   ← {"ok":"pong","holder":"serve@host:123#abcd"}
//! ```
//!
//! Intents keep their ids, so a client that times out and resends gets the
//! original event back. serde_json does the encoding; the framing is one
//! `\n` per message, so any language can speak it with a socket and a JSON
//! library.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::authority::Lease;
use crate::error::Error;
use crate::log::{Appended, Event, Head, WireIntent};

/// How long a client waits for the holder's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// An endpoint as recorded in a lease: `unix:<path>` or `tcp:<ip>:<port>`.
pub fn connect(endpoint: &str) -> std::io::Result<Box<dyn ReadWrite>> {
    if let Some(path) = endpoint.strip_prefix("unix:") {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(Box::new(stream))
    } else if let Some(addr) = endpoint.strip_prefix("tcp:") {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Box::new(stream))
    } else {
        Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("unknown endpoint {endpoint:?}")))
    }
}

/// A byte stream both ways.
pub trait ReadWrite: std::io::Read + Write + Send {}
impl<T: std::io::Read + Write + Send> ReadWrite for T {}

/// Send intents to the holder at `endpoint`. The outer error is a transport
/// failure (retry or report unreachable); the inner result is the holder's
/// own answer.
pub fn forward(
    endpoint: &str,
    space: &str,
    intents: &[WireIntent],
    batch: bool,
) -> std::io::Result<Result<Vec<Appended>, Error>> {
    let mut stream = connect(endpoint)?;
    let request = json!({"op": "append", "space": space, "batch": batch, "intents": intents.iter().map(intent_to_json).collect::<Vec<_>>()});
    stream.write_all(format!("{request}\n").as_bytes())?;
    stream.flush()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    let answer: Value = serde_json::from_str(&line).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("the holder's answer is not JSON: {e}"))
    })?;
    Ok(answer_from_json(&answer))
}

fn bad(what: &str) -> Error {
    Error::Storage(format!("malformed forwarding message: {what}"))
}

fn text(v: &Value, key: &str) -> Result<String, Error> {
    v[key].as_str().map(str::to_owned).ok_or_else(|| bad(key))
}

fn number(v: &Value, key: &str) -> Result<u64, Error> {
    v[key].as_u64().ok_or_else(|| bad(key))
}

/// An intent as JSON.
pub fn intent_to_json(i: &WireIntent) -> Value {
    json!({"id": i.id, "actor": i.actor, "kind": i.kind, "body": i.body, "expect_seq": i.expect_seq})
}

/// An intent from JSON.
pub fn intent_from_json(v: &Value) -> Result<WireIntent, Error> {
    Ok(WireIntent {
        id: text(v, "id")?,
        actor: text(v, "actor")?,
        kind: text(v, "kind")?,
        body: text(v, "body")?,
        expect_seq: v["expect_seq"].as_u64(),
    })
}

fn event_to_json(e: &Event) -> Value {
    json!({
        "space": e.space, "seq": e.seq, "epoch": e.epoch, "id": e.id, "actor": e.actor, "at_ms": e.at_ms,
        "kind": e.kind, "body": e.body, "canonical": e.canonical, "commit": e.commit,
    })
}

fn event_from_json(v: &Value) -> Result<Event, Error> {
    Ok(Event {
        space: text(v, "space")?,
        seq: number(v, "seq")?,
        epoch: number(v, "epoch")?,
        id: text(v, "id")?,
        actor: text(v, "actor")?,
        at_ms: number(v, "at_ms")?,
        kind: text(v, "kind")?,
        body: text(v, "body")?,
        canonical: text(v, "canonical")?,
        commit: text(v, "commit")?,
    })
}

fn lease_to_json(l: &Lease) -> Value {
    json!({"holder": l.holder, "epoch": l.epoch, "expires_at_ms": l.expires_at_ms, "endpoint": l.endpoint})
}

fn lease_from_json(v: &Value) -> Option<Lease> {
    Some(Lease {
        holder: v["holder"].as_str()?.to_owned(),
        epoch: v["epoch"].as_u64()?,
        expires_at_ms: v["expires_at_ms"].as_u64()?,
        endpoint: v["endpoint"].as_str().map(str::to_owned),
    })
}

fn head_to_json(h: &Head) -> Value {
    json!({"commit": h.commit, "seq": h.seq, "epoch": h.epoch, "at_ms": h.at_ms})
}

fn head_from_json(v: &Value) -> Option<Head> {
    Some(Head {
        commit: v["commit"].as_str()?.to_owned(),
        seq: v["seq"].as_u64()?,
        epoch: v["epoch"].as_u64()?,
        at_ms: v["at_ms"].as_u64()?,
    })
}

/// The holder's answer as JSON.
pub fn answer_to_json(answer: &Result<Vec<Appended>, Error>) -> Value {
    match answer {
        Ok(results) => {
            json!({"ok": results.iter().map(|a| json!({"created": a.created, "event": event_to_json(&a.event)})).collect::<Vec<_>>()})
        }
        Err(e) => {
            let mut v = json!({"kind": e.kind(), "message": e.to_string()});
            match e {
                Error::Invalid(m)
                | Error::IdConflict(m)
                | Error::NotFound(m)
                | Error::Corrupt(m)
                | Error::Storage(m)
                | Error::Guest(m) => v["detail"] = json!(m),
                Error::HeadConflict { expected_seq, actual } => {
                    v["expected_seq"] = json!(expected_seq);
                    v["actual"] = json!(actual.as_ref().map(head_to_json));
                }
                Error::DecisionConflict { key, expected, in_force } => {
                    v["key"] = json!(key);
                    v["expected"] = json!(expected);
                    v["in_force"] = json!(in_force);
                }
                Error::NotHolder { space, holder } => {
                    v["space"] = json!(space);
                    v["holder"] = json!(holder.as_ref().map(lease_to_json));
                }
                Error::StaleEpoch { epoch, head_epoch } => {
                    v["epoch"] = json!(epoch);
                    v["head_epoch"] = json!(head_epoch);
                }
                Error::Timeout { space, holder, waited } => {
                    v["space"] = json!(space);
                    v["holder"] = lease_to_json(holder);
                    v["waited_ms"] = json!(waited.as_millis() as u64);
                }
            }
            json!({"error": v})
        }
    }
}

/// The holder's answer from JSON; a malformed answer is a storage error.
pub fn answer_from_json(v: &Value) -> Result<Vec<Appended>, Error> {
    if let Some(results) = v["ok"].as_array() {
        return results
            .iter()
            .map(|r| {
                Ok(Appended {
                    created: r["created"].as_bool().ok_or_else(|| bad("created"))?,
                    event: event_from_json(&r["event"])?,
                })
            })
            .collect();
    }
    let e = &v["error"];
    let detail = || e["detail"].as_str().unwrap_or_default().to_owned();
    Err(match e["kind"].as_str() {
        Some("invalid") => Error::Invalid(detail()),
        Some("id-conflict") => Error::IdConflict(detail()),
        Some("not-found") => Error::NotFound(detail()),
        Some("corrupt") => Error::Corrupt(detail()),
        Some("storage") => Error::Storage(detail()),
        Some("guest") => Error::Guest(detail()),
        Some("head-conflict") => Error::HeadConflict {
            expected_seq: number(e, "expected_seq")?,
            actual: head_from_json(&e["actual"]),
        },
        Some("decision-conflict") => Error::DecisionConflict {
            key: text(e, "key")?,
            expected: e["expected"].as_str().map(str::to_owned),
            in_force: e["in_force"].as_str().map(str::to_owned),
        },
        Some("not-holder") => {
            Error::NotHolder { space: text(e, "space")?, holder: lease_from_json(&e["holder"]) }
        }
        Some("stale-epoch") => {
            Error::StaleEpoch { epoch: number(e, "epoch")?, head_epoch: number(e, "head_epoch")? }
        }
        Some("timeout") => Error::Timeout {
            space: text(e, "space")?,
            holder: lease_from_json(&e["holder"]).ok_or_else(|| bad("holder"))?,
            waited: Duration::from_millis(number(e, "waited_ms")?),
        },
        _ => return Err(bad("neither ok nor a known error")),
    })
}
