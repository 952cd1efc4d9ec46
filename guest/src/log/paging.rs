//! A replica over a paged checkpoint: reading one key's record from its
//! page when an event or a query needs it, reading them all when a whole
//! fold is asked for, and writing the pages of the next checkpoint, which
//! rewrites only the pages of the keys changed since.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::ctx::Ctx;
use super::replica::{Paged, Replica};
use super::{Log, storage};
use crate::checkpoint;
use crate::error::Error;
use crate::gitobj;
use crate::host::{Host, ObjectKind};
use crate::model::Event;
use crate::pages::{self, KeyRecord};

/// How a damaged page's error begins, so that [`Log::paged`] can tell it
/// from other corruption.
const DAMAGED_PAGE: &str = "checkpoint page";

impl<H: Host> Log<H> {
    /// Run `op` on `space`; if it finds a page of the checkpoint the space's
    /// replica started from damaged, warn, replay the log without that
    /// checkpoint (the replay writes a new one), and run `op` again. A
    /// damaged page is found only when a key on it is needed, long after
    /// the checkpoint was adopted, so this cannot happen at adoption as it
    /// does for the rest of a checkpoint.
    pub(super) fn paged<T>(
        &mut self,
        space: &str,
        mut op: impl FnMut(&mut Log<H>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match op(self) {
            Err(Error::Corrupt(problem)) if problem.starts_with(DAMAGED_PAGE) => {
                self.ctx.warn(format!(
                    "the checkpoint of space {space:?} is unusable ({problem}); replayed the whole log"
                ));
                let tip = self.ctx.host.read_ref(&checkpoint::checkpoint_ref(space)).map_err(storage)?;
                let replica = self.replicas.entry(space.to_owned()).or_insert_with(|| Replica::cold(space));
                *replica = Replica::new(space, tip);
                self.ctx.refresh(replica)?;
                op(self)
            }
            other => other,
        }
    }
}

/// A page or fences blob to store, with its id.
pub(super) type Blob = (Vec<u8>, String);

impl<H: Host> Ctx<H> {
    /// A paged checkpoint's `pages/` tree, checked: a fences blob and one
    /// page per fence, named in order.
    pub(super) fn read_paged(&self, tree: &str) -> Result<Paged, Error> {
        let entries = self.tree(tree)?;
        let fences = checkpoint::find_entry(&entries, pages::FENCES, false)
            .ok_or_else(|| Error::corrupt("no fences"))?;
        let lasts = pages::decode_fences(&self.read(&fences, ObjectKind::Blob)?).map_err(Error::Corrupt)?;
        let ids: Vec<String> = entries
            .into_iter()
            .filter(|(name, _, _)| name != pages::FENCES)
            .enumerate()
            .map(|(i, (name, dir, id))| {
                if dir || name != pages::page_name(i) {
                    return Err(Error::corrupt(format!("pages tree entry {name:?} is not page {i}")));
                }
                Ok(id)
            })
            .collect::<Result<_, _>>()?;
        if ids.len() != lasts.len() {
            return Err(Error::corrupt(format!("{} pages for {} fences", ids.len(), lasts.len())));
        }
        Ok(Paged { tree: tree.to_owned(), lasts, pages: ids })
    }

    /// Page `i` of `paged`, checked against its fences: every key in it
    /// sorts after the previous page's last key and up to its own.
    fn page(&self, paged: &Paged, i: usize) -> Result<BTreeMap<String, KeyRecord>, Error> {
        let bytes = self.read(&paged.pages[i], ObjectKind::Blob).map_err(|e| match e {
            Error::Corrupt(m) => Error::corrupt(format!("{DAMAGED_PAGE} {i}: {m}")),
            other => other,
        })?;
        let records =
            pages::decode_page(&bytes).map_err(|e| Error::corrupt(format!("{DAMAGED_PAGE} {i}: {e}")))?;
        let after = i.checked_sub(1).map(|p| paged.lasts[p].as_str());
        // Keys are sorted within a page, so its first and last bound them all.
        let fits = records.keys().next().is_some_and(|first| after.is_none_or(|a| first.as_str() > a))
            && records.keys().last() == Some(&paged.lasts[i]);
        if !fits {
            return Err(Error::corrupt(format!("{DAMAGED_PAGE} {i} holds keys outside its fences")));
        }
        Ok(records)
    }

    /// Make `key`'s record part of `replica`'s state, reading its page if
    /// the replica has not yet.
    pub(super) fn load_key(&self, replica: &mut Replica, key: &str) -> Result<(), Error> {
        if replica.has_key(key) {
            return Ok(());
        }
        if let Some(base) = &replica.base
            && let Some(i) = pages::page_of(&base.lasts, key)
            && let Some(record) = self.page(base, i)?.remove(key)
        {
            record.install(&mut replica.state, key);
        }
        replica.loaded.insert(key.to_owned());
        Ok(())
    }

    /// Call `each` with every key from `from` on and its record at the
    /// replica's head, in key order, until it returns false. Keys the
    /// replica holds are taken from its state; the rest from the pages of
    /// its base, read one at a time and not kept, so a scan of a large
    /// space holds one page.
    pub(super) fn each_record(
        &self,
        replica: &Replica,
        from: &str,
        mut each: impl FnMut(&str, &KeyRecord) -> bool,
    ) -> Result<(), Error> {
        let state = &replica.state;
        let held = |key: &String| replica.complete || replica.loaded.contains(key);
        // The keys the state holds from `from` on: all of them for a complete
        // replica, else those read or written since the checkpoint.
        let mut mine: BTreeSet<&String> = BTreeSet::new();
        let from_bound = (Bound::Included(from), Bound::Unbounded);
        mine.extend(state.decisions.range::<str, _>(from_bound).map(|(k, _)| k));
        mine.extend(state.retracted.range::<str, _>(from_bound).map(|(k, _)| k));
        mine.extend(state.proposals.range::<str, _>(from_bound).map(|(k, _)| k));
        let mut mine = mine.into_iter().peekable();
        let mut emit_mine_up_to = |upper: Option<&str>, each: &mut dyn FnMut(&str, &KeyRecord) -> bool| {
            while let Some(key) = mine.next_if(|k| upper.is_none_or(|u| k.as_str() <= u)) {
                if let Some(record) = KeyRecord::of(state, key)
                    && !each(key, &record)
                {
                    return false;
                }
            }
            true
        };
        if let Some(base) = replica.base.as_ref().filter(|_| !replica.complete)
            && let Some(first) = pages::page_of(&base.lasts, from)
        {
            for i in first..base.pages.len() {
                let page = self.page(base, i)?;
                // Merge the page's keys with the state's up to this page's last.
                for (key, record) in page.range::<str, _>(from_bound).filter(|(k, _)| !held(k)) {
                    if !emit_mine_up_to(Some(key.as_str()), &mut each) || !each(key, record) {
                        return Ok(());
                    }
                }
                if !emit_mine_up_to(Some(base.lasts[i].as_str()), &mut each) {
                    return Ok(());
                }
            }
        }
        emit_mine_up_to(None, &mut each);
        Ok(())
    }

    /// Read every page into `replica`'s state, for a whole fold.
    pub(super) fn load_all(&self, replica: &mut Replica) -> Result<(), Error> {
        if replica.complete {
            return Ok(());
        }
        if let Some(base) = replica.base.clone() {
            for i in 0..base.pages.len() {
                for (key, record) in self.page(&base, i)? {
                    // Marked loaded as it is installed: should a later page
                    // fail to read, the replica stays consistent (a scan
                    // takes this key from the state, not from its page too).
                    if replica.loaded.insert(key.clone()) {
                        record.install(&mut replica.state, &key);
                    }
                }
            }
        }
        replica.loaded.clear();
        replica.complete = true;
        Ok(())
    }

    /// Check and apply a stored event, reading its key first.
    pub(super) fn push(&self, replica: &mut Replica, event: &Event, commit: &str) -> Result<(), Error> {
        if let Some(key) = event.body.key() {
            self.load_key(replica, key)?;
        }
        replica.push(event, commit)
    }

    /// The pages of `replica`'s state: its base's, with the pages of the
    /// keys changed since rebuilt (all of them when it has no base). The
    /// blobs to store are those not already in the base.
    pub(super) fn next_pages(&self, replica: &Replica) -> Result<Pages, Error> {
        let mut out = Pages::default();
        let record = |key: &String| KeyRecord::of(&replica.state, key);
        match &replica.base {
            Some(base) if !base.pages.is_empty() => {
                let mut changed: BTreeMap<usize, Vec<&String>> = BTreeMap::new();
                for key in &replica.dirty {
                    let i = pages::page_of(&base.lasts, key).unwrap_or(0);
                    changed.entry(i).or_default().push(key);
                }
                for i in 0..base.pages.len() {
                    let Some(keys) = changed.get(&i) else {
                        out.lasts.push(base.lasts[i].clone());
                        out.ids.push(base.pages[i].clone());
                        continue;
                    };
                    let mut page = self.page(base, i)?;
                    for key in keys {
                        match record(key) {
                            Some(r) => page.insert((*key).clone(), r),
                            None => page.remove(*key),
                        };
                    }
                    pages::chunk(page).into_iter().for_each(|p| out.emit(p));
                }
            }
            Some(_) => {
                let page = replica.dirty.iter().filter_map(|k| record(k).map(|r| (k.clone(), r))).collect();
                pages::chunk(page).into_iter().for_each(|p| out.emit(p));
            }
            None => pages::chunk(pages::records_of(&replica.state)).into_iter().for_each(|p| out.emit(p)),
        }
        Ok(out)
    }
}

/// Pages being laid out: the last key and blob id of each, and the blobs
/// of the new ones.
#[derive(Default)]
pub(super) struct Pages {
    pub(super) lasts: Vec<String>,
    pub(super) ids: Vec<String>,
    pub(super) blobs: Vec<Blob>,
}

impl Pages {
    fn emit(&mut self, page: BTreeMap<String, KeyRecord>) {
        let bytes = pages::encode_page(&page);
        let id = gitobj::object_id(ObjectKind::Blob, &bytes);
        self.lasts.push(page.keys().last().cloned().unwrap_or_default());
        self.ids.push(id.clone());
        self.blobs.push((bytes, id));
    }
}

/// A `pages/` tree's entries and the fences blob for pages `ids` ending at `lasts`.
pub(super) fn pages_tree(lasts: &[String], ids: &[String]) -> (Vec<u8>, Blob) {
    let fences = pages::encode_fences(lasts);
    let fences_id = gitobj::object_id(ObjectKind::Blob, &fences);
    let mut entries = vec![(pages::FENCES.to_owned(), ObjectKind::Blob, fences_id.clone())];
    entries.extend(ids.iter().enumerate().map(|(i, id)| (pages::page_name(i), ObjectKind::Blob, id.clone())));
    (checkpoint::encode_tree(&entries), (fences, fences_id))
}
