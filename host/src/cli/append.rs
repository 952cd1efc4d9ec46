//! `dlog append`.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::output::{print, time};
use super::{Context, exit};
use crate::{Appended, Error, Intent};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dlog append team --key db --choice postgres --why 'we know it well' --reject 'mongo=no joins'
  dlog append team --key db --choice sqlite --why 'smaller' --supersedes <EVENT-ID>
  dlog append team --kind retract --key db --why 'no longer needed'
  echo '{\"kind\":\"decide\",\"body\":{\"key\":\"db\",\"choice\":\"pg\",\"rationale\":\"r\"}}' | dlog append team --intent -

A JSON intent is {id?, actor?, kind, body, expect_seq?}. A file of several
intents, one per line (JSON Lines), is appended as one batch: all or nothing.")]
pub(crate) struct AppendArgs {
    /// The space to append to.
    space: String,
    /// `decide` or `retract`.
    #[arg(long, default_value = "decide")]
    kind: String,
    /// The decision key.
    #[arg(long)]
    key: Option<String>,
    /// What was chosen (decide).
    #[arg(long)]
    choice: Option<String>,
    /// Why: the rationale.
    #[arg(long = "why", value_name = "RATIONALE")]
    why: Option<String>,
    /// An alternative not chosen, and why not (repeatable).
    #[arg(long = "reject", value_name = "OPTION=WHY")]
    reject: Vec<String>,
    /// The event id of the decision in force this one replaces.
    #[arg(long, value_name = "EVENT-ID")]
    supersedes: Option<String>,
    /// Who decides [default: $DLOG_ACTOR, git's user.name, or $USER].
    #[arg(long)]
    actor: Option<String>,
    /// Idempotency key: resending the same id returns the original event.
    #[arg(long)]
    id: Option<String>,
    /// Fail with a conflict unless the space's head is at this seq (0: empty).
    #[arg(long, value_name = "SEQ")]
    expect_seq: Option<u64>,
    /// Read the intent as JSON from FILE (or - for stdin) instead of the flags.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["key", "choice", "why", "reject", "supersedes", "kind"])]
    intent: Option<PathBuf>,
    /// With a file of several intents: append each on its own (stopping at
    /// the first failure) instead of as one all-or-nothing batch.
    #[arg(long, requires = "intent")]
    each: bool,
}

/// An intent as JSON. The body stays raw text so the guest's strict
/// I-JSON intake sees exactly what the user wrote (duplicate keys and all).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentFile {
    id: Option<String>,
    actor: Option<String>,
    kind: String,
    body: Box<RawValue>,
    expect_seq: Option<u64>,
}

pub(crate) fn actor(flag: Option<String>, log: &crate::Log) -> Result<String, Error> {
    if let Some(actor) = flag.or_else(|| std::env::var("DLOG_ACTOR").ok()) {
        return Ok(actor);
    }
    if let Some(name) = log.configured_user_name() {
        return Ok(name);
    }
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).map_err(|_| {
        Error::Invalid("no actor: pass --actor NAME (or set DLOG_ACTOR or git's user.name)".into())
    })
}

fn from_flags(args: &AppendArgs, actor: String) -> Result<Intent, Error> {
    let need = |v: &Option<String>, flag: &str| {
        v.clone().ok_or_else(|| Error::Invalid(format!("--{flag} is required for --kind {}", args.kind)))
    };
    let mut body = serde_json::Map::new();
    body.insert("key".into(), need(&args.key, "key")?.into());
    match args.kind.as_str() {
        "decide" => {
            body.insert("choice".into(), need(&args.choice, "choice")?.into());
            body.insert("rationale".into(), need(&args.why, "why")?.into());
            if !args.reject.is_empty() {
                let rejected = args
                    .reject
                    .iter()
                    .map(|r| match r.split_once('=') {
                        Some((option, why)) => Ok(json!({"option": option, "why": why})),
                        None => Err(Error::Invalid(format!("--reject {r:?}: expected OPTION=WHY"))),
                    })
                    .collect::<Result<Vec<Value>, Error>>()?;
                body.insert("rejected".into(), rejected.into());
            }
        }
        "retract" => {
            body.insert("rationale".into(), need(&args.why, "why")?.into());
            if args.choice.is_some() || !args.reject.is_empty() {
                return Err(Error::Invalid("--choice and --reject do not apply to --kind retract".into()));
            }
        }
        other => {
            return Err(Error::Invalid(format!(
                "--kind {other:?}: the flags build \"decide\" or \"retract\" intents; use --intent for others"
            )));
        }
    }
    if let Some(s) = &args.supersedes {
        body.insert("supersedes".into(), s.clone().into());
    }
    Ok(Intent {
        id: args.id.clone(),
        actor,
        kind: args.kind.clone(),
        body: Value::Object(body).to_string(),
        expect_seq: args.expect_seq,
    })
}

fn read_input(path: &PathBuf) -> Result<String, Error> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::Invalid(format!("reading stdin: {e}")))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("reading {}: {e}", path.display())))?;
    }
    Ok(text)
}

fn parse_intents(
    text: &str,
    default_actor: &dyn Fn() -> Result<String, Error>,
) -> Result<Vec<Intent>, Error> {
    let files: Vec<IntentFile> = match serde_json::from_str::<IntentFile>(text) {
        Ok(one) => vec![one],
        Err(whole) => {
            let lines: Vec<(usize, &str)> =
                text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).collect();
            if lines.len() < 2 {
                return Err(Error::Invalid(format!("the intent is not valid: {whole}")));
            }
            lines
                .into_iter()
                .map(|(n, line)| {
                    serde_json::from_str(line).map_err(|e| Error::Invalid(format!("line {}: {e}", n + 1)))
                })
                .collect::<Result<_, _>>()?
        }
    };
    files
        .into_iter()
        .map(|f| {
            Ok(Intent {
                id: f.id,
                actor: match f.actor {
                    Some(a) => a,
                    None => default_actor()?,
                },
                kind: f.kind,
                body: f.body.get().to_owned(),
                expect_seq: f.expect_seq,
            })
        })
        .collect()
}

fn describe(space: &str, a: &Appended) -> String {
    let e = &a.event;
    let verb = if a.created { "appended" } else { "already in the log:" };
    format!(
        "{verb} {space} #{} {} by {} at {} (id {}, commit {})",
        e.seq,
        e.kind,
        e.actor,
        time(e.at_ms),
        e.id,
        &e.commit[..12]
    )
}

pub(crate) fn run(context: &Context, args: AppendArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let space = log.space(&args.space);
    let results = match &args.intent {
        Some(path) => {
            let text = read_input(path)?;
            let default_actor = || actor(args.actor.clone(), &log);
            let intents = parse_intents(&text, &default_actor)?;
            if args.each {
                for intent in intents {
                    report(context, space.name(), &space.append(intent)?)?;
                }
                return Ok(exit::OK);
            }
            if intents.len() == 1 {
                vec![space.append(intents.into_iter().next().unwrap_or_default())?]
            } else {
                space.append_batch(intents)?
            }
        }
        None => {
            let intent = from_flags(&args, actor(args.actor.clone(), &log)?)?;
            vec![space.append(intent)?]
        }
    };
    for a in &results {
        report(context, space.name(), a)?;
    }
    Ok(exit::OK)
}

fn report(context: &Context, space: &str, a: &Appended) -> Result<(), Error> {
    if context.json {
        let event: Value = serde_json::from_str(&a.event.canonical).unwrap_or(Value::Null);
        print(&json!({"created": a.created, "commit": a.event.commit, "event": event}).to_string())
    } else {
        print(&describe(space, a))
    }
}
