//! Who may call: bearer tokens, each read-only or read-write.
//!
//! Tokens come from a file (`--http-tokens FILE`) or the `DLOG_HTTP_TOKENS`
//! variable, never the command line (where `ps` shows it to everyone). Each
//! entry is `read:TOKEN` or `write:TOKEN`, one per line (or comma-separated
//! in the variable); `#` starts a comment. A client shows its token as
//! `Authorization: Bearer TOKEN`, or as the password of HTTP Basic (so a
//! browser can open the web page). Tokens are compared through their SHA-1
//! digests in constant time, so neither their bytes nor their lengths leak
//! through timing.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::problem::Problem;
use crate::error::Error;

/// The shortest token accepted: guessing one must be hopeless.
const MIN_TOKEN: usize = 16;

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// GET and HEAD only.
    Read,
    /// Everything, appends included.
    Write,
}

/// The tokens a server accepts; none means no token is asked for.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<([u8; 20], Access)>,
}

impl Tokens {
    /// Parse entries (`read:TOKEN` / `write:TOKEN`, separated by newlines or
    /// commas, `#` comments); `source` names where they came from in errors.
    pub fn parse(text: &str, source: &str) -> Result<Tokens, Error> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            for entry in line.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let bad = |why: &str| Error::Invalid(format!("{source}, line {}: {why}", n + 1));
                let (access, token) =
                    entry.split_once(':').ok_or_else(|| bad("expected read:TOKEN or write:TOKEN"))?;
                let access = match access.trim() {
                    "read" => Access::Read,
                    "write" => Access::Write,
                    other => return Err(bad(&format!("access {other:?} is neither read nor write"))),
                };
                let token = token.trim();
                if token.len() < MIN_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(bad(&format!(
                        "a token must be at least {MIN_TOKEN} visible ASCII characters (no spaces)"
                    )));
                }
                entries.push((digest(token.as_bytes()), access));
            }
        }
        if entries.is_empty() {
            return Err(Error::Invalid(format!("{source} holds no tokens")));
        }
        Ok(Tokens { entries })
    }

    /// Whether no token is configured (then none is asked for).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What `token` allows, if it is one of ours. Every entry is compared,
    /// whichever matches, so the time taken says nothing about which did.
    pub fn access(&self, token: &str) -> Option<Access> {
        let candidate = digest(token.as_bytes());
        let mut found = None;
        for (known, access) in &self.entries {
            if constant_time_eq(known, &candidate) {
                found = Some(*access);
            }
        }
        found
    }
}

fn digest(bytes: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(bytes).digest().bytes()
}

fn constant_time_eq(a: &[u8; 20], b: &[u8; 20]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// The token a request shows: `Bearer TOKEN`, or the password of `Basic`.
fn presented(request: &Request) -> Option<String> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64_decode(rest.trim())?;
        let text = String::from_utf8(decoded).ok()?;
        return text.split_once(':').map(|(_, password)| password.to_owned());
    }
    None
}

/// Standard base64 (with or without padding); none for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Middleware: 401 without a known token, 403 for a read-only token on
/// anything but GET or HEAD. Without configured tokens everything passes.
pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.tokens.is_empty() {
        return next.run(request).await;
    }
    let Some(access) = presented(&request).and_then(|t| state.tokens.access(&t)) else {
        let detail = match request.headers().get(header::AUTHORIZATION) {
            Some(_) => "the token shown is not one this server accepts",
            None => "this server asks every client for a token: send Authorization: Bearer TOKEN",
        };
        return Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .header(header::WWW_AUTHENTICATE, r#"Bearer realm="dlog", Basic realm="dlog""#)
            .into_response();
    };
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    if access == Access::Read && !reading {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the token is read-only; {} needs a write token", request.method()),
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_from_lines_or_commas_and_tell_each_access() {
        let tokens = Tokens::parse(
            "# team\nread:rrrrrrrrrrrrrrrrrrrr\nwrite:wwwwwwwwwwwwwwwwwwww, read:ssssssssssssssssss\n",
            "the file",
        )
        .unwrap();
        assert_eq!(tokens.access("rrrrrrrrrrrrrrrrrrrr"), Some(Access::Read));
        assert_eq!(tokens.access("wwwwwwwwwwwwwwwwwwww"), Some(Access::Write));
        assert_eq!(tokens.access("ssssssssssssssssss"), Some(Access::Read));
        assert_eq!(tokens.access("nope"), None);
    }

    #[test]
    fn a_bad_token_entry_is_refused_naming_its_line() {
        let e =
            Tokens::parse("read:aaaaaaaaaaaaaaaaaa\nadmin:bbbbbbbbbbbbbbbbbbbb", "tokens.txt").unwrap_err();
        assert!(e.to_string().contains("tokens.txt, line 2"), "{e}");
        let e = Tokens::parse("write:short", "DLOG_HTTP_TOKENS").unwrap_err();
        assert!(e.to_string().contains("at least 16"), "{e}");
        assert!(Tokens::parse("# nothing\n", "f").unwrap_err().to_string().contains("no tokens"));
    }

    #[test]
    fn base64_decodes_what_browsers_send_for_basic() {
        assert_eq!(base64_decode("dTpwYXNzd29yZA==").unwrap(), b"u:password");
        assert!(base64_decode("not base64!").is_none());
    }
}
