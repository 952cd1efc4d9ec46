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
  dlog append team --key db --choice pg --why 'mature' --title 'Use PostgreSQL' --tag storage --decider alice
  dlog append team --kind propose --key queue --choice rabbitmq --why 'acks' --status draft --id p-queue
  dlog append team --kind accept --key queue --proposal p-queue --why 'agreed in review'
  dlog append team --kind reject --key queue --proposal p-queue --why 'not now'
  dlog append team --kind retract --key db --why 'no longer needed' --status deprecated
  echo '{\"kind\":\"decide\",\"body\":{\"key\":\"db\",\"choice\":\"pg\",\"rationale\":\"r\"}}' | dlog append team --intent -

A JSON intent is {id?, actor?, kind, body, expect_seq?}. A file of several
intents, one per line (JSON Lines), is appended as one batch: all or nothing.
The bodies of every kind are listed in ARCHITECTURE.md (section Events).")]
pub(crate) struct AppendArgs {
    /// The space to append to.
    space: String,
    /// `decide`, `propose`, `accept`, `reject` or `retract`.
    #[arg(long, default_value = "decide")]
    kind: String,
    /// The decision key.
    #[arg(long)]
    key: Option<String>,
    /// What was chosen (decide, propose).
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
    /// A one-line title (decide, propose).
    #[arg(long)]
    title: Option<String>,
    /// The problem the decision answers (decide, propose).
    #[arg(long)]
    context: Option<String>,
    /// What follows from it (decide, propose).
    #[arg(long)]
    consequences: Option<String>,
    /// A tag, one word (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Who made the decision (repeatable).
    #[arg(long = "decider", value_name = "NAME")]
    deciders: Vec<String>,
    /// Who was consulted (repeatable).
    #[arg(long = "consulted", value_name = "NAME")]
    consulted: Vec<String>,
    /// Who was informed (repeatable).
    #[arg(long = "informed", value_name = "NAME")]
    informed: Vec<String>,
    /// A link: a URL, or another decision's event id, optionally `REL=` first
    /// (`refines=d-12`, `https://…`) (repeatable).
    #[arg(long = "link", value_name = "[REL=]URL|ID")]
    links: Vec<String>,
    /// Anything else, as JSON (stored in RFC 8785 canonical form).
    #[arg(long, value_name = "JSON")]
    meta: Option<String>,
    /// A proposal's status (`draft`, `proposed`, `on hold`…) or how a
    /// retraction withdraws (`deprecated`).
    #[arg(long)]
    status: Option<String>,
    /// The proposal's event id (accept, reject).
    #[arg(long, value_name = "EVENT-ID")]
    proposal: Option<String>,
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
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["key", "choice", "why", "reject", "supersedes", "kind", "title", "context", "consequences", "tags", "deciders", "consulted", "informed", "links", "meta", "status", "proposal"])]
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

/// Flags that only a `decide` or a `propose` takes, by name, if given.
fn record_flags(args: &AppendArgs) -> Vec<&'static str> {
    let mut given = Vec::new();
    for (name, set) in [
        ("--choice", args.choice.is_some()),
        ("--reject", !args.reject.is_empty()),
        ("--title", args.title.is_some()),
        ("--context", args.context.is_some()),
        ("--consequences", args.consequences.is_some()),
        ("--tag", !args.tags.is_empty()),
        ("--decider", !args.deciders.is_empty()),
        ("--consulted", !args.consulted.is_empty()),
        ("--informed", !args.informed.is_empty()),
        ("--link", !args.links.is_empty()),
        ("--meta", args.meta.is_some()),
    ] {
        if set {
            given.push(name);
        }
    }
    given
}

/// A `--link`: `[REL=]TARGET`, a URL when TARGET has a scheme, else an event id.
fn link(text: &str) -> Value {
    let (rel, target) = match text.split_once('=') {
        Some((rel, target)) if !rel.contains(':') => (Some(rel), target),
        _ => (None, text),
    };
    let is_url = target.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let mut v = if is_url { json!({"url": target}) } else { json!({"id": target}) };
    if let Some(rel) = rel {
        v["rel"] = rel.into();
    }
    v
}

fn from_flags(args: &AppendArgs, actor: String) -> Result<Intent, Error> {
    let kind = args.kind.as_str();
    let need = |v: &Option<String>, flag: &str| {
        v.clone().ok_or_else(|| Error::Invalid(format!("--{flag} is required for --kind {kind}")))
    };
    let refuse = |flags: Vec<&str>| match flags.as_slice() {
        [] => Ok(()),
        some => Err(Error::Invalid(format!("{} do(es) not apply to --kind {kind}", some.join(", ")))),
    };
    let mut body = serde_json::Map::new();
    body.insert("key".into(), need(&args.key, "key")?.into());
    match kind {
        "decide" | "propose" => {
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
            for (name, value) in
                [("title", &args.title), ("context", &args.context), ("consequences", &args.consequences)]
            {
                if let Some(v) = value {
                    body.insert(name.into(), v.clone().into());
                }
            }
            for (name, list) in [
                ("tags", &args.tags),
                ("deciders", &args.deciders),
                ("consulted", &args.consulted),
                ("informed", &args.informed),
            ] {
                if !list.is_empty() {
                    body.insert(name.into(), json!(list));
                }
            }
            if !args.links.is_empty() {
                body.insert("links".into(), args.links.iter().map(|l| link(l)).collect::<Vec<_>>().into());
            }
            if let Some(meta) = &args.meta {
                let v: Value = serde_json::from_str(meta)
                    .map_err(|e| Error::Invalid(format!("--meta is not JSON: {e}")))?;
                body.insert("meta".into(), v);
            }
            if kind == "propose" {
                if let Some(status) = &args.status {
                    body.insert("status".into(), status.clone().into());
                }
            } else if args.status.is_some() {
                return Err(Error::Invalid(
                    "--status does not apply to --kind decide (a decision is in force; use --kind propose)"
                        .into(),
                ));
            }
            if args.proposal.is_some() {
                return Err(Error::Invalid(format!("--proposal does not apply to --kind {kind}")));
            }
        }
        "retract" => {
            body.insert("rationale".into(), need(&args.why, "why")?.into());
            refuse(record_flags(args))?;
            if let Some(status) = &args.status {
                body.insert("status".into(), status.clone().into());
            }
        }
        "accept" | "reject" => {
            body.insert("proposal".into(), need(&args.proposal, "proposal")?.into());
            match (kind, &args.why) {
                ("reject", None) => return Err(Error::Invalid("--why is required for --kind reject".into())),
                (_, Some(why)) => {
                    body.insert("rationale".into(), why.clone().into());
                }
                _ => {}
            }
            refuse(record_flags(args))?;
            if args.status.is_some() {
                return Err(Error::Invalid(format!("--status does not apply to --kind {kind}")));
            }
            if kind == "reject" && args.supersedes.is_some() {
                return Err(Error::Invalid("--supersedes does not apply to --kind reject".into()));
            }
        }
        other => {
            return Err(Error::Invalid(format!(
                "--kind {other:?}: the flags build \"decide\", \"propose\", \"accept\", \"reject\" or \"retract\" intents; use --intent for others"
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
