//! Search: which decisions match a key, tag, actor, status, text or time
//! range, in one space or across all of them.
//!
//! It reads each space's fold, not its events: the fold at the head starts
//! from the latest checkpoint and replays only what came after, so a search
//! costs about one fold and a pass over the records in it, however long the
//! log is. The records are the decisions in force (`accepted`), the
//! withdrawn ones (`retracted`, or the status they were withdrawn with, such
//! as `deprecated`) and the proposals not accepted (`proposed`, `draft`, a
//! team's own label, or `rejected`). Earlier revisions of a key, replaced
//! by a newer decision, are in its history (`Space::show`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Log};

/// What to look for. Every filter given must match; none given matches all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Query {
    /// A key, or a key prefix when it ends in `*` (`adr/*`).
    pub key: Option<String>,
    /// Tags the record must all carry.
    pub tags: Vec<String>,
    /// Who decided, proposed or withdrew it, or is among its `deciders`
    /// (case-insensitive).
    pub actor: Option<String>,
    /// `accepted`, `retracted`, `deprecated`, `proposed`, `draft`,
    /// `rejected` or a team's own status (case-insensitive).
    pub status: Option<String>,
    /// Words that must all occur (case-insensitive) in the title, choice,
    /// rationale, context, consequences or a rejected option and its why-not.
    pub text: Option<String>,
    /// Only records stamped at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Only records stamped before this time (ms since the epoch).
    pub until_ms: Option<u64>,
}

/// One matching record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hit {
    /// Its space.
    pub space: String,
    /// Its key.
    pub key: String,
    /// `accepted`, the withdrawal status, or the proposal's status.
    pub status: String,
    /// The event id of the record (the decision, retraction or proposal).
    pub id: String,
    /// Its seq.
    pub seq: u64,
    /// Its time, in ms since the epoch.
    pub at_ms: u64,
    /// The record as the fold shows it.
    pub record: Value,
}

impl Query {
    fn key_matches(&self, key: &str) -> bool {
        match self.key.as_deref() {
            None => true,
            Some(want) => match want.strip_suffix('*') {
                Some(prefix) => key.starts_with(prefix),
                None => key == want,
            },
        }
    }

    fn matches(&self, key: &str, status: &str, record: &Value) -> bool {
        let text = |name: &str| record[name].as_str().unwrap_or("");
        let at_ms = record["at_ms"].as_u64().unwrap_or(0);
        if !self.key_matches(key)
            || self.status.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case(status))
            || self.since_ms.is_some_and(|t| at_ms < t)
            || self.until_ms.is_some_and(|t| at_ms >= t)
        {
            return false;
        }
        let strings = |name: &str| -> Vec<&str> {
            record[name].as_array().into_iter().flatten().filter_map(Value::as_str).collect()
        };
        let tags = strings("tags");
        if !self.tags.iter().all(|t| tags.iter().any(|have| have.eq_ignore_ascii_case(t))) {
            return false;
        }
        if let Some(actor) = &self.actor {
            let same = |name: &str| name.eq_ignore_ascii_case(actor);
            let closer =
                ["accepted", "rejection"].iter().any(|c| record[c]["actor"].as_str().is_some_and(same));
            if !(same(text("actor")) || strings("deciders").into_iter().any(same) || closer) {
                return false;
            }
        }
        if let Some(words) = &self.text {
            let mut haystack = String::new();
            for name in ["key", "title", "choice", "rationale", "context", "consequences"] {
                haystack.push_str(text(name));
                haystack.push('\n');
            }
            haystack.push_str(key);
            for r in record["rejected"].as_array().into_iter().flatten() {
                haystack.push_str(r["option"].as_str().unwrap_or(""));
                haystack.push('\n');
                haystack.push_str(r["why"].as_str().unwrap_or(""));
                haystack.push('\n');
            }
            let haystack = haystack.to_lowercase();
            if !words.to_lowercase().split_whitespace().all(|w| haystack.contains(w)) {
                return false;
            }
        }
        true
    }
}

/// The records of one fold, each with its key and status.
fn records(fold: &Value) -> Vec<(String, String, &Value)> {
    let section = |name: &str| fold[name].as_object().into_iter().flatten();
    let mut out = Vec::new();
    for (key, d) in section("decisions") {
        out.push((key.clone(), "accepted".to_owned(), d));
    }
    for (key, r) in section("retracted") {
        out.push((key.clone(), r["status"].as_str().unwrap_or("retracted").to_owned(), r));
    }
    for (key, by_id) in section("proposals") {
        for p in by_id.as_object().into_iter().flat_map(Map::values) {
            out.push((key.clone(), p["status"].as_str().unwrap_or("proposed").to_owned(), p));
        }
    }
    out
}

impl Log {
    /// The records of `spaces` (every space when empty) that match `query`,
    /// by space, then key, then seq.
    pub fn find(&self, spaces: &[String], query: &Query) -> Result<Vec<Hit>, Error> {
        let names = if spaces.is_empty() { self.spaces()? } else { spaces.to_vec() };
        let mut hits = Vec::new();
        for name in names {
            let fold: Value = serde_json::from_str(&self.space(&name).fold()?)
                .map_err(|e| Error::Guest(format!("fold output: {e}")))?;
            let mut found: Vec<Hit> = records(&fold)
                .into_iter()
                .filter(|(key, status, record)| query.matches(key, status, record))
                .map(|(key, status, record)| Hit {
                    space: name.clone(),
                    key,
                    status,
                    id: record["id"].as_str().unwrap_or("").to_owned(),
                    seq: record["seq"].as_u64().unwrap_or(0),
                    at_ms: record["at_ms"].as_u64().unwrap_or(0),
                    record: record.clone(),
                })
                .collect();
            found.sort_by(|a, b| (&a.key, a.seq).cmp(&(&b.key, b.seq)));
            hits.extend(found);
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fold() -> Value {
        json!({
            "decisions": {
                "adr/db": {"id": "d1", "seq": 3, "at_ms": 3000, "actor": "Ada", "choice": "Postgres",
                    "rationale": "We know it.", "title": "Use Postgres", "tags": ["storage", "db"],
                    "deciders": ["Grace"], "rejected": [{"option": "MongoDB", "why": "no joins"}]},
                "ui": {"id": "d2", "seq": 5, "at_ms": 5000, "actor": "Bob", "choice": "web", "rationale": "r", "rejected": []},
            },
            "retracted": {"ci": {"id": "x1", "seq": 7, "at_ms": 7000, "actor": "Ada", "choice": "make",
                "rationale": "old", "status": "deprecated"}},
            "proposals": {"adr/queue": {"p1": {"id": "p1", "seq": 9, "at_ms": 9000, "actor": "Cy",
                "choice": "Kafka", "rationale": "scale", "status": "on hold", "rejected": []}}},
        })
    }

    fn keys(q: Query) -> Vec<String> {
        let f = fold();
        records(&f).into_iter().filter(|(k, s, r)| q.matches(k, s, r)).map(|(k, _, _)| k).collect()
    }

    #[test]
    fn each_filter_narrows_the_records_and_an_empty_query_matches_all() {
        assert_eq!(keys(Query::default()).len(), 4);
        assert_eq!(keys(Query { key: Some("adr/*".into()), ..Query::default() }), ["adr/db", "adr/queue"]);
        assert_eq!(keys(Query { key: Some("adr".into()), ..Query::default() }), Vec::<String>::new());
        assert_eq!(keys(Query { tags: vec!["DB".into()], ..Query::default() }), ["adr/db"]);
        assert_eq!(keys(Query { actor: Some("grace".into()), ..Query::default() }), ["adr/db"]);
        assert_eq!(keys(Query { status: Some("deprecated".into()), ..Query::default() }), ["ci"]);
        assert_eq!(keys(Query { status: Some("On Hold".into()), ..Query::default() }), ["adr/queue"]);
        assert_eq!(keys(Query { status: Some("accepted".into()), ..Query::default() }), ["adr/db", "ui"]);
        assert_eq!(keys(Query { text: Some("no JOINS".into()), ..Query::default() }), ["adr/db"]);
        assert_eq!(keys(Query { text: Some("postgres mongodb".into()), ..Query::default() }), ["adr/db"]);
        assert_eq!(
            keys(Query { text: Some("postgres kafka".into()), ..Query::default() }),
            Vec::<String>::new()
        );
        let window = Query { since_ms: Some(5000), until_ms: Some(9000), ..Query::default() };
        assert_eq!(keys(window), ["ui", "ci"]);
    }
}
