//! `dlog adr import` and `dlog adr export`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::output::print;
use super::{Context, exit};
use crate::Error;
use crate::adr::{self, Style};
use crate::durable::{Fs, RealFs};

#[derive(Debug, Args)]
pub(crate) struct AdrArgs {
    #[command(subcommand)]
    command: AdrCommand,
}

#[derive(Debug, Subcommand)]
enum AdrCommand {
    /// Append a directory of Architecture Decision Records to a space.
    ///
    /// Reads MADR 2.x–4.x (front matter or bullets), Nygard/adr-tools and
    /// log4brains records. "Chosen option: X, because Y" becomes the choice
    /// and rationale; the other considered options become `rejected`, with
    /// their cons as the why-not. "Superseded by" links and front matter
    /// become `supersedes`, on the key of the record superseded. Proposed,
    /// draft and custom statuses become proposals; rejected records are
    /// proposed and rejected; deprecated ones are decided and withdrawn.
    /// Ids come from file names, so importing again appends nothing.
    /// Whatever no field holds is kept in the event's `meta.adr`, and the
    /// report names it. Index files and templates are skipped.
    /// Everything is appended as one batch: all of it, or nothing.
    Import(ImportArgs),
    /// Write a space's records as Markdown ADRs, numbered by seq, with an index.md.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dlog adr import team docs/decisions --dry-run    what would be appended
  dlog adr import team doc/adr                     append it (a no-op the second time)
  dlog adr import team doc/adr --key-prefix adr/   keys like adr/0001-record-architecture-decisions")]
pub(crate) struct ImportArgs {
    /// The space to append to.
    space: String,
    /// The directory of ADR files.
    dir: PathBuf,
    /// Show what would be appended, and append nothing.
    #[arg(long)]
    dry_run: bool,
    /// Who imports [default: $DLOG_ACTOR, git's user.name, or $USER].
    #[arg(long)]
    actor: Option<String>,
    /// Put this before every key (keys are the file names without `.md`).
    #[arg(long, default_value = "")]
    key_prefix: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// MADR 4 (front matter, Considered Options, Decision Outcome).
    Madr,
    /// Michael Nygard's (Status, Context, Decision, Consequences), as adr-tools writes.
    Nygard,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dlog adr export team --out docs/decisions
  dlog adr export team --out doc/adr --format nygard")]
pub(crate) struct ExportArgs {
    /// The space.
    space: String,
    /// The directory to write (created if missing; files of the same name are replaced).
    #[arg(long)]
    out: PathBuf,
    /// The Markdown layout.
    #[arg(long, value_enum, default_value = "madr")]
    format: Format,
}

pub(crate) fn run(context: &Context, args: AdrArgs) -> Result<u8, Error> {
    match args.command {
        AdrCommand::Import(args) => import(context, args),
        AdrCommand::Export(args) => export(context, args),
    }
}

/// Every event of `space` by id: its kind and body.
fn existing_bodies(
    space: &crate::Space,
) -> Result<std::collections::HashMap<String, (String, serde_json::Value)>, Error> {
    let mut out = std::collections::HashMap::new();
    let mut next = 1;
    loop {
        let page = space.events(next, 1000)?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for e in page {
            let body = serde_json::from_str(&e.body).unwrap_or_default();
            out.insert(e.id, (e.kind, body));
        }
    }
    Ok(out)
}

fn import(context: &Context, args: ImportArgs) -> Result<u8, Error> {
    let (adrs, skipped) = adr::read_dir(&args.dir)?;
    if adrs.is_empty() {
        return Err(Error::Invalid(format!(
            "{} holds no ADR files (Markdown records); {} file(s) skipped",
            args.dir.display(),
            skipped.len()
        )));
    }
    let log = context.open()?;
    let actor = super::append::actor(args.actor, &log)?;
    let plan = adr::plan(adrs, &actor, &args.key_prefix);
    let space = log.space(&args.space);
    // A record already imported (by anyone: the actor is not compared) is
    // not sent again, so importing the same directory twice is a no-op;
    // one whose file changed since is refused, naming it.
    let existing = existing_bodies(&space)?;
    let mut fresh = Vec::new();
    let mut created: Vec<Option<bool>> = Vec::with_capacity(plan.intents.len());
    for intent in &plan.intents {
        let id = intent.id.clone().unwrap_or_default();
        match existing.get(&id) {
            None => {
                fresh.push(intent.clone());
                created.push(None);
            }
            Some((kind, body)) => {
                let mine: serde_json::Value = serde_json::from_str(&intent.body).unwrap_or_default();
                if *kind != intent.kind || *body != mine {
                    let file =
                        plan.mapped.iter().find(|m| m.events.iter().any(|e| e.ends_with(&format!(" {id}"))));
                    eprintln!(
                        "dlog: {} changed since it was imported into space {:?}; change a decision through the log (supersede it), not its old file",
                        file.map_or("a record", |m| m.file.as_str()),
                        args.space
                    );
                    return Err(Error::IdConflict(id));
                }
                created.push(Some(false));
            }
        }
    }
    if !args.dry_run && !fresh.is_empty() {
        let mut appended = space.append_batch(fresh)?.into_iter();
        for slot in created.iter_mut().filter(|c| c.is_none()) {
            *slot = appended.next().map(|a| a.created);
        }
    }
    let written = created.iter().filter(|c| **c == Some(true)).count();
    if context.json {
        for (intent, created) in plan.intents.iter().zip(&created) {
            let body: serde_json::Value = serde_json::from_str(&intent.body).unwrap_or_default();
            print(&json!({"intent": {"id": intent.id, "actor": intent.actor, "kind": intent.kind, "body": body}, "created": created}).to_string())?;
        }
        print(&json!({"records": plan.mapped, "skipped": skipped, "events": plan.intents.len(), "written": written, "dry_run": args.dry_run}).to_string())?;
        return Ok(exit::OK);
    }
    for m in &plan.mapped {
        let sup = m.supersedes.as_ref().map(|s| format!(", supersedes {s}")).unwrap_or_default();
        print(&format!(
            "{} ({}) → {} [{}]{sup}: {}",
            m.file,
            m.format,
            m.key,
            m.status,
            m.events.join(", ")
        ))?;
        if m.rejected > 0 {
            print(&format!("    {} rejected option(s) with why-not", m.rejected))?;
        }
        if !m.kept_in_meta.is_empty() {
            print(&format!("    kept in meta.adr: {}", m.kept_in_meta.join(", ")))?;
        }
        for note in &m.notes {
            print(&format!("    note: {note}"))?;
        }
    }
    for s in &skipped {
        print(&format!("skipped {}: {}", s.file, s.reason))?;
    }
    let verb = if args.dry_run { "would append" } else { "appended" };
    let count = if args.dry_run { created.iter().filter(|c| c.is_none()).count() } else { written };
    print(&format!(
        "{} record(s), {} event(s); {verb} {count} to space {:?}{}",
        plan.mapped.len(),
        plan.intents.len(),
        args.space,
        if !args.dry_run && written < plan.intents.len() {
            format!(" ({} already there)", plan.intents.len() - written)
        } else {
            String::new()
        }
    ))?;
    Ok(exit::OK)
}

/// Write `bytes` to `dir/name` durably: a temporary file, synced, renamed
/// over the name (the caller syncs the directory once at the end).
fn write_file(fs: &RealFs, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let storage = |e: std::io::Error| Error::Storage(format!("writing {}: {e}", dir.join(name).display()));
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = fs.create_new(&tmp, 0o644).map_err(storage)?;
    file.write_all(bytes).map_err(storage)?;
    file.sync().map_err(storage)?;
    drop(file);
    fs.rename(&tmp, &dir.join(name)).map_err(storage)
}

fn export(context: &Context, args: ExportArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let space = log.space(&args.space);
    if space.head()?.is_none() {
        return Err(Error::NotFound(format!("space {:?} has no events", args.space)));
    }
    let style = match args.format {
        Format::Madr => Style::Madr,
        Format::Nygard => Style::Nygard,
    };
    let (files, index) = adr::export(&space, style)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Error::Storage(format!("creating {}: {e}", args.out.display())))?;
    let fs = RealFs;
    for f in &files {
        write_file(&fs, &args.out, &f.file, f.text.as_bytes())?;
    }
    write_file(&fs, &args.out, "index.md", index.as_bytes())?;
    fs.sync_dir(&args.out).map_err(|e| Error::Storage(format!("syncing {}: {e}", args.out.display())))?;
    if context.json {
        print(&json!({"space": args.space, "out": args.out, "files": files.len()}).to_string())?;
    } else {
        print(&format!("wrote {} record(s) and index.md to {}", files.len(), args.out.display()))?;
    }
    Ok(exit::OK)
}
