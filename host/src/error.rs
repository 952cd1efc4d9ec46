//! Errors of the library API and the CLI.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::{Head, Lease};

/// Why an operation failed. Everything but [`Error::Timeout`] and
/// [`Error::Guest`] is the component's own verdict; `Guest` is a trap: a bug.
///
/// Errors cross the forwarding protocol as themselves (serde, tagged by
/// [`Error::kind`]), so a forwarded append fails exactly as a local one.
#[derive(Clone, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
#[non_exhaustive]
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
    /// A space's history here and on its git remote each have events the
    /// other lacks, so neither can simply be moved to the other.
    #[error(
        "conflict: space {space:?} has diverged: this repository's head {here} and remote {remote:?}'s \
         head {there} each have events the other lacks; export one (`dlog export`) and import it into \
         the other, or bind a fresh repository (`git clone`)"
    )]
    Diverged {
        /// The space.
        space: String,
        /// The git remote's name.
        remote: String,
        /// This repository's head of the space.
        here: String,
        /// The remote's head of the space.
        there: String,
    },
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
    #[error("timed out after {} waiting for {} (epoch {}) to release space {space:?}", seconds(*waited), holder.holder, holder.epoch)]
    Timeout {
        /// The space.
        space: String,
        /// Who held it.
        holder: Lease,
        /// How long we waited.
        #[serde(with = "millis", rename = "waited_ms")]
        waited: Duration,
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

/// A wait as people say it: `10s`, `2.5s`, `150ms`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.subsec_millis())
    } else {
        format!("{}s", format!("{:.3}", d.as_secs_f64()).trim_end_matches('0'))
    }
}

/// Durations on the wire as whole milliseconds, as every other time there.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Error {
    /// A stable, kebab-case name for scripts (`--json` output, the wire).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid",
            Error::HeadConflict { .. } => "head-conflict",
            Error::DecisionConflict { .. } => "decision-conflict",
            Error::IdConflict(_) => "id-conflict",
            Error::Diverged { .. } => "diverged",
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

impl From<crate::backend::StorageError> for Error {
    fn from(e: crate::backend::StorageError) -> Error {
        Error::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_as_people_say_them() {
        assert_eq!(seconds(Duration::from_secs(10)), "10s");
        assert_eq!(seconds(Duration::from_millis(150)), "150ms");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5s");
    }

    #[test]
    fn every_error_kind_is_its_serde_tag() {
        let lease = Lease { holder: "h".into(), epoch: 2, expires_at_ms: 9, endpoint: None };
        let errors = [
            Error::Invalid("x".into()),
            Error::HeadConflict { expected_seq: 1, actual: None },
            Error::DecisionConflict { key: "k".into(), expected: None, in_force: Some("d".into()) },
            Error::IdConflict("i".into()),
            Error::Diverged { space: "s".into(), remote: "o".into(), here: "a".into(), there: "b".into() },
            Error::NotHolder { space: "s".into(), holder: Some(lease.clone()) },
            Error::StaleEpoch { epoch: 1, head_epoch: 2 },
            Error::NotFound("n".into()),
            Error::Corrupt("c".into()),
            Error::Storage("s".into()),
            Error::Timeout { space: "s".into(), holder: lease, waited: Duration::from_millis(1500) },
            Error::Guest("g".into()),
        ];
        for error in errors {
            let json = serde_json::to_value(&error).unwrap();
            assert_eq!(json["kind"], error.kind(), "{json}");
            let back: Error = serde_json::from_value(json).unwrap();
            assert_eq!(back.to_string(), error.to_string());
        }
    }
}
