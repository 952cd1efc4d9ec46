//! GitBackend against the real `git`, in temporary repositories.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::git_cli::*;
use decision_log::backend::{Backend, GitBackend, ObjectId, ObjectKind, StorageError, SwapOutcome};

const REF: &str = "refs/dlog/spaces/x";

fn bare() -> (tempfile::TempDir, GitBackend) {
    let dir = tempdir();
    let backend = GitBackend::init_bare(dir.path()).unwrap();
    (dir, backend)
}

#[test]
fn the_backend_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GitBackend>();
}

#[test]
fn written_objects_have_git_ids_and_content_and_pass_fsck_once_reachable() {
    let (dir, backend) = bare();
    let repo = dir.path();

    let blob_data = b"{\"decision\":\"use gix\"}\n".to_vec();
    let blob = backend.write_object(ObjectKind::Blob, &blob_data).unwrap();
    let tree_data = tree_bytes(&[("100644", "decision.json", blob)]);
    let tree = backend.write_object(ObjectKind::Tree, &tree_data).unwrap();
    let commit_data = commit_bytes(&tree, None, "first decision");
    let commit = backend.write_object(ObjectKind::Commit, &commit_data).unwrap();

    for (kind, data, id) in [
        (ObjectKind::Blob, &blob_data, blob),
        (ObjectKind::Tree, &tree_data, tree),
        (ObjectKind::Commit, &commit_data, commit),
    ] {
        assert_eq!(id, ObjectId::for_object(kind, data));
        let git_id = git_with_input(repo, &["hash-object", "-t", kind.as_str(), "--stdin"], Some(data));
        assert_eq!(git_id.trim(), id.to_hex(), "{kind:?}");
        assert_eq!(backend.read_object(&id).unwrap(), Some((kind, data.clone())));
        // Buffered until a swap makes it reachable: not on disk yet.
        assert!(!git_status(repo, &["cat-file", "-e", &id.to_hex()], None).0, "{kind:?}");
    }
    assert_eq!(backend.compare_and_swap(REF, None, &commit).unwrap(), SwapOutcome::Swapped);
    for (kind, id) in [(ObjectKind::Blob, blob), (ObjectKind::Tree, tree), (ObjectKind::Commit, commit)] {
        assert_eq!(git(repo, &["cat-file", "-t", &id.to_hex()]).trim(), kind.as_str());
    }
    assert_eq!(git(repo, &["cat-file", "-p", &blob.to_hex()]).as_bytes(), blob_data);
    assert_eq!(
        git(repo, &["cat-file", "-p", &tree.to_hex()]),
        format!("100644 blob {blob}\tdecision.json\n")
    );
    assert_eq!(git(repo, &["cat-file", "-p", &commit.to_hex()]).as_bytes(), commit_data);
    assert_eq!(rev_parse(repo, REF), commit.to_hex());
    assert_fsck_clean(repo);
}

#[test]
fn an_unknown_object_reads_as_none() {
    let (_dir, backend) = bare();
    let id = ObjectId::for_object(ObjectKind::Blob, b"never written");
    assert_eq!(backend.read_object(&id).unwrap(), None);
}

#[test]
fn writing_an_object_twice_is_idempotent() {
    let (_dir, backend) = bare();
    let a = backend.write_object(ObjectKind::Blob, b"same").unwrap();
    let b = backend.write_object(ObjectKind::Blob, b"same").unwrap();
    assert_eq!(a, b);
}

fn check_cas_semantics(repo: &Path, backend: &GitBackend) {
    let c1 = write_commit(backend, "one", None);
    let c2 = write_commit(backend, "two", Some(&c1));
    let c3 = write_commit(backend, "three", Some(&c2));

    assert_eq!(backend.read_ref(REF).unwrap(), None);
    // Expecting a value of a ref that does not exist.
    assert_eq!(backend.compare_and_swap(REF, Some(&c2), &c1).unwrap(), SwapOutcome::Mismatch(None));
    assert_eq!(backend.compare_and_swap(REF, None, &c1).unwrap(), SwapOutcome::Swapped);
    assert_eq!(backend.read_ref(REF).unwrap(), Some(c1));
    // A second create, with another value and with the same value.
    assert_eq!(backend.compare_and_swap(REF, None, &c2).unwrap(), SwapOutcome::Mismatch(Some(c1)));
    assert_eq!(backend.compare_and_swap(REF, None, &c1).unwrap(), SwapOutcome::Mismatch(Some(c1)));
    // Wrong and right expectations.
    assert_eq!(backend.compare_and_swap(REF, Some(&c3), &c2).unwrap(), SwapOutcome::Mismatch(Some(c1)));
    assert_eq!(backend.compare_and_swap(REF, Some(&c1), &c2).unwrap(), SwapOutcome::Swapped);
    assert_eq!(rev_parse(repo, REF), c2.to_hex());
    assert_eq!(backend.read_ref(REF).unwrap(), Some(c2));
    // Setting a ref to the value it holds is a successful swap.
    assert_eq!(backend.compare_and_swap(REF, Some(&c2), &c2).unwrap(), SwapOutcome::Swapped);
    assert_eq!(backend.compare_and_swap(REF, Some(&c2), &c3).unwrap(), SwapOutcome::Swapped);
    assert_eq!(rev_parse(repo, REF), c3.to_hex());
    assert_eq!(git(repo, &["rev-list", "--count", REF]).trim(), "3");
}

#[test]
fn compare_and_swap_creates_refuses_and_updates_like_a_compare_and_swap() {
    let (dir, backend) = bare();
    check_cas_semantics(dir.path(), &backend);
    assert_fsck_clean(dir.path());
}

#[test]
fn compare_and_swap_works_in_a_repository_with_a_work_tree() {
    let dir = tempdir();
    let backend = GitBackend::init(dir.path()).unwrap();
    assert_eq!(backend.git_dir(), dir.path().join(".git"));
    check_cas_semantics(dir.path(), &backend);
    // Open again, by the work tree and by the .git directory.
    for path in [dir.path().to_owned(), dir.path().join(".git")] {
        let again = GitBackend::open(&path).unwrap();
        assert_eq!(again.read_ref(REF).unwrap(), backend.read_ref(REF).unwrap());
    }
    assert!(git(dir.path(), &["config", "core.logAllRefUpdates"]).trim() == "true");
    assert!(!dir.path().join(".git/logs/refs/dlog").exists(), "no reflog for dlog refs");
    assert_fsck_clean(dir.path());
}

#[test]
fn a_repository_made_by_git_init_works_too() {
    let dir = tempdir();
    git(dir.path(), &["init", "-q", "--bare"]);
    let backend = GitBackend::open(dir.path()).unwrap();
    check_cas_semantics(dir.path(), &backend);
    assert_fsck_clean(dir.path());
}

#[test]
fn no_reflog_is_written_even_when_git_is_configured_to_log_all_refs() {
    let (dir, backend) = bare();
    git(dir.path(), &["config", "core.logAllRefUpdates", "always"]);
    let backend_after_config = GitBackend::open(dir.path()).unwrap();
    drop(backend);
    let c1 = write_commit(&backend_after_config, "one", None);
    let c2 = write_commit(&backend_after_config, "two", Some(&c1));
    assert_eq!(backend_after_config.compare_and_swap(REF, None, &c1).unwrap(), SwapOutcome::Swapped);
    assert_eq!(backend_after_config.compare_and_swap(REF, Some(&c1), &c2).unwrap(), SwapOutcome::Swapped);
    assert!(!dir.path().join("logs").exists(), "no reflog directory at all");
}

#[test]
fn opening_does_not_search_upwards() {
    let dir = tempdir();
    GitBackend::init_bare(dir.path()).unwrap();
    let inside = dir.path().join("refs");
    let err = GitBackend::open(&inside).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    let nowhere = dir.path().join("missing");
    assert!(GitBackend::open(&nowhere).is_err());
}

#[test]
fn compare_and_swap_works_when_the_ref_is_in_packed_refs() {
    let (dir, backend) = bare();
    let repo = dir.path();
    let c1 = write_commit(&backend, "one", None);
    let c2 = write_commit(&backend, "two", Some(&c1));
    let other = write_commit(&backend, "other", None);
    assert_eq!(backend.compare_and_swap(REF, None, &c1).unwrap(), SwapOutcome::Swapped);
    assert_eq!(backend.compare_and_swap("refs/dlog/spaces/y", None, &other).unwrap(), SwapOutcome::Swapped);
    git(repo, &["pack-refs", "--all"]);
    assert!(!repo.join(REF).exists(), "the loose ref is gone");
    assert!(std::fs::read_to_string(repo.join("packed-refs")).unwrap().contains(REF));

    assert_eq!(backend.read_ref(REF).unwrap(), Some(c1));
    assert_eq!(
        backend.list_refs("refs/dlog/spaces/").unwrap(),
        vec![(REF.to_owned(), c1), ("refs/dlog/spaces/y".to_owned(), other)]
    );
    assert_eq!(backend.compare_and_swap(REF, None, &c2).unwrap(), SwapOutcome::Mismatch(Some(c1)));
    assert_eq!(backend.compare_and_swap(REF, None, &c1).unwrap(), SwapOutcome::Mismatch(Some(c1)));
    assert_eq!(backend.compare_and_swap(REF, Some(&other), &c2).unwrap(), SwapOutcome::Mismatch(Some(c1)));
    // A no-op swap of a packed ref (nothing is written; packed-refs is synced).
    assert_eq!(backend.compare_and_swap(REF, Some(&c1), &c1).unwrap(), SwapOutcome::Swapped);
    assert_eq!(backend.compare_and_swap(REF, Some(&c1), &c2).unwrap(), SwapOutcome::Swapped);
    assert_eq!(rev_parse(repo, REF), c2.to_hex());
    assert_eq!(backend.read_ref(REF).unwrap(), Some(c2));
    assert_fsck_clean(repo);
}

#[test]
fn a_packed_refs_rewrite_with_an_unchanged_mtime_is_seen() {
    // gix revalidates its packed-refs cache only by mtime; the backend must not.
    let (dir, backend) = bare();
    let repo = dir.path();
    let c1 = write_commit(&backend, "one", None);
    let c2 = write_commit(&backend, "two", Some(&c1));
    backend.compare_and_swap(REF, None, &c1).unwrap();
    git(repo, &["pack-refs", "--all"]);
    let packed = repo.join("packed-refs");
    let mtime = std::fs::metadata(&packed).unwrap().modified().unwrap();
    assert_eq!(backend.read_ref(REF).unwrap(), Some(c1));
    let text = std::fs::read_to_string(&packed).unwrap().replace(&c1.to_hex(), &c2.to_hex());
    std::fs::write(&packed, text).unwrap();
    std::fs::File::options().write(true).open(&packed).unwrap().set_modified(mtime).unwrap();
    assert_eq!(backend.read_ref(REF).unwrap(), Some(c2));
    assert_eq!(backend.list_refs("refs/dlog/").unwrap(), vec![(REF.to_owned(), c2)]);
    assert_eq!(backend.compare_and_swap(REF, Some(&c1), &c1).unwrap(), SwapOutcome::Mismatch(Some(c2)));
}

fn malformed_cases(blob: ObjectId) -> Vec<(ObjectKind, &'static str, Vec<u8>)> {
    let entry = |mode: &str, name: &str| tree_bytes(&[(mode, name, blob)]);
    let good_tree = ObjectId::for_object(ObjectKind::Tree, &entry("100644", "a"));
    let commit = |text: String| text.into_bytes();
    let ident = "alice <> 1700000000 +0000";
    vec![
        (ObjectKind::Tree, "garbage", b"not a tree at all".to_vec()),
        (ObjectKind::Tree, "truncated id", entry("100644", "a")[..20].to_vec()),
        (ObjectKind::Tree, "group-writable mode", entry("100664", "a")),
        (ObjectKind::Tree, "zero-padded mode", entry("040000", "a")),
        (ObjectKind::Tree, "unknown mode", entry("100000", "a")),
        (ObjectKind::Tree, "empty name", entry("100644", "")),
        (ObjectKind::Tree, "dot", entry("40000", ".")),
        (ObjectKind::Tree, "dot dot", entry("40000", "..")),
        (ObjectKind::Tree, "dot git", entry("40000", ".git")),
        (ObjectKind::Tree, "dot git in capitals", entry("40000", ".GIT")),
        (ObjectKind::Tree, "ntfs dot git", entry("40000", "git~1")),
        (ObjectKind::Tree, "hfs dot git", entry("40000", ".g\u{200c}it")),
        (ObjectKind::Tree, "gitmodules symlink", entry("120000", ".gitmodules")),
        (ObjectKind::Tree, "null id", tree_bytes(&[("100644", "a", ObjectId([0; 20]))])),
        (ObjectKind::Tree, "unsorted", tree_bytes(&[("100644", "b", blob), ("100644", "a", blob)])),
        (
            ObjectKind::Tree,
            "directory sorted as a file",
            tree_bytes(&[("40000", "a", good_tree), ("100644", "a.b", blob)]),
        ),
        (ObjectKind::Tree, "duplicate", tree_bytes(&[("100644", "a", blob), ("100644", "a", blob)])),
        (
            ObjectKind::Tree,
            "file and directory of one name",
            tree_bytes(&[("100644", "a", blob), ("100644", "a-b", blob), ("40000", "a", good_tree)]),
        ),
        (ObjectKind::Commit, "garbage", b"hello".to_vec()),
        (ObjectKind::Commit, "no author", commit(format!("tree {good_tree}\ncommitter {ident}\n\nm\n"))),
        (
            ObjectKind::Commit,
            "bad tree id",
            commit(format!("tree 1234\nauthor {ident}\ncommitter {ident}\n\nm\n")),
        ),
        (
            ObjectKind::Commit,
            "bad time zone",
            commit(format!("tree {good_tree}\nauthor alice <> 1700000000 +00\ncommitter {ident}\n\nm\n")),
        ),
        (
            ObjectKind::Commit,
            "zero-padded date",
            commit(format!("tree {good_tree}\nauthor alice <> 01700000000 +0000\ncommitter {ident}\n\nm\n")),
        ),
        (
            ObjectKind::Commit,
            "no space before email",
            commit(format!("tree {good_tree}\nauthor alice<> 1700000000 +0000\ncommitter {ident}\n\nm\n")),
        ),
        (
            ObjectKind::Commit,
            "no name",
            commit(format!("tree {good_tree}\nauthor <a@b> 1700000000 +0000\ncommitter {ident}\n\nm\n")),
        ),
        (
            ObjectKind::Commit,
            "two authors",
            commit(format!("tree {good_tree}\nauthor {ident}\nauthor {ident}\ncommitter {ident}\n\nm\n")),
        ),
        (
            ObjectKind::Commit,
            "nul in header",
            commit(format!("tree {good_tree}\nauthor {ident}\ncommitter {ident}\nx \0y\n\nm\n")),
        ),
    ]
}

#[test]
fn malformed_trees_and_commits_are_refused_and_nothing_is_written() {
    let (dir, backend) = bare();
    let blob = backend.write_object(ObjectKind::Blob, b"content").unwrap();
    let before = files_below(&dir.path().join("objects"));
    for (kind, what, data) in malformed_cases(blob) {
        match backend.write_object(kind, &data) {
            Err(StorageError::MalformedObject { kind: k, reason }) => {
                assert_eq!(k, kind.as_str(), "{what}");
                assert!(!reason.is_empty());
            }
            other => panic!("{kind:?} {what}: expected MalformedObject, got {other:?}"),
        }
    }
    assert_eq!(files_below(&dir.path().join("objects")), before);
}

#[test]
fn what_the_validator_refuses_git_fsck_strict_refuses_too() {
    // Cross-check the validator's extra rules against git itself: write each
    // refused object with `hash-object --literally`, make it reachable, fsck.
    let dir = tempdir();
    let repo = dir.path();
    git(repo, &["init", "-q", "--bare"]);
    let blob = git_with_input(repo, &["hash-object", "-w", "--stdin"], Some(b"content"));
    let blob = ObjectId::from_hex(blob.trim()).unwrap();
    let good_tree = git_with_input(
        repo,
        &["hash-object", "-w", "-t", "tree", "--stdin"],
        Some(&tree_bytes(&[("100644", "a", blob)])),
    );
    assert_eq!(
        good_tree.trim(),
        ObjectId::for_object(ObjectKind::Tree, &tree_bytes(&[("100644", "a", blob)])).to_hex()
    );
    assert_fsck_clean(repo);
    for (kind, what, data) in malformed_cases(blob) {
        let (written, id, _) = git_status(
            repo,
            &["hash-object", "-w", "--literally", "-t", kind.as_str(), "--stdin"],
            Some(&data),
        );
        if !written {
            println!("{kind:?} {what}: git cannot even store it");
            continue;
        }
        let id = id.trim();
        // Reach it from a commit (a tree) or directly (a commit) by a ref.
        let tip = if kind == ObjectKind::Tree {
            git_with_input(
                repo,
                &["hash-object", "-w", "--literally", "-t", "commit", "--stdin"],
                Some(format!("tree {id}\nauthor a <a> 1 +0000\ncommitter a <a> 1 +0000\n\nm\n").as_bytes()),
            )
        } else {
            id.to_owned()
        };
        // Written directly: `git update-ref` itself refuses some bogus commits.
        std::fs::write(repo.join("refs/heads/probe"), format!("{}\n", tip.trim())).unwrap();
        let (ok, out, err) = git_status(repo, &["fsck", "--strict", "--no-dangling"], None);
        assert!(
            !ok || !out.trim().is_empty() || err.contains("error") || err.contains("warning"),
            "{kind:?} {what}: git fsck --strict accepts what the validator refuses"
        );
        std::fs::remove_file(repo.join("refs/heads/probe")).unwrap();
        std::fs::remove_dir_all(repo.join("objects")).unwrap();
        std::fs::create_dir_all(repo.join("objects/info")).unwrap();
        std::fs::create_dir_all(repo.join("objects/pack")).unwrap();
        git_with_input(repo, &["hash-object", "-w", "--stdin"], Some(b"content"));
        git_with_input(
            repo,
            &["hash-object", "-w", "-t", "tree", "--stdin"],
            Some(&tree_bytes(&[("100644", "a", blob)])),
        );
    }
}

#[test]
fn trees_in_git_order_with_all_modes_are_accepted() {
    let (dir, backend) = bare();
    let blob = backend.write_object(ObjectKind::Blob, b"x").unwrap();
    let sub = backend.write_object(ObjectKind::Tree, &tree_bytes(&[("100644", "f", blob)])).unwrap();
    let link = backend.write_object(ObjectKind::Blob, b"target").unwrap();
    // "a-b" < "a/" (dir "a") < "a0": a directory sorts as if named "a/".
    let tree = backend
        .write_object(
            ObjectKind::Tree,
            &tree_bytes(&[
                ("100644", ".gitignore", blob),
                ("100755", "a-b", blob),
                ("40000", "a", sub),
                ("120000", "a0", link),
                ("100644", "\u{e9}t\u{e9}", blob),
            ]),
        )
        .unwrap();
    let empty = backend.write_object(ObjectKind::Tree, b"").unwrap();
    let c1 = backend.write_object(ObjectKind::Commit, &commit_bytes(&empty, None, "empty")).unwrap();
    let c2 = backend.write_object(ObjectKind::Commit, &commit_bytes(&tree, Some(&c1), "full")).unwrap();
    backend.compare_and_swap(REF, None, &c2).unwrap();
    assert_fsck_clean(dir.path());
}

#[test]
fn a_stale_lock_file_makes_compare_and_swap_fail_with_locked_and_stays() {
    let (dir, backend) = bare();
    let c1 = write_commit(&backend, "one", None);
    let c2 = write_commit(&backend, "two", Some(&c1));
    backend.compare_and_swap(REF, None, &c1).unwrap();
    let lock = dir.path().join("refs/dlog/spaces/x.lock");
    std::fs::write(&lock, "").unwrap();

    let started = Instant::now();
    let err = backend.compare_and_swap(REF, Some(&c1), &c2).unwrap_err();
    let waited = started.elapsed();
    match &err {
        StorageError::Locked { name, lock: named } => {
            assert_eq!(name, REF);
            assert_eq!(Path::new(named), lock);
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    println!("Locked after {waited:?}: {err}");
    assert!(waited >= Duration::from_millis(500), "waited {waited:?}");
    assert!(waited <= Duration::from_secs(4), "waited {waited:?}");
    assert!(lock.exists(), "the lock file is left alone");
    assert_eq!(backend.read_ref(REF).unwrap(), Some(c1));

    // A lock on a ref that does not exist yet blocks its creation the same way.
    let lock_y = dir.path().join("refs/dlog/spaces/y.lock");
    std::fs::write(&lock_y, "").unwrap();
    let err = backend.compare_and_swap("refs/dlog/spaces/y", None, &c1).unwrap_err();
    assert!(matches!(err, StorageError::Locked { .. }), "{err:?}");
    assert!(lock_y.exists());

    // Once the lock is gone, the update goes through.
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(backend.compare_and_swap(REF, Some(&c1), &c2).unwrap(), SwapOutcome::Swapped);
}

#[test]
fn a_stale_packed_refs_lock_is_reported_as_the_lock() {
    let (dir, backend) = bare();
    let c1 = write_commit(&backend, "one", None);
    let lock = dir.path().join("packed-refs.lock");
    std::fs::write(&lock, "").unwrap();
    match backend.compare_and_swap(REF, None, &c1) {
        Err(StorageError::Locked { lock: named, .. }) => assert_eq!(Path::new(&named), lock),
        // gix only takes packed-refs.lock when it exists; if it did not wait, the
        // update must have happened normally.
        Ok(outcome) => panic!("expected Locked, got {outcome:?}"),
        Err(other) => panic!("expected Locked, got {other:?}"),
    }
    assert!(lock.exists());
}

#[test]
fn two_instances_see_each_others_writes_at_once() {
    let (dir, a) = bare();
    let b = GitBackend::open(dir.path()).unwrap();
    // Warm b's caches before a writes anything.
    assert_eq!(b.read_ref(REF).unwrap(), None);
    assert_eq!(b.list_refs("refs/dlog/").unwrap(), vec![]);

    let c1 = write_commit(&a, "one", None);
    assert!(b.read_object(&c1).unwrap().is_none(), "a buffers its objects until its swap");
    assert_eq!(a.compare_and_swap(REF, None, &c1).unwrap(), SwapOutcome::Swapped);
    assert_eq!(b.read_ref(REF).unwrap(), Some(c1), "b sees a's ref");
    assert!(b.read_object(&c1).unwrap().is_some(), "b reads a's object");

    let c2 = write_commit(&b, "two", Some(&c1));
    assert_eq!(b.compare_and_swap(REF, Some(&c1), &c2).unwrap(), SwapOutcome::Swapped);
    assert!(a.read_object(&c2).unwrap().is_some());
    assert_eq!(a.read_ref(REF).unwrap(), Some(c2));
    // a's stale expectation loses.
    let c3 = write_commit(&a, "three", Some(&c1));
    assert_eq!(a.compare_and_swap(REF, Some(&c1), &c3).unwrap(), SwapOutcome::Mismatch(Some(c2)));

    // After packing by git, and a later update, both still agree.
    git(dir.path(), &["pack-refs", "--all"]);
    assert_eq!(a.read_ref(REF).unwrap(), Some(c2));
    let c4 = write_commit(&a, "four", Some(&c2));
    assert_eq!(a.compare_and_swap(REF, Some(&c2), &c4).unwrap(), SwapOutcome::Swapped);
    assert_eq!(b.read_ref(REF).unwrap(), Some(c4));
    assert_eq!(b.list_refs("refs/dlog/").unwrap(), vec![(REF.to_owned(), c4)]);

    // An object that git packs (and removes loose) is still found.
    git(dir.path(), &["repack", "-a", "-d", "-q"]);
    git(dir.path(), &["prune-packed"]);
    assert!(!dir.path().join("objects").join(&c1.to_hex()[..2]).join(&c1.to_hex()[2..]).exists());
    assert!(b.read_object(&c1).unwrap().is_some(), "found in the new pack");
    assert!(a.read_object(&c4).unwrap().is_some());
    assert_fsck_clean(dir.path());
}

#[test]
fn list_refs_returns_loose_and_packed_refs_under_a_prefix_sorted() {
    let (dir, backend) = bare();
    let c = write_commit(&backend, "c", None);
    for name in ["refs/dlog/spaces/b", "refs/dlog/spaces/a", "refs/dlog/other", "refs/dlog/spaces-x/z"] {
        backend.compare_and_swap(name, None, &c).unwrap();
    }
    git(dir.path(), &["pack-refs", "--all"]);
    backend.compare_and_swap("refs/dlog/spaces/c", None, &c).unwrap();
    backend.compare_and_swap("refs/dlog/spaces/aa", None, &c).unwrap();
    let names = |prefix: &str| -> Vec<String> {
        backend
            .list_refs(prefix)
            .unwrap()
            .into_iter()
            .map(|(n, id)| {
                assert_eq!(id, c);
                n
            })
            .collect()
    };
    assert_eq!(
        names("refs/dlog/spaces/"),
        ["refs/dlog/spaces/a", "refs/dlog/spaces/aa", "refs/dlog/spaces/b", "refs/dlog/spaces/c"]
    );
    assert_eq!(
        names("refs/dlog/spaces"),
        [
            "refs/dlog/spaces-x/z",
            "refs/dlog/spaces/a",
            "refs/dlog/spaces/aa",
            "refs/dlog/spaces/b",
            "refs/dlog/spaces/c"
        ]
    );
    assert_eq!(names("refs/dlog/spaces/a"), ["refs/dlog/spaces/a", "refs/dlog/spaces/aa"]);
    assert_eq!(names("refs/dlog/nothing/"), Vec::<String>::new());
    assert_eq!(names("").len(), 6);
    assert_eq!(names("refs/").len(), 6);
}

#[test]
fn refs_to_non_commits_and_symbolic_refs_are_clear_errors() {
    let (dir, backend) = bare();
    let c = write_commit(&backend, "c", None);
    let blob = backend.write_object(ObjectKind::Blob, b"blob").unwrap();
    backend.compare_and_swap(REF, None, &c).unwrap();

    git(dir.path(), &["update-ref", "refs/dlog/spaces/blob", &blob.to_hex()]);
    let err = backend.read_ref("refs/dlog/spaces/blob").unwrap_err();
    assert!(err.to_string().contains("not a commit"), "{err}");
    assert!(backend.list_refs("refs/dlog/").is_err());
    git(dir.path(), &["update-ref", "-d", "refs/dlog/spaces/blob"]);

    git(dir.path(), &["symbolic-ref", "refs/dlog/spaces/sym", REF]);
    let err = backend.read_ref("refs/dlog/spaces/sym").unwrap_err();
    assert!(err.to_string().contains("symbolic"), "{err}");
    let err = backend.compare_and_swap("refs/dlog/spaces/sym", Some(&c), &c).unwrap_err();
    println!("{err}");
    git(dir.path(), &["symbolic-ref", "-d", "refs/dlog/spaces/sym"]);

    // The backend refuses to point a ref at a non-commit or a missing object.
    let err = backend.compare_and_swap(REF, Some(&c), &blob).unwrap_err();
    assert!(err.to_string().contains("blob"), "{err}");
    let missing = ObjectId::for_object(ObjectKind::Commit, b"missing");
    let err = backend.compare_and_swap(REF, Some(&c), &missing).unwrap_err();
    assert!(err.to_string().contains("not in the repository"), "{err}");
    assert_eq!(backend.read_ref(REF).unwrap(), Some(c));
}

#[test]
fn ref_names_are_checked_like_git_check_ref_format() {
    let (dir, backend) = bare();
    let names = [
        "refs/dlog/spaces/x",
        "refs/dlog/spaces/x-y_z.1",
        "refs/dlog/spaces/\u{fc}n\u{ef}code",
        "refs/dlog/spaces/x.lock",
        "refs/dlog/../x",
        "refs/dlog/./x",
        "refs/dlog/x y",
        "refs/dlog/x~1",
        "refs/dlog/x^",
        "refs/dlog/x:y",
        "refs/dlog/x?",
        "refs/dlog/x*",
        "refs/dlog/x[",
        "refs/dlog/x\\y",
        "refs/dlog/.x",
        "refs/dlog/x.",
        "refs/dlog//x",
        "refs/dlog/x/",
        "refs/dlog/@{x}",
        "refs/dlog/@",
        "refs/dlog/x\u{7f}",
        "refs/dlog/x\ty",
        "refs/",
        "refs",
    ];
    for name in names {
        let (git_ok, _, _) = git_status(dir.path(), &["check-ref-format", name], None);
        let ours = backend.read_ref(name);
        let ours_ok = !matches!(ours, Err(StorageError::InvalidRef(_)));
        assert_eq!(ours_ok, git_ok, "{name:?}: git says {git_ok}, backend says {ours:?}");
    }
    // Valid for git, but not a ref this backend stores.
    for name in ["HEAD", "FETCH_HEAD", "dlog/x"] {
        assert!(matches!(backend.read_ref(name), Err(StorageError::InvalidRef(_))), "{name}");
    }
}

fn race(repo: &Path, backends: Vec<Arc<GitBackend>>) {
    let threads: Vec<_> = backends
        .into_iter()
        .enumerate()
        .map(|(t, backend)| {
            std::thread::spawn(move || {
                let mut retries = 0;
                for i in 0..50 {
                    retries += append(&backend, REF, &format!("thread {t} entry {i}"));
                }
                retries
            })
        })
        .collect();
    let retries: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    println!("race: 200 appends, {retries} lost races retried");
    assert_eq!(git(repo, &["rev-list", "--count", REF]).trim(), "200");
    assert_eq!(git(repo, &["rev-list", "--count", "--min-parents=2", REF]).trim(), "0");
    assert_eq!(git(repo, &["rev-list", "--count", "--max-parents=0", REF]).trim(), "1");
    assert_fsck_clean(repo);
}

#[test]
fn four_threads_appending_fifty_times_each_make_one_chain_of_two_hundred() {
    let (dir, backend) = bare();
    let shared = Arc::new(backend);
    race(dir.path(), vec![shared.clone(), shared.clone(), shared.clone(), shared]);
}

#[test]
fn four_instances_appending_fifty_times_each_make_one_chain_of_two_hundred() {
    let dir = tempdir();
    GitBackend::init_bare(dir.path()).unwrap();
    let backends = (0..4).map(|_| Arc::new(GitBackend::open(dir.path()).unwrap())).collect();
    race(dir.path(), backends);
}

#[test]
fn a_torn_loose_object_from_a_crash_is_rewritten_not_trusted() {
    let (dir, backend) = bare();
    let data = b"precious decision".to_vec();
    let id = backend.write_object(ObjectKind::Blob, &data).unwrap();
    // A swap writes it (loose: a small write set).
    let c = write_commit(&backend, "c", None);
    assert_eq!(backend.compare_and_swap(REF, None, &c).unwrap(), SwapOutcome::Swapped);
    let hex = id.to_hex();
    let path = dir.path().join("objects").join(&hex[..2]).join(&hex[2..]);
    // What a crash between gix's rename and the fsync can leave behind.
    for torn in [&b""[..], &std::fs::read(&path).unwrap()[..5]] {
        std::fs::write(&path, torn).unwrap();
        assert!(backend.read_object(&id).is_err() || backend.read_object(&id).unwrap().is_none());
        assert_eq!(backend.write_object(ObjectKind::Blob, &data).unwrap(), id);
        assert_eq!(backend.read_object(&id).unwrap(), Some((ObjectKind::Blob, data.clone())));
        // The next swap writes it again, over the torn file.
        assert_eq!(backend.compare_and_swap(REF, Some(&c), &c).unwrap(), SwapOutcome::Swapped);
        assert_eq!(git(dir.path(), &["cat-file", "-p", &hex]).as_bytes(), data);
    }
}

#[test]
fn init_refuses_existing_repositories_and_accepts_a_non_empty_work_tree() {
    let dir = tempdir();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    GitBackend::init(dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(), "mine");
    assert!(GitBackend::init(dir.path()).is_err(), "a second init is refused");
    assert!(GitBackend::init_bare(dir.path()).is_err(), "a bare init into a non-empty directory is refused");
    assert_eq!(git(dir.path(), &["rev-parse", "--is-bare-repository"]).trim(), "false");
}

#[test]
fn a_sha256_repository_is_refused_with_a_clear_error() {
    let dir = tempdir();
    git(dir.path(), &["init", "-q", "--bare", "--object-format=sha256"]);
    let err = GitBackend::open(dir.path()).unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("SHA-1") || err.to_string().contains("sha256"), "{err}");
}
