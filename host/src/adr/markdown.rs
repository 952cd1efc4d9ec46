//! The Markdown structure an ADR importer needs: front matter, headings and
//! the text between them, list items, `Key: value` lines and links.
//!
//! Headings are found by pulldown-cmark, so a `#` in a code block or a
//! setext heading is read as Markdown means it; the text of each section is
//! kept as its original Markdown source, so nothing is re-rendered.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// A document split at its front matter.
#[derive(Debug)]
pub(crate) struct Document<'a> {
    /// The YAML front matter as JSON (an empty object when there is none).
    pub front_matter: Map<String, Value>,
    /// The Markdown after it.
    pub body: &'a str,
}

/// Split off `---` front matter and read it as YAML.
pub(crate) fn split_front_matter(text: &str) -> Result<Document<'_>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) else {
        return Ok(Document { front_matter: Map::new(), body: text });
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare == "..." {
            let body = &rest[offset + line.len()..];
            // `dlog-*` keys are one-line JSON, written by `dlog adr export`:
            // read as JSON, so numbers in `meta` stay numbers.
            let mut dlog = Map::new();
            let mut yaml = String::new();
            for l in rest[..offset].lines() {
                match l.split_once(": ").filter(|(k, _)| k.starts_with("dlog-")) {
                    Some((k, v)) => {
                        let v: Value =
                            serde_json::from_str(v).map_err(|e| format!("front matter {k}: {e}"))?;
                        dlog.insert(k.to_owned(), v);
                    }
                    None => {
                        yaml.push_str(l);
                        yaml.push('\n');
                    }
                }
            }
            let docs =
                YamlLoader::load_from_str(&yaml).map_err(|e| format!("front matter is not YAML: {e}"))?;
            let mut front_matter = match docs.into_iter().next().map(yaml_to_json) {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m,
                Some(other) => return Err(format!("front matter is not a mapping but {other}")),
            };
            front_matter.extend(dlog);
            return Ok(Document { front_matter, body });
        }
        offset += line.len();
    }
    Err("front matter starts with --- but never ends".into())
}

fn yaml_to_json(y: Yaml) -> Value {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Value::String(s),
        Yaml::Integer(i) => Value::String(i.to_string()),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match yaml_to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// One heading and the Markdown under it, up to the next heading of any level.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    /// 1 for `#`, 2 for `##`, …
    pub level: usize,
    /// The heading's text, without markup.
    pub heading: String,
    /// The Markdown source between this heading and the next one, trimmed.
    pub text: String,
}

fn level(l: HeadingLevel) -> usize {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// The text before the first heading, and every heading with its text.
pub(crate) fn sections(body: &str) -> (String, Vec<Section>) {
    let mut found: Vec<(usize, String, std::ops::Range<usize>)> = Vec::new();
    let mut current: Option<(usize, String, usize)> = None;
    for (event, range) in Parser::new(body).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level: l, .. }) => {
                current = Some((level(l), String::new(), range.start))
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((l, text, start)) = current.take() {
                    found.push((l, text.trim().to_owned(), start..range.end));
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, text, _)) = current.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, text, _)) = current.as_mut() {
                    text.push(' ');
                }
            }
            _ => {}
        }
    }
    let preamble = body[..found.first().map_or(body.len(), |f| f.2.start)].trim().to_owned();
    let sections = found
        .iter()
        .enumerate()
        .map(|(i, (l, heading, range))| {
            let end = found.get(i + 1).map_or(body.len(), |next| next.2.start);
            Section { level: *l, heading: heading.clone(), text: body[range.end..end].trim().to_owned() }
        })
        .collect();
    (preamble, sections)
}

/// The items of the top-level lists in `text`, each as its source with the
/// marker removed and continuation lines joined by newlines.
pub(crate) fn list_items(text: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let bare = line.trim();
        if indent < 4
            && let Some(item) = strip_marker(bare)
        {
            items.push(item.trim().to_owned());
            open = true;
        } else if open && !bare.is_empty() && indent > 0 {
            if let Some(last) = items.last_mut() {
                last.push('\n');
                last.push_str(bare);
            }
        } else if bare.is_empty() {
            continue;
        } else {
            open = false;
        }
    }
    items
}

fn strip_marker(line: &str) -> Option<&str> {
    for marker in ["* ", "- ", "+ "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return Some(rest);
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let rest = &line[digits..];
        return rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") "));
    }
    None
}

/// A `Key: value` line, bulleted or bold or not (`* Status: accepted`,
/// `**Date:** 2020-01-01`, `Technical Story: …`): the key lowercased.
pub(crate) fn field_line(line: &str) -> Option<(String, String)> {
    let bare = strip_marker(line.trim()).unwrap_or(line.trim());
    let bare = bare.trim_start_matches(['*', '_']);
    let (key, value) = bare.split_once(':')?;
    let key = key.trim_end_matches(['*', '_']).trim();
    if key.is_empty()
        || key.len() > 40
        || !key.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
    {
        return None;
    }
    let value = value.trim().trim_start_matches(['*', '_']).trim();
    // `see https://…` is prose with a URL in it, not a field.
    if value.starts_with("//") {
        return None;
    }
    Some((key.to_lowercase(), value.to_owned()))
}

/// A link in Markdown source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    /// The link text, without markup.
    pub text: String,
    /// Where it points.
    pub target: String,
    /// The plain text just before the link on its line (`Superseded by`).
    pub before: String,
}

/// Every inline link in `text`, with the words before it on its line.
pub(crate) fn links(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut current: Option<(String, String, usize)> = None;
    for (event, range) in Parser::new(text).into_offset_iter() {
        match event {
            Event::Start(Tag::Link { dest_url, .. }) => {
                current = Some((dest_url.to_string(), String::new(), range.start))
            }
            Event::End(TagEnd::Link) => {
                if let Some((target, link_text, start)) = current.take() {
                    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
                    let before = plain(&text[line_start..start]);
                    out.push(Link { text: link_text.trim().to_owned(), target, before });
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, link_text, _)) = current.as_mut() {
                    link_text.push_str(&t);
                }
            }
            _ => {}
        }
    }
    out
}

/// Markdown inline source as plain text: emphasis, code ticks and link
/// syntax removed (`[a](b)` → `a`), whitespace collapsed.
pub(crate) fn plain(text: &str) -> String {
    let mut out = String::new();
    for event in Parser::new(text) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            Event::End(TagEnd::Paragraph | TagEnd::Item) => out.push(' '),
            _ => {}
        }
    }
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    // A list marker at the start of a line is list structure, not text.
    collapsed.trim().to_owned()
}

/// The first paragraph of `text` (up to a blank line) and the rest.
pub(crate) fn first_paragraph(text: &str) -> (String, String) {
    let text = text.trim();
    match text.find("\n\n").or_else(|| text.find("\r\n\r\n")) {
        Some(i) => (text[..i].trim().to_owned(), text[i..].trim().to_owned()),
        None => (text.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_read_as_yaml_and_the_body_follows_it() {
        let doc =
            split_front_matter("---\nstatus: accepted\ndate: 2024-01-02\ndeciders: [a, b]\nn: 3\n---\n# T\n")
                .unwrap();
        assert_eq!(doc.front_matter["status"], "accepted");
        assert_eq!(doc.front_matter["deciders"], serde_json::json!(["a", "b"]));
        assert_eq!(doc.front_matter["n"], "3");
        assert_eq!(doc.body, "# T\n");
        assert_eq!(split_front_matter("# T\n---\n").unwrap().body, "# T\n---\n");
        assert!(split_front_matter("---\nstatus: x\n").unwrap_err().contains("never ends"));
        assert!(split_front_matter("---\n: [\n---\n").is_err());
    }

    #[test]
    fn headings_in_code_blocks_do_not_split_sections() {
        let (pre, s) =
            sections("intro\n\n# Title\n\n## Context\n\n```\n# not a heading\n```\n\nSetext\n------\n\nx\n");
        assert_eq!(pre, "intro");
        let names: Vec<&str> = s.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(names, ["Title", "Context", "Setext"]);
        assert!(s[1].text.contains("# not a heading"));
        assert_eq!(s[2].level, 2);
    }

    #[test]
    fn list_items_fields_and_links_are_found_as_people_write_them() {
        assert_eq!(list_items("* a\n  more\n- b\n1. c\n\ntext"), ["a\nmore", "b", "c"]);
        assert_eq!(field_line("* **Status:** accepted"), Some(("status".into(), "accepted".into())));
        assert_eq!(field_line("Date: 2016-02-12"), Some(("date".into(), "2016-02-12".into())));
        assert_eq!(field_line("Chosen option: \"x\", because y").map(|f| f.0), Some("chosen option".into()));
        assert_eq!(field_line("see https://x"), None);
        let l = links("Superseded by [3. Use X](0003-use-x.md)\nSee [docs](https://e.x)");
        assert_eq!(
            l[0],
            Link { text: "3. Use X".into(), target: "0003-use-x.md".into(), before: "Superseded by".into() }
        );
        assert_eq!(l[1].target, "https://e.x");
        assert_eq!(plain("**Use** `pg` [here](x)"), "Use pg here");
    }
}
