//! Search: the records of a space's fold that match a query, in key order,
//! returned a page at a time. It reads the checkpoint's pages one by one
//! and keeps none of them, so a search over a large space holds one page
//! and the hits it returns, never the whole fold; a key or key prefix reads
//! only the pages that can hold it.

use serde_json::Value;

use super::Log;
use crate::canonical::to_canonical_string;
use crate::error::Error;
use crate::fold::json::{decision_value, proposal_value, retraction_value};
use crate::host::Host;
use crate::model;
use crate::pages::KeyRecord;

/// What to look for. Every filter given must match; none given matches all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// A key, or a key prefix when it ends in `*` (`adr/*`).
    pub key: Option<String>,
    /// Tags the record must all carry (case-insensitive).
    pub tags: Vec<String>,
    /// Who decided, proposed, accepted, rejected or withdrew it, or is
    /// among its `deciders` (case-insensitive).
    pub actor: Option<String>,
    /// `accepted`, the withdrawal status, or the proposal's status
    /// (case-insensitive).
    pub status: Option<String>,
    /// Words that must all occur (case-insensitive) in the key, title,
    /// choice, rationale, context, consequences or a rejected option and
    /// its why-not.
    pub text: Option<String>,
    /// Only records stamped at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Only records stamped before this time.
    pub until_ms: Option<u64>,
}

/// One matching record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Its key.
    pub key: String,
    /// `accepted`, the withdrawal status, or the proposal's status.
    pub status: String,
    /// The event id of the record.
    pub id: String,
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub at_ms: u64,
    /// The record as the fold shows it, canonical JSON.
    pub record: String,
}

/// A page of hits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The first hits after the cursor, at most the limit asked for.
    pub hits: Vec<Hit>,
    /// How many records after the cursor match in all, when asked for.
    pub total: Option<u64>,
}

impl Query {
    fn key_range(&self) -> (&str, Option<&str>) {
        match self.key.as_deref() {
            None => ("", None),
            Some(want) => match want.strip_suffix('*') {
                Some(prefix) => (prefix, Some(prefix)),
                None => (want, Some(want)),
            },
        }
    }

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

/// A key's records as (status, record), by seq: the decision in force, the
/// withdrawn one, and the proposals not accepted.
fn records_of(record: &KeyRecord) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(d) = &record.decision {
        out.push(("accepted".to_owned(), decision_value(d)));
    }
    if let Some(r) = &record.retracted {
        let value = retraction_value(r);
        out.push((value["status"].as_str().unwrap_or("retracted").to_owned(), value));
    }
    for p in record.proposals.iter().flat_map(|p| p.values()) {
        let value = proposal_value(p);
        out.push((value["status"].as_str().unwrap_or("proposed").to_owned(), value));
    }
    out.sort_by_key(|(_, v)| v["seq"].as_u64());
    out
}

impl<H: Host> Log<H> {
    /// The records of `space` at its head that match `query`, by key then
    /// seq, after `after` (a key and seq, as the last hit of the previous
    /// page gives them): at most `limit`, and, when `count` is set, how many
    /// match after `after` in all.
    pub fn search(
        &mut self,
        space: &str,
        query: &Query,
        after: Option<(&str, u64)>,
        limit: u32,
        count: bool,
    ) -> Result<Found, Error> {
        self.paged(space, |log| {
            model::validate_space(space)?;
            let (ctx, replica) = log.sync(space)?;
            let (start, prefix) = query.key_range();
            let from = match after {
                Some((key, _)) if key > start => key,
                _ => start,
            };
            let mut found = Found { hits: Vec::new(), total: count.then_some(0) };
            ctx.each_record(replica, from, |key, record| {
                if prefix.is_some_and(|p| !key.starts_with(p)) {
                    return false;
                }
                for (status, value) in records_of(record) {
                    let seq = value["seq"].as_u64().unwrap_or(0);
                    if after.is_some_and(|(k, s)| (key, seq) <= (k, s))
                        || !query.matches(key, &status, &value)
                    {
                        continue;
                    }
                    if let Some(total) = &mut found.total {
                        *total += 1;
                    }
                    if found.hits.len() < limit as usize {
                        found.hits.push(Hit {
                            key: key.to_owned(),
                            id: value["id"].as_str().unwrap_or("").to_owned(),
                            at_ms: value["at_ms"].as_u64().unwrap_or(0),
                            seq,
                            status,
                            record: to_canonical_string(&value),
                        });
                    }
                }
                // Without a count, the scan ends with the page it filled.
                found.total.is_some() || found.hits.len() < limit as usize
            })?;
            Ok(found)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (key, status, record) as a fold shows them.
    fn records() -> Vec<(&'static str, &'static str, Value)> {
        vec![
            (
                "adr/db",
                "accepted",
                json!({"id": "d1", "seq": 3, "at_ms": 3000, "actor": "Ada", "choice": "Postgres",
                "rationale": "We know it.", "title": "Use Postgres", "tags": ["storage", "db"],
                "deciders": ["Grace"], "rejected": [{"option": "MongoDB", "why": "no joins"}]}),
            ),
            (
                "ui",
                "accepted",
                json!({"id": "d2", "seq": 5, "at_ms": 5000, "actor": "Bob", "choice": "web",
                "rationale": "r", "rejected": [], "accepted": {"actor": "Dee", "id": "a1"}}),
            ),
            (
                "ci",
                "deprecated",
                json!({"id": "x1", "seq": 7, "at_ms": 7000, "actor": "Ada", "choice": "make",
                "rationale": "old", "status": "deprecated"}),
            ),
            (
                "adr/queue",
                "on hold",
                json!({"id": "p1", "seq": 9, "at_ms": 9000, "actor": "Cy", "choice": "Kafka",
                "rationale": "scale", "status": "on hold", "rejected": [], "rejection": {"actor": "Eve"}}),
            ),
        ]
    }

    fn keys(q: Query) -> Vec<&'static str> {
        records().into_iter().filter(|(k, s, r)| q.matches(k, s, r)).map(|(k, _, _)| k).collect()
    }

    #[test]
    fn each_filter_narrows_the_records_and_an_empty_query_matches_all() {
        let q = Query::default;
        assert_eq!(keys(q()).len(), 4);
        assert_eq!(keys(Query { key: Some("adr/*".into()), ..q() }), ["adr/db", "adr/queue"]);
        assert_eq!(keys(Query { key: Some("adr".into()), ..q() }), Vec::<&str>::new());
        assert_eq!(keys(Query { tags: vec!["DB".into()], ..q() }), ["adr/db"]);
        assert_eq!(keys(Query { tags: vec!["db".into(), "ops".into()], ..q() }), Vec::<&str>::new());
        assert_eq!(keys(Query { actor: Some("grace".into()), ..q() }), ["adr/db"]);
        assert_eq!(keys(Query { actor: Some("DEE".into()), ..q() }), ["ui"], "who accepted it");
        assert_eq!(keys(Query { actor: Some("eve".into()), ..q() }), ["adr/queue"], "who rejected it");
        assert_eq!(keys(Query { status: Some("deprecated".into()), ..q() }), ["ci"]);
        assert_eq!(keys(Query { status: Some("On Hold".into()), ..q() }), ["adr/queue"]);
        assert_eq!(keys(Query { status: Some("accepted".into()), ..q() }), ["adr/db", "ui"]);
        assert_eq!(keys(Query { text: Some("no JOINS".into()), ..q() }), ["adr/db"]);
        assert_eq!(keys(Query { text: Some("postgres mongodb".into()), ..q() }), ["adr/db"]);
        assert_eq!(keys(Query { text: Some("postgres kafka".into()), ..q() }), Vec::<&str>::new());
        assert_eq!(keys(Query { text: Some("adr/q".into()), ..q() }), ["adr/queue"], "the key is text too");
        assert_eq!(keys(Query { since_ms: Some(5000), until_ms: Some(9000), ..q() }), ["ui", "ci"]);
    }
}
