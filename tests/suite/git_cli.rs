//! Helpers shared by the integration tests: the real `git`, object builders.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use decision_log::backend::{Backend, GitBackend, ObjectId, ObjectKind, SwapOutcome};

/// `git -C dir args…` with no system or global config; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with_input(dir, args, None)
}

pub fn git_with_input(dir: &Path, args: &[&str], input: Option<&[u8]>) -> String {
    let (ok, stdout, stderr) = git_status(dir, args, input);
    assert!(ok, "git {args:?} failed: {stderr}");
    stdout
}

/// Run git; (success, stdout, stderr).
pub fn git_status(dir: &Path, args: &[&str], input: Option<&[u8]>) -> (bool, String, String) {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or_default()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `git fsck --strict` over everything, asserting it is clean.
pub fn assert_fsck_clean(dir: &Path) {
    let (ok, stdout, stderr) = git_status(dir, &["fsck", "--strict", "--no-dangling"], None);
    assert!(
        ok && stdout.trim().is_empty() && !stderr.contains("error") && !stderr.contains("warning"),
        "git fsck --strict is not clean:\n{stdout}\n{stderr}"
    );
}

pub fn rev_parse(dir: &Path, name: &str) -> String {
    git(dir, &["rev-parse", "--verify", name]).trim().to_owned()
}

/// A tree with the given (mode, name, id) entries, in the order given.
pub fn tree_bytes(entries: &[(&str, &str, ObjectId)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mode, name, id) in entries {
        out.extend_from_slice(mode.as_bytes());
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(&id.0);
    }
    out
}

pub fn commit_bytes(tree: &ObjectId, parent: Option<&ObjectId>, message: &str) -> Vec<u8> {
    let mut out = format!("tree {tree}\n");
    if let Some(parent) = parent {
        out.push_str(&format!("parent {parent}\n"));
    }
    out.push_str("author alice <> 1700000000 +0000\n");
    out.push_str("committer alice <> 1700000000 +0000\n\n");
    out.push_str(message);
    out.push('\n');
    out.into_bytes()
}

/// Write blob + tree + commit (parent optional); return the commit id.
pub fn write_commit(backend: &GitBackend, content: &str, parent: Option<&ObjectId>) -> ObjectId {
    let blob = backend.write_object(ObjectKind::Blob, content.as_bytes()).unwrap();
    let tree =
        backend.write_object(ObjectKind::Tree, &tree_bytes(&[("100644", "decision.json", blob)])).unwrap();
    backend.write_object(ObjectKind::Commit, &commit_bytes(&tree, parent, content)).unwrap()
}

/// Append one commit on top of `name`, retrying on lost races; returns retries.
pub fn append(backend: &GitBackend, name: &str, content: &str) -> usize {
    let mut retries = 0;
    loop {
        let current = backend.read_ref(name).unwrap();
        let commit = write_commit(backend, content, current.as_ref());
        match backend.compare_and_swap(name, current.as_ref(), &commit).unwrap() {
            SwapOutcome::Swapped => return retries,
            SwapOutcome::Mismatch(_) => retries += 1,
        }
    }
}

/// Every file below `dir`, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("gixproto-").tempdir().unwrap()
}
