//! The scenario suite: what a decision log must do, on every host.

use decision_log::authority::Lease;
use decision_log::runtime::Limits;
use decision_log::{Error, Intent, Log, Options, Position};
use serde_json::json;

use crate::support::*;

#[test]
fn a_decision_is_appended_stamped_and_folded() {
    each_host(|h| {
        let s = h.space("team");
        let a = s.append(decide("d1", "db", "postgres")).unwrap();
        assert!(a.created, "{}", h.name);
        let e = &a.event;
        assert_eq!((e.seq, e.epoch, e.at_ms, e.id.as_str(), e.kind.as_str()), (1, 1, T0, "d1", "decide"));
        assert_eq!(e.space, "team");
        assert_eq!(e.body, r#"{"choice":"postgres","key":"db","rationale":"because postgres"}"#);
        assert_eq!(s.head().unwrap().unwrap().commit, e.commit, "{}", h.name);
        let f = fold(&s);
        assert_eq!(f["decisions"]["db"]["choice"], "postgres");
        assert_eq!(f["decisions"]["db"]["revision"], 1);
        assert_eq!(f["seq"], 1);
        assert_eq!(f["head"], e.commit.as_str());
        assert_eq!(f["counts"], json!({"events": 1, "decide": 1, "retract": 0, "authority": 0}));
    });
}

#[test]
fn seqs_are_contiguous_and_each_commit_parents_the_next() {
    each_host(|h| {
        let s = h.space("team");
        for i in 1..=5 {
            h.clock.advance(7);
            s.append(decide(&format!("d{i}"), &format!("k{i}"), "x")).unwrap();
        }
        let events = s.events(1, 100).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5], "{}", h.name);
        assert_eq!(s.events(4, 100).unwrap().len(), 2);
        assert_eq!(s.events(2, 2).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert!(s.events(6, 10).unwrap().is_empty());
        let report = s.verify().unwrap();
        assert_eq!((report.events, report.problems.len()), (5, 0), "{:?}", report.problems);
    });
}

#[test]
fn a_superseding_decision_replaces_the_one_in_force_and_counts_a_revision() {
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d1", "db", "postgres")).unwrap();
        s.append(supersede("d2", "db", "sqlite", "d1")).unwrap();
        let f = fold(&s);
        assert_eq!(f["decisions"]["db"]["choice"], "sqlite", "{}", h.name);
        assert_eq!(f["decisions"]["db"]["revision"], 2);
        assert_eq!(f["decisions"]["db"]["actor"], "bob");
    });
}

#[test]
fn superseding_anything_but_the_decision_in_force_is_a_conflict_and_changes_nothing() {
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d1", "db", "postgres")).unwrap();
        s.append(supersede("d2", "db", "sqlite", "d1")).unwrap();
        let before = snapshot(&s);
        match s.append(supersede("d3", "db", "mysql", "d1")) {
            Err(Error::DecisionConflict { key, expected, in_force }) => {
                assert_eq!(
                    (key.as_str(), expected.as_deref(), in_force.as_deref()),
                    ("db", Some("d1"), Some("d2"))
                );
            }
            other => panic!("{}: expected a decision conflict, got {other:?}", h.name),
        }
        let err = s.append(supersede("d4", "ui", "web", "d1")).unwrap_err();
        assert!(matches!(err, Error::DecisionConflict { in_force: None, .. }), "{}: {err}", h.name);
        assert_eq!(snapshot(&s), before, "{}", h.name);
    });
}

#[test]
fn a_retraction_moves_the_decision_to_retracted() {
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d1", "db", "postgres")).unwrap();
        s.append(retract("r1", "db", Some("d1"))).unwrap();
        let f = fold(&s);
        assert_eq!(f["decisions"], json!({}), "{}", h.name);
        assert_eq!(f["retracted"]["db"]["choice"], "postgres");
        assert_eq!(f["retracted"]["db"]["decision"], "d1");
        assert_eq!(f["retracted"]["db"]["rationale"], "withdrawn");
        let err = s.append(retract("r2", "db", None)).unwrap_err();
        assert!(matches!(err, Error::DecisionConflict { in_force: None, .. }), "{}: {err}", h.name);
        s.append(decide("d2", "db", "sqlite")).unwrap();
        let f = fold(&s);
        assert_eq!(f["decisions"]["db"]["revision"], 2, "a new decision continues the key's revisions");
        assert_eq!(f["retracted"], json!({}));
    });
}

#[test]
fn resending_an_intent_returns_the_original_event_and_appends_nothing() {
    each_host(|h| {
        let s = h.space("team");
        let first = s.append(decide("d1", "db", "postgres")).unwrap();
        s.append(decide("d2", "ui", "web")).unwrap();
        h.clock.advance(60_000);
        let again = s.append(decide("d1", "db", "postgres")).unwrap();
        assert!(!again.created, "{}", h.name);
        assert_eq!(again.event.canonical, first.event.canonical);
        assert_eq!(again.event.commit, first.event.commit);
        assert_eq!(s.head().unwrap().unwrap().seq, 2);
        let err = s.append(decide("d1", "db", "mysql")).unwrap_err();
        assert!(matches!(&err, Error::IdConflict(id) if id == "d1"), "{}: {err}", h.name);
    });
}

#[test]
fn resending_is_recognised_by_a_fresh_log_over_the_same_storage() {
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d1", "db", "postgres")).unwrap();
        let fresh = Log::with_backend(h.log.backend().clone(), Options::default()).unwrap();
        let again = fresh.space("team").append(decide("d1", "db", "postgres")).unwrap();
        assert!(!again.created, "{}: the id is checked against the log, not a cache", h.name);
    });
}

#[test]
fn an_intent_without_an_id_gets_a_fresh_unique_one() {
    each_host(|h| {
        let s = h.space("team");
        let body = json!({"key": "db", "choice": "pg", "rationale": "r"}).to_string();
        let a = s.append(Intent::new("alice", "decide", body.clone())).unwrap();
        let b = s.append(Intent::new("alice", "decide", body)).unwrap();
        assert_ne!(a.event.id, b.event.id, "{}", h.name);
        assert_eq!(a.event.id.len(), 36, "a UUID: {}", a.event.id);
    });
}

#[test]
fn expect_seq_guards_against_a_moved_head() {
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d1", "db", "postgres").expecting(0)).unwrap();
        s.append(decide("d2", "ui", "web").expecting(1)).unwrap();
        let before = snapshot(&s);
        match s.append(decide("d3", "os", "linux").expecting(1)) {
            Err(Error::HeadConflict { expected_seq, actual }) => {
                assert_eq!(expected_seq, 1);
                assert_eq!(actual.unwrap().seq, 2, "{}", h.name);
            }
            other => panic!("{}: expected a head conflict, got {other:?}", h.name),
        }
        assert_eq!(snapshot(&s), before);
    });
}

#[test]
fn every_invalid_intent_class_has_its_own_error_and_leaves_the_log_unchanged() {
    let body = |v: serde_json::Value| v.to_string();
    let ok = || json!({"key": "k", "choice": "c", "rationale": "r"});
    let cases: Vec<(&str, Intent, &str)> = vec![
        ("empty id", Intent::new("alice", "decide", body(ok())).with_id(""), "intent id is empty"),
        ("id with a space", Intent::new("alice", "decide", body(ok())).with_id("a b"), "visible ASCII"),
        ("id too long", Intent::new("alice", "decide", body(ok())).with_id("x".repeat(129)), "limit is 128"),
        ("empty actor", Intent::new("", "decide", body(ok())).with_id("i"), "actor is empty"),
        ("actor with <>", Intent::new("a <b>", "decide", body(ok())).with_id("i"), "'<'"),
        ("actor with a newline", Intent::new("a\nb", "decide", body(ok())).with_id("i"), "control"),
        ("actor too long", Intent::new("a".repeat(65), "decide", body(ok())).with_id("i"), "limit is 64"),
        ("unknown kind", Intent::new("alice", "vote", body(ok())).with_id("i"), "unknown kind \"vote\""),
        ("body not JSON", Intent::new("alice", "decide", "{nope").with_id("i"), "not valid I-JSON"),
        (
            "duplicate keys",
            Intent::new("alice", "decide", r#"{"key":"k","key":"j","choice":"c","rationale":"r"}"#)
                .with_id("i"),
            "Duplicate key \"key\"",
        ),
        (
            "lone surrogate",
            Intent::new("alice", "decide", r#"{"key":"\ud800","choice":"c","rationale":"r"}"#).with_id("i"),
            "surrogate",
        ),
        (
            "unsafe integer",
            Intent::new(
                "alice",
                "decide",
                r#"{"key":"k","choice":"c","rationale":"r","n":9007199254740993}"#,
            )
            .with_id("i"),
            "2^53",
        ),
        ("body not an object", Intent::new("alice", "decide", "[]").with_id("i"), "must be a JSON object"),
        (
            "missing field",
            Intent::new("alice", "decide", body(json!({"key": "k", "choice": "c"}))).with_id("i"),
            "\"rationale\" is missing",
        ),
        (
            "mistyped field",
            Intent::new("alice", "decide", body(json!({"key": "k", "choice": 1, "rationale": "r"})))
                .with_id("i"),
            "must be a string, not a number",
        ),
        (
            "unknown field",
            Intent::new(
                "alice",
                "decide",
                body(json!({"key": "k", "choice": "c", "rationale": "r", "x": true})),
            )
            .with_id("i"),
            "unknown field \"x\"",
        ),
        (
            "empty key",
            Intent::new("alice", "decide", body(json!({"key": "", "choice": "c", "rationale": "r"})))
                .with_id("i"),
            "\"key\" is empty",
        ),
        (
            "key too long",
            Intent::new(
                "alice",
                "decide",
                body(json!({"key": "k".repeat(257), "choice": "c", "rationale": "r"})),
            )
            .with_id("i"),
            "limit is 256",
        ),
        (
            "body too large",
            Intent::new(
                "alice",
                "decide",
                body(json!({"key": "k", "choice": "c".repeat(70_000), "rationale": "r"})),
            )
            .with_id("i"),
            "larger than the limit",
        ),
        (
            "bad rejected entry",
            Intent::new(
                "alice",
                "decide",
                body(json!({"key": "k", "choice": "c", "rationale": "r", "rejected": [{"option": "o"}]})),
            )
            .with_id("i"),
            "rejected[0]",
        ),
        (
            "authority for someone else",
            Intent::new("alice", "authority", body(json!({"holder": "mallory", "epoch": 1}))).with_id("i"),
            "must name this writer's lease",
        ),
    ];
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d0", "base", "x")).unwrap();
        let before = (snapshot(&s), s.fold().unwrap());
        for (class, intent, want) in &cases {
            match s.append(intent.clone()) {
                Err(Error::Invalid(message)) => {
                    assert!(message.contains(want), "{}: {class}: expected {want:?} in {message:?}", h.name)
                }
                other => panic!("{}: {class}: expected an invalid-intent error, got {other:?}", h.name),
            }
            assert_eq!((snapshot(&s), s.fold().unwrap()), before, "{}: {class} changed the log", h.name);
        }
    });
}

#[test]
fn bad_space_names_are_rejected_with_the_rule_they_break() {
    each_host(|h| {
        for (name, want) in
            [("", "empty"), ("Team", "must start"), ("a/b", "'/'"), ("a..b", "\"..\""), ("x.lock", ".lock")]
        {
            let err = h.space(name).append(decide("d", "k", "v")).unwrap_err();
            assert!(matches!(&err, Error::Invalid(m) if m.contains(want)), "{}: {name:?}: {err}", h.name);
        }
        assert!(h.log.spaces().unwrap().is_empty());
    });
}

#[test]
fn a_batch_is_appended_whole_or_not_at_all() {
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d0", "base", "x")).unwrap();
        let before = snapshot(&s);
        let folded = fold(&s);
        let bad = vec![decide("b1", "a", "1"), decide("b2", "b", "2"), supersede("b3", "a", "3", "nope")];
        assert!(matches!(s.append_batch(bad), Err(Error::DecisionConflict { .. })), "{}", h.name);
        let invalid = vec![decide("b1", "a", "1"), Intent::new("alice", "decide", "{}").with_id("b2")];
        let err = s.append_batch(invalid).unwrap_err();
        assert!(matches!(&err, Error::Invalid(m) if m.starts_with("intent 2:")), "{}: {err}", h.name);
        assert_eq!(snapshot(&s), before, "{}: a failed batch wrote something", h.name);
        assert_eq!(fold(&s), folded, "{}: a failed batch left its events in the fold", h.name);

        let good = vec![decide("b1", "a", "1"), supersede("b2", "a", "2", "b1"), decide("d0", "base", "x")];
        let out = s.append_batch(good).unwrap();
        assert_eq!(
            out.iter().map(|a| (a.event.seq, a.created)).collect::<Vec<_>>(),
            [(2, true), (3, true), (1, false)]
        );
        assert_eq!(fold(&s)["decisions"]["a"]["choice"], "2");
    });
}

#[test]
fn a_batch_gives_the_same_bytes_as_single_appends() {
    let script = || {
        vec![
            decide("a", "k1", "v1"),
            supersede("b", "k1", "v2", "a"),
            decide("c", "k2", "v3"),
            retract("d", "k2", Some("c")),
        ]
    };
    for (one, other) in hosts().into_iter().zip(hosts()) {
        for intent in script() {
            one.space("s").append(intent).unwrap();
        }
        other.space("s").append_batch(script()).unwrap();
        assert_eq!(snapshot(&one.space("s")), snapshot(&other.space("s")), "{}", one.name);
        assert_eq!(one.space("s").fold().unwrap(), other.space("s").fold().unwrap());
    }
}

#[test]
fn at_ms_never_decreases_even_when_the_clock_does() {
    each_host(|h| {
        let s = h.space("team");
        h.clock.set(T0 + 5_000);
        s.append(decide("d1", "a", "1")).unwrap();
        h.clock.set(T0);
        let e = s.append(decide("d2", "b", "2")).unwrap().event;
        assert_eq!(e.at_ms, T0 + 5_000, "{}", h.name);
    });
}

#[test]
fn overlay_takes_each_key_from_the_first_space_that_decides_it() {
    each_host(|h| {
        h.space("team").append(decide("t1", "db", "sqlite")).unwrap();
        h.space("org").append(decide("o1", "db", "postgres")).unwrap();
        h.space("org").append(decide("o2", "ci", "github")).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&h.log.overlay(&["team".into(), "org".into()]).unwrap()).unwrap();
        assert_eq!(v["decisions"]["db"]["choice"], "sqlite", "{}", h.name);
        assert_eq!(v["decisions"]["db"]["space"], "team");
        assert_eq!(v["decisions"]["ci"]["space"], "org");
        assert_eq!(v["spaces"], json!(["team", "org"]));
        let err = h.log.overlay(&["team".into(), "team".into()]).unwrap_err();
        assert!(matches!(&err, Error::Invalid(m) if m.contains("listed twice")), "{err}");
    });
}

#[test]
fn union_lists_every_key_and_the_spaces_that_disagree() {
    each_host(|h| {
        h.space("team").append(decide("t1", "db", "sqlite")).unwrap();
        h.space("team").append(decide("t2", "ci", "github")).unwrap();
        h.space("org").append(decide("o1", "db", "postgres")).unwrap();
        h.space("org").append(decide("o2", "ci", "github")).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&h.log.union(&["team".into(), "org".into()]).unwrap()).unwrap();
        assert_eq!(
            v["conflicts"],
            json!([{"key": "db", "choices": {"org": "postgres", "team": "sqlite"}}]),
            "{}",
            h.name
        );
        assert_eq!(v["decisions"]["ci"]["org"]["choice"], "github");
        assert_eq!(v["decisions"]["ci"]["team"]["choice"], "github");
    });
}

#[test]
fn a_fold_at_a_seq_or_commit_equals_the_fold_of_that_prefix() {
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d1", "db", "postgres")).unwrap();
        let at_one = s.fold().unwrap();
        let c1 = s.head().unwrap().unwrap().commit;
        s.append(supersede("d2", "db", "sqlite", "d1")).unwrap();
        assert_eq!(s.fold_at(&Position::Seq(1)).unwrap(), at_one, "{}", h.name);
        assert_eq!(s.fold_at(&Position::Commit(c1)).unwrap(), at_one);
        assert_eq!(s.fold_at(&Position::Seq(2)).unwrap(), s.fold().unwrap());
        assert!(matches!(s.fold_at(&Position::Seq(3)), Err(Error::NotFound(_))));
        let stranger = "0".repeat(40);
        assert!(matches!(s.fold_at(&Position::Commit(stranger)), Err(Error::NotFound(_))));
    });
}

#[test]
fn the_fold_read_in_pieces_from_checkpoint_pages_is_the_fold_byte_for_byte() {
    each_host(|h| {
        let s = h.space("team");
        // 1,500 records of ~1 KB: more than one 1 MiB piece.
        let why = "a long reason ".repeat(70);
        for batch in 0..3 {
            let intents = (0..500)
                .map(|i| {
                    let body = json!({"key": format!("k{batch}-{i:04}"), "choice": "x", "rationale": why});
                    Intent::new("alice", "decide", body.to_string()).with_id(format!("d{batch}-{i}"))
                })
                .collect();
            s.append_batch(intents).unwrap();
        }
        s.checkpoint().unwrap();
        s.append(supersede("s1", "k1-0007", "y", "d1-7")).unwrap();
        s.append(retract("r1", "k2-0499", Some("d2-499"))).unwrap();
        let whole = s.fold().unwrap();
        // A fresh instance reads the records from the checkpoint's pages.
        let fresh = reopen(h, 0).space("team");
        let mut pieces = Vec::new();
        fresh
            .fold_each(|piece| {
                pieces.push(piece.to_owned());
                Ok(true)
            })
            .unwrap();
        assert!(pieces.len() >= 2, "{}: {} pieces of {} bytes", h.name, pieces.len(), whole.len());
        assert_eq!(pieces.concat(), whole, "{}", h.name);
    });
}

#[test]
fn a_fold_too_large_for_the_guest_memory_says_so_and_still_reads_in_pieces() {
    each_host(|h| {
        let s = h.space("team");
        // 2,000 records of ~4 KB: ~8 MB of fold, several times that held.
        let why = "a long reason ".repeat(300);
        for batch in 0..4 {
            let intents = (0..500)
                .map(|i| {
                    let body = json!({"key": format!("k{batch}-{i:04}"), "choice": "x", "rationale": why});
                    Intent::new("alice", "decide", body.to_string()).with_id(format!("d{batch}-{i}"))
                })
                .collect();
            s.append_batch(intents).unwrap();
        }
        s.checkpoint().unwrap();
        let whole = s.fold().unwrap();
        let options = Options {
            clock: h.clock.clone(),
            limits: Limits { memory_bytes: 16 << 20, ..Limits::default() },
            ..Options::default()
        };
        let small =
            Log::with_backend(h.log.backend().clone(), options.sole_writer(h.authority.clone())).unwrap();
        match small.space("team").fold() {
            Err(Error::Guest(message)) => assert!(
                message.contains("ran out of memory")
                    && message.contains("its limit, Limits::memory_bytes, is 16 MiB"),
                "{}: {message}",
                h.name
            ),
            other => panic!("{}: expected running out of memory, got {other:?}", h.name),
        }
        let mut pieces = String::new();
        small
            .space("team")
            .fold_each(|piece| {
                pieces.push_str(piece);
                Ok(true)
            })
            .unwrap();
        assert!(pieces == whole, "{}: the pieces differ from the fold", h.name);
    });
}

#[test]
fn spaces_lists_every_space_with_events() {
    each_host(|h| {
        assert!(h.log.spaces().unwrap().is_empty(), "{}", h.name);
        h.space("zeta").append(decide("a", "k", "v")).unwrap();
        h.space("alpha").append(decide("b", "k", "v")).unwrap();
        assert_eq!(h.log.spaces().unwrap(), ["alpha", "zeta"]);
        assert!(h.space("nothing-here").events(1, 10).unwrap().is_empty());
        assert!(h.space("nothing-here").head().unwrap().is_none());
    });
}

#[test]
fn a_writer_without_the_lease_is_told_who_holds_it() {
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d1", "db", "pg")).unwrap();
        let other = Lease {
            holder: "serve@elsewhere".into(),
            epoch: 2,
            expires_at_ms: T0 + 10_000,
            endpoint: Some("unix:/tmp/x.sock".into()),
        };
        h.authority.set(Some(other.clone()));
        match s.append(decide("d2", "ui", "web")) {
            Err(Error::NotHolder { space, holder }) => {
                assert_eq!(space, "team");
                let holder = holder.unwrap();
                assert_eq!((holder.holder.as_str(), holder.epoch), ("serve@elsewhere", 2), "{}", h.name);
                assert_eq!(holder.endpoint.as_deref(), Some("unix:/tmp/x.sock"));
            }
            other => panic!("{}: expected not-holder, got {other:?}", h.name),
        }
        h.clock.set(T0 + 10_000);
        assert!(
            matches!(s.append(decide("d2", "ui", "web")), Err(Error::NotHolder { holder: None, .. })),
            "an expired lease is no lease"
        );
        let resent = s.append(decide("d1", "db", "pg")).unwrap();
        assert!(!resent.created, "a resend is answered from the log, lease or not");
    });
}

#[test]
fn a_writer_with_an_older_epoch_than_the_log_is_fenced_out() {
    each_host(|h| {
        let s = h.space("team");
        h.authority.set(Some(Lease {
            holder: WRITER.into(),
            epoch: 3,
            expires_at_ms: u64::MAX,
            endpoint: None,
        }));
        let body = json!({"holder": WRITER, "epoch": 3}).to_string();
        let fence = s.append(Intent::new(WRITER, "authority", body).with_id("grant-3")).unwrap().event;
        assert_eq!((fence.kind.as_str(), fence.epoch), ("authority", 3));
        assert_eq!(fold(&s)["authority"], json!({"holder": WRITER, "epoch": 3, "seq": 1, "at_ms": T0}));
        let before = snapshot(&s);
        h.authority.set(Some(Lease {
            holder: WRITER.into(),
            epoch: 2,
            expires_at_ms: u64::MAX,
            endpoint: None,
        }));
        match s.append(decide("late", "db", "pg")) {
            Err(Error::StaleEpoch { epoch, head_epoch }) => {
                assert_eq!((epoch, head_epoch), (2, 3), "{}", h.name)
            }
            other => panic!("{}: expected stale epoch, got {other:?}", h.name),
        }
        assert_eq!(snapshot(&s), before);
    });
}

#[test]
fn an_export_imports_into_another_host_with_the_same_head_and_fold() {
    for (source, target) in hosts().into_iter().zip(hosts()) {
        let s = source.space("team");
        s.append(decide("d1", "db", "postgres")).unwrap();
        source.clock.advance(1_500);
        s.append(supersede("d2", "db", "sqlite", "d1")).unwrap();
        s.append(retract("r1", "db", None)).unwrap();
        let mut out = Vec::new();
        assert_eq!(s.export(&mut out).unwrap(), 3);
        let lines: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
        let t = target.space("team");
        let report = t.import(&lines).unwrap();
        assert_eq!((report.total, report.written, report.skipped), (3, 3, 0), "{}", source.name);
        assert_eq!(report.head.unwrap().commit, s.head().unwrap().unwrap().commit);
        assert_eq!(t.fold().unwrap(), s.fold().unwrap());
        let again = t.import(&lines).unwrap();
        assert_eq!((again.written, again.skipped), (0, 3), "re-import is a no-op");
    }
}

#[test]
fn a_bad_import_file_is_rejected_whole_naming_the_line() {
    each_host(|h| {
        let src = h.space("src");
        for i in 1..=3 {
            src.append(decide(&format!("d{i}"), &format!("k{i}"), "v")).unwrap();
        }
        let lines: Vec<String> = src.events(1, 10).unwrap().into_iter().map(|e| e.canonical).collect();
        let dst = h.space("src-copy");
        let cases: Vec<(Vec<String>, &str)> = vec![
            (vec![lines[0].clone(), lines[2].clone()], "line 2: seq is 3, expected 2"),
            (
                vec![lines[0].clone(), lines[1].replace("\"seq\":2", "\"seq\": 2")],
                "line 2: event is not in canonical",
            ),
            (vec![lines[0].clone(), "{".into()], "line 2: not valid I-JSON"),
            (
                vec![lines[0].clone(), lines[1].replace("\"id\":\"d2\"", "\"id\":\"d1\"")],
                "line 2: event seq 2 repeats the id",
            ),
        ];
        for (file, want) in cases {
            let err = h.space("src").import(&file).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid(m) if m.contains(want)),
                "{}: expected {want:?}, got {err}",
                h.name
            );
        }
        let err = dst.import(&lines).unwrap_err();
        assert!(matches!(&err, Error::Invalid(m) if m.contains("belongs to space \"src\"")), "{err}");
        assert!(dst.head().unwrap().is_none(), "nothing was written");
        assert_eq!(src.head().unwrap().unwrap().seq, 3);
    });
}

#[test]
fn verify_reports_a_tampered_chain() {
    use decision_log::backend::{ObjectId, ObjectKind};
    each_host(|h| {
        let s = h.space("team");
        s.append(decide("d1", "db", "pg")).unwrap();
        let head = s.head().unwrap().unwrap();
        assert!(s.verify().unwrap().problems.is_empty());
        // Another tool rewrites the head: same tree, different message.
        let backend = h.log.backend();
        let old = ObjectId::from_hex(&head.commit).unwrap();
        let (_, bytes) = backend.read_object(&old).unwrap().unwrap();
        let forged = String::from_utf8(bytes).unwrap().replace("decide db: pg", "decide db: mysql");
        let new = backend.write_object(ObjectKind::Commit, forged.as_bytes()).unwrap();
        backend.compare_and_swap("refs/dlog/spaces/team", Some(&old), &new).unwrap();
        let report = s.verify().unwrap();
        assert_eq!(report.problems.len(), 1, "{}: {:?}", h.name, report.problems);
        assert!(report.problems[0].contains("is not the encoding of its event"), "{:?}", report.problems);
    });
}

#[test]
fn a_guest_that_exceeds_its_memory_bound_fails_cleanly() {
    let options =
        Options { limits: Limits { memory_bytes: 64 * 1024, ..Default::default() }, ..Default::default() };
    let log =
        Log::with_backend(std::sync::Arc::new(decision_log::backend::MemoryBackend::new()), options).unwrap();
    let err = log.space("team").append(decide("d1", "k", "v")).unwrap_err();
    assert!(matches!(err, Error::Guest(_)), "{err}");
}

#[test]
fn a_guest_call_that_runs_past_its_deadline_is_interrupted_and_nothing_is_lost() {
    let backend = std::sync::Arc::new(decision_log::backend::MemoryBackend::new());
    let no_checkpoints = Options { checkpoint_every: 0, ..Default::default() };
    let writer = Log::with_backend(backend.clone(), no_checkpoints).unwrap();
    let space = writer.space("team");
    for chunk in 0..5 {
        space
            .append_batch(
                (0..1000).map(|i| decide(&format!("d{chunk}-{i}"), &format!("k{i}"), "v")).collect(),
            )
            .unwrap();
    }
    let expected = space.fold().unwrap();
    let limits = Limits { call_timeout: std::time::Duration::from_millis(10), ..Default::default() };
    let options = Options { limits, checkpoint_every: 0, ..Default::default() };
    let hurried = Log::with_backend(backend.clone(), options).unwrap();
    let err = hurried.space("team").fold().unwrap_err();
    assert!(
        matches!(&err, Error::Guest(m) if m.contains("interrupt")),
        "a full replay of 5000 events takes longer than 10 ms: {err}"
    );
    let patient = Log::with_backend(backend, Options::default()).unwrap();
    assert_eq!(patient.space("team").fold().unwrap(), expected);
}
