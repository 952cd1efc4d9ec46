//! A space's records as Markdown ADRs: one file per `decide` or `propose`,
//! numbered by its seq (so numbers never collide), with the status the log
//! gives it, and an `index.md` table.
//!
//! The front matter carries what Markdown cannot say exactly (the key, the
//! id, links and `meta`, as `dlog-*` keys), so importing an export gives
//! back the same decisions in force.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::find::civil_date;
use crate::{Error, Event, Space};

/// The Markdown layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Style {
    /// MADR 4: front matter, "Considered Options", "Decision Outcome".
    Madr,
    /// Michael Nygard's, as adr-tools writes it: Status, Context, Decision,
    /// Consequences.
    Nygard,
}

/// One exported record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exported {
    /// The file name.
    pub file: String,
    /// Its Markdown.
    pub text: String,
    /// Its title, status and date, for the index.
    pub title: String,
    /// Its status.
    pub status: String,
    /// Its date (YYYY-MM-DD).
    pub date: String,
}

struct Rec {
    seq: u64,
    at_ms: u64,
    id: String,
    key: String,
    body: Value,
    status: String,
    superseded_by: Option<usize>,
    supersedes: Option<usize>,
    closing: Option<String>,
}

fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s: String = s.trim_end_matches('-').chars().take(60).collect();
    if s.is_empty() { "decision".into() } else { s.trim_end_matches('-').to_owned() }
}

/// Every record of `events`, with the status the log gives it.
fn records(events: &[Event]) -> Vec<Rec> {
    let mut recs: Vec<Rec> = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_force: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
        let key = body["key"].as_str().unwrap_or("").to_owned();
        let mut supersede = |recs: &mut Vec<Rec>, new: usize| {
            if let Some(old) = in_force.insert(key.clone(), new) {
                recs[old].status = "superseded".into();
                recs[old].superseded_by = Some(new);
                recs[new].supersedes = Some(old);
            }
        };
        match e.kind.as_str() {
            "decide" | "propose" => {
                let status = if e.kind == "decide" {
                    "accepted".to_owned()
                } else {
                    body["status"].as_str().unwrap_or("proposed").to_owned()
                };
                recs.push(Rec {
                    seq: e.seq,
                    at_ms: e.at_ms,
                    id: e.id.clone(),
                    key: key.clone(),
                    body,
                    status,
                    superseded_by: None,
                    supersedes: None,
                    closing: None,
                });
                let i = recs.len() - 1;
                by_id.insert(e.id.clone(), i);
                if e.kind == "decide" {
                    supersede(&mut recs, i);
                }
            }
            "accept" => {
                if let Some(&i) = body["proposal"].as_str().and_then(|p| by_id.get(p)) {
                    recs[i].status = "accepted".into();
                    recs[i].closing = body["rationale"].as_str().map(str::to_owned);
                    supersede(&mut recs, i);
                }
            }
            "reject" => {
                if let Some(&i) = body["proposal"].as_str().and_then(|p| by_id.get(p)) {
                    recs[i].status = "rejected".into();
                    recs[i].closing = body["rationale"].as_str().map(str::to_owned);
                }
            }
            "retract" => {
                if let Some(i) = in_force.remove(&key) {
                    recs[i].status = body["status"].as_str().unwrap_or("retracted").to_owned();
                    recs[i].closing = body["rationale"].as_str().map(str::to_owned);
                }
            }
            _ => {}
        }
    }
    recs
}

fn file_name(r: &Rec) -> String {
    let title = r.body["title"].as_str().unwrap_or(&r.key);
    format!("{:04}-{}.md", r.seq, slug(title))
}

/// A YAML scalar written as JSON, which YAML reads as the same string.
fn yaml(v: &Value) -> String {
    v.to_string()
}

fn render(r: &Rec, recs: &[Rec], space: &str, style: Style) -> String {
    let b = &r.body;
    let s = |k: &str| b[k].as_str().unwrap_or("").trim().to_owned();
    let title = b["title"].as_str().map_or_else(|| r.key.clone(), str::to_owned);
    let day = b["meta"]["adr"]["date"].as_str().map_or_else(|| civil_date(r.at_ms), str::to_owned);
    let mut fm = vec![
        "---".to_owned(),
        format!("status: {}", yaml(&json!(r.status))),
        format!("date: {}", yaml(&json!(day))),
    ];
    for (name, field) in [
        ("decision-makers", "deciders"),
        ("consulted", "consulted"),
        ("informed", "informed"),
        ("tags", "tags"),
    ] {
        if b[field].is_array() {
            fm.push(format!("{name}: {}", yaml(&b[field])));
        }
    }
    fm.push(format!("dlog-space: {}", yaml(&json!(space))));
    fm.push(format!("dlog-key: {}", yaml(&json!(r.key))));
    fm.push(format!("dlog-id: {}", yaml(&json!(r.id))));
    fm.push(format!("dlog-seq: {}", r.seq));
    if let Some(p) = r.supersedes {
        fm.push(format!("dlog-supersedes: {}", yaml(&json!(recs[p].id))));
    }
    if b["links"].is_array() {
        fm.push(format!("dlog-links: {}", yaml(&b["links"])));
    }
    if !b["meta"].is_null() {
        fm.push(format!("dlog-meta: {}", yaml(&b["meta"])));
    }
    fm.push("---".into());
    let mut out = fm.join("\n") + "\n\n";
    let link_to = |i: usize| {
        format!("[{}]({})", recs[i].body["title"].as_str().unwrap_or(&recs[i].key), file_name(&recs[i]))
    };
    let rejected: Vec<(String, String)> = b["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| (o["option"].as_str().unwrap_or("").to_owned(), o["why"].as_str().unwrap_or("").to_owned()))
        .collect();
    let mut status_lines = vec![capitalize(&r.status)];
    if let Some(n) = r.superseded_by {
        status_lines.push(format!("Superseded by {}", link_to(n)));
    }
    if let Some(p) = r.supersedes {
        status_lines.push(format!("Supersedes {}", link_to(p)));
    }
    if let Some(why) = &r.closing {
        status_lines.push(why.clone());
    }
    let bullet = |text: &str| format!("* {}", text.replace('\n', "\n  "));
    match style {
        Style::Madr => {
            out += &format!("# {title}\n\n");
            if r.superseded_by.is_some() || r.supersedes.is_some() || r.closing.is_some() {
                out += &format!("## Status\n\n{}\n\n", status_lines.join("\n\n"));
            }
            if !s("context").is_empty() {
                out += &format!("## Context and Problem Statement\n\n{}\n\n", s("context"));
            }
            out += "## Considered Options\n\n";
            out += &bullet(&s("choice"));
            out += "\n";
            for (o, _) in &rejected {
                out += &bullet(o);
                out += "\n";
            }
            out += &format!(
                "\n## Decision Outcome\n\nChosen option: \"{}\", because {}\n\n",
                s("choice"),
                s("rationale")
            );
            if !s("consequences").is_empty() {
                out += &format!("### Consequences\n\n{}\n\n", s("consequences"));
            }
            if !rejected.is_empty() {
                out += "## Pros and Cons of the Options\n\n";
                for (o, why) in &rejected {
                    out += &format!("### {o}\n\n{}\n\n", bullet(&format!("Bad, because {why}")));
                }
            }
        }
        Style::Nygard => {
            out += &format!(
                "# {}. {title}\n\nDate: {day}\n\n## Status\n\n{}\n\n",
                r.seq,
                status_lines.join("\n\n")
            );
            if !s("context").is_empty() {
                out += &format!("## Context\n\n{}\n\n", s("context"));
            }
            out += &format!("## Decision\n\n{}\n\n{}\n\n", s("choice"), s("rationale"));
            if !rejected.is_empty() {
                out += "## Considered Options\n\n";
                out += &bullet(&s("choice"));
                out += "\n";
                for (o, _) in &rejected {
                    out += &bullet(o);
                    out += "\n";
                }
                out += "\n## Pros and Cons of the Options\n\n";
                for (o, why) in &rejected {
                    out += &format!("### {o}\n\n{}\n\n", bullet(&format!("Bad, because {why}")));
                }
            }
            if !s("consequences").is_empty() {
                out += &format!("## Consequences\n\n{}\n\n", s("consequences"));
            }
        }
    }
    out.trim_end().to_owned() + "\n"
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().collect::<String>() + c.as_str())
}

/// Every record of `space` as a file, and the index.
pub fn export(space: &Space, style: Style) -> Result<(Vec<Exported>, String), Error> {
    let mut events = Vec::new();
    let mut next = 1;
    loop {
        let page = space.events(next, 1000)?;
        match page.last() {
            Some(last) => next = last.seq + 1,
            None => break,
        }
        events.extend(page);
    }
    let recs = records(&events);
    let mut files = Vec::new();
    let mut index = format!(
        "# Decisions of {}\n\nWritten by `dlog adr export` from the space's log; numbers are event seqs.\n\n| # | Title | Status | Date |\n|---|---|---|---|\n",
        space.name()
    );
    for r in &recs {
        let title = r.body["title"].as_str().map_or_else(|| r.key.clone(), str::to_owned);
        let day = r.body["meta"]["adr"]["date"].as_str().map_or_else(|| civil_date(r.at_ms), str::to_owned);
        let file = file_name(r);
        index += &format!("| {} | [{}]({file}) | {} | {day} |\n", r.seq, title.replace('|', "\\|"), r.status);
        files.push(Exported {
            file,
            text: render(r, &recs, space.name(), style),
            title,
            status: r.status.clone(),
            date: day,
        });
    }
    Ok((files, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_slugs_are_what_file_names_need() {
        assert_eq!(civil_date(1_700_000_000_000), "2023-11-14");
        assert_eq!(civil_date(951_782_400_000), "2000-02-29");
        assert_eq!(slug("Use Postgres: for *everything*!"), "use-postgres-for-everything");
        assert_eq!(slug("???"), "decision");
    }
}
