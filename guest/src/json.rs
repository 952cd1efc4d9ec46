//! Strict I-JSON intake: RFC 8259 syntax plus the RFC 7493 (I-JSON) rules.
//!
//! This is a small hand-written recursive-descent parser rather than
//! `serde_json::from_str`, because serde_json cannot enforce I-JSON: it
//! silently keeps the last of duplicate object member names, and it turns an
//! integer literal beyond `u64` into an `f64` that is indistinguishable from
//! one written as `1e20`, so a precision-losing integer cannot be refused.
//! Parsing a `&str` by hand lets every rule below be checked at the byte where
//! it is broken:
//!
//! - strict RFC 8259 grammar: no BOM, comments, trailing commas, single
//!   quotes, `NaN`/`Infinity`, leading zeros, `+1`, `1.`, `.5`, `1e`, raw
//!   control characters in strings, unknown escapes or bad `\u` hex, and
//!   nothing after the value; whitespace is only space, tab, LF and CR;
//! - strings are Unicode text: no lone surrogates (escaped `\ud800` alone,
//!   `\udc00` alone, a high surrogate not followed by a low one) and no
//!   noncharacters (U+FDD0..U+FDEF, U+xFFFE and U+xFFFF in every plane), raw
//!   or escaped (RFC 7493 §2.1);
//! - object member names are unique, compared after unescaping (§2.3);
//! - an integer literal (no fraction, no exponent) must lie within
//!   ±(2^53−1), otherwise it would lose precision as a double (§2.2);
//!   literals with a fraction or exponent are IEEE doubles, correctly rounded,
//!   and must be finite;
//! - nesting is at most [`MAX_DEPTH`] arrays/objects deep, so the recursion
//!   is bounded on any input;
//! - the document is at most `max_bytes` long.
//!
//! Any JSON value is accepted at the top level; callers check shapes.

use std::fmt;

use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays and objects that [`parse_strict`] accepts.
///
/// A document whose outermost array is the only container has depth 1.
pub const MAX_DEPTH: usize = 64;

/// The largest integer magnitude that an IEEE double holds exactly together
/// with all its neighbours: 2^53 − 1 (RFC 7493 §2.2).
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why [`parse_strict`] refused a document, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset into the document where the problem was found.
    pub offset: usize,
    /// A sentence-case description of the problem.
    pub message: String,
}

impl JsonError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        Self { offset, message: message.into() }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for JsonError {}

/// Parses `text` as a single strict I-JSON value.
///
/// Refuses documents longer than `max_bytes` before looking at them, and
/// anything that RFC 8259 or RFC 7493 (I-JSON) does not allow; see the module
/// documentation for the full list. Integer literals become `i64`/`u64`
/// numbers (`-0` is `0`); literals with a fraction or exponent become `f64`
/// numbers (`-0.0` stays `-0.0`).
///
/// # Errors
///
/// A [`JsonError`] naming the first problem found and its byte offset.
pub fn parse_strict(text: &str, max_bytes: usize) -> Result<Value, JsonError> {
    if text.len() > max_bytes {
        return Err(JsonError::new(
            max_bytes,
            format!("Document is {} bytes, larger than the limit of {} bytes", text.len(), max_bytes),
        ));
    }
    if text.starts_with('\u{feff}') {
        return Err(JsonError::new(0, "Byte order mark is not allowed"));
    }
    let mut parser = Parser { text, pos: 0 };
    parser.skip_whitespace();
    if parser.peek().is_none() {
        return Err(JsonError::new(parser.pos, "Empty document"));
    }
    let value = parser.parse_value(0)?;
    parser.skip_whitespace();
    match parser.peek() {
        None => Ok(value),
        Some(b'/') => Err(parser.comment_error()),
        Some(_) => Err(JsonError::new(parser.pos, "Unexpected content after the JSON value")),
    }
}

/// True for the 66 Unicode noncharacters: U+FDD0..=U+FDEF and the last two
/// code points of every plane.
pub(crate) fn is_noncharacter(code_point: u32) -> bool {
    (0xFDD0..=0xFDEF).contains(&code_point) || code_point & 0xFFFE == 0xFFFE
}

fn noncharacter_error(offset: usize, code_point: u32) -> JsonError {
    JsonError::new(offset, format!("Unicode noncharacter U+{code_point:04X} is not allowed in strings"))
}

/// Shortens a long literal for an error message.
fn excerpt(literal: &str) -> String {
    const LIMIT: usize = 40;
    match literal.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", literal.get(..cut).unwrap_or(literal)),
        None => literal.to_owned(),
    }
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next unread byte; always on a char boundary.
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.text.as_bytes().get(self.pos + ahead).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn comment_error(&self) -> JsonError {
        JsonError::new(self.pos, "Comments are not allowed")
    }

    /// The error for an unexpected byte (or the end) where `expected` was due.
    fn unexpected(&self, expected: &str) -> JsonError {
        match self.peek() {
            None => JsonError::new(self.pos, format!("Unexpected end of input, expected {expected}")),
            Some(b'/') => self.comment_error(),
            Some(_) => {
                let found =
                    self.text.get(self.pos..).and_then(|rest| rest.chars().next()).unwrap_or('\u{fffd}');
                JsonError::new(self.pos, format!("Unexpected character {found:?}, expected {expected}"))
            }
        }
    }

    /// Parses one value; `depth` is the number of enclosing containers.
    fn parse_value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'{') => self.parse_object(depth + 1),
            Some(b'[') => self.parse_array(depth + 1),
            Some(b'"') => self.parse_string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.parse_number().map(Value::Number),
            Some(b't') => self.parse_literal("true", Value::Bool(true)),
            Some(b'f') => self.parse_literal("false", Value::Bool(false)),
            Some(b'n') => self.parse_literal("null", Value::Null),
            Some(b'\'') => Err(JsonError::new(self.pos, "Single-quoted strings are not allowed")),
            Some(b'N' | b'I') if self.at_nan_or_infinity() => {
                Err(JsonError::new(self.pos, "NaN and Infinity are not allowed"))
            }
            Some(b'+') => Err(JsonError::new(self.pos, "A leading plus sign is not allowed in numbers")),
            Some(b'.') => {
                Err(JsonError::new(self.pos, "A number must have a digit before the decimal point"))
            }
            _ => Err(self.unexpected("a JSON value")),
        }
    }

    fn rest(&self) -> &[u8] {
        self.text.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn at_nan_or_infinity(&self) -> bool {
        self.rest().starts_with(b"NaN") || self.rest().starts_with(b"Infinity")
    }

    fn parse_literal(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if self.rest().starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(JsonError::new(self.pos, "Invalid literal, expected true, false or null"))
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            Err(JsonError::new(self.pos, format!("Nesting is deeper than the limit of {MAX_DEPTH} levels")))
        } else {
            Ok(())
        }
    }

    fn parse_array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.parse_value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    let comma = self.pos;
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        return Err(JsonError::new(comma, "Trailing commas are not allowed"));
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("',' or ']' after an array element")),
            }
        }
    }

    fn parse_object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        self.pos += 1; // '{'
        let mut members = Map::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            let key_offset = self.pos;
            let key = match self.peek() {
                Some(b'"') => self.parse_string()?,
                Some(b'\'') => {
                    return Err(JsonError::new(self.pos, "Single-quoted strings are not allowed"));
                }
                _ => return Err(self.unexpected("a double-quoted member name")),
            };
            if members.contains_key(&key) {
                return Err(JsonError::new(key_offset, format!("Duplicate key {key:?}")));
            }
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("':' after a member name"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.parse_value(depth)?;
            members.insert(key, value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    let comma = self.pos;
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        return Err(JsonError::new(comma, "Trailing commas are not allowed"));
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.unexpected("',' or '}' after an object member")),
            }
        }
    }

    /// Parses a string starting at its opening quote.
    fn parse_string(&mut self) -> Result<String, JsonError> {
        let open = self.pos;
        self.pos += 1; // '"'
        let mut out = String::new();
        loop {
            // Copy the longest run that needs no unescaping.
            let run_start = self.pos;
            while let Some(byte) = self.peek() {
                match byte {
                    b'"' | b'\\' | 0x00..=0x1F => break,
                    0x20..=0x7F => self.pos += 1,
                    _ => {
                        let c = self
                            .text
                            .get(self.pos..)
                            .and_then(|rest| rest.chars().next())
                            .ok_or_else(|| JsonError::new(self.pos, "Invalid UTF-8"))?;
                        if is_noncharacter(u32::from(c)) {
                            return Err(noncharacter_error(self.pos, u32::from(c)));
                        }
                        self.pos += c.len_utf8();
                    }
                }
            }
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(JsonError::new(open, "Unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.parse_escape()?),
                Some(byte) => {
                    return Err(JsonError::new(
                        self.pos,
                        format!("Unescaped control character U+{byte:04X} is not allowed in strings"),
                    ));
                }
            }
        }
    }

    /// Parses an escape sequence starting at its backslash.
    fn parse_escape(&mut self) -> Result<char, JsonError> {
        let start = self.pos;
        let simple = match self.peek_at(1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.parse_unicode_escape(),
            None => return Err(JsonError::new(start, "Unterminated string")),
            Some(_) => {
                let found = self.text.get(start..).and_then(|rest| rest.chars().nth(1)).unwrap_or('\u{fffd}');
                return Err(JsonError::new(start, format!("Invalid escape sequence \"\\{found}\"")));
            }
        };
        self.pos += 2;
        Ok(simple)
    }

    /// Reads the four hex digits of a `\uXXXX` escape at the current position.
    fn read_hex4(&mut self) -> Result<u32, JsonError> {
        let start = self.pos;
        let mut code = 0;
        for i in 2..6 {
            let digit = self.peek_at(i).and_then(|b| char::from(b).to_digit(16)).ok_or_else(|| {
                JsonError::new(start, "Invalid \\u escape: expected four hexadecimal digits")
            })?;
            code = code * 16 + digit;
        }
        self.pos += 6;
        Ok(code)
    }

    /// Parses a `\uXXXX` escape, or a surrogate pair of two of them.
    fn parse_unicode_escape(&mut self) -> Result<char, JsonError> {
        let start = self.pos;
        let first = self.read_hex4()?;
        let lone = || JsonError::new(start, format!("Lone surrogate \\u{first:04x} in string"));
        let code_point = match first {
            0xD800..=0xDBFF => {
                if self.peek() != Some(b'\\') || self.peek_at(1) != Some(b'u') {
                    return Err(lone());
                }
                let second = self.read_hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(lone());
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone()),
            _ => first,
        };
        if is_noncharacter(code_point) {
            return Err(noncharacter_error(start, code_point));
        }
        char::from_u32(code_point)
            .ok_or_else(|| JsonError::new(start, "Invalid \\u escape: not a Unicode scalar value"))
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    /// Parses a number starting at its first byte ('-' or a digit).
    fn parse_number(&mut self) -> Result<Number, JsonError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(JsonError::new(start, "Leading zeros are not allowed in numbers"));
                }
            }
            Some(b'1'..=b'9') => self.skip_digits(),
            Some(b'I' | b'N') if self.at_nan_or_infinity() => {
                return Err(JsonError::new(start, "NaN and Infinity are not allowed"));
            }
            Some(b'.') => {
                return Err(JsonError::new(self.pos, "A number must have a digit before the decimal point"));
            }
            _ => return Err(self.unexpected("a digit after '-'")),
        }
        let digits_end = self.pos;
        let mut is_integer = true;
        if self.peek() == Some(b'.') {
            is_integer = false;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(JsonError::new(self.pos, "A number must have a digit after the decimal point"));
            }
            self.skip_digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            is_integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(JsonError::new(self.pos, "A number must have a digit in its exponent"));
            }
            self.skip_digits();
        }
        let literal = self.text.get(start..self.pos).unwrap_or_default();
        if is_integer {
            let digits = self.text.get(start + usize::from(negative)..digits_end).unwrap_or_default();
            // More than 16 digits is always beyond 2^53 − 1 (16 digits long),
            // and 16 digits always fit in a u64.
            let magnitude = if digits.len() <= 16 { digits.parse::<u64>().ok() } else { None };
            match magnitude {
                Some(m) if m <= MAX_SAFE_INTEGER => {
                    // m ≤ 2^53 − 1, so the conversion and negation are exact.
                    let signed = i64::try_from(m).unwrap_or_default();
                    Ok(if negative { Number::from(-signed) } else { Number::from(m) })
                }
                _ => Err(JsonError::new(
                    start,
                    format!(
                        "Integer {} is outside ±(2^53−1) and would lose precision; \
                         send it as a string",
                        excerpt(literal)
                    ),
                )),
            }
        } else {
            let out_of_range =
                || JsonError::new(start, format!("Number {} is out of range for a double", excerpt(literal)));
            // The grammar above is a subset of what `f64::from_str` accepts,
            // and its result is correctly rounded.
            let double = literal.parse::<f64>().map_err(|_| out_of_range())?;
            if !double.is_finite() {
                return Err(out_of_range());
            }
            // RFC 8785 writes a whole double below 1e21 as an integer literal
            // (1e20 -> 100000000000000000000). From 2^53 up, that literal is
            // one this parser refuses, so the document could not be read back:
            // refuse it here, where the sender can still fix it.
            if double.fract() == 0.0 && double.abs() > MAX_SAFE_INTEGER as f64 && double.abs() < 1e21 {
                return Err(JsonError::new(
                    start,
                    format!(
                        "Number {} is a whole number beyond ±(2^53−1); its canonical form \
                         is an integer literal that would lose precision: send it as a string",
                        excerpt(literal)
                    ),
                ));
            }
            Number::from_f64(double).ok_or_else(out_of_range)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMIT: usize = 1 << 20;

    fn parse(text: &str) -> Result<Value, JsonError> {
        parse_strict(text, LIMIT)
    }

    fn ok(text: &str) -> Value {
        match parse(text) {
            Ok(value) => value,
            Err(e) => panic!("{text:?} was rejected: {e}"),
        }
    }

    /// Asserts that `text` is rejected with a message containing `needle`.
    fn rejects(text: &str, needle: &str) -> JsonError {
        match parse(text) {
            Ok(value) => panic!("{text:?} was accepted as {value:?}"),
            Err(e) => {
                assert!(
                    e.message.contains(needle),
                    "{text:?}: message {:?} does not contain {needle:?}",
                    e.message
                );
                e
            }
        }
    }

    #[test]
    fn plain_documents_parse_into_the_expected_values() {
        assert_eq!(
            ok(r#" {"a": [1, -2, 3.5, true, false, null], "b": {"c": "d"}} "#),
            json!({"a": [1, -2, 3.5, true, false, null], "b": {"c": "d"}})
        );
        assert_eq!(ok("[]"), json!([]));
        assert_eq!(ok("{}"), json!({}));
        assert_eq!(ok("\t\r\n [ ]\n"), json!([]));
    }

    #[test]
    fn any_value_is_allowed_at_the_top_level() {
        assert_eq!(ok("1"), json!(1));
        assert_eq!(ok(r#""x""#), json!("x"));
        assert_eq!(ok("null"), Value::Null);
        assert_eq!(ok("true"), json!(true));
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            ok(r#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00""#),
            json!("\"\\/\u{8}\u{c}\n\r\tAé€😀")
        );
    }

    #[test]
    fn raw_non_ascii_and_del_are_kept() {
        assert_eq!(ok("\"é€😀\u{7f}\""), json!("é€😀\u{7f}"));
    }

    #[test]
    fn the_byte_limit_is_checked_before_parsing_and_names_both_sizes() {
        let e = parse_strict("[1, 2, 3]", 8).unwrap_err();
        assert_eq!(e.message, "Document is 9 bytes, larger than the limit of 8 bytes");
        // Checked before parsing: even an invalid document gets the size error.
        let e = parse_strict("{{{{{{{{{{", 4).unwrap_err();
        assert!(e.message.contains("larger than the limit"), "{e}");
        assert_eq!(parse_strict("[1, 2, 3]", 9), Ok(json!([1, 2, 3])));
    }

    #[test]
    fn errors_display_the_message_and_byte_offset() {
        let e = parse("[1,]").unwrap_err();
        assert_eq!(e.to_string(), "Trailing commas are not allowed at byte 2");
    }

    #[test]
    fn empty_input_is_rejected() {
        rejects("", "Empty document");
        rejects(" \n\t", "Empty document");
    }

    #[test]
    fn trailing_content_after_the_value_is_rejected() {
        let e = rejects("[1] 2", "Unexpected content after the JSON value");
        assert_eq!(e.offset, 4);
        rejects("{}{}", "Unexpected content after the JSON value");
        rejects("truex", "Unexpected content after the JSON value");
    }

    #[test]
    fn a_byte_order_mark_is_rejected() {
        rejects("\u{feff}{}", "Byte order mark is not allowed");
    }

    #[test]
    fn comments_are_rejected() {
        rejects("// c\n1", "Comments are not allowed");
        rejects("[1 /* c */]", "Comments are not allowed");
        rejects("[1] // c", "Comments are not allowed");
        rejects(r#"{"a": /* c */ 1}"#, "Comments are not allowed");
    }

    #[test]
    fn trailing_commas_are_rejected() {
        rejects("[1,]", "Trailing commas are not allowed");
        rejects(r#"{"a": 1 , }"#, "Trailing commas are not allowed");
    }

    #[test]
    fn single_quotes_are_rejected() {
        rejects("'a'", "Single-quoted strings are not allowed");
        rejects("{'a': 1}", "Single-quoted strings are not allowed");
    }

    #[test]
    fn nan_and_infinity_are_rejected() {
        rejects("NaN", "NaN and Infinity are not allowed");
        rejects("Infinity", "NaN and Infinity are not allowed");
        rejects("-Infinity", "NaN and Infinity are not allowed");
        rejects("[NaN]", "NaN and Infinity are not allowed");
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        rejects("01", "Leading zeros are not allowed");
        rejects("-01", "Leading zeros are not allowed");
        rejects("00.5", "Leading zeros are not allowed");
        rejects("+1", "leading plus sign is not allowed");
        rejects("1.", "digit after the decimal point");
        rejects("1.e5", "digit after the decimal point");
        rejects(".5", "digit before the decimal point");
        rejects("-.5", "digit before the decimal point");
        rejects("1e", "digit in its exponent");
        rejects("1e+", "digit in its exponent");
        rejects("-", "Unexpected end of input, expected a digit after '-'");
        rejects("-a", "expected a digit after '-'");
        rejects("0x10", "Unexpected content after the JSON value");
    }

    #[test]
    fn bad_literals_and_structure_are_rejected() {
        rejects("tru", "Invalid literal, expected true, false or null");
        rejects("[nul]", "Invalid literal, expected true, false or null");
        rejects("True", "Unexpected character 'T', expected a JSON value");
        rejects("Nope", "Unexpected character 'N', expected a JSON value");
        rejects("-Inf", "expected a digit after '-'");
        rejects("[1 2]", "expected ',' or ']' after an array element");
        rejects(r#"{"a" 1}"#, "expected ':' after a member name");
        rejects(r#"{"a": 1 "b": 2}"#, "expected ',' or '}' after an object member");
        rejects("{1: 2}", "expected a double-quoted member name");
        rejects("[", "Unexpected end of input, expected a JSON value");
        rejects(r#"{"a": 1"#, "Unexpected end of input");
        rejects("]", "Unexpected character ']'");
        rejects("\u{a0}1", "Unexpected character '\\u{a0}'");
    }

    #[test]
    fn unescaped_control_characters_in_strings_are_rejected() {
        rejects("\"a\u{0}b\"", "Unescaped control character U+0000");
        let e = rejects("\"a\nb\"", "Unescaped control character U+000A");
        assert_eq!(e.offset, 2);
        rejects("\"\u{1f}\"", "Unescaped control character U+001F");
        rejects("\"\t\"", "Unescaped control character U+0009");
    }

    #[test]
    fn unterminated_strings_are_rejected() {
        rejects("\"abc", "Unterminated string");
        rejects("\"abc\\", "Unterminated string");
    }

    #[test]
    fn invalid_escapes_are_rejected() {
        rejects(r#""\a""#, r#"Invalid escape sequence "\a""#);
        rejects(r#""\x41""#, r#"Invalid escape sequence "\x""#);
        rejects(r#""\'""#, r#"Invalid escape sequence "\'""#);
        rejects("\"\\\u{e9}\"", "Invalid escape sequence \"\\\u{e9}\"");
    }

    #[test]
    fn bad_unicode_escape_hex_is_rejected() {
        rejects(r#""\u12""#, "expected four hexadecimal digits");
        rejects(r#""\u12G4""#, "expected four hexadecimal digits");
        rejects(r#""\u""#, "expected four hexadecimal digits");
        rejects(r#""\ud800\u12""#, "expected four hexadecimal digits");
    }

    #[test]
    fn lone_surrogates_are_rejected() {
        rejects(r#""\ud800""#, "Lone surrogate \\ud800");
        rejects(r#""\udc00""#, "Lone surrogate \\udc00");
        rejects(r#""\ud800x""#, "Lone surrogate");
        rejects(r#""\ud800\n""#, "Lone surrogate");
        rejects(r#""\ud800\u0041""#, "Lone surrogate \\ud800");
        rejects(r#""\ud800\ud800""#, "Lone surrogate \\ud800");
        rejects(r#""\udbff\ue000""#, "Lone surrogate \\udbff");
        assert_eq!(ok(r#""\udbff\udffd""#), json!("\u{10fffd}"));
    }

    #[test]
    fn noncharacters_are_rejected_raw_or_escaped() {
        rejects("\"\u{fdd0}\"", "Unicode noncharacter U+FDD0 is not allowed");
        rejects("\"\u{fdef}\"", "Unicode noncharacter U+FDEF");
        rejects("\"\u{fffe}\"", "Unicode noncharacter U+FFFE");
        rejects("\"\u{ffff}\"", "Unicode noncharacter U+FFFF");
        rejects("\"\u{1fffe}\"", "Unicode noncharacter U+1FFFE");
        rejects("\"\u{10ffff}\"", "Unicode noncharacter U+10FFFF");
        rejects(r#""\ufdd0""#, "Unicode noncharacter U+FDD0");
        rejects(r#""\uFFFF""#, "Unicode noncharacter U+FFFF");
        rejects(r#""\ud83f\udffe""#, "Unicode noncharacter U+1FFFE");
        rejects(r#""\udbff\udfff""#, "Unicode noncharacter U+10FFFF");
        rejects(r#"{"\ufdd0": 1}"#, "Unicode noncharacter U+FDD0");
        // Their neighbours are fine.
        assert_eq!(
            ok("\"\u{fdcf}\u{fdf0}\u{fffd}\u{1fffd}\u{20000}\""),
            json!("\u{fdcf}\u{fdf0}\u{fffd}\u{1fffd}\u{20000}")
        );
        assert_eq!(ok(r#""\ufdcf\ufdf0\ufffd""#), json!("\u{fdcf}\u{fdf0}\u{fffd}"));
    }

    #[test]
    fn every_noncharacter_is_recognised() {
        let count = (0..=0x10FFFF_u32).filter(|&c| is_noncharacter(c)).count();
        assert_eq!(count, 66);
    }

    #[test]
    fn duplicate_keys_are_rejected_with_the_key_named() {
        let e = rejects(r#"{"a": 1, "b": 2, "a": 3}"#, r#"Duplicate key "a""#);
        assert_eq!(e.offset, 17);
        rejects(r#"{"x": {"k": 1, "k": 1}}"#, r#"Duplicate key "k""#);
        rejects(r#"{"": 1, "": 2}"#, r#"Duplicate key """#);
    }

    #[test]
    fn keys_are_compared_after_unescaping() {
        rejects(r#"{"a":1,"\u0061":2}"#, r#"Duplicate key "a""#);
        rejects(r#"{"\/":1,"/":2}"#, r#"Duplicate key "/""#);
        rejects(r#"{"😀":1,"\ud83d\ude00":2}"#, "Duplicate key \"😀\"");
        // Case and normalisation differences are different keys.
        assert_eq!(ok(r#"{"a":1,"A":2}"#), json!({"a": 1, "A": 2}));
        assert_eq!(ok("{\"\u{e9}\":1,\"e\u{301}\":2}"), json!({"\u{e9}": 1, "e\u{301}": 2}));
    }

    #[test]
    fn nesting_at_max_depth_is_accepted_and_one_more_is_rejected() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(&deep(MAX_DEPTH)).is_ok());
        let e = rejects(&deep(MAX_DEPTH + 1), "Nesting is deeper than the limit of 64");
        assert_eq!(e.offset, MAX_DEPTH);

        let objects = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        assert!(parse(&objects(MAX_DEPTH)).is_ok());
        rejects(&objects(MAX_DEPTH + 1), "Nesting is deeper");

        let mixed = format!("{}1{}", r#"[{"a":"#.repeat(MAX_DEPTH / 2), "}]".repeat(MAX_DEPTH / 2));
        assert!(parse(&mixed).is_ok());
    }

    #[test]
    fn a_hundred_thousand_open_brackets_are_rejected_without_overflowing_the_stack() {
        rejects(&"[".repeat(100_000), "Nesting is deeper");
        rejects(&r#"{"a":"#.repeat(100_000), "Nesting is deeper");
    }

    #[test]
    fn integer_literals_become_integers() {
        let v = ok("[0, 100, -7, 9007199254740991, -9007199254740991]");
        assert!(v[0].is_u64() && v[1].is_u64());
        assert_eq!(v[2].as_i64(), Some(-7));
        assert_eq!(v[3].as_u64(), Some(9_007_199_254_740_991));
        assert_eq!(v[4].as_i64(), Some(-9_007_199_254_740_991));
    }

    #[test]
    fn minus_zero_as_an_integer_literal_is_zero() {
        let v = ok("-0");
        assert_eq!(v.as_u64(), Some(0));
        assert!(!v.is_f64());
    }

    #[test]
    fn minus_zero_point_zero_stays_a_negative_zero_double() {
        let v = ok("-0.0");
        let d = v.as_f64().unwrap();
        assert!(v.is_f64());
        assert!(d == 0.0 && d.is_sign_negative());
    }

    #[test]
    fn integers_beyond_two_to_the_53_minus_one_are_rejected() {
        let e = rejects(
            "9007199254740992",
            "Integer 9007199254740992 is outside ±(2^53−1) and would lose precision; send it as a string",
        );
        assert_eq!(e.offset, 0);
        rejects("-9007199254740992", "Integer -9007199254740992 is outside");
        rejects("100000000000000000000", "would lose precision");
        rejects("18446744073709551616", "would lose precision");
        rejects("[1, 12345678901234567890123]", "would lose precision");
        let long = "9".repeat(10_000);
        let e = rejects(&long, "would lose precision");
        assert!(e.message.len() < 200, "{}", e.message);
    }

    #[test]
    fn fractions_and_exponents_are_correctly_rounded_doubles() {
        assert_eq!(ok("0.1").as_f64(), Some(0.1));
        assert_eq!(ok("1.0").as_f64(), Some(1.0));
        assert!(ok("1.0").is_f64());
        assert!(parse("1e20").unwrap_err().message.contains("send it as a string"));
        assert_eq!(ok("1e21").as_f64(), Some(1e21));
        assert_eq!(ok("9007199254740991.0").as_f64(), Some(9007199254740991.0));
        assert_eq!(ok("1E30").as_f64(), Some(1e30));
        assert_eq!(ok("1e+30").as_f64(), Some(1e30));
        assert_eq!(ok("2.5e-3").as_f64(), Some(0.0025));
        assert_eq!(ok("-1.5E+2").as_f64(), Some(-150.0));
        assert_eq!(ok("333333333.33333329").as_f64(), Some(333_333_333.333_333_3));
        assert_eq!(ok("1.7976931348623157e308").as_f64(), Some(f64::MAX));
        assert_eq!(ok("5e-324").as_f64(), Some(f64::from_bits(1)));
        // Underflow rounds to zero rather than failing.
        assert_eq!(ok("1e-400").as_f64(), Some(0.0));
    }

    #[test]
    fn doubles_that_overflow_are_rejected_as_out_of_range() {
        rejects("1e400", "Number 1e400 is out of range for a double");
        rejects("-1e400", "Number -1e400 is out of range");
        rejects("1.8e308", "out of range");
    }
}
