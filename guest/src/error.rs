//! The errors every operation can return; they mirror the WIT `error` variant.

use std::fmt;

use crate::host::Lease;

/// The head of a space, as reported in conflicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The newest event's commit id.
    pub commit: String,
    /// Its seq: the number of events.
    pub seq: u64,
    /// The highest epoch in the log.
    pub epoch: u64,
    /// The newest event's timestamp.
    pub at_ms: u64,
}

/// Why an operation failed. User mistakes and races are errors, never panics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Malformed input; the text says what and why.
    Invalid(String),
    /// The head is not where the intent expected it.
    HeadConflict {
        /// The seq the intent expected (or was built on).
        expected_seq: u64,
        /// The actual head.
        actual: Option<Head>,
    },
    /// `supersedes` does not name the decision in force.
    DecisionConflict {
        /// The key.
        key: String,
        /// What the intent claimed is in force.
        expected: Option<String>,
        /// What is in force.
        in_force: Option<String>,
    },
    /// The id is in the log with a different intent.
    IdConflict(String),
    /// This host does not hold the lease.
    NotHolder {
        /// The space.
        space: String,
        /// The live holder, if any.
        holder: Option<Lease>,
    },
    /// A newer epoch is already in the log.
    StaleEpoch {
        /// The writer's epoch.
        epoch: u64,
        /// The log's highest epoch.
        head_epoch: u64,
    },
    /// Something named does not exist.
    NotFound(String),
    /// Stored data breaks an invariant.
    Corrupt(String),
    /// The host's storage failed.
    Storage(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid(message.into())
    }
    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(message: impl Into<String>) -> Error {
        Error::Corrupt(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(m) => write!(f, "invalid: {m}"),
            Error::HeadConflict { expected_seq, actual } => {
                let actual = actual.as_ref().map_or(0, |h| h.seq);
                write!(f, "conflict: expected the head at seq {expected_seq}, but it is at seq {actual}")
            }
            Error::DecisionConflict { key, expected, in_force } => write!(
                f,
                "conflict: key {key:?}: the intent supersedes {}, but the decision in force is {}",
                expected.as_deref().unwrap_or("nothing"),
                in_force.as_deref().unwrap_or("none")
            ),
            Error::IdConflict(id) => {
                write!(f, "conflict: intent id {id:?} is already in the log with a different intent")
            }
            Error::NotHolder { space, holder } => match holder {
                Some(l) => write!(
                    f,
                    "not holder: space {space:?} is held by {:?} (epoch {}, endpoint {})",
                    l.holder,
                    l.epoch,
                    l.endpoint.as_deref().unwrap_or("none")
                ),
                None => write!(f, "not holder: no live lease on space {space:?} is held by this writer"),
            },
            Error::StaleEpoch { epoch, head_epoch } => write!(
                f,
                "stale epoch: this writer's lease has epoch {epoch}, but the log is already at epoch {head_epoch}"
            ),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Corrupt(m) => write!(f, "corrupt log: {m}"),
            Error::Storage(m) => write!(f, "storage failure: {m}"),
        }
    }
}

impl std::error::Error for Error {}
