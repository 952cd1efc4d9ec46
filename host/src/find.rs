//! Search: which decisions match a key, tag, actor, status, text or time
//! range, in one space or across all of them.
//!
//! It reads each space's fold, not its events: the fold at the head starts
//! from the latest checkpoint and replays only what came after, so a search
//! costs about one fold and a pass over the records in it, however long the
//! log is. A search by key or key prefix reads only the checkpoint pages
//! that can hold the key. The records are the decisions in force (`accepted`), the
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

/// A time as ms since the Unix epoch: an RFC 3339 date-time
/// (`2024-01-31T12:00:00Z`, `…T12:00:00.250+02:00`; a space for the `T`
/// and no zone, meaning UTC, are accepted too) or a date (`2024-01-31`,
/// its midnight UTC). Parsed here because the library has no date crate
/// and needs nothing more.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a date (2024-01-31) or an RFC 3339 time (2024-01-31T12:00:00Z)");
    let t = text.trim();
    let num = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let (date, rest) = t.split_at(t.len().min(10));
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    if (y.len(), m.len(), d.len()) != (4, 2, 2) {
        return Err(bad());
    }
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = 0i64;
    let mut offset_min = 0i64;
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
        let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let hms: Vec<&str> = hms.split(':').collect();
        let [h, mi, sec] = hms.as_slice() else { return Err(bad()) };
        let (h, mi, sec) = (num(h)?, num(mi)?, num(sec)?);
        if h > 23 || mi > 59 || sec > 60 {
            return Err(bad());
        }
        let frac_ms = if frac.is_empty() {
            0
        } else {
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            num(&digits)?
        };
        ms = ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms;
        if let Some(z) = zone.strip_prefix(['+', '-']) {
            let (zh, zm) = z.split_once(':').ok_or_else(bad)?;
            offset_min = (num(zh)? * 60 + num(zm)?) * if zone.starts_with('-') { -1 } else { 1 };
        } else if !(zone.is_empty() || zone.eq_ignore_ascii_case("z")) {
            return Err(bad());
        }
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let total = days * 86_400_000 + ms - offset_min * 60_000;
    u64::try_from(total).map_err(|_| format!("{text:?} is before 1970"))
}

/// Milliseconds since 1970 as a UTC calendar date `YYYY-MM-DD` (Howard
/// Hinnant's days-to-civil; the inverse of [`parse_time`]'s date part).
pub fn civil_date(at_ms: u64) -> String {
    let days = (at_ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}")
}

/// The records of one fold, each with its key and status.
/// The fold's records as (key, status, record), taken out of it: a fold of
/// a large space is hundreds of MB as a `Value`, so hits move their records
/// out rather than copy them.
fn records(mut fold: Value) -> Vec<(String, String, Value)> {
    let mut section = |name: &str| match fold[name].take() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let (decisions, retracted, proposals) = (section("decisions"), section("retracted"), section("proposals"));
    let mut out = Vec::new();
    for (key, d) in decisions {
        out.push((key, "accepted".to_owned(), d));
    }
    for (key, r) in retracted {
        let status = r["status"].as_str().unwrap_or("retracted").to_owned();
        out.push((key, status, r));
    }
    for (key, by_id) in proposals {
        let Value::Object(by_id) = by_id else { continue };
        for (_, p) in by_id {
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
            // A key or key prefix narrows the fold to the checkpoint pages
            // that can hold it; other filters need every record.
            let space = self.space(&name);
            let fold = match query.key.as_deref() {
                Some(key) => space.fold_prefix(key.strip_suffix('*').unwrap_or(key))?,
                None => space.fold()?,
            };
            let fold: Value =
                serde_json::from_str(&fold).map_err(|e| Error::Guest(format!("fold output: {e}")))?;
            let mut found: Vec<Hit> = records(fold)
                .into_iter()
                .filter(|(key, status, record)| query.matches(key, status, record))
                .map(|(key, status, record)| Hit {
                    space: name.clone(),
                    key,
                    status,
                    id: record["id"].as_str().unwrap_or("").to_owned(),
                    seq: record["seq"].as_u64().unwrap_or(0),
                    at_ms: record["at_ms"].as_u64().unwrap_or(0),
                    record,
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
        records(f).into_iter().filter(|(k, s, r)| q.matches(k, s, r)).map(|(k, _, _)| k).collect()
    }

    #[test]
    fn times_are_read_as_dates_and_rfc_3339_in_utc_or_with_an_offset() {
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14 22:13:20.5"), Ok(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-15T00:13:20+02:00"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2000-03-01"), Ok(951_868_800_000));
        for ms in [0, 951_782_400_000, 1_700_000_000_000] {
            assert_eq!(parse_time(&civil_date(ms)), Ok(ms - ms % 86_400_000), "{ms}");
        }
        for bad in
            ["yesterday", "2024-13-01", "2024-01-01T25:00:00Z", "2024-1-1", "1969-12-31", "2024-01-01T10:00Q"]
        {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
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
