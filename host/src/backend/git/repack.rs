//! Pack consolidation: every batch becomes a pack, and every pack makes
//! each later lookup search one more index (a lookup that misses them all,
//! as every cold start does, rescans them), so a log built by batches got
//! slower to read with every batch: a 100k-event space built 1,000 events
//! at a time left 200 packs.
//!
//! After a write set becomes a pack, the backend merges small packs the way
//! `git repack --geometric=2` does: sorted by object count, the packs that
//! do not form a progression in which each pack holds at least twice the
//! objects of all smaller ones together are merged into one. Each object is
//! so rewritten O(log n) times over the life of a repository, and the
//! number of packs stays logarithmic in the number of objects. Merges hold
//! the objects in memory, so one merge takes at most [`MAX_MERGE_OBJECTS`];
//! past that, packs accumulate slowly (one per that many objects) until
//! `git gc`.
//!
//! Safety: the merged pack is written and made durable exactly like a write
//! set's pack (fsynced, renamed into place index last, directory fsynced)
//! *before* any old pack is removed, each old index before its pack. A
//! crash in between leaves the objects in two packs, which is harmless. A
//! reader that loaded an old index and finds its pack gone reloads the
//! indexes (gix does so for exactly this case, as it must for `git gc`), and
//! the backend retries a failed lookup on a fresh store. Packs with a
//! `.keep` file are never merged.

use std::path::{Path, PathBuf};

/// Merge only once there are more packs than this.
pub(super) const MAX_PACKS: usize = 8;

/// The most objects one merge rewrites (about 100 MB of event objects).
pub(super) const MAX_MERGE_OBJECTS: u64 = 300_000;

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

/// The packs to merge into one (none when there is nothing worth merging):
/// git's geometric split with factor 2, capped at [`MAX_MERGE_OBJECTS`].
pub(super) fn plan(mut packs: Vec<PackFile>) -> Vec<PackFile> {
    if packs.len() <= MAX_PACKS {
        return Vec::new();
    }
    packs.sort_by(|a, b| a.objects.cmp(&b.objects).then_with(|| a.index.cmp(&b.index)));
    // From the largest down, find where the progression breaks...
    let mut split = packs.len() - 1;
    while split > 0 && packs[split].objects >= 2 * packs[split - 1].objects {
        split -= 1;
    }
    if split > 0 {
        split += 1;
    }
    // ...then take in every larger pack the merged one would not be half of.
    let mut total: u64 = packs[..split].iter().map(|p| p.objects).sum();
    while split < packs.len() && packs[split].objects < 2 * total {
        total += packs[split].objects;
        split += 1;
    }
    while split > 0 && total > MAX_MERGE_OBJECTS {
        split -= 1;
        total -= packs[split].objects;
    }
    packs.truncate(split);
    if packs.len() < 2 { Vec::new() } else { packs }
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
    fn a_few_packs_are_left_alone() {
        assert!(plan(packs(&[3000; MAX_PACKS])).is_empty());
    }

    #[test]
    fn equal_packs_are_merged_into_one() {
        assert_eq!(counts(&plan(packs(&[3000; 9]))), [3000; 9]);
    }

    #[test]
    fn a_steep_progression_keeps_its_large_pack_and_merges_the_small_ones() {
        let plan = plan(packs(&[100_000, 20_000, 3_000, 3_000, 3_000, 3_000, 3_000, 3_000, 3_000]));
        // 7 × 3,000 merged is more than half of 20,000, which joins them;
        // 41,000 is less than half of 100,000, which stays.
        assert_eq!(counts(&plan), [3_000, 3_000, 3_000, 3_000, 3_000, 3_000, 3_000, 20_000]);
    }

    #[test]
    fn a_progression_broken_only_at_its_small_end_still_rolls_up_when_the_merge_would_break_it() {
        // As `git repack --geometric=2`: the merged tail (12,000) is not half
        // of each larger pack in turn, so the roll-up takes them all.
        let plan = plan(packs(&[96_000, 48_000, 24_000, 12_000, 6_000, 3_000, 3_000, 3_000, 3_000]));
        assert_eq!(plan.len(), 9);
    }

    #[test]
    fn a_merge_never_exceeds_the_object_cap() {
        let plan = plan(packs(&[200_000, 150_000, 3_000, 3_000, 3_000, 3_000, 3_000, 3_000, 3_000]));
        assert!(plan.iter().map(|p| p.objects).sum::<u64>() <= MAX_MERGE_OBJECTS);
        assert_eq!(counts(&plan), [3_000; 7].iter().copied().chain([150_000]).collect::<Vec<_>>());
    }
}
