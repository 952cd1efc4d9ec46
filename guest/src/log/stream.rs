//! The fold at the head in pieces of bounded size: the same bytes as
//! [`Log::fold`], written from the checkpoint's pages one at a time, so that
//! a space whose fold is larger than the guest's memory can still be read
//! whole (`dlog fold --json`).

use super::Log;
use super::replica::Replica;
use crate::canonical::write_string;
use crate::error::Error;
use crate::fold::json::{write_decision, write_proposals, write_retraction};
use crate::host::Host;
use crate::model;
use crate::pages::KeyRecord;

/// Where the next piece of a fold starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldCursor {
    /// The seq of the head the fold is of.
    pub seq: u64,
    /// That head's commit: a later piece refuses another head.
    pub head: String,
    /// The map being written: 0 `decisions`, 1 `proposals`, 2 `retracted`.
    pub part: u8,
    /// The last key written in it, in byte order.
    pub key: String,
}

/// A piece of a fold, and where the next one starts (none after the last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldPiece {
    /// The piece's bytes: the pieces in order are the fold's canonical JSON.
    pub text: String,
    /// Where the next piece starts.
    pub next: Option<FoldCursor>,
}

const DECISIONS: u8 = 0;
const PROPOSALS: u8 = 1;
const RETRACTED: u8 = 2;

impl<H: Host> Log<H> {
    /// The piece of `space`'s fold at its head after `after` (from the
    /// start when none), of about `size` bytes (at least one record).
    /// Every piece after the first is of the head the first was read at:
    /// this instance goes on from what it holds, without a catch-up; an
    /// instance that does not hold that head any more (a new one, or one
    /// that appended since) catches up, and if the head moved, refuses with
    /// a head conflict, and the caller starts again.
    pub fn fold_piece(
        &mut self,
        space: &str,
        after: Option<&FoldCursor>,
        size: u32,
    ) -> Result<FoldPiece, Error> {
        model::validate_space(space)?;
        let size = usize::try_from(size).unwrap_or(usize::MAX).max(1);
        self.paged(space, |log| {
            let (ctx, replica) = match after {
                None => log.sync(space)?,
                Some(cursor) => {
                    let Log { ctx, replicas } = &mut *log;
                    let replica = replicas.entry(space.to_owned()).or_insert_with(|| Replica::cold(space));
                    // Pieces read pages at the replica's state without a
                    // catch-up, so that they are all of one head. A replica
                    // that went cold in between (a trap) catches up, and
                    // goes on if the head has not moved.
                    if replica.cold || replica.state.head.as_deref() != Some(cursor.head.as_str()) {
                        ctx.refresh(replica)?;
                    }
                    if replica.state.head.as_deref() != Some(cursor.head.as_str()) {
                        return Err(Error::HeadConflict { expected_seq: cursor.seq, actual: replica.head() });
                    }
                    (ctx, replica)
                }
            };
            let mut writer = Writer { w: String::new(), size, run: None, last: String::new() };
            let (mut part, mut from) = match after {
                Some(c) => (c.part, c.key.clone()),
                None => {
                    replica.state.write_opening(&mut writer.w);
                    writer.w.push('{');
                    (DECISIONS, String::new())
                }
            };
            while part <= RETRACTED {
                if part == RETRACTED && from.is_empty() {
                    writer.w.push_str(",\"retracted\":{");
                }
                // Whether the part's map already has an entry: it then needs
                // a comma before the next, and `proposals` (written only when
                // it has entries) is open.
                let mut written = !from.is_empty();
                let mut stopped = false;
                ctx.each_record(replica, &from, |key, record| {
                    if key == from {
                        return true;
                    }
                    if let Some(entry) = entry(part, key, record, written) {
                        if !written && part == PROPOSALS {
                            writer.w.push_str(",\"proposals\":{");
                        }
                        written = true;
                        writer.add(key, entry);
                        stopped = writer.full();
                    }
                    !stopped
                })?;
                if stopped {
                    let key = std::mem::take(&mut writer.last);
                    let next = FoldCursor {
                        seq: replica.state.seq,
                        head: replica.state.head.clone().unwrap_or_default(),
                        part,
                        key,
                    };
                    return Ok(FoldPiece { text: writer.w, next: Some(next) });
                }
                writer.flush();
                match part {
                    DECISIONS => {
                        writer.w.push('}');
                        replica.state.write_middle(&mut writer.w);
                    }
                    PROPOSALS if written => writer.w.push('}'),
                    PROPOSALS => {}
                    _ => {
                        writer.w.push('}');
                        replica.state.write_closing(&mut writer.w);
                    }
                }
                part += 1;
                from = String::new();
            }
            Ok(FoldPiece { text: writer.w, next: None })
        })
    }
}

/// `key`'s entry in map `part`, `"key":{…}` with a comma before it unless
/// it is the map's first; none when the key has nothing there.
fn entry(part: u8, key: &str, record: &KeyRecord, comma: bool) -> Option<String> {
    let mut w = String::new();
    if comma {
        w.push(',');
    }
    write_string(key, &mut w);
    w.push(':');
    match part {
        DECISIONS => write_decision(&mut w, record.decision.as_ref()?),
        PROPOSALS => write_proposals(&mut w, record.proposals.as_ref()?),
        _ => write_retraction(&mut w, record.retracted.as_ref()?),
    }
    Some(w)
}

/// A piece being written. Pages hold keys in byte order, RFC 8785 sorts a
/// map's keys by UTF-16 code units, and the two differ only where keys that
/// share a prefix go on with a character from U+E000 up (U+E000–U+FFFF sort
/// after the surrogates of U+10000 and up in UTF-16, before them in bytes).
/// Such keys are adjacent in byte order, so a run of them is held back and
/// written sorted by UTF-16; a piece never ends inside a run.
struct Writer {
    w: String,
    size: usize,
    /// The run held back: its prefix and its entries (key, text).
    run: Option<(String, Vec<(String, String)>)>,
    /// The last key added, in byte order: where the next piece resumes.
    last: String,
}

impl Writer {
    fn add(&mut self, key: &str, entry: String) {
        self.last = key.to_owned();
        if let Some((prefix, entries)) = &mut self.run {
            if in_run(prefix, key) {
                entries.push((key.to_owned(), entry));
                return;
            }
            self.flush();
        }
        match key.bytes().position(|b| b >= 0xEE) {
            Some(at) => self.run = Some((key[..at].to_owned(), vec![(key.to_owned(), entry)])),
            None => self.w.push_str(&entry),
        }
    }

    /// Write the run held back, sorted by UTF-16. The first entry of the
    /// run in bytes carries the comma rule of the map's first entry, so
    /// commas are moved to where the sorted order puts them.
    fn flush(&mut self) {
        let Some((_, mut entries)) = self.run.take() else { return };
        let lead_comma = entries[0].1.starts_with(',');
        entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        for (i, (_, text)) in entries.iter().enumerate() {
            let body = text.strip_prefix(',').unwrap_or(text);
            if i > 0 || lead_comma {
                self.w.push(',');
            }
            self.w.push_str(body);
        }
    }

    /// The piece is big enough and may end here (not inside a run).
    fn full(&self) -> bool {
        self.run.is_none() && self.w.len() >= self.size
    }
}

/// `key` belongs to the run of keys that go on from `prefix` with a
/// character from U+E000 up.
fn in_run(prefix: &str, key: &str) -> bool {
    key.len() > prefix.len() && key.starts_with(prefix) && key.as_bytes()[prefix.len()] >= 0xEE
}
