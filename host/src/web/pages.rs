//! The three pages: the spaces, a space's decisions, and one key's history.

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value;

use super::{escape, key_file, layout, time};
use crate::{Event, Shown};

/// A space as the index lists it.
#[derive(Clone, Debug)]
pub struct SpaceSummary {
    /// The space.
    pub space: String,
    /// How many events it holds.
    pub events: u64,
    /// How many decisions are in force.
    pub decisions: usize,
}

/// The index: every space, linked.
pub fn index_page(spaces: &[SpaceSummary], live: bool) -> String {
    let mut main = String::from("<h1>Spaces</h1>\n");
    if spaces.is_empty() {
        main.push_str("<p>No space has any event yet.</p>");
    } else {
        main.push_str("<ul class=\"spaces\">\n");
        for s in spaces {
            let _ = writeln!(
                main,
                "<li><a href=\"spaces/{name}/index.html\">{name}</a> <span class=\"meta\">{} in force · {} events</span></li>",
                plural(s.decisions, "decision"),
                s.events,
                name = escape(&s.space),
            );
        }
        main.push_str("</ul>");
    }
    layout("Spaces", "", live, "", "", &main)
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or("")
}

/// The optional fields a decision may carry: title, status and tags.
fn extras(d: &Value) -> String {
    let mut out = String::new();
    if let Some(status) = d["status"].as_str() {
        let _ = write!(out, " <span class=\"status\">{}</span>", escape(status));
    }
    let tags: Vec<&str> = d["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !tags.is_empty() {
        out.push_str(" <ul class=\"tags\" aria-label=\"Tags\">");
        for t in tags {
            let _ = write!(out, "<li>{}</li>", escape(t));
        }
        out.push_str("</ul>");
    }
    out
}

fn tags_attr(d: &Value) -> String {
    let tags: Vec<&str> = d["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    escape(&serde_json::to_string(&tags).unwrap_or_default())
}

fn why_not(rejected: &Value) -> String {
    let mut out = String::new();
    let items = rejected.as_array().map(Vec::as_slice).unwrap_or_default();
    if !items.is_empty() {
        out.push_str("<ul class=\"why-not\">");
        for r in items {
            let _ = write!(
                out,
                "<li><span class=\"label\">Why not</span> <strong>{}</strong>: {}</li>",
                escape(text(r, "option")),
                escape(text(r, "why"))
            );
        }
        out.push_str("</ul>");
    }
    out
}

/// One decision in force (or withdrawn) as a list item of the space page.
fn decision_item(key: &str, d: &Value, withdrawn: bool) -> String {
    let title =
        d["title"].as_str().map(|t| format!("<p class=\"title\">{}</p>", escape(t))).unwrap_or_default();
    let choice = if withdrawn {
        format!("was <span class=\"choice\">{}</span>", escape(text(d, "choice")))
    } else {
        format!("<span class=\"choice\">{}</span>", escape(text(d, "choice")))
    };
    format!(
        "<li class=\"decision\" data-key=\"{k}\" data-actor=\"{a}\" data-tags=\"{tags}\" data-seq=\"{seq}\"><article>\
<h3><a class=\"key\" href=\"decisions/{file}\">{k}</a> <span class=\"eq\">=</span> {choice}{extras}</h3>{title}\
<p class=\"why\"><span class=\"label\">Why</span> {why}</p>{why_not}\
<p class=\"by\">{a} · #{seq} · revision {rev} · <time datetime=\"{at}\">{when}</time></p></article></li>\n",
        k = escape(key),
        a = escape(text(d, "actor")),
        tags = tags_attr(d),
        seq = d["seq"],
        file = key_file(key),
        extras = extras(d),
        why = escape(text(d, "rationale")),
        why_not = if withdrawn { String::new() } else { why_not(&d["rejected"]) },
        rev = d["revision"],
        at = d["at_ms"],
        when = d["at_ms"].as_u64().map(time).unwrap_or_default(),
    )
}

/// A space's page: its decisions in force and withdrawn, with filters.
/// `fold` is the space's fold as `Space::fold` returns it.
pub fn space_page(space: &str, fold: &Value, live: bool) -> String {
    let empty = serde_json::Map::new();
    let decisions = fold["decisions"].as_object().unwrap_or(&empty);
    let retracted = fold["retracted"].as_object().unwrap_or(&empty);
    let mut main = format!(
        "<h1>Space <span class=\"space\">{s}</span></h1>\n\
<p class=\"meta\">{n} events · head <code>{head}</code> <span id=\"live\" role=\"status\" aria-live=\"polite\"></span></p>\n\
<form class=\"filters\" role=\"search\" aria-label=\"Filter decisions\">\n\
<div><label for=\"f-key\">Key</label><input id=\"f-key\" type=\"search\" autocomplete=\"off\"></div>\n\
<div><label for=\"f-tag\">Tag</label><input id=\"f-tag\" type=\"search\" autocomplete=\"off\" list=\"tag-list\"></div>\n\
<div><label for=\"f-actor\">Actor</label><input id=\"f-actor\" type=\"search\" autocomplete=\"off\"></div>\n\
<div><label for=\"f-text\">Text</label><input id=\"f-text\" type=\"search\" autocomplete=\"off\"></div>\n\
<output id=\"f-count\" for=\"f-key f-tag f-actor f-text\" aria-live=\"polite\"></output>\n\
</form>\n\
<section aria-labelledby=\"h-force\"><h2 id=\"h-force\">Decisions in force (<span id=\"n-force\">{nd}</span>)</h2>\n\
<ul id=\"decisions\" class=\"decisions\">\n",
        s = escape(space),
        n = fold["seq"],
        head = escape(fold["head"].as_str().map_or("none", |h| &h[..h.len().min(12)])),
        nd = decisions.len(),
    );
    let mut tags = std::collections::BTreeSet::new();
    // Newest first: what changed last is what a reader looks for.
    let mut order: Vec<(&String, &Value)> = decisions.iter().collect();
    order.sort_by_key(|(_, d)| std::cmp::Reverse(d["seq"].as_u64().unwrap_or(0)));
    for (key, d) in order {
        tags.extend(d["tags"].as_array().into_iter().flatten().filter_map(Value::as_str));
        main.push_str(&decision_item(key, d, false));
    }
    main.push_str("</ul>\n<p id=\"none\" hidden>No decision matches the filters.</p>\n</section>\n");
    let _ = write!(
        main,
        "<section aria-labelledby=\"h-withdrawn\"><h2 id=\"h-withdrawn\">Withdrawn (<span id=\"n-withdrawn\">{}</span>)</h2>\n<ul id=\"withdrawn\" class=\"decisions withdrawn\">\n",
        retracted.len()
    );
    for (key, d) in retracted {
        main.push_str(&decision_item(key, d, true));
    }
    main.push_str("</ul></section>\n<datalist id=\"tag-list\">");
    for t in tags {
        let _ = write!(main, "<option value=\"{}\">", escape(t));
    }
    main.push_str("</datalist>");
    let crumbs = format!(" › <span aria-current=\"page\">{}</span>", escape(space));
    let data = format!(" data-space=\"{}\" data-seq=\"{}\"", escape(space), fold["seq"]);
    layout(&format!("Space {space}"), "../../", live, &crumbs, &data, &main)
}

fn body(e: &Event) -> Value {
    serde_json::from_str(&e.body).unwrap_or(Value::Null)
}

/// One key's page: what is in force, and every event about it as a
/// timeline, newest first, each `supersedes` linked to the event it replaced.
pub fn decision_page(shown: &Shown, live: bool) -> String {
    let by_id: HashMap<&str, &Event> = shown.history.iter().map(|e| (e.id.as_str(), e)).collect();
    let in_force = shown.decision.as_ref().and_then(|d| d["id"].as_str());
    let mut main = format!("<h1>Decision <span class=\"key\">{}</span></h1>\n", escape(&shown.key));
    match (&shown.decision, &shown.retracted) {
        (Some(d), _) => {
            let _ = writeln!(
                main,
                "<p class=\"current\">In force: <span class=\"choice\">{}</span>{} (#{} revision {})</p>",
                escape(text(d, "choice")),
                extras(d),
                d["seq"],
                d["revision"]
            );
        }
        (None, Some(r)) => {
            let _ = writeln!(
                main,
                "<p class=\"current\">Withdrawn (was <span class=\"choice\">{}</span>): {}</p>",
                escape(text(r, "choice")),
                escape(text(r, "rationale"))
            );
        }
        (None, None) => main.push_str("<p class=\"current\">Nothing in force.</p>\n"),
    }
    for p in &shown.proposals {
        let _ = writeln!(
            main,
            "<p class=\"proposal\">{} proposal: <span class=\"choice\">{}</span> (#{})</p>",
            escape(p["status"].as_str().unwrap_or("proposed")),
            escape(text(p, "choice")),
            p["seq"]
        );
    }
    let _ = write!(
        main,
        "<section aria-labelledby=\"h-history\"><h2 id=\"h-history\">History ({} events)</h2>\n<ol id=\"timeline\" class=\"timeline\" reversed>\n",
        shown.history.len()
    );
    for e in shown.history.iter().rev() {
        main.push_str(&timeline_item(e, &by_id, in_force));
    }
    main.push_str("</ol></section>");
    let crumbs = format!(
        " › <a href=\"../index.html\">{s}</a> › <span aria-current=\"page\">{k}</span>",
        s = escape(&shown.space),
        k = escape(&shown.key)
    );
    let data = format!(" data-space=\"{}\" data-key=\"{}\"", escape(&shown.space), escape(&shown.key));
    layout(&format!("{} in {}", shown.key, shown.space), "../../../", live, &crumbs, &data, &main)
}

fn timeline_item(e: &Event, by_id: &HashMap<&str, &Event>, in_force: Option<&str>) -> String {
    let b = body(e);
    let supersedes = match b["supersedes"].as_str() {
        Some(id) => match by_id.get(id) {
            Some(old) => format!(
                "<p class=\"chain\">Supersedes <a href=\"#ev-{seq}\">#{seq} ({})</a></p>",
                escape(body(old)["choice"].as_str().unwrap_or(&old.kind)),
                seq = old.seq
            ),
            None => format!("<p class=\"chain\">Supersedes <code>{}</code></p>", escape(id)),
        },
        None => String::new(),
    };
    let what = match e.kind.as_str() {
        "decide" => {
            format!("Decided <span class=\"choice\">{}</span>{}", escape(text(&b, "choice")), extras(&b))
        }
        "retract" => match b["status"].as_str() {
            Some(status) => format!("Withdrew the decision ({})", escape(status)),
            None => "Withdrew the decision".to_owned(),
        },
        "propose" => format!(
            "Proposed <span class=\"choice\">{}</span> ({}){}",
            escape(text(&b, "choice")),
            escape(b["status"].as_str().unwrap_or("proposed")),
            extras(&b)
        ),
        "accept" | "reject" => {
            let verb = if e.kind == "accept" { "Accepted" } else { "Rejected" };
            let proposal = b["proposal"].as_str().unwrap_or("");
            match by_id.get(proposal) {
                Some(p) => format!(
                    "{verb} proposal <a href=\"#ev-{seq}\">#{seq} ({})</a>",
                    escape(body(p)["choice"].as_str().unwrap_or("")),
                    seq = p.seq
                ),
                None => format!("{verb} proposal <code>{}</code>", escape(proposal)),
            }
        }
        other => escape(other),
    };
    let current = if in_force == Some(e.id.as_str()) { " <span class=\"badge\">in force</span>" } else { "" };
    format!(
        "<li id=\"ev-{seq}\" class=\"event {kind}\" tabindex=\"-1\"><article>\
<h3>#{seq} · {what}{current}</h3>{title}\
<p class=\"why\"><span class=\"label\">Why</span> {why}</p>{why_not}{supersedes}\
<p class=\"by\">{actor} · <time datetime=\"{at}\">{when}</time> · id <code>{id}</code></p></article></li>\n",
        seq = e.seq,
        kind = escape(&e.kind),
        title =
            b["title"].as_str().map(|t| format!("<p class=\"title\">{}</p>", escape(t))).unwrap_or_default(),
        why = escape(text(&b, "rationale")),
        why_not = why_not(&b["rejected"]),
        actor = escape(&e.actor),
        at = e.at_ms,
        when = time(e.at_ms),
        id = escape(&e.id),
    )
}
