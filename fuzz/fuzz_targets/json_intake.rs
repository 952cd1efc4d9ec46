//! `parse_strict` on arbitrary text, checked against serde_json.
//!
//! - It never panics.
//! - What it accepts, serde_json (an RFC 8259 parser) accepts too, as the
//!   same value: the strict parser only ever adds I-JSON refusals.
//! - What serde_json accepts and it refuses, it refuses for one of those
//!   I-JSON rules, never for a grammar mistake of its own.
//! - Its canonical form (RFC 8785) parses again, to the same canonical bytes.

#![no_main]

use dlog_guest::canonical::to_canonical_string;
use dlog_guest::json::{MAX_DEPTH, parse_strict};
use libfuzzer_sys::fuzz_target;
use serde_json::{Number, Value};

/// Larger than any input libFuzzer makes here, so the size rule never
/// decides (it is checked before anything else is looked at).
const LIMIT: usize = 1 << 20;

/// Messages of the rules by which I-JSON is stricter than RFC 8259.
const I_JSON_REFUSALS: &[&str] = &[
    "Duplicate key",
    "Unicode noncharacter",
    "Lone surrogate",
    "would lose precision",
    "Nesting is deeper than the limit",
    "out of range for a double",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let strict = parse_strict(text, LIMIT);
    let loose = serde_json::from_str::<Value>(text);
    match (&strict, &loose) {
        (Ok(strict), Ok(loose)) => {
            assert!(same(strict, loose), "values differ for {text:?}: {strict:?} vs {loose:?}")
        }
        (Ok(value), Err(e)) => panic!("serde_json refuses {text:?} ({e}) but parse_strict gives {value:?}"),
        (Err(e), Ok(_)) => assert!(
            I_JSON_REFUSALS.iter().any(|rule| e.message.contains(rule)),
            "parse_strict refuses {text:?}, which serde_json accepts, for a reason that is no I-JSON rule: {e}"
        ),
        (Err(_), Err(_)) => {}
    }
    if let Ok(value) = strict {
        let canonical = to_canonical_string(&value);
        // The canonical form may be longer than the input (`1e-6` is
        // `0.000001`), so it is read back without a size limit.
        let again = parse_strict(&canonical, usize::MAX)
            .unwrap_or_else(|e| panic!("canonical form {canonical:?} of {text:?} is refused: {e}"));
        assert_eq!(to_canonical_string(&again), canonical, "canonical form of {text:?} is not stable");
        assert!(depth(&value) <= MAX_DEPTH);
    }
});

/// Equal JSON values: numbers by their mathematical value, since the two
/// parsers store some differently (`-0` is the integer 0 here and the double
/// -0.0 in serde_json).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len() && xs.iter().all(|(k, x)| ys.get(k).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_u64().map(i128::from).or_else(|| n.as_i64().map(i128::from))
}

fn same_number(x: &Number, y: &Number) -> bool {
    match (integer(x), integer(y), x.as_f64(), y.as_f64()) {
        (Some(i), Some(j), _, _) => i == j,
        // An integer here is within ±(2^53−1), exact as a double; 0 == -0.0.
        (Some(i), None, _, Some(d)) | (None, Some(i), Some(d), _) => i as f64 == d,
        (None, None, Some(d), Some(e)) => d.to_bits() == e.to_bits(),
        _ => false,
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
