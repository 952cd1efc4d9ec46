//! Paged records: a checkpoint's fold split into key-sorted pages, so that
//! one key is found by reading one small page instead of the whole state.
//!
//! A paged checkpoint's tree holds, instead of one `state.json`:
//!
//! ```text
//! head.json          the fold with empty record maps: space, seq, head,
//!                    authority, counts
//! pages/fences       a canonical JSON array: the last key of every page
//! pages/p000000 …    the pages, in key order
//! ```
//!
//! A page is a canonical JSON object shaped like a fold's records:
//! `{"decisions":{…},"history":{key:[seq…]},"proposals":{…}?,"retracted":{…}}`
//! for a run of consecutive keys; `history` names every key of the page
//! (every key has at least one event) with the seqs of the events that
//! touched it, so a key's history needs no scan of the log.
//!
//! Where pages end depends only on the keys: a page ends after every key
//! whose [`ends_page`] hash says so (one key in [`PAGE_KEYS`] on average),
//! as content-defined chunking does. So the pages of a state are the same
//! whichever history of checkpoints led to it, every host writes the same
//! objects, a new checkpoint rewrites only the pages whose keys changed
//! (the others keep their blob ids), and `verify` rebuilds them from a
//! replay and compares tree ids.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::canonical::to_canonical_string;
use crate::checkpoint::{number, parse_records};
use crate::fold::json::{decision_value, proposal_value, retraction_value};
use crate::fold::{Decision, Proposal, Retraction, State};
use crate::json::parse_strict;

/// The average number of keys per page.
pub const PAGE_KEYS: u64 = 32;
/// The largest page or fences blob a reader accepts.
pub const MAX_PAGE_BYTES: usize = 1 << 30;
/// The name of the fences blob in a `pages/` tree.
pub const FENCES: &str = "fences";

/// Whether a page ends after `key`: a property of the key alone.
pub fn ends_page(key: &str) -> bool {
    let digest = sha1_smol::Sha1::from(key.as_bytes()).digest().bytes();
    u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ])
    .is_multiple_of(PAGE_KEYS)
}

/// The name of page `i` in a `pages/` tree.
pub fn page_name(i: usize) -> String {
    format!("p{i:06}")
}

/// Everything the fold knows of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRecord {
    /// The decision in force.
    pub decision: Option<Decision>,
    /// The withdrawn decision.
    pub retracted: Option<Retraction>,
    /// Proposals not accepted, by id.
    pub proposals: Option<BTreeMap<String, Proposal>>,
    /// Seqs of the events that touched the key, oldest first.
    pub history: Vec<u64>,
}

impl KeyRecord {
    /// `key`'s record in `state`; none when the state knows nothing of it.
    pub fn of(state: &State, key: &str) -> Option<KeyRecord> {
        let record = KeyRecord {
            decision: state.decisions.get(key).cloned(),
            retracted: state.retracted.get(key).cloned(),
            proposals: state.proposals.get(key).cloned(),
            history: state.history.get(key).cloned().unwrap_or_default(),
        };
        (record != KeyRecord::default()).then_some(record)
    }

    /// Put this record of `key` into `state`, replacing what it held.
    pub fn install(self, state: &mut State, key: &str) {
        fn set<T>(map: &mut BTreeMap<String, T>, key: &str, value: Option<T>) {
            match value {
                Some(v) => map.insert(key.to_owned(), v),
                None => map.remove(key),
            };
        }
        set(&mut state.decisions, key, self.decision);
        set(&mut state.retracted, key, self.retracted);
        set(&mut state.proposals, key, self.proposals);
        set(&mut state.history, key, (!self.history.is_empty()).then_some(self.history));
    }
}

/// A page's bytes: canonical JSON of its records.
pub fn encode_page(records: &BTreeMap<String, KeyRecord>) -> Vec<u8> {
    let (mut decisions, mut retracted, mut proposals, mut history) =
        (Map::new(), Map::new(), Map::new(), Map::new());
    for (key, r) in records {
        if let Some(d) = &r.decision {
            decisions.insert(key.clone(), decision_value(d));
        }
        if let Some(x) = &r.retracted {
            retracted.insert(key.clone(), retraction_value(x));
        }
        if let Some(by_id) = &r.proposals {
            let by_id = by_id.iter().map(|(id, p)| (id.clone(), proposal_value(p))).collect();
            proposals.insert(key.clone(), Value::Object(by_id));
        }
        history.insert(key.clone(), r.history.iter().copied().map(Value::from).collect());
    }
    let mut page = Map::new();
    page.insert("decisions".into(), Value::Object(decisions));
    page.insert("retracted".into(), Value::Object(retracted));
    page.insert("history".into(), Value::Object(history));
    if !proposals.is_empty() {
        page.insert("proposals".into(), Value::Object(proposals));
    }
    to_canonical_string(&Value::Object(page)).into_bytes()
}

/// A page back into its records. It must be exactly what [`encode_page`]
/// writes for them, so a page with anything this reader does not know is
/// refused, not misread.
pub fn decode_page(bytes: &[u8]) -> Result<BTreeMap<String, KeyRecord>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "page is not UTF-8")?;
    let v = parse_strict(text, MAX_PAGE_BYTES).map_err(|e| format!("page is not valid JSON: {e}"))?;
    let (mut decisions, mut retracted, mut proposals) = parse_records(&v)?;
    let history = v.get("history").and_then(Value::as_object).ok_or("page has no history object")?;
    let mut records = BTreeMap::new();
    for (key, seqs) in history {
        let seqs = seqs
            .as_array()
            .ok_or("page history is not a list")?
            .iter()
            .map(|s| number(&serde_json::json!({ "seq": s }), "seq"))
            .collect::<Result<Vec<u64>, String>>()?;
        if seqs.is_empty() {
            return Err(format!("page history of key {key:?} is empty"));
        }
        records.insert(
            key.clone(),
            KeyRecord {
                decision: decisions.remove(key),
                retracted: retracted.remove(key),
                proposals: proposals.remove(key),
                history: seqs,
            },
        );
    }
    if !(decisions.is_empty() && retracted.is_empty() && proposals.is_empty()) {
        return Err("page holds a record of a key with no history".into());
    }
    if encode_page(&records) != bytes {
        return Err("page is not the canonical form of its records".into());
    }
    Ok(records)
}

/// The fences blob: the last key of every page.
pub fn encode_fences(lasts: &[String]) -> Vec<u8> {
    to_canonical_string(&Value::Array(lasts.iter().cloned().map(Value::from).collect())).into_bytes()
}

/// The fences blob back into the last key of every page, checked to be
/// strictly increasing.
pub fn decode_fences(bytes: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "fences are not UTF-8")?;
    let v = parse_strict(text, MAX_PAGE_BYTES).map_err(|e| format!("fences are not valid JSON: {e}"))?;
    let lasts: Vec<String> = v
        .as_array()
        .ok_or("fences are not a list")?
        .iter()
        .map(|k| k.as_str().map(str::to_owned).ok_or("a fence is not a string"))
        .collect::<Result<_, _>>()?;
    if lasts.windows(2).any(|w| w[0] >= w[1]) {
        return Err("fences are not in increasing key order".into());
    }
    if encode_fences(&lasts) != bytes {
        return Err("fences are not in canonical form".into());
    }
    Ok(lasts)
}

/// The page `key` belongs in: the first whose last key is not below it
/// (keys past every fence belong in the last page). None: no pages.
pub fn page_of(lasts: &[String], key: &str) -> Option<usize> {
    if lasts.is_empty() {
        return None;
    }
    Some(lasts.partition_point(|last| last.as_str() < key).min(lasts.len() - 1))
}

/// Split key-sorted records into pages at the keys that end one.
pub fn chunk(records: BTreeMap<String, KeyRecord>) -> Vec<BTreeMap<String, KeyRecord>> {
    let mut pages = Vec::new();
    let mut page = BTreeMap::new();
    for (key, record) in records {
        let ends = ends_page(&key);
        page.insert(key, record);
        if ends {
            pages.push(std::mem::take(&mut page));
        }
    }
    if !page.is_empty() {
        pages.push(page);
    }
    pages
}

/// Every record of a whole state, by key.
pub fn records_of(state: &State) -> BTreeMap<String, KeyRecord> {
    state.keys().into_iter().filter_map(|k| KeyRecord::of(state, k).map(|r| (k.clone(), r))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::Closing;
    use crate::model::Rejected;

    fn decision(id: &str, seq: u64) -> Decision {
        Decision {
            choice: "postgres".into(),
            rationale: "we know it".into(),
            rejected: vec![Rejected { option: "mongo".into(), why: "no joins".into() }],
            id: id.into(),
            actor: "ana".into(),
            seq,
            at_ms: 1000 + seq,
            revision: 1,
            details: Default::default(),
            accepted: Some(Closing { id: "x".into(), actor: "bo".into(), seq, at_ms: 5, rationale: None }),
        }
    }

    fn records(n: usize) -> BTreeMap<String, KeyRecord> {
        (0..n)
            .map(|i| {
                let key = format!("key-{i:05}");
                let record = KeyRecord {
                    decision: Some(decision(&format!("id-{i}"), i as u64 + 1)),
                    history: vec![i as u64 + 1],
                    ..KeyRecord::default()
                };
                (key, record)
            })
            .collect()
    }

    #[test]
    fn a_page_round_trips_and_a_changed_byte_is_refused() {
        let page = records(5);
        let bytes = encode_page(&page);
        assert_eq!(decode_page(&bytes).unwrap(), page);
        let text = String::from_utf8(bytes).unwrap();
        let padded = text.replacen(":", ": ", 1);
        assert!(decode_page(padded.as_bytes()).unwrap_err().contains("canonical"));
        let orphan = text.replacen("\"history\":{\"key-00000\":[1],", "\"history\":{", 1);
        assert!(decode_page(orphan.as_bytes()).unwrap_err().contains("no history"), "{orphan}");
    }

    #[test]
    fn pages_end_at_keys_alone_so_inserting_a_key_changes_only_its_page() {
        let all = records(2000);
        let pages = chunk(all.clone());
        assert!(pages.len() > 2000 / (PAGE_KEYS as usize) / 3, "{} pages", pages.len());
        assert_eq!(pages.iter().map(BTreeMap::len).sum::<usize>(), 2000);
        for page in &pages[..pages.len() - 1] {
            assert!(ends_page(page.keys().last().unwrap()));
        }
        // Take one key out and put it back through its page only: the
        // result is what chunking everything gives.
        let (key, record) = all.iter().nth(777).map(|(k, r)| (k.clone(), r.clone())).unwrap();
        let mut without = all.clone();
        without.remove(&key);
        let mut paged = chunk(without);
        let lasts: Vec<String> = paged.iter().map(|p| p.keys().last().unwrap().clone()).collect();
        let at = page_of(&lasts, &key).unwrap();
        let mut page = paged.remove(at);
        page.insert(key, record);
        for (i, p) in chunk(page).into_iter().enumerate() {
            paged.insert(at + i, p);
        }
        assert_eq!(paged, pages);
    }

    #[test]
    fn fences_round_trip_and_must_increase() {
        let lasts = vec!["a".to_string(), "b c".into(), "z\u{e9}".into()];
        assert_eq!(decode_fences(&encode_fences(&lasts)).unwrap(), lasts);
        assert!(decode_fences(br#"["b","a"]"#).unwrap_err().contains("increasing"));
        assert_eq!(page_of(&lasts, "0"), Some(0));
        assert_eq!(page_of(&lasts, "b"), Some(1));
        assert_eq!(page_of(&lasts, "zz"), Some(2));
        assert_eq!(page_of(&[], "a"), None);
    }
}
