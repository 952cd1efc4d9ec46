//! A replica's view of its checkpoint's index: the commit of any seq before
//! the checkpoint (from the `index/` segments) and the seq of any id (from
//! the `ids/` runs), each read on demand and cached a little, so that a
//! replica holds the fold and the events since its checkpoint, never the
//! whole log. Also the writing side: extending both for a new checkpoint.

use std::cell::{Ref, RefCell};
use std::collections::HashMap;

use super::Stored;
use super::ctx::Ctx;
use super::replica::{KnownCheckpoint, Replica};
use crate::checkpoint::{self, IndexEntry};
use crate::error::Error;
use crate::gitobj;
use crate::host::{Host, ObjectKind};
use crate::idindex::{self, ObjectSink, ObjectSource, Record, RunError, RunName, RunReader};

/// Why an index lookup failed: the index is damaged (the caller can replay
/// the log instead), or the log itself could not be read.
#[derive(Debug)]
pub(super) enum IndexError {
    /// The checkpoint's index is unreadable or inconsistent.
    Damaged(String),
    /// Reading the log failed.
    Log(Error),
}

impl From<Error> for IndexError {
    fn from(e: Error) -> IndexError {
        IndexError::Log(e)
    }
}

impl From<RunError> for IndexError {
    fn from(e: RunError) -> IndexError {
        match e {
            RunError::Damaged(m) => IndexError::Damaged(m),
            RunError::Storage(m) => IndexError::Log(Error::Storage(m)),
        }
    }
}

impl IndexError {
    /// As a log error: damage is corruption.
    pub(super) fn into_error(self) -> Error {
        match self {
            IndexError::Damaged(m) => Error::Corrupt(m),
            IndexError::Log(e) => e,
        }
    }
}

/// A read failure as a run sees it: storage failures stay storage failures
/// (they do not mean the index is damaged), anything else is damage.
fn run_error(e: Error) -> RunError {
    match e {
        Error::Storage(m) => RunError::Storage(m),
        other => RunError::Damaged(other.to_string()),
    }
}

fn damaged(e: impl Into<String>) -> IndexError {
    IndexError::Damaged(e.into())
}

/// What a replica has read of its checkpoint's index. Every part is a pure
/// function of the checkpoint's (immutable) objects.
#[derive(Debug, Default)]
pub(super) struct IndexCache {
    /// The id runs, oldest first, bloom filters loaded.
    runs: Option<Vec<RunReader>>,
    /// Runs of an earlier checkpoint, reused by tree id when still listed.
    earlier_runs: Vec<RunReader>,
    /// The index groups: (first seq, tree id).
    groups: Option<Vec<(u64, String)>>,
    /// The last group read: its position and its segments (last seq, blob id).
    group: Option<(usize, Vec<(u64, String)>)>,
    /// The last segment read.
    segment: Vec<IndexEntry>,
}

impl IndexCache {
    /// Forget what belonged to the previous checkpoint (keeping its runs'
    /// readers, most of which the next checkpoint lists again).
    pub(super) fn reset(&mut self) {
        let runs = self.runs.take().unwrap_or_default();
        *self = IndexCache { earlier_runs: runs, ..IndexCache::default() };
    }
}

impl<H: Host> ObjectSource for Ctx<H> {
    fn get(&self, id: &str, kind: ObjectKind) -> Result<Vec<u8>, RunError> {
        self.read(id, kind).map_err(run_error)
    }
}

/// Writes objects through the host, checking the ids it returns.
struct HostSink<'a, H>(&'a Ctx<H>);

impl<H: Host> ObjectSink for HostSink<'_, H> {
    fn put(&mut self, kind: ObjectKind, data: Vec<u8>) -> Result<String, RunError> {
        let id = gitobj::object_id(kind, &data);
        self.0.write(kind, &data, &id).map_err(run_error)?;
        Ok(id)
    }
}

/// Computes ids only (for `verify`, which rebuilds runs to compare them).
pub(super) struct HashOnly;

impl ObjectSink for HashOnly {
    fn put(&mut self, kind: ObjectKind, data: Vec<u8>) -> Result<String, RunError> {
        Ok(gitobj::object_id(kind, &data))
    }
}

impl<H: Host> Ctx<H> {
    /// The entries of a tree, as (name, is a directory, id).
    fn tree_entries(&self, tree: &str) -> Result<Vec<(String, bool, String)>, IndexError> {
        Ok(self.tree(tree).map_err(run_error)?)
    }

    /// The commit of `seq`, from the replica's tail or its checkpoint's index.
    pub(super) fn seq_commit(&self, replica: &Replica, seq: u64) -> Result<String, IndexError> {
        if let Some(commit) = replica.commit_of(seq) {
            return Ok(commit);
        }
        let checkpoint = match &replica.checkpoint {
            Some(c) if seq >= 1 && seq <= c.seq => c,
            _ => return Err(Error::Storage(format!("seq {seq} is not in the replica's index")).into()),
        };
        let mut cache = replica.index.borrow_mut();
        let cached = cache.segment.first().and_then(|e| cache.segment.get(seq.checked_sub(e.seq)? as usize));
        if let Some(entry) = cached.filter(|e| e.seq == seq) {
            return Ok(entry.commit.clone());
        }
        if cache.groups.is_none() {
            let mut groups = Vec::new();
            for (name, is_dir, id) in self.tree_entries(&checkpoint.index_tree)? {
                match checkpoint::parse_group_name(&name) {
                    Some(first) if is_dir => groups.push((first, id)),
                    _ => return Err(damaged(format!("index entry {name:?} is not a group of segments"))),
                }
            }
            groups.sort();
            cache.groups = Some(groups);
        }
        let groups = cache.groups.as_deref().unwrap_or_default();
        let at = groups.partition_point(|(first, _)| *first <= seq);
        let Some(position) = at.checked_sub(1) else {
            return Err(damaged(format!("no index group covers seq {seq}")));
        };
        let group_tree = groups[position].1.clone();
        if cache.group.as_ref().is_none_or(|(p, _)| *p != position) {
            let mut segments = Vec::new();
            for (name, is_dir, id) in self.tree_entries(&group_tree)? {
                match checkpoint::parse_segment_name(&name) {
                    Some(last) if !is_dir => segments.push((last, id)),
                    _ => return Err(damaged(format!("index entry {name:?} is not a segment"))),
                }
            }
            segments.sort();
            cache.group = Some((position, segments));
        }
        let segments = cache.group.as_ref().map(|(_, s)| s.as_slice()).unwrap_or_default();
        let Some((_, blob)) = segments.iter().find(|(last, _)| *last >= seq) else {
            return Err(damaged(format!("no index segment covers seq {seq}")));
        };
        let bytes = self.get(blob, ObjectKind::Blob)?;
        let entries = checkpoint::decode_segment(&bytes).map_err(damaged)?;
        let contiguous = entries.windows(2).all(|w| w[1].seq == w[0].seq + 1);
        let entry = entries
            .first()
            .filter(|_| contiguous)
            .and_then(|e| entries.get((seq.checked_sub(e.seq)?) as usize));
        let commit = match entry {
            Some(e) if e.seq == seq => e.commit.clone(),
            _ => return Err(damaged(format!("index segment {blob} does not hold seq {seq}"))),
        };
        cache.segment = entries;
        Ok(commit)
    }

    /// The stored event at `seq`.
    pub(super) fn stored_at(&self, replica: &Replica, seq: u64) -> Result<Stored, IndexError> {
        let commit = self.seq_commit(replica, seq)?;
        let (event, _) = self.load(&commit)?;
        if event.seq != seq || event.space != replica.state.space {
            return Err(damaged(format!(
                "the index says seq {seq} is commit {commit}, which holds seq {} of space {:?}",
                event.seq, event.space
            )));
        }
        Ok(Stored { event, commit })
    }

    /// The runs of the replica's checkpoint, opened (bloom filters in memory).
    fn runs<'r>(
        &self,
        replica: &'r Replica,
        checkpoint: &KnownCheckpoint,
    ) -> Result<Ref<'r, [RunReader]>, IndexError> {
        if replica.index.borrow().runs.is_none() {
            let mut cache = replica.index.borrow_mut();
            let listed = self.run_list(&checkpoint.ids_tree, checkpoint.seq)?;
            let mut runs = Vec::with_capacity(listed.len());
            for (name, tree) in listed {
                match cache.earlier_runs.iter().position(|r| r.tree == tree && r.name == name) {
                    Some(at) => runs.push(cache.earlier_runs.swap_remove(at)),
                    None => runs.push(RunReader::open(name, &tree, self)?),
                }
            }
            cache.earlier_runs.clear();
            cache.runs = Some(runs);
        }
        Ok(Ref::map(replica.index.borrow(), |c| c.runs.as_deref().unwrap_or_default()))
    }

    /// The runs listed in an `ids/` tree, oldest first, checked to cover
    /// seqs 1..=`seq` exactly once.
    pub(super) fn run_list(&self, ids_tree: &str, seq: u64) -> Result<Vec<(RunName, String)>, IndexError> {
        let mut runs = Vec::new();
        for (name, is_dir, id) in self.tree_entries(ids_tree)? {
            let run = RunName::parse(&name).map_err(damaged)?;
            if !is_dir {
                return Err(damaged(format!("id run {name} is not a directory")));
            }
            runs.push((run, id));
        }
        runs.sort_by_key(|(run, _)| run.first);
        let mut next = 1;
        for (run, _) in &runs {
            if run.first != next {
                return Err(damaged(format!("the id runs skip from seq {next} to {}", run.first)));
            }
            next = run.last + 1;
        }
        if next != seq + 1 {
            return Err(damaged(format!("the id runs cover seqs up to {}, not {seq}", next - 1)));
        }
        Ok(runs)
    }

    /// The stored event whose id is `id`, if the log has one.
    pub(super) fn find_id(&self, replica: &Replica, id: &str) -> Result<Option<Stored>, IndexError> {
        if let Some(&seq) = replica.ids.get(id) {
            return Ok(Some(self.stored_at(replica, seq)?));
        }
        let Some(checkpoint) = &replica.checkpoint else {
            return Ok(None);
        };
        let hash = idindex::id_hash(id);
        let mut candidates = Vec::new();
        for run in self.runs(replica, checkpoint)?.iter().rev() {
            candidates.extend(run.seqs_of(hash, self)?);
        }
        for seq in candidates {
            let stored = self.stored_at(replica, seq)?;
            if stored.event.id == id {
                return Ok(Some(stored));
            }
            // Another id with the same 64-bit hash: keep looking. An id with
            // another hash means the run or the segment is wrong: never
            // conclude from it that the id is new.
            if idindex::id_hash(&stored.event.id) != hash {
                return Err(damaged(format!(
                    "the id index names seq {seq} for an id its event does not have"
                )));
            }
        }
        Ok(None)
    }

    /// Run `f` against `replica`; if the checkpoint's index turns out
    /// damaged, warn, replay the whole log and run it again.
    pub(super) fn indexed<T>(
        &mut self,
        replica: &mut Replica,
        f: impl Fn(&Self, &Replica) -> Result<T, IndexError>,
    ) -> Result<T, Error> {
        let problem = match f(self, replica) {
            Ok(value) => return Ok(value),
            Err(IndexError::Log(e)) => return Err(e),
            Err(IndexError::Damaged(problem)) => problem,
        };
        let (space, seq) = (&replica.state.space, replica.checkpoint_seq());
        self.warn(format!(
            "the index of the checkpoint of space {space:?} at seq {seq} is unusable ({problem}); replayed the whole log"
        ));
        self.replay(replica)?;
        match f(self, replica) {
            Ok(value) => Ok(value),
            Err(IndexError::Log(e)) => Err(e),
            Err(IndexError::Damaged(problem)) => Err(Error::corrupt(problem)),
        }
    }

    /// The `index/` tree of a checkpoint at `entries`' last seq: the previous
    /// checkpoint's groups, its last group extended with new segments.
    pub(super) fn write_index(
        &self,
        previous: Option<&KnownCheckpoint>,
        entries: &[IndexEntry],
    ) -> Result<String, IndexError> {
        let mut sink = HostSink(self);
        let mut groups: Vec<TreeEntry> = Vec::new();
        // The group being filled: its name and segments.
        let mut current: Option<(String, Vec<TreeEntry>)> = None;
        if let Some(previous) = previous {
            let entries = self.tree_entries(&previous.index_tree)?;
            groups = entries.into_iter().map(|(name, _, id)| (name, ObjectKind::Tree, id)).collect();
            groups.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some((name, _, id)) = groups.pop() {
                let segments = self.tree_entries(&id)?;
                current =
                    Some((name, segments.into_iter().map(|(n, _, id)| (n, ObjectKind::Blob, id)).collect()));
            }
        }
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(damaged("an index extension needs events"));
        };
        for (from, to) in checkpoint::segment_ranges(first.seq - 1, last.seq) {
            let lines = &entries[(from - first.seq) as usize..=(to - first.seq) as usize];
            let blob = sink.put(ObjectKind::Blob, checkpoint::encode_segment(lines))?;
            if current.as_ref().is_none_or(|(_, segments)| segments.len() >= checkpoint::GROUP_MAX) {
                if let Some((name, segments)) = current.take() {
                    groups.push((
                        name,
                        ObjectKind::Tree,
                        sink.put(ObjectKind::Tree, checkpoint::encode_tree(&segments))?,
                    ));
                }
                current = Some((checkpoint::group_name(from), Vec::new()));
            }
            if let Some((_, segments)) = current.as_mut() {
                segments.push((checkpoint::segment_name(to), ObjectKind::Blob, blob));
            }
        }
        if let Some((name, segments)) = current {
            groups.push((
                name,
                ObjectKind::Tree,
                sink.put(ObjectKind::Tree, checkpoint::encode_tree(&segments))?,
            ));
        }
        Ok(sink.put(ObjectKind::Tree, checkpoint::encode_tree(&groups))?)
    }

    /// The `ids/` tree of a checkpoint: the previous checkpoint's runs plus
    /// one for `tail` (the hashes of the ids of the seqs after it, in seq
    /// order), merged as the plan says.
    pub(super) fn write_runs(
        &self,
        previous: Option<&KnownCheckpoint>,
        first_seq: u64,
        tail: &[u64],
    ) -> Result<String, IndexError> {
        let mut sink = HostSink(self);
        let mut runs = match previous {
            Some(p) => self.run_list(&p.ids_tree, p.seq)?,
            None => Vec::new(),
        };
        let last = first_seq + tail.len() as u64 - 1;
        let name = RunName { level: 0, first: first_seq, last };
        let records = tail.iter().zip(first_seq..).map(|(&hash, seq)| Record { hash, seq }).collect();
        runs.push((name, idindex::build_run(name, records, &mut sink)?));
        let levels = |runs: &[(RunName, String)]| runs.iter().map(|(r, _)| r.level).collect::<Vec<_>>();
        while let Some(start) = idindex::merge_plan(&levels(&runs)) {
            let inputs = runs[start..]
                .iter()
                .map(|(name, tree)| RunReader::open(*name, tree, self))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = idindex::merge_runs(&inputs, self, &mut sink)?;
            runs.truncate(start);
            runs.push(merged);
        }
        let entries: Vec<_> =
            runs.into_iter().map(|(name, tree)| (name.encode(), ObjectKind::Tree, tree)).collect();
        Ok(sink.put(ObjectKind::Tree, checkpoint::encode_tree(&entries))?)
    }
}

/// The runs `verify` expects, rebuilt from the hashes of the chain's ids
/// (`id_hashes[seq - 1]`); the names of those whose stored tree differs.
pub(super) fn mismatched_runs(
    runs: &[(RunName, String)],
    id_hashes: &[u64],
    checked: &mut HashMap<String, bool>,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, tree) in runs {
        let ok = *checked.entry(tree.clone()).or_insert_with(|| {
            let records = (name.first..=name.last)
                .filter_map(|seq| id_hashes.get(seq as usize - 1).map(|&hash| Record { hash, seq }))
                .collect();
            idindex::build_run(*name, records, &mut HashOnly).is_ok_and(|rebuilt| &rebuilt == tree)
        });
        if !ok {
            bad.push(name.encode());
        }
    }
    bad
}

/// A tree entry to write: name, kind, id.
type TreeEntry = (String, ObjectKind, String);

/// Shorthand for a replica's lazily filled cache.
pub(super) type Cache = RefCell<IndexCache>;
