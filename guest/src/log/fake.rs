//! An in-memory [`Host`], so that the log's logic is tested natively, without
//! building the component. Objects are filed under their git ids, refs move
//! only by compare-and-swap, and the lease and the clock are whatever a test
//! sets. Clones share one store, as guest instances over one repository do:
//! that is how a test puts a second writer next to the first.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::checkpoint;
use crate::gitobj;
use crate::host::{Host, Lease, ObjectKind, Swap};

/// Where the fake clock starts: a plausible present, in milliseconds.
pub(super) const START_MS: u64 = 1_750_000_000_000;

#[derive(Debug)]
struct Store {
    objects: HashMap<[u8; 20], (ObjectKind, Vec<u8>)>,
    refs: BTreeMap<String, String>,
    leases: BTreeMap<String, Lease>,
    now_ms: u64,
    /// Objects read through [`Host::read_object`], to tell a replay from a
    /// start at a checkpoint.
    reads: usize,
    /// Refuse to move checkpoint refs, as a repository this process may
    /// read but not write would.
    refuse_checkpoint_refs: bool,
}

/// One host's view of a shared store: its identity, the rest shared.
#[derive(Clone, Debug)]
pub(super) struct FakeHost {
    store: Rc<RefCell<Store>>,
    identity: String,
}

impl FakeHost {
    /// An empty store, seen by a host called `identity`.
    pub(super) fn new(identity: &str) -> FakeHost {
        let store = Store {
            objects: HashMap::new(),
            refs: BTreeMap::new(),
            leases: BTreeMap::new(),
            now_ms: START_MS,
            reads: 0,
            refuse_checkpoint_refs: false,
        };
        FakeHost { store: Rc::new(RefCell::new(store)), identity: identity.to_owned() }
    }

    /// The same store, seen by a host called `identity`.
    pub(super) fn as_host(&self, identity: &str) -> FakeHost {
        FakeHost { store: self.store.clone(), identity: identity.to_owned() }
    }

    /// Give this host the lease on `space` at `epoch`, for an hour.
    pub(super) fn grant_lease(&self, space: &str, epoch: u64) {
        let expires_at_ms = self.now_ms() + 3_600_000;
        let lease = Lease { holder: self.identity.clone(), epoch, expires_at_ms, endpoint: None };
        self.set_lease(space, Some(lease));
    }

    pub(super) fn set_lease(&self, space: &str, lease: Option<Lease>) {
        let mut store = self.store.borrow_mut();
        match lease {
            Some(lease) => store.leases.insert(space.to_owned(), lease),
            None => store.leases.remove(space),
        };
    }

    pub(super) fn set_now(&self, ms: u64) {
        self.store.borrow_mut().now_ms = ms;
    }

    /// Objects read so far, by every host on the store.
    pub(super) fn reads(&self) -> usize {
        self.store.borrow().reads
    }

    pub(super) fn refuse_checkpoint_refs(&self, refuse: bool) {
        self.store.borrow_mut().refuse_checkpoint_refs = refuse;
    }

    /// Point a ref anywhere, as a tool outside the log could.
    pub(super) fn force_ref(&self, name: &str, id: &str) {
        self.store.borrow_mut().refs.insert(name.to_owned(), id.to_owned());
    }

    /// Lose object `id`, as a repository pruned or damaged by hand would.
    pub(super) fn remove_object(&self, id: &str) {
        let key = gitobj::hex_to_bytes(id).expect("an object id");
        self.store.borrow_mut().objects.remove(&key);
    }

    /// An object's bytes, not counted as a read.
    pub(super) fn object(&self, id: &str) -> Option<(ObjectKind, Vec<u8>)> {
        let key = gitobj::hex_to_bytes(id)?;
        self.store.borrow().objects.get(&key).cloned()
    }
}

impl Host for FakeHost {
    fn write_object(&self, kind: ObjectKind, data: &[u8]) -> Result<String, String> {
        let id = gitobj::object_id_bytes(kind, data);
        self.store.borrow_mut().objects.entry(id).or_insert_with(|| (kind, data.to_vec()));
        Ok(gitobj::to_hex(&id))
    }

    fn read_object(&self, id: &str) -> Result<Option<(ObjectKind, Vec<u8>)>, String> {
        let key = gitobj::hex_to_bytes(id).ok_or_else(|| format!("{id:?} is not an object id"))?;
        let mut store = self.store.borrow_mut();
        store.reads += 1;
        Ok(store.objects.get(&key).cloned())
    }

    fn read_ref(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.store.borrow().refs.get(name).cloned())
    }

    fn compare_and_swap(&self, name: &str, expected: Option<&str>, new: &str) -> Result<Swap, String> {
        let mut store = self.store.borrow_mut();
        if store.refuse_checkpoint_refs && name.starts_with(&checkpoint::checkpoint_ref("")) {
            return Err(format!("cannot update {name}: permission denied"));
        }
        let current = store.refs.get(name).cloned();
        if current.as_deref() != expected {
            return Ok(Swap::Mismatch(current));
        }
        store.refs.insert(name.to_owned(), new.to_owned());
        Ok(Swap::Swapped)
    }

    fn list_refs(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        let store = self.store.borrow();
        Ok(store
            .refs
            .range(prefix.to_owned()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, id)| (name.clone(), id.clone()))
            .collect())
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn lease(&self, space: &str) -> Option<Lease> {
        self.store.borrow().leases.get(space).cloned()
    }

    fn now_ms(&self) -> u64 {
        self.store.borrow().now_ms
    }
}
