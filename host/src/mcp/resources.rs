//! Resources: one per space, `dlog://spaces/{space}`, holding its fold as
//! JSON; subscriptions to them; and the watcher that tells subscribers
//! when a space changed — whoever changed it, in whichever process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use rmcp::model::{
    ListResourcesResult, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam,
};
use rmcp::service::Peer;
use rmcp::{ErrorData, RoleServer};
use serde_json::json;

use super::server::DecisionLogServer;
use crate::Error;

/// How often heads are read while anyone is subscribed. Other processes
/// append without telling us; reading a head is a ref read and a guest call.
const POLL: Duration = Duration::from_millis(250);

/// How many polls between looks for new spaces (`list_changed`).
const SPACES_EVERY: u32 = 4;

const PREFIX: &str = "dlog://spaces/";
const JSON: &str = "application/json";

/// The URI of a space's resource.
pub(crate) fn uri(space: &str) -> String {
    format!("{PREFIX}{space}")
}

fn space_of(uri: &str) -> Result<&str, ErrorData> {
    match uri.strip_prefix(PREFIX) {
        Some(space) if !space.is_empty() && !space.contains('/') => Ok(space),
        _ => Err(ErrorData::resource_not_found(
            format!("no such resource {uri:?}: resources are {PREFIX}{{space}}"),
            Some(json!({"uri": uri})),
        )),
    }
}

/// The template of every space's resource.
pub(crate) fn template() -> ResourceTemplate {
    ResourceTemplate::new(format!("{PREFIX}{{space}}"), "space")
        .with_title("A space's decisions in force")
        .with_description("The fold of a space: every key's decision in force (choice, rationale, rejected, id, actor, seq) and the retracted keys, as JSON.")
        .with_mime_type(JSON)
}

fn resource_error(e: &Error) -> ErrorData {
    let data = Some(json!({"error": e.kind()}));
    match e {
        Error::Invalid(_) | Error::NotFound(_) => ErrorData::resource_not_found(e.to_string(), data),
        _ => ErrorData::internal_error(e.to_string(), data),
    }
}

/// What the watcher knows: the subscribed spaces with the head each was last
/// seen at, and the spaces last listed.
#[derive(Debug, Default)]
struct Seen {
    subscribed: BTreeMap<String, Option<String>>,
    spaces: Option<BTreeSet<String>>,
}

/// Subscriptions and the watcher's wake-up call.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    seen: Mutex<Seen>,
    wake: tokio::sync::Notify,
}

impl Watch {
    /// Look for changes now.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        // The state is a cache of heads: a panic elsewhere leaves it usable.
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DecisionLogServer {
    pub(crate) async fn resources(&self) -> Result<ListResourcesResult, ErrorData> {
        let spaces =
            self.blocking(|log| log.spaces()).await.and_then(|r| r).map_err(|e| resource_error(&e))?;
        let resources = spaces
            .iter()
            .map(|space| {
                Resource::new(uri(space), space.clone())
                    .with_title(format!("Decisions of {space}"))
                    .with_description(format!("The decisions in force in space {space} (its fold), as JSON."))
                    .with_mime_type(JSON)
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    pub(crate) async fn read_space(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let space = space_of(uri)?.to_owned();
        let fold = self.blocking(move |log| log.space(&space).fold()).await.and_then(|r| r);
        let text = fold.map_err(|e| resource_error(&e))?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type(JSON)]))
    }

    pub(crate) async fn subscribe_space(&self, uri: &str) -> Result<(), ErrorData> {
        let space = space_of(uri)?.to_owned();
        let name = space.clone();
        // The head now is the baseline: a change after this call is reported.
        let head = self
            .blocking(move |log| log.space(&name).head())
            .await
            .and_then(|r| r)
            .map_err(|e| resource_error(&e))?;
        self.watch.seen().subscribed.insert(space, head.map(|h| h.commit));
        self.watch.wake();
        Ok(())
    }

    pub(crate) fn unsubscribe_space(&self, uri: &str) -> Result<(), ErrorData> {
        let space = space_of(uri)?;
        self.watch.seen().subscribed.remove(space);
        Ok(())
    }

    /// Tell `peer` about changes until the connection ends: each subscribed
    /// space whose head moved (`notifications/resources/updated`) and new
    /// spaces (`notifications/resources/list_changed`). Started for each
    /// connection once it is initialized.
    pub(crate) async fn watch(self, peer: Peer<RoleServer>) {
        // Spaces are listed at once, so a space that appears after the
        // client connected is reported even if it appears within a poll.
        let mut polls: u32 = 0;
        while !peer.is_transport_closed() {
            self.poll(&peer, polls.is_multiple_of(SPACES_EVERY)).await;
            polls = polls.wrapping_add(1);
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.watch.wake.notified() => {}
            }
        }
    }

    /// One look: the heads of the subscribed spaces, and with `list` the
    /// spaces; tell `peer` what changed.
    async fn poll(&self, peer: &Peer<RoleServer>, list: bool) {
        let subscribed: Vec<String> = self.watch.seen().subscribed.keys().cloned().collect();
        if subscribed.is_empty() && !list {
            return;
        }
        let read = self
            .blocking(move |log| {
                let mut heads = Vec::new();
                for space in subscribed {
                    let head = log.space(&space).head()?;
                    heads.push((space, head.map(|h| h.commit)));
                }
                let spaces = if list { Some(log.spaces()?) } else { None };
                Ok::<_, Error>((heads, spaces))
            })
            .await
            .and_then(|r| r);
        let (heads, spaces) = match read {
            Ok(read) => read,
            Err(e) => {
                eprintln!("dlog mcp: watching for changes: {e}");
                return;
            }
        };
        let (updated, list_changed) = self.compare(heads, spaces);
        // A client that went away is noticed by the loop; nothing to do here.
        for space in updated {
            let _ = peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri(&space))).await;
        }
        if list_changed {
            let _ = peer.notify_resource_list_changed().await;
        }
    }

    /// Record what was read; which subscribed spaces moved, and whether the
    /// list of spaces changed since it was last seen.
    fn compare(
        &self,
        heads: Vec<(String, Option<String>)>,
        spaces: Option<Vec<String>>,
    ) -> (Vec<String>, bool) {
        let mut seen = self.watch.seen();
        let mut updated = Vec::new();
        for (space, head) in heads {
            // Unsubscribed while we read: nothing to tell.
            if let Some(last) = seen.subscribed.get_mut(&space)
                && *last != head
            {
                *last = head;
                updated.push(space);
            }
        }
        let mut list_changed = false;
        if let Some(spaces) = spaces {
            let spaces: BTreeSet<String> = spaces.into_iter().collect();
            list_changed = seen.spaces.as_ref().is_some_and(|last| *last != spaces);
            seen.spaces = Some(spaces);
        }
        (updated, list_changed)
    }
}
