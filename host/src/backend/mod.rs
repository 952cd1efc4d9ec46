//! Storage backends: where a log's git objects and refs live.
//!
//! The guest never touches storage itself; the host's import functions
//! (`crate::imports`) delegate to a [`Backend`]. Two implementations share
//! this trait and must agree byte for byte: [`MemoryBackend`] (tests, the
//! in-memory host) and the gix-backed `GitBackend` (a real repository).

mod git;
mod memory;

pub use git::{GcReport, GitBackend};
pub use memory::MemoryBackend;

use std::fmt;

/// The three git object kinds a decision log is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// File contents: the canonical event JSON.
    Blob,
    /// A directory listing.
    Tree,
    /// One event in the chain, or one checkpoint.
    Commit,
}

impl ObjectKind {
    /// The name git uses in object headers.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Blob => "blob",
            ObjectKind::Tree => "tree",
            ObjectKind::Commit => "commit",
        }
    }
}

/// A SHA-1 git object id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 20]);

impl ObjectId {
    /// Git's id of an object: SHA-1 over `"<kind> <len>\0"` and the data.
    pub fn for_object(kind: ObjectKind, data: &[u8]) -> ObjectId {
        // The guest computes the same hash (and checks every id a host
        // returns); the suite asserts that both agree on every kind.
        let mut hasher = sha1_smol::Sha1::new();
        hasher.update(format!("{} {}\0", kind.as_str(), data.len()).as_bytes());
        hasher.update(data);
        ObjectId(hasher.digest().bytes())
    }

    /// Parse 40 hex digits (either case).
    pub fn from_hex(hex: &str) -> Result<ObjectId, StorageError> {
        let bytes = hex.as_bytes();
        if bytes.len() != 40 {
            return Err(StorageError::InvalidId(hex.to_owned()));
        }
        let mut id = [0u8; 20];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => id[i] = (hi * 16 + lo) as u8,
                _ => return Err(StorageError::InvalidId(hex.to_owned())),
            }
        }
        Ok(ObjectId(id))
    }

    /// 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        self.0.iter().fold(String::with_capacity(40), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// The outcome of [`Backend::compare_and_swap`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapOutcome {
    /// The ref now holds the new value, durably, with everything it reaches.
    Swapped,
    /// The ref held another value (none: it did not exist); nothing changed.
    Mismatch(Option<ObjectId>),
}

/// A storage failure. Shown to users, so messages say what failed and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An id that is not 40 hex digits.
    #[error("invalid object id {0:?}: expected 40 hexadecimal digits")]
    InvalidId(String),
    /// A ref name outside what git accepts.
    #[error("invalid ref name {0:?}")]
    InvalidRef(String),
    /// Bytes that do not parse as the object kind they claim to be.
    #[error("refusing to store a malformed {kind}: {reason}")]
    MalformedObject {
        /// The claimed kind.
        kind: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A ref is locked by another writer (or a crashed one left its lock).
    #[error(
        "ref {name} is locked by another writer ({lock}); if no dlog process is running, see `dlog doctor`"
    )]
    Locked {
        /// The ref.
        name: String,
        /// The lock file.
        lock: String,
    },
    /// Another dlog process is updating the ref and has been for longer than
    /// a writer waits; it is alive, so its lock is not broken.
    #[error("ref {name} is being updated by a live dlog process ({holder}); try again")]
    Busy {
        /// The ref.
        name: String,
        /// Who holds it, as `pid N`.
        holder: String,
    },
    /// An I/O or repository failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StorageError {
    /// Wrap any error with a description of what was being done.
    pub fn io(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StorageError {
        StorageError::Io { context: context.into(), source: source.into() }
    }
}

/// Objects and refs with compare-and-swap: everything a log stores.
///
/// Implementations are shared across threads. Reads always see the latest
/// committed state, including other processes' writes.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Store an object; return its git id. Idempotent. Need not be durable
    /// until a later successful [`Backend::compare_and_swap`] makes it reachable.
    fn write_object(&self, kind: ObjectKind, data: &[u8]) -> Result<ObjectId, StorageError>;

    /// An object's kind and data, or none when the id is unknown.
    fn read_object(&self, id: &ObjectId) -> Result<Option<(ObjectKind, Vec<u8>)>, StorageError>;

    /// A ref's value, none when it does not exist.
    fn read_ref(&self, name: &str) -> Result<Option<ObjectId>, StorageError>;

    /// Set `name` to `new` iff it holds `expected` (none: must not exist).
    /// On `Swapped`, the ref and every object it reaches are durable. A
    /// backend may buffer objects until then (the git backend does: a
    /// mismatched swap writes nothing, and a large write set becomes one pack).
    fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: &ObjectId,
    ) -> Result<SwapOutcome, StorageError>;

    /// Refs whose name starts with `prefix`, sorted by name.
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError>;

    /// Bring `space`'s head up to date before an append builds on it. Only
    /// a backend whose heads live elsewhere (a git remote) has work to do;
    /// a stale head is never unsafe (the swap refuses it), only slower.
    fn refresh(&self, _space: &str) -> Result<(), StorageError> {
        Ok(())
    }
}
