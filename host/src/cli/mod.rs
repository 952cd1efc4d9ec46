//! The `dlog` command line: argument parsing, dispatch and exit codes.

mod adr;
mod append;
mod demo;
mod find;
mod lease;
mod maintain;
mod mcp;
mod output;
mod read;
mod remote;
mod site;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{Error, Log};

/// Exit codes, distinct per failure class so scripts can react.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An unexpected failure (a bug: the guest trapped, output failed…).
    pub const FAILURE: u8 = 1;
    /// Bad arguments or invalid input (an intent, a file, a name).
    pub const USAGE: u8 = 2;
    /// A conflict: the head moved, `supersedes` is stale, an id is reused,
    /// a space diverged from its remote.
    pub const CONFLICT: u8 = 3;
    /// A space, key, seq or commit that does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// Storage failed: I/O, permissions, a locked ref, no repository.
    pub const STORAGE: u8 = 5;
    /// Not the lease holder, or fenced out by a newer epoch.
    pub const AUTHORITY: u8 = 6;
    /// The log breaks its invariants (`verify` found problems).
    pub const CORRUPT: u8 = 7;
}

/// The exit code for an error.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Invalid(_) => exit::USAGE,
        Error::HeadConflict { .. }
        | Error::DecisionConflict { .. }
        | Error::IdConflict(_)
        | Error::Diverged { .. } => exit::CONFLICT,
        Error::NotHolder { .. } | Error::StaleEpoch { .. } | Error::Timeout { .. } => exit::AUTHORITY,
        Error::NotFound(_) => exit::NOT_FOUND,
        Error::Corrupt(_) => exit::CORRUPT,
        Error::Storage(_) => exit::STORAGE,
        Error::Guest(_) => exit::FAILURE,
    }
}

const AFTER_HELP: &str = "\
Examples:
  dlog init decisions.git --bare
  dlog --repo decisions.git append team --key db --choice postgres --why 'we know it' \\
       --reject 'mongo=no joins'
  dlog --repo decisions.git fold team
  dlog --repo decisions.git show team db
  dlog --repo decisions.git events team --follow
  dlog --repo decisions.git serve team            (then appends from other processes are forwarded)
  dlog --repo decisions.git mcp                   (for an AI agent's MCP client: tools over stdio)
  dlog --repo decisions.git remote add origin git@github.com:acme/decisions.git
                                                  (share one log across machines: docs/TEAMS.md)
  dlog demo

Exit codes: 0 ok, 1 unexpected failure, 2 usage or invalid input, 3 conflict,
4 not found, 5 storage or network failure (the error names the remote), 6 not the lease holder / stale epoch, 7 corrupt log.";

/// A git-backed, append-only decision log whose logic runs in a sandboxed
/// WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "dlog", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// The repository (default: found from the current directory, like git).
    #[arg(long, global = true, value_name = "PATH", env = "DLOG_REPO")]
    repo: Option<PathBuf>,
    /// Machine-readable output (JSON; JSON Lines for event streams).
    #[arg(long, global = true)]
    json: bool,
    /// Store a checkpoint (the fold and an index) every this many events; 0: only `dlog checkpoint`.
    #[arg(long, global = true, value_name = "N", default_value_t = 512)]
    checkpoint_every: u64,
    /// How long an append waits for another writer's lease before failing.
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    wait: std::time::Duration,
    /// With a bound remote: fetch every space's head before the command reads.
    #[arg(long, global = true)]
    fetch: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a repository for decision logs.
    Init(maintain::InitArgs),
    /// Share the log across machines through a git remote: add, remove, show.
    Remote(remote::RemoteArgs),
    /// Fetch every space's head from the bound remote.
    Sync(remote::SyncArgs),
    /// Append a decision (or a retraction) to a space.
    Append(Box<append::AppendArgs>),
    /// List a space's events, oldest first; --follow tails new ones.
    Events(read::EventsArgs),
    /// Fold a space (or several: --overlay / --union) into its current decisions.
    Fold(read::FoldArgs),
    /// Show one decision: the choice, why, why not, and its history.
    Show(read::ShowArgs),
    /// List the spaces in the repository.
    Spaces,
    /// Import or export Architecture Decision Records (MADR, Nygard/adr-tools, log4brains).
    Adr(adr::AdrArgs),
    /// Search decisions by key or key prefix, tag, actor, status, text and time, in one space or all.
    Find(find::FindArgs),
    /// Store the fold and the index of event ids and commits now, so readers and writers start there instead of replaying.
    Checkpoint(maintain::CheckpointArgs),
    /// Re-walk spaces and check every invariant of their chains (and checkpoints).
    ///
    /// Checks every object's id, every event's bytes against its encoding,
    /// contiguous seqs, non-decreasing epochs and times, unique ids, that the
    /// fold applies, and every checkpoint's state, index segments and id runs
    /// against the chain. It reads every event once (about 30 s per million
    /// events on the reference machine, in about 100 MiB per million); on a terminal
    /// it reports each space as it starts and finishes. Exit code 7 when
    /// anything is off, with one line per problem.
    Verify(maintain::VerifyArgs),
    /// Write a space's events as JSON Lines (one canonical event per line).
    Export(maintain::ExportArgs),
    /// Replay an export into a space (validated whole first; re-import is a no-op).
    Import(maintain::ImportArgs),
    /// Inspect or hold a space's lease (who may append, at which epoch).
    Lease(lease::LeaseArgs),
    /// Hold spaces' leases and append the intents other processes forward.
    Serve(lease::ServeArgs),
    /// Serve the log to AI agents over the Model Context Protocol (stdio).
    Mcp(mcp::McpArgs),
    /// Show what a crash left behind (locks and their owners, temporary files, bad objects), and fix it if asked.
    Doctor(maintain::DoctorArgs),
    /// Pack loose objects and merge packs, so reads stay fast (safe while dlog runs).
    Gc(maintain::GcArgs),
    /// Write the web pages of spaces as a static site (for file:// or any static host).
    Site(site::SiteArgs),
    /// Write the embedded WebAssembly component (and its WIT) for other hosts.
    Component(maintain::ComponentArgs),
    /// Run a scripted history in a temporary repository and show the result.
    Demo(demo::DemoArgs),
}

/// What a command needs: how to open the log, and the output mode.
#[derive(Debug)]
pub(crate) struct Context {
    repo: Option<PathBuf>,
    json: bool,
    wait: std::time::Duration,
    checkpoint_every: u64,
    fetch: bool,
    /// Every log opened, to report their warnings at the end.
    opened: std::cell::RefCell<Vec<Log>>,
}

impl Context {
    /// Where to look for the repository: `--repo`, or the current directory.
    pub(crate) fn start(&self) -> Result<PathBuf, Error> {
        match &self.repo {
            Some(path) => Ok(path.clone()),
            None => std::env::current_dir().map_err(|e| Error::Storage(format!("no current directory: {e}"))),
        }
    }

    /// Open the log of the repository given or found from the current directory.
    pub(crate) fn open(&self) -> Result<Log, Error> {
        self.open_with(|_| {})
    }

    /// [`Context::open`] with options adjusted for one command.
    pub(crate) fn open_with(&self, adjust: impl FnOnce(&mut crate::Options)) -> Result<Log, Error> {
        let mut options = self.options();
        adjust(&mut options);
        let log = Log::open(&self.start()?, options)?;
        if self.fetch {
            log.fetch()?;
        }
        self.opened.borrow_mut().push(log.clone());
        Ok(log)
    }

    /// Options for this process's log: the lease protocol with `--wait`.
    pub(crate) fn options(&self) -> crate::Options {
        crate::Options {
            wait: self.wait,
            checkpoint_every: self.checkpoint_every,
            ..crate::Options::default()
        }
    }
}

/// Parse the arguments, run the command, and map the outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let context = Context {
        repo: cli.repo,
        json: cli.json,
        wait: cli.wait,
        checkpoint_every: cli.checkpoint_every,
        fetch: cli.fetch,
        opened: Default::default(),
    };
    let result = match cli.command {
        Command::Init(args) => maintain::init(&context, args),
        Command::Remote(args) => remote::remote(&context, args),
        Command::Sync(args) => remote::sync(&context, args),
        Command::Append(args) => append::run(&context, *args),
        Command::Events(args) => read::events(&context, args),
        Command::Fold(args) => read::fold(&context, args),
        Command::Show(args) => read::show(&context, args),
        Command::Spaces => read::spaces(&context),
        Command::Find(args) => find::run(&context, args),
        Command::Adr(args) => adr::run(&context, args),
        Command::Checkpoint(args) => maintain::checkpoint(&context, args),
        Command::Verify(args) => maintain::verify(&context, args),
        Command::Export(args) => maintain::export(&context, args),
        Command::Import(args) => maintain::import(&context, args),
        Command::Lease(args) => lease::lease(&context, args),
        Command::Serve(args) => lease::serve(&context, args),
        Command::Mcp(args) => mcp::run(&context, args),
        Command::Doctor(args) => maintain::doctor(&context, args),
        Command::Gc(args) => maintain::gc(&context, args),
        Command::Site(args) => site::run(&context, args),
        Command::Component(args) => maintain::component(args),
        Command::Demo(args) => demo::run(args),
    };
    for log in context.opened.borrow().iter() {
        for warning in log.take_warnings() {
            eprintln!("dlog: warning: {warning}");
        }
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::report_error(&e, context.json);
            ExitCode::from(exit_code(&e))
        }
    }
}
