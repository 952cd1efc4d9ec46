//! Errors of the library API and the CLI.

use crate::bindings::dlog::decision_log::types::{self as wit, Head, Lease};

/// Why an operation failed. Everything but [`Error::Guest`] is the guest's
/// own verdict (the WIT `error` variant); `Guest` is a trap: a bug.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input; the text says what and why.
    #[error("invalid: {0}")]
    Invalid(String),
    /// `expect_seq` did not match, or another writer moved the head first.
    #[error("conflict: expected the head at seq {expected_seq}, but it is at seq {}", actual.as_ref().map_or(0, |h| h.seq))]
    HeadConflict {
        /// What the intent expected.
        expected_seq: u64,
        /// The actual head.
        actual: Option<Head>,
    },
    /// `supersedes` does not name the decision in force.
    #[error("conflict: key {key:?}: the intent supersedes {}, but the decision in force is {}",
        expected.as_deref().unwrap_or("nothing"), in_force.as_deref().unwrap_or("none"))]
    DecisionConflict {
        /// The key.
        key: String,
        /// What the intent claimed is in force.
        expected: Option<String>,
        /// What is in force.
        in_force: Option<String>,
    },
    /// The id is already in the log with a different intent.
    #[error("conflict: intent id {0:?} is already in the log with a different intent")]
    IdConflict(String),
    /// This host does not hold the lease.
    #[error("not holder: {}", not_holder_text(space, holder.as_ref()))]
    NotHolder {
        /// The space.
        space: String,
        /// The live holder, if any.
        holder: Option<Lease>,
    },
    /// A newer holder has fenced this writer out.
    #[error(
        "stale epoch: this writer's lease has epoch {epoch}, but the log is already at epoch {head_epoch}"
    )]
    StaleEpoch {
        /// The writer's epoch.
        epoch: u64,
        /// The log's epoch.
        head_epoch: u64,
    },
    /// Something named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored data breaks the log's invariants.
    #[error("corrupt log: {0}")]
    Corrupt(String),
    /// Storage failed.
    #[error("storage failure: {0}")]
    Storage(String),
    /// Another writer kept the space's lease for longer than we would wait.
    #[error("timed out after {} waiting for {} (epoch {}) to release space {space:?}", humantime::format_duration(*waited), holder.holder, holder.epoch)]
    Timeout {
        /// The space.
        space: String,
        /// Who held it.
        holder: Lease,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// The component trapped or could not be instantiated: a bug, not a user error.
    #[error("the decision-log component failed: {0}")]
    Guest(String),
}

fn not_holder_text(space: &str, holder: Option<&Lease>) -> String {
    match holder {
        Some(l) => format!(
            "space {space:?} is held by {:?} (epoch {}, endpoint {})",
            l.holder,
            l.epoch,
            l.endpoint.as_deref().unwrap_or("none")
        ),
        None => format!("no live lease on space {space:?} is held by this writer"),
    }
}

impl Error {
    /// A stable, kebab-case name for scripts (`--json` output).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid",
            Error::HeadConflict { .. } => "head-conflict",
            Error::DecisionConflict { .. } => "decision-conflict",
            Error::IdConflict(_) => "id-conflict",
            Error::NotHolder { .. } => "not-holder",
            Error::StaleEpoch { .. } => "stale-epoch",
            Error::NotFound(_) => "not-found",
            Error::Corrupt(_) => "corrupt",
            Error::Storage(_) => "storage",
            Error::Timeout { .. } => "timeout",
            Error::Guest(_) => "guest",
        }
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Error {
        match e {
            wit::Error::Invalid(m) => Error::Invalid(m),
            wit::Error::HeadConflict(c) => {
                Error::HeadConflict { expected_seq: c.expected_seq, actual: c.actual }
            }
            wit::Error::DecisionConflict(c) => {
                Error::DecisionConflict { key: c.key, expected: c.expected, in_force: c.in_force }
            }
            wit::Error::IdConflict(id) => Error::IdConflict(id),
            wit::Error::NotHolder(n) => Error::NotHolder { space: n.space, holder: n.holder },
            wit::Error::StaleEpoch(s) => Error::StaleEpoch { epoch: s.epoch, head_epoch: s.head_epoch },
            wit::Error::NotFound(m) => Error::NotFound(m),
            wit::Error::Corrupt(m) => Error::Corrupt(m),
            wit::Error::Storage(m) => Error::Storage(m),
        }
    }
}

impl From<crate::backend::StorageError> for Error {
    fn from(e: crate::backend::StorageError) -> Error {
        Error::Storage(e.to_string())
    }
}
