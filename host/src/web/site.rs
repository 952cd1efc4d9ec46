//! `dlog site`: the web pages as a static site, for `file://` or any static
//! host (GitHub Pages): no server, no event stream.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{ASSETS, SpaceSummary, decision_page, index_page, key_file, space_page};
use crate::{Error, Event, Log, Shown};

/// Events read at a time.
const PAGE: u32 = 1000;

/// What a site holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteReport {
    /// Spaces written.
    pub spaces: usize,
    /// Decision pages written (one per key ever decided).
    pub decisions: usize,
    /// Files written, assets included.
    pub files: usize,
}

fn write(path: &Path, text: &str, report: &mut SiteReport) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Error::Storage(format!("cannot write {}: {e}", path.display())))?;
    report.files += 1;
    Ok(())
}

/// Write the pages of `spaces` of `log` under `out`.
pub fn write_site(log: &Log, spaces: &[String], out: &Path) -> Result<SiteReport, Error> {
    let mut report = SiteReport::default();
    let mut summaries = Vec::new();
    for name in spaces {
        crate::lease::check_space(name)?;
        let space = log.space(name);
        let fold: Value = serde_json::from_str(&space.fold()?)
            .map_err(|e| Error::Guest(format!("the fold is not JSON: {e}")))?;
        if fold["seq"].as_u64().unwrap_or(0) == 0 {
            return Err(Error::NotFound(format!("space {name:?} has no events")));
        }
        let dir = out.join("spaces").join(name);
        write(&dir.join("index.html"), &space_page(name, &fold, false), &mut report)?;
        // One pass over the log for every key's history (`Space::show`
        // per key would read the whole log once per key).
        let mut histories: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        let mut next = 1;
        loop {
            let page = space.events(next, PAGE)?;
            for e in &page {
                let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                if let Some(key) = body["key"].as_str() {
                    histories.entry(key.to_owned()).or_default().push(e.clone());
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => next = last.seq + 1,
                _ => break,
            }
        }
        for (key, history) in histories {
            let shown = Shown::from_fold(name, &key, &fold, history);
            let file = dir.join("decisions").join(key_file(&shown.key));
            write(&file, &decision_page(&shown, false), &mut report)?;
            report.decisions += 1;
        }
        summaries.push(SpaceSummary {
            space: name.clone(),
            events: fold["seq"].as_u64().unwrap_or(0),
            decisions: fold["decisions"].as_object().map_or(0, serde_json::Map::len),
        });
        report.spaces += 1;
    }
    write(&out.join("index.html"), &index_page(&summaries, false), &mut report)?;
    for (name, _, text) in ASSETS {
        write(&out.join("assets").join(name), text, &mut report)?;
    }
    Ok(report)
}
