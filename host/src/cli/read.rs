//! The reading commands: `events`, `fold`, `show`, `spaces`.

use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::output::{event_line, print, time};
use super::{Context, exit};
use crate::{Error, Position};

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// The space.
    space: String,
    /// First seq to list.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Most events to list (before --follow takes over).
    #[arg(long)]
    limit: Option<u32>,
    /// Keep running and print events as they land, from any process.
    #[arg(long)]
    follow: bool,
    /// How often --follow looks for new events.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    interval: Duration,
}

fn print_event(e: &crate::Event, json: bool) -> Result<(), Error> {
    print(&if json { e.canonical.clone() } else { event_line(e) })
}

pub(crate) fn events(context: &Context, args: EventsArgs) -> Result<u8, Error> {
    const PAGE: u32 = 1000;
    let log = context.open()?;
    let space = log.space(&args.space);
    let mut next = args.from.max(1);
    let mut left = args.limit.map(u64::from);
    // Whether the last fetch of a remote failed (--follow says so once).
    let mut failing = false;
    loop {
        let want = left.map_or(PAGE, |l| l.min(u64::from(PAGE)) as u32);
        let page = if want == 0 { Vec::new() } else { space.events(next, want)? };
        for e in &page {
            print_event(e, context.json)?;
        }
        if let Some(l) = left.as_mut() {
            *l -= page.len() as u64;
        }
        if let Some(last) = page.last() {
            next = last.seq + 1;
        }
        if page.len() == want as usize && want > 0 {
            continue;
        }
        if !args.follow {
            return Ok(exit::OK);
        }
        left = None;
        // Across machines a look is a fetch, a round trip to the server: at
        // most one a second, whatever --interval says.
        if log.remote().is_some() {
            std::thread::sleep(args.interval.max(Duration::from_secs(1)));
            // A follower outlives a network blip: it says so once, and
            // goes on looking; the events it missed come with the next
            // fetch that works.
            match log.fetch() {
                Ok(_) if failing => {
                    failing = false;
                    eprintln!("dlog: the remote answers again; following");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    eprintln!("dlog: warning: {e}; still following, trying again every second");
                }
                Err(_) => {}
            }
        } else {
            std::thread::sleep(args.interval);
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dlog fold team                 the decisions in force now
  dlog fold team --at 12         as they stood after event 12 (or --at <COMMIT>)
  dlog fold --overlay team,org   team's decisions, falling back to org's
  dlog fold --union team,org     every space's decisions, and where they disagree")]
pub(crate) struct FoldArgs {
    /// The space (omit with --overlay or --union).
    #[arg(required_unless_present_any = ["overlay", "union"], conflicts_with_all = ["overlay", "union"])]
    space: Option<String>,
    /// Fold up to this seq or commit id instead of the head.
    #[arg(long, value_name = "SEQ|COMMIT")]
    at: Option<String>,
    /// Overlay spaces: for each key the first listed space that decides it wins.
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', conflicts_with_all = ["union", "at"])]
    overlay: Option<Vec<String>>,
    /// Union of spaces: all keys, and the keys whose choices disagree.
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', conflicts_with = "at")]
    union: Option<Vec<String>>,
}

fn position(at: &str) -> Position {
    match at.parse::<u64>() {
        Ok(seq) => Position::Seq(seq),
        Err(_) => Position::Commit(at.to_ascii_lowercase()),
    }
}

fn decision_lines(decisions: &serde_json::Map<String, Value>, with_space: bool) -> Vec<String> {
    decisions
        .iter()
        .map(|(key, d)| {
            let from =
                if with_space { format!(" [{}]", d["space"].as_str().unwrap_or("")) } else { String::new() };
            format!(
                "  {key} = {}{from}\n      {} — {}, #{} rev {}, {}",
                d["choice"].as_str().unwrap_or(""),
                d["rationale"].as_str().unwrap_or("").replace('\n', "\n      "),
                d["actor"].as_str().unwrap_or(""),
                d["seq"],
                d["revision"],
                d["at_ms"].as_u64().map(time).unwrap_or_default()
            ) + &d["rejected"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    format!(
                        "\n      why not {}: {}",
                        r["option"].as_str().unwrap_or(""),
                        r["why"].as_str().unwrap_or("")
                    )
                })
                .collect::<String>()
        })
        .collect()
}

pub(crate) fn render_state(v: &Value) -> String {
    let mut out = vec![format!(
        "space {} at seq {} (head {})",
        v["space"].as_str().unwrap_or(""),
        v["seq"],
        v["head"].as_str().unwrap_or("none")
    )];
    if let Some(a) = v["authority"].as_object() {
        out.push(format!(
            "authority: {} (epoch {}, since #{})",
            a["holder"].as_str().unwrap_or(""),
            a["epoch"],
            a["seq"]
        ));
    }
    let empty = serde_json::Map::new();
    let decisions = v["decisions"].as_object().unwrap_or(&empty);
    out.push(format!("decisions ({}):", decisions.len()));
    out.extend(decision_lines(decisions, false));
    let retracted = v["retracted"].as_object().unwrap_or(&empty);
    if !retracted.is_empty() {
        out.push(format!("retracted ({}):", retracted.len()));
        for (key, r) in retracted {
            out.push(format!(
                "  {key} (was {}) — {}",
                r["choice"].as_str().unwrap_or(""),
                r["rationale"].as_str().unwrap_or("")
            ));
        }
    }
    out.join("\n")
}

pub(crate) fn render_view(v: &Value) -> String {
    let spaces: Vec<&str> = v["spaces"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut out = vec![format!("{} of {}", v["view"].as_str().unwrap_or(""), spaces.join(", "))];
    let empty = serde_json::Map::new();
    let decisions = v["decisions"].as_object().unwrap_or(&empty);
    if v["view"] == "overlay" {
        out.extend(decision_lines(decisions, true));
    } else {
        for (key, by_space) in decisions {
            for (space, d) in by_space.as_object().unwrap_or(&empty) {
                out.push(format!("  {key} = {} [{space}]", d["choice"].as_str().unwrap_or("")));
            }
        }
        let conflicts = v["conflicts"].as_array().cloned().unwrap_or_default();
        out.push(format!("conflicts ({}):", conflicts.len()));
        for c in conflicts {
            let choices: Vec<String> = c["choices"]
                .as_object()
                .unwrap_or(&empty)
                .iter()
                .map(|(s, choice)| format!("{s}: {}", choice.as_str().unwrap_or("")))
                .collect();
            out.push(format!("  {} — {}", c["key"].as_str().unwrap_or(""), choices.join(" | ")));
        }
    }
    out.join("\n")
}

pub(crate) fn fold(context: &Context, args: FoldArgs) -> Result<u8, Error> {
    let log = context.open()?;
    if let (true, Some(space), None) = (context.json, &args.space, &args.at) {
        // Streamed: a large space's fold never has to fit in memory.
        return stream_fold(&log.space(space));
    }
    let (text, view) = match (&args.space, &args.overlay, &args.union) {
        (Some(space), _, _) => {
            let space = log.space(space);
            let text = match &args.at {
                Some(at) => space.fold_at(&position(at))?,
                None => space.fold()?,
            };
            (text, false)
        }
        (None, Some(spaces), _) => (log.overlay(spaces)?, true),
        (None, None, Some(spaces)) => (log.union(spaces)?, true),
        (None, None, None) => return Err(Error::Invalid("name a space, or --overlay / --union".into())),
    };
    if context.json {
        print(&text)?;
    } else {
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::Guest(format!("fold output: {e}")))?;
        print(&if view { render_view(&v) } else { render_state(&v) })?;
    }
    Ok(exit::OK)
}

/// Write the fold at the head to stdout piece by piece; a reader that
/// closes the pipe early (`| head`) ends it quietly.
fn stream_fold(space: &crate::Space) -> Result<u8, Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut open = true;
    let mut write = |text: &str| -> Result<bool, Error> {
        match out.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => open = false,
            Err(e) => return Err(Error::Storage(format!("writing output: {e}"))),
            Ok(()) => {}
        }
        Ok(open)
    };
    space.fold_each(&mut write)?;
    if write("\n")? {
        match out.flush() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(Error::Storage(format!("writing output: {e}")));
            }
            _ => {}
        }
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The space.
    space: String,
    /// The decision key.
    key: String,
}

pub(crate) fn show(context: &Context, args: ShowArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let shown = log.space(&args.space).show(&args.key)?;
    if context.json {
        let events: Vec<Value> =
            shown.history.iter().map(|e| serde_json::from_str(&e.canonical).unwrap_or(Value::Null)).collect();
        let v = json!({"space": shown.space, "key": shown.key, "decision": shown.decision, "retracted": shown.retracted, "proposals": shown.proposals, "history": events});
        print(&v.to_string())?;
        return Ok(exit::OK);
    }
    let current = shown.decision.unwrap_or(Value::Null);
    let retracted = shown.retracted.unwrap_or(Value::Null);
    let proposals = shown.proposals;
    let history = shown.history;
    let mut out = Vec::new();
    if current.is_object() {
        out.push(format!("{} / {} = {}", args.space, args.key, current["choice"].as_str().unwrap_or("")));
        out.push(format!(
            "  why:     {}",
            current["rationale"].as_str().unwrap_or("").replace('\n', "\n           ")
        ));
        for r in current["rejected"].as_array().into_iter().flatten() {
            out.push(format!(
                "  why not: {} — {}",
                r["option"].as_str().unwrap_or(""),
                r["why"].as_str().unwrap_or("")
            ));
        }
        out.push(format!(
            "  decided by {} at {} (event {}, #{}, revision {})",
            current["actor"].as_str().unwrap_or(""),
            current["at_ms"].as_u64().map(time).unwrap_or_default(),
            current["id"].as_str().unwrap_or(""),
            current["seq"],
            current["revision"]
        ));
    } else if retracted.is_object() {
        out.push(format!(
            "{} / {}: {} (was {}) — {}",
            args.space,
            args.key,
            retracted["status"].as_str().unwrap_or("retracted"),
            retracted["choice"].as_str().unwrap_or(""),
            retracted["rationale"].as_str().unwrap_or("")
        ));
    } else {
        out.push(format!("{} / {}: nothing in force", args.space, args.key));
    }
    for p in &proposals {
        out.push(format!(
            "  {} proposal {}: {} — {} (by {}, #{})",
            p["status"].as_str().unwrap_or("proposed"),
            p["id"].as_str().unwrap_or(""),
            p["choice"].as_str().unwrap_or(""),
            p["rationale"].as_str().unwrap_or("").replace('\n', " "),
            p["actor"].as_str().unwrap_or(""),
            p["seq"]
        ));
    }
    out.push("history:".into());
    out.extend(history.iter().map(|e| format!("  {}", event_line(e))));
    print(&out.join("\n"))?;
    Ok(exit::OK)
}

pub(crate) fn spaces(context: &Context) -> Result<u8, Error> {
    let log = context.open()?;
    for name in log.spaces()? {
        let head = log.space(&name).head()?;
        if context.json {
            let head =
                head.map(|h| json!({"commit": h.commit, "seq": h.seq, "epoch": h.epoch, "at_ms": h.at_ms}));
            print(&json!({"space": name, "head": head}).to_string())?;
        } else if let Some(h) = head {
            print(&format!(
                "{name:<24} {:>6} events  epoch {}  last {}  {}",
                h.seq,
                h.epoch,
                time(h.at_ms),
                &h.commit[..12]
            ))?;
        }
    }
    Ok(exit::OK)
}
