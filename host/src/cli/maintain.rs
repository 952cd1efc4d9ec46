//! Repository-level commands: `init`, `verify`, `export`, `import`, `component`.

use std::io::{BufRead, BufReader, IsTerminal, Read};
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
            // Synced before the rename and the directory after, so that a
            // crash leaves the old file or the whole new one, never a
            // truncated export under the final name.
            let file =
                out.into_inner().map_err(|e| Error::Storage(format!("writing {}: {e}", tmp.display())))?;
            file.sync_all().map_err(|e| Error::Storage(format!("syncing {}: {e}", tmp.display())))?;
            drop(file);
            std::fs::rename(&tmp, path)
                .map_err(|e| Error::Storage(format!("renaming to {}: {e}", path.display())))?;
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => std::path::Path::new("."),
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::Storage(format!("syncing directory {}: {e}", dir.display())))?;
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
No crash needs you: a lock file left by a dlog process that was killed, or by
a power loss, is removed by the next write on its own, at once. A lock a live
process holds is never touched. `dlog doctor` shows everything a crash can
leave behind and who owns it:

  lock files        refs/dlog/**.lock, packed-refs.lock, dlog/leases/*.json.lock,
                    with their owner: a running dlog (pid), a dead one, a power
                    loss, or no dlog process (git, or a dlog from before guards)
  temporary files   tmp_pack_*, tmp_idx_*, tmp_obj_* of writes that never finished
  bad objects       loose object files that are empty or not the object they name
  half packs        a .pack without its .idx, or the reverse

--fix removes what is safe to remove: locks of dead processes and power losses,
bad objects, and locks of unknown owner, temporary files and half packs older
than --older-than. Exit 0 when nothing left blocks appends or git fsck, else 5.

Examples:
  dlog doctor
  dlog doctor --fix
  dlog --json doctor")]
pub(crate) struct DoctorArgs {
    /// Remove what is safe to remove (see below).
    #[arg(long, alias = "remove-stale-locks")]
    fix: bool,
    /// How old a file of unknown owner (a lock no dlog process took, a
    /// temporary file, half a pack) must be before --fix removes it.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    older_than: Duration,
}

pub(crate) fn doctor(context: &Context, args: DoctorArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let git_dir = log.git_dir().ok_or_else(|| Error::Storage("the log is not in a git repository".into()))?;
    let findings = crate::doctor::examine(git_dir)?;
    let mut blocking = 0;
    for finding in &findings {
        let removable = finding.removable(args.older_than);
        let removed = args.fix && removable;
        if removed {
            crate::doctor::remove(git_dir, finding, args.older_than)?;
        } else if finding.blocks() {
            blocking += 1;
        }
        let path = finding.path().display().to_string();
        if context.json {
            let (kind, owner, age) = match finding {
                crate::doctor::Finding::Lock { owner, age, .. } => {
                    ("lock", Some(format!("{owner:?}")), Some(age))
                }
                crate::doctor::Finding::Temp { age, .. } => ("temp", None, Some(age)),
                crate::doctor::Finding::BadObject { .. } => ("bad-object", None, None),
                crate::doctor::Finding::HalfPack { age, .. } => ("half-pack", None, Some(age)),
            };
            print(
                &json!({"kind": kind, "path": path, "owner": owner, "age_s": age.map(Duration::as_secs),
                    "explanation": finding.explain(), "blocks": finding.blocks(), "removable": removable,
                    "removed": removed})
                .to_string(),
            )?;
        } else {
            let verdict = if removed { "removed".to_owned() } else { finding.explain() };
            print(&format!("{path}: {verdict}"))?;
        }
    }
    if findings.is_empty() && !context.json {
        print("nothing a crash left behind: no lock files, temporary files, bad objects or half packs")?;
    }
    Ok(if blocking == 0 { exit::OK } else { exit::STORAGE })
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
