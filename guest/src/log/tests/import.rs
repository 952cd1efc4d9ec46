//! Import: an export replayed elsewhere gives the same commits, an import
//! extends only an identical history, and nothing is written on refusal.

use super::*;
use crate::error::Error;

/// The space's events as `export` writes them: one canonical line each.
fn export(log: &mut Log<FakeHost>) -> Vec<String> {
    log.events(SPACE, 1, u32::MAX).expect("events").iter().map(|s| s.event.canonical()).collect()
}

#[test]
fn an_import_reproduces_the_exported_commits_and_skips_what_is_there() {
    let source = store();
    let mut original = open(&source, 0);
    history(&mut original);
    let lines = export(&mut original);
    let head = original.head(SPACE).expect("head").expect("a head");

    let target = store();
    let mut copy = open(&target, 0);
    let part = copy.import(SPACE, &lines[..3]).expect("import");
    assert_eq!((part.total, part.skipped, part.written), (3, 0, 3));
    assert_eq!(
        part.head.map(|h| h.commit),
        Some(original.events(SPACE, 3, 1).expect("seq 3")[0].commit.clone())
    );

    let rest = copy.import(SPACE, &lines).expect("import");
    assert_eq!((rest.total, rest.skipped, rest.written), (11, 3, 8));
    assert_eq!(rest.head, Some(head.clone()), "same commits, epochs and times");
    assert_eq!(space_head(&target), Some(head.commit));
    assert_eq!(copy.fold(SPACE, None).expect("fold"), original.fold(SPACE, None).expect("fold"));

    let again = copy.import(SPACE, &lines).expect("import");
    assert_eq!((again.skipped, again.written), (11, 0));
    // The ids came along: a resend is recognised.
    assert!(!copy.append(SPACE, &decide("d4", "os", "linux")).expect("resend").created);
}

#[test]
fn an_import_refuses_a_space_whose_history_differs_and_writes_nothing() {
    let source = store();
    let mut original = open(&source, 0);
    history(&mut original);
    let lines = export(&mut original);

    let target = store();
    let mut other = open(&target, 0);
    other.append(SPACE, &decide("d1", "db", "postgres")).expect("d1");
    other.append(SPACE, &decide("x2", "ui", "native")).expect("x2");
    let head = space_head(&target);
    // The first event is the same (same intent, same clock): the second is not.
    let refused = other.import(SPACE, &lines);
    assert_eq!(
        refused,
        Err(Error::Invalid(
            "line 2: space \"team\" already holds a different event at seq 2; import only extends an identical history"
                .into()
        ))
    );
    assert_eq!(space_head(&target), head);

    let shuffled = [lines[0].clone(), lines[2].clone()];
    let refused = open(&store(), 0).import(SPACE, &shuffled);
    assert!(
        matches!(&refused, Err(Error::Invalid(m)) if m.starts_with("line 2: seq is 3, expected 2")),
        "{refused:?}"
    );

    let unleased = FakeHost::new("alice");
    let refused = open(&unleased, 0).import(SPACE, &lines);
    assert!(matches!(refused, Err(Error::NotHolder { .. })), "{refused:?}");
    assert_eq!(space_head(&unleased), None);
}
