//! Group commit: buffered objects become one pack (or loose objects for
//! small write sets) at the swap, checked with the real `git`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::git_cli::*;
use decision_log::backend::{Backend, GitBackend, ObjectId, ObjectKind, StorageError, SwapOutcome};

const REF: &str = "refs/dlog/spaces/x";
const FIRST: &str = "refs/dlog/spaces/first";

fn bare() -> (tempfile::TempDir, GitBackend) {
    let dir = tempdir();
    let backend = GitBackend::init_bare(dir.path()).unwrap();
    (dir, backend)
}

/// An event's three objects, as the guest makes them (a ~250-byte JSON
/// blob, a one-entry tree, a ~300-byte commit).
fn event(seq: u64, parent: Option<&ObjectId>) -> [(ObjectKind, Vec<u8>); 3] {
    let blob = format!(
        "{{\"actor\":\"alice\",\"at_ms\":{},\"body\":{{\"choice\":\"option {seq}\",\"key\":\"area/{}\",\
         \"rationale\":\"because the measurements of batch {seq} said so\"}},\"epoch\":1,\
         \"id\":\"0190f5c2-7e4b-7c3a-9d00-{seq:012}\",\"kind\":\"decide\",\"seq\":{seq},\"space\":\"x\",\"v\":1}}",
        1_700_000_000_000 + seq,
        seq % 97
    )
    .into_bytes();
    let blob_id = ObjectId::for_object(ObjectKind::Blob, &blob);
    let tree = tree_bytes(&[("100644", "event.json", blob_id)]);
    let tree_id = ObjectId::for_object(ObjectKind::Tree, &tree);
    let mut commit = format!("tree {tree_id}\n");
    if let Some(parent) = parent {
        commit.push_str(&format!("parent {parent}\n"));
    }
    commit.push_str(&format!(
        "author alice <> 1700000000 +0000\ncommitter alice <> 1700000000 +0000\n\n\
         decide area/{}: option {seq}\n\nDlog-Space: x\nDlog-Seq: {seq}\nDlog-Epoch: 1\n\
         Dlog-Id: 0190f5c2-7e4b-7c3a-9d00-{seq:012}\n",
        seq % 97
    ));
    [(ObjectKind::Blob, blob), (ObjectKind::Tree, tree), (ObjectKind::Commit, commit.into_bytes())]
}

/// Write `count` events on top of `parent`; every object written, and the
/// last commit.
fn write_events(
    backend: &GitBackend,
    first_seq: u64,
    count: u64,
    parent: Option<ObjectId>,
) -> (Vec<(ObjectKind, Vec<u8>, ObjectId)>, ObjectId) {
    let mut written = Vec::new();
    let mut tip = parent;
    for seq in first_seq..first_seq + count {
        for (kind, data) in event(seq, tip.as_ref()) {
            let id = backend.write_object(kind, &data).unwrap();
            if kind == ObjectKind::Commit {
                tip = Some(id);
            }
            written.push((kind, data, id));
        }
    }
    (written, tip.unwrap())
}

fn files_named(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let pack_dir = dir.join("objects/pack");
    if !pack_dir.is_dir() {
        return Vec::new();
    }
    files_below(&pack_dir).into_iter().filter(|p| p.to_string_lossy().ends_with(suffix)).collect()
}

/// Loose object files (`objects/xx/…`).
fn loose_objects(dir: &Path) -> Vec<PathBuf> {
    files_below(&dir.join("objects"))
        .into_iter()
        .filter(|p| {
            let parent = p.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
            parent.len() == 2 && parent.chars().all(|c| c.is_ascii_hexdigit())
        })
        .collect()
}

/// Run git with `input` fed by another thread (outputs may exceed a pipe's
/// buffer); its stdout.
fn git_piped(repo: &Path, args: &[&str], input: Vec<u8>) -> Vec<u8> {
    let mut child = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write as _;
        stdin.write_all(&input).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    out.stdout
}

/// `git cat-file --batch` of every object: kind and content as git reads them.
fn assert_git_reads(repo: &Path, objects: &[(ObjectKind, Vec<u8>, ObjectId)]) {
    let input: String = objects.iter().map(|(_, _, id)| format!("{id}\n")).collect();
    let out = git_piped(repo, &["cat-file", "--batch"], input.into_bytes());
    let mut rest = &out[..];
    for (kind, data, id) in objects {
        let newline = rest.iter().position(|&b| b == b'\n').unwrap();
        let header = String::from_utf8_lossy(&rest[..newline]).into_owned();
        assert_eq!(header, format!("{id} {} {}", kind.as_str(), data.len()));
        let content = &rest[newline + 1..newline + 1 + data.len()];
        assert!(content == &data[..], "content of {id}");
        rest = &rest[newline + 1 + data.len() + 1..];
    }
    assert!(rest.is_empty());
}

/// `git hash-object` of every object's bytes, one git per kind.
fn assert_git_ids(objects: &[(ObjectKind, Vec<u8>, ObjectId)]) {
    let scratch = tempdir();
    for kind in [ObjectKind::Blob, ObjectKind::Tree, ObjectKind::Commit] {
        let mut paths = String::new();
        let mut expected = String::new();
        for (i, (k, data, id)) in objects.iter().enumerate() {
            if *k == kind {
                let path = scratch.path().join(format!("{i}"));
                std::fs::write(&path, data).unwrap();
                paths.push_str(&format!("{}\n", path.display()));
                expected.push_str(&format!("{id}\n"));
            }
        }
        let ids = git_piped(
            scratch.path(),
            &["hash-object", "--no-filters", "-t", kind.as_str(), "--stdin-paths"],
            paths.into_bytes(),
        );
        assert_eq!(String::from_utf8(ids).unwrap(), expected, "{kind:?}");
    }
}

/// `git verify-pack -v`, and `git index-pack` of our pack must make our index.
fn assert_pack_valid(repo: &Path, pack: &Path, objects: usize) {
    let idx = pack.with_extension("idx");
    let out = git(repo, &["verify-pack", "-v", idx.to_str().unwrap()]);
    assert!(out.contains(&format!("non delta: {objects} objects")), "{out}");
    assert!(out.trim_end().ends_with(": ok"), "{out}");
    let scratch = tempdir();
    let copy = scratch.path().join("copy.pack");
    std::fs::copy(pack, &copy).unwrap();
    git(scratch.path(), &["index-pack", copy.to_str().unwrap()]);
    let theirs = std::fs::read(scratch.path().join("copy.idx")).unwrap();
    assert!(theirs == std::fs::read(&idx).unwrap(), "git index-pack makes another index");
}

#[test]
fn a_batch_of_a_thousand_events_becomes_one_pack_that_git_and_every_instance_read() {
    let (dir, backend) = bare();
    let repo = dir.path();
    let warm = GitBackend::open(repo).unwrap();
    assert_eq!(warm.read_ref(REF).unwrap(), None); // its caches see no pack
    let before = files_below(&repo.join("objects"));

    let (objects, tip) = write_events(&backend, 1, 1000, None);
    assert_eq!(objects.len(), 3000);
    assert_eq!(files_below(&repo.join("objects")), before, "buffered: nothing written yet");
    for (kind, data, id) in &objects {
        assert_eq!(*id, ObjectId::for_object(*kind, data));
        assert_eq!(backend.read_object(id).unwrap().as_ref(), Some(&(*kind, data.clone())));
    }
    assert_eq!(backend.compare_and_swap(REF, None, &tip).unwrap(), SwapOutcome::Swapped);

    let packs = files_named(repo, ".pack");
    assert_eq!(packs.len(), 1, "{packs:?}");
    assert_eq!(files_named(repo, ".idx"), vec![packs[0].with_extension("idx")]);
    assert!(
        files_named(repo, "").iter().all(|p| !p.file_name().unwrap().to_string_lossy().starts_with("tmp_"))
    );
    assert_eq!(loose_objects(repo), Vec::<PathBuf>::new());
    assert_pack_valid(repo, &packs[0], 3000);
    assert_git_ids(&objects);
    assert_git_reads(repo, &objects);
    assert_eq!(git(repo, &["rev-list", "--count", REF]).trim(), "1000");
    assert_fsck_clean(repo);

    let fresh = GitBackend::open(repo).unwrap();
    for reader in [&backend, &warm, &fresh] {
        assert_eq!(reader.read_ref(REF).unwrap(), Some(tip));
        for (kind, data, id) in &objects {
            assert_eq!(reader.read_object(id).unwrap().as_ref(), Some(&(*kind, data.clone())), "{id}");
        }
    }
}

#[test]
fn a_mismatching_swap_after_buffering_writes_nothing_under_objects() {
    let (dir, backend) = bare();
    let repo = dir.path();
    let (_, base) = write_events(&backend, 1, 1, None);
    assert_eq!(backend.compare_and_swap(REF, None, &base).unwrap(), SwapOutcome::Swapped);
    let other = ObjectId::for_object(ObjectKind::Commit, b"not even written");
    let before = files_below(&repo.join("objects"));

    // A batch (a pack's worth) and a single append, both built on a stale head.
    for events in [1000, 1] {
        let (objects, tip) = write_events(&backend, 2, events, Some(base));
        assert_eq!(
            backend.compare_and_swap(REF, Some(&other), &tip).unwrap(),
            SwapOutcome::Mismatch(Some(base))
        );
        assert_eq!(
            backend.compare_and_swap("refs/dlog/spaces/new", Some(&base), &tip).unwrap(),
            SwapOutcome::Mismatch(None)
        );
        assert_eq!(files_below(&repo.join("objects")), before, "{events} events");
        // Still readable here (a retry may build on them), never on disk.
        assert!(backend.read_object(&objects[0].2).unwrap().is_some());
        assert!(!git_status(repo, &["cat-file", "-e", &tip.to_hex()], None).0);
    }
    // The next successful swap writes its own objects, not the lost ones.
    let (mine, next) = write_events(&backend, 5000, 1, Some(base));
    assert_eq!(backend.compare_and_swap(REF, Some(&base), &next).unwrap(), SwapOutcome::Swapped);
    let written: BTreeSet<PathBuf> = files_below(&repo.join("objects")).into_iter().collect();
    let before: BTreeSet<PathBuf> = before.into_iter().collect();
    let new_files: Vec<&PathBuf> = written.difference(&before).collect();
    assert_eq!(new_files.len(), 3, "{new_files:?}");
    assert_eq!(files_named(repo, ".pack"), Vec::<PathBuf>::new());
    assert_git_reads(repo, &mine);
    assert_fsck_clean(repo);
}

#[test]
fn a_swap_that_reaches_a_lost_write_set_writes_it() {
    // A lost race leaves its objects buffered: a retry that builds on them
    // (here: the same commit, once the ref holds what it expects) writes them.
    let (dir, backend) = bare();
    let repo = dir.path();
    let (objects, tip) = write_events(&backend, 1, 100, None);
    let bogus = write_commit(&backend, "bogus", None);
    assert_eq!(backend.compare_and_swap(REF, Some(&bogus), &tip).unwrap(), SwapOutcome::Mismatch(None));
    assert_eq!(backend.compare_and_swap(REF, None, &tip).unwrap(), SwapOutcome::Swapped);
    assert_eq!(files_named(repo, ".pack").len(), 1);
    assert_git_reads(repo, &objects);
    assert_fsck_clean(repo);
}

#[test]
fn a_crash_between_the_pack_and_the_ref_update_leaves_the_old_ref_and_a_valid_unreferenced_pack() {
    // The swap writes the pack, syncs it, and only then takes the ref's lock.
    // A stale lock makes the swap fail right there, after the pack and before
    // the ref moves: what a crash at that instant leaves on disk.
    let (dir, backend) = bare();
    let repo = dir.path();
    let (_, base) = write_events(&backend, 1, 1, None);
    assert_eq!(backend.compare_and_swap(REF, None, &base).unwrap(), SwapOutcome::Swapped);
    let (objects, tip) = write_events(&backend, 2, 1000, Some(base));
    let lock = repo.join(format!("{REF}.lock"));
    std::fs::write(&lock, "").unwrap();
    let err = backend.compare_and_swap(REF, Some(&base), &tip).unwrap_err();
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
    drop(backend); // the crash: the process and its buffer are gone

    assert_eq!(rev_parse(repo, REF), base.to_hex(), "the old ref");
    let packs = files_named(repo, ".pack");
    assert_eq!(packs.len(), 1);
    assert_pack_valid(repo, &packs[0], 3000);
    assert_git_reads(repo, &objects);
    assert_fsck_clean(repo); // the pack is unreferenced (dangling), not broken

    // After a restart, the append is made again: its objects are written
    // again (write_object does not look at the disk), here as the identical
    // pack, renamed over the first.
    std::fs::remove_file(&lock).unwrap();
    let pack_bytes = std::fs::read(&packs[0]).unwrap();
    let restarted = GitBackend::open(repo).unwrap();
    let (_, again) = write_events(&restarted, 2, 1000, Some(base));
    assert_eq!(again, tip);
    assert_eq!(restarted.compare_and_swap(REF, Some(&base), &tip).unwrap(), SwapOutcome::Swapped);
    assert_eq!(files_named(repo, ".pack"), packs);
    assert!(std::fs::read(&packs[0]).unwrap() == pack_bytes);
    assert_eq!(git(repo, &["rev-list", "--count", REF]).trim(), "1001");
    assert_fsck_clean(repo);
}

#[test]
fn a_single_append_still_writes_three_loose_objects_and_no_pack() {
    let (dir, backend) = bare();
    let repo = dir.path();
    let (objects, tip) = write_events(&backend, 1, 1, None);
    assert_eq!(backend.compare_and_swap(REF, None, &tip).unwrap(), SwapOutcome::Swapped);
    let loose: Vec<PathBuf> = objects
        .iter()
        .map(|(_, _, id)| repo.join("objects").join(&id.to_hex()[..2]).join(&id.to_hex()[2..]))
        .collect();
    let mut expected = loose.clone();
    expected.sort();
    assert_eq!(loose_objects(repo), expected);
    assert_eq!(files_named(repo, ".pack"), Vec::<PathBuf>::new());
    assert_git_reads(repo, &objects);
    assert_fsck_clean(repo);
}

#[test]
fn empty_large_and_incompressible_objects_round_trip_through_a_pack() {
    let (dir, backend) = bare();
    let repo = dir.path();
    let mut random = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..70_000)
        .map(|_| {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random as u8
        })
        .collect();
    let mut blobs: Vec<Vec<u8>> = vec![
        Vec::new(),
        noise,
        b"decision ".repeat(20_000),
        vec![b'x'; 1023],
        vec![b'y'; 1024],
        vec![b'z'; 65_535],
        vec![b'w'; 65_536],
    ];
    blobs.extend((0..30).map(|i| format!("small {i}").into_bytes()));
    let mut objects = Vec::new();
    let mut entries = Vec::new();
    for (i, blob) in blobs.iter().enumerate() {
        let id = backend.write_object(ObjectKind::Blob, blob).unwrap();
        objects.push((ObjectKind::Blob, blob.clone(), id));
        entries.push((format!("f{i:02}"), id));
    }
    let empty_tree = backend.write_object(ObjectKind::Tree, b"").unwrap();
    objects.push((ObjectKind::Tree, Vec::new(), empty_tree));
    let mut listing: Vec<(&str, &str, ObjectId)> =
        entries.iter().map(|(name, id)| ("100644", name.as_str(), *id)).collect();
    listing.push(("40000", "g", empty_tree));
    let tree_data = tree_bytes(&listing);
    let tree = backend.write_object(ObjectKind::Tree, &tree_data).unwrap();
    objects.push((ObjectKind::Tree, tree_data, tree));
    let commit_data = commit_bytes(&tree, None, "everything");
    let commit = backend.write_object(ObjectKind::Commit, &commit_data).unwrap();
    objects.push((ObjectKind::Commit, commit_data, commit));
    assert_eq!(backend.compare_and_swap(REF, None, &commit).unwrap(), SwapOutcome::Swapped);

    let packs = files_named(repo, ".pack");
    assert_eq!(packs.len(), 1);
    assert_pack_valid(repo, &packs[0], objects.len());
    assert_git_ids(&objects);
    assert_git_reads(repo, &objects);
    assert_fsck_clean(repo);
    let fresh = GitBackend::open(repo).unwrap();
    for (kind, data, id) in &objects {
        assert_eq!(fresh.read_object(id).unwrap().as_ref(), Some(&(*kind, data.clone())), "{id}");
    }
}

#[test]
fn a_swap_to_a_commit_that_reaches_a_missing_object_is_refused_and_writes_nothing() {
    let (dir, backend) = bare();
    let missing = ObjectId::for_object(ObjectKind::Blob, b"never written");
    let tree = backend.write_object(ObjectKind::Tree, &tree_bytes(&[("100644", "f", missing)])).unwrap();
    let commit = backend.write_object(ObjectKind::Commit, &commit_bytes(&tree, None, "dangling")).unwrap();
    let before = files_below(&dir.path().join("objects"));
    let err = backend.compare_and_swap(REF, None, &commit).unwrap_err();
    assert!(err.to_string().contains(&missing.to_hex()), "{err}");
    assert_eq!(backend.read_ref(REF).unwrap(), None);
    assert_eq!(files_below(&dir.path().join("objects")), before);
}

#[test]
fn an_instance_opened_before_seventy_packs_still_finds_objects_in_the_newest() {
    // gix's object store has a fixed number of index slots; the backend
    // reopens it when new packs exhaust them. (Each pack is kept, as `git`
    // or another tool may keep packs, so the writer does not merge them.)
    let (dir, reader) = bare();
    let repo = dir.path();
    let writer = GitBackend::open(repo).unwrap();
    let mut tip = None;
    let mut seq = 1;
    for batch in 0..70 {
        let (_, next) = write_events(&writer, seq, 10, tip);
        seq += 10;
        assert_eq!(writer.compare_and_swap(REF, tip.as_ref(), &next).unwrap(), SwapOutcome::Swapped);
        tip = Some(next);
        for index in files_named(repo, ".idx") {
            std::fs::write(index.with_extension("keep"), "").unwrap();
        }
        if batch % 10 == 0 {
            assert_eq!(reader.read_ref(REF).unwrap(), tip, "after {} packs", batch + 1);
        }
    }
    assert_eq!(files_named(repo, ".pack").len(), 70);
    assert_eq!(reader.read_ref(REF).unwrap(), tip);
    assert!(reader.read_object(&tip.unwrap()).unwrap().is_some());
    assert_eq!(git(repo, &["rev-list", "--count", REF]).trim(), "700");
}

#[test]
fn many_batches_leave_a_few_merged_packs_that_every_reader_and_git_read() {
    let (dir, writer) = bare();
    let repo = dir.path();
    // Opened first: its indexes go stale as packs are merged and removed.
    let early = GitBackend::open(repo).unwrap();
    let mut all = Vec::new();
    let mut tip = None;
    let mut seq = 1;
    let mut most_packs = 0;
    for batch in 0..40 {
        let (written, next) = write_events(&writer, seq, 10, tip);
        seq += 10;
        all.extend(written);
        assert_eq!(writer.compare_and_swap(REF, tip.as_ref(), &next).unwrap(), SwapOutcome::Swapped);
        tip = Some(next);
        most_packs = most_packs.max(files_named(repo, ".pack").len());
        if batch == 0 {
            let first = writer.compare_and_swap(FIRST, None, &next).unwrap();
            assert_eq!(first, SwapOutcome::Swapped);
        }
        // Reading a ref looks its commit up: after a merge, in the merged
        // pack, though the instance may hold the index of the removed one.
        for (reader, name) in [(&writer, "the writer"), (&early, "a reader")] {
            assert_eq!(reader.read_ref(REF).unwrap(), tip, "{name}, after batch {batch}");
            assert!(reader.read_ref(FIRST).unwrap().is_some(), "{name}, after batch {batch}");
        }
        if batch % 7 == 0 {
            for (kind, data, id) in &all {
                assert_eq!(
                    early.read_object(id).unwrap(),
                    Some((*kind, data.clone())),
                    "after batch {batch}"
                );
            }
        }
    }
    assert!(most_packs <= 9, "at most three packs wait per size tier, not one per batch (saw {most_packs})");
    assert_eq!(files_named(repo, ".idx").len(), files_named(repo, ".pack").len());
    let fresh = GitBackend::open(repo).unwrap();
    for (kind, data, id) in &all {
        assert_eq!(fresh.read_object(id).unwrap(), Some((*kind, data.clone())));
        assert_eq!(early.read_object(id).unwrap(), Some((*kind, data.clone())));
    }
    let packed: usize = files_named(repo, ".pack")
        .iter()
        .map(|pack| {
            let out = git(repo, &["verify-pack", "-v", pack.with_extension("idx").to_str().unwrap()]);
            assert!(out.trim_end().ends_with(": ok"), "{out}");
            out.lines()
                .filter(|l| l.contains(" blob ") || l.contains(" tree ") || l.contains(" commit "))
                .count()
        })
        .sum();
    assert_eq!(packed, all.len(), "every object is in exactly one pack");
    git(repo, &["fsck", "--strict", "--no-dangling"]);
    assert_eq!(git(repo, &["rev-list", "--count", REF]).trim(), "400");
}

/// Make every loose object look `age` old.
fn age_loose_objects(repo: &Path, age: std::time::Duration) {
    let then = std::time::SystemTime::now() - age;
    for path in loose_objects(repo) {
        std::fs::File::open(&path).unwrap().set_modified(then).unwrap();
    }
}

#[test]
fn gc_packs_loose_objects_older_than_a_minute_and_merges_every_pack_while_readers_read() {
    let (dir, writer) = bare();
    let repo = dir.path();
    let early = GitBackend::open(repo).unwrap();
    let mut all = Vec::new();
    let mut tip = None;
    let mut seq = 1;
    let mut append = |count: u64, all: &mut Vec<_>, tip: &mut Option<ObjectId>| {
        let (written, next) = write_events(&writer, seq, count, *tip);
        seq += count;
        all.extend(written);
        assert_eq!(writer.compare_and_swap(REF, tip.as_ref(), &next).unwrap(), SwapOutcome::Swapped);
        *tip = Some(next);
    };
    for round in 0..6 {
        append(if round % 2 == 0 { 1 } else { 10 }, &mut all, &mut tip);
        assert_eq!(early.read_ref(REF).unwrap(), tip);
    }
    assert_eq!((loose_objects(repo).len(), files_named(repo, ".pack").len()), (9, 3));
    age_loose_objects(repo, std::time::Duration::from_secs(120));
    append(1, &mut all, &mut tip); // young: stays loose

    let report = GitBackend::open(repo).unwrap().gc(&mut |_| {}).unwrap();
    assert_eq!(report.loose_packed, 9);
    assert_eq!((report.packs_before, report.packs_after), (3, 1));
    assert_eq!(loose_objects(repo).len(), 3, "objects younger than a minute stay loose");
    for reader in [&early, &writer, &GitBackend::open(repo).unwrap()] {
        assert_eq!(reader.read_ref(REF).unwrap(), tip);
        for (kind, data, id) in &all {
            assert_eq!(reader.read_object(id).unwrap(), Some((*kind, data.clone())));
        }
    }
    git(repo, &["fsck", "--strict", "--no-dangling"]);
    assert_eq!(git(repo, &["rev-list", "--count", REF]).trim(), "34");
    let again = writer.gc(&mut |_| {}).unwrap();
    assert_eq!((again.loose_packed, again.packs_merged, again.packs_after), (0, 0, 1), "nothing left to do");
}

#[test]
fn four_threads_appending_batches_to_one_instance_make_one_chain() {
    let (dir, backend) = bare();
    let backend = Arc::new(backend);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let backend = backend.clone();
            std::thread::spawn(move || {
                let mut retries = 0;
                for batch in 0..10u64 {
                    loop {
                        let head = backend.read_ref(REF).unwrap();
                        let seq = 1_000_000 * (t + 1) + 1000 * batch + retries;
                        let (_, tip) = write_events(&backend, seq, 10, head);
                        match backend.compare_and_swap(REF, head.as_ref(), &tip).unwrap() {
                            SwapOutcome::Swapped => break,
                            SwapOutcome::Mismatch(_) => retries += 1,
                        }
                    }
                }
                retries
            })
        })
        .collect();
    let retries: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let packs = files_named(dir.path(), ".pack").len();
    println!("40 batches of 10 events, {retries} lost races retried, {packs} packs");
    assert_eq!(git(dir.path(), &["rev-list", "--count", REF]).trim(), "400");
    assert!(packs <= 9, "packs are merged: {packs}");
    assert_fsck_clean(dir.path());
}

#[test]
fn the_buffer_is_written_out_as_a_pack_when_it_grows_past_its_bound() {
    let (dir, backend) = bare();
    for i in 0..70u8 {
        let mut blob = vec![i; 1 << 20];
        blob[0] = b'#';
        backend.write_object(ObjectKind::Blob, &blob).unwrap();
    }
    assert_eq!(files_named(dir.path(), ".pack").len(), 1, "written before any swap");
    assert_eq!(loose_objects(dir.path()), Vec::<PathBuf>::new());
    let pack = &files_named(dir.path(), ".pack")[0];
    git(dir.path(), &["verify-pack", pack.with_extension("idx").to_str().unwrap()]);
}
