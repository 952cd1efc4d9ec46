//! What the guest writes are real git objects: the `git` CLI computes the
//! same ids, reads them, and `git fsck --strict` accepts the chain.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use decision_log::Log;
use decision_log::backend::MemoryBackend;

use crate::git_cli::git;
use crate::support::*;

fn hash_object(dir: &Path, kind: &str, data: &[u8]) -> String {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["hash-object", "-w", "--stdin", "-t", kind])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git is installed");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn objects_written_through_the_guest_get_the_same_ids_from_git_and_pass_fsck() {
    let backend = std::sync::Arc::new(MemoryBackend::new());
    let host = memory_host();
    let log = Log::with_backend(
        backend.clone(),
        decision_log::Options { clock: host.clock.clone(), ..Default::default() },
    )
    .unwrap();
    let s = log.space("team");
    s.append(decide("d1", "db", "postgres")).unwrap();
    s.append(supersede("d2", "db", "sqlite ✓ \"quoted\"", "d1")).unwrap();
    s.append(retract("r1", "db", None)).unwrap();

    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q", "--bare"]);
    let objects = backend.objects();
    assert_eq!(objects.len(), 9, "three objects per event");
    for (id, kind, data) in &objects {
        assert_eq!(hash_object(repo.path(), kind.as_str(), data), id.to_hex(), "{kind:?}");
    }
    let head = s.head().unwrap().unwrap().commit;
    git(repo.path(), &["update-ref", "refs/dlog/spaces/team", &head]);
    git(repo.path(), &["fsck", "--strict", "--no-dangling"]);
    let log = git(
        repo.path(),
        &["log", "--format=%an|%s|%(trailers:key=Dlog-Seq,valueonly)", "refs/dlog/spaces/team"],
    );
    let lines: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        ["carol|retract db|3", "bob|decide db: sqlite ✓ \"quoted\"|2", "alice|decide db: postgres|1"]
    );
    let blob = git(repo.path(), &["show", &format!("{head}:event.json")]);
    assert_eq!(blob, s.events(3, 1).unwrap()[0].canonical);
}
