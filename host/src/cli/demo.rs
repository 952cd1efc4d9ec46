//! `dlog demo`: the main job on an embedded default. A scripted history in
//! a fresh repository, then the fold, the views and git's own view of it.
//! The clock is fixed, so every run prints the same commit ids: the log is
//! deterministic down to the byte.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use clap::Args;
use serde_json::{Value, json};

use super::exit;
use super::output::{event_line, print};
use super::read::{render_state, render_view};
use crate::clock::ManualClock;
use crate::{Error, Intent, Log, Options, Space};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Create the demo repository here and keep it (default: a temporary
    /// directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

/// 2026-01-05T09:00:00Z: the demo's clock starts here and moves a minute a step.
const START_MS: u64 = 1_767_603_600_000;

fn decide(
    id: &str,
    actor: &str,
    key: &str,
    choice: &str,
    why: &str,
    rejected: Value,
    supersedes: Option<&str>,
) -> Intent {
    let mut body = json!({"key": key, "choice": choice, "rationale": why});
    if rejected.as_array().is_some_and(|r| !r.is_empty()) {
        body["rejected"] = rejected;
    }
    if let Some(s) = supersedes {
        body["supersedes"] = s.into();
    }
    Intent::new(actor, "decide", body.to_string()).with_id(id)
}

fn section(title: &str) -> Result<(), Error> {
    print(&format!("\n== {title} =="))
}

fn step(clock: &ManualClock, space: &Space, intent: Intent) -> Result<(), Error> {
    clock.advance(60_000);
    let appended = space.append(intent)?;
    print(&format!("{:<9} {}", space.name(), event_line(&appended.event)))
}

fn git_log(repo: &Path, space: &str) -> Result<(), Error> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["log", "--format=%h %an: %s%n        %(trailers:key=Dlog-Seq,key=Dlog-Epoch,separator=%x2C )"])
        .arg(format!("refs/dlog/spaces/{space}"))
        .output();
    match out {
        Ok(o) if o.status.success() => print(String::from_utf8_lossy(&o.stdout).trim_end()),
        Ok(o) => print(&format!("(git log failed: {})", String::from_utf8_lossy(&o.stderr).trim())),
        Err(_) => print("(git is not installed here; `dlog events` shows the same history)"),
    }
}

pub(crate) fn run(args: DemoArgs) -> Result<u8, Error> {
    let temp;
    let dir = match &args.keep {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()
                .map_err(|e| Error::Storage(format!("creating a temporary directory: {e}")))?;
            temp.path().join("decisions.git")
        }
    };
    let repo = Log::init(&dir, true)?;
    let clock = Arc::new(ManualClock::new(START_MS));
    let options = Options { clock: clock.clone(), ..Options::default() };
    let log = Log::open(&repo, options)?;
    let platform = log.space("platform");
    let web = log.space("web");
    print(&format!("decision-log demo: a fresh repository at {}", repo.display()))?;

    section(
        "appending decisions (each is a git commit; each append is a one-shot writer: it takes the space's lease at a new epoch, appends, releases)",
    )?;
    let none = json!([]);
    step(
        &clock,
        &platform,
        decide(
            "plat-1",
            "Ada",
            "storage",
            "git",
            "Every event is a commit: history, review and backup for free.",
            json!([{"option": "postgres", "why": "a server to run"}, {"option": "sqlite", "why": "not diffable"}]),
            None,
        ),
    )?;
    step(
        &clock,
        &platform,
        decide(
            "plat-2",
            "Ada",
            "runtime",
            "wasmtime",
            "Component model, sandboxed, fast.",
            json!([{"option": "wasmer", "why": "no component model"}]),
            None,
        ),
    )?;
    step(
        &clock,
        &web,
        decide(
            "web-1",
            "Grace",
            "storage",
            "sqlite",
            "The web team wants a single file.",
            none.clone(),
            None,
        ),
    )?;
    step(
        &clock,
        &web,
        decide("web-2", "Grace", "framework", "axum", "Tower ecosystem.", none.clone(), None),
    )?;
    step(
        &clock,
        &platform,
        decide(
            "plat-3",
            "Linus",
            "runtime",
            "wasmtime 48",
            "Pinned to what builds on Rust 1.95.",
            none.clone(),
            Some("plat-2"),
        ),
    )?;
    step(
        &clock,
        &web,
        Intent::new(
            "Grace",
            "retract",
            json!({"key": "framework", "rationale": "Too early to choose."}).to_string(),
        )
        .with_id("web-3"),
    )?;

    section("safety checks")?;
    let resent = platform.append(decide("plat-1", "Ada", "storage", "git", "Every event is a commit: history, review and backup for free.",
        json!([{"option": "postgres", "why": "a server to run"}, {"option": "sqlite", "why": "not diffable"}]), None))?;
    print(&format!(
        "resending intent plat-1 returns the original event #{} (created: {})",
        resent.event.seq, resent.created
    ))?;
    match platform.append(decide(
        "plat-4",
        "Mallory",
        "runtime",
        "wasmer",
        "I prefer it.",
        none.clone(),
        Some("plat-2"),
    )) {
        Err(e) => print(&format!("superseding a decision that is no longer in force is refused: {e}"))?,
        Ok(_) => return Err(Error::Guest("a stale supersedes was accepted".into())),
    }
    match platform.append(decide("plat-5", "Ada", "ci", "github", "x", none.clone(), None).expecting(1)) {
        Err(e) => print(&format!("an append expecting an old head is refused: {e}"))?,
        Ok(_) => return Err(Error::Guest("a stale expect_seq was accepted".into())),
    }

    section("fold of platform")?;
    print(&render_state(&serde_json::from_str(&platform.fold()?).unwrap_or(Value::Null)))?;
    section("overlay web over platform")?;
    print(&render_view(
        &serde_json::from_str(&log.overlay(&["web".into(), "platform".into()])?).unwrap_or(Value::Null),
    ))?;
    section("union of web and platform")?;
    print(&render_view(
        &serde_json::from_str(&log.union(&["web".into(), "platform".into()])?).unwrap_or(Value::Null),
    ))?;

    section("git log refs/dlog/spaces/platform (the real git)")?;
    git_log(&repo, "platform")?;
    section("verify")?;
    for name in log.spaces()? {
        let report = log.space(&name).verify()?;
        print(&format!(
            "{name}: {} events, {}",
            report.events,
            if report.problems.is_empty() { "chain sound".to_owned() } else { report.problems.join("; ") }
        ))?;
    }
    if args.keep.is_some() {
        print(&format!(
            "\nthe repository is kept at {}; try: dlog --repo {} show platform runtime",
            repo.display(),
            repo.display()
        ))?;
    }
    Ok(exit::OK)
}
