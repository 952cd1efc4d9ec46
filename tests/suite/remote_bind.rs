//! Binding a repository to a git remote, and what goes wrong around it:
//! local writers that started before the binding, diverged spaces, names,
//! URLs and timeouts that cannot work, a push whose answer never comes or
//! that the server refuses for another reason than a race, a follower
//! through a failed fetch. Real `dlog` processes against real servers on
//! loopback (`git_servers.rs`), as in `remote.rs`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use decision_log::{Intent, Log, Options};
use serde_json::json;

use crate::cli::Repo;
use crate::git_servers::{Kind, Server};
use crate::remote::{Serve, append_ok, append_one, dlog, git_out, ids, machine, remote_events};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The repository's `remote.*` and `dlog.*` git config, one `key value` a line.
fn remote_config(repo: &Path) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["config", "--get-regexp", r"^(remote\.|dlog\.remote$)"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn server_head(server: &Server, space: &str) -> String {
    git_out(&server.repo, &["rev-parse", &format!("refs/dlog/spaces/{space}")]).trim().to_owned()
}

/// Repository a, bound to `server` with one event, and one more event
/// appended after the binding by a writer that opened it before: the
/// local head is then ahead of the remote's. Returns a, that head and the
/// remote's.
fn bound_with_an_early_writers_event(server: &Server) -> (Repo, String, String) {
    let a = Repo::new();
    assert!(append_one(&a.path, "local-1").status.success());
    // A long-running process (an MCP server, say) that opened the log
    // before the binding keeps the local refs and local leases it found.
    let early = Log::open(&a.path, Options::default()).unwrap();
    a.ok(&["remote", "add", "origin", &server.url()]);
    let body = json!({"key": "k", "choice": "late", "rationale": "r"}).to_string();
    let late = early.space("team").append(Intent::new("early", "decide", body).with_id("late-1")).unwrap();
    let here = a.head("team");
    assert_eq!(here, late.event.commit, "the early writer appended to the local ref");
    let there = server_head(server, "team");
    assert_ne!(here, there);
    (a, here, there)
}

#[test]
fn events_a_writer_appended_after_the_binding_are_never_cut_off_by_a_fetch_and_sync_pushes_them() {
    let server = Server::start(Kind::Daemon);
    let (a, here, there) = bound_with_an_early_writers_event(&server);
    let out = a.run(&["--fetch", "events", "team"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let warning = stderr(&out);
    for needle in ["space \"team\"", &here, &there, "dlog sync"] {
        assert!(warning.contains(needle), "the warning names {needle}: {warning}");
    }
    assert_eq!(a.head("team"), here, "a fetch never moves a local head back");
    let synced = a.json(&["sync"]);
    assert_eq!(synced["pushed"], json!(["team"]));
    assert_eq!(ids(&remote_events(&server, "team")), ["local-1", "late-1"]);
    assert_eq!(a.head("team"), here);
    assert_eq!(server_head(&server, "team"), here);
    // Now in step: a fetch says nothing more.
    let again = a.run(&["--fetch", "events", "team"]);
    assert!(again.status.success() && !stderr(&again).contains("warning"), "{}", stderr(&again));
}

#[test]
fn a_space_that_diverged_from_the_remote_is_left_alone_and_sync_exits_with_a_conflict() {
    let server = Server::start(Kind::Daemon);
    let (a, here, _) = bound_with_an_early_writers_event(&server);
    let b = machine(&server.url());
    assert!(append_one(&b.path, "other").status.success());
    let there = server_head(&server, "team");
    let out = a.run(&["--fetch", "events", "team"]);
    assert!(stderr(&out).contains("diverged"), "{}", stderr(&out));
    assert_eq!(a.head("team"), here);
    let sync = a.run(&["sync"]);
    let message = stderr(&sync);
    assert_eq!(sync.status.code(), Some(3), "{message}");
    for needle in ["diverged", "\"team\"", &here, &there] {
        assert!(message.contains(needle), "the error names {needle}: {message}");
    }
    assert_eq!(a.head("team"), here, "nothing moved");
    assert_eq!(ids(&remote_events(&server, "team")), ["local-1", "other"]);
}

#[test]
fn remote_add_refuses_while_a_local_serve_holds_a_space_and_names_the_space_and_its_holder() {
    let server = Server::start(Kind::Daemon);
    let a = Repo::new();
    let mut serve = Serve::start(&a.path, "60s");
    serve.serving();
    let out = a.run(&["remote", "add", "origin", &server.url()]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{message}");
    assert!(message.contains("\"team\"") && message.contains("serve@"), "{message}");
    assert!(message.contains("dlog serve"), "it says what to stop: {message}");
    assert_eq!(remote_config(&a.path), "", "a refused binding leaves no config");
    serve.stop();
    let bound = a.json(&["remote", "add", "origin", &server.url()]);
    assert_eq!(bound["pushed"], json!(["team"]), "once the serve stopped, its space is pushed");
}

#[test]
fn remote_add_accepts_only_letters_digits_dashes_and_underscores_in_a_name() {
    let server = Server::start(Kind::Daemon);
    let a = Repo::new();
    for bad in ["a.b", "a/b", "-x", "a b", "a:b", "a~b", "a*b", "é", ""] {
        let out = a.run(&["remote", "add", "--", bad, &server.url()]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("is not usable"), "{bad:?}: {}", stderr(&out));
    }
    assert_eq!(remote_config(&a.path), "");
    a.ok(&["remote", "add", "my_remote-2", &server.url()]);
}

#[test]
fn remote_add_of_an_unreachable_url_fails_with_exit_5_and_rolls_back_every_remote_setting() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("git://127.0.0.1:{port}/nothing.git");
    let a = Repo::new();
    assert!(append_one(&a.path, "local-1").status.success());
    let out = a.run(&["remote", "add", "origin", &url]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));
    assert_eq!(remote_config(&a.path), "", "no remote.origin.* and no dlog.remote left");
    assert!(append_one(&a.path, "local-2").status.success(), "the log is still local");
}

#[test]
fn remote_remove_with_a_name_that_is_not_the_bound_remote_fails_and_keeps_the_binding() {
    let server = Server::start(Kind::Daemon);
    let unbound = Repo::new();
    let out = unbound.run(&["remote", "remove", "origin"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not bound"), "{}", stderr(&out));
    let a = machine(&server.url());
    let out = a.run(&["remote", "remove", "upstream"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("\"origin\", not \"upstream\""), "{}", stderr(&out));
    assert_eq!(a.json(&["remote", "show"])["url"], server.url(), "still bound");
}

#[test]
fn a_remote_timeout_that_is_not_a_duration_is_reported_where_it_was_set() {
    let server = Server::start(Kind::Daemon);
    let a = machine(&server.url());
    let out = dlog(&a.path, "w", &["append", "team", "--key", "k", "--choice", "c", "--why", "w"])
        .env("DLOG_REMOTE_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("DLOG_REMOTE_TIMEOUT=\"soon\""), "{}", stderr(&out));
    git_out(&a.path, &["config", "dlog.remoteTimeout", "30 parsecs"]);
    let out = dlog(&a.path, "w", &["sync"]).env_remove("DLOG_REMOTE_TIMEOUT").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("dlog.remoteTimeout=\"30 parsecs\""), "{}", stderr(&out));
    git_out(&a.path, &["config", "dlog.remoteTimeout", "1m"]);
    let out = dlog(&a.path, "w", &["sync"]).env_remove("DLOG_REMOTE_TIMEOUT").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_binding_whose_remote_lost_its_url_points_to_remote_remove_which_works() {
    let server = Server::start(Kind::Daemon);
    let a = machine(&server.url());
    git_out(&a.path, &["config", "--unset", "remote.origin.url"]);
    let out = append_one(&a.path, "x");
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{message}");
    assert!(message.contains("has no URL") && message.contains("`dlog remote remove origin`"), "{message}");
    assert!(!message.contains("remote add"), "only one way on: {message}");
    a.ok(&["remote", "remove", "origin"]);
    assert_eq!(remote_config(&a.path), "");
    assert!(append_one(&a.path, "x").status.success(), "unbound, the log is local again");
}

#[test]
fn a_push_that_times_out_says_its_outcome_is_unknown_and_a_retry_with_its_id_appends_it_once() {
    let server = Server::start(Kind::Http);
    let a = machine(&server.url());
    append_ok(&a.path, "first", Kind::Http);
    server.stall_pushes(true);
    let out = dlog(
        &a.path,
        "w",
        &["append", "team", "--id", "stalled", "--key", "k", "--choice", "c", "--why", "w"],
    )
    .env("DLOG_REMOTE_TIMEOUT", "3s")
    .output()
    .unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{message}");
    for needle in ["did not finish within 3s", "unknown", "dlog sync", "same --id"] {
        assert!(message.contains(needle), "the error says {needle:?}: {message}");
    }
    server.stall_pushes(false);
    append_ok(&a.path, "stalled", Kind::Http);
    append_ok(&a.path, "stalled", Kind::Http);
    assert_eq!(ids(&remote_events(&server, "team")), ["first", "stalled"]);
}

#[test]
fn a_push_refused_while_the_servers_head_is_unchanged_fails_at_once_with_gits_reason() {
    let server = Server::start(Kind::Daemon);
    let a = machine(&server.url());
    append_ok(&a.path, "first", Kind::Daemon);
    // A lock file left on the server: every update of the head is refused
    // ("failed to update ref"), and nobody else moved it.
    let lock = server.repo.join("refs/dlog/spaces/team.lock");
    std::fs::write(&lock, "").unwrap();
    let out = append_one(&a.path, "blocked");
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "a storage failure, not a lost race: {message}");
    assert!(message.contains("not another writer's race"), "{message}");
    assert!(message.contains("team.lock") || message.contains("cannot lock ref"), "git's reason: {message}");
    std::fs::remove_file(&lock).unwrap();
    append_ok(&a.path, "blocked", Kind::Daemon);
    assert_eq!(ids(&remote_events(&server, "team")), ["first", "blocked"]);
}

/// Lines of a child's pipe, as they come.
fn lines(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(lines: &Receiver<String>, needle: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100))
            && line.contains(needle)
        {
            return;
        }
    }
    panic!("{what} never printed {needle:?}");
}

#[test]
fn events_follow_keeps_following_through_a_failed_fetch_and_shows_what_came_after() {
    let mut server = Server::start(Kind::Daemon);
    let a = machine(&server.url());
    let b = machine(&server.url());
    append_ok(&b.path, "one", Kind::Daemon);
    let mut follower = dlog(&a.path, "reader", &["--json", "events", "team", "--follow"])
        .env("DLOG_REMOTE_TIMEOUT", "5s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(follower.stdout.take().unwrap());
    let err = lines(follower.stderr.take().unwrap());
    wait_line(&out, "\"one\"", "the follower");
    server.stop();
    wait_line(&err, "still following", "the follower's stderr");
    assert!(follower.try_wait().unwrap().is_none(), "a failed fetch does not end --follow");
    server.resume();
    append_ok(&b.path, "two", Kind::Daemon);
    wait_line(&out, "\"two\"", "the follower");
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn a_writer_that_cannot_reach_the_serve_holding_a_space_waits_then_fails_naming_its_machine() {
    let server = Server::start(Kind::Daemon);
    let a = machine(&server.url());
    let b = machine(&server.url());
    let serve = Serve::start(&a.path, "60s");
    let (_, endpoint) = serve.serving();
    // The socket is on a's machine; b, "elsewhere", cannot open it.
    std::fs::remove_file(endpoint.strip_prefix("unix:").unwrap()).unwrap();
    let started = Instant::now();
    let out =
        dlog(&b.path, "w", &["--wait", "2s", "append", "team", "--key", "k", "--choice", "c", "--why", "w"])
            .output()
            .unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{message}");
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited --wait first");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let on = format!(" on {}", host.trim());
    assert!(message.contains("held by serve@") && message.contains(&on), "{message}");
    assert!(message.contains("not reachable from here"), "{message}");
    drop(serve);
}

#[test]
fn git_variables_inherited_from_a_calling_git_do_not_send_dlogs_git_elsewhere() {
    let server = Server::start(Kind::Daemon);
    let a = machine(&server.url());
    let elsewhere = tempfile::tempdir().unwrap();
    // As a git hook that runs dlog has them: they point at the hook's
    // repository and carry its `-c` options.
    let out = dlog(
        &a.path,
        "w",
        &["append", "team", "--id", "hooked", "--key", "k", "--choice", "c", "--why", "w"],
    )
    .env("GIT_DIR", elsewhere.path())
    .env("GIT_COMMON_DIR", elsewhere.path())
    .env("GIT_CONFIG_PARAMETERS", "'remote.origin.url'='git://127.0.0.1:9/nowhere.git'")
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ids(&remote_events(&server, "team")), ["hooked"]);
}
