//! Import: replaying exported events into a space, byte for byte, so that
//! the commits are the ones of the exported log.

use super::append::Draft;
use super::replica::Replica;
use super::{Appended, ImportReport, Log, Stored};
use crate::error::Error;
use crate::gitobj;
use crate::host::Host;
use crate::model::{self, Event};

impl<H: Host> Log<H> {
    /// Replay exported events into `space`; see the WIT `import`.
    pub fn import(&mut self, space: &str, lines: &[String]) -> Result<ImportReport, Error> {
        self.paged(space, |log| log.import_checked(space, lines))
    }

    fn import_checked(&mut self, space: &str, lines: &[String]) -> Result<ImportReport, Error> {
        model::validate_space(space)?;
        let line_error = |n: usize, m: String| Error::Invalid(format!("line {n}: {m}"));
        // Every line is checked as a replica would check the stored event,
        // before anything is written.
        let mut check = Replica::new(space, None);
        let mut events = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let n = i + 1;
            let event = Event::parse(line).map_err(|e| line_error(n, e))?;
            if event.space != space {
                return Err(line_error(
                    n,
                    format!("the event belongs to space {:?}, not {space:?}", event.space),
                ));
            }
            if event.seq != n as u64 {
                return Err(line_error(
                    n,
                    format!("seq is {}, expected {n}: lines must be seq 1, 2, 3, … in order", event.seq),
                ));
            }
            let encoded = gitobj::encode_event(&event, check.state.head.as_deref());
            check.push(&event, &encoded.commit_id).map_err(|e| match e {
                Error::Corrupt(m) => line_error(n, m),
                other => line_error(n, other.to_string()),
            })?;
            events.push((event, encoded));
        }
        let (ctx, replica) = self.sync(space)?;
        let existing = replica.state.seq as usize;
        let differs = ctx.indexed(replica, |ctx, replica| {
            for (i, (_, encoded)) in events.iter().enumerate().take(existing) {
                if ctx.seq_commit(replica, i as u64 + 1)? != encoded.commit_id {
                    return Ok(Some(i + 1));
                }
            }
            Ok(None)
        })?;
        if let Some(n) = differs {
            return Err(line_error(
                n,
                format!(
                    "space {space:?} already holds a different event at seq {n}; import only extends an identical history"
                ),
            ));
        }
        let total = events.len() as u64;
        let fresh: Vec<_> = events.into_iter().skip(existing).collect();
        if fresh.is_empty() {
            let head = replica.head();
            return Ok(ImportReport { total, skipped: total, written: 0, head });
        }
        // The events keep the epochs they were written with: an import may
        // run under an older lease than the log's, but never without one.
        match ctx.writer_epoch(space, replica.state.epoch) {
            Ok(_) | Err(Error::StaleEpoch { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut draft = Draft { base: replica.head(), ..Draft::default() };
        for (event, encoded) in fresh {
            if let Some(key) = event.body.key() {
                if let Err(e) = ctx.load_key(replica, key) {
                    draft.take_back(&mut replica.state);
                    return Err(e);
                }
                replica.dirty.insert(key.to_owned());
            }
            match replica.state.apply_undoable(&event, &encoded.commit_id) {
                Ok(undo) => draft.undo.push(undo),
                Err(e) => {
                    draft.take_back(&mut replica.state);
                    return Err(e);
                }
            }
            draft.results.push(Appended {
                stored: Stored { event, commit: encoded.commit_id.clone() },
                created: true,
            });
            draft.objects.push(encoded);
        }
        let written = draft.results.len() as u64;
        ctx.commit_draft(space, replica, draft)?;
        Ok(ImportReport { total, skipped: total - written, written, head: replica.head() })
    }
}
