//! Exported event lines, as `import` reads them: each line through
//! `Event::parse`, the accepted events folded in order.
//!
//! - Parsing never panics, and a refusal always says why.
//! - An accepted line is exactly its event's canonical form, and parses
//!   again to the same event; its git objects decode to the ids written.
//! - Folding the accepted lines never panics, and the folded state's stored
//!   form reads back (`checkpoint::parse_state`) to the same bytes.

#![no_main]

use dlog_guest::canonical::to_canonical_string;
use dlog_guest::checkpoint::parse_state;
use dlog_guest::fold::State;
use dlog_guest::gitobj::{decode_commit, decode_tree, encode_event};
use dlog_guest::model::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut state: Option<State> = None;
    for line in data.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let event = match Event::parse(line) {
            Ok(event) => event,
            Err(e) => {
                assert!(!e.trim().is_empty(), "a refusal without a reason for {line:?}");
                continue;
            }
        };
        assert_eq!(event.canonical(), line, "an accepted line is not its event's canonical form");
        assert_eq!(to_canonical_string(&event.to_value()), line);
        assert_eq!(Event::parse(&event.canonical()).as_ref(), Ok(&event));

        let state = state.get_or_insert_with(|| State::new(&event.space));
        let encoded = encode_event(&event, state.head.as_deref());
        assert_eq!(encoded.blob, line.as_bytes());
        assert_eq!(decode_tree(&encoded.tree), Ok(encoded.blob_id.clone()));
        let links = decode_commit(&encoded.commit).unwrap_or_else(|e| panic!("own commit is refused: {e}"));
        assert_eq!(links.tree, encoded.tree_id);
        assert_eq!(links.parent, state.head);

        // A line of another space, out of seq order or in conflict with the
        // fold is refused by the fold; import refuses it the same way.
        if event.space == state.space {
            let before = state.clone();
            if state.apply(&event, &encoded.commit_id).is_err() {
                assert_eq!(*state, before, "a refused event changed the state");
            }
        }
    }
    if let Some(state) = state.filter(|s| s.seq > 0) {
        let bytes = state.canonical();
        assert_eq!(bytes, to_canonical_string(&state.to_value()), "the direct state writer is not canonical");
        let back =
            parse_state(bytes.as_bytes()).unwrap_or_else(|e| panic!("state {bytes:?} is refused: {e}"));
        assert_eq!(back.canonical(), bytes);
    }
});
