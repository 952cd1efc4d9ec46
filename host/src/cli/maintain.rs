//! Repository-level commands: `init`, `verify`, `export`, `import`, `component`.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::output::print;
use super::{Context, exit};
use crate::{Error, Log};

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Where to create the repository (default: the current directory).
    path: Option<PathBuf>,
    /// Create a bare repository (no work tree), as for a shared remote.
    #[arg(long)]
    bare: bool,
}

pub(crate) fn init(context: &Context, args: InitArgs) -> Result<u8, Error> {
    let path = match args.path.or_else(|| context.repo.clone()) {
        Some(p) => p,
        None => std::env::current_dir().map_err(|e| Error::Storage(format!("no current directory: {e}")))?,
    };
    let location = Log::init(&path, args.bare)?;
    if context.json {
        print(&json!({"repository": location.display().to_string(), "bare": args.bare}).to_string())?;
    } else {
        print(&format!("initialised a decision-log repository in {}", location.display()))?;
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Spaces to check (default: all).
    spaces: Vec<String>,
}

/// The longest one space's `verify` may run: it reads every event (about
/// 30 s per million on the reference machine), far past the guest's usual
/// per-call deadline.
const VERIFY_DEADLINE: Duration = Duration::from_secs(3600);

pub(crate) fn verify(context: &Context, args: VerifyArgs) -> Result<u8, Error> {
    let log = context.open_with(|options| options.limits.call_timeout = VERIFY_DEADLINE)?;
    let spaces = if args.spaces.is_empty() { log.spaces()? } else { args.spaces };
    let mut code = exit::OK;
    // Progress for people: which space, how long it is, how long it took.
    let progress = std::io::stderr().is_terminal();
    for name in spaces {
        let started = Instant::now();
        if progress {
            let events = log.space(&name).head()?.map_or(0, |h| h.seq);
            eprintln!("dlog: verifying {name} ({events} events)…");
        }
        let report = log.space(&name).verify()?;
        if progress {
            eprintln!("dlog: verified {name} in {:.1} s", started.elapsed().as_secs_f64());
        }
        if !report.problems.is_empty() {
            code = exit::CORRUPT;
        }
        if context.json {
            let v = json!({"space": report.space, "events": report.events, "head": report.head, "ok": report.problems.is_empty(), "problems": report.problems});
            print(&v.to_string())?;
        } else if report.problems.is_empty() {
            print(&format!("{name}: ok, {} events", report.events))?;
        } else {
            print(&format!("{name}: {} problem(s) in {} events", report.problems.len(), report.events))?;
            for p in &report.problems {
                print(&format!("  - {p}"))?;
            }
        }
    }
    Ok(code)
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The space.
    space: String,
    /// Write to FILE instead of stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub(crate) fn export(context: &Context, args: ExportArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let space = log.space(&args.space);
    let count = match &args.out {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let file = std::fs::File::create(&tmp)
                .map_err(|e| Error::Storage(format!("creating {}: {e}", tmp.display())))?;
            let mut out = std::io::BufWriter::new(file);
            let count = space.export(&mut out)?;
            out.flush().map_err(|e| Error::Storage(format!("writing {}: {e}", tmp.display())))?;
            drop(out);
            std::fs::rename(&tmp, path)
                .map_err(|e| Error::Storage(format!("renaming to {}: {e}", path.display())))?;
            count
        }
        None => space.export(&mut std::io::stdout().lock())?,
    };
    if args.out.is_some() {
        eprintln!("exported {count} events of {}", args.space);
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The space to import into (it must be empty or hold a prefix of the file).
    space: String,
    /// The JSON Lines file (`-` for stdin), as written by `dlog export`.
    file: PathBuf,
}

pub(crate) fn import(context: &Context, args: ImportArgs) -> Result<u8, Error> {
    let reader: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .map_err(|e| Error::Invalid(format!("opening {}: {e}", args.file.display())))?,
        )
    };
    let mut lines = Vec::new();
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| Error::Invalid(format!("line {}: {e}", n + 1)))?;
        if line.is_empty() {
            return Err(Error::Invalid(format!(
                "line {}: empty line; an export has one event per line",
                n + 1
            )));
        }
        lines.push(line);
    }
    let log = context.open()?;
    let report = log.space(&args.space).import(&lines)?;
    if context.json {
        let head = report.head.map(|h| json!({"commit": h.commit, "seq": h.seq}));
        print(&json!({"total": report.total, "written": report.written, "skipped": report.skipped, "head": head}).to_string())?;
    } else {
        print(&format!(
            "imported {} events into {} ({} already present); head {}",
            report.written,
            args.space,
            report.skipped,
            report.head.map_or("none".into(), |h| format!("#{} {}", h.seq, h.commit))
        ))?;
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
#[command(after_help = "\
The component imports only dlog:decision-log/{types,objects,refs,authority,clock}
and exports dlog:decision-log/log; see README \"Loading the component in your own host\".")]
pub(crate) struct ComponentArgs {
    /// Where to write the component (.wasm).
    #[arg(long)]
    out: PathBuf,
    /// Also write the WIT package into this directory.
    #[arg(long, value_name = "DIR")]
    wit: Option<PathBuf>,
}

pub(crate) fn component(args: ComponentArgs) -> Result<u8, Error> {
    let write = |path: &PathBuf, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|e| Error::Storage(format!("writing {}: {e}", path.display())))
    };
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Storage(format!("creating {}: {e}", parent.display())))?;
    }
    write(&args.out, crate::COMPONENT)?;
    eprintln!("wrote the component ({} bytes) to {}", crate::COMPONENT.len(), args.out.display());
    if let Some(dir) = &args.wit {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("creating {}: {e}", dir.display())))?;
        for (name, text) in crate::WIT_FILES {
            write(&dir.join(name), text.as_bytes())?;
        }
        eprintln!("wrote {} WIT files to {}", crate::WIT_FILES.len(), dir.display());
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
#[command(after_help = "\
A writer killed at the wrong instant can leave refs/dlog/spaces/<space>.lock
behind; appends to that space then fail with a storage error naming the lock.
`dlog doctor` lists such files with their age; `--remove-stale-locks` deletes
those older than --older-than. A lock that young may belong to a running writer
and is never removed.")]
pub(crate) struct DoctorArgs {
    /// Remove lock files older than --older-than.
    #[arg(long)]
    remove_stale_locks: bool,
    /// Only locks at least this old count as stale.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    older_than: Duration,
}

pub(crate) fn doctor(context: &Context, args: DoctorArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let git_dir = log.git_dir().ok_or_else(|| Error::Storage("the log is not in a git repository".into()))?;
    let locks = crate::doctor::find_locks(git_dir)?;
    let mut remaining = 0;
    for lock in &locks {
        let stale = lock.age >= args.older_than;
        let removed = args.remove_stale_locks && stale;
        if removed {
            crate::doctor::remove_lock(git_dir, lock)?;
        } else {
            remaining += 1;
        }
        let age = humantime::format_duration(Duration::from_secs(lock.age.as_secs()));
        if context.json {
            print(&json!({"lock": lock.path.display().to_string(), "age_s": lock.age.as_secs(), "stale": stale, "removed": removed}).to_string())?;
        } else {
            let verdict = match (removed, stale) {
                (true, _) => "removed",
                (false, true) => "stale: remove with --remove-stale-locks",
                (false, false) => "recent: may be held by a running writer; left alone",
            };
            print(&format!("{} (age {age}): {verdict}", lock.path.display()))?;
        }
    }
    if locks.is_empty() && !context.json {
        print("no lock files: nothing blocks appends")?;
    }
    Ok(if remaining == 0 { exit::OK } else { exit::STORAGE })
}

#[derive(Debug, Args)]
#[command(after_help = "\
Appends keep the repository compact on their own: a batch becomes a pack,
packs of similar size are merged four at a time, and once about 6,700 loose
objects (three per single append) exist, those older than a minute are
packed. `dlog gc` does all of that now and merges every pack it can (at most
300,000 objects per merge), e.g. before a backup. Objects younger than a
minute stay loose (another writer may be syncing them). Safe while other
dlog processes read and append; `git gc` remains safe too, and also
compresses and deltifies.")]
pub(crate) struct GcArgs {}

/// `dlog gc`: the backend's own packing, on demand.
pub(crate) fn gc(context: &Context, _args: GcArgs) -> Result<u8, Error> {
    let backend = crate::backend::GitBackend::discover(&context.start()?)?;
    let json = context.json;
    if !json {
        eprintln!("dlog: packing loose objects and merging packs in {}", backend.git_dir().display());
    }
    let report = backend.gc(&mut |step| {
        if !json {
            eprintln!("dlog: {step}");
        }
    })?;
    if json {
        print(
            &json!({
                "loose_packed": report.loose_packed,
                "packs_before": report.packs_before,
                "packs_merged": report.packs_merged,
                "packs_after": report.packs_after,
            })
            .to_string(),
        )?;
    } else {
        print(&format!(
            "packed {} loose objects; {} packs before, {} merged, {} now",
            report.loose_packed, report.packs_before, report.packs_merged, report.packs_after
        ))?;
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub(crate) struct CheckpointArgs {
    /// Spaces to checkpoint (default: all).
    spaces: Vec<String>,
}

pub(crate) fn checkpoint(context: &Context, args: CheckpointArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let spaces = if args.spaces.is_empty() { log.spaces()? } else { args.spaces };
    for name in spaces {
        let info = log.space(&name).checkpoint()?;
        if context.json {
            let v = info.map(|c| json!({"seq": c.seq, "commit": c.commit, "event": c.event}));
            print(&json!({"space": name, "checkpoint": v}).to_string())?;
        } else {
            match info {
                Some(c) => print(&format!("{name}: checkpoint at seq {} ({})", c.seq, &c.commit[..12]))?,
                None => print(&format!("{name}: empty, nothing to checkpoint"))?,
            }
        }
    }
    Ok(exit::OK)
}
