//! A disk that remembers what a power loss would keep, for the crash tests
//! (in the manner of redb's `crash_consistency` tests and LazyFS): every
//! operation is performed on a real directory and recorded, and for any
//! prefix of them [`CrashFs::materialize`] builds the directory a power loss
//! right after that prefix would leave.
//!
//! The model is the strict one POSIX allows, not what a journaling file
//! system happens to do: a file's contents are those of its last fsync (a
//! file never synced is empty), and a directory's entries are those of its
//! last fsync (a create, rename or removal not yet followed by a sync of its
//! directory is undone), and an entry survives only if every directory above
//! it does. What happened outside the seam during the operation (guards,
//! reads) is not kept at all.
//!
//! Test-only; public (and hidden) for the integration suite.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::{DurableFile, Fs, RealFs};

/// One recorded operation, with paths relative to the root.
#[derive(Clone, Debug)]
pub enum Op {
    /// `create_new`, giving the file handle `handle`.
    Create { path: PathBuf, handle: usize, mode: u32 },
    /// Bytes appended through a handle.
    Write { handle: usize, bytes: Vec<u8> },
    /// An fsync through a handle.
    SyncHandle { handle: usize },
    /// An fsync of a file by name.
    SyncFile { path: PathBuf },
    /// An fsync of a directory.
    SyncDir { path: PathBuf },
    /// A rename.
    Rename { from: PathBuf, to: PathBuf },
    /// A removal.
    Remove { path: PathBuf },
    /// A directory created.
    Mkdir { path: PathBuf },
}

#[derive(Clone, Debug)]
enum Entry {
    Dir,
    File { bytes: Vec<u8>, mode: u32 },
}

#[derive(Debug, Default)]
struct Record {
    recording: bool,
    /// The root as it was when recording started.
    snapshot: BTreeMap<PathBuf, Entry>,
    ops: Vec<Op>,
    handles: usize,
}

/// A [`Fs`] over the real directory `root` that records what it does there.
#[derive(Debug, Clone)]
pub struct CrashFs {
    root: PathBuf,
    record: Arc<Mutex<Record>>,
}

impl CrashFs {
    /// A recorder for operations under `root` (not recording until
    /// [`CrashFs::start`]).
    pub fn new(root: &Path) -> io::Result<CrashFs> {
        Ok(CrashFs { root: root.canonicalize()?, record: Arc::default() })
    }

    /// Take the root as it is now as the state before the operation under
    /// test, and record from here on.
    pub fn start(&self) -> io::Result<()> {
        let snapshot = read_tree(&self.root)?;
        let mut record = self.lock();
        *record = Record { recording: true, snapshot, ops: Vec::new(), handles: 0 };
        Ok(())
    }

    /// The operations recorded since [`CrashFs::start`].
    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// How many crash points the recording has: after none of its
    /// operations, after the first, …, after all of them.
    pub fn points(&self) -> usize {
        self.lock().ops.len() + 1
    }

    /// Build in `dest` (which must not exist) the root as a power loss right
    /// after the first `after` recorded operations would leave it.
    pub fn materialize(&self, after: usize, dest: &Path) -> io::Result<()> {
        let record = self.lock();
        let ops = &record.ops[..after.min(record.ops.len())];
        let tree = crash_state(&record.snapshot, ops);
        std::fs::create_dir(dest)?;
        for (path, entry) in tree {
            let at = dest.join(&path);
            match entry {
                Entry::Dir => std::fs::create_dir(&at)?,
                Entry::File { bytes, mode } => {
                    std::fs::write(&at, bytes)?;
                    #[cfg(unix)]
                    std::fs::set_permissions(&at, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
                    #[cfg(not(unix))]
                    let _ = mode;
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record `op` if recording and `path` is under the root.
    fn push(&self, make: impl FnOnce(&mut Record) -> Option<Op>) {
        let mut record = self.lock();
        if record.recording
            && let Some(op) = make(&mut record)
        {
            record.ops.push(op);
        }
    }

    fn relative(&self, path: &Path) -> Option<PathBuf> {
        let absolute =
            if path.is_absolute() { path.to_owned() } else { std::env::current_dir().ok()?.join(path) };
        // Canonical parent: the root was canonicalized, the paths given may
        // not be (a temporary directory behind a symlink).
        let (parent, name) = match (absolute.parent(), absolute.file_name()) {
            (Some(parent), Some(name)) => (parent.canonicalize().ok()?, Some(name.to_owned())),
            _ => (absolute.canonicalize().ok()?, None),
        };
        let full = match name {
            Some(name) => parent.join(name),
            None => parent,
        };
        full.strip_prefix(&self.root).ok().map(Path::to_owned)
    }
}

impl Fs for CrashFs {
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<Box<dyn DurableFile>> {
        let file = RealFs.create_new(path, mode)?;
        let relative = self.relative(path);
        let mut handle = None;
        self.push(|record| {
            let path = relative?;
            record.handles += 1;
            handle = Some(record.handles);
            Some(Op::Create { path, handle: record.handles, mode })
        });
        Ok(Box::new(CrashFile { file, handle, fs: self.clone() }))
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        RealFs.sync_file(path)?;
        let path = self.relative(path);
        self.push(|_| Some(Op::SyncFile { path: path? }));
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        RealFs.sync_dir(path)?;
        let path = self.relative(path);
        self.push(|_| Some(Op::SyncDir { path: path? }));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let relative_from = self.relative(from);
        RealFs.rename(from, to)?;
        let relative_to = self.relative(to);
        self.push(|_| Some(Op::Rename { from: relative_from?, to: relative_to? }));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let relative = self.relative(path);
        RealFs.remove_file(path)?;
        self.push(|_| Some(Op::Remove { path: relative? }));
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        RealFs.create_dir(path)?;
        let path = self.relative(path);
        self.push(|_| Some(Op::Mkdir { path: path? }));
        Ok(())
    }
}

struct CrashFile {
    file: Box<dyn DurableFile>,
    handle: Option<usize>,
    fs: CrashFs,
}

impl DurableFile for CrashFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        let handle = self.handle;
        self.fs.push(|_| Some(Op::Write { handle: handle?, bytes: bytes.to_vec() }));
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync()?;
        let handle = self.handle;
        self.fs.push(|_| Some(Op::SyncHandle { handle: handle? }));
        Ok(())
    }
}

/// Every directory and file below `root`, by relative path.
fn read_tree(root: &Path) -> io::Result<BTreeMap<PathBuf, Entry>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let relative = path.strip_prefix(root).map_err(io::Error::other)?.to_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                out.insert(relative, Entry::Dir);
                walk(root, &path, out)?;
            } else if kind.is_file() {
                let mode = file_mode(&entry.metadata()?);
                out.insert(relative, Entry::File { bytes: std::fs::read(&path)?, mode });
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

#[cfg(unix)]
fn file_mode(metadata: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777
}

#[cfg(not(unix))]
fn file_mode(_: &std::fs::Metadata) -> u32 {
    0o644
}

/// A file's data: what its handles wrote, and what the last fsync kept.
#[derive(Clone, Debug, Default)]
struct Inode {
    written: Vec<u8>,
    durable: Vec<u8>,
    mode: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File(usize),
}

/// What survives `ops` applied to `snapshot` and then a power loss.
fn crash_state(snapshot: &BTreeMap<PathBuf, Entry>, ops: &[Op]) -> BTreeMap<PathBuf, Entry> {
    let mut inodes = Vec::new();
    let mut live: BTreeMap<PathBuf, Node> = BTreeMap::new();
    for (path, entry) in snapshot {
        let node = match entry {
            Entry::Dir => Node::Dir,
            Entry::File { bytes, mode } => {
                inodes.push(Inode { written: bytes.clone(), durable: bytes.clone(), mode: *mode });
                Node::File(inodes.len() - 1)
            }
        };
        live.insert(path.clone(), node);
    }
    let mut durable = live.clone();
    let mut handles: HashMap<usize, usize> = HashMap::new();
    for op in ops {
        match op {
            Op::Create { path, handle, mode } => {
                inodes.push(Inode { mode: *mode, ..Inode::default() });
                handles.insert(*handle, inodes.len() - 1);
                live.insert(path.clone(), Node::File(inodes.len() - 1));
            }
            Op::Write { handle, bytes } => inodes[handles[handle]].written.extend_from_slice(bytes),
            Op::SyncHandle { handle } => {
                let inode = &mut inodes[handles[handle]];
                inode.durable = inode.written.clone();
            }
            Op::SyncFile { path } => {
                if let Some(Node::File(i)) = live.get(path) {
                    inodes[*i].durable = inodes[*i].written.clone();
                }
            }
            Op::SyncDir { path } => {
                durable.retain(|p, _| p.parent() != Some(path.as_path()));
                for (p, node) in &live {
                    if p.parent() == Some(path.as_path()) {
                        durable.insert(p.clone(), *node);
                    }
                }
            }
            Op::Rename { from, to } => {
                if let Some(node) = live.remove(from) {
                    live.insert(to.clone(), node);
                }
            }
            Op::Remove { path } => {
                live.remove(path);
            }
            Op::Mkdir { path } => {
                live.insert(path.clone(), Node::Dir);
            }
        }
    }
    let reachable = |path: &Path| {
        path.ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .all(|a| durable.get(a) == Some(&Node::Dir))
    };
    durable
        .iter()
        .filter(|(path, _)| reachable(path))
        .map(|(path, node)| {
            let entry = match node {
                Node::Dir => Entry::Dir,
                Node::File(i) => Entry::File { bytes: inodes[*i].durable.clone(), mode: inodes[*i].mode },
            };
            (path.clone(), entry)
        })
        .collect()
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Create { path, handle, .. } => write!(f, "create {} (#{handle})", path.display()),
            Op::Write { handle, bytes } => write!(f, "write {} bytes (#{handle})", bytes.len()),
            Op::SyncHandle { handle } => write!(f, "fsync #{handle}"),
            Op::SyncFile { path } => write!(f, "fsync {}", path.display()),
            Op::SyncDir { path } => write!(f, "fsync dir {}/", path.display()),
            Op::Rename { from, to } => write!(f, "rename {} -> {}", from.display(), to.display()),
            Op::Remove { path } => write!(f, "remove {}", path.display()),
            Op::Mkdir { path } => write!(f, "mkdir {}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_power_loss_keeps_only_what_was_synced_in_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("old"), "old").unwrap();
        let fs = CrashFs::new(&root).unwrap();
        fs.start().unwrap();
        let mut tmp = fs.create_new(&root.join("tmp"), 0o644).unwrap();
        tmp.write_all(b"new").unwrap();
        tmp.sync().unwrap();
        fs.rename(&root.join("tmp"), &root.join("old")).unwrap();
        fs.sync_dir(&root).unwrap();
        assert_eq!(fs.points(), 6);
        let read = |after: usize, name: &str| {
            let dest = dir.path().join(format!("after-{after}"));
            if !dest.exists() {
                fs.materialize(after, &dest).unwrap();
            }
            std::fs::read_to_string(dest.join(name)).ok()
        };
        for after in 0..5 {
            assert_eq!(read(after, "old").as_deref(), Some("old"), "after {after}");
            assert_eq!(read(after, "tmp"), None, "after {after}");
        }
        assert_eq!(read(5, "old").as_deref(), Some("new"));
        assert_eq!(read(5, "tmp"), None);
    }

    #[test]
    fn a_file_renamed_into_place_before_its_fsync_is_empty_after_a_power_loss() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let fs = CrashFs::new(&root).unwrap();
        fs.start().unwrap();
        fs.create_dir(&root.join("sub")).unwrap();
        let mut tmp = fs.create_new(&root.join("sub/tmp"), 0o644).unwrap();
        tmp.write_all(b"data").unwrap();
        fs.rename(&root.join("sub/tmp"), &root.join("sub/file")).unwrap();
        fs.sync_dir(&root.join("sub")).unwrap();
        let dest = dir.path().join("unreachable");
        fs.materialize(fs.points() - 1, &dest).unwrap();
        assert!(!dest.join("sub").exists(), "sub/ was never synced into root/");
        fs.sync_dir(&root).unwrap();
        let dest = dir.path().join("empty");
        fs.materialize(fs.points() - 1, &dest).unwrap();
        assert_eq!(std::fs::read(dest.join("sub/file")).unwrap(), b"");
    }
}
