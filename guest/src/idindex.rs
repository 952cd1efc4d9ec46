//! The id index: which seq holds an intent id, without loading every id.
//!
//! Idempotency needs "has this id been appended, and at which seq?" for any
//! id ever used in a space. Holding every id in memory made a new process's
//! first append load the whole log's ids (1.3 s and 174 MiB at 1M events).
//! Instead each checkpoint's tree carries `ids/`: a few **runs**, each
//! covering a contiguous range of seqs, shaped like an LSM tree's sorted runs:
//!
//! ```text
//! ids/<level:02>-<first:012>-<last:012>/meta      "DLOGIDS1", count, bloom, page fences
//! ids/<level:02>-<first:012>-<last:012>/p000000   sorted 16-byte records, 1024 a page
//! ```
//!
//! A record is the id's 64-bit hash (the first 8 bytes of SHA-1 of the id)
//! and its seq, both big-endian, sorted by (hash, seq). `meta` holds the
//! record count, a bloom filter over the hashes (10 bits per id, 7 probes:
//! about 1% false positives) and the first hash of every page. A lookup
//! tests each run's bloom (held in memory: ~1.3 bytes per event), and only
//! on a hit reads the one page the fences point at; a hash hit is confirmed
//! by loading the event, so hash collisions cost a read, never a wrong answer.
//!
//! Each checkpoint adds one level-0 run for the events since the previous
//! one; whenever the four newest runs share a level they are merged into one
//! run of the next level (a base-4 counter), so a space has at most three
//! runs per level: O(log n) runs, each id rewritten O(log n) times. A run's
//! bytes depend only on its level, range and ids, so a merged run is
//! byte-identical to one built directly, every host writes the same objects,
//! and `verify` rebuilds every run from the chain and compares tree ids.
//! Merges stream page by page: memory stays at a few pages plus the bloom.

use std::ops::Range;

use crate::checkpoint::{decode_tree, encode_tree};
use crate::host::ObjectKind;

/// Records per page (16 KiB pages).
pub const PAGE_RECORDS: usize = 1024;
/// How many runs of one level are merged into one of the next.
pub const MERGE_WIDTH: usize = 4;
const RECORD_BYTES: usize = 16;
const MAGIC: &[u8; 8] = b"DLOGIDS1";
const BLOOM_BITS_PER_ID: u64 = 10;
const BLOOM_PROBES: u64 = 7;
/// The name of a run's metadata blob.
pub const META: &str = "meta";

/// The 64-bit hash an id is indexed by.
pub fn id_hash(id: &str) -> u64 {
    let digest = sha1_smol::Sha1::from(id.as_bytes()).digest().bytes();
    u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ])
}

/// One indexed event: its id's hash and its seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    /// [`id_hash`] of the event's id.
    pub hash: u64,
    /// The event's seq.
    pub seq: u64,
}

/// What a run covers, as its directory name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunName {
    /// 0 for a checkpoint's own run, L+1 for a merge of level-L runs.
    pub level: u32,
    /// The first seq it covers.
    pub first: u64,
    /// The last seq it covers.
    pub last: u64,
}

impl RunName {
    /// The directory name, e.g. `01-000000000001-000000002048`.
    pub fn encode(&self) -> String {
        format!("{:02}-{:012}-{:012}", self.level, self.first, self.last)
    }

    /// Parse a directory name.
    pub fn parse(name: &str) -> Result<RunName, String> {
        let bad = || format!("id run name {name:?} is not <level>-<first seq>-<last seq>");
        let mut parts = name.split('-');
        let (Some(level), Some(first), Some(last), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let run = RunName {
            level: level.parse().map_err(|_| bad())?,
            first: first.parse().map_err(|_| bad())?,
            last: last.parse().map_err(|_| bad())?,
        };
        if run.first == 0 || run.last < run.first || run.encode() != name {
            return Err(bad());
        }
        Ok(run)
    }

    /// How many events it covers.
    pub fn count(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// Where to merge: the start of the newest [`MERGE_WIDTH`] runs if they all
/// have the same level (runs ordered oldest first).
pub fn merge_plan(levels: &[u32]) -> Option<usize> {
    let start = levels.len().checked_sub(MERGE_WIDTH)?;
    let newest = &levels[start..];
    newest.iter().all(|&l| l == newest[0]).then_some(start)
}

/// The bloom size for `count` ids: 10 bits each, rounded up to 64 bits.
fn bloom_bits_for(count: u64) -> Option<u64> {
    count.checked_mul(BLOOM_BITS_PER_ID)?.div_ceil(64).max(1).checked_mul(64)
}

/// Why a run could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The stored run is malformed, or does not match what names it.
    Damaged(String),
    /// Reading or writing an object failed.
    Storage(String),
}

impl From<String> for RunError {
    fn from(problem: String) -> RunError {
        RunError::Damaged(problem)
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Damaged(m) | RunError::Storage(m) => f.write_str(m),
        }
    }
}

/// A bloom filter over id hashes, sized by the number of ids it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bloom {
    bits: Vec<u8>,
}

impl Bloom {
    fn for_count(count: u64) -> Bloom {
        let bits = bloom_bits_for(count).unwrap_or(64);
        Bloom { bits: vec![0; (bits / 8) as usize] }
    }

    /// Bit positions of `hash`: double hashing (Kirsch–Mitzenmacher), the
    /// second hash a splitmix64 finalizer of the first, made odd.
    fn probes(&self, hash: u64) -> impl Iterator<Item = usize> {
        let m = self.bits.len() as u64 * 8;
        let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let step = (z ^ (z >> 31)) | 1;
        (0..BLOOM_PROBES).map(move |i| (hash.wrapping_add(i.wrapping_mul(step)) % m) as usize)
    }

    fn insert(&mut self, hash: u64) {
        for bit in self.probes(hash).collect::<Vec<_>>() {
            self.bits[bit / 8] |= 1 << (bit % 8);
        }
    }

    fn contains(&self, hash: u64) -> bool {
        self.probes(hash).all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
    }
}

/// A run's `meta` blob: record count, bloom filter, first hash of each page.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Meta {
    count: u64,
    bloom: Bloom,
    fences: Vec<u64>,
}

fn pages_for(count: u64) -> usize {
    count.div_ceil(PAGE_RECORDS as u64) as usize
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.bloom.bits.len() + 8 * self.fences.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&(self.bloom.bits.len() as u64 * 8).to_be_bytes());
        out.extend_from_slice(&self.bloom.bits);
        for fence in &self.fences {
            out.extend_from_slice(&fence.to_be_bytes());
        }
        out
    }

    /// Decode a run's meta, which must describe `expected` records (checked
    /// before anything is sized from the blob's own fields).
    fn decode(bytes: &[u8], expected: u64) -> Result<Meta, RunError> {
        if bytes.len() < 24 || &bytes[..8] != MAGIC {
            return Err("id run meta does not start with DLOGIDS1".to_owned().into());
        }
        let count = be_u64(&bytes[8..]);
        if count != expected {
            return Err(format!("id run meta counts {count} records, not {expected}").into());
        }
        let bloom_bits = be_u64(&bytes[16..]);
        if Some(bloom_bits) != bloom_bits_for(count) {
            return Err(format!("id run meta has a {bloom_bits}-bit bloom for {count} ids").into());
        }
        let length =
            (bloom_bits / 8).checked_add(8 * pages_for(count) as u64).and_then(|l| l.checked_add(24));
        if length != Some(bytes.len() as u64) {
            return Err(format!("id run meta is {} bytes, not what {count} ids need", bytes.len()).into());
        }
        let bloom_end = 24 + (bloom_bits / 8) as usize;
        let bloom = Bloom { bits: bytes[24..bloom_end].to_vec() };
        let fences = bytes[bloom_end..].chunks_exact(8).map(be_u64).collect();
        Ok(Meta { count, bloom, fences })
    }
}

fn page_name(index: usize) -> String {
    format!("p{index:06}")
}

/// Where a run writer puts objects (the host, or only a hasher in `verify`).
pub trait ObjectSink {
    /// Store an object; its id.
    fn put(&mut self, kind: ObjectKind, data: Vec<u8>) -> Result<String, RunError>;
}

/// Writes one run from records given in sorted order, a page at a time.
#[derive(Debug)]
pub struct RunWriter {
    name: RunName,
    page: Vec<u8>,
    pages: Vec<(String, ObjectKind, String)>,
    fences: Vec<u64>,
    bloom: Bloom,
    written: u64,
    previous: Option<Record>,
}

impl RunWriter {
    /// A writer for the run `name` (its record count is `name.count()`).
    pub fn new(name: RunName) -> RunWriter {
        RunWriter {
            name,
            page: Vec::with_capacity(PAGE_RECORDS * RECORD_BYTES),
            pages: Vec::new(),
            fences: Vec::new(),
            bloom: Bloom::for_count(name.count()),
            written: 0,
            previous: None,
        }
    }

    /// Add the next record (strictly greater than the previous one).
    pub fn push(&mut self, record: Record, sink: &mut impl ObjectSink) -> Result<(), RunError> {
        if self.previous.is_some_and(|p| p >= record) {
            return Err(format!("id run {} records are not sorted", self.name.encode()).into());
        }
        if record.seq < self.name.first || record.seq > self.name.last {
            return Err(format!("seq {} is outside id run {}", record.seq, self.name.encode()).into());
        }
        self.previous = Some(record);
        if self.page.is_empty() {
            self.fences.push(record.hash);
        }
        self.page.extend_from_slice(&record.hash.to_be_bytes());
        self.page.extend_from_slice(&record.seq.to_be_bytes());
        self.bloom.insert(record.hash);
        self.written += 1;
        if self.page.len() == PAGE_RECORDS * RECORD_BYTES {
            self.flush(sink)?;
        }
        Ok(())
    }

    fn flush(&mut self, sink: &mut impl ObjectSink) -> Result<(), RunError> {
        let data = std::mem::replace(&mut self.page, Vec::with_capacity(PAGE_RECORDS * RECORD_BYTES));
        let id = sink.put(ObjectKind::Blob, data)?;
        self.pages.push((page_name(self.pages.len()), ObjectKind::Blob, id));
        Ok(())
    }

    /// Write the last page, the meta blob and the run's tree; the tree's id.
    pub fn finish(mut self, sink: &mut impl ObjectSink) -> Result<String, RunError> {
        if self.written != self.name.count() {
            return Err(format!(
                "id run {} got {} records for {} seqs",
                self.name.encode(),
                self.written,
                self.name.count()
            )
            .into());
        }
        if !self.page.is_empty() {
            self.flush(sink)?;
        }
        let meta = Meta { count: self.written, bloom: self.bloom, fences: self.fences }.encode();
        let meta_id = sink.put(ObjectKind::Blob, meta)?;
        let mut entries = self.pages;
        entries.push((META.to_owned(), ObjectKind::Blob, meta_id));
        sink.put(ObjectKind::Tree, encode_tree(&entries))
    }
}

/// Build the run `name` from its records, in any order.
pub fn build_run(
    name: RunName,
    mut records: Vec<Record>,
    sink: &mut impl ObjectSink,
) -> Result<String, RunError> {
    records.sort_unstable();
    let mut writer = RunWriter::new(name);
    for record in records {
        writer.push(record, sink)?;
    }
    writer.finish(sink)
}

/// Read access to stored objects, for readers and merges.
pub trait ObjectSource {
    /// The bytes of an object of the given kind.
    fn get(&self, id: &str, kind: ObjectKind) -> Result<Vec<u8>, RunError>;
}

/// An opened run: its bloom and fences in memory, its pages on demand.
#[derive(Clone, Debug)]
pub struct RunReader {
    /// What it covers.
    pub name: RunName,
    /// Its tree.
    pub tree: String,
    meta: Meta,
    pages: Vec<String>,
}

impl RunReader {
    /// Open the run stored in `tree`, checking its shape.
    pub fn open(name: RunName, tree: &str, source: &impl ObjectSource) -> Result<RunReader, RunError> {
        let at = name.encode();
        let entries = decode_tree(&source.get(tree, ObjectKind::Tree)?)?;
        let mut pages = Vec::new();
        let mut meta = None;
        for (entry, is_dir, id) in entries {
            if is_dir {
                return Err(format!("id run {at} holds a directory {entry:?}").into());
            } else if entry == META {
                meta = Some(id);
            } else if entry == page_name(pages.len()) {
                pages.push(id);
            } else {
                return Err(format!("id run {at} holds an unexpected entry {entry:?}").into());
            }
        }
        let meta_id = meta.ok_or_else(|| format!("id run {at} has no meta"))?;
        let meta = match Meta::decode(&source.get(&meta_id, ObjectKind::Blob)?, name.count()) {
            Ok(meta) => meta,
            Err(RunError::Damaged(e)) => return Err(format!("id run {at}: {e}").into()),
            Err(e) => return Err(e),
        };
        if pages.len() != pages_for(meta.count) {
            return Err(format!("id run {at} holds {} records in {} pages", meta.count, pages.len()).into());
        }
        Ok(RunReader { name, tree: tree.to_owned(), meta, pages })
    }

    /// Pages that may hold `hash` (fences are each page's first hash; equal
    /// hashes may spill over a page boundary).
    fn candidate_pages(&self, hash: u64) -> Range<usize> {
        let fences = &self.meta.fences;
        let start = fences.partition_point(|&f| f < hash).saturating_sub(1);
        let end = fences.partition_point(|&f| f <= hash);
        start..end.max(start)
    }

    /// The seqs whose id hashes to `hash` (usually none, almost always at
    /// most one).
    pub fn seqs_of(&self, hash: u64, source: &impl ObjectSource) -> Result<Vec<u64>, RunError> {
        if !self.meta.bloom.contains(hash) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for page in self.candidate_pages(hash) {
            let records = self.page(page, source)?;
            let from = records.partition_point(|r| r.hash < hash);
            out.extend(records[from..].iter().take_while(|r| r.hash == hash).map(|r| r.seq));
        }
        Ok(out)
    }

    /// The records of page `index`, checked to lie in the run's range.
    fn page(&self, index: usize, source: &impl ObjectSource) -> Result<Vec<Record>, RunError> {
        let bytes = source.get(&self.pages[index], ObjectKind::Blob)?;
        let full = (self.meta.count as usize).saturating_sub(index * PAGE_RECORDS).min(PAGE_RECORDS);
        if bytes.len() != full * RECORD_BYTES {
            return Err(format!("id run {} page {index} is {} bytes", self.name.encode(), bytes.len()).into());
        }
        let records: Vec<Record> = bytes
            .chunks_exact(RECORD_BYTES)
            .map(|r| Record { hash: be_u64(&r[..8]), seq: be_u64(&r[8..]) })
            .collect();
        if records.iter().any(|r| r.seq < self.name.first || r.seq > self.name.last) {
            return Err(
                format!("id run {} page {index} names a seq outside the run", self.name.encode()).into()
            );
        }
        Ok(records)
    }
}

/// Merge adjacent runs (oldest first, all of one level) into one run of the
/// next level, streaming their pages; the new run's name and tree.
pub fn merge_runs(
    inputs: &[RunReader],
    source: &impl ObjectSource,
    sink: &mut impl ObjectSink,
) -> Result<(RunName, String), RunError> {
    let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
        return Err("no id runs to merge".to_owned().into());
    };
    if inputs.windows(2).any(|w| w[0].name.last + 1 != w[1].name.first) {
        return Err("id runs to merge are not adjacent".to_owned().into());
    }
    let name = RunName { level: first.name.level + 1, first: first.name.first, last: last.name.last };
    let mut writer = RunWriter::new(name);
    // One cursor per input: (next page, records of the current page, position).
    let mut cursors: Vec<(usize, Vec<Record>, usize)> = inputs.iter().map(|_| (0, Vec::new(), 0)).collect();
    loop {
        let mut best: Option<(usize, Record)> = None;
        for (i, (next_page, records, pos)) in cursors.iter_mut().enumerate() {
            if *pos == records.len() && *next_page < inputs[i].pages.len() {
                *records = inputs[i].page(*next_page, source)?;
                *next_page += 1;
                *pos = 0;
            }
            if let Some(&record) = records.get(*pos)
                && best.is_none_or(|(_, b)| record < b)
            {
                best = Some((i, record));
            }
        }
        let Some((i, record)) = best else { break };
        cursors[i].2 += 1;
        writer.push(record, sink)?;
    }
    Ok((name, writer.finish(sink)?))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;
    use crate::gitobj::object_id;

    #[derive(Default)]
    struct Store(RefCell<HashMap<String, (ObjectKind, Vec<u8>)>>);

    impl ObjectSink for &Store {
        fn put(&mut self, kind: ObjectKind, data: Vec<u8>) -> Result<String, RunError> {
            let id = object_id(kind, &data);
            self.0.borrow_mut().insert(id.clone(), (kind, data));
            Ok(id)
        }
    }

    impl ObjectSource for Store {
        fn get(&self, id: &str, kind: ObjectKind) -> Result<Vec<u8>, RunError> {
            match self.0.borrow().get(id) {
                Some((k, data)) if *k == kind => Ok(data.clone()),
                _ => Err(RunError::Storage(format!("no {} {id}", kind.as_str()))),
            }
        }
    }

    fn records(first: u64, last: u64) -> Vec<Record> {
        (first..=last).map(|seq| Record { hash: id_hash(&format!("id-{seq}")), seq }).collect()
    }

    fn run(store: &Store, level: u32, first: u64, last: u64) -> RunReader {
        let name = RunName { level, first, last };
        let tree = build_run(name, records(first, last), &mut &*store).unwrap();
        RunReader::open(name, &tree, store).unwrap()
    }

    #[test]
    fn every_indexed_id_is_found_at_its_seq_and_absent_ids_mostly_skip_the_pages() {
        let store = Store::default();
        let reader = run(&store, 0, 1, 5000);
        assert_eq!(reader.pages.len(), 5);
        for seq in 1..=5000 {
            assert_eq!(reader.seqs_of(id_hash(&format!("id-{seq}")), &store).unwrap(), [seq]);
        }
        let false_positives =
            (0..10_000).filter(|i| reader.meta.bloom.contains(id_hash(&format!("absent-{i}")))).count();
        assert!(false_positives < 300, "{false_positives} of 10000 absent ids pass the bloom");
        for i in 0..1000 {
            assert!(reader.seqs_of(id_hash(&format!("absent-{i}")), &store).unwrap().is_empty());
        }
    }

    #[test]
    fn a_merged_run_is_byte_identical_to_one_built_directly() {
        let store = Store::default();
        let inputs: Vec<RunReader> = (0..4).map(|i| run(&store, 1, 1 + i * 700, 700 + i * 700)).collect();
        let (name, merged) = merge_runs(&inputs, &store, &mut &store).unwrap();
        assert_eq!(name, RunName { level: 2, first: 1, last: 2800 });
        let direct = build_run(name, records(1, 2800), &mut &store).unwrap();
        assert_eq!(merged, direct);
        let reader = RunReader::open(name, &merged, &store).unwrap();
        assert_eq!(reader.seqs_of(id_hash("id-2799"), &store).unwrap(), [2799]);
    }

    #[test]
    fn equal_hashes_across_a_page_boundary_are_all_found() {
        let store = Store::default();
        let name = RunName { level: 0, first: 1, last: 2 * PAGE_RECORDS as u64 };
        // Every record shares one hash: fences are all equal.
        let same: Vec<Record> = (name.first..=name.last).map(|seq| Record { hash: 42, seq }).collect();
        let tree = build_run(name, same, &mut &store).unwrap();
        let reader = RunReader::open(name, &tree, &store).unwrap();
        assert_eq!(reader.seqs_of(42, &store).unwrap().len(), 2 * PAGE_RECORDS);
    }

    #[test]
    fn runs_merge_like_a_base_four_counter() {
        assert_eq!(merge_plan(&[0, 0, 0]), None);
        assert_eq!(merge_plan(&[0, 0, 0, 0]), Some(0));
        assert_eq!(merge_plan(&[2, 1, 1, 1, 1]), Some(1));
        assert_eq!(merge_plan(&[1, 1, 1, 0]), None);
    }

    #[test]
    fn damaged_runs_are_refused_with_a_reason() {
        let store = Store::default();
        let reader = run(&store, 0, 1, 10);
        assert!(RunName::parse("00-000000000001-000000000010").is_ok());
        for bad in ["0-1-10", "00-000000000010-000000000001", "00-000000000000-000000000001", "x"] {
            assert!(RunName::parse(bad).is_err(), "{bad}");
        }
        let wrong = RunName { level: 0, first: 1, last: 11 };
        assert!(RunReader::open(wrong, &reader.tree, &store).unwrap_err().to_string().contains("records"));
        let name = RunName { level: 0, first: 1, last: 2 };
        let unsorted = [Record { hash: 2, seq: 1 }, Record { hash: 1, seq: 1 }];
        let mut writer = RunWriter::new(name);
        writer.push(unsorted[0], &mut &store).unwrap();
        assert!(writer.push(unsorted[1], &mut &store).unwrap_err().to_string().contains("not sorted"));
        assert!(Meta::decode(b"DLOGIDS2________________", 0).is_err());
        // A count field that would size a huge bloom is refused, not allocated.
        let mut huge = b"DLOGIDS1".to_vec();
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(Meta::decode(&huge, u64::MAX).is_err());
        assert!(Meta::decode(&huge, 10).unwrap_err().to_string().contains("not 10"));
    }
}
