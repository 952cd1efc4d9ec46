//! Finding (and, when asked, clearing) lock files that a killed writer left
//! behind. A lock held by a live writer looks the same as a stale one, so
//! nothing is removed unless the user asks and the lock is old enough that no
//! writer could still hold it (gix holds a ref lock for milliseconds and waits
//! at most 2 s for one).
//!
//! Files are reached through a cap-std directory handle on the repository:
//! the doctor can touch nothing outside the repository it was given.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::Error;

/// A lock file found in the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockFile {
    /// Its path, relative to the git directory.
    pub path: PathBuf,
    /// How long ago it was last modified.
    pub age: Duration,
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

fn walk(dir: &Dir, relative: &Path, found: &mut Vec<LockFile>) -> Result<(), Error> {
    let entries = match dir.read_dir(relative) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(storage("cannot list", relative, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| storage("cannot list", relative, e))?;
        let path = relative.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| storage("cannot inspect", &path, e))?;
        if kind.is_dir() {
            walk(dir, &path, found)?;
        } else if path.extension().is_some_and(|x| x == "lock") {
            found.push(LockFile { age: age(dir, &path)?, path });
        }
    }
    Ok(())
}

/// Every lock file that can block a decision-log append: ref locks under
/// `refs/dlog/` and `packed-refs.lock`.
pub fn find_locks(git_dir: &Path) -> Result<Vec<LockFile>, Error> {
    let dir = open(git_dir)?;
    let mut found = Vec::new();
    walk(&dir, Path::new("refs/dlog"), &mut found)?;
    let packed = Path::new("packed-refs.lock");
    if dir.exists(packed) {
        found.push(LockFile { age: age(&dir, packed)?, path: packed.to_path_buf() });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Remove one lock file (a path as returned by [`find_locks`]).
pub fn remove_lock(git_dir: &Path, lock: &LockFile) -> Result<(), Error> {
    open(git_dir)?.remove_file(&lock.path).map_err(|e| storage("cannot remove", &lock.path, e))
}
