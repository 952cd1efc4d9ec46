//! Guards: how a lock file left by a dead process is told from one a live
//! process holds, without a person and without waiting for it to age.
//!
//! Before a process takes a lock file (a lease's `<space>.json.lock`, a
//! ref's `<ref>.lock`), it takes an OS advisory lock (`flock`) on the lock's
//! *guard*, a small file that is never removed, and holds it until the lock
//! file is renamed into place or removed. The kernel drops an advisory lock
//! when its process dies, however it dies (`kill -9`, a panic, a power
//! loss). So whoever holds the guard and still finds the lock file knows its
//! owner is dead: it removes the file and goes on. A guard a live process
//! holds is waited for a bounded time and never broken.
//!
//! The guard file records its holder's pid while held, and is emptied when
//! the holder lets go normally (unsynced: it only matters between processes
//! of one boot). A pid found on taking a guard therefore says its previous
//! holder died holding it: that is what tells a lock file a dead dlog
//! process left from one a live `git` holds (git knows nothing of guards).
//! A lock file older than the machine's boot was left by a power loss.

use std::fs::{File, TryLockError};
use std::io::{Read as _, Seek as _};
use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant, SystemTime};

/// A held guard; dropping it empties its record and closes the file, which
/// releases the lock.
#[derive(Debug)]
pub(crate) struct Guard {
    file: File,
    /// What a previous holder that died holding the guard left in it.
    died: Record,
}

/// What a guard file says: the holder's pid and, once it has created the
/// lock file it guards, that file's inode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The holder's pid.
    pub pid: Option<u32>,
    /// The inode of the lock file the holder created, while it exists.
    pub lock_inode: Option<u64>,
}

impl Record {
    fn parse(text: &str) -> Record {
        let mut words = text.split_whitespace();
        Record {
            pid: words.next().and_then(|w| w.parse().ok()),
            lock_inode: words.next().and_then(|w| w.parse().ok()),
        }
    }

    /// Whether the lock file at `lock` is the one this record's holder
    /// created: only then was it left by that holder. A lock file another
    /// process made after it (git itself) has another inode.
    pub fn owns(&self, lock: &std::path::Path) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        match (self.lock_inode, std::fs::symlink_metadata(lock)) {
            (Some(inode), Ok(meta)) => meta.ino() == inode,
            _ => false,
        }
    }
}

impl Guard {
    /// What the previous holder left if it died holding this guard.
    pub(crate) fn previous_holder(&self) -> Record {
        self.died
    }

    /// Record that this holder has created the lock file at `lock`: from
    /// now until [`Guard::lock_gone`], a lock file with that inode is ours.
    pub(crate) fn lock_taken(&self, lock: &std::path::Path) {
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(meta) = std::fs::symlink_metadata(lock) {
            let record = format!("{} {}\n", std::process::id(), meta.ino());
            let _ = self.file.set_len(0).and_then(|()| self.file.write_all_at(record.as_bytes(), 0));
        }
    }

    /// Record that the lock file is renamed into place or removed, at once:
    /// a lock file at that path from now on belongs to someone else.
    pub(crate) fn lock_gone(&self) {
        let record = format!("{}\n", std::process::id());
        let _ = self.file.set_len(0).and_then(|()| self.file.write_all_at(record.as_bytes(), 0));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Emptied: the next holder then knows this one let go normally.
        let _ = self.file.set_len(0);
    }
}

/// What a look at a guard found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardState {
    /// Nobody holds it; what its last holder left in it (read while the
    /// probe held it, so no new holder's record).
    Free(Record),
    /// A live process holds it (its pid, if it wrote one).
    Held(Option<u32>),
}

/// Take the guard in `file`, waiting up to `wait` for a live holder. `Ok(None)`
/// when the wait ran out (the caller names the holder with [`holder`]).
pub(crate) fn acquire(file: File, wait: Duration) -> std::io::Result<Option<Guard>> {
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
    let died = record(&file);
    let pid = format!("{}\n", std::process::id());
    // Failing to record the pid costs only a message or a recovery, never
    // correctness: no reason to give up a lock we hold.
    let _ = file.set_len(0).and_then(|()| file.write_all_at(pid.as_bytes(), 0));
    Ok(Some(Guard { file, died }))
}

/// Whether a live process holds the guard in `file`, without waiting. A
/// probe that finds it free holds it for an instant and lets go.
pub fn probe(file: &File) -> std::io::Result<GuardState> {
    match file.try_lock() {
        Ok(()) => {
            let left = record(file);
            file.unlock()?;
            Ok(GuardState::Free(left))
        }
        Err(TryLockError::WouldBlock) => Ok(GuardState::Held(holder(file))),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// The pid the holder of the guard in `file` wrote, if any.
pub fn holder(file: &File) -> Option<u32> {
    record(file).pid
}

/// What the guard in `file` records.
pub fn record(file: &File) -> Record {
    let mut text = String::new();
    let mut reader = file;
    if reader.rewind().and_then(|()| reader.read_to_string(&mut text)).is_err() {
        return Record::default();
    }
    Record::parse(&text)
}

/// When the machine booted (Linux: `btime` in `/proc/stat`): a lock file
/// older than that was left by a power loss or a crash of the machine.
pub fn booted_at() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs = stat.lines().find_map(|line| line.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Whether the file at `path` was last written before the machine booted.
pub(crate) fn predates_boot(path: &std::path::Path) -> bool {
    match (std::fs::metadata(path).and_then(|m| m.modified()), booted_at()) {
        (Ok(modified), Some(boot)) => modified < boot,
        _ => false,
    }
}

/// A holder for messages: `pid 4711`, or `pid unknown`.
pub(crate) fn describe(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".into(), |pid| format!("pid {pid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard_file(dir: &std::path::Path) -> File {
        File::options().read(true).write(true).create(true).truncate(false).open(dir.join("g.guard")).unwrap()
    }

    #[test]
    fn a_guard_is_exclusive_while_held_and_free_and_empty_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(guard_file(dir.path()), Duration::ZERO).unwrap().expect("free at first");
        assert_eq!(held.previous_holder(), Record::default());
        assert_eq!(probe(&guard_file(dir.path())).unwrap(), GuardState::Held(Some(std::process::id())));
        assert!(acquire(guard_file(dir.path()), Duration::from_millis(20)).unwrap().is_none());
        drop(held);
        assert!(matches!(probe(&guard_file(dir.path())).unwrap(), GuardState::Free(_)));
        let again = acquire(guard_file(dir.path()), Duration::ZERO).unwrap().expect("free again");
        assert_eq!(again.previous_holder().pid, None, "a holder that let go normally left no pid");
    }

    #[test]
    fn a_dead_holders_record_owns_only_the_lock_file_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.lock");
        let held = acquire(guard_file(dir.path()), Duration::ZERO).unwrap().unwrap();
        std::fs::write(&lock, "ours").unwrap();
        held.lock_taken(&lock);
        // Die holding it: the record is left as it is (no Drop runs).
        std::mem::forget(held);
        let left = record(&guard_file(dir.path()));
        assert_eq!(left.pid, Some(std::process::id()));
        assert!(left.owns(&lock), "the lock file it created");
        // Another process's lock file at the same path has another inode.
        let moved = dir.path().join("moved");
        std::fs::rename(&lock, &moved).unwrap();
        std::fs::write(&lock, "git's").unwrap();
        assert!(!left.owns(&lock), "a lock made after it is not its own");
    }

    #[test]
    fn the_machine_booted_in_the_past() {
        let boot = booted_at().expect("/proc/stat has btime");
        assert!(boot < SystemTime::now());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(!predates_boot(&file), "a file written now is younger than the boot");
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(boot - Duration::from_secs(60))
            .unwrap();
        assert!(predates_boot(&file));
    }

    #[test]
    fn a_guard_held_by_a_process_that_was_killed_is_free_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.guard");
        // One process (the shell, replaced by sleep) takes flock(1) on fd 9
        // and holds it; it is killed without letting go itself.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exec 9<>\"$0\"; echo 4242 >&9; flock 9; exec sleep 60"])
            .arg(&path)
            .spawn()
            .expect("sh");
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(probe(&guard_file(dir.path())).unwrap(), GuardState::Free(_)) {
            assert!(Instant::now() < deadline, "the child never took the guard");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(probe(&guard_file(dir.path())).unwrap(), GuardState::Held(Some(4242)));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            matches!(probe(&guard_file(dir.path())).unwrap(), GuardState::Free(_)),
            "the kernel let go with the process"
        );
        let next = acquire(guard_file(dir.path()), Duration::ZERO).unwrap().expect("free");
        assert_eq!(next.previous_holder().pid, Some(4242), "the dead holder's pid tells it died holding");
    }
}
