//! RFC 8785 JSON Canonicalization Scheme (JCS) output.
//!
//! - no whitespace;
//! - object members sorted by their names as UTF-16 code-unit sequences
//!   (so astral-plane characters sort before U+E000..U+FFFF, unlike UTF-8
//!   byte order);
//! - strings escaped minimally: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`,
//!   the other controls below U+0020 as lowercase `\u00xx`, and everything
//!   else (including `/`, U+007F and all non-ASCII) written raw;
//! - numbers stored as `i64`/`u64` print as integers; doubles print in the
//!   ECMAScript `Number::toString` form (via `ryu-js`), so `-0` prints `0`.
//!
//! Hand-written with `ryu-js` because `serde_jcs` 0.2 and
//! `serde_json_canonicalizer` 0.4, though right on every RFC 8785 vector,
//! fail `integers_stored_as_i64_or_u64_print_as_integers` (they print the u64
//! 9007199254740993 as 9007199254740992) and are heavier (serde, a `Result`
//! API, every key re-parsed to sort it; a second `ryu-js`, or `unsafe`).
//!
//! The writer keeps its own work stack instead of recursing, so arbitrarily
//! deep values built in code cannot overflow the call stack here.

use serde_json::{Number, Value};

/// Returns the RFC 8785 canonical form of `value`.
pub fn to_canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Appends the RFC 8785 canonical form of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut String) {
    /// What is left to write, innermost last.
    enum Task<'a> {
        Value(&'a Value),
        Key(&'a str),
        Punct(char),
    }

    let mut stack = vec![Task::Value(value)];
    while let Some(task) = stack.pop() {
        match task {
            Task::Punct(c) => out.push(c),
            Task::Key(key) => {
                write_string(key, out);
                out.push(':');
            }
            Task::Value(Value::Null) => out.push_str("null"),
            Task::Value(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Task::Value(Value::Number(n)) => write_number(n, out),
            Task::Value(Value::String(s)) => write_string(s, out),
            Task::Value(Value::Array(items)) => {
                out.push('[');
                stack.push(Task::Punct(']'));
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push(Task::Value(item));
                    if i > 0 {
                        stack.push(Task::Punct(','));
                    }
                }
            }
            Task::Value(Value::Object(members)) => {
                let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
                // Code point (byte) order is RFC 8785's UTF-16 order unless a
                // key holds a character from U+E000 up (UTF-8 lead bytes 0xEE
                // and above). serde_json's map usually iterates in byte order
                // already (not with `preserve_order`): sort only when needed.
                let in_byte_order = sorted.windows(2).all(|w| w[0].0 < w[1].0);
                if !in_byte_order || members.keys().any(|k| k.bytes().any(|b| b >= 0xEE)) {
                    sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
                }
                out.push('{');
                stack.push(Task::Punct('}'));
                for (i, (key, item)) in sorted.into_iter().enumerate().rev() {
                    stack.push(Task::Value(item));
                    stack.push(Task::Key(key));
                    if i > 0 {
                        stack.push(Task::Punct(','));
                    }
                }
            }
        }
    }
}

fn write_number(n: &Number, out: &mut String) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(f) = n.as_f64() {
        // serde_json numbers are finite; `format` would still spell a
        // non-finite value as JavaScript does rather than panic.
        out.push_str(ryu_js::Buffer::new().format(f));
    }
}

/// Appends `s` as a canonical JSON string.
///
/// Scans bytes, not chars: only ASCII bytes ever need escaping (every byte
/// of a multi-byte UTF-8 sequence is 0x80 or above), and a char-by-char
/// loop was the guest's largest single cost when appending.
pub fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices end on char boundaries.
        out.push_str(s.get(run_start..i).unwrap_or_default());
        run_start = i + 1;
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(s.get(run_start..).unwrap_or_default());
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_strict;
    use serde_json::json;

    fn parse(text: &str) -> Value {
        match parse_strict(text, 1 << 20) {
            Ok(value) => value,
            Err(e) => panic!("{text:?} was rejected: {e}"),
        }
    }

    fn canon(text: &str) -> String {
        to_canonical_string(&parse(text))
    }

    fn double(x: f64) -> String {
        to_canonical_string(&Value::Number(Number::from_f64(x).expect("the test uses finite doubles")))
    }

    /// JSON equality where every number is compared as the double it denotes,
    /// as I-JSON and JCS see numbers (so `1.0` equals `1`, `-0.0` equals `0`).
    fn same_json(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
            }
            _ => a == b,
        }
    }

    const RFC_3_2_2_INPUT: &str = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;

    const RFC_3_2_3_INPUT: &str = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;

    /// Every accepted document in this module's tests: all must round-trip.
    const ACCEPTED: &[&str] = &[
        RFC_3_2_2_INPUT,
        RFC_3_2_3_INPUT,
        "-0",
        "-0.0",
        "[-0, -0.0, 0, 0.0]",
        "1e+30",
        "1E30",
        "0.1",
        "100",
        "1.0",
        "9007199254740991",
        "-9007199254740991",
        "1e21",
        "[1e-7, 1e-6, 1.5e-7, 5e-324, 1.7976931348623157e308, -4.35e+22]",
        r#"{"\ufffd": 1, "\ud800\udc00": 2, "\ue000": 3, "a": 4}"#,
        r#""\u0001\u001f\u007f/é""#,
        r#"{"b": [1, {"d": null, "c": true}], "a": {}, "": []}"#,
        r#"[[], {}, "", [[[]]], {"x": {"y": {"z": "\\\"\b\f\n\r\t"}}}]"#,
        "null",
        "true",
        "\"\u{10fffd}\"",
    ];

    #[test]
    fn rfc_8785_section_3_2_2_example_is_reproduced_exactly() {
        assert_eq!(
            canon(RFC_3_2_2_INPUT),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc_8785_section_3_2_3_sorting_example_is_reproduced_exactly() {
        assert_eq!(
            canon(RFC_3_2_3_INPUT),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
             \"\u{1f600}\":\"Emoji: Grinning Face\",\
             \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    #[test]
    fn rfc_8785_appendix_b_numbers_are_serialized_exactly() {
        const ROWS: &[(u64, &str)] = &[
            (0x0000_0000_0000_0000, "0"),
            (0x8000_0000_0000_0000, "0"),
            (0x0000_0000_0000_0001, "5e-324"),
            (0x8000_0000_0000_0001, "-5e-324"),
            (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
            (0xffef_ffff_ffff_ffff, "-1.7976931348623157e+308"),
            (0x4340_0000_0000_0000, "9007199254740992"),
            (0xc340_0000_0000_0000, "-9007199254740992"),
            (0x4430_0000_0000_0000, "295147905179352830000"),
            (0x44b5_2d02_c7e1_4af5, "9.999999999999997e+22"),
            (0x44b5_2d02_c7e1_4af6, "1e+23"),
            (0x44b5_2d02_c7e1_4af7, "1.0000000000000001e+23"),
            (0x444b_1ae4_d6e2_ef4e, "999999999999999700000"),
            (0x444b_1ae4_d6e2_ef4f, "999999999999999900000"),
            (0x444b_1ae4_d6e2_ef50, "1e+21"),
            (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"),
            (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
            (0x41b3_de43_5555_5553, "333333333.3333332"),
            (0x41b3_de43_5555_5554, "333333333.33333325"),
            (0x41b3_de43_5555_5555, "333333333.3333333"),
            (0x41b3_de43_5555_5556, "333333333.3333334"),
            (0x41b3_de43_5555_5557, "333333333.33333343"),
            (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
            (0x4314_3ff3_c1cb_0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in ROWS {
            assert_eq!(double(f64::from_bits(bits)), expected, "bits {bits:#018x}");
        }
        // The table's NaN and Infinity rows (0x7fffffffffffffff,
        // 0x7ff0000000000000) cannot be held in a serde_json Number at all.
        assert!(Number::from_f64(f64::from_bits(0x7fff_ffff_ffff_ffff)).is_none());
        assert!(Number::from_f64(f64::from_bits(0x7ff0_0000_0000_0000)).is_none());
    }

    #[test]
    fn negative_zero_prints_as_zero() {
        assert_eq!(canon("-0"), "0");
        assert_eq!(canon("-0.0"), "0");
        assert_eq!(double(-0.0), "0");
    }

    #[test]
    fn numbers_print_in_ecmascript_form() {
        assert_eq!(canon("1e+30"), "1e+30");
        assert_eq!(canon("1E30"), "1e+30");
        assert_eq!(canon("0.1"), "0.1");
        assert_eq!(canon("100"), "100");
        assert_eq!(canon("1.0"), "1");
        assert_eq!(canon("4.50"), "4.5");
        assert_eq!(canon("-1.5e-7"), "-1.5e-7");
        assert_eq!(canon("1e21"), "1e+21");
        assert_eq!(to_canonical_string(&Value::from(1e20)), "100000000000000000000");
        assert_eq!(canon("9007199254740991"), "9007199254740991");
        assert_eq!(canon("-9007199254740991"), "-9007199254740991");
    }

    #[test]
    fn integers_stored_as_i64_or_u64_print_as_integers() {
        assert_eq!(to_canonical_string(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(to_canonical_string(&json!(i64::MIN)), "-9223372036854775808");
        assert_eq!(to_canonical_string(&json!(9_007_199_254_740_993_u64)), "9007199254740993");
    }

    #[test]
    fn astral_plane_keys_sort_before_the_top_of_the_basic_plane() {
        // UTF-8 byte order would put U+E000 and U+FFFD before U+10000; UTF-16
        // puts the surrogate pair (0xD800 0xDC00) first.
        assert_eq!(
            canon(r#"{"\ufffd": 1, "\ud800\udc00": 2, "\ue000": 3, "\ud7ff": 4, "a": 5}"#),
            "{\"a\":5,\"\u{d7ff}\":4,\"\u{10000}\":2,\"\u{e000}\":3,\"\u{fffd}\":1}"
        );
    }

    #[test]
    fn keys_sort_by_code_units_with_prefixes_first() {
        assert_eq!(
            to_canonical_string(&json!({"ab": 1, "a": 2, "": 3, "B": 4, "b": 5})),
            r#"{"":3,"B":4,"a":2,"ab":1,"b":5}"#
        );
    }

    #[test]
    fn nested_objects_are_sorted_too() {
        assert_eq!(
            canon(r#"{"b": [1, {"d": null, "c": true}], "a": {"z": 1, "y": 2}}"#),
            r#"{"a":{"y":2,"z":1},"b":[1,{"c":true,"d":null}]}"#
        );
    }

    #[test]
    fn control_characters_are_escaped_and_everything_else_is_raw() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        assert_eq!(
            to_canonical_string(&Value::String(all_controls)),
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\
             \\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\
             \\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\
             \\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\""
        );
        assert_eq!(canon(r#""\u0001""#), r#""\u0001""#);
        assert_eq!(canon(r#""\u001F""#), r#""\u001f""#);
        assert_eq!(canon(r#""\u007f""#), "\"\u{7f}\"");
        assert_eq!(canon(r#""a\/b\"c\\d é € 😀 \u2028""#), "\"a/b\\\"c\\\\d é € 😀 \u{2028}\"");
    }

    #[test]
    fn keys_are_escaped_like_strings() {
        assert_eq!(to_canonical_string(&json!({"a\"b\u{1}": "\n"})), r#"{"a\"b\u0001":"\n"}"#);
    }

    #[test]
    fn there_is_no_whitespace_and_empty_containers_stay_empty() {
        assert_eq!(canon(" [ {} , [ ] , \"\" , { \"a\" : [ null ] } ] "), r#"[{},[],"",{"a":[null]}]"#);
    }

    #[test]
    fn write_canonical_appends_to_the_buffer() {
        let mut out = String::from("prefix:");
        write_canonical(&json!({"b": 1, "a": [true]}), &mut out);
        assert_eq!(out, r#"prefix:{"a":[true],"b":1}"#);
    }

    #[test]
    fn very_deep_values_built_in_code_do_not_overflow_the_stack() {
        let depth = 100_000;
        let mut value = json!(1);
        for _ in 0..depth {
            value = Value::Array(vec![value]);
        }
        let text = to_canonical_string(&value);
        assert_eq!(text.len(), 2 * depth + 1);
        // Dropping a value this deep recursively would itself overflow, so
        // take it apart iteratively.
        let mut current = value;
        while let Value::Array(mut items) = current {
            current = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn accepted_documents_round_trip_and_canonicalising_twice_is_stable() {
        for text in ACCEPTED {
            assert!(round_trips(text, &parse(text)), "{text:?}");
        }
    }

    #[test]
    fn round_trips_are_exact_when_no_double_has_an_integral_value() {
        // serde_json tells 1 from 1.0, so exact equality needs documents whose
        // doubles keep a fraction or exponent in canonical form.
        for text in [RFC_3_2_2_INPUT, RFC_3_2_3_INPUT, "[0.1, 1e+30, 5e-324, -7]"] {
            let value = parse(text);
            assert_eq!(parse(&to_canonical_string(&value)), value, "{text:?}");
        }
    }

    /// Checks the round trip for one accepted value. Returns false, instead of
    /// failing, for the one known exception: an integral double in
    /// [2^53, 1e21), whose canonical integer spelling strict intake refuses.
    fn round_trips(text: &str, value: &Value) -> bool {
        let first = to_canonical_string(value);
        match parse_strict(&first, 1 << 20) {
            Ok(reparsed) => {
                assert!(same_json(&reparsed, value), "{text:?} -> {first:?}");
                assert_eq!(to_canonical_string(&reparsed), first, "{text:?}");
                true
            }
            Err(e) if e.message.contains("would lose precision") => false,
            Err(e) => panic!("canonical form {first:?} of {text:?} was rejected: {e}"),
        }
    }

    #[test]
    fn mutated_documents_never_panic_and_accepted_ones_round_trip() {
        // Fragments to splice in, separated by '|' (the first one is empty).
        const PIECES: &str = "|[|]|{|}|\"|\\|\\u|d800|dc00|ffff|,|:|-|0|1|9|.|e|E|+| |\n|\u{0}|\u{1f}|\
                              \u{7f}|\u{fdd0}|\u{fffd}|\u{1f600}|é|/|*|n|t|'|\u{feff}|1e20|\
                              9007199254740993|null|\"a\":";
        let pieces: Vec<&str> = PIECES.split('|').collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % u64::try_from(bound).expect("small bound")).expect("below a usize bound")
        };
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..20_000 {
            let mut doc = ACCEPTED[next(ACCEPTED.len())].to_owned();
            for _ in 0..=next(3) {
                let boundaries: Vec<usize> = doc.char_indices().map(|(i, _)| i).chain([doc.len()]).collect();
                let at = boundaries[next(boundaries.len())];
                if next(2) == 0 && at < doc.len() {
                    doc.remove(at);
                } else {
                    doc.insert_str(at, pieces[next(pieces.len())]);
                }
            }
            match parse_strict(&doc, 4096) {
                Ok(value) => {
                    accepted += 1;
                    round_trips(&doc, &value);
                }
                Err(e) => {
                    rejected += 1;
                    assert!(e.offset <= doc.len().max(4096), "{doc:?}: {e}");
                    assert!(!e.message.is_empty());
                }
            }
        }
        assert!(accepted > 1_000 && rejected > 1_000, "{accepted} / {rejected}");
    }

    #[test]
    fn whole_doubles_whose_canonical_form_is_an_unsafe_integer_are_refused_at_intake() {
        // JCS spells 1e20 as the integer literal 100000000000000000000, which
        // strict intake refuses as imprecise; so intake refuses 1e20 itself,
        // and everything accepted can be read back.
        assert_eq!(to_canonical_string(&Value::from(1e20)), "100000000000000000000");
        assert!(parse_strict("1e20", 64).is_err_and(|e| e.message.contains("send it as a string")));
        assert!(parse_strict("9007199254740992.0", 64).is_err());
        assert!(parse_strict("9007199254740992", 64).is_err());
        assert_eq!(canon("1e21"), "1e+21");
    }
}
