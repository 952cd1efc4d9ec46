//! The JSONTestSuite parsing files (`tests/jsontestsuite/test_parsing/`, see
//! the README there for where they come from) run through `parse_strict`.
//!
//! `y_` files must be accepted, `n_` files rejected, and `i_` files may go
//! either way but must never panic. The strict parser is I-JSON (RFC 7493),
//! stricter than RFC 8259 on purpose, so a few `y_` files are refused: each
//! is listed below with the rule it breaks and the message we expect, so that
//! a new refusal fails the test instead of hiding in a blanket skip.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use dlog_guest::json::parse_strict;

/// Larger than every file (the biggest is 100,000 bytes), so the size limit
/// never decides an outcome here.
const LIMIT: usize = 1 << 20;

/// `y_` files that our I-JSON rules refuse: (file, rule, expected message).
const Y_EXCEPTIONS: &[(&str, &str, &str)] = &[
    ("y_object_duplicated_key.json", "RFC 7493 §2.3: member names are unique", "Duplicate key \"a\""),
    (
        "y_object_duplicated_key_and_value.json",
        "RFC 7493 §2.3: member names are unique",
        "Duplicate key \"a\"",
    ),
    (
        "y_string_escaped_noncharacter.json",
        "RFC 7493 §2.1: no noncharacters, escaped or raw",
        "Unicode noncharacter U+FFFF",
    ),
    (
        "y_string_last_surrogates_1_and_2.json",
        "RFC 7493 §2.1: the surrogate pair \\uDBFF\\uDFFF escapes the noncharacter U+10FFFF",
        "Unicode noncharacter U+10FFFF",
    ),
    (
        "y_string_nonCharacterInUTF-8_U+10FFFF.json",
        "RFC 7493 §2.1: no noncharacters, escaped or raw",
        "Unicode noncharacter U+10FFFF",
    ),
    (
        "y_string_nonCharacterInUTF-8_U+FFFF.json",
        "RFC 7493 §2.1: no noncharacters, escaped or raw",
        "Unicode noncharacter U+FFFF",
    ),
    (
        "y_string_unicode_U+10FFFE_nonchar.json",
        "RFC 7493 §2.1: no noncharacters, escaped or raw",
        "Unicode noncharacter U+10FFFE",
    ),
    (
        "y_string_unicode_U+1FFFE_nonchar.json",
        "RFC 7493 §2.1: no noncharacters, escaped or raw",
        "Unicode noncharacter U+1FFFE",
    ),
    (
        "y_string_unicode_U+FDD0_nonchar.json",
        "RFC 7493 §2.1: no noncharacters, escaped or raw",
        "Unicode noncharacter U+FDD0",
    ),
    (
        "y_string_unicode_U+FFFE_nonchar.json",
        "RFC 7493 §2.1: no noncharacters, escaped or raw",
        "Unicode noncharacter U+FFFE",
    ),
];

/// What `parse_strict` does with each `i_` file: accepted (`None`) or
/// rejected with a message containing the given text. Recorded so that a
/// change of behaviour on implementation-defined input is a visible decision.
const I_OUTCOMES: &[(&str, Option<&str>)] = &[
    // Underflow rounds to zero, as IEEE parsing does.
    ("i_number_double_huge_neg_exp.json", None),
    ("i_number_huge_exp.json", Some("out of range for a double")),
    ("i_number_neg_int_huge_exp.json", Some("out of range for a double")),
    ("i_number_pos_double_huge_exp.json", Some("out of range for a double")),
    ("i_number_real_neg_overflow.json", Some("out of range for a double")),
    ("i_number_real_pos_overflow.json", Some("out of range for a double")),
    ("i_number_real_underflow.json", None),
    ("i_number_too_big_neg_int.json", Some("outside ±(2^53−1)")),
    ("i_number_too_big_pos_int.json", Some("outside ±(2^53−1)")),
    ("i_number_very_big_negative_int.json", Some("outside ±(2^53−1)")),
    ("i_object_key_lone_2nd_surrogate.json", Some("Lone surrogate \\udfaa")),
    ("i_string_1st_surrogate_but_2nd_missing.json", Some("Lone surrogate \\udada")),
    ("i_string_1st_valid_surrogate_2nd_invalid.json", Some("Lone surrogate \\ud888")),
    ("i_string_incomplete_surrogate_and_escape_valid.json", Some("Lone surrogate \\ud800")),
    ("i_string_incomplete_surrogate_pair.json", Some("Lone surrogate \\udd1e")),
    ("i_string_incomplete_surrogates_escape_valid.json", Some("Lone surrogate \\ud800")),
    ("i_string_invalid_lonely_surrogate.json", Some("Lone surrogate \\ud800")),
    ("i_string_invalid_surrogate.json", Some("Lone surrogate \\ud800")),
    ("i_string_inverted_surrogates_U+1D11E.json", Some("Lone surrogate \\udd1e")),
    ("i_string_lone_second_surrogate.json", Some("Lone surrogate \\udfaa")),
    ("i_structure_500_nested_arrays.json", Some("Nesting is deeper than the limit of 64")),
    ("i_structure_UTF-8_BOM_empty_object.json", Some("Byte order mark is not allowed")),
];

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jsontestsuite/test_parsing")
}

/// Every vendored file, by name, with its bytes.
fn files(prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(suite_dir()).expect("the vendored suite is readable") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name").to_owned();
        if name.starts_with(prefix) && name.ends_with(".json") {
            out.insert(name, std::fs::read(&path).expect("a readable file"));
        }
    }
    out
}

/// The parser's verdict: a value's absence or the error message. Input that
/// is not UTF-8 never reaches it (the guest receives strings), so it counts
/// as rejected here; `Err` of the outer result is a panic.
fn verdict(bytes: &[u8]) -> Result<Result<(), String>, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(Err("not UTF-8".to_owned()));
    };
    catch_unwind(AssertUnwindSafe(|| parse_strict(text, LIMIT).map(drop).map_err(|e| e.message)))
        .map_err(|_| "parse_strict panicked".to_owned())
}

#[test]
fn the_vendored_suite_holds_every_file_the_package_carries_losslessly() {
    assert_eq!(files("y_").len(), 95);
    assert_eq!(files("n_").len(), 176);
    assert_eq!(files("i_").len(), 22);
}

#[test]
fn every_y_file_is_accepted_unless_it_breaks_a_listed_i_json_rule() {
    let files = files("y_");
    let mut wrong = Vec::new();
    for (name, bytes) in &files {
        let outcome = verdict(bytes);
        match Y_EXCEPTIONS.iter().find(|(file, _, _)| file == name) {
            None => {
                if outcome != Ok(Ok(())) {
                    wrong.push(format!("{name}: expected acceptance, got {outcome:?}"));
                }
            }
            Some((_, rule, message)) => match &outcome {
                Ok(Err(e)) if e.contains(message) => {}
                other => wrong.push(format!("{name} ({rule}): expected {message:?}, got {other:?}")),
            },
        }
    }
    for (file, _, _) in Y_EXCEPTIONS {
        if !files.contains_key(*file) {
            wrong.push(format!("{file} is listed as an exception but is not in the suite"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_n_file_is_rejected_with_a_message() {
    let mut wrong = Vec::new();
    for (name, bytes) in files("n_") {
        match verdict(&bytes) {
            Ok(Err(message)) if !message.is_empty() => {}
            other => wrong.push(format!("{name}: expected rejection, got {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_i_file_is_accepted_or_rejected_as_recorded_and_never_panics() {
    let files = files("i_");
    let mut wrong = Vec::new();
    for (name, bytes) in &files {
        let outcome = verdict(bytes);
        let recorded = I_OUTCOMES.iter().find(|(file, _)| file == name).map(|(_, o)| *o);
        match (&outcome, recorded) {
            (_, None) => wrong.push(format!("{name}: outcome {outcome:?} is not recorded")),
            (Ok(Ok(())), Some(None)) => {}
            (Ok(Err(e)), Some(Some(message))) if e.contains(message) => {}
            (other, Some(expected)) => wrong.push(format!("{name}: recorded {expected:?}, got {other:?}")),
        }
    }
    for (file, _) in I_OUTCOMES {
        if !files.contains_key(*file) {
            wrong.push(format!("{file} is recorded but is not in the suite"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
