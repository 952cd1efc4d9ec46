//! The in-memory backend: the test double and the in-memory host's storage.
//! It computes the same SHA-1 ids git does, so its objects are git objects.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use super::{Backend, ObjectId, ObjectKind, StorageError, SwapOutcome};

/// Objects and refs in memory, shared across threads.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    objects: RwLock<HashMap<ObjectId, (ObjectKind, Vec<u8>)>>,
    refs: RwLock<BTreeMap<String, ObjectId>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// Every object, for tests that copy them into a real repository.
    pub fn objects(&self) -> Vec<(ObjectId, ObjectKind, Vec<u8>)> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = objects.iter().map(|(id, (k, d))| (*id, *k, d.clone())).collect();
        all.sort_by_key(|(id, _, _)| *id);
        all
    }
}

impl Backend for MemoryBackend {
    fn write_object(&self, kind: ObjectKind, data: &[u8]) -> Result<ObjectId, StorageError> {
        let id = ObjectId::for_object(kind, data);
        let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
        objects.entry(id).or_insert_with(|| (kind, data.to_vec()));
        Ok(id)
    }

    fn read_object(&self, id: &ObjectId) -> Result<Option<(ObjectKind, Vec<u8>)>, StorageError> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        Ok(objects.get(id).cloned())
    }

    fn read_ref(&self, name: &str) -> Result<Option<ObjectId>, StorageError> {
        let refs = self.refs.read().unwrap_or_else(|e| e.into_inner());
        Ok(refs.get(name).copied())
    }

    fn compare_and_swap(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: &ObjectId,
    ) -> Result<SwapOutcome, StorageError> {
        if !name.starts_with("refs/") || name.contains("..") || name.ends_with(".lock") {
            return Err(StorageError::InvalidRef(name.to_owned()));
        }
        let mut refs = self.refs.write().unwrap_or_else(|e| e.into_inner());
        let actual = refs.get(name).copied();
        if actual.as_ref() != expected {
            return Ok(SwapOutcome::Mismatch(actual));
        }
        refs.insert(name.to_owned(), *new);
        Ok(SwapOutcome::Swapped)
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError> {
        let refs = self.refs.read().unwrap_or_else(|e| e.into_inner());
        Ok(refs
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_refuses_a_stale_expectation_and_reports_the_actual_value() {
        let b = MemoryBackend::new();
        let one = b.write_object(ObjectKind::Blob, b"1").unwrap();
        let two = b.write_object(ObjectKind::Blob, b"2").unwrap();
        assert_eq!(b.compare_and_swap("refs/x", None, &one).unwrap(), SwapOutcome::Swapped);
        assert_eq!(b.compare_and_swap("refs/x", None, &two).unwrap(), SwapOutcome::Mismatch(Some(one)));
        assert_eq!(b.compare_and_swap("refs/x", Some(&two), &two).unwrap(), SwapOutcome::Mismatch(Some(one)));
        assert_eq!(b.compare_and_swap("refs/x", Some(&one), &two).unwrap(), SwapOutcome::Swapped);
        assert_eq!(b.read_ref("refs/x").unwrap(), Some(two));
    }

    #[test]
    fn list_refs_returns_only_the_prefix_in_name_order() {
        let b = MemoryBackend::new();
        let id = b.write_object(ObjectKind::Blob, b"x").unwrap();
        for name in ["refs/dlog/spaces/b", "refs/dlog/spaces/a", "refs/dlog/other", "refs/heads/main"] {
            b.compare_and_swap(name, None, &id).unwrap();
        }
        let names: Vec<String> =
            b.list_refs("refs/dlog/spaces/").unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["refs/dlog/spaces/a", "refs/dlog/spaces/b"]);
    }
}
