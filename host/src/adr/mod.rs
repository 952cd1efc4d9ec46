//! Architecture Decision Records: reading a directory of them into a
//! space, and writing a space back out as one.
//!
//! Teams keep ADRs as Markdown files (MADR 2.x–4.x with or without YAML
//! front matter, Michael Nygard's as adr-tools writes them, log4brains'
//! date-prefixed ones). [`read_dir`] parses such a directory, [`plan`]
//! turns the records into intents in an order that keeps every
//! `supersedes` valid, and [`export()`] writes a space as numbered files and
//! an index. Nothing a record says is dropped: what no field holds is kept
//! in the event's `meta.adr`, and the import report names it.

mod export;
mod markdown;
mod parse;
mod plan;

use std::path::Path;

pub use export::{Exported, Style, export};
pub use parse::{Adr, Relation, skip_reason};
pub use plan::{Mapped, Plan, plan, record_id};

use crate::Error;

/// A file that was not read as a record, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The file name.
    pub file: String,
    /// Why it was skipped.
    pub reason: String,
}

/// Parse every record in `dir` (not its subdirectories, which are
/// reported as skipped). A file that cannot be read or parsed fails the
/// whole read, naming the file, so an import never half-happens.
pub fn read_dir(dir: &Path) -> Result<(Vec<Adr>, Vec<Skipped>), Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::Invalid(format!("cannot read the ADR directory {}: {e}", dir.display())))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Storage(format!("reading {}: {e}", dir.display())))?;
        names.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
    }
    names.sort();
    let (mut adrs, mut skipped) = (Vec::new(), Vec::new());
    for (name, path) in names {
        if path.is_dir() {
            skipped.push(Skipped {
                file: name,
                reason: "a directory (records are read from DIR itself)".into(),
            });
            continue;
        }
        let bytes =
            std::fs::read(&path).map_err(|e| Error::Storage(format!("reading {}: {e}", path.display())))?;
        let Ok(text) = String::from_utf8(bytes) else {
            if name.to_lowercase().ends_with(".md") {
                return Err(Error::Invalid(format!("{} is not UTF-8 text", path.display())));
            }
            skipped.push(Skipped { file: name, reason: "not a Markdown file".into() });
            continue;
        };
        if let Some(reason) = skip_reason(&name, &text) {
            skipped.push(Skipped { file: name, reason: reason.into() });
            continue;
        }
        let adr = Adr::parse(&name, &text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        adrs.push(adr);
    }
    Ok((adrs, skipped))
}
