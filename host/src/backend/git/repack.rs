//! Pack consolidation: every batch becomes a pack, and every pack makes
//! each later lookup search one more index (a lookup that misses them all,
//! as every cold start does, rescans them), so a log built by batches got
//! slower to read with every batch: a 100k-event space built 1,000 events
//! at a time left 200 packs.
//!
//! After a write set becomes a pack, the backend merges packs by size tier
//! (size-tiered compaction, as log-structured stores do): a pack of tier
//! `t` holds from 4^t to 4^(t+1) - 1 objects, and once a tier holds
//! [`TIER_WIDTH`] packs they become one pack of a higher tier. So an object
//! is rewritten about once per tier it climbs (three or four times from a
//! 1,000-event batch's pack to the largest merge), at most three packs wait
//! in each tier, and reads search a few dozen indexes at most. (`git repack
//! --geometric=2` was tried first: run after every batch, a run of
//! equal-sized packs broke its progression each time and rolled up
//! everything, rewriting the whole repository every few batches.) Merges
//! hold the objects in memory, so one merge takes at most
//! [`MAX_MERGE_OBJECTS`]; packs that large are left for `git gc` / `dlog gc`.
//!
//! Loose objects (three per single append) are packed the same way once
//! about [`LOOSE_LIMIT`] exist, as git's `gc.auto` would: only those older
//! than [`LOOSE_MIN_AGE`], and their files are removed only once the pack
//! is durable.
//!
//! Safety: the merged pack is written and made durable exactly like a write
//! set's pack (fsynced, renamed into place index last, directory fsynced)
//! *before* any old pack is removed, each old index before its pack. A
//! crash in between leaves the objects in two packs, which is harmless. A
//! reader that loaded an old index and finds its pack gone reloads the
//! indexes (gix does so for exactly this case, as it must for `git gc`), and
//! the backend retries a failed lookup on a fresh store. Packs with a
//! `.keep` file are never merged.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::fs::{fsync_dir, remove_if_present};
use super::pack::PackObject;
use super::write_set::FlushStats;
use super::{Backend as _, GitBackend, StorageError, from_gix};
use crate::backend::ObjectId;

/// Merge the packs of a size tier once it holds this many.
pub(super) const TIER_WIDTH: usize = 4;

/// The most objects one merge rewrites (about 100 MB of event objects).
pub(super) const MAX_MERGE_OBJECTS: u64 = 300_000;

/// Pack loose objects once about this many exist (git's `gc.auto`): single
/// appends write three loose objects each, and a directory of millions of
/// files is slow for everyone, `git` included.
pub(super) const LOOSE_LIMIT: usize = 6_700;

/// Loose objects younger than this are left loose: a writer in another
/// process may be between renaming one into place and syncing it (and would
/// fail its append if the file vanished under it).
pub(super) const LOOSE_MIN_AGE: Duration = Duration::from_secs(60);

/// What [`GitBackend::gc`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcReport {
    /// Loose objects moved into packs.
    pub loose_packed: usize,
    /// Packs before.
    pub packs_before: usize,
    /// Packs merged into others.
    pub packs_merged: usize,
    /// Packs after.
    pub packs_after: usize,
}

/// A pack on disk.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct PackFile {
    /// Its `.idx`.
    pub(super) index: PathBuf,
    /// How many objects it holds.
    pub(super) objects: u64,
}

impl PackFile {
    /// The files of the pack: the index first (so that no reader finds an
    /// index without its pack), then the data and git's optional extras.
    pub(super) fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.index.clone()];
        files.extend(["pack", "rev", "bitmap", "mtimes"].map(|ext| self.index.with_extension(ext)));
        files
    }
}

/// The packs in `pack_dir` that may be merged: complete (index and data
/// present) and not kept.
pub(super) fn list(pack_dir: &Path) -> std::io::Result<Vec<PackFile>> {
    let mut packs = Vec::new();
    let entries = match std::fs::read_dir(pack_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(packs),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let index = entry?.path();
        let is_pack_index = index.extension().is_some_and(|ext| ext == "idx")
            && index.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pack-"));
        if !is_pack_index || !index.with_extension("pack").is_file() || index.with_extension("keep").exists()
        {
            continue;
        }
        if let Some(objects) = index_object_count(&index)? {
            packs.push(PackFile { index, objects });
        }
    }
    Ok(packs)
}

/// Git's estimate of the loose objects (for `gc.auto`): the objects in
/// `objects/17/`, times 256.
pub(super) fn loose_estimate(objects_dir: &Path) -> usize {
    std::fs::read_dir(objects_dir.join("17"))
        .map(|entries| entries.filter_map(Result::ok).filter(|e| is_loose_name(&e.file_name())).count() * 256)
        .unwrap_or(0)
}

/// Loose objects at least `min_age` old, with their files.
pub(super) fn loose_objects(
    objects_dir: &Path,
    min_age: Duration,
) -> std::io::Result<Vec<(ObjectId, PathBuf)>> {
    let now = SystemTime::now();
    let mut found = Vec::new();
    for fan_out in 0..=255u8 {
        let prefix = format!("{fan_out:02x}");
        let entries = match std::fs::read_dir(objects_dir.join(&prefix)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !is_loose_name(&name) {
                continue;
            }
            let modified = entry.metadata()?.modified()?;
            if now.duration_since(modified).unwrap_or_default() < min_age {
                continue;
            }
            let path = entry.path();
            if let Some(id) = loose_id(&path) {
                found.push((id, path));
            }
        }
    }
    Ok(found)
}

/// The id a loose object file is named for (`objects/xx/<38 hex digits>`).
pub(super) fn loose_id(path: &Path) -> Option<ObjectId> {
    let name = |p: Option<&Path>| p.and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
    ObjectId::from_hex(&format!("{}{}", name(path.parent())?, name(Some(path))?)).ok()
}

/// Whether a file name in a fan-out directory names a loose object (38 hex
/// digits; temporary files have other names).
fn is_loose_name(name: &std::ffi::OsStr) -> bool {
    name.len() == 38 && name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The object count of a version 2 pack index (the last fan-out entry),
/// none for an index in another format.
fn index_object_count(index: &Path) -> std::io::Result<Option<u64>> {
    use std::io::Read as _;
    let mut header = [0u8; 8 + 256 * 4];
    let mut file = std::fs::File::open(index)?;
    if file.read_exact(&mut header).is_err() || header[..8] != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
        return Ok(None);
    }
    let last = &header[8 + 255 * 4..];
    Ok(Some(u64::from(u32::from_be_bytes([last[0], last[1], last[2], last[3]]))))
}

/// Packs of tier `t` hold from 4^t to 4^(t+1) - 1 objects.
fn tier(objects: u64) -> u32 {
    (63 - objects.max(1).leading_zeros()) / 2
}

/// The packs to merge into one, none when nothing is due: the packs of the
/// lowest tier holding [`TIER_WIDTH`] or more, if together they stay within
/// [`MAX_MERGE_OBJECTS`].
pub(super) fn plan(packs: Vec<PackFile>) -> Vec<PackFile> {
    let mut tiers: BTreeMap<u32, Vec<PackFile>> = BTreeMap::new();
    for pack in packs {
        tiers.entry(tier(pack.objects)).or_default().push(pack);
    }
    tiers
        .into_values()
        .find(|group| {
            group.len() >= TIER_WIDTH && group.iter().map(|p| p.objects).sum::<u64>() <= MAX_MERGE_OBJECTS
        })
        .unwrap_or_default()
}

/// `dlog gc`: the smallest packs, as many as stay within
/// [`MAX_MERGE_OBJECTS`] together; none unless at least two.
pub(super) fn plan_any(mut packs: Vec<PackFile>) -> Vec<PackFile> {
    packs.sort_by(|a, b| a.objects.cmp(&b.objects).then_with(|| a.index.cmp(&b.index)));
    let mut total = 0;
    let fitting = packs
        .iter()
        .take_while(|p| {
            total += p.objects;
            total <= MAX_MERGE_OBJECTS
        })
        .count();
    packs.truncate(fitting);
    if packs.len() < 2 { Vec::new() } else { packs }
}

impl GitBackend {
    /// Step 6 of a swap, once it is durable: a write set that became a pack
    /// may fill a size tier; loose ones may bring the loose objects to
    /// [`LOOSE_LIMIT`].
    pub(super) fn repack_after_swap(&self) {
        if self.packs_written.swap(false, Ordering::Relaxed) {
            self.consolidate_packs();
        } else {
            self.maybe_pack_loose();
        }
    }

    /// Merge small packs once a write set became one, after the swap. A
    /// failure (say, another process merged the same packs away first)
    /// leaves every object where it was, so it is not the append's failure;
    /// this instance tries again a minute later.
    fn consolidate_packs(&self) {
        let mut failed = self.merge_failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_some_and(|at| at.elapsed() < LOOSE_MIN_AGE) {
            return;
        }
        let _flushing = self.lock_flushing();
        *failed = self.merge_packs().err().map(|_| Instant::now());
    }

    fn merge_packs(&self) -> Result<(), StorageError> {
        self.merge(plan).map(|_| ())
    }

    /// Merge the packs `choose` picks from those on disk; how many it merged.
    fn merge(&self, choose: fn(Vec<PackFile>) -> Vec<PackFile>) -> Result<usize, StorageError> {
        let pack_dir = self.pack_dir();
        let chosen = choose(
            list(&pack_dir)
                .map_err(|e| StorageError::io(format!("cannot list {}", pack_dir.display()), e))?,
        );
        if chosen.is_empty() {
            return Ok(0);
        }
        // Objects keep the order they were written in (packs oldest first,
        // each in pack order): a log's events stay near each other, which a
        // replay reading them in order is measurably faster for than id order.
        let mut ordered: Vec<(SystemTime, &PackFile)> = chosen
            .iter()
            .map(|p| (p.index.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), p))
            .collect();
        ordered.sort();
        let mut seen = HashSet::new();
        let mut objects = Vec::new();
        for (_, pack) in ordered {
            let index = gix::odb::pack::index::File::at(&pack.index, gix::hash::Kind::Sha1)
                .map_err(|e| StorageError::io(format!("cannot read {}", pack.index.display()), e))?;
            let mut entries: Vec<_> = index.iter().collect();
            entries.sort_by_key(|e| e.pack_offset);
            for entry in entries {
                if !seen.insert(entry.oid) {
                    continue;
                }
                let id = from_gix(&entry.oid);
                let (kind, data) = self.read_object(&id)?.ok_or_else(|| {
                    StorageError::io(
                        format!("cannot merge {}", pack.index.display()),
                        format!("{id} is gone"),
                    )
                })?;
                objects.push(PackObject { id, kind, data: data.into() });
            }
        }
        let merged = self.write_pack(&objects, &mut FlushStats::default())?;
        self.packs_written.store(false, Ordering::Relaxed);
        for pack in chosen.iter().filter(|p| p.index != merged) {
            for file in pack.files() {
                remove_if_present(&*self.fs, &file)?;
            }
        }
        fsync_dir(&*self.fs, &pack_dir)?;
        self.refresh_store()?;
        Ok(chosen.len())
    }

    /// Pack loose objects older than [`LOOSE_MIN_AGE`] (at most
    /// [`MAX_MERGE_OBJECTS`] per pack) and remove their files once
    /// the pack is durable; how many. A loose file that cannot be read (torn
    /// by a crash: nothing refers to it) is left for `git gc`.
    pub(super) fn pack_loose(&self) -> Result<usize, StorageError> {
        let loose = loose_objects(&self.objects_dir, LOOSE_MIN_AGE)
            .map_err(|e| StorageError::io(format!("cannot list {}", self.objects_dir.display()), e))?;
        let mut packed = 0;
        for chunk in loose.chunks(MAX_MERGE_OBJECTS as usize) {
            let mut objects = Vec::with_capacity(chunk.len());
            let mut files = Vec::with_capacity(chunk.len());
            for (id, path) in chunk {
                if let Ok(Some((kind, data))) = self.read_object(id) {
                    objects.push(PackObject { id: *id, kind, data: data.into() });
                    files.push(path);
                }
            }
            if objects.is_empty() {
                continue;
            }
            self.write_pack(&objects, &mut FlushStats::default())?;
            for file in files {
                remove_if_present(&*self.fs, file)?;
            }
            packed += objects.len();
        }
        if packed > 0 {
            self.refresh_store()?;
        }
        Ok(packed)
    }

    /// After a swap that wrote loose objects: pack them once there are about
    /// as many as would make git's own `gc.auto` run (at most once a minute
    /// per instance, since young objects are left loose).
    fn maybe_pack_loose(&self) {
        let mut last = self.last_loose_pack.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < LOOSE_MIN_AGE)
            || loose_estimate(&self.objects_dir) < LOOSE_LIMIT
        {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        let _flushing = self.lock_flushing();
        // Like a merge, a failure leaves every object where it was.
        if self.pack_loose().is_ok() {
            let _ = self.merge_packs();
        }
    }

    /// `dlog gc`: pack every loose object older than a minute, then merge
    /// packs until no merge is left to do (each merge at most 300,000
    /// objects), telling `progress` about
    /// each step. Reads and appends, here and in other processes, go on
    /// meanwhile.
    pub fn gc(&self, progress: &mut dyn FnMut(&str)) -> Result<GcReport, StorageError> {
        let _flushing = self.lock_flushing();
        let pack_dir = self.pack_dir();
        let count_packs = || {
            list(&pack_dir)
                .map(|p| p.len())
                .map_err(|e| StorageError::io(format!("cannot list {}", pack_dir.display()), e))
        };
        let packs_before = count_packs()?;
        let loose_packed = self.pack_loose()?;
        progress(&format!("packed {loose_packed} loose objects"));
        let mut packs_merged = 0;
        loop {
            let merged = self.merge(plan_any)?;
            if merged == 0 {
                break;
            }
            packs_merged += merged;
            progress(&format!("merged {merged} packs into one"));
        }
        Ok(GcReport { loose_packed, packs_before, packs_merged, packs_after: count_packs()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs(counts: &[u64]) -> Vec<PackFile> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &objects)| PackFile { index: PathBuf::from(format!("pack-{i:02}.idx")), objects })
            .collect()
    }

    fn counts(plan: &[PackFile]) -> Vec<u64> {
        plan.iter().map(|p| p.objects).collect()
    }

    #[test]
    fn tiers_are_powers_of_four() {
        assert_eq!(
            [0, 1, 3, 4, 15, 16, 3_000, 4_096, 16_383, 16_384].map(tier),
            [0, 0, 0, 1, 1, 2, 5, 6, 6, 7]
        );
    }

    #[test]
    fn fewer_than_four_packs_of_a_tier_are_left_alone() {
        assert!(plan(packs(&[3_000, 3_000, 3_000, 12_000, 12_000, 12_000, 50_000])).is_empty());
    }

    #[test]
    fn four_packs_of_the_lowest_full_tier_are_merged() {
        let plan = plan(packs(&[3_000, 12_000, 3_000, 12_000, 3_000, 12_000, 3_100, 12_000, 50_000]));
        assert_eq!(counts(&plan), [3_000, 3_000, 3_000, 3_100]);
    }

    #[test]
    fn a_tier_too_large_to_merge_is_skipped() {
        let plan = plan(packs(&[200_000, 200_000, 200_000, 200_000, 60, 60, 60, 60]));
        assert_eq!(counts(&plan), [60; 4]);
        assert!(super::plan(packs(&[200_000, 200_000, 200_000, 200_000])).is_empty());
    }

    #[test]
    fn gc_merges_the_smallest_packs_within_the_cap() {
        let plan = plan_any(packs(&[270_000, 10, 40_000, 20]));
        assert_eq!(counts(&plan), [10, 20, 40_000]);
        assert!(plan_any(packs(&[250_000, 200_000])).is_empty());
        assert!(plan_any(packs(&[5])).is_empty());
    }
}
