//! Server-Sent Events of new events in a space.
//!
//! One task per space watched polls the space's head (it sees appends by any
//! process, not only this one) and sends each new event to a broadcast
//! channel that every subscriber of that space reads: the log is read once
//! per new event, however many subscribers there are. The task ends when
//! the last subscriber leaves.
//!
//! A subscriber first catches up from the log (from `Last-Event-ID` + 1, or
//! `?from=`, or else from the head at subscription), having subscribed to
//! the channel before reading so nothing falls between the two; then it
//! follows the channel, skipping what it already sent. If it falls behind
//! the channel (lagged) or sees a gap, it reads the missing events from the
//! log. Each event's SSE id is its seq.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::{Semaphore, broadcast, mpsc};

use super::Limits;
use super::problem::Problem;
use super::routes::{blocking, event_json};
use crate::log::Log;
use crate::types::Event;

/// Events a slow subscriber may be behind before it reads from the log instead.
const CHANNEL: usize = 1024;
/// Events read from the log at a time.
const PAGE: u32 = 500;

/// The spaces being watched, and the bound on subscribers.
#[derive(Clone)]
pub(crate) struct Streams {
    log: Log,
    limits: Limits,
    watched: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<Event>>>>>,
    subscribers: Arc<Semaphore>,
}

impl Streams {
    pub(crate) fn new(log: Log, limits: Limits) -> Streams {
        Streams {
            log,
            limits,
            watched: Default::default(),
            subscribers: Arc::new(Semaphore::new(limits.max_streams)),
        }
    }

    /// A receiver of `space`'s new events, starting its watcher if none runs.
    fn subscribe(&self, space: &str) -> broadcast::Receiver<Arc<Event>> {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = watched.get(space) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(CHANNEL);
        watched.insert(space.to_owned(), sender.clone());
        tokio::spawn(watch(self.clone(), space.to_owned(), sender));
        receiver
    }

    /// The stream of `space`'s events after `after` (none: after the head now).
    pub(crate) async fn stream(
        &self,
        space: String,
        after: Option<u64>,
    ) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>>, Problem> {
        let permit = self.subscribers.clone().try_acquire_owned().map_err(|_| {
            Problem::busy(format!("the server has {} event streams open; try again", self.limits.max_streams))
        })?;
        let receiver = self.subscribe(&space);
        let after = match after {
            Some(seq) => seq,
            None => {
                let handle = self.log.space(&space);
                blocking(move || handle.head()).await?.map_or(0, |h| h.seq)
            }
        };
        let (out, mut events) = mpsc::channel::<SseEvent>(64);
        let log = self.log.clone();
        tokio::spawn(async move {
            let _permit = permit;
            follow(log, space, after, receiver, out).await;
        });
        let stream = futures_util::stream::poll_fn(move |cx| events.poll_recv(cx).map(|e| e.map(Ok)));
        Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
    }
}

/// Poll `space`'s head and broadcast every new event until nobody listens.
async fn watch(streams: Streams, space: String, sender: broadcast::Sender<Arc<Event>>) {
    let handle = streams.log.space(&space);
    let mut last = {
        let handle = handle.clone();
        blocking(move || handle.head()).await.ok().flatten().map_or(0, |h| h.seq)
    };
    let mut tick = tokio::time::interval(streams.limits.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        {
            // Under the map's lock, so a subscriber either finds this
            // watcher still registered or starts a new one.
            let mut watched = streams.watched.lock().unwrap_or_else(|e| e.into_inner());
            if sender.receiver_count() == 0 {
                watched.remove(&space);
                return;
            }
        }
        let h = handle.clone();
        let Ok(Some(head)) = blocking(move || h.head()).await else { continue };
        while last < head.seq {
            let h = handle.clone();
            let from = last + 1;
            let Ok(page) = blocking(move || h.events(from, PAGE)).await else { break };
            if page.is_empty() {
                break;
            }
            for event in page {
                last = event.seq;
                let _ = sender.send(Arc::new(event));
            }
        }
    }
}

/// Send one subscriber every event after `after`: from the log, then from
/// the channel, back to the log whenever the channel cannot say.
async fn follow(
    log: Log,
    space: String,
    mut sent: u64,
    mut receiver: broadcast::Receiver<Arc<Event>>,
    out: mpsc::Sender<SseEvent>,
) {
    let handle = log.space(&space);
    let mut catch_up = true;
    loop {
        if catch_up {
            loop {
                let h = handle.clone();
                let from = sent + 1;
                let Ok(page) = blocking(move || h.events(from, PAGE)).await else { return };
                for event in &page {
                    if out.send(sse_event(event)).await.is_err() {
                        return;
                    }
                    sent = event.seq;
                }
                if page.len() < PAGE as usize {
                    break;
                }
            }
            catch_up = false;
        }
        tokio::select! {
            received = receiver.recv() => match received {
                Ok(event) if event.seq <= sent => {}
                Ok(event) if event.seq == sent + 1 => {
                    if out.send(sse_event(&event)).await.is_err() {
                        return;
                    }
                    sent = event.seq;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => catch_up = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = out.closed() => return,
        }
    }
}

fn sse_event(event: &Event) -> SseEvent {
    SseEvent::default().id(event.seq.to_string()).data(event_json(event).to_string())
}
