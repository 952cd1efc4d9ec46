//! The two hosts agree byte for byte on the same intents and clock, and a
//! space handle is shareable across threads.

use std::collections::BTreeSet;

use decision_log::backend::{ObjectId, ObjectKind};

use crate::support::*;

fn script() -> Vec<decision_log::Intent> {
    vec![
        decide("p1", "db", "postgres"),
        decide("p2", "ui", "web ✓"),
        supersede("p3", "db", "sqlite", "p1"),
        retract("p4", "ui", Some("p2")),
        decide("p5", "ключ", "значение"),
    ]
}

/// Every object reachable from a space's head, walking the chain.
fn reachable(host: &TestHost, space: &str) -> BTreeSet<(String, Vec<u8>)> {
    let mut out = BTreeSet::new();
    for e in host.space(space).events(1, u32::MAX).unwrap() {
        let commit = ObjectId::from_hex(&e.commit).unwrap();
        let (_, bytes) = host.log.backend().read_object(&commit).unwrap().unwrap();
        let tree = ObjectId::from_hex(std::str::from_utf8(&bytes[5..45]).unwrap()).unwrap();
        let (_, tree_bytes) = host.log.backend().read_object(&tree).unwrap().unwrap();
        out.insert((e.commit.clone(), bytes));
        out.insert((tree.to_hex(), tree_bytes));
        let blob = ObjectId::for_object(ObjectKind::Blob, e.canonical.as_bytes());
        let (_, blob_bytes) = host.log.backend().read_object(&blob).unwrap().unwrap();
        out.insert((blob.to_hex(), blob_bytes));
    }
    out
}

#[test]
fn memory_and_git_hosts_produce_identical_events_objects_heads_and_folds() {
    let (memory, git) = (memory_host(), git_host());
    for (i, intent) in script().into_iter().enumerate() {
        for host in [&memory, &git] {
            host.clock.set(T0 + 1000 * i as u64);
            host.space("team").append(intent.clone()).unwrap();
        }
    }
    let (m, g) = (memory.space("team"), git.space("team"));
    assert_eq!(snapshot(&m), snapshot(&g), "event bytes and head id");
    assert_eq!(m.fold().unwrap(), g.fold().unwrap(), "fold bytes");
    assert_eq!(reachable(&memory, "team"), reachable(&git, "team"), "object ids and bytes");
    assert!(g.verify().unwrap().problems.is_empty());
}

#[test]
fn a_space_handle_is_shared_across_threads() {
    each_host(|h| {
        let space = h.space("team");
        std::thread::scope(|scope| {
            for t in 0..4 {
                let space = space.clone();
                scope.spawn(move || {
                    for i in 0..10 {
                        space.append(decide(&format!("t{t}-{i}"), &format!("k{t}"), &i.to_string())).unwrap();
                    }
                });
            }
        });
        let events = space.events(1, 100).unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=40).collect::<Vec<_>>(),
            "{}",
            h.name
        );
    });
}
