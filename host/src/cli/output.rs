//! How results look: human text by default, JSON with `--json`.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::{Error, Event};

/// Print an error: a sentence on stderr, or a JSON object with `--json`.
pub(crate) fn report_error(e: &Error, json: bool) {
    if json {
        let mut v = json!({"error": e.kind(), "message": e.to_string(), "exit": super::exit_code(e)});
        if let Error::HeadConflict { actual: Some(head), .. } = e {
            v["head"] = json!({"commit": head.commit, "seq": head.seq, "epoch": head.epoch});
        }
        if let Error::DecisionConflict { in_force, .. } = e {
            v["in_force"] = json!(in_force);
        }
        if let Error::NotHolder { holder: Some(l), .. } = e {
            v["holder"] = json!({"holder": l.holder, "epoch": l.epoch, "expires_at_ms": l.expires_at_ms, "endpoint": l.endpoint});
        }
        eprintln!("{v}");
    } else {
        eprintln!("dlog: {e}");
    }
}

/// An instant as RFC 3339 UTC with milliseconds.
pub(crate) fn time(at_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at_ms)).to_string()
}

/// The event's body as JSON.
pub(crate) fn body(e: &Event) -> Value {
    serde_json::from_str(&e.body).unwrap_or(Value::Null)
}

/// One line per event: seq, time, actor and what happened.
pub(crate) fn event_line(e: &Event) -> String {
    let b = body(e);
    let s = |k: &str| b[k].as_str().unwrap_or("").to_owned();
    let what = match e.kind.as_str() {
        "decide" => {
            let sup = b["supersedes"].as_str().map(|id| format!(" (supersedes {id})")).unwrap_or_default();
            format!("decide {} = {}{sup}", s("key"), s("choice"))
        }
        "retract" => match b["status"].as_str() {
            Some(status) => format!("retract {} ({status})", s("key")),
            None => format!("retract {}", s("key")),
        },
        "propose" => {
            format!("propose {} = {} ({})", s("key"), s("choice"), b["status"].as_str().unwrap_or("proposed"))
        }
        "accept" => format!("accept {}: proposal {}", s("key"), s("proposal")),
        "reject" => format!("reject {}: proposal {}", s("key"), s("proposal")),
        "authority" => format!("authority → {} (epoch {})", s("holder"), b["epoch"]),
        other => other.to_owned(),
    };
    format!("#{:<4} {}  {:<16} {}  [{}]", e.seq, time(e.at_ms), e.actor, what, e.id)
}

/// Write `text` as the command's output; a closed pipe (e.g. `| head`) is not an error.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Storage(format!("writing output: {e}")))
        }
        _ => Ok(()),
    }
}
