//! What the guest needs from its host: the WIT imports as a plain trait, so
//! the log logic runs natively in unit tests over a fake and in the
//! component over the real imports.

/// The three git object kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// File contents.
    Blob,
    /// A directory listing.
    Tree,
    /// A commit.
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

/// A per-space lease as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it.
    pub holder: String,
    /// The fencing token.
    pub epoch: u64,
    /// When it lapses unless renewed.
    pub expires_at_ms: u64,
    /// Where the holder takes forwarded intents.
    pub endpoint: Option<String>,
}

/// The outcome of a ref compare-and-swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Swap {
    /// The ref holds the new value, durably.
    Swapped,
    /// The ref holds this other value; nothing changed.
    Mismatch(Option<String>),
}

/// The host's imports. Errors are storage failures described by the host.
pub trait Host {
    /// Store an object, returning its id.
    fn write_object(&self, kind: ObjectKind, data: &[u8]) -> Result<String, String>;
    /// Read an object.
    fn read_object(&self, id: &str) -> Result<Option<(ObjectKind, Vec<u8>)>, String>;
    /// Read a ref.
    fn read_ref(&self, name: &str) -> Result<Option<String>, String>;
    /// Compare-and-swap a ref.
    fn compare_and_swap(&self, name: &str, expected: Option<&str>, new: &str) -> Result<Swap, String>;
    /// List refs under a prefix, sorted.
    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, String)>, String>;
    /// The identity this host appends as.
    fn identity(&self) -> String;
    /// The current lease on a space.
    fn lease(&self, space: &str) -> Option<Lease>;
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}
