//! Search: what a fresh reader finds page by page from a paged checkpoint
//! is exactly what a filter over the whole fold finds.

use serde_json::Value;

use super::*;
use crate::log::{Found, Hit, Query};

/// A space of `n` keys under four areas: every key decided with tags and a
/// rejected option, every third superseded, every fifth with a proposal
/// (every tenth of those rejected), every seventh withdrawn; checkpointed,
/// then a few changes after it.
pub(super) fn space(n: u64) -> (FakeHost, Log<FakeHost>) {
    let host = store();
    let mut writer = open(&host, 0);
    let key = |i: u64| format!("area-{}/k{i:05}", i % 4);
    let mut intents = Vec::new();
    for i in 0..n {
        let tags = if i % 2 == 0 { r#"["storage","ops"]"# } else { r#"["ui"]"# };
        let body = format!(
            r#"{{"key":"{}","choice":"option {i}","rationale":"reason {i}","title":"Decision {i}","tags":{tags},"rejected":[{{"option":"alt {i}","why":"{}"}}]}}"#,
            key(i),
            if i % 2 == 0 { "too costly" } else { "too slow" }
        );
        intents.push(intent(&format!("d{i}"), "decide", body));
    }
    for i in (0..n).step_by(3) {
        intents.push(supersede(&format!("s{i}"), &key(i), &format!("new {i}"), &format!("d{i}")));
    }
    for i in (0..n).step_by(5) {
        let body =
            format!(r#"{{"key":"{}","choice":"idea {i}","rationale":"maybe","status":"draft"}}"#, key(i));
        intents.push(RawIntent { actor: "bob".into(), ..intent(&format!("p{i}"), "propose", body) });
    }
    for i in (0..n).step_by(10) {
        let body = format!(r#"{{"key":"{}","proposal":"p{i}","rationale":"no"}}"#, key(i));
        intents.push(intent(&format!("j{i}"), "reject", body));
    }
    for chunk in intents.chunks(100) {
        writer.append_batch(SPACE, chunk).expect("append");
    }
    writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    let previous = |i: u64| if i.is_multiple_of(3) { format!("s{i}") } else { format!("d{i}") };
    for i in (1..n).step_by(7) {
        writer.append(SPACE, &retract(&format!("r{i}"), &key(i), &previous(i))).expect("retract");
    }
    writer.append(SPACE, &decide("late", "area-2/zzz", "late")).expect("late");
    (host, writer)
}

/// What a plain filter over the whole fold finds, by key then seq.
fn expected(fold: &str, query: &Query) -> Vec<(String, String, u64)> {
    let fold: Value = serde_json::from_str(fold).expect("fold");
    let mut out = Vec::new();
    let section = |name: &str| fold[name].as_object().cloned().unwrap_or_default();
    let mut each = |key: &str, status: &str, record: &Value| {
        let found = matches(query, key, status, record);
        if found {
            out.push((key.to_owned(), status.to_owned(), record["seq"].as_u64().expect("seq")));
        }
    };
    for (key, d) in section("decisions") {
        each(&key, "accepted", &d);
    }
    for (key, r) in section("retracted") {
        each(&key, r["status"].as_str().unwrap_or("retracted"), &r);
    }
    for (key, by_id) in section("proposals") {
        for p in by_id.as_object().expect("by id").values() {
            each(&key, p["status"].as_str().unwrap_or("proposed"), p);
        }
    }
    out.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
    out
}

/// The filters the fixture can tell apart, checked without the guest's code.
fn matches(q: &Query, key: &str, status: &str, r: &Value) -> bool {
    let key_ok = match q.key.as_deref() {
        None => true,
        Some(k) => k.strip_suffix('*').map_or(key == k, |p| key.starts_with(p)),
    };
    let lower = |v: &Value| v.as_str().unwrap_or("").to_lowercase();
    let text_ok = q.text.as_ref().is_none_or(|t| {
        let hay = format!(
            "{} {} {} {} {}",
            key,
            lower(&r["title"]),
            lower(&r["choice"]),
            lower(&r["rationale"]),
            r["rejected"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| lower(&x["why"]) + " " + &lower(&x["option"]))
                .collect::<Vec<_>>()
                .join(" ")
        );
        t.split_whitespace().all(|w| hay.contains(&w.to_lowercase()))
    });
    let tags: Vec<String> = r["tags"].as_array().into_iter().flatten().map(lower).collect();
    key_ok
        && text_ok
        && q.tags.iter().all(|t| tags.contains(&t.to_lowercase()))
        && q.status.as_ref().is_none_or(|s| s.eq_ignore_ascii_case(status))
        && q.actor.as_ref().is_none_or(|a| {
            lower(&r["actor"]) == a.to_lowercase() || lower(&r["rejection"]["actor"]) == a.to_lowercase()
        })
}

fn triples(hits: &[Hit]) -> Vec<(String, String, u64)> {
    hits.iter().map(|h| (h.key.clone(), h.status.clone(), h.seq)).collect()
}

fn queries() -> Vec<Query> {
    let q = Query::default;
    vec![
        q(),
        Query { key: Some("area-2/*".into()), ..q() },
        Query { key: Some("area-1/k00101".into()), ..q() },
        Query { key: Some("area-9/*".into()), ..q() },
        Query { tags: vec!["STORAGE".into()], ..q() },
        Query { status: Some("draft".into()), ..q() },
        Query { status: Some("rejected".into()), ..q() },
        Query { status: Some("retracted".into()), ..q() },
        Query { actor: Some("Bob".into()), ..q() },
        Query { text: Some("too COSTLY".into()), ..q() },
        Query { text: Some("alt 1234".into()), key: Some("area-2/*".into()), ..q() },
        Query { text: Some("nothing matches this".into()), ..q() },
    ]
}

#[test]
fn a_fresh_reader_finds_exactly_what_a_filter_over_the_whole_fold_finds() {
    let (host, mut writer) = space(1500);
    let fold = writer.fold(SPACE, None).expect("fold");
    let mut empty = 0;
    for query in queries() {
        let want = expected(&fold, &query);
        empty += usize::from(want.is_empty());
        let mut cold = open(&host, 0);
        let found = cold.search(SPACE, &query, None, u32::MAX, true).expect("search");
        assert_eq!(triples(&found.hits), want, "{query:?}");
        assert_eq!(found.total, Some(want.len() as u64), "{query:?}");
        // A replica holding the whole fold answers the same.
        let warm = writer.search(SPACE, &query, None, u32::MAX, false).expect("search");
        assert_eq!(warm.hits, found.hits, "{query:?}");
        assert_eq!(warm.total, None);
        assert!(cold.take_warnings().is_empty());
    }
    assert_eq!(empty, 2, "only the queries made to match nothing find nothing");
}

#[test]
fn pages_of_hits_follow_each_other_from_a_cursor_and_add_up_to_one_search() {
    let (host, _) = space(800);
    let query = Query { tags: vec!["ui".into()], ..Query::default() };
    let all = open(&host, 0).search(SPACE, &query, None, u32::MAX, true).expect("search");
    assert!(all.hits.len() > 200, "{}", all.hits.len());
    let mut reader = open(&host, 0);
    let (mut pages, mut after) = (Vec::new(), None::<(String, u64)>);
    loop {
        let cursor = after.as_ref().map(|(k, s)| (k.as_str(), *s));
        let Found { hits, total } = reader.search(SPACE, &query, cursor, 37, true).expect("search");
        let before: usize = pages.iter().map(Vec::len).sum();
        assert_eq!(total, Some((all.hits.len() - before) as u64), "total counts from the cursor");
        let Some(last) = hits.last() else { break };
        after = Some((last.key.clone(), last.seq));
        pages.push(hits);
    }
    assert!(pages[..pages.len() - 1].iter().all(|p| p.len() == 37));
    assert_eq!(pages.concat(), all.hits);
}

#[test]
fn a_search_by_text_reads_each_page_once_and_a_key_prefix_only_its_own() {
    let (host, _) = space(3000);
    let pages = {
        let info = open(&host, 0).checkpoint(SPACE).expect("checkpoint").expect("there");
        let header = checkpoint_header(&host, &info.commit);
        let (_, root) = host.object(&header.tree).expect("root");
        let entries = checkpoint::decode_tree(&root).expect("tree");
        let tree = checkpoint::find_entry(&entries, "pages", true).expect("pages");
        let (_, tree) = host.object(&tree).expect("pages");
        checkpoint::decode_tree(&tree).expect("tree").len() - 1
    };
    let reads = |query: Query| {
        let mut cold = open(&host, 0);
        let before = host.reads();
        let found = cold.search(SPACE, &query, None, 10, false).expect("search");
        (host.reads() - before, found.hits.len())
    };
    let (text, hits) = reads(Query { text: Some("nothing matches this".into()), ..Query::default() });
    assert_eq!(hits, 0);
    // The pages, the commits of a few events the replica catches up on, the
    // checkpoint's own objects: no more.
    assert!(text >= pages && text < pages + 40, "{text} reads for {pages} pages");
    let (prefix, hits) = reads(Query { key: Some("area-3/k0004*".into()), ..Query::default() });
    assert!(hits > 0);
    assert!(prefix + pages / 2 < text, "a prefix read {prefix}, a text search {text}");
    // A first page of ten hits stops at the page that filled it.
    let (first, hits) = reads(Query::default());
    assert_eq!(hits, 10);
    assert!(first + pages / 2 < text, "a first page read {first}, a whole scan {text}");
}
