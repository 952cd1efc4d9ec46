//! Catching up: with another writer's appends, from far behind, and by a
//! replay long enough to checkpoint on its way.

use super::*;

#[test]
fn a_log_catches_up_with_what_another_instance_appended_meanwhile() {
    let host = store();
    let mut first = open(&host, 0);
    let mut second = open(&host, 0);
    first.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    first.append(SPACE, &decide("d2", "ui", "web")).expect("d2");
    let theirs = second.append(SPACE, &supersede("d3", "db", "sqlite", "d1")).expect("d3");
    assert_eq!(theirs.stored.event.seq, 3, "the second writer read the first one's events");
    let ours = first.append(SPACE, &decide("d4", "os", "linux")).expect("d4");
    assert_eq!(ours.stored.event.seq, 4, "the first writer read the second one's event");

    assert_eq!(first.head(SPACE).expect("head"), second.head(SPACE).expect("head"));
    assert_eq!(first.fold(SPACE, None).expect("fold"), second.fold(SPACE, None).expect("fold"));
    assert_eq!(first.events(SPACE, 1, 10).expect("events"), second.events(SPACE, 1, 10).expect("events"));
    // The supersede by the second writer is in force for the first.
    let state = first.fold_state(SPACE, None).expect("fold");
    assert_eq!(state.decisions["db"].id, "d3");
    let resent = first.append(SPACE, &supersede("d3", "db", "sqlite", "d1")).expect("resend");
    assert!(!resent.created);
    assert_eq!(resent.stored, theirs.stored);
}

#[test]
fn a_replica_far_behind_starts_from_the_latest_checkpoint_on_its_way() {
    let host = store();
    let mut writer = open(&host, 512);
    let mut reader = open(&host, 512);
    decisions(&mut writer, 1, 10);
    assert_eq!(reader.head(SPACE).expect("head").map(|h| h.seq), Some(10));
    decisions(&mut writer, 11, 2_600);
    let latest = checkpoint_seqs(&host)[0];
    assert_eq!(latest, 2_600, "the writer checkpointed at its last batch");

    let before = host.reads();
    assert_eq!(reader.fold(SPACE, None).expect("fold"), writer.fold(SPACE, None).expect("fold"));
    let reads = host.reads() - before;
    // The walk back reads one commit per event; a replay would also read
    // each event's tree and blob, three times as many.
    let behind = 2_600 - 10;
    assert!(reads < behind + 50, "{reads} reads to catch up {behind} events");
    let replica = &reader.replicas[SPACE];
    assert_eq!(replica.checkpoint_seq(), latest);
    assert!(replica.commits.is_empty(), "it holds only the events after the checkpoint");

    // What is before the checkpoint is found through its index.
    let early = writer.events(SPACE, 5, 1).expect("events");
    assert_eq!(reader.events(SPACE, 5, 1).expect("events"), early);
    let resent = reader.append(SPACE, &numbered(5)).expect("resend");
    assert!(!resent.created);
    assert_eq!(resent.stored, early[0]);
    assert!(reader.take_warnings().is_empty());
}

#[test]
fn a_long_replay_checkpoints_at_multiples_of_its_interval_as_it_goes() {
    let host = store();
    let mut writer = open(&host, 0);
    decisions(&mut writer, 1, 1_100);
    assert_eq!(checkpoint_seqs(&host), [] as [u64; 0]);
    // Checkpointing every 4 events, a catch-up checkpoints every 4 × 128.
    let mut reader = open(&host, 4);
    assert_eq!(reader.fold(SPACE, None).expect("fold"), writer.fold(SPACE, None).expect("fold"));
    assert_eq!(checkpoint_seqs(&host), [1_024, 512]);
    let replica = &reader.replicas[SPACE];
    assert_eq!((replica.first_seq, replica.commits.len()), (1_025, 76));
    assert!(reader.take_warnings().is_empty());
}

#[test]
fn a_replay_that_may_not_write_checkpoints_warns_once_and_still_folds_right() {
    let host = store();
    let mut writer = open(&host, 0);
    decisions(&mut writer, 1, 1_100);
    host.refuse_checkpoint_refs(true);
    let mut reader = open(&host, 4);
    assert_eq!(reader.fold(SPACE, None).expect("fold"), writer.fold(SPACE, None).expect("fold"));
    assert_eq!(checkpoint_seqs(&host), [] as [u64; 0]);
    let warnings = reader.take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("could not write a checkpoint") && warnings[0].contains("permission denied")
    );
    assert_eq!(reader.replicas[SPACE].commits.len(), 1_100, "it keeps every event instead");
}
