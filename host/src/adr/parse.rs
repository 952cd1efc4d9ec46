//! One ADR file into an [`Adr`]: MADR 2.x–4.x, Nygard (adr-tools) and
//! log4brains, as people write them — front matter or bullets or plain
//! `Key: value` lines, numbered or dated file names, with or without a
//! status, a date or a title. What is not understood is kept, by section.

use serde_json::{Map, Value};

use super::markdown::{self, Section};

/// A relation from one record to another, as written (`Superseded by
/// [3. X](0003-x.md)`): the target is a file name or an ADR number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    /// Lowercased words before the link: `superseded by`, `supersedes`,
    /// `amended by`, `refines`…
    pub rel: String,
    /// The link target or the number written.
    pub target: String,
    /// The link's text.
    pub title: String,
}

/// One parsed record.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Adr {
    /// Its file name.
    pub file: String,
    /// The file name without `.md`.
    pub stem: String,
    /// The leading number of the file name (`0007-x.md`), none for
    /// log4brains' date prefixes.
    pub number: Option<u64>,
    /// `madr`, `nygard`, `log4brains` or `dlog` (written by `dlog adr export`).
    pub format: String,
    /// The title (from the heading, or else the file name).
    pub title: String,
    /// The status as written, first line only (`Accepted`, `Superseded by …`).
    pub status: Option<String>,
    /// The date as written.
    pub date: Option<String>,
    /// Decision makers, consulted and informed people, tags.
    pub deciders: Vec<String>,
    /// People consulted.
    pub consulted: Vec<String>,
    /// People informed.
    pub informed: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The problem.
    pub context: Option<String>,
    /// The chosen option.
    pub choice: Option<String>,
    /// Why it was chosen.
    pub rationale: Option<String>,
    /// The considered options, in order.
    pub options: Vec<String>,
    /// Each option's cons ("Bad, because …"), by option.
    pub cons: Vec<(String, Vec<String>)>,
    /// Each option's whole "pros and cons" text, by option (kept in
    /// `meta`: pros, neutral points, examples — all of it).
    pub option_text: Vec<(String, String)>,
    /// Consequences.
    pub consequences: Option<String>,
    /// Links to other records and URLs.
    pub relations: Vec<Relation>,
    /// Front matter keys that map to no field.
    pub extra: Map<String, Value>,
    /// Sections that map to no field, by heading, and the text before the
    /// first section that is not a `Key: value` line.
    pub unmapped: Vec<(String, String)>,
    /// What `dlog adr export` wrote in front matter: key, id, links, meta.
    pub dlog: Map<String, Value>,
    /// What the parser noticed (no status, no decision text…).
    pub notes: Vec<String>,
}

/// Why a file in an ADR directory is not a record.
pub fn skip_reason(file: &str, text: &str) -> Option<&'static str> {
    let lower = file.to_lowercase();
    if !lower.ends_with(".md") && !lower.ends_with(".markdown") {
        return Some("not a Markdown file");
    }
    if lower.starts_with('.') || lower.starts_with('_') {
        return Some("hidden or partial file");
    }
    let stem = lower.trim_end_matches(".md").trim_end_matches(".markdown");
    if matches!(stem, "index" | "readme" | "toc" | "summary" | "changelog") {
        return Some("an index, not a record");
    }
    if stem.contains("template") {
        return Some("a template");
    }
    // Templates copied under another name still hold their placeholders.
    let head: String = text.lines().take(12).collect::<Vec<_>>().join("\n");
    if head.contains("{short title") || head.contains("[short title") || head.contains("{proposed | rejected")
    {
        return Some("a template (it still has the template's placeholders)");
    }
    None
}

/// `0007-use-x` → 7; `20200916-use-x` (a log4brains date) → none.
fn leading_number(stem: &str) -> (Option<u64>, Option<String>) {
    let digits: String = stem.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() == 8 && (digits.starts_with("19") || digits.starts_with("20")) {
        let date = format!("{}-{}-{}", &digits[..4], &digits[4..6], &digits[6..]);
        return (None, Some(date));
    }
    (digits.parse().ok(), None)
}

/// A comma- or list-valued field (`a, b and c`, a YAML list).
fn names(value: &Value) -> Vec<String> {
    let parts: Vec<String> = match value {
        Value::Array(items) => {
            items.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect()
        }
        Value::String(s) => s.split([',', ';']).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        let p = markdown::plain(p.trim());
        if !p.is_empty() && !p.starts_with('{') && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn normalize(option: &str) -> String {
    option.to_lowercase().chars().filter(|c| c.is_alphanumeric()).collect()
}

/// An option's name without the description people add after it
/// (`Log4brains: a knowledge base`, `Formless – no conventions`).
fn option_name(option: &str) -> String {
    let plain = markdown::plain(option);
    let cut = [": ", " – ", " — ", " - "].iter().filter_map(|sep| plain.find(sep)).min();
    normalize(&plain[..cut.unwrap_or(plain.len())])
}

/// Whether two spellings name the same option (`[Postgres](x)`, `Postgres`,
/// `Postgres: the relational one`).
pub(crate) fn same_option(a: &str, b: &str) -> bool {
    let (full_a, full_b) = (normalize(&markdown::plain(a)), normalize(&markdown::plain(b)));
    if full_a.is_empty() || full_b.is_empty() {
        return false;
    }
    full_a == full_b || option_name(a) == option_name(b)
}

/// `Chosen option: "X", because Y` (with the variants MADR versions and
/// people use) → (X, Y).
fn chosen_option(text: &str) -> Option<(String, Option<String>)> {
    let lower = text.to_lowercase();
    let at = lower.find("chosen option")?;
    let rest = &text[at + "chosen option".len()..];
    let rest = rest.trim_start_matches(['*', '_', ' ']).strip_prefix(':').unwrap_or(rest);
    let rest = rest.trim_start_matches(['*', '_', ' ']).trim_start();
    let (choice, after) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find("\", because").or_else(|| quoted.find('"')).unwrap_or(quoted.len());
        (&quoted[..end], &quoted[(end + 1).min(quoted.len())..])
    } else {
        let end =
            ["because", "\n"].iter().filter_map(|m| rest.to_lowercase().find(m)).min().unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    let choice = markdown::plain(choice.trim().trim_end_matches(',').trim().trim_end_matches(['*', '_']));
    let after = after.trim_start_matches([',', ' ', '*', '_']);
    let rationale = after
        .strip_prefix("because")
        .or_else(|| after.strip_prefix("Because"))
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    (!choice.is_empty()).then_some((choice, rationale))
}

/// The cons of one option's subsection ("Bad, because …" and the like).
fn cons(text: &str) -> Vec<String> {
    let mut cons = Vec::new();
    for item in markdown::list_items(text) {
        let lower = item.to_lowercase();
        let strip = |prefixes: &[&str]| {
            prefixes.iter().find_map(|p| lower.starts_with(p).then(|| item[p.len()..].trim().to_owned()))
        };
        if let Some(con) = strip(&["bad, because", "bad because", "bad:", "con:", "cons:", "❌"]) {
            cons.push(con);
        }
    }
    cons
}

impl Adr {
    /// Parse one file's text.
    pub fn parse(file: &str, text: &str) -> Result<Adr, String> {
        let doc = markdown::split_front_matter(text)?;
        let stem = file.rsplit_once('.').map_or(file, |(s, _)| s).to_owned();
        let (number, file_date) = leading_number(&stem);
        let mut adr = Adr { file: file.to_owned(), stem, number, ..Adr::default() };
        adr.read_front_matter(doc.front_matter);
        if let Some(status) = adr.status.clone() {
            adr.read_supersession(&status);
        }
        adr.read_supersession(doc.body);
        let (preamble, sections) = markdown::sections(doc.body);
        adr.read_preamble(&preamble);
        adr.read_sections(&sections);
        if adr.date.is_none() {
            adr.date = file_date.clone();
        }
        adr.format = if !adr.dlog.is_empty() {
            "dlog"
        } else if file_date.is_some() {
            "log4brains"
        } else if sections.iter().any(|s| s.heading.eq_ignore_ascii_case("decision")) {
            "nygard"
        } else {
            "madr"
        }
        .to_owned();
        if adr.title.is_empty() {
            let words = adr.stem.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_');
            adr.title = words.replace(['-', '_'], " ").trim().to_owned();
            if adr.title.is_empty() {
                adr.title = adr.stem.clone();
            }
            adr.notes.push("no title heading: the title comes from the file name".into());
        }
        Ok(adr)
    }

    fn read_front_matter(&mut self, front: Map<String, Value>) {
        for (key, value) in front {
            match key.to_lowercase().as_str() {
                "status" => self.status = text_of(&value),
                "date" | "last-updated" => self.date = text_of(&value),
                "deciders" | "decision-makers" | "decision_makers" | "authors" => {
                    self.deciders = names(&value)
                }
                "consulted" => self.consulted = names(&value),
                "informed" => self.informed = names(&value),
                "tags" => self.tags = names(&value),
                "title" => self.title = text_of(&value).unwrap_or_default(),
                k if k.starts_with("dlog-") => {
                    self.dlog.insert(k["dlog-".len()..].to_owned(), value);
                }
                _ => {
                    self.extra.insert(key, value);
                }
            }
        }
    }

    /// MADR 2 and log4brains put `* Status: …` bullets, Nygard `Date: …`
    /// lines, before the first section.
    fn apply_field(&mut self, key: &str, value: &str) -> bool {
        let v = Value::String(value.to_owned());
        match key {
            "status" if self.status.is_none() => self.status = text_of(&v),
            "date" if self.date.is_none() => self.date = text_of(&v),
            "deciders" | "decision-makers" | "decision makers" if self.deciders.is_empty() => {
                self.deciders = names(&v)
            }
            "consulted" if self.consulted.is_empty() => self.consulted = names(&v),
            "informed" if self.informed.is_empty() => self.informed = names(&v),
            "tags" if self.tags.is_empty() => self.tags = names(&v),
            _ => return false,
        }
        true
    }

    fn read_preamble(&mut self, preamble: &str) {
        let rest = self.read_fields(preamble);
        if !rest.is_empty() {
            self.unmapped.push(("(before the first section)".into(), rest));
        }
    }

    /// Take `Key: value` lines this parser knows; return the other lines.
    fn read_fields(&mut self, text: &str) -> String {
        let mut rest = Vec::new();
        for line in text.lines() {
            match markdown::field_line(line) {
                Some((key, value)) if self.apply_field(&key, &value) => {}
                _ => rest.push(line),
            }
        }
        rest.join("\n").trim().to_owned()
    }

    fn read_sections(&mut self, sections: &[Section]) {
        let mut i = 0;
        while i < sections.len() {
            let s = &sections[i];
            // A section's subsections travel with it.
            let children: Vec<&Section> =
                sections[i + 1..].iter().take_while(|c| c.level > s.level).collect();
            let name = s.heading.to_lowercase();
            let name = name.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.').trim();
            match name {
                _ if s.level == 1 && self.title.is_empty() => {
                    let (title, number) = split_numbered_title(&s.heading);
                    self.title = title;
                    self.number = self.number.or(number);
                    let rest = self.read_fields(&s.text);
                    if !rest.is_empty() {
                        self.unmapped.push(("(before the first section)".into(), rest));
                    }
                    i += 1;
                    continue;
                }
                "status" => self.read_status(&s.text),
                "context"
                | "context and problem statement"
                | "problem statement"
                | "context and problem"
                | "problem" => self.context = non_empty(&s.text),
                "decision" => {
                    // Nygard's decision is prose: its first paragraph says
                    // what, the rest (if any) why.
                    let (first, rest) = markdown::first_paragraph(&s.text);
                    self.choice = non_empty(&first);
                    self.rationale = non_empty(&rest).or_else(|| non_empty(&s.text));
                }
                "decision outcome" | "outcome" => {
                    self.read_outcome(s, &children);
                    i += 1 + children.len();
                    continue;
                }
                "considered options" | "options" | "considered alternatives" | "alternatives" => {
                    self.options = markdown::list_items(&s.text).iter().map(|o| markdown::plain(o)).collect();
                    // Descriptions beside the list are kept as written.
                    if s.text.lines().any(|l| {
                        !l.trim().is_empty()
                            && !l.starts_with([' ', '\t', '*', '-', '+'])
                            && !l.trim_start().starts_with(|c: char| c.is_ascii_digit())
                    }) {
                        self.unmapped.push((s.heading.clone(), s.text.clone()));
                    }
                }
                "pros and cons of the options" | "pros and cons" => {
                    for child in &children {
                        let option = markdown::plain(&child.heading);
                        self.cons.push((option.clone(), cons(&child.text)));
                        self.option_text.push((option, child.text.clone()));
                    }
                    i += 1 + children.len();
                    continue;
                }
                "consequences" => {
                    let all = std::iter::once(s.text.clone())
                        .chain(children.iter().map(|c| format!("{}\n\n{}", c.heading, c.text)))
                        .collect::<Vec<_>>()
                        .join("\n\n");
                    self.consequences = non_empty(&all);
                    i += 1 + children.len();
                    continue;
                }
                "links" | "related decisions" | "related" => {
                    self.read_relations(&s.text, false);
                    // The links become `links`; the section is kept as written.
                    self.unmapped.push((s.heading.clone(), s.text.clone()));
                }
                // Some records put each option's pros and cons under a
                // heading of the same level as "Pros and Cons of the Options".
                _ if self.options.iter().any(|o| same_option(o, &s.heading)) => {
                    let option = markdown::plain(&s.heading);
                    self.cons.push((option.clone(), cons(&s.text)));
                    self.option_text.push((option, s.text.clone()));
                }
                _ => {
                    let rest = self.read_fields(&s.text);
                    self.unmapped.push((s.heading.clone(), rest));
                }
            }
            i += 1;
        }
        if self.status.is_none() {
            self.notes.push("no status: recorded as accepted".into());
        }
        if self.choice.is_none() {
            self.notes.push("no decision text: the choice is the title".into());
        }
    }

    fn read_status(&mut self, text: &str) {
        let rest = self.read_fields(text);
        if self.status.is_none() {
            self.status = rest.lines().map(markdown::plain).find(|l| !l.is_empty());
        }
        self.read_relations(text, true);
        // More than the status line (notes, links): kept as written too.
        if rest.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
            self.unmapped.push(("Status".into(), rest));
        }
    }

    fn read_outcome(&mut self, section: &Section, children: &[&Section]) {
        let at = section.text.to_lowercase().find("chosen option").unwrap_or(0);
        let before = section.text[..at].trim();
        if !before.is_empty() {
            self.unmapped
                .push((format!("{} (before the chosen option)", section.heading), before.to_owned()));
        }
        match chosen_option(&section.text) {
            Some((choice, rationale)) => {
                self.choice = Some(choice);
                self.rationale = rationale.or_else(|| {
                    non_empty(&section.text[section.text.to_lowercase().find("chosen option").unwrap_or(0)..])
                });
            }
            None => {
                let (first, _) = markdown::first_paragraph(&section.text);
                self.choice = non_empty(&markdown::plain(&first));
                self.rationale = non_empty(&section.text);
            }
        }
        // MADR 2–4 nest consequences (and confirmation) under the outcome.
        let mut consequences = Vec::new();
        let only_one =
            children.iter().filter(|c| c.heading.to_lowercase().contains("consequence")).count() == 1;
        for child in children {
            let name = child.heading.to_lowercase();
            if name == "consequences" && only_one {
                consequences.push(child.text.clone());
            } else if name.contains("consequence") {
                consequences.push(format!("{}\n\n{}", child.heading, child.text));
            } else {
                self.unmapped.push((child.heading.clone(), child.text.clone()));
            }
        }
        if !consequences.is_empty() {
            self.consequences = Some(consequences.join("\n\n"));
        }
    }

    /// `Superseded by [..](..)` and `Supersedes [..](..)` wherever they are
    /// written (front matter, status, outcome, links).
    fn read_supersession(&mut self, text: &str) {
        for link in markdown::links(text) {
            let before = link.before.to_lowercase();
            let before = before.trim_end_matches([':', '-', '*', ' ', '"']).trim();
            for rel in ["superseded by", "supersedes", "supercedes"] {
                if before.ends_with(rel) {
                    let relation =
                        Relation { rel: rel.into(), target: link.target.clone(), title: link.text.clone() };
                    if !self.relations.contains(&relation) {
                        self.relations.push(relation);
                    }
                }
            }
        }
    }

    /// Links in a status or links section: relations to records and URLs.
    fn read_relations(&mut self, text: &str, status: bool) {
        for link in markdown::links(text) {
            let rel = link.before.trim_end_matches([':', '-', '*', ' ']).trim().to_lowercase();
            let rel = if rel.is_empty() && !status { "see also".to_owned() } else { rel };
            let relation = Relation { rel, target: link.target, title: link.text };
            if !self.relations.contains(&relation) {
                self.relations.push(relation);
            }
        }
        // "Superseded by ADR-0123" without a link.
        for line in text.lines() {
            let lower = line.to_lowercase();
            for rel in ["superseded by", "supersedes", "supercedes"] {
                if let Some(at) = lower.find(rel) {
                    let after = &line[at + rel.len()..];
                    if after.contains("](") {
                        continue;
                    }
                    let digits: String = after
                        .trim_start_matches(|c: char| !c.is_ascii_digit())
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if !digits.is_empty() {
                        self.relations.push(Relation {
                            rel: rel.into(),
                            target: digits,
                            title: after.trim().into(),
                        });
                    }
                }
            }
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// `1. Record architecture decisions` → ("Record architecture decisions", 1);
/// `ADR-0005: Use X` → ("Use X", 5).
fn split_numbered_title(heading: &str) -> (String, Option<u64>) {
    let h = heading.trim();
    let without_adr =
        h.strip_prefix("ADR").or_else(|| h.strip_prefix("adr")).map(|r| r.trim_start_matches(['-', ' ']));
    let candidate = without_adr.unwrap_or(h);
    let digits: String = candidate.chars().take_while(char::is_ascii_digit).collect();
    if !digits.is_empty() {
        let rest = candidate[digits.len()..].trim_start_matches(['.', ':', ')', ' ', '-']).trim();
        if !rest.is_empty() {
            return (rest.to_owned(), digits.parse().ok());
        }
    }
    (h.to_owned(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chosen_option_is_read_in_each_way_madr_writes_it() {
        for (line, choice, why) in [
            ("Chosen option: \"Postgres\", because we know it.", "Postgres", Some("we know it.")),
            (
                "Chosen option: \"[Postgres](#postgres)\", because it is\nmature.",
                "Postgres",
                Some("it is\nmature."),
            ),
            ("* Chosen option: Postgres, because it is mature", "Postgres", Some("it is mature")),
            ("Chosen option: **Postgres**", "Postgres", None),
        ] {
            let (c, w) = chosen_option(line).unwrap();
            assert_eq!((c.as_str(), w.as_deref()), (choice, why), "{line}");
        }
        assert!(same_option("[MongoDB](https://x)", "MongoDB"));
        assert!(!same_option("Postgres 16", "Postgres"));
        assert!(!same_option("A", "B"));
    }

    #[test]
    fn numbered_titles_and_dated_file_names_give_numbers_and_dates() {
        assert_eq!(split_numbered_title("1. Record decisions"), ("Record decisions".into(), Some(1)));
        assert_eq!(split_numbered_title("ADR-0005: Use X"), ("Use X".into(), Some(5)));
        assert_eq!(split_numbered_title("Use X"), ("Use X".into(), None));
        assert_eq!(leading_number("0007-use-x"), (Some(7), None));
        assert_eq!(leading_number("20200916-use-x"), (None, Some("2020-09-16".into())));
    }
}
