//! Checkpoints: races between writers, and damaged checkpoints that must
//! cost a replay and a warning, never a wrong answer.

use super::*;
use crate::log::Position;

#[test]
fn a_checkpoint_race_lost_to_another_writer_adopts_the_winner() {
    let host = store();
    let mut first = open(&host, 0);
    let mut second = open(&host, 0);
    decisions(&mut first, 1, 5);
    // The second writer reads the space while it has no checkpoint.
    assert_eq!(second.head(SPACE).expect("head").map(|h| h.seq), Some(5));
    let winner = first.checkpoint(SPACE).expect("checkpoint").expect("written");
    assert_eq!(winner.seq, 5);
    decisions(&mut first, 6, 7);

    // The second writer expects no checkpoint ref, finds the first one's,
    // starts from it and checkpoints the events after it on top.
    let info = second.checkpoint(SPACE).expect("checkpoint").expect("written");
    assert_eq!(info.seq, 7);
    assert_eq!(checkpoint_header(&host, &info.commit).parent, Some(winner.commit));
    assert_eq!(checkpoint_seqs(&host), [7, 5]);
    assert!(second.take_warnings().is_empty());

    let mut cold = open(&host, 0);
    assert_eq!(cold.fold(SPACE, None).expect("fold"), first.fold(SPACE, None).expect("fold"));
    assert!(cold.take_warnings().is_empty());
    let report = cold.verify(SPACE).expect("verify");
    assert_eq!((report.events, report.problems), (7, Vec::<String>::new()));
}

#[test]
fn a_writer_that_loses_an_automatic_checkpoint_to_another_chains_onto_the_winner() {
    let host = store();
    let mut first = open(&host, 4);
    let mut second = open(&host, 4);
    decisions(&mut first, 1, 3);
    second.append(SPACE, &numbered(4)).expect("4");
    assert_eq!(checkpoint_seqs(&host), [4], "the second writer crossed seq 4");
    // At seq 5 the first writer crosses 4 too, expecting no checkpoint:
    // it loses, adopts the second writer's, and writes the next at 8.
    for i in 5..=8 {
        first.append(SPACE, &numbered(i)).expect("append");
    }
    assert_eq!(checkpoint_seqs(&host), [8, 4]);
    assert_eq!(first.replicas[SPACE].checkpoint_seq(), 8);
    assert!(first.take_warnings().is_empty() && second.take_warnings().is_empty());
    assert_eq!(first.fold(SPACE, None).expect("fold"), second.fold(SPACE, None).expect("fold"));
}

/// Write `text` as a commit and point the checkpoint ref at it.
fn replace_checkpoint(host: &FakeHost, text: &str) -> String {
    let id = host.write_object(ObjectKind::Commit, text.as_bytes()).expect("write");
    host.force_ref(&checkpoint::checkpoint_ref(SPACE), &id);
    id
}

fn checkpoint_text(host: &FakeHost, commit: &str) -> String {
    let (_, bytes) = host.object(commit).expect("stored");
    String::from_utf8(bytes).expect("UTF-8")
}

#[test]
fn a_damaged_checkpoint_is_ignored_with_a_warning_and_the_fold_is_still_right() {
    let host = store();
    let mut writer = open(&host, 0);
    history(&mut writer);
    let good = writer.fold(SPACE, None).expect("fold");
    let info = writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    let text = checkpoint_text(&host, &info.commit);
    let sha = checkpoint_header(&host, &info.commit).state_sha1;
    let damaged = replace_checkpoint(&host, &text.replace(&sha, &"0".repeat(40)));

    let mut reader = open(&host, 0);
    assert_eq!(reader.fold(SPACE, None).expect("fold"), good);
    let warnings = reader.take_warnings();
    assert!(
        warnings.len() == 1 && warnings[0].contains("unusable") && warnings[0].contains("Dlog-State-Sha1"),
        "{warnings:?}"
    );
    assert_eq!(reader.events(SPACE, 1, 20).expect("events"), writer.events(SPACE, 1, 20).expect("events"));

    // The next checkpoint replaces the damaged one with a new chain.
    let fresh = reader.checkpoint(SPACE).expect("checkpoint").expect("written");
    assert_eq!(fresh.seq, 11);
    assert_ne!(fresh.commit, damaged);
    assert_eq!(checkpoint_header(&host, &fresh.commit).parent, None);
    let mut cold = open(&host, 0);
    assert_eq!(cold.fold(SPACE, None).expect("fold"), good);
    assert!(cold.take_warnings().is_empty());
}

#[test]
fn a_checkpoint_whose_index_is_damaged_costs_a_replay_and_a_warning() {
    let host = store();
    let mut writer = open(&host, 0);
    history(&mut writer);
    let info = writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    writer.append(SPACE, &decide("d12", "k12", "v")).expect("d12");
    // Swap the checkpoint's `index/` tree for one that is not an index.
    let header = checkpoint_header(&host, &info.commit);
    let tree = |entries: &[(String, ObjectKind, String)]| {
        host.write_object(ObjectKind::Tree, &checkpoint::encode_tree(entries)).expect("write")
    };
    let blob = host.write_object(ObjectKind::Blob, b"not a segment").expect("write");
    let garbage = tree(&[("garbage".into(), ObjectKind::Blob, blob)]);
    let (_, root) = host.object(&header.tree).expect("stored");
    let entries = checkpoint::decode_tree(&root).expect("tree");
    let kind = |dir: bool| if dir { ObjectKind::Tree } else { ObjectKind::Blob };
    let root: Vec<(String, ObjectKind, String)> = entries
        .into_iter()
        .map(|(name, dir, id)| {
            let id = if name == "index" { garbage.clone() } else { id };
            (name, kind(dir), id)
        })
        .collect();
    let root = tree(&root);
    let text = checkpoint_text(&host, &info.commit);
    replace_checkpoint(&host, &text.replace(&header.tree, &root));

    let mut reader = open(&host, 0);
    let expected = writer.events(SPACE, 1, 20).expect("events");
    assert_eq!(reader.events(SPACE, 1, 20).expect("events"), expected);
    let warnings = reader.take_warnings();
    assert!(
        warnings.len() == 1
            && warnings[0].contains("index of the checkpoint")
            && warnings[0].contains("seq 11"),
        "{warnings:?}"
    );
    let at_three = Some(Position::Seq(3));
    assert_eq!(
        reader.fold(SPACE, at_three.as_ref()).expect("fold"),
        writer.fold(SPACE, at_three.as_ref()).expect("fold")
    );
    let resent = reader.append(SPACE, &decide("d2", "ui", "web")).expect("resend");
    assert!(!resent.created);
    assert_eq!(resent.stored, expected[1]);
    assert!(reader.take_warnings().is_empty(), "the replayed replica does not use the index again");
}
