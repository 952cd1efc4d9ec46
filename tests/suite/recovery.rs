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
