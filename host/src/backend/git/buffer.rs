//! The buffer of objects written but not yet in a write set (step 1 and
//! *Lost races* in [the backend's docs](super)), and the walk that finds what
//! a swap's commit reaches in it.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError};

use gix::bstr::ByteSlice;

use super::{GitBackend, ObjectId, ObjectKind, StorageError};

/// Buffered object bytes past which a write flushes the buffer as a pack
/// before the swap (bounds the memory a caller can make the backend hold).
const MAX_BUFFERED_BYTES: usize = 64 << 20;

/// The buffer of objects not yet written.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Buffered objects by id.
    pub(super) objects: IdMap<Buffered>,
    /// The buffered bytes.
    pub(super) bytes: usize,
    /// Order of arrival, for the next buffered object.
    next_seq: u64,
    /// Numbers walks and write sets, for `Buffered::mark`.
    marks: u64,
}

/// An object waiting for the next write set.
#[derive(Debug)]
pub(super) struct Buffered {
    pub(super) seq: u64,
    pub(super) kind: ObjectKind,
    pub(super) data: Arc<[u8]>,
    /// Reached by the commit of a swap that lost its race (and not written
    /// again since): written only by a swap whose commit reaches it.
    pub(super) lost: bool,
    /// The last walk that reached it, or write set that took it.
    pub(super) mark: u64,
}

impl GitBackend {
    pub(super) fn lock_pending(&self) -> MutexGuard<'_, Pending> {
        // Every update of `Pending` leaves it consistent (at worst listing
        // too much to write or sync), even if a holder panicked.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Buffer an object for the next write set (once per id); flush the
    /// buffer if it has grown too large.
    pub(super) fn buffer(&self, id: ObjectId, kind: ObjectKind, data: &[u8]) -> Result<(), StorageError> {
        let too_large = {
            let mut pending = self.lock_pending();
            if let Some(buffered) = pending.objects.get_mut(&id) {
                buffered.lost = false; // wanted again
            } else {
                let seq = pending.next_seq;
                pending.next_seq += 1;
                pending.bytes += data.len();
                pending.objects.insert(id, Buffered { seq, kind, data: data.into(), lost: false, mark: 0 });
            }
            pending.bytes > MAX_BUFFERED_BYTES
        };
        if too_large { self.flush_locked(&self.lock_flushing(), None) } else { Ok(()) }
    }
}

impl Pending {
    pub(super) fn next_mark(&mut self) -> u64 {
        self.marks += 1;
        self.marks
    }

    /// Mark the buffered objects that `commit` reaches (through buffered
    /// commits and trees) with a new mark; return it, and the ids they refer
    /// to that are not buffered. Gitlinks (submodule commits) are not
    /// followed. The objects were validated when written, so their links
    /// parse.
    pub(super) fn walk(&mut self, commit: &ObjectId) -> (u64, Vec<ObjectId>) {
        let mark = self.next_mark();
        let mut outside = Vec::new();
        let mut stack = vec![*commit];
        while let Some(id) = stack.pop() {
            let Some(buffered) = self.objects.get_mut(&id) else {
                outside.push(id);
                continue;
            };
            if buffered.mark == mark {
                continue;
            }
            buffered.mark = mark;
            match buffered.kind {
                ObjectKind::Commit => stack.extend(commit_links(&buffered.data)),
                ObjectKind::Tree => stack.extend(tree_links(&buffered.data)),
                ObjectKind::Blob => {}
            }
        }
        outside.sort_unstable();
        outside.dedup();
        (mark, outside)
    }

    /// After a lost race: the buffered objects `commit` reaches are that
    /// append's write set, which no later swap writes unless it reaches them.
    pub(super) fn mark_lost(&mut self, commit: &ObjectId) {
        let (mark, _) = self.walk(commit);
        for buffered in self.objects.values_mut() {
            if buffered.mark == mark {
                buffered.lost = true;
            }
        }
    }
}

/// A map keyed by object ids, hashed by their leading bytes: SHA-1 output
/// needs no further mixing (std's SipHash cost a third of a batch's walk).
pub(super) type IdMap<V> = HashMap<ObjectId, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(23) ^ u64::from_le_bytes(word);
        }
    }
}

/// The tree and parents a (validated) commit names: its header lines
/// `tree <hex>` and `parent <hex>`, which come first.
fn commit_links(data: &[u8]) -> impl Iterator<Item = ObjectId> + '_ {
    data.split(|&b| b == b'\n')
        .map_while(|line| line.strip_prefix(b"tree ").or_else(|| line.strip_prefix(b"parent ")))
        .filter_map(|hex| std::str::from_utf8(hex).ok().and_then(|hex| ObjectId::from_hex(hex).ok()))
}

/// The ids a (validated) tree's entries name, but for gitlinks.
fn tree_links(data: &[u8]) -> impl Iterator<Item = ObjectId> + '_ {
    let mut rest = data;
    std::iter::from_fn(move || {
        loop {
            let space = rest.find_byte(b' ')?;
            let gitlink = &rest[..space] == b"160000";
            let nul = space + rest[space..].find_byte(0)?;
            let id = rest.get(nul + 1..nul + 21)?;
            rest = &rest[nul + 21..];
            if !gitlink {
                let mut bytes = [0u8; 20];
                bytes.copy_from_slice(id);
                return Some(ObjectId(bytes));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_tree_links_are_read_from_validated_objects() {
        let a = ObjectId([0xaa; 20]);
        let b = ObjectId([0xbb; 20]);
        let commit =
            format!("tree {a}\nparent {b}\nparent {a}\nauthor x <> 1 +0000\ncommitter x <> 1 +0000\n\nm\n");
        assert_eq!(commit_links(commit.as_bytes()).collect::<Vec<_>>(), [a, b, a]);
        let mut tree = b"100644 f\0".to_vec();
        tree.extend_from_slice(&a.0);
        tree.extend_from_slice(b"160000 sub\0");
        tree.extend_from_slice(&b.0);
        tree.extend_from_slice(b"40000 t\0");
        tree.extend_from_slice(&b.0);
        assert_eq!(tree_links(&tree).collect::<Vec<_>>(), [a, b], "gitlinks are not followed");
    }
}
