//! The log is plain git: the real `git` can clone, push, bundle and
//! format-patch it, and what arrives folds to the identical state.

use std::path::Path;

use crate::cli::Repo;
use crate::git_cli::git;

fn populated() -> Repo {
    let repo = Repo::new();
    repo.ok(&[
        "append",
        "team",
        "--key",
        "db",
        "--choice",
        "postgres",
        "--why",
        "w",
        "--id",
        "d1",
        "--reject",
        "mongo=no joins",
    ]);
    repo.ok(&["append", "team", "--key", "db", "--choice", "sqlite", "--why", "w", "--supersedes", "d1"]);
    repo.ok(&["append", "org", "--key", "ci", "--choice", "github", "--why", "w"]);
    repo
}

fn fold_in(path: &Path, space: &str) -> String {
    let out = crate::cli::dlog_in(path, &["--repo", path.to_str().unwrap(), "--json", "fold", space], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_mirror_clone_folds_to_the_identical_state() {
    let repo = populated();
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("clone.git");
    git(dir.path(), &["clone", "-q", "--mirror", repo.path.to_str().unwrap(), clone.to_str().unwrap()]);
    for space in ["team", "org"] {
        assert_eq!(fold_in(&clone, space), fold_in(&repo.path, space), "{space}");
    }
    git(&clone, &["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn pushing_the_dlog_refs_backs_the_log_up() {
    let repo = populated();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.git");
    git(dir.path(), &["init", "-q", "--bare", backup.to_str().unwrap()]);
    git(&repo.path, &["push", "-q", backup.to_str().unwrap(), "refs/dlog/*:refs/dlog/*"]);
    assert_eq!(fold_in(&backup, "team"), fold_in(&repo.path, "team"));
    assert!(
        crate::cli::dlog_in(&backup, &["--repo", backup.to_str().unwrap(), "verify"], None).status.success()
    );
}

#[test]
fn a_bundle_round_trip_carries_the_log() {
    let repo = populated();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("log.bundle");
    git(&repo.path, &["bundle", "create", "-q", bundle.to_str().unwrap(), "--all"]);
    git(&repo.path, &["bundle", "verify", "-q", bundle.to_str().unwrap()]);
    let restored = dir.path().join("restored.git");
    git(dir.path(), &["init", "-q", "--bare", restored.to_str().unwrap()]);
    git(&restored, &["fetch", "-q", bundle.to_str().unwrap(), "refs/dlog/*:refs/dlog/*"]);
    assert_eq!(fold_in(&restored, "team"), fold_in(&repo.path, "team"));
    assert_eq!(
        git(&restored, &["rev-parse", "refs/dlog/spaces/org"]),
        git(&repo.path, &["rev-parse", "refs/dlog/spaces/org"])
    );
}

#[test]
fn git_log_and_format_patch_show_a_readable_history() {
    let repo = populated();
    let log = git(
        &repo.path,
        &["log", "--format=%an|%s|%(trailers:key=Dlog-Seq,valueonly,separator=)", "refs/dlog/spaces/team"],
    );
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["tester|decide db: sqlite|2", "tester|decide db: postgres|1"]
    );
    let dir = tempfile::tempdir().unwrap();
    let patches = git(
        &repo.path,
        &["format-patch", "--root", "-o", dir.path().to_str().unwrap(), "refs/dlog/spaces/team"],
    );
    assert_eq!(patches.lines().count(), 2, "{patches}");
    let first = std::fs::read_to_string(patches.lines().next().unwrap()).unwrap();
    assert!(first.contains("Subject: [PATCH 1/2] decide db: postgres"), "{first}");
    assert!(first.contains("+{\"actor\":\"tester\""), "the patch carries the event: {first}");
}

#[test]
fn a_lock_no_dlog_process_took_is_reported_and_only_removed_when_asked_and_old() {
    let repo = populated();
    let lock = repo.path.join("refs/dlog/spaces/team.lock");
    std::fs::write(&lock, "0000000000000000000000000000000000000000\n").unwrap();
    let blocked = repo.run(&["append", "team", "--key", "os", "--choice", "linux", "--why", "w"]);
    assert_eq!(blocked.status.code(), Some(5));
    let message = String::from_utf8_lossy(&blocked.stderr);
    assert!(message.contains("team.lock") && message.contains("dlog doctor"), "{message}");

    let report = repo.run(&["doctor"]);
    assert_eq!(report.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&report.stdout).contains("refs/dlog/spaces/team.lock"));
    let young = repo.run(&["doctor", "--remove-stale-locks"]);
    assert!(String::from_utf8_lossy(&young.stdout).contains("not taken by a dlog process"));
    assert!(lock.exists(), "a recent lock is never removed");
    repo.ok(&["doctor", "--remove-stale-locks", "--older-than", "0s"]);
    assert!(!lock.exists());
    repo.ok(&["append", "team", "--key", "os", "--choice", "linux", "--why", "w"]);
    assert!(repo.ok(&["doctor"]).contains("nothing a crash left behind"));
}
