//! `Intent::validate` on fuzzed id, actor, kind and body, and what an
//! accepted intent becomes downstream.
//!
//! The input is text, so that seeds are readable intents: the first five
//! lines are the id, the actor, the kind, the space, and up to four numbers
//! (expect_seq, seq, epoch, at_ms); the rest is the body.
//!
//! - Validation never panics, and a refusal always says why.
//! - An accepted intent's canonical body validates again to the same intent,
//!   and is no longer than the body sent (so it still fits the size limit).
//! - Stamped into an event, it is read back by `Event::parse` unchanged, and
//!   its git objects decode to the ids that were written.
//! - Folded into a fresh state, the state's stored form reads back
//!   (`checkpoint::parse_state`) to the same bytes, and the fast canonical
//!   writer agrees with the general one.

#![no_main]

use dlog_guest::canonical::to_canonical_string;
use dlog_guest::checkpoint::parse_state;
use dlog_guest::fold::State;
use dlog_guest::gitobj::{decode_commit, decode_tree, encode_event};
use dlog_guest::model::{Event, Intent, MAX_SAFE_INTEGER, validate_space};
use libfuzzer_sys::fuzz_target;

struct Input<'a> {
    id: &'a str,
    actor: &'a str,
    kind: &'a str,
    space: &'a str,
    expect_seq: Option<u64>,
    seq: u64,
    epoch: u64,
    at_ms: u64,
    body: &'a str,
}

impl<'a> Input<'a> {
    fn parse(text: &'a str) -> Option<Input<'a>> {
        let mut lines = text.splitn(6, '\n');
        let (id, actor, kind, space, numbers) =
            (lines.next()?, lines.next()?, lines.next()?, lines.next()?, lines.next()?);
        let mut numbers = numbers.split(' ').map(|n| n.parse::<u64>().ok());
        let mut next = || numbers.next().flatten();
        Some(Input {
            id,
            actor,
            kind,
            space,
            expect_seq: next(),
            seq: next().unwrap_or(1),
            epoch: next().unwrap_or(1),
            at_ms: next().unwrap_or(0),
            body: lines.next().unwrap_or_default(),
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = std::str::from_utf8(data).ok().and_then(Input::parse) else {
        return;
    };
    let intent = match Intent::validate(input.id, input.actor, input.kind, input.body, input.expect_seq) {
        Ok(intent) => intent,
        Err(e) => {
            assert!(!e.to_string().trim().is_empty(), "a refusal without a reason");
            return;
        }
    };

    let canonical = to_canonical_string(&intent.body_json);
    assert!(
        canonical.len() <= input.body.len(),
        "canonical body {canonical:?} is longer than {:?}",
        input.body
    );
    let again = Intent::validate(input.id, input.actor, input.kind, &canonical, input.expect_seq)
        .unwrap_or_else(|e| panic!("canonical body {canonical:?} of {:?} is refused: {e}", input.body));
    assert_eq!(again, intent, "canonical body {canonical:?} validates differently");

    let space = if validate_space(input.space).is_ok() { input.space } else { "s" };
    let event = Event {
        space: space.to_owned(),
        seq: 1 + input.seq % MAX_SAFE_INTEGER,
        epoch: 1 + input.epoch % MAX_SAFE_INTEGER,
        id: intent.id.clone(),
        actor: intent.actor.clone(),
        at_ms: input.at_ms % (MAX_SAFE_INTEGER + 1),
        kind: intent.kind,
        body: intent.body.clone(),
        body_json: intent.body_json.clone(),
    };
    let stored = event.canonical();
    assert_eq!(stored, to_canonical_string(&event.to_value()), "the direct event writer is not canonical");
    let read = Event::parse(&stored).unwrap_or_else(|e| panic!("stored event {stored:?} is refused: {e}"));
    assert_eq!(read, event);
    assert!(intent.matches(&read));

    let parent = "0123456789abcdef0123456789abcdef01234567";
    let encoded = encode_event(&event, Some(parent));
    assert_eq!(decode_tree(&encoded.tree), Ok(encoded.blob_id.clone()));
    let links = decode_commit(&encoded.commit).unwrap_or_else(|e| panic!("own commit is refused: {e}"));
    assert_eq!(links.tree, encoded.tree_id);
    assert_eq!(links.parent.as_deref(), Some(parent));

    // A fresh state takes any first event but a retraction or a supersede.
    let mut state = State::new(space);
    let first = Event { seq: 1, ..event };
    if state.apply(&first, &encoded.commit_id).is_ok() {
        let bytes = state.canonical();
        assert_eq!(bytes, to_canonical_string(&state.to_value()), "the direct state writer is not canonical");
        let back =
            parse_state(bytes.as_bytes()).unwrap_or_else(|e| panic!("state {bytes:?} is refused: {e}"));
        assert_eq!(back.canonical(), bytes);
    }
});
