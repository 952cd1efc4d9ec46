//! Write sets (step 3 in [the backend's docs](super)): the buffered objects
//! a swap takes along, written as one pack or as loose objects and made
//! durable, with whatever they name outside the buffer, before the ref
//! moves.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gix::objs::FindHeader as _;

use super::buffer::IdMap;
use super::fs::{TempFiles, fsync_dir, fsync_dirs};
use super::pack::{PackObject, encode_loose, encode_pack};
use super::{GitBackend, ObjectId, StorageError, gix_error, to_gix};

/// A write set of at least this many objects becomes one pack; smaller ones
/// are written loose. Measured (ext4 on a VM disk, where one fsync costs
/// ~0.3 ms): loose costs ~0.7 ms per object (a file, its fsync, its fan-out
/// directory's), a pack 1.3–2.2 ms whatever the size, so packs are faster
/// from two events on. But every pack makes every later lookup search one
/// more index (a hit took 1.3 µs with 1 pack, 8 µs with 100; a miss, which
/// rescans `objects/pack/`, 35 µs and 1.2 ms) until the next merge (see
/// [`repack`](super::repack)). So single appends and batches of up to five events stay loose.
pub(super) const PACK_THRESHOLD: usize = 16;

/// Loose object files to fsync, and their directories.
#[derive(Clone, Debug, Default)]
struct Unsynced {
    /// Loose object files.
    files: BTreeSet<PathBuf>,
    /// Their fan-out directories (`objects/xx/`).
    fan_outs: BTreeSet<PathBuf>,
    /// Fan-out directories whose entry in `objects/` may not be durable yet.
    new_fan_outs: BTreeSet<PathBuf>,
}

impl Unsynced {
    fn record(&mut self, file: PathBuf, fan_out: PathBuf, new_fan_out: bool) {
        self.files.insert(file);
        self.record_dir(fan_out, new_fan_out);
    }

    /// A fan-out directory that got a new entry (a file already synced).
    fn record_dir(&mut self, fan_out: PathBuf, new_fan_out: bool) {
        if new_fan_out {
            self.new_fan_outs.insert(fan_out.clone());
        }
        self.fan_outs.insert(fan_out);
    }
}

/// The swap a write set is for.
#[derive(Debug)]
pub(super) struct Swap<'a> {
    pub(super) name: &'a str,
    pub(super) new: &'a ObjectId,
    pub(super) expected: Option<&'a ObjectId>,
}

/// What one write set cost, for `Debug` and measurements.
#[derive(Clone, Copy, Default)]
pub(crate) struct FlushStats {
    /// Objects written.
    pub(crate) objects: usize,
    /// Whether they went into a pack (else loose).
    pub(crate) packed: bool,
    /// Their bytes.
    pub(crate) data_bytes: usize,
    /// Bytes of the pack and index files.
    pub(crate) file_bytes: usize,
    /// Finding the buffered objects the new commit reaches.
    pub(crate) walk: Duration,
    /// Encoding the pack entries (store or deflate, CRC-32) and its checksum.
    pub(crate) encode: Duration,
    /// Building the index (sort, fan-out, checksum).
    pub(crate) index: Duration,
    /// Creating, writing and renaming files (without their fsyncs).
    pub(crate) write: Duration,
    /// The fsyncs of files and directories.
    pub(crate) sync: Duration,
    /// All of it.
    pub(crate) total: Duration,
}

impl fmt::Debug for FlushStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlushStats")
            .field("objects", &self.objects)
            .field("packed", &self.packed)
            .field("data_bytes", &self.data_bytes)
            .field("file_bytes", &self.file_bytes)
            .field("walk", &self.walk)
            .field("encode", &self.encode)
            .field("index", &self.index)
            .field("write", &self.write)
            .field("sync", &self.sync)
            .field("total", &self.total)
            .finish()
    }
}

impl GitBackend {
    /// Held while a write set is written (see `flush_locked`).
    pub(super) fn lock_flushing(&self) -> MutexGuard<'_, ()> {
        self.flushing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lock_durable_dirs(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.durable_dirs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Make one write set durable (see [the backend's docs](super)): the
    /// buffered objects that the swap's commit reaches and those not marked
    /// lost (all of them for no swap), as one pack or as loose objects.
    /// What the commit reaches outside the buffer must be in the repository
    /// (else the swap is refused and nothing is written); it is synced too
    /// unless it is the ref's current value (durable since its own swap). The
    /// caller holds `flushing` throughout, so that a concurrent caller that
    /// finds nothing left to write knows the write set in progress has
    /// completed; what was written is forgotten only once it is durable.
    pub(super) fn flush_locked(
        &self,
        _flushing: &MutexGuard<'_, ()>,
        swap: Option<&Swap<'_>>,
    ) -> Result<(), StorageError> {
        let started = Instant::now();
        let (mut objects, outside, mark) = {
            let mut pending = self.lock_pending();
            let (mark, outside) = match swap {
                Some(swap) => pending.walk(swap.new),
                None => (pending.next_mark(), Vec::new()),
            };
            // The write set: what the commit reaches, and all but lost objects.
            let mut objects = Vec::new();
            for (id, buffered) in &mut pending.objects {
                if swap.is_none() || buffered.mark == mark || !buffered.lost {
                    buffered.mark = mark;
                    objects.push((
                        buffered.seq,
                        PackObject { id: *id, kind: buffered.kind, data: buffered.data.clone() },
                    ));
                }
            }
            (objects, outside, mark)
        };
        objects.sort_unstable_by_key(|(seq, _)| *seq);
        let objects: Vec<PackObject> = objects.into_iter().map(|(_, object)| object).collect();
        let mut unsynced = Unsynced::default();
        let mut sync_pack_dir = false;
        if let Some(swap) = swap {
            for id in outside.iter().filter(|id| Some(*id) != swap.expected) {
                // In the repository (decodable), not merely buffered since the walk.
                let found = self
                    .with_odb(|odb| odb.try_header(&to_gix(id)))
                    .map_err(|e| gix_error(format!("cannot read object {id}"), e))?;
                if found.is_none() {
                    return Err(StorageError::io(
                        format!("refusing to point ref {} at {}", swap.name, swap.new),
                        format!("it reaches {id}, which is not in the repository"),
                    ));
                }
                let (fan_out, path) = self.loose_path(id);
                if path.is_file() {
                    let new_fan_out = !self.lock_durable_dirs().contains(&fan_out);
                    unsynced.record(path, fan_out, new_fan_out);
                } else {
                    sync_pack_dir = true; // or in an alternate
                }
            }
        }
        if objects.is_empty() && unsynced.files.is_empty() && !sync_pack_dir {
            return Ok(());
        }
        let mut stats = FlushStats {
            objects: objects.len(),
            data_bytes: objects.iter().map(|o| o.data.len()).sum(),
            walk: started.elapsed(),
            ..FlushStats::default()
        };
        if objects.len() >= self.pack_threshold {
            self.write_pack(&objects, &mut stats)?;
            sync_pack_dir = false; // done by write_pack
        } else {
            let write_started = Instant::now();
            self.write_loose(&objects, &mut unsynced, &mut stats)?;
            stats.write = write_started.elapsed().saturating_sub(stats.sync);
        }
        let sync_started = Instant::now();
        self.sync_loose(&unsynced, sync_pack_dir)?;
        stats.sync += sync_started.elapsed();
        stats.total = started.elapsed();

        let mut pending = self.lock_pending();
        if pending.objects.values().all(|b| b.mark == mark) {
            pending.objects = IdMap::default(); // all written
            pending.bytes = 0;
        } else {
            let mut bytes = pending.bytes;
            pending.objects.retain(|_, b| {
                let written = b.mark == mark; // taken by this write set (and not walked since)
                if written {
                    bytes -= b.data.len();
                }
                !written
            });
            pending.bytes = bytes;
        }
        drop(pending);
        *self.last_flush.lock().unwrap_or_else(PoisonError::into_inner) = stats;
        Ok(())
    }

    /// Write loose objects as git does: each to a temporary file in its
    /// fan-out directory, fsynced, then renamed into place, so that a power
    /// loss leaves no object file or a whole one, never an empty or torn one
    /// (which `git fsck` and `git gc` refuse even when nothing refers to it).
    /// gix's loose writer renames first and never syncs, so this is ours.
    /// The directories are synced by [`GitBackend::sync_loose`].
    fn write_loose(
        &self,
        objects: &[PackObject],
        unsynced: &mut Unsynced,
        stats: &mut FlushStats,
    ) -> Result<(), StorageError> {
        let mut temps = TempFiles::new(&self.fs);
        for object in objects {
            let (fan_out, path) = self.loose_path(&object.id);
            let created = match self.fs.create_dir(&fan_out) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(StorageError::io(format!("cannot create {}", fan_out.display()), e)),
            };
            let encoded = encode_loose(object.kind, &object.data).map_err(|e| {
                StorageError::io(format!("cannot encode {} {}", object.kind.as_str(), object.id), e)
            })?;
            let temp = temps.create(&fan_out, "tmp_obj_", &encoded, stats)?;
            // Over a file of the same name: the same object, or one torn by
            // an older writer that renamed before syncing.
            self.fs
                .rename(&temp, &path)
                .map_err(|e| StorageError::io(format!("cannot rename {} into place", path.display()), e))?;
            let new_fan_out = created || !self.lock_durable_dirs().contains(&fan_out);
            unsynced.record_dir(fan_out, new_fan_out);
        }
        temps.forget();
        Ok(())
    }

    /// Fsync loose object files, then their fan-out directories, then
    /// `objects/` if a fan-out directory may be new; and `objects/pack/`
    /// if asked.
    fn sync_loose(&self, unsynced: &Unsynced, pack_dir: bool) -> Result<(), StorageError> {
        let mut pack_dir = pack_dir;
        for file in &unsynced.files {
            match self.fs.sync_file(file) {
                Ok(()) => {}
                // Packed and removed meanwhile (by a merge or `dlog gc` in
                // another process, or `git gc`): then a pack holds it.
                Err(e) if e.kind() == io::ErrorKind::NotFound && self.loose_file_was_packed(file)? => {
                    pack_dir = true;
                }
                Err(e) => return Err(StorageError::io(format!("cannot fsync {}", file.display()), e)),
            }
        }
        let pack_dir = pack_dir.then(|| self.pack_dir()).filter(|dir| dir.is_dir());
        let mut paths: Vec<&Path> = unsynced.fan_outs.iter().map(PathBuf::as_path).collect();
        if !unsynced.new_fan_outs.is_empty() {
            paths.push(&self.objects_dir);
        }
        paths.extend(pack_dir.as_deref());
        fsync_dirs(&*self.fs, &paths)?;
        if !unsynced.new_fan_outs.is_empty() {
            self.lock_durable_dirs().extend(unsynced.new_fan_outs.iter().cloned());
        }
        Ok(())
    }

    /// Write `objects` as one pack and its index, durably (see the module
    /// docs for the order).
    pub(super) fn write_pack(
        &self,
        objects: &[PackObject],
        stats: &mut FlushStats,
    ) -> Result<PathBuf, StorageError> {
        let pack_dir = self.pack_dir();
        let failed = |what: &str, e: io::Error| {
            StorageError::io(format!("cannot write a pack of {} objects: {what}", objects.len()), e)
        };
        let encoded = encode_pack(objects, stats).map_err(|e| failed("encoding it", e))?;
        stats.file_bytes = encoded.pack.len() + encoded.index.len();

        let write_started = Instant::now();
        let synced_before = stats.sync;
        let created_dir = match self.fs.create_dir(&pack_dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(failed(&format!("creating {}", pack_dir.display()), e)),
        };
        let name = format!("pack-{}", ObjectId(encoded.checksum));
        let (pack_path, index_path) =
            (pack_dir.join(format!("{name}.pack")), pack_dir.join(format!("{name}.idx")));
        let mut temps = TempFiles::new(&self.fs);
        let pack_temp = temps.create(&pack_dir, "tmp_pack_", &encoded.pack, stats)?;
        let index_temp = temps.create(&pack_dir, "tmp_idx_", &encoded.index, stats)?;
        // The index last: git and gix ignore a pack until its index exists.
        self.fs.rename(&pack_temp, &pack_path).map_err(|e| failed(&format!("renaming it to {name}"), e))?;
        self.fs.rename(&index_temp, &index_path).map_err(|e| failed(&format!("renaming it to {name}"), e))?;
        temps.forget();
        let renamed = Instant::now();
        stats.write += (renamed - write_started).saturating_sub(stats.sync - synced_before);

        let pack_dir_entry_durable = !created_dir && self.lock_durable_dirs().contains(&pack_dir);
        fsync_dir(&*self.fs, &pack_dir)?;
        if !pack_dir_entry_durable {
            fsync_dir(&*self.fs, &self.objects_dir)?;
            self.lock_durable_dirs().insert(pack_dir);
        }
        stats.sync += renamed.elapsed();
        stats.packed = true;
        self.packs_written.store(true, Ordering::Relaxed);
        Ok(index_path)
    }

    /// Whether the object of a loose file that is gone can still be read
    /// (from a pack).
    fn loose_file_was_packed(&self, file: &Path) -> Result<bool, StorageError> {
        let name = |p: Option<&Path>| p.and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
        let hex =
            format!("{}{}", name(file.parent()).unwrap_or_default(), name(Some(file)).unwrap_or_default());
        let Ok(id) = ObjectId::from_hex(&hex) else {
            return Ok(false);
        };
        let found = self
            .with_odb(|odb| odb.try_header(&to_gix(&id)))
            .map_err(|e| gix_error(format!("cannot read object {id}"), e))?;
        Ok(found.is_some())
    }

    /// The fan-out directory and the file of a loose object.
    pub(super) fn loose_path(&self, id: &ObjectId) -> (PathBuf, PathBuf) {
        let hex = id.to_hex();
        let fan_out = self.objects_dir.join(&hex[..2]);
        let path = fan_out.join(&hex[2..]);
        (fan_out, path)
    }

    pub(super) fn pack_dir(&self) -> PathBuf {
        self.objects_dir.join("pack")
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::backend::git::repack;
    use crate::backend::{Backend as _, ObjectKind};

    #[test]
    fn a_loose_object_packed_away_before_its_sync_counts_as_synced_and_a_lost_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let backend = GitBackend::init_bare(dir.path()).unwrap();
        let id = backend.write_object(ObjectKind::Blob, b"decided").unwrap();
        backend.flush_locked(&backend.lock_flushing(), None).unwrap();
        let (fan_out, path) = backend.loose_path(&id);
        let old = std::time::SystemTime::now() - 2 * repack::LOOSE_MIN_AGE;
        File::open(&path).unwrap().set_modified(old).unwrap();
        assert_eq!(backend.pack_loose().unwrap(), 1);
        assert!(!path.exists(), "packed, then removed");

        let mut unsynced = Unsynced::default();
        unsynced.record(path, fan_out.clone(), false);
        backend.sync_loose(&unsynced, false).unwrap();

        let mut lost = Unsynced::default();
        lost.record(fan_out.join("0".repeat(38)), fan_out, false);
        let err = backend.sync_loose(&lost, false).unwrap_err();
        assert!(err.to_string().contains("cannot fsync"), "{err}");
    }
}
