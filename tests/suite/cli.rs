//! The `dlog` binary, run as a user or a script would: real processes on a
//! real repository, checked with the real `git`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::git_cli::git;

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");

/// A repository made with `dlog init`, and a way to run `dlog` on it.
pub struct Repo {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.git");
        let out = dlog_in(dir.path(), &["init", "--bare", path.to_str().unwrap()], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Repo { _dir: dir, path }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, None)
    }

    pub fn run_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut full = vec!["--repo", self.path.to_str().unwrap()];
        full.extend_from_slice(args);
        dlog_in(&self.path, &full, input)
    }

    /// Run and expect success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "dlog {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(&full)).unwrap()
    }

    pub fn head(&self, space: &str) -> String {
        git(&self.path, &["rev-parse", &format!("refs/dlog/spaces/{space}")]).trim().to_owned()
    }
}

pub fn dlog_in(dir: &Path, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(DLOG)
        .args(args)
        .current_dir(dir)
        .env("DLOG_ACTOR", "tester")
        .env_remove("DLOG_REPO")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or("").as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn decide_args<'a>(space: &'a str, key: &'a str, choice: &'a str) -> Vec<&'a str> {
    vec!["append", space, "--key", key, "--choice", choice, "--why", "because"]
}

#[test]
fn append_fold_show_and_events_work_from_the_command_line() {
    let repo = Repo::new();
    let out = repo.json(&[
        "append",
        "team",
        "--key",
        "db",
        "--choice",
        "postgres",
        "--why",
        "we know it",
        "--reject",
        "mongo=no joins",
        "--id",
        "d1",
    ]);
    assert_eq!(out["created"], true);
    assert_eq!(out["event"]["seq"], 1);
    assert_eq!(out["event"]["actor"], "tester");
    assert_eq!(out["event"]["body"]["rejected"][0]["why"], "no joins");
    assert_eq!(out["commit"], repo.head("team").as_str());
    repo.ok(&[
        "append",
        "team",
        "--key",
        "db",
        "--choice",
        "sqlite",
        "--why",
        "smaller",
        "--supersedes",
        "d1",
        "--id",
        "d2",
    ]);

    let state = repo.json(&["fold", "team"]);
    assert_eq!(state["decisions"]["db"]["choice"], "sqlite");
    assert_eq!(state["decisions"]["db"]["revision"], 2);
    let at_one = repo.json(&["fold", "team", "--at", "1"]);
    assert_eq!(at_one["decisions"]["db"]["choice"], "postgres");

    let human = repo.ok(&["show", "team", "db"]);
    assert!(human.contains("team / db = sqlite"), "{human}");
    assert!(human.contains("why:     smaller"), "{human}");
    assert!(human.contains("decide db = postgres"), "the history lists the superseded decision: {human}");
    let shown = repo.json(&["show", "team", "db"]);
    assert_eq!(shown["history"].as_array().unwrap().len(), 2);

    let lines = repo.ok(&["--json", "events", "team"]);
    let events: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.iter().map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>(), ["d1", "d2"]);
    assert_eq!(repo.ok(&["--json", "events", "team", "--from", "2"]).lines().count(), 1);
    assert!(repo.ok(&["spaces"]).starts_with("team"));
    assert!(repo.ok(&["verify"]).contains("team: ok, 2 events"));
    git(&repo.path, &["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn exit_codes_tell_usage_conflict_not_found_and_storage_apart() {
    let repo = Repo::new();
    repo.ok(&["append", "team", "--key", "db", "--choice", "pg", "--why", "w", "--id", "d1"]);
    let usage = repo.run(&["append", "team", "--key", "db"]);
    assert_eq!(code(&usage), 2, "{}", stderr(&usage));
    assert!(stderr(&usage).contains("--choice is required"), "{}", stderr(&usage));
    let bad_flag = repo.run(&["append", "team", "--no-such-flag"]);
    assert_eq!(code(&bad_flag), 2);
    let invalid = repo.run(&decide_args("Bad Space", "k", "v"));
    assert_eq!(code(&invalid), 2);
    assert!(stderr(&invalid).contains("space name \"Bad Space\""), "{}", stderr(&invalid));

    let conflict =
        repo.run(&["append", "team", "--key", "db", "--choice", "x", "--why", "w", "--supersedes", "nope"]);
    assert_eq!(code(&conflict), 3, "{}", stderr(&conflict));
    let stale =
        repo.run(&["append", "team", "--key", "os", "--choice", "x", "--why", "w", "--expect-seq", "0"]);
    assert_eq!(code(&stale), 3);
    let reused =
        repo.run(&["append", "team", "--key", "db", "--choice", "other", "--why", "w", "--id", "d1"]);
    assert_eq!(code(&reused), 3);

    assert_eq!(code(&repo.run(&["show", "team", "nope"])), 4);
    assert_eq!(code(&repo.run(&["fold", "team", "--at", "9"])), 4);

    let nowhere = tempfile::tempdir().unwrap();
    let missing =
        dlog_in(nowhere.path(), &["--repo", nowhere.path().join("absent").to_str().unwrap(), "spaces"], None);
    assert_eq!(code(&missing), 5, "{}", stderr(&missing));
    assert!(stderr(&missing).contains("no git repository"), "{}", stderr(&missing));

    let json_err = repo.run(&[
        "--json",
        "append",
        "team",
        "--key",
        "db",
        "--choice",
        "x",
        "--why",
        "w",
        "--supersedes",
        "nope",
    ]);
    let v: Value = serde_json::from_str(stderr(&json_err).trim()).unwrap();
    assert_eq!(
        (v["error"].as_str(), v["exit"].as_u64(), v["in_force"].as_str()),
        (Some("decision-conflict"), Some(3), Some("d1"))
    );
    assert_eq!(repo.json(&["fold", "team"])["seq"], 1, "nothing was written by the failures");
}

#[test]
fn a_json_intent_reaches_the_guest_as_written() {
    let repo = Repo::new();
    let good = r#"{"id":"j1","kind":"decide","body":{"key":"db","choice":"pg","rationale":"r"}}"#;
    let out = repo.run_with_input(&["--json", "append", "team", "--intent", "-"], Some(good));
    assert!(out.status.success(), "{}", stderr(&out));
    let dup = r#"{"kind":"decide","body":{"key":"db","key":"ui","choice":"pg","rationale":"r"}}"#;
    let out = repo.run_with_input(&["append", "team", "--intent", "-"], Some(dup));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("Duplicate key \"key\""), "{}", stderr(&out));
    let batch = "{\"id\":\"b1\",\"kind\":\"decide\",\"body\":{\"key\":\"a\",\"choice\":\"1\",\"rationale\":\"r\"}}\n\
                 {\"id\":\"b2\",\"kind\":\"decide\",\"body\":{\"key\":\"b\",\"choice\":\"2\",\"rationale\":\"r\"},\"extra\":1}\n";
    let out = repo.run_with_input(&["append", "team", "--intent", "-"], Some(batch));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    assert_eq!(repo.json(&["fold", "team"])["seq"], 1, "a bad batch line writes nothing");
}

#[test]
fn an_export_imports_into_another_repository_with_the_same_head() {
    let a = Repo::new();
    for (k, v) in [("db", "pg"), ("ui", "web"), ("os", "linux")] {
        a.ok(&decide_args("team", k, v));
    }
    let export = a.ok(&["export", "team"]);
    assert_eq!(export.lines().count(), 3);
    let b = Repo::new();
    let file = b.path.parent().unwrap().join("team.jsonl");
    std::fs::write(&file, &export).unwrap();
    let report = b.json(&["import", "team", file.to_str().unwrap()]);
    assert_eq!((report["written"].as_u64(), report["skipped"].as_u64()), (Some(3), Some(0)));
    assert_eq!(a.head("team"), b.head("team"));
    assert_eq!(b.json(&["import", "team", file.to_str().unwrap()])["written"], 0, "re-import is a no-op");

    let broken = export.replacen("\"seq\":2", "\"seq\":5", 1);
    std::fs::write(&file, broken).unwrap();
    let c = Repo::new();
    let out = c.run(&["import", "team", file.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    assert!(c.ok(&["spaces"]).is_empty(), "a bad file changes nothing");
}

#[test]
fn verify_exits_with_the_corrupt_code_when_history_was_rewritten() {
    let repo = Repo::new();
    repo.ok(&decide_args("team", "db", "pg"));
    let head = repo.head("team");
    let text = git(&repo.path, &["cat-file", "commit", &head]).replace("decide db: pg", "decide db: evil");
    let dir = repo.path.parent().unwrap().join("forged");
    std::fs::write(&dir, text).unwrap();
    let forged = git(&repo.path, &["hash-object", "-w", "-t", "commit", dir.to_str().unwrap()]);
    git(&repo.path, &["update-ref", "refs/dlog/spaces/team", forged.trim()]);
    let out = repo.run(&["verify"]);
    assert_eq!(code(&out), 7, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not the encoding of its event"));
}

#[test]
fn gc_reports_what_it_packed_and_leaves_the_log_readable() {
    let repo = Repo::new();
    for (key, choice) in [("db", "pg"), ("ui", "web")] {
        repo.ok(&decide_args("team", key, choice));
    }
    let before = repo.ok(&["fold", "team"]);
    let report = repo.json(&["gc"]);
    assert_eq!(report["loose_packed"], 0, "objects younger than a minute stay loose: {report}");
    assert!(report["packs_after"].as_u64().is_some(), "{report}");
    let out = repo.run(&["gc"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("packed 0 loose objects;"));
    assert!(stderr(&out).contains("dlog: packed 0 loose objects"), "progress on stderr: {}", stderr(&out));
    assert_eq!(repo.ok(&["fold", "team"]), before);
}

#[test]
fn the_component_command_writes_the_embedded_component_and_its_wit() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("dlog.wasm");
    let wit = dir.path().join("wit");
    let out = dlog_in(
        dir.path(),
        &["component", "--out", wasm.to_str().unwrap(), "--wit", wit.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&wasm).unwrap(), decision_log::COMPONENT);
    let world = std::fs::read_to_string(wit.join("world.wit")).unwrap();
    assert!(world.contains("world decision-log"));
    assert_eq!(std::fs::read_dir(&wit).unwrap().count(), decision_log::WIT_FILES.len());
}

#[test]
fn the_demo_runs_on_its_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = dlog_in(dir.path(), &["demo"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("platform: 3 events, chain sound"), "{text}");
    assert!(text.contains("conflicts (1):"), "{text}");
    // The clock is fixed, so the head is the same on every run.
    assert!(
        text.contains("space platform at seq 3 (head bffbd22761ce127458d7caa778360ca9ea751950)"),
        "{text}"
    );
}

#[test]
fn an_acknowledged_append_is_seen_at_once_by_another_process() {
    let repo = Repo::new();
    for i in 1..=5 {
        let key = format!("k{i}");
        let appended = repo.json(&decide_args("team", &key, "v"));
        let seq = appended["event"]["seq"].as_u64().unwrap();
        assert_eq!(seq, i);
        // A fresh process, started only after the first one acknowledged.
        let state = repo.json(&["fold", "team"]);
        assert_eq!(state["seq"].as_u64(), Some(seq), "read-your-writes across processes");
        assert_eq!(state["decisions"][&key]["choice"], "v");
    }
}

#[test]
fn events_follow_sees_appends_made_by_other_processes() {
    let repo = Repo::new();
    repo.ok(&decide_args("team", "k0", "v"));
    let mut follower = Command::new(DLOG)
        .args([
            "--repo",
            repo.path.to_str().unwrap(),
            "--json",
            "events",
            "team",
            "--follow",
            "--interval",
            "20ms",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v: Value = serde_json::from_str(&line).unwrap();
            if tx.send(v["seq"].as_u64().unwrap()).is_err() {
                break;
            }
        }
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), 1);
    for i in 1..=3 {
        repo.ok(&decide_args("team", &format!("k{i}"), "v"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = vec![];
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(seq) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(seq);
        }
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
    assert_eq!(seen, [2, 3, 4]);
}

#[test]
fn four_writer_processes_appending_a_hundred_times_each_make_one_linear_log() {
    let repo = Repo::new();
    run_writers(&repo, "shared", 4, 100);
    let lines = repo.ok(&["--json", "events", "shared"]);
    let seqs: Vec<u64> =
        lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    assert_eq!(git(&repo.path, &["rev-list", "--count", "refs/dlog/spaces/shared"]).trim(), "400");
    assert_eq!(
        git(&repo.path, &["rev-list", "--min-parents=2", "refs/dlog/spaces/shared"]).trim(),
        "",
        "no merges: linear"
    );
    let state = repo.json(&["fold", "shared"]);
    for w in 0..4 {
        assert_eq!(state["decisions"][format!("w{w}")]["choice"], "99", "each writer's own order is kept");
    }
    git(&repo.path, &["fsck", "--strict", "--no-dangling"]);
    assert!(repo.ok(&["verify"]).contains("shared: ok, 400 events"));
}

#[test]
fn writer_processes_checkpointing_as_they_race_leave_an_index_that_finds_every_id() {
    let repo = Repo::new();
    // A checkpoint every 8 events: the four processes race for the
    // checkpoint ref too, and their id runs merge as they go.
    let first = run_writers_with(&repo, "shared", 4, 40, &["--checkpoint-every", "8"]);
    assert!(first.is_empty(), "no warnings: {first}");
    let tree = git(&repo.path, &["ls-tree", "--name-only", "refs/dlog/checkpoints/shared^{tree}"]);
    assert_eq!(tree.lines().collect::<Vec<_>>(), ["head.json", "ids", "index", "pages"]);
    // Every intent again, from new processes: each is found, none appended.
    let again = run_writers_with(&repo, "shared", 4, 40, &["--checkpoint-every", "8"]);
    assert!(again.is_empty(), "no warnings: {again}");
    let events = repo.ok(&["--json", "events", "shared"]);
    assert_eq!(events.lines().count(), 160, "resends appended nothing");
    assert!(repo.ok(&["verify"]).contains("shared: ok, 160 events"));
    git(&repo.path, &["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn the_compiled_component_is_cached_per_user_and_a_damaged_entry_is_rebuilt() {
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = |cache: &Path| {
        let out = Command::new(DLOG)
            .args(["--repo", repo.path.to_str().unwrap(), "spaces"])
            .env("DLOG_CACHE_DIR", cache)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let entries = |cache: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(cache).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
    };
    run(&cache);
    let files = entries(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the cache directory is private");
    std::fs::write(&files[0], b"not a compiled component").unwrap();
    run(&cache);
    assert!(std::fs::metadata(&files[0]).unwrap().len() > 1000, "a damaged entry is replaced");

    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    run(&shared);
    assert!(entries(&shared).is_empty(), "a directory others can write is never trusted");
}

/// Run `writers` processes at once, each appending `each` intents to `space`
/// one by one (`append --each`), and wait until all succeeded.
pub fn run_writers(repo: &Repo, space: &str, writers: usize, each: usize) {
    run_writers_with(repo, space, writers, each, &[]);
}

/// [`run_writers`] with more global flags for each `dlog`; what the writers
/// printed on stderr.
pub fn run_writers_with(repo: &Repo, space: &str, writers: usize, each: usize, flags: &[&str]) -> String {
    let dir = repo.path.parent().unwrap().to_path_buf();
    let children: Vec<_> = (0..writers)
        .map(|w| {
            let file = dir.join(format!("writer-{w}.jsonl"));
            let lines: String = (0..each)
                .map(|i| {
                    format!(
                        "{{\"id\":\"w{w}-{i}\",\"kind\":\"decide\",\"body\":{{\"key\":\"w{w}\",\"choice\":\"{i}\",\"rationale\":\"r\"}}}}\n"
                    )
                })
                .collect();
            std::fs::write(&file, lines).unwrap();
            Command::new(DLOG)
                .args(["--repo", repo.path.to_str().unwrap()])
                .args(flags)
                .args(["append", space, "--each", "--intent", file.to_str().unwrap()])
                .env("DLOG_ACTOR", format!("writer-{w}"))
                .env("DLOG_IDENTITY", format!("writer-{w}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut stderr = String::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        stderr.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    stderr
}

#[test]
fn export_to_a_file_writes_what_stdout_gets_and_leaves_no_partial_file() {
    let repo = Repo::new();
    repo.ok(&["append", "team", "--key", "db", "--choice", "pg", "--why", "known", "--id", "d1"]);
    repo.ok(&["append", "team", "--key", "ui", "--choice", "web", "--why", "reach", "--id", "d2"]);
    let printed = repo.ok(&["export", "team"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("team.jsonl");
    repo.ok(&["export", "team", "--out", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), printed);
    assert_eq!(printed.lines().count(), 2);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["team.jsonl"], "no .partial file is left behind");
}
