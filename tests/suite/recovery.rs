//! No crash needs a person: what a killed process leaves behind is recovered
//! by the next one, at once, and what a live process holds is never broken.

use std::fs::File;

use crate::cli::Repo;

fn append(repo: &Repo, key: &str) -> std::process::Output {
    repo.run(&["append", "team", "--key", key, "--choice", "c", "--why", "w"])
}

#[test]
fn a_lease_lock_left_by_a_killed_writer_does_not_block_the_next_append() {
    let repo = Repo::new();
    assert!(append(&repo, "a").status.success());
    // What a writer killed inside its lease compare-and-swap leaves: the lock
    // file, half written, and no process holding the space's guard.
    let lock = repo.path.join("dlog/leases/team.json.lock");
    std::fs::write(&lock, "{\"endpoint\":null,\"ep").unwrap();

    let out = append(&repo, "b");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!lock.exists(), "the stale lock file is gone");
    let lease: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.path.join("dlog/leases/team.json")).unwrap())
            .unwrap();
    assert_eq!(lease["epoch"], 2, "the second one-shot grant: {lease}");
    assert_eq!(repo.json(&["fold", "team"])["seq"], 2);
}

#[test]
fn a_lease_guard_held_by_a_live_process_is_never_broken_and_is_named_in_the_error() {
    let repo = Repo::new();
    assert!(append(&repo, "a").status.success());
    let guard =
        File::options().read(true).write(true).open(repo.path.join("dlog/leases/team.guard")).unwrap();
    guard.lock().unwrap();
    std::fs::write(repo.path.join("dlog/leases/team.guard"), format!("{}\n", std::process::id())).unwrap();

    let out = append(&repo, "b");
    assert_eq!(out.status.code(), Some(5), "a storage failure while a live process holds the guard");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("pid {}", std::process::id())), "{stderr}");
    assert_eq!(repo.json(&["fold", "team"])["seq"], 1, "nothing was appended");

    guard.unlock().unwrap();
    assert!(append(&repo, "b").status.success(), "the next append after the holder let go just works");
}

/// A dlog process killed inside a ref update, as the kernel leaves it: the
/// ref's lock file written, and the ref's guard recording a pid that no
/// longer holds it and the inode of the lock file it created. (A shell takes the guard and the lock the way
/// `update_ref` does, then is killed with SIGKILL.)
fn kill_inside_a_ref_update(repo: &Repo, space: &str) -> std::path::PathBuf {
    let guard = repo.path.join(format!("dlog/guards/refs/dlog/spaces/{space}.guard"));
    std::fs::create_dir_all(guard.parent().unwrap()).unwrap();
    let lock = repo.path.join(format!("refs/dlog/spaces/{space}.lock"));
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "exec 9<>\"$0\"; flock 9; echo $$ >&9; printf 'half' > \"$1\"; \
             printf '%s %s\\n' $$ \"$(stat -c %i \"$1\")\" > \"$0\"; exec sleep 60",
        ])
        .arg(&guard)
        .arg(&lock)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Until the guard records the lock file's inode, as `update_ref` does
    // right after creating it.
    while std::fs::read_to_string(&guard).unwrap_or_default().split_whitespace().count() < 2 {
        assert!(std::time::Instant::now() < deadline, "the writer never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lock
}

#[test]
fn a_ref_lock_left_by_a_killed_writer_does_not_block_the_next_append() {
    let repo = Repo::new();
    assert!(append(&repo, "a").status.success());
    let lock = kill_inside_a_ref_update(&repo, "team");

    let out = append(&repo, "b");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!lock.exists());
    assert_eq!(repo.json(&["fold", "team"])["seq"], 2);
    crate::git_cli::git(&repo.path, &["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn a_ref_lock_that_no_dlog_process_left_is_never_broken_while_it_is_young() {
    let repo = Repo::new();
    assert!(append(&repo, "a").status.success());
    // What `git update-ref` holds for a moment: a lock file, and no guard.
    let lock = repo.path.join("refs/dlog/spaces/team.lock");
    std::fs::write(&lock, "0000000000000000000000000000000000000000\n").unwrap();

    let out = append(&repo, "b");
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dlog doctor"));
    assert!(lock.exists(), "a lock dlog cannot prove dead is left alone");
    assert_eq!(repo.json(&["fold", "team"])["seq"], 1);

    // The same file dated before the machine booted was left by a power loss.
    let boot = decision_log::guard::booted_at().unwrap();
    File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(boot - std::time::Duration::from_secs(1))
        .unwrap();
    let out = append(&repo, "b");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!lock.exists());
}

#[test]
fn doctor_names_every_lock_with_its_owner_and_what_else_a_crash_left() {
    let repo = Repo::new();
    assert!(append(&repo, "a").status.success());
    kill_inside_a_ref_update(&repo, "team");
    std::fs::write(repo.path.join("dlog/leases/team.json.lock"), "{").unwrap();
    // A live process holds the lease's guard while its lock file exists.
    let guard =
        File::options().read(true).write(true).open(repo.path.join("dlog/leases/team.guard")).unwrap();
    guard.lock().unwrap();
    std::fs::write(repo.path.join("dlog/leases/team.guard"), format!("{}\n", std::process::id())).unwrap();
    // An empty loose object (what a power loss left before objects were
    // synced before their rename) and an unfinished pack's temporary file.
    std::fs::create_dir_all(repo.path.join("objects/ab")).unwrap();
    std::fs::write(repo.path.join("objects/ab").join("c".repeat(38)), "").unwrap();
    std::fs::create_dir_all(repo.path.join("objects/pack")).unwrap();
    std::fs::write(repo.path.join("objects/pack/tmp_pack_123"), "PACK").unwrap();

    let out = repo.run(&["doctor"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{report}");
    let line = |path: &str| {
        report.lines().find(|l| l.starts_with(path)).unwrap_or_else(|| panic!("{path}: {report}"))
    };
    assert!(line("refs/dlog/spaces/team.lock").contains("died holding it (pid"), "{report}");
    let live = line("dlog/leases/team.json.lock");
    assert!(live.contains(&format!("running dlog process (pid {})", std::process::id())), "{live}");
    assert!(line(&format!("objects/ab/{}", "c".repeat(38))).contains("the object file is empty"), "{report}");
    assert!(line("objects/pack/tmp_pack_123").contains("temporary file"), "{report}");

    let fixed = repo.run(&["doctor", "--fix"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", String::from_utf8_lossy(&fixed.stdout));
    assert!(!repo.path.join("refs/dlog/spaces/team.lock").exists());
    assert!(repo.path.join("dlog/leases/team.json.lock").exists(), "a live holder's lock is never touched");
    assert!(!repo.path.join("objects/ab").join("c".repeat(38)).exists());
    assert!(repo.path.join("objects/pack/tmp_pack_123").exists(), "younger than --older-than");
    crate::git_cli::git(&repo.path, &["fsck", "--strict", "--no-dangling"]);
    drop(guard);
}
