//! Golden transcripts: a fixed intent script and clock must produce exactly
//! the committed event bytes, object ids, heads and folds, on every host.
//! Regenerate (after an intended format change) with `DLOG_BLESS=1`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use decision_log::backend::{ObjectId, ObjectKind};
use decision_log::{Intent, Log};
use serde_json::{Value, json};

use crate::support::{TestAuthority, hosts};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/golden")
}

fn intent(v: &Value) -> Intent {
    Intent {
        id: v["id"].as_str().map(str::to_owned),
        actor: v["actor"].as_str().unwrap().to_owned(),
        kind: v["kind"].as_str().unwrap().to_owned(),
        // `body_text` is sent verbatim, so a script can hold JSON text whose
        // canonical form differs from how it is written (RFC 8785's examples).
        body: v["body_text"].as_str().map_or_else(|| v["body"].to_string(), str::to_owned),
        expect_seq: v["expect_seq"].as_u64(),
    }
}

/// Replay a script on `log` (whose clock is `clock`) and describe the result.
fn replay(script: &Value, log: &Log, clock: &decision_log::clock::ManualClock) -> Value {
    let mut appended = Vec::new();
    for step in script["steps"].as_array().unwrap() {
        clock.set(step["at_ms"].as_u64().unwrap());
        let space = log.space(step["space"].as_str().unwrap());
        let results = match (step.get("append"), step.get("append_batch")) {
            (Some(one), None) => vec![space.append(intent(one)).unwrap()],
            (None, Some(many)) => {
                space.append_batch(many.as_array().unwrap().iter().map(intent).collect()).unwrap()
            }
            _ => panic!("a step has append or append_batch: {step}"),
        };
        appended.extend(results.into_iter().map(|a| json!({"commit": a.event.commit, "created": a.created})));
    }
    let mut spaces = BTreeMap::new();
    for name in log.spaces().unwrap() {
        let space = log.space(&name);
        let events = space.events(1, u32::MAX).unwrap();
        let mut objects = Vec::new();
        for e in &events {
            let commit = ObjectId::from_hex(&e.commit).unwrap();
            let (_, bytes) = log.backend().read_object(&commit).unwrap().unwrap();
            let tree = String::from_utf8(bytes.clone()).unwrap()[5..45].to_owned();
            let blob = ObjectId::for_object(ObjectKind::Blob, e.canonical.as_bytes()).to_hex();
            objects.push(json!({"seq": e.seq, "blob": blob, "tree": tree, "commit": e.commit, "commit_text": String::from_utf8(bytes).unwrap()}));
        }
        spaces.insert(
            name.clone(),
            json!({
                "head": space.head().unwrap().map(|h| h.commit),
                "events": events.iter().map(|e| e.canonical.clone()).collect::<Vec<_>>(),
                "objects": objects,
                "fold": space.fold().unwrap(),
            }),
        );
    }
    let views: Vec<Value> = script["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|names| {
            let names: Vec<String> = serde_json::from_value(names.clone()).unwrap();
            json!({"spaces": names, "overlay": log.overlay(&names).unwrap(), "union": log.union(&names).unwrap()})
        })
        .collect();
    json!({"appended": appended, "spaces": spaces, "views": views})
}

#[test]
fn every_host_reproduces_the_golden_transcripts_byte_for_byte() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().unwrap().to_str().unwrap().strip_suffix(".script.json") else {
            continue;
        };
        let script: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let expected_path = fixtures().join(format!("{name}.expected.json"));
        for host in hosts() {
            let authority = Arc::new(TestAuthority::new(
                script["identity"].as_str().unwrap(),
                script["epoch"].as_u64().unwrap(),
            ));
            let options = decision_log::Options { clock: host.clock.clone(), ..Default::default() }
                .sole_writer(authority);
            let log = Log::with_backend(host.log.backend().clone(), options).unwrap();
            let actual = replay(&script, &log, &host.clock);
            let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            if std::env::var_os("DLOG_BLESS").is_some() {
                std::fs::write(&expected_path, &pretty).unwrap();
            }
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
                panic!(
                    "{} is missing; create it with DLOG_BLESS=1 cargo test golden",
                    expected_path.display()
                )
            });
            assert!(
                pretty == expected,
                "{}: host {} differs from {}",
                name,
                host.name,
                expected_path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no golden scripts found in {}", fixtures().display());
}
