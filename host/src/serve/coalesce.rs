//! Group commit for forwarded intents: concurrent single-intent requests for
//! a space are appended as one batch (one ref update, one sync), in arrival
//! order. If the batch fails — one intent is invalid, conflicts, or expects
//! another head — every request is retried on its own, so each client gets
//! exactly the answer a one-at-a-time holder would have given it.

use std::collections::VecDeque;
use std::sync::mpsc::channel;
use std::sync::{Arc, Condvar, Mutex};

use crate::error::Error;
use crate::log::Log;
use crate::types::{Appended, Intent};

/// Where an answer goes: a thread waiting on a channel (the socket) or an
/// async task (HTTP), which must not hold a thread while it waits.
pub(crate) type Reply = Box<dyn FnOnce(Result<Vec<Appended>, Error>) + Send>;

struct Request {
    space: String,
    intents: Vec<Intent>,
    batch: bool,
    reply: Reply,
}

/// Queues forwarded requests and appends them from one thread.
#[derive(Clone)]
pub(crate) struct Coalescer {
    queue: Arc<(Mutex<VecDeque<Request>>, Condvar)>,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").finish_non_exhaustive()
    }
}

/// The most intents appended as one group.
const MAX_GROUP: usize = 1024;

impl Coalescer {
    /// Start the committing thread for `log`.
    pub(crate) fn start(log: Log) -> Coalescer {
        let coalescer = Coalescer { queue: Arc::new((Mutex::new(VecDeque::new()), Condvar::new())) };
        let queue = coalescer.queue.clone();
        std::thread::spawn(move || {
            loop {
                let group = {
                    let (lock, ready) = &*queue;
                    let mut pending = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while pending.is_empty() {
                        pending = ready.wait(pending).unwrap_or_else(|e| e.into_inner());
                    }
                    take_group(&mut pending)
                };
                commit(&log, group);
            }
        });
        coalescer
    }

    /// Append `intents` (in the order a lone holder would) and wait for the answer.
    pub(crate) fn append(
        &self,
        space: &str,
        intents: Vec<Intent>,
        batch: bool,
    ) -> Result<Vec<Appended>, Error> {
        let (reply, answer) = channel();
        self.submit(
            space,
            intents,
            batch,
            Box::new(move |result| {
                let _ = reply.send(result);
            }),
        );
        answer.recv().unwrap_or_else(|_| Err(Error::Guest("the committing thread stopped".into())))
    }

    /// Queue `intents` and return at once; `reply` is called with the answer
    /// from the committing thread.
    pub(crate) fn submit(&self, space: &str, intents: Vec<Intent>, batch: bool, reply: Reply) {
        let (lock, ready) = &*self.queue;
        lock.lock().unwrap_or_else(|e| e.into_inner()).push_back(Request {
            space: space.to_owned(),
            intents,
            batch,
            reply,
        });
        ready.notify_one();
    }
}

/// Whether a request can share a batch with others: one intent, no head check.
fn groupable(r: &Request) -> bool {
    !r.batch && r.intents.len() == 1 && r.intents[0].expect_seq.is_none()
}

/// The next group: the first request, and the groupable requests for the
/// same space that directly follow it.
fn take_group(pending: &mut VecDeque<Request>) -> Vec<Request> {
    let mut group = Vec::new();
    let Some(first) = pending.pop_front() else { return group };
    let open = groupable(&first);
    let space = first.space.clone();
    group.push(first);
    while open && group.len() < MAX_GROUP && pending.front().is_some_and(|r| r.space == space && groupable(r))
    {
        group.extend(pending.pop_front());
    }
    group
}

fn commit(log: &Log, group: Vec<Request>) {
    if group.len() > 1 {
        let space = log.space(&group[0].space);
        let intents: Vec<Intent> = group.iter().flat_map(|r| r.intents.iter().cloned()).collect();
        if let Ok(results) = space.append_here(&intents, true) {
            for (request, appended) in group.into_iter().zip(results) {
                (request.reply)(Ok(vec![appended]));
            }
            return;
        }
    }
    for request in group {
        let answer = log.space(&request.space).append_here(&request.intents, request.batch);
        (request.reply)(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::SoleWriter;
    use crate::backend::MemoryBackend;
    use crate::log::Options;

    fn request(
        space: &str,
        id: &str,
        body: &str,
    ) -> (Request, std::sync::mpsc::Receiver<Result<Vec<Appended>, Error>>) {
        let (reply, answer) = channel();
        let intents = vec![Intent::new("a", "decide", body).with_id(id)];
        let reply: Reply = Box::new(move |result| {
            let _ = reply.send(result);
        });
        (Request { space: space.into(), intents, batch: false, reply }, answer)
    }

    #[test]
    fn a_group_with_a_bad_intent_falls_back_to_one_append_each() {
        let options = Options::default().sole_writer(Arc::new(SoleWriter::new("a", 1)));
        let log = Log::with_backend(Arc::new(MemoryBackend::new()), options).unwrap();
        let good = r#"{"key":"k","choice":"c","rationale":"r"}"#;
        let (r1, a1) = request("s", "i1", good);
        let (r2, a2) = request("s", "i2", r#"{"key":"k"}"#);
        let (r3, a3) = request("s", "i3", good);
        let mut pending: VecDeque<Request> = [r1, r2, r3].into_iter().collect();
        let group = take_group(&mut pending);
        assert_eq!(group.len(), 3);
        commit(&log, group);
        assert_eq!(a1.recv().unwrap().unwrap()[0].event.seq, 1);
        assert!(matches!(a2.recv().unwrap(), Err(Error::Invalid(_))));
        assert_eq!(a3.recv().unwrap().unwrap()[0].event.seq, 2);
    }

    #[test]
    fn a_group_takes_the_requests_that_follow_for_its_space_and_appends_them_in_order() {
        let options = Options::default().sole_writer(Arc::new(SoleWriter::new("a", 1)));
        let log = Log::with_backend(Arc::new(MemoryBackend::new()), options).unwrap();
        let good = |k: &str| format!(r#"{{"key":"{k}","choice":"c","rationale":"r"}}"#);
        let (r1, a1) = request("s", "i1", &good("a"));
        let (r2, a2) = request("s", "i2", &good("b"));
        let (r3, _a3) = request("t", "i3", &good("c"));
        let mut pending: VecDeque<Request> = [r1, r2, r3].into_iter().collect();
        let group = take_group(&mut pending);
        assert_eq!((group.len(), pending.len()), (2, 1));
        commit(&log, group);
        let (e1, e2) = (a1.recv().unwrap().unwrap(), a2.recv().unwrap().unwrap());
        assert_eq!((e1[0].event.seq, e2[0].event.seq), (1, 2));
        let head = log.space("s").head().unwrap().unwrap();
        assert_eq!(head.commit, e2[0].event.commit);
    }
}
