//! Records into intents: keys, ids, the order that keeps `supersedes`
//! valid, and the events each status needs.
//!
//! - accepted (or no status, or a synonym such as `approved`): `decide`;
//! - proposed, draft or a team's own label: `propose` with that status;
//! - rejected: `propose`, then `reject`;
//! - deprecated: `decide`, then `retract` with status `deprecated`;
//! - superseded: `decide`; the record that supersedes it decides the same
//!   key with `supersedes` naming it. One whose successor is not in the
//!   collection is withdrawn with status `superseded`.
//!
//! Ids come from file names (`adr:0007-use-x`), so importing the same
//! directory again appends nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::parse::{Adr, same_option};
use crate::Intent;

/// Statuses that mean "in force".
const IN_FORCE: &[&str] =
    &["accepted", "approved", "adopted", "agreed", "decided", "done", "implemented", "active", "final"];

/// One record's outcome: what it became in the log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Mapped {
    /// The file.
    pub file: String,
    /// The format it was read as.
    pub format: String,
    /// The decision key.
    pub key: String,
    /// The status it was recorded with.
    pub status: String,
    /// The events it became, as `kind id`.
    pub events: Vec<String>,
    /// The record it supersedes, if any.
    pub supersedes: Option<String>,
    /// How many rejected options with their why-not.
    pub rejected: usize,
    /// What went to `meta` because no field holds it (section headings,
    /// front matter keys, pros).
    pub kept_in_meta: Vec<String>,
    /// What the importer noticed.
    pub notes: Vec<String>,
}

/// The intents to append, in order, and what each record became.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Plan {
    /// The intents, in an order that keeps every `supersedes` valid.
    pub intents: Vec<Intent>,
    /// One entry per record, in that order.
    pub mapped: Vec<Mapped>,
}

/// The id a file's record gets: visible ASCII, at most 128 characters.
pub fn record_id(stem: &str) -> String {
    let mut id = String::from("adr:");
    for c in stem.chars() {
        if c.is_ascii_graphic() {
            id.push(c);
        } else if c == ' ' {
            id.push('_');
        } else {
            for b in c.to_string().bytes() {
                id.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if id.len() > 110 {
        let hash = sha1_smol::Sha1::from(stem.as_bytes()).digest().to_string();
        id.truncate(100);
        while !id.is_char_boundary(id.len()) {
            id.pop();
        }
        id.push('~');
        id.push_str(&hash[..8]);
    }
    id
}

fn status_class(adr: &Adr) -> (String, &'static str) {
    let raw = adr.status.as_deref().unwrap_or("accepted");
    let word =
        raw.to_lowercase().split(['(', ',', ';', '[', '.', ':', '\n']).next().unwrap_or("").trim().to_owned();
    let word = word.strip_suffix(" by").map(str::to_owned).unwrap_or(word);
    let word = match word.find(" by ") {
        Some(i) => word[..i].to_owned(),
        None => word,
    };
    let word: String =
        word.chars().filter(|c| !c.is_control()).take(64).collect::<String>().trim().to_owned();
    let class = if word.starts_with("superseded") || word.starts_with("superceded") {
        "superseded"
    } else if word.starts_with("deprecated") {
        "deprecated"
    } else if word.starts_with("rejected") || word == "declined" {
        "rejected"
    } else if word.is_empty() || IN_FORCE.contains(&word.as_str()) {
        "accepted"
    } else {
        "proposal"
    };
    let label = if class == "proposal" { word } else { class.to_owned() };
    (label, class)
}

/// A file name from a link target: `./0003-x.md#top` → `0003-x.md`.
fn target_file(target: &str) -> String {
    let t = target.split(['#', '?']).next().unwrap_or("");
    t.rsplit('/').next().unwrap_or(t).to_owned()
}

fn is_url(target: &str) -> bool {
    target.split_once(':').is_some_and(|(s, rest)| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()) && !rest.is_empty()
    })
}

/// A tag is one word: whitespace becomes `-`.
fn tag(t: &str) -> String {
    t.split_whitespace().collect::<Vec<_>>().join("-")
}

/// Plan the import of `adrs` (in any order) by `actor`, keys prefixed with `prefix`.
pub fn plan(mut adrs: Vec<Adr>, actor: &str, prefix: &str) -> Plan {
    adrs.sort_by(|a, b| {
        (a.number.is_none(), a.number, &a.date, &a.file).cmp(&(
            b.number.is_none(),
            b.number,
            &b.date,
            &b.file,
        ))
    });
    let by_file: BTreeMap<String, usize> =
        adrs.iter().enumerate().map(|(i, a)| (a.file.clone(), i)).collect();
    let by_number: BTreeMap<u64, usize> =
        adrs.iter().enumerate().filter_map(|(i, a)| a.number.map(|n| (n, i))).collect();
    let by_id: BTreeMap<String, usize> = adrs
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.dlog.get("id").and_then(Value::as_str).map(|id| (id.to_owned(), i)))
        .collect();
    let resolve = |target: &str| -> Option<usize> {
        if let Some(i) = by_id.get(target) {
            return Some(*i);
        }
        let file = target_file(target);
        by_file.get(&file).copied().or_else(|| {
            let digits: String = file.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok().and_then(|n| by_number.get(&n).copied())
        })
    };
    // Supersession edges, from either side: successor → its predecessors.
    let mut preds: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); adrs.len()];
    for (i, adr) in adrs.iter().enumerate() {
        for r in &adr.relations {
            let Some(j) = resolve(&r.target) else { continue };
            if i == j {
                continue;
            }
            match r.rel.as_str() {
                "superseded by" => {
                    preds[j].insert(i);
                }
                "supersedes" | "supercedes" | "replaces" => {
                    preds[i].insert(j);
                }
                _ => {}
            }
        }
        if let Some(s) = adr.dlog.get("supersedes").and_then(Value::as_str).and_then(|s| by_id.get(s)) {
            preds[i].insert(*s);
        }
    }
    // Predecessors first (Kahn's algorithm, ties by number, date, file);
    // a cycle is broken at its earliest record.
    let mut order = Vec::with_capacity(adrs.len());
    let mut done = vec![false; adrs.len()];
    while order.len() < adrs.len() {
        let next = (0..adrs.len())
            .find(|&i| !done[i] && preds[i].iter().all(|&p| done[p]))
            .or_else(|| (0..adrs.len()).find(|&i| !done[i]));
        let Some(i) = next else { break };
        done[i] = true;
        order.push(i);
    }

    let mut plan = Plan::default();
    let mut keys: Vec<String> = vec![String::new(); adrs.len()];
    let ids: Vec<String> = adrs
        .iter()
        .map(|a| a.dlog.get("id").and_then(Value::as_str).map_or_else(|| record_id(&a.stem), str::to_owned))
        .collect();
    let mut in_force: BTreeMap<String, usize> = BTreeMap::new();
    let push = |plan: &mut Plan, id: String, kind: &str, body: Value| {
        plan.intents.push(Intent::new(actor, kind, body.to_string()).with_id(id));
    };
    for &i in &order {
        let adr = &adrs[i];
        let (label, class) = status_class(adr);
        let mut notes = adr.notes.clone();
        // The first predecessor still in force gives the key; the others
        // are withdrawn as superseded.
        let live: Vec<usize> =
            preds[i].iter().copied().filter(|p| in_force.get(&keys[*p]) == Some(p)).collect();
        let primary = live.first().copied();
        keys[i] = match (adr.dlog.get("key").and_then(Value::as_str), primary) {
            (Some(k), _) => k.to_owned(),
            (None, Some(p)) => keys[p].clone(),
            (None, None) => format!("{prefix}{}", adr.stem),
        };
        let key = keys[i].clone();
        let supersedes = primary.filter(|p| keys[*p] == key).map(|p| ids[p].clone());
        for p in preds[i].iter().filter(|p| !live.contains(p)) {
            notes.push(format!("supersedes {}, which is not in force; kept as a link", adrs[*p].file));
        }
        let mut events = Vec::new();
        for &p in live.iter().skip(1) {
            let body = json!({"key": keys[p], "rationale": format!("Superseded by {} ({}).", adr.title, adr.file), "supersedes": ids[p], "status": "superseded"});
            let id = format!("{}:superseded", ids[p]);
            events.push(format!("retract {id}"));
            push(&mut plan, id, "retract", body);
            in_force.remove(&keys[p]);
        }
        let (body, kept) = record_body(adr, &key, supersedes.as_deref(), &ids, &resolve, &mut notes);
        let id = ids[i].clone();
        match class {
            "proposal" | "rejected" => {
                let mut body = body;
                body["status"] =
                    Value::String(if class == "proposal" { label.clone() } else { "proposed".into() });
                events.push(format!("propose {id}"));
                push(&mut plan, id.clone(), "propose", body);
                if class == "rejected" {
                    let why = adr
                        .status
                        .clone()
                        .filter(|s| s.trim().len() > "rejected".len())
                        .unwrap_or_else(|| format!("The record {} has the status rejected.", adr.file));
                    let rid = format!("{id}:rejected");
                    events.push(format!("reject {rid}"));
                    push(&mut plan, rid, "reject", json!({"key": key, "proposal": id, "rationale": why}));
                }
            }
            _ => {
                events.push(format!("decide {id}"));
                push(&mut plan, id.clone(), "decide", body);
                in_force.insert(key.clone(), i);
                if class == "deprecated" {
                    let rid = format!("{id}:deprecated");
                    let why = adr
                        .status
                        .clone()
                        .filter(|s| s.trim().len() > "deprecated".len())
                        .unwrap_or_else(|| format!("The record {} has the status deprecated.", adr.file));
                    events.push(format!("retract {rid}"));
                    push(
                        &mut plan,
                        rid,
                        "retract",
                        json!({"key": key, "rationale": why, "supersedes": id, "status": "deprecated"}),
                    );
                    in_force.remove(&key);
                }
            }
        }
        plan.mapped.push(Mapped {
            file: adr.file.clone(),
            format: adr.format.clone(),
            key,
            status: label,
            events,
            supersedes,
            rejected: adr_rejected(adr).len(),
            kept_in_meta: kept,
            notes,
        });
    }
    // A record marked superseded whose successor is not here leaves force.
    for &i in &order {
        let (_, class) = status_class(&adrs[i]);
        if class == "superseded" && in_force.get(&keys[i]) == Some(&i) {
            let rid = format!("{}:superseded", ids[i]);
            let why = adrs[i].status.clone().unwrap_or_else(|| "Superseded.".into());
            push(
                &mut plan,
                rid.clone(),
                "retract",
                json!({"key": keys[i], "rationale": why, "supersedes": ids[i], "status": "superseded"}),
            );
            in_force.remove(&keys[i]);
            if let Some(m) = plan.mapped.iter_mut().find(|m| m.file == adrs[i].file) {
                m.events.push(format!("retract {rid}"));
                m.notes.push("superseded by a record not in this directory: withdrawn as superseded".into());
            }
        }
    }
    plan
}

/// The considered options not chosen, each with its why-not.
fn adr_rejected(adr: &Adr) -> Vec<Value> {
    let choice = adr.choice.clone().unwrap_or_else(|| adr.title.clone());
    let mut options: Vec<String> = adr.options.clone();
    for (o, _) in &adr.cons {
        if !options.iter().any(|x| same_option(x, o)) {
            options.push(o.clone());
        }
    }
    options
        .into_iter()
        .filter(|o| !same_option(o, &choice) && !o.trim().is_empty())
        .map(|o| {
            let cons: Vec<String> = adr
                .cons
                .iter()
                .filter(|(name, _)| same_option(name, &o))
                .flat_map(|(_, c)| c.clone())
                .collect();
            let why = if cons.is_empty() {
                "Not chosen; the record gives no reason.".to_owned()
            } else {
                cons.join("\n")
            };
            json!({"option": o, "why": why})
        })
        .collect()
}

/// The decide/propose body of a record, and what went to `meta`.
fn record_body(
    adr: &Adr,
    key: &str,
    supersedes: Option<&str>,
    ids: &[String],
    resolve: &dyn Fn(&str) -> Option<usize>,
    notes: &mut Vec<String>,
) -> (Value, Vec<String>) {
    let choice = adr.choice.clone().unwrap_or_else(|| adr.title.clone());
    let rationale = adr
        .rationale
        .clone()
        .or_else(|| adr.context.clone())
        .unwrap_or_else(|| format!("Recorded in {} without a rationale.", adr.file));
    let mut body = json!({"key": key, "choice": choice, "rationale": rationale, "title": adr.title});
    let rejected = adr_rejected(adr);
    if !rejected.is_empty() {
        body["rejected"] = Value::Array(rejected);
    }
    if let Some(s) = supersedes {
        body["supersedes"] = s.into();
    }
    for (name, value) in [("context", &adr.context), ("consequences", &adr.consequences)] {
        if let Some(v) = value {
            body[name] = v.clone().into();
        }
    }
    for (name, list) in
        [("deciders", &adr.deciders), ("consulted", &adr.consulted), ("informed", &adr.informed)]
    {
        if !list.is_empty() {
            body[name] = json!(list);
        }
    }
    let mut tags: Vec<String> = Vec::new();
    for t in adr.tags.iter().map(|t| tag(t)) {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    if !tags.is_empty() {
        body["tags"] = json!(tags);
    }
    let mut links = Vec::new();
    if let Some(exported) = adr.dlog.get("links").filter(|l| l.is_array()) {
        links = exported.as_array().cloned().unwrap_or_default();
    } else {
        for r in &adr.relations {
            let mut link = Map::new();
            if !r.rel.is_empty() {
                link.insert("rel".into(), r.rel.clone().into());
            }
            if let Some(j) = resolve(&r.target) {
                if supersedes == Some(ids[j].as_str()) && r.rel.starts_with("supersed") {
                    continue;
                }
                link.insert("id".into(), ids[j].clone().into());
            } else if is_url(&r.target) {
                link.insert("url".into(), r.target.clone().into());
            } else {
                notes.push(format!(
                    "link {:?} ({}) names no record in this directory; kept in meta",
                    r.title, r.target
                ));
                continue;
            }
            if !r.title.is_empty() {
                link.insert("title".into(), r.title.clone().into());
            }
            let v = Value::Object(link);
            if !links.contains(&v) {
                links.push(v);
            }
        }
    }
    if !links.is_empty() {
        body["links"] = Value::Array(links);
    }
    // Whatever no field holds goes to meta.adr, so nothing is dropped.
    let mut kept = Vec::new();
    let meta = match adr.dlog.get("meta") {
        Some(m) => Some(m.clone()),
        None => {
            let mut m = Map::new();
            m.insert("file".into(), adr.file.clone().into());
            m.insert("format".into(), adr.format.clone().into());
            if let Some(n) = adr.number {
                m.insert("number".into(), n.into());
            }
            if let Some(s) = &adr.status {
                m.insert("status".into(), s.clone().into());
            }
            if let Some(d) = &adr.date {
                m.insert("date".into(), d.clone().into());
            }
            if !adr.extra.is_empty() {
                kept.extend(adr.extra.keys().map(|k| format!("front matter {k:?}")));
                m.insert("front_matter".into(), Value::Object(adr.extra.clone()));
            }
            let sections: Vec<Value> = adr
                .unmapped
                .iter()
                .filter(|(_, text)| !text.trim().is_empty())
                .map(|(h, text)| {
                    kept.push(format!("section {h:?}"));
                    json!({"heading": h, "text": text})
                })
                .collect();
            if !sections.is_empty() {
                m.insert("sections".into(), Value::Array(sections));
            }
            let options: Map<String, Value> = adr
                .option_text
                .iter()
                .filter(|(_, t)| !t.trim().is_empty())
                .map(|(o, t)| (o.clone(), t.clone().into()))
                .collect();
            if !options.is_empty() {
                kept.push("pros and cons of the options".into());
                m.insert("options".into(), Value::Object(options));
            }
            let unresolved: Vec<Value> = adr
                .relations
                .iter()
                .filter(|r| resolve(&r.target).is_none() && !is_url(&r.target))
                .map(|r| json!({"rel": r.rel, "target": r.target, "title": r.title}))
                .collect();
            if !unresolved.is_empty() {
                m.insert("unresolved_links".into(), Value::Array(unresolved));
            }
            Some(json!({"adr": m}))
        }
    };
    if let Some(meta) = meta.filter(|m| !m.is_null()) {
        body["meta"] = meta;
    }
    (body, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_visible_ascii_and_bounded_whatever_the_file_name() {
        assert_eq!(record_id("0001-use-x"), "adr:0001-use-x");
        assert_eq!(record_id("0002 café"), "adr:0002_caf%C3%A9");
        let long = record_id(&"x".repeat(300));
        assert!(long.len() <= 128 && long.contains('~'), "{long}");
    }

    #[test]
    fn statuses_map_to_classes_and_keep_their_labels() {
        let with = |s: &str| Adr { status: Some(s.into()), ..Adr::default() };
        assert_eq!(status_class(&with("Accepted")), ("accepted".into(), "accepted"));
        assert_eq!(
            status_class(&with("Superseded by [3. X](0003-x.md)")),
            ("superseded".into(), "superseded")
        );
        assert_eq!(status_class(&with("superseded by ADR-0005")), ("superseded".into(), "superseded"));
        assert_eq!(status_class(&with("On Hold")), ("on hold".into(), "proposal"));
        assert_eq!(status_class(&with("Proposed")), ("proposed".into(), "proposal"));
        assert_eq!(status_class(&with("Rejected")), ("rejected".into(), "rejected"));
        assert_eq!(status_class(&Adr::default()), ("accepted".into(), "accepted"));
    }
}
