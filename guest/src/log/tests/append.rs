//! Appends: seqs, the ref, idempotent resends, batches, the lease.

use super::*;
use crate::error::Error;
use crate::host::Lease;
use crate::log::fake::START_MS;

#[test]
fn appends_take_the_next_seqs_and_move_the_ref_to_the_newest_commit() {
    let host = store();
    let mut log = open(&host, 0);
    let first = log.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    let second = log.append(SPACE, &decide("d2", "ui", "web")).expect("d2");
    assert!(first.created && second.created);
    assert_eq!((first.stored.event.seq, second.stored.event.seq), (1, 2));
    assert_ne!(first.stored.commit, second.stored.commit);
    assert_eq!(space_head(&host), Some(second.stored.commit.clone()));
    let head = log.head(SPACE).expect("head").expect("a head");
    assert_eq!((head.seq, head.commit, head.epoch), (2, second.stored.commit.clone(), 1));
    let events = log.events(SPACE, 1, 10).expect("events");
    assert_eq!(events, [first.stored, second.stored]);
}

#[test]
fn a_resend_returns_the_original_event_and_writes_nothing() {
    let host = store();
    let mut log = open(&host, 0);
    let original = log.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    log.append(SPACE, &decide("d2", "ui", "web")).expect("d2");
    let head = space_head(&host);
    // A later clock must not restamp the resend.
    host.set_now(START_MS + 60_000);
    let resent = log.append(SPACE, &decide("d1", "db", "postgres")).expect("resend");
    assert!(!resent.created);
    assert_eq!(resent.stored, original.stored);
    assert_eq!(space_head(&host), head, "nothing was appended");
    let changed = log.append(SPACE, &decide("d1", "db", "mysql"));
    assert_eq!(changed, Err(Error::IdConflict("d1".into())));
}

#[test]
fn a_batch_that_repeats_an_id_stores_it_once() {
    let host = store();
    let mut log = open(&host, 0);
    let batch = [decide("d1", "db", "postgres"), decide("d2", "ui", "web"), decide("d1", "db", "postgres")];
    let appended = log.append_batch(SPACE, &batch).expect("batch");
    let created: Vec<bool> = appended.iter().map(|a| a.created).collect();
    assert_eq!(created, [true, true, false]);
    assert_eq!(appended[2].stored, appended[0].stored);
    assert_eq!(log.head(SPACE).expect("head").map(|h| h.seq), Some(2));
    let conflicting = [decide("d3", "os", "linux"), decide("d3", "os", "bsd")];
    assert_eq!(log.append_batch(SPACE, &conflicting), Err(Error::IdConflict("d3".into())));
}

#[test]
fn a_rejected_batch_leaves_nothing_behind_in_the_log_or_the_fold() {
    let host = store();
    let mut log = open(&host, 0);
    log.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    let before = log.fold(SPACE, None).expect("fold");
    // The second intent supersedes a decision that is not in force.
    let batch = [decide("d2", "ui", "web"), supersede("d3", "db", "sqlite", "d9")];
    let rejected = log.append_batch(SPACE, &batch);
    assert!(matches!(rejected, Err(Error::DecisionConflict { .. })), "{rejected:?}");
    let reads = host.reads();
    assert_eq!(log.fold(SPACE, None).expect("fold"), before, "the first intent was taken back");
    // Taken back from the replica too: it still matches the ref's head and
    // need not read anything again.
    assert_eq!(host.reads(), reads);
    let next = log.append(SPACE, &decide("d2", "ui", "web")).expect("d2 alone");
    assert_eq!(next.stored.event.seq, 2);
}

#[test]
fn an_intent_expecting_an_older_head_is_refused_with_the_current_one() {
    let host = store();
    let mut log = open(&host, 0);
    log.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    let second = log.append(SPACE, &decide("d2", "ui", "web")).expect("d2");
    let stale = RawIntent { expect_seq: Some(1), ..decide("d3", "os", "linux") };
    match log.append(SPACE, &stale) {
        Err(Error::HeadConflict { expected_seq: 1, actual: Some(head) }) => {
            assert_eq!((head.seq, head.commit), (2, second.stored.commit));
        }
        other => panic!("expected a head conflict, got {other:?}"),
    }
    let current = RawIntent { expect_seq: Some(2), ..decide("d3", "os", "linux") };
    assert_eq!(log.append(SPACE, &current).expect("d3").stored.event.seq, 3);
}

#[test]
fn only_the_holder_of_a_live_lease_appends_and_under_its_epoch() {
    let alice = FakeHost::new("alice");
    let bob = alice.as_host("bob");
    let (mut alices, mut bobs) = (open(&alice, 0), open(&bob, 0));
    let refused = alices.append(SPACE, &decide("d1", "db", "postgres"));
    assert_eq!(refused, Err(Error::NotHolder { space: SPACE.into(), holder: None }));

    bob.grant_lease(SPACE, 3);
    assert_eq!(bobs.append(SPACE, &decide("d1", "db", "postgres")).expect("d1").stored.event.epoch, 3);
    let refused = alices.append(SPACE, &decide("d2", "ui", "web"));
    assert_eq!(refused, Err(Error::NotHolder { space: SPACE.into(), holder: bob.lease(SPACE) }));

    // Bob's lease lapses; Alice takes the next epoch and writes after Bob.
    alice.set_now(START_MS + 3_600_000);
    assert_eq!(alice.lease(SPACE).map(|l| l.expires_at_ms), Some(START_MS + 3_600_000));
    alice.grant_lease(SPACE, 4);
    let appended = alices.append(SPACE, &decide("d2", "ui", "web")).expect("d2");
    assert_eq!((appended.stored.event.seq, appended.stored.event.epoch), (2, 4));
    alice.grant_lease(SPACE, 2);
    let stale = alices.append(SPACE, &decide("d3", "os", "linux"));
    assert_eq!(stale, Err(Error::StaleEpoch { epoch: 2, head_epoch: 4 }));
}

#[test]
fn event_times_never_go_backwards_when_the_clock_does() {
    let host = store();
    let mut log = open(&host, 0);
    let first = log.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    assert_eq!(first.stored.event.at_ms, START_MS);
    host.set_now(START_MS - 5_000);
    let second = log.append(SPACE, &decide("d2", "ui", "web")).expect("d2");
    assert_eq!(second.stored.event.at_ms, START_MS);
}

#[test]
fn a_host_clock_or_epoch_beyond_what_an_event_can_store_is_refused_and_nothing_is_written() {
    let host = store();
    let mut log = open(&host, 0);
    log.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    let head = space_head(&host);
    let forever = |epoch| Lease { holder: "alice".into(), epoch, expires_at_ms: u64::MAX, endpoint: None };
    host.set_lease(SPACE, Some(forever(1)));
    host.set_now(1 << 53);
    match log.append(SPACE, &decide("d2", "ui", "web")) {
        Err(Error::Storage(m)) => assert!(m.contains("beyond 2^53 - 1"), "{m}"),
        other => panic!("a clock past 2^53 - 1 was taken: {other:?}"),
    }
    assert_eq!(space_head(&host), head, "nothing was written");
    host.set_now(START_MS + 1);
    host.set_lease(SPACE, Some(forever(1 << 53)));
    assert!(matches!(log.append(SPACE, &decide("d2", "ui", "web")), Err(Error::Storage(_))));
    assert_eq!(space_head(&host), head);
    assert_eq!(log.events(SPACE, 1, 10).expect("events").len(), 1, "the log still reads back");
}
