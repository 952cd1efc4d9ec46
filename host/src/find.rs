//! Search: which decisions match a key, tag, actor, status, text or time
//! range, in one space or across all of them.
//!
//! The guest does the matching (`search` in the WIT): it reads the latest
//! checkpoint's pages one at a time, keeping none, and the records changed
//! since from its replica, so a search never holds the whole fold, and one
//! by key or key prefix reads only the pages that can hold the key. No
//! query scans the events. Hits come back a batch at a time, by key then
//! seq, after a cursor. The records are the decisions in force (`accepted`), the
//! withdrawn ones (`retracted`, or the status they were withdrawn with, such
//! as `deprecated`) and the proposals not accepted (`proposed`, `draft`, a
//! team's own label, or `rejected`). Earlier revisions of a key, replaced
//! by a newer decision, are in its history (`Space::show`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// How many hits one call into the guest returns while hits are streamed:
/// enough to make the calls few, few enough that a page of them is small.
const BATCH: u32 = 500;

impl Hit {
    fn from_wit(space: &str, hit: crate::bindings::dlog::decision_log::types::Hit) -> Result<Hit, Error> {
        let record =
            serde_json::from_str(&hit.record).map_err(|e| Error::Guest(format!("search output: {e}")))?;
        Ok(Hit {
            space: space.to_owned(),
            key: hit.key,
            status: hit.status,
            id: hit.id,
            seq: hit.seq,
            at_ms: hit.at_ms,
            record,
        })
    }
}

/// The first hits of a search and how many there are in all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Found {
    /// How many records match, in every space searched.
    pub total: u64,
    /// The first of them, by space, then key, then seq.
    pub hits: Vec<Hit>,
}

impl Log {
    /// The records of `spaces` (every space when empty) that match `query`,
    /// by space, then key, then seq.
    pub fn find(&self, spaces: &[String], query: &Query) -> Result<Vec<Hit>, Error> {
        let mut hits = Vec::new();
        self.find_each(spaces, query, |hit| {
            hits.push(hit);
            Ok(true)
        })?;
        Ok(hits)
    }

    /// [`Log::find`]'s hits handed to `each` as they are found, a few
    /// hundred at a time, until it returns false: a search of a large space
    /// never holds more than a page of the checkpoint and one batch of hits.
    ///
    /// Each batch is read at the space's head when it is asked for, and the
    /// next one resumes after the last hit's key and seq. So an append made
    /// while a long search runs shows in the keys after the cursor and not
    /// in those before it: no hit is repeated or skipped, but the whole is
    /// not one snapshot. [`Log::search`] reads each space once.
    pub fn find_each(
        &self,
        spaces: &[String],
        query: &Query,
        mut each: impl FnMut(Hit) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let names = if spaces.is_empty() { self.spaces()? } else { spaces.to_vec() };
        for name in names {
            let space = self.space(&name);
            let mut after: Option<(String, u64)> = None;
            loop {
                let cursor = after.as_ref().map(|(key, seq)| (key.as_str(), *seq));
                let found = space.search_page(query, cursor, BATCH, false)?;
                let full = found.hits.len() == BATCH as usize;
                after = found.hits.last().map(|h| (h.key.clone(), h.seq));
                for hit in found.hits {
                    if !each(Hit::from_wit(&name, hit)?)? {
                        return Ok(());
                    }
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The first `limit` of [`Log::find`]'s hits, and how many there are in all.
    pub fn search(&self, spaces: &[String], query: &Query, limit: usize) -> Result<Found, Error> {
        let names = if spaces.is_empty() { self.spaces()? } else { spaces.to_vec() };
        let mut out = Found { total: 0, hits: Vec::new() };
        for name in names {
            let room = u32::try_from(limit.saturating_sub(out.hits.len())).unwrap_or(u32::MAX);
            let found = self.space(&name).search_page(query, None, room, true)?;
            out.total += found.total.unwrap_or(0);
            for hit in found.hits {
                out.hits.push(Hit::from_wit(&name, hit)?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
