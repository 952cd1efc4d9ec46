//! `dlog doctor`: everything in a repository that a crash can leave behind,
//! each with what it is, who owns it and whether anything needs doing.
//!
//! - **Lock files** (`refs/dlog/**.lock`, `packed-refs.lock`,
//!   `dlog/leases/*.json.lock`) with their owner, told by the lock's guard
//!   (`crate::guard`): a live dlog process (left alone), a dlog process that
//!   died holding it or a power loss (stale: the next writer removes it by
//!   itself), or no dlog process (`git`, or a dlog from before guards: left
//!   alone unless older than `--older-than`).
//! - **Temporary files** of writes that never finished (`tmp_pack_*`,
//!   `tmp_idx_*`, `tmp_obj_*`): harmless, removed when older than the bound.
//! - **Loose objects that are empty or do not decode** to the object their
//!   name says: what a power loss leaves after a writer that renamed before
//!   syncing (dlog no longer does); `git fsck` and `git gc` refuse them.
//! - **Packs without their index** (or an index without its pack): left by a
//!   crash between the two renames; git ignores them.
//!
//! Files are reached through a cap-std directory handle on the repository:
//! the doctor can touch nothing outside it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::Error;
use crate::backend::{ObjectId, ObjectKind};
use crate::guard::{self, GuardState};

/// Who a lock file belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Owner {
    /// A live dlog process holds the lock's guard: it is in use.
    Live(Option<u32>),
    /// The dlog process that took it died holding it (its pid, if known):
    /// stale, and the next writer removes it by itself.
    Dead(Option<u32>),
    /// It was written before the machine booted: a power loss left it.
    BeforeBoot,
    /// No dlog process can be shown to own it: `git` itself, or a dlog from
    /// before guards. Stale only once older than any writer holds a lock.
    Unknown,
}

/// Something the doctor found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A lock file.
    Lock {
        /// Its path, relative to the git directory.
        path: PathBuf,
        /// How long ago it was last written.
        age: Duration,
        /// Who it belongs to.
        owner: Owner,
    },
    /// A temporary file of a write that never finished.
    Temp {
        /// Its path, relative to the git directory.
        path: PathBuf,
        /// How long ago it was last written.
        age: Duration,
    },
    /// A loose object file that is empty or not the object its name says.
    BadObject {
        /// Its path, relative to the git directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A `.pack` without its `.idx`, or the reverse.
    HalfPack {
        /// Its path, relative to the git directory.
        path: PathBuf,
        /// How long ago it was last written.
        age: Duration,
    },
}

impl Finding {
    /// The file the finding is about, relative to the git directory.
    pub fn path(&self) -> &Path {
        match self {
            Finding::Lock { path, .. }
            | Finding::Temp { path, .. }
            | Finding::BadObject { path, .. }
            | Finding::HalfPack { path, .. } => path,
        }
    }

    /// Whether it is safe to remove, given how old a file of unknown owner
    /// must be before it counts as abandoned.
    pub fn removable(&self, older_than: Duration) -> bool {
        match self {
            Finding::Lock { owner: Owner::Live(_), .. } => false,
            Finding::Lock { owner: Owner::Dead(_) | Owner::BeforeBoot, .. } => true,
            Finding::Lock { owner: Owner::Unknown, age, .. } => *age >= older_than,
            Finding::Temp { age, .. } | Finding::HalfPack { age, .. } => *age >= older_than,
            Finding::BadObject { .. } => true,
        }
    }

    /// Whether it gets in the way until removed: a lock that is not in use
    /// (appends to its space fail or wait), or an object git refuses.
    /// Temporary files and half packs only take space.
    pub fn blocks(&self) -> bool {
        match self {
            Finding::Lock { owner, .. } => !matches!(owner, Owner::Live(_)),
            Finding::BadObject { .. } => true,
            Finding::Temp { .. } | Finding::HalfPack { .. } => false,
        }
    }

    /// One line for people: what it is and what to do.
    pub fn explain(&self) -> String {
        match self {
            Finding::Lock { owner: Owner::Live(pid), .. } => {
                format!("in use by a running dlog process ({}); left alone", guard::describe(*pid))
            }
            Finding::Lock { owner: Owner::Dead(pid), .. } => format!(
                "left by a dlog process that died holding it ({}); the next write removes it by itself",
                guard::describe(*pid)
            ),
            Finding::Lock { owner: Owner::BeforeBoot, .. } => {
                "left by a power loss or crash of the machine; the next write removes it by itself".into()
            }
            Finding::Lock { owner: Owner::Unknown, .. } => {
                "not taken by a dlog process (git, or an older dlog): writes wait for it and then fail; \
                 removed by --fix once older than --older-than"
                    .into()
            }
            Finding::Temp { .. } => "a temporary file of a write that never finished; harmless".into(),
            Finding::BadObject { why, .. } => {
                format!(
                    "{why}: git fsck and git gc refuse it; --fix removes it (a later write of the object recreates it)"
                )
            }
            Finding::HalfPack { .. } => "half of a pack whose other file is missing: git ignores it".into(),
        }
    }
}

fn storage(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {e}", path.display()))
}

fn open(git_dir: &Path) -> Result<Dir, Error> {
    Dir::open_ambient_dir(git_dir, ambient_authority()).map_err(|e| storage("cannot open", git_dir, e))
}

fn age(dir: &Dir, path: &Path) -> Result<Duration, Error> {
    let modified = dir
        .metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| storage("cannot read the age of", path, e))?
        .into_std();
    Ok(SystemTime::now().duration_since(modified).unwrap_or_default())
}

/// Entries of a directory (none when it does not exist): names and whether each is a directory.
fn list(dir: &Dir, relative: &Path) -> Result<Vec<(String, bool)>, Error> {
    let entries = match dir.read_dir(relative) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(storage("cannot list", relative, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| storage("cannot list", relative, e))?;
        let is_dir = entry.file_type().map_err(|e| storage("cannot inspect", relative, e))?.is_dir();
        names.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    names.sort();
    Ok(names)
}

/// Who owns the lock at `lock`, whose guard is at `guard_path` (if dlog guards it).
fn owner(dir: &Dir, git_dir: &Path, lock: &Path, guard_path: Option<PathBuf>) -> Result<Owner, Error> {
    if guard::predates_boot(&git_dir.join(lock)) {
        return Ok(Owner::BeforeBoot);
    }
    let Some(guard_path) = guard_path else { return Ok(Owner::Unknown) };
    let file = match dir.open_with(&guard_path, cap_std::fs::OpenOptions::new().read(true).write(true)) {
        Ok(file) => file.into_std(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Owner::Unknown),
        Err(e) => return Err(storage("cannot open", &guard_path, e)),
    };
    match guard::probe(&file).map_err(|e| storage("cannot probe", &guard_path, e))? {
        GuardState::Held(pid) => Ok(Owner::Live(pid)),
        // A free guard whose record names this very lock file: its holder
        // died holding it.
        GuardState::Free(left) if left.owns(&git_dir.join(lock)) => Ok(Owner::Dead(left.pid)),
        GuardState::Free(_) => Ok(Owner::Unknown),
    }
}

fn walk_locks(dir: &Dir, git_dir: &Path, relative: &Path, found: &mut Vec<Finding>) -> Result<(), Error> {
    for (name, is_dir) in list(dir, relative)? {
        let path = relative.join(&name);
        if is_dir {
            walk_locks(dir, git_dir, &path, found)?;
        } else if let Some(ref_path) = name.strip_suffix(".lock").map(|stem| relative.join(stem)) {
            let guard = Path::new("dlog/guards").join(format!("{}.guard", ref_path.display()));
            let owner = owner(dir, git_dir, &path, Some(guard))?;
            found.push(Finding::Lock { age: age(dir, &path)?, path, owner });
        }
    }
    Ok(())
}

/// Whether a loose object file holds the object its path names.
fn check_loose(bytes: &[u8], id: &str) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("the object file is empty".into());
    }
    let mut inflated = Vec::new();
    let mut decompress = gix::zlib::Decompress::new();
    let mut input = bytes;
    loop {
        let start = inflated.len();
        inflated.resize(start + 64 * 1024, 0);
        let (in_before, out_before) = (decompress.total_in(), decompress.total_out());
        let status = decompress
            .decompress(input, &mut inflated[start..], gix::zlib::FlushDecompress::None)
            .map_err(|e| format!("the object file does not inflate ({e})"))?;
        let consumed = (decompress.total_in() - in_before) as usize;
        let produced = (decompress.total_out() - out_before) as usize;
        inflated.truncate(start + produced);
        input = &input[consumed..];
        match status {
            gix::zlib::Status::StreamEnd => break,
            _ if consumed + produced == 0 => return Err("the object file is cut short".into()),
            _ => {}
        }
    }
    let nul = inflated.iter().position(|&b| b == 0).ok_or("the object has no header")?;
    let header = std::str::from_utf8(&inflated[..nul]).map_err(|_| "the object's header is not text")?;
    let (kind, len) = header.split_once(' ').ok_or("the object's header has no length")?;
    let kind = match kind {
        "blob" => ObjectKind::Blob,
        "tree" => ObjectKind::Tree,
        "commit" => ObjectKind::Commit,
        // Tags are fine objects that dlog does not write: check no further.
        "tag" => return Ok(()),
        other => return Err(format!("the object's kind {other:?} is unknown")),
    };
    let data = &inflated[nul + 1..];
    if len.parse::<usize>().ok() != Some(data.len()) {
        return Err(format!("the object's header says {len} bytes but it holds {}", data.len()));
    }
    let actual = ObjectId::for_object(kind, data).to_hex();
    if actual != id {
        return Err(format!("the object's content hashes to {actual}"));
    }
    Ok(())
}

fn walk_objects(dir: &Dir, found: &mut Vec<Finding>) -> Result<(), Error> {
    let objects = Path::new("objects");
    for (fan_out, is_dir) in list(dir, objects)? {
        if !is_dir || fan_out.len() != 2 || !fan_out.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let fan_out_path = objects.join(&fan_out);
        for (name, _) in list(dir, &fan_out_path)? {
            let path = fan_out_path.join(&name);
            if name.starts_with("tmp_obj_") {
                found.push(Finding::Temp { age: age(dir, &path)?, path });
            } else if name.len() == 38 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                let bytes = dir.read(&path).map_err(|e| storage("cannot read", &path, e))?;
                if let Err(why) = check_loose(&bytes, &format!("{fan_out}{name}")) {
                    found.push(Finding::BadObject { path, why });
                }
            }
        }
    }
    let pack = objects.join("pack");
    let names = list(dir, &pack)?;
    let has = |n: &str| names.iter().any(|(name, _)| name == n);
    for (name, _) in &names {
        let path = pack.join(name);
        if name.starts_with("tmp_") {
            found.push(Finding::Temp { age: age(dir, &path)?, path });
        } else if let Some(stem) = name.strip_suffix(".pack") {
            if !has(&format!("{stem}.idx")) {
                found.push(Finding::HalfPack { age: age(dir, &path)?, path });
            }
        } else if let Some(stem) = name.strip_suffix(".idx")
            && !has(&format!("{stem}.pack"))
        {
            found.push(Finding::HalfPack { age: age(dir, &path)?, path });
        }
    }
    Ok(())
}

/// Everything the doctor finds in the repository at `git_dir`, in path order.
pub fn examine(git_dir: &Path) -> Result<Vec<Finding>, Error> {
    let dir = open(git_dir)?;
    let mut found = Vec::new();
    walk_locks(&dir, git_dir, Path::new("refs/dlog"), &mut found)?;
    let packed = Path::new("packed-refs.lock");
    if dir.exists(packed) {
        let owner = owner(&dir, git_dir, packed, None)?;
        found.push(Finding::Lock { age: age(&dir, packed)?, path: packed.to_path_buf(), owner });
    }
    let leases = Path::new("dlog/leases");
    for (name, _) in list(&dir, leases)? {
        if let Some(space) = name.strip_suffix(".json.lock") {
            let path = leases.join(&name);
            let owner = owner(&dir, git_dir, &path, Some(leases.join(format!("{space}.guard"))))?;
            found.push(Finding::Lock { age: age(&dir, &path)?, path, owner });
        }
    }
    walk_objects(&dir, &mut found)?;
    found.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(found)
}

/// The guard of a lock file dlog takes, relative to the git directory.
fn guard_of(lock: &Path) -> Option<PathBuf> {
    let text = lock.to_str()?;
    if let Some(space) = text.strip_prefix("dlog/leases/").and_then(|n| n.strip_suffix(".json.lock")) {
        return Some(PathBuf::from(format!("dlog/leases/{space}.guard")));
    }
    let reference = text.strip_suffix(".lock").filter(|r| r.starts_with("refs/"))?;
    Some(PathBuf::from(format!("dlog/guards/{reference}.guard")))
}

/// Remove the file of one finding (as returned by [`examine`]), if it is
/// still what was found. A lock is re-examined while holding its guard, so
/// a writer that took the guard meanwhile (and perhaps made a new lock file
/// at the same path) is never undone.
pub fn remove(git_dir: &Path, finding: &Finding, older_than: Duration) -> Result<(), Error> {
    let dir = open(git_dir)?;
    let path = finding.path();
    let _held = match (finding, guard_of(path)) {
        (Finding::Lock { .. }, Some(guard_path)) => {
            let file = dir
                .open_with(&guard_path, cap_std::fs::OpenOptions::new().read(true).write(true))
                .map_err(|e| storage("cannot open", &guard_path, e))?
                .into_std();
            match guard::acquire(file, Duration::ZERO).map_err(|e| storage("cannot lock", &guard_path, e))? {
                Some(held) => {
                    let again = Finding::Lock {
                        path: path.to_path_buf(),
                        age: age(&dir, path)?,
                        owner: match owner_under(&held, git_dir, path) {
                            Some(owner) => owner,
                            None => return Ok(()), // gone meanwhile
                        },
                    };
                    if !again.removable(older_than) {
                        return Ok(());
                    }
                    Some(held)
                }
                None => return Ok(()), // a live writer holds it now
            }
        }
        _ => None,
    };
    match dir.remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(storage("cannot remove", path, e)),
        _ => Ok(()),
    }
}

/// A lock's owner as seen by the holder of its guard; none when the lock is gone.
fn owner_under(held: &guard::Guard, git_dir: &Path, lock: &Path) -> Option<Owner> {
    let full = git_dir.join(lock);
    if !full.exists() {
        return None;
    }
    Some(if guard::predates_boot(&full) {
        Owner::BeforeBoot
    } else if held.previous_holder().owns(&full) {
        Owner::Dead(held.previous_holder().pid)
    } else {
        Owner::Unknown
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loose(kind: &str, data: &[u8]) -> Vec<u8> {
        let mut raw = format!("{kind} {}\0", data.len()).into_bytes();
        raw.extend_from_slice(data);
        let mut out = vec![0u8; raw.len() + 64];
        let mut compress = gix::zlib::stream::deflate::Compress::new(gix::zlib::Compression::BEST_SPEED);
        compress.compress(&raw, &mut out, gix::zlib::stream::deflate::FlushCompress::Finish).unwrap();
        out.truncate(compress.total_out() as usize);
        out
    }

    #[test]
    fn a_loose_object_is_good_only_when_it_inflates_to_the_object_its_name_says() {
        let id = ObjectId::for_object(ObjectKind::Blob, b"hello").to_hex();
        assert_eq!(check_loose(&loose("blob", b"hello"), &id), Ok(()));
        assert_eq!(check_loose(b"", &id), Err("the object file is empty".into()));
        assert!(check_loose(b"not zlib", &id).unwrap_err().contains("does not inflate"));
        let whole = loose("blob", b"hello");
        assert!(check_loose(&whole[..whole.len() / 2], &id).is_err(), "cut short");
        assert!(check_loose(&loose("blob", b"other"), &id).unwrap_err().contains("hashes to"));
        assert!(check_loose(&loose("blob 9", b""), &id).is_err(), "a header that lies about its length");
    }
}
