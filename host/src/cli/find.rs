//! `dlog find`.

use clap::Args;

use super::output::{print, time};
use super::{Context, exit};
use crate::Error;
use crate::find::Query;

#[derive(Debug, Args)]
#[command(after_help = "\
Every filter given must match. The records searched are the decisions in
force (status accepted), withdrawn ones (retracted, deprecated, …) and
proposals not accepted (proposed, draft, rejected, …); earlier revisions of
a key are in `dlog show SPACE KEY`.

Examples:
  dlog find postgres                       text anywhere, in every space
  dlog find --space team --key 'adr/*'     keys starting with adr/
  dlog find --tag security --status proposed
  dlog find --actor alice --since 2024-01-01 --until 2024-07-01
  dlog find --json 'message queue' | jq -r .key")]
pub(crate) struct FindArgs {
    /// Words that must all occur in the title, choice, rationale, context,
    /// consequences or a rejected option and its why-not (case-insensitive).
    #[arg(value_name = "TEXT")]
    text: Vec<String>,
    /// Search only this space (repeatable; default: every space).
    #[arg(long = "space", value_name = "SPACE")]
    spaces: Vec<String>,
    /// A key, or a key prefix ending in `*`.
    #[arg(long)]
    key: Option<String>,
    /// A tag the record carries (repeatable: all must be there).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Who decided, proposed, accepted or withdrew it, or one of its deciders.
    #[arg(long)]
    actor: Option<String>,
    /// accepted, retracted, deprecated, proposed, draft, rejected, or your own.
    #[arg(long)]
    status: Option<String>,
    /// Only records from this time on (RFC 3339, or a date: 2024-01-31).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only records before this time (RFC 3339, or a date).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// At most this many results.
    #[arg(long)]
    limit: Option<usize>,
}

fn parse_time(text: &str, flag: &str) -> Result<u64, Error> {
    crate::find::parse_time(text).map_err(|e| Error::Invalid(format!("--{flag} {text:?} is not a time: {e}")))
}

pub(crate) fn run(context: &Context, args: FindArgs) -> Result<u8, Error> {
    let text = args.text.join(" ");
    let query = Query {
        key: args.key,
        tags: args.tags,
        actor: args.actor,
        status: args.status,
        text: (!text.trim().is_empty()).then_some(text),
        since_ms: args.since.as_deref().map(|t| parse_time(t, "since")).transpose()?,
        until_ms: args.until.as_deref().map(|t| parse_time(t, "until")).transpose()?,
    };
    let log = context.open()?;
    // Hits are printed as the guest finds them, a batch at a time, so a
    // search of a large space holds one batch, never every hit.
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut printed = 0;
    log.find_each(&args.spaces, &query, |hit| {
        if printed == limit {
            return Ok(false);
        }
        printed += 1;
        if context.json {
            print(&serde_json::to_string(&hit).map_err(|e| Error::Guest(format!("find output: {e}")))?)?;
        } else {
            let r = &hit.record;
            let title = r["title"].as_str().map(|t| format!(" — {t}")).unwrap_or_default();
            print(&format!(
                "{}/{} [{}] {}{title}\n    {} at {} (#{}, {})",
                hit.space,
                hit.key,
                hit.status,
                r["choice"].as_str().unwrap_or(""),
                r["actor"].as_str().unwrap_or(""),
                time(hit.at_ms),
                hit.seq,
                hit.id
            ))?;
        }
        Ok(printed < limit)
    })?;
    if printed == 0 && !context.json {
        eprintln!("no decision matches");
    }
    Ok(exit::OK)
}
