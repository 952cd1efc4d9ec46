//! Reading one decision: the decision in force (or withdrawn), with every
//! event that touched its key. Shared by `dlog show`, the HTTP API and MCP,
//! so all three answer the same question the same way.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Event, Space};

/// One key of a space: what is in force, what was withdrawn, and its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Shown {
    /// The space.
    pub space: String,
    /// The decision key.
    pub key: String,
    /// The decision in force, as the fold shows it; none when there is none.
    pub decision: Option<Value>,
    /// The withdrawn decision, as the fold shows it; none unless the key's
    /// latest event withdrew it.
    pub retracted: Option<Value>,
    /// The proposals for the key not accepted (open or rejected), oldest
    /// first, as the fold shows them.
    #[serde(default)]
    pub proposals: Vec<Value>,
    /// Every event about the key, oldest first.
    pub history: Vec<Event>,
}

impl Space {
    /// One decision with why, why not and its history.
    /// [`Error::NotFound`] when the key was never written in this space.
    pub fn show(&self, key: &str) -> Result<Shown, Error> {
        // The guest reads the key's checkpoint page and its events only, so
        // this costs the same in a space of ten keys or of a million.
        let Some((record, history)) = self.show_key(key)? else {
            return Err(Error::NotFound(format!("key {key:?} was never decided in space {:?}", self.name())));
        };
        let record: Value =
            serde_json::from_str(&record).map_err(|e| Error::Guest(format!("show output: {e}")))?;
        let mut proposals: Vec<Value> =
            record["proposals"].as_object().map(|p| p.values().cloned().collect()).unwrap_or_default();
        proposals.sort_by_key(|p| p["seq"].as_u64());
        Ok(Shown {
            space: self.name().to_owned(),
            key: key.to_owned(),
            decision: record.get("decision").cloned(),
            retracted: record.get("retracted").cloned(),
            proposals,
            history,
        })
    }
}

impl Shown {
    /// A key as a fold shows it, with the history given (for callers that
    /// read the log once for every key, as `dlog site` does).
    pub fn from_fold(space: &str, key: &str, fold: &Value, history: Vec<Event>) -> Shown {
        let pick = |section: &str| fold[section].get(key).cloned();
        let mut proposals: Vec<Value> =
            fold["proposals"][key].as_object().map(|p| p.values().cloned().collect()).unwrap_or_default();
        proposals.sort_by_key(|p| p["seq"].as_u64());
        Shown {
            space: space.to_owned(),
            key: key.to_owned(),
            decision: pick("decisions"),
            retracted: pick("retracted"),
            proposals,
            history,
        }
    }
}
